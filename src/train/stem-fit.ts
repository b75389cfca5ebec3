/**
 * An int8 stem fitted to a trained float stem (issue 17: the ESP32-S3 runs an int8 stem in 1.8 ms,
 * a float one in 10.8).
 *
 * Rounding each weight to the nearest step of its channel's int8 grid moves the stem's outputs a
 * little, and the first binary block turns the outputs near its thresholds into flipped signs: on
 * r8, 119 of a face's 18,432 first-block activations (and 404 of 3589 PublicTest top classes).
 * Here each output channel instead gets the integers, scale and offset that keep those signs:
 *   - start from the nearest rounding (quantizePerChannel: the largest weight at +-127, the
 *     training grid);
 *   - the scale and offset by least squares against the float stem's pooled outputs, weighting
 *     the outputs near the channel's threshold 21 times (1 + 20 exp(-d^2 / 2 (0.05 sd)^2));
 *   - then move one weight at a time by +-1 (never the +-127 one, none past +-126) while that
 *     lowers the number of sign flips at the threshold, refitting scale and offset each time.
 * The channels are independent (each has its own threshold), so each is fitted alone, on the
 * pooled outputs of `faces` training faces. The result keeps the grid the trainer uses
 * (`quantizePerChannel` gives the same integers back), so `train --stem-int8` can go on from it.
 */
import type { FoldedInt8Stem, FoldedModel } from '../model/folded';
import { isInt8Stem } from '../model/folded';
import { FACE_PIXELS, FACE_SIZE } from '../model/labels';
import { onPerChannelGrid, quantizePerChannel } from '../model/quantizers';

export interface StemFitOptions {
  /** Training faces the fit sees (default 1000, or all when fewer). */
  faces?: number;
  /** Coordinate-descent sweeps per channel (default 10). */
  sweeps?: number;
  /** Picks the faces (default 1). */
  seed?: number;
}

export interface StemFit {
  stem: FoldedInt8Stem;
  faces: number;
  /** First-block sign flips per face against the float stem: nearest rounding, fitted. */
  flipsNearest: number;
  flipsFitted: number;
}

const POOLED = (FACE_SIZE / 2) * (FACE_SIZE / 2);

/** The larger of each 2x2 window of a 48x48 plane per face. */
function pool(a: Float64Array | Int32Array, faces: number, out: Float64Array): Float64Array {
  const n = FACE_SIZE;
  const h = n / 2;
  for (let f = 0; f < faces; f++) {
    const b = f * FACE_PIXELS;
    const o = f * POOLED;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < h; x++) {
        const i = b + 2 * y * n + 2 * x;
        out[o + y * h + x] = Math.max(a[i], a[i + 1], a[i + n], a[i + n + 1]);
      }
    }
  }
  return out;
}

/**
 * The int8 stem for `model`'s float stem, fitted on `pixels` (N faces of 48x48 bytes). The model's
 * first block must be binary (its thresholds are what the fit keeps).
 */
export function fitInt8Stem(model: FoldedModel, pixels: Uint8Array, opts: StemFitOptions = {}): StemFit {
  const s = model.stem;
  if (isInt8Stem(s)) throw new Error('the stem is already int8');
  const first = model.blocks[0];
  if (!first || first.type !== 'binary') throw new Error('the first block after the stem must be binary');
  const total = Math.floor(pixels.length / FACE_PIXELS);
  if (total < 1) throw new Error('no faces to fit the int8 stem on');
  const n = Math.min(total, opts.faces ?? 1000);
  const sweeps = opts.sweeps ?? 10;
  // n distinct faces, a fixed pseudo-random choice (LCG) so that a fit is reproducible.
  let r = ((opts.seed ?? 1) * 2654435761) >>> 0;
  const next = () => (r = (Math.imul(r, 1664525) + 1013904223) >>> 0) / 4294967296;
  const picked: number[] = [];
  const used = new Set<number>();
  while (picked.length < n) {
    const i = n === total ? picked.length : Math.floor(next() * total);
    if (!used.has(i)) {
      used.add(i);
      picked.push(i);
    }
  }
  // plane[t]: each face's pixel under tap t of the 3x3 window ('same' zero padding), per output pixel.
  const planes = Array.from({ length: 9 }, () => new Uint8Array(n * FACE_PIXELS));
  picked.forEach((fi, f) => {
    const px = pixels.subarray(fi * FACE_PIXELS, (fi + 1) * FACE_PIXELS);
    for (let t = 0; t < 9; t++) {
      const dy = Math.floor(t / 3) - 1;
      const dx = (t % 3) - 1;
      const plane = planes[t];
      for (let y = 0; y < FACE_SIZE; y++) {
        const iy = y + dy;
        if (iy < 0 || iy >= FACE_SIZE) continue;
        for (let x = 0; x < FACE_SIZE; x++) {
          const ix = x + dx;
          if (ix >= 0 && ix < FACE_SIZE) plane[f * FACE_PIXELS + y * FACE_SIZE + x] = px[iy * FACE_SIZE + ix];
        }
      }
    }
  });
  const size = n * FACE_PIXELS;
  const samples = n * POOLED;
  const cout = s.cout;
  const weightQ = new Int8Array(cout * 9);
  const scale = new Float32Array(cout).fill(1);
  const bias = new Float32Array(cout);
  const yf = new Float64Array(samples);
  const m = new Float64Array(samples);
  const wt = new Float64Array(samples);
  const above = new Uint8Array(samples);
  const conv = new Int32Array(size);
  const real = new Float64Array(size);
  // the trainer's rounding (quantizePerChannel): the integers every channel starts from
  const nearest = onPerChannelGrid(quantizePerChannel(s.weight, cout, 127, 'first'), cout, 127, 'first');
  if (!nearest) throw new Error('the stem rounded to int8 is not on the int8 grid'); // never: quantizePerChannel's own grid
  let flipsNearest = 0;
  let flipsFitted = 0;
  for (let o = 0; o < cout; o++) {
    const w = s.weight.subarray(o * 9, o * 9 + 9);
    const t = first.threshold[o];
    let max = 0;
    for (const v of w) max = Math.max(max, Math.abs(v));
    if (max === 0) {
      scale[o] = 1;
      bias[o] = s.bias[o];
      continue;
    }
    // The float stem's pooled outputs (float64: the float32 core differs by far less than a step).
    real.fill(0);
    for (let k = 0; k < 9; k++) {
      const c = w[k] * model.inputScale;
      const plane = planes[k];
      for (let i = 0; i < size; i++) real[i] += c * plane[i];
    }
    pool(real, n, yf);
    let mean = 0;
    for (let i = 0; i < samples; i++) {
      yf[i] += s.bias[o];
      above[i] = yf[i] >= t ? 1 : 0;
      mean += yf[i];
    }
    mean /= samples;
    let variance = 0;
    for (let i = 0; i < samples; i++) variance += (yf[i] - mean) ** 2;
    variance /= samples;
    const width2 = 2 * 0.05 * 0.05 * variance || 1; // a constant channel (variance 0): every output weighted alike
    for (let i = 0; i < samples; i++) wt[i] = 1 + 20 * Math.exp(-((yf[i] - t) ** 2) / width2);

    const step = (max * model.inputScale) / 127;
    const q = Int32Array.from(nearest.q.subarray(o * 9, o * 9 + 9));
    conv.fill(0);
    for (let k = 0; k < 9; k++) {
      const plane = planes[k];
      for (let i = 0; i < size; i++) conv[i] += q[k] * plane[i];
    }
    const flipsOf = (a: number, b: number): number => {
      let flips = 0;
      for (let i = 0; i < samples; i++) if ((a * m[i] + b >= t ? 1 : 0) !== above[i]) flips++;
      return flips;
    };
    // scale and offset of the current integers: weighted least squares, and its flips.
    const evaluate = (): { a: number; b: number; flips: number } => {
      pool(conv, n, m);
      let sw = 0;
      let sm = 0;
      let smm = 0;
      let sy = 0;
      let smy = 0;
      for (let i = 0; i < samples; i++) {
        const v = wt[i];
        sw += v;
        sm += v * m[i];
        smm += v * m[i] * m[i];
        sy += v * yf[i];
        smy += v * m[i] * yf[i];
      }
      const det = sw * smm - sm * sm;
      const a = det > 0 ? (sw * smy - sm * sy) / det : step;
      const b = (sy - a * sm) / sw;
      return { a, b, flips: flipsOf(a, b) };
    };
    pool(conv, n, m);
    flipsNearest += flipsOf(step, s.bias[o]);
    let best = evaluate();
    for (let sweep = 0; sweep < sweeps; sweep++) {
      let moved = false;
      for (let k = 0; k < 9; k++) {
        if (Math.abs(q[k]) === 127) continue; // the grid's largest weight stays
        for (const d of [1, -1]) {
          if (Math.abs(q[k] + d) > 126) continue;
          const plane = planes[k];
          for (let i = 0; i < size; i++) conv[i] += d * plane[i];
          const e = evaluate();
          if (e.a > 0 && e.flips < best.flips) {
            best = e;
            q[k] += d;
            moved = true;
            break;
          }
          for (let i = 0; i < size; i++) conv[i] -= d * plane[i];
        }
      }
      if (!moved) break;
    }
    if (!(best.a > 0)) throw new Error(`stem channel ${o}: no positive scale fits (a dead channel?)`);
    flipsFitted += best.flips;
    for (let k = 0; k < 9; k++) weightQ[o * 9 + k] = q[k];
    scale[o] = best.a;
    bias[o] = best.b;
  }
  return { stem: { cin: 1, cout, k: 3, weightQ, scale, bias }, faces: n, flipsNearest: flipsNearest / n, flipsFitted: flipsFitted / n };
}
