/**
 * Temporal smoothing of per-frame emotion scores, one independent stream per key (a camera,
 * a device id, a msg.topic). A single frame's prediction flickers; a dashboard or an
 * automation wants the emotion that holds over a few frames.
 *
 *  - 'none':     each frame stands alone.
 *  - 'ema':      exponential moving average of the score vectors, s = a*x + (1-a)*s.
 *  - 'majority': the most frequent top label over the last `window` frames (ties: the most
 *                recent vote); its confidence is that label's mean score over those frames.
 *
 * With every method, a (smoothed) result whose confidence is below `minConfidence` does not
 * change the stable emotion (in 'majority', such frames do not vote at all). `changed` says
 * that the stable emotion differs from the previous one of the key: the emit-on-change mode.
 */
import { LABELS, NUM_CLASSES, type Label } from '../model/labels';
import { RANGES, checkSetting } from '../settings/spec';
import { LruMap } from '../util/lru';

export type SmoothingMethod = 'none' | 'ema' | 'majority';
export const SMOOTHING_METHODS: readonly SmoothingMethod[] = ['none', 'ema', 'majority'];

export interface SmoothingOptions {
  method: SmoothingMethod;
  /** EMA weight of the newest frame, 0 < alpha <= 1. */
  alpha: number;
  /** Majority window, in frames (>= 1). */
  window: number;
  /** Results below this confidence (0..1) never change the stable emotion. */
  minConfidence: number;
  /** Most keys remembered; the least recently seen is forgotten beyond it. */
  maxKeys: number;
}

export const DEFAULT_SMOOTHING: Readonly<SmoothingOptions> = {
  method: 'none',
  alpha: 0.5,
  window: 5,
  minConfidence: 0,
  maxKeys: 1000,
};

export interface SmoothedEmotion {
  /** The stable emotion, or null until one reached minConfidence. */
  emotion: Label | null;
  /** The smoothed confidence of `emotion` (0 when null). */
  confidence: number;
  /** The smoothed score vector, in LABELS order. */
  scores: Float32Array;
  /** The stable emotion differs from the previous one of this key. */
  changed: boolean;
  /** Frames seen for this key. */
  frames: number;
}

interface KeyState {
  stable: Label | null;
  frames: number;
  ema?: Float32Array;
  /** Majority window: the voting frames' score vectors and top labels, oldest first. */
  votes: Array<{ label: number; scores: Float32Array }>;
}

export function smoothingOptions(partial: Partial<SmoothingOptions> = {}): SmoothingOptions {
  const o: SmoothingOptions = { ...DEFAULT_SMOOTHING };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined && v !== null) (o as unknown as Record<string, unknown>)[k] = v;
  if (!SMOOTHING_METHODS.includes(o.method)) throw new RangeError(`smoothing method must be one of ${SMOOTHING_METHODS.join(', ')}, got '${o.method}'`);
  for (const k of ['alpha', 'window', 'minConfidence'] as const) {
    if (typeof o[k] !== 'number') throw new RangeError(`smoothing ${k} must be a number, got ${String(o[k])}`);
  }
  checkSetting('smoothing alpha', RANGES.alpha, o.alpha);
  checkSetting('smoothing window', RANGES.window, o.window);
  checkSetting('minConfidence', RANGES.minConfidence, o.minConfidence);
  if (!(Number.isInteger(o.maxKeys) && o.maxKeys >= 1)) throw new RangeError(`maxKeys must be an integer >= 1, got ${o.maxKeys}`);
  return o;
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export class EmotionSmoother {
  readonly options: SmoothingOptions;
  private readonly keys: LruMap<KeyState>;

  constructor(options: Partial<SmoothingOptions> = {}) {
    this.options = smoothingOptions(options);
    this.keys = new LruMap<KeyState>(this.options.maxKeys);
  }

  /** Feed one frame's scores (LABELS order) for `key`; returns the stable emotion after it. */
  update(key: string, scores: ArrayLike<number>): SmoothedEmotion {
    if (scores.length !== NUM_CLASSES) throw new RangeError(`expected ${NUM_CLASSES} scores, got ${scores.length}`);
    const x = Float32Array.from(scores);
    for (let i = 0; i < NUM_CLASSES; i++) {
      if (!Number.isFinite(x[i])) throw new RangeError(`score ${i} is not a finite number`);
    }
    const st = this.state(key);
    st.frames++;
    const { method, alpha, window, minConfidence } = this.options;
    let smoothed: Float32Array;
    let candidate: number;
    let confidence: number;
    if (method === 'ema') {
      if (!st.ema) st.ema = x;
      else for (let i = 0; i < NUM_CLASSES; i++) st.ema[i] = alpha * x[i] + (1 - alpha) * st.ema[i];
      smoothed = Float32Array.from(st.ema);
      candidate = argmax(smoothed);
      confidence = smoothed[candidate];
    } else if (method === 'majority') {
      const top = argmax(x);
      if (x[top] >= minConfidence) {
        st.votes.push({ label: top, scores: x });
        if (st.votes.length > window) st.votes.shift();
      }
      smoothed = new Float32Array(NUM_CLASSES);
      if (st.votes.length === 0) {
        smoothed.set(x);
        candidate = top;
        confidence = -1; // nothing voted yet: the stable emotion cannot change
      } else {
        const count = new Array<number>(NUM_CLASSES).fill(0);
        const last = new Array<number>(NUM_CLASSES).fill(-1);
        st.votes.forEach((v, i) => {
          count[v.label]++;
          last[v.label] = i;
          for (let c = 0; c < NUM_CLASSES; c++) smoothed[c] += v.scores[c] / st.votes.length;
        });
        candidate = 0;
        for (let c = 1; c < NUM_CLASSES; c++) {
          if (count[c] > count[candidate] || (count[c] === count[candidate] && last[c] > last[candidate])) candidate = c;
        }
        let sum = 0;
        for (const v of st.votes) if (v.label === candidate) sum += v.scores[candidate];
        confidence = sum / count[candidate];
      }
    } else {
      smoothed = x;
      candidate = argmax(x);
      confidence = x[candidate];
    }
    const previous = st.stable;
    if (confidence >= minConfidence) st.stable = LABELS[candidate];
    const stableIdx = st.stable === null ? -1 : LABELS.indexOf(st.stable);
    return {
      emotion: st.stable,
      confidence: stableIdx < 0 ? 0 : stableIdx === candidate && confidence >= 0 ? confidence : smoothed[stableIdx],
      scores: smoothed,
      changed: st.stable !== previous,
      frames: st.frames,
    };
  }

  /** Forget one key, or all keys. */
  reset(key?: string): void {
    this.keys.reset(key);
  }

  get size(): number {
    return this.keys.size;
  }

  private state(key: string): KeyState {
    return this.keys.touch(key, () => ({ stable: null, frames: 0, votes: [] }));
  }
}
