/**
 * tinyfer-frame fed faster than it processes, its input queue side by side: a camera sending
 * 640x480 JPEG frames (a JAFFE face on sensor noise, ~160 KB, a fresh Buffer each, as an
 * `mqtt in` node makes them) at --fps (default 100: faster than one node processes them on the
 * machine this was written on, ~30 a second; choose a rate above what yours does) for --seconds
 * into one tinyfer-frame node (Node-RED via node-red-node-test-helper, in this process), once per
 * queue setting, same frames:
 *
 *   queueSize 10000 (as good as no limit for this feed: what the node did before the setting),
 *   the default (100, drop oldest), 10 drop oldest, 10 drop newest, 2 drop oldest.
 *
 * Per setting: frames sent / processed / dropped, processed frames a second, how old a frame is
 * when its result comes out (send -> output: p50, p95, max), how long the node is still busy
 * after the camera stops, and the peak growth of heap + external memory (after a full GC,
 * sampled every 250 ms) over the idle node before the feed.
 *
 *   npm run bench:queue [-- --fps 100 --seconds 10 --json]
 */
'use strict';
const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');
const sharp = require('sharp');
const helper = require('node-red-node-test-helper');
const { parseArgs } = require('node:util');
const { dataRoot } = require('../test/helpers/data');

v8.setFlagsFromString('--expose-gc');
const gc = global.gc || vm.runInNewContext('gc');

const { values: args } = parseArgs({ options: { fps: { type: 'string', default: '100' }, seconds: { type: 'string', default: '10' }, json: { type: 'boolean', default: false } } });
const FPS = Number(args.fps);
const SECONDS = Number(args.seconds);
if (!(FPS > 0 && FPS <= 1000) || !(SECONDS > 0 && SECONDS <= 600)) throw new RangeError('--fps must be in (0, 1000] and --seconds in (0, 600]');

const SETTINGS = [
  { label: 'queueSize 10000 (no limit)', queueSize: 10000, queueDrop: 'oldest' },
  { label: 'default: 100, drop oldest', queueSize: '', queueDrop: '' },
  { label: '10, drop oldest', queueSize: 10, queueDrop: 'oldest' },
  { label: '10, drop newest', queueSize: 10, queueDrop: 'newest' },
  { label: '2, drop oldest', queueSize: 2, queueDrop: 'oldest' },
];

helper.init(require.resolve('node-red'));
const frameNode = require(path.join(__dirname, '..', 'nodes', 'tinyfer-frame.js'));

function liveBytes() {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** The test helper's spies keep every call (and so every message) they see: clear them. */
function clearSpies() {
  (helper._sandbox || helper.log()).resetHistory();
}

const pct = (xs, p) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);

async function camera() {
  const dir = path.join(dataRoot(), 'jaffe', 'happy');
  const file = path.join(dir, require('node:fs').readdirSync(dir).filter((f) => !f.startsWith('.')).sort()[0]);
  const face = await sharp(file).toColourspace('srgb').removeAlpha().png().toBuffer();
  const noise = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 24 } } }).png().toBuffer();
  return sharp(noise).composite([{ input: face, left: 200, top: 110 }]).jpeg({ quality: 92 }).toBuffer();
}

async function run(jpeg, setting) {
  const at = { z: 'tab', x: 100, y: 100 };
  await helper.load(frameNode, [
    { id: 'tab', type: 'tab', label: 'queue bench' },
    { id: 'frame', type: 'tinyfer-frame', ...at, queueSize: setting.queueSize, queueDrop: setting.queueDrop, wires: [['out']] },
    { id: 'out', type: 'helper', ...at },
  ]);
  const node = helper.getNode('frame');
  const ages = [];
  let outs = 0;
  helper.getNode('out').on('input', (m) => { outs++; if (m.sentAt) ages.push(Date.now() - m.sentAt); });
  // warm up: the detector thread loaded
  node.receive({ payload: Buffer.from(jpeg) });
  while (outs < 1) await new Promise((r) => setTimeout(r, 20));
  clearSpies();
  const base = liveBytes();
  let peak = 0;
  const sampler = setInterval(() => { clearSpies(); peak = Math.max(peak, liveBytes() - base); }, 250);
  const total = Math.round(FPS * SECONDS);
  const t0 = Date.now();
  let sent = 0;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      // as many frames as the camera has made by now (timers run late on a busy loop; the camera does not wait)
      const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * FPS) + 1);
      while (sent < due) { node.receive({ payload: Buffer.from(jpeg), sentAt: Date.now(), seq: sent++ }); }
      if (sent >= total) { clearInterval(tick); resolve(); }
    }, 1000 / FPS);
  });
  const tFeed = Date.now();
  while (node.queueStats().busy || node.queueStats().waiting) await new Promise((r) => setTimeout(r, 20));
  const tEnd = Date.now();
  clearInterval(sampler);
  clearSpies();
  peak = Math.max(peak, liveBytes() - base);
  const s = node.queueStats();
  await helper.unload();
  ages.sort((a, b) => a - b);
  return {
    setting: setting.label,
    sent: total,
    processed: ages.length,
    dropped: s.dropped,
    maxWaiting: s.maxWaitingSeen,
    processedPerS: ages.length / ((tEnd - t0) / 1000),
    ageMs: { p50: pct(ages, 50), p95: pct(ages, 95), max: ages[ages.length - 1] },
    drainS: (tEnd - tFeed) / 1000,
    peakGrowthMb: peak / 2 ** 20,
  };
}

async function main() {
  const jpeg = await camera();
  const rows = [];
  for (const s of SETTINGS) rows.push(await run(jpeg, s));
  if (args.json) {
    console.log(JSON.stringify({ fps: FPS, seconds: SECONDS, frameBytes: jpeg.length, rows }, null, 2));
    return;
  }
  console.log(`tinyfer-frame input queue: ${FPS} fps x ${SECONDS} s of ${(jpeg.length / 1024).toFixed(0)} KB 640x480 JPEG frames (${((FPS * SECONDS * jpeg.length) / 2 ** 20).toFixed(0)} MB)\n`);
  const head = ['queue', 'sent', 'processed', 'dropped', 'max waiting', 'processed/s', 'age p50 ms', 'age p95 ms', 'age max ms', 'busy after s', 'mem peak MB'];
  const table = rows.map((r) => [r.setting, r.sent, r.processed, r.dropped, r.maxWaiting, r.processedPerS.toFixed(1), r.ageMs.p50, r.ageMs.p95, r.ageMs.max, r.drainS.toFixed(1), r.peakGrowthMb.toFixed(1)].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  for (const r of [head, ...table]) console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
