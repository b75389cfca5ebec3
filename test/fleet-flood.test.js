'use strict';
/**
 * Node-RED side defence in depth (issue 19), with no broker policy: 10,000 made-up device ids
 * each start a chunked "1 MiB frame" with one small chunk (10 GiB of reassembly buffers if every
 * one were kept). The Node-RED process (its own, so its memory is its own) must stay within the
 * stated bound over its RSS before the flood, hold at most the global cap in partial frames, and
 * keep classifying a real device's frames during and after the flood.
 */
const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
const path = require('node:path');
const mqtt = require('mqtt');
const { startMosquitto } = require('./helpers/mosquitto');
const { faces, requireMosquitto } = require('./helpers/fleet');
const { VirtualDevice } = require('../dist/fleet/simulator');
const { encodeChunk, DEFAULT_MAX_PENDING_BYTES } = require('../dist/fleet/protocol');

/** The stated bound: the Node-RED process's RSS grows by less than this under the flood. */
const MEMORY_BOUND_MB = 64;
const FAKE_IDS = 10000;

describe('fleet: a flood of 10,000 made-up device ids (Node-RED side, no broker policy)', function () {
  this.timeout(120000);
  let broker, child, device, flooder;
  const replies = [];

  function ask(cmd, type) {
    return new Promise((resolve) => {
      const on = (m) => { if (m.type === type) { child.off('message', on); resolve(m); } };
      child.on('message', on);
      child.send({ cmd });
    });
  }

  before(async function () {
    requireMosquitto();
    broker = await startMosquitto();
    child = fork(path.join(__dirname, 'helpers', 'flood-nodered.js'), [broker.url], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr.on('data', (d) => replies.push(String(d)));
    await new Promise((resolve, reject) => {
      child.once('message', (m) => (m.type === 'ready' ? resolve() : reject(new Error(JSON.stringify(m)))));
      child.once('exit', (c) => reject(new Error(`Node-RED process exited ${c}: ${replies.join('')}`)));
    });
  });

  after(async function () {
    if (flooder) flooder.end(true);
    if (device) await device.stop();
    if (child && child.exitCode === null) {
      child.send({ cmd: 'exit' });
      await new Promise((r) => { const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
    }
    if (broker) await broker.close();
  });

  it(`stays within ${MEMORY_BOUND_MB} MiB of extra RSS and keeps classifying the real device's frames`, async function () {
    device = new VirtualDevice({ url: broker.url, deviceId: 'cam-real', faces: faces(2), chunkBytes: 512, config: { frames_enabled: true, capture_interval_ms: 200 } });
    await device.start();
    const realCount = async () => ((await ask('report', 'report')).classified['cam-real'] || 0);
    for (let t0 = Date.now(); (await realCount()) < 3; ) {
      if (Date.now() - t0 > 30000) throw new Error('the real device\'s frames never reached tinyfer-emotion');
      await new Promise((r) => setTimeout(r, 200));
    }
    const base = await ask('baseline', 'baseline');
    const before = base.classified['cam-real'];

    // The flood: each made-up id announces a 1 MiB frame in 1024 chunks and sends only the first.
    flooder = mqtt.connect(broker.url, { clientId: 'flooder', protocolVersion: 5 });
    await new Promise((r) => flooder.once('connect', r));
    const data = Buffer.alloc(1024, 0xab);
    const t0 = Date.now();
    for (let i = 0; i < FAKE_IDS; i++) {
      const chunk = encodeChunk({ id: i, index: 0, count: 1024, total: 1024 * 1024, offset: 0 }, data);
      flooder.publish(`tinyfer/fake-${String(i).padStart(5, '0')}/frame/chunk`, chunk, { qos: 0 });
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => flooder.publish('tinyfer/fake-end/frame/chunk', encodeChunk({ id: 1, index: 0, count: 2, total: 2048, offset: 0 }, data), { qos: 1 }, r));
    const floodMs = Date.now() - t0;

    // Node-RED took the whole flood (it evicted almost all of it) and still classifies the real device.
    let rep;
    for (let t1 = Date.now(); ; ) {
      rep = await ask('report', 'report');
      if (rep.assembler.evicted + rep.assembler.expired >= FAKE_IDS - 300 && (rep.classified['cam-real'] || 0) >= before + 5) break;
      if (Date.now() - t1 > 60000) throw new Error(`flood not absorbed / real frames stopped: ${JSON.stringify(rep)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const grownMb = (rep.peakRss - base.rss) / (1024 * 1024);
    console.log(`      flood of ${FAKE_IDS} ids sent in ${floodMs} ms; Node-RED RSS ${(base.rss / 1048576).toFixed(1)} MiB before, peak ${(rep.peakRss / 1048576).toFixed(1)} MiB (+${grownMb.toFixed(1)} MiB, bound ${MEMORY_BOUND_MB}); ` +
      `partials held ${rep.assembler.pending} (${(rep.assembler.pendingBytes / 1048576).toFixed(1)} MiB of a ${rep.assembler.maxPendingBytes / 1048576} MiB cap), evicted ${rep.assembler.evicted}, expired ${rep.assembler.expired}; ` +
      `real device frames classified ${before} -> ${rep.classified['cam-real']}; device records ${rep.devices}`);
    assert.ok(grownMb < MEMORY_BOUND_MB, `RSS grew ${grownMb.toFixed(1)} MiB`);
    assert.ok(rep.assembler.pendingBytes <= DEFAULT_MAX_PENDING_BYTES);
    assert.equal(rep.devices, 1, 'made-up ids leave no device records');
    assert.equal(Object.keys(rep.classified).join(), 'cam-real');
  });
});
