'use strict';
// The binary engine: the C core compiled to wasm equals the TS reference (src/engine/reference.ts)
// on real FER2013 faces, rejects bad blobs and bad faces with clear errors.
const assert = require('node:assert/strict');
const fs = require('node:fs');

const { BinaryEngine, wasmPath } = require('../dist/engine/binary');
const { referenceScores, compare, compareScores, expf32 } = require('../dist/engine/reference');
const { randomFoldedModel, loadTestFaces, readVectors } = require('../dist/engine/vectors');
const { benchBinary } = require('../dist/engine/bench');
const views = require('../dist/engine/views');
const { encodeModel } = require('../dist/model/format');
const { DEFAULT_MODEL_BLOB } = require('../dist/engine/open');
const { LABELS } = require('../dist/model/labels');
const { fer2013Dir, requireData } = require('./helpers/data');

const TOLERANCE = 1e-4;

describe('engine: binary (wasm core)', function () {
  const model = randomFoldedModel(11);
  const blob = encodeModel(model);
  let faces;
  let engine;

  before(async function () {
    requireData(this, fer2013Dir());
    ({ faces } = await loadTestFaces(150));
    engine = await BinaryEngine.load(blob);
  });
  after(() => engine && engine.dispose());

  it('is a FaceClassifier with the binary backend on wasm, the model labels and the planned arena', function () {
    assert.equal(engine.backend, 'binary');
    assert.equal(engine.runtime, 'wasm');
    assert.deepEqual([...engine.labels], [...LABELS]);
    assert.equal(engine.blobSize, blob.length);
    assert.ok(engine.arenaSize > 0 && engine.arenaSize <= 96 * 1024, `arena ${engine.arenaSize}`);
  });

  it(`equals the TS reference on 150 real faces (|diff| <= ${TOLERANCE}, same top class)`, async function () {
    const got = await engine.classify(faces);
    const want = faces.map((f) => referenceScores(model, f));
    const a = compareScores(got, want);
    assert.ok(a.maxAbsDiff <= TOLERANCE, `max |diff| ${a.maxAbsDiff}`);
    assert.equal(a.top1Agree, faces.length);
    // the core and the reference do the same float32 operations in the same order
    assert.equal(a.exact, faces.length, `bit-exact on ${a.exact}/${faces.length}`);
    // and the scores are real distributions that vary from face to face
    for (const s of got) assert.ok(Math.abs(s.reduce((x, y) => x + y, 0) - 1) < 1e-5);
    assert.ok(new Set(got.map((s) => s.indexOf(Math.max(...s)))).size > 1, 'more than one predicted class');
  });

  it('equals the shared TS<->C vectors when they have been generated', async function () {
    const v = readVectors();
    if (!v) this.skip(); // written by `node dist/engine/vectors.js` (the C ctest reads the same files)
    const e = await BinaryEngine.load(v.blob);
    try {
      const a = compareScores(await e.classify(v.faces), v.scores);
      assert.ok(a.maxAbsDiff <= TOLERANCE, `max |diff| ${a.maxAbsDiff}`);
      assert.equal(a.top1Agree, v.faces.length);
    } finally {
      e.dispose();
    }
  });

  it('equals the reference with the bundled trained model, when there is one', async function () {
    if (!fs.existsSync(DEFAULT_MODEL_BLOB)) this.skip();
    const trained = fs.readFileSync(DEFAULT_MODEL_BLOB);
    const e = await BinaryEngine.load(trained);
    try {
      const { decodeModel } = require('../dist/model/format');
      const a = await compare(decodeModel(trained), faces.slice(0, 50), e);
      assert.ok(a.maxAbsDiff <= TOLERANCE, `max |diff| ${a.maxAbsDiff}`);
      assert.equal(a.top1Agreement, 1);
    } finally {
      e.dispose();
    }
  });

  it('compare() takes a classifier or precomputed scores', async function () {
    const few = faces.slice(0, 5);
    const viaEngine = await compare(model, few, engine);
    assert.deepEqual(viaEngine, { faces: 5, maxAbsDiff: 0, top1Agree: 5, top1Agreement: 1, exact: 5 });
    const shifted = (await engine.classify(few)).map((s) => s.map((x, i) => (i === 0 ? x + 0.01 : x)));
    const viaScores = await compare(model, few, shifted);
    assert.ok(Math.abs(viaScores.maxAbsDiff - 0.01) < 1e-6);
    assert.equal(viaScores.exact, 0);
    assert.throws(() => compareScores([new Float32Array(7)], []), /score lists differ in length: 1 vs 0/);
  });

  it('keeps several models apart (one wasm instance each) and batches beyond 64 faces', async function () {
    const other = randomFoldedModel(12);
    const e2 = await BinaryEngine.load(encodeModel(other));
    try {
      const many = faces.concat(faces).slice(0, 130);
      const [a, b] = [await engine.classify(many), await e2.classify(many)];
      assert.equal(a.length, 130);
      assert.deepEqual(a[129], referenceScores(model, many[129]));
      assert.deepEqual(b[129], referenceScores(other, many[129]));
      assert.notDeepEqual(a[0], b[0]);
      assert.deepEqual(await engine.classify([]), []);
    } finally {
      e2.dispose();
    }
  });

  it('rejects faces that are not Uint8Array(2304), naming the face', async function () {
    await assert.rejects(engine.classify([faces[0], new Uint8Array(100)]), /face 1 must be a Uint8Array of 2304 grayscale pixels \(48x48, row-major\), got a Uint8Array of 100 bytes/);
    await assert.rejects(engine.classify([new Float32Array(2304)]), /face 0 must be a Uint8Array of 2304 .*got Float32Array/);
    await assert.rejects(engine.classify([null]), /face 0 .* got null/);
    await assert.rejects(engine.classify(faces[0]), /classify\(\) takes an array of faces/);
  });

  it('rejects corrupt blobs with the core\'s message', async function () {
    await assert.rejects(BinaryEngine.load('model'), /BinaryEngine.load\(\) takes the model blob as a Uint8Array/);
    const bad = Uint8Array.from(blob);
    bad[100] ^= 0xff;
    await assert.rejects(BinaryEngine.load(bad), /the core rejected the model: CRC mismatch: the model blob is corrupt \[error -8\]/);
    await assert.rejects(BinaryEngine.load(blob.subarray(0, 1000)), /the model blob is truncated \[error -3\] \(TinyFER model: truncated: header says \d+ bytes/);
    await assert.rejects(BinaryEngine.load(new TextEncoder().encode('{"modelTopology": {}}')), /bad magic: not a TinyFER model blob/);
  });

  it('accepts and rejects the same blobs as the TS reader (400 seeded mutations)', async function () {
    const { crc32, decodeModel, blobLayout } = require('../dist/model/format');
    const { seededRandom } = require('../dist/engine/vectors');
    const rnd = seededRandom(99);
    // block and head headers: where shapes, strides and flags live
    const headers = blobLayout(blob).filter((s) => /^(block|head)/.test(s.section)).map((s) => s.offset);
    let accepted = 0;
    for (let n = 0; n < 400; n++) {
      const b = Uint8Array.from(blob);
      const r = rnd();
      const at = r < 0.5 ? 16 + Math.floor(rnd() * 112) : r < 0.8 ? headers[Math.floor(rnd() * headers.length)] + Math.floor(rnd() * 8) : Math.floor(rnd() * b.length);
      b[at] = rnd() < 0.5 ? b[at] ^ (1 << Math.floor(rnd() * 8)) : Math.floor(rnd() * 256);
      const v = new DataView(b.buffer);
      v.setUint32(8, b.length, true);
      v.setUint32(12, crc32(b.subarray(16)), true);
      let ts = true;
      try {
        decodeModel(b);
      } catch {
        ts = false;
      }
      let c = true;
      try {
        (await BinaryEngine.load(b)).dispose();
      } catch (e) {
        assert.match(e.message, /^TinyFER binary engine: the core rejected the model: .+ \[error -\d+\]/);
        c = false;
      }
      assert.equal(c, ts, `mutation ${n} at byte ${at}: C ${c ? 'accepts' : 'rejects'}, TS ${ts ? 'accepts' : 'rejects'}`);
      accepted += ts ? 1 : 0;
    }
    assert.ok(accepted > 20 && accepted < 380, `${accepted} of 400 accepted: the mutations test both outcomes`);
  });

  it('refuses to classify after dispose()', async function () {
    const e = await BinaryEngine.load(blob);
    e.dispose();
    await assert.rejects(e.classify([faces[0]]), /classify\(\) after dispose\(\)/);
  });

  it('benchBinary reports latency and sizes', async function () {
    const r = await benchBinary(blob, faces.slice(0, 10), 10);
    assert.equal(r.runtime, 'wasm');
    assert.equal(r.inferences, 10);
    for (const k of ['perFaceMs', 'perFaceBatchedMs', 'facesPerSecond']) assert.ok(Number.isFinite(r[k]) && r[k] > 0, k);
    assert.equal(r.blobBytes, blob.length);
    assert.equal(r.wasmBytes, fs.statSync(wasmPath()).size);
    assert.equal(r.arenaBytes, engine.arenaSize);
    assert.equal(r.views, 1);
    const m = await benchBinary(blob, faces.slice(0, 10), 10, { views: 10 });
    assert.equal(m.views, 10);
    for (const k of ['perFaceMs', 'perFaceBatchedMs', 'facesPerSecond']) assert.ok(Number.isFinite(m[k]) && m[k] > 0, k);
  });

  it('ships a wasm core built from the current C sources (reproducible with clang-14)', function () {
    const { execFileSync } = require('node:child_process');
    const os = require('node:os');
    const path = require('node:path');
    try {
      execFileSync('clang-14', ['--version'], { stdio: 'ignore' });
      execFileSync('wasm-ld', ['--version'], { stdio: 'ignore' });
    } catch {
      this.skip(); // the byte comparison needs the same compiler that built the committed file
    }
    this.timeout(120000);
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-wasm-')), 'core.wasm');
    execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'build-wasm.sh')], { env: { ...process.env, CLANG: 'clang-14', TFR_WASM_OUT: out }, stdio: 'ignore' });
    const committed = path.join(__dirname, '..', 'src', 'engine', 'tinyfer_core.wasm');
    assert.ok(fs.readFileSync(out).equals(fs.readFileSync(committed)), 'src/engine/tinyfer_core.wasm is stale: run npm run build:wasm');
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });

  it('expf32 is within 2e-7 relative of exp', function () {
    for (let x = -80; x < 80; x += 0.37) {
      assert.ok(Math.abs(expf32(x) / Math.exp(Math.fround(x)) - 1) < 2e-7, `x=${x}`);
    }
    assert.equal(expf32(-100), 0);
  });
});

describe('engine: test-time views', function () {
  const face = Uint8Array.from({ length: 2304 }, (_, i) => (i * 7 + (i >> 5)) & 255);
  const at = (f, x, y) => f[y * 48 + x];

  it('mirrorFace flips rows; shiftFace moves by whole pixels and repeats the edge', function () {
    const m = views.mirrorFace(face);
    assert.equal(at(m, 0, 5), at(face, 47, 5));
    assert.deepEqual(views.mirrorFace(m), face);
    const r = views.shiftFace(face, 1, 0); // one pixel right
    assert.equal(at(r, 10, 3), at(face, 9, 3));
    assert.equal(at(r, 0, 3), at(face, 0, 3)); // edge column repeated
    const u = views.shiftFace(face, 0, -1); // one pixel up
    assert.equal(at(u, 4, 10), at(face, 4, 11));
    assert.equal(at(u, 4, 47), at(face, 4, 47));
    assert.deepEqual(views.shiftFace(face, 0, 0), face);
    for (const bad of [() => views.mirrorFace(new Uint8Array(10)), () => views.shiftFace(new Uint8Array(2305), 1, 0)]) {
      assert.throws(bad, /a face has 2304 pixels, got \d+/);
    }
  });

  it('viewsOf: 1, 2 or 10 distinct views, the face first, its mirror second', function () {
    assert.deepEqual(views.viewsOf(face, 1), [face]);
    const ten = views.viewsOf(face, 10);
    assert.equal(ten.length, 10);
    assert.equal(ten[0], face);
    assert.deepEqual(ten[1], views.mirrorFace(face));
    assert.deepEqual(ten[2], views.shiftFace(face, 1, 0));
    assert.deepEqual(ten[3], views.shiftFace(views.mirrorFace(face), 1, 0));
    const keys = new Set(ten.map((v) => Buffer.from(v).toString('base64')));
    assert.equal(keys.size, 10);
  });

  it('averageViews takes the mean of each face\'s group; parseViews accepts only 1, 2, 10', function () {
    const s = (...v) => Float32Array.from(v);
    assert.deepEqual(views.averageViews([s(1, 0), s(0, 1), s(0.5, 0.5), s(1, 0)], 2), [s(0.5, 0.5), s(0.75, 0.25)]);
    assert.throws(() => views.averageViews([s(1), s(1), s(1)], 2), /3 scores are not whole groups of 2 views/);
    assert.deepEqual(['1', 2, ' 10 '].map((v) => views.parseViews(v)), [1, 2, 10]);
    for (const bad of [3, '', 'ten', null, 0]) assert.throws(() => views.parseViews(bad), /views must be one of 1, 2, 10/);
  });

  it('classifyViews scores each face as the mean of its views\' scores (one classify call)', async function () {
    const engine = await BinaryEngine.load(encodeModel(randomFoldedModel(5)));
    const faces = [face, views.shiftFace(face, 3, 2)];
    let calls = 0;
    const counting = { classify: (f) => (calls++, engine.classify(f)) };
    const got = await views.classifyViews(counting, faces, 10);
    assert.equal(calls, 1);
    for (let i = 0; i < faces.length; i++) {
      const each = await engine.classify(views.viewsOf(faces[i], 10));
      for (let k = 0; k < 7; k++) {
        const mean = each.reduce((a, e) => a + e[k], 0) / 10;
        assert.ok(Math.abs(got[i][k] - mean) < 1e-6, `face ${i} class ${k}`);
      }
    }
    assert.deepEqual(await views.classifyViews(counting, [], 10), []);
    engine.dispose();
  });
});
