/**
 * BlazeFace, MediaPipe's face detector: the 256x256 "back camera" (full-frame) model as
 * @vladmandic/human 3.3.6 publishes it, copied into this package (models/blazeface, 618 KB: nothing
 * is downloaded). It runs on whichever TensorFlow.js it is given (detector.ts: the worker thread's
 * wasm, or the main thread's runtime), as a list of kernel calls compiled from the graph.
 *
 * The graph is fully convolutional. We feed it the frame scaled so its longer side is
 * `inputSize` (each side rounded up to a multiple of 32; a 4:3 frame is not padded to a square)
 * and read the four head convolutions before the graph's fixed-size reshapes, so any size works.
 * Decoding is MediaPipe's (TensorsToDetections with the model's SSD anchors):
 *   - two grids: stride 16 with 2 anchors a cell, stride 32 with 6; every anchor is the centre
 *     of its cell, in input pixels (fixed anchor size 1, as the model was trained);
 *   - 1 logit a anchor (score = sigmoid), 16 regressions: box centre offset (dx, dy) and size
 *     (w, h), then 6 keypoints (dx, dy), all in input pixels relative to the anchor centre;
 *   - weighted non-maximum suppression: overlapping candidates are averaged, weighted by
 *     their scores, into one detection that keeps the best score.
 * Keypoints in model order: eye centres, nose tip, mouth centre, ear tragions. Left and right are
 * as seen in the image (MediaPipe names them from the subject: its "right eye" is our leftEye).
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as TF from '@tensorflow/tfjs';
import { VisionError } from './errors';

/** Keypoints in model order, left and right as seen in the image. */
export const BLAZEFACE_KEYPOINTS = ['leftEye', 'rightEye', 'nose', 'mouth', 'leftEar', 'rightEar'] as const;
const NUM_KEYPOINTS = BLAZEFACE_KEYPOINTS.length;
/** Values a anchor regresses: box (4) + keypoints (2 each). */
const REG = 4 + 2 * NUM_KEYPOINTS;
/** The two anchor grids: stride in input pixels, anchors a cell. */
const GRIDS = [
  { stride: 16, perCell: 2 },
  { stride: 32, perCell: 6 },
] as const;
/** The head convolutions (graph node names), before the model's fixed-size reshapes. */
const HEADS = {
  scores16: 'StatefulPartitionedCall/functional_1/conv2d_33/BiasAdd',
  scores32: 'StatefulPartitionedCall/functional_1/conv2d_34/BiasAdd',
  boxes16: 'StatefulPartitionedCall/functional_1/conv2d_35/BiasAdd',
  boxes32: 'StatefulPartitionedCall/functional_1/conv2d_36/BiasAdd',
} as const;
/** The head outputs in the order outputs() reads them: scores and boxes of stride 16, then of stride 32. */
export const BLAZEFACE_HEADS: readonly string[] = [HEADS.scores16, HEADS.boxes16, HEADS.scores32, HEADS.boxes32];
const HEAD_ORDER = BLAZEFACE_HEADS;

/** One detection in input pixels of the detector (x0,y0 top-left, x1,y1 bottom-right). */
export interface BlazeDetection {
  score: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** x, y of each keypoint in BLAZEFACE_KEYPOINTS order (12 values). */
  keypoints: Float32Array;
}

/** How a raster is fitted into the detector's input. */
export interface BlazeGeometry {
  /** Input size in pixels, multiples of 32. */
  width: number;
  height: number;
  /** Input pixels per raster pixel (the same on both axes). */
  scale: number;
}

/** The input that holds a width x height raster with its longer side at `inputSize` (a multiple of 32). */
export function blazeGeometry(width: number, height: number, inputSize: number): BlazeGeometry {
  if (!(Number.isInteger(inputSize) && inputSize >= 32 && inputSize % 32 === 0)) {
    throw new RangeError(`BlazeFace input size must be a positive multiple of 32, got ${inputSize}`);
  }
  if (!(width > 0 && height > 0)) throw new RangeError(`raster size must be positive, got ${width}x${height}`);
  const scale = inputSize / Math.max(width, height);
  const up32 = (v: number) => Math.max(32, Math.ceil((v * scale - 1e-6) / 32) * 32);
  return { width: up32(width), height: up32(height), scale };
}

/**
 * The detector input: the RGB raster (3 bytes a pixel) resampled to geometry g, as float32
 * in -1..1 (HWC). Each input pixel averages up to 3 x 3 samples of the area it covers (enough
 * against aliasing at a fraction of a full area average's cost); beyond the raster's right and
 * bottom edges the edge pixels repeat.
 */
export function blazeInput(rgb: Uint8Array, width: number, height: number, g: BlazeGeometry): Float32Array {
  if (rgb.length !== width * height * 3) {
    throw new VisionError('E_DECODE', `RGB raster has ${rgb.length} bytes, expected ${width}x${height}x3`);
  }
  const out = new Float32Array(g.width * g.height * 3);
  const step = 1 / g.scale;
  const n = Math.min(3, Math.max(1, Math.ceil(step)));
  const norm = 1 / (127.5 * n * n);
  // source columns and rows of every sample, computed once
  const xs = new Int32Array(g.width * n);
  for (let ox = 0; ox < g.width; ox++) {
    for (let i = 0; i < n; i++) xs[ox * n + i] = Math.min(width - 1, Math.floor((ox + (i + 0.5) / n) * step)) * 3;
  }
  const ys = new Int32Array(g.height * n);
  for (let oy = 0; oy < g.height; oy++) {
    for (let j = 0; j < n; j++) ys[oy * n + j] = Math.min(height - 1, Math.floor((oy + (j + 0.5) / n) * step)) * width * 3;
  }
  let o = 0;
  for (let oy = 0; oy < g.height; oy++) {
    for (let ox = 0; ox < g.width; ox++) {
      let r = 0;
      let gr = 0;
      let b = 0;
      for (let j = 0; j < n; j++) {
        const row = ys[oy * n + j];
        for (let i = 0; i < n; i++) {
          const p = row + xs[ox * n + i];
          r += rgb[p];
          gr += rgb[p + 1];
          b += rgb[p + 2];
        }
      }
      out[o++] = r * norm - 1;
      out[o++] = gr * norm - 1;
      out[o++] = b * norm - 1;
    }
  }
  return out;
}

/** Anchor centres (x, y pairs, input pixels) for an input of width x height, in the model's output order. */
export function blazeAnchors(width: number, height: number): Float32Array {
  const out: number[] = [];
  for (const { stride, perCell } of GRIDS) {
    const rows = Math.ceil(height / stride);
    const cols = Math.ceil(width / stride);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        for (let a = 0; a < perCell; a++) out.push((x + 0.5) * stride, (y + 0.5) * stride);
      }
    }
  }
  return Float32Array.from(out);
}

/**
 * Candidates scoring at least minScore: logits (one a anchor) and regressions (REG a anchor)
 * decoded against the anchors. Boxes and keypoints in input pixels.
 */
export function decodeBlazeFace(logits: Float32Array, regressions: Float32Array, anchors: Float32Array, minScore: number): BlazeDetection[] {
  const count = anchors.length / 2;
  if (logits.length !== count || regressions.length !== count * REG) {
    throw new RangeError(`BlazeFace outputs do not match ${count} anchors (${logits.length} scores, ${regressions.length} regressions)`);
  }
  // sigmoid(l) >= minScore  <=>  l >= logit(minScore): compare logits, no exp for most anchors
  const minLogit = minScore <= 0 ? -Infinity : minScore >= 1 ? Infinity : Math.log(minScore / (1 - minScore));
  const out: BlazeDetection[] = [];
  for (let i = 0; i < count; i++) {
    const l = logits[i];
    if (!(l >= minLogit)) continue;
    const ax = anchors[2 * i];
    const ay = anchors[2 * i + 1];
    const r = i * REG;
    const cx = ax + regressions[r];
    const cy = ay + regressions[r + 1];
    const hw = regressions[r + 2] / 2;
    const hh = regressions[r + 3] / 2;
    if (!(hw > 0 && hh > 0)) continue;
    const keypoints = new Float32Array(2 * NUM_KEYPOINTS);
    for (let k = 0; k < NUM_KEYPOINTS; k++) {
      keypoints[2 * k] = ax + regressions[r + 4 + 2 * k];
      keypoints[2 * k + 1] = ay + regressions[r + 5 + 2 * k];
    }
    out.push({ score: 1 / (1 + Math.exp(-l)), x0: cx - hw, y0: cy - hh, x1: cx + hw, y1: cy + hh, keypoints });
  }
  return out;
}

/** Intersection over union of two detections' boxes. */
export function blazeIou(a: BlazeDetection, b: BlazeDetection): number {
  const iw = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const ih = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / ((a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter);
}

/**
 * Weighted non-maximum suppression (MediaPipe's WEIGHTED overlap mode): take the best
 * remaining candidate, average it with every remaining candidate overlapping it by more than
 * iouThreshold (boxes and keypoints, weighted by score), keep the best score; repeat.
 * Returns the detections best first.
 */
export function weightedNms(candidates: readonly BlazeDetection[], iouThreshold: number): BlazeDetection[] {
  let rest = candidates.slice().sort((a, b) => b.score - a.score);
  const out: BlazeDetection[] = [];
  while (rest.length > 0) {
    const top = rest[0];
    const cluster: BlazeDetection[] = [];
    const left: BlazeDetection[] = [];
    for (const c of rest) (c === top || blazeIou(top, c) > iouThreshold ? cluster : left).push(c);
    let w = 0;
    const m = { x0: 0, y0: 0, x1: 0, y1: 0 };
    const kp = new Float32Array(2 * NUM_KEYPOINTS);
    for (const c of cluster) {
      w += c.score;
      m.x0 += c.x0 * c.score;
      m.y0 += c.y0 * c.score;
      m.x1 += c.x1 * c.score;
      m.y1 += c.y1 * c.score;
      for (let k = 0; k < kp.length; k++) kp[k] += c.keypoints[k] * c.score;
    }
    for (let k = 0; k < kp.length; k++) kp[k] /= w;
    out.push({ score: top.score, x0: m.x0 / w, y0: m.y0 / w, x1: m.x1 / w, y1: m.y1 / w, keypoints: kp });
    rest = left;
  }
  return out;
}

/** The package's copy of the model files (models/blazeface, see its README: provenance, licences, hashes). */
export const BLAZEFACE_DIR = path.resolve(__dirname, '..', '..', 'models', 'blazeface');

interface GraphAttr {
  s?: string;
  i?: string;
  list?: { i?: string[]; s?: string[] };
}

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, GraphAttr>;
}

interface ModelJson {
  modelTopology: { node: GraphNode[] };
  weightsManifest: Array<{ paths: string[]; weights: TF.io.WeightsManifestEntry[] }>;
}

/**
 * One kernel call of the compiled graph: activations are numbered slots (0: the input), the
 * weights are bound once.
 */
interface Step {
  kernel: string;
  /** Kernel inputs fed from slots: [input name, slot]. */
  inputs: Array<[string, number]>;
  /** Kernel inputs fed from weights. */
  weights: TF.NamedTensorMap;
  attrs: TF.NamedAttrMap;
  out: number;
  /** Slots that no later step reads, disposed after this one (never the input or a head). */
  free: number[];
}

interface Plan {
  steps: Step[];
  /** The slots of HEAD_ORDER. */
  heads: number[];
  slots: number;
}

const text = (a: GraphAttr | undefined) => (a?.s ? Buffer.from(a.s, 'base64').toString('latin1') : '');
const ints = (a: GraphAttr | undefined) => (a?.list?.i ?? []).map(Number);

/**
 * Compile the ops that compute the heads into a list of kernel calls (the graph holds only
 * convolutions, depthwise convolutions, adds, ReLUs, max pools and channel pads). Running the
 * kernels straight costs a fraction of a generic graph executor's per-op work, which on this
 * graph of ~170 small ops is a good part of the time; the result is the same to the bit.
 */
function compile(nodes: GraphNode[], weights: TF.NamedTensorMap, file: string): Plan {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const order: GraphNode[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const n = byName.get(name);
    if (!n) throw new Error(`${file}: node '${name}' is missing`);
    for (const i of n.input ?? []) visit(i);
    order.push(n);
  };
  HEAD_ORDER.forEach(visit);
  const slotOf = new Map<string, number>();
  const steps: Step[] = [];
  const bad = (n: GraphNode, why: string) => new Error(`${file}: ${n.op} '${n.name}' ${why}: not the BlazeFace graph this runner knows`);
  const weight = (n: GraphNode, k: number) => {
    const w = weights[n.input?.[k] ?? ''];
    if (!w) throw bad(n, `has no weight for input ${k}`);
    return w;
  };
  const slot = (n: GraphNode, k: number) => {
    const s = slotOf.get(n.input?.[k] ?? '');
    if (s === undefined) throw bad(n, `reads '${n.input?.[k]}', which is not computed`);
    return s;
  };
  const window = (n: GraphNode) => {
    const a = n.attr ?? {};
    const strides = ints(a.strides);
    const pad = text(a.padding).toLowerCase();
    const format = text(a.data_format) || 'NHWC';
    const dilations = ints(a.dilations);
    if (strides.length !== 4 || (pad !== 'same' && pad !== 'valid') || format !== 'NHWC' || dilations.some((d) => d !== 1)) {
      throw bad(n, `has strides ${strides}, padding '${pad}', format ${format}, dilations ${dilations}`);
    }
    return { strides: [strides[1], strides[2]], pad };
  };
  for (const n of order) {
    if (n.op === 'Const') continue;
    if (n.op === 'Placeholder') {
      if (slotOf.size > 0) throw bad(n, 'is a second input');
      slotOf.set(n.name, 0);
      continue;
    }
    const out = slotOf.size;
    let step: Omit<Step, 'out' | 'free'>;
    if (n.op === '_FusedConv2D') {
      const fused = (n.attr?.fused_ops?.list?.s ?? []).map((x) => Buffer.from(x, 'base64').toString('latin1'));
      const relu = fused.length === 2 && fused[1] === 'Relu';
      if (fused[0] !== 'BiasAdd' || !(fused.length === 1 || relu)) throw bad(n, `fuses ${fused.join('+')}`);
      const { strides, pad } = window(n);
      step = {
        kernel: 'FusedConv2D',
        inputs: [['x', slot(n, 0)]],
        weights: { filter: weight(n, 1), bias: weight(n, 2) },
        attrs: { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], activation: relu ? 'relu' : 'linear' },
      };
    } else if (n.op === 'DepthwiseConv2dNative') {
      const { strides, pad } = window(n);
      step = { kernel: 'DepthwiseConv2dNative', inputs: [['x', slot(n, 0)]], weights: { filter: weight(n, 1) }, attrs: { strides, pad, dataFormat: 'NHWC', dilations: [1, 1] } };
    } else if (n.op === 'AddV2') {
      step = { kernel: 'Add', inputs: [['a', slot(n, 0)], ['b', slot(n, 1)]], weights: {}, attrs: {} };
    } else if (n.op === 'Relu') {
      step = { kernel: 'Relu', inputs: [['x', slot(n, 0)]], weights: {}, attrs: {} };
    } else if (n.op === 'MaxPool') {
      const { strides, pad } = window(n);
      const k = ints(n.attr?.ksize);
      step = { kernel: 'MaxPool', inputs: [['x', slot(n, 0)]], weights: {}, attrs: { filterSize: [k[1], k[2]], strides, pad } };
    } else if (n.op === 'Pad') {
      const p = Array.from(weight(n, 1).dataSync());
      if (p.length !== 8) throw bad(n, `has ${p.length} padding values`);
      step = { kernel: 'PadV2', inputs: [['x', slot(n, 0)]], weights: {}, attrs: { paddings: [0, 2, 4, 6].map((i) => [p[i], p[i + 1]]), constantValue: 0 } };
    } else {
      throw bad(n, 'is an op');
    }
    slotOf.set(n.name, out);
    steps.push({ ...step, out, free: [] });
  }
  const heads = HEAD_ORDER.map((h) => slotOf.get(h) as number);
  // free each slot after its last reader
  const lastReader = new Map<number, Step>();
  for (const s of steps) for (const [, i] of s.inputs) lastReader.set(i, s);
  for (const [i, s] of lastReader) if (i !== 0 && !heads.includes(i)) s.free.push(i);
  return { steps, heads, slots: slotOf.size };
}

/** The loaded BlazeFace graph on one TensorFlow.js instance. */
export class BlazeFaceModel {
  private readonly anchorCache = new Map<string, Float32Array>();

  private constructor(
    private readonly tf: typeof TF,
    private readonly plan: Plan,
  ) {}

  /**
   * Load models/blazeface.json and its weights from the package files (works on every backend:
   * no file:// or http:// loader involved) and compile the graph (see compile()). The graph is
   * fully convolutional: it takes any input size.
   */
  static async load(tf: typeof TF, dir: string = BLAZEFACE_DIR): Promise<BlazeFaceModel> {
    const file = path.join(dir, 'blazeface.json');
    let json: ModelJson;
    const weights: Buffer[] = [];
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8')) as ModelJson;
      for (const group of json.weightsManifest) for (const p of group.paths) weights.push(fs.readFileSync(path.join(dir, p)));
    } catch (e) {
      throw new Error(`cannot read the BlazeFace model in ${dir}: ${e instanceof Error ? e.message : e}`);
    }
    const all = Buffer.concat(weights);
    const named = tf.io.decodeWeights(
      all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      json.weightsManifest.flatMap((g) => g.weights),
    );
    try {
      return new BlazeFaceModel(tf, compile(json.modelTopology.node, named, file));
    } catch (e) {
      for (const t of Object.values(named)) t.dispose();
      throw e;
    }
  }

  /**
   * The head outputs for an input made by blazeInput() for geometry g: one logit and REG
   * regressions an anchor, in blazeAnchors() order.
   */
  async outputs(input: Float32Array, g: BlazeGeometry): Promise<{ logits: Float32Array; regressions: Float32Array }> {
    const tf = this.tf;
    const engine = tf.engine();
    const v: Array<TF.Tensor | undefined> = new Array(this.plan.slots);
    v[0] = tf.tensor4d(input, [1, g.height, g.width, 3], 'float32');
    try {
      for (const s of this.plan.steps) {
        const inputs: TF.NamedTensorMap = { ...s.weights };
        for (const [name, i] of s.inputs) inputs[name] = v[i] as TF.Tensor;
        v[s.out] = engine.runKernel(s.kernel, inputs, s.attrs) as TF.Tensor;
        for (const i of s.free) {
          v[i]?.dispose();
          v[i] = undefined;
        }
      }
      const [s16, b16, s32, b32] = (await Promise.all(this.plan.heads.map((h) => (v[h] as TF.Tensor).data()))) as Float32Array[];
      const logits = new Float32Array(s16.length + s32.length);
      logits.set(s16);
      logits.set(s32, s16.length);
      const regressions = new Float32Array(b16.length + b32.length);
      regressions.set(b16);
      regressions.set(b32, b16.length);
      return { logits, regressions };
    } finally {
      for (const t of v) t?.dispose();
    }
  }

  /**
   * Raw candidates (before NMS) of an input made by blazeInput() for geometry g, scoring at
   * least minScore, in input pixels.
   */
  async candidates(input: Float32Array, g: BlazeGeometry, minScore: number): Promise<BlazeDetection[]> {
    const { logits, regressions } = await this.outputs(input, g);
    return decodeBlazeFace(logits, regressions, this.anchors(g), minScore);
  }

  private anchors(g: BlazeGeometry): Float32Array {
    const key = `${g.width}x${g.height}`;
    let a = this.anchorCache.get(key);
    if (!a) {
      a = blazeAnchors(g.width, g.height);
      this.anchorCache.set(key, a);
    }
    return a;
  }
}
