/**
 * The fleet registry: what every device said last (status, telemetry, emotion), validated at the
 * edge. Bad messages are counted per device and topic kind and reported as 'invalid' events; they
 * never throw. Frames arriving in chunks are reassembled here.
 */
import { EventEmitter } from 'node:events';
import {
  parseTopic, parseJson, validateStatus, validateTelemetry, validateEmotion, validateConfig, isJpeg,
  FrameAssembler, FrameRateLimiter, DEFAULT_MAX_FRAME_RATE, TOPIC_RULES, MAX_FRAME_BYTES, checkPrefix, type StatusPayload, type TelemetryPayload,
  type EmotionPayload, type DeviceConfig, type TopicKind,
} from './protocol';

export type DeviceState = 'online' | 'offline';

export interface DeviceRecord {
  id: string;
  state: DeviceState;
  /** ms since epoch (this host's clock) of the first and the last message from the device. */
  firstSeen: number;
  lastSeen: number;
  /** ms since epoch when the state last changed. */
  since: number;
  firmware?: string;
  model?: string;
  ip?: string;
  protocol?: number;
  capabilities?: string[];
  telemetry?: TelemetryPayload;
  emotion?: EmotionPayload;
  /** Desired config (the retained config topic), when seen. */
  config?: DeviceConfig;
  /** Messages accepted / rejected from this device. */
  messages: number;
  invalid: number;
}

export type FleetEventType = 'online' | 'offline' | 'status' | 'telemetry' | 'emotion' | 'frame' | 'config';

export interface FleetEvent {
  type: FleetEventType;
  deviceId: string;
  /** A copy of the device record after the event. */
  device: DeviceRecord;
  /** The validated payload (a Buffer with the JPEG for 'frame'). */
  payload: unknown;
  /** Frame id (chunked frames). */
  frameId?: number;
  /** True when the message was a retained one (e.g. a status replayed on subscribe). */
  retained?: boolean;
}

export interface InvalidMessage {
  deviceId?: string;
  topic: string;
  kind: TopicKind | 'unknown';
  error: string;
  /** How many bad messages this device/kind pair has sent so far. */
  count: number;
}

export interface RegistrySnapshot {
  version: 1;
  devices: DeviceRecord[];
}

export interface RegistryOptions {
  prefix?: string;
  /** Largest reassembled frame. */
  maxFrameBytes?: number;
  /** Most bytes held in partial chunked frames across all devices (FrameAssembler.maxPendingBytes). */
  maxPendingFrameBytes?: number;
  /** Frames per second accepted per device (average; bursts of as many); more are dropped and counted. 0: no limit. */
  maxFrameRate?: number;
  now?: () => number;
}



export class DeviceRegistry extends EventEmitter {
  readonly prefix: string;
  private readonly devices = new Map<string, DeviceRecord>();
  readonly frames: FrameAssembler;
  /** Bad messages per `<deviceId>/<kind>` (or `?/<topic>` when no device can be named). */
  readonly invalidCounts = new Map<string, number>();
  /** Per-device frame rate limit; `frameLimiter.dropped` counts the frames it dropped. */
  readonly frameLimiter: FrameRateLimiter;
  /** Messages refused because their payload named another device than their topic. */
  spoofed = 0;
  private readonly now: () => number;

  constructor(opts: RegistryOptions = {}) {
    super();
    this.prefix = checkPrefix(opts.prefix ?? 'tinyfer');
    this.now = opts.now ?? Date.now;
    this.frames = new FrameAssembler({ maxBytes: opts.maxFrameBytes ?? MAX_FRAME_BYTES, maxPendingBytes: opts.maxPendingFrameBytes, now: this.now });
    this.frameLimiter = new FrameRateLimiter(opts.maxFrameRate ?? DEFAULT_MAX_FRAME_RATE, undefined, this.now);
  }

  get size(): number {
    return this.devices.size;
  }

  get(id: string): DeviceRecord | undefined {
    const d = this.devices.get(id);
    return d && copy(d);
  }

  list(): DeviceRecord[] {
    return [...this.devices.values()].map(copy).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  ids(state?: DeviceState): string[] {
    return this.list().filter((d) => !state || d.state === state).map((d) => d.id);
  }

  /** Devices online/offline; bad messages (of which `spoofed` named another device); frames dropped by the rate limit. */
  counts(): { online: number; offline: number; invalid: number; spoofed: number; framesDropped: number } {
    let online = 0, offline = 0, invalid = 0;
    for (const d of this.devices.values()) {
      if (d.state === 'online') online++; else offline++;
    }
    for (const n of this.invalidCounts.values()) invalid += n;
    return { online, offline, invalid, spoofed: this.spoofed, framesDropped: this.frameLimiter.dropped };
  }

  /**
   * Take one MQTT message. Returns the event it produced (also emitted as 'event'), or null when
   * the message was invalid (emitted as 'invalid'), not ours, or changed nothing.
   */
  handle(topic: string, payload: Buffer, retained = false): FleetEvent | null {
    const t = parseTopic(this.prefix, topic);
    if (!t) return this.reject(undefined, topic, 'unknown', 'not a TinyFER device topic');
    const { deviceId, kind } = t;
    if (!Buffer.isBuffer(payload)) payload = Buffer.from(String(payload));
    if (payload.length > TOPIC_RULES[kind].maxBytes) return this.reject(deviceId, topic, kind, `oversized: ${payload.length} bytes > ${TOPIC_RULES[kind].maxBytes}`);
    switch (kind) {
      case 'status': {
        if (payload.length === 0) return this.forget(deviceId); // retained status cleared: the device was removed
        const v = this.json(kind, payload, validateStatus);
        if (!v.ok) return this.reject(deviceId, topic, kind, v.error);
        if (this.spoof(v.value.device, deviceId)) return this.rejectSpoof(deviceId, topic, kind, v.value.device as string);
        return this.onStatus(deviceId, v.value, retained);
      }
      case 'telemetry': {
        const v = this.json(kind, payload, validateTelemetry);
        if (!v.ok) return this.reject(deviceId, topic, kind, v.error);
        if (this.spoof(v.value.device, deviceId)) return this.rejectSpoof(deviceId, topic, kind, v.value.device as string);
        const d = this.touch(deviceId);
        d.telemetry = v.value;
        return this.fire('telemetry', d, v.value, { retained });
      }
      case 'emotion': {
        const v = this.json(kind, payload, validateEmotion);
        if (!v.ok) return this.reject(deviceId, topic, kind, v.error);
        if (this.spoof(v.value.device, deviceId)) return this.rejectSpoof(deviceId, topic, kind, v.value.device as string);
        const d = this.touch(deviceId);
        d.emotion = v.value;
        return this.fire('emotion', d, v.value, { retained, frameId: v.value.frame_id });
      }
      case 'config': {
        if (payload.length === 0) return null;
        const v = this.json(kind, payload, (x) => validateConfig(x));
        if (!v.ok) return this.reject(deviceId, topic, kind, v.error);
        const d = this.devices.get(deviceId);
        if (!d) return null; // desired config of a device we have not seen: nothing to report
        d.config = v.value;
        return this.fire('config', d, v.value, { retained });
      }
      case 'frame': {
        if (!isJpeg(payload)) return this.reject(deviceId, topic, kind, 'frame: not a JPEG (no SOI marker)');
        if (!this.frameLimiter.take(deviceId)) return this.dropFrame(deviceId);
        return this.fire('frame', this.touch(deviceId), payload, { retained });
      }
      case 'frame/chunk': {
        const r = this.frames.push(deviceId, payload);
        if (r.status === 'error') return this.reject(deviceId, topic, kind, r.error);
        // A partial chunk creates no device record: made-up ids flooding partial frames leave
        // nothing behind but what the assembler's global cap allows.
        if (r.status === 'partial') {
          const known = this.devices.get(deviceId);
          if (known) known.lastSeen = this.now();
          return null;
        }
        if (!isJpeg(r.data)) return this.reject(deviceId, topic, kind, `frame ${r.id}: not a JPEG (no SOI marker)`);
        if (!this.frameLimiter.take(deviceId)) return this.dropFrame(deviceId);
        return this.fire('frame', this.touch(deviceId), r.data, { frameId: r.id, retained });
      }
      default:
        return null; // resp, cmd, ota/chunk: not registry business
    }
  }

  /** Mark every device offline (e.g. our own connection was lost for long); emits 'offline' events. */
  markAllOffline(): void {
    for (const d of this.devices.values()) if (d.state === 'online') this.setState(d, 'offline', null);
  }

  snapshot(): RegistrySnapshot {
    return { version: 1, devices: this.list() };
  }

  /**
   * Restore a snapshot (e.g. from Node-RED context). Every restored device starts offline: its
   * state is unknown until the broker's retained status (or its next birth) confirms it, which
   * then fires a real 'online' event, so a flow that acts on 'online' works after a restart too.
   * What we knew of the device (first seen, firmware, counters) is kept.
   */
  restore(s: unknown): number {
    if (!s || typeof s !== 'object' || (s as RegistrySnapshot).version !== 1 || !Array.isArray((s as RegistrySnapshot).devices)) return 0;
    let n = 0;
    for (const d of (s as RegistrySnapshot).devices) {
      if (!d || typeof d.id !== 'string' || parseTopic(this.prefix, `${this.prefix}/${d.id}/status`) === null) continue;
      if (this.devices.has(d.id)) continue;
      this.devices.set(d.id, { ...d, state: 'offline', messages: d.messages | 0, invalid: d.invalid | 0 });
      n++;
    }
    return n;
  }

  clear(): void {
    this.devices.clear();
    this.invalidCounts.clear();
    this.frames.clear();
  }

  private onStatus(id: string, s: StatusPayload, retained: boolean): FleetEvent | null {
    const d = this.touch(id);
    if (s.state === 'online') {
      d.firmware = s.firmware;
      d.model = s.model;
      d.ip = s.ip;
      d.protocol = s.protocol;
      d.capabilities = s.capabilities;
    }
    if (d.state !== s.state) {
      if (s.state === 'offline') this.frames.drop(id);
      return this.setState(d, s.state, s, retained);
    }
    return this.fire('status', d, s, { retained });
  }

  private setState(d: DeviceRecord, state: DeviceState, payload: StatusPayload | null, retained = false): FleetEvent {
    d.state = state;
    d.since = this.now();
    return this.fire(state, d, payload ?? { state }, { retained });
  }

  private touch(id: string): DeviceRecord {
    const t = this.now();
    let d = this.devices.get(id);
    if (!d) {
      d = { id, state: 'offline', firstSeen: t, lastSeen: t, since: t, messages: 0, invalid: 0 };
      this.devices.set(id, d);
    }
    d.lastSeen = t;
    d.messages++;
    return d;
  }

  private forget(id: string): FleetEvent | null {
    const d = this.devices.get(id);
    if (!d) return null;
    this.devices.delete(id);
    this.frames.drop(id);
    return this.fire('offline', { ...d, state: 'offline' }, { state: 'offline', reason: 'removed' }, {});
  }

  private fire(type: FleetEventType, d: DeviceRecord, payload: unknown, extra: { frameId?: number; retained?: boolean }): FleetEvent {
    const ev: FleetEvent = { type, deviceId: d.id, device: copy(d), payload };
    if (extra.frameId !== undefined) ev.frameId = extra.frameId;
    if (extra.retained) ev.retained = true;
    this.emit('event', ev);
    return ev;
  }

  private json<T>(kind: TopicKind, payload: Buffer, validate: (v: unknown) => { ok: true; value: T } | { ok: false; error: string }) {
    const p = parseJson(kind, payload);
    return p.ok ? validate(p.value) : p;
  }

  /** Does a payload's `device` field name another device than the topic? */
  private spoof(named: string | undefined, topicId: string): boolean {
    return named !== undefined && named !== topicId;
  }

  private rejectSpoof(deviceId: string, topic: string, kind: TopicKind, named: string): null {
    this.spoofed++;
    return this.reject(deviceId, topic, kind, `payload names device ${JSON.stringify(named)}, the topic ${JSON.stringify(deviceId)}: refused`);
  }

  /** A frame over the device's rate limit: dropped, counted (frameLimiter.dropped, per device in droppedBy). */
  private dropFrame(deviceId: string): null {
    const d = this.devices.get(deviceId);
    if (d) d.lastSeen = this.now();
    this.emit('dropped', { deviceId, dropped: this.frameLimiter.dropped });
    return null;
  }

  private reject(deviceId: string | undefined, topic: string, kind: TopicKind | 'unknown', error: string): null {
    let key = `${deviceId ?? '?'}/${deviceId ? kind : topic}`;
    // Bounded: made-up ids or topics beyond 4096 distinct pairs are counted together.
    if (!this.invalidCounts.has(key) && this.invalidCounts.size >= 4096) key = '*/other';
    const count = (this.invalidCounts.get(key) ?? 0) + 1;
    this.invalidCounts.set(key, count);
    if (deviceId) {
      const d = this.devices.get(deviceId);
      if (d) d.invalid++;
    }
    const inv: InvalidMessage = { topic, kind, error, count };
    if (deviceId) inv.deviceId = deviceId;
    this.emit('invalid', inv);
    return null;
  }
}

function copy(d: DeviceRecord): DeviceRecord {
  return { ...d, capabilities: d.capabilities && [...d.capabilities] };
}
