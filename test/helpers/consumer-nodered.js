'use strict';
/**
 * One fleet consumer: a Node-RED runtime (node-red-node-test-helper, this package's nodes, the
 * core switch node) in its own process, for the scale-out test and the fleet bench. Its flow is
 * what a user would run: tinyfer-fleet (MQTT 5, a shared-subscription group) -> tinyfer-devices
 * (emotions and frames) -> switch on msg.topic: emotions are recorded as they arrive, frames go
 * through tinyfer-emotion (the bundled binary model) and are recorded once classified.
 * The per-device frame rate limit is off (maxFrameRate 0): the tests and the bench drive devices
 * faster than its default 10 frames/s, and it is not what they measure.
 * Each record is one line appended synchronously to the record file, so a kill -9 loses nothing
 * the consumer had already recorded:
 *   E <device> <seq> <label>        an emotion message received
 *   F <device> <frameId> <emotion>  a frame classified
 * It answers the parent over IPC: 'ready' once the fleet connection is up and the broker has the
 * stream subscriptions; {cmd:'count'} -> {type:'count', emotions, frames, cpuS (CPU seconds used
 * so far)}; {cmd:'exit'} unloads the flow and exits.
 *   node test/helpers/consumer-nodered.js <broker url> <group> <client id> <record file> [prefix]
 * Under scripts/mocha-node22.sh (TINYFER_NODE_RED_MODULES set) it loads Node-RED 5 like mocha does.
 */
require('./node-red-runtime');
const fs = require('node:fs');
const path = require('node:path');
const helper = require('node-red-node-test-helper');

helper.init(require.resolve('node-red'));
const ROOT = path.resolve(__dirname, '..', '..');
const [url, group, clientId, recordFile, prefix = 'tinyfer'] = process.argv.slice(2);
if (!url || !group || !clientId || !recordFile) {
  console.error('usage: consumer-nodered.js <broker url> <group> <client id> <record file> [prefix]');
  process.exit(2);
}

const flow = [
  { id: 'tab', type: 'tab', label: 'consumer' },
  { id: 'fleet', type: 'tinyfer-fleet', url, clientId, prefix, protocolVersion: '5', sharedGroup: group, commandTimeout: 10, maxFrameRate: '0' },
  { id: 'devices', type: 'tinyfer-devices', z: 'tab', fleet: 'fleet', telemetry: false, emotion: true, frames: true, persist: false, wires: [['route']] },
  {
    id: 'route', type: 'switch', z: 'tab', property: 'topic', propertyType: 'msg', checkall: 'false', outputs: 2,
    rules: [{ t: 'eq', v: 'emotion', vt: 'str' }, { t: 'eq', v: 'frame', vt: 'str' }], wires: [['emotions'], ['classify']],
  },
  { id: 'emotions', type: 'helper', z: 'tab' },
  { id: 'classify', type: 'tinyfer-emotion', z: 'tab', filePaths: false, backend: 'binary', model: '', views: '1', smoothing: 'none', keyProperty: 'device.id', mode: 'whole', wires: [['frames']] },
  { id: 'frames', type: 'helper', z: 'tab' },
];

const fd = fs.openSync(recordFile, 'a');
const counts = { emotions: 0, frames: 0 };
const record = (line) => fs.writeSync(fd, line + '\n');

helper.startServer(async () => {
  const mods = ['tinyfer-fleet', 'tinyfer-devices', 'tinyfer-emotion'].map((n) => require(path.join(ROOT, 'nodes', `${n}.js`)));
  mods.push(require(path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core', 'function', '10-switch.js')));
  await helper.load(mods, flow);
  helper.getNode('emotions').on('input', (m) => {
    counts.emotions++;
    record(`E ${m.device.id} ${m.payload.seq} ${m.payload.label}`);
  });
  helper.getNode('frames').on('input', (m) => {
    if (!m.payload || typeof m.payload.emotion !== 'string') return; // no face: nothing classified
    counts.frames++;
    record(`F ${m.device.id} ${m.frameId} ${m.payload.emotion}`);
  });
  const manager = helper.getNode('fleet').manager;
  const waitSubscribed = () => new Promise((resolve) => {
    const check = () => (manager.conn.connected ? resolve() : setTimeout(check, 50));
    check();
  });
  await waitSubscribed();
  // The stream SUBSCRIBE went out on connect; the SUBACK of one more SUBSCRIBE sent after it
  // proves the broker has processed it (a broker handles a client's packets in order).
  await new Promise((resolve, reject) => {
    const c = manager.conn.client;
    const probe = `${prefix}/_probe/${clientId}`;
    c.subscribe(probe, { qos: 0 }, (err) => (err ? reject(err) : c.unsubscribe(probe, () => resolve())));
  });
  process.send({ type: 'ready' });
});

process.on('message', (m) => {
  if (m.cmd === 'count') { const u = process.cpuUsage(); process.send({ type: 'count', ...counts, cpuS: (u.user + u.system) / 1e6 }); }
  else if (m.cmd === 'exit') helper.unload().then(() => helper.stopServer(() => { fs.closeSync(fd); process.exit(0); }));
});
