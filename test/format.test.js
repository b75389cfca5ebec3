'use strict';
// The model blob (src/model/format.ts, docs/model-format.md): round trip, size budget,
// every corruption gives a clear Error, the C header embeds a blob the C core accepts.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const fmt = require('../dist/model/format');
const { randomFoldedModel } = require('../dist/engine/vectors');

const { encodeModel, decodeModel, toCHeader, crc32, HEADER_SIZE } = fmt;

/** Rewrites size and CRC so that a test edit reaches the section checks. */
function reseal(blob) {
  const b = Uint8Array.from(blob);
  const v = new DataView(b.buffer);
  v.setUint32(8, b.length, true);
  v.setUint32(12, crc32(b.subarray(HEADER_SIZE)), true);
  return b;
}

function edited(blob, at, bytes) {
  const b = Uint8Array.from(blob);
  b.set(bytes, at);
  return reseal(b);
}

/** Section start offsets of a blob, walked per docs/model-format.md. */
function sections(m) {
  const name = Buffer.byteLength(m.name);
  const labels = m.labels.reduce((n, l) => n + 1 + l.length, 0);
  const stem = Math.ceil((HEADER_SIZE + 8 + name + labels) / 4) * 4;
  let at = stem + 4 + 4 * m.stem.cout * 10;
  const blocks = m.blocks.map((b) => {
    const start = at;
    if (b.type === 'binary') {
      at += 8 + 4 * (b.cin + 3 * b.cout) + 4 * b.cout * 9 * Math.ceil(b.cin / 32);
      if (b.shortcutWeight) at += 4 * (b.cout * b.cin + b.cout);
    } else {
      at += 8 + 4 * (2 * b.hidden * b.channels + b.hidden + b.channels + 99);
    }
    return start;
  });
  return { meta: HEADER_SIZE, stem, blocks, head: at };
}

function assertSameModel(a, b) {
  assert.equal(a.name, b.name);
  assert.deepEqual([...a.labels], [...b.labels]);
  assert.equal(a.inputSize, b.inputSize);
  assert.equal(Math.fround(a.inputScale), b.inputScale);
  assert.deepEqual(b.stem, { ...a.stem });
  assert.equal(a.blocks.length, b.blocks.length);
  // scalars are stored as float32
  a.blocks.forEach((blk, i) => assert.deepEqual(b.blocks[i], blk.type === 'cbam' ? { ...blk, spatialBias: Math.fround(blk.spatialBias) } : blk, `block ${i}`));
  assert.deepEqual(b.headWeight, a.headWeight);
  assert.deepEqual(b.headBias, a.headBias);
}

describe('format: model blob', function () {
  const model = randomFoldedModel(7);
  const blob = encodeModel(model);
  const at = sections(model);

  it('round-trips a tinyfer-b1 shaped model exactly, and re-encodes to the same bytes', function () {
    const back = decodeModel(blob);
    assertSameModel(model, back);
    assert.deepEqual(encodeModel(back), blob);
    assert.equal(at.head + 4 + 4 * (7 * 56 + 7), blob.length, 'the documented layout accounts for every byte');
  });

  it('lists its sections with offsets and sizes (blobLayout) as documented', function () {
    const layout = fmt.blobLayout(blob);
    assert.deepEqual(layout.map((s) => s.section), ['header', 'meta', 'stem', ...model.blocks.map((_, i) => `block ${i}`), 'head']);
    assert.deepEqual(layout.map((s) => s.offset), [0, at.meta, at.stem, ...at.blocks, at.head]);
    assert.equal(layout.reduce((n, s) => n + s.size, 0), blob.length);
    // docs/model-format.md: binary 32 = 1,672 bytes, CBAM 32/8 = 2,612, binary 32->56 = 10,216, head = 1,600
    assert.deepEqual(layout.slice(3).map((s) => s.size), [1672, 1672, 2612, 10216, 4936, 6956, 1600]);
  });

  it('fits the 32 KB budget for the ~69K-parameter network', function () {
    assert.ok(blob.length <= 32 * 1024, `${blob.length} bytes`);
  });

  it('packs binary weights per output channel and tap, channel c at bit c%32 of word c/32', function () {
    const b3 = model.blocks[3]; // 32 -> 56: one word per tap
    const b4 = model.blocks[4]; // 56 -> 56: two words per tap, 8 padding bits
    const view = new DataView(blob.buffer, blob.byteOffset);
    const bits3 = at.blocks[3] + 8 + 4 * (b3.cin + 3 * b3.cout);
    for (const [o, t, c] of [[0, 0, 0], [5, 4, 31], [55, 8, 17]]) {
      const word = view.getUint32(bits3 + 4 * (o * 9 + t), true);
      assert.equal((word >>> c) & 1, b3.weightSign[(o * 9 + t) * 32 + c] > 0 ? 1 : 0);
    }
    const bits4 = at.blocks[4] + 8 + 4 * (b4.cin + 3 * b4.cout);
    for (const [o, t, c] of [[0, 0, 40], [10, 3, 55], [55, 8, 32]]) {
      const word = view.getUint32(bits4 + 4 * ((o * 9 + t) * 2 + 1), true);
      assert.equal((word >>> (c - 32)) & 1, b4.weightSign[(o * 9 + t) * 56 + c] > 0 ? 1 : 0);
      assert.equal(word >>> 24, 0, 'padding bits are 0');
    }
  });

  it('rejects a bad magic, version, flags, size and CRC', function () {
    assert.throws(() => decodeModel(Uint8Array.from([...blob.subarray(0, 3), 0x58, ...blob.subarray(4)])), /bad magic 'TFEX', not a TinyFER model blob/);
    assert.throws(() => decodeModel(edited(blob, 4, [4, 0])), /format version 4 is not supported \(this build reads versions 1 to 3\)/);
    // a version-1 blob marked 3: its head weights read as the grid field
    assert.throws(() => decodeModel(edited(blob, 4, [3, 0])), /in the head section/);
    assert.throws(() => decodeModel(edited(blob, 4, [0, 0])), /format version 0 is not supported/);
    assert.throws(() => decodeModel(edited(blob, 6, [1, 0])), /unsupported flags 0x1/);
    const longer = new Uint8Array(blob.length + 3);
    longer.set(blob);
    assert.throws(() => decodeModel(longer), /size mismatch: header says \d+ bytes but the blob has \d+/);
    const flipped = Uint8Array.from(blob);
    flipped[blob.length - 5] ^= 0x01;
    assert.throws(() => decodeModel(flipped), /CRC mismatch .*the blob is corrupt/);
    assert.throws(() => decodeModel('TFER'), /blob must be a Uint8Array/);
  });

  it('reports truncation at every section, with or without a consistent header', function () {
    assert.throws(() => decodeModel(blob.subarray(0, 10)), /truncated: 10 bytes, the header alone is 16/);
    assert.throws(() => decodeModel(blob.subarray(0, blob.length - 1)), /truncated: header says \d+ bytes but the blob has \d+/);
    const cases = [
      [at.meta + 2, 'meta section'],
      [at.stem + 2, 'stem section'],
      [at.stem + 100, 'stem section'],
      ...at.blocks.flatMap((o, i) => [[o + 3, `block ${i} section`], [o + 40, `block ${i} section`]]),
      [at.head + 1, 'head section'],
      [blob.length - 1, 'head section'],
    ];
    for (const [n, section] of cases) {
      assert.throws(() => decodeModel(reseal(blob.subarray(0, n))), (e) => {
        assert.match(e.message, new RegExp(`^TinyFER model: truncated: the ${section} needs \\d+ bytes at offset \\d+`), `cut at ${n}`);
        return true;
      });
    }
    // and every cut point in between is caught too (every 7th byte keeps this fast)
    for (let n = HEADER_SIZE; n < blob.length; n += 7) {
      assert.throws(() => decodeModel(reseal(blob.subarray(0, n))), /truncated/, `cut at ${n}`);
    }
  });

  it('rejects wrong sizes and contents inside the sections', function () {
    assert.throws(() => decodeModel(edited(blob, 16, [47])), /inputSize 47 is not 48/);
    assert.throws(() => decodeModel(edited(blob, 17, [6])), /6 classes, expected 7/);
    assert.throws(() => decodeModel(edited(blob, 18, [40])), /40 blocks, at most 32/);
    const label = HEADER_SIZE + 8 + Buffer.byteLength(model.name) + 1;
    assert.throws(() => decodeModel(edited(blob, label, [0x62])), /label 0 'bngry' is not a known label/);
    const happy = label + 6 + 8 + 5; // after "angry", "disgust", "fear" with their length bytes
    assert.throws(() => decodeModel(edited(blob, happy, Buffer.from('angry'))), /label 3 'angry' repeats label 0/);
    assert.throws(() => decodeModel(edited(blob, at.stem, [0, 0])), /stem cout = 0 is not an integer in 1\.\.1024/);
    const b0 = at.blocks[0];
    assert.throws(() => decodeModel(edited(blob, b0, [9])), /block 0 has unknown type 9/);
    assert.throws(() => decodeModel(edited(blob, b0 + 1, [3])), /block 0 stride 3 is not 1 or 2/);
    assert.throws(() => decodeModel(edited(blob, b0 + 2, [1])), /projected-shortcut flag contradicts/);
    assert.throws(() => decodeModel(edited(blob, b0 + 3, [1])), /reserved byte in the block 0 section must be 0/);
    assert.throws(() => decodeModel(edited(blob, b0 + 4, [31])), /block 0 cin 31 does not match the 32 incoming channels/);
    const b4bits = at.blocks[4] + 8 + 4 * (56 + 3 * 56);
    assert.throws(() => decodeModel(edited(blob, b4bits + 7, [0x80])), /block 4 has a set padding bit in weight word 1/);
    assert.throws(() => decodeModel(edited(blob, at.stem + 4, [0, 0, 0xc0, 0x7f])), /stem\.weight\[0\] is not a finite number/);
    assert.throws(() => decodeModel(edited(blob, at.head + 2, [55, 0])), /head takes 55 channels but the last block gives 56/);
    const trailing = new Uint8Array(blob.length + 4);
    trailing.set(blob);
    assert.throws(() => decodeModel(reseal(trailing)), /4 unexpected bytes after the head section/);
  });

  it('refuses to encode a malformed FoldedModel, naming the field', function () {
    const base = encodeModel(randomFoldedModel(3));
    const bad = (edit) => {
      const m = decodeModel(base); // a fresh copy to break
      edit(m);
      return () => encodeModel(m);
    };
    assert.throws(bad((m) => { m.blocks[0].weightSign[5] = 0; }), /block 0 \(binary\) weightSign\[5\] = 0 is not \+1 or -1/);
    assert.throws(bad((m) => { m.blocks[0].prelu = new Float32Array(3); }), /block 0 \(binary\) prelu has 3 values, expected 32/);
    assert.throws(bad((m) => { m.blocks[1].cin = 16; }), /block 1 \(binary\) cin 16 does not match the 32 incoming channels/);
    assert.throws(bad((m) => { m.blocks[3].stride = 1; }), /changes channels 32->56 with stride 1/);
    assert.throws(bad((m) => { delete m.blocks[3].shortcutWeight; }), /block 3 \(binary\) shortcutWeight has no values, expected 1792/);
    assert.throws(bad((m) => { m.blocks[0].shortcutWeight = new Float32Array(32 * 32); m.blocks[0].shortcutBias = new Float32Array(32); }), /identity/);
    assert.throws(bad((m) => { m.blocks[2].spatialWeight = new Float32Array(97); }), /block 2 \(cbam\) spatialWeight has 97 values, expected 98/);
    assert.throws(bad((m) => { m.headBias[2] = NaN; }), /headBias\[2\] is not a finite number/);
    assert.throws(bad((m) => { m.labels = ['angry']; }), /expected 7 labels, got 1/);
    assert.throws(bad((m) => { m.name = 'x'.repeat(300); }), /name is 300 bytes of UTF-8, at most 255/);
    assert.throws(bad((m) => { m.inputSize = 64; }), /inputSize must be 48, got 64/);
  });

  it('stores a repeat pass (tinyfer-b1r) once: flag 2, the source index, no threshold and no weight bits', function () {
    const r = randomFoldedModel(5, [32, 56], true);
    assert.deepEqual(r.blocks.map((b) => b.shares), [undefined, undefined, 0, 1, undefined, undefined, undefined, 6, undefined]);
    const rb = encodeModel(r);
    const back = decodeModel(rb);
    assertSameModel(r, back);
    assert.deepEqual(encodeModel(back), rb);
    const layout = fmt.blobLayout(rb);
    // a repeat of a 32-channel block: 8 header + 3 x 32 floats; of a 56-channel one: 8 + 3 x 56 floats
    assert.deepEqual(layout.slice(3).map((s) => s.size), [1672, 1672, 392, 392, 2612, 10216, 4936, 680, 6956, 1600]);
    const b2 = layout[5].offset;
    assert.deepEqual([...rb.subarray(b2, b2 + 4)], [1, 1, 2, 0]);
    assert.deepEqual([...rb.subarray(layout[10].offset, layout[10].offset + 4)], [1, 1, 2, 6]);
    assert.throws(() => decodeModel(edited(rb, b2 + 3, [2])), /block 2 shares block 2, which is not an earlier binary block of 32->32 channels/);
    assert.throws(() => decodeModel(edited(rb, b2 + 3, [4])), /block 2 shares block 4/);
    assert.throws(() => decodeModel(edited(rb, layout[6].offset + 3, [2])), /block 3 shares block 2, which is not .* with weights of its own/);
    assert.throws(() => decodeModel(edited(rb, layout[10].offset + 3, [0])), /block 7 shares block 0, which is not an earlier binary block of 56->56 channels/);
    const bad = (edit) => {
      const m = decodeModel(rb);
      edit(m);
      return () => encodeModel(m);
    };
    assert.throws(bad((m) => { m.blocks[2].shares = 5; }), /block 2 \(binary\) shares block 5, which is not an earlier block/);
    assert.throws(bad((m) => { m.blocks[3].shares = 2; }), /block 3 \(binary\) shares block 2, which is not a binary block with weights of its own/);
    assert.throws(bad((m) => { m.blocks[7].shares = 1; }), /block 7 \(binary\) \(56->56\) shares the weights of block 1 \(32->32\)/);
    assert.throws(bad((m) => { m.blocks[2].threshold = Float32Array.from(m.blocks[2].threshold, (v) => v + 1); }), /block 2 \(binary\) shares block 0 but its threshold or weightSign differ/);
  });

  it('emits a C header whose array the C core parses', function () {
    const h = toCHeader(blob, 'tinyfer_model');
    assert.match(h, new RegExp(`static const uint8_t tinyfer_model\\[${blob.length}\\] TINYFER_MODEL_ALIGN = \\{`));
    assert.match(h, /__attribute__\(\(aligned\(16\)\)\)/);
    assert.match(h, new RegExp(`static const size_t tinyfer_model_len = ${blob.length};`));
    assert.throws(() => toCHeader(blob, '9lives'), /'9lives' is not a C identifier/);
    assert.throws(() => toCHeader(blob.subarray(0, 100), 'm'), /truncated/);

    const core = path.resolve(__dirname, '..', 'firmware', 'core');
    let cc;
    try {
      execFileSync('cc', ['--version'], { stdio: 'ignore' });
      cc = 'cc';
    } catch {
      this.skip(); // no C compiler on this machine: the ctest suite covers the core
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-h-'));
    fs.writeFileSync(path.join(dir, 'model.h'), h);
    fs.writeFileSync(path.join(dir, 'main.c'), [
      '#include <stdio.h>', '#include "model.h"', '#include "tinyfer/tinyfer.h"',
      'static uint32_t arena[96 * 1024 / 4];',
      'int main(void) { tfr_model_t m; uint8_t face[TFR_FACE_PIXELS] = {0}; float s[TFR_NUM_CLASSES];',
      '  int e = tfr_model_parse(&m, tinyfer_model, tinyfer_model_len); if (e) { puts(tfr_strerror(e)); return 1; }',
      '  e = tfr_classify(&m, arena, sizeof arena, face, s); if (e) { puts(tfr_strerror(e)); return 1; }',
      '  printf("%zu %.9g\\n", tfr_arena_size(&m), (double)s[0]); return 0; }', ''].join('\n'));
    const srcs = fs.readdirSync(path.join(core, 'src')).filter((f) => f.endsWith('.c')).map((f) => path.join(core, 'src', f));
    execFileSync(cc, ['-std=c99', '-O1', '-ffp-contract=off', '-I', path.join(core, 'include'), '-I', path.join(core, 'src'),
      '-o', path.join(dir, 'main'), path.join(dir, 'main.c'), ...srcs, '-lm']);
    const out = execFileSync(path.join(dir, 'main')).toString().trim().split(' ');
    fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(Number(out[0]) > 0 && Number(out[0]) <= 96 * 1024, `arena ${out[0]}`);
    const { referenceScores } = require('../dist/engine/reference');
    assert.equal(Math.fround(Number(out[1])), referenceScores(model, new Uint8Array(2304))[0], 'C (from the header) and TS agree');
  });
});

/** randomFoldedModel(seed, widths) with an int8 stem of the whole int8 range (weights, scales of
 * ~1 / (9 * 127 * 255) so that activations stay in the float stem's range). */
function int8StemModel(seed, widths = [30, 56]) {
  const m = randomFoldedModel(seed, widths);
  const c = m.stem.cout;
  let s = seed * 7919 + 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
  const weightQ = Int8Array.from({ length: c * 9 }, () => Math.floor(rnd() * 256) - 128);
  const scale = Float32Array.from({ length: c }, () => (0.5 + rnd()) / (9 * 127 * 255 / 8));
  m.stem = { cin: 1, cout: c, k: 3, weightQ, scale, bias: m.stem.bias };
  return m;
}

describe('format: the int8 stem (format version 2)', function () {
  const { isInt8Stem } = require('../dist/model/folded');
  const model = int8StemModel(4);
  const blob = encodeModel(model);
  const stemAt = fmt.blobLayout(blob).find((s) => s.section === 'stem').offset;

  it('round-trips exactly as version 2: kind 1, int8 weights, zero padding, scales, biases; a float stem stays version 1', function () {
    assert.equal(blob[4] | (blob[5] << 8), 2);
    assert.deepEqual([...blob.subarray(stemAt, stemAt + 4)], [30, 0, 1, 0]);
    assert.deepEqual(new Int8Array(blob.buffer, blob.byteOffset + stemAt + 4, 270), model.stem.weightQ);
    assert.deepEqual([...blob.subarray(stemAt + 4 + 270, stemAt + 4 + 272)], [0, 0], 'padding to 4 bytes');
    const stem = fmt.blobLayout(blob).find((s) => s.section === 'stem');
    assert.equal(stem.size, 4 + 272 + 4 * 30 + 4 * 30);
    const back = decodeModel(blob);
    assert.ok(isInt8Stem(back.stem));
    assertSameModel(model, back);
    assert.deepEqual(encodeModel(back), blob);
    const float = encodeModel(randomFoldedModel(4, [30, 56]));
    assert.equal(float[4], 1);
  });

  it('rejects every malformed int8 stem with a clear error', function () {
    const v1 = edited(blob, 4, [1, 0]);
    assert.throws(() => decodeModel(v1), /reserved field \(the stem kind from version 2\) in the stem section must be 0, got 1/);
    assert.throws(() => decodeModel(edited(blob, stemAt + 2, [2, 0])), /unknown stem kind 2 in the stem section \(0 float32, 1 int8\)/);
    assert.throws(() => decodeModel(edited(blob, stemAt + 4 + 271, [1])), /non-zero padding byte in the stem section/);
    const scaleAt = stemAt + 4 + 272;
    const f32 = (v) => [...new Uint8Array(Float32Array.of(v).buffer)];
    assert.throws(() => decodeModel(edited(blob, scaleAt + 4, f32(0))), /stem\.scale\[1\] = 0 is not positive/);
    assert.throws(() => decodeModel(edited(blob, scaleAt, f32(-2e-5))), /stem\.scale\[0\] = -0\.0000199\d* is not positive/);
    assert.throws(() => decodeModel(edited(blob, scaleAt, f32(NaN))), /stem\.scale\[0\] is not a finite number/);
    assert.throws(() => decodeModel(reseal(blob.subarray(0, stemAt + 100))), /truncated: the stem section needs 270 bytes/);
    assert.throws(() => decodeModel(reseal(blob.subarray(0, scaleAt + 8))), /truncated: the stem section needs 120 bytes/);
    const bad = (edit) => {
      const m = decodeModel(blob);
      edit(m);
      return () => encodeModel(m);
    };
    assert.throws(bad((m) => { m.stem.weightQ = new Int8Array(269); }), /stem\.weightQ has 269 values, expected 270/);
    assert.throws(bad((m) => { m.stem.weightQ = Array.from(m.stem.weightQ); }), /stem\.weightQ must be an Int8Array/);
    assert.throws(bad((m) => { m.stem.scale[3] = -1; }), /stem\.scale\[3\] = -1 is not positive/);
    assert.throws(bad((m) => { m.stem.scale[3] = Infinity; }), /stem\.scale\[3\] is not a finite number/);
    assert.throws(bad((m) => { m.stem.scale = new Float32Array(2); }), /stem\.scale has 2 values, expected 30/);
  });

  it('runs as the float stem it equals: weights q, scale 1, input scale 1 (TS reference and C core, bit for bit)', async function () {
    // With scale 1 the int8 stem is max(sum q * pixel) + bias; a float stem with weights q over
    // pixel * 1 sums the same integers exactly and adds the bias before the max (rounding is
    // monotonic): the two models must give the same scores bit for bit.
    const m8 = int8StemModel(9, [32, 56]);
    m8.stem.scale.fill(1);
    m8.stem.bias = Float32Array.from(m8.stem.bias, (b) => b * 40000); // sums are up to ~1e5
    const mf = decodeModel(encodeModel(m8));
    mf.stem = { cin: 1, cout: 32, k: 3, weight: Float32Array.from(m8.stem.weightQ), bias: m8.stem.bias };
    mf.inputScale = 1;
    for (const b of mf.blocks) if (b.type === 'binary') b.threshold = Float32Array.from(b.threshold, (t) => t * 40000);
    for (const b of m8.blocks) if (b.type === 'binary' && b.shares === undefined) b.threshold = Float32Array.from(b.threshold, (t) => t * 40000);
    const { referenceScores } = require('../dist/engine/reference');
    const { BinaryEngine } = require('../dist/engine/binary');
    const faces = Array.from({ length: 24 }, (_, i) => Uint8Array.from({ length: 2304 }, (_, p) => (p * (i + 3) * 2654435761) >>> 24));
    const ref8 = faces.map((f) => referenceScores(m8, f));
    const reff = faces.map((f) => referenceScores(mf, f));
    assert.deepEqual(ref8, reff, 'int8 stem = float stem with the same integers');
    const e8 = await BinaryEngine.load(encodeModel(m8));
    const c8 = await e8.classify(faces);
    e8.dispose();
    assert.deepEqual(c8.map((s) => Float32Array.from(s)), ref8.map((s) => Float32Array.from(s)), 'C core (wasm) = TS reference');
    // and the faces do not all give the same answer
    assert.ok(new Set(ref8.map((s) => s.indexOf(Math.max(...s)))).size > 1);
  });

  it('the reference runs the int8 stem as the spec says: exact integer sums, max of 2x2, f32(f32(m * scale) + bias) (real faces, extreme weights)', async function () {
    const { referenceStem } = require('../dist/engine/reference');
    const { loadImageFolder } = require('../dist/train/data');
    const { fer2013Dir } = require('./helpers/data');
    const d = await loadImageFolder(path.join(fer2013Dir(), 'PublicTest'), { limitPerLabel: 2 });
    const faces = Array.from({ length: d.labels.length }, (_, i) => d.pixels.slice(i * 2304, (i + 1) * 2304));
    faces.push(new Uint8Array(2304).fill(255), new Uint8Array(2304)); // the largest sums, and none
    const m = int8StemModel(11, [32, 56]);
    // the extremes of int8: a channel of -128 (the largest |sum|, 9 * 128 * 255) and one of 127
    m.stem.weightQ.fill(-128, 0, 9);
    m.stem.weightQ.fill(127, 9, 18);
    const { weightQ, scale, bias, cout } = m.stem;
    // a direct implementation: BigInt sums (no float anywhere before the scale)
    const direct = (face) => {
      const out = new Float32Array(24 * 24 * cout);
      for (let py = 0; py < 24; py++) for (let px = 0; px < 24; px++) for (let o = 0; o < cout; o++) {
        let best = null;
        for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
          let acc = 0n;
          for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
            const y = 2 * py + dy + ky - 1;
            const x = 2 * px + dx + kx - 1;
            if (y >= 0 && y < 48 && x >= 0 && x < 48) acc += BigInt(weightQ[o * 9 + ky * 3 + kx]) * BigInt(face[y * 48 + x]);
          }
          if (best === null || acc > best) best = acc;
        }
        const prod = new Float32Array([Number(best) * scale[o]])[0]; // m < 2^24: exact as a float; one f32 rounding
        out[(py * 24 + px) * cout + o] = new Float32Array([prod + bias[o]])[0];
      }
      return out;
    };
    assert.equal(direct(faces.at(-2))[0], Math.fround(Math.fround(-128 * 4 * 255 * scale[0]) + bias[0]), 'corner window of a white face, channel -128: 4 taps');
    for (const face of faces) assert.deepEqual(referenceStem(m, face), direct(face));
    assert.ok(faces.length >= 14);
  });

  it('randomFoldedModel(..., stemInt8) (the vectors of `vectors.js --random --stem-int8`): an int8 stem spread like the float one, version 2', async function () {
    const { referenceStem, referenceScores } = require('../dist/engine/reference');
    const { loadTestFaces } = require('../dist/engine/vectors');
    const m8 = randomFoldedModel(5, [32, 56], false, true);
    const mf = randomFoldedModel(5, [32, 56], false, false);
    assert.ok(isInt8Stem(m8.stem) && !isInt8Stem(mf.stem));
    const q = Array.from(m8.stem.weightQ);
    assert.ok(Math.min(...q) >= -127 && Math.max(...q) <= 127 && Math.min(...q) < -100 && Math.max(...q) > 100, 'weights over -127..127');
    const b8 = encodeModel(m8);
    assert.equal(b8[4], 2);
    assertSameModel(m8, decodeModel(b8));
    const { faces } = await loadTestFaces(40);
    const sd = (m) => {
      let n = 0, sum = 0, sq = 0;
      for (const f of faces) for (const v of referenceStem(m, f)) { n++; sum += v; sq += v * v; }
      return Math.sqrt(sq / n - (sum / n) ** 2);
    };
    const ratio = sd(m8) / sd(mf);
    assert.ok(ratio > 0.5 && ratio < 2, `stem output sd int8 / float = ${ratio}`);
    const top = faces.map((f) => { const r = referenceScores(m8, f); return r.indexOf(Math.max(...r)); });
    assert.ok(new Set(top).size >= 3, `classes ${top}`);
    // the CLI takes --stem-int8 with --random only
    const { spawnSync } = require('node:child_process');
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'dist', 'engine', 'vectors.js'), '--model', 'x.tfer', '--stem-int8'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--stem-int8 goes with --random/);
  });
});

describe('format: the grid head (format version 3)', function () {
  const { referenceFeatures, referenceScores } = require('../dist/engine/reference');
  const { BinaryEngine } = require('../dist/engine/binary');
  const model = randomFoldedModel(6, [32, 56], false, true, 3);
  const blob = encodeModel(model);
  const head = fmt.blobLayout(blob).find((s) => s.section === 'head');
  const f32 = (v) => [...new Uint8Array(Float32Array.of(v).buffer)];
  const faces = Array.from({ length: 24 }, (_, i) => Uint8Array.from({ length: 2304 }, (_, p) => (p * (i + 5) * 2654435761) >>> 24));

  it('round-trips exactly as version 3: classes, C, grid, k, reserved, reduce [k][C], weight [classes][g*g*k], bias; inside 32 KB with the int8 stem', function () {
    assert.equal(blob[4] | (blob[5] << 8), 3);
    assert.deepEqual([...blob.subarray(head.offset, head.offset + 8)], [7, 0, 56, 0, 3, 8, 0, 0]);
    assert.equal(head.size, 8 + 4 * (8 * 56 + 7 * 72 + 7));
    assert.equal(head.offset + head.size, blob.length);
    assert.deepEqual(new Float32Array(blob.slice(head.offset + 8, head.offset + 8 + 4 * 448).buffer), model.gridHead.reduce);
    const back = decodeModel(blob);
    assertSameModel(model, back);
    assert.deepEqual(back.gridHead, model.gridHead);
    assert.deepEqual(encodeModel(back), blob);
    assert.ok(blob.length <= 32768, `${blob.length} bytes`);
    // a global-average head keeps the version that holds the rest
    const { gridHead, ...plain } = model;
    plain.headWeight = new Float32Array(7 * 56);
    assert.equal(encodeModel(plain)[4], 2);
  });

  it('rejects every malformed grid head with a clear error, and a grid head in a blob marked version 2', function () {
    const at = head.offset;
    assert.throws(() => decodeModel(edited(blob, at + 4, [5])), /head's 5 regions per side do not divide the last 12x12 plane/);
    assert.throws(() => decodeModel(edited(blob, at + 4, [0])), /head has k = 8 but no grid \(grid 0 is the global average, k must be 0\)/);
    assert.throws(() => decodeModel(edited(blob, at + 5, [0])), /head has a 3x3 grid but k = 0/);
    assert.throws(() => decodeModel(edited(blob, at + 6, [1])), /reserved field in the head section must be 0, got 1/);
    assert.throws(() => decodeModel(edited(blob, at + 5, [9])), /truncated: the head section needs/);
    assert.throws(() => decodeModel(edited(blob, at + 5, [7])), /unexpected bytes after the head section/);
    assert.throws(() => decodeModel(edited(blob, at + 8, f32(NaN))), /gridHead\.reduce\[0\] is not a finite number/);
    assert.throws(() => decodeModel(edited(blob, 4, [2, 0])), /unexpected bytes after the head section/);
    assert.throws(() => decodeModel(edited(blob, 4, [4, 0])), /format version 4 is not supported \(this build reads versions 1 to 3\)/);
    assert.throws(() => decodeModel(reseal(blob.subarray(0, at + 6))), /truncated: the head section needs 2 bytes at offset \d+/);
    const bad = (edit) => {
      const m = decodeModel(blob);
      edit(m);
      return () => encodeModel(m);
    };
    assert.throws(bad((m) => { m.gridHead.grid = 5; }), /gridHead\.grid = 5 regions per side do not divide the last 12x12 plane/);
    assert.throws(bad((m) => { m.gridHead.grid = 2.5; }), /gridHead\.grid = 2\.5 is not an integer in 1\.\.255/);
    assert.throws(bad((m) => { m.gridHead.k = 0; }), /gridHead\.k = 0 is not an integer in 1\.\.255/);
    assert.throws(bad((m) => { m.gridHead.k = 256; }), /gridHead\.k = 256 is not an integer in 1\.\.255/);
    assert.throws(bad((m) => { m.gridHead.reduce = new Float32Array(8 * 55); }), /gridHead\.reduce has 440 values, expected 448/);
    assert.throws(bad((m) => { m.headWeight = new Float32Array(7 * 56); }), /headWeight has 392 values, expected 504/);
  });

  it('is the global average when one region is the whole plane and the reduce is the identity (TS reference, bit for bit)', function () {
    const { gridHead, ...gap } = model;
    gap.headWeight = Float32Array.from({ length: 7 * 56 }, (_, i) => Math.sin(i));
    const one = { ...gap, gridHead: { grid: 1, k: 56, reduce: Float32Array.from({ length: 56 * 56 }, (_, i) => (i % 57 === 0 ? 1 : 0)) } };
    for (const f of faces.slice(0, 6)) {
      assert.deepEqual(referenceFeatures(one, f), referenceFeatures(gap, f));
      assert.deepEqual(referenceScores(one, f), referenceScores(gap, f));
    }
  });

  it('the reference averages each region and reduces it: features by hand in double agree to float rounding', function () {
    // the features of a plane through a model with no blocks: the stem's 24x24 output
    const { referenceStem } = require('../dist/engine/reference');
    const m = { ...model, blocks: [], gridHead: { grid: 4, k: 3, reduce: Float32Array.from({ length: 3 * 32 }, (_, i) => Math.cos(i)) } };
    m.headWeight = new Float32Array(7 * 48);
    const face = faces[3];
    const plane = referenceStem(m, face);
    const got = referenceFeatures(m, face);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        for (let q = 0; q < 3; q++) {
          let want = 0;
          for (let c = 0; c < 32; c++) {
            let avg = 0;
            for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) avg += plane[((i * 6 + y) * 24 + j * 6 + x) * 32 + c];
            want += m.gridHead.reduce[q * 32 + c] * (avg / 36);
          }
          const v = got[(i * 4 + j) * 3 + q];
          assert.ok(Math.abs(v - want) <= 1e-5 * (1 + Math.abs(want)), `region ${i},${j} value ${q}: ${v} vs ${want}`);
        }
      }
    }
  });

  it('runs bit for bit on the C core (wasm) as in the TS reference (grids 3, 2, 4, 6), and its classes depend on the face', async function () {
    const ref = faces.map((f) => referenceScores(model, f));
    const e = await BinaryEngine.load(blob);
    const c = await e.classify(faces);
    e.dispose();
    assert.deepEqual(c.map((s) => Float32Array.from(s)), ref.map((s) => Float32Array.from(s)));
    assert.ok(new Set(ref.map((s) => s.indexOf(Math.max(...s)))).size > 2);
    // regions of 36, 9 and 4 pixels (a division; the core multiplies by 1/n only for a power of
    // two) and a reduce width that is not a multiple of four
    for (const [grid, k] of [[2, 5], [4, 3], [6, 1]]) {
      const m = { ...model, gridHead: { grid, k, reduce: Float32Array.from({ length: k * 56 }, (_, i) => Math.sin(i * 0.37) / 4) } };
      m.headWeight = Float32Array.from({ length: 7 * grid * grid * k }, (_, i) => Math.cos(i * 0.91));
      const want = faces.map((f) => referenceScores(m, f));
      const eg = await BinaryEngine.load(encodeModel(m));
      const got = await eg.classify(faces);
      eg.dispose();
      assert.deepEqual(got.map((s) => Float32Array.from(s)), want.map((s) => Float32Array.from(s)), `grid ${grid}, k ${k}`);
    }
  });
});
