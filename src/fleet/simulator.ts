/**
 * Virtual TinyFER devices: each one is a real MQTT client speaking the fleet protocol exactly as
 * the firmware does (birth/last will, telemetry, emotions, chunked JPEG frames, commands, model
 * updates). They send real face JPEGs from FER2013 and remember each face's dataset label so an
 * end-to-end test can check what arrives.
 *
 * Without a classifier a virtual device replays the dataset label as its result (a stand-in for
 * the on-device network, for transport and load tests); give it a FaceClassifier to run a real one.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, type KeyObject } from 'node:crypto';
import mqtt, { type MqttClient, type IPublishPacket } from 'mqtt';
import { LABELS, labelIndex, type Label } from '../model/labels';
import type { FaceClassifier } from '../engine/types';
import { defaultDataRoot, decodeFace } from '../train/data';
import {
  deviceTopics, parseTopic, parseJson, validateRequest, validateConfig, validateModelUpdate, splitChunks, topLabel,
  verifyModel, FrameAssembler, PROTOCOL_VERSION, DEFAULT_CONFIG, DEFAULT_PREFIX, MAX_CHUNK_BYTES, MAX_MODEL_BYTES,
  TOPIC_RULES, type DeviceConfig, type EmotionPayload, type StatusPayload, type TelemetryPayload, type CommandResponse,
  type ModelUpdateParams,
} from './protocol';

export interface FaceSample {
  label: Label;
  file: string;
  jpeg: Buffer;
}

export interface LoadFacesOptions {
  /** Folder with `<label>/*.jpg`; default `<data root>/fer2013/PublicTest`. */
  dir?: string;
  /** Faces taken per label (round robin over labels keeps the mix balanced). */
  perLabel?: number;
}

/** Read real face JPEGs with their labels (sorted, so runs are repeatable). */
export function loadFaces(opts: LoadFacesOptions = {}): FaceSample[] {
  const dir = opts.dir ?? path.join(defaultDataRoot(), 'fer2013', 'PublicTest');
  if (!fs.existsSync(dir)) throw new Error(`faces folder not found: ${dir} (set TINYFER_DATA to the shared data folder)`);
  const perLabel = opts.perLabel ?? 20;
  const byLabel: FaceSample[][] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const li = labelIndex(name);
    const sub = path.join(dir, name);
    if (li < 0 || !fs.statSync(sub).isDirectory()) continue;
    const files = fs.readdirSync(sub).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, perLabel);
    byLabel.push(files.map((f) => ({ label: LABELS[li], file: path.join(sub, f), jpeg: fs.readFileSync(path.join(sub, f)) })));
  }
  const out: FaceSample[] = [];
  for (let i = 0; out.length < byLabel.reduce((n, l) => n + l.length, 0); i++) for (const l of byLabel) if (i < l.length) out.push(l[i]);
  if (!out.length) throw new Error(`no labelled JPEG faces under ${dir}`);
  return out;
}

export interface VirtualDeviceOptions {
  url: string;
  deviceId: string;
  prefix?: string;
  protocolVersion?: 4 | 5;
  faces: FaceSample[];
  /** Start at this face index (spreads devices over the faces). */
  faceOffset?: number;
  classifier?: FaceClassifier;
  /** Initial config (the retained config topic overrides it on connect). */
  config?: Partial<DeviceConfig>;
  telemetryIntervalMs?: number;
  /** Ed25519 public key (PEM/KeyObject) model updates must be signed with; without it model_update is refused. */
  modelKey?: KeyObject | string | Buffer;
  firmware?: string;
  model?: string;
  ip?: string;
  /**
   * Frame bytes per chunk; default MAX_CHUNK_BYTES (16384), as the firmware: a frame of up to that
   * size is one message, which an MQTT 5 shared group delivers whole to one instance (protocol §7).
   */
  chunkBytes?: number;
  /** 'chunk' (default): frames on frame/chunk with a frame id; 'raw': whole JPEG on frame. */
  frameMode?: 'chunk' | 'raw';
  keepaliveS?: number;
  reconnectPeriodMs?: number;
}

/** What a device sent, with the ground truth, for tests and the bench. */
export interface SentEmotion {
  deviceId: string;
  seq: number;
  frameId: number;
  truth: Label;
  file: string;
  payload: EmotionPayload;
}

/** A frame a device published (event 'frame'), with the dataset label of its face. */
export interface SentFrame {
  deviceId: string;
  frameId: number;
  truth: Label;
  file: string;
  bytes: number;
}

export class VirtualDevice extends EventEmitter {
  readonly id: string;
  readonly prefix: string;
  readonly topics: ReturnType<typeof deviceTopics>;
  config: DeviceConfig;
  firmware: string;
  model: string;
  client?: MqttClient;
  /** Messages sent and acknowledged (QoS 1) / published (QoS 0). */
  readonly sent = { emotion: 0, emotionAcked: 0, telemetry: 0, frames: 0, responses: 0, failed: 0 };
  readonly commands: string[] = [];
  private seq = 0;
  private frameId = 0;
  private face: number;
  private captureTimer?: NodeJS.Timeout;
  private telemetryTimer?: NodeJS.Timeout;
  private bootedAt = Date.now();
  private lastTelemetryAt = Date.now();
  private capturesSince = 0;
  private inferenceMsSum = 0;
  private stopped = false;
  private capturing = false;
  private readonly ota = new FrameAssembler({ maxBytes: MAX_MODEL_BYTES, maxInFlight: 1, timeoutMs: 60000 });
  private otaPending?: { params: ModelUpdateParams; reply: Reply; timer: NodeJS.Timeout };

  constructor(readonly opts: VirtualDeviceOptions) {
    super();
    if (!opts.faces || !opts.faces.length) throw new Error('virtual device: faces are required (see loadFaces)');
    this.id = opts.deviceId;
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.topics = deviceTopics(this.prefix, this.id);
    const c = validateConfig({ ...DEFAULT_CONFIG, ...opts.config });
    if (!c.ok) throw new Error(`virtual device ${this.id}: ${c.error}`);
    this.config = c.value;
    this.firmware = opts.firmware ?? '0.1.0-sim';
    this.model = opts.model ?? 'tinyfer-sim';
    this.face = opts.faceOffset ?? 0;
  }

  get connected(): boolean {
    return !!this.client && this.client.connected;
  }

  /** Connect, publish the birth message, subscribe to commands, config and model chunks. Resolves once online. */
  start(): Promise<void> {
    this.stopped = false;
    this.bootedAt = Date.now();
    const will = { topic: this.topics.status, payload: Buffer.from(JSON.stringify({ state: 'offline' })), qos: 1 as const, retain: true };
    const client = mqtt.connect(this.opts.url, {
      clientId: `tinyfer-dev-${this.id}`,
      protocolVersion: this.opts.protocolVersion ?? 5,
      clean: true,
      keepalive: this.opts.keepaliveS ?? 15,
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 500,
      connectTimeout: 10000,
      will,
      resubscribe: false,
    });
    this.client = client;
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on('error', (err) => this.emit('mqttError', err));
    client.on('connect', () => {
      client.subscribe({ [this.topics.cmdFilter]: { qos: 1 }, [this.topics.config]: { qos: 1 }, [this.topics.otaChunk]: { qos: 1 } }, (err) => {
        if (err) return this.emit('mqttError', err);
        this.publishJson(this.topics.status, this.birth(), 'status').then(() => this.emit('online'), () => undefined);
      });
      this.schedule();
    });
    client.on('close', () => this.unschedule());
    return new Promise((resolve, reject) => {
      const onOnline = () => { client.off('error', onErr); resolve(); };
      const onErr = (e: Error) => { this.off('online', onOnline); reject(e); };
      this.once('online', onOnline);
      client.once('error', onErr);
    });
  }

  /** Graceful shutdown: retained offline status, then DISCONNECT (no last will). */
  async stop(reason = 'shutdown'): Promise<void> {
    this.stopped = true;
    this.unschedule();
    const c = this.client;
    if (!c) return;
    if (c.connected) await this.publishJson(this.topics.status, { state: 'offline', reason }, 'status').catch(() => undefined);
    await new Promise<void>((r) => c.end(false, {}, () => r()));
  }

  /** Ungraceful drop: the socket is destroyed, no DISCONNECT is sent, so the broker fires the last will. */
  crash(): void {
    this.stopped = true;
    this.unschedule();
    const c = this.client;
    if (!c) return;
    c.options.reconnectPeriod = 0;
    c.stream.destroy();
    c.end(true);
  }

  /** Capture one face now: the frame (when enabled) then the emotion. */
  async capture(): Promise<SentEmotion | null> {
    if (!this.connected) return null;
    const f = this.opts.faces[this.face++ % this.opts.faces.length];
    const frameId = (this.frameId = (this.frameId + 1) >>> 0);
    if (this.config.frames_enabled) await this.publishFrame(frameId, f);
    const t0 = process.hrtime.bigint();
    let scores: ArrayLike<number>;
    if (this.opts.classifier) {
      const [s] = await this.opts.classifier.classify([await decodeFace(f.jpeg)]);
      scores = s;
    } else {
      scores = LABELS.map((l) => (l === f.label ? 1 : 0));
    }
    const inferenceMs = Number(process.hrtime.bigint() - t0) / 1e6;
    this.capturesSince++;
    this.inferenceMsSum += inferenceMs;
    const top = topLabel(scores);
    if (top.confidence < this.config.confidence_threshold) return null;
    const payload: EmotionPayload = {
      ts: Date.now(), seq: this.seq++ >>> 0, box: { x: 0, y: 0, w: 48, h: 48 }, label: top.label, confidence: top.confidence,
      scores: top.scores, inference_ms: Math.round(inferenceMs * 100) / 100,
    };
    if (this.config.frames_enabled) payload.frame_id = frameId;
    const sent: SentEmotion = { deviceId: this.id, seq: payload.seq, frameId, truth: f.label, file: f.file, payload };
    this.sent.emotion++;
    this.emit('emotion', sent);
    await this.publishJson(this.topics.emotion, payload, 'emotion').then(
      () => { this.sent.emotionAcked++; this.emit('acked', sent); },
      (e: Error) => { this.sent.failed++; this.emit('publishFailed', sent, e); },
    );
    return sent;
  }

  /**
   * The telemetry message. uptime, fps and inference_ms are measured; a virtual device has no
   * radio, heap or sensor of an ESP32-S3, so heap_free, psram_free, rssi and temp_c are fixed,
   * plausible XIAO ESP32-S3 Sense values.
   */
  telemetry(): TelemetryPayload {
    const t = Date.now();
    const elapsed = Math.max(1, t - this.lastTelemetryAt) / 1000;
    const fps = Math.round((this.capturesSince / elapsed) * 100) / 100;
    const inferenceMs = this.capturesSince ? Math.round((this.inferenceMsSum / this.capturesSince) * 100) / 100 : 0;
    this.lastTelemetryAt = t;
    this.capturesSince = 0;
    this.inferenceMsSum = 0;
    return {
      uptime_s: Math.floor((t - this.bootedAt) / 1000),
      heap_free: 180 * 1024,
      psram_free: 6 * 1024 * 1024,
      rssi: -55,
      fps,
      inference_ms: inferenceMs,
      temp_c: 41.5,
    };
  }

  private birth(): StatusPayload {
    return {
      state: 'online', protocol: PROTOCOL_VERSION, firmware: this.firmware, model: this.model, ip: this.opts.ip ?? '127.0.0.1',
      capabilities: ['emotion', 'telemetry', 'frame', 'snapshot', 'reboot', 'config', ...(this.opts.modelKey ? ['model_update'] : [])],
    };
  }

  private schedule() {
    this.unschedule();
    if (this.stopped) return;
    this.captureTimer = setInterval(() => {
      if (this.capturing) return; // a slow classifier: skip a tick rather than pile up
      this.capturing = true;
      this.capture().catch((e) => this.emit('mqttError', e)).finally(() => { this.capturing = false; });
    }, this.config.capture_interval_ms);
    this.telemetryTimer = setInterval(() => {
      this.sent.telemetry++;
      this.publishJson(this.topics.telemetry, this.telemetry(), 'telemetry').catch(() => undefined);
    }, this.opts.telemetryIntervalMs ?? 5000);
  }

  private unschedule() {
    clearInterval(this.captureTimer);
    clearInterval(this.telemetryTimer);
    this.captureTimer = this.telemetryTimer = undefined;
  }

  private async publishFrame(frameId: number, face: FaceSample): Promise<number> {
    const jpeg = face.jpeg;
    if ((this.opts.frameMode ?? 'chunk') === 'raw') {
      await this.publish(this.topics.frame, jpeg, 'frame');
    } else {
      for (const c of splitChunks(frameId, jpeg, this.opts.chunkBytes ?? MAX_CHUNK_BYTES)) await this.publish(this.topics.frameChunk, c, 'frame/chunk');
    }
    this.sent.frames++;
    const sent: SentFrame = { deviceId: this.id, frameId, truth: face.label, file: face.file, bytes: jpeg.length };
    this.emit('frame', sent);
    return frameId;
  }

  private publishJson(topic: string, body: object, kind: keyof typeof TOPIC_RULES): Promise<void> {
    return this.publish(topic, JSON.stringify(body), kind);
  }

  private publish(topic: string, payload: string | Buffer, kind: keyof typeof TOPIC_RULES, props?: object): Promise<void> {
    const c = this.client;
    const rule = TOPIC_RULES[kind];
    if (!c) return Promise.reject(new Error('not started'));
    return new Promise((resolve, reject) => c.publish(topic, payload, { qos: rule.qos, retain: rule.retain, ...props }, (e) => (e ? reject(e) : resolve())));
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket) {
    const t = parseTopic(this.prefix, topic);
    if (!t || t.deviceId !== this.id) return;
    if (t.kind === 'config') {
      const v = payload.length ? parseJson('config', payload) : null;
      const c = v && v.ok ? validateConfig(v.value) : null;
      if (c && c.ok) this.applyConfig(c.value);
      return;
    }
    if (t.kind === 'ota/chunk') return this.onOtaChunk(payload);
    if (t.kind !== 'cmd' || !t.command) return;
    const props = packet.properties ?? {};
    const p = parseJson('cmd', payload);
    const v = p.ok ? validateRequest(p.value) : p;
    // MQTT 5: answer on the response topic with the correlation data; MQTT 3.1.1: on resp with the body id.
    const reqId = v.ok ? v.value.id : (p.ok && typeof (p.value as { id?: unknown }).id === 'string' ? (p.value as { id: string }).id : '');
    const reply: Reply = { id: reqId, cmd: t.command, topic: props.responseTopic || this.topics.resp, correlationData: props.correlationData };
    if (!v.ok) return void this.respond(reply, { code: 'bad_request', message: v.error });
    this.commands.push(t.command);
    this.emit('command', t.command, v.value.params);
    this.onCommand(t.command, v.value.params ?? {}, reply).catch((e: Error) => this.respond(reply, { code: 'internal', message: e.message }));
  }

  private async onCommand(cmd: string, params: Record<string, unknown>, reply: Reply): Promise<void> {
    switch (cmd) {
      case 'get_config':
        return this.respond(reply, null, { ...this.config });
      case 'set_config': {
        const v = validateConfig(params, true);
        if (!v.ok) return this.respond(reply, { code: 'bad_request', message: v.error });
        this.applyConfig({ ...this.config, ...v.value });
        return this.respond(reply, null, { ...this.config });
      }
      case 'snapshot': {
        if (!this.config.frames_enabled) return this.respond(reply, { code: 'frames_disabled', message: 'frames_enabled is false (privacy default): enable it with set_config first' });
        const f = this.opts.faces[this.face % this.opts.faces.length];
        const frameId = await this.publishFrame((this.frameId = (this.frameId + 1) >>> 0), f);
        return this.respond(reply, null, { frame_id: frameId, size: f.jpeg.length });
      }
      case 'reboot': {
        const delay = typeof params.delay_ms === 'number' && params.delay_ms >= 0 ? Math.min(params.delay_ms, 60000) : 200;
        await this.respond(reply, null, { delay_ms: delay });
        await this.stop('reboot');
        this.emit('rebooting');
        setTimeout(() => { if (this.stopped) this.start().then(() => this.emit('rebooted'), (e) => this.emit('mqttError', e)); }, delay);
        return;
      }
      case 'model_update':
        return this.onModelUpdate(params, reply);
      default:
        return this.respond(reply, { code: 'unknown_command', message: `unknown command ${cmd}` });
    }
  }

  private async onModelUpdate(params: Record<string, unknown>, reply: Reply): Promise<void> {
    if (!this.opts.modelKey) return this.respond(reply, { code: 'unsupported', message: 'no model verification key provisioned' });
    const v = validateModelUpdate(params);
    if (!v.ok) return this.respond(reply, { code: 'bad_request', message: v.error });
    const m = v.value;
    if (m.blob !== undefined) return this.install(m, Buffer.from(m.blob, 'base64'), reply);
    if (this.otaPending) return this.respond(reply, { code: 'busy', message: 'a model transfer is already in progress' });
    const timer = setTimeout(() => {
      this.otaPending = undefined;
      this.ota.clear();
      this.respond(reply, { code: 'timeout', message: 'model chunks did not all arrive' }).catch(() => undefined);
    }, 60000);
    this.otaPending = { params: m, reply, timer };
  }

  private onOtaChunk(payload: Buffer) {
    const p = this.otaPending;
    if (!p) return;
    const r = this.ota.push('ota', payload);
    if (r.status === 'partial') return;
    clearTimeout(p.timer);
    this.otaPending = undefined;
    this.ota.clear();
    if (r.status === 'error') return void this.respond(p.reply, { code: 'bad_request', message: r.error });
    if (r.id !== p.params.transfer) return void this.respond(p.reply, { code: 'bad_request', message: `chunks of transfer ${r.id}, expected ${p.params.transfer}` });
    this.install(p.params, r.data, p.reply).catch(() => undefined);
  }

  private async install(m: ModelUpdateParams, blob: Buffer, reply: Reply): Promise<void> {
    if (blob.length !== m.size) return this.respond(reply, { code: 'verify_failed', message: `size ${blob.length} != ${m.size}` });
    const sha = createHash('sha256').update(blob).digest('hex');
    if (sha !== m.sha256) return this.respond(reply, { code: 'verify_failed', message: 'sha256 mismatch' });
    if (!verifyModel(sha, m.signature, this.opts.modelKey as KeyObject)) return this.respond(reply, { code: 'verify_failed', message: 'bad signature' });
    this.model = m.version;
    await this.publishJson(this.topics.status, this.birth(), 'status');
    return this.respond(reply, null, { model: this.model, sha256: sha });
  }

  private applyConfig(c: DeviceConfig) {
    const reschedule = c.capture_interval_ms !== this.config.capture_interval_ms;
    this.config = c;
    if (reschedule && this.connected) this.schedule();
  }

  private respond(r: Reply, error: { code: string; message: string } | null, result?: Record<string, unknown>): Promise<void> {
    const body: CommandResponse = { id: r.id || 'unknown', cmd: r.cmd, ok: !error, ts: Date.now() };
    if (error) body.error = error; else body.result = result ?? {};
    const props = r.correlationData ? { properties: { correlationData: r.correlationData } } : undefined;
    this.sent.responses++;
    return this.publish(r.topic, JSON.stringify(body), 'resp', props);
  }
}

interface Reply {
  id: string;
  cmd: string;
  topic: string;
  correlationData?: Buffer;
}

export interface SimulatorOptions extends Omit<VirtualDeviceOptions, 'deviceId' | 'faceOffset'> {
  count: number;
  /** Device ids are `<idPrefix><n>` with n zero-padded (default 'sim-'). */
  idPrefix?: string;
  /** Devices connecting at once while starting. */
  startConcurrency?: number;
}

/** N virtual devices. */
export class Simulator extends EventEmitter {
  readonly devices: VirtualDevice[] = [];

  constructor(readonly opts: SimulatorOptions) {
    super();
    if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`simulator: count must be a positive integer, got ${opts.count}`);
    const width = String(opts.count - 1).length;
    for (let i = 0; i < opts.count; i++) {
      const d = new VirtualDevice({ ...opts, deviceId: `${opts.idPrefix ?? 'sim-'}${String(i).padStart(width, '0')}`, faceOffset: i * 3 }); // 3 and the 7 labels are coprime: neighbours show different faces
      d.on('emotion', (e: SentEmotion) => this.emit('emotion', e));
      d.on('acked', (e: SentEmotion) => this.emit('acked', e));
      d.on('frame', (e: SentFrame) => this.emit('frame', e));
      d.on('publishFailed', (e: SentEmotion, err: Error) => this.emit('publishFailed', e, err));
      d.on('mqttError', (e: Error) => this.emit('mqttError', e, d.id));
      this.devices.push(d);
    }
  }

  async start(): Promise<void> {
    const n = this.opts.startConcurrency ?? 50;
    for (let i = 0; i < this.devices.length; i += n) await Promise.all(this.devices.slice(i, i + n).map((d) => d.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.stop()));
  }

  device(id: string): VirtualDevice | undefined {
    return this.devices.find((d) => d.id === id);
  }
}
