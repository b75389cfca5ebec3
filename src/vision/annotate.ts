/**
 * Draw face boxes (and, when known, the emotion and its confidence) onto a frame: an SVG
 * overlay composited by sharp, output as a JPEG for a dashboard image widget.
 */
import sharp from 'sharp';
import type { Box } from './detector';
import { VisionError, reason } from './errors';

export interface AnnotatedFace {
  /** In pixels of the upright original image. */
  box: Box;
  /** Detector score, drawn when no emotion is known. */
  score?: number;
  emotion?: string | null;
  confidence?: number;
}

export interface AnnotateOptions {
  /** The output is downscaled so its longer side is at most this. */
  maxSide: number;
  /** JPEG quality 1..100. */
  quality: number;
  /** Pixel limit for decoding the source (as in decodeFrame). */
  maxPixels: number;
}

export const DEFAULT_ANNOTATE: Readonly<AnnotateOptions> = { maxSide: 1280, quality: 80, maxPixels: 40_000_000 };

/** The colour of each emotion's box and caption (a face of unknown emotion: FACE_ONLY). */
export const COLOURS: Record<string, string> = {
  angry: '#e53935',
  disgust: '#8e24aa',
  fear: '#fb8c00',
  happy: '#43a047',
  sad: '#1e88e5',
  surprise: '#fdd835',
  neutral: '#90a4ae',
};
const FACE_ONLY = '#00e5ff';

/** Caption for one face: "happy 87%", or the detector score when no emotion is known. */
export function caption(f: AnnotatedFace): string {
  if (f.emotion) return f.confidence === undefined ? f.emotion : `${f.emotion} ${Math.round(f.confidence * 100)}%`;
  return f.score === undefined ? 'face' : `face ${Math.round(f.score * 100)}%`;
}

/** The SVG overlay for an image of width x height where boxes are scaled by `scale`. */
export function overlaySvg(width: number, height: number, faces: readonly AnnotatedFace[], scale: number): string {
  const stroke = Math.max(2, Math.round(Math.max(width, height) / 320));
  const font = Math.max(10, Math.round(Math.max(width, height) / 40));
  const parts: string[] = [];
  for (const f of faces) {
    const x = f.box.x * scale;
    const y = f.box.y * scale;
    const w = f.box.w * scale;
    const h = f.box.h * scale;
    const colour = (f.emotion && COLOURS[f.emotion]) || FACE_ONLY;
    const text = escapeXml(caption(f));
    const textW = Math.round(text.length * font * 0.62 + font * 0.6);
    const labelH = Math.round(font * 1.4);
    const ly = y - labelH >= 0 ? y - labelH : y + h;
    parts.push(
      `<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
      `<rect x="${r(x)}" y="${r(ly)}" width="${textW}" height="${labelH}" fill="${colour}" fill-opacity="0.85"/>`,
      `<text x="${r(x + font * 0.3)}" y="${r(ly + font * 1.05)}" font-family="DejaVu Sans, Arial, sans-serif" ` +
        `font-size="${font}" fill="#000">${text}</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Upright (EXIF-rotated) frame, downscaled to maxSide, with the faces drawn on it, as JPEG. */
export async function annotate(
  source: Buffer,
  faces: readonly AnnotatedFace[],
  opts: AnnotateOptions = DEFAULT_ANNOTATE,
): Promise<Buffer> {
  try {
    const sharpOpts: sharp.SharpOptions = { limitInputPixels: opts.maxPixels, failOn: 'truncated' };
    const meta = await sharp(source, sharpOpts).metadata();
    if (!meta.width || !meta.height) throw new Error('the image header has no size');
    const swap = (meta.orientation ?? 1) >= 5;
    const width = swap ? meta.height : meta.width;
    const height = swap ? meta.width : meta.height;
    const scale = Math.min(1, opts.maxSide / Math.max(width, height));
    const ow = Math.max(1, Math.round(width * scale));
    const oh = Math.max(1, Math.round(height * scale));
    const base = await sharp(source, sharpOpts)
      .rotate()
      .resize({ width: ow, height: oh, fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return await drawOn(base.data, base.info.width, base.info.height, scale, faces, opts.quality);
  } catch (e) {
    throw new VisionError('E_DECODE', `cannot annotate the frame: ${reason(e)}`);
  }
}

/** Draw on an already decoded upright RGB raster (e.g. DecodedFrame.rgb) whose scale to the original is `scale`. */
export async function drawOn(
  rgb: Buffer,
  width: number,
  height: number,
  scale: number,
  faces: readonly AnnotatedFace[],
  quality = DEFAULT_ANNOTATE.quality,
): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(overlaySvg(width, height, faces, scale)), top: 0, left: 0 }])
    .jpeg({ quality })
    .toBuffer();
}

function r(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}
