/**
 * The `tfjs` backend: runs the trained tfjs graph (binary model or float twin) on tfjs-node when
 * it loads, else on @tensorflow/tfjs with the wasm backend.
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as TF from '@tensorflow/tfjs';
import { loadTf } from './tf';
import { FACE_PIXELS, FACE_SIZE, LABELS } from '../model/labels';
import '../model/layers';
import type { FaceClassifier, Scores } from './types';

/** Resolve a tfjs model path: a directory holding model.json, or the model.json itself. */
export function modelJsonPath(p: string): string {
  const file = fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'model.json') : p;
  if (!fs.existsSync(file)) throw new Error(`tfjs model not found: ${file}`);
  return file;
}

/** Load a tfjs layers model from disk with any backend (no file:// handler needed). */
export async function loadLayersModelFromDisk(tf: typeof TF, p: string): Promise<TF.LayersModel> {
  const file = modelJsonPath(p);
  let json: { modelTopology: object; weightsManifest: { paths: string[]; weights: TF.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a tfjs model.json (${e instanceof Error ? e.message : e})`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) throw new Error(`${file}: not a tfjs layers model.json`);
  const specs: TF.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(path.dirname(file), p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
}

export class TfjsEngine implements FaceClassifier {
  readonly backend = 'tfjs' as const;
  readonly labels = LABELS;

  private constructor(
    private readonly tf: typeof TF,
    private readonly model: TF.LayersModel,
    readonly runtime: string,
  ) {}

  static async load(modelPath: string): Promise<TfjsEngine> {
    const { tf, runtime } = await loadTf();
    const model = await loadLayersModelFromDisk(tf, modelPath);
    const shape = model.inputs[0].shape;
    if (shape[1] !== FACE_SIZE || shape[2] !== FACE_SIZE || shape[3] !== 1) {
      model.dispose();
      throw new Error(`${modelPath}: expected a 48x48x1 input, the model takes ${JSON.stringify(shape)}`);
    }
    return new TfjsEngine(tf, model, runtime === 'tensorflow' ? 'tfjs-node' : `tfjs-${runtime}`);
  }

  async classify(faces: Uint8Array[]): Promise<Scores[]> {
    if (!Array.isArray(faces)) throw new TypeError('classify expects an array of faces (Uint8Array of 48*48 pixels)');
    if (faces.length === 0) return [];
    const flat = new Float32Array(faces.length * FACE_PIXELS);
    faces.forEach((f, i) => {
      if (!(f instanceof Uint8Array) || f.length !== FACE_PIXELS) {
        throw new TypeError(`face ${i}: expected a Uint8Array of ${FACE_PIXELS} grayscale pixels`);
      }
      for (let p = 0; p < FACE_PIXELS; p++) flat[i * FACE_PIXELS + p] = f[p] / 255;
    });
    const x = this.tf.tensor4d(flat, [faces.length, FACE_SIZE, FACE_SIZE, 1]);
    const y = this.model.predict(x) as TF.Tensor;
    const data = (await y.data()) as Float32Array;
    x.dispose();
    y.dispose();
    const k = LABELS.length;
    return faces.map((_, i) => data.slice(i * k, (i + 1) * k));
  }

  /** The underlying layers model (for export and tests). */
  get layersModel(): TF.LayersModel {
    return this.model;
  }

  dispose(): void {
    this.model.dispose();
  }
}
