/**
 * Command requests to devices and their responses. With MQTT 5 a request carries a response
 * topic and correlation data; the JSON `id` field is always present too, so devices on MQTT 3.1.1
 * (where the broker strips properties) answer on `<prefix>/<id>/resp` with that id.
 */
import { randomBytes } from 'node:crypto';
import type { IPublishPacket } from 'mqtt';
import type { FleetConnection } from './connection';
import {
  deviceTopics, fleetFilters, replyTopic, parseJson, validateResponse, validateConfig, checkDeviceId, checkCommandName,
  splitChunks, sha256Hex, signModel, MAX_INLINE_MODEL_BYTES, MAX_MODEL_BYTES, MAX_FIRMWARE_BYTES, DEFAULT_CHUNK_BYTES, TOPIC_RULES,
  type CommandResponse, type ModelUpdateParams,
} from './protocol';
import type { KeyObject } from 'node:crypto';

export class CommandError extends Error {
  constructor(message: string, readonly code: string, readonly deviceId: string, readonly response?: CommandResponse) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface RequestOptions {
  timeoutMs?: number;
}

export interface ModelUpdateOptions extends RequestOptions {
  version: string;
  /** Base64 signature made offline with signModel; or `key` to sign here. */
  signature?: string;
  key?: KeyObject | string | Buffer;
  /** Force chunked transfer (default: inline up to MAX_INLINE_MODEL_BYTES). */
  chunked?: boolean;
  chunkBytes?: number;
}

interface Pending {
  deviceId: string;
  cmd: string;
  resolve: (r: CommandResponse) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class CommandClient {
  readonly replyTopic: string;
  private readonly pending = new Map<string, Pending>();
  private readonly unsubs: Array<() => void> = [];
  private closed = false;
  private nextTransfer = randomBytes(4).readUInt32BE(0);
  /** Responses that matched no pending request (late after a timeout, or for another requester). */
  unmatched = 0;
  /** Malformed responses seen. */
  invalid = 0;

  constructor(readonly conn: FleetConnection, readonly defaultTimeoutMs = 10000) {
    this.replyTopic = replyTopic(conn.prefix, conn.clientId);
    const onResp = (topic: string, payload: Buffer, packet: IPublishPacket) => this.onResponse(topic, payload, packet);
    this.unsubs.push(conn.subscribe(fleetFilters(conn.prefix).resp, onResp, 1));
    if (conn.protocolVersion === 5) this.unsubs.push(conn.subscribe(this.replyTopic, onResp, 1));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Send `cmd` to one device and wait for its response. Rejects with a CommandError (code 'timeout', or the device's). */
  request(deviceId: string, cmd: string, params?: Record<string, unknown>, opts: RequestOptions = {}): Promise<CommandResponse> {
    try {
      checkDeviceId(deviceId);
      checkCommandName(cmd);
      if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) throw new TypeError('command params must be an object');
      if (cmd === 'set_config') {
        const v = validateConfig(params, true);
        if (!v.ok) throw new CommandError(`set_config: ${v.error}`, 'bad_request', deviceId);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.closed) return Promise.reject(new CommandError('command client closed', 'closed', deviceId));
    const id = randomBytes(8).toString('hex');
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const body = JSON.stringify(params === undefined ? { id } : { id, params });
    if (Buffer.byteLength(body) > TOPIC_RULES.cmd.maxBytes) return Promise.reject(new CommandError(`${cmd}: request too large`, 'too_large', deviceId));
    const t = deviceTopics(this.conn.prefix, deviceId);
    return new Promise<CommandResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CommandError(`${cmd} to ${deviceId}: no response within ${timeoutMs} ms`, 'timeout', deviceId));
      }, timeoutMs);
      this.pending.set(id, { deviceId, cmd, resolve, reject, timer });
      const props = this.conn.protocolVersion === 5 ? { properties: { responseTopic: this.replyTopic, correlationData: Buffer.from(id) } } : {};
      this.conn.publish(t.cmd(cmd), body, { qos: 1, retain: false, ...props }).catch((err: Error) => this.settle(id, new CommandError(`${cmd} to ${deviceId}: ${err.message}`, 'publish_failed', deviceId)));
    }).then((r) => {
      if (cmd === 'set_config' && r.result) {
        const v = validateConfig(r.result);
        // The device's effective config becomes the retained desired state it reads at boot.
        if (v.ok) return this.conn.publish(t.config, JSON.stringify(v.value), { qos: 1, retain: true }).then(() => r);
      }
      return r;
    });
  }

  /** Send the same command to several devices; one settled result per device, in order. */
  requestMany(deviceIds: string[], cmd: string, params?: Record<string, unknown>, opts: RequestOptions = {}) {
    return Promise.allSettled(deviceIds.map((d) => this.request(d, cmd, params, opts)));
  }

  /** Push a model blob: inline (base64) when small, otherwise the request then chunks on ota/chunk. */
  modelUpdate(deviceId: string, blob: Buffer, opts: ModelUpdateOptions): Promise<CommandResponse> {
    return this.update('model_update', deviceId, blob, opts);
  }

  /**
   * Push an application firmware image, signed with the firmware key (same scheme as models). The
   * device answers once the image is written and checked, then reboots into it on trial: it comes
   * back with the new `firmware` in its birth message, or, when the new image does not reach the
   * broker, with the previous one (rolled back).
   */
  firmwareUpdate(deviceId: string, image: Buffer, opts: ModelUpdateOptions): Promise<CommandResponse> {
    return this.update('firmware_update', deviceId, image, opts);
  }

  private async update(cmd: 'model_update' | 'firmware_update', deviceId: string, blob: Buffer, opts: ModelUpdateOptions): Promise<CommandResponse> {
    const max = cmd === 'firmware_update' ? MAX_FIRMWARE_BYTES : MAX_MODEL_BYTES;
    if (!Buffer.isBuffer(blob) || blob.length === 0) throw new TypeError(`${cmd}: the blob must be a non-empty Buffer`);
    if (blob.length > max) throw new CommandError(`${cmd}: ${blob.length} bytes > ${max}`, 'too_large', deviceId);
    if (!opts || typeof opts.version !== 'string' || !opts.version) throw new TypeError(`${cmd}: a version string is required`);
    const sha256 = sha256Hex(blob);
    let signature = opts.signature;
    if (!signature) {
      if (!opts.key) throw new CommandError(`${cmd}: a signature (or a signing key) is required`, 'bad_request', deviceId);
      signature = signModel(blob, opts.key);
    }
    const params: ModelUpdateParams = { version: opts.version, size: blob.length, sha256, signature };
    const chunked = opts.chunked || blob.length > MAX_INLINE_MODEL_BYTES;
    if (!chunked) return this.request(deviceId, cmd, { ...params, blob: blob.toString('base64') }, opts);
    const transfer = (this.nextTransfer = (this.nextTransfer + 1) >>> 0);
    const chunks = splitChunks(transfer, blob, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    const done = this.request(deviceId, cmd, { ...params, transfer, chunks: chunks.length }, opts);
    const topic = deviceTopics(this.conn.prefix, deviceId).otaChunk;
    // QoS 1 publishes on one topic keep their order; the device answers once all chunks are in and verified.
    const sent = Promise.all(chunks.map((c) => this.conn.publish(topic, c, { qos: 1 })));
    const [r] = await Promise.all([done, sent]);
    return r;
  }

  /** Reject everything pending and drop the subscriptions. */
  close(): void {
    this.closed = true;
    for (const u of this.unsubs.splice(0)) u();
    for (const [id, p] of this.pending) this.settle(id, new CommandError(`${p.cmd} to ${p.deviceId}: closed before a response`, 'closed', p.deviceId));
  }

  private onResponse(topic: string, payload: Buffer, packet: IPublishPacket) {
    const p = parseJson('resp', payload);
    const v = p.ok ? validateResponse(p.value) : p;
    if (!v.ok) { this.invalid++; return; }
    const corr = packet.properties?.correlationData;
    const id = corr && corr.length ? corr.toString() : v.value.id;
    const pending = this.pending.get(id);
    if (!pending) { if (topic !== this.replyTopic) return; this.unmatched++; return; }
    if (v.value.ok) this.settle(id, null, v.value);
    else this.settle(id, new CommandError(`${pending.cmd} on ${pending.deviceId} failed: ${v.value.error?.code}: ${v.value.error?.message}`, v.value.error?.code ?? 'failed', pending.deviceId, v.value));
  }

  private settle(id: string, err: Error | null, r?: CommandResponse) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err); else p.resolve(r as CommandResponse);
  }
}
