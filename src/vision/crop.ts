/**
 * From a detected box to the model's input: a square around the face grown by a margin,
 * converted to grayscale and resampled to FACE_SIZE x FACE_SIZE. Parts of the square that fall
 * outside the frame repeat the nearest edge pixel (no black bars that the model never saw).
 */
import { FACE_PIXELS, FACE_SIZE } from '../model/labels';
import type { Box } from './detector';

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

/** Luma (ITU-R BT.601, as libjpeg and libvips use) of an RGB raster, rounded to uint8. */
export function rgbToGray(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  if (rgb.length !== n * 3) throw new RangeError(`RGB raster has ${rgb.length} bytes, expected ${n * 3}`);
  const out = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = (rgb[j] * 299 + rgb[j + 1] * 587 + rgb[j + 2] * 114 + 500) / 1000;
  }
  return out;
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
  const maxX = width - 1;
  const maxY = height - 1;
  for (let oy = 0; oy < FACE_SIZE; oy++) {
    for (let ox = 0; ox < FACE_SIZE; ox++) {
      let acc = 0;
      for (let j = 0; j < n; j++) {
        let sy = sq.y + (oy + (j + 0.5) / n) * step - 0.5;
        sy = sy < 0 ? 0 : sy > maxY ? maxY : sy;
        const y0 = Math.floor(sy);
        const y1 = y0 < maxY ? y0 + 1 : y0;
        const fy = sy - y0;
        const r0 = y0 * width;
        const r1 = y1 * width;
        for (let i = 0; i < n; i++) {
          let sx = sq.x + (ox + (i + 0.5) / n) * step - 0.5;
          sx = sx < 0 ? 0 : sx > maxX ? maxX : sx;
          const x0 = Math.floor(sx);
          const x1 = x0 < maxX ? x0 + 1 : x0;
          const fx = sx - x0;
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
