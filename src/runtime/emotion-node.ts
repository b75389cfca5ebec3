/**
 * The message logic of the tinyfer-emotion node, free of Node-RED: nodes/tinyfer-emotion.js
 * creates it, calls handle() per message (in order) and reports.
 *
 * In: msg.faces from tinyfer-frame, or an image in msg.payload (the frame pipeline runs here).
 * Out: msg.payload = EmotionPayload; each msg.faces entry also gets track/emotion/confidence/scores
 * (so a tinyfer-frame node in 'annotated' mode can draw them).
 *
 * Every face gets a track id per stream key (tracker.ts). When the smoother is in use, it runs
 * twice over: once on the key's stream of largest faces (the top-level fields, as before tracks
 * existed) and once per track (faces[i].smoothed). Emit-on-change follows the largest-face
 * stream (changeScope 'largest', the default) or any track ('track').
 */
import type { FaceClassifier } from '../engine/types';
import { classifyViews, parseViews, type ViewCount } from '../engine/views';
import { VisionError } from '../vision/errors';
import { isImageInput } from '../vision/decode';
import { processFrame, type FrameOptions } from '../vision/pipeline';
import { WorkerDetector } from '../vision/worker-detector';
import { emotionPayload, faceEmotion, facesFromMessage, largestFace, trackEmotion, type EmotionPayload, type FaceInput } from './emotion';
import { frameOptionsFromConfig, numField, type FrameMessage, type FrameNodeConfig } from './frame-node';
import { BACKENDS, getClassifier, type Backend, type ClassifierHandle } from './models';
import { checkSetting } from '../settings/spec';
import { EmotionSmoother, type SmoothingMethod } from './smoothing';
import { FaceTracker } from './tracker';
import { queueLimitsFromConfig, type QueueLimits } from './serial-input';

/**
 * What emit-on-change watches: 'largest', the stable emotion of the key's largest-face stream
 * (the top-level fields); 'track', the stable emotion of each face's track (a message whenever
 * any track's changes; payload.smoothing.changedTracks names them).
 */
export const CHANGE_SCOPES = ['largest', 'track'] as const;
export type ChangeScope = (typeof CHANGE_SCOPES)[number];

/** Smoother key of one track of a stream key (a separator no topic string is likely to hold). */
const trackKey = (key: string, track: number): string => `${key}\u0000${track}`;

export interface EmotionNodeConfig extends FrameNodeConfig {
  backend?: string;
  model?: string;
  /**
   * Test-time views per face, their scores averaged (engine/views.ts): 1, 2 (with the mirror
   * image) or 10 (also shifted by a pixel). New nodes: 10. Flows saved before this setting
   * existed have `mirror` instead: true reads as 2, absent or false as 1 (also when the editor
   * saved such a node with no view selected: views null or '').
   */
  views?: string | number | null;
  mirror?: boolean;
  smoothing?: string;
  alpha?: string | number;
  window?: string | number;
  minConfidence?: string | number;
  emitOnChange?: boolean;
  /** What emit-on-change watches (CHANGE_SCOPES; default 'largest'). */
  changeScope?: string;
  /** Frames a track survives without its face (RANGES.trackMaxMissed; default 5). */
  trackMaxMissed?: string | number;
}

export class EmotionHandler {
  readonly frameOptions: FrameOptions;
  readonly smoothing: SmoothingMethod;
  readonly emitOnChange: boolean;
  readonly changeScope: ChangeScope;
  readonly views: ViewCount;
  /**
   * The node's input queue bound (the node's SerialInput takes it; the 'Queue' setting, as
   * tinyfer-frame's). A dropped message never reaches handle(): the smoothers and the tracker do
   * not see it, as if it had not been sent.
   */
  readonly queue: QueueLimits;
  /** Track ids per stream key. */
  readonly tracker: FaceTracker;
  private readonly model: ClassifierHandle;
  /** Keeps the shared detector thread loaded while the node lives (it detects faces in image payloads). */
  private readonly detectorHold: { release(): void };
  /** Present when smoothing, minConfidence or emit-on-change is in use. */
  private readonly smoother?: EmotionSmoother;
  /** The same smoothing, one stream per track (keys trackKey(key, id)); present with `smoother`. */
  private readonly trackSmoother?: EmotionSmoother;
  /** The last payload sent (for the status line). */
  last?: EmotionPayload;

  /** Parses and checks every setting first (throws RangeError), then starts loading the shared model. */
  constructor(config: EmotionNodeConfig = {}) {
    this.frameOptions = frameOptionsFromConfig(config);
    this.queue = queueLimitsFromConfig(config);
    const method = (config.smoothing || 'none') as SmoothingMethod;
    const minConfidence = numField('minConfidence', config.minConfidence) ?? 0;
    this.emitOnChange = config.emitOnChange === true;
    const views = config.views;
    this.views = views === undefined || views === null || views === '' ? (config.mirror === true ? 2 : 1) : parseViews(views);
    const smoother = new EmotionSmoother({
      method,
      alpha: numField('alpha', config.alpha),
      window: numField('window', config.window),
      minConfidence,
    });
    this.smoothing = method;
    const scope = config.changeScope || 'largest';
    checkSetting('changeScope', { kind: 'enum', values: CHANGE_SCOPES }, scope);
    this.changeScope = scope as ChangeScope;
    this.tracker = new FaceTracker({ maxMissed: numField('trackMaxMissed', config.trackMaxMissed) });
    if (method !== 'none' || this.emitOnChange || minConfidence > 0) {
      this.smoother = smoother;
      // every live track of every remembered key fits: the tracker's bounds are this one's too
      this.trackSmoother = new EmotionSmoother({ ...smoother.options, maxKeys: this.tracker.options.maxKeys * this.tracker.options.maxTracks });
    }
    const backend = (config.backend || 'binary') as Backend;
    checkSetting('backend', { kind: 'enum', values: BACKENDS }, backend);
    this.model = getClassifier({ backend, modelPath: config.model });
    this.detectorHold = WorkerDetector.shared().hold();
  }

  /** Resolves when the model is loaded (rejects with the load error). */
  ready(): Promise<FaceClassifier> {
    return this.model.classifier;
  }

  get modelPath(): string {
    return this.model.modelPath;
  }

  /**
   * Classify the faces of one message and set msg.payload. `key` is the smoothing stream
   * (e.g. msg.topic). Returns null when emit-on-change holds the message back.
   */
  async handle(msg: FrameMessage, key = ''): Promise<FrameMessage | null> {
    let faces: FaceInput[];
    let msgFaces: Array<Record<string, unknown>>;
    if (msg.faces !== undefined && msg.faces !== null) {
      faces = facesFromMessage(msg.faces);
      msgFaces = msg.faces as Array<Record<string, unknown>>;
    } else if (isImageInput(msg.payload)) {
      const r = await processFrame(msg.payload, this.frameOptions);
      msg.image = r.frame.source;
      msg.faces = r.faces;
      msgFaces = r.faces as unknown as Array<Record<string, unknown>>;
      faces = r.faces;
    } else {
      throw new VisionError('E_INPUT_TYPE', 'expected msg.faces (from tinyfer-frame) or an image in msg.payload (Buffer or data URL; a file path where the node accepts paths)');
    }
    const classifier = await this.model.classifier;
    const t0 = process.hrtime.bigint();
    const pixels = faces.map((f) => f.pixels);
    const scores = await classifyViews(classifier, pixels, this.views);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const { tracks, ended } = this.tracker.update(key, faces);
    const results = faces.map((f, i) => faceEmotion(f.box, scores[i], tracks[i]));
    const changedTracks: number[] = [];
    if (this.trackSmoother) {
      for (const id of ended) this.trackSmoother.reset(trackKey(key, id));
      results.forEach((r, i) => {
        if (r.track === null) return;
        r.smoothed = trackEmotion((this.trackSmoother as EmotionSmoother).update(trackKey(key, r.track), scores[i]));
        if (r.smoothed.changed) changedTracks.push(r.track);
      });
    }
    results.forEach((r, i) => {
      msgFaces[i].track = r.track;
      msgFaces[i].emotion = r.emotion;
      msgFaces[i].confidence = r.confidence;
      msgFaces[i].scores = r.scores;
      if (r.smoothed) msgFaces[i].smoothed = r.smoothed;
    });
    let smoothed;
    if (this.smoother && results.length > 0) {
      const result = this.smoother.update(key, scores[largestFace(results)]);
      smoothed = { result, method: this.smoothing, key };
    }
    const payload = emotionPayload(results, classifier.backend, classifier.runtime, ms, smoothed);
    if (payload.smoothing) payload.smoothing.changedTracks = changedTracks;
    this.last = payload;
    if (this.emitOnChange) {
      const changed = this.changeScope === 'track' ? changedTracks.length > 0 : !!(smoothed && smoothed.result.changed);
      if (!changed) return null;
    }
    msg.payload = payload;
    return msg;
  }

  /** Release the shared model and detector thread (disposed when no node uses them any more). */
  close(): void {
    this.model.release();
    this.detectorHold.release();
    this.smoother?.reset();
    this.trackSmoother?.reset();
    this.tracker.reset();
  }
}
