'use strict';
/**
 * One definition of every node setting's range (src/settings): the editor's validators and the
 * runtime accept and refuse the same values, with the same reason; the editor gets the table
 * from the runtime (tinyfer/settings.js on the admin API); every numeric and enumerated
 * setting of every node's HTML is validated from it. Status texts fit in 32 characters.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const helper = require('node-red-node-test-helper');
const { NODE_SETTINGS, NODE_TYPES, checkNodeSettings } = require('../dist/settings/nodes');
const { RANGES, settingProblem } = require('../dist/settings/spec');
const { editorScript } = require('../dist/settings/editor');
const { FrameHandler } = require('../dist/runtime/frame-node');
const { EmotionHandler } = require('../dist/runtime/emotion-node');
const { BUNDLED_MODELS } = require('../dist/engine/open');
const { fitStatus, errorStatus, STATUS_MAX } = require('../dist/runtime/status');
const { failureReason } = require('../dist/fleet/connection');
const { connectionStatus, countsText } = require('../dist/fleet/status');
const { VisionError } = require('../dist/vision/errors');

helper.init(require.resolve('node-red'));
const ROOT = path.join(__dirname, '..');

/** The editor's TinyFER object, from the script the runtime serves, run as a browser would. */
function editorTinyFER(script) {
  const window = {};
  vm.runInNewContext(script, { window });
  return window.TinyFER;
}

/** A valid configuration of each node (what a new node has) that one setting is then changed in. */
const BASE = { 'tinyfer-frame': {}, 'tinyfer-emotion': {}, 'tinyfer-fleet': { protocolVersion: '5' }, 'tinyfer-devices': {}, 'tinyfer-command': { command: 'get_config' } };

/** Values to try on every setting: the bad ones, edges, enum values, junk. */
const PROBES = ['', ' ', '-5', '-3', '0', '0.05', '0.5', '1', '1.5', '2', '2.5', '5', '7', '10', '31', '32', '64', '96', '100', '101', '128',
  '256', '500', '1024', '1056', '3600', '3601', '1e9', 'abc', 'NaN', 'Infinity', 'no-such-model', 'tinyfer-b1', 'tinyfer-b1r.tfer', '/tmp/x.tfer',
  ...new Set(Object.values(NODE_SETTINGS).flatMap((specs) => Object.values(specs).flatMap((s) => (s.kind === 'enum' ? s.values.map(String) : [])))), 4, 5, 10, -3];

describe('settings: one definition for the editor and the runtime', function () {
  this.timeout(60000);
  const T = editorTinyFER(editorScript());

  it('the issue\'s values are refused by the editor with the runtime\'s reason', function () {
    const cases = [
      ['tinyfer-frame', 'maxFaces', '-3', /^maxFaces must be an integer >= 1, got "-3"$/],
      ['tinyfer-frame', 'quality', '500', /^quality must be an integer 1\.\.100, got "500"$/],
      ['tinyfer-frame', 'margin', '7', /^margin must be in 0\.\.2, got "7"$/],
      ['tinyfer-frame', 'privacy', 'smudge', /^privacy must be one of none, blur, pixelate, got "smudge"$/],
      ['tinyfer-frame', 'privacyBlocks', '20', /^privacyBlocks must be an integer 2\.\.8, got "20"$/],
      ['tinyfer-frame', 'privacyMargin', '1.5', /^privacyMargin must be in 0\.\.1, got "1\.5"$/],
      ['tinyfer-emotion', 'alpha', '5', /^alpha must be in \(0, 1\], got "5"$/],
      ['tinyfer-emotion', 'minConfidence', '2', /^minConfidence must be in 0\.\.1, got "2"$/],
      ['tinyfer-command', 'timeout', '-5', /^timeout must be in \(0, 3600\], got "-5"$/],
      ['tinyfer-fleet', 'commandTimeout', '-5', /^commandTimeout must be in \(0, 3600\], got "-5"$/],
      ['tinyfer-fleet', 'haImageInterval', '0.5', /^haImageInterval must be 0 or in 1\.\.86400, got "0\.5"$/],
      ['tinyfer-emotion', 'model', 'no-such-model', /^model must be a bundled model \(tinyfer-b1\) or a path/],
    ];
    for (const [type, name, v, re] of cases) {
      const validate = T.validate(type, name);
      assert.equal(validate.length, 2, 'a Node-RED 3+ validator (value, opt) that may return the reason');
      assert.match(String(validate(v, {})), re, `${type}.${name} = ${v}`);
      assert.throws(() => checkNodeSettings(type, { ...BASE[type], [name]: v }), (e) => e instanceof RangeError && re.test(e.message));
    }
    assert.deepEqual(JSON.parse(JSON.stringify(T.bundledModels)), [...BUNDLED_MODELS]);
  });

  it('the editor accepts exactly what the node runtimes accept, for every setting and probe value', async function () {
    let compared = 0;
    for (const type of NODE_TYPES) {
      for (const name of Object.keys(NODE_SETTINGS[type])) {
        for (const v of PROBES) {
          const editor = T.validate(type, name)(v, {});
          let runtime = null;
          try { checkNodeSettings(type, { ...BASE[type], [name]: v }); } catch (e) { runtime = e.message; }
          assert.equal(editor === true ? null : editor, runtime, `${type}.${name} = ${JSON.stringify(v)}`);
          compared++;
        }
      }
    }
    assert.ok(compared > 500, `${compared} comparisons`);
  });

  it('the frame and emotion handlers themselves (their library checks) refuse what the editor refuses', function () {
    let refused = 0;
    for (const [type, make] of [['tinyfer-frame', (c) => new FrameHandler(c)], ['tinyfer-emotion', (c) => new EmotionHandler(c)]]) {
      for (const name of Object.keys(NODE_SETTINGS[type])) {
        if (name === 'model') continue; // a path: the handler loads it (and fails on a missing one) asynchronously
        for (const v of PROBES) {
          const editorOk = T.validate(type, name)(v, {}) === true;
          let runtimeOk = true;
          try {
            const h = make({ [name]: v, views: name === 'views' ? v : '1' });
            h.close();
          } catch (e) {
            runtimeOk = false;
            assert.ok(e instanceof RangeError, `${type}.${name}=${v}: ${e.message}`);
          }
          assert.equal(runtimeOk, editorOk, `${type}.${name} = ${JSON.stringify(v)}: editor ${editorOk ? 'accepts' : 'refuses'}, handler ${runtimeOk ? 'accepts' : 'refuses'}`);
          if (!runtimeOk) refused++;
        }
      }
    }
    assert.ok(refused > 100, `${refused} refusals compared`);
  });

  it('ranges: fallbackSize also takes 0; inputSize multiples of 32 in 64..1024; a bundled model by name, a path, never a bare unknown word', function () {
    assert.equal(settingProblem(RANGES.fallbackSize, 0), null);
    assert.equal(settingProblem(RANGES.inputSize, 96), null);
    assert.match(settingProblem(RANGES.inputSize, 100), /multiple of 32 between 64 and 1024/);
    const model = NODE_SETTINGS['tinyfer-emotion'].model;
    for (const ok of ['', 'tinyfer-b1', 'tinyfer-b1r.tfer', './my.tfer', '/models/x', 'C:\\models\\x.tfer', 'model.json']) assert.equal(settingProblem(model, ok), null, ok);
    for (const bad of ['no-such-model', 'tinyfer-b9', 'x y']) assert.ok(settingProblem(model, bad), bad);
  });

  it('every numeric and enumerated setting in the nodes\' HTML is validated from the table, and nothing else validates them', function () {
    for (const type of NODE_TYPES) {
      const html = fs.readFileSync(path.join(ROOT, 'nodes', `${type}.html`), 'utf8');
      const names = Object.keys(NODE_SETTINGS[type]);
      for (const name of names) {
        const re = new RegExp(`\\b${name}: \\{ value: [^}]*validate: TinyFER\\.validate\\(["']${type}["'], ["']${name}["']\\) \\}`);
        assert.match(html, re, `${type}.${name}`);
      }
      assert.doesNotMatch(html, /RED\.validators\.number/, `${type}: no second definition of a range`);
      if (names.length) assert.match(html, /<script type="text\/javascript" src="tinyfer\/settings\.js"><\/script>/, type);
    }
  });

  it('palette labels follow one scheme: "fer <what>" in the TinyFER category', function () {
    const labels = {};
    for (const type of NODE_TYPES) {
      const html = fs.readFileSync(path.join(ROOT, 'nodes', `${type}.html`), 'utf8');
      labels[type] = /paletteLabel: ["']([^"']+)["']/.exec(html)?.[1];
      if (type !== 'tinyfer-fleet') assert.match(html, /category: ["']TinyFER["']/, type);
    }
    assert.deepEqual(labels, { 'tinyfer-frame': 'fer frame', 'tinyfer-emotion': 'fer emotion', 'tinyfer-fleet': 'fer fleet', 'tinyfer-devices': 'fer devices', 'tinyfer-command': 'fer command' });
  });

  describe('served to the editor by the runtime', function () {
    before(() => new Promise((r) => helper.startServer(r)));
    after(() => new Promise((r) => helper.stopServer(r)));
    afterEach(() => helper.unload());

    it('GET tinyfer/settings.js on the admin API: the table and check the runtime uses', async function () {
      await helper.load(require('../nodes/tinyfer-frame.js'), [{ id: 'f', type: 'tinyfer-frame' }]);
      const r = await helper.request().get('/tinyfer/settings.js').buffer(true).parse((res, cb) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => cb(null, b)); });
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /javascript/);
      assert.equal(r.body, editorScript());
      const served = editorTinyFER(r.body);
      assert.deepEqual(JSON.parse(JSON.stringify(served.specs)), JSON.parse(JSON.stringify(NODE_SETTINGS)));
    });

    it('a node with a bad setting does not start: the setting named in its status, the reason in node.error', async function () {
      await helper.load(require('../nodes/tinyfer-frame.js'), [{ id: 'f', type: 'tinyfer-frame', quality: '500' }]);
      const f = helper.getNode('f');
      const status = f.status.getCalls().filter((c) => c.thisValue === f).map((c) => c.args[0].text);
      assert.deepEqual(status, ['bad setting: quality']);
      assert.ok(f.error.getCalls().some((c) => c.thisValue === f && /quality must be an integer 1\.\.100, got "500"/.test(c.args[0])));
    });
  });
});

describe('status texts: at most 32 characters, never cut inside a word', function () {
  it('fitStatus keeps whole words and marks the cut', function () {
    assert.equal(fitStatus('connected'), 'connected');
    const long = 'tinyfer-command: no online devices for "all" and more words here';
    const s = fitStatus(long);
    assert.ok(s.length <= STATUS_MAX, s);
    assert.ok(s.endsWith('\u2026'));
    assert.ok(long.startsWith(s.slice(0, -1)) && /[\s"]/.test(long[s.length - 1]), `cut at a word boundary: ${s}`);
  });

  it('errors get a short reason: vision codes, bad settings, their own status', function () {
    assert.equal(errorStatus(new VisionError('E_FORMAT', 'unsupported image format \'gif\' (use JPEG, PNG, WebP or TIFF)')), 'not a JPEG/PNG/WebP/TIFF');
    assert.equal(errorStatus(new RangeError('detector inputSize must be a multiple of 32 between 64 and 1024, got 100')), 'bad setting: inputSize');
    assert.equal(errorStatus(Object.assign(new Error('long'), { status: 'no online devices' })), 'no online devices');
    for (const code of ['E_INPUT_TYPE', 'E_EMPTY', 'E_TOO_LARGE', 'E_FORMAT', 'E_DECODE', 'E_FILE', 'E_FACES', 'E_KEEP_FACES', 'E_DETECTOR']) {
      assert.ok(errorStatus(new VisionError(code, 'x'.repeat(80))).length <= STATUS_MAX, code);
    }
  });

  it('fleet failures: the reason in <= 32 characters for every CONNACK code and socket / TLS error', function () {
    const url = 'mqtt://broker.example.internal.lan:18830';
    const errs = [1, 2, 3, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x9f, 0x99].map((code) => Object.assign(new Error('Connection refused'), { code }));
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'EPROTO', 'EWHATEVER']) {
      errs.push(Object.assign(new Error(`${code}: something rather long happened while talking to the broker`), { code }));
    }
    for (const e of errs) {
      const r = failureReason(e, url);
      assert.ok(r.length > 0 && r.length <= STATUS_MAX, `${e.code}: "${r}"`);
    }
    assert.equal(failureReason(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'mqtt://127.0.0.1:1883'), 'no broker at 127.0.0.1:1883');
    assert.equal(failureReason(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), url), 'no broker on port 18830');
    assert.equal(failureReason(Object.assign(new Error('x'), { code: 4 }), url), 'broker refused: bad user/pass');
    assert.equal(failureReason(Object.assign(new Error('x'), { code: 1 }), url), 'broker refused: MQTT version');
    assert.equal(failureReason(Object.assign(new Error('x'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), url), 'TLS: certificate not trusted');
  });

  it('device counts and the fallback note fit', function () {
    for (const c of [{ online: 0, offline: 0 }, { online: 120, offline: 3000, invalid: 99999 }, { online: 12, offline: 3, invalid: 5 }]) {
      for (const fellBack of [false, true]) {
        const s = connectionStatus({ state: 'connected', fellBack }, countsText(c));
        assert.ok(s.text.length <= STATUS_MAX, s.text);
      }
    }
    assert.equal(connectionStatus({ state: 'connected', fellBack: true }).text, 'connected (MQTT 3.1.1 fallback)');
    assert.equal(connectionStatus({ state: 'reconnecting', failure: 'no broker at 127.0.0.1:1883' }).text, 'no broker at 127.0.0.1:1883');
  });
});
