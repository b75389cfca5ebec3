/**
 * Custom tfjs layers of the TinyFER network, registered with tf.serialization so that a saved
 * model reloads with tf.loadLayersModel.
 *
 * BinaryConv2D: sign activations (with a learnt per-channel threshold), sign weights scaled by
 *   alpha = mean|W| per output channel, 3x3, padding with +1 (so the C core sees only +-1 and
 *   needs no zero correction). With `binary: false` it is the float twin: x - threshold, real
 *   weights, zero padding.
 * Cbam: channel attention (avg + max pool -> shared MLP -> sigmoid) then spatial attention
 *   (channel mean + max -> 7x7 conv -> sigmoid), full precision.
 * The exact inference semantics are written down in ./folded.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { binarizeKernel, steSign } from './quantizers';

type Kwargs = Record<string, unknown>;

/** Saved configs hold `seed: null` for "no seed"; constructors want it absent. */
function withoutNullSeed(config: tf.serialization.ConfigDict): Kwargs {
  const c = { ...config } as Kwargs;
  if (c.seed === null) delete c.seed;
  return c;
}

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

export interface BinaryConv2DArgs {
  filters: number;
  strides?: 1 | 2;
  binary?: boolean;
  seed?: number;
  name?: string;
}

export class BinaryConv2D extends tf.layers.Layer {
  static className = 'TinyFerBinaryConv2D';
  readonly filters: number;
  readonly strides: 1 | 2;
  readonly binary: boolean;
  readonly seed?: number;
  private kernel!: tf.LayerVariable;
  private threshold!: tf.LayerVariable;

  constructor(args: BinaryConv2DArgs) {
    super({ name: args.name });
    this.filters = args.filters;
    this.strides = args.strides ?? 1;
    this.binary = args.binary ?? true;
    this.seed = args.seed;
  }

  build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const cin = shape[shape.length - 1] as number;
    this.kernel = this.addWeight(
      'kernel',
      [3, 3, cin, this.filters],
      'float32',
      tf.initializers.glorotUniform({ seed: this.seed }),
    );
    this.threshold = this.addWeight('threshold', [cin], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const h = s[1] === null ? null : Math.ceil((s[1] as number) / this.strides);
    const w = s[2] === null ? null : Math.ceil((s[2] as number) / this.strides);
    return [s[0], h, w, this.filters];
  }

  call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const shifted = tf.sub(x, this.threshold.read());
      if (!this.binary) {
        return tf.conv2d(shifted as tf.Tensor4D, this.kernel.read() as tf.Tensor4D, this.strides, 'same');
      }
      const b = steSign(shifted) as tf.Tensor4D;
      // Pad with +1: the binary plane never holds a third value.
      const padded = tf.pad(b, [[0, 0], [1, 1], [1, 1], [0, 0]], 1);
      const w = binarizeKernel(this.kernel.read()) as tf.Tensor4D;
      return tf.conv2d(padded, w, this.strides, 'valid');
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, strides: this.strides, binary: this.binary, seed: this.seed ?? null };
  }

  static fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(withoutNullSeed(config));
  }
}

export interface CbamArgs {
  reduction?: number;
  seed?: number;
  name?: string;
}

export class Cbam extends tf.layers.Layer {
  static className = 'TinyFerCbam';
  readonly reduction: number;
  readonly seed?: number;
  private w1!: tf.LayerVariable;
  private b1!: tf.LayerVariable;
  private w2!: tf.LayerVariable;
  private b2!: tf.LayerVariable;
  private sw!: tf.LayerVariable;
  private sb!: tf.LayerVariable;

  constructor(args: CbamArgs = {}) {
    super({ name: args.name });
    this.reduction = args.reduction ?? 4;
    this.seed = args.seed;
  }

  build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const c = shape[shape.length - 1] as number;
    const hidden = Math.max(1, Math.floor(c / this.reduction));
    const init = (s: number) => tf.initializers.glorotUniform({ seed: this.seed === undefined ? undefined : this.seed + s });
    this.w1 = this.addWeight('mlp_w1', [c, hidden], 'float32', init(1));
    this.b1 = this.addWeight('mlp_b1', [hidden], 'float32', tf.initializers.zeros());
    this.w2 = this.addWeight('mlp_w2', [hidden, c], 'float32', init(2));
    this.b2 = this.addWeight('mlp_b2', [c], 'float32', tf.initializers.zeros());
    this.sw = this.addWeight('spatial_w', [7, 7, 2, 1], 'float32', init(3));
    this.sb = this.addWeight('spatial_b', [1], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  }

  call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const mlp = (v: tf.Tensor2D) =>
        tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(v, this.w1.read() as tf.Tensor2D), this.b1.read())), this.w2.read() as tf.Tensor2D), this.b2.read());
      const avg = tf.mean(x, [1, 2]) as tf.Tensor2D;
      const max = tf.max(x, [1, 2]) as tf.Tensor2D;
      const ca = tf.sigmoid(tf.add(mlp(avg), mlp(max))); // [N, C]
      const xc = tf.mul(x, tf.expandDims(tf.expandDims(ca, 1), 1)) as tf.Tensor4D;
      const pooled = tf.concat([tf.mean(xc, 3, true), tf.max(xc, 3, true)], 3) as tf.Tensor4D;
      const sa = tf.sigmoid(tf.add(tf.conv2d(pooled, this.sw.read() as tf.Tensor4D, 1, 'same'), this.sb.read()));
      return tf.mul(xc, sa);
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), reduction: this.reduction, seed: this.seed ?? null };
  }

  static fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(withoutNullSeed(config));
  }
}

tf.serialization.registerClass(BinaryConv2D);
tf.serialization.registerClass(Cbam);
