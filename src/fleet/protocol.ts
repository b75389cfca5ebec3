/**
 * The TinyFER fleet protocol, version 1: topics, QoS and retain flags, payload types, their
 * validators, the binary chunk header, frame/model reassembly, model signatures and Home
 * Assistant discovery. This module is the one definition used by the Node-RED nodes, the
 * virtual devices and the load bench; docs/protocol.md is its prose form, written for the
 * ESP32-S3 firmware. Change both together and bump PROTOCOL_VERSION on any breaking change.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { LABELS, type Label } from '../model/labels';

/** Carried in every birth message as `protocol`. */
export const PROTOCOL_VERSION = 1;
export const DEFAULT_PREFIX = 'tinyfer';
export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant';

/** A device id: 1..64 chars of [A-Za-z0-9_-], starting with a letter or digit (so `_resp` never collides). */
export const DEVICE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** A command name. */
export const COMMAND_NAME_RE = /^[a-z][a-z0-9_]{0,31}$/;
/** A topic prefix: one or more levels without wildcards, no leading/trailing '/'. */
const PREFIX_RE = /^[^/#+\u0000]+(\/[^/#+\u0000]+)*$/;

/** Every kind of message, keyed by the topic suffix after `<prefix>/<deviceId>/`. */
export type TopicKind = 'status' | 'telemetry' | 'emotion' | 'frame' | 'frame/chunk' | 'config' | 'resp' | 'cmd' | 'ota/chunk';

/** Publish rules per topic kind (QoS, retain) and the largest payload accepted, in bytes. */
export const TOPIC_RULES: Readonly<Record<TopicKind, { qos: 0 | 1; retain: boolean; maxBytes: number }>> = {
  status: { qos: 1, retain: true, maxBytes: 2048 },
  telemetry: { qos: 0, retain: false, maxBytes: 1024 },
  emotion: { qos: 1, retain: false, maxBytes: 2048 },
  frame: { qos: 0, retain: false, maxBytes: 256 * 1024 },
  'frame/chunk': { qos: 0, retain: false, maxBytes: 16 * 1024 + 20 }, // MAX_CHUNK_BYTES + header
  config: { qos: 1, retain: true, maxBytes: 2048 },
  resp: { qos: 1, retain: false, maxBytes: 16 * 1024 },
  cmd: { qos: 1, retain: false, maxBytes: 8 * 1024 * 1024 },
  'ota/chunk': { qos: 1, retain: false, maxBytes: 16 * 1024 + 20 },
};

/** Largest reassembled frame (JPEG) and model blob accepted. */
export const MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_MODEL_BYTES = 4 * 1024 * 1024;
/** Largest application firmware image accepted by firmware_update. */
export const MAX_FIRMWARE_BYTES = 8 * 1024 * 1024;
/** Largest model blob sent inline (base64) in the model_update request; bigger ones go chunked. */
export const MAX_INLINE_MODEL_BYTES = 48 * 1024;
/** Payload bytes per chunk (frames and models) that senders use by default, and the most allowed. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024;
export const MAX_CHUNK_BYTES = 16 * 1024;

export class ProtocolError extends Error {
  constructor(message: string, readonly code: string = 'bad_request') {
    super(message);
    this.name = 'ProtocolError';
  }
}

export function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix) || prefix.startsWith('$')) {
    throw new ProtocolError(`invalid topic prefix ${JSON.stringify(prefix)}: levels without '+', '#' or a leading '$'`);
  }
  return prefix;
}

export function checkDeviceId(id: string): string {
  if (typeof id !== 'string' || !DEVICE_ID_RE.test(id)) {
    throw new ProtocolError(`invalid device id ${JSON.stringify(id)}: 1..64 of [A-Za-z0-9_-], starting with a letter or digit`);
  }
  return id;
}

/** All topics of one device. */
export function deviceTopics(prefix: string, deviceId: string) {
  const base = `${checkPrefix(prefix)}/${checkDeviceId(deviceId)}`;
  return {
    base,
    status: `${base}/status`,
    telemetry: `${base}/telemetry`,
    emotion: `${base}/emotion`,
    frame: `${base}/frame`,
    frameChunk: `${base}/frame/chunk`,
    config: `${base}/config`,
    resp: `${base}/resp`,
    /** Requests: `<base>/cmd/<name>`; the device subscribes to `<base>/cmd/+`. */
    cmd: (name: string) => `${base}/cmd/${checkCommandName(name)}`,
    cmdFilter: `${base}/cmd/+`,
    otaChunk: `${base}/ota/chunk`,
  };
}

/** Wildcard filters a fleet manager subscribes to. */
export function fleetFilters(prefix: string) {
  const p = checkPrefix(prefix);
  return {
    status: `${p}/+/status`,
    telemetry: `${p}/+/telemetry`,
    emotion: `${p}/+/emotion`,
    frame: `${p}/+/frame`,
    frameChunk: `${p}/+/frame/chunk`,
    resp: `${p}/+/resp`,
  };
}

/** The MQTT 5 response topic a requester with this client id listens on. */
export function replyTopic(prefix: string, clientId: string): string {
  return `${checkPrefix(prefix)}/_resp/${clientId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** `$share/<group>/<filter>` when a group is given (MQTT 5 shared subscription), else the filter. */
export function sharedFilter(filter: string, group?: string): string {
  if (!group) return filter;
  if (!/^[^/#+$\u0000]+$/.test(group)) throw new ProtocolError(`invalid shared subscription group ${JSON.stringify(group)}`);
  return `$share/${group}/${filter}`;
}

export function checkCommandName(name: string): string {
  if (typeof name !== 'string' || !COMMAND_NAME_RE.test(name)) throw new ProtocolError(`invalid command name ${JSON.stringify(name)}`);
  return name;
}

export interface ParsedTopic {
  deviceId: string;
  kind: TopicKind;
  /** Command name, for kind 'cmd'. */
  command?: string;
}

/** Split a topic under `prefix` into device id and kind; null when it is not a protocol topic. */
export function parseTopic(prefix: string, topic: string): ParsedTopic | null {
  if (!topic.startsWith(prefix + '/')) return null;
  const rest = topic.slice(prefix.length + 1).split('/');
  const deviceId = rest[0];
  if (!DEVICE_ID_RE.test(deviceId)) return null;
  const tail = rest.slice(1).join('/');
  switch (tail) {
    case 'status': case 'telemetry': case 'emotion': case 'frame': case 'frame/chunk': case 'config': case 'resp': case 'ota/chunk':
      return { deviceId, kind: tail };
  }
  if (rest.length === 3 && rest[1] === 'cmd' && COMMAND_NAME_RE.test(rest[2])) return { deviceId, kind: 'cmd', command: rest[2] };
  return null;
}

/** MQTT topic filter match (`+` one level, `#` the rest), for dispatching on a shared connection. */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter.startsWith('$share/')) filter = filter.split('/').slice(2).join('/');
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return !(i === 0 && topic.startsWith('$'));
    if (i >= t.length) return false;
    if (f[i] === '+') { if (i === 0 && t[0].startsWith('$')) return false; continue; }
    if (f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

// ---------------------------------------------------------------------------------------------
// Payloads

export const CAPABILITIES = ['emotion', 'telemetry', 'frame', 'snapshot', 'model_update', 'firmware_update', 'reboot', 'config'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** `<prefix>/<id>/status`, retained, QoS 1. Birth is `online`; the last will and a clean shutdown are `offline`. */
export interface StatusPayload {
  state: 'online' | 'offline';
  /** The device's own id (optional): a receiver refuses the message when it is not the topic's. */
  device?: string;
  /** Present in the birth message: the protocol version the device speaks. */
  protocol?: number;
  firmware?: string;
  model?: string;
  ip?: string;
  capabilities?: string[];
  /** Why it went offline: 'shutdown', 'reboot' (clean) - absent in the last will. */
  reason?: string;
  /** Milliseconds since the Unix epoch, when the device has time (SNTP); optional. */
  ts?: number;
}

/** `<prefix>/<id>/telemetry`, QoS 0, every telemetry interval. */
export interface TelemetryPayload {
  /** The device's own id (optional, as in StatusPayload). */
  device?: string;
  uptime_s: number;
  heap_free: number;
  psram_free: number;
  rssi: number;
  fps: number;
  inference_ms: number;
  temp_c: number;
  ts?: number;
}

export interface Box { x: number; y: number; w: number; h: number }
export type EmotionScores = Record<Label, number>;

/** `<prefix>/<id>/emotion`, QoS 1, one per classified face. */
export interface EmotionPayload {
  /** The device's own id (optional, as in StatusPayload). */
  device?: string;
  ts: number;
  seq: number;
  box: Box;
  label: Label;
  confidence: number;
  scores: EmotionScores;
  inference_ms: number;
  /** Id of the frame (frame/chunk header) this face came from, when that frame was published. */
  frame_id?: number;
}

/** Device settings: `<prefix>/<id>/config` (retained desired state) and get_config/set_config. */
export interface DeviceConfig {
  capture_interval_ms: number;
  frames_enabled: boolean;
  jpeg_quality: number;
  confidence_threshold: number;
}

export const DEFAULT_CONFIG: Readonly<DeviceConfig> = Object.freeze({
  capture_interval_ms: 500,
  frames_enabled: false,
  jpeg_quality: 80,
  confidence_threshold: 0.5,
});

export const COMMANDS = ['get_config', 'set_config', 'snapshot', 'reboot', 'model_update', 'firmware_update'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** `<prefix>/<id>/cmd/<name>`, QoS 1. */
export interface CommandRequest {
  /** Request id, echoed in the response (the MQTT 3.1.1 correlation; also sent with MQTT 5). */
  id: string;
  params?: Record<string, unknown>;
}

/** `<prefix>/<id>/resp` (or the MQTT 5 response topic), QoS 1. */
export interface CommandResponse {
  id: string;
  cmd: string;
  ok: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
  ts?: number;
}

/**
 * model_update and firmware_update params (the same scheme: the blob is a model, or an
 * application image for the device's other app slot). Inline: `blob` set. Chunked: `transfer`
 * set, chunks follow on `ota/chunk`.
 */
export interface ModelUpdateParams {
  version: string;
  size: number;
  /** Lowercase hex SHA-256 of the whole blob. */
  sha256: string;
  /** Base64 Ed25519 signature over the 32 raw bytes of the SHA-256 digest. */
  signature: string;
  blob?: string;
  transfer?: number;
  chunks?: number;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isNum = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi;
const isStr = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const U32 = 0xffffffff;
const isDeviceId = (v: unknown) => typeof v === 'string' && DEVICE_ID_RE.test(v);

class Checker {
  errors: string[] = [];
  constructor(readonly o: Obj) {}
  need(key: string, ok: (v: unknown) => boolean, what: string, optional = false) {
    if (!(key in this.o) || this.o[key] === undefined) { if (!optional) this.errors.push(`${key}: required`); return; }
    if (!ok(this.o[key])) this.errors.push(`${key}: must be ${what}`);
  }
  only(keys: string[]) {
    for (const k of Object.keys(this.o)) if (!keys.includes(k)) this.errors.push(`${k}: unknown field`);
  }
  result<T>(): Validation<T> {
    return this.errors.length ? { ok: false, error: this.errors.join('; ') } : { ok: true, value: this.o as T };
  }
}

/** Parse a JSON payload with the topic kind's size limit; never throws. */
export function parseJson(kind: TopicKind, payload: Buffer | string): Validation<unknown> {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (len > TOPIC_RULES[kind].maxBytes) return { ok: false, error: `oversized: ${len} bytes > ${TOPIC_RULES[kind].maxBytes}` };
  try {
    return { ok: true, value: JSON.parse(payload.toString()) };
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
}

export function validateStatus(v: unknown): Validation<StatusPayload> {
  if (!isObj(v)) return { ok: false, error: 'status: must be an object' };
  const c = new Checker(v);
  c.need('state', (x) => x === 'online' || x === 'offline', '"online" or "offline"');
  const online = v.state === 'online';
  c.need('protocol', (x) => isInt(x, 1, 65535), 'an integer >= 1', !online);
  c.need('firmware', (x) => isStr(x, 64) && (x as string).length > 0, 'a string of 1..64 chars', !online);
  c.need('model', (x) => isStr(x, 64) && (x as string).length > 0, 'a string of 1..64 chars', !online);
  c.need('ip', (x) => isStr(x, 45), 'a string', true);
  c.need('capabilities', (x) => Array.isArray(x) && x.length <= 32 && x.every((s) => isStr(s, 32)), 'an array of strings', !online);
  c.need('reason', (x) => isStr(x, 64), 'a string', true);
  c.need('ts', (x) => isInt(x, 0, Number.MAX_SAFE_INTEGER), 'integer milliseconds', true);
  c.need('device', isDeviceId, 'a device id', true);
  c.only(['state', 'device', 'protocol', 'firmware', 'model', 'ip', 'capabilities', 'reason', 'ts']);
  return c.result();
}

export function validateTelemetry(v: unknown): Validation<TelemetryPayload> {
  if (!isObj(v)) return { ok: false, error: 'telemetry: must be an object' };
  const c = new Checker(v);
  c.need('uptime_s', (x) => isInt(x, 0, U32), 'an integer >= 0');
  c.need('heap_free', (x) => isInt(x, 0, U32), 'an integer >= 0 (bytes)');
  c.need('psram_free', (x) => isInt(x, 0, U32), 'an integer >= 0 (bytes)');
  c.need('rssi', (x) => isInt(x, -127, 0), 'an integer -127..0 (dBm)');
  c.need('fps', (x) => isNum(x, 0, 1000), 'a number 0..1000');
  c.need('inference_ms', (x) => isNum(x, 0, 600000), 'a number >= 0');
  c.need('temp_c', (x) => isNum(x, -60, 200), 'a number -60..200');
  c.need('ts', (x) => isInt(x, 0, Number.MAX_SAFE_INTEGER), 'integer milliseconds', true);
  c.need('device', isDeviceId, 'a device id', true);
  c.only(['device', 'uptime_s', 'heap_free', 'psram_free', 'rssi', 'fps', 'inference_ms', 'temp_c', 'ts']);
  return c.result();
}

const isBox = (x: unknown) => isObj(x) && isInt(x.x, 0, 65535) && isInt(x.y, 0, 65535) && isInt(x.w, 1, 65535) && isInt(x.h, 1, 65535) && Object.keys(x).length === 4;
const isScores = (x: unknown) => isObj(x) && Object.keys(x).length === LABELS.length && LABELS.every((l) => isNum(x[l], 0, 1));

export function validateEmotion(v: unknown): Validation<EmotionPayload> {
  if (!isObj(v)) return { ok: false, error: 'emotion: must be an object' };
  const c = new Checker(v);
  c.need('ts', (x) => isInt(x, 0, Number.MAX_SAFE_INTEGER), 'integer milliseconds');
  c.need('seq', (x) => isInt(x, 0, U32), 'an integer 0..2^32-1');
  c.need('box', isBox, '{x,y,w,h} integer pixels (w,h >= 1)');
  c.need('label', (x) => (LABELS as readonly unknown[]).includes(x), `one of ${LABELS.join(', ')}`);
  c.need('confidence', (x) => isNum(x, 0, 1), 'a number 0..1');
  c.need('scores', isScores, `{${LABELS.join(',')}} numbers 0..1`);
  c.need('inference_ms', (x) => isNum(x, 0, 600000), 'a number >= 0');
  c.need('frame_id', (x) => isInt(x, 0, U32), 'an integer 0..2^32-1', true);
  c.need('device', isDeviceId, 'a device id', true);
  c.only(['device', 'ts', 'seq', 'box', 'label', 'confidence', 'scores', 'inference_ms', 'frame_id']);
  return c.result();
}

/** Validate a config; `partial` accepts any subset of the fields (set_config params). */
export function validateConfig(v: unknown, partial = false): Validation<DeviceConfig> {
  if (!isObj(v)) return { ok: false, error: 'config: must be an object' };
  const c = new Checker(v);
  c.need('capture_interval_ms', (x) => isInt(x, 50, 3600000), 'an integer 50..3600000', partial);
  c.need('frames_enabled', (x) => typeof x === 'boolean', 'a boolean', partial);
  c.need('jpeg_quality', (x) => isInt(x, 1, 100), 'an integer 1..100', partial);
  c.need('confidence_threshold', (x) => isNum(x, 0, 1), 'a number 0..1', partial);
  c.only(Object.keys(DEFAULT_CONFIG));
  return c.result();
}

export function validateRequest(v: unknown): Validation<CommandRequest> {
  if (!isObj(v)) return { ok: false, error: 'request: must be an object' };
  const c = new Checker(v);
  c.need('id', (x) => isStr(x, 64) && (x as string).length > 0, 'a string of 1..64 chars');
  c.need('params', isObj, 'an object', true);
  c.only(['id', 'params']);
  return c.result();
}

export function validateResponse(v: unknown): Validation<CommandResponse> {
  if (!isObj(v)) return { ok: false, error: 'response: must be an object' };
  const c = new Checker(v);
  c.need('id', (x) => isStr(x, 64) && (x as string).length > 0, 'a string of 1..64 chars');
  c.need('cmd', (x) => typeof x === 'string' && COMMAND_NAME_RE.test(x), 'a command name');
  c.need('ok', (x) => typeof x === 'boolean', 'a boolean');
  c.need('result', isObj, 'an object', true);
  c.need('error', (x) => isObj(x) && isStr(x.code, 32) && isStr(x.message, 512), '{code, message} strings', v.ok !== false);
  c.need('ts', (x) => isInt(x, 0, Number.MAX_SAFE_INTEGER), 'integer milliseconds', true);
  c.only(['id', 'cmd', 'ok', 'result', 'error', 'ts']);
  return c.result();
}

export function validateModelUpdate(v: unknown, cmd: 'model_update' | 'firmware_update' = 'model_update'): Validation<ModelUpdateParams> {
  if (!isObj(v)) return { ok: false, error: `${cmd} params: must be an object` };
  const c = new Checker(v);
  const max = cmd === 'firmware_update' ? MAX_FIRMWARE_BYTES : MAX_MODEL_BYTES;
  c.need('version', (x) => isStr(x, 64) && (x as string).length > 0, 'a string of 1..64 chars');
  c.need('size', (x) => isInt(x, 1, max), `an integer 1..${max}`);
  c.need('sha256', (x) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x), '64 lowercase hex chars');
  c.need('signature', (x) => typeof x === 'string' && /^[A-Za-z0-9+/]{86}==$/.test(x), 'a base64 Ed25519 signature (64 bytes)');
  c.need('blob', (x) => typeof x === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(x), 'base64', true);
  c.need('transfer', (x) => isInt(x, 0, U32), 'an integer 0..2^32-1', true);
  c.need('chunks', (x) => isInt(x, 1, 65535), 'an integer 1..65535', true);
  c.only(['version', 'size', 'sha256', 'signature', 'blob', 'transfer', 'chunks']);
  if (c.errors.length === 0 && (v.blob === undefined) === (v.transfer === undefined)) c.errors.push('exactly one of blob (inline) or transfer (chunked) must be set');
  if (c.errors.length === 0 && v.transfer !== undefined && v.chunks === undefined) c.errors.push('chunks: required with transfer');
  return c.result();
}

/** The validator for a JSON topic kind. */
export const VALIDATORS = {
  status: validateStatus,
  telemetry: validateTelemetry,
  emotion: validateEmotion,
  config: (v: unknown) => validateConfig(v),
  resp: validateResponse,
  cmd: validateRequest,
} as const;

/** Pick the highest score: the label and confidence an emotion message carries. */
export function topLabel(scores: ArrayLike<number>): { label: Label; confidence: number; scores: EmotionScores } {
  if (scores.length !== LABELS.length) throw new ProtocolError(`expected ${LABELS.length} scores, got ${scores.length}`);
  let best = 0;
  const out = {} as EmotionScores;
  LABELS.forEach((l, i) => {
    out[l] = Math.round(scores[i] * 1e4) / 1e4;
    if (scores[i] > scores[best]) best = i;
  });
  return { label: LABELS[best], confidence: out[LABELS[best]], scores: out };
}

// ---------------------------------------------------------------------------------------------
// Binary chunks (frame/chunk and ota/chunk)

/**
 * Chunk header, 20 bytes, big-endian, followed by the chunk's bytes:
 *   0  u8[2] magic 'T','F'        2  u8  header version (1)    3  u8  flags (0; reserved)
 *   4  u32   transfer id (frame id or model transfer id)
 *   8  u16   index (0-based)      10 u16 count (>= 1)
 *   12 u32   total size of the reassembled object, bytes
 *   16 u32   offset of this chunk's first byte in the object
 */
export const CHUNK_HEADER_BYTES = 20;
export const CHUNK_MAGIC = 0x5446;
export const CHUNK_VERSION = 1;

export interface ChunkHeader {
  id: number;
  index: number;
  count: number;
  total: number;
  offset: number;
}

export interface Chunk extends ChunkHeader {
  data: Buffer;
}

export function encodeChunk(h: ChunkHeader, data: Buffer): Buffer {
  if (!isInt(h.id, 0, U32) || !isInt(h.count, 1, 65535) || !isInt(h.index, 0, h.count - 1) || !isInt(h.total, 1, U32) || !isInt(h.offset, 0, U32)) {
    throw new ProtocolError(`invalid chunk header ${JSON.stringify(h)}`);
  }
  if (h.offset + data.length > h.total) throw new ProtocolError('chunk runs past the total size');
  const b = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + data.length);
  b.writeUInt16BE(CHUNK_MAGIC, 0);
  b.writeUInt8(CHUNK_VERSION, 2);
  b.writeUInt8(0, 3);
  b.writeUInt32BE(h.id, 4);
  b.writeUInt16BE(h.index, 8);
  b.writeUInt16BE(h.count, 10);
  b.writeUInt32BE(h.total, 12);
  b.writeUInt32BE(h.offset, 16);
  data.copy(b, CHUNK_HEADER_BYTES);
  return b;
}

export function decodeChunk(b: Buffer): Validation<Chunk> {
  if (!Buffer.isBuffer(b) || b.length < CHUNK_HEADER_BYTES) return { ok: false, error: `chunk shorter than its ${CHUNK_HEADER_BYTES}-byte header` };
  if (b.readUInt16BE(0) !== CHUNK_MAGIC) return { ok: false, error: 'chunk: bad magic' };
  if (b.readUInt8(2) !== CHUNK_VERSION) return { ok: false, error: `chunk: header version ${b.readUInt8(2)} not supported` };
  const h = { id: b.readUInt32BE(4), index: b.readUInt16BE(8), count: b.readUInt16BE(10), total: b.readUInt32BE(12), offset: b.readUInt32BE(16) };
  const data = b.subarray(CHUNK_HEADER_BYTES);
  if (h.count < 1 || h.index >= h.count) return { ok: false, error: `chunk: index ${h.index} of ${h.count}` };
  if (h.total < 1) return { ok: false, error: 'chunk: total size 0' };
  if (data.length === 0 || h.offset + data.length > h.total) return { ok: false, error: `chunk: ${data.length} bytes at ${h.offset} do not fit in ${h.total}` };
  return { ok: true, value: { ...h, data } };
}

/** Split an object into encoded chunks of at most `chunkBytes` payload bytes each. */
export function splitChunks(id: number, data: Buffer, chunkBytes = DEFAULT_CHUNK_BYTES): Buffer[] {
  if (data.length === 0) throw new ProtocolError('nothing to split: empty buffer');
  if (!isInt(chunkBytes, 1, MAX_CHUNK_BYTES)) throw new ProtocolError(`invalid chunk size ${chunkBytes}: 1..${MAX_CHUNK_BYTES}`);
  const count = Math.ceil(data.length / chunkBytes);
  if (count > 65535) throw new ProtocolError(`${data.length} bytes need ${count} chunks (> 65535): raise the chunk size`);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const offset = i * chunkBytes;
    out.push(encodeChunk({ id, index: i, count, total: data.length, offset }, data.subarray(offset, offset + chunkBytes)));
  }
  return out;
}

export interface AssemblerOptions {
  /** Largest object accepted, bytes. */
  maxBytes?: number;
  /** Partial objects older than this are dropped (counted as `expired`), ms. */
  timeoutMs?: number;
  /** Most objects in flight per source; the oldest is dropped beyond it. */
  maxInFlight?: number;
  /**
   * Most bytes held in partial objects across ALL sources (each partial holds its announced
   * total). A new partial that would go over it first drops the oldest partials, whoever sent
   * them (counted as `evicted`), so made-up sources cannot grow memory past this.
   */
  maxPendingBytes?: number;
  /** Most partial objects across all sources (the same oldest-first dropping). */
  maxPending?: number;
  now?: () => number;
}

/** Defaults of the global cap: 32 MiB and 256 partial objects across all sources. */
export const DEFAULT_MAX_PENDING_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_PENDING = 256;

export type AssemblerResult =
  | { status: 'partial' }
  | { status: 'complete'; id: number; data: Buffer }
  | { status: 'error'; error: string };

/** A partial object: its chunks as received (copied), put together only once all are in. */
interface Partial { source: string; id: number; chunks: Array<{ offset: number; data: Buffer } | undefined>; got: number; count: number; total: number; started: number }

/**
 * Reassembles chunked objects (frames, model blobs) from many sources at once. Chunks may arrive
 * in any order and more than once; inconsistent chunks are rejected with an error result, never
 * a throw. Keyed by (source, transfer id), so several devices may use the same ids. Memory is
 * bounded per source (maxInFlight) and across all sources (maxPendingBytes, maxPending): the
 * oldest partial objects go first.
 */
export class FrameAssembler {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  readonly maxPendingBytes: number;
  readonly maxPending: number;
  private readonly now: () => number;
  /** Every partial object, oldest first (Map keeps insertion order). Key: `<source>\0<id>`. */
  private readonly parts = new Map<string, Partial>();
  /** Partial objects per source. */
  private readonly perSource = new Map<string, number>();
  private bytes = 0;
  /** Objects dropped incomplete: timed out or pushed out by newer ones of the same source. */
  expired = 0;
  /** Objects dropped incomplete to keep within the global cap (maxPendingBytes / maxPending). */
  evicted = 0;

  constructor(opts: AssemblerOptions = {}) {
    this.maxBytes = opts.maxBytes ?? MAX_FRAME_BYTES;
    this.timeoutMs = opts.timeoutMs ?? 10000;
    this.maxInFlight = opts.maxInFlight ?? 4;
    this.maxPendingBytes = opts.maxPendingBytes ?? Math.max(DEFAULT_MAX_PENDING_BYTES, this.maxBytes);
    this.maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING;
    if (!(this.maxPendingBytes >= this.maxBytes)) throw new RangeError(`maxPendingBytes (${this.maxPendingBytes}) must be >= maxBytes (${this.maxBytes})`);
    if (!(Number.isInteger(this.maxPending) && this.maxPending >= 1)) throw new RangeError(`maxPending must be an integer >= 1, got ${this.maxPending}`);
    this.now = opts.now ?? Date.now;
  }

  /** Feed one encoded chunk (the raw MQTT payload) from `source` (e.g. the device id). */
  push(source: string, payload: Buffer): AssemblerResult {
    const d = decodeChunk(payload);
    if (!d.ok) return { status: 'error', error: d.error };
    return this.pushChunk(source, d.value);
  }

  pushChunk(source: string, c: Chunk): AssemblerResult {
    if (c.total > this.maxBytes) return { status: 'error', error: `chunk: object of ${c.total} bytes > limit ${this.maxBytes}` };
    this.sweep();
    const key = `${source}\u0000${c.id}`;
    let p = this.parts.get(key);
    if (!p) {
      if (c.count === 1 && c.offset === 0 && c.data.length === c.total) return { status: 'complete', id: c.id, data: Buffer.from(c.data) };
      // Per source: the source's own oldest goes.
      if ((this.perSource.get(source) ?? 0) >= this.maxInFlight) {
        for (const q of this.parts.values()) if (q.source === source) { this.remove(q); this.expired++; break; }
      }
      // Across sources: the oldest of anyone goes, until the new one fits.
      while (this.parts.size > 0 && (this.parts.size >= this.maxPending || this.bytes + c.total > this.maxPendingBytes)) {
        this.remove(this.parts.values().next().value as Partial);
        this.evicted++;
      }
      // The announced total counts against the cap (the worst case), but nothing that size is
      // allocated until the object is complete: a flood of first chunks costs what it sends.
      p = { source, id: c.id, chunks: new Array(c.count), got: 0, count: c.count, total: c.total, started: this.now() };
      this.parts.set(key, p);
      this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
      this.bytes += c.total;
    } else if (p.count !== c.count || p.total !== c.total) {
      this.remove(p);
      return { status: 'error', error: `chunk: transfer ${c.id} changed its count/total mid-way` };
    }
    if (!p.chunks[c.index]) {
      p.chunks[c.index] = { offset: c.offset, data: Buffer.from(c.data) };
      p.got++;
    }
    if (p.got < p.count) return { status: 'partial' };
    this.remove(p);
    const buf = Buffer.alloc(p.total);
    for (const part of p.chunks) if (part) part.data.copy(buf, part.offset);
    return { status: 'complete', id: c.id, data: buf };
  }

  /** Objects still being assembled. */
  get pending(): number {
    return this.parts.size;
  }

  /** Bytes announced by objects still being assembled (what counts against maxPendingBytes; at least what is held). */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** Sources with objects being assembled. */
  get sources(): number {
    return this.perSource.size;
  }

  /** Drop everything from one source (e.g. the device went offline). */
  drop(source: string): void {
    for (const p of [...this.parts.values()]) if (p.source === source) { this.remove(p); this.expired++; }
  }

  clear(): void {
    this.parts.clear();
    this.perSource.clear();
    this.bytes = 0;
  }

  private remove(p: Partial): void {
    if (!this.parts.delete(`${p.source}\u0000${p.id}`)) return;
    this.bytes -= p.total;
    const n = (this.perSource.get(p.source) ?? 1) - 1;
    if (n > 0) this.perSource.set(p.source, n);
    else this.perSource.delete(p.source);
  }

  /** Partial objects are in start order, so the sweep stops at the first one still in time. */
  private sweep(): void {
    const t = this.now();
    for (const p of this.parts.values()) {
      if (t - p.started <= this.timeoutMs) break;
      this.remove(p);
      this.expired++;
    }
  }
}

/** Default per-device frame rate limit, frames/s (a device sends 2 at its default 500 ms interval). */
export const DEFAULT_MAX_FRAME_RATE = 10;

/**
 * Frames per second per source (device), a token bucket: `ratePerS` frames a second on average,
 * bursts of up to `burst`. take() says whether one more frame may go on; the ones that may not
 * are counted per source and in total. Sources idle long enough to have a full bucket are
 * forgotten, so made-up sources cost nothing once they stop.
 */
export class FrameRateLimiter {
  readonly ratePerS: number;
  readonly burst: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** Frames refused, per source. */
  readonly droppedBy = new Map<string, number>();
  /** Frames refused, all sources. */
  dropped = 0;

  /** ratePerS 0: no limit. */
  constructor(ratePerS: number, burst?: number, now: () => number = Date.now) {
    if (!(typeof ratePerS === 'number' && Number.isFinite(ratePerS) && ratePerS >= 0)) throw new RangeError(`frame rate limit must be a number >= 0 (frames/s, 0: none), got ${ratePerS}`);
    this.ratePerS = ratePerS;
    this.burst = burst ?? Math.max(1, Math.ceil(ratePerS));
    if (!(this.burst >= 1)) throw new RangeError(`frame burst must be >= 1, got ${this.burst}`);
    this.now = now;
  }

  take(source: string): boolean {
    if (this.ratePerS === 0) return true;
    const t = this.now();
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= 4096) this.forgetIdle(t);
      this.buckets.set(source, (b = { tokens: this.burst, at: t }));
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerS);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.dropped++;
    if (this.droppedBy.has(source) || this.droppedBy.size < 4096) this.droppedBy.set(source, (this.droppedBy.get(source) ?? 0) + 1);
    return false;
  }

  private forgetIdle(t: number): void {
    const full = (this.burst / this.ratePerS) * 1000;
    for (const [k, b] of this.buckets) if (t - b.at >= full) this.buckets.delete(k);
  }
}

/** True when a buffer starts like a JPEG (SOI marker). */
export function isJpeg(b: Buffer): boolean {
  return b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

// ---------------------------------------------------------------------------------------------
// Model signatures (Ed25519 over the SHA-256 digest, so a device can verify while streaming)

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function privateKey(k: KeyObject | string | Buffer): KeyObject {
  const key = typeof k === 'object' && !Buffer.isBuffer(k) ? k : createPrivateKey(k);
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') throw new ProtocolError('model signing key must be an Ed25519 private key (PKCS#8 PEM)');
  return key;
}

function publicKey(k: KeyObject | string | Buffer): KeyObject {
  const key = typeof k === 'object' && !Buffer.isBuffer(k) ? k : createPublicKey(k);
  if (key.asymmetricKeyType !== 'ed25519') throw new ProtocolError('model verify key must be an Ed25519 key (SPKI PEM)');
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** Sign a model blob: base64 Ed25519 signature of its 32-byte SHA-256 digest. */
export function signModel(blob: Buffer, key: KeyObject | string | Buffer): string {
  const digest = createHash('sha256').update(blob).digest();
  return sign(null, digest, privateKey(key)).toString('base64');
}

/** Verify a model blob against its signature (see signModel). Never throws on a bad signature. */
export function verifyModel(sha256: string, signature: string, key: KeyObject | string | Buffer): boolean {
  if (!/^[0-9a-f]{64}$/.test(sha256)) return false;
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  return verify(null, Buffer.from(sha256, 'hex'), publicKey(key), sig);
}

/** The 32 raw bytes of an Ed25519 public key (what the firmware embeds), from a PEM or KeyObject. */
export function rawPublicKey(key: KeyObject | string | Buffer): Buffer {
  const der = publicKey(key).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

// ---------------------------------------------------------------------------------------------
// Home Assistant MQTT discovery
//
// The configs follow the Home Assistant MQTT docs (https://www.home-assistant.io/integrations/mqtt/,
// sensor.mqtt, image.mqtt, update.mqtt): full key names, no abbreviations, one retained config per
// entity (single component discovery). test/home-assistant.test.js checks each against those docs.

export interface DiscoveryMessage {
  topic: string;
  /** The config; null: an empty retained payload, which removes the entity. */
  payload: Record<string, unknown> | null;
  qos: 1;
  retain: true;
}

/** What Home Assistant publishes on the update entity's command topic to install (payload_install). */
export const HA_PAYLOAD_INSTALL = 'install';
/** Home Assistant's birth / last will payloads on `<discovery prefix>/status`. */
export const HA_BIRTH = 'online';

/**
 * The topics the manager publishes (and the update entity's command topic) for one device, under
 * `<prefix>/_ha/<id>/`: `_ha` is no device id (ids start with a letter or digit), so no device's
 * own topics and no device ACL pattern cover them.
 */
export function homeAssistantTopics(prefix: string, deviceId: string) {
  const base = `${checkPrefix(prefix)}/_ha/${checkDeviceId(deviceId)}`;
  return {
    /** `online` / `offline`, retained: the device's state as the manager sees it. */
    availability: `${base}/availability`,
    /** The latest frame, raw JPEG bytes, not retained (image entity `image_topic`). */
    image: `${base}/image`,
    /** The update entity's state: JSON installed_version / latest_version / in_progress, retained. */
    model: `${base}/model`,
    /** The update entity's command topic: HA_PAYLOAD_INSTALL starts the signed model update. */
    modelInstall: `${base}/model/install`,
  };
}

/** Filters the manager subscribes to for Home Assistant: its birth and the install commands. */
export function homeAssistantFilters(prefix: string, discoveryPrefix = DEFAULT_DISCOVERY_PREFIX) {
  return { birth: `${checkDiscoveryPrefix(discoveryPrefix)}/status`, modelInstall: `${checkPrefix(prefix)}/_ha/+/model/install` };
}

export function checkDiscoveryPrefix(p: string): string {
  if (typeof p !== 'string' || !PREFIX_RE.test(p) || p.startsWith('$')) throw new ProtocolError(`invalid discovery prefix ${JSON.stringify(p)}: levels without '+', '#' or a leading '$'`);
  return p;
}

export interface HomeAssistantOptions {
  discoveryPrefix?: string;
  /** Announce the image entity (the device has frames on and images are enabled). */
  image?: boolean;
  /** Offer install on the update entity (a signing key is configured and the device takes model_update). */
  install?: boolean;
  /** Why install is not offered, shown as the update entity's release summary. */
  installOff?: string;
  /** The `origin` block: the software that publishes the configs. */
  origin?: { name: string; sw_version?: string; support_url?: string };
}

const HA_KEYS = ['emotion', 'confidence', 'rssi', 'fps'] as const;

/**
 * Retained discovery configs for one device: sensors (emotion with its confidence as an
 * attribute, confidence, RSSI, FPS), the model as an `update` entity and, with `image`, the
 * latest frame as an `image` entity (without it, an empty payload that removes one announced
 * before). Every entity is available when both the manager's availability topic and the
 * device's own status say online.
 */
export function homeAssistantDiscovery(prefix: string, deviceId: string, status: StatusPayload, opts: HomeAssistantOptions | string = {}): DiscoveryMessage[] {
  const o: HomeAssistantOptions = typeof opts === 'string' ? { discoveryPrefix: opts } : opts;
  const dp = checkDiscoveryPrefix(o.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX);
  const t = deviceTopics(prefix, deviceId);
  const ha = homeAssistantTopics(prefix, deviceId);
  const device = {
    identifiers: [`tinyfer_${deviceId}`],
    name: `TinyFER ${deviceId}`,
    manufacturer: 'TinyFER',
    model: 'ESP32-S3 FER camera',
    sw_version: status.firmware ?? 'unknown',
  };
  const common: Record<string, unknown> = {
    availability: [
      { topic: ha.availability, payload_available: 'online', payload_not_available: 'offline' },
      { topic: t.status, value_template: '{{ value_json.state }}', payload_available: 'online', payload_not_available: 'offline' },
    ],
    availability_mode: 'all',
    device,
    ...(o.origin ? { origin: o.origin } : {}),
  };
  const msg = (component: string, key: string, payload: Record<string, unknown> | null): DiscoveryMessage => ({
    topic: `${dp}/${component}/${deviceId}_${key}/config`,
    payload: payload && { unique_id: `tinyfer_${deviceId}_${key}`, object_id: `tinyfer_${deviceId}_${key}`, ...payload, ...common },
    qos: 1,
    retain: true,
  });
  const sensor = (key: string, name: string, stateTopic: string, valueTemplate: string, extra: Record<string, unknown> = {}) =>
    msg('sensor', key, { name, state_topic: stateTopic, value_template: valueTemplate, ...extra });
  const update: Record<string, unknown> = {
    name: 'Model',
    device_class: 'firmware',
    title: 'TinyFER model',
    state_topic: ha.model,
    entity_category: 'config',
  };
  if (o.install) Object.assign(update, { command_topic: ha.modelInstall, payload_install: HA_PAYLOAD_INSTALL, qos: 1 });
  else update.release_summary = (o.installOff ?? 'install is off').slice(0, 255);
  return [
    sensor('emotion', 'Emotion', t.emotion, '{{ value_json.label }}', {
      device_class: 'enum', options: [...LABELS], icon: 'mdi:emoticon-outline',
      json_attributes_topic: t.emotion, json_attributes_template: '{{ {"confidence": value_json.confidence} | tojson }}',
    }),
    sensor('confidence', 'Emotion confidence', t.emotion, '{{ (value_json.confidence * 100) | round(1) }}', { unit_of_measurement: '%', state_class: 'measurement' }),
    sensor('rssi', 'Wi-Fi signal', t.telemetry, '{{ value_json.rssi }}', { unit_of_measurement: 'dBm', device_class: 'signal_strength', state_class: 'measurement', entity_category: 'diagnostic' }),
    sensor('fps', 'Camera FPS', t.telemetry, '{{ value_json.fps }}', { unit_of_measurement: 'fps', state_class: 'measurement', entity_category: 'diagnostic' }),
    msg('update', 'model', update),
    msg('image', 'frame', o.image ? { name: 'Latest frame', image_topic: ha.image, content_type: 'image/jpeg' } : null),
  ];
}

/** The update entity's state (JSON on homeAssistantTopics().model), as the update.mqtt docs define it. */
export interface HomeAssistantUpdateState {
  installed_version: string;
  latest_version: string;
  title?: string;
  release_summary?: string;
  in_progress?: boolean;
}

/** Publishing an empty retained payload on each discovery topic removes the entities. */
export function homeAssistantRemoval(deviceId: string, discoveryPrefix = DEFAULT_DISCOVERY_PREFIX): string[] {
  const id = checkDeviceId(deviceId);
  const dp = checkDiscoveryPrefix(discoveryPrefix);
  return [...HA_KEYS.map((k) => `${dp}/sensor/${id}_${k}/config`), `${dp}/update/${id}_model/config`, `${dp}/image/${id}_frame/config`];
}
