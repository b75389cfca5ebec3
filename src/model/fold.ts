/**
 * Trained tfjs graph -> FoldedModel (see ./folded.ts): BatchNorm folded into the preceding conv,
 * binary kernels reduced to their signs and per-channel scale alpha = mean|W|. A stem kernel on the
 * per-channel int8 grid (trained with --stem-int8) becomes an int8 stem (FoldedInt8Stem).
 */
import type * as TF from '@tensorflow/tfjs';
import type { BlockSpec } from './network';
import { LABELS } from './labels';
import type { FoldedBinaryBlock, FoldedCbam, FoldedGridHead, FoldedInt8Stem, FoldedModel } from './folded';
import { f32Step, onPerChannelGrid, quantizePerChannel } from './quantizers';

/** The network's input scaling (the graph sees pixel / 255). */
const INPUT_SCALE = 1 / 255;

interface BnParams {
  scale: Float32Array;
  shift: Float32Array;
}

function weightsOf(model: TF.LayersModel, layerName: string): Float32Array[] {
  const layer = model.getLayer(layerName);
  return layer.getWeights().map((w) => w.dataSync() as Float32Array);
}

/** BatchNorm as y = x * scale + shift, from gamma, beta, moving mean and variance. */
function bnOf(model: TF.LayersModel, layerName: string): BnParams {
  const layer = model.getLayer(layerName);
  const eps = (layer.getConfig().epsilon as number) ?? 1e-3;
  const [gamma, beta, mean, variance] = weightsOf(model, layerName);
  const n = gamma.length;
  const scale = new Float32Array(n);
  const shift = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + eps);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

/** HWIO kernel [kh][kw][cin][cout] -> [cout][kh][kw][cin], each output channel multiplied by mul[o]. */
function hwioToOhwi(k: Float32Array, kh: number, kw: number, cin: number, cout: number, mul?: Float32Array): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) {
          out[((o * kh + y) * kw + x) * cin + i] = k[((y * kw + x) * cin + i) * cout + o] * (mul ? mul[o] : 1);
        }
  return out;
}

/**
 * The stem with its BatchNorm (scale g, shift) folded in: float weights k * g, or, when the kernel
 * lies on the int8 grid (k = q * s per output), weightQ = q * sign(g) and scale = s * |g| * the
 * input scale, so that the max-pool, which comes after the BatchNorm in the graph, sees the same
 * order (a channel that is all zero, or whose g is 0, keeps weights 0 and scale 1).
 */
function foldStem(k: Float32Array, bn: BnParams, c0: number): FoldedModel['stem'] {
  const grid = onPerChannelGrid(k, c0);
  if (!grid) return { cin: 1, cout: c0, k: 3, weight: hwioToOhwi(k, 3, 3, 1, c0, bn.scale), bias: bn.shift };
  const f = Math.fround;
  const weightQ = new Int8Array(c0 * 9);
  const scale = new Float32Array(c0).fill(1);
  for (let o = 0; o < c0; o++) {
    const g = bn.scale[o];
    if (grid.scale[o] === 0 || g === 0) continue;
    for (let t = 0; t < 9; t++) weightQ[o * 9 + t] = (g < 0 ? -1 : 1) * grid.q[t * c0 + o];
    scale[o] = f(f(grid.scale[o] * Math.abs(g)) * f(INPUT_SCALE));
  }
  return { cin: 1, cout: c0, k: 3, weightQ, scale, bias: bn.shift };
}

/**
 * The inverse of foldStem for an int8 stem: sets the graph's stem kernel to weightQ on the int8 grid
 * (times sign(g), with a per-channel step chosen so that quantizePerChannel gives the same values
 * back, as `train --stem-int8` does) and the stem BatchNorm's beta, so that foldModel gives back
 * these integers, and the scale and bias to a float32 rounding or two. Every weight of a channel
 * must lie in -127 .. 127 with one at +-127, or all be 0; its BatchNorm g must not be 0.
 */
export function setGraphInt8Stem(tf: typeof TF, model: TF.LayersModel, stem: FoldedInt8Stem): void {
  const f = Math.fround;
  const conv = model.getLayer('stem_conv');
  const bnLayer = model.getLayer('stem_bn');
  const [kernel] = conv.getWeights();
  const c0 = stem.cout;
  if (kernel.shape.join() !== [3, 3, 1, c0].join()) throw new Error(`stem kernel ${kernel.shape.join('x')} is not 3x3x1x${c0}`);
  const bn = bnOf(model, 'stem_bn');
  const k = new Float32Array(9 * c0);
  for (let o = 0; o < c0; o++) {
    const q = stem.weightQ.subarray(o * 9, o * 9 + 9);
    const top = Math.max(...Array.from(q, Math.abs));
    if (top === 0) continue;
    const g = bn.scale[o];
    if (top !== 127 || Math.min(...q) < -127 || g === 0) throw new Error(`stem channel ${o}: not on the int8 grid (largest |q| ${top}, BatchNorm g ${g})`);
    // the step: scale = step * |g| / 255, the nearest float32 (a few ulps at most) that quantizePerChannel keeps.
    const step0 = f((stem.scale[o] / INPUT_SCALE) / Math.abs(g));
    const step = [0, 1, -1, 2, -2, 3, -3].map((d) => f32Step(step0, d)).find((c) => f(f(127 * c) / 127) === c);
    if (step === undefined) throw new Error(`stem channel ${o}: no float32 step keeps its integers`);
    for (let t = 0; t < 9; t++) k[t * c0 + o] = f(Math.sign(g) * q[t] * step);
  }
  const back = quantizePerChannel(k, c0);
  if (back.some((v, i) => v !== k[i])) throw new Error('the int8 stem kernel is not a fixed point of quantizePerChannel');
  const [gamma, beta, mean, variance] = bnLayer.getWeights();
  const m = mean.dataSync() as Float32Array;
  const newBeta = new Float32Array(c0);
  for (let o = 0; o < c0; o++) newBeta[o] = stem.bias[o] + m[o] * bn.scale[o];
  conv.setWeights([tf.tensor(k, kernel.shape)]);
  bnLayer.setWeights([gamma, tf.tensor(newBeta, beta.shape), mean, variance]);
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

/**
 * The block sequence of a built model, read from its own layers in graph order (binary blocks
 * `b<k>_conv`, their repeat passes `b<k>r_bn` (tinyfer-b1r), attention `cbam<k>`) with the channel counts and strides they were built with:
 * whatever architecture or widths buildNetwork was given.
 */
function blocksOf(model: TF.LayersModel): BlockSpec[] {
  // getInputAt(0): a shared convolution (tinyfer-b1r) has one inbound node per pass, all of the same shape.
  const channelsIn = (l: TF.layers.Layer) => (l.getInputAt(0) as TF.SymbolicTensor).shape[3] as number;
  const specs: BlockSpec[] = [];
  for (const l of model.layers) {
    const conv = /^(b\d+)_conv$/.exec(l.name);
    const repeat = /^((b\d+)r)_bn$/.exec(l.name);
    if (repeat) {
      const c = channelsIn(l);
      specs.push({ kind: 'binary', name: repeat[1], cin: c, cout: c, stride: 1, shares: repeat[2] });
    } else if (conv) {
      const cfg = l.getConfig();
      specs.push({ kind: 'binary', name: conv[1], cin: channelsIn(l), cout: cfg.filters as number, stride: cfg.strides as 1 | 2 });
    } else if (/^cbam\d+$/.test(l.name)) {
      specs.push({ kind: 'cbam', name: l.name, cin: channelsIn(l), cout: channelsIn(l), stride: 1 });
    }
  }
  return specs;
}

export function foldModel(model: TF.LayersModel, name = 'tinyfer-b1'): FoldedModel {
  const stemK = weightsOf(model, 'stem_conv')[0];
  const stemBn = bnOf(model, 'stem_bn');
  const c0 = stemBn.scale.length;
  const stem = foldStem(stemK, stemBn, c0);

  const convLayer = model.getLayer('b1_conv');
  if ((convLayer.getConfig().binary as boolean) === false) {
    throw new Error('this is the float twin: only the binary model can be exported to the C core');
  }
  let width = c0;
  const blocks: FoldedModel['blocks'] = [];
  const index = new Map<string, number>();
  for (const s of blocksOf(model)) {
    index.set(s.name, blocks.length);
    if (s.cin !== width) throw new Error(`layer ${s.name}: expected ${width} input channels, found ${s.cin}`);
    if (s.kind === 'cbam') {
      const [w1, b1, w2, b2, sw, sb] = weightsOf(model, s.name);
      const hidden = b1.length;
      const blk: FoldedCbam = {
        type: 'cbam',
        channels: s.cin,
        hidden,
        w1: transpose(w1, s.cin, hidden),
        b1: Float32Array.from(b1),
        w2: transpose(w2, hidden, s.cin),
        b2: Float32Array.from(b2),
        spatialWeight: Float32Array.from(sw),
        spatialBias: sb[0],
      };
      blocks.push(blk);
      continue;
    }
    const [kernel, threshold] = weightsOf(model, `${s.shares ?? s.name}_conv`);
    const bn = bnOf(model, `${s.name}_bn`);
    const per = 9 * s.cin;
    const weightSign = new Int8Array(s.cout * per);
    const scale = new Float32Array(s.cout);
    const signs = hwioToOhwi(kernel, 3, 3, s.cin, s.cout);
    for (let o = 0; o < s.cout; o++) {
      let abs = 0;
      for (let j = 0; j < per; j++) {
        const w = signs[o * per + j];
        abs += Math.abs(w);
        weightSign[o * per + j] = w >= 0 ? 1 : -1;
      }
      scale[o] = (abs / per) * bn.scale[o];
    }
    const blk: FoldedBinaryBlock = {
      type: 'binary',
      cin: s.cin,
      cout: s.cout,
      stride: s.stride,
      threshold: Float32Array.from(threshold),
      weightSign,
      scale,
      bias: bn.shift,
      prelu: Float32Array.from(weightsOf(model, `${s.name}_prelu`)[0]),
    };
    // a repeat pass: the same convolution, so the same threshold and signs as its source
    if (s.shares) blk.shares = index.get(s.shares);
    if (s.stride !== 1 || s.cin !== s.cout) {
      const sc = weightsOf(model, `${s.name}_sc_conv`)[0];
      const scBn = bnOf(model, `${s.name}_sc_bn`);
      blk.shortcutWeight = hwioToOhwi(sc, 1, 1, s.cin, s.cout, scBn.scale);
      blk.shortcutBias = scBn.shift;
    }
    blocks.push(blk);
    width = s.cout;
  }
  // the grid head (tinyfer-b1g): regions per side from its pooling, k from its reduce
  const grid = model.layers.find((l) => l.name === 'headg_pool');
  let gridHead: FoldedGridHead | undefined;
  if (grid) {
    const side = (grid.getInputAt(0) as TF.SymbolicTensor).shape[1] as number;
    const pool = (grid.getConfig().poolSize as number[])[0];
    const [reduce] = weightsOf(model, 'headg_reduce');
    const k = reduce.length / width;
    gridHead = { grid: side / pool, k, reduce: transpose(reduce, width, k) };
  }
  const [hk, hb] = weightsOf(model, grid ? 'headg' : 'head');
  return {
    name,
    labels: LABELS,
    inputSize: 48,
    inputScale: INPUT_SCALE,
    stem,
    blocks,
    ...(gridHead ? { gridHead } : {}),
    headWeight: transpose(hk, hk.length / LABELS.length, LABELS.length),
    headBias: Float32Array.from(hb),
  };
}
