'use strict';
/**
 * Scores what a GPU slot brought back (device-run-r10.sh's r10.tgz, or its runs folder): every
 * <run>/{best,best-f1,last} tfjs model folder on FER2013 PublicTest, the way a user's device would
 * run it. Binary networks are exported to blobs (`tinyfer export`) and scored on the C core (wasm);
 * float twins in the tfjs graph (the C core runs binary models only). Beside each `best` folder,
 * the figure its run's student.log gives (the PyTorch mirror's): the two must agree.
 *
 *   node scripts/gpu-student/score-slot.js --runs <r10.tgz | runs folder> [--out runs/slot-scores]
 *       [--data ../shared/data/fer2013/PublicTest] [--top 3] [--views 2,10]
 *
 * --top N --views: the N best binary folders (one view) again with those test-time views.
 * Writes <out>/<run>-<folder>.tfer (binary folders), <out>/scores.json, and prints a table, best
 * first: one-view accuracy, correct faces, macro-F1, disgust and fear recall, blob bytes.
 */
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'tinyfer.js');
const BLOB_LIMIT = 32 * 1024;

function tinyfer(...argv) {
  return execFileSync(process.execPath, [CLI, ...argv], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
}

/** The folders to score: <runs>/<run>/<which>/model.json. */
function folders(runs) {
  const found = [];
  for (const run of fs.readdirSync(runs).sort()) {
    for (const which of ['best', 'best-f1', 'last']) {
      const dir = path.join(runs, run, which);
      if (fs.existsSync(path.join(dir, 'model.json'))) found.push({ run, which, dir });
    }
  }
  return found;
}

/** The mirror's best one-view figure from the run's student.log ("done: ... best PublicTest 61.23 %"). */
function mirrorBest(runs, run) {
  const file = path.join(runs, run, 'student.log');
  if (!fs.existsSync(file)) return null;
  const done = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('done:')).pop();
  const m = done && /best PublicTest ([\d.]+) %/.exec(done);
  return m ? Number(m[1]) : null;
}

function evaluate(model, data, views) {
  const r = JSON.parse(tinyfer('eval', '--model', model, '--data', data, '--views', String(views), '--json'));
  const recall = (label) => r.perClass.find((c) => c.label === label).recall;
  return { views, accuracy: r.accuracy, correct: r.correct, count: r.count, macroF1: r.macroF1,
    disgust: recall('disgust'), fear: recall('fear'), runtime: r.runtime, backend: r.backend };
}

function main() {
  const { parseArgs, str, num } = require(path.join(ROOT, 'dist', 'cli', 'args'));
  const a = parseArgs(process.argv.slice(2));
  const runsArg = str(a, 'runs');
  const out = path.resolve(str(a, 'out', path.join(ROOT, 'runs', 'slot-scores')));
  const data = str(a, 'data', path.join(ROOT, '..', 'shared', 'data', 'fer2013', 'PublicTest'));
  const top = num(a, 'top', 3);
  const viewsArg = str(a, 'views', '2,10');
  const views = viewsArg.split(',').filter(Boolean).map(Number);
  if (!Number.isInteger(top) || top < 0) throw new Error(`score-slot: --top ${top}: a whole number >= 0`);
  for (const v of views) if (![1, 2, 10].includes(v)) throw new Error(`score-slot: --views ${viewsArg}: each of 1, 2, 10`);
  fs.mkdirSync(out, { recursive: true });
  let runs = path.resolve(runsArg);
  if (fs.statSync(runs).isFile()) {
    const into = path.join(out, 'unpacked');
    fs.rmSync(into, { recursive: true, force: true });
    fs.mkdirSync(into);
    execFileSync('tar', ['xzf', runs, '-C', into]);
    runs = into;
  }
  const rows = [];
  for (const f of folders(runs)) {
    const topology = JSON.parse(fs.readFileSync(path.join(f.dir, 'model.json'), 'utf8')).modelTopology;
    const arch = topology && topology.config && topology.config.name;
    const float = typeof arch === 'string' && arch.endsWith('-float');
    const row = { run: f.run, folder: f.which, arch, float, mirror: f.which === 'best' ? mirrorBest(runs, f.run) : null };
    try {
      if (float) {
        row.model = f.dir;
      } else {
        row.model = path.join(out, `${f.run}-${f.which}.tfer`);
        tinyfer('export', '--model', f.dir, '--out', row.model, '--name', `${arch} ${f.run}/${f.which}`);
        row.bytes = fs.statSync(row.model).size;
      }
      row.scores = [evaluate(row.model, data, 1)];
    } catch (e) {
      row.error = String(e.stderr || e.message).trim().split('\n').pop();
    }
    rows.push(row);
    process.stderr.write(`${f.run}/${f.which}: ${row.error || (100 * row.scores[0].accuracy).toFixed(2) + ' %'}\n`);
  }
  const one = (r) => (r.scores ? r.scores[0].accuracy : -1);
  rows.sort((x, y) => one(y) - one(x));
  for (const r of rows.filter((x) => !x.float && x.scores).slice(0, top)) {
    for (const v of views) if (v !== 1) r.scores.push(evaluate(r.model, data, v));
  }
  fs.writeFileSync(path.join(out, 'scores.json'), JSON.stringify({ runs: runsArg, data, rows }, null, 1));
  const pct = (v) => (100 * v).toFixed(2).padStart(6);
  console.log('run/folder                    kind    1 view  faces  macro-F1 disgust  fear  mirror  bytes  more views');
  for (const r of rows) {
    const name = `${r.run}/${r.folder}`.padEnd(29);
    if (!r.scores) { console.log(`${name} ${r.float ? 'float ' : 'binary'}  error: ${r.error}`); continue; }
    const s = r.scores[0];
    const more = r.scores.slice(1).map((x) => `${x.views}: ${pct(x.accuracy).trim()} %`).join(', ');
    const bytes = r.bytes === undefined ? '-' : `${r.bytes}${r.bytes > BLOB_LIMIT ? ' (over 32 KB)' : ''}`;
    console.log(`${name} ${r.float ? 'float ' : 'binary'} ${pct(s.accuracy)} % ${String(s.correct).padStart(5)} ${pct(s.macroF1)} ${pct(s.disgust)} ${pct(s.fear)} ${r.mirror === null ? '     -' : r.mirror.toFixed(2).padStart(6)} ${bytes.padStart(6)}  ${more}`);
  }
  console.log(`${rows.length} folders from ${runsArg}; ${data}; blobs and scores.json in ${out}`);
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
