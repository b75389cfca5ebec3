/**
 * Face detection with the Tiny Face Detector of @vladmandic/face-api. Its weights ship inside
 * the npm package (model/tiny_face_detector_model.*), so nothing is downloaded at run time.
 * It runs on the same TensorFlow.js the rest of the package uses (src/engine/tf.ts): the
 * face-api build for tfjs-node when that loads, otherwise its build for tfjs + wasm.
 * The 68-point tiny landmark net (also shipped in the package) then finds the eyes and mouth,
 * so a face can be framed the way the training faces are (see crop.ts).
 * The models are loaded once per process and shared by every node.
 */
import * as path from 'path';
import { loadTf } from '../engine/tf';
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

/** The centres of the eyes and the mouth, from the 68-point landmark net (image left/right). */
export interface FaceLandmarks {
  leftEye: Point;
  rightEye: Point;
  mouth: Point;
}

export interface Detection {
  box: Box;
  score: number;
  /** Present when the detection ran with landmarks. */
  landmarks?: FaceLandmarks;
}

export interface DetectOptions {
  /** Side the detector resizes the frame to: a multiple of 32 (128..608). Larger finds smaller faces, slower. */
  inputSize: number;
  /** Detections scoring below this are dropped (0..1). */
  scoreThreshold: number;
  /** Keep at most this many faces, the largest first. */
  maxFaces: number;
  /**
   * When nothing is found at inputSize, try once more at this size (0: never). The detector's
   * anchors favour faces of a certain size in its input: a face that fills a small picture is
   * found at a small size, a face in a wide camera frame at a large one.
   */
  fallbackSize: number;
  /** Also locate eyes and mouth (68-point tiny landmark net, a few ms a face) so crops can be framed on them. */
  landmarks: boolean;
}

export const DEFAULT_DETECT: Readonly<DetectOptions> = {
  inputSize: 416,
  scoreThreshold: 0.5,
  maxFaces: 10,
  fallbackSize: 224,
  landmarks: true,
};

/** The small part of face-api we use. */
interface FaceApi {
  tf: {
    tensor3d(values: Int32Array, shape: [number, number, number], dtype: 'int32'): { dispose(): void };
    getBackend(): string;
  };
  nets: {
    tinyFaceDetector: { loadFromDisk(dir: string): Promise<void> };
    faceLandmark68TinyNet: { loadFromDisk(dir: string): Promise<void> };
  };
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown;
  detectAllFaces(input: unknown, options: unknown): DetectTask;
  detectFaceLandmarksTiny(input: unknown): Promise<{ positions: Point[] }>;
}

interface RawDetection {
  score: number;
  box: { x: number; y: number; width: number; height: number };
}

/** face-api's detection task: awaitable, or chained with landmarks (true: the tiny landmark net). */
interface DetectTask extends PromiseLike<RawDetection[]> {
  withFaceLandmarks(useTiny: true): PromiseLike<Array<{ detection: RawDetection; landmarks: { positions: Point[] } }>>;
}

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
    const { runtime } = await loadTf();
    const pkgDir = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
    // face-api.node.js requires @tensorflow/tfjs-node; face-api.node-wasm.js requires @tensorflow/tfjs
    // (+ the wasm backend). Both drive the one tfjs-core engine that loadTf() already set up.
    const build = runtime === 'tensorflow' ? 'face-api.node.js' : 'face-api.node-wasm.js';
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const api = require(path.join(pkgDir, 'dist', build)) as FaceApi;
    await api.nets.tinyFaceDetector.loadFromDisk(path.join(pkgDir, 'model'));
    await api.nets.faceLandmark68TinyNet.loadFromDisk(path.join(pkgDir, 'model'));
    return new FaceDetector(api, api.tf.getBackend());
  }

  private constructor(
    private readonly api: FaceApi,
    /** Which TensorFlow.js backend runs the detector ('tensorflow', 'wasm' or 'cpu'). */
    readonly runtime: string,
  ) {}

  /**
   * Find faces in an RGB raster (3 bytes a pixel, row-major). Boxes are clamped to the raster,
   * rounded to whole pixels, largest first.
   */
  async detect(rgb: Uint8Array, width: number, height: number, opts: DetectOptions = DEFAULT_DETECT): Promise<Detection[]> {
    checkDetectOptions(opts);
    if (rgb.length !== width * height * 3) {
      throw new VisionError('E_DECODE', `RGB raster has ${rgb.length} bytes, expected ${width}x${height}x3`);
    }
    const input = this.api.tf.tensor3d(Int32Array.from(rgb), [height, width, 3], 'int32');
    try {
      let out = await this.run(input, width, height, opts.inputSize, opts);
      if (out.length === 0 && opts.fallbackSize && opts.fallbackSize !== opts.inputSize) {
        out = await this.run(input, width, height, opts.fallbackSize, opts);
      }
      out.sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
      return out.slice(0, opts.maxFaces);
    } finally {
      input.dispose();
    }
  }

  /**
   * Eye and mouth centres of an image that is already one face crop (no detection), in its
   * pixels: used to measure how a dataset frames its faces (see framing.ts).
   */
  async landmarksOfCrop(rgb: Uint8Array, width: number, height: number): Promise<FaceLandmarks> {
    if (rgb.length !== width * height * 3) {
      throw new VisionError('E_DECODE', `RGB raster has ${rgb.length} bytes, expected ${width}x${height}x3`);
    }
    const input = this.api.tf.tensor3d(Int32Array.from(rgb), [height, width, 3], 'int32');
    try {
      return landmarkCentres((await this.api.detectFaceLandmarksTiny(input)).positions);
    } finally {
      input.dispose();
    }
  }

  private async run(input: unknown, width: number, height: number, inputSize: number, opts: DetectOptions): Promise<Detection[]> {
    const task = this.api.detectAllFaces(input, new this.api.TinyFaceDetectorOptions({ inputSize, scoreThreshold: opts.scoreThreshold }));
    let found: Array<{ d: RawDetection; lm?: FaceLandmarks }>;
    if (opts.landmarks) {
      found = (await task.withFaceLandmarks(true)).map((r) => ({ d: r.detection, lm: landmarkCentres(r.landmarks.positions) }));
    } else {
      found = (await task).map((d) => ({ d }));
    }
    const out: Detection[] = [];
    for (const { d, lm } of found) {
      const x0 = clamp(Math.round(d.box.x), 0, width);
      const y0 = clamp(Math.round(d.box.y), 0, height);
      const x1 = clamp(Math.round(d.box.x + d.box.width), 0, width);
      const y1 = clamp(Math.round(d.box.y + d.box.height), 0, height);
      if (x1 - x0 < 2 || y1 - y0 < 2) continue;
      out.push({ box: { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, score: d.score, ...(lm ? { landmarks: lm } : {}) });
    }
    return out;
  }
}

/** Eye and mouth centres from the 68 iBUG landmarks (36-41 and 42-47: the eyes, 48-67: the mouth). */
export function landmarkCentres(p: readonly Point[]): FaceLandmarks {
  if (p.length !== 68) throw new RangeError(`expected 68 landmarks, got ${p.length}`);
  const mean = (a: number, b: number): Point => {
    let x = 0;
    let y = 0;
    for (let i = a; i < b; i++) {
      x += p[i].x;
      y += p[i].y;
    }
    return { x: x / (b - a), y: y / (b - a) };
  };
  return { leftEye: mean(36, 42), rightEye: mean(42, 48), mouth: mean(48, 68) };
}

export function checkDetectOptions(o: DetectOptions): void {
  const sizeOk = (v: number) => Number.isInteger(v) && v % 32 === 0 && v >= 128 && v <= 608;
  if (!sizeOk(o.inputSize)) {
    throw new RangeError(`detector inputSize must be a multiple of 32 between 128 and 608, got ${o.inputSize}`);
  }
  if (o.fallbackSize !== 0 && !sizeOk(o.fallbackSize)) {
    throw new RangeError(`detector fallbackSize must be 0 or a multiple of 32 between 128 and 608, got ${o.fallbackSize}`);
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
