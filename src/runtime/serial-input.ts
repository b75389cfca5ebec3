/**
 * The input side shared by the vision nodes: messages are handled one at a time, in arrival
 * order (bounded memory; smoothing and frame chunks need the sequence); a failure shows on the
 * status and goes to done(err) so a Catch node sees it; nothing a handler or send() throws stops
 * the queue. Status updates are throttled, and a failure's status stays up for that long.
 */
import { errorStatus } from './status';

export interface StatusNode {
  status(s: Record<string, unknown>): void;
  error(err: unknown, msg?: unknown): void;
}

export class SerialInput {
  private tail: Promise<void> = Promise.resolve();
  private shownAt = 0;

  constructor(
    private readonly node: StatusNode,
    private readonly minStatusMs = 250,
  ) {}

  /** Show a status, at most once every minStatusMs unless forced. */
  status(s: Record<string, unknown>, force = false): void {
    const now = Date.now();
    if (!force && now - this.shownAt < this.minStatusMs) return;
    this.shownAt = now;
    this.node.status(s);
  }

  /** Queue one message: `work` produces the result, `ok` sends it, then done() or done(err). */
  push<T>(msg: unknown, work: () => Promise<T>, ok: (out: T) => void, done: (err?: Error) => void): void {
    this.tail = this.tail
      .then(() =>
        work().then(
          (out) => {
            ok(out);
            done();
          },
          (err: unknown) => {
            const e = err instanceof Error ? err : new Error(String(err));
            this.status({ fill: 'red', shape: 'ring', text: errorStatus(e) }, true);
            done(e);
          },
        ),
      )
      .catch((err: unknown) => this.node.error(err, msg));
  }

  /** Resolves once every queued message has been handled. */
  idle(): Promise<void> {
    return this.tail;
  }
}
