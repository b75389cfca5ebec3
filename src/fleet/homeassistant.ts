/**
 * Home Assistant for a fleet manager, as Home Assistant's MQTT integration expects it: retained
 * discovery configs per device (src/fleet/protocol.ts homeAssistantDiscovery), the device's
 * availability published retained right after them and again on every (re)connect, everything
 * re-announced when Home Assistant announces itself (`<discovery prefix>/status` = `online`), the
 * latest frame of devices with frames on as an `image` entity (throttled, not retained), and the
 * model as an `update` entity whose install runs the signed model update.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { FleetConnection } from './connection';
import type { CommandClient } from './commands';
import type { DeviceRecord, DeviceRegistry, FleetEvent } from './registry';
import {
  homeAssistantDiscovery, homeAssistantTopics, homeAssistantFilters, checkDiscoveryPrefix, parseTopic, parseJson, validateConfig,
  sha256Hex, signModel, HA_BIRTH, HA_PAYLOAD_INSTALL, DEFAULT_DISCOVERY_PREFIX, MAX_MODEL_BYTES,
  type StatusPayload, type HomeAssistantUpdateState,
} from './protocol';
import { BUNDLED_MODELS, resolveModel } from '../engine/open';
import { checkSetting, RANGES } from '../settings/spec';

/** Default seconds between two images of one device on its image entity. */
export const DEFAULT_HA_IMAGE_INTERVAL_S = 10;

/** The `origin` of the discovery configs by default: this package and its version. */
export function packageOrigin(): { name: string; sw_version: string } {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, sw_version: pkg.version };
}

/** A model the update entity offers: its version string (what the device reports once installed) and blob. */
export interface ModelRelease {
  version: string;
  blob: Buffer;
}

/**
 * The newest bundled model (the package default, BUNDLED_MODELS[0]) as a release: version
 * `<name>@<first 12 hex of its SHA-256>`, so a device runs "latest" exactly when it runs this blob.
 */
export function bundledModelRelease(name: string = BUNDLED_MODELS[0]): ModelRelease {
  const file = resolveModel(name, 'binary');
  const blob = fs.readFileSync(file);
  if (blob.length === 0 || blob.length > MAX_MODEL_BYTES) throw new RangeError(`model ${file}: ${blob.length} bytes (1..${MAX_MODEL_BYTES})`);
  return { version: `${name}@${sha256Hex(blob).slice(0, 12)}`, blob };
}

export interface HomeAssistantBridgeOptions {
  discoveryPrefix?: string;
  /** Seconds between two images of one device (RANGES.haImageInterval; 0: no image entities). */
  imageIntervalS?: number;
  /** Ed25519 private key that signs the model the update entity installs; without it install is not offered. */
  modelKey?: KeyObject | string | Buffer;
  /** Why there is no key (e.g. the key file could not be read), shown on the update entity. */
  modelKeyProblem?: string;
  /** The model the update entity offers (default: bundledModelRelease()). */
  release?: ModelRelease;
  /** Timeout of the model update command, ms. */
  updateTimeoutMs?: number;
  origin?: { name: string; sw_version?: string; support_url?: string };
  now?: () => number;
}

interface Hooks {
  conn: FleetConnection;
  registry: DeviceRegistry;
  commands: CommandClient;
  useStream: (s: 'frame') => () => void;
  /** Connection problems (publish failed). */
  fail: (e: Error) => void;
  /** Home Assistant problems worth a warning: a refused or failed install. */
  warn: (e: Error) => void;
}

/** Throw a clear error for a bad option (before any connection is made). */
export function checkHomeAssistantOptions(opts: HomeAssistantBridgeOptions): void {
  checkDiscoveryPrefix(opts.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX);
  checkSetting('haImageInterval', RANGES.haImageInterval, opts.imageIntervalS ?? DEFAULT_HA_IMAGE_INTERVAL_S);
  // A key that cannot sign is a configuration error now, not a failed install later.
  if (opts.modelKey) signModel(Buffer.from('tinyfer'), opts.modelKey);
}

export class HomeAssistantBridge {
  readonly discoveryPrefix: string;
  readonly imageIntervalMs: number;
  readonly release: ModelRelease;
  /** Configs announced, images published / skipped (interval), installs done / failed, Home Assistant births, install requests ignored. */
  readonly counts = { announced: 0, images: 0, imagesSkipped: 0, installs: 0, installsFailed: 0, births: 0, ignoredCommands: 0 };
  private readonly now: () => number;
  private readonly origin: { name: string; sw_version?: string; support_url?: string };
  /** What each device's configs were made from, as sent on this connection (since the last birth of Home Assistant). */
  private readonly announced = new Map<string, string>();
  /** Devices whose retained config has frames_enabled: true. */
  private readonly frames = new Set<string>();
  private readonly lastImage = new Map<string, number>();
  private readonly installing = new Set<string>();
  private readonly lastError = new Map<string, string>();
  private readonly unsubs: Array<() => void> = [];
  private releaseFrames?: () => void;

  constructor(private readonly h: Hooks, readonly opts: HomeAssistantBridgeOptions = {}) {
    checkHomeAssistantOptions(opts);
    this.discoveryPrefix = opts.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX;
    this.imageIntervalMs = (opts.imageIntervalS ?? DEFAULT_HA_IMAGE_INTERVAL_S) * 1000;
    this.release = opts.release ?? bundledModelRelease();
    this.now = opts.now ?? Date.now;
    this.origin = opts.origin ?? packageOrigin();
    const f = homeAssistantFilters(h.conn.prefix, this.discoveryPrefix);
    this.unsubs.push(h.conn.subscribe(f.birth, (_t, payload) => this.onBirth(payload), 1));
    // Install requests go to one instance of a shared group, as device streams do.
    this.unsubs.push(h.conn.subscribe(h.conn.streamFilter(f.modelInstall), (t, payload) => this.onInstall(t, payload), 1));
    // Frames are received only while images are on and some device has frames on.
    if (this.imageIntervalMs > 0) this.unsubs.push(h.conn.subscribe(`${h.conn.prefix}/+/config`, (t, payload) => this.onConfig(t, payload), 1));
  }

  get installOffered(): boolean {
    return !!this.opts.modelKey;
  }

  /** Registry events: announce on online, availability offline on offline, update state on status, images on frames. */
  onEvent(ev: FleetEvent): void {
    if (ev.type === 'online' || (ev.type === 'status' && (ev.payload as StatusPayload).state === 'online')) {
      const d = this.h.registry.get(ev.deviceId);
      if (!d) return;
      // Back online: availability again. A birth while online (e.g. after a model update), or the
      // retained status again after a reconnect: only when what the configs are made of changed.
      if (ev.type === 'online' || this.announced.get(d.id) !== this.signature(d)) this.announce(d);
    } else if (ev.type === 'offline') {
      this.publish(homeAssistantTopics(this.h.conn.prefix, ev.deviceId).availability, 'offline', true);
    } else if (ev.type === 'frame') {
      this.onFrame(ev.deviceId, ev.payload as Buffer);
    }
  }

  /** The connection came (back): every known device's configs, availability and update state again. */
  onConnect(): void {
    this.announced.clear();
    this.announceAll();
  }

  private announceAll(): void {
    for (const d of this.h.registry.list()) {
      if (d.state === 'online') this.announce(d);
      else this.publish(homeAssistantTopics(this.h.conn.prefix, d.id).availability, 'offline', true);
    }
  }

  private installProblem(d: DeviceRecord): string | null {
    if (!this.opts.modelKey) return `install is off: ${this.opts.modelKeyProblem ?? 'no model signing key is configured in the tinyfer-fleet node'}`;
    if (!(d.capabilities ?? []).includes('model_update')) return 'install is off: this device does not take model updates (no model_update capability)';
    return null;
  }

  private signature(d: DeviceRecord): string {
    return JSON.stringify([d.firmware, d.model, d.capabilities, this.frames.has(d.id)]);
  }

  /** Discovery configs, then availability (retained), then the update entity's state. */
  private announce(d: DeviceRecord): void {
    this.announced.set(d.id, this.signature(d));
    this.counts.announced++;
    const problem = this.installProblem(d);
    const status: StatusPayload = { state: 'online', firmware: d.firmware, model: d.model };
    const msgs = homeAssistantDiscovery(this.h.conn.prefix, d.id, status, {
      discoveryPrefix: this.discoveryPrefix,
      image: this.imageIntervalMs > 0 && this.frames.has(d.id),
      install: problem === null,
      installOff: problem ?? undefined,
      origin: this.origin,
    });
    for (const m of msgs) this.publish(m.topic, m.payload ? JSON.stringify(m.payload) : '', true);
    this.publish(homeAssistantTopics(this.h.conn.prefix, d.id).availability, 'online', true);
    this.publishState(d);
  }

  private updateState(d: DeviceRecord): HomeAssistantUpdateState {
    const s: HomeAssistantUpdateState = {
      installed_version: d.model ?? 'unknown',
      latest_version: this.release.version,
      title: 'TinyFER model',
      in_progress: this.installing.has(d.id),
    };
    const err = this.lastError.get(d.id);
    if (err) s.release_summary = `last install failed: ${err}`.slice(0, 255);
    return s;
  }

  private publishState(d: DeviceRecord): void {
    this.publish(homeAssistantTopics(this.h.conn.prefix, d.id).model, JSON.stringify(this.updateState(d)), true);
  }

  private publish(topic: string, payload: string | Buffer, retain: boolean, qos: 0 | 1 = 1): void {
    this.h.conn.publish(topic, payload, { qos, retain }).catch((e: Error) => this.h.fail(e));
  }

  private onBirth(payload: Buffer): void {
    if (payload.toString() !== HA_BIRTH) return; // its last will (`offline`) needs nothing
    this.counts.births++;
    this.announced.clear();
    this.announceAll();
  }

  private onConfig(topic: string, payload: Buffer): void {
    const p = parseTopic(this.h.conn.prefix, topic);
    if (!p || p.kind !== 'config') return;
    const j = parseJson('config', payload);
    const v = j.ok ? validateConfig(j.value) : j;
    const on = v.ok && v.value.frames_enabled === true;
    if (this.frames.has(p.deviceId) === on) return;
    // Only devices with frames on are held (made-up ids with frames off cost nothing).
    if (on) this.frames.add(p.deviceId);
    else { this.frames.delete(p.deviceId); this.lastImage.delete(p.deviceId); }
    const any = this.frames.size > 0;
    if (any && !this.releaseFrames) this.releaseFrames = this.h.useStream('frame');
    else if (!any && this.releaseFrames) { this.releaseFrames(); this.releaseFrames = undefined; }
    // Frames turned on or off: announce again (adds or removes the image entity).
    const d = this.h.registry.get(p.deviceId);
    if (d && d.state === 'online' && this.announced.has(d.id)) this.announce(d);
  }

  private onFrame(deviceId: string, jpeg: Buffer): void {
    if (this.imageIntervalMs <= 0 || !this.frames.has(deviceId) || !this.announced.has(deviceId)) return;
    const t = this.now();
    const last = this.lastImage.get(deviceId);
    if (last !== undefined && t - last < this.imageIntervalMs) { this.counts.imagesSkipped++; return; }
    this.lastImage.set(deviceId, t);
    this.counts.images++;
    // Not retained: a face picture is not kept on the broker, and none lingers once frames are off.
    this.publish(homeAssistantTopics(this.h.conn.prefix, deviceId).image, jpeg, false, 0);
  }

  private onInstall(topic: string, payload: Buffer): void {
    const m = /\/_ha\/([^/]+)\/model\/install$/.exec(topic);
    const d = m ? this.h.registry.get(m[1]) : undefined;
    if (!d || payload.toString() !== HA_PAYLOAD_INSTALL) { this.counts.ignoredCommands++; return; }
    const problem = this.installProblem(d);
    if (problem || d.state !== 'online' || this.installing.has(d.id)) {
      this.counts.ignoredCommands++;
      const why = problem ?? (d.state !== 'online' ? 'the device is offline' : 'an install is already running');
      this.h.warn(new Error(`Home Assistant install on ${d.id}: ${why}`));
      return;
    }
    this.installing.add(d.id);
    this.lastError.delete(d.id);
    this.publishState(d);
    this.h.commands.modelUpdate(d.id, this.release.blob, { version: this.release.version, key: this.opts.modelKey, timeoutMs: this.opts.updateTimeoutMs }).then(
      () => { this.counts.installs++; },
      (e: Error) => {
        this.counts.installsFailed++;
        this.lastError.set(d.id, e.message);
        this.h.warn(new Error(`Home Assistant install on ${d.id}: ${e.message}`));
      },
    ).finally(() => {
      this.installing.delete(d.id);
      const now = this.h.registry.get(d.id);
      if (now) this.publishState(now);
    });
  }

  close(): void {
    for (const u of this.unsubs.splice(0)) u();
    this.releaseFrames?.();
    this.releaseFrames = undefined;
  }
}
