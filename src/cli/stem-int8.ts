import * as fs from 'fs';
import * as path from 'path';
import { num, ParsedArgs, str } from './args';
import { loadTfForTraining } from '../engine/tf';
import { loadLayersModelFromDisk } from '../engine/tfjs';
import { foldModel, setGraphInt8Stem } from '../model/fold';
import { isInt8Stem } from '../model/folded';
import { loadDataset } from '../train/data';
import { fitInt8Stem } from '../train/stem-fit';

/**
 * A trained binary model with its float stem replaced by an int8 stem fitted on training faces
 * (src/train/stem-fit.ts), saved as a tfjs model: `export` then writes the int8 stem (blob format
 * version 2), and `train --init <out> --stem-int8` goes on training around it.
 */
export async function cmdStemInt8(a: ParsedArgs): Promise<number> {
  const modelDir = str(a, 'model');
  const out = str(a, 'out');
  const faces = num(a, 'faces', 1000);
  const seed = num(a, 'seed', 1);
  if (!(Number.isInteger(faces) && faces >= 1)) throw new Error(`--faces must be a positive integer, got ${faces}`);
  const { tf } = await loadTfForTraining(); // file:// saving is tfjs-node's
  const model = await loadLayersModelFromDisk(tf, modelDir);
  const folded = foldModel(model);
  if (isInt8Stem(folded.stem)) throw new Error(`${modelDir}: the stem is already int8`);
  const data = await loadDataset(str(a, 'data'), { cacheDir: path.resolve('.cache', 'faces') });
  const t0 = Date.now();
  const fit = fitInt8Stem(folded, data.pixels, { faces, seed });
  setGraphInt8Stem(tf, model, fit.stem);
  fs.mkdirSync(out, { recursive: true });
  await model.save(`file://${path.resolve(out)}`);
  model.dispose();
  process.stdout.write(
    JSON.stringify({ out, faces: fit.faces, flipsPerFaceNearest: +fit.flipsNearest.toFixed(2), flipsPerFaceFitted: +fit.flipsFitted.toFixed(2), seconds: Math.round((Date.now() - t0) / 1000) }) + '\n',
  );
  return 0;
}
