/**
 * The message logic of the tinyfer-frame node, free of Node-RED so it is tested on its own:
 * nodes/tinyfer-frame.js only creates it, calls handle() per message and reports.
 *
 * msg.payload: an image (Buffer, data URL, or a file path when the node accepts paths) or one
 * fleet frame chunk (reassembled first).
 * Out: msg.faces, msg.image (the encoded frame), msg.frame (size, mode) and msg.payload as
 * configured: the faces, the original image, or an annotated JPEG. A message that carries no
 * image but msg.image + msg.faces (e.g. after tinyfer-emotion) is annotated as it is.
 */
import { CHUNK_MAGIC, DEFAULT_MAX_FRAME_RATE, FrameAssembler, FrameRateLimiter } from '../fleet/protocol';
import { DEFAULT_ANNOTATE, annotate, drawOn, type AnnotatedFace } from '../vision/annotate';
import { VisionError } from '../vision/errors';
import { findFaces, frameOptions, type Face, type FrameOptions } from '../vision/pipeline';
import { decodeFrame, isImageInput, readImageInput } from '../vision/decode';
import { WorkerDetector } from '../vision/worker-detector';
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
    this.assembler = new FrameAssembler({ maxBytes: this.options.maxBytes });
    this.detectorHold = WorkerDetector.shared().hold();
  }

  /**
   * Process one message in place. Returns the message to send, or null when nothing is to be
   * sent yet (a chunk of a frame still being reassembled). Throws VisionError on bad input.
   */
  async handle(msg: FrameMessage): Promise<FrameMessage | null> {
    let input = msg.payload;
    if (isChunk(input)) {
      if (!this.assemble(msg)) return null;
      input = msg.payload;
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

  private annotateLimits() {
    return { quality: this.quality, maxPixels: this.options.maxPixels, maxSide: this.options.workMaxSide };
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
