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
