import * as fs from 'fs';
import { optStr, ParsedArgs } from './args';
import { loadTf } from '../engine/tf';
import { DEFAULT_MODEL_BLOB, DEFAULT_MODEL_DIR, bundledModel } from '../engine/open';
import { loadLayersModelFromDisk } from '../engine/tfjs';
import { DEFAULT_DETECT, DEFAULT_DETECTOR_RUNTIME } from '../vision/detector';
import { decodeModel } from '../model/format';
import { isInt8Stem, type FoldedModel } from '../model/folded';

/** One line per blob: its name, its stem (`stem 32`, or `stem 32 int8`) and its blocks, e.g. `binary 32, binary 32, repeat of block 0, cbam 32, ...`. */
function blobSummary(file: string): string {
  const bytes = new Uint8Array(fs.readFileSync(file));
  let m: FoldedModel;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    return `blob ${file}: ${bytes.length} bytes, not readable: ${(e as Error).message}`;
  }
  const blocks = m.blocks.map((b) =>
    b.type === 'cbam' ? `cbam ${b.channels}` : b.shares !== undefined ? `repeat of block ${b.shares}` : `binary ${b.cin === b.cout ? b.cout : `${b.cin}->${b.cout}`}${b.stride === 2 ? ' /2' : ''}`);
  const g = m.gridHead;
  const head = g ? `grid head ${g.grid}x${g.grid} x ${g.k}` : 'global average';
  return `blob ${file}: ${bytes.length} bytes, format version ${bytes[4] | (bytes[5] << 8)}, "${m.name}"; stem ${m.stem.cout}${isInt8Stem(m.stem) ? ' int8' : ''}, ${blocks.join(', ')}, ${head}`;
}

/** Which TensorFlow.js runtime loads here, and the default model's size. */
export async function cmdInfo(a: ParsedArgs): Promise<number> {
  const h = await loadTf();
  const lines = [
    `tfjs runtime: ${h.runtime}${h.fallbackReason ? ` (fallback: ${h.fallbackReason})` : ''}`,
    `emotion engine: binary (C core, WebAssembly) by default; tfjs on the runtime above when chosen`,
    `face detector: BlazeFace ${DEFAULT_DETECT.inputSize} (else ${DEFAULT_DETECT.fallbackSize}), ${DEFAULT_DETECTOR_RUNTIME === 'worker-wasm' ? 'in a worker thread on tfjs + wasm' : 'on the main thread'} by default (frame node option "Runs on")`,
  ];
  const asked = optStr(a, 'model');
  const given = asked && (bundledModel(asked) ?? asked);
  if (given && fs.existsSync(given) && fs.statSync(given).isFile() && !given.endsWith('.json')) {
    // a model blob (.tfer): what the C core would run
    lines.push(blobSummary(given));
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  const dir = given ?? DEFAULT_MODEL_DIR;
  if (fs.existsSync(dir)) {
    const m = await loadLayersModelFromDisk(h.tf, dir);
    lines.push(`model ${dir}: ${m.countParams()} parameters, ${m.layers.length} layers`);
    m.dispose();
  } else {
    lines.push(`model ${dir}: not found`);
  }
  const blob = dir.replace(/[\\/]+$/, '') + '.tfer';
  if (fs.existsSync(blob)) lines.push(blobSummary(blob));
  else if (!optStr(a, 'model')) lines.push(`blob ${DEFAULT_MODEL_BLOB}: not found`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
