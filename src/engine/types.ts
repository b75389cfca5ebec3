import type { Label } from '../model/labels';

/** Scores for one face: a probability per label, in LABELS order. */
export type Scores = Float32Array;

/** Anything that turns 48x48 grayscale faces into emotion scores. */
export interface FaceClassifier {
  /** 'binary' (the C core compiled to wasm) or 'tfjs' (the tfjs reference graph). */
  readonly backend: 'binary' | 'tfjs';
  /** Human readable: which runtime actually runs (e.g. 'wasm', 'tensorflow', 'tfjs-wasm'). */
  readonly runtime: string;
  readonly labels: readonly Label[];
  /** Each face: Uint8Array of 48*48 grayscale pixels, row-major. Returns one Scores per face. */
  classify(faces: Uint8Array[]): Promise<Scores[]>;
  dispose(): void;
}
