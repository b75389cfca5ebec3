import * as fs from 'fs';
import * as path from 'path';
import { optStr, ParsedArgs, str } from './args';
import { loadTf } from '../engine/tf';
import { loadLayersModelFromDisk } from '../engine/tfjs';
import { foldModel } from '../model/fold';
import { encodeModel, toCHeader } from '../model/format';

/** tfjs model dir -> model blob (+ C header). */
export async function cmdExport(a: ParsedArgs): Promise<number> {
  const modelDir = str(a, 'model');
  const out = str(a, 'out');
  const { tf } = await loadTf();
  const model = await loadLayersModelFromDisk(tf, modelDir);
  const name = optStr(a, 'name') ?? path.basename(modelDir.replace(/[\\/]+$/, ''));
  const folded = foldModel(model, name);
  model.dispose();
  const blob = encodeModel(folded);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, blob);
  const header = optStr(a, 'header');
  if (header) {
    const symbol = optStr(a, 'symbol') ?? 'tinyfer_model';
    fs.mkdirSync(path.dirname(path.resolve(header)), { recursive: true });
    fs.writeFileSync(header, toCHeader(blob, symbol));
  }
  process.stdout.write(`${out}: ${blob.length} bytes${header ? `, C header ${header}` : ''}\n`);
  return 0;
}
