/**
 * Shared TS <-> C test vectors: a model blob, real FER2013 faces and the scores the TS
 * reference (./reference.ts) gives them. The C core's ctest (firmware/core/tests/
 * vectors_test.cc) and the wasm engine's mocha test read them. They are written under
 * .cache/ (never committed: the faces are dataset images).
 *
 *   node dist/engine/vectors.js [--out .cache/vectors] [--model models/x.tfer | --random [--stem-int8]]
 *                               [--count 1000] [--seed 1]
 *
 * --stem-int8 (with --random): the random model gets an int8 stem (blob format version 2);
 * scripts/test-c.sh writes such vectors to .cache/vectors-int8. --head-grid G (with --random):
 * a grid head of G x G regions, 8 values each (format version 3; .cache/vectors-grid).
 *
 * Files: model.tfer (the blob), faces.u8 (N x 2304 pixels), scores.f32 (N x 7 float32 LE),
 * labels.u8 (the dataset label of each face), meta.json.
 */
import * as fs from 'fs';
import * as path from 'path';
import { headInputs, type FoldedBinaryBlock, type FoldedBlock, type FoldedModel } from '../model/folded';
import { decodeModel, encodeModel } from '../model/format';
import { FACE_PIXELS, LABELS, NUM_CLASSES } from '../model/labels';
import { blockSpecs } from '../model/network';
import { defaultDataRoot, loadImageFolder } from '../train/data';
import { DEFAULT_MODEL_BLOB } from './open';
import { referenceFeatures, referenceScores } from './reference';
import { seededRandom } from '../util/random';

export { seededRandom };

export const DEFAULT_VECTORS_DIR = path.resolve(__dirname, '..', '..', '.cache', 'vectors');

/**
 * A FoldedModel of the tinyfer-b1 shape (src/model/network.ts blockSpecs) with random but
 * well-scaled parameters (activations neither saturate nor vanish), for tests before or
 * beside a trained model. `stemInt8`: an int8 stem (FoldedInt8Stem: weightQ uniform in
 * -127..127, scales such that its outputs spread as the float stem's do), else a float stem
 * (the same model as before the option existed, draw for draw). `grid` > 0: a grid head of
 * grid x grid regions and 8 values a region (FoldedGridHead), else the global average.
 */
export function randomFoldedModel(seed = 1, widths: readonly number[] = [32, 56], repeat = false, stemInt8 = false, grid = 0): FoldedModel {
  const rnd = seededRandom(seed);
  const uni = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
  const gauss = (n: number, sd: number) =>
    Float32Array.from({ length: n }, () => sd * Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()));
  const c0 = widths[0];
  const specs = blockSpecs(widths, undefined, repeat);
  const blocks: FoldedBlock[] = [];
  const randomBlock = (s: (typeof specs)[number]): FoldedBlock => {
    if (s.kind === 'cbam') {
      const hidden = Math.max(1, Math.floor(s.cin / 4));
      return {
        type: 'cbam', channels: s.cin, hidden,
        w1: gauss(hidden * s.cin, 1 / Math.sqrt(s.cin)), b1: gauss(hidden, 0.1),
        w2: gauss(s.cin * hidden, 1 / Math.sqrt(hidden)), b2: gauss(s.cin, 0.1),
        spatialWeight: gauss(98, 0.2), spatialBias: 0.1,
      };
    }
    const projected = s.stride === 2 || s.cin !== s.cout;
    // a repeat pass (tinyfer-b1r) runs the threshold and signs of its source block
    const shares = s.shares === undefined ? undefined : specs.findIndex((t) => t.name === s.shares);
    const src = shares === undefined ? undefined : (blocks[shares] as FoldedBinaryBlock);
    return {
      type: 'binary', cin: s.cin, cout: s.cout, stride: s.stride,
      ...(src ? { shares } : {}),
      threshold: src ? src.threshold : gauss(s.cin, 0.3),
      weightSign: src ? src.weightSign : Int8Array.from({ length: s.cout * 9 * s.cin }, () => (rnd() < 0.5 ? -1 : 1)),
      scale: uni(s.cout, 0.5, 1.5).map((v) => v / Math.sqrt(9 * s.cin)),
      bias: gauss(s.cout, 0.2),
      prelu: uni(s.cout, 0.05, 0.3),
      ...(projected ? { shortcutWeight: gauss(s.cout * s.cin, 1 / Math.sqrt(s.cin)), shortcutBias: gauss(s.cout, 0.1) } : {}),
    };
  };
  for (const s of specs) blocks.push(randomBlock(s));
  const cLast = specs.filter((s) => s.kind === 'binary').slice(-1)[0]?.cout ?? c0;
  // The float stem's weights have sd 0.6 over pixel / 255; uniform q in -127..127 has sd
  // 127 / sqrt(3) over raw pixels, so scale ~ 0.6 * sqrt(3) / (127 * 255) gives the same spread.
  const stem: FoldedModel['stem'] = stemInt8
    ? {
      cin: 1, cout: c0, k: 3,
      weightQ: Int8Array.from({ length: c0 * 9 }, () => Math.floor(rnd() * 255) - 127),
      scale: uni(c0, 0.5, 1.5).map((v) => (v * 0.6 * Math.sqrt(3)) / (127 * 255)),
      bias: gauss(c0, 0.2),
    }
    : { cin: 1, cout: c0, k: 3, weight: gauss(c0 * 9, 0.6), bias: gauss(c0, 0.2) };
  const gridHead = grid > 0 ? { grid, k: 8, reduce: gauss(8 * cLast, 1 / Math.sqrt(cLast)) } : undefined;
  const nin = headInputs({ gridHead }, cLast);
  const m: FoldedModel = {
    name: `random tinyfer-b1${repeat ? 'r' : ''}${grid ? 'g' : ''}${stemInt8 ? ' int8-stem' : ''} seed ${seed}`,
    labels: LABELS,
    inputSize: 48,
    inputScale: 1 / 255,
    stem,
    blocks,
    ...(gridHead ? { gridHead } : {}),
    headWeight: gauss(NUM_CLASSES * nin, 1),
    headBias: new Float32Array(NUM_CLASSES),
  };
  // Centre the head on the features of a few synthetic faces and scale it so that the
  // logits vary by a few units from face to face: the predicted class then depends on the face.
  const probes = Array.from({ length: 8 }, () => {
    const fx = 0.05 + 0.3 * rnd();
    const fy = 0.05 + 0.3 * rnd();
    const ph = 6 * rnd();
    return Uint8Array.from({ length: FACE_PIXELS }, (_, i) => 128 + 100 * Math.sin(fx * (i % 48) + fy * Math.floor(i / 48) + ph));
  });
  const feats = probes.map((p) => referenceFeatures(m, p));
  const mean = new Float32Array(nin);
  const sd = new Float32Array(nin);
  for (const v of feats) v.forEach((x, k) => (mean[k] += x / feats.length));
  for (const v of feats) v.forEach((x, k) => (sd[k] += (x - mean[k]) ** 2 / feats.length));
  for (let o = 0; o < NUM_CLASSES; o++) {
    let b = 0;
    for (let k = 0; k < nin; k++) {
      const w = (m.headWeight[o * nin + k] * 2) / Math.sqrt(nin) / (Math.sqrt(sd[k]) + 1e-3);
      m.headWeight[o * nin + k] = w;
      b -= w * mean[k];
    }
    m.headBias[o] = b;
  }
  return m;
}

/** The first faces of FER2013 PublicTest, a balanced slice: up to `perLabel` per label. */
export async function loadTestFaces(count: number, dataRoot = defaultDataRoot()): Promise<{ faces: Uint8Array[]; labels: number[] }> {
  const dir = path.join(dataRoot, 'fer2013', 'PublicTest');
  // disgust has only 56 faces; the other six fill up the rest
  const perLabel = Math.ceil(count / (NUM_CLASSES - 1));
  const d = await loadImageFolder(dir, { limitPerLabel: perLabel });
  const n = Math.min(count, d.labels.length);
  if (n < count) throw new Error(`only ${n} faces in ${dir}, ${count} asked for`);
  const faces: Uint8Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    faces.push(d.pixels.slice(i * FACE_PIXELS, (i + 1) * FACE_PIXELS));
    labels.push(d.labels[i]);
  }
  return { faces, labels };
}

export interface Vectors {
  blob: Uint8Array;
  model: FoldedModel;
  faces: Uint8Array[];
  scores: Float32Array[];
}

/** Reads vectors written by writeVectors, or null when `dir` has none. */
export function readVectors(dir = DEFAULT_VECTORS_DIR): Vectors | null {
  const file = (f: string) => path.join(dir, f);
  if (!['model.tfer', 'faces.u8', 'scores.f32'].every((f) => fs.existsSync(file(f)))) return null;
  const blob = new Uint8Array(fs.readFileSync(file('model.tfer')));
  const pixels = new Uint8Array(fs.readFileSync(file('faces.u8')));
  const raw = fs.readFileSync(file('scores.f32'));
  const n = pixels.length / FACE_PIXELS;
  if (!Number.isInteger(n) || raw.length !== n * NUM_CLASSES * 4) throw new Error(`inconsistent vectors in ${dir}: rerun vectors.js`);
  const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  return {
    blob,
    model: decodeModel(blob),
    faces: Array.from({ length: n }, (_, i) => pixels.slice(i * FACE_PIXELS, (i + 1) * FACE_PIXELS)),
    scores: Array.from({ length: n }, (_, i) => all.slice(i * NUM_CLASSES, (i + 1) * NUM_CLASSES)),
  };
}

export function writeVectors(dir: string, blob: Uint8Array, faces: Uint8Array[], scores: Float32Array[], extra: object): void {
  fs.mkdirSync(dir, { recursive: true });
  const pixels = new Uint8Array(faces.length * FACE_PIXELS);
  faces.forEach((face, i) => pixels.set(face, i * FACE_PIXELS));
  const s = new Float32Array(scores.length * NUM_CLASSES);
  scores.forEach((v, i) => s.set(v, i * NUM_CLASSES));
  fs.writeFileSync(path.join(dir, 'model.tfer'), blob);
  fs.writeFileSync(path.join(dir, 'faces.u8'), pixels);
  fs.writeFileSync(path.join(dir, 'scores.f32'), new Uint8Array(s.buffer));
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ faces: faces.length, ...extra }, null, 2) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
    return v;
  };
  const out = path.resolve(opt('out') ?? DEFAULT_VECTORS_DIR);
  const count = Number(opt('count') ?? 1000);
  const seed = Number(opt('seed') ?? 1);
  if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');
  const stemInt8 = argv.includes('--stem-int8');
  const grid = Number(opt('head-grid') ?? 0);
  if (!Number.isInteger(grid) || grid < 0) throw new Error('--head-grid must be a whole number of regions per side');
  let modelPath = opt('model');
  if (stemInt8 && (modelPath || !argv.includes('--random'))) throw new Error('--stem-int8 goes with --random (a blob given with --model keeps its own stem)');
  if (grid && (modelPath || !argv.includes('--random'))) throw new Error('--head-grid goes with --random (a blob given with --model keeps its own head)');
  if (!modelPath && !argv.includes('--random') && fs.existsSync(DEFAULT_MODEL_BLOB)) modelPath = DEFAULT_MODEL_BLOB;
  let blob: Uint8Array;
  let source: string;
  if (modelPath) {
    blob = new Uint8Array(fs.readFileSync(modelPath));
    source = path.resolve(modelPath);
  } else {
    blob = encodeModel(randomFoldedModel(seed, undefined, false, stemInt8, grid));
    source = `randomFoldedModel(${seed}${stemInt8 ? ', int8 stem' : ''}${grid ? `, ${grid}x${grid} grid head` : ''})`;
  }
  const model = decodeModel(blob);
  const t0 = Date.now();
  const { faces, labels } = await loadTestFaces(count);
  const scores = faces.map((face) => referenceScores(model, face));
  writeVectors(out, blob, faces, scores, { model: model.name, source, blobBytes: blob.length, data: 'fer2013/PublicTest' });
  fs.writeFileSync(path.join(out, 'labels.u8'), Uint8Array.from(labels));
  const top = scores.map((s) => s.indexOf(Math.max(...s)));
  const acc = top.filter((t, i) => t === labels[i]).length / faces.length;
  process.stdout.write(
    `${out}: ${faces.length} faces, model '${model.name}' (${blob.length} bytes, ${source}), ` +
      `reference accuracy ${(100 * acc).toFixed(1)}%, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`vectors: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
