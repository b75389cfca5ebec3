/**
 * The binary engine: the portable C core (firmware/core) compiled to WebAssembly by
 * scripts/build-wasm.sh, run in Node's own WebAssembly runtime (no imports, no Emscripten).
 *
 *   const engine = await BinaryEngine.load(fs.readFileSync('models/tinyfer-b1.tfer'));
 *   const [scores] = await engine.classify([face]);   // face: Uint8Array(2304)
 *
 * Linear memory: [stack | core statics | heap_base: blob | lookup tables | arena | faces | scores];
 * each engine is its own instance, so several models can be open at once. The tables (the
 * binary convs' bit counts by table look-up, tfr_lut_build in the core) are built once per load.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { FoldedModel } from '../model/folded';
import { decodeModel } from '../model/format';
import { FACE_PIXELS, LABELS, NUM_CLASSES, type Label } from '../model/labels';
import type { FaceClassifier, Scores } from './types';

export const WASM_FILE = 'tinyfer_core.wasm';
/** Faces copied into wasm memory per call into the core. */
const BATCH = 64;
const PAGE = 65536;

/* The bits of the WebAssembly JS API used here (the project's lib settings carry no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface CoreExports {
  memory: WasmMemory;
  __heap_base: { value: number };
  tfr_wasm_load(blob: number, size: number): number;
  tfr_wasm_arena_size(): number;
  tfr_wasm_lut_size(): number;
  tfr_wasm_lut_build(lut: number, size: number): number;
  tfr_wasm_label_index(i: number): number;
  tfr_wasm_classify(arena: number, arenaSize: number, faces: number, n: number, scores: number): number;
  tfr_wasm_strerror(err: number): number;
}

/** Where the built core is: beside this file (dist/engine, after the build copies it) or in src/engine. */
export function wasmPath(): string {
  const candidates = [path.join(__dirname, WASM_FILE), path.resolve(__dirname, '..', '..', 'src', 'engine', WASM_FILE)];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`TinyFER binary engine: ${WASM_FILE} not found (looked in ${candidates.join(', ')}); run 'npm run build:wasm'`);
  return found;
}

let compiled: WasmModule | undefined;
function coreModule(): WasmModule {
  if (!compiled) compiled = new WA.Module(fs.readFileSync(wasmPath()));
  return compiled;
}

const align = (n: number, a = 16) => Math.ceil(n / a) * a;

function cString(mem: WasmMemory, ptr: number): string {
  const bytes = new Uint8Array(mem.buffer);
  let end = ptr;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return Buffer.from(bytes.subarray(ptr, end)).toString('utf8');
}

function checkFaces(faces: unknown): asserts faces is Uint8Array[] {
  if (!Array.isArray(faces)) throw new TypeError('classify() takes an array of faces (Uint8Array of 48*48 pixels each)');
  faces.forEach((face: unknown, i) => {
    if (!(face instanceof Uint8Array) || face.length !== FACE_PIXELS) {
      const what = face instanceof Uint8Array ? `a Uint8Array of ${face.length} bytes`
        : face === null ? 'null' : typeof face === 'object' ? (face as object).constructor?.name ?? 'object' : typeof face;
      throw new TypeError(`face ${i} must be a Uint8Array of ${FACE_PIXELS} grayscale pixels (48x48, row-major), got ${what}`);
    }
  });
}

export class BinaryEngine implements FaceClassifier {
  readonly backend = 'binary' as const;
  readonly runtime = 'wasm';
  readonly labels: readonly Label[];
  /** Bytes of arena the core planned for this model (the same figure as on the ESP32). */
  readonly arenaSize: number;
  readonly blobSize: number;
  /** Bytes of the binary convs' lookup tables (wasm only; the ESP32 counts bits without them). */
  readonly lutSize: number;
  private core: CoreExports | undefined;
  private readonly arenaPtr: number;
  private readonly facesPtr: number;
  private readonly scoresPtr: number;

  private constructor(core: CoreExports, readonly model: FoldedModel, blobSize: number, lutPtr: number, lutSize: number) {
    this.core = core;
    this.blobSize = blobSize;
    this.lutSize = lutSize;
    this.arenaSize = core.tfr_wasm_arena_size();
    this.arenaPtr = align(lutPtr + lutSize);
    this.facesPtr = align(this.arenaPtr + this.arenaSize);
    this.scoresPtr = align(this.facesPtr + BATCH * FACE_PIXELS);
    const end = this.scoresPtr + BATCH * NUM_CLASSES * 4;
    const have = core.memory.buffer.byteLength;
    if (end > have) core.memory.grow(Math.ceil((end - have) / PAGE));
    this.labels = Array.from({ length: NUM_CLASSES }, (_, i) => LABELS[core.tfr_wasm_label_index(i)]);
  }

  /** Instantiates the core and loads a model blob (src/model/format.ts); throws a clear Error when the core rejects it. */
  static async load(blob: Uint8Array): Promise<BinaryEngine> {
    if (!(blob instanceof Uint8Array)) throw new TypeError('BinaryEngine.load() takes the model blob as a Uint8Array (or Buffer)');
    const instance = new WA.Instance(coreModule(), {});
    const core = instance.exports as unknown as CoreExports;
    const blobPtr = align(Number(core.__heap_base.value));
    const need = blobPtr + blob.length;
    const have = core.memory.buffer.byteLength;
    if (need > have) core.memory.grow(Math.ceil((need - have) / PAGE));
    new Uint8Array(core.memory.buffer, blobPtr, blob.length).set(blob);
    const err = core.tfr_wasm_load(blobPtr, blob.length);
    if (err !== 0) {
      let detail = '';
      try {
        decodeModel(blob);
      } catch (e) {
        detail = ` (${(e as Error).message})`;
      }
      throw new Error(`TinyFER binary engine: the core rejected the model: ${cString(core.memory, core.tfr_wasm_strerror(err))} [error ${err}]${detail}`);
    }
    const lutPtr = align(blobPtr + blob.length);
    const lutSize = core.tfr_wasm_lut_size();
    const lutEnd = lutPtr + lutSize;
    if (lutEnd > core.memory.buffer.byteLength) core.memory.grow(Math.ceil((lutEnd - core.memory.buffer.byteLength) / PAGE));
    const lutErr = core.tfr_wasm_lut_build(lutPtr, lutSize);
    if (lutErr !== 0) throw new Error(`TinyFER binary engine: ${cString(core.memory, core.tfr_wasm_strerror(lutErr))} [error ${lutErr}]`);
    return new BinaryEngine(core, decodeModel(blob), blob.length, lutPtr, lutSize);
  }

  /** Synchronous classify (the FaceClassifier method wraps it in a Promise). */
  classifySync(faces: Uint8Array[]): Scores[] {
    checkFaces(faces);
    const core = this.core;
    if (!core) throw new Error('TinyFER binary engine: classify() after dispose()');
    const out: Scores[] = [];
    for (let start = 0; start < faces.length; start += BATCH) {
      const n = Math.min(BATCH, faces.length - start);
      const mem = new Uint8Array(core.memory.buffer);
      for (let i = 0; i < n; i++) mem.set(faces[start + i], this.facesPtr + i * FACE_PIXELS);
      const err = core.tfr_wasm_classify(this.arenaPtr, this.arenaSize, this.facesPtr, n, this.scoresPtr);
      if (err !== 0) throw new Error(`TinyFER binary engine: ${cString(core.memory, core.tfr_wasm_strerror(err))} [error ${err}]`);
      const scores = new Float32Array(core.memory.buffer, this.scoresPtr, n * NUM_CLASSES);
      for (let i = 0; i < n; i++) out.push(scores.slice(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
    }
    return out;
  }

  async classify(faces: Uint8Array[]): Promise<Scores[]> {
    return this.classifySync(faces);
  }

  dispose(): void {
    this.core = undefined;
  }
}
