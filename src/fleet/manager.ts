/**
 * A fleet manager: one connection, the device registry fed from it, the command client and Home
 * Assistant discovery. The `tinyfer-fleet` Node-RED config node is a thin wrapper around this.
 */
import { EventEmitter } from 'node:events';
import { FleetConnection, type FleetConnectionOptions } from './connection';
import { DeviceRegistry, type FleetEvent, type InvalidMessage } from './registry';
import { CommandClient } from './commands';
import { fleetFilters } from './protocol';
import { HomeAssistantBridge, checkHomeAssistantOptions, type HomeAssistantBridgeOptions } from './homeassistant';

export interface FleetManagerOptions extends FleetConnectionOptions {
  /** Home Assistant: discovery, availability, image and update entities (src/fleet/homeassistant.ts). */
  homeAssistant?: boolean;
  discoveryPrefix?: string;
  /** Seconds between two images of one device on its image entity (0: none). Default 10. */
  haImageInterval?: number;
  /** Ed25519 private key (PKCS#8 PEM or KeyObject) that signs the model the update entity installs. */
  modelKey?: HomeAssistantBridgeOptions['modelKey'];
  /** Why no key is there (e.g. its file could not be read): shown on the update entity. */
  modelKeyProblem?: string;
  /** Further Home Assistant options (the offered model release, origin, clock). */
  haOptions?: Omit<HomeAssistantBridgeOptions, 'discoveryPrefix' | 'imageIntervalS' | 'modelKey' | 'modelKeyProblem'>;
  commandTimeoutMs?: number;
  /** Frames/s accepted per device (registry frame rate limit; 0: none). Default DEFAULT_MAX_FRAME_RATE. */
  maxFrameRate?: number;
  /** Most bytes of partial chunked frames held across all devices. Default 32 MiB. */
  maxPendingFrameBytes?: number;
}

export type Stream = 'telemetry' | 'emotion' | 'frame';

export class FleetManager extends EventEmitter {
  readonly conn: FleetConnection;
  readonly registry: DeviceRegistry;
  readonly commands: CommandClient;
  private readonly streamUsers: Record<Stream, number> = { telemetry: 0, emotion: 0, frame: 0 };
  private readonly streamUnsubs: Partial<Record<Stream, Array<() => void>>> = {};
  private readonly unsubStatus: () => void;
  /** Home Assistant, when enabled. */
  readonly homeAssistant?: HomeAssistantBridge;

  constructor(readonly opts: FleetManagerOptions) {
    super();
    const haOpts: HomeAssistantBridgeOptions = {
      ...opts.haOptions, discoveryPrefix: opts.discoveryPrefix, imageIntervalS: opts.haImageInterval, modelKey: opts.modelKey, modelKeyProblem: opts.modelKeyProblem,
      updateTimeoutMs: opts.haOptions?.updateTimeoutMs ?? Math.max(60000, opts.commandTimeoutMs ?? 0),
    };
    if (opts.homeAssistant) checkHomeAssistantOptions(haOpts);
    this.conn = new FleetConnection(opts);
    this.registry = new DeviceRegistry({ prefix: this.conn.prefix, maxFrameRate: opts.maxFrameRate, maxPendingFrameBytes: opts.maxPendingFrameBytes });
    this.commands = new CommandClient(this.conn, opts.commandTimeoutMs ?? 10000);
    const onMsg = (topic: string, payload: Buffer, packet: { retain?: boolean }) => { this.registry.handle(topic, payload, !!packet.retain); };
    // Status is never shared: every instance keeps the whole registry (retained, small).
    this.unsubStatus = this.conn.subscribe(fleetFilters(this.conn.prefix).status, onMsg, 1);
    this.onMsg = onMsg;
    this.setMaxListeners(0); // one listener per devices node
    if (opts.homeAssistant) {
      this.homeAssistant = new HomeAssistantBridge(
        { conn: this.conn, registry: this.registry, commands: this.commands, useStream: (st) => this.useStream(st), fail: (e) => this.fail(e), warn: (e) => this.emit('warning', e) },
        haOpts,
      );
    }
    this.registry.on('event', (ev: FleetEvent) => {
      this.homeAssistant?.onEvent(ev);
      this.emit('event', ev);
    });
    this.registry.on('invalid', (inv: InvalidMessage) => this.emit('invalid', inv));
    this.conn.on('state', (s) => this.emit('state', s));
    this.conn.on('fallback', (e) => this.emit('fallback', e));
    this.conn.on('error', (e) => this.fail(e));
    // After every (re)connect: discovery, availability and update state again for every known device.
    this.conn.on('connect', (re: boolean) => { this.homeAssistant?.onConnect(); this.emit('connect', re); });
  }

  private readonly onMsg: (topic: string, payload: Buffer, packet: { retain?: boolean }) => void;

  /** Start receiving a device stream (shared across instances when a group is set); returns the release. */
  useStream(stream: Stream): () => void {
    if (this.streamUsers[stream]++ === 0) {
      const f = fleetFilters(this.conn.prefix);
      const filters = stream === 'frame' ? [f.frame, f.frameChunk] : [f[stream]];
      this.streamUnsubs[stream] = filters.map((x) => this.conn.subscribe(this.conn.streamFilter(x), this.onMsg, stream === 'emotion' ? 1 : 0));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.streamUsers[stream] === 0) for (const u of this.streamUnsubs[stream]!.splice(0)) u();
    };
  }

  /** Connection problems are reported as 'error' events when someone listens; the connection retries anyway. */
  private fail(e: Error) {
    if (this.listenerCount('error')) this.emit('error', e);
  }

  async close(): Promise<void> {
    this.homeAssistant?.close();
    this.commands.close();
    this.unsubStatus();
    await this.conn.close();
  }
}
