#!/usr/bin/env node
/**
 * Trains the device's face detector (firmware/app/src/detect.c) and writes its integer weights,
 * firmware/app/src/detect_weights.h. One command, CPU only (tfjs-node), ~6 min on 2 cores. Every
 * random draw is seeded by --seed: a second run on the same machine wrote the same header byte
 * for byte (another CPU's TensorFlow kernels may round differently).
 *
 *   npm run train:detector
 *   (= npm run build && node scripts/detector/train.js [--out firmware/app/src/detect_weights.h]
 *        [--seed 7] [--epochs1 12] [--epochs2 10] [--quick])
 *
 * --quick: 1/10 of the windows, 2 epochs each, 100 FER2013 faces a label (a check of the script,
 * not a usable detector).
 *
 * Two networks, a cascade (MTCNN-style, much smaller):
 *   P (proposal), 16x16 window, fully convolutional: conv 4x4/2 1->8, depthwise 3x3/2 +
 *     pointwise 8->12, depthwise 3x3 + pointwise 12->16, conv 1x1 16->5 (face logit + 4 box
 *     offsets); run over an image pyramid it scores every 16x16 window at a stride of 4 pixels;
 *   R (refine), 24x24 window: conv 3x3 1->12, maxpool 2, conv 3x3 12->16, maxpool 2,
 *     conv 3x3 16->32, dense 128->48, dense 48->5; run on the best proposals.
 * ReLU everywhere but the last layer. Box offsets are the face square's edges minus the window's,
 * over the window side (x1, y1, x2, y2). Face squares are framed like FER2013 crops (the crop
 * the classifier is trained on).
 *
 * Training windows (this file's own generator, seeded by --seed; the evaluation frames of
 * bench/detect-frames.js come from another generator and seed, and from faces not used here):
 *   faces: FER2013 Training (48x48 crops), CK+ (48x48 crops), and JAFFE portraits of the
 *     subjects not in HELD_OUT_JAFFE (face squares from scripts/detector/jaffe-faces.json, with
 *     their hair, neck and shoulders around), each pasted on a 112x112 canvas at 36..60 px
 *     (a quarter of them at 61..96 px);
 *   canvases: value noise of several octaves, stripes, checkers, flat shapes, gradients, white
 *     and softened noise (twice as often as the others), plus
 *     pasted squares of other texture (so a square edge is no face cue);
 *   windows: positives IoU >= 0.65 with the face square, part faces 0.4..0.65 (box offsets
 *     only), negatives IoU < 0.3 (background, off-face parts of portraits, shifted, too large
 *     or too small windows on a face, parts of a face); brightness, contrast, noise and mirror
 *     augmentation.
 *   R's negatives are half random and half hard: windows that P scores as a face.
 * Windows are shrunk to 16x16 / 24x24 by integer area averaging, the rule the C pyramid and
 * crops use (tfa_resize_area).
 *
 * Export: weights int8 per output channel (symmetric), activations uint8 after ReLU with a
 * scale per layer calibrated on training windows (99.99th percentile), int32 accumulators,
 * requantized by a fixed-point multiplier and shift; the input is the raw pixel with zero point
 * 128 (folded into the first layer's bias). The last layers output int32 accumulators and a
 * float scale per output. The thresholds in the header are chosen on held-out training windows
 * (not on the evaluation frames): P keeps 98 % of the face windows, R is cut at 0.5.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { rng, boxBlur, decodeGray, HELD_OUT_JAFFE } = require('../../bench/detect-frames');

const ROOT = path.resolve(__dirname, '..', '..');

function parseArgs(argv) {
  const a = { out: path.join(ROOT, 'firmware', 'app', 'src', 'detect_weights.h'), seed: 7, epochs1: 12, epochs2: 10, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--out') a.out = path.resolve(argv[++i]);
    else if (k === '--seed') a.seed = Number(argv[++i]);
    else if (k === '--epochs1') a.epochs1 = Number(argv[++i]);
    else if (k === '--epochs2') a.epochs2 = Number(argv[++i]);
    else if (k === '--quick') a.quick = true;
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

/* ------------------------------------------------------------------ images */

/** Integer area averaging of the window (x, y, side) of img to k x k (the rule of tfa_resize_area in C). */
function resizeArea(img, iw, ih, x, y, side, k, out, off) {
  for (let oy = 0; oy < k; oy++) {
    let y0 = y + Math.floor((oy * side) / k);
    let y1 = y + Math.floor(((oy + 1) * side) / k);
    if (y1 <= y0) y1 = y0 + 1;
    for (let ox = 0; ox < k; ox++) {
      let x0 = x + Math.floor((ox * side) / k);
      let x1 = x + Math.floor(((ox + 1) * side) / k);
      if (x1 <= x0) x1 = x0 + 1;
      let s = 0;
      let n = 0;
      for (let yy = y0; yy < y1; yy++) {
        const cy = yy < 0 ? 0 : yy >= ih ? ih - 1 : yy;
        for (let xx = x0; xx < x1; xx++) {
          const cx = xx < 0 ? 0 : xx >= iw ? iw - 1 : xx;
          s += img[cy * iw + cx];
          n++;
        }
      }
      out[off + oy * k + ox] = Math.floor((s + (n >> 1)) / n);
    }
  }
}

/** Bilinear paste of src region (rx, ry, rw, rh) onto dst at (dx, dy) with size ow x oh. */
function pasteBilinear(dst, dw, dh, src, sw, sh, rx, ry, rw, rh, dx, dy, ow, oh) {
  for (let y = 0; y < oh; y++) {
    const ty = dy + y;
    if (ty < 0 || ty >= dh) continue;
    let v = ry + ((y + 0.5) * rh) / oh - 0.5;
    v = Math.max(0, Math.min(sh - 1, v));
    const y0 = Math.floor(v);
    const y1 = Math.min(sh - 1, y0 + 1);
    const fy = v - y0;
    for (let x = 0; x < ow; x++) {
      const tx = dx + x;
      if (tx < 0 || tx >= dw) continue;
      let u = rx + ((x + 0.5) * rw) / ow - 0.5;
      u = Math.max(0, Math.min(sw - 1, u));
      const x0 = Math.floor(u);
      const x1 = Math.min(sw - 1, x0 + 1);
      const fx = u - x0;
      const a = src[y0 * sw + x0] * (1 - fx) + src[y0 * sw + x1] * fx;
      const b = src[y1 * sw + x0] * (1 - fx) + src[y1 * sw + x1] * fx;
      dst[ty * dw + tx] = Math.round(a * (1 - fy) + b * fy);
    }
  }
}

const clamp8 = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** The training generator's backgrounds (not bench/detect-frames.js's): one of six textures (noise twice as often). */
function trainTexture(r, w, h) {
  const f = new Float32Array(w * h);
  const pick = Math.floor(r() * 7);
  const kind = pick === 6 ? 4 : pick;
  const base = 30 + r() * 190;
  if (kind === 0) {
    // value noise, 3 octaves
    for (const cell of [32, 12, 5]) {
      const gw = Math.ceil(w / cell) + 2;
      const gh = Math.ceil(h / cell) + 2;
      const g = new Float32Array(gw * gh);
      const amp = (r() * 80) / (cell > 20 ? 1 : 2);
      for (let i = 0; i < g.length; i++) g[i] = (r() - 0.5) * amp;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const u = x / cell;
          const v = y / cell;
          const x0 = Math.floor(u);
          const y0 = Math.floor(v);
          const fx = u - x0;
          const fy = v - y0;
          const a = g[y0 * gw + x0] * (1 - fx) + g[y0 * gw + x0 + 1] * fx;
          const b = g[(y0 + 1) * gw + x0] * (1 - fx) + g[(y0 + 1) * gw + x0 + 1] * fx;
          f[y * w + x] += a * (1 - fy) + b * fy;
        }
      }
    }
  } else if (kind === 1) {
    // stripes at an angle
    const ang = r() * Math.PI;
    const per = 3 + r() * 30;
    const amp = 10 + r() * 80;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = Math.sin(((x * Math.cos(ang) + y * Math.sin(ang)) / per) * 2 * Math.PI) * amp;
  } else if (kind === 2) {
    // checker / grid
    const c = 4 + Math.floor(r() * 24);
    const amp = 10 + r() * 70;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = ((Math.floor(x / c) + Math.floor(y / c)) & 1 ? 1 : -1) * amp;
  } else if (kind === 3) {
    // gradient + fine noise
    const gx = (r() - 0.5) * 160;
    const gy = (r() - 0.5) * 160;
    const amp = r() * 50;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = (gx * x) / w + (gy * y) / h + (r() - 0.5) * amp;
  } else if (kind === 4) {
    // sensor-like noise: white or softened, weak to full contrast
    const amp = 20 + r() * 500;
    for (let i = 0; i < f.length; i++) f[i] = (r() - 0.5) * amp;
    if (r() < 0.5) boxBlur(f, w, h, 1 + Math.floor(r() * 3));
  } else {
    // flat shapes and lines
    const n = 3 + Math.floor(r() * 10);
    for (let s = 0; s < n; s++) {
      const v = (r() - 0.5) * 160;
      const sx = r() * w;
      const sy = r() * h;
      const rw = 2 + r() * w * 0.5;
      const rh = 2 + r() * h * 0.5;
      const circle = r() < 0.4;
      for (let y = Math.max(0, Math.floor(sy - rh)); y < Math.min(h, sy + rh); y++) {
        for (let x = Math.max(0, Math.floor(sx - rw)); x < Math.min(w, sx + rw); x++) {
          const dx = (x - sx) / rw;
          const dy = (y - sy) / rh;
          if (!circle || dx * dx + dy * dy <= 1) f[y * w + x] = v;
        }
      }
    }
  }
  if (r() < 0.5) boxBlur(f, w, h, 1);
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = clamp8(base + f[i]);
  return out;
}

/* ------------------------------------------------------------------ samples */

const CANVAS = 112;

function iou(a, b) {
  const x0 = Math.max(a[0], b[0]);
  const y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y1 = Math.min(a[1] + a[2], b[1] + b[2]);
  const i = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  return i / (a[2] * a[2] + b[2] * b[2] - i);
}

/**
 * A 112x112 training canvas with at most one face: { img, face: [x, y, side] | null }.
 * faces: [{ gray, w, h, sq: [x, y, side] (the face square in the image), portrait }].
 */
function makeCanvas(r, faces, bank, withFace) {
  const img = new Uint8Array(CANVAS * CANVAS);
  const bg = bank[Math.floor(r() * bank.length)];
  const ox = Math.floor(r() * (bg.w - CANVAS));
  const oy = Math.floor(r() * (bg.h - CANVAS));
  for (let y = 0; y < CANVAS; y++) for (let x = 0; x < CANVAS; x++) img[y * CANVAS + x] = bg.img[(oy + y) * bg.w + ox + x];
  // pasted squares of other texture: a square edge is no face cue
  const squares = r() < 0.5 ? 1 + Math.floor(r() * 2) : 0;
  for (let s = 0; s < squares; s++) {
    const o = bank[Math.floor(r() * bank.length)];
    const side = 20 + Math.floor(r() * 60);
    pasteBilinear(img, CANVAS, CANVAS, o.img, o.w, o.h, r() * (o.w - 64), r() * (o.h - 64), 64, 64, Math.floor(r() * (CANVAS - side)), Math.floor(r() * (CANVAS - side)), side, side);
  }
  if (!withFace) return { img, face: null };
  const f = faces[Math.floor(r() * faces.length)];
  // mostly 36..60 px (windows around it reach 1.4x), sometimes up to 96 px (inside-face windows
  // at a finer scale)
  const side = r() < 0.75 ? 36 + Math.floor(r() * 25) : 61 + Math.floor(r() * 36);
  const margin = Math.min(26, Math.floor((CANVAS - side) / 2));
  const fx = margin + Math.floor(r() * (CANVAS - 2 * margin - side + 1));
  const fy = margin + Math.floor(r() * (CANVAS - 2 * margin - side + 1));
  const k = side / f.sq[2];
  if (f.portrait) {
    const m = (0.3 + r() * 0.5) * f.sq[2];
    const rx = Math.max(0, f.sq[0] - m);
    const ry = Math.max(0, f.sq[1] - m);
    const rx1 = Math.min(f.w, f.sq[0] + f.sq[2] + m);
    const ry1 = Math.min(f.h, f.sq[1] + f.sq[2] + m);
    pasteBilinear(img, CANVAS, CANVAS, f.gray, f.w, f.h, rx, ry, rx1 - rx, ry1 - ry, Math.round(fx - (f.sq[0] - rx) * k), Math.round(fy - (f.sq[1] - ry) * k), Math.round((rx1 - rx) * k), Math.round((ry1 - ry) * k));
  } else {
    pasteBilinear(img, CANVAS, CANVAS, f.gray, f.w, f.h, 0, 0, f.w, f.h, fx, fy, side, side);
  }
  return { img, face: [fx, fy, side] };
}

/** Brightness / contrast / noise on a k x k window (in place). */
function augment(r, buf, off, k) {
  const n = k * k;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += buf[off + i];
  mean /= n;
  const c = 0.55 + r() * 0.9;
  const b = (r() - 0.5) * 70;
  const noise = r() < 0.3 ? r() * 8 : 0;
  for (let i = 0; i < n; i++) buf[off + i] = clamp8((buf[off + i] - mean) * c + mean + b + (noise ? (r() - 0.5) * 2 * noise : 0));
}

function flipWindow(buf, off, k) {
  for (let y = 0; y < k; y++) {
    for (let x = 0; x < k >> 1; x++) {
      const a = off + y * k + x;
      const b = off + y * k + k - 1 - x;
      const t = buf[a];
      buf[a] = buf[b];
      buf[b] = t;
    }
  }
}

/**
 * Windows of size k: { x: Uint8Array(n*k*k), y: Float32Array(n*7) } with per sample
 * [label, clsMask, regMask, t1..t4]. accept(window) may reject a negative (hard mining).
 */
function makeSamples(r, faces, bank, k, counts, accept) {
  const total = counts.pos + counts.part + counts.neg;
  const x = new Uint8Array(total * k * k);
  const y = new Float32Array(total * 7);
  let n = 0;
  const want = { pos: counts.pos, part: counts.part, neg: counts.neg };
  const put = (img, win, label, face) => {
    const off = n * k * k;
    resizeArea(img, CANVAS, CANVAS, win[0], win[1], win[2], k, x, off);
    augment(r, x, off, k);
    let t = [0, 0, 0, 0];
    if (face) t = [(face[0] - win[0]) / win[2], (face[1] - win[1]) / win[2], (face[0] + face[2] - win[0] - win[2]) / win[2], (face[1] + face[2] - win[1] - win[2]) / win[2]];
    if (r() < 0.5) {
      flipWindow(x, off, k);
      t = [-t[2], t[1], -t[0], t[3]];
    }
    const o = n * 7;
    y[o] = label === 'pos' ? 1 : 0;
    y[o + 1] = label === 'part' ? 0 : 1;
    y[o + 2] = label === 'neg' ? 0 : 1;
    for (let i = 0; i < 4; i++) y[o + 3 + i] = t[i];
    n++;
  };
  let guard = 0;
  while (want.pos + want.part + want.neg > 0) {
    if (++guard > total * 200) throw new Error('sample generation does not converge');
    const withFace = r() < 0.8;
    const cv = makeCanvas(r, faces, bank, withFace);
    for (let t = 0; t < 6; t++) {
      const face = cv.face;
      let win;
      let label;
      if (face && want.pos > 0 && t < 2) {
        const side = Math.round(face[2] * Math.exp((r() - 0.5) * 0.3));
        const cx = face[0] + face[2] / 2 + (r() - 0.5) * 0.24 * face[2];
        const cy = face[1] + face[2] / 2 + (r() - 0.5) * 0.24 * face[2];
        win = [Math.round(cx - side / 2), Math.round(cy - side / 2), side];
        const v = iou(win, face);
        label = v >= 0.65 ? 'pos' : v >= 0.4 ? 'part' : v < 0.3 ? 'neg' : null;
      } else if (face && want.part > 0 && t < 4) {
        const side = Math.round(face[2] * Math.exp((r() - 0.5) * 0.6));
        const cx = face[0] + face[2] / 2 + (r() - 0.5) * 0.7 * face[2];
        const cy = face[1] + face[2] / 2 + (r() - 0.5) * 0.7 * face[2];
        win = [Math.round(cx - side / 2), Math.round(cy - side / 2), side];
        const v = iou(win, face);
        label = v >= 0.65 ? 'pos' : v >= 0.4 ? 'part' : v < 0.3 ? 'neg' : null;
      } else if (face && t === 4) {
        // a part of the face (an eye, the mouth, half the face): a negative
        const side = Math.max(k, Math.round(face[2] * (0.2 + r() * 0.4)));
        win = [face[0] + Math.floor(r() * (face[2] - side + 1)), face[1] + Math.floor(r() * (face[2] - side + 1)), side];
        const v = iou(win, face);
        label = v < 0.3 ? 'neg' : null;
      } else {
        const side = Math.max(k, Math.round(Math.exp(Math.log(k) + r() * (Math.log(CANVAS) - Math.log(k)))));
        win = [Math.floor(r() * (CANVAS - side + 1)), Math.floor(r() * (CANVAS - side + 1)), side];
        const v = face ? iou(win, face) : 0;
        label = v >= 0.65 ? 'pos' : v >= 0.4 ? 'part' : v < 0.3 ? 'neg' : null;
      }
      if (!label || want[label] <= 0) continue;
      if (label === 'neg' && accept && !accept(cv.img, win)) continue;
      put(cv.img, win, label, face);
      want[label]--;
    }
  }
  return { x, y, n, k };
}

/* ------------------------------------------------------------------ data */

async function loadFaces(root, quick) {
  const faces = [];
  const ferDir = path.join(root, 'fer2013', 'Training');
  for (const label of fs.readdirSync(ferDir).sort()) {
    let files = fs.readdirSync(path.join(ferDir, label)).sort();
    if (quick) files = files.slice(0, 100);
    for (const f of files) {
      const d = await decodeGray(path.join(ferDir, label, f));
      faces.push({ gray: d.gray, w: d.width, h: d.height, sq: [0, 0, d.width], portrait: false });
    }
  }
  const ckDir = path.join(root, 'ckplus');
  for (const label of fs.readdirSync(ckDir).sort()) {
    for (const f of fs.readdirSync(path.join(ckDir, label)).sort()) {
      const d = await decodeGray(path.join(ckDir, label, f));
      faces.push({ gray: d.gray, w: d.width, h: d.height, sq: [0, 0, d.width], portrait: false });
    }
  }
  const boxes = JSON.parse(fs.readFileSync(path.join(__dirname, 'jaffe-faces.json'), 'utf8'));
  const portraits = [];
  for (const [key, sq] of Object.entries(boxes)) {
    if (HELD_OUT_JAFFE.includes(path.basename(key).split('.')[0])) continue;
    const d = await decodeGray(path.join(root, 'jaffe', key));
    portraits.push({ gray: d.gray, w: d.width, h: d.height, sq, portrait: true });
  }
  // the ~150 portraits would be drowned by 30 000 crops: weight them up to 1 in 6 faces
  const rep = Math.max(1, Math.round(faces.length / 5 / portraits.length));
  for (let i = 0; i < rep; i++) faces.push(...portraits);
  return { faces, portraits: portraits.length, crops: faces.length - rep * portraits.length };
}

/* ------------------------------------------------------------------ models */

function buildP(tf, seed) {
  const init = (k) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k }) });
  const m = tf.sequential();
  const dinit = (k) => ({ depthwiseInitializer: tf.initializers.glorotUniform({ seed: seed + k }) });
  m.add(tf.layers.conv2d({ inputShape: [16, 16, 1], filters: 8, kernelSize: 4, strides: 2, activation: 'relu', name: 'p1', ...init(1) }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, activation: 'relu', name: 'p2d', ...dinit(2) }));
  m.add(tf.layers.conv2d({ filters: 12, kernelSize: 1, activation: 'relu', name: 'p2p', ...init(3) }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, activation: 'relu', name: 'p3d', ...dinit(4) }));
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 1, activation: 'relu', name: 'p3p', ...init(5) }));
  m.add(tf.layers.conv2d({ filters: 5, kernelSize: 1, name: 'p4', ...init(6) }));
  m.add(tf.layers.flatten());
  return m;
}

function buildR(tf, seed) {
  const init = (k) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k }) });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [24, 24, 1], filters: 12, kernelSize: 3, activation: 'relu', name: 'r1', ...init(11) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', name: 'r2', ...init(12) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', name: 'r3', ...init(13) }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 48, activation: 'relu', name: 'r4', ...init(14) }));
  m.add(tf.layers.dense({ units: 5, name: 'r5', ...init(15) }));
  return m;
}

function lossFn(tf) {
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const label = yTrue.slice([0, 0], [-1, 1]);
      const cm = yTrue.slice([0, 1], [-1, 1]);
      const rm = yTrue.slice([0, 2], [-1, 1]);
      const t = yTrue.slice([0, 3], [-1, 4]);
      const logit = yPred.slice([0, 0], [-1, 1]);
      const reg = yPred.slice([0, 1], [-1, 4]);
      // BCE with logits: max(z,0) - z*y + log(1 + exp(-|z|))
      const bce = tf.relu(logit).sub(logit.mul(label)).add(tf.log1p(tf.exp(tf.abs(logit).neg())));
      const cls = bce.mul(cm).sum().div(cm.sum().add(1e-6));
      const regl = reg.sub(t).square().sum(1, true).mul(rm).sum().div(rm.sum().add(1e-6));
      return cls.add(regl.mul(2));
    });
}

function toTensors(tf, s) {
  const xs = tf.tidy(() => tf.tensor4d(s.x, [s.n, s.k, s.k, 1], 'int32').toFloat().sub(128).div(128));
  const ys = tf.tensor2d(s.y.subarray(0, s.n * 7), [s.n, 7]);
  return { xs, ys };
}

/** Face-window recall and negative false-positive rate at a logit threshold, on a sample set. */
function rates(logits, y, n, thr) {
  let pos = 0;
  let tp = 0;
  let neg = 0;
  let fp = 0;
  for (let i = 0; i < n; i++) {
    if (y[i * 7 + 1] === 0) continue;
    if (y[i * 7] === 1) {
      pos++;
      if (logits[i] >= thr) tp++;
    } else {
      neg++;
      if (logits[i] >= thr) fp++;
    }
  }
  return { recall: tp / pos, fpr: fp / neg };
}

async function train(tf, model, tr, epochs, lr, name, r) {
  const loss = lossFn(tf);
  const { xs, ys } = toTensors(tf, tr);
  const opt = tf.train.adam(lr);
  const bs = 256;
  for (let e = 0; e < epochs; e++) {
    if (e === Math.floor(epochs * 0.7)) opt.learningRate = lr / 5;
    const order = new Int32Array(tr.n);
    for (let i = 0; i < tr.n; i++) order[i] = i;
    for (let i = tr.n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    let sum = 0;
    let nb = 0;
    for (let b = 0; b + bs <= tr.n; b += bs) {
      const idx = tf.tensor1d(order.subarray(b, b + bs), 'int32');
      const l = opt.minimize(() => loss(ys.gather(idx), model.apply(xs.gather(idx), { training: true })), true);
      sum += l.dataSync()[0];
      nb++;
      l.dispose();
      idx.dispose();
    }
    console.log(`[${name}] epoch ${e + 1}/${epochs} loss ${(sum / nb).toFixed(4)}`);
  }
  xs.dispose();
  ys.dispose();
}

function predictLogits(tf, model, s) {
  const { xs, ys } = toTensors(tf, s);
  const out = model.predict(xs, { batchSize: 1024 });
  const d = out.dataSync().slice();
  xs.dispose();
  ys.dispose();
  out.dispose();
  const logits = new Float32Array(s.n);
  for (let i = 0; i < s.n; i++) logits[i] = d[i * 5];
  return { logits, all: d };
}

/** P's float forward pass on one 16x16 window in plain JS (fast hard-negative mining): the face logit. */
function jsForward(model) {
  const ls = model.layers.filter((l) => l.getWeights().length === 2).map((l) => {
    const [w, b] = l.getWeights();
    return { w: w.dataSync().slice(), shape: w.shape, b: b.dataSync().slice(), stride: l.getConfig().strides[0], dw: l.getClassName() === 'DepthwiseConv2D' };
  });
  return (win) => {
    let a = Float32Array.from(win, (v) => (v - 128) / 128);
    let size = 16;
    let cin = 1;
    for (let li = 0; li < ls.length; li++) {
      const L = ls[li];
      const kh = L.shape[0];
      const cout = L.dw ? cin : L.shape[3];
      const os = Math.floor((size - kh) / L.stride) + 1;
      const o = new Float32Array(os * os * cout);
      for (let oy = 0; oy < os; oy++) {
        for (let ox = 0; ox < os; ox++) {
          for (let co = 0; co < cout; co++) {
            let s = L.b[co];
            for (let y = 0; y < kh; y++) {
              for (let x = 0; x < kh; x++) {
                const ib = ((oy * L.stride + y) * size + ox * L.stride + x) * cin;
                if (L.dw) {
                  s += a[ib + co] * L.w[(y * kh + x) * cin + co];
                  continue;
                }
                const wb = (y * kh + x) * cin * cout + co;
                for (let c = 0; c < cin; c++) s += a[ib + c] * L.w[wb + c * cout];
              }
            }
            o[(oy * os + ox) * cout + co] = li < ls.length - 1 && s < 0 ? 0 : s;
          }
        }
      }
      a = o;
      size = os;
      cin = cout;
    }
    return a[0];
  };
}

/* ------------------------------------------------------------------ export */

/** The conv/dense layers of a model with their activations' 99.99th percentile on `s`. */
function calibrate(tf, model, s) {
  const layers = model.layers.filter((l) => l.getWeights().length === 2);
  const { xs, ys } = toTensors(tf, s);
  ys.dispose();
  const out = [];
  for (const l of layers) {
    const sub = tf.model({ inputs: model.inputs, outputs: l.output });
    const a = sub.predict(xs, { batchSize: 1024 });
    const v = a.dataSync();
    const sorted = Float32Array.from(v).sort();
    const p = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9999))];
    a.dispose();
    const [w, b] = l.getWeights();
    out.push({ name: l.name, dw: l.getClassName() === 'DepthwiseConv2D', w: { shape: w.shape, data: w.dataSync().slice() }, b: b.dataSync().slice(), amax: p, strides: l.getConfig().strides });
  }
  xs.dispose();
  return out;
}

/**
 * Quantize one network: per layer, OHWI int8 weights, int32 bias (input zero point folded in),
 * and a requantization (mult, shift) per output channel, or float output scales for the last.
 */
function quantize(layers) {
  let sIn = 1 / 128;
  let zIn = 128;
  return layers.map((L, li) => {
    const last = li === layers.length - 1;
    const shape = L.w.shape; // conv: [kh, kw, cin, cout]; dense: [cin, cout]
    const dense = shape.length === 2;
    const kh = dense ? 1 : shape[0];
    const kw = dense ? 1 : shape[1];
    const cin = dense ? shape[0] : shape[2];
    const cout = dense ? shape[1] : L.dw ? shape[2] : shape[3];
    const per = L.dw ? kh * kw : kh * kw * cin; // weights per output channel
    const wq = new Int8Array(cout * per);
    const bias = new Int32Array(cout);
    const mult = new Int32Array(cout);
    const shift = new Int8Array(cout);
    const outScale = new Float64Array(cout);
    const sOut = last ? 0 : L.amax / 255;
    for (let o = 0; o < cout; o++) {
      let amax = 0;
      for (let i = 0; i < per; i++) amax = Math.max(amax, Math.abs(L.w.data[L.dw ? i * cin + o : i * cout + o]));
      const sw = amax > 0 ? amax / 127 : 1;
      let sum = 0;
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          if (L.dw) {
            // depthwise kernel [kh][kw][cin][1] -> [c][kh][kw]
            const q = Math.max(-127, Math.min(127, Math.round(L.w.data[(y * kw + x) * cin + o] / sw)));
            wq[o * per + y * kw + x] = q;
            sum += q;
            continue;
          }
          for (let c = 0; c < cin; c++) {
            const src = ((y * kw + x) * cin + c) * cout + o; // HWIO (dense: IO)
            const q = Math.max(-127, Math.min(127, Math.round(L.w.data[src] / sw)));
            wq[o * per + (y * kw + x) * cin + c] = q;
            sum += q;
          }
        }
      }
      bias[o] = Math.round(L.b[o] / (sw * sIn)) - zIn * sum;
      if (last) {
        outScale[o] = sw * sIn;
      } else {
        const m = (sw * sIn) / sOut;
        let sh = 0;
        let mm = m;
        while (mm < 16384 && sh < 62) {
          mm *= 2;
          sh++;
        }
        while (mm >= 32768) {
          mm /= 2;
          sh--;
        }
        if (sh < 1) throw new Error(`layer ${L.name}: requantization multiplier out of range (${m})`);
        mult[o] = Math.round(mm);
        shift[o] = sh;
      }
    }
    const q = { name: L.name, dense, dw: !!L.dw, k: kh, stride: dense ? 1 : L.strides[0], cin, cout, wq, bias, mult, shift, outScale, last };
    if (!last) {
      sIn = sOut;
      zIn = 0;
    }
    return q;
  });
}

function cArray(type, name, arr, perLine = 24) {
  const vals = Array.from(arr, (v) => String(v));
  const lines = [];
  for (let i = 0; i < vals.length; i += perLine) lines.push('  ' + vals.slice(i, i + perLine).join(', ') + ',');
  return `static const ${type} ${name}[${arr.length}] = {\n${lines.join('\n')}\n};\n`;
}

function emitNet(prefix, qs) {
  let s = '';
  const descs = [];
  for (const q of qs) {
    const n = `${prefix}_${q.name}`;
    s += cArray('int8_t', `${n}_w`, q.wq, 32);
    s += cArray('int32_t', `${n}_b`, q.bias, 8);
    if (q.last) {
      s += `static const float ${n}_scale[${q.cout}] = {${Array.from(q.outScale, (v) => v.toExponential(9) + 'f').join(', ')}};\n`;
      descs.push(`{${q.k}, ${q.stride}, ${q.dw ? 1 : 0}, ${q.cin}, ${q.cout}, ${n}_w, ${n}_b, NULL, NULL, ${n}_scale}`);
    } else {
      s += cArray('int32_t', `${n}_m`, q.mult, 12);
      s += cArray('int8_t', `${n}_s`, q.shift, 32);
      descs.push(`{${q.k}, ${q.stride}, ${q.dw ? 1 : 0}, ${q.cin}, ${q.cout}, ${n}_w, ${n}_b, ${n}_m, ${n}_s, NULL}`);
    }
  }
  s += `static const tfa_det_layer ${prefix}_layers[${qs.length}] = {\n  ${descs.join(',\n  ')},\n};\n`;
  return s;
}

/* ------------------------------------------------------------------ main */

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const { loadTf } = require('../../dist/engine/tf');
  const { tf } = await loadTf();
  const { dataRoot } = require('../../test/helpers/data');
  const r = rng(a.seed);
  const data = await loadFaces(dataRoot(), a.quick);
  console.log(`faces: ${data.crops} FER2013 Training + CK+ crops, ${data.portraits} JAFFE portraits (subjects other than ${HELD_OUT_JAFFE.join(', ')})`);
  const bank = [];
  for (let i = 0; i < 96; i++) bank.push({ img: trainTexture(r, 256, 256), w: 256, h: 256 });
  // JAFFE training portraits as background too (off-face windows are negatives by IoU)
  const scale = a.quick ? 0.1 : 1;
  const c1 = { pos: Math.round(60000 * scale), part: Math.round(30000 * scale), neg: Math.round(120000 * scale) };
  const v1 = { pos: 4000, part: 1000, neg: 8000 };
  const p = buildP(tf, a.seed * 100);
  const trP = makeSamples(r, data.faces, bank, 16, c1);
  const vaP = makeSamples(r, data.faces, bank, 16, v1);
  console.log(`P: ${trP.n} training windows, ${vaP.n} validation windows (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  await train(tf, p, trP, a.quick ? 2 : a.epochs1, 3e-3, 'P', r);
  const pv = predictLogits(tf, p, vaP);
  // threshold: keep 98 % of the validation face windows
  const posLogits = [];
  for (let i = 0; i < vaP.n; i++) if (vaP.y[i * 7] === 1) posLogits.push(pv.logits[i]);
  posLogits.sort((x, y) => x - y);
  const thrP = posLogits[Math.floor(posLogits.length * 0.02)];
  const rp = rates(pv.logits, vaP.y, vaP.n, thrP);
  console.log(`P validation: threshold logit ${thrP.toFixed(3)}: recall ${(rp.recall * 100).toFixed(1)} %, negatives passed ${(rp.fpr * 100).toFixed(2)} %`);

  // R: half of its negatives are windows P passes (hard negatives)
  const fwd = jsForward(p);
  const probe = new Uint8Array(256);
  let tries = 0;
  const accept = (img, win) => {
    if (r() < 0.5 || ++tries > 60) {
      tries = 0;
      return true;
    }
    resizeArea(img, CANVAS, CANVAS, win[0], win[1], win[2], 16, probe, 0);
    if (fwd(probe) < thrP) return false;
    tries = 0;
    return true;
  };
  {
    let worst = 0;
    for (let i = 0; i < 50; i++) worst = Math.max(worst, Math.abs(fwd(vaP.x.subarray(i * 256, i * 256 + 256)) - pv.logits[i]));
    if (!(worst < 1e-3)) throw new Error(`JS forward of P disagrees with tfjs by ${worst}`);
  }
  const c2 = { pos: Math.round(40000 * scale), part: Math.round(20000 * scale), neg: Math.round(60000 * scale) };
  const trR = makeSamples(r, data.faces, bank, 24, c2, accept);
  const vaR = makeSamples(r, data.faces, bank, 24, { pos: 3000, part: 1000, neg: 6000 }, accept);
  console.log(`R: ${trR.n} training windows, ${vaR.n} validation windows (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  const rm = buildR(tf, a.seed * 100);
  await train(tf, rm, trR, a.quick ? 2 : a.epochs2, 2e-3, 'R', r);
  const rv = predictLogits(tf, rm, vaR);
  const thrR = 0; // probability 0.5
  const rr = rates(rv.logits, vaR.y, vaR.n, thrR);
  console.log(`R validation (half hard negatives): p >= 0.5: recall ${(rr.recall * 100).toFixed(1)} %, negatives passed ${(rr.fpr * 100).toFixed(2)} %`);

  const qp = quantize(calibrate(tf, p, vaP));
  const qr = quantize(calibrate(tf, rm, vaR));
  let h = `/* Generated by scripts/detector/train.js (seed ${a.seed}): the weights of the device's face\n`;
  h += ` * detector (detect.c). Do not edit; re-run the script. Trained on FER2013 Training + CK+ crops\n`;
  h += ` * and JAFFE subjects other than ${HELD_OUT_JAFFE.join(', ')}.\n`;
  h += ` * P validation: recall ${(rp.recall * 100).toFixed(1)} % of face windows, ${(rp.fpr * 100).toFixed(2)} % of negatives passed;\n`;
  h += ` * R validation: recall ${(rr.recall * 100).toFixed(1)} %, ${(rr.fpr * 100).toFixed(2)} % of negatives passed (half hard). */\n`;
  h += `#ifndef TFA_DETECT_WEIGHTS_H\n#define TFA_DETECT_WEIGHTS_H\n\n`;
  h += `#define TFA_DET_P_THRESHOLD ${thrP.toFixed(6)}f /* face logit P keeps */\n`;
  h += `#define TFA_DET_R_THRESHOLD ${thrR.toFixed(6)}f /* face logit R keeps (probability 0.5) */\n\n`;
  h += emitNet('tfa_det_p', qp) + '\n' + emitNet('tfa_det_r', qr);
  h += `\n#endif\n`;
  fs.writeFileSync(a.out, h);
  const params = [...qp, ...qr].reduce((s, q) => s + q.wq.length, 0);
  console.log(`wrote ${path.relative(process.cwd(), a.out)}: ${params} weights (${((Date.now() - t0) / 60000).toFixed(1)} min)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
