/**
 * One MQTT connection shared by every fleet user (the Node-RED config node owns one). Holds the
 * subscriptions with reference counts, re-subscribes them after a reconnect, and dispatches
 * incoming messages to the handlers whose filters match.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient, type IPublishPacket } from 'mqtt';
import { STATUS_MAX, fitStatus, withStatus } from '../runtime/status';
import { checkPrefix, sharedFilter, topicMatches, DEFAULT_PREFIX } from './protocol';

export interface FleetConnectionOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL. */
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5;
  /**
   * When the broker refuses MQTT 5 on the first connect, connect again with 3.1.1 (`fellBack`,
   * event 'fallback'). Default: on, unless a shared group is set (it needs MQTT 5).
   */
  protocolFallback?: boolean;
  prefix?: string;
  /** MQTT 5 shared subscription group for the device streams (telemetry, emotion, frames). */
  sharedGroup?: string;
  /** TLS: PEM strings or buffers. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  keepaliveS?: number;
  reconnectPeriodMs?: number;
  connectTimeoutMs?: number;
}

/** MQTT protocol levels the fleet speaks: 5, or 4 (3.1.1). */
export const PROTOCOL_VERSIONS = [5, 4] as const;

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';
export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

interface Sub { filter: string; qos: 0 | 1 | 2; handlers: Set<MessageHandler> }

/** The CONNACK codes that mean "this broker does not speak that MQTT version" (3.1.1: 1; MQTT 5: 0x84). */
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);

/**
 * Why a connection failed, in at most 32 characters for a node status: the broker's CONNACK
 * reason, a TCP or DNS failure at `url`, or a TLS certificate problem. The full error stays in
 * the error itself (node.error gets its message).
 */
export function failureReason(err: Error & { code?: string | number }, url: string): string {
  const code = err.code;
  let host = '';
  let port = '';
  try {
    const u = new URL(url);
    host = u.hostname.replace(/^\[|\]$/g, '');
    port = u.port || ({ 'mqtt:': '1883', 'tcp:': '1883', 'mqtts:': '8883', 'ssl:': '8883', 'ws:': '80', 'wss:': '443' } as Record<string, string>)[u.protocol] || '';
  } catch {
    /* a URL the constructor already refused */
  }
  const fit = (long: string, short: string) => (long.length <= STATUS_MAX ? long : short);
  if (typeof code === 'number') {
    const connack: Record<number, string> = {
      1: 'broker refused: MQTT version',
      0x84: 'broker refused: MQTT version',
      2: 'broker refused: client id',
      0x85: 'broker refused: client id',
      3: 'broker refused: unavailable',
      0x88: 'broker refused: unavailable',
      0x89: 'broker refused: busy',
      4: 'broker refused: bad user/pass',
      0x86: 'broker refused: bad user/pass',
      5: 'broker refused: not authorized',
      0x87: 'broker refused: not authorized',
      0x8a: 'broker refused: banned',
      0x8c: 'broker refused: auth method',
      0x9f: 'broker refused: rate limit',
    };
    return connack[code] ?? `broker refused: code ${code}`;
  }
  switch (code) {
    case 'ECONNREFUSED':
      return fit(`no broker at ${host}:${port}`, `no broker on port ${port}`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fit(`unknown host ${host}`, 'unknown broker host');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'broker host unreachable';
    case 'ETIMEDOUT':
      return 'broker did not answer';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'broker closed the connection';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return 'TLS: certificate not trusted';
    case 'CERT_HAS_EXPIRED':
      return 'TLS: certificate expired';
    case 'CERT_NOT_YET_VALID':
      return 'TLS: certificate not yet valid';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return 'TLS: certificate for other host';
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return 'TLS handshake failed';
  }
  if (/connack timeout/i.test(err.message)) return 'broker did not answer';
  if (/certificate/i.test(err.message)) return 'TLS: certificate problem';
  return fitStatus(err.message);
}

export class FleetConnection extends EventEmitter {
  readonly prefix: string;
  /** The MQTT version in use: 4 after falling back from 5 (see fellBack). */
  protocolVersion: 4 | 5;
  /** The broker refused MQTT 5 and the connection fell back to 3.1.1. */
  fellBack = false;
  readonly sharedGroup?: string;
  readonly clientId: string;
  /** The current MQTT client (a new one after a protocol fallback). */
  client: MqttClient;
  state: ConnectionState = 'connecting';
  /** Connections made (1 after the first connect; more after reconnects). */
  connects = 0;
  lastError?: Error;
  /** Why the connection is down, in <= 32 characters (failureReason); cleared on connect. */
  failure?: string;
  private readonly subs = new Map<string, Sub>();
  private readonly url: string;
  private readonly clientOptions: IClientOptions;
  private readonly allowFallback: boolean;

  constructor(opts: FleetConnectionOptions) {
    super();
    if (!opts || typeof opts.url !== 'string' || !/^(mqtts?|wss?|tcp|ssl):\/\//.test(opts.url)) {
      throw withStatus(new TypeError(`fleet: broker url must be mqtt://, mqtts://, ws:// or wss://, got ${JSON.stringify(opts && opts.url)}`), 'bad broker URL');
    }
    try {
      this.prefix = checkPrefix(opts.prefix ?? DEFAULT_PREFIX);
    } catch (e) {
      throw withStatus(e as Error, 'bad topic prefix');
    }
    if (opts.protocolVersion !== undefined && !(PROTOCOL_VERSIONS as readonly number[]).includes(opts.protocolVersion)) {
      throw new TypeError(`fleet: protocolVersion must be one of ${PROTOCOL_VERSIONS.join(', ')}, got ${opts.protocolVersion}`);
    }
    this.protocolVersion = opts.protocolVersion === 4 ? 4 : 5;
    if (opts.sharedGroup && this.protocolVersion !== 5) throw withStatus(new TypeError('fleet: shared subscriptions need MQTT 5 (protocolVersion 5)'), 'shared group needs MQTT 5');
    try {
      if (opts.sharedGroup) sharedFilter('x', opts.sharedGroup); // validates the group name
    } catch (e) {
      throw withStatus(e as Error, 'bad shared group');
    }
    this.sharedGroup = opts.sharedGroup || undefined;
    // MQTT 5 falls back to 3.1.1 when the broker refuses it, unless a shared group needs 5.
    this.allowFallback = opts.protocolFallback ?? !this.sharedGroup;
    if (opts.protocolFallback && this.sharedGroup) throw withStatus(new TypeError('fleet: a shared subscription group needs MQTT 5: no fallback to 3.1.1'), 'shared group needs MQTT 5');
    this.clientId = opts.clientId || `tinyfer-nr-${Math.random().toString(16).slice(2, 10)}`;
    this.url = opts.url;
    const o: IClientOptions = {
      clientId: this.clientId,
      clean: true,
      keepalive: opts.keepaliveS ?? 30,
      reconnectPeriod: opts.reconnectPeriodMs ?? 2000,
      connectTimeout: opts.connectTimeoutMs ?? 10000,
      resubscribe: false, // we re-subscribe ourselves, from our own table
    };
    if (opts.username) o.username = opts.username;
    if (opts.password) o.password = opts.password;
    if (opts.tls) Object.assign(o, opts.tls);
    this.clientOptions = o;
    this.client = this.start();
  }

  /** A client for the current protocol version, wired to this connection. */
  private start(): MqttClient {
    const client = mqtt.connect(this.url, { ...this.clientOptions, protocolVersion: this.protocolVersion });
    client.setMaxListeners(0);
    const mine = () => this.client === client && this.state !== 'closed';
    client.on('connect', () => {
      if (!mine()) return;
      this.connects++;
      this.lastError = undefined;
      this.failure = undefined;
      this.setState('connected');
      if (this.subs.size) {
        const map: Record<string, { qos: 0 | 1 | 2 }> = {};
        for (const s of this.subs.values()) map[s.filter] = { qos: s.qos };
        client.subscribe(map, (err) => { if (err) this.fail(err); });
      }
      this.emit('connect', this.connects > 1);
    });
    client.on('reconnect', () => { if (mine()) this.setState('reconnecting'); });
    client.on('close', () => { if (mine()) this.setState('disconnected'); });
    client.on('offline', () => { if (mine()) this.setState('disconnected'); });
    client.on('error', (err: Error & { code?: string | number }) => {
      if (this.client !== client) return;
      if (this.allowFallback && this.protocolVersion === 5 && this.connects === 0 && typeof err.code === 'number' && UNSUPPORTED_PROTOCOL.has(err.code)) {
        // The broker speaks MQTT 3.1.1 only (e.g. aedes, the demo's broker): try again with it.
        this.protocolVersion = 4;
        this.fellBack = true;
        client.end(true);
        this.emit('fallback', err);
        if (this.state !== 'closed') this.client = this.start();
        return;
      }
      this.fail(err);
    });
    client.on('message', (topic, payload, packet) => {
      for (const s of this.subs.values()) {
        if (!topicMatches(s.filter, topic)) continue;
        for (const h of s.handlers) {
          try {
            h(topic, payload, packet);
          } catch (err) {
            this.emit('handlerError', err, topic);
          }
        }
      }
    });
    return client;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** The filter to use for a device stream: shared when a group is configured. */
  streamFilter(filter: string): string {
    return sharedFilter(filter, this.sharedGroup);
  }

  /** Subscribe `handler` to `filter`; returns the function that removes it again. */
  subscribe(filter: string, handler: MessageHandler, qos: 0 | 1 | 2 = 1): () => void {
    let s = this.subs.get(filter);
    if (!s) {
      s = { filter, qos, handlers: new Set() };
      this.subs.set(filter, s);
      if (this.client.connected) this.client.subscribe(filter, { qos }, (err) => { if (err) this.fail(err); });
    }
    s.handlers.add(handler);
    const sub = s;
    return () => {
      if (!sub.handlers.delete(handler) || sub.handlers.size) return;
      this.subs.delete(filter);
      if (this.client.connected) this.client.unsubscribe(filter, (err) => { if (err) this.fail(err); });
    };
  }

  publish(topic: string, payload: string | Buffer, opts: IClientPublishOptions = {}): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error('fleet: connection closed'));
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, opts, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** End the connection; pending QoS 1 publishes are given a moment to finish. */
  close(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    this.setState('closed');
    this.subs.clear();
    return new Promise((resolve) => {
      const t = setTimeout(() => this.client.end(true, {}, () => resolve()), 2000);
      this.client.end(false, {}, () => { clearTimeout(t); resolve(); });
    });
  }

  private fail(err: Error & { code?: string | number }) {
    this.lastError = err;
    if (!this.client.connected) {
      const reason = failureReason(err, this.url);
      const changed = reason !== this.failure;
      this.failure = reason;
      if (changed) this.emit('state', this.state); // users show the reason
    }
    if (this.listenerCount('error')) this.emit('error', err);
  }

  private setState(s: ConnectionState) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }
}
