'use strict';
// The fleet's Node-RED nodes in a real Node-RED runtime (node-red-node-test-helper) against a real
// Mosquitto broker and virtual devices: registry events and status, commands over MQTT 5 and
// 3.1.1, catchable errors, model updates from a file, context persistence, broker restarts.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const mqtt = require('mqtt');
const helper = require('node-red-node-test-helper');
const fleetNode = require('../nodes/tinyfer-fleet.js');
const devicesNode = require('../nodes/tinyfer-devices.js');
const commandNode = require('../nodes/tinyfer-command.js');
const { VirtualDevice } = require('../dist/fleet/simulator');
const { startMosquitto } = require('./helpers/mosquitto');
const { waitFor, faces: loadFaces, requireMosquitto } = require('./helpers/fleet');

helper.init(require.resolve('node-red'));
const NODES = [fleetNode, devicesNode, commandNode];

describe('fleet nodes: files', function () {
  for (const name of ['tinyfer-fleet', 'tinyfer-devices', 'tinyfer-command']) {
    it(`${name}: editor template, help with its sections, registration`, function () {
      const html = fs.readFileSync(path.join(__dirname, '..', 'nodes', `${name}.html`), 'utf8');
      assert.match(html, new RegExp(`registerType\\('${name}'`));
      assert.match(html, new RegExp(`data-template-name="${name}"`));
      assert.match(html, new RegExp(`data-help-name="${name}"`));
      assert.match(html, /<h3>Details<\/h3>/);
      if (name !== 'tinyfer-fleet') {
        assert.match(html, /<h3>Inputs<\/h3>/);
        assert.match(html, /<h3>Outputs<\/h3>/);
      }
    });
  }

  it('the example flows parse and use only known node types', function () {
    const dir = path.join(__dirname, '..', 'examples');
    const files = fs.readdirSync(dir).filter((f) => /^fleet-.*\.json$/.test(f));
    assert.ok(files.length >= 1, 'examples/fleet-*.json present');
    for (const f of files) {
      const flow = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      assert.ok(Array.isArray(flow) && flow.length > 0, f);
      const ids = new Set(flow.map((n) => n.id));
      for (const n of flow) {
        for (const wires of n.wires || []) for (const w of wires) assert.ok(ids.has(w), `${f}: ${n.id} wired to a missing node ${w}`);
        if (n.fleet) assert.ok(ids.has(n.fleet), `${f}: ${n.id} uses a missing fleet config`);
      }
      assert.ok(flow.some((n) => n.type === 'tinyfer-fleet'), `${f} has a tinyfer-fleet config node`);
    }
  });
});

describe('fleet nodes in Node-RED with a real broker', function () {
  this.timeout(20000);
  let broker;
  let faces;
  let n = 0;
  let prefix;
  const devices = [];
  const keys = crypto.generateKeyPairSync('ed25519');

  before(async function () {
    requireMosquitto();
    faces = loadFaces(3);
    broker = await startMosquitto({ tls: true, users: { fleet: 's3cret' } });
    await new Promise((r) => helper.startServer(r));
  });
  after(async function () {
    await new Promise((r) => helper.stopServer(r));
    if (broker) await broker.close();
  });
  beforeEach(function () {
    prefix = `nr${++n}`;
  });
  afterEach(async function () {
    await helper.unload();
    for (const d of devices.splice(0)) { if (d.connected) await d.stop(); else d.crash(); }
  });

  // A flow on one tab: every node but the config node sits on it with a position (without x/y Node-RED
  // takes a node for a config node: catch scopes and node context need real ones).
  const onTab = (nodes) => [{ id: 'tab', type: 'tab', label: 'fleet test' }, ...nodes.map((x) => (x.type === 'tinyfer-fleet' ? x : { z: 'tab', x: 100, y: 100, ...x }))];
  const fleetCfg = (extra = {}) => ({ id: 'fleet', type: 'tinyfer-fleet', url: broker.url, prefix, protocolVersion: '5', commandTimeout: 3, ...extra });
  async function device(id, opts = {}) {
    const d = new VirtualDevice({ url: broker.url, prefix, deviceId: id, faces, config: { capture_interval_ms: 100 }, telemetryIntervalMs: 150, modelKey: keys.publicKey, ...opts });
    devices.push(d);
    await d.start();
    return d;
  }
  // The helper spies on Node.prototype: keep the calls made by this node.
  const callsOf = (node, method) => node[method].getCalls().filter((c) => c.thisValue === node);
  const statusText = (node) => {
    const calls = callsOf(node, 'status');
    return calls.length ? calls[calls.length - 1].args[0].text : '';
  };

  it('tinyfer-devices emits online/telemetry/emotion/offline events and shows N online / M offline', async function () {
    const flow = [fleetCfg(), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', telemetry: true, emotion: true, frames: false, wires: [['out']] }, { id: 'out', type: 'helper' }];
    await helper.load(NODES, onTab(flow));
    const dev = helper.getNode('dev');
    const out = helper.getNode('out');
    const got = [];
    out.on('input', (msg) => got.push(msg));
    await waitFor(() => helper.getNode('fleet').manager.conn.connected, 5000, 'connected');
    const d = await device('nd-1');
    await waitFor(() => ['online', 'telemetry', 'emotion'].every((t) => got.some((m) => m.topic === t)), 5000, 'online, telemetry and emotion events');
    const em = got.find((m) => m.topic === 'emotion');
    assert.equal(em.device.id, 'nd-1');
    assert.ok(typeof em.payload.label === 'string' && em.payload.scores);
    await waitFor(() => statusText(dev) === '1 online / 0 offline', 3000, 'status 1 online');
    d.crash();
    await waitFor(() => got.some((m) => m.topic === 'offline'), 5000, 'offline event (last will)');
    await waitFor(() => statusText(dev) === '0 online / 1 offline', 3000, 'status 1 offline');
    // A query on the input lists the registry.
    dev.receive({});
    await waitFor(() => got.some((m) => m.topic === 'devices'), 2000, 'registry list');
    const list = got.find((m) => m.topic === 'devices');
    assert.deepEqual(list.payload.map((x) => [x.id, x.state]), [['nd-1', 'offline']]);
    assert.deepEqual(list.counts, { online: 0, offline: 1, invalid: 0, spoofed: 0, framesDropped: 0 });
  });

  it('bad device messages are counted in the status and warned about, once per kind', async function () {
    const flow = [fleetCfg(), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', telemetry: true, emotion: true, wires: [[]] }];
    await helper.load(NODES, onTab(flow));
    const dev = helper.getNode('dev');
    await waitFor(() => helper.getNode('fleet').manager.conn.connected, 5000, 'connected');
    const evil = mqtt.connect(broker.url);
    await new Promise((r) => evil.once('connect', r));
    for (let i = 0; i < 3; i++) await new Promise((r) => evil.publish(`${prefix}/bad-1/emotion`, '{"nope":1}', { qos: 1 }, r));
    await new Promise((r) => evil.publish(`${prefix}/bad-1/status`, 'x', { qos: 1 }, r));
    evil.end(true);
    await waitFor(() => /4 bad msgs/.test(statusText(dev)), 3000, 'status counts 4 bad messages');
    const warns = callsOf(dev, 'warn').map((c) => c.args[0]);
    assert.equal(warns.filter((w) => /bad emotion message from bad-1/.test(w)).length, 1);
    assert.equal(warns.filter((w) => /bad status message from bad-1/.test(w)).length, 1);
  });

  it('the status counts messages naming another device and frames over the fleet node\'s per-device rate', async function () {
    const flow = [fleetCfg({ maxFrameRate: '2' }), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', telemetry: false, emotion: true, frames: true, wires: [['out']] }, { id: 'out', type: 'helper' }];
    await helper.load(NODES, onTab(flow));
    const dev = helper.getNode('dev');
    const frames = [];
    helper.getNode('out').on('input', (msg) => { if (msg.topic === 'frame') frames.push(msg); });
    await waitFor(() => helper.getNode('fleet').manager.conn.connected, 5000, 'connected');
    const evil = mqtt.connect(broker.url);
    await new Promise((r) => evil.once('connect', r));
    const birth = { state: 'online', protocol: 1, firmware: 'x', model: 'x', capabilities: [] };
    await new Promise((r) => evil.publish(`${prefix}/cam-1/status`, JSON.stringify({ ...birth, device: 'cam-1' }), { qos: 1 }, r));
    await new Promise((r) => evil.publish(`${prefix}/cam-1/status`, JSON.stringify({ ...birth, device: 'cam-2' }), { qos: 1 }, r));
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), crypto.randomBytes(200)]);
    for (let i = 0; i < 8; i++) await new Promise((r) => evil.publish(`${prefix}/cam-1/frame`, jpeg, { qos: 1 }, r));
    evil.end(true);
    const reg = helper.getNode('fleet').manager.registry;
    await waitFor(() => frames.length + reg.counts().framesDropped === 8, 5000, 'all 8 frames seen');
    const c = reg.counts();
    assert.equal(c.spoofed, 1);
    assert.ok(frames.length >= 2 && frames.length <= 3, `${frames.length} frames through at 2/s`);
    // the status catches up within its 500 ms throttle
    const want = require('../dist/fleet/status').countsText(c);
    assert.ok(want.length <= 32 && want.includes(`${c.framesDropped} drop`), want);
    await waitFor(() => statusText(dev) === want, 3000, `status: ${statusText(dev)}, want ${want}`);
    // without drops there is room to name the spoofed message
    assert.equal(require('../dist/fleet/status').countsText({ ...c, framesDropped: 0 }), '1 on / 0 off / 1 bad (1 spoof)');
  });

  for (const pv of ['5', '4']) {
    it(`tinyfer-command: get_config / set_config to one, a list and all devices (MQTT ${pv === '5' ? '5' : '3.1.1'})`, async function () {
      const flow = [
        fleetCfg({ protocolVersion: pv }),
        { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] },
        { id: 'cmd', type: 'tinyfer-command', fleet: 'fleet', command: 'get_config', target: 'c-1', timeout: 3, wires: [['out']] },
        { id: 'out', type: 'helper' },
      ];
      await helper.load(NODES, onTab(flow));
      await device('c-1', { protocolVersion: Number(pv) });
      await device('c-2', { protocolVersion: Number(pv) });
      const fleet = helper.getNode('fleet');
      await waitFor(() => fleet.manager.registry.counts().online === 2, 5000, 'two devices online');
      const out = helper.getNode('out');
      const got = [];
      out.on('input', (msg) => got.push(msg));
      const cmd = helper.getNode('cmd');
      cmd.receive({});
      await waitFor(() => got.length === 1, 4000, 'one ack');
      assert.equal(got[0].device, 'c-1');
      assert.equal(got[0].topic, 'get_config');
      assert.equal(got[0].payload.frames_enabled, false);
      cmd.receive({ command: 'set_config', device: ['c-1', 'c-2'], payload: { jpeg_quality: 55 } });
      await waitFor(() => got.length === 3, 4000, 'two set_config acks');
      assert.deepEqual(got.slice(1).map((m) => [m.device, m.payload.jpeg_quality]).sort(), [['c-1', 55], ['c-2', 55]]);
      cmd.receive({ device: 'all' });
      await waitFor(() => got.length === 5, 4000, 'get_config from all');
      assert.deepEqual(got.slice(3).map((m) => m.payload.jpeg_quality), [55, 55]);
      // A device record, as tinyfer-devices outputs it, names its device.
      cmd.receive({ device: fleet.manager.registry.get('c-2') });
      await waitFor(() => got.length === 6, 4000, 'ack for a device record');
      assert.equal(got[5].device, 'c-2');
    });
  }

  it('tinyfer-command: timeouts and device errors reach a Catch node with msg.failed', async function () {
    const flow = [
      fleetCfg(),
      { id: 'cmd', type: 'tinyfer-command', fleet: 'fleet', command: 'snapshot', target: 'e-1, ghost', timeout: 0.5, wires: [['out']] },
      { id: 'out', type: 'helper' },
      { id: 'catch', type: 'catch', scope: ['cmd'], wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ];
    await helper.load(NODES, onTab(flow));
    await waitFor(() => helper.getNode('fleet').manager.conn.connected, 5000, 'connected');
    await device('e-1');
    const caught = [];
    helper.getNode('caught').on('input', (m) => caught.push(m));
    helper.getNode('cmd').receive({ payload: 'go' });
    await waitFor(() => caught.length === 1, 4000, 'caught error');
    const m = caught[0];
    assert.match(m.error.message, /2 of 2 devices failed/);
    assert.deepEqual(m.failed.map((f) => [f.device, f.code]), [['e-1', 'frames_disabled'], ['ghost', 'timeout']]);
    helper.getNode('cmd').receive({ command: 'launch' });
    await waitFor(() => caught.length === 2, 2000, 'unknown command caught');
    assert.match(caught[1].error.message, /unknown command "launch"/);
    helper.getNode('cmd').receive({ device: 'a/b' });
    await waitFor(() => caught.length === 3, 2000, 'bad device id caught');
    assert.match(caught[2].error.message, /invalid device id/);
  });

  /**
   * A tinyfer-command model_update flow to device `target`, signing with a key file: `makeMsg(dir)`
   * builds the input message (dir: a temporary folder for its files). Resolves to the ack message
   * and the simulated device.
   */
  async function modelUpdateAck(target, makeMsg) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-ota-'));
    const keyFile = path.join(dir, 'model-signing.pem');
    fs.writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const flow = [
      fleetCfg(),
      { id: 'cmd', type: 'tinyfer-command', fleet: 'fleet', command: 'model_update', target, timeout: 5, keyFile, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ];
    try {
      await helper.load(NODES, onTab(flow));
      await waitFor(() => helper.getNode('fleet').manager.conn.connected, 5000, 'connected');
      const d = await device(target);
      const got = [];
      helper.getNode('out').on('input', (m) => got.push(m));
      helper.getNode('cmd').receive(makeMsg(dir));
      await waitFor(() => got.length === 1, 6000, 'model_update ack');
      return { ack: got[0], device: d };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('tinyfer-command: model_update from a file path, signed with the configured key, acked with the active model', async function () {
    const blob = crypto.randomBytes(80 * 1024);
    const { ack, device: d } = await modelUpdateAck('m-1', (dir) => {
      const blobFile = path.join(dir, 'model.bin');
      fs.writeFileSync(blobFile, blob);
      return { payload: blobFile, version: 'fer-2024.2' };
    });
    assert.equal(ack.payload.model, 'fer-2024.2');
    assert.equal(ack.payload.sha256, crypto.createHash('sha256').update(blob).digest('hex'));
    assert.equal(d.model, 'fer-2024.2');
  });

  it('tinyfer-command: model_update takes a bundled model by name (tinyfer-b1: the package\'s blob; version: the name)', async function () {
    const { ack, device: d } = await modelUpdateAck('m-2', () => ({ payload: 'tinyfer-b1' }));
    const blob = fs.readFileSync(path.join(__dirname, '..', 'models', 'tinyfer-b1.tfer'));
    assert.equal(ack.payload.model, 'tinyfer-b1');
    assert.equal(ack.payload.sha256, crypto.createHash('sha256').update(blob).digest('hex'));
    assert.equal(d.model, 'tinyfer-b1');
  });

  it('the registry is kept in node context across a restart of the flows', async function () {
    // Node-RED drops node context on stop unless a context store is configured (as in the demo's settings).
    helper.settings({ contextStorage: { default: { module: 'memory' } } });
    const flow = [fleetCfg(), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', persist: true, wires: [['out']] }, { id: 'out', type: 'helper' }];
    try {
      await helper.load(NODES, onTab(flow));
      await helper._redNodes.loadContextsPlugin();
    } finally {
      helper.settings({ contextStorage: undefined });
    }
    await device('p-1');
    await waitFor(() => helper.getNode('fleet').manager && helper.getNode('fleet').manager.registry.counts().online === 1, 5000, 'online');
    const first = helper.getNode('fleet').manager.registry.get('p-1');
    await helper._redNodes.stopFlows();
    await helper._redNodes.startFlows();
    const fleet = helper.getNode('fleet');
    // Restored from context at start (same firstSeen), then confirmed by the retained status: still one device.
    const restored = fleet.manager.registry.get('p-1');
    assert.ok(restored, 'restored from context');
    assert.equal(restored.firstSeen, first.firstSeen);
    // Restored as unconfirmed (offline) until the retained status arrives, which fires a real
    // 'online' event: a flow acting on 'online' (e.g. turning frames on) works after a restart.
    assert.equal(restored.state, 'offline');
    const out = helper.getNode('out');
    const online = new Promise((resolve) => out.on('input', (m) => { if (m.topic === 'online' && m.device.id === 'p-1') resolve(m); }));
    await waitFor(() => fleet.manager.conn.connected, 5000, 'reconnected');
    await waitFor(() => fleet.manager.registry.get('p-1').messages > restored.messages, 5000, 'the retained status arrived');
    assert.equal(fleet.manager.registry.size, 1);
    assert.equal(fleet.manager.registry.get('p-1').state, 'online');
    const ev = await online;
    assert.equal(ev.device.firstSeen, first.firstSeen);
  });

  it('nodes reconnect after a broker restart and keep one record per device', async function () {
    const flow = [fleetCfg(), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] }];
    await helper.load(NODES, onTab(flow));
    const fleet = helper.getNode('fleet');
    const dev = helper.getNode('dev');
    await device('r-1', { reconnectPeriodMs: 200 });
    await device('r-2', { reconnectPeriodMs: 200 });
    await waitFor(() => statusText(dev) === '2 online / 0 offline', 5000, 'two online');
    await broker.restart();
    await waitFor(() => fleet.manager.conn.connects >= 2 && fleet.manager.conn.connected, 10000, 'fleet reconnected');
    await waitFor(() => devices.every((d) => d.connected), 10000, 'devices reconnected');
    await waitFor(() => statusText(dev) === '2 online / 0 offline', 5000, 'status back to two online');
    assert.equal(fleet.manager.registry.size, 2);
  });

  it('examples/fleet-basic.json loads and runs: inject get_config to all devices, acks reach the debug node', async function () {
    const core = (f) => require(require.resolve(`@node-red/nodes/core/${f}`, { paths: [path.dirname(require.resolve('node-red'))] }));
    const flow = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'examples', 'fleet-basic.json'), 'utf8'))
      .map((x) => (x.type === 'tinyfer-fleet' ? { ...x, url: broker.url, prefix } : x));
    await helper.load([...NODES, core('common/20-inject.js'), core('common/21-debug.js')], flow);
    await device('ex-1');
    const fleet = helper.getNode('fb-fleet');
    await waitFor(() => fleet.manager && fleet.manager.registry.counts().online === 1, 5000, 'device online');
    const acks = [];
    helper.getNode('fb-acks').on('input', (m) => acks.push(m));
    helper.getNode('fb-get').receive({ device: 'all' });
    await waitFor(() => acks.length === 1, 4000, 'ack at the debug node');
    assert.equal(acks[0].device, 'ex-1');
    assert.equal(acks[0].payload.capture_interval_ms, 100);
  });

  it('tinyfer-fleet with Home Assistant: the model key file turns install on; an unreadable one turns it off, says why and logs it', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-ha-key-'));
    const keyFile = path.join(dir, 'model-key.pem');
    fs.writeFileSync(keyFile, keys.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const dp = `${prefix}-ha`;
    const ha = mqtt.connect(broker.url);
    const configs = new Map();
    ha.on('message', (topic, payload) => { if (payload.length) configs.set(topic, JSON.parse(payload)); });
    await new Promise((r) => ha.once('connect', r));
    await new Promise((r) => ha.subscribe(`${dp}/update/+/config`, { qos: 1 }, r));
    try {
      const flow = (extra) => onTab([fleetCfg({ homeAssistant: true, discoveryPrefix: dp, haImageInterval: '0', ...extra }), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] }]);
      await helper.load(NODES, flow({ modelKeyFile: keyFile }));
      await device('ha-n1');
      const topic = `${dp}/update/ha-n1_model/config`;
      await waitFor(() => configs.get(topic), 5000, 'update entity config');
      assert.equal(configs.get(topic).command_topic, `${prefix}/_ha/ha-n1/model/install`);
      assert.equal(helper.getNode('fleet').manager.homeAssistant.imageIntervalMs, 0);
      await helper.unload();
      configs.clear();
      await helper.load(NODES, flow({ modelKeyFile: path.join(dir, 'missing.pem') }));
      await waitFor(() => configs.get(topic), 5000, 'update entity config again');
      assert.equal(configs.get(topic).command_topic, undefined);
      assert.match(configs.get(topic).release_summary, /model signing key file cannot be read \(ENOENT\)/);
      assert.ok(callsOf(helper.getNode('fleet'), 'error').some((c) => /Home Assistant model install is off: cannot read the model signing key/.test(c.args[0])));
    } finally {
      ha.end(true);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tinyfer-fleet logs in with its Node-RED credentials (and is refused with wrong ones)', async function () {
    const flow = [fleetCfg({ url: broker.authUrl }), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] }];
    await helper.load(NODES, onTab(flow), { fleet: { user: 'fleet', password: 's3cret' } });
    const fleet = helper.getNode('fleet');
    await device('cr-1');
    await waitFor(() => fleet.manager.registry.get('cr-1')?.state === 'online', 5000, 'device seen with credentials');
    await helper.unload();
    await helper.load(NODES, onTab(flow), { fleet: { user: 'fleet', password: 'wrong' } });
    const refused = helper.getNode('fleet');
    await waitFor(() => refused.manager.conn.lastError, 3000, 'refused');
    assert.match(refused.manager.conn.lastError.message, /Not authorized/);
    await waitFor(() => statusText(helper.getNode('dev')) === 'broker refused: not authorized', 3000, 'the reason in the status');
    assert.ok(callsOf(refused, 'error').some((c) => /Not authorized/.test(c.args[0])), 'the full error goes to node.error');
  });

  // Why the connection is down, in the status of the fleet's users (<= 32 characters), the full error once in node.error.
  async function failing(fleetExtra, what) {
    const flow = [
      fleetCfg(fleetExtra),
      { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] },
      { id: 'cmd', type: 'tinyfer-command', fleet: 'fleet', command: 'get_config', timeout: 1, wires: [[]] },
    ];
    await helper.load(NODES, onTab(flow));
    const fleet = helper.getNode('fleet');
    await waitFor(() => statusText(helper.getNode('dev')) === what && statusText(helper.getNode('cmd')) === what, 6000,
      `status "${what}" (have "${statusText(helper.getNode('dev'))}" / "${statusText(helper.getNode('cmd'))}")`);
    assert.ok(what.length <= 32);
    return fleet;
  }

  it('a closed port: "no broker at host:port" in the users\' status, ECONNREFUSED once in node.error (not at every retry)', async function () {
    const port = await new Promise((r) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
    const fleet = await failing({ url: `mqtt://127.0.0.1:${port}` }, `no broker at 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 2500)); // a retry or two (reconnect period 2 s)
    const errors = callsOf(fleet, 'error').map((c) => c.args[0]);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], new RegExp(`^mqtt mqtt://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  });

  it('TLS with a server certificate the fleet does not trust: "TLS: certificate not trusted"', async function () {
    await failing({ url: broker.tlsUrl, usetls: false }, 'TLS: certificate not trusted');
  });

  it('a broker that only speaks 3.1.1 (aedes) with a shared group (MQTT 5 needed, no fallback): "broker refused: MQTT version"', async function () {
    const { Aedes } = require('aedes');
    const aedes = await Aedes.createBroker();
    const server = net.createServer(aedes.handle);
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      const fleet = await failing({ url: `mqtt://127.0.0.1:${server.address().port}`, sharedGroup: 'g1' }, 'broker refused: MQTT version');
      assert.equal(fleet.manager.conn.fellBack, false);
      assert.ok(callsOf(fleet, 'error').some((c) => /Unacceptable protocol version/.test(c.args[0])));
    } finally {
      await helper.unload();
      await new Promise((r) => server.close(() => aedes.close(r)));
    }
  });

  it('tinyfer-command with no online device for "all": a whole short status, the full sentence to done(err)', async function () {
    const flow = [
      fleetCfg(),
      { id: 'cmd', type: 'tinyfer-command', fleet: 'fleet', command: 'get_config', timeout: 1, wires: [[]] },
      { id: 'catch', type: 'catch', scope: ['cmd'], wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ];
    await helper.load(NODES, onTab(flow));
    await waitFor(() => helper.getNode('fleet').manager.conn.connected, 5000, 'connected');
    const caught = [];
    helper.getNode('caught').on('input', (m) => caught.push(m));
    helper.getNode('cmd').receive({ device: 'all' });
    await waitFor(() => caught.length === 1, 3000, 'caught');
    assert.match(caught[0].error.message, /no online devices for "all"/);
    assert.equal(statusText(helper.getNode('cmd')), 'no online devices');
  });

  it('refuses settings outside the ranges the editor enforces (timeouts), naming the setting in the status', async function () {
    const flow = [
      fleetCfg({ commandTimeout: -5 }),
      { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] },
      { id: 'cmd', type: 'tinyfer-command', fleet: 'fleet', command: 'get_config', timeout: '-5', wires: [[]] },
      { id: 'cmd2', type: 'tinyfer-command', fleet: 'fleet', command: 'no_such', wires: [[]] },
    ];
    await helper.load(NODES, onTab(flow));
    assert.ok(callsOf(helper.getNode('fleet'), 'error').some((c) => /commandTimeout must be in \(0, 3600\], got -5/.test(c.args[0])));
    assert.equal(statusText(helper.getNode('dev')), 'bad setting: commandTimeout');
    assert.equal(statusText(helper.getNode('cmd')), 'bad setting: timeout');
    assert.equal(statusText(helper.getNode('cmd2')), 'bad setting: command');
    assert.ok(callsOf(helper.getNode('cmd'), 'error').some((c) => /timeout must be in \(0, 3600\], got "-5"/.test(c.args[0])));
  });

  it('a fleet with a bad URL reports it, and its users fail their input with a catchable error', async function () {
    const flow = [
      fleetCfg({ url: 'http://nope' }),
      { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] },
      { id: 'catch', type: 'catch', scope: ['dev'], wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ];
    await helper.load(NODES, onTab(flow));
    const caught = [];
    helper.getNode('caught').on('input', (m) => caught.push(m));
    helper.getNode('dev').receive({});
    await waitFor(() => caught.length === 1, 2000, 'caught');
    assert.match(caught[0].error.message, /not configured correctly/);
    assert.ok(callsOf(helper.getNode('fleet'), 'error').some((c) => /broker url must be/.test(c.args[0])));
    assert.equal(statusText(helper.getNode('dev')), 'bad broker URL');
  });

  it('close releases the connection', async function () {
    const flow = [fleetCfg(), { id: 'dev', type: 'tinyfer-devices', fleet: 'fleet', wires: [[]] }];
    await helper.load(NODES, onTab(flow));
    const fleet = helper.getNode('fleet');
    await waitFor(() => fleet.manager.conn.connected, 5000, 'connected');
    const conn = fleet.manager.conn;
    await helper.unload();
    assert.equal(conn.state, 'closed');
    assert.equal(conn.client.connected, false);
  });
});
