/**
 * Open a FaceClassifier from a model path, for the CLI, the nodes and the benchmarks.
 *
 *  - a `.tfer` blob -> the binary engine (C core in wasm)
 *  - a tfjs model directory or model.json -> the tfjs engine, or with backend 'binary' the blob
 *    of the same name beside it (`models/x/` -> `models/x.tfer`)
 */
import * as fs from 'fs';
import * as path from 'path';
import type { FaceClassifier } from './types';

export type Backend = 'binary' | 'tfjs';

/** The package's models/ folder: each bundled model is a blob `<name>.tfer` and its tfjs twin `<name>/`. */
export const MODELS_DIR = path.resolve(__dirname, '..', '..', 'models');
/**
 * The bundled models, by name (a model setting may be just the name); the first is the default.
 * Only models that are the best at something a user needs are bundled: tinyfer-b1r (the network
 * with the format's repeat passes, behind the default on every figure) is a test blob in
 * test/fixtures/models/, not a bundled model (docs/model-card.md).
 */
export const BUNDLED_MODELS = ['tinyfer-b1'] as const;
export const DEFAULT_MODEL_DIR = path.join(MODELS_DIR, BUNDLED_MODELS[0]);
export const DEFAULT_MODEL_BLOB = DEFAULT_MODEL_DIR + '.tfer';

/** A bundled model's name (optionally with .tfer) -> its path in MODELS_DIR, unless a file or folder of that name exists here. */
export function bundledModel(modelPath: string): string | undefined {
  const m = /^([\w-]+?)(\.tfer)?$/.exec(modelPath);
  if (!m || fs.existsSync(modelPath) || !(BUNDLED_MODELS as readonly string[]).includes(m[1])) return undefined;
  return path.join(MODELS_DIR, modelPath);
}

export function isBlobPath(p: string): boolean {
  return /\.tfer$/i.test(p) || (fs.existsSync(p) && fs.statSync(p).isFile() && !/\.json$/i.test(p));
}

/** Which backend a path implies when none is asked for: a bundled model's name means the C core, as the default does. */
export function backendFor(modelPath: string): Backend {
  return bundledModel(modelPath) || isBlobPath(modelPath) ? 'binary' : 'tfjs';
}

/** Resolve (modelPath, backend) to the file or folder that backend loads. */
export function resolveModel(modelPath: string | undefined, backend: Backend): string {
  if (!modelPath) return backend === 'binary' ? DEFAULT_MODEL_BLOB : DEFAULT_MODEL_DIR;
  const p = bundledModel(modelPath) ?? path.resolve(modelPath);
  if (!fs.existsSync(p)) throw new Error(`model not found: ${modelPath} (bundled models: ${BUNDLED_MODELS.join(', ')})`);
  if (backend === 'binary' && !isBlobPath(p)) {
    const dir = fs.statSync(p).isDirectory() ? p : path.dirname(p);
    const blob = dir.replace(/[\\/]+$/, '') + '.tfer';
    if (!fs.existsSync(blob)) throw new Error(`${modelPath} is a tfjs model; the binary backend needs its exported blob (${blob} not found: run 'tinyfer export')`);
    return blob;
  }
  if (backend === 'tfjs' && isBlobPath(p)) {
    const dir = p.replace(/\.tfer$/i, '');
    if (!fs.existsSync(path.join(dir, 'model.json'))) throw new Error(`${modelPath} is a binary blob; the tfjs backend needs the tfjs model (${dir}/model.json not found)`);
    return dir;
  }
  return p;
}

export async function openClassifier(modelPath: string | undefined, backend?: Backend): Promise<FaceClassifier> {
  const b = backend ?? (modelPath ? backendFor(modelPath) : 'binary');
  const resolved = resolveModel(modelPath, b);
  if (b === 'binary') {
    const { BinaryEngine } = await import('./binary');
    return BinaryEngine.load(fs.readFileSync(resolved));
  }
  const { TfjsEngine } = await import('./tfjs');
  return TfjsEngine.load(resolved);
}
