/**
 * Loads TensorFlow.js once for the whole process: @tensorflow/tfjs-node when its native addon
 * loads, otherwise @tensorflow/tfjs with the wasm backend (inference only).
 */
import * as path from 'path';
import type * as TF from '@tensorflow/tfjs';

export type TfRuntime = 'tensorflow' | 'wasm' | 'cpu';

export interface TfHandle {
  tf: typeof TF;
  /** The backend actually in use: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'. */
  runtime: TfRuntime;
  /** Why tfjs-node was not used, when it was not. */
  fallbackReason?: string;
}

let loading: Promise<TfHandle> | undefined;

/** Load tfjs once. Set TINYFER_TF=wasm to force the wasm backend (e.g. for benchmarks). */
export function loadTf(): Promise<TfHandle> {
  if (!loading) loading = doLoad();
  return loading;
}

async function doLoad(): Promise<TfHandle> {
  const forced = process.env.TINYFER_TF;
  let fallbackReason: string | undefined;
  if (forced !== 'wasm' && forced !== 'cpu') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const tfn = require('@tensorflow/tfjs-node') as typeof TF;
      await tfn.ready();
      return { tf: tfn, runtime: 'tensorflow' };
    } catch (e) {
      fallbackReason = `@tensorflow/tfjs-node did not load (${firstLine(e)})`;
    }
  } else {
    fallbackReason = `TINYFER_TF=${forced}`;
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tf = require('@tensorflow/tfjs') as typeof TF;
  if (forced !== 'cpu') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const wasm = require('@tensorflow/tfjs-backend-wasm');
      const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
      wasm.setWasmPaths(path.join(dist, 'dist') + path.sep);
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        return { tf, runtime: 'wasm', fallbackReason };
      }
    } catch (e) {
      fallbackReason = `${fallbackReason ?? ''}; wasm backend failed (${firstLine(e)})`;
    }
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return { tf, runtime: 'cpu', fallbackReason };
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0];
}

/** Training needs real gradients at native speed: refuse anything but tfjs-node. */
export async function loadTfForTraining(): Promise<TfHandle> {
  const h = await loadTf();
  if (h.runtime !== 'tensorflow') {
    throw new Error(
      `training needs @tensorflow/tfjs-node (the ${h.runtime} backend is ~1000x too slow or lacks conv gradients): ` +
        `${h.fallbackReason ?? ''}. Run 'npm run setup:tfjs-node' (offline build) and try again.`,
    );
  }
  return h;
}
