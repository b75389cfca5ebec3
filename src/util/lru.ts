/**
 * A Map of per-key state that holds at most `max` keys: `touch(key, create)` returns the key's
 * state (created when new) and marks it the most recently seen; beyond `max` keys the least
 * recently seen is forgotten. The smoothing and the tracker keep their per-`msg.topic` state in it.
 */
export class LruMap<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {
    if (!(Number.isInteger(max) && max >= 1)) throw new RangeError(`LruMap max must be an integer >= 1, got ${max}`);
  }

  /** The key's state, made by `create()` when the key is new; either way the key is now the most recently seen. */
  touch(key: string, create: () => V): V {
    let v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key); // re-insert: Map order is then least recently seen first
    } else {
      v = create();
      while (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string);
    }
    this.map.set(key, v);
    return v;
  }

  /** The key's state without marking it seen. */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  /** Forget one key, or all keys. */
  reset(key?: string): void {
    if (key === undefined) this.map.clear();
    else this.map.delete(key);
  }

  /** Keys remembered. */
  get size(): number {
    return this.map.size;
  }
}
