/**
 * The shared classifier cache of the Node-RED nodes: one loaded model per (backend, model
 * path) in the process, however many nodes use it. Nodes acquire a handle when they start and
 * release it on close; the model is disposed when the last handle goes. A failed load is not
 * cached, so fixing the file and redeploying tries again.
 *
 * Models are opened by src/engine/open.ts (the one place that maps a path to an engine); the
 * engines themselves are imported lazily there, so a missing or broken engine gives an error
 * on the node that asked for it instead of crashing the runtime.
 */
import * as fs from 'fs';
import type { FaceClassifier } from '../engine/types';
import { openClassifier, resolveModel, type Backend } from '../engine/open';
import { withStatus } from './status';

export type { Backend };
export const BACKENDS: readonly Backend[] = ['binary', 'tfjs'];

interface Entry {
  loading: Promise<FaceClassifier>;
  refs: number;
}

const cache = new Map<string, Entry>();

/** A node's hold on a shared classifier. */
export interface ClassifierHandle {
  readonly backend: Backend;
  /** What was resolved and loaded ('' when the path itself could not be resolved). */
  readonly modelPath: string;
  /** Resolves to the loaded classifier; rejects with a clear error when it cannot load. */
  readonly classifier: Promise<FaceClassifier>;
  /** Give the hold back; the classifier is disposed when no node holds it. Safe to call twice. */
  release(): void;
}

function explain(backend: Backend, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const msg = err instanceof Error ? err.message : String(e);
  if (err && err.code === 'MODULE_NOT_FOUND' && /engine[\\/](binary|tfjs)|'\.\/(binary|tfjs)'/.test(msg)) {
    return withStatus(new Error(`the ${backend} engine is not in this build (${msg.split('\n')[0]}): run 'npm run build'`), `${backend} engine not built`);
  }
  const missing = /model not found|model is missing|needs its exported blob|needs the tfjs model/.test(msg);
  return withStatus(new Error(`cannot load the ${backend} model: ${msg.split('\n')[0]}`), missing ? 'model not found' : 'cannot load the model');
}

/** Get (loading on first use) the shared classifier for a backend and model path (empty: the bundled default). */
export function getClassifier(opts: { backend: Backend; modelPath?: string }): ClassifierHandle {
  const backend = opts.backend;
  if (!BACKENDS.includes(backend)) {
    const bad = Promise.reject(new Error(`unknown backend '${String(backend)}' (use 'binary' or 'tfjs')`));
    bad.catch(() => undefined);
    return { backend, modelPath: '', classifier: bad, release() {} };
  }
  const asked = opts.modelPath && opts.modelPath.trim() ? opts.modelPath.trim() : undefined;
  let modelPath: string;
  try {
    modelPath = resolveModel(asked, backend);
    if (!fs.existsSync(modelPath)) {
      throw new Error(`${asked ? 'model' : 'the bundled default model'} is missing: ${modelPath}`);
    }
  } catch (e) {
    const bad = Promise.reject(explain(backend, e));
    bad.catch(() => undefined);
    return { backend, modelPath: '', classifier: bad, release() {} };
  }
  const key = `${backend}\u0000${modelPath}`;
  let entry = cache.get(key);
  if (!entry) {
    const e: Entry = {
      refs: 0,
      loading: openClassifier(modelPath, backend).catch((err) => {
        if (cache.get(key) === e) cache.delete(key);
        throw explain(backend, err);
      }),
    };
    e.loading.catch(() => undefined); // the node reports it when it awaits; never an unhandled rejection
    cache.set(key, e);
    entry = e;
  }
  const held = entry;
  held.refs++;
  let released = false;
  return {
    backend,
    modelPath,
    classifier: held.loading,
    release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs > 0) return;
      if (cache.get(key) === held) cache.delete(key);
      held.loading.then((c) => c.dispose()).catch(() => undefined);
    },
  };
}

/** How many distinct classifiers are loaded or loading (for tests and status). */
export function loadedClassifiers(): number {
  return cache.size;
}
