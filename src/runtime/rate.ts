/**
 * Messages per second over a sliding window, for node status lines ("happy 0.92 | 4.8 msg/s").
 */
export class RateMeter {
  private readonly stamps: number[] = [];

  /**
   * @param windowMs the window the rate is measured over
   * @param now the clock (injectable for tests)
   */
  constructor(
    readonly windowMs = 5000,
    private readonly now: () => number = Date.now,
  ) {
    if (!(windowMs > 0)) throw new RangeError(`rate window must be > 0 ms, got ${windowMs}`);
  }

  /** Count one message. */
  tick(): void {
    const t = this.now();
    this.stamps.push(t);
    this.trim(t);
  }

  /**
   * Messages per second in the window. Over the span from the oldest counted message to now
   * (at least 1 s), so the first messages after a start do not read as a huge rate.
   */
  rate(): number {
    const t = this.now();
    this.trim(t);
    if (this.stamps.length === 0) return 0;
    const span = Math.max(1000, t - this.stamps[0]);
    return (this.stamps.length * 1000) / span;
  }

  private trim(t: number): void {
    let drop = 0;
    while (drop < this.stamps.length && t - this.stamps[drop] > this.windowMs) drop++;
    if (drop) this.stamps.splice(0, drop);
  }
}
