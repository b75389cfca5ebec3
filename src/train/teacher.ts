/**
 * Knowledge distillation targets. A teacher is one or more models whose class probabilities on
 * the training faces (unaugmented, averaged over test-time views) become soft targets:
 * train() mixes them into the labels as `(1 - w) * smoothed one-hot + w * teacher`.
 *
 * A teacher is a tfjs layers model directory of ours (e.g. the shipped model with 10 views: its
 * own test-time ensemble), `face-api`: @vladmandic/face-api's expression model (a dev
 * dependency), whose labels map onto ours one to one, or a scores file `<file>.json`
 * (TEACHER_SCORES_FORMAT, e.g. written by scripts/gpu-teacher/teacher.py): probabilities per
 * face, keyed by faceKey. The probabilities are computed (or read) once and cached beside the run
 * (teacher.f32 + teacher.json) so a resumed run reuses them.
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as TF from '@tensorflow/tfjs';
import { LABELS, FACE_SIZE } from '../model/labels';
import { Dataset, datasetSize, face } from './data';
import { predictScores } from './train';
import { argmax } from './evaluate';
import type { ViewCount } from '../engine/views';
import { expandViews, averageViews } from '../engine/views';

export const FACE_API_TEACHER = 'face-api';
export const TEACHER_SCORES_FORMAT = 'tinyfer-teacher-scores';

/** A face's key in a scores file: `<label folder>/<file name>` (CSV rows keep `csv:<line>`). */
export function faceKey(source: string): string {
  if (source.startsWith('csv:')) return source;
  return `${path.basename(path.dirname(source))}/${path.basename(source)}`;
}

/**
 * A scores file's probabilities for every face of `d`, in our label order. The file is JSON:
 * { format: TEACHER_SCORES_FORMAT, labels: [7 names], scores: { [faceKey]: number[7] }, ... }.
 * Every face must have an entry; a file for other faces or labels is refused.
 */
export function scoresFileScores(file: string, d: Dataset): Float32Array {
  let j: { format?: unknown; labels?: unknown; scores?: unknown };
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`teacher scores ${file}: ${(e as Error).message}`);
  }
  if (j.format !== TEACHER_SCORES_FORMAT) throw new Error(`teacher scores ${file}: format is not ${TEACHER_SCORES_FORMAT}`);
  if (!Array.isArray(j.labels) || j.labels.join() !== LABELS.join()) {
    throw new Error(`teacher scores ${file}: labels must be ${LABELS.join(', ')}`);
  }
  const table = j.scores as Record<string, unknown>;
  if (!table || typeof table !== 'object') throw new Error(`teacher scores ${file}: no scores table`);
  const k = LABELS.length;
  const n = datasetSize(d);
  const out = new Float32Array(n * k);
  const missing: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = faceKey(d.sources[i]);
    const row = table[key];
    const valid = Array.isArray(row) && row.length === k && row.every((x) => typeof x === 'number' && x >= 0);
    const sum = valid ? (row as number[]).reduce((a, b) => a + b, 0) : 0;
    if (!(sum > 0)) {
      missing.push(key);
      continue;
    }
    for (let c = 0; c < k; c++) out[i * k + c] = (row as number[])[c] / sum;
  }
  if (missing.length > 0) {
    throw new Error(`teacher scores ${file}: no valid entry for ${missing.length} of ${n} faces (first: ${missing[0]})`);
  }
  return out;
}

/** A teacher named `<file>.json` is a scores file (a model is a directory holding model.json). */
function isScoresFile(m: string): boolean {
  return m !== FACE_API_TEACHER && m.endsWith('.json');
}

export interface TeacherSpec {
  /** Model directories (tfjs layers), FACE_API_TEACHER, or scores files (`<file>.json`). */
  models: string[];
  /** One weight per model (normalised to sum 1); default equal. */
  weights?: number[];
  /** Test-time views for each teacher's scores. */
  views: ViewCount;
}

interface CacheMeta {
  models: string[];
  /** Modification times of scores-file teachers (0 for models), so an updated file is re-read. */
  stamps: number[];
  weights: number[];
  views: number;
  faces: number;
  labels: string;
}

function labelKey(d: Dataset): string {
  // A cheap fingerprint of the training set's order: a cache is only reused for the same faces.
  let h = 2166136261;
  for (let i = 0; i < d.labels.length; i++) h = Math.imul(h ^ d.labels[i], 16777619) >>> 0;
  for (let i = 0; i < d.pixels.length; i += 997) h = Math.imul(h ^ d.pixels[i], 16777619) >>> 0;
  return `${d.labels.length}:${h.toString(16)}`;
}

function normalisedWeights(spec: TeacherSpec): number[] {
  const w = spec.weights ?? spec.models.map(() => 1);
  if (w.length !== spec.models.length) throw new RangeError(`${spec.models.length} teachers but ${w.length} teacher weights`);
  if (w.some((x) => !(x > 0))) throw new RangeError('teacher weights must be positive numbers');
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

/** face-api's expression model on our faces: its label names -> our label indices. */
const FACE_API_LABELS: Record<string, number> = {
  angry: LABELS.indexOf('angry'),
  disgusted: LABELS.indexOf('disgust'),
  fearful: LABELS.indexOf('fear'),
  happy: LABELS.indexOf('happy'),
  sad: LABELS.indexOf('sad'),
  surprised: LABELS.indexOf('surprise'),
  neutral: LABELS.indexOf('neutral'),
};

async function faceApiScores(tf: typeof TF, d: Dataset, views: ViewCount): Promise<Float32Array> {
  let pkg: string;
  try {
    pkg = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
  } catch {
    throw new Error(`the ${FACE_API_TEACHER} teacher needs @vladmandic/face-api installed (npm install --no-save @vladmandic/face-api)`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const api = require(path.join(pkg, 'dist', 'face-api.node.js'));
  const net = api.nets.faceExpressionNet;
  if (!net.isLoaded) await net.loadFromDisk(path.join(pkg, 'model'));
  const n = datasetSize(d);
  const names: string[] = api.FACE_EXPRESSION_LABELS;
  const out = new Float32Array(n * LABELS.length);
  const step = Math.max(1, Math.floor(256 / views));
  for (let i = 0; i < n; i += step) {
    const faces = Array.from({ length: Math.min(step, n - i) }, (_, j) => face(d, i + j));
    const images = expandViews(faces, views);
    // face-api takes RGB 0-255 and resizes to its own input size internally.
    const x = tf.tidy(() => {
      const buf = new Float32Array(images.length * FACE_SIZE * FACE_SIZE);
      images.forEach((im, j) => buf.set(im, j * FACE_SIZE * FACE_SIZE));
      return tf.tensor4d(buf, [images.length, FACE_SIZE, FACE_SIZE, 1]).tile([1, 1, 1, 3]);
    });
    const parts = tf.unstack(x);
    const p = (await net.forward(parts)) as TF.Tensor2D; // softmax probabilities
    const s = await p.data();
    tf.dispose([x, p, ...parts]);
    const rows = images.map((_, j) => {
      const r = new Float32Array(LABELS.length);
      names.forEach((name, c) => {
        if (name in FACE_API_LABELS) r[FACE_API_LABELS[name]] = s[j * names.length + c];
      });
      return r;
    });
    averageViews(rows, views).forEach((r, j) => out.set(r, (i + j) * LABELS.length));
  }
  return out;
}

/** Top-1 accuracy of n * 7 scores against d's labels, as 'xx.x %'. */
function percentRight(s: Float32Array, d: Dataset): string {
  const k = LABELS.length;
  let ok = 0;
  for (let i = 0; i < d.labels.length; i++) if (argmax(s.subarray(i * k, (i + 1) * k)) === d.labels[i]) ok++;
  return `${((100 * ok) / d.labels.length).toFixed(1)} %`;
}

/**
 * The teachers' averaged class probabilities on every face of `d` (n * 7, in our label order).
 * With `cacheDir`, reuses (or writes) teacher.f32 there when it was made for the same teachers,
 * views and faces.
 */
export async function teacherScores(tf: typeof TF, d: Dataset, spec: TeacherSpec, cacheDir?: string, log?: (l: string) => void): Promise<Float32Array> {
  if (spec.models.length === 0) throw new RangeError('no teacher model given');
  if (d.classNames.join() !== LABELS.join()) {
    throw new RangeError(`a teacher predicts our 7 labels; this dataset's classes are ${d.classNames.join(', ')}`);
  }
  const weights = normalisedWeights(spec);
  const n = datasetSize(d);
  const k = LABELS.length;
  const meta: CacheMeta = {
    models: spec.models.map((m) => (m === FACE_API_TEACHER ? m : path.resolve(m))),
    stamps: spec.models.map((m) => (isScoresFile(m) && fs.existsSync(m) ? fs.statSync(m).mtimeMs : 0)),
    weights,
    views: spec.views,
    faces: n,
    labels: labelKey(d),
  };
  const binFile = cacheDir ? path.join(cacheDir, 'teacher.f32') : '';
  const metaFile = cacheDir ? path.join(cacheDir, 'teacher.json') : '';
  if (cacheDir && fs.existsSync(binFile) && fs.existsSync(metaFile)) {
    const old = fs.readFileSync(metaFile, 'utf8');
    const buf = fs.readFileSync(binFile);
    if (old === JSON.stringify(meta) && buf.length === n * k * 4) {
      log?.(`teacher: reusing ${binFile}`);
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    }
  }
  const out = new Float32Array(n * k);
  for (let t = 0; t < spec.models.length; t++) {
    const m = spec.models[t];
    const t0 = Date.now();
    let s: Float32Array;
    if (m === FACE_API_TEACHER) {
      s = await faceApiScores(tf, d, spec.views);
    } else if (isScoresFile(m)) {
      s = scoresFileScores(m, d); // its own views: --teacher-views does not apply
    } else {
      const model = await tf.loadLayersModel(`file://${path.resolve(m, 'model.json')}`);
      if (model.outputs[0].shape[1] !== k) throw new RangeError(`teacher ${m} has ${model.outputs[0].shape[1]} classes, not ${k}`);
      s = await predictScores(tf, model, d, 512, spec.views);
      model.dispose();
    }
    const how = isScoresFile(m) ? 'scores file' : `${spec.views} view${spec.views === 1 ? '' : 's'}`;
    log?.(`teacher ${m} (${how}, weight ${weights[t].toFixed(2)}): ${percentRight(s, d)} on the training faces, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (let i = 0; i < out.length; i++) out[i] += weights[t] * s[i];
  }
  if (spec.models.length > 1) log?.(`teachers combined: ${percentRight(out, d)} on the training faces`);
  if (cacheDir) {
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(binFile, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    fs.writeFileSync(metaFile, JSON.stringify(meta));
  }
  return out;
}
