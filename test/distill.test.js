'use strict';
// Knowledge distillation: teacher scores (our models, face-api, scores files), their cache, and soft targets in training.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

process.env.TF_CPP_MIN_LOG_LEVEL = '2';
const { loadTf } = require('../dist/engine/tf');
const { fer2013Dir, loadTfjsOrSkip } = require('./helpers/data');

const ROOT = path.resolve(__dirname, '..');

function tinyfer(...args) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'tinyfer.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function rowSums(s, k = 7) {
  const out = [];
  for (let i = 0; i < s.length; i += k) out.push(s.subarray(i, i + k).reduce((a, b) => a + b, 0));
  return out;
}

describe('distillation', function () {
  let tf;
  let data;
  let tmp;
  before(async function () {
    tf = await loadTfjsOrSkip(this);
    const { loadImageFolder } = require('../dist/train/data');
    data = await loadImageFolder(path.join(fer2013Dir(), 'PublicTest'), { limitPerLabel: 2 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-distill-'));
  });
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('train refuses distillation options without --teacher, and bad teacher weights, views or --distill, before loading anything', function () {
    const out = path.join(os.tmpdir(), 'never');
    const cases = [
      [['--distill', '0.5'], /--distill needs --teacher/],
      [['--teacher-views', '2'], /--teacher-views needs --teacher/],
      [['--teacher', 'a,b', '--teacher-weights', '1'], /--teacher-weights needs 2 positive number\(s\), got 1/],
      [['--teacher', 'a', '--teacher-weights', '-1'], /--teacher-weights needs 1 positive/],
      [['--teacher', 'a', '--teacher-views', '3'], /--teacher-views must be one of 1, 2, 10, got "3"/],
      [['--teacher', 'a', '--distill', '1.5'], /--distill must be in \(0, 1\]/],
    ];
    for (const [args, msg] of cases) {
      const r = tinyfer('train', '--data', 'nowhere', '--out', out, ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, msg);
    }
  });

  it('teacherScores of one of our models are its test-time-view probabilities, cached beside the run for the same teacher and faces only', async function () {
    const { buildNetwork } = require('../dist/model/network');
    const { predictScores } = require('../dist/train/train');
    const { teacherScores } = require('../dist/train/teacher');
    const dir = path.join(tmp, 'teacher-model');
    const model = buildNetwork({ seed: 7 });
    await model.save(`file://${dir}`);
    const want = await predictScores(tf, model, data, 512, 2);
    model.dispose();
    const lines = [];
    const log = (l) => lines.push(l);
    const cache = path.join(tmp, 'run');
    const s = await teacherScores(tf, data, { models: [dir], views: 2 }, cache, log);
    assert.equal(s.length, data.labels.length * 7);
    for (let i = 0; i < s.length; i++) assert.ok(Math.abs(s[i] - want[i]) < 1e-6, `score ${i}`);
    for (const r of rowSums(s)) assert.ok(Math.abs(r - 1) < 1e-4, `row sum ${r}`);
    assert.match(lines.join('\n'), /teacher .*teacher-model \(2 views, weight 1\.00\): \d+\.\d % on the training faces/);
    assert.ok(fs.existsSync(path.join(cache, 'teacher.f32')) && fs.existsSync(path.join(cache, 'teacher.json')));

    lines.length = 0;
    const again = await teacherScores(tf, data, { models: [dir], views: 2 }, cache, log);
    assert.match(lines.join('\n'), /reusing/);
    assert.deepEqual(Array.from(again), Array.from(s));

    // Other views, or other faces: computed again, not read from the cache.
    lines.length = 0;
    const one = await teacherScores(tf, data, { models: [dir], views: 1 }, cache, log);
    assert.doesNotMatch(lines.join('\n'), /reusing/);
    assert.notDeepEqual(Array.from(one), Array.from(s));
    const { subset } = require('../dist/train/data');
    lines.length = 0;
    const fewer = await teacherScores(tf, subset(data, [0, 1, 2]), { models: [dir], views: 1 }, cache, log);
    assert.doesNotMatch(lines.join('\n'), /reusing/);
    assert.equal(fewer.length, 21);
  });

  it('the face-api teacher gives face-api\'s own probabilities, mapped onto our labels; a dataset with other classes is refused', async function () {
    if ((await loadTf()).runtime !== 'tensorflow') this.skip(); // face-api's node build runs on tfjs-node
    const { teacherScores } = require('../dist/train/teacher');
    const { LABELS } = require('../dist/model/labels');
    const s = await teacherScores(tf, data, { models: ['face-api'], views: 1 });
    const pkg = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
    const api = require(path.join(pkg, 'dist', 'face-api.node.js'));
    const names = { angry: 'angry', disgusted: 'disgust', fearful: 'fear', happy: 'happy', sad: 'sad', surprised: 'surprise', neutral: 'neutral' };
    for (const i of [0, 5, 13]) {
      const t = tf.tensor3d(data.pixels.slice(i * 2304, (i + 1) * 2304), [48, 48, 1], 'int32').tile([1, 1, 3]).toFloat();
      const r = await api.nets.faceExpressionNet.predictExpressions(t);
      t.dispose();
      for (const [k, v] of Object.entries(names)) {
        assert.ok(Math.abs(s[i * 7 + LABELS.indexOf(v)] - r[k]) < 1e-5, `face ${i} ${v}: ${s[i * 7 + LABELS.indexOf(v)]} vs ${r[k]}`);
      }
    }
    // Two teachers with weights: the weighted mean of each.
    const { buildNetwork } = require('../dist/model/network');
    const dir = path.join(tmp, 'teacher-model-2');
    const model = buildNetwork({ seed: 8 });
    await model.save(`file://${dir}`);
    model.dispose();
    const ours = await teacherScores(tf, data, { models: [dir], views: 1 });
    const lines = [];
    const both = await teacherScores(tf, data, { models: [dir, 'face-api'], weights: [3, 1], views: 1 }, undefined, (l) => lines.push(l));
    assert.match(lines.join('\n'), /teacher face-api \(1 view, weight 0\.25\): \d+\.\d % on the training faces[^]*teachers combined: \d+\.\d % on the training faces/);
    for (let i = 0; i < both.length; i++) assert.ok(Math.abs(both[i] - (0.75 * ours[i] + 0.25 * s[i])) < 1e-5, `score ${i}`);

    await assert.rejects(teacherScores(tf, { ...data, classNames: ['a', 'b'] }, { models: ['face-api'], views: 1 }), /this dataset's classes are a, b/);
  });

  it('a scores-file teacher (as scripts/gpu-teacher/teacher.py writes) gives its rows in the dataset\'s order, normalised; incomplete or foreign files are refused', async function () {
    const { teacherScores, faceKey, TEACHER_SCORES_FORMAT } = require('../dist/train/teacher');
    const { LABELS } = require('../dist/model/labels');
    const n = data.labels.length;
    // The file lists the faces in reverse order, with rows that sum to 2: read by key, normalised.
    const rows = {};
    for (let i = n - 1; i >= 0; i--) rows[faceKey(data.sources[i])] = LABELS.map((_, c) => (c === i % 7 ? 1.2 : 0.8 / 6));
    const file = path.join(tmp, 'teacher-scores.json');
    const write = (obj) => fs.writeFileSync(file, JSON.stringify({ format: TEACHER_SCORES_FORMAT, version: 1, labels: LABELS, scores: rows, ...obj }));
    write({});
    assert.match(faceKey(data.sources[0]), /^angry\/PublicTest_\d+\.jpg$/);
    const lines = [];
    const cache = path.join(tmp, 'run-scores');
    const s = await teacherScores(tf, data, { models: [file], views: 10 }, cache, (l) => lines.push(l));
    assert.equal(s.length, n * 7);
    for (let i = 0; i < n; i++) {
      const want = rows[faceKey(data.sources[i])].map((v) => v / 2);
      for (let c = 0; c < 7; c++) assert.ok(Math.abs(s[i * 7 + c] - want[c]) < 1e-6, `face ${i} class ${c}`);
    }
    assert.match(lines.join('\n'), /teacher-scores\.json \(scores file, weight 1\.00\): \d+\.\d % on the training faces/);

    // The cache is reused for the same file, and not once the file has changed.
    lines.length = 0;
    await teacherScores(tf, data, { models: [file], views: 10 }, cache, (l) => lines.push(l));
    assert.match(lines.join('\n'), /reusing/);
    const k0 = faceKey(data.sources[0]);
    rows[k0] = [0, 0, 0, 1, 0, 0, 0];
    write({});
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    lines.length = 0;
    const changed = await teacherScores(tf, data, { models: [file], views: 10 }, cache, (l) => lines.push(l));
    assert.doesNotMatch(lines.join('\n'), /reusing/);
    assert.deepEqual(Array.from(changed.subarray(0, 7)), [0, 0, 0, 1, 0, 0, 0]);

    const refuse = async (obj, msg) => {
      write(obj);
      await assert.rejects(teacherScores(tf, data, { models: [file], views: 10 }), msg);
    };
    await refuse({ format: 'other' }, /format is not tinyfer-teacher-scores/);
    await refuse({ labels: [...LABELS].reverse() }, /labels must be angry, disgust/);
    const partial = { ...rows };
    delete partial[k0];
    await refuse({ scores: partial }, new RegExp(`no valid entry for 1 of ${n} faces \\(first: ${k0.replace('.', '\\.')}\\)`));
    await refuse({ scores: { ...rows, [k0]: [1, 2, 3] } }, /no valid entry for 1 of/);
    await refuse({ scores: { ...rows, [k0]: [0, 0, 0, 0, 0, 0, 0] } }, /no valid entry for 1 of/);
    await assert.rejects(teacherScores(tf, data, { models: [path.join(tmp, 'absent.json')], views: 10 }), /teacher scores .*absent\.json: ENOENT/);
    fs.writeFileSync(file, '{ not json');
    await assert.rejects(teacherScores(tf, data, { models: [file], views: 10 }), /teacher scores .*teacher-scores\.json: /);
  });

  it('soft targets steer training: a teacher that always says "happy" makes the student say happy; mismatched scores are refused', async function () {
    const h = await loadTf();
    if (h.runtime !== 'tensorflow') this.skip();
    const { train, predictClasses } = require('../dist/train/train');
    const { LABELS } = require('../dist/model/labels');
    const n = data.labels.length;
    const happy = LABELS.indexOf('happy');
    const scores = new Float32Array(n * 7);
    for (let i = 0; i < n; i++) scores[i * 7 + happy] = 1;
    const common = { train: data, epochs: 6, batchSize: 14, lr: 5e-3, seed: 5, augment: false, log: () => {} };
    const shareHappy = async (opts, out) => {
      const r = await train({ ...common, ...opts, outDir: path.join(tmp, out) });
      const m = await h.tf.loadLayersModel(`file://${path.join(r.modelDir, 'model.json')}`);
      const p = await predictClasses(h.tf, m, data);
      m.dispose();
      return p.filter((c) => c === happy).length / n;
    };
    const plain = await shareHappy({}, 'plain');
    const distilled = await shareHappy({ distill: { scores, weight: 1 } }, 'distilled');
    assert.ok(distilled >= 0.9, `distilled student says happy for ${(100 * distilled).toFixed(0)} % of the faces`);
    assert.ok(plain < 0.5, `plain student says happy for ${(100 * plain).toFixed(0)} % of the faces`);

    await assert.rejects(train({ ...common, outDir: path.join(tmp, 'bad'), distill: { scores: scores.subarray(7), weight: 0.5 } }), /teacher scores hold 13 faces, the training set 14/);
    await assert.rejects(train({ ...common, outDir: path.join(tmp, 'bad'), distill: { scores, weight: 2 } }), /distillation weight must be in \[0,1\]/);
  });
});
