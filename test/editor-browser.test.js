'use strict';
/**
 * The editor in a real browser: Debian's chromium (scripts/setup.sh installs it) driven by
 * puppeteer-core, headless, against a real Node-RED with this package installed in a throwaway
 * user dir (test/helpers/node-red-server.js, 127.0.0.1). Checks: the TinyFER palette category
 * holds the four flow nodes with their labels (the fleet config node is registered); each node's
 * edit dialog (and the fleet config dialog) opens with no console error or page error; values
 * the runtime refuses are marked invalid (Node-RED's `input-error` class) and valid ones are
 * not; the model setting lists the bundled models and "custom path"; each node's help renders
 * in the sidebar.
 */
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { waitFor } = require('./helpers/fleet');
const { BUNDLED_MODELS } = require('../dist/engine/open');

const { launchChromium } = require('./helpers/browser');

describe('editor in a real browser (chromium + puppeteer-core)', function () {
  this.timeout(120000);
  let server;
  let out = '';
  let userDir;
  let browser;
  let page;
  const problems = []; // console errors and page errors

  before(async function () {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-editor-'));
    server = spawn(process.execPath, [path.join(__dirname, 'helpers', 'node-red-server.js'), userDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout.on('data', (d) => { out += d; });
    server.stderr.on('data', (d) => { out += d; });
    const url = await waitFor(() => /EDITOR (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1] || (server.exitCode !== null && Promise.reject(new Error(out))), 30000, `Node-RED started:\n${out}`);
    ({ browser, page } = await launchChromium({ width: 1400, height: 1000 }));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 30000 });
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="tinyfer-command"]', { timeout: 30000 });
    // the flows are loaded: there is a workspace to add nodes to
    await page.waitForFunction(() => RED.workspaces.active() && RED.nodes.workspace(RED.workspaces.active()), { timeout: 30000 });
  });

  after(async function () {
    if (browser) await browser.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('the palette has the TinyFER category with the four flow nodes, one label scheme; the fleet config node is registered', async function () {
    const palette = await page.evaluate(() => {
      const cat = document.querySelector('#red-ui-palette-base-category-TinyFER');
      return {
        inCategory: cat ? [...cat.querySelectorAll('.red-ui-palette-node')].map((n) => [n.getAttribute('data-palette-type'), n.querySelector('.red-ui-palette-label').textContent.replace(/\s+/g, ' ').trim()]) : null,
        fleet: !!RED.nodes.getType('tinyfer-fleet') && RED.nodes.getType('tinyfer-fleet').category,
        settings: typeof window.TinyFER === 'object' && Object.keys(window.TinyFER.specs),
      };
    });
    assert.ok(palette.inCategory, 'a TinyFER category');
    assert.deepEqual(new Map(palette.inCategory), new Map([['tinyfer-frame', 'fer frame'], ['tinyfer-emotion', 'fer emotion'], ['tinyfer-devices', 'fer devices'], ['tinyfer-command', 'fer command']]));
    assert.equal(palette.fleet, 'config');
    assert.deepEqual(palette.settings, ['tinyfer-frame', 'tinyfer-emotion', 'tinyfer-fleet', 'tinyfer-devices', 'tinyfer-command']);
    assert.deepEqual(problems, []);
  });

  /** Add a node of `type` to the workspace and open its edit dialog; resolves when the form is there. */
  async function openDialog(type, props = {}) {
    const id = await page.evaluate((type, props) => {
      const id = RED.nodes.id();
      // as a node dropped from the palette: every setting at its default
      const defaults = RED.nodes.getType(type).defaults;
      const node = { id, type };
      for (const k of Object.keys(defaults)) node[k] = JSON.parse(JSON.stringify(defaults[k].value === undefined ? '' : defaults[k].value));
      Object.assign(node, props);
      if (type === 'tinyfer-fleet') {
        RED.view.importNodes([node]);
        RED.editor.editConfig('', type, id);
      } else {
        RED.view.importNodes([{ ...node, x: 200, y: 100 + Math.floor(Math.random() * 400), z: RED.workspaces.active(), wires: [] }]);
        RED.editor.edit(RED.nodes.node(id));
      }
      return id;
    }, type, props);
    const prefix = type === 'tinyfer-fleet' ? 'node-config-input' : 'node-input';
    await page.waitForSelector(`#${prefix}-name`, { visible: true, timeout: 15000 });
    await new Promise((r) => setTimeout(r, 300)); // oneditprepare's own changes
    return { id, prefix };
  }

  async function closeDialog() {
    await page.evaluate(() => RED.tray.close());
    await page.waitForFunction(() => document.querySelectorAll('.red-ui-tray').length === 0, { timeout: 15000 });
  }

  /** Type `value` into a text input (or choose it in a select) and say whether Node-RED marks it invalid. */
  async function invalid(selector, value) {
    return page.evaluate((selector, value) => {
      const el = $(selector);
      if (!el.length) throw new Error(`no ${selector}`);
      el.val(value).trigger('change').trigger('keyup');
      return el.hasClass('input-error');
    }, selector, value);
  }

  const CASES = {
    'tinyfer-frame': [['maxFaces', '-3', '3'], ['quality', '500', '75'], ['margin', '7', '0.2'], ['scoreThreshold', '1.5', '0.6'], ['maxBytesMb', '0', '5'], ['wholeFaceMaxSide', '-1', '48'],
      ['privacyBlocks', '20', '4'], ['privacyMargin', '1.5', '0.5'], ['queueSize', '0', '4']],
    'tinyfer-emotion': [['alpha', '5', '0.3'], ['minConfidence', '2', '0.4'], ['window', '2.5', '4'], ['maxFaces', '0', '2'], ['trackMaxMissed', '-1', '10'], ['model', 'no-such-model', '/data/models/mine.tfer'],
      ['queueSize', '0', '4']],
    'tinyfer-command': [['timeout', '-5', '30']],
    'tinyfer-fleet': [['commandTimeout', '-5', '20'], ['haImageInterval', '0.5', '30']],
    'tinyfer-devices': [],
  };

  let fleetId; // a fleet configuration for the device and command nodes (a required setting)

  for (const [type, cases] of Object.entries(CASES)) {
    it(`${type}: the edit dialog opens without errors; ${cases.length ? cases.map((c) => `${c[0]} ${c[1]}`).join(', ') + ' marked invalid, valid values not' : 'no numeric settings'}`, async function () {
      const before = problems.length;
      if (!fleetId) {
        fleetId = await page.evaluate(() => {
          const id = RED.nodes.id();
          RED.view.importNodes([{ id, type: 'tinyfer-fleet', url: 'mqtt://127.0.0.1:1883', prefix: 'tinyfer', protocolVersion: '5', commandTimeout: 10 }]);
          return id;
        });
      }
      const { prefix } = await openDialog(type, type === 'tinyfer-fleet' ? { url: 'mqtt://127.0.0.1:1883' } : /devices|command/.test(type) ? { fleet: fleetId } : {});
      try {
        await checkDialog(type, prefix, cases);
      } finally {
        await closeDialog();
      }
      assert.deepEqual(problems.slice(before), [], 'no console or page errors');
    });
  }

  async function checkDialog(type, prefix, cases) {
      const marked = await page.$$eval('.red-ui-tray .input-error', (els) => els.map((e) => e.id || e.className));
      assert.deepEqual(marked, [], 'a new node (its defaults) has no invalid field');
      if (type === 'tinyfer-emotion') {
        const options = await page.$$eval('#tinyfer-emotion-model-choice option', (os) => os.map((o) => [o.value, o.textContent]));
        assert.deepEqual(options.map((o) => o[0]), ['', ...BUNDLED_MODELS, 'custom']);
        assert.match(options[options.length - 1][1], /custom path/);
        assert.equal(await page.$eval('.tinyfer-emotion-model-path', (e) => getComputedStyle(e).display), 'none', 'no path field for the bundled default');
        await page.select('#tinyfer-emotion-model-choice', 'custom');
        assert.notEqual(await page.$eval('.tinyfer-emotion-model-path', (e) => getComputedStyle(e).display), 'none', 'the path field for a custom model');
      }
      if (type === 'tinyfer-frame') {
        const shown = () => page.$eval('.tinyfer-frame-privacy', (e) => getComputedStyle(e).display !== 'none');
        assert.equal(await page.$eval('#node-input-privacy', (e) => e.value), 'none', 'privacy is off for a new node');
        assert.equal(await shown(), false, 'no privacy strength fields while privacy is off');
        await page.select('#node-input-privacy', 'pixelate');
        assert.equal(await shown(), true, 'the strength fields with privacy on');
      }
      if (type === 'tinyfer-fleet') {
        // The Home Assistant rows (discovery prefix, image interval, model key file) show only with Home Assistant on.
        const shown = () => page.$$eval('.tinyfer-ha-row', (els) => els.map((e) => getComputedStyle(e).display !== 'none'));
        assert.deepEqual(await shown(), [false, false, false]);
        await page.click('#node-config-input-homeAssistant');
        assert.deepEqual(await shown(), [true, true, true]);
      }
      for (const [name, bad, good] of cases) {
        const sel = `#${prefix}-${name}`;
        assert.equal(await invalid(sel, bad), true, `${type}.${name} = ${bad} is marked invalid`);
        assert.equal(await invalid(sel, good), false, `${type}.${name} = ${good} is valid`);
        assert.equal(await invalid(sel, ''), false, `${type}.${name} empty (the default) is valid`);
      }
      if (type === 'tinyfer-emotion') {
        await page.select('#tinyfer-emotion-model-choice', BUNDLED_MODELS[BUNDLED_MODELS.length - 1]);
        assert.equal(await page.$eval('#node-input-model', (e) => e.value), BUNDLED_MODELS[BUNDLED_MODELS.length - 1], 'choosing a bundled model sets it by name');
      }
  }

  it('a node saved with an out-of-range value shows as invalid on the canvas, with the runtime\'s reason', async function () {
    const r = await page.evaluate(() => {
      const id = RED.nodes.id();
      const defaults = RED.nodes.getType('tinyfer-frame').defaults;
      const node = { id, type: 'tinyfer-frame', x: 500, y: 500, z: RED.workspaces.active(), wires: [] };
      for (const k of Object.keys(defaults)) node[k] = defaults[k].value;
      RED.view.importNodes([{ ...node, quality: '500' }]);
      const n = RED.nodes.node(id);
      RED.editor.validateNode(n);
      return { valid: n.valid, errors: n.validationErrors };
    });
    assert.equal(r.valid, false);
    assert.deepEqual(r.errors, ['quality must be an integer 1..100, got "500"']);
  });

  for (const [type, label, text] of [['tinyfer-frame', 'fer frame', /Finds the faces in an image/], ['tinyfer-emotion', 'fer emotion', /neutral, with the TinyFER binary network/],
    ['tinyfer-fleet', 'fer fleet', /connection to a fleet of TinyFER/], ['tinyfer-devices', 'fer devices', /registry/], ['tinyfer-command', 'fer command', /Sends a command to one TinyFER device/]]) {
    it(`${type}: the help renders in the sidebar`, async function () {
      const before = problems.length;
      await page.evaluate((type) => RED.sidebar.help.show(type), type);
      // The help tab: a title (the palette label) and the node's help HTML below it.
      const find = (label) => {
        const h1 = [...document.querySelectorAll('h1.red-ui-help-title')].find((h) => h.textContent === label && h.offsetParent !== null);
        const body = h1 && h1.parentElement.querySelector('div.red-ui-help');
        return body && body.querySelectorAll('p').length > 0 ? { text: body.textContent, h3: [...body.querySelectorAll('h3')].map((h) => h.textContent) } : null;
      };
      const help = await (await page.waitForFunction(find, { timeout: 15000 }, label)).jsonValue();
      assert.match(help.text, text);
      assert.ok(help.h3.includes('Details'), JSON.stringify(help.h3));
      assert.deepEqual(problems.slice(before), []);
    });
  }
});
