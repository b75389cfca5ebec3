/**
 * Face detectors side by side, on the same frames (bench/detect-frames.js), in one run:
 *   device  the firmware's C detector (firmware/app/src/detect.c) in the host build:
 *           build/host/tinyfer-detect: detect -> tfa_crop_gray48 -> tfr_classify, the path
 *           tinyfer-device and the XIAO run;
 *   node    the tinyfer-frame pipeline: BlazeFace (src/vision/detector.ts, default options,
 *           main-thread runtime) -> landmark-framed crop -> the bundled binary model (wasm).
 * Both classify with the bundled default model (models/tinyfer-b1.tfer).
 *
 *   npm run bench:detect            (= npm run build && node bench/detect.js)
 *   node bench/detect.js [--per-source 48] [--json] [--keep DIR]
 *
 * Figures: detection rate (a box with IoU >= 0.5 with the placed face square), false boxes per
 * frame (boxes matching no face; face frames and blank/noise frames apart), the emotion of the
 * two pipelines on the face both found (agreement), and each one's agreement with the dataset
 * label. BlazeFace's box is a face rectangle, not the FER-framed square the ground truth is;
 * its IoU is given for its box and for the square it crops (landmark framing), and a face counts
 * as found by Node when either matches. Host time per frame: device detector (C, -O2, one
 * core) and BlazeFace (tfjs-node). Device cost: multiply-accumulates per frame counted by the
 * detector itself (tfa_detect_stats).
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { buildDetectFrames, writeDetectFrames, EVAL_SEED, HELD_OUT_JAFFE } = require('./detect-frames');
const { iou } = require('../dist/vision/detector');

const ROOT = path.resolve(__dirname, '..');
const IOU = 0.5;

function parseArgs(argv) {
  const a = { perSource: 48, json: false, keep: '' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--per-source') a.perSource = Number(argv[++i]);
    else if (argv[i] === '--json') a.json = true;
    else if (argv[i] === '--keep') a.keep = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return a;
}

const LABEL_OF = { angry: 'angry', disgust: 'disgust', fear: 'fear', happy: 'happy', sad: 'sad', surprise: 'surprise', neutral: 'neutral' };

function ensureTool() {
  const bin = path.join(ROOT, process.env.TINYFER_HOST_BUILD || 'build/host', 'tinyfer-detect');
  if (!fs.existsSync(bin)) execFileSync('bash', [path.join(ROOT, 'scripts', 'build-host-device.sh')], { cwd: ROOT, stdio: 'inherit' });
  return bin;
}

async function runNode(frames, files) {
  const { frameOptions, findFaces } = require('../dist/vision/pipeline');
  const { decodeFrame } = require('../dist/vision/decode');
  const { landmarkSquare } = require('../dist/vision/crop');
  const { BinaryEngine } = require('../dist/engine/binary');
  const { DEFAULT_MODEL_BLOB } = require('../dist/engine/open');
  const { LABELS } = require('../dist/model/labels');
  const engine = await BinaryEngine.load(fs.readFileSync(DEFAULT_MODEL_BLOB));
  const opts = frameOptions({ detectorRuntime: 'main' });
  const out = [];
  // warm-up (kernel compilation)
  await findFaces(await decodeFrame(fs.readFileSync(files[0]), opts), opts);
  for (let i = 0; i < frames.length; i++) {
    const frame = await decodeFrame(fs.readFileSync(files[i]), opts);
    const t0 = process.hrtime.bigint();
    const { faces } = await findFaces(frame, opts);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const scores = faces.length ? await engine.classify(faces.map((f) => f.pixels)) : [];
    out.push({
      ms,
      faces: faces.map((f, k) => {
        const sq = (f.landmarks && landmarkSquare(f.landmarks, 0, f.box)) || null;
        const s = Array.from(scores[k]);
        return { box: f.box, square: sq ? { x: sq.x, y: sq.y, w: sq.side, h: sq.side } : f.box, label: LABELS[s.indexOf(Math.max(...s))] };
      }),
    });
  }
  engine.dispose();
  return out;
}

function runDevice(bin, files) {
  const { DEFAULT_MODEL_BLOB } = require('../dist/engine/open');
  const lines = execFileSync(bin, ['--model', DEFAULT_MODEL_BLOB, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n');
  return lines.map((l) => {
    const r = JSON.parse(l);
    return { us: r.detect_us, stats: r.stats, faces: r.faces.map((f) => ({ box: { x: f.x, y: f.y, w: f.w, h: f.h }, label: f.label })) };
  });
}

/** Per group of frames: detection rate, false boxes, emotion labels. */
function score(frames, dev, node) {
  const groups = new Map();
  const g = (k) => {
    if (!groups.has(k)) groups.set(k, { frames: 0, faces: 0, devFound: 0, nodeFound: 0, nodeFoundBox: 0, devFalse: 0, nodeFalse: 0, both: 0, agree: 0, devTrue: 0, nodeTrue: 0, devIou: 0, nodeIou: 0 });
    return groups.get(k);
  };
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    const keys = f.kind === 'face' ? ['all faces', `${f.source} ${f.width}x${f.height}`, `${f.width}x${f.height} face ${f.faces[0].w}`] : [`${f.kind} ${f.width}x${f.height}`];
    for (const k of keys) {
      const s = g(k);
      s.frames++;
      const gt = f.faces[0];
      const devHit = gt ? dev[i].faces.findIndex((d) => iou(d.box, gt) >= IOU) : -1;
      const nodeHitBox = gt ? node[i].faces.findIndex((d) => iou(d.box, gt) >= IOU) : -1;
      const nodeHitSq = gt ? node[i].faces.findIndex((d) => iou(d.square, gt) >= IOU) : -1;
      const nodeHit = nodeHitSq >= 0 ? nodeHitSq : nodeHitBox;
      s.devFalse += dev[i].faces.length - (devHit >= 0 ? 1 : 0);
      s.nodeFalse += node[i].faces.length - (nodeHit >= 0 ? 1 : 0);
      if (!gt) continue;
      s.faces++;
      if (devHit >= 0) {
        s.devFound++;
        s.devIou += iou(dev[i].faces[devHit].box, gt);
        if (dev[i].faces[devHit].label === LABEL_OF[gt.label]) s.devTrue++;
      }
      if (nodeHitBox >= 0) s.nodeFoundBox++;
      if (nodeHit >= 0) {
        s.nodeFound++;
        s.nodeIou += iou(node[i].faces[nodeHit].square, gt);
        if (node[i].faces[nodeHit].label === LABEL_OF[gt.label]) s.nodeTrue++;
      }
      if (devHit >= 0 && nodeHit >= 0) {
        s.both++;
        if (dev[i].faces[devHit].label === node[i].faces[nodeHit].label) s.agree++;
      }
    }
  }
  return groups;
}

function formatTable(groups, timing) {
  const pct = (a, b) => (b ? `${((100 * a) / b).toFixed(1)} %` : '-');
  const out = [];
  out.push('| frames | n | detected: device C | detected: Node BlazeFace (box / crop square) | false boxes / frame: device | Node | same emotion (both found) | emotion = dataset label: device / Node |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  const rank = (k) => {
    if (k === 'all faces') return [0, 0, 0];
    let m = /^(fer2013|jaffe) (\d+)x/.exec(k);
    if (m) return [1, m[1] === 'jaffe' ? 1 : 0, Number(m[2])];
    m = /^(\d+)x\d+ face (\d+)/.exec(k);
    if (m) return [2, Number(m[1]), Number(m[2])];
    m = /^(blank|noise) (\d+)x/.exec(k);
    return [3, m && m[1] === 'noise' ? 1 : 0, m ? Number(m[2]) : 0];
  };
  const cmp = (a, b) => {
    const ra = rank(a[0]);
    const rb = rank(b[0]);
    for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return ra[i] - rb[i];
    return 0;
  };
  for (const [k, s] of [...groups].sort(cmp)) {
    if (s.faces) {
      out.push(`| ${k} | ${s.frames} | ${pct(s.devFound, s.faces)} | ${pct(s.nodeFoundBox, s.faces)} / ${pct(s.nodeFound, s.faces)} | ${(s.devFalse / s.frames).toFixed(3)} | ${(s.nodeFalse / s.frames).toFixed(3)} | ${pct(s.agree, s.both)} (${s.both}) | ${pct(s.devTrue, s.devFound)} / ${pct(s.nodeTrue, s.nodeFound)} |`);
    } else {
      out.push(`| ${k} | ${s.frames} | - | - | ${(s.devFalse / s.frames).toFixed(3)} | ${(s.nodeFalse / s.frames).toFixed(3)} | - | - |`);
    }
  }
  out.push('');
  out.push(`Host time per frame (this machine, one core): device detector ${timing.devMs.toFixed(2)} ms (C, QVGA ${timing.devMsQvga.toFixed(2)} ms), BlazeFace ${timing.nodeMs.toFixed(2)} ms (tfjs-node, main thread).`);
  out.push(`Device detector cost per QVGA frame (its own count, mean over ${timing.qvgaFrames} frames): ${(timing.macsP / 1e6).toFixed(2)} M MAC in P (${timing.levels.toFixed(1)} levels, ${timing.windows.toFixed(0)} windows), ${(timing.macsR / 1e6).toFixed(2)} M MAC in R (${timing.proposals.toFixed(1)} proposals), ${(timing.resize / 1e3).toFixed(0)} k pixels read by the resizes.`);
  return out.join('\n');
}

async function benchDetect({ perSource = 48, keep = '' } = {}) {
  const bin = ensureTool();
  const frames = await buildDetectFrames({ perSource });
  const dir = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-detect-'));
  const files = await writeDetectFrames(frames, dir);
  try {
    const dev = runDevice(bin, files);
    const node = await runNode(frames, files);
    const groups = score(frames, dev, node);
    const qvga = frames.map((f, i) => (f.width === 320 ? dev[i] : null)).filter(Boolean);
    const mean = (arr, f) => arr.reduce((a, x) => a + f(x), 0) / arr.length;
    const timing = {
      devMs: mean(dev, (d) => d.us) / 1000,
      devMsQvga: mean(qvga, (d) => d.us) / 1000,
      nodeMs: mean(node, (d) => d.ms),
      qvgaFrames: qvga.length,
      macsP: mean(qvga, (d) => d.stats.macs_p),
      macsR: mean(qvga, (d) => d.stats.macs_r),
      levels: mean(qvga, (d) => d.stats.levels),
      windows: mean(qvga, (d) => d.stats.windows),
      proposals: mean(qvga, (d) => d.stats.proposals),
      resize: mean(qvga, (d) => d.stats.resize_px),
      maxMacsQvga: Math.max(...qvga.map((d) => d.stats.macs_p + d.stats.macs_r)),
    };
    return { frames: frames.length, seed: EVAL_SEED, heldOutJaffe: HELD_OUT_JAFFE, groups: Object.fromEntries(groups), timing, table: formatTable(groups, timing) };
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const r = await benchDetect(a);
  if (a.json) {
    const { table, ...rest } = r;
    process.stdout.write(JSON.stringify(rest, null, 1) + '\n');
    return;
  }
  process.stdout.write(`## Face detection: device C detector vs Node BlazeFace, ${r.frames} frames (bench/detect-frames.js, seed ${r.seed}; JAFFE subjects ${r.heldOutJaffe.join(', ')})\n\n${r.table}\n`);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`bench:detect: ${e.stack || e}\n`);
    process.exit(1);
  });
}

module.exports = { benchDetect, formatTable };
