'use strict';
// One tfjs measurement in its own process (the tfjs backend is process-wide):
//   node bench/tfjs-worker.js <tensorflow|wasm> <twin|faceapi> [modelDir] [--accuracy N]
// Prints one JSON line: { backend, model, msPerFace, facesPerSec, accuracy? }.
// Latency is per face, one face per call (what a flow does), after a warm-up; wasm runs on one thread.
process.env.TF_CPP_MIN_LOG_LEVEL = '2';
const path = require('node:path');
const fs = require('node:fs');

async function main() {
  const [runtime, what, modelDir] = process.argv.slice(2);
  const accIdx = process.argv.indexOf('--accuracy');
  const accN = accIdx > 0 ? Number(process.argv[accIdx + 1]) : 0;
  const itersIdx = process.argv.indexOf('--iters');
  const iters = itersIdx > 0 ? Number(process.argv[itersIdx + 1]) : 300;
  if (runtime === 'wasm') {
    process.env.TINYFER_TF = 'wasm';
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setThreadsCount(1);
  }
  const { loadTf } = require('../dist/engine/tf');
  const { tf, runtime: got } = await loadTf();
  if ((runtime === 'wasm' && got !== 'wasm') || (runtime === 'tensorflow' && got !== 'tensorflow')) {
    throw new Error(`asked for ${runtime}, got ${got}`);
  }
  const { loadImageFolder } = require('../dist/train/data');
  const { dataRoot } = require('../test/helpers/data');
  const split = path.join(dataRoot(), 'fer2013', 'PublicTest');
  const data = await loadImageFolder(split, { cacheDir: path.resolve(__dirname, '..', '.cache', 'faces') });
  const n = data.labels.length;
  const faceAt = (i) => data.pixels.subarray(i * 2304, (i + 1) * 2304);

  let classify; // (Uint8Array face) -> Promise<Float32Array scores in LABELS order>
  let modelName;
  if (what === 'twin') {
    const { TfjsEngine } = require('../dist/engine/tfjs');
    const { buildNetwork } = require('../dist/model/network');
    let engine;
    if (modelDir && fs.existsSync(path.join(modelDir, 'model.json'))) {
      engine = await TfjsEngine.load(modelDir);
      modelName = path.basename(modelDir);
    } else {
      const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'twin-'));
      // An untrained float twin: the same graph and cost, for latency only.
      const m = buildNetwork({ binary: false, seed: 1 });
      const io = tf.io.withSaveHandler(async (art) => {
        fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(art.weightData));
        fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: art.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: art.weightSpecs }] }));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      });
      await m.save(io);
      engine = await TfjsEngine.load(dir);
      modelName = 'float twin (untrained)';
    }
    classify = async (f) => (await engine.classify([f]))[0];
  } else if (what === 'faceapi') {
    const pkg = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
    const api = require(path.join(pkg, 'dist', got === 'tensorflow' ? 'face-api.node.js' : 'face-api.node-wasm.js'));
    await api.nets.faceExpressionNet.loadFromDisk(path.join(pkg, 'model'));
    // face-api's expression order -> ours
    const map = { angry: 0, disgusted: 1, fearful: 2, happy: 3, sad: 4, surprised: 5, neutral: 6 };
    modelName = 'face-api expression (float, 310 KB)';
    classify = async (f) => {
      const t = tf.tidy(() => tf.tensor3d(f, [48, 48, 1], 'int32').tile([1, 1, 3]).toFloat());
      const r = await api.nets.faceExpressionNet.predictExpressions(t);
      t.dispose();
      const out = new Float32Array(7);
      for (const [k, v] of Object.entries(r)) if (k in map) out[map[k]] = v;
      return out;
    };
  } else {
    throw new Error(`unknown model kind ${what}`);
  }
  for (let i = 0; i < 30; i++) await classify(faceAt(i % n));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await classify(faceAt(i % n));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / iters;
  const result = { runtime: got, model: modelName, msPerFace: ms, facesPerSec: 1000 / ms };
  if (accN) {
    let ok = 0;
    // An evenly strided sample over the label-sorted split (all of it when accN >= n).
    const m = Math.min(accN, n);
    for (let j = 0; j < m; j++) {
      const i = Math.floor((j * n) / m);
      const s = await classify(faceAt(i));
      let best = 0;
      for (let c = 1; c < 7; c++) if (s[c] > s[best]) best = c;
      if (best === data.labels[i]) ok++;
    }
    result.accuracy = ok / m;
    result.accuracyFaces = m;
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
