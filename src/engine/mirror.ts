/**
 * Mirror averaging (test-time flip): a face and its left-right mirror image are classified in one
 * batch and their scores averaged. Expressions are close to symmetric and the model is trained
 * on flipped faces too, so the two views disagree mostly where the model is unsure; the average
 * is right more often (FER2013 PublicTest, docs/model-card.md) for twice the classify time.
 */
import { FACE_SIZE } from '../model/labels';
import type { FaceClassifier, Scores } from './types';

/** The left-right mirror image of a 48x48 grayscale face (a new array). */
export function mirrorFace(face: Uint8Array): Uint8Array {
  const n = FACE_SIZE;
  if (face.length !== n * n) throw new RangeError(`a face has ${n * n} pixels, got ${face.length}`);
  const out = new Uint8Array(n * n);
  for (let y = 0; y < n; y++) {
    const row = y * n;
    for (let x = 0; x < n; x++) out[row + x] = face[row + n - 1 - x];
  }
  return out;
}

/** The faces followed by their mirror images: what one classify call takes for mirror averaging. */
export function withMirrors(faces: Uint8Array[]): Uint8Array[] {
  return [...faces, ...faces.map(mirrorFace)];
}

/** The scores of withMirrors(faces) (2n of them) to n averaged scores: face i with its mirror, n + i. */
export function averageMirrored(all: Scores[]): Scores[] {
  const n = all.length / 2;
  return all.slice(0, n).map((a, i) => {
    const b = all[n + i];
    const s = new Float32Array(a.length);
    for (let k = 0; k < a.length; k++) s[k] = (a[k] + b[k]) / 2;
    return s;
  });
}

/** Scores of each face averaged with those of its mirror image (one classify call for both). */
export async function classifyMirrored(classifier: FaceClassifier, faces: Uint8Array[]): Promise<Scores[]> {
  if (faces.length === 0) return [];
  return averageMirrored(await classifier.classify(withMirrors(faces)));
}
