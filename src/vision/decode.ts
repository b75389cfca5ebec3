/**
 * Frame decoding: whatever a flow hands us (a Buffer, a file path, a data URL) becomes one
 * upright RGB raster, or a VisionError that says why not. Limits are checked before any pixel
 * is decoded, so a 50 MB upload or a 100k x 100k PNG bomb fails fast.
 */
import { promises as fsp } from 'fs';
import sharp from 'sharp';
import { VisionError, reason } from './errors';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'tiff';
const FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'tiff'];

export interface DecodeLimits {
  /** Largest encoded image accepted, in bytes. */
  maxBytes: number;
  /** Largest image accepted, in pixels (width * height), checked from the header. */
  maxPixels: number;
  /**
   * Whether a string that is not a data URL is read as a file path on this machine. Off, such a
   * string is refused before the file system is touched (the nodes' "Accept file paths" setting).
   */
  filePaths: boolean;
}

export interface DecodeOptions extends DecodeLimits {
  /** The working raster is downscaled so its longer side is at most this (faces stay far above 48 px). */
  workMaxSide: number;
}

export const DEFAULT_DECODE: Readonly<DecodeOptions> = {
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 40_000_000,
  filePaths: true,
  workMaxSide: 1280,
};

/** An upright RGB raster of the frame plus what is needed to map back to the original. */
export interface DecodedFrame {
  /** The encoded bytes as received. */
  source: Buffer;
  format: ImageFormat;
  /** Size of the upright (EXIF-rotated) original. */
  width: number;
  height: number;
  /** Upright RGB, 3 bytes a pixel, row-major, at most workMaxSide on the longer side. */
  rgb: Buffer;
  workWidth: number;
  workHeight: number;
  /** workWidth / width (<= 1). */
  scale: number;
}

/** Is this value something the frame pipeline can take as an image? (Buffer, Uint8Array, path or data URL.) */
export function isImageInput(v: unknown): boolean {
  return Buffer.isBuffer(v) || v instanceof Uint8Array || (typeof v === 'string' && v.length > 0);
}

/**
 * Turn a Buffer, Uint8Array, file path or data URL into the encoded image bytes, within maxBytes.
 * A file path is read only when `limits.filePaths` is not false; otherwise it is refused (E_FILE_PATH)
 * without any file system call.
 */
export async function readImageInput(input: unknown, limits: Pick<DecodeLimits, 'maxBytes'> & Partial<Pick<DecodeLimits, 'filePaths'>> = DEFAULT_DECODE): Promise<Buffer> {
  let bytes: Buffer;
  if (Buffer.isBuffer(input)) {
    bytes = input;
  } else if (input instanceof Uint8Array) {
    bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  } else if (typeof input === 'string') {
    if (input.startsWith('data:')) bytes = fromDataUrl(input, limits.maxBytes);
    else if (limits.filePaths === false) throw filePathRefused();
    else bytes = await fromFile(input, limits.maxBytes);
  } else {
    const what = input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input;
    throw new VisionError('E_INPUT_TYPE', `expected an image Buffer, a file path or a data URL, got ${what}`);
  }
  if (bytes.length === 0) throw new VisionError('E_EMPTY', 'the image is empty (0 bytes)');
  if (bytes.length > limits.maxBytes) throw tooManyBytes(bytes.length, limits.maxBytes);
  return bytes;
}

function filePathRefused(): VisionError {
  return new VisionError(
    'E_FILE_PATH',
    "got a string that is not a data URL, and file paths are off for this node (setting 'Accept file paths'): send the image as a Buffer or a data URL",
  );
}

function tooManyBytes(n: number, max: number): VisionError {
  return new VisionError('E_TOO_LARGE', `the image is ${mb(n)} MB, over the ${mb(max)} MB limit (maxBytes)`);
}

function mb(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}

function fromDataUrl(url: string, maxBytes: number): Buffer {
  const comma = url.indexOf(',');
  if (comma < 0) throw new VisionError('E_INPUT_TYPE', 'malformed data URL: no comma');
  const meta = url.slice(5, comma);
  const body = url.slice(comma + 1);
  if (!/;base64$/i.test(meta)) throw new VisionError('E_INPUT_TYPE', 'data URL must be base64 encoded (data:image/...;base64,...)');
  // 4 base64 characters carry 3 bytes: refuse before allocating the decoded buffer.
  const approx = Math.floor((body.length * 3) / 4);
  if (approx > maxBytes + 2) throw tooManyBytes(approx, maxBytes);
  return Buffer.from(body, 'base64');
}

async function fromFile(p: string, maxBytes: number): Promise<Buffer> {
  let size: number;
  try {
    const st = await fsp.stat(p);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    const shown = p.length > 200 ? p.slice(0, 200) + '...' : p;
    throw new VisionError('E_FILE', `cannot read image file '${shown}': ${reason(e)}`);
  }
  if (size > maxBytes) throw tooManyBytes(size, maxBytes);
  try {
    return await fsp.readFile(p);
  } catch (e) {
    throw new VisionError('E_FILE', `cannot read image file '${p}': ${reason(e)}`);
  }
}

/** Decode encoded bytes into an upright RGB working raster. Only JPEG, PNG, WebP and TIFF are accepted. */
export async function decodeFrame(source: Buffer, opts: DecodeOptions = DEFAULT_DECODE): Promise<DecodedFrame> {
  if (source.length === 0) throw new VisionError('E_EMPTY', 'the image is empty (0 bytes)');
  if (source.length > opts.maxBytes) throw tooManyBytes(source.length, opts.maxBytes);
  const sharpOpts: sharp.SharpOptions = { limitInputPixels: opts.maxPixels, failOn: 'truncated', sequentialRead: true };
  const format = sniffFormat(source) ?? (await headerFormat(source, sharpOpts));
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    // One pass over the bytes (no separate header read): turned upright, and a frame larger than
    // workMaxSide is downscaled while decoding (libjpeg/libwebp shrink-on-load for factors >= 2);
    // one that fits skips the resampler altogether.
    out = await sharp(source, sharpOpts)
      .rotate()
      .resize({ width: opts.workMaxSide, height: opts.workMaxSide, fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (/pixel limit/i.test(reason(e))) throw await overPixelLimit(source, opts.maxPixels, e);
    throw classify(e, 'the image data is corrupt');
  }
  if (out.info.channels !== 3) throw new VisionError('E_DECODE', `decoded to ${out.info.channels} channels, expected 3`);
  // The upright original's size: the raster's, unless it may have been downscaled.
  let width = out.info.width;
  let height = out.info.height;
  if (Math.max(width, height) >= opts.workMaxSide) {
    const meta = await header(source, sharpOpts);
    const swap = (meta.orientation ?? 1) >= 5;
    width = (swap ? meta.height : meta.width) ?? width;
    height = (swap ? meta.width : meta.height) ?? height;
  }
  return {
    source,
    format,
    width,
    height,
    rgb: out.data,
    workWidth: out.info.width,
    workHeight: out.info.height,
    scale: out.info.width / width,
  };
}

/** The format from an image's first bytes (what libvips goes by too); null when it is none of ours. */
export function sniffFormat(b: Uint8Array): ImageFormat | null {
  const at = (i: number, ...v: number[]) => b.length >= i + v.length && v.every((x, k) => b[i + k] === x);
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp'; // RIFF....WEBP
  // TIFF and BigTIFF, little- and big-endian
  if (at(0, 0x49, 0x49, 0x2a, 0) || at(0, 0x49, 0x49, 0x2b, 0) || at(0, 0x4d, 0x4d, 0, 0x2a) || at(0, 0x4d, 0x4d, 0, 0x2b)) return 'tiff';
  return null;
}

async function header(source: Buffer, sharpOpts: sharp.SharpOptions): Promise<sharp.Metadata> {
  try {
    return await sharp(source, sharpOpts).metadata();
  } catch (e) {
    throw classify(e, 'this is not a readable image');
  }
}

/** The format of bytes sniffFormat() did not recognise, from their header: one of ours, or an E_FORMAT that names it. */
async function headerFormat(source: Buffer, sharpOpts: sharp.SharpOptions): Promise<ImageFormat> {
  const meta = await header(source, sharpOpts);
  if (!meta.format || !FORMATS.includes(meta.format)) {
    throw new VisionError('E_FORMAT', `unsupported image format '${meta.format ?? 'unknown'}' (use JPEG, PNG, WebP or TIFF)`);
  }
  return meta.format as ImageFormat;
}

/** The error for an image over maxPixels, with its size from the header (read without the limit: no pixel is decoded). */
async function overPixelLimit(source: Buffer, maxPixels: number, e: unknown): Promise<VisionError> {
  const meta = await sharp(source, { limitInputPixels: false })
    .metadata()
    .catch(() => undefined);
  if (!meta?.width || !meta.height) return classify(e, 'the image data is corrupt');
  const px = (n: number) => (n >= 1e5 ? `${(n / 1e6).toFixed(1)} MP` : `${n} pixels`);
  return new VisionError('E_TOO_LARGE', `the image is ${meta.width}x${meta.height} = ${px(meta.width * meta.height)}, over the ${px(maxPixels)} limit (maxPixels)`);
}

function classify(e: unknown, what: string): VisionError {
  const r = reason(e);
  if (/pixel limit/i.test(r)) return new VisionError('E_TOO_LARGE', `the image is over the pixel limit (maxPixels): ${r}`);
  if (/unsupported image format/i.test(r)) return new VisionError('E_FORMAT', `${what}: not a JPEG, PNG, WebP or TIFF`);
  return new VisionError('E_DECODE', `${what} (truncated or damaged?): ${r}`);
}
