/**
 * A fleet manager: one connection, the device registry fed from it, the command client and Home
 * Assistant discovery. The `tinyfer-fleet` Node-RED config node is a thin wrapper around this.
 */
import { EventEmitter } from 'node:events';
import { FleetConnection, type FleetConnectionOptions } from './connection';
import { DeviceRegistry, type FleetEvent, type InvalidMessage } from './registry';
import { CommandClient } from './commands';
import { fleetFilters, homeAssistantDiscovery, DEFAULT_DISCOVERY_PREFIX, type StatusPayload } from './protocol';

export interface FleetManagerOptions extends FleetConnectionOptions {
  /** Publish Home Assistant discovery configs when a device comes online. */
  homeAssistant?: boolean;
  discoveryPrefix?: string;
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
  private readonly announced = new Set<string>();
  private readonly unsubStatus: () => void;

  constructor(readonly opts: FleetManagerOptions) {
    super();
    this.conn = new FleetConnection(opts);
    this.registry = new DeviceRegistry({ prefix: this.conn.prefix, maxFrameRate: opts.maxFrameRate, maxPendingFrameBytes: opts.maxPendingFrameBytes });
    this.commands = new CommandClient(this.conn, opts.commandTimeoutMs ?? 10000);
    const onMsg = (topic: string, payload: Buffer, packet: { retain?: boolean }) => { this.registry.handle(topic, payload, !!packet.retain); };
    // Status is never shared: every instance keeps the whole registry (retained, small).
    this.unsubStatus = this.conn.subscribe(fleetFilters(this.conn.prefix).status, onMsg, 1);
    this.onMsg = onMsg;
    this.setMaxListeners(0); // one listener per devices node
    this.registry.on('event', (ev: FleetEvent) => {
      // Announce each online device once per connection: after a broker restart that lost the
      // retained discovery configs, the devices' births bring them back.
      if (opts.homeAssistant && (ev.type === 'online' || (ev.type === 'status' && (ev.payload as StatusPayload).state === 'online'))) {
        this.announce(ev.deviceId, ev.payload as StatusPayload);
      }
      this.emit('event', ev);
    });
    this.registry.on('invalid', (inv: InvalidMessage) => this.emit('invalid', inv));
    this.conn.on('state', (s) => this.emit('state', s));
    this.conn.on('fallback', (e) => this.emit('fallback', e));
    this.conn.on('error', (e) => this.fail(e));
    this.conn.on('connect', (re: boolean) => { this.announced.clear(); this.emit('connect', re); });
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

  private announce(deviceId: string, status: StatusPayload) {
    if (this.announced.has(deviceId)) return;
    this.announced.add(deviceId);
    for (const m of homeAssistantDiscovery(this.conn.prefix, deviceId, status, this.opts.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX)) {
      this.conn.publish(m.topic, JSON.stringify(m.payload), { qos: m.qos, retain: m.retain }).catch((e) => this.fail(e));
    }
  }

  /** Connection problems are reported as 'error' events when someone listens; the connection retries anyway. */
  private fail(e: Error) {
    if (this.listenerCount('error')) this.emit('error', e);
  }

  async close(): Promise<void> {
    this.commands.close();
    this.unsubStatus();
    await this.conn.close();
  }
}
