/**
 * Latency of the binary (wasm) engine, for the project's `npm run bench` table.
 * The host C build's instruction count per inference is measured by scripts/callgrind-core.sh.
 */
import * as fs from 'fs';
import { BinaryEngine, wasmPath } from './binary';
import { averageViews, expandViews, type ViewCount } from './views';
import type { Scores } from './types';

export interface BinaryBench {
  runtime: 'wasm';
  /** Faces timed per pass (after 1 s of warm-up; the median of 3 passes is reported). */
  inferences: number;
  /** Test-time views per face, their scores averaged (engine/views.ts); 1 = a single inference. */
  views: ViewCount;
  /** Mean wall time per face, one face per classify() call, in milliseconds. */
  perFaceMs: number;
  /** Mean CPU time (user + system) of this process per face, one face per call, in milliseconds:
   * less sensitive than wall time to other processes on a loaded machine. */
  perFaceCpuMs: number;
  /** Mean wall time per face when faces go in batches of 64, in milliseconds. */
  perFaceBatchedMs: number;
  facesPerSecond: number;
  blobBytes: number;
  arenaBytes: number;
  /** Bytes of the binary convs' lookup tables, built once per model (wasm only). */
  lutBytes: number;
  wasmBytes: number;
}

/**
 * Times `n` single-face inferences (cycling over `faces`) and `n` batched ones; with `views`,
 * each face is classified as that many test-time views (engine/views.ts), as the emotion node does.
 */
export async function benchBinary(blob: Uint8Array, faces: Uint8Array[], n = 200, opts: { views?: ViewCount } = {}): Promise<BinaryBench> {
  if (faces.length === 0) throw new Error('benchBinary needs at least one face');
  if (!Number.isInteger(n) || n < 1) throw new Error('benchBinary: n must be a positive integer');
  const engine = await BinaryEngine.load(blob);
  const views = opts.views ?? 1;
  const classify = (f: Uint8Array[]): Scores[] => averageViews(engine.classifySync(expandViews(f, views)), views);
  try {
    // V8 first runs wasm through its baseline compiler and tiers hot functions up while they run:
    // the first few hundred inferences are slower than every later one. Warm up past that, then
    // report the median of three passes (steady state, what a running flow sees).
    const warmUntil = process.hrtime.bigint() + 1_000_000_000n; // 1 s
    for (let i = 0; process.hrtime.bigint() < warmUntil; i++) classify([faces[i % faces.length]]);
    const median = (v: number[]) => v.sort((a, b) => a - b)[1];
    const singles: number[] = [];
    const cpus: number[] = [];
    const batches: number[] = [];
    const batch = Array.from({ length: n }, (_, i) => faces[i % faces.length]);
    for (let pass = 0; pass < 3; pass++) {
      let t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) classify([faces[i % faces.length]]);
      singles.push(Number(process.hrtime.bigint() - t0) / 1e6 / n);
      const cpu = process.cpuUsage(c0);
      cpus.push((cpu.user + cpu.system) / 1e3 / n);
      t0 = process.hrtime.bigint();
      classify(batch);
      batches.push(Number(process.hrtime.bigint() - t0) / 1e6 / n);
    }
    const single = median(singles);
    const singleCpu = median(cpus);
    const batched = median(batches);
    return {
      runtime: 'wasm',
      inferences: n,
      views,
      perFaceMs: single,
      perFaceCpuMs: singleCpu,
      perFaceBatchedMs: batched,
      facesPerSecond: 1000 / batched,
      blobBytes: blob.length,
      arenaBytes: engine.arenaSize,
      lutBytes: engine.lutSize,
      wasmBytes: fs.statSync(wasmPath()).size,
    };
  } finally {
    engine.dispose();
  }
}
