/**
 * The face detector's worker thread (started by worker-detector.ts, never imported): loads
 * TensorFlow.js on its wasm backend (TINYFER_TF=wasm in this thread's environment, so
 * src/engine/tf.ts does not try tfjs-node here) and the BlazeFace model, posts 'ready', then
 * answers each DetectRequest in arrival order with a 'result' that hands the raster's buffer
 * back. A failed load is posted as 'failed' (the main side stops the thread).
 */
import { parentPort, type MessagePort } from 'worker_threads';
import { loadTf } from '../engine/tf';
import { BlazeFaceModel } from './blazeface';
import { detectFaces } from './detector';
import { reason } from './errors';
import type { DetectReply, DetectRequest } from './worker-detector';

async function serve(port: MessagePort): Promise<void> {
  const post = (m: DetectReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  let model: BlazeFaceModel;
  try {
    const { tf, runtime } = await loadTf();
    model = await BlazeFaceModel.load(tf);
    post({ kind: 'ready', backend: runtime });
  } catch (e) {
    post({ kind: 'failed', message: reason(e) });
    return;
  }
  // one frame at a time, in arrival order
  let queue = Promise.resolve();
  port.on('message', (req: DetectRequest) => {
    queue = queue.then(async () => {
      const back = [req.rgb.buffer as ArrayBuffer];
      try {
        const detections = await detectFaces(model, req.rgb, req.width, req.height, req.opts);
        post({ kind: 'result', id: req.id, rgb: req.rgb, detections }, back);
      } catch (e) {
        post({ kind: 'result', id: req.id, rgb: req.rgb, error: reason(e) }, back);
      }
    });
  });
}

if (!parentPort) throw new Error('detect-worker.js runs as a worker thread only (see worker-detector.ts)');
void serve(parentPort);
