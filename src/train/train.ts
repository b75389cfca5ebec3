/**
 * Training loop for the TinyFER network on tfjs-node: augmentation, Adam with warm-up + cosine
 * learning-rate schedule, label smoothing, per-epoch progress, checkpoints every epoch (resumable),
 * best-on-validation selection, and a seed for reproducibility.
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as TF from '@tensorflow/tfjs';
import { loadTfForTraining } from '../engine/tf';
import { ARCH_NAME, archOf, buildNetwork, facesToTensor, type ArchName } from '../model/network';
import { FACE_PIXELS, FACE_SIZE } from '../model/labels';
import { Dataset, datasetSize } from './data';
import { argmax } from './evaluate';
import { seededRandom } from '../util/random';
import { averageViews, expandViews, type ViewCount } from '../engine/views';
import { foldModel, setGraphInt8Stem } from '../model/fold';
import { isInt8Stem } from '../model/folded';
import { fitInt8Stem } from './stem-fit';

export function shuffle(n: number, rand: () => number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx;
}

export interface TrainOptions {
  train: Dataset;
  /** Selection set (best epoch is kept by its accuracy). */
  val?: Dataset;
  outDir: string;
  epochs: number;
  batchSize?: number;
  lr?: number;
  warmupEpochs?: number;
  labelSmoothing?: number;
  seed?: number;
  binary?: boolean;
  /** Architecture to build (src/model/network.ts ARCHS); default: that of initFrom, else tinyfer-b1. */
  arch?: ArchName;
  /** Start from these weights (a saved tfjs model dir), e.g. for fine-tuning. */
  initFrom?: string;
  /** With initFrom: keep the new classifier's fresh weights (another label set). */
  resetHead?: boolean;
  resume?: boolean;
  /**
   * Augmentation: true/1 the full ranges of augmentFace, a number in (0,1) scales its geometric and
   * photometric ranges (flip stays on), false/0 none.
   */
  augment?: boolean | number;
  /** Dropout before the classifier (default 0.2). */
  dropout?: number;
  /**
   * Re-estimate BatchNorm statistics (recalibrateBatchNorm) after every epoch (default), only
   * after the last one (saves time when no epoch is selected on a validation set), or never.
   */
  recalibrate?: 'epoch' | 'end' | 'off';
  /**
   * Knowledge distillation: soft targets (n * classes probabilities, in the training set's order,
   * from teacher.ts teacherScores) mixed into the labels as (1 - weight) * smoothed one-hot +
   * weight * teacher.
   */
  distill?: { scores: Float32Array; weight: number };
  /**
   * The device's integer stem (issue 17): put the stem conv's kernel on the int8 grid per output
   * channel, the integers fitted to keep the first binary block's signs (./stem-fit.ts; a kernel
   * already on the grid stays), and freeze it; the rest trains around it.
   */
  stemInt8?: boolean;
  /** Stop after this many batches per epoch (tests). */
  maxStepsPerEpoch?: number;
  log?: (line: string) => void;
  /** Draw a progress bar on this stream (TTY) during an epoch. */
  progress?: NodeJS.WriteStream;
}

export interface EpochRecord {
  epoch: number;
  lr: number;
  loss: number;
  accuracy: number;
  valAccuracy?: number;
  seconds: number;
}

export interface TrainResult {
  history: EpochRecord[];
  bestEpoch: number;
  bestValAccuracy?: number;
  /** Directory of the selected (best) model. */
  modelDir: string;
  seconds: number;
}

interface State {
  epoch: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestValAccuracy: number;
  seed: number;
}

/** lr at epoch e (0-based, fractional): linear warm-up then cosine decay to 2% of the peak. */
export function learningRate(base: number, e: number, epochs: number, warmup: number): number {
  if (e < warmup) return (base * (e + 1)) / (warmup + 1);
  const t = (e - warmup) / Math.max(1, epochs - warmup);
  return base * (0.02 + 0.98 * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t))));
}

/**
 * Random augmentation of one face, all parameters drawn from `rand` (so a seed reproduces it):
 * scale 0.9-1.1, shift up to 10 %, rotation up to 10 degrees, horizontal flip (one affine map,
 * bilinear sampling, edge pixels repeated), then contrast 0.75-1.25 and brightness +-0.12.
 * `strength` (0-1] scales every range but the flip (0.5: scale 0.95-1.05, 5 degrees, ...).
 * Writes 2304 floats in [0,1] to `out` at `offset`.
 */
export function augmentFace(src: Uint8Array, out: Float32Array, offset: number, rand: () => number, strength = 1): void {
  const n = FACE_SIZE;
  const c = (n - 1) / 2;
  const k = strength;
  const scale = 1 + k * (0.2 * rand() - 0.1);
  const ang = ((rand() * 2 - 1) * 10 * k * Math.PI) / 180;
  const tx = (rand() * 2 - 1) * 0.1 * k * n;
  const ty = (rand() * 2 - 1) * 0.1 * k * n;
  const flip = rand() < 0.5 ? -1 : 1;
  const gain = 1 + k * (0.5 * rand() - 0.25);
  const bias = (rand() * 2 - 1) * 0.12 * k;
  const cs = Math.cos(ang) / scale;
  const sn = Math.sin(ang) / scale;
  let sum = 0;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const dx = (x - c) * flip;
      const dy = y - c;
      let sx = cs * dx - sn * dy + c - tx;
      let sy = sn * dx + cs * dy + c - ty;
      sx = sx < 0 ? 0 : sx > n - 1 ? n - 1 : sx;
      sy = sy < 0 ? 0 : sy > n - 1 ? n - 1 : sy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(n - 1, x0 + 1);
      const y1 = Math.min(n - 1, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const v =
        (src[y0 * n + x0] * (1 - fx) + src[y0 * n + x1] * fx) * (1 - fy) +
        (src[y1 * n + x0] * (1 - fx) + src[y1 * n + x1] * fx) * fy;
      out[offset + y * n + x] = v / 255;
      sum += v / 255;
    }
  }
  const mean = sum / (n * n);
  for (let p = 0; p < n * n; p++) {
    const v = (out[offset + p] - mean) * gain + mean + bias;
    out[offset + p] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

function batchTensor(tf: typeof TF, d: Dataset, idx: ArrayLike<number>, rand?: () => number, strength = 1): TF.Tensor4D {
  const n = idx.length;
  const buf = new Float32Array(n * FACE_PIXELS);
  for (let k = 0; k < n; k++) {
    const off = idx[k] * FACE_PIXELS;
    if (rand) {
      augmentFace(d.pixels.subarray(off, off + FACE_PIXELS), buf, k * FACE_PIXELS, rand, strength);
    } else {
      for (let p = 0; p < FACE_PIXELS; p++) buf[k * FACE_PIXELS + p] = d.pixels[off + p] / 255;
    }
  }
  return tf.tensor4d(buf, [n, FACE_SIZE, FACE_SIZE, 1]);
}

/**
 * Re-estimate every BatchNorm layer's moving mean and variance on `count` faces, layer by layer
 * in graph order with the weights fixed (each layer sees the already re-estimated layers before
 * it). The moving averages kept during training lag behind a binary network whose weights flip
 * from step to step, and inference then runs on stale statistics; this makes inference-mode
 * statistics those of the final weights.
 */
export async function recalibrateBatchNorm(tf: typeof TF, model: TF.LayersModel, d: Dataset, count = 2048, batch = 256): Promise<void> {
  const n = Math.min(count, datasetSize(d));
  const idx = Array.from({ length: n }, (_, i) => Math.floor((i * datasetSize(d)) / n));
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const probe = tf.model({ inputs: model.inputs, outputs: layer.input as TF.SymbolicTensor });
    const c = (layer.input as TF.SymbolicTensor).shape[3] as number;
    const sum = new Float64Array(c);
    const sq = new Float64Array(c);
    let m = 0;
    for (let i = 0; i < n; i += batch) {
      const x = batchTensor(tf, d, idx.slice(i, i + batch));
      const a = probe.predict(x) as TF.Tensor4D;
      const v = (await a.data()) as Float32Array;
      for (let j = 0; j < v.length; j++) {
        const ch = j % c;
        sum[ch] += v[j];
        sq[ch] += v[j] * v[j];
      }
      m += v.length / c;
      x.dispose();
      a.dispose();
    }
    const mean = Float32Array.from(sum, (s) => s / m);
    const variance = Float32Array.from(sq, (s, ch) => Math.max(0, s / m - mean[ch] * mean[ch]));
    const w = layer.getWeights();
    layer.setWeights([w[0], w[1], tf.tensor1d(mean), tf.tensor1d(variance)]);
  }
}

/** Top-1 accuracy of a model over a dataset (batched). */
export async function accuracyOf(tf: typeof TF, model: TF.LayersModel, d: Dataset, batch = 512): Promise<number> {
  const preds = await predictClasses(tf, model, d, batch);
  let ok = 0;
  preds.forEach((p, i) => (ok += p === d.labels[i] ? 1 : 0));
  return ok / Math.max(1, preds.length);
}

/** Scores of every face ([n * classes]), each averaged over its `views` test-time views (engine/views.ts). */
export async function predictScores(tf: typeof TF, model: TF.LayersModel, d: Dataset, batch = 512, views: ViewCount = 1): Promise<Float32Array> {
  const n = datasetSize(d);
  const k = model.outputs[0].shape[1] as number;
  const out = new Float32Array(n * k);
  const step = Math.max(1, Math.floor(batch / views));
  for (let i = 0; i < n; i += step) {
    const faces = Array.from({ length: Math.min(step, n - i) }, (_, j) => d.pixels.subarray((i + j) * FACE_PIXELS, (i + j + 1) * FACE_PIXELS));
    const images = expandViews(faces, views);
    const x = facesToTensor(images);
    const y = model.predict(x) as TF.Tensor;
    const s = await y.data();
    x.dispose();
    y.dispose();
    const rows = Array.from({ length: images.length }, (_, j) => s.subarray(j * k, (j + 1) * k) as Float32Array);
    averageViews(rows, views).forEach((r, j) => out.set(r, (i + j) * k));
  }
  return out;
}

export async function predictClasses(tf: typeof TF, model: TF.LayersModel, d: Dataset, batch = 512, views: ViewCount = 1): Promise<Int32Array> {
  const s = await predictScores(tf, model, d, batch, views);
  const k = model.outputs[0].shape[1] as number;
  const n = s.length / k;
  return Int32Array.from({ length: n }, (_, i) => argmax(s.subarray(i * k, (i + 1) * k)));
}

/**
 * Copy weights layer by layer where the layer exists in both models with the same weight shapes.
 * Layers named in `skip` keep their fresh weights. Returns the names of the layers copied.
 */
export function copyMatchingWeights(src: TF.LayersModel, dst: TF.LayersModel, skip: string[] = []): string[] {
  const copied: string[] = [];
  for (const layer of dst.layers) {
    if (skip.includes(layer.name)) continue;
    const from = src.layers.find((l) => l.name === layer.name);
    if (!from) continue;
    const a = from.getWeights();
    const b = layer.getWeights();
    if (a.length !== b.length || a.some((w, i) => w.shape.join() !== b[i].shape.join())) continue;
    if (a.length === 0) continue;
    layer.setWeights(a);
    copied.push(layer.name);
  }
  return copied;
}

/**
 * Growing a trained model (e.g. tinyfer-b1 -> tinyfer-b1r): every binary block with an identity
 * shortcut that the initial model `src` does not have at all starts as the identity map (BN gamma
 * and beta 0, so the block adds nothing to its shortcut; PReLU slope 1), so the grown network
 * computes exactly what the initial one did and training starts from there. Blocks that `src`
 * has, copied or not (another width), keep their weights. Returns the names of the grown blocks.
 */
export function identityInitNewBlocks(tf: typeof TF, model: TF.LayersModel, src: TF.LayersModel): string[] {
  const known = new Set(src.layers.map((l) => l.name));
  const names = new Set(model.layers.map((l) => l.name));
  const grown: string[] = [];
  for (const layer of model.layers) {
    const m = /^(b\d+r?)_bn$/.exec(layer.name);
    if (!m || known.has(layer.name) || names.has(`${m[1]}_sc_conv`)) continue;
    const [gamma, beta, mean, variance] = layer.getWeights();
    tf.tidy(() => layer.setWeights([tf.zerosLike(gamma), tf.zerosLike(beta), mean, variance]));
    const prelu = model.getLayer(`${m[1]}_prelu`);
    tf.tidy(() => prelu.setWeights(prelu.getWeights().map((w) => tf.onesLike(w))));
    grown.push(m[1]);
  }
  return grown;
}

/**
 * Growing a global-average head into a grid head (tinyfer-b1 -> tinyfer-b1g): when `src` has the
 * dense 'head' and `model` the grid head, each region's first `classes` reduce values are the old
 * head's logits without bias, and the classifier averages them over the g*g regions and adds the
 * old bias. Regions of equal size average to the global average, so the grown model computes what
 * `src` did (to float rounding) and training starts from its accuracy. Returns whether it did.
 */
export function gridHeadFromGlobal(tf: typeof TF, model: TF.LayersModel, src: TF.LayersModel): boolean {
  if (!model.layers.some((l) => l.name === 'headg') || !src.layers.some((l) => l.name === 'head')) return false;
  const [hk, hb] = src.getLayer('head').getWeights();
  const reduce = model.getLayer('headg_reduce');
  const dense = model.getLayer('headg');
  const [rk] = reduce.getWeights();
  const [dk, db] = dense.getWeights();
  const [c, k] = rk.shape;
  const classes = hk.shape[1] as number;
  if (hk.shape[0] !== c || k < classes || db.shape[0] !== classes) {
    throw new Error(`cannot grow a head of ${hk.shape.join('x')} into a grid head of ${c}x${k} (k must be at least ${classes})`);
  }
  const old = hk.dataSync();
  const red = new Float32Array(c * k);
  for (let ch = 0; ch < c; ch++) for (let o = 0; o < classes; o++) red[ch * k + o] = old[ch * classes + o];
  const regions = (dk.shape[0] as number) / k;
  const dw = new Float32Array(dk.size);
  for (let r = 0; r < regions; r++) for (let o = 0; o < classes; o++) dw[(r * k + o) * classes + o] = 1 / regions;
  tf.tidy(() => {
    reduce.setWeights([tf.tensor(red, rk.shape)]);
    dense.setWeights([tf.tensor(dw, dk.shape), tf.tensor(hb.dataSync(), db.shape)]);
  });
  return true;
}

function bar(done: number, total: number, text: string): string {
  const w = 24;
  const f = Math.round((done / total) * w);
  return `[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${total} ${text}`;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { tf } = await loadTfForTraining();
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const batchSize = opts.batchSize ?? 128;
  const baseLr = opts.lr ?? 2e-3;
  const warmup = opts.warmupEpochs ?? Math.min(2, Math.max(0, opts.epochs - 1));
  const smoothing = opts.labelSmoothing ?? 0.1;
  const seed = opts.seed ?? 42;
  if (!Number.isInteger(opts.epochs) || opts.epochs < 0) throw new RangeError(`epochs must be a whole number >= 0, got ${opts.epochs}`);
  const numClasses = opts.train.classNames.length;
  const strength = opts.augment === undefined || opts.augment === true ? 1 : opts.augment === false ? 0 : opts.augment;
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`augment strength must be in [0,1], got ${opts.augment}`);
  const distill = opts.distill;
  if (distill) {
    if (!(distill.weight >= 0 && distill.weight <= 1)) throw new RangeError(`distillation weight must be in [0,1], got ${distill.weight}`);
    if (distill.scores.length !== datasetSize(opts.train) * numClasses) {
      throw new RangeError(`teacher scores hold ${distill.scores.length / numClasses} faces, the training set ${datasetSize(opts.train)}`);
    }
  }
  fs.mkdirSync(opts.outDir, { recursive: true });
  const statePath = path.join(opts.outDir, 'state.json');
  const lastDir = path.join(opts.outDir, 'last');
  const bestDir = path.join(opts.outDir, 'best');

  let state: State = { epoch: 0, history: [], bestEpoch: -1, bestValAccuracy: -1, seed };
  let model: TF.LayersModel;
  if (opts.resume && fs.existsSync(statePath) && fs.existsSync(path.join(lastDir, 'model.json'))) {
    state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as State;
    model = await tf.loadLayersModel(`file://${path.join(lastDir, 'model.json')}`);
    log(`resuming from epoch ${state.epoch} (${lastDir})`);
  } else {
    const src = opts.initFrom ? await tf.loadLayersModel(`file://${path.join(opts.initFrom, 'model.json')}`) : null;
    const arch = opts.arch ?? (src ? archOf(src.name) : ARCH_NAME);
    model = buildNetwork({ binary: opts.binary ?? true, seed, numClasses, arch, dropout: opts.dropout });
    if (src) {
      const copied = copyMatchingWeights(src, model, opts.resetHead ? ['head', 'headg_reduce', 'headg'] : []);
      const grown = identityInitNewBlocks(tf, model, src);
      const gridHead = gridHeadFromGlobal(tf, model, src);
      src.dispose();
      log(`initialised ${copied.join(', ')} from ${opts.initFrom}`);
      if (gridHead) log(`grid head grown from the global-average head (${opts.initFrom}): the same function to start`);
      if (grown.length) log(`new blocks ${grown.join(', ')} start as identity (BatchNorm gamma 0, PReLU slope 1)`);
    }
  }
  if (opts.stemInt8) {
    if (opts.binary === false) throw new Error('--stem-int8 is for the binary model (the float twin is not exported)');
    const stem = model.getLayer('stem_conv');
    const folded = foldModel(model);
    if (isInt8Stem(folded.stem)) {
      log('stem_conv: kernel already on the int8 grid, frozen');
    } else {
      const fit = fitInt8Stem(folded, opts.train.pixels);
      setGraphInt8Stem(tf, model, fit.stem);
      log(`stem_conv: kernel fitted to int8 per output channel on ${fit.faces} training faces (first-block sign flips per face ${fit.flipsNearest.toFixed(1)} rounded to nearest, ${fit.flipsFitted.toFixed(1)} fitted) and frozen`);
    }
    stem.trainable = false;
  }
  const optimizer = tf.train.adam(baseLr);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

  const n = datasetSize(opts.train);
  const steps = Math.min(Math.ceil(n / batchSize), opts.maxStepsPerEpoch ?? Infinity);
  const t0 = Date.now();
  if (opts.epochs === 0) {
    // no training: the initialised network as it is (e.g. a grown or int8-stem model for the GPU trainer)
    await model.save(`file://${lastDir}`);
    await model.save(`file://${bestDir}`);
    fs.writeFileSync(statePath, JSON.stringify(state, null, 1));
    log(`--epochs 0: the initialised network written to ${bestDir}, not trained`);
  }
  for (let epoch = state.epoch; epoch < opts.epochs; epoch++) {
    // Each epoch's randomness depends only on (seed, epoch): a resumed run replays the same stream.
    const rand = seededRandom(seed * 1000003 + epoch);
    const order = shuffle(n, rand);
    const te = Date.now();
    let lossSum = 0;
    let accSum = 0;
    let seen = 0;
    for (let s = 0; s < steps; s++) {
      const lr = learningRate(baseLr, epoch + s / steps, opts.epochs, warmup);
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const idx = order.subarray(s * batchSize, Math.min(n, (s + 1) * batchSize));
      const [xs, ys] = tf.tidy(() => {
        const x = batchTensor(tf, opts.train, idx, strength > 0 ? rand : undefined, strength);
        const labels = tf.tensor1d(Int32Array.from(idx, (i) => opts.train.labels[i]), 'int32');
        const hard = tf.add(tf.mul(tf.oneHot(labels, numClasses).toFloat(), 1 - smoothing), smoothing / numClasses);
        if (!distill || distill.weight === 0) return [x, hard];
        const soft = new Float32Array(idx.length * numClasses);
        idx.forEach((i, j) => soft.set(distill.scores.subarray(i * numClasses, (i + 1) * numClasses), j * numClasses));
        const y = tf.add(tf.mul(hard, 1 - distill.weight), tf.mul(tf.tensor2d(soft, [idx.length, numClasses]), distill.weight));
        return [x, y];
      }) as [TF.Tensor4D, TF.Tensor2D];
      const r = (await model.trainOnBatch(xs, ys)) as number[];
      xs.dispose();
      ys.dispose();
      lossSum += r[0] * idx.length;
      accSum += r[1] * idx.length;
      seen += idx.length;
      if (opts.progress?.isTTY) {
        opts.progress.write(`\r${bar(s + 1, steps, `epoch ${epoch + 1}/${opts.epochs} loss ${(lossSum / seen).toFixed(4)} acc ${(accSum / seen).toFixed(4)}`)}`);
      }
    }
    if (opts.progress?.isTTY) opts.progress.write('\n');
    const rec: EpochRecord = {
      epoch: epoch + 1,
      lr: learningRate(baseLr, epoch, opts.epochs, warmup),
      loss: lossSum / seen,
      accuracy: accSum / seen,
      seconds: (Date.now() - te) / 1000,
    };
    const recal = opts.recalibrate ?? 'epoch';
    if (recal === 'epoch' || (recal === 'end' && epoch === opts.epochs - 1)) await recalibrateBatchNorm(tf, model, opts.train);
    if (opts.val) rec.valAccuracy = await accuracyOf(tf, model, opts.val);
    state.history.push(rec);
    state.epoch = epoch + 1;
    await model.save(`file://${lastDir}`);
    const better = opts.val ? (rec.valAccuracy as number) > state.bestValAccuracy : true;
    if (better) {
      state.bestEpoch = epoch + 1;
      state.bestValAccuracy = rec.valAccuracy ?? -1;
      await model.save(`file://${bestDir}`);
    }
    fs.writeFileSync(statePath, JSON.stringify(state, null, 1));
    log(
      `epoch ${rec.epoch}/${opts.epochs} lr ${rec.lr.toExponential(2)} loss ${rec.loss.toFixed(4)} acc ${rec.accuracy.toFixed(4)}` +
        (rec.valAccuracy !== undefined ? ` val_acc ${rec.valAccuracy.toFixed(4)}` : '') +
        ` ${rec.seconds.toFixed(0)}s${better && opts.val ? ' *best' : ''}`,
    );
  }
  model.dispose();
  return {
    history: state.history,
    bestEpoch: state.bestEpoch,
    bestValAccuracy: state.bestValAccuracy >= 0 ? state.bestValAccuracy : undefined,
    modelDir: bestDir,
    seconds: (Date.now() - t0) / 1000,
  };
}
