'use strict';
/**
 * tfjs references for the PyTorch mirror's checks (student.py), from our tfjs training graph
 * (tfjs-node) on FER2013 PublicTest faces keyed as the pack keys them:
 *
 *   node scripts/gpu-student/check.js --model models/tinyfer-b1 [--every 7] [--out .gpu/check-tinyfer-b1.json]
 *       one-view scores of every k-th face                                  -> student.py --check
 *   node scripts/gpu-student/check.js --grad --model models/tinyfer-b1 [--mode inference|training] [--count 64]
 *       [--out .gpu/grad-tinyfer-b1.json]
 *       one step's loss (label smoothing 0.1) and the gradient of every trainable weight on a
 *       fixed batch, dropout off (it is random)                             -> student.py --check-grad
 *       --mode inference (default): BatchNorm on its moving statistics, where the two forward
 *       passes agree to ~1e-6, so the gradients can be compared closely; --mode training: batch
 *       statistics, as in training, where float rounding in them flips some binary activations
 *       and the gradients then differ by more.
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const dist = (p) => require(path.join(ROOT, 'dist', p));

async function scores(tf, model, data, every) {
  const { predictScores } = dist('train/train');
  const { faceKey } = dist('train/teacher');
  const { argmax } = dist('train/evaluate');
  const m = await tf.loadLayersModel(`file://${path.join(model, 'model.json')}`);
  const s = await predictScores(tf, m, data, 512, 1);
  const keys = [];
  const rows = [];
  let right = 0;
  for (let i = 0; i < data.labels.length; i++) {
    const row = Array.from(s.subarray(i * 7, i * 7 + 7));
    if (argmax(row) === data.labels[i]) right++;
    if (i % every) continue;
    keys.push(faceKey(data.sources[i]));
    rows.push(row);
  }
  const accuracy = right / data.labels.length;
  return { doc: { model, accuracy, keys, scores: rows }, what: `${keys.length} faces; one view on all ${data.labels.length}: ${(100 * accuracy).toFixed(2)} %` };
}

async function grads(tf, model, data, count, mode) {
  const { faceKey } = dist('train/teacher');
  const { buildNetwork, archOf, facesToTensor } = dist('model/network');
  const { copyMatchingWeights } = dist('train/train');
  if (mode !== 'inference' && mode !== 'training') throw new Error(`--mode inference|training, got ${mode}`);
  const training = mode === 'training';
  const src = await tf.loadLayersModel(`file://${path.join(model, 'model.json')}`);
  // the float twin ('<arch>-float') as a float network: its weights in a binary one would be binarized
  const net = buildNetwork({ arch: archOf(src.name), binary: !src.name.endsWith('-float'), dropout: 0 });
  copyMatchingWeights(src, net);
  const n = data.labels.length;
  const pick = Array.from({ length: count }, (_, i) => Math.floor((i * n) / count)); // spread over all labels
  const x = facesToTensor(pick.map((i) => data.pixels.subarray(i * 2304, (i + 1) * 2304)));
  const y = tf.tidy(() => tf.add(tf.mul(tf.oneHot(tf.tensor1d(pick.map((i) => data.labels[i]), 'int32'), 7).toFloat(), 0.9), 0.1 / 7));
  const probs = Array.from(await tf.tidy(() => net.apply(x, { training })).data());
  const { value, grads: g } = tf.variableGrads(() => {
    const p = net.apply(x, { training });
    // categoricalCrossentropy of tfjs-layers, as model.compile uses it
    return tf.mean(tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1 - 1e-7))), 1)));
  }, net.trainableWeights.map((w) => w.val));
  const out = {};
  for (const w of net.trainableWeights) out[w.originalName] = Array.from(await g[w.val.name].data());
  const loss = (await value.data())[0];
  const doc = { model, mode, keys: pick.map((i) => faceKey(data.sources[i])), loss, probs, grads: out };
  return { doc, what: `loss ${loss} and ${Object.keys(out).length} gradients on ${count} faces (${mode} mode)` };
}

async function main() {
  const { parseArgs, str, bool } = dist('cli/args');
  const args = parseArgs(process.argv.slice(2));
  const arg = (name, def) => str(args, name, def);
  const { loadTfForTraining } = dist('engine/tf');
  const { loadDataset, defaultDataRoot } = dist('train/data');
  const { tf } = await loadTfForTraining();
  const model = path.resolve(arg('model', path.join(ROOT, 'models', 'tinyfer-b1')));
  const grad = bool(args, 'grad');
  const out = path.resolve(arg('out', path.join(ROOT, '.gpu', `${grad ? 'grad' : 'check'}-${path.basename(model)}.json`)));
  const data = await loadDataset(path.join(arg('data', path.join(defaultDataRoot(), 'fer2013')), 'PublicTest'), { cacheDir: path.join(ROOT, '.cache', 'faces') });
  const r = grad ? await grads(tf, model, data, Number(arg('count', '64')), arg('mode', 'inference')) : await scores(tf, model, data, Number(arg('every', '7')));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(r.doc));
  console.error(`${out}: ${model}: ${r.what}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
