'use strict';
// The ESP32-S3 cost table (firmware/core/tools/xtensa-cost.json, scripts/xtensa-cost.js): made by
// the Xtensa cross compiler, which CI does not have, so CI checks that the table belongs to the
// current core (a hash of its sources and the firmware component's flags) and that the loop trip
// counts it holds are what a host run of the core measures now (gcc --coverage + gcov).
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');

const xc = require('../scripts/xtensa-cost');

function have(cmd) {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('ESP32-S3 cost table (scripts/xtensa-cost.js)', function () {
  this.timeout(120000);
  let table;
  before(() => {
    // the table is data in the repository: missing means it was never generated (see firmware/core/README.md)
    table = xc.loadTable();
  });

  it('was generated from the current core sources and component flags', () => {
    assert.equal(table.sources.sha256, xc.sourcesHash().sha256,
      'firmware/core changed since the table was made: node scripts/xtensa-cost.js generate --cc <dir>/xtensa-esp32s3-elf-gcc');
  });

  it('adds up: every model total is the sum of its loops and straight-line code, ms at the table clock', () => {
    assert.deepEqual(table.paths.map((p) => p.name), ['reference', 'int8-pie']);
    for (const p of table.paths) {
      for (const [name, m] of Object.entries(p.models)) {
        let cycles = 0;
        for (const l of p.loops) cycles += l.cyclesPerIteration * l.iterations[name];
        for (const s of p.straight) cycles += s.cyclesPerCall * s.calls[name];
        assert.ok(Math.abs(cycles - m.cyclesPerFace) <= 1e-4 * m.cyclesPerFace, `${p.name} ${name}: ${cycles} vs ${m.cyclesPerFace}`);
        assert.ok(Math.abs(m.msPerFace - m.cyclesPerFace / (table.mhz * 1e3)) < 0.01);
        const byFn = Object.values(m.byFunction).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(byFn - m.cyclesPerFace) <= 1e-3 * m.cyclesPerFace + 50);
      }
      for (const l of p.loops) {
        const n = Object.values(l.byClass).reduce((a, b) => a + b, 0);
        assert.equal(n, l.instructions, `${l.id}: classes add up to the instruction count`);
        assert.ok(l.cyclesPerIteration >= l.instructions, `${l.id}: at least one cycle per instruction`);
      }
    }
  });

  it('counts each loop by a loop test: a loop matched on branch arcs sits on a for/while/do line (or one marked as an asm loop), never an if or a ternary', () => {
    const all = [...table.paths.flatMap((p) => p.loops.map((l) => [p.name, l])),
      ...['frame', 'framePie'].filter((k) => table[k]).flatMap((k) => table[k].loops.map((l) => [k, l]))];
    assert.ok(all.length > 0);
    for (const [where, l] of all) {
      if (l.host.of === null) continue; // a plain line count (no loop test in the loop's code)
      assert.match(l.source, xc.LOOP_LINE, `${where} ${l.function} ${l.id}: arcs of a line that is no loop`);
    }
  });

  it('costs the face detector on both builds (default, TINYFER_PIE), each total the sum of its loops and straight-line code', function () {
    if (!table.frame) this.skip();
    for (const [key, name, defines] of [['frame', 'reference', []], ['framePie', 'int8-pie', ['TFA_DET_INT8_DOT', 'TFA_DET_PIE']]]) {
      const f = table[key];
      assert.ok(f, `${key} is in the table`);
      assert.equal(f.path, name);
      assert.deepEqual(f.xtensaDefines, defines);
      let cycles = 0;
      for (const l of f.loops) cycles += l.cyclesPerIteration * l.iterations.frame;
      for (const st of f.straight) cycles += st.cyclesPerCall * st.calls.frame;
      assert.ok(Math.abs(cycles - f.cyclesPerFrame) <= 1e-4 * f.cyclesPerFrame, `${key}: ${cycles} vs ${f.cyclesPerFrame}`);
      assert.ok(Math.abs(f.msPerFrame - f.cyclesPerFrame / (table.mhz * 1e3)) < 0.01);
      // the heaviest frame, modelled on its own: one of the frames, at least the mean
      const h = f.heaviestFrame;
      assert.ok(h && Number.isInteger(h.frame) && h.frame >= 0 && typeof h.kind === 'string', `${key}: heaviestFrame`);
      assert.ok(h.cycles >= f.cyclesPerFrame, `${key}: heaviest ${h.cycles} < mean ${f.cyclesPerFrame}`);
      assert.ok(Math.abs(h.ms - h.cycles / (table.mhz * 1e3)) < 0.01);
    }
    // the PIE build's listing does hold the PIE dot product
    assert.ok(table.framePie.loops.some((l) => /ee\.vmulas\.s8\.accx/.test(l.ops || '')));
  });

  it('holds the loop trip counts a host run of the core measures now', function () {
    if (!have(process.env.CC || 'gcc') || !have(process.env.GCOV || 'gcov')) this.skip();
    assert.deepEqual(xc.check({ trips: true }), []);
  });

  it('holds the face detector\'s per-frame trip counts a host run measures now (needs the datasets)', async function () {
    if (!table.frame) this.skip();
    if (!have(process.env.CC || 'gcc') || !have(process.env.GCOV || 'gcov')) this.skip();
    const { problems, note } = await xc.checkFrame();
    if (/not checked/.test(note)) this.skip();
    assert.deepEqual(problems, []);
  });

  it('cycle model: ACCX read right after a PIE multiply-accumulate waits one cycle; back-to-back multiply-accumulates and a read two after do not', () => {
    const ins = (op, args, cls = 'simd') => ({ op, args, cls });
    const mac = ins('ee.vmulas.s8.accx.ld.ip', 'q0, a3, 16, q0, q2');
    const mac2 = ins('ee.vmulas.s8.accx', 'q1, q3');
    const st = ins('ee.st.accx.ip', 'a4, 8');
    const rur = ins('rur.accx_0', 'a8', 'alu');
    const add = ins('add.n', 'a5, a5, a6', 'alu');
    assert.equal(xc.simulate([mac, mac2, mac2]), 3, 'multiply-accumulates back to back');
    assert.equal(xc.simulate([mac2, st]), 3, 'a store of ACCX right after: one wait');
    assert.equal(xc.simulate([mac2, rur]), 3, 'rur right after: one wait');
    assert.equal(xc.simulate([mac2, add, rur]), 3, 'rur the second instruction after: none');
    assert.equal(xc.simulate([ins('ee.zero.accx', ''), mac2, add]), 3, 'nothing reads ACCX: none');
  });

  it('says so when the table does not match the sources', () => {
    const stale = { ...table, sources: { ...table.sources, sha256: '0'.repeat(64) } };
    assert.match(xc.summarize(stale).join('\n'), /The table is stale/);
    assert.doesNotMatch(xc.summarize(table).join('\n'), /stale/);
  });
});
