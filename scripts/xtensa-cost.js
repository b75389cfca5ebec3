'use strict';
/**
 * ESP32-S3 cost of the inference core, from the Xtensa instruction set (issue 17).
 *
 * What it does:
 *  1. Host run (measured trip counts): the core's portable sources (the reference path, the one
 *     the ESP32-S3 firmware compiles) are built for the host with gcc --coverage at -O0 and run on
 *     the bundled models and the test blob tinyfer-b1f (float stem) over real faces; gcov's
 *     per-branch arc counts give, for every source loop (and every inlined copy of it), how many
 *     times its body ran per face.
 *  2. Xtensa listing: the same sources compiled with xtensa-esp32s3-elf-gcc and the flags of the
 *     firmware build (ESP-IDF's common flags, CONFIG_COMPILER_OPTIMIZATION_PERF = -O2, the
 *     component's -ffp-contract=off), disassembled with line numbers. Every machine loop (a
 *     backward branch or a zero-overhead LOOP) is matched to its source loop by the line of its
 *     loop-closing instruction; its own instructions (outside inner machine loops) are classed.
 *  3. Cycles = sum over machine loops of (cycles per iteration x iterations per face), plus the
 *     code outside any loop once per call; the cycle assumptions are in CYCLES below (and in
 *     firmware/core/README.md, with their sources).
 * The result is data: firmware/core/tools/xtensa-cost.json (per loop: instructions per iteration
 * by class, iterations per face for each costed model, cycles), read by `npm run bench`.
 *
 *   node scripts/xtensa-cost.js generate --cc <dir>/xtensa-esp32s3-elf-gcc   # rewrites the table
 *   node scripts/xtensa-cost.js check        # CI: sources unchanged since the table, host trip counts equal
 *   node scripts/xtensa-cost.js show [--json]
 */
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const CORE = path.join(ROOT, 'firmware', 'core');
const APP = path.join(ROOT, 'firmware', 'app');
/** The device's face detector (firmware/app): its sources for the per-frame cost, and the frames. */
const DETECT_SOURCES = ['src/detect.c', 'src/util.c'];
const DETECT_HASHED = ['src/detect.c', 'src/detect_weights.h', 'src/util.c', 'include/tfa/detect.h', 'include/tfa/util.h'];
const APP_COMPONENT = path.join(ROOT, 'firmware', 'esp32s3', 'components', 'tinyfer_app', 'CMakeLists.txt');
const FRAME = { width: 320, height: 240, perSource: 12 };
/** The detector's two builds, the same switch as the core's (components/tinyfer_app): the default
 * (reference path) and TINYFER_PIE (int8 x int8 dot products, PIE; the host counts its C twin). */
const FRAME_PATHS = [
  { key: 'frame', name: 'reference', firmware: 'default build', host: [], xtensa: [] },
  { key: 'framePie', name: 'int8-pie', firmware: 'idf.py -DTINYFER_PIE=1', host: ['TFA_DET_INT8_DOT'], xtensa: ['TFA_DET_INT8_DOT', 'TFA_DET_PIE'] },
];
const TABLE = path.join(CORE, 'tools', 'xtensa-cost.json');
const COMPONENT = path.join(ROOT, 'firmware', 'esp32s3', 'components', 'tinyfer_core', 'CMakeLists.txt');
const BUILD = path.join(ROOT, 'build', 'xtensa-cost');
const MHZ = 240;
/** Faces of the host run: the first N of the test vectors (FER2013 PublicTest), else one synthetic face. */
const HOST_FACES = 20;

/** ESP-IDF v5.x common C flags (tools/cmake/build.cmake + the esp32s3 toolchain file) with
 * CONFIG_COMPILER_OPTIMIZATION_PERF (-O2), then the component's own (components/tinyfer_core). */
const XTENSA_FLAGS = ['-mlongcalls', '-std=gnu17', '-O2', '-ffunction-sections', '-fdata-sections', '-fno-shrink-wrap',
  '-fstrict-volatile-bitfields', '-fno-jump-tables', '-fno-tree-switch-conversion', '-ggdb', '-ffp-contract=off', '-O2'];

/** The firmware's two builds of the core: the default (reference path) and the opt-in PIE path
 * (components/tinyfer_core: idf.py -DTINYFER_PIE=1), whose portable C twin the host counts. */
const PATHS = [
  { name: 'reference', firmware: 'default build', host: [], xtensa: [] },
  { name: 'int8-pie', firmware: 'idf.py -DTINYFER_PIE=1', host: ['TFR_USE_INT8_DOT'], xtensa: ['TFR_USE_INT8_DOT', 'TFR_USE_PIE'] },
];

/** The core's sources as the firmware component lists them (one definition: its CMakeLists). */
function coreSources() {
  const text = fs.readFileSync(COMPONENT, 'utf8');
  const srcs = [...text.matchAll(/\$\{core\}\/(src\/[A-Za-z0-9_]+\.c)/g)].map((m) => m[1]);
  if (srcs.length === 0) throw new Error(`xtensa-cost: no sources found in ${COMPONENT}`);
  return srcs;
}

/** SHA-256 over everything that decides the compiled code: the core's sources and headers and the
 * component's CMakeLists (its flags). */
function sourcesHash() {
  const files = [
    ...fs.readdirSync(path.join(CORE, 'src')).map((f) => `src/${f}`),
    ...fs.readdirSync(path.join(CORE, 'include', 'tinyfer')).map((f) => `include/tinyfer/${f}`),
  ].filter((f) => /\.[ch]$/.test(f)).sort();
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(`${f}\0`).update(fs.readFileSync(path.join(CORE, f))).update('\0');
  h.update('component\0').update(fs.readFileSync(COMPONENT));
  for (const f of DETECT_HASHED) h.update(`app/${f}\0`).update(fs.readFileSync(path.join(APP, f))).update('\0');
  h.update('app component\0').update(fs.readFileSync(APP_COMPONENT));
  return { sha256: h.digest('hex'), files: files.length + 2 + DETECT_HASHED.length };
}

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

// ---------------------------------------------------------------------------------------------
// 1. Host run: trip counts
// ---------------------------------------------------------------------------------------------

/**
 * Test blobs costed beside the bundled models: tinyfer-b1f (r8, the default until r9) runs the
 * core's float stem, which the default (r9, an int8 stem) no longer has; tinyfer-b1g (r9 grown
 * into a grid head, format version 3) the grid head.
 */
const TEST_BLOBS = ['tinyfer-b1f', 'tinyfer-b1g'];

/** The models costed: the bundled ones (models/*.tfer), then TEST_BLOBS (test/fixtures/models), by name. */
function costedModels() {
  const dir = path.join(ROOT, 'models');
  const bundled = fs.readdirSync(dir).filter((f) => f.endsWith('.tfer')).sort().map((f) => ({ name: f.replace(/\.tfer$/, ''), file: path.join(dir, f) }));
  return [...bundled, ...TEST_BLOBS.map((name) => ({ name, file: path.join(ROOT, 'test', 'fixtures', 'models', `${name}.tfer`) }))];
}

function facesFile() {
  const f = process.env.TINYFER_VECTORS ? path.join(process.env.TINYFER_VECTORS, 'faces.u8') : path.join(ROOT, '.cache', 'vectors', 'faces.u8');
  return fs.existsSync(f) && fs.statSync(f).size >= HOST_FACES * 2304 ? f : null;
}

/** Builds a counting binary: the sources with gcc --coverage at -O0, the driver without. */
function buildCountingOf(name, sources, includes, driver, defines = []) {
  const dir = path.join(BUILD, `${name}${defines.length ? '-' + defines.join('-') : ''}`);
  fs.mkdirSync(dir, { recursive: true });
  const cc = process.env.CC || 'gcc';
  const inc = includes.flatMap((i) => ['-I', i]);
  const objs = [];
  for (const src of sources) {
    const obj = path.join(dir, path.basename(src, '.c') + '.o');
    run(cc, ['-std=c99', '-O0', '-ffp-contract=off', '--coverage', ...defines.map((d) => `-D${d}`), ...inc, '-c', src, '-o', obj]);
    objs.push(obj);
  }
  const drv = path.join(dir, 'driver.o');
  run(cc, ['-std=c99', '-O0', ...inc, '-c', driver, '-o', drv]);
  const exe = path.join(dir, 'count');
  run(cc, ['--coverage', ...objs, drv, '-o', exe, '-lm']);
  return { dir, exe, objs };
}

/** The core's counting binary (tools/tfr_bench.c over faces). */
function buildCounting(defines = []) {
  return buildCountingOf('host', coreSources().map((f) => path.join(CORE, f)), [path.join(CORE, 'include'), path.join(CORE, 'src'), path.join(CORE, 'tests')],
    path.join(CORE, 'tools', 'tfr_bench.c'), defines);
}

/** The detector's counting binary (firmware/app/tools/detect_count.c over frames). */
function buildDetectCounting(defines = []) {
  return buildCountingOf('host-detect', DETECT_SOURCES.map((f) => path.join(APP, f)), [path.join(APP, 'include')],
    path.join(APP, 'tools', 'detect_count.c'), defines);
}

/** One run of the counting binary (n faces; 0: parse only) and its gcov report. */
function gcovRun(build, args) {
  for (const f of fs.readdirSync(build.dir)) if (f.endsWith('.gcda')) fs.unlinkSync(path.join(build.dir, f));
  run(build.exe, args);
  const lines = {};
  const calls = {};
  const starts = {};
  for (const obj of build.objs) {
    const json = JSON.parse(run(process.env.GCOV || 'gcov', ['-b', '--json-format', '--stdout', obj], { cwd: build.dir }));
    for (const file of json.files) {
      const base = path.basename(file.file);
      if (!srcPath(base)) continue;
      const per = (lines[base] ??= {});
      for (const l of file.lines) {
        const e = (per[l.line_number] ??= { count: 0, arcs: [] });
        e.count += l.count;
        if (l.branches.length) e.arcs = l.branches.map((b) => [b.count, b.fallthrough]);
      }
      for (const fn of file.functions) {
        calls[fn.name] = (calls[fn.name] || 0) + fn.execution_count;
        (starts[base] ??= {})[fn.name] = fn.start_line;
      }
    }
  }
  return { lines, calls, starts };
}

/**
 * Runs the counting build on one model and returns, per source file and line, the gcov line count
 * and the branch arcs of every inlined copy, per face: the counts of a run over N faces minus those
 * of a run over none (the blob parse and arena plan, done once per model load, drop out).
 *   { faces, source, lines: { 'op_binary_conv.c': { 112: { count, arcs: [[n, fallthrough], ...] } } }, calls: { fn: n } }
 */
function hostCounts(build, modelFile) {
  const faces = facesFile();
  const n = faces ? HOST_FACES : 1;
  const args = (k) => (faces ? [modelFile, faces, String(k)] : [modelFile, String(k)]);
  return { ...perUnit(build, args, n), faces: n, source: faces ? `${path.relative(ROOT, faces)} (first ${n} faces)` : 'one synthetic face (tools/tfr_bench.c)' };
}

/** Counts of a run over n units (faces, frames) minus those of a run over none, divided by n. */
function perUnit(build, args, n) {
  const full = gcovRun(build, args(n));
  const base = gcovRun(build, args(0));
  const lines = {};
  for (const [file, per] of Object.entries(full.lines)) {
    lines[file] = {};
    for (const [line, e] of Object.entries(per)) {
      const b = (base.lines[file] && base.lines[file][line]) || { count: 0, arcs: [] };
      const count = (e.count - b.count) / n;
      const arcs = e.arcs.map(([c, ft], i) => [(c - (b.arcs[i] ? b.arcs[i][0] : 0)) / n, ft]);
      if (count !== 0 || arcs.some(([c]) => c !== 0)) lines[file][line] = { count, arcs };
    }
  }
  const calls = {};
  for (const [fn, c] of Object.entries(full.calls)) calls[fn] = (c - (base.calls[fn] || 0)) / n;
  return { lines, calls, starts: full.starts, output: run(build.exe, args(n)) };
}

/** The detector's frames: the QVGA frames of bench/detect-frames.js (faces of FER2013 and the
 * held-out JAFFE subjects placed on synthetic backgrounds, blank and noise frames), written as one
 * raw file; null when the datasets are not here. */
async function detectFrames() {
  let frames;
  try {
    const { buildDetectFrames } = require('../bench/detect-frames');
    frames = (await buildDetectFrames({ perSource: FRAME.perSource })).filter((f) => f.width === FRAME.width && f.height === FRAME.height);
  } catch (e) {
    return { file: null, why: String(e.message || e).split('\n')[0] };
  }
  if (frames.length === 0) return { file: null, why: 'no QVGA frames' };
  fs.mkdirSync(BUILD, { recursive: true });
  const file = path.join(BUILD, 'frames-qvga.u8');
  fs.writeFileSync(file, Buffer.concat(frames.map((f) => Buffer.from(f.gray.buffer, f.gray.byteOffset, f.gray.length))));
  const kinds = {};
  for (const f of frames) kinds[f.kind] = (kinds[f.kind] || 0) + 1;
  return { file, n: frames.length, kinds, kindOf: frames.map((f) => f.kind), source: `bench/detect-frames.js QVGA frames (perSource ${FRAME.perSource}): ` + Object.entries(kinds).map(([k, v]) => `${v} ${k}`).join(', ') };
}

/** Each frame's modelled cycles on its own: the counting build run on that frame alone, its trip
 * counts put through the loops and straight code costed for the mean (the same matches). Returns
 * [{ frame, kind, cycles }]. */
function perFrameCycles(build, frames, loops, straight) {
  const size = FRAME.width * FRAME.height;
  const all = fs.readFileSync(frames.file);
  const one = path.join(BUILD, 'frame-one.u8');
  const out = [];
  for (let i = 0; i < frames.n; i++) {
    fs.writeFileSync(one, all.subarray(i * size, (i + 1) * size));
    const host = perUnit(build, (k) => [one, String(FRAME.width), String(FRAME.height), String(k)], 1);
    let cycles = 0;
    for (const l of loops) cycles += l.cyclesPerIteration * tableLoopIterations(host, l.host);
    for (const st of straight) cycles += st.cyclesPerCall * (host.calls[baseName(st.function)] || 0);
    out.push({ frame: i, kind: frames.kindOf[i], cycles: Math.round(cycles) });
  }
  return out;
}

function detectCounts(build, frames) {
  const args = (k) => [frames.file, String(FRAME.width), String(FRAME.height), String(k)];
  const r = perUnit(build, args, frames.n);
  const macs = r.output.trim().split('\n').map((l) => { const m = /macs_p (\d+) macs_r (\d+)/.exec(l); return Number(m[1]) + Number(m[2]); });
  return { ...r, faces: frames.n, source: frames.source, macsMean: macs.reduce((a, b) => a + b, 0) / macs.length, macsMax: Math.max(...macs) };
}

// ---------------------------------------------------------------------------------------------
// 2. Xtensa listing: machine loops and their instructions
// ---------------------------------------------------------------------------------------------

/** Instruction classes, by mnemonic. */
const CLASS_OF = (() => {
  const m = new Map();
  const put = (cls, names) => names.split(/\s+/).filter(Boolean).forEach((n) => m.set(n, cls));
  put('load', 'l8ui l16ui l16si l32i l32i.n l32r l32ai l32e lsi lsiu lsx lsxu lsip');
  put('store', 's8i s16i s32i s32i.n s32ri s32e ssi ssiu ssx ssxu ssip');
  put('branch', 'beq bne bge blt bgeu bltu beqz bnez bgez bltz beqi bnei bgei blti bgeui bltui bany bnone ball bnall ' +
    'bbc bbs bbci bbsi beqz.n bnez.n bt bf');
  put('jump', 'j jx');
  put('loop', 'loop loopnez loopgtz');
  put('call', 'call0 call4 call8 call12 callx0 callx4 callx8 callx12');
  put('entry', 'entry');
  put('return', 'ret ret.n retw retw.n');
  put('mul', 'mull mul16u mul16s muluh mulsh');
  put('div', 'quos quou rems remu');
  put('fpu', 'add.s sub.s mul.s madd.s msub.s maddn.s neg.s abs.s mov.s moveqz.s movnez.s movltz.s movgez.s movf.s movt.s ' +
    'float.s ufloat.s trunc.s utrunc.s round.s floor.s ceil.s rfr wfr oeq.s olt.s ole.s ueq.s ult.s ule.s un.s div0.s divn.s ' +
    'recip0.s rsqrt0.s sqrt0.s nexp01.s mkdadj.s mksadj.s addexp.s addexpm.s const.s');
  return m;
})();
function classOf(op) {
  if (CLASS_OF.has(op)) return CLASS_OF.get(op);
  if (op.startsWith('ee.')) return 'simd';
  return 'alu';
}

/** Compiles the core for the ESP32-S3 and returns the parsed listing: functions with their
 * instructions { addr, op, args, file, line, cls, target }. */
function xtensaListing(cc, defines = [], sources = coreSources().map((f) => path.join(CORE, f)), includes = [path.join(CORE, 'include'), path.join(CORE, 'src')], name = 'xtensa') {
  const dir = path.join(BUILD, `${name}${defines.length ? '-' + defines.join('-') : ''}`);
  fs.mkdirSync(dir, { recursive: true });
  const objdump = cc.replace(/gcc$/, 'objdump');
  const version = run(cc, ['--version']).split('\n')[0];
  const functions = [];
  for (const src of sources) {
    const obj = path.join(dir, path.basename(src, '.c') + '.o');
    run(cc, [...XTENSA_FLAGS, ...defines.map((d) => `-D${d}`), ...includes.flatMap((i) => ['-I', i]), '-c', src, '-o', obj]);
    const fns = parseObjdump(run(objdump, ['-d', '-l', '--inlines', '-r', '--no-show-raw-insn', obj]));
    resolveLiterals(fns, run(objdump, ['-s', obj]));
    for (const f of fns) f.unit = path.basename(src);
    functions.push(...fns);
  }
  return { version, functions };
}

/** Parses `objdump -d -l --inlines -r`: per instruction its source file and line, the function
 * that line belongs to (srcFn) and the chain of call sites it is inlined through (outermost first,
 * as 'line' numbers of the calls). */
function parseObjdump(text) {
  const fns = [];
  let fn = null;
  let file = null;
  let line = 0;
  let srcFn = null;
  let chain = [];
  for (const raw of text.split('\n')) {
    let m;
    if ((m = /^[0-9a-f]+ <([^>]+)>:$/.exec(raw))) {
      fn = { name: m[1], insns: [] };
      fns.push(fn);
      chain = [];
      continue;
    }
    if (!fn) continue;
    if ((m = /^([A-Za-z_][A-Za-z0-9_.]*)\(\):$/.exec(raw))) {
      srcFn = m[1];
      continue;
    }
    if ((m = /^inlined by (\S+):(\d+)/.exec(raw))) {
      if (chain[0] !== Number(m[2])) chain.unshift(Number(m[2])); // objdump may repeat a line
      continue;
    }
    if ((m = /^(\/[^:]+|[A-Za-z][^:\s]*\.[ch]):(\d+)/.exec(raw))) {
      file = path.basename(m[1]);
      line = Number(m[2]);
      chain = []; // the 'inlined by' lines that follow belong to this line
      continue;
    }
    if ((m = /^\s+([0-9a-f]+):\s+(R_XTENSA_\S+)\s+(\S+)/.exec(raw))) {
      // relocation of the previous instruction: keep the symbol (call targets, literals)
      const last = fn.insns[fn.insns.length - 1];
      if (last) (last.relocs ??= []).push(m[3]);
      continue;
    }
    if ((m = /^\s+([0-9a-f]+):\s+([a-z][a-z0-9._]*)\s*(.*)$/.exec(raw))) {
      const insn = { addr: parseInt(m[1], 16), op: m[2], args: m[3].trim(), file, line, srcFn: srcFn || fn.name, chain };
      chain = [];
      insn.cls = classOf(insn.op);
      const t = /\b([0-9a-f]+) <[^>]*>/.exec(insn.args);
      if (t && ['branch', 'jump', 'loop'].includes(insn.cls)) insn.target = parseInt(t[1], 16);
      fn.insns.push(insn);
    }
  }
  return fns.filter((f) => f.insns.length > 0);
}

/** The 32-bit literal each `l32r` loads (from `objdump -s`), as insn.literal: GCC's long
 * zero-overhead loops keep their real end address there. */
function resolveLiterals(fns, dump) {
  const sections = {};
  let cur = null;
  for (const line of dump.split('\n')) {
    let m;
    if ((m = /^Contents of section (\S+):/.exec(line))) { cur = sections[m[1]] = []; continue; }
    if (cur && (m = /^ ([0-9a-f]+) ((?:[0-9a-f]{2,8} ?){1,4})/.exec(line))) {
      const at = parseInt(m[1], 16);
      const hex = m[2].replace(/ /g, '');
      for (let i = 0; i < hex.length / 2; i++) cur[at + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    }
  }
  for (const fn of fns) {
    for (const x of fn.insns) {
      if (x.op !== 'l32r' || !x.relocs) continue;
      const r = x.relocs.map((s) => /^(\.literal\S*?)(?:\+0x([0-9a-f]+))?$/.exec(s)).find(Boolean);
      if (!r || !sections[r[1]]) continue;
      const b = sections[r[1]], o = r[2] ? parseInt(r[2], 16) : 0;
      if (b[o + 3] !== undefined) x.literal = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
    }
  }
}

/**
 * Machine loops of a function: natural loops of its control-flow graph (an edge to a block that
 * dominates its source closes a loop; a zero-overhead LOOP closes its body back to its first
 * instruction). Returns the loops innermost first, each with its own instructions (those in no
 * inner loop), the instruction that closes it (a conditional back edge if there is one) and its
 * parent; and the instructions outside every loop.
 */
function machineLoops(fn) {
  const n = fn.insns.length;
  const idx = new Map(fn.insns.map((x, i) => [x.addr, i]));
  const ends = (x) => ['branch', 'jump', 'return'].includes(x.cls) || (x.cls === 'loop');
  // leaders
  const leader = new Array(n).fill(false);
  leader[0] = true;
  const loopBack = new Map(); // index of the last body instruction -> index of the body's first
  fn.insns.forEach((x, i) => {
    if (x.target !== undefined && idx.has(x.target)) leader[idx.get(x.target)] = true;
    if (ends(x) && i + 1 < n) leader[i + 1] = true;
    if (x.cls === 'loop' && x.target !== undefined && idx.has(x.target)) {
      // A body too long for LOOP's 8-bit end offset: GCC loops over a stub that moves LBEG to the
      // stub's end (the real first instruction, x.target) and LEND to an address kept in a literal
      // (rsr.lend; wsr.lbeg; l32r; wsr.lend; isync; ...). The loop is then [x.target, that end).
      const stub = fn.insns.slice(i + 1, idx.get(x.target));
      const wl = stub.find((y) => y.op === 'wsr.lend');
      const lit = wl && stub.find((y) => y.op === 'l32r' && y.literal !== undefined && y.args.startsWith(wl.args.split(',')[0].trim()));
      if (lit && idx.has(lit.literal)) {
        x.longEnd = lit.literal;
        const last = idx.get(lit.literal) - 1;
        loopBack.set(last, idx.get(x.target));
        leader[idx.get(x.target)] = true;
        if (last + 1 < n) leader[last + 1] = true;
        return;
      }
      const last = idx.get(x.target) - 1;
      if (last > i) { loopBack.set(last, i + 1); if (last + 1 < n) leader[last + 1] = true; }
    }
  });
  const blocks = [];
  const blockOf = new Array(n);
  for (let i = 0; i < n; i++) {
    if (leader[i]) blocks.push({ first: i, last: i });
    blocks[blocks.length - 1].last = i;
    blockOf[i] = blocks.length - 1;
  }
  for (const b of blocks) {
    const x = fn.insns[b.last];
    b.succ = [];
    const fall = () => { if (b.last + 1 < n) b.succ.push({ to: blockOf[b.last + 1], via: b.last }); };
    if (x.cls === 'jump') { if (x.target !== undefined && idx.has(x.target)) b.succ.push({ to: blockOf[idx.get(x.target)], via: b.last }); }
    else if (x.cls === 'return') { /* none */ }
    else if (x.cls === 'branch') { fall(); if (idx.has(x.target)) b.succ.push({ to: blockOf[idx.get(x.target)], via: b.last }); }
    else fall();
    if (loopBack.has(b.last)) {
      b.succ.push({ to: blockOf[loopBack.get(b.last)], via: fn.insns.findIndex((y) => y.cls === 'loop' && (y.longEnd !== undefined ? idx.get(y.longEnd) : idx.get(y.target)) === b.last + 1) });
    }
  }
  // dominators (iterative, blocks in address order from the entry)
  const nb = blocks.length;
  const preds = blocks.map(() => []);
  blocks.forEach((b, i) => b.succ.forEach((e) => preds[e.to].push(i)));
  const all = () => new Set(blocks.map((_, i) => i));
  const dom = blocks.map((_, i) => (i === 0 ? new Set([0]) : all()));
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 1; i < nb; i++) {
      let d = null;
      for (const p of preds[i]) {
        if (d === null) d = new Set(dom[p]);
        else for (const v of d) if (!dom[p].has(v)) d.delete(v);
      }
      d = d || new Set();
      d.add(i);
      if (d.size !== dom[i].size || [...d].some((v) => !dom[i].has(v))) { dom[i] = d; changed = true; }
    }
  }
  // natural loops, merged per header
  const byHeader = new Map();
  blocks.forEach((b, u) => b.succ.forEach((e) => {
    const h = e.to;
    if (!dom[u].has(h)) return;
    const body = byHeader.get(h)?.body || new Set([h]);
    const stack = [u];
    while (stack.length) {
      const v = stack.pop();
      if (body.has(v)) continue;
      body.add(v);
      preds[v].forEach((p) => stack.push(p));
    }
    const closes = [...(byHeader.get(h)?.closes || []), e.via];
    byHeader.set(h, { header: h, body, closes });
  }));
  const loops = [...byHeader.values()].sort((a, b) => a.body.size - b.body.size);
  const owner = new Array(n).fill(null);
  for (const l of loops) {
    l.own = [];
    for (const bi of [...l.body].sort((a, b) => a - b)) {
      for (let i = blocks[bi].first; i <= blocks[bi].last; i++) if (owner[i] === null) { owner[i] = l; l.own.push(i); }
    }
    l.own.sort((a, b) => a - b);
    const zol = l.closes.map((c) => fn.insns[c]).find((x) => x && x.cls === 'loop');
    const cond = l.closes.map((c) => fn.insns[c]).filter((x) => x && x.cls === 'branch');
    l.close = zol || cond[cond.length - 1] || fn.insns[l.closes[l.closes.length - 1]];
    l.kind = zol ? 'zero-overhead' : cond.length ? 'branch' : 'jump';
    l.head = Math.min(...l.own);
    l.tail = Math.max(...l.own);
  }
  for (const l of loops) l.parent = loops.find((p) => p !== l && p.body.size > l.body.size && [...l.body].every((v) => p.body.has(v))) || null;
  const outside = fn.insns.map((_, i) => i).filter((i) => owner[i] === null);
  return { loops, outside };
}

// ---------------------------------------------------------------------------------------------
// 3. Cycle model
// ---------------------------------------------------------------------------------------------

/**
 * Cycle assumptions for the ESP32-S3's Xtensa LX7 core at 240 MHz (single issue, in order). Each
 * entry says where it comes from; firmware/core/README.md has the discussion.
 */
const CYCLES = {
  issue: { value: 1, source: 'every instruction issues in one cycle (LX7: single-issue, in-order)' },
  loadLatency: { value: 2, source: 'assumption: a load result is usable by the second instruction after it (5-stage pipeline, one bubble on load-use)' },
  mulLatency: { value: 2, source: 'assumption: MULL result usable by the second instruction after it' },
  fpuLatency: { value: 1, source: 'calibrated (see calibration): FP add/mul/madd result latency in cycles' },
  accxLatency: { value: 2, source: "ESP32-S3 TRM, PIE instruction latencies: ACCX written by an ee.vmulas.*.accx is read by rur.accx_*, ee.st.accx.ip or ee.srs.accx the second instruction after it (one cycle's wait right after); back-to-back multiply-accumulates do not wait" },
  takenBranchPenalty: { value: 2, source: 'assumption: a taken branch or jump costs 3 cycles (2 refetch bubbles); forward branches inside a loop are counted not taken' },
  zeroOverheadLoop: { value: 0, source: 'Xtensa LOOP/LOOPNEZ/LOOPGTZ: no cycles for the loop-back (ISA: zero-overhead loop option, present on the ESP32-S3)' },
  callReturn: { value: 4, source: 'assumption: CALLn and RETW each pay the taken-branch penalty (window overflow/underflow exceptions not modelled)' },
  libcalls: {
    value: { __divsf3: 54, __udivsi3: 40, __divsi3: 40, __umodsi3: 40, __modsi3: 40 },
    source: 'float division: ~54 cycles (a third-party measurement of 4.47 M float divisions/s on an ESP32-S3 at 240 MHz: WLED issue 4206); integer division libcalls: assumption',
  },
  memory: { value: 'internal', source: 'assumption: every access hits internal SRAM or the cache in one cycle (arena in internal SRAM; the model blob in flash, 31 KB, assumed cached after the first face)' },
};

const REGS = /\b([abf])(\d{1,2})\b/g;
/** Registers an instruction writes and reads (Xtensa operand conventions: the first operand is
 * the destination except for stores, branches, loops, calls and a few special cases). */
function regsOf(x) {
  const ops = x.args.split(',').map((s) => s.trim());
  const regs = (s) => [...(s || '').matchAll(REGS)].map((m) => m[1] + m[2]);
  const all = ops.flatMap(regs);
  const noDest = ['store', 'branch', 'loop', 'call', 'jump', 'return'].includes(x.cls) || /^(ssr|ssl|ssa8l|ssa8b|ssai|wsr|wur|ee\.st)/.test(x.op);
  // the PIE accumulator ACCX as a register of its own: multiply-accumulates write it (their own
  // accumulation never waits), rur / ee.st.accx / ee.srs.accx read it
  const readsAccx = /^(rur\.accx|ee\.st\.accx|ee\.srs\.accx)/.test(x.op) ? ['accx'] : [];
  if (noDest) return { writes: x.op === 'ssr' || x.op === 'ssl' ? ['sar'] : [], reads: [...all, ...readsAccx] };
  const dest = regs(ops[0]);
  const reads = ops.slice(1).flatMap(regs);
  // read-modify-write destinations: conditional moves, multiply-accumulate, post-increment bases
  if (/^(moveqz|movnez|movltz|movgez|movt|movf|madd|msub|maddn|divn)/.test(x.op)) reads.push(...dest);
  if (/^(srl|sll|sra|src)$/.test(x.op)) reads.push('sar');
  const writes = [...dest];
  if (/iu$|ip$/.test(x.op) && ops[1]) writes.push(...regs(ops[1]));
  if (/^ee\.vmulas\..*accx/.test(x.op)) writes.push('accx');
  return { writes, reads: [...reads, ...readsAccx] };
}

function latencyOf(x) {
  if (x.cls === 'load') return CYCLES.loadLatency.value;
  if (x.cls === 'mul') return CYCLES.mulLatency.value;
  if (x.cls === 'fpu') return CYCLES.fpuLatency.value;
  return 1;
}

/** Extra cycles of a call instruction: the callee when it is a libgcc routine (core functions are
 * costed from their own listing and counts). */
function libcallCycles(x) {
  if (x.cls !== 'call' && !(x.relocs && x.relocs.length)) return 0;
  const sym = (x.relocs || []).map((r) => r.replace(/[+-].*$/, '')).find((s) => CYCLES.libcalls.value[s] !== undefined);
  return sym ? CYCLES.libcalls.value[sym] : 0;
}

/** Cycles of a straight-line run of instructions in steady state (run twice, the second counted):
 * issue + dependency stalls + taken-branch penalties (the closing branch, unconditional jumps,
 * calls and returns) + libgcc callees. */
function simulate(insns, { closing = null } = {}) {
  let cycle = 0;
  let counted = 0;
  const ready = new Map();
  for (let pass = 0; pass < 2; pass++) {
    const start = cycle;
    for (const x of insns) {
      const { reads, writes } = regsOf(x);
      let t = cycle;
      for (const r of reads) if (ready.has(r)) t = Math.max(t, ready.get(r));
      cycle = t + CYCLES.issue.value;
      for (const w of writes) ready.set(w, t + (w === 'accx' ? CYCLES.accxLatency.value : latencyOf(x)));
      if (x.cls === 'jump' || x === closing) cycle += CYCLES.takenBranchPenalty.value;
      if (x.cls === 'call' || x.cls === 'return') cycle += CYCLES.callReturn.value / 2;
      cycle += libcallCycles(x);
    }
    if (pass === 1) counted = cycle - start;
  }
  return counted;
}

function classCounts(insns) {
  const c = {};
  for (const x of insns) c[x.cls] = (c[x.cls] || 0) + 1;
  return c;
}

// ---------------------------------------------------------------------------------------------
// 4. The table
// ---------------------------------------------------------------------------------------------

/** Per-instance iteration counts of the source loop on a line: gcov lists two arcs per loop test
 * and per inlined copy, the first the one into the body (iterations), the second the exit. */
function loopIterations(host, file, line) {
  const e = host.lines[file] && host.lines[file][line];
  if (!e || e.arcs.length < 2 || e.arcs.length % 2 !== 0) return null;
  const out = [];
  for (let i = 0; i < e.arcs.length; i += 2) out.push(e.arcs[i][0]);
  return out;
}

/** A table loop's iterations in a host run, by the match the table recorded for it (`l.host`:
 * its line, which inlined copy or the total, and how many machine loops share the count). */
function tableLoopIterations(host, h) {
  const [file, line] = h.line.split(':');
  const inst = h.of === null ? null : loopIterations(host, file, Number(line)); // of: null: a line count
  if (!inst) return host.lines[file] && host.lines[file][line] ? host.lines[file][line].count / h.share : 0;
  if (h.copy !== null) return inst[h.copy] / h.share;
  return inst.reduce((a, b) => a + b, 0) / h.share;
}

const baseName = (name) => name.replace(/[.$](constprop|isra|part|cold)[.$]\d+$/, '').replace(/[.$](constprop|isra|part)[.$]\d+/g, '');

/** A source file of the core or of the detector, by base name. */
function srcPath(base) {
  for (const dir of [path.join(CORE, 'src'), path.join(APP, 'src')]) if (fs.existsSync(path.join(dir, base))) return path.join(dir, base);
  return null;
}

function sourceLine(file, line) {
  const p = srcPath(file);
  if (!p) return '';
  return (fs.readFileSync(p, 'utf8').split('\n')[line - 1] || '').trim();
}

/** A source line that is a loop's test: a for/while/do line, or a line marked `xtensa-cost: loop`
 * (a loop written in inline assembly, whose portable twin on the host loops on that line). */
const LOOP_LINE = /\b(for|while)\s*\(|\bdo\b|xtensa-cost: loop\b/;

/** Matches machine loops to host loop counts and costs everything; `hosts`: { model: hostCounts }. */
function costListing(listing, hosts) {
  const loops = [];
  const straight = [];
  for (const fn of listing.functions) {
    const { loops: ml, outside } = machineLoops(fn);
    for (const l of ml) {
      const own = l.own.map((i) => fn.insns[i]);
      // The source loop: the line of the closing instruction when the host saw a loop test there,
      // else the first line of the loop's own instructions (same file and function) that has one
      // (GCC puts a LOOP instruction on a line of its setup; the for-line's increment stays inside).
      // (a loop test: a line with branch arcs that is a for/while/do line where the source is
      // known; a ternary or an if in a helper inlined into the loop has arcs too, but is no loop's test)
      const loopLine = (x) => { const src = sourceLine(x.file, x.line); return src === '' || LOOP_LINE.test(src); };
      const hasTest = (x) => loopLine(x) &&
        Object.values(hosts).some((h) => { const e = h.lines[x.file] && h.lines[x.file][x.line]; return e && e.arcs.length >= 2; });
      // When the closing instruction is in an inlined function with no loop of its own (a helper
      // called once per iteration), the loop's line is that of the loop it is inlined into.
      // When the closing instruction is in a helper of another file (a header's inline function)
      // inlined into the loop, the loop's line is the first for/while/do line of the function's
      // own code in the loop (no arcs there: the loop did not run per unit, 0 iterations).
      // A line with no loop test gets its plain count (test: false), never the arcs of an if or
      // a ternary on it.
      const first = (f) => own.filter(f).sort((a, b) => a.line - b.line)[0];
      const sameFile = (x) => x.file === l.close.file;
      const at = hasTest(l.close) ? l.close : first((x) => sameFile(x) && x.srcFn === l.close.srcFn && hasTest(x)) ||
        first((x) => sameFile(x) && hasTest(x)) || first((x) => x.chain.length === 0 && sourceLine(x.file, x.line) !== '' && loopLine(x)) ||
        l.close;
      loops.push({
        function: fn.name, file: at.file, line: at.line, kind: l.kind, srcFn: at.srcFn, chain: at.chain, test: hasTest(at),
        addr: `0x${fn.insns[l.head].addr.toString(16)}-0x${fn.insns[l.tail].addr.toString(16)}`,
        depth: (() => { let d = 1, p = l.parent; while (p) { d++; p = p.parent; } return d; })(),
        instructions: own.length, byClass: classCounts(own),
        cyclesPerIteration: simulate(own, { closing: l.kind === 'zero-overhead' ? null : l.close }),
        insns: own,
      });
    }
    const out = outside.map((i) => fn.insns[i]);
    straight.push({ function: fn.name, instructions: out.length, byClass: classCounts(out), cyclesPerCall: simulate(out) });
  }
  // Which inlined copy of a source loop a machine loop is: the host (gcov) lists the copies of an
  // always_inline function in the order of their call sites; the listing gives each instruction's
  // chain of call sites. Copies the compiler unrolled away have no machine loop; copies the host
  // does not have (functions GCC inlined on its own at -O2) share the host count evenly.
  // gcov's order of the copies: by the function holding the outermost call, the last defined
  // first (the order GCC instruments functions in at -O0), then by call-site lines.
  const chainsOf = new Map(); // srcFn -> sorted distinct chains (as strings)
  const unitOf = new Map();
  for (const fn of listing.functions) {
    for (const x of fn.insns) {
      if (!x.chain.length) continue;
      if (!chainsOf.has(x.srcFn)) chainsOf.set(x.srcFn, new Set());
      chainsOf.get(x.srcFn).add(x.chain.join('>'));
      unitOf.set(x.chain.join('>') + '@' + x.srcFn, fn.unit);
    }
  }
  const anyHost = Object.values(hosts)[0];
  const callerStart = (chain, srcFn) => {
    const unit = unitOf.get(chain + '@' + srcFn);
    const line = Number(chain.split('>')[0]);
    const st = Object.values((anyHost.starts && anyHost.starts[unit]) || {}).filter((v) => v <= line);
    return st.length ? Math.max(...st) : 0;
  };
  const cmpChainOf = (srcFn) => (a, b) => {
    const ca = callerStart(a, srcFn), cb = callerStart(b, srcFn);
    if (ca !== cb) return cb - ca;
    const x = a.split('>').map(Number), y = b.split('>').map(Number);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
    return x.length - y.length;
  };
  const byKey = new Map();
  for (const l of loops) {
    const k = `${l.file}:${l.line}`;
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k).push(l);
  }
  for (const [k, group] of byKey) {
    group.forEach((l, i) => {
      l.id = group.length > 1 ? `${k}#${i + 1}` : k;
      l.source = sourceLine(l.file, l.line);
      l.iterations = {};
      const chain = l.chain.join('>');
      const chains = [...(chainsOf.get(l.srcFn) || [])].sort(cmpChainOf(l.srcFn));
      const same = group.filter((g) => g.chain.join('>') === chain).length;
      l.host = { line: k, copy: null, of: null, share: 1 };
      for (const [model, host] of Object.entries(hosts)) {
        const inst = l.test ? loopIterations(host, l.file, l.line) : null;
        if (!inst) {
          l.iterations[model] = host.lines[l.file] && host.lines[l.file][l.line] ? host.lines[l.file][l.line].count / group.length : 0;
          l.match = 'line count (no loop test on this line)';
          l.host.share = group.length;
        } else if (inst.length > 1 && chains.length === inst.length && chains.includes(chain)) {
          const c = chains.indexOf(chain);
          l.iterations[model] = inst[c] / same;
          l.match = same > 1 ? `inlined copy ${c + 1} of ${inst.length}, shared by ${same} machine loops` : `inlined copy ${c + 1} of ${inst.length}`;
          Object.assign(l.host, { copy: c, of: inst.length, share: same });
        } else {
          const total = inst.reduce((a, b) => a + b, 0);
          l.iterations[model] = total / group.length;
          l.match = group.length > 1 ? `host total shared by ${group.length} machine loops` : 'loop';
          Object.assign(l.host, { copy: null, of: inst.length, share: group.length });
        }
      }
    });
  }
  for (const s of straight) {
    s.calls = {};
    for (const [model, host] of Object.entries(hosts)) s.calls[model] = host.calls[baseName(s.function)] || 0;
  }
  const totals = {};
  for (const model of Object.keys(hosts)) {
    let cycles = 0;
    let insns = 0;
    for (const l of loops) { cycles += l.cyclesPerIteration * l.iterations[model]; insns += l.instructions * l.iterations[model]; }
    for (const s of straight) { cycles += s.cyclesPerCall * s.calls[model]; insns += s.instructions * s.calls[model]; }
    totals[model] = { cyclesPerFace: Math.round(cycles), instructionsPerFace: Math.round(insns), msPerFace: +(cycles / (MHZ * 1e3)).toFixed(2) };
  }
  return { loops, straight, totals };
}

// ---------------------------------------------------------------------------------------------
// 5. Calibration against cycle counts Espressif measured on an ESP32-S3
// ---------------------------------------------------------------------------------------------

/**
 * Loops of the plain-C ("ANSI") versions of three ESP-DSP kernels, written here with the same loop
 * structure, and the CPU cycles Espressif measured for those versions on an ESP32-S3 built with -O2
 * (esp-dsp, docs/esp_bm_results.csv: dsps_dotprod_f32 N=256: 1330; dsps_dotprode_f32 N=256, step 1:
 * 2603; dsps_fir_f32 1024 samples x 256 taps: 1,350,673). The model's FP latency is the value that
 * predicts these best; the table records the prediction error of the chosen value for each.
 */
const CALIBRATION_C = `
typedef struct { float *coeffs, *delay; int N, pos; } cal_fir_t;
int cal_dotprod(const float *a, const float *b, float *dest, int len) {
  float acc = 0;
  for (int i = 0; i < len; i++)
    acc += a[i] * b[i];
  *dest = acc;
  return 0;
}
int cal_dotprode(const float *a, const float *b, float *dest, int len, int s1, int s2) {
  float acc = 0;
  for (int i = 0; i < len; i++)
    acc += a[i * s1] * b[i * s2];
  *dest = acc;
  return 0;
}
int cal_fir(cal_fir_t *fir, const float *input, float *output, int len) {
  for (int i = 0; i < len; i++) {
    float acc = 0;
    int coeff_pos = fir->N - 1;
    fir->delay[fir->pos] = input[i];
    fir->pos++;
    if (fir->pos >= fir->N)
      fir->pos = 0;
    for (int n = fir->pos; n < fir->N; n++)
      acc += fir->coeffs[coeff_pos--] * fir->delay[n];
    for (int n = 0; n < fir->pos; n++)
      acc += fir->coeffs[coeff_pos--] * fir->delay[n];
    output[i] = acc;
  }
  return 0;
}
#ifdef CAL_MAIN
static float a[1024], b[1024], c[256], d[256], out[1024];
int main(void) {
  cal_fir_t f = { c, d, 256, 0 };
  float r;
  for (int i = 0; i < 1024; i++) { a[i] = (float)i; b[i] = 1.0f / (float)(i + 1); }
  cal_dotprod(a, b, &r, 256);
  cal_dotprode(a, b, &r, 256, 1, 1);
  cal_fir(&f, a, out, 1024);
  return r > 0.0f ? 0 : 1;
}
#endif
`;
const CALIBRATION_MEASURED = { cal_dotprod: 1330, cal_dotprode: 2603, cal_fir: 1350673 };

function calibrate(cc) {
  const dir = path.join(BUILD, 'calib');
  fs.mkdirSync(dir, { recursive: true });
  const src = path.join(dir, 'calib.c');
  fs.writeFileSync(src, CALIBRATION_C);
  // host: trip counts
  const hostCc = process.env.CC || 'gcc';
  run(hostCc, ['-O0', '--coverage', '-DCAL_MAIN', src, '-o', path.join(dir, 'calib')], { cwd: dir });
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.gcda')) fs.unlinkSync(path.join(dir, f));
  run(path.join(dir, 'calib'), [], { cwd: dir });
  const gcno = fs.readdirSync(dir).find((f) => f.endsWith('.gcno'));
  const json = JSON.parse(run(process.env.GCOV || 'gcov', ['-b', '--json-format', '--stdout', gcno], { cwd: dir }));
  const host = { lines: { 'calib.c': {} }, calls: {} };
  for (const file of json.files) {
    for (const l of file.lines) host.lines['calib.c'][l.line_number] = { count: l.count, arcs: l.branches.map((b) => [b.count, b.fallthrough]) };
    for (const fn of file.functions) host.calls[fn.name] = fn.execution_count;
  }
  // Xtensa: ESP-DSP's build (-O2, contraction allowed: madd.s)
  const obj = path.join(dir, 'calib.o');
  run(cc, ['-mlongcalls', '-O2', '-ggdb', '-c', src, '-o', obj]);
  const listing = { functions: parseObjdump(run(cc.replace(/gcc$/, 'objdump'), ['-d', '-l', '--inlines', '-r', '--no-show-raw-insn', obj])) };
  resolveLiterals(listing.functions, run(cc.replace(/gcc$/, 'objdump'), ['-s', obj]));
  const saved = CYCLES.fpuLatency.value;
  const results = [];
  for (let lat = 1; lat <= 6; lat++) {
    CYCLES.fpuLatency.value = lat;
    const { loops, straight } = costListing(listing, { cal: host });
    const per = {};
    for (const fn of Object.keys(CALIBRATION_MEASURED)) {
      per[fn] = loops.filter((l) => l.function === fn).reduce((a, l) => a + l.cyclesPerIteration * l.iterations.cal, 0) +
        straight.filter((s) => s.function === fn).reduce((a, s) => a + s.cyclesPerCall * s.calls.cal, 0);
    }
    const err = Object.keys(per).reduce((a, fn) => a + Math.log(per[fn] / CALIBRATION_MEASURED[fn]) ** 2, 0);
    results.push({ lat, per, err });
  }
  CYCLES.fpuLatency.value = saved;
  results.sort((x, y) => x.err - y.err);
  const best = results[0];
  return {
    source: 'esp-dsp docs/esp_bm_results.csv (ESP32-S3, ANSI C, -O2): cycles measured by Espressif',
    fpuLatency: best.lat,
    kernels: Object.fromEntries(Object.keys(CALIBRATION_MEASURED).map((fn) => [fn, { measured: CALIBRATION_MEASURED[fn], model: Math.round(best.per[fn]) }])),
    tried: results.map((r) => ({ fpuLatency: r.lat, ...Object.fromEntries(Object.entries(r.per).map(([k, v]) => [k, Math.round(v)])) })).sort((x, y) => x.fpuLatency - y.fpuLatency),
  };
}

// ---------------------------------------------------------------------------------------------
// 6. Commands
// ---------------------------------------------------------------------------------------------

const round = (x, d = 0) => +x.toFixed(d);

/** One firmware build of the core: its listing, the host trip counts of its portable twin per
 * costed model, and the costs. */
function costPath(cc, def, models) {
  const listing = xtensaListing(cc, def.xtensa);
  const build = buildCounting(def.host);
  const hosts = {};
  for (const m of models) hosts[m.name] = hostCounts(build, m.file);
  const { loops, straight, totals } = costListing(listing, hosts);
  const names = models.map((m) => m.name);
  const first = names[0];
  const live = loops.filter((l) => names.some((n) => l.iterations[n] > 0));
  for (const l of live) l.cycles = Object.fromEntries(names.map((n) => [n, Math.round(l.cyclesPerIteration * l.iterations[n])]));
  live.sort((a, b) => b.cycles[first] - a.cycles[first]);
  const models_ = {};
  for (const m of models) {
    const f = {};
    for (const l of live) f[baseName(l.function)] = (f[baseName(l.function)] || 0) + l.cycles[m.name];
    for (const st of straight) f[baseName(st.function)] = (f[baseName(st.function)] || 0) + st.cyclesPerCall * st.calls[m.name];
    for (const k of Object.keys(f)) if (f[k] === 0) delete f[k]; else f[k] = Math.round(f[k]);
    models_[m.name] = { ...totals[m.name], byFunction: f };
  }
  return {
    name: def.name, firmware: def.firmware, xtensaDefines: def.xtensa, hostDefines: def.host,
    host: { faces: hosts[first].faces, source: hosts[first].source },
    models: models_,
    loops: live.map((l) => ({
      id: l.id, function: l.function, source: l.source, kind: l.kind, depth: l.depth, addr: l.addr,
      instructions: l.instructions, byClass: l.byClass, cyclesPerIteration: l.cyclesPerIteration,
      iterations: Object.fromEntries(names.map((n) => [n, round(l.iterations[n], 2)])), cycles: l.cycles, match: l.match, host: l.host,
      ...(l.cycles[first] >= 0.01 * totals[first].cyclesPerFace ? { ops: l.insns.map((x) => x.op).join(' ') } : {}),
    })),
    deadLoops: loops.length - live.length,
    straight: straight.filter((st) => names.some((n) => st.calls[n] > 0)).map((st) => ({
      function: st.function, instructions: st.instructions, byClass: st.byClass, cyclesPerCall: st.cyclesPerCall,
      calls: Object.fromEntries(names.map((n) => [n, round(st.calls[n], 2)])),
    })),
  };
}

/** The detector per QVGA frame: its listing, its trip counts over the benchmark's frames. */
async function costFrame(cc, def = FRAME_PATHS[0]) {
  const frames = await detectFrames();
  if (!frames.file) return { frame: null, why: `no frames (${frames.why})` };
  const listing = xtensaListing(cc, def.xtensa, DETECT_SOURCES.map((f) => path.join(APP, f)), [path.join(APP, 'include')], 'xtensa-detect');
  const build = buildDetectCounting(def.host);
  const host = detectCounts(build, frames);
  const { loops, straight, totals } = costListing(listing, { frame: host });
  const each = perFrameCycles(build, frames, loops, straight);
  const heaviest = each.reduce((a, b) => (b.cycles > a.cycles ? b : a));
  const live = loops.filter((l) => l.iterations.frame > 0);
  for (const l of live) l.cycles = { frame: Math.round(l.cyclesPerIteration * l.iterations.frame) };
  live.sort((a, b) => b.cycles.frame - a.cycles.frame);
  const f = {};
  for (const l of live) f[baseName(l.function)] = (f[baseName(l.function)] || 0) + l.cycles.frame;
  for (const st of straight) f[baseName(st.function)] = (f[baseName(st.function)] || 0) + st.cyclesPerCall * st.calls.frame;
  for (const k of Object.keys(f)) if (f[k] === 0) delete f[k]; else f[k] = Math.round(f[k]);
  const t = totals.frame;
  return {
    frame: {
      what: 'tfa_detect_frame (firmware/app/src/detect.c + util.c), one QVGA frame, default parameters',
      path: def.name, firmware: def.firmware, xtensaDefines: def.xtensa, hostDefines: def.host,
      frames: host.source,
      macsPerFrame: { mean: Math.round(host.macsMean), max: host.macsMax },
      instructionsPerFrame: t.instructionsPerFace, cyclesPerFrame: t.cyclesPerFace, msPerFrame: t.msPerFace,
      msPerFrameAtMaxMacs: +(t.msPerFace * host.macsMax / host.macsMean).toFixed(2),
      heaviestFrame: { frame: heaviest.frame, kind: heaviest.kind, cycles: heaviest.cycles, ms: +(heaviest.cycles / (MHZ * 1e3)).toFixed(2),
        what: 'the largest modelled cost of one frame run alone (same loops and matches, that frame\'s own trip counts)' },
      byFunction: f,
      loops: live.map((l) => ({
        id: l.id, function: l.function, source: l.source, kind: l.kind, depth: l.depth, addr: l.addr,
        instructions: l.instructions, byClass: l.byClass, cyclesPerIteration: l.cyclesPerIteration,
        iterations: { frame: round(l.iterations.frame, 2) }, cycles: l.cycles, match: l.match, host: l.host,
        ...(l.cycles.frame >= 0.01 * t.cyclesPerFace ? { ops: l.insns.map((x) => x.op).join(' ') } : {}),
      })),
      straight: straight.filter((st) => st.calls.frame > 0).map((st) => ({
        function: st.function, instructions: st.instructions, byClass: st.byClass, cyclesPerCall: st.cyclesPerCall, calls: { frame: round(st.calls.frame, 2) },
      })),
    },
  };
}

async function generate(cc) {
  if (!cc || !fs.existsSync(cc)) throw new Error(`xtensa-cost: --cc must name xtensa-esp32s3-elf-gcc (got ${cc || 'nothing'})`);
  const calibration = calibrate(cc);
  CYCLES.fpuLatency.value = calibration.fpuLatency;
  const models = costedModels();
  if (models.length === TEST_BLOBS.length) throw new Error('xtensa-cost: no models/*.tfer');
  const table = {
    about: 'ESP32-S3 cost of the inference core from the Xtensa instruction set: written by `node scripts/xtensa-cost.js generate --cc <xtensa-esp32s3-elf-gcc>`, read by `npm run bench`; see firmware/core/README.md',
    sources: sourcesHash(),
    compiler: run(cc, ['--version']).split('\n')[0],
    flags: XTENSA_FLAGS.join(' '),
    mhz: MHZ,
    cycleModel: CYCLES,
    calibration,
    hostBuild: 'gcc -O0 --coverage of the same sources (the portable twin of each path); gcov -b per-branch arc counts; per face = (N faces - 0 faces) / N',
    modelBlobs: Object.fromEntries(models.map((m) => [m.name, crypto.createHash('sha256').update(fs.readFileSync(m.file)).digest('hex')])),
    paths: PATHS.map((def) => costPath(cc, def, models)),
  };
  for (const def of FRAME_PATHS) {
    const fr = await costFrame(cc, def);
    table[def.key] = fr.frame;
    if (!fr.frame) table.frameNote = `face detector not costed: ${fr.why}`;
  }
  fs.writeFileSync(TABLE, JSON.stringify(table, null, 1) + '\n');
  return table;
}

function loadTable() {
  return JSON.parse(fs.readFileSync(TABLE, 'utf8'));
}

/** CI: the table was made from the current sources, and the host trip counts it holds are what
 * a host run measures now. Returns a list of problems (empty: consistent). */
function check({ trips = true } = {}) {
  const table = loadTable();
  const problems = [];
  const now = sourcesHash();
  if (now.sha256 !== table.sources.sha256) {
    problems.push(`firmware/core changed since ${path.relative(ROOT, TABLE)} was generated (sources sha256 ${now.sha256.slice(0, 12)} vs ${table.sources.sha256.slice(0, 12)}): ` +
      'regenerate it with `node scripts/xtensa-cost.js generate --cc <dir>/xtensa-esp32s3-elf-gcc`');
  }
  if (trips) {
    for (const p of table.paths) {
      const build = buildCounting(p.hostDefines);
      for (const m of costedModels()) {
        if (!p.models[m.name]) { problems.push(`${p.name}: model ${m.name} is not in the table`); continue; }
        const host = hostCounts(build, m.file);
        for (const l of p.loops) {
          const want = tableLoopIterations(host, l.host);
          if (Math.abs(want - l.iterations[m.name]) > 1e-6 * Math.max(1, want) + 0.01) {
            problems.push(`${p.name}, ${m.name}: loop ${l.id} (${l.source}) runs ${round(want, 2)} times per face on the host, the table says ${l.iterations[m.name]}`);
          }
        }
      }
    }
  }
  return problems;
}

/** The frame part of the check (async: the frames are built from the datasets; skipped, and
 * said, when they are not here). */
async function checkFrame() {
  const table = loadTable();
  if (!table.frame) return { problems: [], note: 'no detector in the table' };
  const frames = await detectFrames();
  if (!frames.file) return { problems: [], note: `detector trip counts not checked: ${frames.why}` };
  const problems = [];
  for (const def of FRAME_PATHS) {
    const fr = table[def.key];
    if (!fr) { problems.push(`detector: the ${def.name} build is not in the table`); continue; }
    const host = detectCounts(buildDetectCounting(def.host), frames);
    for (const l of fr.loops) {
      const want = tableLoopIterations(host, l.host);
      if (Math.abs(want - l.iterations.frame) > 1e-6 * Math.max(1, want) + 0.01) {
        problems.push(`detector ${def.name}: loop ${l.id} (${l.source}) runs ${round(want, 2)} times per frame on the host, the table says ${l.iterations.frame}`);
      }
    }
  }
  return { problems, note: `detector trip counts (both builds) checked on ${frames.n} frames` };
}

/** Text lines for `npm run bench` and `show`. */
function summarize(table = loadTable(), { top = 10 } = {}) {
  const out = [];
  const ms = (c) => c / (table.mhz * 1e3);
  const stale = sourcesHash().sha256 !== table.sources.sha256;
  out.push(`Cycles from the Xtensa listing of the compiled core (${table.compiler}; ${table.flags}) times the loop trip counts of a host run (${table.paths[0].host.source}), at ${table.mhz} MHz; cycle model and calibration: firmware/core/README.md ("ESP32-S3 cost").`);
  if (stale) out.push('**The table is stale**: firmware/core changed since it was generated (node scripts/xtensa-cost.js generate --cc ...).');
  out.push('');
  out.push('| firmware build | model | Xtensa instructions / face | cycles / face | ms / face at 240 MHz |');
  out.push('|---|---|---:|---:|---:|');
  for (const p of table.paths) {
    for (const [n, m] of Object.entries(p.models)) {
      out.push(`| ${p.name} (${p.firmware}) | ${n} | ${m.instructionsPerFace.toLocaleString('en')} | ${m.cyclesPerFace.toLocaleString('en')} | ${m.msPerFace.toFixed(1)} |`);
    }
  }
  if (table.frame) {
    for (const def of FRAME_PATHS) {
      const fr = table[def.key];
      if (!fr) continue;
      out.push(`| face detector (tfa_detect_frame), ${def.name} (${def.firmware}) | per QVGA frame, mean | ${fr.instructionsPerFrame.toLocaleString('en')} | ${fr.cyclesPerFrame.toLocaleString('en')} | ${fr.msPerFrame.toFixed(1)} (` +
        (fr.heaviestFrame ? `heaviest frame, modelled on its own: ${fr.heaviestFrame.ms.toFixed(1)}; ` : '') + `mean scaled to the frame with the most MACs: ~${fr.msPerFrameAtMaxMacs.toFixed(1)}) |`);
    }
  } else {
    out.push(`| face detector | per QVGA frame | - | - | ${table.frameNote} |`);
  }
  if (table.frame) {
    out.push('');
    out.push(`Detector frames: ${table.frame.frames}; MACs per frame ${table.frame.macsPerFrame.mean.toLocaleString('en')} mean, ${table.frame.macsPerFrame.max.toLocaleString('en')} max.`);
    for (const def of FRAME_PATHS) {
      const fr = table[def.key];
      if (!fr) continue;
      out.push('');
      out.push(`Detector ${def.name}, per function: ` +
        Object.entries(fr.byFunction).sort((a, b) => b[1] - a[1]).map(([f, c]) => `${f} ${ms(c).toFixed(2)} ms`).join(', '));
    }
  }
  for (const p of table.paths) {
    for (const name of Object.keys(p.models)) {
      out.push('');
      out.push(`${p.name}, ${name}, per function: ` + Object.entries(p.models[name].byFunction).sort((a, b) => b[1] - a[1])
        .map(([f, c]) => `${f} ${ms(c).toFixed(2)} ms`).join(', '));
      out.push('');
      out.push(`| ${p.name}: hottest loops (${name}) | source | instructions / iteration | cycles / iteration | iterations / face | ms / face |`);
      out.push('|---|---|---:|---:|---:|---:|');
      const hot = p.loops.filter((l) => l.cycles[name] > 0).sort((a, b) => b.cycles[name] - a.cycles[name]);
      for (const l of hot.slice(0, top)) {
        out.push(`| ${l.function} ${l.id} | \`${l.source.replace(/\|/g, '\\|')}\` | ${l.instructions} | ${l.cyclesPerIteration} | ${l.iterations[name].toLocaleString('en')} | ${ms(l.cycles[name]).toFixed(2)} |`);
      }
    }
  }
  return out;
}

module.exports = { LOOP_LINE, generate, check, checkFrame, summarize, loadTable, sourcesHash, TABLE, buildCounting, hostCounts, costedModels, loopIterations, parseObjdump, machineLoops, costListing, simulate };

if (require.main === module) {
  const [cmd, ...rest] = process.argv.slice(2);
  const opt = (name) => { const i = rest.indexOf(name); return i >= 0 ? rest[i + 1] : undefined; };
  (async () => {
    if (cmd === 'generate') {
      const t = await generate(opt('--cc'));
      process.stdout.write(summarize(t).join('\n') + '\n');
    } else if (cmd === 'check') {
      const problems = check({ trips: !rest.includes('--no-trips') });
      if (!rest.includes('--no-trips')) {
        const fr = await checkFrame();
        problems.push(...fr.problems);
        process.stdout.write(`xtensa-cost: ${fr.note}\n`);
      }
      if (problems.length) {
        process.stderr.write(problems.map((p) => `xtensa-cost: ${p}`).join('\n') + '\n');
        process.exit(1);
      }
      process.stdout.write('xtensa-cost: the table matches the core sources and the host trip counts\n');
    } else if (cmd === 'show') {
      process.stdout.write(rest.includes('--json') ? JSON.stringify(loadTable(), null, 1) + '\n' : summarize(loadTable(), { top: 40 }).join('\n') + '\n');
    } else {
      process.stderr.write('usage: node scripts/xtensa-cost.js generate --cc <dir>/xtensa-esp32s3-elf-gcc | check [--no-trips] | show [--json]\n');
      process.exit(2);
    }
  })().catch((e) => {
    process.stderr.write(`xtensa-cost: ${e.message}\n`);
    process.exit(1);
  });
}
