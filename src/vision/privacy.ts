/**
 * Privacy output: hide faces in a frame before it leaves the node, so a flow can store or
 * forward frames without faces in the clear.
 *
 * Each face's box is grown by a margin (more above, for the hair) and the region is reduced to
 * a coarse grid of cells, `blocks` cells across the face box: every cell becomes the mean colour
 * of the pixels under it ('pixelate'), or the cell means are interpolated bilinearly into a smooth
 * gradient ('blur'). Either way the region carries no more than one RGB value per cell (about
 * blocks x blocks values for the whole face): what was finer than a cell is gone, not just
 * attenuated, so no deconvolution brings it back.
 */
import sharp from 'sharp';
import type { Box } from './detector';
import { VisionError, reason } from './errors';
import { RANGES, checkSetting } from '../settings/spec';

export const PRIVACY_MODES = ['none', 'blur', 'pixelate'] as const;
export type PrivacyMode = (typeof PRIVACY_MODES)[number];

export interface PrivacyOptions {
  /** 'none': faces in the clear (the default); 'blur' or 'pixelate': every face not kept is hidden. */
  mode: PrivacyMode;
  /** Cells across the face box (fewer: coarser). */
  blocks: number;
  /** Fraction of the face box added left, right and below it; 1.5 times that above it (hair, forehead). */
  margin: number;
}

export const DEFAULT_PRIVACY: Readonly<PrivacyOptions> = { mode: 'none', blocks: 6, margin: 0.3 };

/** Fill in defaults and check every option; throws a RangeError naming the bad one. */
export function privacyOptions(partial: Partial<PrivacyOptions> = {}): PrivacyOptions {
  const o: PrivacyOptions = { ...DEFAULT_PRIVACY };
  for (const [k, v] of Object.entries(partial)) {
    if (v !== undefined && v !== null && (v as unknown) !== '') (o as unknown as Record<string, unknown>)[k] = v;
  }
  checkSetting('privacy', { kind: 'enum', values: PRIVACY_MODES }, o.mode);
  if (typeof o.blocks !== 'number') throw new RangeError(`privacyBlocks must be a number, got ${String(o.blocks)}`);
  checkSetting('privacyBlocks', RANGES.privacyBlocks, o.blocks);
  if (typeof o.margin !== 'number') throw new RangeError(`privacyMargin must be a number, got ${String(o.margin)}`);
  checkSetting('privacyMargin', RANGES.privacyMargin, o.margin);
  return o;
}

/** A region of a raster, integer pixel bounds [x0, x1) x [y0, y1). */
export interface Region {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The region hidden for a face box given in pixels of a raster `width` x `height` (clamped to it). */
export function coverRegion(box: Box, margin: number, width: number, height: number): Region {
  const mx = box.w * margin;
  const my = box.h * margin;
  return {
    x0: clamp(Math.floor(box.x - mx), 0, width),
    y0: clamp(Math.floor(box.y - 1.5 * my), 0, height),
    x1: clamp(Math.ceil(box.x + box.w + mx), 0, width),
    y1: clamp(Math.ceil(box.y + box.h + my), 0, height),
  };
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Hide one region of an RGB raster in place: cells of `cell` pixels (the grid starts at the
 * region's corner), each reduced to its mean colour, then filled flat ('pixelate') or
 * interpolated between cell centres ('blur').
 */
export function obscureRegion(rgb: Uint8Array, width: number, height: number, region: Region, cell: number, mode: 'blur' | 'pixelate'): void {
  if (rgb.length !== width * height * 3) throw new RangeError(`RGB raster has ${rgb.length} bytes, expected ${width * height * 3}`);
  const { x0, y0, x1, y1 } = region;
  const rw = x1 - x0;
  const rh = y1 - y0;
  if (rw <= 0 || rh <= 0) return;
  const c = Math.max(1, cell);
  const nx = Math.max(1, Math.round(rw / c));
  const ny = Math.max(1, Math.round(rh / c));
  // cell k spans [bx[k], bx[k+1]) (integer bounds spread evenly over the region)
  const bx = new Int32Array(nx + 1);
  const by = new Int32Array(ny + 1);
  for (let k = 0; k <= nx; k++) bx[k] = x0 + Math.round((k * rw) / nx);
  for (let k = 0; k <= ny; k++) by[k] = y0 + Math.round((k * rh) / ny);
  const mean = new Float64Array(nx * ny * 3);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let y = by[j]; y < by[j + 1]; y++) {
        let p = (y * width + bx[i]) * 3;
        for (let x = bx[i]; x < bx[i + 1]; x++, p += 3) {
          r += rgb[p];
          g += rgb[p + 1];
          b += rgb[p + 2];
        }
      }
      const n = (bx[i + 1] - bx[i]) * (by[j + 1] - by[j]);
      const q = (j * nx + i) * 3;
      mean[q] = r / n;
      mean[q + 1] = g / n;
      mean[q + 2] = b / n;
    }
  }
  if (mode === 'pixelate') {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const q = (j * nx + i) * 3;
        const r = Math.round(mean[q]);
        const g = Math.round(mean[q + 1]);
        const b = Math.round(mean[q + 2]);
        for (let y = by[j]; y < by[j + 1]; y++) {
          let p = (y * width + bx[i]) * 3;
          for (let x = bx[i]; x < bx[i + 1]; x++, p += 3) {
            rgb[p] = r;
            rgb[p + 1] = g;
            rgb[p + 2] = b;
          }
        }
      }
    }
    return;
  }
  // blur: bilinear between cell centres (flat beyond the outer centres)
  const cxs = new Float64Array(nx);
  const cys = new Float64Array(ny);
  for (let i = 0; i < nx; i++) cxs[i] = (bx[i] + bx[i + 1]) / 2;
  for (let j = 0; j < ny; j++) cys[j] = (by[j] + by[j + 1]) / 2;
  const tapX = taps(cxs, x0, x1);
  const tapY = taps(cys, y0, y1);
  for (let y = y0; y < y1; y++) {
    const ty = y - y0;
    const j0 = tapY.lo[ty];
    const j1 = tapY.hi[ty];
    const fy = tapY.f[ty];
    let p = (y * width + x0) * 3;
    for (let x = x0; x < x1; x++, p += 3) {
      const tx = x - x0;
      const i0 = tapX.lo[tx];
      const i1 = tapX.hi[tx];
      const fx = tapX.f[tx];
      for (let ch = 0; ch < 3; ch++) {
        const a = mean[(j0 * nx + i0) * 3 + ch];
        const b = mean[(j0 * nx + i1) * 3 + ch];
        const c2 = mean[(j1 * nx + i0) * 3 + ch];
        const d = mean[(j1 * nx + i1) * 3 + ch];
        const top = a + (b - a) * fx;
        const bot = c2 + (d - c2) * fx;
        rgb[p + ch] = Math.round(top + (bot - top) * fy);
      }
    }
  }
}

/** For every pixel centre in [from, to): the two cell centres around it and the weight of the second. */
function taps(centres: Float64Array, from: number, to: number): { lo: Int32Array; hi: Int32Array; f: Float64Array } {
  const n = to - from;
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const f = new Float64Array(n);
  let k = 0;
  for (let t = 0; t < n; t++) {
    const v = from + t + 0.5;
    while (k + 1 < centres.length && centres[k + 1] <= v) k++;
    if (v <= centres[0]) {
      lo[t] = hi[t] = 0;
    } else if (k + 1 >= centres.length) {
      lo[t] = hi[t] = centres.length - 1;
    } else {
      lo[t] = k;
      hi[t] = k + 1;
      f[t] = (v - centres[k]) / (centres[k + 1] - centres[k]);
    }
  }
  return { lo, hi, f };
}

/**
 * A copy of an upright RGB raster with every box hidden; boxes are in pixels of the upright
 * original and `scale` is raster pixels per original pixel.
 */
export function obscureFaces(rgb: Uint8Array, width: number, height: number, scale: number, boxes: readonly Box[], opts: PrivacyOptions): Buffer {
  const out = Buffer.from(rgb);
  if (opts.mode === 'none') return out;
  for (const b of boxes) {
    const box = { x: b.x * scale, y: b.y * scale, w: b.w * scale, h: b.h * scale };
    const cell = Math.max(box.w, box.h) / opts.blocks;
    obscureRegion(out, width, height, coverRegion(box, opts.margin, width, height), cell, opts.mode);
  }
  return out;
}

/** The upright (EXIF-rotated) RGB raster of an encoded image at full size. */
export async function decodeUpright(source: Buffer, maxPixels: number): Promise<{ rgb: Buffer; width: number; height: number }> {
  try {
    const { data, info } = await sharp(source, { limitInputPixels: maxPixels, failOn: 'truncated' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { rgb: data, width: info.width, height: info.height };
  } catch (e) {
    throw new VisionError('E_DECODE', `cannot decode the frame to hide its faces: ${reason(e)}`);
  }
}

/** An RGB raster as a JPEG. */
export function encodeJpeg(rgb: Uint8Array, width: number, height: number, quality: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

/**
 * Which faces a message asks to leave in the clear: msg.keepFaces, indices into the frame's faces
 * (0 = the first of msg.faces), and msg.keepTracks, track ids matched against faces[i].track where
 * the faces carry one. Entries that match no face are ignored (a face that is not there is not
 * kept); a value of the wrong type is an E_KEEP_FACES error.
 */
export function keptFaces(faces: readonly unknown[], keepFaces: unknown, keepTracks: unknown): Set<number> {
  const kept = new Set<number>();
  if (keepFaces !== undefined && keepFaces !== null) {
    if (!Array.isArray(keepFaces)) throw new VisionError('E_KEEP_FACES', `msg.keepFaces must be an array of face indices (0, 1, ...), got ${describe(keepFaces)}`);
    keepFaces.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
        throw new VisionError('E_KEEP_FACES', `msg.keepFaces[${i}] must be a face index (an integer >= 0), got ${describe(v)}`);
      }
      if (v < faces.length) kept.add(v);
    });
  }
  if (keepTracks !== undefined && keepTracks !== null) {
    if (!Array.isArray(keepTracks)) throw new VisionError('E_KEEP_FACES', `msg.keepTracks must be an array of track ids, got ${describe(keepTracks)}`);
    keepTracks.forEach((v, i) => {
      if (!((typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v !== ''))) {
        throw new VisionError('E_KEEP_FACES', `msg.keepTracks[${i}] must be a track id (a number or a non-empty string), got ${describe(v)}`);
      }
    });
    const ids = new Set(keepTracks.map((v) => String(v)));
    faces.forEach((f, i) => {
      const track = typeof f === 'object' && f !== null ? (f as { track?: unknown }).track : undefined;
      if (track !== undefined && track !== null && ids.has(String(track))) kept.add(i);
    });
  }
  return kept;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'number') return String(v);
  return typeof v;
}
