/**
 * The TinyFER binary attention network (training graph) and its float twin.
 *
 *   input 48x48x1 (pixel / 255)
 *   stem   conv3x3 1->32 (full precision) + BN, maxpool 2        -> 24x24x32
 *   block  binary 32->32                                          -> 24x24x32
 *   block  binary 32->32
 *   cbam   (32, reduction 4)
 *   block  binary 32->56, stride 2, projected shortcut            -> 12x12x56
 *   block  binary 56->56
 *   cbam   (56, reduction 4)
 *   gap -> dropout -> dense 7 (softmax)
 *
 * or with a grid head (ARCHS grid > 0, tinyfer-b1g): avgpool over g x g regions
 * ('headg_pool') -> a bias-free dense C -> k on every region ('headg_reduce') -> flatten in
 * (row, column, value) order -> dropout -> dense 7 (softmax, 'headg').
 *
 * A binary block is Bi-Real style: y = BN(BinaryConv(sign(x - t))) + shortcut(x); out = PReLU(y).
 * `binary: false` builds the float twin with the same topology (no binarization anywhere).
 */
import * as tf from '@tensorflow/tfjs';
import { BinaryConv2D, Cbam } from './layers';
import { FACE_SIZE, NUM_CLASSES } from './labels';
import { ARCHS, ARCH_NAME, type ArchName } from './archs';

export interface NetworkOptions {
  binary?: boolean;
  seed?: number;
  /** The named architecture (ARCHS); its widths and depths unless given. Default tinyfer-b1. */
  arch?: ArchName;
  /** Channels of each stage (overrides the architecture's). */
  widths?: number[];
  dropout?: number;
  /** Outputs of the classifier (7 for our labels; a dataset's own label count otherwise). */
  numClasses?: number;
}

export interface BlockSpec {
  kind: 'binary' | 'cbam';
  /** Layer name prefix; exporter and tests find the layers by it. */
  name: string;
  cin: number;
  cout: number;
  stride: 1 | 2;
  /** A repeat pass: this block runs the binary convolution of block `shares` (same cin/cout, stride 1). */
  shares?: string;
}

export { ARCHS, ARCH_NAME, archOf, type ArchName } from './archs';

/** The block sequence after the stem, shared by the builder and the exporter. */
export function blockSpecs(widths: readonly number[] = ARCHS[ARCH_NAME].widths, depths?: readonly number[], repeat = false): BlockSpec[] {
  const specs: BlockSpec[] = [];
  let k = 1;
  let cin = widths[0];
  widths.forEach((w, stage) => {
    const n = depths?.[stage] ?? 2;
    const own: BlockSpec[] = [];
    for (let j = 0; j < n; j++) {
      const stride = stage > 0 && j === 0 ? 2 : 1;
      own.push({ kind: 'binary', name: `b${k++}`, cin, cout: w, stride });
      cin = w;
    }
    specs.push(...own);
    // The repeat pass: the stage's stride-1 blocks again, each named after its original + 'r'.
    if (repeat) for (const b of own.filter((b) => b.stride === 1)) specs.push({ ...b, name: `${b.name}r`, shares: b.name });
    specs.push({ kind: 'cbam', name: `cbam${stage + 1}`, cin: w, cout: w, stride: 1 });
  });
  return specs;
}

const BN_EPS = 1e-3;
const BN_MOMENTUM = 0.99;

export function buildNetwork(opts: NetworkOptions = {}): tf.LayersModel {
  const binary = opts.binary ?? true;
  const arch = opts.arch ?? ARCH_NAME;
  const widths = opts.widths ?? ARCHS[arch].widths;
  const depths = opts.widths ? undefined : ARCHS[arch].depths;
  const repeat = opts.widths ? false : ARCHS[arch].repeat;
  let seed = opts.seed ?? 1;
  const nextSeed = () => (opts.seed === undefined ? undefined : seed++);
  const bn = (name: string) => tf.layers.batchNormalization({ name, epsilon: BN_EPS, momentum: BN_MOMENTUM });

  const input = tf.input({ shape: [FACE_SIZE, FACE_SIZE, 1], name: 'face' });
  let x = tf.layers
    .conv2d({ name: 'stem_conv', filters: widths[0], kernelSize: 3, padding: 'same', useBias: false,
      kernelInitializer: tf.initializers.heNormal({ seed: nextSeed() }) })
    .apply(input) as tf.SymbolicTensor;
  x = bn('stem_bn').apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'stem_pool', poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;

  const convs = new Map<string, BinaryConv2D>();
  for (const s of blockSpecs(widths, depths, repeat)) {
    if (s.kind === 'cbam') {
      x = new Cbam({ name: s.name, reduction: 4, seed: nextSeed() }).apply(x) as tf.SymbolicTensor;
      continue;
    }
    const conv = s.shares
      ? (convs.get(s.shares) as BinaryConv2D)
      : new BinaryConv2D({ name: `${s.name}_conv`, filters: s.cout, strides: s.stride, binary, seed: nextSeed() });
    convs.set(s.name, conv);
    let main = conv.apply(x) as tf.SymbolicTensor;
    main = bn(`${s.name}_bn`).apply(main) as tf.SymbolicTensor;
    let short = x;
    if (s.stride !== 1 || s.cin !== s.cout) {
      short = tf.layers.averagePooling2d({ name: `${s.name}_sc_pool`, poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
      short = tf.layers
        .conv2d({ name: `${s.name}_sc_conv`, filters: s.cout, kernelSize: 1, useBias: false,
          kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }) })
        .apply(short) as tf.SymbolicTensor;
      short = bn(`${s.name}_sc_bn`).apply(short) as tf.SymbolicTensor;
    }
    x = tf.layers.add({ name: `${s.name}_add` }).apply([main, short]) as tf.SymbolicTensor;
    x = tf.layers
      .prelu({ name: `${s.name}_prelu`, sharedAxes: [1, 2], alphaInitializer: tf.initializers.constant({ value: 0.25 }) })
      .apply(x) as tf.SymbolicTensor;
  }
  const { grid, gridK } = ARCHS[arch];
  if (grid) {
    const side = x.shape[1] as number;
    if (side % grid) throw new Error(`a ${grid}x${grid} grid head does not divide the last ${side}x${side} plane`);
    x = tf.layers.averagePooling2d({ name: 'headg_pool', poolSize: side / grid, strides: side / grid }).apply(x) as tf.SymbolicTensor;
    x = tf.layers
      .dense({ name: 'headg_reduce', units: gridK, useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }) })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.flatten({ name: 'headg_flatten' }).apply(x) as tf.SymbolicTensor;
  } else {
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.dropout({ name: 'dropout', rate: opts.dropout ?? 0.2, seed: nextSeed() }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ name: grid ? 'headg' : 'head', units: opts.numClasses ?? NUM_CLASSES, activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }) })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: binary ? arch : `${arch}-float` });
}

/** Faces (uint8, 48*48 each) to the network's input tensor [N,48,48,1] in [0,1]. */
export function facesToTensor(faces: Uint8Array[] | Uint8Array, count?: number): tf.Tensor4D {
  return tf.tidy(() => {
    let flat: Uint8Array;
    let n: number;
    if (Array.isArray(faces)) {
      n = faces.length;
      flat = new Uint8Array(n * FACE_SIZE * FACE_SIZE);
      faces.forEach((f, i) => flat.set(f, i * FACE_SIZE * FACE_SIZE));
    } else {
      flat = faces;
      n = count ?? faces.length / (FACE_SIZE * FACE_SIZE);
    }
    return tf.tensor4d(flat, [n, FACE_SIZE, FACE_SIZE, 1], 'int32').toFloat().div(255) as tf.Tensor4D;
  });
}
