/**
 * The frame set both face detectors are measured on (bench/detect.js): the Node side's BlazeFace
 * (src/vision/detector.ts, the tinyfer-frame pipeline) and the device's C detector
 * (firmware/app/src/detect.c, run by the host build). Deterministic: the same seed gives the same
 * frames, pixel for pixel.
 *
 *   - face frames: one real face each, placed at several sizes in 320x240 (QVGA, the device's
 *     camera) and 640x480 (VGA) frames, at a random place on a synthetic background:
 *       FER2013 PublicTest faces (48x48 crops: the placed square is the face box), and
 *       JAFFE portraits of the held-out subjects (HELD_OUT_JAFFE, never trained on by the C
 *       detector): a region of the portrait around its face is placed, so the face keeps its
 *       hair, neck and shoulders; the face box is the portrait's FER-framed face square
 *       (scripts/detector/jaffe-faces.json) scaled and moved with it;
 *       face sides: QVGA 48, 64, 96, 144 px; VGA 96, 128, 192, 288 px (the device detector looks
 *       for faces of at least 1/5 of the frame's shorter side);
 *   - blank frames (one flat grey level) and noise frames (white noise, and blurred noise).
 *
 * Backgrounds (this file's own generator and seed, EVAL_SEED; the C detector's training windows
 * come from scripts/detector/train.js, a different generator with another seed): a tinted
 * gradient plus blurred noise, with a few flat rectangles and ellipses.
 *
 *   const { buildDetectFrames } = require('./bench/detect-frames');
 *   const frames = await buildDetectFrames({ perSource: 48 });  // [{ name, width, height, gray, faces, kind }]
 */
'use strict';
const fs = require('fs');
const path = require('path');

/** The seed of the evaluation frames (the training generator uses another). */
const EVAL_SEED = 20261204;
/** JAFFE subjects the C detector is not trained on; the evaluation uses only these. */
const HELD_OUT_JAFFE = ['TM', 'UY', 'YM'];
const SIZES = {
  qvga: { width: 320, height: 240, faces: [48, 64, 96, 144] },
  vga: { width: 640, height: 480, faces: [96, 128, 192, 288] },
};

/** mulberry32, the project's one seeded PRNG (src/util/random.ts; needs `npm run build`). */
const rng = require('../dist/util/random').seededRandom;

const clamp8 = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Box blur of radius r (one horizontal and one vertical pass), in place on a float raster. */
function boxBlur(a, w, h, r) {
  const tmp = new Float32Array(a.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      let n = 0;
      for (let k = -r; k <= r; k++) {
        const xx = x + k;
        if (xx >= 0 && xx < w) {
          s += a[y * w + xx];
          n++;
        }
      }
      tmp[y * w + x] = s / n;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      let n = 0;
      for (let k = -r; k <= r; k++) {
        const yy = y + k;
        if (yy >= 0 && yy < h) {
          s += tmp[yy * w + x];
          n++;
        }
      }
      a[y * w + x] = s / n;
    }
  }
}

/** A w x h background: tinted gradient, blurred noise, a few flat rectangles and ellipses. */
function background(r, w, h) {
  const f = new Float32Array(w * h);
  const base = 60 + r() * 100;
  const gx = (r() - 0.5) * 120;
  const gy = (r() - 0.5) * 120;
  const amp = 20 + r() * 60;
  for (let i = 0; i < f.length; i++) f[i] = (r() - 0.5) * amp;
  boxBlur(f, w, h, 1 + Math.floor(r() * 3));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] += base + (gx * x) / w + (gy * y) / h;
  const shapes = Math.floor(r() * 5);
  for (let s = 0; s < shapes; s++) {
    const sw = w * (0.05 + r() * 0.3);
    const sh = h * (0.05 + r() * 0.3);
    const sx = r() * (w - sw);
    const sy = r() * (h - sh);
    const v = 30 + r() * 200;
    const ellipse = r() < 0.5;
    for (let y = Math.floor(sy); y < sy + sh; y++) {
      for (let x = Math.floor(sx); x < sx + sw; x++) {
        const dx = (x - sx - sw / 2) / (sw / 2);
        const dy = (y - sy - sh / 2) / (sh / 2);
        if (!ellipse || dx * dx + dy * dy <= 1) f[y * w + x] = v + (f[y * w + x] - base) * 0.3;
      }
    }
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = clamp8(f[i]);
  return out;
}

/** Bilinear sample of src (sw x sh) at (x, y) in pixel-centre coordinates, edges clamped. */
function bilinear(src, sw, sh, x, y) {
  x = Math.max(0, Math.min(sw - 1, x));
  y = Math.max(0, Math.min(sh - 1, y));
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = Math.min(sw - 1, x0 + 1);
  const y1 = Math.min(sh - 1, y0 + 1);
  const fx = x - x0;
  const fy = y - y0;
  const a = src[y0 * sw + x0] * (1 - fx) + src[y0 * sw + x1] * fx;
  const b = src[y1 * sw + x0] * (1 - fx) + src[y1 * sw + x1] * fx;
  return a * (1 - fy) + b * fy;
}

/**
 * Paste the region (rx, ry, rw, rh) of src (sw x sh) into dst (dw x dh) at (dx, dy) scaled to
 * dsz x dsz' (area-averaged when shrinking: the region is sampled 4x4 per output pixel).
 */
function paste(dst, dw, dh, src, sw, sh, rx, ry, rw, rh, dx, dy, ow, oh) {
  const sub = 4;
  for (let y = 0; y < oh; y++) {
    const ty = dy + y;
    if (ty < 0 || ty >= dh) continue;
    for (let x = 0; x < ow; x++) {
      const tx = dx + x;
      if (tx < 0 || tx >= dw) continue;
      let s = 0;
      for (let j = 0; j < sub; j++) {
        for (let i = 0; i < sub; i++) {
          const u = rx + ((x + (i + 0.5) / sub) * rw) / ow - 0.5;
          const v = ry + ((y + (j + 0.5) / sub) * rh) / oh - 0.5;
          s += bilinear(src, sw, sh, u, v);
        }
      }
      dst[ty * dw + tx] = clamp8(s / (sub * sub));
    }
  }
}

async function decodeGray(file) {
  const sharp = require('sharp');
  const { data, info } = await sharp(file).grayscale().raw().toBuffer({ resolveWithObject: true });
  const out = new Uint8Array(info.width * info.height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels];
  return { gray: out, width: info.width, height: info.height };
}

/** Every `step`-th file of a <label>/<file> dataset folder, sorted, as { file, label }. */
function listFaces(root, filter) {
  const out = [];
  for (const label of fs.readdirSync(root).sort()) {
    for (const f of fs.readdirSync(path.join(root, label)).sort()) if (!filter || filter(f)) out.push({ file: path.join(root, label, f), label, key: `${label}/${f}` });
  }
  return out;
}

/** Pick n items spread evenly over the list, in an order shuffled by r. */
function pick(list, n, r) {
  const idx = [];
  for (let i = 0; i < Math.min(n, list.length); i++) idx.push(Math.floor((i * list.length) / Math.min(n, list.length)));
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.map((i) => list[i]);
}

/**
 * Build the frames. perSource: faces taken from each source (FER2013 PublicTest, held-out JAFFE),
 * each placed once in a QVGA and once in a VGA frame; blank, noise: frames of each kind per size.
 */
async function buildDetectFrames({ dataRoot, perSource = 48, blank = 8, noise = 8, seed = EVAL_SEED } = {}) {
  const root = dataRoot || require('../test/helpers/data').dataRoot();
  const r = rng(seed);
  const jaffeBoxes = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'scripts', 'detector', 'jaffe-faces.json'), 'utf8'));
  const fer = pick(listFaces(path.join(root, 'fer2013', 'PublicTest')), perSource, r);
  const jaffe = pick(
    listFaces(path.join(root, 'jaffe'), (f) => HELD_OUT_JAFFE.includes(f.split('.')[0])),
    perSource,
    r,
  );
  const frames = [];
  let n = 0;
  for (const [source, list] of [['fer2013', fer], ['jaffe', jaffe]]) {
    for (let i = 0; i < list.length; i++) {
      const item = list[i];
      const img = await decodeGray(item.file);
      for (const [sizeName, size] of Object.entries(SIZES)) {
        const { width, height } = size;
        const side = size.faces[(i + (sizeName === 'vga' ? 2 : 0)) % size.faces.length];
        const gray = background(r, width, height);
        let face;
        if (source === 'fer2013') {
          const x = Math.floor(r() * (width - side + 1));
          const y = Math.floor(r() * (height - side + 1));
          paste(gray, width, height, img.gray, img.width, img.height, 0, 0, img.width, img.height, x, y, side, side);
          face = { x, y, w: side, h: side };
        } else {
          const [fx, fy, fs0] = jaffeBoxes[item.key];
          const k = side / fs0; // portrait pixels -> frame pixels
          // the portrait region around the face: up to 0.4 face sides more on every side
          const m = 0.4 * fs0;
          const rx = Math.max(0, fx - m);
          const ry = Math.max(0, fy - m);
          const rx1 = Math.min(img.width, fx + fs0 + m);
          const ry1 = Math.min(img.height, fy + fs0 + m);
          const x = Math.floor(r() * (width - side + 1));
          const y = Math.floor(r() * (height - side + 1));
          const dx = Math.round(x - (fx - rx) * k);
          const dy = Math.round(y - (fy - ry) * k);
          paste(gray, width, height, img.gray, img.width, img.height, rx, ry, rx1 - rx, ry1 - ry, dx, dy, Math.round((rx1 - rx) * k), Math.round((ry1 - ry) * k));
          face = { x, y, w: side, h: side };
        }
        frames.push({
          name: `f${String(n++).padStart(3, '0')}-${source}-${sizeName}-${side}`,
          kind: 'face', source, width, height, gray, faces: [{ ...face, label: item.label, file: item.key }],
        });
      }
    }
  }
  for (const [sizeName, { width, height }] of Object.entries(SIZES)) {
    for (let i = 0; i < blank; i++) {
      const gray = new Uint8Array(width * height).fill(Math.floor(r() * 256));
      frames.push({ name: `f${String(n++).padStart(3, '0')}-blank-${sizeName}`, kind: 'blank', source: 'blank', width, height, gray, faces: [] });
    }
    for (let i = 0; i < noise; i++) {
      const f = new Float32Array(width * height);
      for (let j = 0; j < f.length; j++) f[j] = r() * 255;
      if (i % 2) boxBlur(f, width, height, 1 + (i % 3));
      const gray = new Uint8Array(width * height);
      for (let j = 0; j < f.length; j++) gray[j] = clamp8(i % 2 ? 128 + (f[j] - 128) * 3 : f[j]);
      frames.push({ name: `f${String(n++).padStart(3, '0')}-noise-${sizeName}`, kind: 'noise', source: 'noise', width, height, gray, faces: [] });
    }
  }
  return frames;
}

/** Write the frames as grayscale PNG files (lossless) plus manifest.json into dir; returns the file paths. */
async function writeDetectFrames(frames, dir) {
  const sharp = require('sharp');
  fs.mkdirSync(dir, { recursive: true });
  const files = [];
  for (const f of frames) {
    const file = path.join(dir, `${f.name}.png`);
    await sharp(Buffer.from(f.gray), { raw: { width: f.width, height: f.height, channels: 1 } }).png().toFile(file);
    files.push(file);
  }
  const manifest = frames.map(({ gray, ...rest }) => rest);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  return files;
}

module.exports = { buildDetectFrames, writeDetectFrames, background, paste, rng, boxBlur, decodeGray, EVAL_SEED, HELD_OUT_JAFFE, SIZES };
