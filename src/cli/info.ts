import * as fs from 'fs';
import { optStr, ParsedArgs } from './args';
import { loadTf } from '../engine/tf';
import { DEFAULT_MODEL_BLOB, DEFAULT_MODEL_DIR } from '../engine/open';
import { loadLayersModelFromDisk } from '../engine/tfjs';
import { DEFAULT_DETECT, DEFAULT_DETECTOR_RUNTIME } from '../vision/detector';

/** Which TensorFlow.js runtime loads here, and the default model's size. */
export async function cmdInfo(a: ParsedArgs): Promise<number> {
  const h = await loadTf();
  const lines = [
    `tfjs runtime: ${h.runtime}${h.fallbackReason ? ` (fallback: ${h.fallbackReason})` : ''}`,
    `emotion engine: binary (C core, WebAssembly) by default; tfjs on the runtime above when chosen`,
    `face detector: BlazeFace ${DEFAULT_DETECT.inputSize} (else ${DEFAULT_DETECT.fallbackSize}), ${DEFAULT_DETECTOR_RUNTIME === 'worker-wasm' ? 'in a worker thread on tfjs + wasm' : 'on the main thread'} by default (frame node option "Runs on")`,
  ];
  const dir = optStr(a, 'model') ?? DEFAULT_MODEL_DIR;
  if (fs.existsSync(dir)) {
    const m = await loadLayersModelFromDisk(h.tf, dir);
    lines.push(`model ${dir}: ${m.countParams()} parameters, ${m.layers.length} layers`);
    m.dispose();
  } else {
    lines.push(`model ${dir}: not found`);
  }
  const blob = dir.replace(/[\\/]+$/, '') + '.tfer';
  if (fs.existsSync(blob)) lines.push(`blob ${blob}: ${fs.statSync(blob).size} bytes`);
  else if (!optStr(a, 'model')) lines.push(`blob ${DEFAULT_MODEL_BLOB}: not found`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
