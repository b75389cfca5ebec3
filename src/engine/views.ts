/**
 * Test-time views: each face is classified as several slightly different images in one batch
 * and the scores are averaged. Expressions are close to symmetric and the model is trained on
 * flipped and shifted faces, so the views disagree mostly where the model is unsure; the average
 * is right more often (FER2013 PublicTest, docs/model-card.md), for one inference per view.
 *
 *   1 view    the face as it is
 *   2 views   the face and its left-right mirror image
 *   10 views  the face and its mirror image, each also shifted by one pixel left, right, up and
 *             down (edges replicated)
 */
import { FACE_SIZE } from '../model/labels';
import type { FaceClassifier, Scores } from './types';

export const VIEW_COUNTS = [1, 2, 10] as const;
export type ViewCount = (typeof VIEW_COUNTS)[number];

/** The one-pixel shifts (dx, dy) of the 10-view set, after the unshifted view. */
const SHIFTS: ReadonlyArray<readonly [number, number]> = [[1, 0], [-1, 0], [0, 1], [0, -1]];

function checkFace(face: Uint8Array): void {
  if (face.length !== FACE_SIZE * FACE_SIZE) throw new RangeError(`a face has ${FACE_SIZE * FACE_SIZE} pixels, got ${face.length}`);
}

/** The left-right mirror image of a 48x48 grayscale face (a new array). */
export function mirrorFace(face: Uint8Array): Uint8Array {
  checkFace(face);
  const n = FACE_SIZE;
  const out = new Uint8Array(n * n);
  for (let y = 0; y < n; y++) {
    const row = y * n;
    for (let x = 0; x < n; x++) out[row + x] = face[row + n - 1 - x];
  }
  return out;
}

/** The face moved by (dx, dy) pixels (right and down are positive); the edge rows and columns are repeated into the gap. */
export function shiftFace(face: Uint8Array, dx: number, dy: number): Uint8Array {
  checkFace(face);
  const n = FACE_SIZE;
  const clamp = (v: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  const out = new Uint8Array(n * n);
  for (let y = 0; y < n; y++) {
    const src = clamp(y - dy) * n;
    for (let x = 0; x < n; x++) out[y * n + x] = face[src + clamp(x - dx)];
  }
  return out;
}

/** The `count` views of one face, the face itself first. */
export function viewsOf(face: Uint8Array, count: ViewCount): Uint8Array[] {
  checkFace(face);
  if (count === 1) return [face];
  const mirrored = mirrorFace(face);
  if (count === 2) return [face, mirrored];
  const out = [face, mirrored];
  for (const [dx, dy] of SHIFTS) out.push(shiftFace(face, dx, dy), shiftFace(mirrored, dx, dy));
  return out;
}

/** The faces' views for one classify call: all views of face 0, then of face 1, ... (count * n images). */
export function expandViews(faces: Uint8Array[], count: ViewCount): Uint8Array[] {
  return count === 1 ? faces : faces.flatMap((f) => viewsOf(f, count));
}

/** The scores of expandViews(faces, count) back to one averaged score vector per face. */
export function averageViews(all: Scores[], count: ViewCount): Scores[] {
  if (count === 1) return all;
  if (all.length % count !== 0) throw new RangeError(`${all.length} scores are not whole groups of ${count} views`);
  const out: Scores[] = [];
  for (let i = 0; i < all.length; i += count) {
    const s = new Float32Array(all[i].length);
    for (let v = 0; v < count; v++) {
      const a = all[i + v];
      for (let k = 0; k < s.length; k++) s[k] += a[k];
    }
    for (let k = 0; k < s.length; k++) s[k] /= count;
    out.push(s);
  }
  return out;
}

/** Scores of each face averaged over its `count` views (one classify call for all of them). */
export async function classifyViews(classifier: FaceClassifier, faces: Uint8Array[], count: ViewCount): Promise<Scores[]> {
  if (faces.length === 0) return [];
  return averageViews(await classifier.classify(expandViews(faces, count)), count);
}

/** A view count from a setting ("1", 2, ...); a RangeError names the allowed values. */
export function parseViews(value: unknown, what = 'views'): ViewCount {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (!VIEW_COUNTS.includes(n as ViewCount)) {
    throw new RangeError(`${what} must be one of ${VIEW_COUNTS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return n as ViewCount;
}
