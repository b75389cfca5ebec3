'use strict';
// Dataset loaders on small real slices of ../shared/data, with broken files mixed in.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sharp = require('sharp');

const { loadImageFolder, loadFer2013Csv, loadDataset, subjectFolds, subjectOf } = require('../dist/train/data');
const { computeMetrics } = require('../dist/train/evaluate');
const { LABELS } = require('../dist/model/labels');
const { fer2013Dir, ckplusDir, jaffeDir, requireData } = require('./helpers/data');

function tmpdir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tinyfer-${tag}-`));
}

describe('data: loaders', function () {
  let slice;
  before(function () {
    requireData(this, fer2013Dir());
    // A small real slice of FER2013 PublicTest: 3 images of each label, plus broken files.
    slice = tmpdir('slice');
    const src = path.join(fer2013Dir(), 'PublicTest');
    for (const label of fs.readdirSync(src)) {
      fs.mkdirSync(path.join(slice, label));
      for (const f of fs.readdirSync(path.join(src, label)).sort().slice(0, 3)) {
        fs.copyFileSync(path.join(src, label, f), path.join(slice, label, f));
      }
    }
    const firstHappy = fs.readdirSync(path.join(slice, 'happy'))[0];
    const bytes = fs.readFileSync(path.join(slice, 'happy', firstHappy));
    fs.writeFileSync(path.join(slice, 'happy', 'truncated.jpg'), bytes.subarray(0, 40));
    fs.writeFileSync(path.join(slice, 'sad', 'not-an-image.jpg'), Buffer.from('hello, I am text'));
    fs.writeFileSync(path.join(slice, 'sad', 'empty.png'), Buffer.alloc(0));
    fs.writeFileSync(path.join(slice, 'README.txt'), 'files beside the label folders are ignored');
  });
  after(function () {
    if (slice) fs.rmSync(slice, { recursive: true, force: true });
  });

  it('reads a <root>/<label>/* folder, skipping and counting unreadable files', async function () {
    const warnings = [];
    const onWarn = (w) => warnings.push(w.message);
    process.on('warning', onWarn);
    const d = await loadImageFolder(slice);
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarn);
    assert.equal(d.labels.length, 21);
    assert.equal(d.pixels.length, 21 * 2304);
    assert.equal(d.skipped.length, 3);
    assert.deepEqual(d.skipped.map((s) => path.basename(s.source)).sort(), ['empty.png', 'not-an-image.jpg', 'truncated.jpg']);
    assert.ok(warnings.some((w) => /3 unreadable image/.test(w)), 'a warning names the count');
    // Labels follow LABELS order whatever the folder order (FER2013 sorts neutral before sad).
    const happy = d.sources.findIndex((s) => s.includes(`${path.sep}happy${path.sep}`));
    assert.equal(LABELS[d.labels[happy]], 'happy');
    const neutral = d.sources.findIndex((s) => s.includes(`${path.sep}neutral${path.sep}`));
    assert.equal(LABELS[d.labels[neutral]], 'neutral');
  });

  it('decodes a 48x48 JPEG to exactly its own pixels', async function () {
    const d = await loadImageFolder(slice);
    const { data } = await sharp(d.sources[0]).grayscale().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual(Buffer.from(d.pixels.subarray(0, 2304)), data);
  });

  it('caches decoded faces and gives the same result from the cache', async function () {
    const cache = tmpdir('cache');
    const a = await loadImageFolder(slice, { cacheDir: cache });
    assert.equal(fs.readdirSync(cache).filter((f) => f.endsWith('.bin')).length, 1);
    const b = await loadImageFolder(slice, { cacheDir: cache });
    assert.deepEqual(Buffer.from(b.pixels), Buffer.from(a.pixels));
    assert.deepEqual(Array.from(b.labels), Array.from(a.labels));
    assert.equal(b.skipped.length, 3);
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('reads the FER2013 CSV layout (emotion codes, Usage split, bad rows skipped)', async function () {
    const d = await loadImageFolder(slice);
    // CSV codes: 0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral (the same order as LABELS).
    const rows = ['emotion,pixels,Usage'];
    for (let i = 0; i < d.labels.length; i++) {
      rows.push(`${d.labels[i]},${Array.from(d.pixels.subarray(i * 2304, (i + 1) * 2304)).join(' ')},${i % 2 ? 'PrivateTest' : 'Training'}`);
    }
    rows.push('9,1 2 3,PrivateTest');
    rows.push(`3,${'7 '.repeat(100)},PrivateTest`);
    const file = path.join(tmpdir('csv'), 'fer2013.csv');
    fs.writeFileSync(file, rows.join('\n') + '\n');
    const priv = await loadFer2013Csv(file, 'PrivateTest');
    assert.equal(priv.labels.length, 10);
    assert.equal(priv.skipped.length, 2);
    assert.deepEqual(Buffer.from(priv.pixels.subarray(0, 2304)), Buffer.from(d.pixels.subarray(2304, 2 * 2304)));
    assert.equal(priv.labels[0], d.labels[1]);
    const all = await loadDataset(file);
    assert.equal(all.labels.length, 21);
    await assert.rejects(loadFer2013Csv(path.join(path.dirname(file), 'missing.csv')), /CSV not found/);
    fs.writeFileSync(file, 'a,b,c\n1,2,3\n');
    await assert.rejects(loadFer2013Csv(file), /not a FER2013 CSV/);
  });

  it('fails clearly on a folder that is not a dataset', async function () {
    await assert.rejects(loadImageFolder(path.join(slice, 'nope')), /dataset folder not found/);
    const empty = tmpdir('empty');
    await assert.rejects(loadImageFolder(empty), /no images under/);
    fs.rmSync(empty, { recursive: true, force: true });
  });
});

describe('data: subjects and folds', function () {
  it('extracts subject keys from CK+ and JAFFE file names', function () {
    assert.equal(subjectOf('/x/anger/S010_004_00000017.png'), 'S010');
    assert.equal(subjectOf('happy/KA.HA1.29.tiff'), 'KA');
    assert.equal(subjectOf('fer/Training_123.jpg'), '');
    assert.equal(subjectOf('p07-smile-3.png', /^p(\d+)-/), '07');
  });

  it('CK+ (real): its own 7 classes, subject-independent 10 folds', async function () {
    requireData(this, ckplusDir());
    const d = await loadImageFolder(ckplusDir(), { ownLabels: true });
    assert.deepEqual(d.classNames, ['anger', 'contempt', 'disgust', 'fear', 'happy', 'sadness', 'surprise']);
    assert.equal(d.labels.length, 981);
    const folds = subjectFolds(d, 10);
    assert.equal(folds.flat().length, 981);
    const seen = new Map();
    folds.forEach((f, k) => f.forEach((i) => {
      const s = d.subjects[i];
      assert.ok(!seen.has(s) || seen.get(s) === k, `subject ${s} in two folds`);
      seen.set(s, k);
    }));
    assert.equal(seen.size, 118);
    const sizes = folds.map((f) => f.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) < 40, `unbalanced folds ${sizes}`);
    // Mapped onto our labels instead, contempt is left out and reported.
    const ours = await loadImageFolder(ckplusDir());
    assert.equal(ours.ignoredLabels.contempt, 54);
    assert.equal(ours.labels.length, 981 - 54);
  });

  it('JAFFE (real): TIFFs decode, 10 subjects', async function () {
    requireData(this, jaffeDir());
    const d = await loadImageFolder(jaffeDir());
    assert.equal(d.labels.length, 213);
    assert.equal(d.skipped.length, 0);
    assert.equal(new Set(d.subjects).size, 10);
    assert.throws(() => subjectFolds(d, 11), /only 10 subjects/);
  });

  it('JAFFE (real) with detect: each portrait\'s face is found and cropped; an image without a face is skipped and counted', async function () {
    requireData(this, jaffeDir());
    this.timeout(120000);
    const dir = tmpdir('detect');
    for (const label of ['happy', 'surprise']) {
      fs.mkdirSync(path.join(dir, label));
      for (const f of fs.readdirSync(path.join(jaffeDir(), label)).sort().slice(0, 3)) fs.copyFileSync(path.join(jaffeDir(), label, f), path.join(dir, label, f));
    }
    // a 256x256 grey image: nothing to detect
    await sharp({ create: { width: 256, height: 256, channels: 3, background: '#808080' } }).png().toFile(path.join(dir, 'happy', 'blank.png'));
    const whole = await loadImageFolder(dir);
    const cropped = await loadImageFolder(dir, { detect: true });
    assert.equal(whole.labels.length, 7);
    assert.equal(cropped.labels.length, 6);
    assert.deepEqual(cropped.skipped.map((s) => [path.basename(s.source), s.reason]), [['blank.png', 'no face found']]);
    assert.deepEqual(cropped.subjects, whole.subjects.filter((_, i) => !whole.sources[i].endsWith('blank.png')));
    // the crop is the face, not the whole portrait: every face differs from its whole-image version
    const face = (d, i) => d.pixels.subarray(i * 2304, (i + 1) * 2304);
    for (let i = 0; i < cropped.labels.length; i++) {
      const j = whole.sources.indexOf(cropped.sources[i]);
      let diff = 0;
      for (let p = 0; p < 2304; p++) diff += Math.abs(face(cropped, i)[p] - face(whole, j)[p]);
      assert.ok(diff / 2304 > 10, `${cropped.sources[i]}: mean difference ${diff / 2304}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('detect is refused for a FER2013 CSV (its faces are crops already)', async function () {
    const csv = path.join(os.tmpdir(), `tinyfer-detect-${process.pid}.csv`);
    fs.writeFileSync(csv, 'emotion,pixels,Usage\n');
    await assert.rejects(loadDataset(csv, { detect: true }), /face detection applies to image folders/);
    fs.rmSync(csv, { force: true });
  });
});

describe('eval: metrics', function () {
  it('accuracy, per-class precision/recall/F1 and the confusion matrix', function () {
    const truth = [0, 0, 1, 1, 3, 3, 3, 6];
    const pred = [0, 1, 1, 1, 3, 3, 0, 6];
    const r = computeMetrics(truth, pred, [0, 1, 3, 6]);
    assert.equal(r.accuracy, 6 / 8);
    assert.equal(r.confusion[0][1], 1);
    assert.equal(r.confusion[3][0], 1);
    const angry = r.perClass.find((m) => m.label === 'angry');
    assert.equal(angry.precision, 1 / 2);
    assert.equal(angry.recall, 1 / 2);
    const disgust = r.perClass.find((m) => m.label === 'disgust');
    assert.equal(disgust.precision, 2 / 3);
    assert.equal(disgust.recall, 1);
    assert.ok(Math.abs(disgust.f1 - 0.8) < 1e-12);
    assert.equal(r.perClass.length, 4);
  });
});
