'use strict';
/**
 * `npm run bench`: one run, one table, every contender side by side.
 *
 *  1. Per-face emotion inference (one face per call, after a warm-up): the binary model on the C
 *     core in wasm; its float twin on tfjs-node and on tfjs wasm (one thread); the peer,
 *     @vladmandic/face-api's expression model, on the same two runtimes. Accuracy on FER2013
 *     PublicTest for each (binary and twin: all 3589 faces; face-api: an evenly strided sample).
 *  2. Model bytes and arena bytes of the binary core; callgrind instructions per inference of the
 *     host C build; the ESP32-S3 time per face (and per QVGA frame for the face detector, once the
 *     core has one) at 240 MHz from firmware/core/tools/xtensa-cost.json: the Xtensa listing of the
 *     compiled core times the loop trip counts of a host run (scripts/xtensa-cost.js).
 *  3. Frame pipeline: 640x480 JPEG -> faces -> emotion, frames/s on one core (bench/vision.js).
 *  The fleet load run (500 devices x 2 msg/s x 60 s) is its own command: npm run bench:fleet.
 *
 *   node bench/index.js [--quick] [--json] [--candidate <model.tfer> ...]
 *
 * The other bundled models (models/tinyfer-b1r.tfer) are measured in every run the same way as a
 * candidate. --candidate (repeatable) adds a blob that is not bundled (e.g. an experiment) to the
 * same run: its binary rows (1 and 10 views) and its callgrind count, beside the default's.
 */
process.env.TF_CPP_MIN_LOG_LEVEL = '2';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const asked = process.argv.flatMap((a, i, all) => (a === '--candidate' ? [all[i + 1]] : []));
for (const c of asked) {
  if (!c || !fs.existsSync(c)) {
    process.stderr.write(`bench: --candidate needs a model blob file, got ${c ?? 'nothing'}\n`);
    process.exit(2);
  }
}
const { MODELS_DIR, BUNDLED_MODELS, DEFAULT_MODEL_BLOB, DEFAULT_MODEL_DIR } = require('../dist/engine/open');
/** Blobs measured beside the default: the other bundled models, then the --candidate ones. */
const candidates = [
  ...BUNDLED_MODELS.slice(1).map((n) => ({ file: path.join(MODELS_DIR, `${n}.tfer`), kind: 'bundled' })).filter((c) => fs.existsSync(c.file)),
  ...asked.map((file) => ({ file, kind: 'candidate' })),
];

function log(s) {
  process.stderr.write(`[bench] ${s}\n`);
}

function worker(args) {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'tfjs-worker.js'), ...args], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

async function main() {
  const { benchBinary } = require('../dist/engine/bench');
  const { BinaryEngine } = require('../dist/engine/binary');
  const { classifyViews } = require('../dist/engine/views');
  const { argmax } = require('../dist/train/evaluate');
  const { loadImageFolder } = require('../dist/train/data');
  const { dataRoot } = require('../test/helpers/data');
  const trained = fs.existsSync(DEFAULT_MODEL_BLOB);
  let blob;
  if (trained) {
    blob = fs.readFileSync(DEFAULT_MODEL_BLOB);
  } else {
    const { randomFoldedModel } = require('../dist/engine/vectors');
    const { encodeModel } = require('../dist/model/format');
    blob = encodeModel(randomFoldedModel(1));
    log('no trained default model: the binary row uses random weights (same cost)');
  }
  const data = await loadImageFolder(path.join(dataRoot(), 'fer2013', 'PublicTest'), { cacheDir: path.join(ROOT, '.cache', 'faces') });
  const n = data.labels.length;
  const faces = Array.from({ length: n }, (_, i) => data.pixels.slice(i * 2304, (i + 1) * 2304));
  const iters = quick ? 200 : 2000;

  const rows = [];
  log('binary model on the C core (wasm)');
  const accuracyOf = (scores) => scores.filter((s, i) => argmax(s) === data.labels[i]).length / n;
  // A blob's rows on the C core, with test-time views (engine/views.ts): 2 = with the mirror image,
  // 10 = also shifted by a pixel (the emotion node's default), all views of a face in one call.
  // Returns the benchmark of its first view count.
  const binaryRows = async (bytes, label, viewCounts, scored) => {
    const ce = await BinaryEngine.load(bytes);
    let first;
    for (const views of viewCounts) {
      const bench = await benchBinary(bytes, faces, Math.max(20, Math.round(iters / views)), { views });
      rows.push({
        model: `${label}${views > 1 ? `, ${views} views` : ''}`, runtime: 'C core, wasm (1 thread)', bytes: bench.blobBytes,
        msPerFace: bench.perFaceMs, batchedMs: bench.perFaceBatchedMs,
        accuracy: scored ? accuracyOf(await classifyViews(ce, faces, views)) : undefined, accuracyFaces: n,
      });
      first = first ?? bench;
    }
    ce.dispose();
    return first;
  };
  const b = await binaryRows(blob, `TinyFER binary${trained ? '' : ' (random weights)'}`, [1, 2, 10], trained);
  const { decodeModel } = require('../dist/model/format');
  for (const { file, kind } of candidates) {
    const cblob = fs.readFileSync(file);
    const name = decodeModel(new Uint8Array(cblob)).name;
    log(`${kind} ${file} (${name})`);
    await binaryRows(cblob, `${kind} ${path.basename(file)} (${name})`, [1, 10], true);
  }

  const twinDir = fs.existsSync(path.join(DEFAULT_MODEL_DIR + '-float', 'model.json')) ? DEFAULT_MODEL_DIR + '-float' : '';
  const twinBytes = twinDir ? fs.readdirSync(twinDir).filter((f) => f.endsWith('.bin')).reduce((a, f) => a + fs.statSync(path.join(twinDir, f)).size, 0) : undefined;
  const faceapiBin = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model', 'face_expression_model.bin');
  const faceapiBytes = fs.statSync(faceapiBin).size;
  const peerSample = quick ? 300 : 1200;
  for (const runtime of ['tensorflow', 'wasm']) {
    for (const what of ['twin', 'faceapi']) {
      log(`${what} on ${runtime}`);
      try {
        const acc = runtime === 'tensorflow' ? ['--accuracy', String(what === 'twin' ? n : peerSample)] : [];
        const r = worker([runtime, what, ...(what === 'twin' ? [twinDir || 'none'] : []), '--iters', String(quick ? 100 : 500), ...acc]);
        rows.push({
          model: what === 'twin' ? `float twin${twinDir ? '' : ' (untrained)'}` : 'face-api expression (peer)',
          runtime: runtime === 'tensorflow' ? 'tfjs-node' : 'tfjs wasm (1 thread)',
          bytes: what === 'twin' ? twinBytes : faceapiBytes,
          msPerFace: r.msPerFace,
          accuracy: r.accuracy,
          accuracyFaces: r.accuracyFaces,
        });
      } catch (e) {
        rows.push({ model: what, runtime, error: String(e.message || e).split('\n')[0] });
      }
    }
  }

  log('callgrind (host C build)');
  // scripts/callgrind-core.sh on a blob (no argument: its own choice of model); throws on failure
  const runCallgrind = (...blobArgs) => execFileSync('bash', [path.join(ROOT, 'scripts', 'callgrind-core.sh'), ...blobArgs], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, N: '5' },
  });
  let callgrind = '';
  try {
    callgrind = runCallgrind(...(trained ? [DEFAULT_MODEL_BLOB] : []));
  } catch (e) {
    callgrind = `callgrind failed: ${String(e.message || e).split('\n')[0]}`;
  }
  const instr = {};
  const countsOf = (text, suffix) => {
    for (const line of text.split('\n')) {
      const m = /^(reference|fast)[^0-9]*?(\d+) instructions per inference/.exec(line);
      if (m) instr[m[1] + suffix] = Number(m[2]);
    }
  };
  countsOf(callgrind, '');
  for (const { file, kind } of candidates) {
    try {
      countsOf(runCallgrind(file), `, ${kind} ${path.basename(file)}`);
    } catch (e) {
      log(`callgrind of ${file} failed: ${String(e.message || e).split('\n')[0]}`);
    }
  }

  log('frame pipeline (bench/vision.js)');
  let vision = [];
  try {
    vision = require('./vision').benchVision({ frames: quick ? 30 : 120 });
  } catch (e) {
    vision = [{ runtime: 'vision', error: String(e.message || e) }];
  }

  // ESP32-S3 time: the table of scripts/xtensa-cost.js (generated with the Xtensa cross compiler,
  // which this machine may not have: the table is read, never guessed)
  let esp32s3 = [];
  let esp32s3Table = null;
  try {
    const xc = require('../scripts/xtensa-cost');
    esp32s3Table = xc.loadTable();
    esp32s3 = xc.summarize(esp32s3Table);
  } catch (e) {
    esp32s3 = [`no ESP32-S3 cost table (${String(e.message || e).split('\n')[0]}): node scripts/xtensa-cost.js generate --cc <dir>/xtensa-esp32s3-elf-gcc`];
  }

  const wasmRow = rows[0];
  const twinWasm = rows.find((r) => r.model.startsWith('float twin') && r.runtime.startsWith('tfjs wasm'));
  const result = { trained, rows, arenaBytes: b.arenaBytes, lutBytes: b.lutBytes, wasmBytes: b.wasmBytes, instructions: instr, esp32s3: esp32s3Table && { mhz: esp32s3Table.mhz, paths: esp32s3Table.paths.map((p) => ({ name: p.name, firmware: p.firmware, models: p.models })), frame: esp32s3Table.frame }, vision };
  if (asJson) {
    process.stdout.write(JSON.stringify(result, null, 1) + '\n');
    return;
  }
  const pct = (v) => (v === undefined ? 'n/a' : `${(v * 100).toFixed(1)} %`);
  const out = [];
  out.push('## Per-face emotion inference (one face per call)');
  out.push('');
  out.push('| model | runtime | model bytes | ms / face | faces / s | FER2013 PublicTest |');
  out.push('|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.error) {
      out.push(`| ${r.model} | ${r.runtime} | | failed: ${r.error} | | |`);
      continue;
    }
    out.push(`| ${r.model} | ${r.runtime} | ${r.bytes ?? 'n/a'} | ${r.msPerFace.toFixed(3)} | ${(1000 / r.msPerFace).toFixed(0)} | ${pct(r.accuracy)}${r.accuracyFaces && r.accuracyFaces < n ? ` (${r.accuracyFaces} faces)` : ''} |`);
  }
  out.push('');
  out.push(`binary wasm, faces in batches: ${wasmRow.batchedMs.toFixed(3)} ms / face; arena ${b.arenaBytes} bytes; lookup tables ${b.lutBytes} bytes; wasm module ${b.wasmBytes} bytes`);
  if (twinWasm && !twinWasm.error) out.push(`binary wasm vs float twin on tfjs wasm: ${(twinWasm.msPerFace / wasmRow.msPerFace).toFixed(1)}x faster`);
  out.push('');
  out.push('## Host C build: instructions per inference (valgrind callgrind, inside tfr_classify)');
  out.push('');
  if (instr.reference || instr.fast) {
    out.push('| path | x86-64 instructions |');
    out.push('|---|---:|');
    for (const [k, v] of Object.entries(instr)) out.push(`| ${k} | ${v} |`);
  } else {
    out.push(callgrind.trim());
  }
  out.push('');
  out.push('## ESP32-S3 (Xtensa LX7, 240 MHz): time per face from the compiled core');
  out.push('');
  out.push(...esp32s3);
  out.push('');
  out.push('## Frame pipeline: 640x480 JPEG -> faces -> emotion, one core');
  out.push('');
  out.push(require('./vision').formatTable(vision));
  out.push('');
  out.push('Fleet load (500 virtual devices x 2 msg/s x 60 s, QoS 1): npm run bench:fleet');
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack || e}\n`);
  process.exit(1);
});
