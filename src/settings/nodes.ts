/**
 * Every numeric and enumerated setting of the five nodes, from the one definition of each range
 * (./spec.ts RANGES) and each list (the module that owns it). The node runtimes check their
 * configuration against this table when they start (checkNodeSettings) and the editor validates
 * against the same table (./editor.ts serves it), so both accept and refuse the same values.
 */
import { PROTOCOL_VERSIONS } from '../fleet/connection';
import { COMMANDS } from '../fleet/protocol';
import { BUNDLED_MODELS } from '../engine/open';
import { VIEW_COUNTS } from '../engine/views';
import { FRAME_MODES, FRAME_OUTPUTS } from '../runtime/frame-node';
import { QUEUE_DROPS } from '../runtime/serial-input';
import { BACKENDS } from '../runtime/models';
import { CHANGE_SCOPES } from '../runtime/emotion-node';
import { SMOOTHING_METHODS } from '../runtime/smoothing';
import { DETECTOR_RUNTIMES } from '../vision/detector';
import { PRIVACY_MODES } from '../vision/privacy';
import { RANGES, optional, settingProblem, type EnumSpec, type SettingSpec } from './spec';

export const NODE_TYPES = ['tinyfer-frame', 'tinyfer-emotion', 'tinyfer-fleet', 'tinyfer-devices', 'tinyfer-command'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

const oneOf = (values: readonly (string | number)[]): EnumSpec => ({ kind: 'enum', values, optional: true });

/** Settings shared by tinyfer-frame and tinyfer-emotion (the frame pipeline, the bounded input queue). */
const FRAME_SHARED = {
  mode: oneOf(FRAME_MODES),
  scoreThreshold: optional(RANGES.scoreThreshold),
  maxFaces: optional(RANGES.maxFaces),
  queueSize: optional(RANGES.queueSize),
  queueDrop: oneOf(QUEUE_DROPS),
};

export const NODE_SETTINGS: Readonly<Record<NodeType, Readonly<Record<string, SettingSpec>>>> = {
  'tinyfer-frame': {
    ...FRAME_SHARED,
    output: oneOf(FRAME_OUTPUTS),
    inputSize: optional(RANGES.inputSize),
    fallbackSize: optional(RANGES.fallbackSize),
    detectorRuntime: oneOf(DETECTOR_RUNTIMES),
    margin: optional(RANGES.margin),
    wholeFaceMaxSide: optional(RANGES.wholeFaceMaxSide),
    maxBytesMb: optional(RANGES.maxBytesMb),
    maxMegapixels: optional(RANGES.maxMegapixels),
    quality: optional(RANGES.quality),
    privacy: oneOf(PRIVACY_MODES),
    privacyBlocks: optional(RANGES.privacyBlocks),
    privacyMargin: optional(RANGES.privacyMargin),
  },
  'tinyfer-emotion': {
    ...FRAME_SHARED,
    backend: oneOf(BACKENDS),
    model: { kind: 'model', bundled: BUNDLED_MODELS },
    // empty: a flow saved before the setting existed (its `mirror` decides; see emotion-node.ts)
    views: oneOf(VIEW_COUNTS),
    smoothing: oneOf(SMOOTHING_METHODS),
    alpha: optional(RANGES.alpha),
    window: optional(RANGES.window),
    minConfidence: optional(RANGES.minConfidence),
    changeScope: oneOf(CHANGE_SCOPES),
    trackMaxMissed: optional(RANGES.trackMaxMissed),
  },
  'tinyfer-fleet': {
    protocolVersion: { kind: 'enum', values: PROTOCOL_VERSIONS },
    commandTimeout: optional(RANGES.commandTimeout),
    maxFrameRate: optional(RANGES.maxFrameRate),
    maxPendingFrameMb: optional(RANGES.maxPendingFrameMb),
    haImageInterval: optional(RANGES.haImageInterval),
  },
  'tinyfer-devices': {},
  'tinyfer-command': {
    command: oneOf(COMMANDS),
    timeout: optional(RANGES.commandTimeout),
  },
};

/**
 * The problems of a node's configuration as the editor shows them ("quality must be an integer
 * 1..100, got 500"), one per bad setting; empty when all are fine.
 */
export function nodeSettingProblems(type: NodeType, config: Record<string, unknown>): string[] {
  const specs = NODE_SETTINGS[type];
  if (!specs) throw new RangeError(`unknown node type '${String(type)}' (one of ${NODE_TYPES.join(', ')})`);
  const out: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const p = settingProblem(spec, config[name]);
    if (p) out.push(`${name} ${p}`);
  }
  return out;
}

/** Throw a RangeError listing every bad setting of a node's configuration (what the editor marks invalid). */
export function checkNodeSettings(type: NodeType, config: Record<string, unknown>): void {
  const problems = nodeSettingProblems(type, config);
  if (problems.length) throw new RangeError(problems.join('; '));
}
