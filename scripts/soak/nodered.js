'use strict';
/**
 * The Node-RED process of `npm run soak` (scripts/soak.js forks it with --expose-gc): Node-RED 4/5
 * as the demo runs it (this package's nodes, examples/fleet-demo.json with the broker URL filled in
 * by the demo's own demoFlow, file context), in a user dir of its own. Every sampling interval it
 * sends the parent one sample of ITS OWN process over IPC:
 *   rss, heapUsed, heapTotal, external, arrayBuffers (process.memoryUsage(), as found),
 *   newSpace, oldSpace (the V8 young and old generations' reserved sizes: heapTotal's steps),
 *   heapAfterGc (heapUsed right after a full GC: the figure that grows when something is kept),
 *   eld p50/p99/max (perf_hooks.monitorEventLoopDelay over the interval, ms),
 *   delivered (messages handed to a node, counted by an onReceive hook), framesClassified
 *   (results of tinyfer-emotion on the devices' frames), deviceEmotions, errors (catch node),
 *   cpu user/system ms.
 * With {cmd: 'heapSnapshot', file} it writes a V8 heap snapshot there (--heap-snapshots).
 * Nothing here is on a path a user's Node-RED runs: the hooks and the sampler live in this script.
 * Usage (from scripts/soak.js): fork(this, [JSON.stringify({ mqttUrl, userDir, sampleMs, model? })])
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const v8 = require('node:v8');

const REPO = path.resolve(__dirname, '..', '..');

async function main() {
  const cfg = JSON.parse(process.argv[2] || '{}');
  if (!cfg.mqttUrl || !cfg.userDir || !(cfg.sampleMs > 0)) throw new Error('soak/nodered: needs {mqttUrl, userDir, sampleMs}');
  if (typeof global.gc !== 'function') throw new Error('soak/nodered: run with --expose-gc (heapAfterGc needs it)');
  const { demoFlow, embeddedNodeRedSettings } = require(path.join(REPO, 'dist', 'demo', 'demo.js'));
  fs.mkdirSync(cfg.userDir, { recursive: true });
  const flow = demoFlow(path.join(REPO, 'examples', 'fleet-demo.json'), cfg.mqttUrl, cfg.model);
  fs.writeFileSync(path.join(cfg.userDir, 'flows.json'), JSON.stringify(flow, null, 2));

  const express = require('express');
  const RED = require('node-red');
  const app = express();
  const server = http.createServer(app);
  const settings = embeddedNodeRedSettings(cfg.userDir, 'tinyfer-soak');
  RED.init(server, settings);
  app.use(settings.httpAdminRoot, RED.httpAdmin);
  app.use(settings.httpNodeRoot, RED.httpNode);
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });

  const count = { delivered: 0, framesClassified: 0, deviceEmotions: 0, errors: 0 };
  let lastError = '';
  RED.hooks.add('onReceive.tinyferSoak', (ev) => {
    count.delivered++;
    const id = ev.destination.id;
    if (id === 'demo-nodered-emotions') count.framesClassified++;
    else if (id === 'demo-device-emotions') count.deviceEmotions++;
    else if (id === 'demo-errors') { count.errors++; lastError = String(ev.msg.error?.message ?? 'error'); }
  });
  await RED.start();

  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const t0 = Date.now();
  let cpu0 = process.cpuUsage();
  const sample = () => {
    const m = process.memoryUsage();
    const space = (name) => (v8.getHeapSpaceStatistics().find((x) => x.space_name === name) || { space_size: 0 }).space_size;
    const newSpace = space('new_space'), oldSpace = space('old_space');
    global.gc();
    const heapAfterGc = process.memoryUsage().heapUsed;
    const cpu = process.cpuUsage(cpu0);
    cpu0 = process.cpuUsage();
    const ms = (ns) => ns / 1e6;
    const s = {
      type: 'sample', t: (Date.now() - t0) / 1000,
      rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, newSpace, oldSpace, external: m.external, arrayBuffers: m.arrayBuffers, heapAfterGc,
      eldP50: ms(eld.percentile(50)), eldP99: ms(eld.percentile(99)), eldMax: ms(eld.max),
      ...count, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000, lastError,
    };
    eld.reset();
    for (const k of Object.keys(count)) count[k] = 0;
    lastError = '';
    process.send(s);
  };
  const timer = setInterval(sample, cfg.sampleMs);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    try { await RED.stop(); } finally { server.closeAllConnections(); server.close(() => process.exit(0)); }
  };
  process.on('message', (m) => {
    if (m && m.cmd === 'stop') stop();
    else if (m && m.cmd === 'heapSnapshot') {
      // --heap-snapshots: a V8 heap snapshot (after a full GC) for scripts/soak/heap-diff.js.
      global.gc();
      let file, error;
      try { file = v8.writeHeapSnapshot(m.file); } catch (e) { error = e.message; }
      process.send({ type: 'heapSnapshot', file, error });
    }
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
  process.send({ type: 'ready', pid: process.pid, editor: `http://127.0.0.1:${server.address().port}/`, node: process.version, nodeRed: RED.version() });
}

main().catch((e) => {
  if (process.send) process.send({ type: 'error', message: e.stack || String(e) });
  console.error(e);
  process.exit(1);
});
