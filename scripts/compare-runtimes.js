'use strict';
/**
 * The tfjs graph vs the C core (wasm) on every face of a dataset: top-class agreement, accuracy
 * of each, and how far their scores differ (the model card's "Equivalence of the runtimes").
 *
 *   node scripts/compare-runtimes.js [--model models/tinyfer-b1] [--data <dir|csv>]
 *
 * --model is the tfjs model directory; its blob is <dir>.tfer. Prints one JSON object.
 */
process.env.TF_CPP_MIN_LOG_LEVEL = '2';
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

async function main() {
  const { parseArgs, str } = require(path.join(ROOT, 'dist', 'cli', 'args'));
  const args = parseArgs(process.argv.slice(2));
  const arg = (name, def) => str(args, name, def);
  const { openClassifier, DEFAULT_MODEL_DIR } = require(path.join(ROOT, 'dist', 'engine', 'open'));
  const { loadDataset, defaultDataRoot } = require(path.join(ROOT, 'dist', 'train', 'data'));
  const { argmax } = require(path.join(ROOT, 'dist', 'train', 'evaluate'));
  const modelDir = path.resolve(arg('model', DEFAULT_MODEL_DIR));
  const dataPath = arg('data', path.join(defaultDataRoot(), 'fer2013', 'PublicTest'));
  const d = await loadDataset(dataPath, { cacheDir: path.join(ROOT, '.cache', 'faces') });
  const n = d.labels.length;
  const faces = Array.from({ length: n }, (_, i) => d.pixels.slice(i * 2304, (i + 1) * 2304));
  const core = await openClassifier(`${modelDir}.tfer`);
  const graph = await openClassifier(modelDir, 'tfjs');
  const a = [];
  const b = [];
  for (let i = 0; i < n; i += 256) {
    a.push(...(await core.classify(faces.slice(i, i + 256))));
    b.push(...(await graph.classify(faces.slice(i, i + 256))));
  }
  core.dispose();
  graph.dispose();
  let sameTop = 0;
  let coreRight = 0;
  let tfjsRight = 0;
  let over = 0;
  const diffs = [];
  for (let i = 0; i < n; i++) {
    const x = argmax(a[i]);
    const y = argmax(b[i]);
    if (x === y) sameTop++;
    if (x === d.labels[i]) coreRight++;
    if (y === d.labels[i]) tfjsRight++;
    let m = 0;
    for (let k = 0; k < a[i].length; k++) m = Math.max(m, Math.abs(a[i][k] - b[i][k]));
    if (m > 1e-4) over++;
    diffs.push(m);
  }
  diffs.sort((p, q) => p - q);
  const out = {
    model: path.relative(ROOT, modelDir), data: dataPath, faces: n, sameTopClass: sameTop,
    coreCorrect: coreRight, tfjsCorrect: tfjsRight, scoresOver1e4: over,
    medianDiff: diffs[n >> 1], maxDiff: diffs[n - 1],
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
