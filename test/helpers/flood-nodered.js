'use strict';
/**
 * A Node-RED runtime (node-red-node-test-helper, this package's nodes, the core switch node) in
 * its own process, for the frame flood test: tinyfer-fleet -> tinyfer-devices (frames) -> switch
 * (frames only) -> tinyfer-emotion. It samples its own RSS every 20 ms and answers the parent over
 * IPC: 'ready' once the flow runs, then on {cmd:'baseline'} / {cmd:'report'} the numbers.
 *   node test/helpers/flood-nodered.js <broker url>
 */
const path = require('node:path');
const helper = require('node-red-node-test-helper');

helper.init(require.resolve('node-red'));
const ROOT = path.resolve(__dirname, '..', '..');
const url = process.argv[2];

const flow = [
  { id: 'tab', type: 'tab', label: 'flood' },
  { id: 'fleet', type: 'tinyfer-fleet', url, prefix: 'tinyfer', protocolVersion: '5', commandTimeout: 10 },
  { id: 'devices', type: 'tinyfer-devices', z: 'tab', fleet: 'fleet', telemetry: false, emotion: false, frames: true, persist: false, wires: [['frames']] },
  { id: 'frames', type: 'switch', z: 'tab', property: 'topic', propertyType: 'msg', rules: [{ t: 'eq', v: 'frame', vt: 'str' }], checkall: 'false', outputs: 1, wires: [['emotion']] },
  { id: 'emotion', type: 'tinyfer-emotion', z: 'tab', filePaths: false, backend: 'binary', model: '', views: '1', smoothing: 'none', keyProperty: 'device.id', mode: 'whole', wires: [['out']] },
  { id: 'out', type: 'helper', z: 'tab' },
];

let peak = 0;
let sample = () => { const r = process.memoryUsage().rss; if (r > peak) peak = r; };
setInterval(sample, 20).unref();
const classified = {};

helper.startServer(async () => {
  const mods = ['tinyfer-fleet', 'tinyfer-devices', 'tinyfer-emotion'].map((n) => require(path.join(ROOT, 'nodes', `${n}.js`)));
  mods.push(require(path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core', 'function', '10-switch.js')));
  await helper.load(mods, flow);
  helper.getNode('out').on('input', (m) => {
    if (m.payload && typeof m.payload.emotion === 'string') classified[m.device.id] = (classified[m.device.id] || 0) + 1;
  });
  process.send({ type: 'ready' });
});

process.on('message', (m) => {
  const fleet = helper.getNode('fleet');
  const reg = fleet && fleet.manager && fleet.manager.registry;
  if (m.cmd === 'baseline') {
    sample();
    peak = process.memoryUsage().rss;
    process.send({ type: 'baseline', rss: peak, classified: { ...classified } });
  } else if (m.cmd === 'report') {
    sample();
    const f = reg.frames;
    process.send({
      type: 'report', peakRss: peak, rss: process.memoryUsage().rss, classified: { ...classified },
      assembler: { pending: f.pending, pendingBytes: f.pendingBytes, maxPendingBytes: f.maxPendingBytes, evicted: f.evicted, expired: f.expired },
      devices: reg.size, counts: reg.counts(),
    });
  } else if (m.cmd === 'exit') {
    helper.unload().then(() => helper.stopServer(() => process.exit(0)));
  }
});
