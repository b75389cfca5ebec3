/**
 * The input side shared by the vision nodes: messages are handled one at a time, in arrival
 * order (smoothing and frame chunks need the sequence); a failure shows on the status and goes
 * to done(err) so a Catch node sees it; nothing a handler or send() throws stops the queue.
 * Status updates are throttled, and a failure's status stays up for that long.
 *
 * The queue can be bounded (QueueLimits: the 'Queue' setting of tinyfer-frame and tinyfer-emotion): at most `maxWaiting`
 * messages wait besides the one being handled; when one more arrives, the oldest waiting one
 * (drop 'oldest': the freshest frames win, what live video wants) or the new one (drop 'newest')
 * is dropped. A dropped message is done() (no error: it was dealt with, so Node-RED's message
 * tracking and Complete nodes stay right) and counted (stats()).
 */
import { RANGES, checkSetting, settingValue } from '../settings/spec';
import { errorStatus } from './status';

export interface StatusNode {
  status(s: Record<string, unknown>): void;
  error(err: unknown, msg?: unknown): void;
}

/** Which message goes when the queue is full: the oldest waiting one, or the one arriving. */
export const QUEUE_DROPS = ['oldest', 'newest'] as const;
export type QueueDrop = (typeof QUEUE_DROPS)[number];

/** The default 'Queue' of tinyfer-frame and tinyfer-emotion (also for flows saved before the setting existed): frames waiting, besides the one being processed. */
export const DEFAULT_QUEUE_SIZE = 100;
export const DEFAULT_QUEUE_DROP: QueueDrop = 'oldest';

export interface QueueLimits {
  /** Messages waiting at most, besides the one being handled (Infinity: no limit). */
  readonly maxWaiting: number;
  readonly drop: QueueDrop;
}

/** No limit (what SerialInput does when given none). */
export const UNBOUNDED: QueueLimits = { maxWaiting: Infinity, drop: DEFAULT_QUEUE_DROP };

/** The queue settings of a node (queueSize, queueDrop; empty: the defaults), checked against RANGES.queueSize / QUEUE_DROPS. */
export function queueLimitsFromConfig(c: { queueSize?: unknown; queueDrop?: unknown }): QueueLimits {
  const size = settingValue('queueSize', { ...RANGES.queueSize, optional: true }, c.queueSize) ?? DEFAULT_QUEUE_SIZE;
  const drop = c.queueDrop === undefined || c.queueDrop === null || c.queueDrop === '' ? DEFAULT_QUEUE_DROP : c.queueDrop;
  checkSetting('queueDrop', { kind: 'enum', values: QUEUE_DROPS }, drop);
  return { maxWaiting: size, drop: drop as QueueDrop };
}

/** The warning a node logs (once) at its first drop: what is dropped and what to do. */
export function queueDropWarning(limits: QueueLimits): string {
  return `frames arrive faster than they are processed: ${limits.maxWaiting} are waiting, so ` +
    (limits.drop === 'oldest' ? 'the oldest waiting frame is dropped for each new one' : 'new frames are dropped') +
    " until there is room. The status counts the dropped frames; raise 'Queue' or send fewer frames. (Said once.)";
}

/**
 * A node's SerialInput onDrop, the same for every node with a bounded queue: `before(msg)` first
 * (e.g. strip the images a Complete node must not see), the queueDropWarning on the first drop,
 * then `showStatus()` (the node's status with the drop count).
 */
export function dropReporter(
  node: { warn(msg: unknown): void },
  limits: QueueLimits,
  showStatus: () => void,
  before?: (msg: unknown) => void,
): (dropped: number, msg: unknown) => void {
  return (dropped, msg) => {
    if (before) before(msg);
    if (dropped === 1) node.warn(queueDropWarning(limits));
    showStatus();
  };
}

/** A snapshot of the queue (the node's documented stats accessor returns one). */
export interface QueueStats {
  /** Messages waiting now (at most limits.maxWaiting). */
  waiting: number;
  /** Is a message being handled now? */
  busy: boolean;
  /** The most messages that ever waited at once. */
  maxWaitingSeen: number;
  /** Payload bytes (Buffers, strings) of the waiting messages. */
  waitingBytes: number;
  /** Messages pushed / handled (success or failure, each done() once) / dropped (done() unhandled). */
  received: number;
  handled: number;
  dropped: number;
  limits: QueueLimits;
}

interface Item {
  msg: unknown;
  work: () => Promise<unknown>;
  ok: (out: unknown) => void;
  done: (err?: Error) => void;
  bytes: number;
}

/** Bytes a message's payload holds (a Buffer's or a string's length; 0 otherwise). */
function payloadBytes(msg: unknown): number {
  const p = typeof msg === 'object' && msg !== null ? (msg as { payload?: unknown }).payload : undefined;
  if (Buffer.isBuffer(p) || p instanceof Uint8Array) return p.byteLength;
  if (typeof p === 'string') return p.length;
  return 0;
}

export class SerialInput {
  /** Waiting items from `head` on (a deque on an array, compacted as it empties). */
  private items: Item[] = [];
  private head = 0;
  private busy = false;
  private bytes = 0;
  private idleWaiters: Array<() => void> = [];
  private shownAt = 0;
  private received = 0;
  private handled = 0;
  private dropped = 0;
  private maxWaitingSeen = 0;

  constructor(
    private readonly node: StatusNode,
    private readonly minStatusMs = 250,
    readonly limits: QueueLimits = UNBOUNDED,
    /**
     * Called for each drop, before the dropped message's done(), with the drops so far and that
     * message (e.g. to warn once, show the count, or strip images a Complete node must not see).
     */
    private readonly onDrop?: (dropped: number, msg: unknown) => void,
  ) {
    const m = limits.maxWaiting;
    if (!(m === Infinity || (Number.isInteger(m) && m >= 1))) throw new RangeError(`queue maxWaiting must be an integer >= 1 or Infinity, got ${m}`);
    checkSetting('queue drop', { kind: 'enum', values: QUEUE_DROPS }, limits.drop);
  }

  /** Show a status, at most once every minStatusMs unless forced. */
  status(s: Record<string, unknown>, force = false): void {
    const now = Date.now();
    if (!force && now - this.shownAt < this.minStatusMs) return;
    this.shownAt = now;
    this.node.status(s);
  }

  /**
   * Queue one message: `work` produces the result, `ok` sends it, then done() or done(err).
   * When the queue is full, a message is dropped (see QueueLimits) and done() at once.
   */
  push<T>(msg: unknown, work: () => Promise<T>, ok: (out: T) => void, done: (err?: Error) => void): void {
    this.received++;
    const item: Item = { msg, work, ok: ok as (out: unknown) => void, done, bytes: payloadBytes(msg) };
    if (this.waiting >= this.limits.maxWaiting) {
      if (this.limits.drop === 'newest') {
        this.drop(item);
        return;
      }
      this.drop(this.shift());
    }
    this.items.push(item);
    this.bytes += item.bytes;
    if (this.waiting > this.maxWaitingSeen) this.maxWaitingSeen = this.waiting;
    if (!this.busy) void this.run();
  }

  /** Fail a message without queueing it (e.g. a chunk rejected on arrival): status and done(err), as a failed handler. */
  fail(err: unknown, done: (err?: Error) => void): void {
    this.received++;
    this.handled++;
    this.failed(err, done);
  }

  /** Finish a message at once with nothing to do (e.g. a chunk of a frame still incomplete): done(). */
  skip(done: (err?: Error) => void): void {
    this.received++;
    this.handled++;
    done();
  }

  /** The queue now and its counters (see QueueStats). */
  stats(): QueueStats {
    return {
      waiting: this.waiting,
      busy: this.busy,
      maxWaitingSeen: this.maxWaitingSeen,
      waitingBytes: this.bytes,
      received: this.received,
      handled: this.handled,
      dropped: this.dropped,
      limits: this.limits,
    };
  }

  /** Resolves once every queued message has been handled. */
  idle(): Promise<void> {
    if (!this.busy && this.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private get waiting(): number {
    return this.items.length - this.head;
  }

  private shift(): Item {
    const it = this.items[this.head];
    this.items[this.head++] = undefined as unknown as Item; // let it go now
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.bytes -= it.bytes;
    return it;
  }

  private drop(it: Item): void {
    this.dropped++;
    if (this.onDrop) {
      try {
        this.onDrop(this.dropped, it.msg);
      } catch (err) {
        this.node.error(err, it.msg);
      }
    }
    try {
      it.done();
    } catch (err) {
      this.node.error(err, it.msg);
    }
  }

  private failed(err: unknown, done: (err?: Error) => void): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.status({ fill: 'red', shape: 'ring', text: errorStatus(e) }, true);
    done(e);
  }

  /** Handle the waiting messages one at a time until none is left. */
  private async run(): Promise<void> {
    this.busy = true;
    while (this.waiting > 0) {
      const it = this.shift();
      try {
        let out: unknown;
        try {
          out = await it.work();
        } catch (err) {
          this.handled++;
          this.failed(err, it.done);
          continue;
        }
        this.handled++;
        try {
          it.ok(out);
        } catch (err) {
          it.done(err instanceof Error ? err : new Error(String(err)));
          continue;
        }
        it.done();
      } catch (err) {
        this.node.error(err, it.msg);
      }
    }
    this.busy = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
