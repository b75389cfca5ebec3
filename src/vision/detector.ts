/**
 * Face detection with BlazeFace (see blazeface.ts): boxes plus six keypoints (eyes, nose tip,
 * mouth, ears) in one pass, so a face can be framed on its eyes and mouth the way the training
 * faces are (see crop.ts) without a second landmark network. Its weights ship with this package
 * (models/blazeface), so nothing is downloaded at run time.
 *
 * Where it runs (DetectorRuntime):
 *   - 'worker-wasm' (the default): in one worker thread per process (detect-worker.ts) that loads
 *     @tensorflow/tfjs + its wasm backend by itself, whatever the main thread uses. The event loop
 *     stays free while a frame is detected, and wasm beats tfjs-node on this graph of ~170 small
 *     ops (tfjs-node pays a fixed cost per op). See worker-detector.ts.
 *   - 'main': on the main thread's TensorFlow.js (src/engine/tf.ts: tfjs-node when that loads,
 *     otherwise tfjs + wasm), blocking the event loop while it runs.
 * Each is loaded once per process and shared by every node.
 */
import { loadTf } from '../engine/tf';
import { BLAZEFACE_KEYPOINTS, BlazeFaceModel, blazeGeometry, blazeInput, weightedNms, type BlazeDetection } from './blazeface';
import { VisionError } from './errors';
import { WorkerDetector } from './worker-detector';
import { RANGES, checkSetting } from '../settings/spec';

/** A rectangle in pixels of the upright original image. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Intersection over union of two boxes (0 when either is empty). */
export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}

/** A point in raster pixels. */
export interface Point {
  x: number;
  y: number;
}

/**
 * The six BlazeFace keypoints. Left and right are as seen in the image (the image's left eye is
 * the subject's right eye in an unmirrored photo); the eyes are the eye centres, the ears the
 * tragions.
 */
export type FaceLandmarks = Record<(typeof BLAZEFACE_KEYPOINTS)[number], Point>;

export interface Detection {
  box: Box;
  score: number;
  landmarks: FaceLandmarks;
}

export interface DetectOptions {
  /**
   * The longer side of the frame is scaled to this for detection (a multiple of 32, 64..1024;
   * each side is rounded up to a multiple of 32). Larger finds smaller faces, slower: the
   * model's native size is 256, a face must be about 20 px at this scale to be found.
   */
  inputSize: number;
  /** When nothing is found at inputSize, try once more at this size (0: never). */
  fallbackSize: number;
  /** Detections scoring below this are dropped (0..1). */
  scoreThreshold: number;
  /** Keep at most this many faces, the largest first. */
  maxFaces: number;
  /** Frame crops on the eyes and mouth keypoints (free: they come with every detection); false: on the box. */
  landmarks: boolean;
}

export const DEFAULT_DETECT: Readonly<DetectOptions> = {
  inputSize: 128,
  fallbackSize: 256,
  scoreThreshold: 0.5,
  maxFaces: 10,
  landmarks: true,
};

/** Candidates overlapping by more than this are merged into one face (MediaPipe's value). */
const NMS_IOU = 0.3;

/** Where BlazeFace runs: a worker thread on tfjs wasm, or the main thread's TensorFlow.js. */
export type DetectorRuntime = 'worker-wasm' | 'main';
export const DETECTOR_RUNTIMES: readonly DetectorRuntime[] = ['worker-wasm', 'main'];
export const DEFAULT_DETECTOR_RUNTIME: DetectorRuntime = 'worker-wasm';

/** Finds faces on one of the two runtimes; get the shared one with FaceDetector.load(). */
export class FaceDetector {
  private static readonly loading = new Map<DetectorRuntime, Promise<FaceDetector>>();

  /**
   * The shared detector of a runtime (loaded on first use). A failed load is not cached: the
   * next call tries again. The worker's detector stays the same object when its thread is
   * restarted after a crash.
   */
  static load(runtime: DetectorRuntime = DEFAULT_DETECTOR_RUNTIME): Promise<FaceDetector> {
    if (!DETECTOR_RUNTIMES.includes(runtime)) {
      return Promise.reject(new RangeError(`detector runtime must be one of ${DETECTOR_RUNTIMES.join(', ')}, got '${String(runtime)}'`));
    }
    let p = FaceDetector.loading.get(runtime);
    if (!p) {
      p = FaceDetector.create(runtime).catch((e) => {
        FaceDetector.loading.delete(runtime);
        throw e;
      });
      FaceDetector.loading.set(runtime, p);
    }
    return p;
  }

  private static async create(runtime: DetectorRuntime): Promise<FaceDetector> {
    if (runtime === 'worker-wasm') {
      const worker = WorkerDetector.shared();
      const backend = await worker.ready();
      return new FaceDetector(runtime, backend, (rgb, w, h, o) => worker.detect(rgb, w, h, o));
    }
    const { tf, runtime: backend } = await loadTf();
    const model = await BlazeFaceModel.load(tf);
    return new FaceDetector(runtime, backend, (rgb, w, h, o) => detectFaces(model, rgb, w, h, o));
  }

  private constructor(
    /** Where the detector runs. */
    readonly runtime: DetectorRuntime,
    /** The TensorFlow.js backend that runs it ('wasm', 'tensorflow' or 'cpu'). */
    readonly backend: string,
    private readonly run: (rgb: Uint8Array, width: number, height: number, opts: DetectOptions) => Promise<Detection[]>,
  ) {}

  /** Runtime and backend in one word: 'worker-wasm', 'main-tensorflow', 'main-wasm' or 'main-cpu'. */
  get label(): string {
    return `${this.runtime === 'main' ? 'main' : 'worker'}-${this.backend}`;
  }

  /**
   * Find faces in an RGB raster (3 bytes a pixel, row-major). Boxes are clamped to the raster,
   * rounded to whole pixels, largest first; keypoints are in raster pixels (not rounded). The
   * raster is left as it is. A failure of the detector's thread is a VisionError E_DETECTOR.
   */
  async detect(rgb: Uint8Array, width: number, height: number, opts: DetectOptions = DEFAULT_DETECT): Promise<Detection[]> {
    checkDetectOptions(opts);
    checkRaster(rgb, width, height);
    return this.run(rgb, width, height, opts);
  }
}

/**
 * Find faces with a loaded model: the detection both runtimes run (in the worker or on the
 * main thread). See FaceDetector.detect.
 */
export async function detectFaces(model: BlazeFaceModel, rgb: Uint8Array, width: number, height: number, opts: DetectOptions): Promise<Detection[]> {
  checkDetectOptions(opts);
  checkRaster(rgb, width, height);
  let out = await detectAt(model, rgb, width, height, opts.inputSize, opts);
  if (out.length === 0 && opts.fallbackSize && opts.fallbackSize !== opts.inputSize) {
    out = await detectAt(model, rgb, width, height, opts.fallbackSize, opts);
  }
  out.sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
  return out.slice(0, opts.maxFaces);
}

async function detectAt(model: BlazeFaceModel, rgb: Uint8Array, width: number, height: number, inputSize: number, opts: DetectOptions): Promise<Detection[]> {
  const g = blazeGeometry(width, height, inputSize);
  const found = weightedNms(await model.candidates(blazeInput(rgb, width, height, g), g, opts.scoreThreshold), NMS_IOU);
  const out: Detection[] = [];
  for (const d of found) {
    const det = toRaster(d, 1 / g.scale, width, height);
    if (det) out.push(det);
  }
  return out;
}

function checkRaster(rgb: Uint8Array, width: number, height: number): void {
  if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * 3) {
    throw new VisionError('E_DECODE', `RGB raster has ${rgb?.length} bytes, expected ${width}x${height}x3`);
  }
}

/** A detection in input pixels -> raster pixels (s raster pixels per input pixel); null when it has no area left. */
function toRaster(d: BlazeDetection, s: number, width: number, height: number): Detection | null {
  const x0 = clamp(Math.round(d.x0 * s), 0, width);
  const y0 = clamp(Math.round(d.y0 * s), 0, height);
  const x1 = clamp(Math.round(d.x1 * s), 0, width);
  const y1 = clamp(Math.round(d.y1 * s), 0, height);
  if (x1 - x0 < 2 || y1 - y0 < 2) return null;
  const landmarks = {} as FaceLandmarks;
  BLAZEFACE_KEYPOINTS.forEach((name, k) => {
    landmarks[name] = { x: d.keypoints[2 * k] * s, y: d.keypoints[2 * k + 1] * s };
  });
  return { box: { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, score: d.score, landmarks };
}

export function checkDetectOptions(o: DetectOptions): void {
  checkSetting('detector inputSize', RANGES.inputSize, o.inputSize);
  checkSetting('detector fallbackSize', RANGES.fallbackSize, o.fallbackSize);
  checkSetting('detector scoreThreshold', RANGES.scoreThreshold, o.scoreThreshold);
  checkSetting('maxFaces', RANGES.maxFaces, o.maxFaces);
  if (typeof o.landmarks !== 'boolean') throw new RangeError(`landmarks must be true or false, got ${String(o.landmarks)}`);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
