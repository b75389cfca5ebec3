'use strict';
// The documented CLI forms: `tinyfer eval --model ... --data ... --json` on folders and CSVs.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { fer2013Dir } = require('./helpers/data');

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'tinyfer.js');

function tinyfer(...args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cli: tinyfer eval', function () {
  let dir;
  let csv;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-cli-'));
    const slice = path.join(dir, 'slice');
    const src = path.join(fer2013Dir(), 'PublicTest');
    const rows = ['emotion,pixels,Usage'];
    const csvCodes = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
    for (const label of fs.readdirSync(src)) {
      fs.mkdirSync(path.join(slice, label), { recursive: true });
      for (const f of fs.readdirSync(path.join(src, label)).sort().slice(0, 4)) {
        fs.copyFileSync(path.join(src, label, f), path.join(slice, label, f));
      }
    }
    fs.writeFileSync(path.join(slice, 'happy', 'broken.jpg'), Buffer.from('not a jpeg'));
    // The same faces as a FER2013 CSV, half of them in PrivateTest.
    const sharp = require('sharp');
    return Promise.all(fs.readdirSync(slice).flatMap((label) => fs.readdirSync(path.join(slice, label))
      .filter((f) => f !== 'broken.jpg')
      .map((f, i) => sharp(path.join(slice, label, f)).grayscale().raw().toBuffer()
        .then((px) => rows.push(`${csvCodes.indexOf(label)},${Array.from(px).join(' ')},${i % 2 ? 'PrivateTest' : 'Training'}`)))))
      .then(() => {
        csv = path.join(dir, 'fer2013.csv');
        fs.writeFileSync(csv, rows.join('\n') + '\n');
      });
  });
  after(function () {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const model of ['models/tinyfer-b1.tfer', 'models/tinyfer-b1']) {
    it(`prints one JSON object with top-1 accuracy (${model}, image folder)`, function () {
      const r = tinyfer('eval', '--model', model, '--data', path.join(dir, 'slice'), '--json');
      assert.equal(r.code, 0, r.err);
      const lines = r.out.trim().split('\n');
      assert.equal(lines.length, 1, `stdout holds one line: ${r.out}`);
      const rep = JSON.parse(lines[0]);
      assert.ok(rep.accuracy >= 0 && rep.accuracy <= 1);
      assert.equal(rep.count, 28);
      assert.equal(rep.skipped, 1);
      assert.equal(rep.backend, model.endsWith('.tfer') ? 'binary' : 'tfjs');
      assert.equal(rep.confusion.flat().reduce((a, b) => a + b, 0), 28);
      assert.equal(rep.correct, Math.round(rep.accuracy * 28));
    });
  }

  it('reads a FER2013 CSV split, and both backends agree on it', function () {
    const a = JSON.parse(tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', csv, '--split', 'PrivateTest', '--json').out);
    const b = JSON.parse(tinyfer('eval', '--model', 'models/tinyfer-b1', '--data', csv, '--split', 'PrivateTest', '--json').out);
    assert.equal(a.count, 14);
    assert.equal(a.accuracy, b.accuracy);
    assert.deepEqual(a.confusion, b.confusion);
  });

  it('--views 10 / --mirror average each face over test-time views (and say so); a bad count is a usage error', function () {
    const slice = path.join(dir, 'slice');
    const run = (...extra) => {
      const r = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', slice, '--json', ...extra);
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out);
    };
    const plain = run();
    const mirror = run('--mirror');
    const ten = run('--views', '10');
    assert.deepEqual([plain.views, mirror.views, ten.views], [1, 2, 10]);
    assert.deepEqual(run('--views', '2').confusion, mirror.confusion);
    for (const rep of [plain, mirror, ten]) {
      assert.equal(rep.count, 28);
      assert.ok(rep.accuracy >= 0 && rep.accuracy <= 1);
    }
    let r = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', slice, '--views', '3');
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--views must be one of 1, 2, 10, got "3"/);
    r = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', slice, '--views', '2', '--mirror');
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /give --views or --mirror, not both/);
  });

  it('--detect crops faces with the detector (FER2013 crops are taken whole, as the frame node does), and is refused for a CSV', function () {
    const r = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', path.join(dir, 'slice'), '--json', '--detect');
    assert.equal(r.code, 0, r.err);
    const rep = JSON.parse(r.out);
    assert.equal(rep.detect, true);
    assert.equal(rep.count, 28);
    const plain = JSON.parse(tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', path.join(dir, 'slice'), '--json').out);
    assert.deepEqual(rep.confusion, plain.confusion);
    const c = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', csv, '--detect');
    assert.equal(c.code, 1);
    assert.match(c.err, /face detection applies to image folders/);
  });

  it('writes report.json and a confusion-matrix PNG with --out', function () {
    const out = path.join(dir, 'report');
    const r = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', path.join(dir, 'slice'), '--out', out);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /accuracy .* %/);
    assert.match(r.out, /confusion \(rows: true, columns: predicted\)/);
    const png = fs.readFileSync(path.join(out, 'confusion.png'));
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    assert.ok(JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')).perClass.length >= 6);
  });

  it('takes a bundled model by its name (tinyfer-b1: the blob on the C core, --backend tfjs its tfjs model)', function () {
    const r = tinyfer('eval', '--model', 'tinyfer-b1', '--data', path.join(dir, 'slice'), '--json');
    assert.equal(r.code, 0, r.err);
    const rep = JSON.parse(r.out);
    assert.equal(rep.backend, 'binary');
    assert.equal(rep.count, 28);
    const t = tinyfer('eval', '--model', 'tinyfer-b1', '--backend', 'tfjs', '--data', path.join(dir, 'slice'), '--json');
    assert.equal(t.code, 0, t.err);
    assert.equal(JSON.parse(t.out).backend, 'tfjs');
    const byPath = JSON.parse(tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', path.join(dir, 'slice'), '--json').out);
    assert.deepEqual(byPath.confusion, rep.confusion);
    // The test blob tinyfer-b1r (repeat passes) is no bundled model: by path only.
    const testBlob = path.join('test', 'fixtures', 'models', 'tinyfer-b1r.tfer');
    const r1r = tinyfer('eval', '--model', testBlob, '--data', path.join(dir, 'slice'), '--json');
    assert.equal(r1r.code, 0, r1r.err);
    assert.equal(JSON.parse(r1r.out).count, 28);
    assert.match(tinyfer('eval', '--model', 'tinyfer-b1r', '--data', path.join(dir, 'slice'), '--json').err,
      /model not found: tinyfer-b1r \(bundled models: tinyfer-b1\)/);
    const bad = tinyfer('eval', '--model', 'tinyfer-b9', '--data', path.join(dir, 'slice'), '--json');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /model not found: tinyfer-b9 \(bundled models: tinyfer-b1\)/);
  });

  it('fails clearly on a missing model, a missing dataset and an unknown command', function () {
    let r = tinyfer('eval', '--model', 'models/nope.tfer', '--data', path.join(dir, 'slice'), '--json');
    assert.equal(r.code, 1);
    assert.match(r.err, /model not found/);
    r = tinyfer('eval', '--model', 'models/tinyfer-b1.tfer', '--data', path.join(dir, 'nope'));
    assert.equal(r.code, 1);
    assert.match(r.err, /dataset folder not found/);
    r = tinyfer('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command/);
  });
});

describe('cli: tinyfer stem-int8', function () {
  it('fits an int8 stem to a float-stem model (saved as a tfjs model whose export is format version 2), and refuses an int8 stem', async function () {
    const { loadTf } = require('../dist/engine/tf');
    if ((await loadTf()).runtime !== 'tensorflow') this.skip(); // saving a tfjs model to disk is tfjs-node's
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-stemint8-cli-'));
    const src = path.join(fer2013Dir(), 'Training');
    for (const label of fs.readdirSync(src)) {
      fs.mkdirSync(path.join(tmp, 'faces', label), { recursive: true });
      for (const f of fs.readdirSync(path.join(src, label)).sort().slice(0, 3)) fs.copyFileSync(path.join(src, label, f), path.join(tmp, 'faces', label, f));
    }
    const out = path.join(tmp, 'm');
    let r = tinyfer('stem-int8', '--model', path.join('test', 'fixtures', 'models', 'tinyfer-b1f'), '--data', path.join(tmp, 'faces'), '--faces', '15', '--out', out);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.faces, 15);
    assert.ok(report.flipsPerFaceFitted < report.flipsPerFaceNearest, r.out);
    r = tinyfer('export', '--model', out, '--out', out + '.tfer');
    assert.equal(r.code, 0, r.err);
    const blob = fs.readFileSync(out + '.tfer');
    assert.equal(blob[4], 2, 'format version 2');
    r = tinyfer('info', '--model', out + '.tfer');
    assert.match(r.out, /; stem 32 int8, binary 32,/);
    // the default model's stem is int8 already
    r = tinyfer('stem-int8', '--model', path.join('models', 'tinyfer-b1'), '--data', path.join(tmp, 'faces'), '--out', path.join(tmp, 'n'));
    assert.equal(r.code, 1);
    assert.match(r.err, /the stem is already int8/);
    r = tinyfer('stem-int8', '--model', out, '--data', path.join(tmp, 'faces'), '--faces', '0', '--out', path.join(tmp, 'n'));
    assert.equal(r.code, 1);
    assert.match(r.err, /--faces must be a positive integer, got 0/);
    assert.ok(!fs.existsSync(path.join(tmp, 'n')), 'nothing written on a refusal');
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});

describe('cli: tinyfer info and train arguments', function () {
  it('info says which runtime, engine and detector run, and the default model sizes', function () {
    const r = tinyfer('info');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^tfjs runtime: (tensorflow|wasm)/m);
    assert.match(r.out, /^face detector: BlazeFace 128 \(else 256\), in a worker thread/m);
    assert.match(r.out, /tinyfer-b1: 69595 parameters/);
    assert.match(r.out, /tinyfer-b1\.tfer: \d+ bytes, format version 3, "tinyfer-b1 [^"]*"; stem 32 int8, binary 32, binary 32, cbam 32, binary 32->56 \/2, binary 56, cbam 56, grid head 3x3 x 8$/m);
  });

  it('info --model <blob> describes the blob (repeat passes, an int8 stem and a grid head included) and names a corrupt one', function () {
    const { encodeModel } = require('../dist/model/format');
    const { randomFoldedModel } = require('../dist/engine/vectors');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-info-'));
    const file = path.join(tmp, 'r.tfer');
    const blob = encodeModel(randomFoldedModel(2, [32, 56], true));
    fs.writeFileSync(file, blob);
    let r = tinyfer('info', '--model', file);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`r\\.tfer: ${blob.length} bytes, format version 1, "random tinyfer-b1r seed 2"; stem 32, binary 32, binary 32, repeat of block 0, repeat of block 1, cbam 32, binary 32->56 /2, binary 56, repeat of block 6, cbam 56, global average$`, 'm'));
    // the float-stem test blob (r8, format version 1; the default's int8 stem: the test above)
    r = tinyfer('info', '--model', path.join('test', 'fixtures', 'models', 'tinyfer-b1f.tfer'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /tinyfer-b1f\.tfer: \d+ bytes, format version 1, "tinyfer-b1f[^"]*"; stem 32, binary 32, binary 32, cbam 32, binary 32->56 \/2, binary 56, cbam 56, global average$/m);
    // the grid-head test blob (format version 3)
    r = tinyfer('info', '--model', path.join('test', 'fixtures', 'models', 'tinyfer-b1g.tfer'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /tinyfer-b1g\.tfer: 32580 bytes, format version 3, "tinyfer-b1g[^"]*"; stem 32 int8, binary 32, binary 32, cbam 32, binary 32->56 \/2, binary 56, cbam 56, grid head 3x3 x 8$/m);
    fs.writeFileSync(file, blob.subarray(0, 100));
    r = tinyfer('info', '--model', file);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /r\.tfer: 100 bytes, not readable: TinyFER model: truncated/);
  });

  it('train refuses an unknown --arch before loading anything', function () {
    const r = tinyfer('train', '--arch', 'tinyfer-b9', '--data', 'nowhere', '--out', path.join(os.tmpdir(), 'never'));
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--arch must be one of tinyfer-b1, tinyfer-b2, tinyfer-b1r, tinyfer-b1g, got tinyfer-b9/);
  });

  it('train and cv refuse an --augment strength outside 0..1 and a --dropout outside [0, 1) before loading anything', function () {
    for (const cmd of ['train', 'cv']) {
      const out = path.join(os.tmpdir(), 'never');
      let r = tinyfer(cmd, '--augment', '1.5', '--data', 'nowhere', '--out', out);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /--augment must be between 0 and 1/);
      r = tinyfer(cmd, '--dropout', '1', '--data', 'nowhere', '--out', out);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /--dropout must be in \[0, 1\)/);
    }
  });
});
