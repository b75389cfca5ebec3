/**
 * Binarization, as one small named piece used by every binary layer (in the spirit of Larq's
 * `ste_sign`).
 *
 *   steSign(x)   forward: +1 where x >= 0, else -1 (never 0: sign(0) is +1 here and in the C core)
 *                backward: dy where |x| <= 1, else 0 (straight-through estimator, hard-tanh clip)
 *   binarizeKernel(W)  forward: sign(W) * alpha, alpha = mean |W| per output channel (XNOR-Net)
 *                      backward: STE through sign, real gradient through alpha
 */
import * as tf from '@tensorflow/tfjs';

export const steSign: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const value = tf.where(tf.greaterEqual(x, 0), tf.onesLike(x), tf.onesLike(x).neg());
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [input] = saved;
      return [tf.mul(dy, tf.cast(tf.lessEqual(tf.abs(input), 1), dy.dtype))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/** Per-output-channel scale alpha = mean |W| over all but the last axis. */
export function kernelScale(kernel: tf.Tensor): tf.Tensor {
  const axes = kernel.shape.slice(0, -1).map((_, i) => i);
  return tf.mean(tf.abs(kernel), axes);
}

/** sign(W) * alpha with the STE on sign and the true gradient through alpha. */
export function binarizeKernel(kernel: tf.Tensor): tf.Tensor {
  return tf.mul(steSign(kernel), kernelScale(kernel));
}

/**
 * Symmetric per-channel quantization: each channel's values become q * s, s = max |w| / qmax,
 * q = round(w / s) (half away from zero) in -qmax..qmax, all in float32 (qmax 127: int8).
 * `channelAxis` 'last': `values` interleaves the channels as a tfjs kernel does (index i is
 * channel i % channels); 'first': each channel's values are contiguous (the blob's [cout][...]).
 * Zero channels stay zero.
 */
export function quantizePerChannel(values: Float32Array, channels: number, qmax = 127, channelAxis: 'last' | 'first' = 'last'): Float32Array {
  const f = Math.fround;
  const n = values.length / channels;
  const at = (o: number, k: number) => (channelAxis === 'last' ? k * channels + o : o * n + k);
  const out = new Float32Array(values.length);
  for (let o = 0; o < channels; o++) {
    let max = 0;
    for (let k = 0; k < n; k++) max = Math.max(max, Math.abs(values[at(o, k)]));
    if (max === 0) continue;
    const s = f(max / qmax);
    for (let k = 0; k < n; k++) {
      const r = f(values[at(o, k)] / s);
      const q = Math.min(qmax, Math.max(-qmax, r >= 0 ? Math.floor(f(r + 0.5)) : -Math.floor(f(-r + 0.5))));
      out[at(o, k)] = f(q * s);
    }
  }
  return out;
}

/** The float32 `steps` ulps away from the positive float32 `x` (negative: toward zero). */
export function f32Step(x: number, steps: number): number {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  u[0] += steps;
  return b[0];
}

/**
 * The integers and scales of `values` when they lie on quantizePerChannel's grid (every channel's
 * values are exactly f32(q * s) for one float32 s > 0 and integers |q| <= qmax; a zero channel has
 * q = 0 and s = 0), else null: what the exporter uses to tell a kernel trained with --stem-int8.
 * s is looked for as f32(max / qmax) of the rounded values (quantizePerChannel's own s: 3000
 * random 32-channel kernels, none missed) and its float32 neighbours, two ulps either side (a
 * scale computed in another order, e.g. by another trainer, lands there). q is laid out as `values` is.
 */
export function onPerChannelGrid(values: Float32Array, channels: number, qmax = 127, channelAxis: 'last' | 'first' = 'last'): { q: Int32Array; scale: Float32Array } | null {
  const f = Math.fround;
  const n = values.length / channels;
  const at = (o: number, k: number) => (channelAxis === 'last' ? k * channels + o : o * n + k);
  const q = new Int32Array(values.length);
  const scale = new Float32Array(channels);
  const fits = (o: number, s: number): boolean => {
    for (let k = 0; k < n; k++) {
      const v = values[at(o, k)];
      const r = Math.round(v / s);
      if (Math.abs(r) > qmax || f(r * s) !== v) return false;
    }
    return true;
  };
  for (let o = 0; o < channels; o++) {
    let max = 0;
    for (let k = 0; k < n; k++) max = Math.max(max, Math.abs(values[at(o, k)]));
    if (max === 0) continue;
    const s0 = f(max / qmax);
    const s = [0, -1, 1, -2, 2].map((d) => f32Step(s0, d)).find((c) => c > 0 && Number.isFinite(c) && fits(o, c));
    if (s === undefined) return null;
    scale[o] = s;
    for (let k = 0; k < n; k++) q[at(o, k)] = Math.round(values[at(o, k)] / s);
  }
  return { q, scale };
}
