'use strict';
/**
 * Reference loss and gradients for student.py --check-grad: one training step's loss and the
 * gradient of every trainable weight, computed by our tfjs training graph (tfjs-node), on a fixed
 * batch of FER2013 PublicTest faces, with the training targets' label smoothing (0.1); dropout
 * off (it is random). `--mode inference` (default): BatchNorm on its moving statistics, where the
 * two forward passes agree to ~1e-6, so the gradients can be compared closely; `--mode training`:
 * BatchNorm on batch statistics, as in training, where float rounding in those statistics flips
 * some binary activations and the gradients then differ by more.
 *
 *   node scripts/gpu-student/grad.js --model models/tinyfer-b1 [--mode inference|training] [--count 64] [--out .gpu/grad-tinyfer-b1.json]
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
  const { buildNetwork, archOf, facesToTensor } = require(path.join(ROOT, 'dist', 'model', 'network'));
  const { copyMatchingWeights } = require(path.join(ROOT, 'dist', 'train', 'train'));
  const { tf } = await loadTfForTraining();
  const model = path.resolve(arg('model', path.join(ROOT, 'models', 'tinyfer-b1')));
  const count = Number(arg('count', '64'));
  const mode = arg('mode', 'inference');
  if (mode !== 'inference' && mode !== 'training') throw new Error(`--mode inference|training, got ${mode}`);
  const training = mode === 'training';
  const out = path.resolve(arg('out', path.join(ROOT, '.gpu', `grad-${path.basename(model)}.json`)));
  const data = await loadDataset(path.join(arg('data', path.join(defaultDataRoot(), 'fer2013')), 'PublicTest'), { cacheDir: path.join(ROOT, '.cache', 'faces') });
  const src = await tf.loadLayersModel(`file://${path.join(model, 'model.json')}`);
  const net = buildNetwork({ arch: archOf(src.name), dropout: 0 });
  copyMatchingWeights(src, net);
  const n = data.labels.length;
  const pick = Array.from({ length: count }, (_, i) => Math.floor((i * n) / count)); // spread over all labels
  const x = facesToTensor(pick.map((i) => data.pixels.subarray(i * 2304, (i + 1) * 2304)));
  const y = tf.tidy(() => tf.add(tf.mul(tf.oneHot(tf.tensor1d(pick.map((i) => data.labels[i]), 'int32'), 7).toFloat(), 0.9), 0.1 / 7));
  const vars = net.trainableWeights.map((w) => w.val);
  const probs = Array.from(await tf.tidy(() => net.apply(x, { training })).data());
  const { value, grads } = tf.variableGrads(() => {
    const p = net.apply(x, { training });
    // categoricalCrossentropy of tfjs-layers, as model.compile uses it
    return tf.mean(tf.neg(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1 - 1e-7))), 1)));
  }, vars);
  const g = {};
  for (const w of net.trainableWeights) g[w.originalName] = Array.from(await grads[w.val.name].data());
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ model, mode, keys: pick.map((i) => faceKey(data.sources[i])), loss: (await value.data())[0], probs, grads: g }));
  console.error(`${out}: loss ${(await value.data())[0]} and ${Object.keys(g).length} gradients on ${count} faces (${mode} mode)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
