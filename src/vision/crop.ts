/**
 * From a detected face to the model's input: a square around the face (framed on the eyes and
 * mouth like the FER2013 training faces, or around the detector's box), grown by a margin,
 * converted to grayscale and resampled to FACE_SIZE x FACE_SIZE. Parts of the square that fall
 * outside the frame repeat the nearest edge pixel (no black bars that the model never saw).
 */
import { FACE_PIXELS, FACE_SIZE } from '../model/labels';
import type { Box, FaceLandmarks } from './detector';

/** The square (in raster pixels, may reach outside the raster) that a face box is cropped to. */
export interface Square {
  x: number;
  y: number;
  side: number;
}

/**
 * Centre a square on the box, with side = longer box side * (1 + 2 * margin):
 * margin is the fraction of the box size added on every side.
 */
export function faceSquare(box: Box, margin: number): Square {
  if (!(margin >= 0 && margin <= 2)) throw new RangeError(`crop margin must be in 0..2, got ${margin}`);
  const side = Math.max(box.w, box.h) * (1 + 2 * margin);
  return { x: box.x + box.w / 2 - side / 2, y: box.y + box.h / 2 - side / 2, side };
}

/**
 * Where the eyes and mouth sit in a FER2013 face, as fractions of its side: the medians over
 * 200 PublicTest faces (the first 40 each of happy, neutral, sad, surprise, angry) of the
 * BlazeFace keypoints the pipeline uses (measureFraming() in framing.ts). Faces cropped with
 * landmarkSquare() are framed like the faces the model was trained on, whatever the detector's
 * box looked like.
 */
export const FER_FRAMING = {
  /** Distance between the eye centres / side. */
  eyeDistance: 17.37 / 48,
  /** Distance from the midpoint of the eyes to the mouth centre / side. */
  eyeMouth: 18.71 / 48,
  /** Position of the midpoint between (eye midpoint) and (mouth centre), as fractions of the side. */
  centreX: 24.38 / 48,
  centreY: 28.54 / 48,
} as const;

/**
 * The square that frames a face like a FER2013 face, from its eye and mouth centres; margin
 * as in faceSquare (0: FER framing). The scale is the mean of the eye-distance and the
 * eye-to-mouth estimates (robust to a turned head and to an open mouth alike). Returns null
 * when the landmarks disagree with the detector's box by more than 2x (a failed landmark fit),
 * so the caller can fall back to faceSquare.
 */
export function landmarkSquare(lm: Pick<FaceLandmarks, 'leftEye' | 'rightEye' | 'mouth'>, margin: number, box?: Box): Square | null {
  if (!(margin >= 0 && margin <= 2)) throw new RangeError(`crop margin must be in 0..2, got ${margin}`);
  const eyeMid = { x: (lm.leftEye.x + lm.rightEye.x) / 2, y: (lm.leftEye.y + lm.rightEye.y) / 2 };
  const eyeDist = Math.hypot(lm.rightEye.x - lm.leftEye.x, lm.rightEye.y - lm.leftEye.y);
  const eyeMouth = Math.hypot(lm.mouth.x - eyeMid.x, lm.mouth.y - eyeMid.y);
  const base = (eyeDist / FER_FRAMING.eyeDistance + eyeMouth / FER_FRAMING.eyeMouth) / 2;
  if (!(base > 1)) return null;
  if (box) {
    const ratio = base / Math.max(box.w, box.h);
    if (ratio < 0.5 || ratio > 2) return null;
  }
  const cx = (eyeMid.x + lm.mouth.x) / 2;
  const cy = (eyeMid.y + lm.mouth.y) / 2;
  const side = base * (1 + 2 * margin);
  // place the centre point where FER2013 has it, then grow the margin evenly around the face square
  const x0 = cx - FER_FRAMING.centreX * base;
  const y0 = cy - FER_FRAMING.centreY * base;
  return { x: x0 - base * margin, y: y0 - base * margin, side };
}

/** Luma (ITU-R BT.601, as libjpeg and libvips use) of an RGB raster, rounded to uint8. */
export function rgbToGray(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`RGB raster has ${rgb.length} bytes, expected ${width * height * 3}`);
  return grayRegion(rgb, width, 0, 0, width, height);
}

/** Luma of the w x h region at (x0, y0) of an RGB raster `width` pixels wide (bounds checked by the caller). */
function grayRegion(rgb: Uint8Array, width: number, x0: number, y0: number, w: number, h: number): Uint8Array {
  const gray = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    let j = ((y0 + y) * width + x0) * 3;
    for (let x = 0, i = y * w; x < w; x++, i++, j += 3) {
      gray[i] = (rgb[j] * 299 + rgb[j + 1] * 587 + rgb[j + 2] * 114 + 500) / 1000;
    }
  }
  return gray;
}

/**
 * The face in square `sq` of an RGB raster as FACE_SIZE x FACE_SIZE gray: only the part of the
 * raster the square samples is converted to gray. The result is cropGray(rgbToGray(whole
 * raster), sq) up to the rounding of a value (+-1) where sample positions round differently.
 */
export function cropFace(rgb: Uint8Array, width: number, height: number, sq: Square): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`RGB raster has ${rgb.length} bytes, expected ${width * height * 3}`);
  if (!(sq.side > 0)) throw new RangeError(`crop side must be > 0, got ${sq.side}`);
  // cropGray samples at sq.x - 0.5 .. sq.x + side - 0.5 and reads one pixel further for bilinear
  const x0 = clampInt(Math.floor(sq.x) - 1, 0, width - 1);
  const y0 = clampInt(Math.floor(sq.y) - 1, 0, height - 1);
  const x1 = clampInt(Math.ceil(sq.x + sq.side) + 1, x0 + 1, width);
  const y1 = clampInt(Math.ceil(sq.y + sq.side) + 1, y0 + 1, height);
  const w = x1 - x0;
  const h = y1 - y0;
  return cropGray(grayRegion(rgb, width, x0, y0, w, h), w, h, { x: sq.x - x0, y: sq.y - y0, side: sq.side });
}

function clampInt(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Resample the square `sq` of a grayscale raster to FACE_SIZE x FACE_SIZE.
 * Each output pixel averages n x n bilinear samples (n = ceil(source pixels per output pixel)),
 * so large faces are area-averaged (no aliasing) and small ones are interpolated.
 */
export function cropGray(gray: Uint8Array, width: number, height: number, sq: Square): Uint8Array {
  if (gray.length !== width * height) throw new RangeError(`gray raster has ${gray.length} bytes, expected ${width}x${height}`);
  if (!(sq.side > 0)) throw new RangeError(`crop side must be > 0, got ${sq.side}`);
  const out = new Uint8Array(FACE_PIXELS);
  const step = sq.side / FACE_SIZE;
  const n = Math.max(1, Math.ceil(step));
  const inv = 1 / (n * n);
  // the bilinear taps of every sample column and row, computed once (n per output pixel)
  const m = FACE_SIZE * n;
  const cx0 = new Int32Array(m);
  const cx1 = new Int32Array(m);
  const cfx = new Float64Array(m);
  const ry0 = new Int32Array(m);
  const ry1 = new Int32Array(m);
  const rfy = new Float64Array(m);
  for (let o = 0; o < FACE_SIZE; o++) {
    for (let i = 0; i < n; i++) {
      const k = o * n + i;
      const at = o + (i + 0.5) / n;
      const x = sampleTap(sq.x + at * step - 0.5, width - 1);
      cx0[k] = x.lo;
      cx1[k] = x.hi;
      cfx[k] = x.f;
      const y = sampleTap(sq.y + at * step - 0.5, height - 1);
      ry0[k] = y.lo * width;
      ry1[k] = y.hi * width;
      rfy[k] = y.f;
    }
  }
  for (let oy = 0; oy < FACE_SIZE; oy++) {
    for (let ox = 0; ox < FACE_SIZE; ox++) {
      let acc = 0;
      for (let j = oy * n; j < oy * n + n; j++) {
        const r0 = ry0[j];
        const r1 = ry1[j];
        const fy = rfy[j];
        for (let i = ox * n; i < ox * n + n; i++) {
          const x0 = cx0[i];
          const x1 = cx1[i];
          const fx = cfx[i];
          const top = gray[r0 + x0] + (gray[r0 + x1] - gray[r0 + x0]) * fx;
          const bot = gray[r1 + x0] + (gray[r1 + x1] - gray[r1 + x0]) * fx;
          acc += top + (bot - top) * fy;
        }
      }
      out[oy * FACE_SIZE + ox] = Math.round(acc * inv);
    }
  }
  return out;
}

/** A sample position clamped to 0..max, as its two bilinear taps and the weight of the second. */
function sampleTap(v: number, max: number): { lo: number; hi: number; f: number } {
  const c = v < 0 ? 0 : v > max ? max : v;
  const lo = Math.floor(c);
  return { lo, hi: lo < max ? lo + 1 : lo, f: c - lo };
}
