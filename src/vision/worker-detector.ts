/**
 * The main-thread side of the face detector's worker thread (detect-worker.ts): one thread per
 * process, started on first use and shared by every node; it loads @tensorflow/tfjs + wasm and
 * the BlazeFace model once, whatever TensorFlow.js the main thread uses.
 *
 *   - Requests carry an id and are answered in order; any number may be in flight (the worker
 *     queues them). Each raster is copied into a buffer of a small pool, whose memory is
 *     transferred to the worker and back with the answer: the caller's raster stays untouched and
 *     no frame is cloned on the way (a structured clone of a 640x480 raster costs more than the
 *     copy, in fresh pages on the receiving side, each way).
 *   - When the thread fails to load, crashes or exits, every request in flight is rejected with a
 *     VisionError E_DETECTOR, and the next request starts a new thread. So is a thread that hangs:
 *     one that has not loaded within `loadTimeoutMs`, or has requests in flight and has answered
 *     none of them for `answerTimeoutMs`, is stopped the same way (a watchdog; a busy thread
 *     answers every few milliseconds).
 *   - The thread keeps the process alive only while a load or a request is in flight (unref()
 *     when idle), so a script or Node-RED exits with it still loaded.
 *   - Nodes hold it (hold()) from start to close, like the shared classifiers (runtime/models.ts):
 *     when the last hold is released the thread is stopped once what is in flight is answered,
 *     which gives back its memory (~40 MB: tfjs, the wasm heap, the model); the next frame
 *     starts it again (a fraction of a second). close() stops it at once.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { DetectOptions, Detection } from './detector';
import { VisionError, reason } from './errors';

/** A request to the worker: find faces in `rgb` (width x height x 3; its buffer is transferred). */
export interface DetectRequest {
  id: number;
  rgb: Uint8Array;
  width: number;
  height: number;
  opts: DetectOptions;
}

/** What the worker posts: once 'ready' (or 'failed' to load), then one 'result' per request, its raster's buffer transferred back. */
export type DetectReply =
  | { kind: 'ready'; backend: string }
  | { kind: 'failed'; message: string }
  | { kind: 'result'; id: number; rgb: Uint8Array; detections?: Detection[]; error?: string };

/** Raster buffers kept for reuse between requests. */
const POOL_MAX = 2;

interface Pending {
  resolve: (d: Detection[]) => void;
  reject: (e: Error) => void;
}

/** One worker thread and what is in flight on it. */
class DetectorThread {
  readonly worker: Worker;
  /** Resolves with the TensorFlow.js backend once the model is loaded. */
  readonly ready: Promise<string>;
  readonly pending = new Map<number, Pending>();
  dead = false;
  private loading = true;
  private watchdog: NodeJS.Timeout | undefined;
  private settleReady!: { resolve: (b: string) => void; reject: (e: Error) => void };

  constructor(
    private readonly limits: { readonly loadTimeoutMs: number; readonly answerTimeoutMs: number },
    private readonly onResult: (rgb: Uint8Array) => void,
    private readonly onIdle: (t: DetectorThread) => void,
    private readonly onDead: (t: DetectorThread) => void,
  ) {
    this.ready = new Promise<string>((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    this.ready.catch(() => undefined); // rejections reach whoever awaits ready(); none is unhandled
    this.worker = new Worker(path.join(__dirname, 'detect-worker.js'), {
      // the worker's own copy of the environment: its tfjs runs on wasm whatever the main thread chose
      env: { ...process.env, TINYFER_TF: 'wasm' },
    });
    this.worker.on('message', (m: DetectReply) => this.message(m));
    this.worker.on('error', (e) => this.fail(`the face detector's worker thread crashed: ${reason(e)}`));
    this.worker.on('messageerror', (e) => this.fail(`the face detector's worker thread sent an unreadable message: ${reason(e)}`));
    this.worker.on('exit', (code) => this.fail(`the face detector's worker thread exited (code ${code})`));
    this.refresh(); // loading: the watchdog runs from the start
  }

  post(req: DetectRequest, p: Pending): void {
    this.pending.set(req.id, p);
    this.refresh();
    this.worker.postMessage(req, [req.rgb.buffer as ArrayBuffer]);
  }

  /** Stop the thread; what is in flight is rejected with `why`. */
  stop(why: string): Promise<number> {
    this.fail(why);
    return this.worker.terminate();
  }

  private message(m: DetectReply): void {
    this.disarm(); // progress: the watchdog starts over (refresh() re-arms it)
    if (m.kind === 'ready') {
      this.loading = false;
      this.settleReady.resolve(m.backend);
    } else if (m.kind === 'failed') {
      void this.stop(`cannot load the face detector in its worker thread: ${m.message}`);
      return;
    } else {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      this.onResult(m.rgb);
      if (p) {
        if (m.error !== undefined) p.reject(new VisionError('E_DETECTOR', `face detection failed in the worker thread: ${m.error}`));
        else p.resolve(m.detections ?? []);
      }
    }
    this.refresh();
    if (!this.loading && this.pending.size === 0) this.onIdle(this);
  }

  private fail(why: string): void {
    if (this.dead) return;
    this.dead = true;
    this.disarm();
    // whatever went wrong, this thread is done: it must not run on or hold the process
    this.worker.unref();
    this.worker.terminate().catch(() => undefined);
    this.onDead(this);
    const err = () => new VisionError('E_DETECTOR', `${why} (the next frame starts a new one)`);
    if (this.loading) this.settleReady.reject(err());
    for (const p of this.pending.values()) p.reject(err());
    this.pending.clear();
  }

  /** Keep the process alive, and the watchdog armed, only while something waits on the thread. */
  private refresh(): void {
    if (this.dead) return;
    if (this.loading || this.pending.size > 0) {
      this.worker.ref();
      if (!this.watchdog) {
        const ms = this.loading ? this.limits.loadTimeoutMs : this.limits.answerTimeoutMs;
        const what = this.loading ? 'load the face detector' : 'answer';
        this.watchdog = setTimeout(() => {
          this.watchdog = undefined;
          void this.stop(`the face detector's worker thread did not ${what} within ${ms} ms and was stopped`);
        }, ms);
        this.watchdog.unref(); // the worker's ref() is what keeps the process alive
      }
    } else {
      this.disarm();
      this.worker.unref();
    }
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }
}

/** The process's face detector thread (see the file comment). */
export class WorkerDetector {
  private static instance: WorkerDetector | undefined;

  /** The one per process. */
  static shared(): WorkerDetector {
    if (!WorkerDetector.instance) WorkerDetector.instance = new WorkerDetector();
    return WorkerDetector.instance;
  }

  /** Longest wait for a new thread to load TensorFlow.js and the model. */
  loadTimeoutMs = 60_000;
  /** Longest wait for the next answer while requests are in flight (a frame takes ~5-20 ms). */
  answerTimeoutMs = 10_000;
  private thread: DetectorThread | undefined;
  private nextId = 1;
  private readonly pool: ArrayBuffer[] = [];
  private holders = 0;
  /** The last hold was released while requests were in flight: stop the thread when they are answered. */
  private stopWhenIdle = false;

  private constructor() {}

  /** Start the thread if none runs; resolves with its TensorFlow.js backend once the model is loaded. */
  ready(): Promise<string> {
    return this.running().ready;
  }

  /** Faces in an RGB raster (checked by the caller, FaceDetector.detect); the raster is copied, not taken. */
  detect(rgb: Uint8Array, width: number, height: number, opts: DetectOptions): Promise<Detection[]> {
    const t = this.running();
    const { inputSize, fallbackSize, scoreThreshold, maxFaces, landmarks } = opts; // only what detection reads
    const req: DetectRequest = {
      id: this.nextId++,
      rgb: this.lend(rgb),
      width,
      height,
      opts: { inputSize, fallbackSize, scoreThreshold, maxFaces, landmarks },
    };
    return new Promise<Detection[]>((resolve, reject) => {
      try {
        t.post(req, { resolve, reject });
      } catch (e) {
        t.pending.delete(req.id);
        reject(new VisionError('E_DETECTOR', `cannot send the frame to the face detector's worker thread: ${reason(e)}`));
      }
    });
  }

  /**
   * A node's hold on the thread, from its start to its close: while any is held the thread
   * stays loaded between frames; when the last is released it is stopped as soon as nothing is
   * in flight. Releasing twice is harmless.
   */
  hold(): { release(): void } {
    this.holders++;
    this.stopWhenIdle = false;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.holders--;
        if (this.holders === 0 && this.thread) {
          this.stopWhenIdle = true;
          this.stopIfUnused(this.thread);
        }
      },
    };
  }

  /** The running worker, if any (for diagnostics and tests). */
  get worker(): Worker | undefined {
    return this.thread?.worker;
  }

  /** Stop the thread (requests in flight are rejected); the next request starts a new one. */
  async close(): Promise<void> {
    const t = this.thread;
    this.thread = undefined;
    this.stopWhenIdle = false;
    this.pool.length = 0;
    if (t) await t.stop("the face detector's worker thread was closed");
  }

  private running(): DetectorThread {
    if (!this.thread || this.thread.dead) {
      this.thread = new DetectorThread(
        this, // its limits, read each time the watchdog is armed
        (rgb) => this.giveBack(rgb),
        (t) => this.stopIfUnused(t),
        (t) => {
          if (this.thread === t) this.thread = undefined;
        },
      );
    }
    return this.thread;
  }

  /** Stop the thread once idle after the last hold was released (a thread nothing holds otherwise runs on, unref'd). */
  private stopIfUnused(t: DetectorThread): void {
    if (this.stopWhenIdle && this.thread === t && t.pending.size === 0) void this.close();
  }

  /** A copy of the raster in a pooled buffer that can be transferred. */
  private lend(rgb: Uint8Array): Uint8Array {
    const i = this.pool.findIndex((b) => b.byteLength >= rgb.length);
    const buf = i >= 0 ? this.pool.splice(i, 1)[0] : new ArrayBuffer(rgb.length);
    const view = new Uint8Array(buf, 0, rgb.length);
    view.set(rgb);
    return view;
  }

  private giveBack(rgb: Uint8Array): void {
    if (this.pool.length < POOL_MAX && rgb.buffer instanceof ArrayBuffer) this.pool.push(rgb.buffer);
  }
}
