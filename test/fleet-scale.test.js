'use strict';
/**
 * Scale-out on the broker (issue 21): two Node-RED processes in one MQTT 5 shared-subscription
 * group on a real Mosquitto split a virtual fleet's emotions (QoS 1) and frames (QoS 0, one chunk
 * each, so a frame is one message and reaches one consumer whole; docs/protocol.md §7).
 *  1. Both running: every emotion and every frame is received / classified exactly once across the
 *     two, and each consumer takes a share.
 *  2. A frame of several chunks is split between them and lost: why frames go as one chunk.
 *  3. One consumer is killed (SIGKILL) mid-run and the other takes over: every emotion and frame
 *     sent after the broker has dropped the dead consumer is handled at least once (duplicates
 *     counted); what was in flight to the dead one when it died is counted and reported as lost
 *     (Mosquitto 2.0 does not re-dispatch a dead member's messages to the rest of the group).
 * Each consumer appends what it handled to its own file (test/helpers/consumer-nodered.js).
 * No timing assertions: generous deadlines only.
 */
const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startMosquitto } = require('./helpers/mosquitto');
const { faces, requireMosquitto, waitFor } = require('./helpers/fleet');
const { Simulator, VirtualDevice } = require('../dist/fleet/simulator');

const GROUP = 'tinyfer-scale';
const DEVICES = 4;
const ROUNDS_BOTH = 40; // phase 1: 4 devices x 40 captures = 160 emotions + 160 frames
const ROUNDS_KILL = 40; // phase 2: at least this many rounds, at least 15 of them after the drop

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Read a consumer's record file: Map key -> count, for 'E' (emotions) and 'F' (frames). */
function readRecords(file) {
  const out = { E: new Map(), F: new Map() };
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([EF]) (\S+) (\d+) \S+$/.exec(line);
    if (!m) continue;
    const k = `${m[2]}/${m[3]}`;
    out[m[1]].set(k, (out[m[1]].get(k) || 0) + 1);
  }
  return out;
}

/** How often each key of `keys` was handled across the consumers' records of kind `kind`. */
function tally(keys, recs, kind) {
  const t = { sent: keys.length, once: 0, lost: 0, duplicated: 0, extraCopies: 0, byConsumer: recs.map(() => 0) };
  for (const k of keys) {
    let n = 0;
    recs.forEach((r, i) => { const c = r[kind].get(k) || 0; n += c; t.byConsumer[i] += c; });
    if (n === 0) t.lost++;
    else if (n === 1) t.once++;
    else { t.duplicated++; t.extraCopies += n - 1; }
  }
  return t;
}

const fmt = (t) => `sent ${t.sent}, once ${t.once}, lost ${t.lost}, duplicated ${t.duplicated} (+${t.extraCopies} copies), per consumer ${t.byConsumer.join(' / ')}`;

describe('fleet scale-out: two Node-RED consumers in one MQTT 5 shared group (real Mosquitto)', function () {
  this.timeout(600000);
  let broker, sim, dir;
  const consumers = [];

  function startConsumer(name) {
    const file = path.join(dir, `${name}.log`);
    const child = fork(path.join(__dirname, 'helpers', 'consumer-nodered.js'), [broker.url, GROUP, name, file], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const c = { name, file, child, stderr: '', exited: false };
    child.stderr.on('data', (d) => { c.stderr = (c.stderr + d).slice(-8000); });
    child.on('exit', () => { c.exited = true; });
    consumers.push(c);
    return new Promise((resolve, reject) => {
      child.once('message', (m) => (m.type === 'ready' ? resolve(c) : reject(new Error(JSON.stringify(m)))));
      child.once('exit', (code) => reject(new Error(`consumer ${name} exited (${code}) before it was ready: ${c.stderr}`)));
    });
  }

  before(async function () {
    requireMosquitto();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-scale-'));
    broker = await startMosquitto({ logNotice: true });
    await Promise.all([startConsumer('scale-c1'), startConsumer('scale-c2')]);
    // One chunk per frame (the faces are ~2 KB, the chunk size 16384): a frame is one message.
    sim = new Simulator({
      url: broker.url, count: DEVICES, idPrefix: 'cam-', faces: faces(4), telemetryIntervalMs: 3600000,
      config: { frames_enabled: true, capture_interval_ms: 3600000 }, // captures are driven by the test
    });
    await sim.start();
  });

  after(async function () {
    if (sim) await sim.stop().catch(() => undefined);
    for (const c of consumers) {
      if (c.exited) continue;
      c.child.send({ cmd: 'exit' });
      await new Promise((r) => { const t = setTimeout(() => { c.child.kill('SIGKILL'); r(); }, 5000); c.child.once('exit', () => { clearTimeout(t); r(); }); });
    }
    if (broker) await broker.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** One capture on every device (a frame, then its emotion); returns the keys sent. */
  async function round() {
    const sent = await Promise.all(sim.devices.map((d) => d.capture()));
    for (const s of sent) assert.ok(s, 'a device was not connected');
    return { emotions: sent.map((s) => `${s.deviceId}/${s.seq}`), frames: sent.map((s) => `${s.deviceId}/${s.frameId}`) };
  }

  /** Wait until every key is handled by some consumer; on a timeout say what is missing. */
  async function waitHandled(set, what) {
    try {
      await waitFor(() => handled(set.emotions, 'E') && handled(set.frames, 'F'), 180000, what);
    } catch (e) {
      const recs = consumers.map((c) => readRecords(c.file));
      throw new Error(`${e.message}\n emotions ${fmt(tally(set.emotions, recs, 'E'))}\n frames ${fmt(tally(set.frames, recs, 'F'))}\n` +
        consumers.map((c) => `${c.name}: ${c.stderr}`).join('\n'));
    }
  }

  const handled = (keys, kind) => {
    const recs = consumers.map((c) => readRecords(c.file));
    return keys.every((k) => recs.some((r) => r[kind].has(k)));
  };

  it('splits emotions and frames between the two, each handled exactly once', async function () {
    const emotions = [], frames = [];
    for (let i = 0; i < ROUNDS_BOTH; i++) {
      const r = await round();
      emotions.push(...r.emotions);
      frames.push(...r.frames);
      await sleep(25);
    }
    await waitHandled({ emotions, frames }, 'every emotion and frame handled by a consumer');
    await sleep(2000); // late duplicates, if any, would arrive now
    const recs = consumers.map((c) => readRecords(c.file));
    const e = tally(emotions, recs, 'E');
    const f = tally(frames, recs, 'F');
    console.log(`      both running: emotions ${fmt(e)}`);
    console.log(`      both running: frames   ${fmt(f)}`);
    assert.equal(e.once, emotions.length, `emotions: ${fmt(e)}`);
    assert.equal(f.once, frames.length, `frames: ${fmt(f)}`);
    for (const r of recs) assert.equal([...r.E.keys(), ...r.F.keys()].filter((k) => !k.startsWith('cam-')).length, 0);
    assert.equal(recs.reduce((n, r) => n + r.E.size, 0), emotions.length, 'no emotion outside those sent');
    assert.equal(recs.reduce((n, r) => n + r.F.size, 0), frames.length, 'no frame outside those sent');
    for (let i = 0; i < 2; i++) {
      assert.ok(e.byConsumer[i] > 0, `consumer ${i + 1} received no emotion: the group did not split them`);
      assert.ok(f.byConsumer[i] > 0, `consumer ${i + 1} classified no frame: the group did not split them`);
    }
  });

  it('a frame cut into several chunks is split between the two and lost (why devices send frames of up to 16 KiB as one chunk)', async function () {
    const big = new VirtualDevice({ url: broker.url, deviceId: 'cam-chunked', faces: faces(1), chunkBytes: 512, config: { frames_enabled: true, capture_interval_ms: 3600000 } });
    await big.start();
    const frames = [], emotions = [];
    try {
      for (let i = 0; i < 10; i++) {
        const s = await big.capture();
        frames.push(`${s.deviceId}/${s.frameId}`);
        emotions.push(`${s.deviceId}/${s.seq}`);
        await sleep(25);
      }
      // The emotions (one message each) all arrive; after them, any frame that was going to complete has.
      await waitHandled({ emotions, frames: [] }, 'the chunked device\'s emotions handled');
      await sleep(2000);
    } finally {
      await big.stop();
    }
    const chunks = Math.ceil(faces(1)[0].jpeg.length / 512);
    const f = tally(frames, consumers.map((c) => readRecords(c.file)), 'F');
    console.log(`      frames of ${chunks}+ chunks of 512 bytes: ${fmt(f)}`);
    assert.ok(chunks > 1);
    assert.ok(f.lost > 0, `every chunked frame reached one consumer whole: ${fmt(f)}`);
  });

  it('keeps going when one consumer is killed mid-run: at least once after the takeover, losses and duplicates counted', async function () {
    const [c1] = consumers;
    const before = { emotions: [], frames: [] }; // sent before the broker had dropped the dead consumer
    const after = { emotions: [], frames: [] }; // sent after it had
    const killAt = Math.floor(ROUNDS_KILL / 3);
    const phaseStart = readRecords(c1.file);
    let killed = false;
    let dropped = false;
    let c1Phase2 = 0;
    for (let i = 0, afterRounds = 0; i < ROUNDS_KILL || afterRounds < 15; i++) {
      if (i > 200) throw new Error(`the broker never dropped the killed consumer:\n${broker.log}`);
      if (!killed && i >= killAt) {
        // Mid-run: once the consumer has handled some of this phase's messages.
        const r = readRecords(c1.file);
        c1Phase2 = r.E.size - phaseStart.E.size;
        if (c1Phase2 > 0 || i > killAt + 50) {
          c1.child.kill('SIGKILL');
          killed = true;
        }
      }
      if (killed && !dropped) dropped = new RegExp(`(Client ${c1.name} |client ${c1.name},)`).test(broker.log);
      const target = dropped ? after : before;
      const r = await round();
      target.emotions.push(...r.emotions);
      target.frames.push(...r.frames);
      if (dropped) afterRounds++;
      await sleep(25);
    }
    await waitFor(() => c1.exited, 30000, 'the killed consumer to exit');
    await waitHandled(after, 'every emotion and frame sent after the takeover handled by the surviving consumer');
    await sleep(2000);
    const recs = consumers.map((c) => readRecords(c.file));
    // Phase 2 only: drop what phase 1 recorded (its keys are disjoint: seq and frame ids only grow).
    const eb = tally(before.emotions, recs, 'E'), fb = tally(before.frames, recs, 'F');
    const ea = tally(after.emotions, recs, 'E'), fa = tally(after.frames, recs, 'F');
    console.log(`      killed consumer 1 (SIGKILL) after it had received ${c1Phase2} of this phase's emotions; broker log: ${(broker.log.match(new RegExp(`[^\\n]*${c1.name}[^\\n]*(closed|disconnect)[^\\n]*`)) || ['?'])[0].trim()}`);
    console.log(`      sent before the broker dropped it: emotions ${fmt(eb)}`);
    console.log(`                                         frames   ${fmt(fb)}`);
    console.log(`      sent after (survivor alone):       emotions ${fmt(ea)}`);
    console.log(`                                         frames   ${fmt(fa)}`);
    assert.ok(c1Phase2 > 0, 'the consumer was killed mid-run, after handling some of this phase');
    // At least once for everything sent after the takeover, all of it by the survivor.
    assert.equal(ea.lost, 0, `emotions after the takeover: ${fmt(ea)}`);
    assert.equal(fa.lost, 0, `frames after the takeover: ${fmt(fa)}`);
    assert.equal(ea.byConsumer[0], 0, 'the dead consumer handled nothing after the broker dropped it');
  });
});
