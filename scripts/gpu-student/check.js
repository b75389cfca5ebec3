'use strict';
/**
 * Reference scores for student.py --check: a tfjs model's one-view scores (tfjs-node, the
 * training graph) on every k-th FER2013 PublicTest face, keyed as the pack keys them.
 *
 *   node scripts/gpu-student/check.js --model models/tinyfer-b1 [--every 7] [--out .gpu/check-b1.json]
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');

async function main() {
  const { parseArgs, str } = require(path.join(ROOT, 'dist', 'cli', 'args'));
  const args = parseArgs(process.argv.slice(2));
  const arg = (name, def) => str(args, name, def);
  const { loadTfForTraining } = require(path.join(ROOT, 'dist', 'engine', 'tf'));
  const { loadDataset, defaultDataRoot } = require(path.join(ROOT, 'dist', 'train', 'data'));
  const { faceKey } = require(path.join(ROOT, 'dist', 'train', 'teacher'));
  const { predictScores } = require(path.join(ROOT, 'dist', 'train', 'train'));
  const { tf } = await loadTfForTraining();
  const model = path.resolve(arg('model', path.join(ROOT, 'models', 'tinyfer-b1')));
  const every = Number(arg('every', '7'));
  const out = path.resolve(arg('out', path.join(ROOT, '.gpu', `check-${path.basename(model)}.json`)));
  const data = await loadDataset(path.join(arg('data', path.join(defaultDataRoot(), 'fer2013')), 'PublicTest'), { cacheDir: path.join(ROOT, '.cache', 'faces') });
  const m = await tf.loadLayersModel(`file://${path.join(model, 'model.json')}`);
  const s = await predictScores(tf, m, data, 512, 1);
  const keys = [];
  const scores = [];
  let right = 0;
  for (let i = 0; i < data.labels.length; i++) {
    const row = Array.from(s.subarray(i * 7, i * 7 + 7));
    if (row.indexOf(Math.max(...row)) === data.labels[i]) right++;
    if (i % every) continue;
    keys.push(faceKey(data.sources[i]));
    scores.push(row);
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ model, accuracy: right / data.labels.length, keys, scores }));
  console.error(`${out}: ${keys.length} faces; ${model} one view on all ${data.labels.length}: ${((100 * right) / data.labels.length).toFixed(2)} %`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
