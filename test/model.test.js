'use strict';
// The training graph: shapes, parameter budget, STE gradients, save/load, a short training run.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

process.env.TF_CPP_MIN_LOG_LEVEL = '2';
const { loadTf } = require('../dist/engine/tf');
const { buildNetwork, blockSpecs, facesToTensor } = require('../dist/model/network');
const { steSign, binarizeKernel, kernelScale, quantizePerChannel } = require('../dist/model/quantizers');
const { loadTfjsOrSkip, fer2013Dir } = require('./helpers/data');

/** Synthetic faces for the architecture tests. */
const FACES = Array.from({ length: 20 }, (_, i) => Uint8Array.from({ length: 2304 }, (_, j) => (i * 131 + j * 17 + (j >> 5) * 7) & 255));

/**
 * Folds `m` into a blob and runs it on the C core (wasm): the TS reference's scores bit for bit,
 * and the tfjs graph's top class on every face. Returns the blob, its decoded model and the graph's scores.
 */
async function assertRunsOnCore(m, faces = FACES) {
  const { foldModel } = require('../dist/model/fold');
  const { encodeModel, decodeModel } = require('../dist/model/format');
  const { BinaryEngine } = require('../dist/engine/binary');
  const { referenceScores, compareScores } = require('../dist/engine/reference');
  const blob = encodeModel(foldModel(m));
  const folded = decodeModel(blob);
  const engine = await BinaryEngine.load(blob);
  const core = await engine.classify(faces);
  engine.dispose();
  assert.equal(compareScores(core, faces.map((f) => referenceScores(folded, f))).exact, faces.length);
  const graph = m.predict(facesToTensor(faces)).arraySync();
  assert.equal(compareScores(graph, core).top1Agree, faces.length);
  return { blob, folded, graph };
}

/** Moves every BatchNorm's statistics off their initial values (so that folding them is exercised). */
function perturbBatchNorm(m) {
  for (const l of m.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const [g, b, mean, v] = l.getWeights();
    l.setWeights([g, b.add(0.1), mean.add(0.05), v.mul(1.5)]);
  }
}

describe('model: network', function () {
  let tf;
  before(async function () {
    tf = await loadTfjsOrSkip(this);
  });

  it('has the documented layer shapes and at most 70 K parameters', function () {
    const m = buildNetwork({ seed: 1 });
    const shapeOf = (name) => m.getLayer(name).outputShape.slice(1);
    assert.deepEqual(shapeOf('stem_pool'), [24, 24, 32]);
    assert.deepEqual(shapeOf('b1_prelu'), [24, 24, 32]);
    assert.deepEqual(shapeOf('b2_prelu'), [24, 24, 32]);
    assert.deepEqual(shapeOf('cbam1'), [24, 24, 32]);
    assert.deepEqual(shapeOf('b3_prelu'), [12, 12, 56]);
    assert.deepEqual(shapeOf('b4_prelu'), [12, 12, 56]);
    assert.deepEqual(shapeOf('cbam2'), [12, 12, 56]);
    assert.deepEqual(shapeOf('head'), [7]);
    const params = m.countParams();
    assert.ok(params <= 70000, `parameters ${params} > 70000`);
    assert.equal(params, 69035);
    // The float twin has the same topology and parameter count.
    assert.equal(buildNetwork({ seed: 1, binary: false }).countParams(), params);
    assert.equal(blockSpecs().filter((b) => b.kind === 'binary').length, 4);
  });

  it('tinyfer-b2 (experimental third stage) stays within 70 K parameters and runs on the C core like the TS reference', async function () {
    const m = buildNetwork({ arch: 'tinyfer-b2', seed: 3 });
    assert.equal(m.name, 'tinyfer-b2');
    assert.ok(m.countParams() <= 70000, `parameters ${m.countParams()}`);
    assert.deepEqual(m.getLayer('b5_prelu').outputShape.slice(1), [6, 6, 64]);
    assert.deepEqual(m.getLayer('cbam3').outputShape.slice(1), [6, 6, 64]);
    const { folded } = await assertRunsOnCore(m);
    assert.deepEqual(folded.blocks.map((b) => b.type), ['binary', 'binary', 'cbam', 'binary', 'binary', 'cbam', 'binary', 'cbam']);
  });

  it('tinyfer-b1r (repeat passes) stays within 70 K parameters, grows from tinyfer-b1 exactly and runs on the C core like the TS reference', async function () {
    const { compareScores } = require('../dist/engine/reference');
    const { copyMatchingWeights, identityInitNewBlocks } = require('../dist/train/train');
    const base = buildNetwork({ seed: 5 });
    const m = buildNetwork({ arch: 'tinyfer-b1r', seed: 6 });
    assert.equal(m.name, 'tinyfer-b1r');
    // three repeat passes: 600 parameters (their BatchNorm and PReLU), no new binary weights
    assert.equal(m.countParams(), base.countParams() + 600);
    assert.ok(m.countParams() <= 70000, `parameters ${m.countParams()}`);
    assert.deepEqual(blockSpecs([32, 56], [2, 2], true).map((b) => b.name + (b.shares ? `<${b.shares}` : '')),
      ['b1', 'b2', 'b1r<b1', 'b2r<b2', 'cbam1', 'b3', 'b4', 'b4r<b4', 'cbam2']);
    assert.deepEqual(m.getLayer('b2r_prelu').outputShape.slice(1), [24, 24, 32]);
    assert.deepEqual(m.getLayer('b4r_prelu').outputShape.slice(1), [12, 12, 56]);
    // Grown from a tinyfer-b1 (BatchNorm statistics made non-trivial first), the new passes start as
    // the identity: the same scores as the model it grew from.
    perturbBatchNorm(base);
    copyMatchingWeights(base, m);
    assert.deepEqual(identityInitNewBlocks(tf, m, base), ['b1r', 'b2r', 'b4r']);
    const x = facesToTensor(FACES);
    const before = base.predict(x).arraySync();
    assert.equal(compareScores(m.predict(x).arraySync(), before).maxAbsDiff < 1e-6, true);
    // Trained repeat passes differ from the identity: give them BatchNorm of their own.
    for (const name of ['b1r_bn', 'b2r_bn', 'b4r_bn']) {
      const l = m.getLayer(name);
      const [g, b, mean, v] = l.getWeights();
      l.setWeights([g.add(0.7), b.add(0.05), mean, v]);
    }
    const { blob, folded, graph } = await assertRunsOnCore(m);
    assert.deepEqual(folded.blocks.map((b) => b.type + (b.shares === undefined ? '' : `<${b.shares}`)),
      ['binary', 'binary', 'binary<0', 'binary<1', 'cbam', 'binary', 'binary', 'binary<6', 'cbam']);
    assert.ok(blob.length <= 32 * 1024, `${blob.length} bytes`);
    assert.ok(compareScores(graph, before).maxAbsDiff > 1e-3, 'the repeat passes change the scores');
  });

  it('tinyfer-b1g (grid head) stays within 70 K parameters, grows from tinyfer-b1 as the same function and runs on the C core like the TS reference', async function () {
    const { compareScores } = require('../dist/engine/reference');
    const { copyMatchingWeights, gridHeadFromGlobal } = require('../dist/train/train');
    const base = buildNetwork({ seed: 7 });
    const m = buildNetwork({ arch: 'tinyfer-b1g', seed: 8 });
    assert.equal(m.name, 'tinyfer-b1g');
    assert.equal(buildNetwork({ arch: 'tinyfer-b1g', binary: false }).name, 'tinyfer-b1g-float');
    // the head: 56 x 8 reduce + 72 x 7 + 7 classifier, in place of 56 x 7 + 7
    assert.equal(m.countParams(), base.countParams() - 399 + 448 + 511);
    assert.equal(m.countParams(), 69595);
    assert.deepEqual(m.getLayer('headg_pool').outputShape.slice(1), [3, 3, 56]);
    assert.deepEqual(m.getLayer('headg_reduce').outputShape.slice(1), [3, 3, 8]);
    assert.deepEqual(m.getLayer('headg_flatten').outputShape.slice(1), [72]);
    assert.deepEqual(m.getLayer('headg').outputShape.slice(1), [7]);
    perturbBatchNorm(base);
    // grown from tinyfer-b1: its global-average head becomes a grid head of the same function
    copyMatchingWeights(base, m);
    assert.equal(gridHeadFromGlobal(tf, m, base), true);
    assert.equal(gridHeadFromGlobal(tf, base, m), false, 'only a grid head grows from a global one');
    const x = facesToTensor(FACES);
    const before = base.predict(x).arraySync();
    assert.ok(compareScores(m.predict(x).arraySync(), before).maxAbsDiff < 1e-6);
    // a trained grid head tells regions apart: give it weights of its own
    const r = m.getLayer('headg_reduce');
    r.setWeights([tf.randomNormal(r.getWeights()[0].shape, 0, 0.3, 'float32', 9)]);
    const d = m.getLayer('headg');
    d.setWeights([tf.randomNormal(d.getWeights()[0].shape, 0, 0.5, 'float32', 10), d.getWeights()[1]]);
    const { blob, folded, graph } = await assertRunsOnCore(m);
    assert.equal(blob[4], 3);
    assert.deepEqual([folded.gridHead.grid, folded.gridHead.k], [3, 8]);
    assert.ok(compareScores(graph, before).maxAbsDiff > 1e-3, 'the grid head changes the scores');
  });

  it('steSign: +-1 forward (sign(0) = +1), gradient 1 only where |x| <= 1', function () {
    const x = tf.tensor1d([-2, -1, -0.5, 0, 0.5, 1, 2]);
    assert.deepEqual(Array.from(steSign(x).dataSync()), [-1, -1, -1, 1, 1, 1, 1]);
    const g = tf.grad((v) => steSign(v).mul(tf.tensor1d([1, 2, 3, 4, 5, 6, 7])).sum())(x);
    assert.deepEqual(Array.from(g.dataSync()), [0, 2, 3, 4, 5, 6, 0]);
  });

  it('binarizeKernel: sign(W) * mean|W| per output channel', function () {
    const w = tf.tensor2d([[0.5, -2], [-0.1, 0.4], [0.3, 0]], [3, 2]);
    const alpha = kernelScale(w).dataSync();
    assert.ok(Math.abs(alpha[0] - 0.3) < 1e-6 && Math.abs(alpha[1] - 0.8) < 1e-6);
    const b = binarizeKernel(w).arraySync();
    assert.deepEqual(b.map((r) => r.map((v) => Math.round(v * 1e4) / 1e4)), [[0.3, -0.8], [-0.3, 0.8], [0.3, 0.8]]);
  });

  it('quantizePerChannel: each channel q * s with |q| <= qmax, s = max|w| / qmax, nearest level; both layouts; zero channels stay zero', function () {
    const f = Math.fround;
    // 3 channels x 4 values, channel last (tfjs kernel order): channel 2 is all zero
    const w = Float32Array.from([0.5, -2, 0, -0.1, 0.4, 0, 0.3, 1e-3, 0, -0.25, -0.7, 0]);
    for (const qmax of [127, 7]) {
      const q = quantizePerChannel(w, 3, qmax);
      const first = quantizePerChannel(Float32Array.from([0, 1, 2].flatMap((o) => [0, 1, 2, 3].map((k) => w[k * 3 + o]))), 3, qmax, 'first');
      for (let o = 0; o < 3; o++) {
        const vals = [0, 1, 2, 3].map((k) => w[k * 3 + o]);
        const max = Math.max(...vals.map(Math.abs));
        for (let k = 0; k < 4; k++) {
          const out = q[k * 3 + o];
          assert.equal(first[o * 4 + k], out, 'the same values in either layout');
          if (max === 0) {
            assert.equal(out, 0);
            continue;
          }
          const s = f(max / qmax);
          const level = out / s;
          assert.ok(Math.abs(level - Math.round(level)) < 1e-4 && Math.abs(Math.round(level)) <= qmax, `${out} is no level of ${s}`);
          assert.ok(Math.abs(out - vals[k]) <= s / 2 + 1e-7, `${vals[k]} -> ${out}: not the nearest level`);
        }
      }
      // quantizing again lands on the same levels (the scale may move by an ulp)
      const again = quantizePerChannel(q, 3, qmax);
      q.forEach((v, i) => assert.ok(Math.abs(again[i] - v) <= Math.abs(v) * 1e-6, `${v} -> ${again[i]}`));
    }
    assert.equal(quantizePerChannel(Float32Array.from([-2, 2]), 1)[0], -2, 'the largest magnitude is exact');
  });

  it('onPerChannelGrid finds the integers and scale of a kernel on the int8 grid (also a scale an ulp off f32(max / 127)), and null off it', function () {
    const { onPerChannelGrid } = require('../dist/model/quantizers');
    const f = Math.fround;
    let seed = 3;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    // quantizePerChannel's own output: 200 kernels of 3x3x1x32, scales over 8 decades
    for (let i = 0; i < 200; i++) {
      const w = Float32Array.from({ length: 288 }, (_, j) => (j % 32 === 5 ? 0 : (rnd() - 0.5) * Math.exp(-12 + 9 * rnd())));
      const v = quantizePerChannel(w, 32);
      const g = onPerChannelGrid(v, 32);
      assert.ok(g, `kernel ${i} not found on the grid`);
      v.forEach((x, j) => assert.ok(f(g.q[j] * g.scale[j % 32]) === x && Math.abs(g.q[j]) <= 127, `kernel ${i} value ${j}`));
      assert.equal(g.scale[5], 0, 'a zero channel: scale 0');
    }
    // a scale s with f32(f32(127 s) / 127) != s: the grid q * s is found with s itself
    let s = 0;
    while (!s) {
      const c = f(Math.exp(-10 + 6 * rnd()));
      if (f(f(127 * c) / 127) !== c) s = c;
    }
    const q = Int32Array.from({ length: 9 }, (_, k) => (k === 4 ? -127 : Math.floor(rnd() * 255) - 127));
    const g = onPerChannelGrid(Float32Array.from(q, (x) => f(x * s)), 1);
    assert.ok(g, 'found');
    assert.deepEqual(Array.from(g.q), Array.from(q));
    assert.equal(g.scale[0], s);
    // off the grid: a float kernel, and a channel whose values need |q| > 127 at every nearby scale
    assert.equal(onPerChannelGrid(Float32Array.from({ length: 288 }, () => rnd() - 0.5), 32), null);
    assert.equal(onPerChannelGrid(Float32Array.from([1, f(1 / 127) * 0.5, 0]), 1), null);
  });

  it('binary conv layer outputs exact multiples of alpha (all-+-1 plane, +1 padding)', function () {
    const m = buildNetwork({ seed: 3 });
    const layer = m.getLayer('b1_conv');
    const x = tf.randomNormal([1, 24, 24, 32], 0, 1, 'float32', 5);
    const y = layer.apply(x);
    const [kernel] = layer.getWeights();
    const alpha = kernelScale(kernel).dataSync();
    const out = y.dataSync();
    for (let i = 0; i < out.length; i += 97) {
      const k = out[i] / alpha[i % 32];
      assert.ok(Math.abs(k - Math.round(k)) < 1e-3, `not an integer multiple: ${k}`);
      assert.ok(Math.abs(Math.round(k)) % 2 === 288 % 2, 'a +-1 sum over 288 taps has even parity');
    }
  });

  it('saves and reloads (custom layers registered), giving identical predictions', async function () {
    const m = buildNetwork({ seed: 7 });
    const x = tf.randomUniform([3, 48, 48, 1], 0, 1, 'float32', 9);
    const before = m.predict(x).dataSync();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-model-'));
    await m.save(`file://${dir}`);
    const { loadLayersModelFromDisk } = require('../dist/engine/tfjs');
    const back = await loadLayersModelFromDisk(tf, dir);
    assert.deepEqual(Array.from(back.predict(x).dataSync()), Array.from(before));
    assert.equal(back.getLayer('b3_conv').getClassName(), 'TinyFerBinaryConv2D');
    assert.equal(back.getLayer('cbam2').getClassName(), 'TinyFerCbam');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a tiny training run on real faces measurably lowers the loss', async function () {
    const h = await loadTf();
    if (h.runtime !== 'tensorflow') this.skip();
    const { loadImageFolder } = require('../dist/train/data');
    const { train } = require('../dist/train/train');
    const data = await loadImageFolder(path.join(fer2013Dir(), 'Training'), { limitPerLabel: 16 });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-train-'));
    const r = await train({ train: data, outDir: out, epochs: 10, batchSize: 32, lr: 5e-3, seed: 5, augment: false, log: () => {} });
    const first = r.history[0].loss;
    const last = r.history[r.history.length - 1].loss;
    assert.ok(last < first * 0.85, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.ok(fs.existsSync(path.join(out, 'last', 'model.json')) && fs.existsSync(path.join(out, 'state.json')));
    // Resuming a finished run trains no further epochs and keeps the history.
    const again = await train({ train: data, outDir: out, epochs: 10, batchSize: 32, seed: 5, resume: true, log: () => {} });
    assert.equal(again.history.length, 10);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('--epochs 0 writes the network as --init grows it, untrained: r8 (a global-average head) as a tinyfer-b1g gives its scores; epochs < 0 is refused', async function () {
    const h = await loadTf();
    if (h.runtime !== 'tensorflow') this.skip();
    const { loadImageFolder } = require('../dist/train/data');
    const { train } = require('../dist/train/train');
    const data = await loadImageFolder(path.join(fer2013Dir(), 'PublicTest'), { limitPerLabel: 8 });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-grow-'));
    const init = path.join(__dirname, 'fixtures', 'models', 'tinyfer-b1f'); // r8: tinyfer-b1, the global-average head
    const lines = [];
    const r = await train({ train: data, outDir: out, epochs: 0, arch: 'tinyfer-b1g', initFrom: init, log: (l) => lines.push(l) });
    assert.equal(r.history.length, 0);
    assert.ok(lines.some((l) => /grid head grown from the global-average head/.test(l)), lines.join('\n'));
    const grown = await tf.loadLayersModel(`file://${path.join(out, 'best', 'model.json')}`);
    const src = await tf.loadLayersModel(`file://${path.join(init, 'model.json')}`);
    assert.equal(grown.name, 'tinyfer-b1g');
    const x = facesToTensor(data.pixels, data.labels.length);
    const { compareScores } = require('../dist/engine/reference');
    const cmp = compareScores(grown.predict(x).arraySync(), src.predict(x).arraySync());
    assert.equal(cmp.top1Agree, data.labels.length);
    assert.ok(cmp.maxAbsDiff < 1e-5, `max |diff| ${cmp.maxAbsDiff}`);
    await assert.rejects(train({ train: data, outDir: out, epochs: -1, log: () => {} }), /epochs must be a whole number >= 0, got -1/);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('augmentFace: strength 0 gives the face or its mirror exactly; stronger ranges move pixels further', function () {
    const { augmentFace } = require('../dist/train/train');
    const n = 48;
    const face = new Uint8Array(n * n);
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) face[y * n + x] = (x * 5 + y * 3 + ((x * y) % 7) * 11) % 256;
    let seq = 0;
    const rand = () => [0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.6][seq++ % 7]; // flip draw 0.3 -> mirrored
    const out = new Float32Array(n * n);
    augmentFace(face, out, 0, rand, 0);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) assert.ok(Math.abs(out[y * n + x] - face[y * n + (n - 1 - x)] / 255) < 1e-6, `pixel ${x},${y}`);
    }
    const dist = (strength) => {
      seq = 0;
      augmentFace(face, out, 0, rand, strength);
      let d = 0;
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) d += Math.abs(out[y * n + x] - face[y * n + (n - 1 - x)] / 255);
      return d / (n * n);
    };
    assert.ok(dist(0.5) > 0.01 && dist(1) > dist(0.5), `${dist(0.5)} ${dist(1)}`);
  });

  it('training with stemInt8 puts the stem kernel on the int8 grid (fitted), keeps it frozen, and exports an int8 stem', async function () {
    const h = await loadTf();
    if (h.runtime !== 'tensorflow') this.skip();
    const { loadImageFolder } = require('../dist/train/data');
    const { train } = require('../dist/train/train');
    const data = await loadImageFolder(path.join(fer2013Dir(), 'Training'), { limitPerLabel: 4 });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-stemint8-'));
    const lines = [];
    await train({ train: data, outDir: out, epochs: 2, batchSize: 16, lr: 5e-3, seed: 5, augment: false, stemInt8: true, log: (l) => lines.push(l) });
    assert.ok(lines.some((l) => /stem_conv: kernel fitted to int8 per output channel on 28 training faces/.test(l)), lines.join('\n'));
    const { loadLayersModelFromDisk } = require('../dist/engine/tfjs');
    const m = await loadLayersModelFromDisk(tf, path.join(out, 'last'));
    const stem = m.getLayer('stem_conv');
    assert.equal(stem.trainable, false);
    const k = stem.getWeights()[0].dataSync();
    // frozen: the kernel fitted to a fresh network of the same seed, on the grid quantizePerChannel keeps
    const { fitInt8Stem } = require('../dist/train/stem-fit');
    const { foldModel, setGraphInt8Stem } = require('../dist/model/fold');
    const fresh = buildNetwork({ seed: 5 });
    setGraphInt8Stem(tf, fresh, fitInt8Stem(foldModel(fresh), data.pixels).stem);
    assert.deepEqual(Array.from(k), Array.from(fresh.getLayer('stem_conv').getWeights()[0].dataSync()));
    assert.deepEqual(Array.from(k), Array.from(quantizePerChannel(k, 32)));
    // while the rest trained
    assert.notDeepEqual(Array.from(m.getLayer('head').getWeights()[0].dataSync()), Array.from(buildNetwork({ seed: 5 }).getLayer('head').getWeights()[0].dataSync()));
    // and the exporter folds it into the core's integer stem (blob format version 2)
    const { isInt8Stem } = require('../dist/model/folded');
    const { encodeModel } = require('../dist/model/format');
    const folded = foldModel(m, 'stem-int8 test');
    assert.ok(isInt8Stem(folded.stem));
    assert.equal(encodeModel(folded)[4], 2);
    // q * s is the trained kernel, channel by channel (the exporter's integers are the trainer's)
    const g = Array.from(m.getLayer('stem_bn').getWeights()[0].dataSync());
    for (let o = 0; o < 32; o++) {
      if (g[o] === 0) continue;
      const sign = g[o] < 0 ? -1 : 1;
      const q = Array.from({ length: 9 }, (_, t) => sign * folded.stem.weightQ[o * 9 + t]);
      const s = Math.max(...Array.from({ length: 9 }, (_, t) => Math.abs(k[t * 32 + o]))) / 127;
      for (let t = 0; t < 9; t++) assert.equal(Math.fround(q[t] * Math.fround(s)), k[t * 32 + o], `channel ${o} tap ${t}`);
    }
    // the tfjs graph and the TS reference of the exported blob agree on real faces (float rounding only)
    const { referenceScores, compareScores } = require('../dist/engine/reference');
    const { decodeModel } = require('../dist/model/format');
    const test = await loadImageFolder(path.join(fer2013Dir(), 'PublicTest'), { limitPerLabel: 30 });
    const faces = Array.from({ length: 200 }, (_, i) => test.pixels.slice(i * 2304, (i + 1) * 2304));
    const x = facesToTensor(faces);
    const y = m.predict(x);
    const all = y.dataSync();
    x.dispose();
    y.dispose();
    const tfjsScores = faces.map((_, i) => all.slice(i * 7, (i + 1) * 7));
    const blobModel = decodeModel(encodeModel(folded));
    const refScores = faces.map((f) => referenceScores(blobModel, f));
    const agree = compareScores(tfjsScores, refScores);
    // float rounding moves scores by ~1e-6; a value within that of its sign threshold can flip one
    // activation bit, which moves that face's scores by up to a few 1e-2: such faces must stay rare
    const beyond = tfjsScores.filter((t, i) => t.some((v, c) => Math.abs(v - refScores[i][c]) > 1e-4)).length;
    process.stdout.write(`      tfjs vs TS reference, int8 stem, ${faces.length} PublicTest faces: top class ${agree.top1Agree}/${faces.length}, ` +
      `max |score diff| ${agree.maxAbsDiff.toExponential(2)}, faces beyond 1e-4: ${beyond}\n`);
    assert.ok(agree.top1Agree >= faces.length - 2 && agree.maxAbsDiff < 0.05 && beyond <= faces.length / 50, JSON.stringify({ ...agree, beyond }));
    assert.ok(new Set(refScores.map((r) => r.indexOf(Math.max(...r)))).size > 1, 'the faces get different classes');
    // a network trained without stemInt8 exports a float stem (format version 1)
    const plain = foldModel(buildNetwork({ seed: 5 }), 'float stem');
    assert.ok(!isInt8Stem(plain.stem));
    assert.equal(encodeModel(plain)[4], 1);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('fitInt8Stem: r8\'s float stem as int8, keeping far more first-block signs and top classes than rounding to nearest, on the trainer\'s grid; setGraphInt8Stem puts it in the graph', async function () {
    const { fitInt8Stem } = require('../dist/train/stem-fit');
    const { foldModel, setGraphInt8Stem } = require('../dist/model/fold');
    const { decodeModel } = require('../dist/model/format');
    const { isInt8Stem } = require('../dist/model/folded');
    const { loadImageFolder } = require('../dist/train/data');
    const { loadLayersModelFromDisk } = require('../dist/engine/tfjs');
    const { BinaryEngine } = require('../dist/engine/binary');
    const { encodeModel } = require('../dist/model/format');
    const { argmax } = require('../dist/train/evaluate');
    const dir = path.join(__dirname, 'fixtures', 'models', 'tinyfer-b1f');
    const folded = decodeModel(fs.readFileSync(dir + '.tfer')); // r8: a float stem
    const train = await loadImageFolder(path.join(fer2013Dir(), 'Training'), { limitPerLabel: 30 });
    const fit = fitInt8Stem(folded, train.pixels, { faces: 150 });
    assert.equal(fit.faces, 150);
    assert.ok(fit.flipsFitted < fit.flipsNearest / 2, `flips per face: nearest ${fit.flipsNearest}, fitted ${fit.flipsFitted}`);
    for (let o = 0; o < 32; o++) {
      const q = Array.from(fit.stem.weightQ.subarray(o * 9, o * 9 + 9), Math.abs);
      assert.equal(Math.max(...q), 127, `channel ${o}: the largest weight on +-127`);
      assert.ok(fit.stem.scale[o] > 0 && Number.isFinite(fit.stem.bias[o]));
    }
    assert.deepEqual(fitInt8Stem(folded, train.pixels, { faces: 150 }).stem, fit.stem, 'the same faces, the same fit');
    // on faces it never saw: r8's top class kept more often than with the stem rounded to nearest
    const test = await loadImageFolder(path.join(fer2013Dir(), 'PublicTest'), { limitPerLabel: 80 });
    const faces = Array.from({ length: test.labels.length }, (_, i) => test.pixels.subarray(i * 2304, (i + 1) * 2304));
    const top = async (m) => {
      const e = await BinaryEngine.load(encodeModel(m));
      const s = await e.classify(faces);
      e.dispose();
      return s.map(argmax);
    };
    const base = await top(folded);
    const nearest = await top({ ...folded, stem: { ...folded.stem, weight: quantizePerChannel(folded.stem.weight, 32, 127, 'first') } });
    const fitted = await top({ ...folded, stem: fit.stem });
    const same = (p) => p.filter((c, i) => c === base[i]).length;
    process.stdout.write(`      r8's top class on ${faces.length} PublicTest faces: int8 stem fitted ${same(fitted)}, rounded to nearest ${same(nearest)}\n`);
    assert.ok(same(fitted) > same(nearest), `${same(fitted)} vs ${same(nearest)}`);
    // into the graph: the exporter gives the integers back, scale and bias to a float rounding
    const model = await loadLayersModelFromDisk(tf, dir);
    setGraphInt8Stem(tf, model, fit.stem);
    const back = foldModel(model).stem;
    assert.ok(isInt8Stem(back));
    assert.deepEqual(Array.from(back.weightQ), Array.from(fit.stem.weightQ));
    for (let o = 0; o < 32; o++) {
      assert.ok(Math.abs(back.scale[o] / fit.stem.scale[o] - 1) < 1e-6, `scale ${o}`);
      assert.ok(Math.abs(back.bias[o] - fit.stem.bias[o]) < 1e-5, `bias ${o}`);
    }
    const k = model.getLayer('stem_conv').getWeights()[0].dataSync();
    assert.deepEqual(Array.from(quantizePerChannel(k, 32)), Array.from(k), 'train --stem-int8 keeps the kernel');
    // refusals
    assert.throws(() => fitInt8Stem({ ...folded, stem: fit.stem }, train.pixels), /the stem is already int8/);
    assert.throws(() => fitInt8Stem(folded, new Uint8Array(100)), /no faces to fit the int8 stem on/);
    assert.throws(() => fitInt8Stem({ ...folded, blocks: folded.blocks.slice(2) }, train.pixels), /the first block after the stem must be binary/);
    const off = { ...fit.stem, weightQ: Int8Array.from(fit.stem.weightQ, (v) => (Math.abs(v) === 127 ? Math.sign(v) * 126 : v)) };
    assert.throws(() => setGraphInt8Stem(tf, model, off), /stem channel 0: not on the int8 grid \(largest \|q\| 126/);
    model.dispose();
  });

  it('predictScores with test-time views gives the mean of the scores of each view', async function () {
    const h = await loadTf();
    const { loadImageFolder } = require('../dist/train/data');
    const { predictScores } = require('../dist/train/train');
    const { viewsOf } = require('../dist/engine/views');
    const data = await loadImageFolder(path.join(fer2013Dir(), 'PublicTest'), { limitPerLabel: 1 });
    const n = data.labels.length;
    const model = buildNetwork({ seed: 3 });
    // the dataset as seen through view v of every face
    const viewSet = (v) => {
      const pixels = new Uint8Array(data.pixels.length);
      for (let i = 0; i < n; i++) pixels.set(viewsOf(data.pixels.slice(i * 2304, (i + 1) * 2304), 10)[v], i * 2304);
      return { ...data, pixels };
    };
    const each = [];
    for (let v = 0; v < 10; v++) each.push(await predictScores(h.tf, model, viewSet(v)));
    const two = await predictScores(h.tf, model, data, 10, 2); // batches of 5 faces: the last one is short
    const ten = await predictScores(h.tf, model, data, 40, 10);
    let differ = 0;
    for (let i = 0; i < ten.length; i++) {
      assert.ok(Math.abs(two[i] - (each[0][i] + each[1][i]) / 2) < 1e-5, `2 views, score ${i}`);
      assert.ok(Math.abs(ten[i] - each.reduce((a, e) => a + e[i], 0) / 10) < 1e-5, `10 views, score ${i}`);
      differ = Math.max(differ, Math.abs(each[0][i] - each[1][i]), Math.abs(each[0][i] - each[2][i]));
    }
    assert.ok(differ > 1e-4, 'the views score differently');
    model.dispose();
  });

  it('training refuses a backend without native gradients', async function () {
    const { loadTfForTraining } = require('../dist/engine/tf');
    const h = await loadTf();
    if (h.runtime === 'tensorflow') {
      await loadTfForTraining(); // does not throw
    } else {
      await assert.rejects(loadTfForTraining(), /needs @tensorflow\/tfjs-node/);
    }
  });
});
