/**
 * One MQTT connection shared by every fleet user (the Node-RED config node owns one). Holds the
 * subscriptions with reference counts, re-subscribes them after a reconnect, and dispatches
 * incoming messages to the handlers whose filters match.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient, type IPublishPacket } from 'mqtt';
import { checkPrefix, sharedFilter, topicMatches, DEFAULT_PREFIX } from './protocol';

export interface FleetConnectionOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL. */
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5;
  prefix?: string;
  /** MQTT 5 shared subscription group for the device streams (telemetry, emotion, frames). */
  sharedGroup?: string;
  /** TLS: PEM strings or buffers. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  keepaliveS?: number;
  reconnectPeriodMs?: number;
  connectTimeoutMs?: number;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';
export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

interface Sub { filter: string; qos: 0 | 1 | 2; handlers: Set<MessageHandler> }

export class FleetConnection extends EventEmitter {
  readonly prefix: string;
  readonly protocolVersion: 4 | 5;
  readonly sharedGroup?: string;
  readonly clientId: string;
  readonly client: MqttClient;
  state: ConnectionState = 'connecting';
  /** Connections made (1 after the first connect; more after reconnects). */
  connects = 0;
  lastError?: Error;
  private readonly subs = new Map<string, Sub>();

  constructor(opts: FleetConnectionOptions) {
    super();
    if (!opts || typeof opts.url !== 'string' || !/^(mqtts?|wss?|tcp|ssl):\/\//.test(opts.url)) {
      throw new TypeError(`fleet: broker url must be mqtt://, mqtts://, ws:// or wss://, got ${JSON.stringify(opts && opts.url)}`);
    }
    this.prefix = checkPrefix(opts.prefix ?? DEFAULT_PREFIX);
    this.protocolVersion = opts.protocolVersion === 4 ? 4 : 5;
    if (opts.protocolVersion !== undefined && opts.protocolVersion !== 4 && opts.protocolVersion !== 5) {
      throw new TypeError(`fleet: protocolVersion must be 4 or 5, got ${opts.protocolVersion}`);
    }
    if (opts.sharedGroup && this.protocolVersion !== 5) throw new TypeError('fleet: shared subscriptions need MQTT 5 (protocolVersion 5)');
    if (opts.sharedGroup) sharedFilter('x', opts.sharedGroup); // validates the group name
    this.sharedGroup = opts.sharedGroup || undefined;
    this.clientId = opts.clientId || `tinyfer-nr-${Math.random().toString(16).slice(2, 10)}`;
    const o: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: this.protocolVersion,
      clean: true,
      keepalive: opts.keepaliveS ?? 30,
      reconnectPeriod: opts.reconnectPeriodMs ?? 2000,
      connectTimeout: opts.connectTimeoutMs ?? 10000,
      resubscribe: false, // we re-subscribe ourselves, from our own table
    };
    if (opts.username) o.username = opts.username;
    if (opts.password) o.password = opts.password;
    if (opts.tls) Object.assign(o, opts.tls);
    this.client = mqtt.connect(opts.url, o);
    this.client.setMaxListeners(0);
    this.client.on('connect', () => {
      this.connects++;
      this.lastError = undefined;
      this.setState('connected');
      if (this.subs.size) {
        const map: Record<string, { qos: 0 | 1 | 2 }> = {};
        for (const s of this.subs.values()) map[s.filter] = { qos: s.qos };
        this.client.subscribe(map, (err) => { if (err) this.fail(err); });
      }
      this.emit('connect', this.connects > 1);
    });
    this.client.on('reconnect', () => this.setState('reconnecting'));
    this.client.on('close', () => { if (this.state !== 'closed') this.setState('disconnected'); });
    this.client.on('offline', () => { if (this.state !== 'closed') this.setState('disconnected'); });
    this.client.on('error', (err) => this.fail(err));
    this.client.on('message', (topic, payload, packet) => {
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

  private fail(err: Error) {
    this.lastError = err;
    if (this.listenerCount('error')) this.emit('error', err);
  }

  private setState(s: ConnectionState) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }
}
