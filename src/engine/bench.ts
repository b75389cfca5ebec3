/**
 * Latency of the binary (wasm) engine, for the project's `npm run bench` table.
 * The host C build's instruction count per inference is measured by scripts/callgrind-core.sh.
 */
import * as fs from 'fs';
import { BinaryEngine, wasmPath } from './binary';

export interface BinaryBench {
  runtime: 'wasm';
  /** Inferences timed (after a warm-up of min(n, 20)). */
  inferences: number;
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

/** Times `n` single-face inferences (cycling over `faces`) and `n` batched ones. */
export async function benchBinary(blob: Uint8Array, faces: Uint8Array[], n = 200): Promise<BinaryBench> {
  if (faces.length === 0) throw new Error('benchBinary needs at least one face');
  if (!Number.isInteger(n) || n < 1) throw new Error('benchBinary: n must be a positive integer');
  const engine = await BinaryEngine.load(blob);
  try {
    const warm = Math.min(n, 20);
    for (let i = 0; i < warm; i++) engine.classifySync([faces[i % faces.length]]);
    let t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) engine.classifySync([faces[i % faces.length]]);
    const single = Number(process.hrtime.bigint() - t0) / 1e6 / n;
    const cpu = process.cpuUsage(c0);
    const singleCpu = (cpu.user + cpu.system) / 1e3 / n;
    const batch = Array.from({ length: n }, (_, i) => faces[i % faces.length]);
    t0 = process.hrtime.bigint();
    engine.classifySync(batch);
    const batched = Number(process.hrtime.bigint() - t0) / 1e6 / n;
    return {
      runtime: 'wasm',
      inferences: n,
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
