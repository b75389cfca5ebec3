/**
 * Dataset loaders: image folders `<root>/<label>/*` (FER2013, CK+, JAFFE and any folder of that
 * form) and the original FER2013 CSV (`emotion,pixels,Usage`). Every face comes out as 48x48
 * grayscale uint8. Unreadable files are skipped, counted and reported, never fatal.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as readline from 'readline';
import sharp from 'sharp';
import { FACE_PIXELS, FACE_SIZE, labelIndex, LABELS } from '../model/labels';

export interface Dataset {
  /** N * 2304 bytes, row-major faces. */
  pixels: Uint8Array;
  /** Class index per face, into classNames. */
  labels: Int32Array;
  /** Names of the classes: our LABELS, or the dataset's own folder names (FolderOptions.ownLabels). */
  classNames: string[];
  /** Source of each face: a file path, or `csv:<line>`. */
  sources: string[];
  /** Subject key per face when the file names carry one ('' otherwise). */
  subjects: string[];
  /** Files or rows that could not be read, with the reason. */
  skipped: { source: string; reason: string }[];
  /** Folder labels that are not among ours (e.g. CK+ contempt), with their file counts. */
  ignoredLabels: Record<string, number>;
}

export function datasetSize(d: Dataset): number {
  return d.labels.length;
}

export function face(d: Dataset, i: number): Uint8Array {
  return d.pixels.subarray(i * FACE_PIXELS, (i + 1) * FACE_PIXELS);
}

/** Default location of the shared datasets: ../shared/data beside the repo, or $TINYFER_DATA. */
export function defaultDataRoot(): string {
  return process.env.TINYFER_DATA ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'data');
}

/**
 * Subject key from a file name: CK+ `S010_004_00000017.png` -> `S010`, JAFFE `KA.HA1.29.tiff` -> `KA`,
 * or a custom regex whose first group is the subject.
 */
export function subjectOf(file: string, pattern?: RegExp): string {
  const base = path.basename(file);
  if (pattern) return pattern.exec(base)?.[1] ?? '';
  let m = /^(S\d{3,})_\d+_\d+\./i.exec(base);
  if (m) return m[1].toUpperCase();
  m = /^([A-Z]{2})\.[A-Z]{2}\d*\.\d+\./.exec(base);
  if (m) return m[1];
  return '';
}

const IMAGE_EXT = /\.(jpe?g|png|webp|tiff?|bmp|gif|pgm)$/i;

export interface FolderOptions {
  /** Regex with one group that extracts the subject key from a file name. */
  subjectPattern?: RegExp;
  /** Cache decoded faces under this folder (keyed by file list + mtimes). */
  cacheDir?: string;
  /** Parallel decodes. */
  concurrency?: number;
  /** Stop after this many files per label (for quick runs and tests). */
  limitPerLabel?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * Use the dataset's own label set (its folder names, sorted) instead of mapping onto our 7
   * labels: CK+ is evaluated on its own 7 classes (with contempt, without neutral).
   */
  ownLabels?: boolean;
  /**
   * Find the face with the frame pipeline's detector and crop it as the tinyfer-frame node does
   * (for datasets whose images are not face crops, e.g. JAFFE); the largest face of each image
   * is kept, and an image without a face is skipped and counted. Off: the whole image,
   * centre-cropped to a square.
   */
  detect?: boolean;
}

/** Decode any image file sharp reads into a 48x48 grayscale face (whole image, centre-cropped square). */
export async function decodeFace(input: string | Buffer): Promise<Uint8Array> {
  const { data, info } = await sharp(input, { limitInputPixels: 4096 * 4096 })
    .rotate()
    .grayscale()
    .resize(FACE_SIZE, FACE_SIZE, { fit: 'cover', position: 'centre' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 || data.length !== FACE_PIXELS) {
    // sharp keeps an alpha channel for some PNGs: take the first channel.
    const out = new Uint8Array(FACE_PIXELS);
    for (let i = 0; i < FACE_PIXELS; i++) out[i] = data[i * info.channels];
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** The largest face the frame pipeline (vision/pipeline.ts) finds in an image file, as a 48x48 grayscale face. */
export async function detectFace(file: string): Promise<Uint8Array> {
  const { processFrame } = await import('../vision/pipeline'); // the detector's code loads only when asked for
  const { faces } = await processFrame(file);
  if (faces.length === 0) throw new Error('no face found');
  const area = (f: (typeof faces)[number]) => f.box.w * f.box.h;
  return faces.reduce((a, b) => (area(b) > area(a) ? b : a)).pixels;
}

export async function loadImageFolder(root: string, opts: FolderOptions = {}): Promise<Dataset> {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new Error(`dataset folder not found: ${root} (expected <root>/<label>/<image files>)`);
  }
  const entries: { file: string; label: number }[] = [];
  const ignoredLabels: Record<string, number> = {};
  const dirs = fs.readdirSync(root).sort().filter((d) => fs.statSync(path.join(root, d)).isDirectory());
  const classNames = opts.ownLabels ? dirs : [...LABELS];
  for (const dir of dirs) {
    const full = path.join(root, dir);
    let files = fs.readdirSync(full).filter((f) => IMAGE_EXT.test(f)).sort();
    const label = opts.ownLabels ? dirs.indexOf(dir) : labelIndex(dir);
    if (label < 0) {
      ignoredLabels[dir] = files.length;
      continue;
    }
    if (opts.limitPerLabel !== undefined) files = files.slice(0, opts.limitPerLabel);
    for (const f of files) entries.push({ file: path.join(full, f), label });
  }
  if (entries.length === 0) {
    throw new Error(`no images under ${root}: expected one folder per label (${LABELS.join(', ')})`);
  }

  let cacheFile: string | undefined;
  if (opts.cacheDir) {
    const h = crypto.createHash('sha256');
    if (opts.detect) h.update('detect\n');
    for (const e of entries) h.update(`${e.file}\0${e.label}\0${fs.statSync(e.file).mtimeMs}\n`);
    cacheFile = path.join(opts.cacheDir, `faces-${h.digest('hex').slice(0, 16)}.bin`);
    if (fs.existsSync(cacheFile)) {
      const buf = fs.readFileSync(cacheFile);
      const meta = JSON.parse(fs.readFileSync(cacheFile + '.json', 'utf8')) as { ok: number[]; skipped: Dataset['skipped'] };
      const ok = meta.ok.map((i) => entries[i]);
      return {
        pixels: new Uint8Array(buf.buffer, buf.byteOffset, buf.length),
        labels: Int32Array.from(ok.map((e) => e.label)),
        classNames,
        sources: ok.map((e) => e.file),
        subjects: ok.map((e) => subjectOf(e.file, opts.subjectPattern)),
        skipped: meta.skipped,
        ignoredLabels,
      };
    }
  }

  const faces: (Uint8Array | null)[] = new Array(entries.length).fill(null);
  const skipped: Dataset['skipped'] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= entries.length) return;
      try {
        faces[i] = opts.detect ? await detectFace(entries[i].file) : await decodeFace(entries[i].file);
      } catch (e) {
        skipped.push({ source: entries[i].file, reason: e instanceof Error ? e.message : String(e) });
      }
      done++;
      if (opts.onProgress && (done % 500 === 0 || done === entries.length)) opts.onProgress(done, entries.length);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  const okIdx = faces.map((f, i) => (f ? i : -1)).filter((i) => i >= 0);
  const pixels = new Uint8Array(okIdx.length * FACE_PIXELS);
  okIdx.forEach((i, k) => pixels.set(faces[i] as Uint8Array, k * FACE_PIXELS));
  if (skipped.length) {
    process.emitWarning(`${skipped.length} ${opts.detect ? 'unreadable or faceless' : 'unreadable'} image(s) skipped under ${root} (first: ${skipped[0].source}: ${skipped[0].reason})`);
  }
  if (cacheFile) {
    fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
    fs.writeFileSync(cacheFile, pixels);
    fs.writeFileSync(cacheFile + '.json', JSON.stringify({ ok: okIdx, skipped }));
  }
  const ok = okIdx.map((i) => entries[i]);
  return {
    pixels,
    labels: Int32Array.from(ok.map((e) => e.label)),
    classNames,
    sources: ok.map((e) => e.file),
    subjects: ok.map((e) => subjectOf(e.file, opts.subjectPattern)),
    skipped,
    ignoredLabels,
  };
}

/** FER2013 CSV emotion codes, in the CSV's order: 0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral. */
const CSV_CODES = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

/**
 * Read the original `fer2013.csv` (header `emotion,pixels,Usage`). `split` selects a Usage value
 * (Training, PublicTest, PrivateTest); omitted = every row. Bad rows are skipped and counted.
 */
export async function loadFer2013Csv(file: string, split?: string): Promise<Dataset> {
  if (!fs.existsSync(file)) throw new Error(`CSV not found: ${file}`);
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  const faces: Uint8Array[] = [];
  const labels: number[] = [];
  const sources: string[] = [];
  const skipped: Dataset['skipped'] = [];
  let cols: { emotion: number; pixels: number; usage: number } | undefined;
  let line = 0;
  for await (const raw of rl) {
    line++;
    const text = raw.trim();
    if (!text) continue;
    const parts = text.split(',').map((s) => s.trim().replace(/^"|"$/g, ''));
    if (!cols) {
      const lower = parts.map((p) => p.toLowerCase());
      const emotion = lower.indexOf('emotion');
      const pixels = lower.indexOf('pixels');
      if (emotion < 0 || pixels < 0) throw new Error(`${file}: not a FER2013 CSV (header must name emotion and pixels columns)`);
      cols = { emotion, pixels, usage: lower.indexOf('usage') };
      continue;
    }
    const src = `${file}:${line}`;
    if (split && cols.usage >= 0 && parts[cols.usage] !== split) continue;
    const code = Number(parts[cols.emotion]);
    if (!Number.isInteger(code) || code < 0 || code >= CSV_CODES.length) {
      skipped.push({ source: src, reason: `bad emotion code '${parts[cols.emotion]}'` });
      continue;
    }
    const px = (parts[cols.pixels] ?? '').split(/\s+/).filter(Boolean).map(Number);
    if (px.length !== FACE_PIXELS || px.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) {
      skipped.push({ source: src, reason: `expected ${FACE_PIXELS} pixel values 0..255, got ${px.length}` });
      continue;
    }
    faces.push(Uint8Array.from(px));
    labels.push(labelIndex(CSV_CODES[code]));
    sources.push(src);
  }
  if (!cols) throw new Error(`${file}: empty CSV`);
  if (split && faces.length === 0 && cols.usage < 0) throw new Error(`${file}: no Usage column, cannot select split ${split}`);
  if (skipped.length) process.emitWarning(`${skipped.length} bad row(s) skipped in ${file} (first: ${skipped[0].source}: ${skipped[0].reason})`);
  const pixels = new Uint8Array(faces.length * FACE_PIXELS);
  faces.forEach((f, i) => pixels.set(f, i * FACE_PIXELS));
  return {
    pixels,
    labels: Int32Array.from(labels),
    classNames: [...LABELS],
    sources,
    subjects: sources.map(() => ''),
    skipped,
    ignoredLabels: {},
  };
}

/** A folder or a CSV, by what the path is. */
export async function loadDataset(p: string, opts: FolderOptions & { split?: string } = {}): Promise<Dataset> {
  if (fs.existsSync(p) && fs.statSync(p).isFile() && /\.csv$/i.test(p)) {
    if (opts.detect) throw new Error('face detection applies to image folders; a FER2013 CSV holds 48x48 face crops already');
    return loadFer2013Csv(p, opts.split);
  }
  const dir = opts.split && fs.existsSync(path.join(p, opts.split)) ? path.join(p, opts.split) : p;
  return loadImageFolder(dir, opts);
}

/** Pick rows of a dataset. */
export function subset(d: Dataset, idx: ArrayLike<number>): Dataset {
  const n = idx.length;
  const pixels = new Uint8Array(n * FACE_PIXELS);
  const labels = new Int32Array(n);
  const sources: string[] = [];
  const subjects: string[] = [];
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    pixels.set(face(d, i), k * FACE_PIXELS);
    labels[k] = d.labels[i];
    sources.push(d.sources[i]);
    subjects.push(d.subjects[i]);
  }
  return { pixels, labels, classNames: d.classNames, sources, subjects, skipped: [], ignoredLabels: {} };
}

/**
 * Subject-independent k-fold: subjects are dealt to folds (sorted, round-robin by size so folds
 * are balanced); no subject appears in two folds. Throws when a face has no subject key.
 */
export function subjectFolds(d: Dataset, k: number): number[][] {
  const bySubject = new Map<string, number[]>();
  d.subjects.forEach((s, i) => {
    if (!s) throw new Error(`no subject key for ${d.sources[i]}: subject-independent folds need one (use a subject pattern)`);
    const list = bySubject.get(s) ?? [];
    list.push(i);
    bySubject.set(s, list);
  });
  if (bySubject.size < k) throw new Error(`only ${bySubject.size} subjects, cannot make ${k} subject-independent folds`);
  const subjects = [...bySubject.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  const folds: number[][] = Array.from({ length: k }, () => []);
  for (const [, idx] of subjects) {
    let best = 0;
    for (let f = 1; f < k; f++) if (folds[f].length < folds[best].length) best = f;
    folds[best].push(...idx);
  }
  return folds;
}
