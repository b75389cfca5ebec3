/**
 * The message logic of the tinyfer-frame node, free of Node-RED so it is tested on its own:
 * nodes/tinyfer-frame.js only creates it, calls handle() per message and reports.
 *
 * msg.payload: an image (Buffer, data URL, or a file path when the node accepts paths) or one
 * fleet frame chunk (reassembled first).
 * Out: msg.faces, msg.image (the encoded frame), msg.frame (size, mode) and msg.payload as
 * configured: the faces, the original image, or an annotated JPEG. A message that carries no
 * image but msg.image + msg.faces (e.g. after tinyfer-emotion) is annotated as it is.
 * Privacy output (config.privacy 'blur' or 'pixelate'): see hide().
 */
import { CHUNK_MAGIC, DEFAULT_MAX_FRAME_RATE, FrameAssembler, FrameRateLimiter } from '../fleet/protocol';
import { DEFAULT_ANNOTATE, annotate, drawOn, type AnnotatedFace } from '../vision/annotate';
import { VisionError } from '../vision/errors';
import { findFaces, frameOptions, type Face, type FrameOptions } from '../vision/pipeline';
import { decodeFrame, isImageInput, readImageInput, type DecodedFrame } from '../vision/decode';
import { WorkerDetector } from '../vision/worker-detector';
import { decodeUpright, encodeJpeg, keptFaces, obscureFaces, privacyOptions, type PrivacyMode, type PrivacyOptions } from '../vision/privacy';
import { RANGES, checkSetting, optional, settingValue } from '../settings/spec';
import { queueLimitsFromConfig, type QueueLimits } from './serial-input';

export type FrameOutput = 'faces' | 'original' | 'annotated';
export const FRAME_OUTPUTS: readonly FrameOutput[] = ['faces', 'original', 'annotated'];
/** 'detect': find the faces; 'whole': the image is one (pre-cropped) face. */
export const FRAME_MODES = ['detect', 'whole'] as const;

/** The node's editor settings, as strings or numbers (empty: default). */
export interface FrameNodeConfig {
  mode?: string; // 'detect' | 'whole'
  output?: string;
  margin?: string | number;
  scoreThreshold?: string | number;
  inputSize?: string | number;
  fallbackSize?: string | number;
  /** Frame crops on the eyes and mouth (default true). */
  landmarks?: boolean;
  maxFaces?: string | number;
  wholeFaceMaxSide?: string | number;
  maxBytesMb?: string | number;
  maxMegapixels?: string | number;
  quality?: string | number;
  /** Where the detector runs: 'worker-wasm' (default) or 'main'. */
  detectorRuntime?: string;
  /** Frames waiting at most besides the one being processed, and which goes when full ('oldest' | 'newest'); see serial-input.ts. */
  queueSize?: string | number;
  queueDrop?: string;
  /**
   * Read a string payload that is not a data URL as a file path on the Node-RED host. New nodes
   * save false (images as bytes or data URLs only); flows saved before this setting existed have
   * no value and keep reading paths (see filePathsLegacy).
   */
  filePaths?: boolean | string;
  /** Privacy output: 'none' (default), 'blur' or 'pixelate' every face a message does not keep. */
  privacy?: string;
  privacyBlocks?: string | number;
  privacyMargin?: string | number;
}

/** The 'Accept file paths' setting: true/false as saved, true for a node saved before the setting existed. */
export function filePathsFromConfig(c: Pick<FrameNodeConfig, 'filePaths'>): boolean {
  return filePathsLegacy(c) || c.filePaths === true || c.filePaths === 'true';
}

/** Was the node saved before the 'Accept file paths' setting existed (so it reads paths as it always did)? */
export function filePathsLegacy(c: Pick<FrameNodeConfig, 'filePaths'>): boolean {
  return c.filePaths === undefined || c.filePaths === null || c.filePaths === '';
}

/** The line a legacy node logs once at start. */
export const FILE_PATHS_LEGACY_NOTE =
  "this node was saved before the 'Accept file paths' setting: it still reads a string payload as a file path on this server. Open it and save it to choose (new nodes take images as bytes or data URLs only).";

/** Parse a number field of the editor: '', blanks or undefined give undefined (the default). */
export function numField(name: string, v: unknown): number | undefined {
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return undefined;
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  if (!Number.isFinite(n)) throw new RangeError(`${name} must be a number, got '${String(v)}'`);
  return n;
}

/** Frame pipeline options from editor settings (shared by tinyfer-frame and tinyfer-emotion). */
export function frameOptionsFromConfig(c: FrameNodeConfig): FrameOptions {
  const mode = c.mode || 'detect';
  checkSetting('mode', { kind: 'enum', values: FRAME_MODES }, mode);
  const mb = numField('maxBytesMb', c.maxBytesMb);
  const mp = numField('maxMegapixels', c.maxMegapixels);
  return frameOptions({
    wholeFace: mode === 'whole',
    margin: numField('margin', c.margin),
    scoreThreshold: numField('scoreThreshold', c.scoreThreshold),
    inputSize: numField('inputSize', c.inputSize),
    fallbackSize: numField('fallbackSize', c.fallbackSize),
    landmarks: c.landmarks === undefined ? undefined : c.landmarks === true,
    maxFaces: numField('maxFaces', c.maxFaces),
    wholeFaceMaxSide: numField('wholeFaceMaxSide', c.wholeFaceMaxSide),
    maxBytes: mb === undefined ? undefined : Math.round(mb * 1024 * 1024),
    maxPixels: mp === undefined ? undefined : Math.round(mp * 1e6),
    detectorRuntime: (c.detectorRuntime || undefined) as FrameOptions['detectorRuntime'] | undefined,
    filePaths: filePathsFromConfig(c),
  });
}

/** What goes into msg.faces: the face plus, after tinyfer-emotion, its emotion. */
export interface MsgFace extends Face {
  emotion?: string;
  confidence?: number;
  scores?: Record<string, number>;
}

export interface FrameMessage {
  payload?: unknown;
  topic?: unknown;
  faces?: unknown;
  image?: unknown;
  frame?: unknown;
  [k: string]: unknown;
}

/** Is this Buffer a fleet protocol chunk ('TF' magic)? No JPEG/PNG/WebP/TIFF starts so. */
export function isChunk(b: unknown): b is Buffer {
  return Buffer.isBuffer(b) && b.length >= 2 && b.readUInt16BE(0) === CHUNK_MAGIC;
}

export class FrameHandler {
  readonly options: FrameOptions;
  readonly output: FrameOutput;
  /** The node's input queue bound (the node's SerialInput takes it). */
  readonly queue: QueueLimits;
  readonly quality: number;
  readonly privacy: PrivacyOptions;
  private readonly assembler: FrameAssembler;
  /** Reassembled (chunked) frames per second per msg.topic: beyond DEFAULT_MAX_FRAME_RATE they are dropped and counted. */
  private readonly chunkedRate = new FrameRateLimiter(DEFAULT_MAX_FRAME_RATE);
  /** Keeps the shared detector thread loaded while the node lives. */
  private readonly detectorHold: { release(): void };

  constructor(config: FrameNodeConfig = {}) {
    this.options = frameOptionsFromConfig(config);
    this.queue = queueLimitsFromConfig(config);
    const out = (config.output || 'faces') as FrameOutput;
    checkSetting('output', { kind: 'enum', values: FRAME_OUTPUTS }, out);
    this.output = out;
    this.quality = settingValue('quality', optional(RANGES.quality), config.quality) ?? DEFAULT_ANNOTATE.quality;
    this.privacy = privacyOptions({
      mode: (config.privacy || undefined) as PrivacyMode | undefined,
      blocks: numField('privacyBlocks', config.privacyBlocks),
      margin: numField('privacyMargin', config.privacyMargin),
    });
    this.assembler = new FrameAssembler({ maxBytes: this.options.maxBytes });
    this.detectorHold = WorkerDetector.shared().hold();
  }

  /**
   * Process one message in place. Returns the message to send, or null when nothing is to be
   * sent yet (a chunk of a frame still being reassembled). Throws VisionError on bad input;
   * with privacy on, the failed message is first stripped of its image and face crops (a Catch
   * node gets it without them).
   */
  async handle(msg: FrameMessage): Promise<FrameMessage | null> {
    if (this.privacy.mode === 'none') return this.process(msg);
    try {
      return await this.process(msg);
    } catch (e) {
      scrubImages(msg);
      throw e;
    }
  }

  /**
   * A message the full input queue drops: with privacy on it is completed without its image and
   * face crops (a Complete node gets it as a Catch node gets a failed one); otherwise untouched.
   */
  dropped(msg: FrameMessage): void {
    if (this.privacy.mode !== 'none') scrubImages(msg);
  }

  private async process(msg: FrameMessage): Promise<FrameMessage | null> {
    let input = msg.payload;
    if (isChunk(input)) {
      if (!this.assemble(msg)) return null;
      input = msg.payload;
    }
    if (!isImageInput(input) && this.privacy.mode !== 'none' && Buffer.isBuffer(msg.image) && Array.isArray(msg.faces)) {
      return this.hideAsIs(msg, msg.image, msg.faces);
    }
    if (!isImageInput(input) && this.output === 'annotated' && Buffer.isBuffer(msg.image) && Array.isArray(msg.faces)) {
      msg.payload = await annotate(msg.image, annotatedFaces(msg.faces), { ...DEFAULT_ANNOTATE, ...this.annotateLimits() });
      return msg;
    }
    const bytes = await readImageInput(input, this.options);
    const frame = await decodeFrame(bytes, this.options);
    const result = await findFaces(frame, this.options);
    const faces: MsgFace[] = result.faces;
    msg.faces = faces;
    msg.image = frame.source;
    msg.frame = {
      width: frame.width,
      height: frame.height,
      format: frame.format,
      mode: result.mode,
      ...(result.detector ? { detector: result.detector } : {}),
    };
    // last step before the output: whatever marks faces (e.g. track ids for msg.keepTracks) comes before it
    if (this.privacy.mode !== 'none') return this.hide(msg, frame, faces);
    if (this.output === 'faces') msg.payload = faces;
    else if (this.output === 'original') msg.payload = frame.source;
    else msg.payload = await drawOn(frame.rgb, frame.workWidth, frame.workHeight, frame.scale, faces, this.quality);
    return msg;
  }

  /**
   * Reassemble a fleet frame chunk as it arrives, before the message waits in the node's input
   * queue (cheap; the assembler's caps bound what it holds), so the queue holds whole frames and
   * a full queue never drops part of one. A chunk that completes a frame (within the per-topic
   * rate): msg.payload becomes the frame, true. A chunk of a frame still incomplete, or a frame
   * over the rate: false (nothing to process). Not a chunk: true, untouched. Throws VisionError
   * for a rejected chunk.
   */
  assemble(msg: FrameMessage): boolean {
    if (!isChunk(msg.payload)) return true;
    const topic = typeof msg.topic === 'string' ? msg.topic : '';
    const r = this.assembler.push(topic, msg.payload);
    if (r.status === 'partial') return false;
    if (r.status === 'error') throw new VisionError('E_DECODE', `frame chunk rejected: ${r.error}`);
    if (!this.chunkedRate.take(topic)) return false;
    msg.payload = r.data;
    return true;
  }

  /** Partial frames held for reassembly. */
  get pendingChunks(): number {
    return this.assembler.pending;
  }

  /** Chunked frames dropped: over a source's rate limit, or partial ones pushed out by the memory caps. */
  get framesDropped(): { overRate: number; evicted: number } {
    return { overRate: this.chunkedRate.dropped, evicted: this.assembler.evicted + this.assembler.expired };
  }

  /** Drop partial frames; release the detector thread (stopped when no node holds it). */
  close(): void {
    this.assembler.clear();
    this.detectorHold.release();
  }

  /**
   * Privacy output for a frame just processed: every face not kept (msg.keepFaces indices,
   * msg.keepTracks track ids) is hidden in msg.image, a JPEG of the whole upright frame at its
   * full size (the original encoded bytes are dropped), and in the annotated output; the hidden
   * faces lose their 48x48 crop (`pixels`) and get `obscured: true`. The crops were cut from
   * the clear frame before, in memory, and go no further. msg.frame.privacy says what was done.
   */
  private async hide(msg: FrameMessage, frame: DecodedFrame, faces: MsgFace[]): Promise<FrameMessage> {
    const kept = keptFaces(faces, msg.keepFaces, msg.keepTracks);
    const boxes = faces.filter((_, i) => !kept.has(i)).map((f) => f.box);
    const work = obscureFaces(frame.rgb, frame.workWidth, frame.workHeight, frame.scale, boxes, this.privacy);
    let image: Buffer;
    if (frame.scale === 1) {
      image = await encodeJpeg(work, frame.workWidth, frame.workHeight, this.quality);
    } else {
      // the working raster was downscaled: hide the faces in the full-size frame, so msg.image keeps the boxes' pixel scale
      const full = await decodeUpright(frame.source, this.options.maxPixels);
      image = await encodeJpeg(obscureFaces(full.rgb, full.width, full.height, full.width / frame.width, boxes, this.privacy), full.width, full.height, this.quality);
    }
    this.markHidden(msg, faces, kept);
    msg.image = image;
    if (this.output === 'faces') msg.payload = faces;
    else if (this.output === 'original') msg.payload = image;
    else msg.payload = await drawOn(work, frame.workWidth, frame.workHeight, frame.scale, faces, this.quality);
    return msg;
  }

  /** Privacy output for a message that carries msg.image + msg.faces and no image payload (e.g. after tinyfer-emotion). */
  private async hideAsIs(msg: FrameMessage, source: Buffer, faces: unknown[]): Promise<FrameMessage> {
    const boxes = faces.map((f, i) => {
      const b = typeof f === 'object' && f !== null ? ((f as Record<string, unknown>).box as Record<string, unknown> | undefined) : undefined;
      if (!b || !['x', 'y', 'w', 'h'].every((k) => typeof b[k] === 'number' && Number.isFinite(b[k]))) {
        throw new VisionError('E_FACES', `msg.faces[${i}] has no box {x, y, w, h}: a face cannot be hidden without one`);
      }
      return { x: b.x as number, y: b.y as number, w: b.w as number, h: b.h as number };
    });
    const kept = keptFaces(faces, msg.keepFaces, msg.keepTracks);
    const full = await decodeUpright(source, this.options.maxPixels);
    const hidden = boxes.filter((_, i) => !kept.has(i));
    const image = await encodeJpeg(obscureFaces(full.rgb, full.width, full.height, 1, hidden, this.privacy), full.width, full.height, this.quality);
    this.markHidden(msg, faces as Array<Record<string, unknown>>, kept);
    msg.image = image;
    if (this.output === 'faces') msg.payload = faces;
    else if (this.output === 'original') msg.payload = image;
    else msg.payload = await annotate(image, annotatedFaces(faces), { ...DEFAULT_ANNOTATE, ...this.annotateLimits() });
    return msg;
  }

  /** Drop the crops of the hidden faces, mark them, and say in msg.frame what was hidden. */
  private markHidden(msg: FrameMessage, faces: Array<Record<string, unknown>> | MsgFace[], kept: Set<number>): void {
    faces.forEach((f, i) => {
      if (kept.has(i)) return;
      const o = f as Record<string, unknown>;
      delete o.pixels;
      o.obscured = true;
    });
    const privacy = { mode: this.privacy.mode, hidden: faces.length - kept.size, kept: [...kept].sort((a, b) => a - b) };
    if (typeof msg.frame === 'object' && msg.frame !== null) (msg.frame as Record<string, unknown>).privacy = privacy;
    else msg.frame = { privacy };
  }

  private annotateLimits() {
    return { quality: this.quality, maxPixels: this.options.maxPixels, maxSide: this.options.workMaxSide };
  }
}

/**
 * What a failed message keeps when privacy is on: no image (payload, msg.image) and no face crop.
 */
function scrubImages(msg: FrameMessage): void {
  if (isImageInput(msg.payload) || isChunk(msg.payload)) delete msg.payload;
  if (msg.image !== undefined) delete msg.image;
  if (Array.isArray(msg.faces)) {
    for (const f of msg.faces) if (typeof f === 'object' && f !== null) delete (f as Record<string, unknown>).pixels;
  }
}

/** msg.faces entries that have a box, as annotate() takes them. */
export function annotatedFaces(faces: unknown[]): AnnotatedFace[] {
  const out: AnnotatedFace[] = [];
  for (const f of faces) {
    if (typeof f !== 'object' || f === null) continue;
    const o = f as Record<string, unknown>;
    const b = o.box as Record<string, unknown> | undefined;
    if (!b || !['x', 'y', 'w', 'h'].every((k) => typeof b[k] === 'number')) continue;
    out.push({
      box: { x: b.x as number, y: b.y as number, w: b.w as number, h: b.h as number },
      score: typeof o.score === 'number' ? o.score : undefined,
      emotion: typeof o.emotion === 'string' ? o.emotion : undefined,
      confidence: typeof o.confidence === 'number' ? o.confidence : undefined,
    });
  }
  return out;
}
