/**
 * Pure TypeScript reference implementation of the folded network (src/model/folded.ts).
 *
 * Every float32 operation is rounded with Math.fround, in the same order as the C core
 * (firmware/core/src/op_*.c), and exp is the same float32 algorithm (tfr_expf), so the C
 * core on the host, its WebAssembly build and this file agree bit for bit (the C core is
 * built with -ffp-contract=off; a double product or sum of two float32 values rounded once
 * to float32 is the correctly rounded float32 result). It is slow and simple on purpose:
 * it generates the expected scores of the TS<->C test vectors.
 */
import { isInt8Stem, type FoldedBinaryBlock, type FoldedCbam, type FoldedInt8Stem, type FoldedModel } from '../model/folded';
import { FACE_PIXELS, FACE_SIZE } from '../model/labels';
import type { FaceClassifier, Scores } from './types';

const f = Math.fround;

const LOG2E = f(1.44269502);
const LN2_HI = f(0.693359375);
const LN2_LO = f(-2.1219444e-4);
const P7 = f(1.98412698e-4);
const P6 = f(1.38888889e-3);
const P5 = f(8.33333377e-3);
const P4 = f(4.16666679e-2);
const P3 = f(1.66666672e-1);

/** float32 exp, the exact operations of tfr_expf (firmware/core/src/tfr_math.c). */
export function expf32(xIn: number): number {
  let x = f(xIn);
  if (x !== x) return x;
  if (x < -87) return 0;
  if (x > 88) x = 88;
  const t = f(x * LOG2E);
  const n = Math.trunc(f(t + (t >= 0 ? 0.5 : -0.5)));
  let r = f(x - f(n * LN2_HI));
  r = f(r - f(n * LN2_LO));
  let p = P7;
  p = f(f(p * r) + P6);
  p = f(f(p * r) + P5);
  p = f(f(p * r) + P4);
  p = f(f(p * r) + P3);
  p = f(f(p * r) + 0.5);
  p = f(f(p * r) + 1);
  p = f(f(p * r) + 1);
  return f(p * 2 ** n);
}

export function sigmoidf32(x: number): number {
  return f(1 / f(1 + expf32(-x)));
}

/** out[o] = (sum_i w[o][i] * v[i]) + b[o]; no b: the sum alone (tfr_op_dense with b NULL) */
function dense(v: Float32Array, w: Float32Array, b: Float32Array | undefined, nout: number): Float32Array {
  const nin = v.length;
  const out = new Float32Array(nout);
  for (let o = 0; o < nout; o++) {
    let acc = 0;
    for (let i = 0; i < nin; i++) acc = f(acc + f(w[o * nin + i] * v[i]));
    out[o] = b ? f(acc + b[o]) : acc;
  }
  return out;
}

interface Plane {
  size: number;
  c: number;
  /** [size][size][c] */
  data: Float32Array;
}

/** The int8 stem: exact integer sums (JS numbers), the largest of each 2x2 window, then two
 * float32 roundings: (m * scale) + bias. */
function stemInt8(s: FoldedInt8Stem, face: Uint8Array): Plane {
  const n = FACE_SIZE;
  const h = n / 2;
  const cout = s.cout;
  const out = new Float32Array(h * h * cout);
  const conv = (o: number, y: number, x: number): number => {
    let acc = 0;
    for (let ky = 0; ky < 3; ky++) {
      for (let kx = 0; kx < 3; kx++) {
        const iy = y + ky - 1;
        const ix = x + kx - 1;
        if (iy < 0 || iy >= n || ix < 0 || ix >= n) continue;
        acc += s.weightQ[o * 9 + ky * 3 + kx] * face[iy * n + ix];
      }
    }
    return acc;
  };
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < h; xx++) {
      for (let o = 0; o < cout; o++) {
        const m = Math.max(conv(o, 2 * y, 2 * xx), conv(o, 2 * y, 2 * xx + 1), conv(o, 2 * y + 1, 2 * xx), conv(o, 2 * y + 1, 2 * xx + 1));
        out[(y * h + xx) * cout + o] = f(f(m * s.scale[o]) + s.bias[o]);
      }
    }
  }
  return { size: h, c: cout, data: out };
}

function stem(m: FoldedModel, face: Uint8Array): Plane {
  if (isInt8Stem(m.stem)) return stemInt8(m.stem, face);
  const s = m.stem;
  const n = FACE_SIZE;
  const cout = s.cout;
  const scale = f(m.inputScale);
  const x = new Float32Array(FACE_PIXELS);
  for (let i = 0; i < FACE_PIXELS; i++) x[i] = f(face[i] * scale);
  const conv = new Float32Array(n * n * cout);
  for (let y = 0; y < n; y++) {
    for (let xx = 0; xx < n; xx++) {
      for (let o = 0; o < cout; o++) {
        let acc = 0;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const iy = y + ky - 1;
            const ix = xx + kx - 1;
            if (iy < 0 || iy >= n || ix < 0 || ix >= n) continue;
            acc = f(acc + f(s.weight[o * 9 + ky * 3 + kx] * x[iy * n + ix]));
          }
        }
        conv[(y * n + xx) * cout + o] = f(acc + s.bias[o]);
      }
    }
  }
  const h = n / 2;
  const out = new Float32Array(h * h * cout);
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < h; xx++) {
      for (let c = 0; c < cout; c++) {
        const a = conv[((2 * y) * n + 2 * xx) * cout + c];
        const b = conv[((2 * y) * n + 2 * xx + 1) * cout + c];
        const d = conv[((2 * y + 1) * n + 2 * xx) * cout + c];
        const e = conv[((2 * y + 1) * n + 2 * xx + 1) * cout + c];
        let mx = a;
        if (b > mx) mx = b;
        if (d > mx) mx = d;
        if (e > mx) mx = e;
        out[(y * h + xx) * cout + c] = mx;
      }
    }
  }
  return { size: h, c: cout, data: out };
}

/** Population count of a 32-bit integer. */
function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  v = (v + (v >>> 4)) & 0x0f0f0f0f;
  return Math.imul(v, 0x01010101) >>> 24;
}

function binaryBlock(b: FoldedBinaryBlock, x: Plane): Plane {
  const { size, data } = x;
  const { cin, cout, stride } = b;
  const words = Math.ceil(cin / 32);
  const sp = size + 2;
  // Activation signs, bit set = +1, on the plane padded with +1.
  const act = new Int32Array(sp * sp * words);
  for (let y = 0; y < sp; y++) {
    for (let xx = 0; xx < sp; xx++) {
      const at = (y * sp + xx) * words;
      const border = y === 0 || xx === 0 || y === sp - 1 || xx === sp - 1;
      for (let c = 0; c < cin; c++) {
        const plus = border || data[((y - 1) * size + (xx - 1)) * cin + c] >= b.threshold[c];
        if (plus) act[at + (c >>> 5)] |= 1 << (c & 31);
      }
    }
  }
  const wbits = new Int32Array(cout * 9 * words);
  for (let t = 0; t < cout * 9; t++) {
    for (let c = 0; c < cin; c++) if (b.weightSign[t * cin + c] > 0) wbits[t * words + (c >>> 5)] |= 1 << (c & 31);
  }
  const so = Math.floor((size - 1) / stride) + 1;
  const out = new Float32Array(so * so * cout);
  const n = 9 * cin;
  const pooled = new Float32Array(cin);
  for (let oy = 0; oy < so; oy++) {
    for (let ox = 0; ox < so; ox++) {
      if (b.shortcutWeight) {
        for (let c = 0; c < cin; c++) {
          const a = data[((2 * oy) * size + 2 * ox) * cin + c];
          const bb = data[((2 * oy) * size + 2 * ox + 1) * cin + c];
          const d = data[((2 * oy + 1) * size + 2 * ox) * cin + c];
          const e = data[((2 * oy + 1) * size + 2 * ox + 1) * cin + c];
          pooled[c] = f(f(f(f(a + bb) + d) + e) * 0.25);
        }
      }
      for (let o = 0; o < cout; o++) {
        // XNOR/popcount conv: matches - mismatches over the 9*cin products, an exact integer.
        let mismatches = 0;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const a = ((oy * stride + ky) * sp + ox * stride + kx) * words;
            const w = (o * 9 + ky * 3 + kx) * words;
            for (let k = 0; k < words; k++) mismatches += popcount(act[a + k] ^ wbits[w + k]);
          }
        }
        const conv = n - 2 * mismatches;
        const main = f(f(b.scale[o] * conv) + b.bias[o]);
        let short: number;
        if (b.shortcutWeight && b.shortcutBias) {
          let acc = 0;
          for (let c = 0; c < cin; c++) acc = f(acc + f(b.shortcutWeight[o * cin + c] * pooled[c]));
          short = f(acc + b.shortcutBias[o]);
        } else {
          short = data[(oy * size + ox) * cin + o];
        }
        const y = f(main + short);
        out[(oy * so + ox) * cout + o] = y >= 0 ? y : f(b.prelu[o] * y);
      }
    }
  }
  return { size: so, c: cout, data: out };
}

function mlp(v: Float32Array, cb: FoldedCbam): Float32Array {
  const h = dense(v, cb.w1, cb.b1, cb.hidden);
  for (let j = 0; j < h.length; j++) h[j] = h[j] > 0 ? h[j] : 0;
  return dense(h, cb.w2, cb.b2, cb.channels);
}

function cbam(cb: FoldedCbam, x: Plane): Plane {
  const { size, c } = x;
  const hw = size * size;
  const data = Float32Array.from(x.data);
  // channel attention
  const avg = new Float32Array(c);
  const mx = data.slice(0, c);
  for (let i = 0; i < hw; i++) {
    for (let k = 0; k < c; k++) {
      const v = data[i * c + k];
      avg[k] = f(avg[k] + v);
      if (v > mx[k]) mx[k] = v;
    }
  }
  for (let k = 0; k < c; k++) avg[k] = f(avg[k] / hw);
  const ma = mlp(avg, cb);
  const mm = mlp(mx, cb);
  const att = new Float32Array(c);
  for (let k = 0; k < c; k++) att[k] = sigmoidf32(f(ma[k] + mm[k]));
  for (let i = 0; i < hw; i++) for (let k = 0; k < c; k++) data[i * c + k] = f(data[i * c + k] * att[k]);
  // spatial attention
  const am = new Float32Array(2 * hw);
  for (let i = 0; i < hw; i++) {
    let sum = 0;
    let m = data[i * c];
    for (let k = 0; k < c; k++) {
      const v = data[i * c + k];
      sum = f(sum + v);
      if (v > m) m = v;
    }
    am[2 * i] = f(sum / c);
    am[2 * i + 1] = m;
  }
  const sb = f(cb.spatialBias);
  const s = new Float32Array(hw);
  for (let y = 0; y < size; y++) {
    for (let xx = 0; xx < size; xx++) {
      let acc = 0;
      for (let ky = 0; ky < 7; ky++) {
        const iy = y + ky - 3;
        if (iy < 0 || iy >= size) continue;
        for (let kx = 0; kx < 7; kx++) {
          const ix = xx + kx - 3;
          if (ix < 0 || ix >= size) continue;
          const w = (ky * 7 + kx) * 2;
          const v = (iy * size + ix) * 2;
          acc = f(acc + f(cb.spatialWeight[w] * am[v]));
          acc = f(acc + f(cb.spatialWeight[w + 1] * am[v + 1]));
        }
      }
      s[y * size + xx] = sigmoidf32(f(acc + sb));
    }
  }
  for (let i = 0; i < hw; i++) for (let k = 0; k < c; k++) data[i * c + k] = f(data[i * c + k] * s[i]);
  return { size, c, data };
}

function softmax(logits: Float32Array): Float32Array {
  let m = logits[0];
  for (let i = 1; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = expf32(f(logits[i] - m));
    sum = f(sum + out[i]);
  }
  for (let i = 0; i < logits.length; i++) out[i] = f(out[i] / sum);
  return out;
}

function checkFace(face: unknown, i: number): asserts face is Uint8Array {
  if (!(face instanceof Uint8Array) || face.length !== FACE_PIXELS) {
    const what = face instanceof Uint8Array ? `a Uint8Array of ${face.length} bytes` : typeof face;
    throw new Error(`face ${i} must be a Uint8Array of ${FACE_PIXELS} grayscale pixels (48x48), got ${what}`);
  }
}

/** The stem's output of one face (24x24xC, [y][x][c]): for tests of the stem on its own. */
export function referenceStem(model: FoldedModel, face: Uint8Array): Float32Array {
  checkFace(face, 0);
  return stem(model, face).data;
}

/**
 * The features the classifier sees of one face: the global average of the last plane [C], or
 * with a grid head (folded.ts) the g*g regions' averages, each reduced to k values [g*g*k].
 */
export function referenceFeatures(model: FoldedModel, face: Uint8Array): Float32Array {
  checkFace(face, 0);
  let x = stem(model, face);
  for (const b of model.blocks) x = b.type === 'binary' ? binaryBlock(b, x) : cbam(b, x);
  const g = model.gridHead;
  if (!g) return regionMean(x, 0, 0, x.size);
  const side = x.size / g.grid;
  const v = new Float32Array(g.grid * g.grid * g.k);
  for (let i = 0; i < g.grid; i++) {
    for (let j = 0; j < g.grid; j++) {
      v.set(dense(regionMean(x, i * side, j * side, side), g.reduce, undefined, g.k), (i * g.grid + j) * g.k);
    }
  }
  return v;
}

/** Per channel, the mean of the side x side pixels from (y0, x0): summed row by row, then divided. */
function regionMean(x: Plane, y0: number, x0: number, side: number): Float32Array {
  const v = new Float32Array(x.c);
  for (let y = y0; y < y0 + side; y++) {
    for (let xx = x0; xx < x0 + side; xx++) {
      const p = (y * x.size + xx) * x.c;
      for (let k = 0; k < x.c; k++) v[k] = f(v[k] + x.data[p + k]);
    }
  }
  const n = side * side;
  for (let k = 0; k < x.c; k++) v[k] = f(v[k] / n);
  return v;
}

/** Softmax scores of one 48x48 face, in model.labels order. */
export function referenceScores(model: FoldedModel, face: Uint8Array): Scores {
  const v = referenceFeatures(model, face);
  return softmax(dense(v, model.headWeight, model.headBias, model.labels.length));
}

export interface Agreement {
  faces: number;
  /** Largest |a - b| over every score of every face. */
  maxAbsDiff: number;
  /** Faces whose top class is the same in both. */
  top1Agree: number;
  /** top1Agree / faces */
  top1Agreement: number;
  /** Faces whose scores are bit-identical. */
  exact: number;
}

function argmax(s: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[best]) best = i;
  return best;
}

/** Compares two score lists face by face. */
export function compareScores(a: ArrayLike<number>[], b: ArrayLike<number>[]): Agreement {
  if (a.length !== b.length) throw new Error(`score lists differ in length: ${a.length} vs ${b.length}`);
  let maxAbsDiff = 0;
  let top1Agree = 0;
  let exact = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i].length !== b[i].length) throw new Error(`face ${i}: ${a[i].length} vs ${b[i].length} scores`);
    let same = true;
    for (let k = 0; k < a[i].length; k++) {
      const d = Math.abs(a[i][k] - b[i][k]);
      if (!(d <= maxAbsDiff)) maxAbsDiff = d; // NaN propagates
      if (a[i][k] !== b[i][k]) same = false;
    }
    if (argmax(a[i]) === argmax(b[i])) top1Agree++;
    if (same) exact++;
  }
  return { faces: a.length, maxAbsDiff, top1Agree, top1Agreement: a.length ? top1Agree / a.length : 1, exact };
}

/**
 * Runs the reference on `faces` and compares it with `other`: precomputed scores (e.g. the
 * tfjs graph's predictions) or any FaceClassifier (e.g. the wasm BinaryEngine).
 */
export async function compare(
  model: FoldedModel,
  faces: Uint8Array[],
  other: Scores[] | FaceClassifier,
): Promise<Agreement> {
  faces.forEach(checkFace);
  const ref = faces.map((face) => referenceScores(model, face));
  const theirs = Array.isArray(other) ? other : await other.classify(faces);
  return compareScores(ref, theirs);
}
