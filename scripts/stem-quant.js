'use strict';
/**
 * What quantizing the stem's weights after training costs (issue 17: an integer stem on the
 * ESP32-S3): the blob's stem weights rounded per output channel to q * s with |q| <= qmax
 * (src/model/quantizers.ts quantizePerChannel), every other parameter unchanged, each variant run
 * on the C core (wasm) over every face of a dataset beside the blob as it is. Prints one JSON line
 * per variant: correct faces, top class agreeing with the unchanged blob.
 *
 *   node scripts/stem-quant.js [--model models/tinyfer-b1.tfer] [--data <dir|csv>] [--bits 8,10,12,16]
 */
const path = require('node:path');
const fs = require('node:fs');

const ROOT = path.resolve(__dirname, '..');

async function main() {
  const { parseArgs, str } = require(path.join(ROOT, 'dist', 'cli', 'args'));
  const args = parseArgs(process.argv.slice(2));
  const { BinaryEngine } = require(path.join(ROOT, 'dist', 'engine', 'binary'));
  const { decodeModel, encodeModel } = require(path.join(ROOT, 'dist', 'model', 'format'));
  const { quantizePerChannel } = require(path.join(ROOT, 'dist', 'model', 'quantizers'));
  const { loadDataset, defaultDataRoot } = require(path.join(ROOT, 'dist', 'train', 'data'));
  const { argmax } = require(path.join(ROOT, 'dist', 'train', 'evaluate'));
  const modelArg = str(args, 'model', 'models/tinyfer-b1.tfer'); // the default is the repository's
  const modelPath = path.resolve(args.flags.model === undefined ? ROOT : '.', modelArg);
  const dataPath = str(args, 'data', path.join(defaultDataRoot(), 'fer2013', 'PublicTest'));
  const bits = str(args, 'bits', '8,10,12,16').split(',').map(Number);
  for (const b of bits) if (!(Number.isInteger(b) && b >= 2 && b <= 24)) throw new Error(`--bits: ${b} is not an integer in 2..24`);
  const blob = new Uint8Array(fs.readFileSync(modelPath));
  const { isInt8Stem } = require(path.join(ROOT, 'dist', 'model', 'folded'));
  if (isInt8Stem(decodeModel(blob).stem)) throw new Error(`${modelArg} already has an int8 stem: this script rounds a float stem`);
  const d = await loadDataset(dataPath, { cacheDir: path.join(ROOT, '.cache', 'faces') });
  const n = d.labels.length;
  const faces = Array.from({ length: n }, (_, i) => d.pixels.subarray(i * 2304, (i + 1) * 2304));
  const predict = async (bytes) => {
    const engine = await BinaryEngine.load(bytes);
    const scores = await engine.classify(faces);
    engine.dispose();
    return scores.map((s) => argmax(s));
  };
  const base = await predict(blob);
  const correct = (p) => p.filter((c, i) => c === d.labels[i]).length;
  const line = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  line({ model: modelArg, data: dataPath, faces: n, stem: 'float (as exported)', correct: correct(base) });
  for (const b of bits) {
    const m = decodeModel(blob);
    const qmax = 2 ** (b - 1) - 1;
    m.stem.weight = quantizePerChannel(m.stem.weight, m.stem.cout, qmax, 'first');
    const p = await predict(encodeModel(m));
    line({ stem: `int${b} per output channel (|q| <= ${qmax})`, correct: correct(p), topClassAgrees: p.filter((c, i) => c === base[i]).length });
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
