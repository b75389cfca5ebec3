/**
 * Per-face tracks: which face of this frame is which face of the previous frames, one
 * independent set of tracks per key (a camera, a device id, a msg.topic), so smoothing and
 * emit-on-change can follow each person instead of whichever face is the largest.
 *
 * Each frame's faces (box, and BlazeFace's six keypoints when known) are matched to the key's
 * live tracks greedily, cheapest pair first, on
 *     cost = (1 - IoU(predicted box, face box)) + mean keypoint distance / face size
 * where a track's predicted box and keypoints are its last ones moved on by its velocity (a
 * running average of its centre's motion per frame) times the frames since it was last seen;
 * without keypoints on either side the distance of the box centres stands in. A pair is only
 * considered when the boxes overlap (IoU >= minIou), the distance is within maxLandmarkDistance
 * face sizes and the two sizes differ by less than maxSizeRatio. Ties go
 * to the older track (lower id), then the earlier face: the same frames give the same ids.
 *
 * A face that matches no track starts a new one with the key's next id (1, 2, 3, ... per key,
 * never reused while the key is remembered). A track not matched in a frame is kept for
 * maxMissed frames (a face occluded or missed by the detector keeps its id when it is found
 * again within them) and then ends. Memory is bounded: at most maxTracks live tracks per key
 * (a new face pushes out the track unseen the longest; when every track was seen in this very
 * frame the face gets no track) and at most maxKeys keys (the least recently seen is forgotten).
 */
import { iou, type Box, type FaceLandmarks, type Point } from '../vision/detector';
import { RANGES, checkSetting } from '../settings/spec';
import { LruMap } from '../util/lru';

export interface TrackerOptions {
  /** Frames a track survives without a matching face (0: it ends at the first frame it is not seen). */
  maxMissed: number;
  /** Most live tracks per key. */
  maxTracks: number;
  /** Most keys remembered; the least recently seen is forgotten beyond it. */
  maxKeys: number;
  /** Only boxes overlapping at least this much (IoU, 0..1) may match. */
  minIou: number;
  /** Only faces whose keypoints (or centres) are within this many face sizes of the prediction may match. */
  maxLandmarkDistance: number;
  /** The larger of the two face sizes over the smaller must be below this to match (> 1). */
  maxSizeRatio: number;
}

export const DEFAULT_TRACKER: Readonly<TrackerOptions> = {
  maxMissed: 5,
  maxTracks: 32,
  maxKeys: 1000,
  minIou: 0.1,
  maxLandmarkDistance: 0.5,
  maxSizeRatio: 1.6,
};

/** What the tracker needs of a face. */
export interface TrackedFace {
  box: Box | null;
  landmarks?: FaceLandmarks | null;
}

export interface TrackUpdate {
  /** The track id of each face, in the order given; null for a face without a box or beyond maxTracks. */
  tracks: Array<number | null>;
  /** Ids of this key's tracks that ended in this update (missed more than maxMissed frames, or pushed out). */
  ended: number[];
}

interface Track {
  id: number;
  box: Box;
  landmarks: FaceLandmarks | null;
  /** Centre motion per frame, px. */
  vx: number;
  vy: number;
  /** Frames since it was last matched (0: matched in the latest frame). */
  missed: number;
  /** Frames it was matched in. */
  hits: number;
}

interface KeyState {
  nextId: number;
  tracks: Track[];
}

export function trackerOptions(partial: Partial<TrackerOptions> = {}): TrackerOptions {
  const o: TrackerOptions = { ...DEFAULT_TRACKER };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined && v !== null) (o as unknown as Record<string, unknown>)[k] = v;
  checkSetting('trackMaxMissed', RANGES.trackMaxMissed, o.maxMissed);
  for (const k of ['maxTracks', 'maxKeys'] as const) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new RangeError(`tracker ${k} must be an integer >= 1, got ${String(o[k])}`);
  }
  if (!(typeof o.minIou === 'number' && o.minIou >= 0 && o.minIou <= 1)) throw new RangeError(`tracker minIou must be in 0..1, got ${String(o.minIou)}`);
  if (!(typeof o.maxLandmarkDistance === 'number' && o.maxLandmarkDistance >= 0 && Number.isFinite(o.maxLandmarkDistance))) {
    throw new RangeError(`tracker maxLandmarkDistance must be a number >= 0, got ${String(o.maxLandmarkDistance)}`);
  }
  if (!(typeof o.maxSizeRatio === 'number' && o.maxSizeRatio > 1)) throw new RangeError(`tracker maxSizeRatio must be a number > 1, got ${String(o.maxSizeRatio)}`);
  return o;
}

const side = (b: Box): number => Math.sqrt(Math.max(0, b.w) * Math.max(0, b.h));

function validBox(b: Box | null | undefined): b is Box {
  return !!b && [b.x, b.y, b.w, b.h].every(Number.isFinite) && b.w > 0 && b.h > 0;
}

function validLandmarks(lm: FaceLandmarks | null | undefined): lm is FaceLandmarks {
  if (!lm || typeof lm !== 'object') return false;
  const pts = Object.values(lm) as Point[];
  return pts.length > 0 && pts.every((p) => p && Number.isFinite(p.x) && Number.isFinite(p.y));
}

/** Mean distance of the keypoints both have (moved by dx, dy on a's side); null when they share none. */
function landmarkDistance(a: FaceLandmarks, dx: number, dy: number, b: FaceLandmarks): number | null {
  let sum = 0;
  let n = 0;
  for (const k of Object.keys(a) as Array<keyof FaceLandmarks>) {
    const p = a[k];
    const q = b[k];
    if (!q) continue;
    sum += Math.hypot(p.x + dx - q.x, p.y + dy - q.y);
    n++;
  }
  return n ? sum / n : null;
}

export class FaceTracker {
  readonly options: TrackerOptions;
  private readonly keys: LruMap<KeyState>;

  constructor(options: Partial<TrackerOptions> = {}) {
    this.options = trackerOptions(options);
    this.keys = new LruMap<KeyState>(this.options.maxKeys);
  }

  /** Match one frame's faces of `key` to its tracks; returns each face's track id and the tracks that ended. */
  update(key: string, faces: readonly TrackedFace[]): TrackUpdate {
    if (!Array.isArray(faces)) throw new TypeError('tracker faces must be an array of {box, landmarks}');
    const st = this.state(key);
    const { maxMissed, maxTracks, minIou, maxLandmarkDistance, maxSizeRatio } = this.options;
    const tracks: Array<number | null> = faces.map(() => null);

    // Candidate pairs within the gates, with their cost.
    const pairs: Array<{ t: number; f: number; cost: number }> = [];
    st.tracks.forEach((tr, ti) => {
      const k = tr.missed + 1;
      const dx = tr.vx * k;
      const dy = tr.vy * k;
      const pred = { x: tr.box.x + dx, y: tr.box.y + dy, w: tr.box.w, h: tr.box.h };
      const ps = side(pred);
      faces.forEach((f, fi) => {
        if (!validBox(f.box)) return;
        const fs = side(f.box);
        if (Math.max(ps, fs) / Math.min(ps, fs) >= maxSizeRatio) return;
        const o = iou(pred, f.box);
        const lm = validLandmarks(f.landmarks) ? f.landmarks : null;
        let dist = tr.landmarks && lm ? landmarkDistance(tr.landmarks, dx, dy, lm) : null;
        if (dist === null) {
          dist = Math.hypot(pred.x + pred.w / 2 - (f.box.x + f.box.w / 2), pred.y + pred.h / 2 - (f.box.y + f.box.h / 2));
        }
        const d = dist / ((ps + fs) / 2);
        if (o < minIou || d > maxLandmarkDistance) return;
        pairs.push({ t: ti, f: fi, cost: 1 - o + d });
      });
    });
    pairs.sort((a, b) => a.cost - b.cost || st.tracks[a.t].id - st.tracks[b.t].id || a.f - b.f);

    const matched = new Set<number>();
    for (const p of pairs) {
      if (matched.has(p.t) || tracks[p.f] !== null) continue;
      matched.add(p.t);
      const tr = st.tracks[p.t];
      const f = faces[p.f];
      const box = f.box as Box;
      const k = tr.missed + 1;
      const mx = (box.x + box.w / 2 - (tr.box.x + tr.box.w / 2)) / k;
      const my = (box.y + box.h / 2 - (tr.box.y + tr.box.h / 2)) / k;
      if (tr.hits === 1) {
        tr.vx = mx;
        tr.vy = my;
      } else {
        tr.vx = 0.5 * tr.vx + 0.5 * mx;
        tr.vy = 0.5 * tr.vy + 0.5 * my;
      }
      tr.box = { x: box.x, y: box.y, w: box.w, h: box.h };
      tr.landmarks = validLandmarks(f.landmarks) ? copyLandmarks(f.landmarks) : null;
      tr.missed = 0;
      tr.hits++;
      tracks[p.f] = tr.id;
    }

    // Unmatched tracks age; past maxMissed they end.
    const ended: number[] = [];
    const kept: Track[] = [];
    st.tracks.forEach((tr, ti) => {
      if (!matched.has(ti)) tr.missed++;
      if (tr.missed > maxMissed) ended.push(tr.id);
      else kept.push(tr);
    });
    st.tracks = kept;

    // Unmatched faces start tracks, pushing out the track unseen the longest when the key is full.
    faces.forEach((f, fi) => {
      if (tracks[fi] !== null || !validBox(f.box)) return;
      if (st.tracks.length >= maxTracks) {
        let victim = -1;
        st.tracks.forEach((tr, ti) => {
          if (tr.missed === 0) return; // seen in this frame
          if (victim < 0 || tr.missed > st.tracks[victim].missed || (tr.missed === st.tracks[victim].missed && tr.id < st.tracks[victim].id)) victim = ti;
        });
        if (victim < 0) return; // every track is a face of this frame: this one stays untracked
        ended.push(st.tracks[victim].id);
        st.tracks.splice(victim, 1);
      }
      const box = f.box as Box;
      const tr: Track = {
        id: st.nextId++,
        box: { x: box.x, y: box.y, w: box.w, h: box.h },
        landmarks: validLandmarks(f.landmarks) ? copyLandmarks(f.landmarks) : null,
        vx: 0,
        vy: 0,
        missed: 0,
        hits: 1,
      };
      st.tracks.push(tr);
      tracks[fi] = tr.id;
    });
    return { tracks, ended };
  }

  /** Live track ids of a key (ascending). */
  trackIds(key: string): number[] {
    const st = this.keys.peek(key);
    return st ? st.tracks.map((t) => t.id).sort((a, b) => a - b) : [];
  }

  /** Forget one key, or all keys. */
  reset(key?: string): void {
    this.keys.reset(key);
  }

  /** Keys remembered. */
  get size(): number {
    return this.keys.size;
  }

  private state(key: string): KeyState {
    return this.keys.touch(key, () => ({ nextId: 1, tracks: [] }));
  }
}

function copyLandmarks(lm: FaceLandmarks): FaceLandmarks {
  const out = {} as FaceLandmarks;
  for (const [k, p] of Object.entries(lm) as Array<[keyof FaceLandmarks, Point]>) out[k] = { x: p.x, y: p.y };
  return out;
}
