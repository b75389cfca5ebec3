/**
 * The one definition of every numeric and enumerated node setting: its range (here) and one
 * check (settingProblem) that both the runtime and the Node-RED editor run. The runtime calls
 * it when a node starts (and the library's own option checks use the same ranges); the editor
 * gets the same specs and the same function's source from src/settings/editor.ts, so a value
 * the editor accepts is one the runtime accepts and the reason shown is the same text.
 *
 * settingProblem is self-contained on purpose (no imports, no helpers, nothing from module
 * scope): its compiled source is what the editor runs.
 */

/** A number: an empty value means the node's default when `optional`. */
export interface NumberSpec {
  readonly kind: 'number';
  readonly min?: number;
  readonly max?: number;
  /** min itself is not allowed (e.g. alpha in (0, 1]). */
  readonly minExclusive?: boolean;
  readonly integer?: boolean;
  /** The value must be a multiple of this (implies integer). */
  readonly multipleOf?: number;
  /** 0 is also allowed (e.g. "no fallback size"). */
  readonly orZero?: boolean;
  /** Empty ('' / undefined / null) is allowed and means the default. */
  readonly optional?: boolean;
}

/** One of a fixed list; numbers are compared as numbers ('10' is 10). */
export interface EnumSpec {
  readonly kind: 'enum';
  readonly values: readonly (string | number)[];
  readonly optional?: boolean;
}

/**
 * A model setting: empty (the bundled default), a bundled model's name (optionally .tfer), or a
 * custom path: one with a folder separator or a .tfer / .json ending, so a mistyped model name
 * is not silently taken as a file in the working directory.
 */
export interface ModelSpec {
  readonly kind: 'model';
  readonly bundled: readonly string[];
}

export type SettingSpec = NumberSpec | EnumSpec | ModelSpec;

/**
 * What is wrong with `value` for `spec`, as the end of a sentence that starts with the setting's
 * name ("must be in 0..1, got 2"); null when it is fine.
 */
export function settingProblem(spec: SettingSpec, value: unknown): string | null {
  // '' is empty for every kind; blanks too for numbers and paths (a select never holds blanks)
  const empty = value === undefined || value === null || value === '' || (spec.kind !== 'enum' && typeof value === 'string' && value.trim() === '');
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  if (spec.kind === 'model') {
    if (empty) return null;
    if (typeof value !== 'string') return 'must be a bundled model name or a path, got ' + shown;
    const v = value.trim();
    const name = /^([\w-]+?)(\.tfer)?$/.exec(v);
    if (name && spec.bundled.indexOf(name[1]) >= 0) return null;
    if (/[\\/]/.test(v) || /\.(tfer|json)$/i.test(v)) return null;
    return 'must be a bundled model (' + spec.bundled.join(', ') + ') or a path to a .tfer blob or a tfjs model folder, got ' + shown;
  }
  if (empty) return spec.optional ? null : 'is required';
  if (spec.kind === 'enum') {
    for (let i = 0; i < spec.values.length; i++) {
      const allowed = spec.values[i];
      if (typeof allowed === 'number' ? Number(value) === allowed && String(value).trim() !== '' : value === allowed) return null;
    }
    return 'must be one of ' + spec.values.join(', ') + ', got ' + shown;
  }
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n)) return 'must be a number, got ' + shown;
  if (spec.orZero && n === 0) return null;
  const lo = spec.min;
  const hi = spec.max;
  let want: string;
  if (spec.multipleOf) want = 'a multiple of ' + spec.multipleOf + ' between ' + lo + ' and ' + hi;
  else if (lo !== undefined && hi !== undefined) want = (spec.integer ? 'an integer ' : 'in ') + (spec.minExclusive ? '(' + lo + ', ' + hi + ']' : lo + '..' + hi);
  else if (lo !== undefined && spec.minExclusive) want = lo === 0 ? (spec.integer ? 'a positive integer' : 'a positive number') : '> ' + lo;
  else if (lo !== undefined) want = (spec.integer ? 'an integer ' : '') + '>= ' + lo;
  else if (hi !== undefined) want = (spec.integer ? 'an integer ' : '') + '<= ' + hi;
  else want = spec.integer ? 'an integer' : 'a number';
  if (spec.orZero) want = '0 or ' + want;
  const bad =
    ((spec.integer || spec.multipleOf) && !Number.isInteger(n)) ||
    (spec.multipleOf && n % spec.multipleOf !== 0) ||
    (lo !== undefined && (spec.minExclusive ? n <= lo : n < lo)) ||
    (hi !== undefined && n > hi);
  return bad ? 'must be ' + want + ', got ' + shown : null;
}

/**
 * Check one setting at run time and give its value: a number for a NumberSpec (undefined when
 * empty: the default), the allowed value itself for an EnumSpec (as a number when the list has
 * numbers), the trimmed string for a ModelSpec. Throws a RangeError that starts with `name`.
 */
export function settingValue(name: string, spec: NumberSpec, value: unknown): number | undefined;
export function settingValue(name: string, spec: EnumSpec, value: unknown): string | number | undefined;
export function settingValue(name: string, spec: ModelSpec, value: unknown): string | undefined;
export function settingValue(name: string, spec: SettingSpec, value: unknown): string | number | undefined {
  const problem = settingProblem(spec, value);
  if (problem) throw new RangeError(`${name} ${problem}`);
  if (value === undefined || value === null || value === '' || (spec.kind !== 'enum' && typeof value === 'string' && value.trim() === '')) return undefined;
  if (spec.kind === 'number') return typeof value === 'number' ? value : Number(String(value).trim());
  if (spec.kind === 'enum') return spec.values.find((v) => (typeof v === 'number' ? Number(value) === v : value === v));
  return String(value).trim();
}

/** Throw a RangeError naming `name` when `value` is outside `spec` (for options already parsed to numbers). */
export function checkSetting(name: string, spec: SettingSpec, value: unknown): void {
  const problem = settingProblem(spec, value);
  if (problem) throw new RangeError(`${name} ${problem}`);
}

/** The same spec, where an empty value means the default. */
export function optional<S extends NumberSpec | EnumSpec>(spec: S): S {
  return { ...spec, optional: true };
}

/** Positive numbers (size limits). */
const POSITIVE = { kind: 'number', min: 0, minExclusive: true } as const satisfies NumberSpec;

/**
 * The numeric ranges, by setting. The library's option checks (detector, frame pipeline,
 * smoothing, annotation, fleet) and the node settings in src/settings/editor.ts all use these.
 */
export const RANGES = {
  /** Detector input side, px. */
  inputSize: { kind: 'number', integer: true, multipleOf: 32, min: 64, max: 1024 },
  /** Second detector size when nothing was found (0: none). */
  fallbackSize: { kind: 'number', integer: true, multipleOf: 32, min: 64, max: 1024, orZero: true },
  scoreThreshold: { kind: 'number', min: 0, max: 1 },
  maxFaces: { kind: 'number', integer: true, min: 1 },
  /** Fraction of the face square added on every side. */
  margin: { kind: 'number', min: 0, max: 2 },
  /** px; 0: never take a small image as one face. */
  wholeFaceMaxSide: { kind: 'number', min: 0 },
  /** Input size limit, MB (editor) / bytes (library). */
  maxBytesMb: POSITIVE,
  /** Decoded size limit, megapixels (editor) / pixels (library). */
  maxMegapixels: POSITIVE,
  /** Any positive size limit of the library (bytes, pixels, px). */
  positive: POSITIVE,
  /** Privacy output: cells across a hidden face box (fewer: coarser). */
  privacyBlocks: { kind: 'number', integer: true, min: 2, max: 8 },
  /** Privacy output: fraction of the face box added around it before hiding (1.5x above). */
  privacyMargin: { kind: 'number', min: 0, max: 1 },
  /** JPEG quality of annotated frames. */
  quality: { kind: 'number', integer: true, min: 1, max: 100 },
  /** Frames a tinyfer-frame node holds waiting besides the one being processed (beyond: dropped, see runtime/serial-input.ts). */
  queueSize: { kind: 'number', integer: true, min: 1, max: 10000 },
  /** EMA weight of the newest frame. */
  alpha: { kind: 'number', min: 0, minExclusive: true, max: 1 },
  /** Majority window, frames. */
  window: { kind: 'number', integer: true, min: 1 },
  minConfidence: { kind: 'number', min: 0, max: 1 },
  /** Frames a face's track survives without the face being found (occlusion, a missed detection). */
  trackMaxMissed: { kind: 'number', integer: true, min: 0, max: 1000 },
  /** Seconds a device has to answer a command (fleet default and per command node). */
  commandTimeout: { kind: 'number', min: 0, minExclusive: true, max: 3600 },
  /** Frames a second accepted per device (fleet defence; 0: no limit). */
  maxFrameRate: { kind: 'number', min: 0, max: 10000 },
  /** MB of partial chunked frames held across all devices (fleet defence; at least one whole frame, 1 MB). */
  maxPendingFrameMb: { kind: 'number', min: 1, max: 4096 },
  /** Seconds between two images of one device on its Home Assistant image entity (0: no image entities). */
  haImageInterval: { kind: 'number', min: 1, max: 86400, orZero: true },
} as const satisfies Record<string, NumberSpec>;
