/**
 * Per-face tracks against the largest face: "which person has which emotion" when several people
 * are in view. Sequences are built from real faces and run through the real frame pipeline and
 * the real tinyfer-emotion logic; both behaviours come out of the same messages, side by side:
 *
 *   - per track (faces[i].track, faces[i].smoothed): each face's own track, smoothed on its own;
 *   - largest face (the top-level emotion, what the node gave before tracks): one stream per key
 *     that follows whichever face is the largest in each frame.
 *
 * Scenes: 2 to 4 people at once, each a labelled CK+ sequence of a different subject (its three
 * peak frames in turn, 4 video frames each) pasted at 90..170 px into a 640x480 background
 * (bench/detect-frames.js's generator), moving on straight paths that cross (each person starts
 * where another ends, so they pass one another; the nearer, larger face is drawn on top) and
 * growing or shrinking (so which face is the largest changes), with now and then a gap of 1..3
 * frames where a person is not drawn (occlusion). Each frame is a JPEG that goes through
 * processFrame (decode, BlazeFace in its worker, crop on the keypoints) and then through one
 * EmotionHandler per smoothing method (EMA 0.5, majority over 5), bundled model, 10 views,
 * scene = stream key. Seeded: the same seed gives the same frames and figures.
 *
 * Ground truth: a detection is a person when their boxes overlap with IoU >= 0.3 (best first).
 *   ID switches / 100 frames: per track, each time a person's detection carries another track id
 *     than it last did; for the largest face, each time the stream's face is another person than
 *     in the previous frame with a face (the one stream *is* the track).
 *   accuracy when reported: the smoothed emotion given for a person (their track's, or the
 *     top level while they are the largest face) against the CK+ label of their sequence;
 *   per visible person-frame: correct answers over every frame each person is drawn in (a person
 *     the largest-face stream does not follow gets no answer).
 *
 *   npm run bench:track [-- --scenes 12 --frames 60 --seed 20261204 --max-missed 5,30 --json]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const { background, paste, decodeGray, rng } = require('./detect-frames');
const { iou } = require('../dist/vision/detector');

const W = 640;
const H = 480;
const SEED = 20261204;
/** Video frames each of a sequence's three CK+ frames is shown for. */
const HOLD = 4;
const MATCH_IOU = 0.3;

function parseArgs(argv) {
  const a = { scenes: 12, frames: 60, seed: SEED, maxMissed: [5, 30], json: false };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`${argv[i - 1]} needs a non-negative integer, got '${argv[i]}'`);
      return v;
    };
    if (argv[i] === '--scenes') a.scenes = next();
    else if (argv[i] === '--frames') a.frames = next();
    else if (argv[i] === '--seed') a.seed = next();
    else if (argv[i] === '--max-missed') {
      a.maxMissed = String(argv[++i]).split(',').map(Number);
      if (!a.maxMissed.every((v) => Number.isInteger(v) && v >= 0 && v <= 1000)) throw new RangeError(`--max-missed needs integers 0..1000, comma-separated, got '${argv[i]}'`);
    }
    else if (argv[i] === '--json') a.json = true;
    else throw new RangeError(`unknown argument '${argv[i]}'`);
  }
  return a;
}

/** CK+ sequences with one of our labels: [{ subject, label (our label), files: [3 paths] }], sorted. */
function ckSequences(root) {
  const { LABELS, labelIndex } = require('../dist/model/labels');
  const bySeq = new Map();
  for (const dir of fs.readdirSync(root).sort()) {
    const li = labelIndex(dir);
    if (li < 0) continue; // contempt
    for (const f of fs.readdirSync(path.join(root, dir)).sort()) {
      const m = /^(S\d+)_(\d+)_/.exec(f);
      if (!m) continue;
      const k = `${m[1]}_${m[2]}`;
      if (!bySeq.has(k)) bySeq.set(k, { subject: m[1], label: LABELS[li], files: [] });
      bySeq.get(k).files.push(path.join(root, dir, f));
    }
  }
  return [...bySeq.values()].filter((s) => s.files.length >= 1);
}

/** One scene's people: sequence, path (start/end centre and size), gaps. */
function planScene(r, seqs, people, frames) {
  const used = new Set();
  const chosen = [];
  while (chosen.length < people) {
    const s = seqs[Math.floor(r() * seqs.length)];
    if (used.has(s.subject)) continue;
    used.add(s.subject);
    chosen.push(s);
  }
  // start points spread over the width in a shuffled order; each ends where another started (a derangement): paths cross
  const xs = Array.from({ length: people }, (_, i) => 100 + ((i + 0.5) * (W - 200)) / people);
  const order = xs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return chosen.map((seq, i) => {
    const s0 = 90 + r() * 80;
    const s1 = 90 + r() * 80;
    const gaps = new Set();
    for (let t = 0; t < frames; t++) {
      if (r() < 0.02) {
        const len = 1 + Math.floor(r() * 3);
        for (let k = 0; k < len && t + k < frames; k++) gaps.add(t + k);
      }
    }
    return {
      seq,
      from: { x: xs[order[i]], y: 140 + r() * 200, s: s0 },
      to: { x: xs[order[(i + 1) % people]], y: 140 + r() * 200, s: s1 },
      gaps,
      phase: Math.floor(r() * 3),
    };
  });
}

/** Frame t of a scene: the JPEG and the people drawn in it ({ person, label, box }). */
async function renderFrame(scene, faces, t, frames) {
  const gray = Uint8Array.from(scene.bg);
  const u = frames > 1 ? t / (frames - 1) : 0;
  const drawn = [];
  scene.people.forEach((p, i) => {
    if (p.gaps.has(t)) return;
    const s = Math.round(p.from.s + (p.to.s - p.from.s) * u);
    const cx = p.from.x + (p.to.x - p.from.x) * u;
    const cy = p.from.y + (p.to.y - p.from.y) * u;
    drawn.push({ person: i, label: p.seq.label, box: { x: Math.round(cx - s / 2), y: Math.round(cy - s / 2), w: s, h: s } });
  });
  drawn.sort((a, b) => a.box.w - b.box.w || a.person - b.person); // the nearer (larger) face on top
  for (const d of drawn) {
    const p = scene.people[d.person];
    const img = faces.get(p.seq.files[(p.phase + Math.floor(t / HOLD)) % p.seq.files.length]);
    paste(gray, W, H, img.gray, img.width, img.height, 0, 0, img.width, img.height, d.box.x, d.box.y, d.box.w, d.box.h);
  }
  const jpeg = await sharp(Buffer.from(gray), { raw: { width: W, height: H, channels: 1 } }).jpeg({ quality: 90 }).toBuffer();
  return { jpeg, drawn };
}

/** Detections -> people (IoU >= MATCH_IOU, best pair first); returns person index per face (-1: none). */
function assign(faces, drawn) {
  const pairs = [];
  faces.forEach((f, fi) => drawn.forEach((d, di) => {
    const o = iou(f.box, d.box);
    if (o >= MATCH_IOU) pairs.push({ fi, di, o });
  }));
  pairs.sort((a, b) => b.o - a.o || a.fi - b.fi || a.di - b.di);
  const out = faces.map(() => -1);
  const taken = new Set();
  for (const p of pairs) {
    if (out[p.fi] >= 0 || taken.has(p.di)) continue;
    out[p.fi] = drawn[p.di].person;
    taken.add(p.di);
  }
  return out;
}

function newCounts() {
  return { frames: 0, visible: 0, switches: 0, reported: 0, correct: 0, raw: 0 };
}

const pct = (a, b) => (b ? Math.round((a / b) * 1000) / 10 : null);

async function benchTrack(opts = {}) {
  const o = { ...parseArgs([]), ...opts };
  const { processFrame, frameOptions } = require('../dist/vision/pipeline');
  const { EmotionHandler } = require('../dist/runtime/emotion-node');
  const { largestFace } = require('../dist/runtime/emotion');
  const root = path.join(require('../test/helpers/data').dataRoot(), 'ckplus');
  if (!fs.existsSync(root)) throw new Error(`CK+ not found at ${root} (set TINYFER_DATA)`);
  const seqs = ckSequences(root);
  const r = rng(o.seed);
  const methods = [
    { name: 'EMA 0.5', config: { smoothing: 'ema', alpha: '0.5' } },
    { name: 'majority 5', config: { smoothing: 'majority', window: '5' } },
  ];
  // one handler per smoothing method and trackMaxMissed; the largest-face stream (the top level) does not depend on the latter
  const runs = [];
  for (const m of methods) {
    for (const mm of o.maxMissed) {
      runs.push({
        method: m.name, maxMissed: mm, largestToo: mm === o.maxMissed[0],
        handler: new EmotionHandler({ ...m.config, views: '10', trackMaxMissed: mm }),
        track: { all: newCounts(), 2: newCounts(), 3: newCounts(), 4: newCounts() },
        largest: { all: newCounts(), 2: newCounts(), 3: newCounts(), 4: newCounts() },
      });
    }
  }
  await Promise.all(runs.map((x) => x.handler.ready()));
  const frameOpts = frameOptions({});
  const faceCache = new Map();
  let detected = 0;
  let drawnTotal = 0;
  let falseFaces = 0;
  for (let sc = 0; sc < o.scenes; sc++) {
    const people = 2 + (sc % 3);
    const scene = { bg: background(r, W, H), people: planScene(r, seqs, people, o.frames) };
    for (const p of scene.people) {
      for (const f of p.seq.files) if (!faceCache.has(f)) faceCache.set(f, await decodeGray(f));
    }
    const key = `scene${sc}`;
    const lastTrack = runs.map(() => new Map()); // person -> last track id
    const lastLargest = runs.map(() => null); // person the largest-face stream followed last
    for (let t = 0; t < o.frames; t++) {
      const { jpeg, drawn } = await renderFrame(scene, faceCache, t, o.frames);
      const result = await processFrame(jpeg, frameOpts);
      const who = assign(result.faces, drawn);
      drawnTotal += drawn.length;
      detected += who.filter((p) => p >= 0).length;
      falseFaces += who.filter((p) => p < 0).length;
      for (let ri = 0; ri < runs.length; ri++) {
        const run = runs[ri];
        const msg = { faces: result.faces.map((f) => ({ box: f.box, landmarks: f.landmarks, pixels: f.pixels })) };
        const pl = (await run.handler.handle(msg, key)).payload;
        const both = (which, fn) => { fn(run[which].all); fn(run[which][people]); };
        for (const which of ['track', 'largest']) both(which, (c) => { c.frames++; c.visible += drawn.length; });
        // per track: each face's own track and its smoothed emotion
        pl.faces.forEach((f, i) => {
          const person = who[i];
          if (person < 0) return;
          const label = scene.people[person].seq.label;
          const prev = lastTrack[ri].get(person);
          lastTrack[ri].set(person, f.track);
          both('track', (c) => {
            if (prev !== undefined && prev !== f.track) c.switches++;
            c.reported++;
            if (f.smoothed && f.smoothed.emotion === label) c.correct++;
            if (f.emotion === label) c.raw++;
          });
        });
        // largest face: the top level, one stream that follows whoever is the largest
        if (pl.faces.length > 0) {
          const person = who[largestFace(pl.faces)];
          const prev = lastLargest[ri];
          lastLargest[ri] = person;
          both('largest', (c) => {
            if (prev !== null && person !== prev) c.switches++;
            if (person >= 0) {
              c.reported++;
              if (pl.emotion === scene.people[person].seq.label) c.correct++;
            }
          });
        }
      }
    }
    if (!o.json) process.stderr.write(`scene ${sc + 1}/${o.scenes} (${people} people) done\n`);
  }
  runs.forEach((x) => x.handler.close());
  const rows = [];
  for (const run of runs) {
    for (const which of run.largestToo ? ['largest', 'track'] : ['track']) {
      const c = run[which];
      const row = {
        smoothing: run.method,
        behaviour: which === 'track' ? `per track (trackMaxMissed ${run.maxMissed})` : 'largest face (top level)',
        frames: c.all.frames,
        switchesPer100: {},
        accuracyReported: pct(c.all.correct, c.all.reported),
        accuracyVisible: pct(c.all.correct, c.all.visible),
        coverage: pct(c.all.reported, c.all.visible),
        rawAccuracy: which === 'track' ? pct(c.all.raw, c.all.reported) : null,
      };
      for (const k of ['2', '3', '4', 'all']) row.switchesPer100[k] = c[k].frames ? Math.round((c[k].switches / c[k].frames) * 1000) / 10 : null;
      rows.push(row);
    }
  }
  return {
    seed: o.seed, scenes: o.scenes, framesPerScene: o.frames,
    detection: { drawn: drawnTotal, found: detected, recall: pct(detected, drawnTotal), unmatched: falseFaces },
    rows,
  };
}

function table(res) {
  const pc = (v) => (v === null ? '-' : `${v} %`);
  const lines = [];
  lines.push(`seed ${res.seed}, ${res.scenes} scenes x ${res.framesPerScene} frames (2, 3, 4 people in turn); ` +
    `faces found ${res.detection.found}/${res.detection.drawn} drawn (${res.detection.recall} %), ${res.detection.unmatched} detections matching no one`);
  lines.push('');
  lines.push('| smoothing | behaviour | ID switches / 100 frames (2 / 3 / 4 people, all) | smoothed accuracy when reported | correct per visible person-frame | person-frames reported | unsmoothed |');
  lines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const row of res.rows) {
    const sw = row.switchesPer100;
    lines.push(`| ${row.smoothing} | ${row.behaviour} | ${sw['2']} / ${sw['3']} / ${sw['4']}, ${sw.all} | ${pc(row.accuracyReported)} | ${pc(row.accuracyVisible)} | ${pc(row.coverage)} | ${pc(row.rawAccuracy)} |`);
  }
  return lines.join('\n');
}

if (require.main === module) {
  const args = parseArgs(process.argv.slice(2));
  benchTrack(args).then((res) => {
    console.log(args.json ? JSON.stringify(res, null, 1) : table(res));
    process.exit(0);
  }, (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  });
}

module.exports = { benchTrack, table, ckSequences, planScene, renderFrame, assign };
