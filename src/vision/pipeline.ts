/**
 * The frame pipeline: image in, 48x48 grayscale faces out.
 *   read (Buffer / path / data URL, byte limit) -> decode (EXIF-upright RGB, pixel limit)
 *   -> detect faces (or take the whole image as one face) -> square crop + margin -> gray 48x48.
 * Used by the tinyfer-frame node, by tinyfer-emotion for raw images, and by the benchmarks.
 */
import { FACE_SIZE } from '../model/labels';
import { cropFace, cropGray, faceSquare, landmarkSquare, rgbToGray } from './crop';
import { DEFAULT_DECODE, decodeFrame, readImageInput, type DecodeOptions, type DecodedFrame } from './decode';
import {
  DEFAULT_DETECT,
  DEFAULT_DETECTOR_RUNTIME,
  DETECTOR_RUNTIMES,
  FaceDetector,
  checkDetectOptions,
  type Box,
  type DetectOptions,
  type Detection,
  type DetectorRuntime,
  type FaceLandmarks,
} from './detector';
import { RANGES, checkSetting } from '../settings/spec';

export interface FrameOptions extends DecodeOptions, DetectOptions {
  /** Fraction of the face square added on every side before cropping (0: framed like FER2013 faces). */
  margin: number;
  /** Treat the whole image as one (pre-cropped) face, no detection. */
  wholeFace: boolean;
  /** Images whose longer side is at most this are taken as one face even when wholeFace is off (0: never). */
  wholeFaceMaxSide: number;
  /** Where the detector runs: its own worker thread on tfjs wasm, or the main thread's TensorFlow.js (see detector.ts). */
  detectorRuntime: DetectorRuntime;
}

export const DEFAULT_FRAME: Readonly<FrameOptions> = {
  ...DEFAULT_DECODE,
  ...DEFAULT_DETECT,
  margin: 0,
  wholeFace: false,
  wholeFaceMaxSide: 64,
  detectorRuntime: DEFAULT_DETECTOR_RUNTIME,
};

/** One face found in a frame. */
export interface Face {
  /** In pixels of the upright original image. */
  box: Box;
  /** Detector confidence (1 for a whole-image face). */
  score: number;
  /** Eyes, nose, mouth and ears in pixels of the upright original image (detected faces only). */
  landmarks?: FaceLandmarks;
  /** FACE_SIZE x FACE_SIZE grayscale, row-major. */
  pixels: Uint8Array;
}

export interface FrameResult {
  frame: DecodedFrame;
  faces: Face[];
  /** 'detect' when the detector ran, 'whole' when the image was taken as one face. */
  mode: 'detect' | 'whole';
  /** Where the detector ran, when it ran: 'worker-wasm', 'main-tensorflow', 'main-wasm' or 'main-cpu' (FaceDetector.label). */
  detector?: string;
}

/** Fill in defaults and check every option; throws RangeError naming the bad one. */
export function frameOptions(partial: Partial<FrameOptions> = {}): FrameOptions {
  const o: FrameOptions = { ...DEFAULT_FRAME };
  for (const [k, v] of Object.entries(partial)) {
    if (v !== undefined && v !== null && (v as unknown) !== '') (o as unknown as Record<string, unknown>)[k] = v;
  }
  const positive: Array<keyof FrameOptions> = ['maxBytes', 'maxPixels', 'workMaxSide'];
  for (const k of positive) {
    if (typeof o[k] !== 'number') throw new RangeError(`${k} must be a positive number, got ${String(o[k])}`);
    checkSetting(k, RANGES.positive, o[k]);
  }
  if (typeof o.margin !== 'number') throw new RangeError(`margin must be a number, got ${String(o.margin)}`);
  checkSetting('margin', RANGES.margin, o.margin);
  if (typeof o.wholeFaceMaxSide !== 'number') throw new RangeError(`wholeFaceMaxSide must be a number, got ${String(o.wholeFaceMaxSide)}`);
  checkSetting('wholeFaceMaxSide', RANGES.wholeFaceMaxSide, o.wholeFaceMaxSide);
  o.wholeFace = o.wholeFace === true;
  checkDetectOptions(o); // the detector's own options too: a bad one fails here, not at the first frame
  if (!DETECTOR_RUNTIMES.includes(o.detectorRuntime)) {
    throw new RangeError(`detectorRuntime must be one of ${DETECTOR_RUNTIMES.join(', ')}, got '${String(o.detectorRuntime)}'`);
  }
  return o;
}

/** Run the whole pipeline on one image input. A frame without faces gives faces: []. */
export async function processFrame(input: unknown, opts: FrameOptions = DEFAULT_FRAME): Promise<FrameResult> {
  const bytes = await readImageInput(input, opts);
  const frame = await decodeFrame(bytes, opts);
  return findFaces(frame, opts);
}

/** Detect (or take whole) and crop the faces of a decoded frame. */
export async function findFaces(frame: DecodedFrame, opts: FrameOptions = DEFAULT_FRAME): Promise<FrameResult> {
  const whole = opts.wholeFace || Math.max(frame.width, frame.height) <= opts.wholeFaceMaxSide;
  if (whole) {
    const gray = rgbToGray(frame.rgb, frame.workWidth, frame.workHeight);
    const workBox = { x: 0, y: 0, w: frame.workWidth, h: frame.workHeight };
    const pixels =
      frame.workWidth === FACE_SIZE && frame.workHeight === FACE_SIZE
        ? gray
        : cropGray(gray, frame.workWidth, frame.workHeight, faceSquare(workBox, 0));
    return { frame, faces: [{ box: { x: 0, y: 0, w: frame.width, h: frame.height }, score: 1, pixels }], mode: 'whole' };
  }
  const detector = await FaceDetector.load(opts.detectorRuntime);
  const found = await detector.detect(frame.rgb, frame.workWidth, frame.workHeight, opts);
  return { frame, faces: cropFaces(frame, found, opts), mode: 'detect', detector: detector.label };
}

/**
 * The 48x48 faces of a frame's detections: framed on the eyes and mouth (opts.landmarks) or on
 * the box, grown by opts.margin; boxes and keypoints mapped to the upright original.
 */
export function cropFaces(frame: DecodedFrame, found: readonly Detection[], opts: Pick<FrameOptions, 'landmarks' | 'margin'>): Face[] {
  const faces: Face[] = [];
  for (const d of found) {
    const sq = (opts.landmarks && landmarkSquare(d.landmarks, opts.margin, d.box)) || faceSquare(d.box, opts.margin);
    const pixels = cropFace(frame.rgb, frame.workWidth, frame.workHeight, sq);
    faces.push({ box: toOriginal(d.box, frame), score: d.score, landmarks: landmarksToOriginal(d.landmarks, frame), pixels });
  }
  return faces;
}

function landmarksToOriginal(lm: FaceLandmarks, frame: DecodedFrame): FaceLandmarks {
  const s = 1 / frame.scale;
  const out = {} as FaceLandmarks;
  for (const [k, p] of Object.entries(lm) as Array<[keyof FaceLandmarks, { x: number; y: number }]>) {
    out[k] = { x: Math.round(p.x * s * 10) / 10, y: Math.round(p.y * s * 10) / 10 };
  }
  return out;
}

/** Map a box on the working raster back to the upright original. */
function toOriginal(b: Box, frame: DecodedFrame): Box {
  const s = 1 / frame.scale;
  const x = Math.min(frame.width, Math.round(b.x * s));
  const y = Math.min(frame.height, Math.round(b.y * s));
  return {
    x,
    y,
    w: Math.min(frame.width - x, Math.round(b.w * s)),
    h: Math.min(frame.height - y, Math.round(b.h * s)),
  };
}
