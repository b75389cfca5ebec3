/**
 * Face detection with BlazeFace (see blazeface.ts): boxes plus six keypoints (eyes, nose tip,
 * mouth, ears) in one pass, so a face can be framed on its eyes and mouth the way the training
 * faces are (see crop.ts) without a second landmark network. Its weights ship inside the
 * @vladmandic/human npm package, so nothing is downloaded at run time. It runs on the same
 * TensorFlow.js the rest of the package uses (src/engine/tf.ts): tfjs-node when that loads,
 * otherwise tfjs + wasm. The model is loaded once per process and shared by every node.
 */
import { loadTf } from '../engine/tf';
import { BLAZEFACE_KEYPOINTS, BlazeFaceModel, blazeGeometry, blazeInput, weightedNms, type BlazeDetection } from './blazeface';
import { VisionError } from './errors';

/** A rectangle in pixels of the upright original image. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
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

export class FaceDetector {
  private static loading: Promise<FaceDetector> | undefined;

  /** The shared detector (loaded on first use). A failed load is not cached: the next call tries again. */
  static load(): Promise<FaceDetector> {
    if (!FaceDetector.loading) {
      FaceDetector.loading = FaceDetector.create().catch((e) => {
        FaceDetector.loading = undefined;
        throw e;
      });
    }
    return FaceDetector.loading;
  }

  private static async create(): Promise<FaceDetector> {
    const { tf, runtime } = await loadTf();
    return new FaceDetector(await BlazeFaceModel.load(tf), runtime);
  }

  private constructor(
    private readonly model: BlazeFaceModel,
    /** Which TensorFlow.js backend runs the detector ('tensorflow', 'wasm' or 'cpu'). */
    readonly runtime: string,
  ) {}

  /**
   * Find faces in an RGB raster (3 bytes a pixel, row-major). Boxes are clamped to the raster,
   * rounded to whole pixels, largest first; keypoints are in raster pixels (not rounded).
   */
  async detect(rgb: Uint8Array, width: number, height: number, opts: DetectOptions = DEFAULT_DETECT): Promise<Detection[]> {
    checkDetectOptions(opts);
    if (rgb.length !== width * height * 3) {
      throw new VisionError('E_DECODE', `RGB raster has ${rgb.length} bytes, expected ${width}x${height}x3`);
    }
    let out = await this.run(rgb, width, height, opts.inputSize, opts);
    if (out.length === 0 && opts.fallbackSize && opts.fallbackSize !== opts.inputSize) {
      out = await this.run(rgb, width, height, opts.fallbackSize, opts);
    }
    out.sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
    return out.slice(0, opts.maxFaces);
  }

  private async run(rgb: Uint8Array, width: number, height: number, inputSize: number, opts: DetectOptions): Promise<Detection[]> {
    const g = blazeGeometry(width, height, inputSize);
    const found = weightedNms(await this.model.candidates(blazeInput(rgb, width, height, g), g, opts.scoreThreshold), NMS_IOU);
    const out: Detection[] = [];
    for (const d of found) {
      const det = toRaster(d, 1 / g.scale, width, height);
      if (det) out.push(det);
    }
    return out;
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
  const sizeOk = (v: number) => Number.isInteger(v) && v % 32 === 0 && v >= 64 && v <= 1024;
  if (!sizeOk(o.inputSize)) {
    throw new RangeError(`detector inputSize must be a multiple of 32 between 64 and 1024, got ${o.inputSize}`);
  }
  if (o.fallbackSize !== 0 && !sizeOk(o.fallbackSize)) {
    throw new RangeError(`detector fallbackSize must be 0 or a multiple of 32 between 64 and 1024, got ${o.fallbackSize}`);
  }
  if (!(o.scoreThreshold >= 0 && o.scoreThreshold <= 1)) {
    throw new RangeError(`detector scoreThreshold must be in 0..1, got ${o.scoreThreshold}`);
  }
  if (!Number.isInteger(o.maxFaces) || o.maxFaces < 1) throw new RangeError(`maxFaces must be >= 1, got ${o.maxFaces}`);
  if (typeof o.landmarks !== 'boolean') throw new RangeError(`landmarks must be true or false, got ${String(o.landmarks)}`);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
