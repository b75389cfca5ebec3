/**
 * From classifier scores to the tinyfer-emotion node's output, and from a message's
 * msg.faces back to 48x48 faces: the node itself only wires these together.
 */
import type { Scores } from '../engine/types';
import { topLabel } from '../fleet/protocol';
import { FACE_PIXELS, LABELS, type Label } from '../model/labels';
import { VisionError } from '../vision/errors';
import type { Box, FaceLandmarks } from '../vision/detector';
import type { SmoothedEmotion } from './smoothing';

export type EmotionScores = Record<Label, number>;

/** The smoothed emotion of one face's track (present when smoothing, minConfidence or emit-on-change is in use). */
export interface TrackEmotion {
  /** The track's stable emotion, or null until one reached minConfidence. */
  emotion: Label | null;
  confidence: number;
  /** The track's stable emotion differs from its previous one (true on its first stable emotion). */
  changed: boolean;
  /** Frames this track has been seen in. */
  frames: number;
}

/** One face of the output: where it is, which track it belongs to and what it shows (this frame, unsmoothed). */
export interface FaceEmotion {
  box: Box | null;
  /** The face's track id within its stream key (see tracker.ts); null for a face without a box. */
  track: number | null;
  emotion: Label;
  confidence: number;
  scores: EmotionScores;
  /** The track's smoothed emotion, when the smoother is in use. */
  smoothed?: TrackEmotion;
}

/**
 * msg.payload of tinyfer-emotion. Top-level fields describe the largest face of this frame
 * (smoothed when smoothing is on, over the key's stream of largest faces, whichever track each
 * was); faces[i] describe every face, with its track and the track's own smoothed emotion.
 */
export interface EmotionPayload {
  emotion: Label | null;
  confidence: number;
  scores: EmotionScores | null;
  faces: FaceEmotion[];
  /** The track of the largest face (null with no face). */
  track: number | null;
  /** 'binary' or 'tfjs'. */
  backend: string;
  /** What actually ran it (e.g. 'wasm', 'tensorflow'). */
  runtime: string;
  /** Wall time of the classifier call for all faces of the message, ms. */
  inferenceMs: number;
  /**
   * Present when smoothing is on: the smoothing key, whether the largest-face stream's stable
   * emotion just changed, and (changedTracks) the tracks whose own stable emotion just changed.
   */
  smoothing?: { method: string; key: string; changed: boolean; frames: number; changedTracks?: number[] };
}

/** A face as the classifier takes it, with its box when known. */
export interface FaceInput {
  box: Box | null;
  /** BlazeFace keypoints when the face came from the detector (they sharpen tracking). */
  landmarks?: FaceLandmarks;
  pixels: Uint8Array;
}

function isBox(b: unknown): b is Box {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  return ['x', 'y', 'w', 'h'].every((k) => typeof o[k] === 'number' && Number.isFinite(o[k] as number));
}

/**
 * Check msg.faces (as the tinyfer-frame node makes it, possibly after a JSON round trip) and
 * return the faces; throws VisionError 'E_FACES' naming the bad entry.
 */
export function facesFromMessage(v: unknown): FaceInput[] {
  if (!Array.isArray(v)) throw new VisionError('E_FACES', 'msg.faces must be an array of {box, pixels}');
  return v.map((f, i) => {
    if (typeof f !== 'object' || f === null) throw new VisionError('E_FACES', `msg.faces[${i}] is not an object`);
    const o = f as Record<string, unknown>;
    let px = o.pixels;
    if (px === undefined && o.obscured === true) {
      throw new VisionError(
        'E_FACES',
        `msg.faces[${i}] was hidden by a tinyfer-frame node's privacy output and has no pixels: classify before hiding (tinyfer-frame without privacy -> tinyfer-emotion -> tinyfer-frame with privacy)`,
      );
    }
    if (isJsonBytes(px)) {
      // A Buffer or Uint8Array that went through JSON: {type:'Buffer',data:[...]}, a plain array, or {"0":..,"1":..}.
      const arr = Array.isArray(px) ? px : (px as { type?: unknown }).type === 'Buffer' ? (px as { data?: unknown }).data : Object.values(px as object);
      if (!Array.isArray(arr) || !arr.every((n) => Number.isInteger(n) && n >= 0 && n <= 255)) {
        throw new VisionError('E_FACES', `msg.faces[${i}].pixels must hold integers 0..255`);
      }
      px = Uint8Array.from(arr as number[]);
    }
    if (!(px instanceof Uint8Array)) throw new VisionError('E_FACES', `msg.faces[${i}].pixels must be a Uint8Array of ${FACE_PIXELS} grayscale pixels`);
    if (px.length !== FACE_PIXELS) {
      throw new VisionError('E_FACES', `msg.faces[${i}].pixels has ${px.length} values, expected ${FACE_PIXELS} (48x48 grayscale)`);
    }
    const face: FaceInput = { box: isBox(o.box) ? { x: o.box.x, y: o.box.y, w: o.box.w, h: o.box.h } : null, pixels: px };
    const lm = landmarksOf(o.landmarks);
    if (lm) face.landmarks = lm;
    return face;
  });
}

/** The keypoints of a msg.faces entry when every one is a finite {x, y}; anything else is taken as none (like a bad box). */
function landmarksOf(v: unknown): FaceLandmarks | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  const out: Record<string, { x: number; y: number }> = {};
  for (const [k, p] of entries) {
    if (typeof p !== 'object' || p === null) return undefined;
    const q = p as Record<string, unknown>;
    if (typeof q.x !== 'number' || typeof q.y !== 'number' || !Number.isFinite(q.x) || !Number.isFinite(q.y)) return undefined;
    out[k] = { x: q.x, y: q.y };
  }
  return out as FaceLandmarks;
}

/** A byte array after a JSON round trip (not a typed array itself). */
function isJsonBytes(px: unknown): boolean {
  if (Array.isArray(px)) return true;
  if (typeof px !== 'object' || px === null || ArrayBuffer.isView(px)) return false;
  const o = px as Record<string, unknown>;
  if (o.type === 'Buffer') return true;
  // JSON.stringify(Uint8Array) gives {"0":v0,"1":v1,...}
  const keys = Object.keys(o);
  return keys.length === FACE_PIXELS && keys[0] === '0' && keys[FACE_PIXELS - 1] === String(FACE_PIXELS - 1);
}

/** Index of the largest face (by box area; faces without a box count as 0; the first on ties). */
export function largestFace(faces: readonly { box: Box | null }[]): number {
  let best = -1;
  let bestArea = -1;
  faces.forEach((f, i) => {
    const a = f.box ? f.box.w * f.box.h : 0;
    if (a > bestArea) {
      best = i;
      bestArea = a;
    }
  });
  return best;
}

/** Label, confidence and named scores of one face (and its track id, when tracked). */
export function faceEmotion(box: Box | null, scores: Scores, track: number | null = null): FaceEmotion {
  const t = topLabel(scores);
  return { box, track, emotion: t.label, confidence: t.confidence, scores: t.scores };
}

/** A track's smoothing result as faces[i].smoothed shows it. */
export function trackEmotion(r: SmoothedEmotion): TrackEmotion {
  return { emotion: r.emotion, confidence: Math.round(r.confidence * 1e4) / 1e4, changed: r.changed, frames: r.frames };
}

/** Named scores from a LABELS-ordered vector (rounded to 4 decimals, as the fleet protocol does). */
export function namedScores(v: ArrayLike<number>): EmotionScores {
  return topLabel(v).scores;
}

/** Build msg.payload. `smoothed` (for the largest face) replaces the top-level fields when given. */
export function emotionPayload(
  faces: FaceEmotion[],
  backend: string,
  runtime: string,
  inferenceMs: number,
  smoothed?: { result: SmoothedEmotion; method: string; key: string },
): EmotionPayload {
  const i = largestFace(faces);
  const top = i >= 0 ? faces[i] : null;
  const p: EmotionPayload = {
    emotion: top ? top.emotion : null,
    confidence: top ? top.confidence : 0,
    scores: top ? top.scores : null,
    faces,
    track: top ? top.track : null,
    backend,
    runtime,
    inferenceMs: Math.round(inferenceMs * 1000) / 1000,
  };
  if (smoothed) {
    const r = smoothed.result;
    p.emotion = r.emotion;
    p.confidence = Math.round(r.confidence * 1e4) / 1e4;
    p.scores = namedScores(r.scores);
    p.smoothing = { method: smoothed.method, key: smoothed.key, changed: r.changed, frames: r.frames };
  }
  return p;
}

export { LABELS };
