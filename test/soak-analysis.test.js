'use strict';
/**
 * The soak's growth check (scripts/soak/analyse.js) on synthetic series: the least-squares fit is
 * exact on a line, a process that levels off after its warm-up passes, a leak of the size the
 * bound is meant to catch fails (on top of GC-like saw-tooth noise), and bad input gets an error.
 * The 5-minute soak itself (test/soak.ci.js) runs once, from scripts/test.sh.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const A = require('../scripts/soak/analyse');

const MiB = A.MiB;
/** Samples every `every` s for `minutes`, memory from f(minute) (MiB) plus a repeatable saw-tooth / jitter. */
function series(minutes, every, rssAt, heapAt) {
  const out = [];
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
  for (let t = every; t <= minutes * 60 + 1e-9; t += every) {
    const m = t / 60;
    out.push({
      t, intervalS: every, rss: (rssAt(m) + 3 * rnd() + ((t / every) % 4) * 0.5) * MiB, heapUsed: (heapAt(m) + 5 + 4 * rnd()) * MiB, heapAfterGc: (heapAt(m) + 0.05 * rnd()) * MiB,
      heapTotal: 60 * MiB, newSpace: 16 * MiB, oldSpace: 40 * MiB, external: 5 * MiB, arrayBuffers: MiB, eldP50: 10, eldP99: 20 + rnd(), eldMax: 40,
      delivered: 600, framesClassified: 150, deviceEmotions: 80, errors: 0, cpuUserMs: 500, cpuSystemMs: 50,
    });
  }
  return out;
}
/** A warm-up that rises then levels off (exponential approach), as a healthy process does. */
const levels = (base, rise, tauMin) => (m) => base + rise * (1 - Math.exp(-m / tauMin));

describe('soak: growth check (least-squares slope over the last minutes)', function () {
  it('fits a line exactly, slope in the units given', function () {
    const f = A.fitLine([0, 1, 2, 3], [1, 3, 5, 7]);
    assert.equal(f.slope, 2);
    assert.equal(f.intercept, 1);
    assert.equal(f.r2, 1);
  });

  it('passes a 5-minute run whose memory levels off after warm-up, with GC-like noise', function () {
    const s = series(5, 10, levels(120, 12, 0.5), levels(39, 1, 0.5));
    const c = A.growthCheck(s, { warmupMin: 2, windowMin: 3 });
    assert.equal(c.ok, true, JSON.stringify(c));
    assert.equal(c.from, 2);
    assert.ok(Math.abs(c.series.heapAfterGc.slopeMiBPerMin) < 0.1, JSON.stringify(c.series.heapAfterGc));
    assert.ok(Math.abs(c.series.rss.slopeMiBPerMin) < A.DEFAULT_BOUNDS.rssMiBPerMin);
  });

  it('fails a heap that keeps growing by 1 KiB per classified frame (16 frames/s), though RSS looks flat', function () {
    const leak = (16 * 60 * 1024) / MiB; // MiB per minute
    const s = series(5, 10, levels(120, 12, 0.5), (m) => levels(39, 1, 0.5)(m) + leak * m);
    const c = A.growthCheck(s, { warmupMin: 2, windowMin: 3 });
    assert.equal(c.ok, false);
    assert.equal(c.series.heapAfterGc.ok, false);
    assert.ok(Math.abs(c.series.heapAfterGc.slopeMiBPerMin - leak) < 0.1, `fitted ${c.series.heapAfterGc.slopeMiBPerMin} vs ${leak}`);
  });

  it('fails native growth seen only in RSS (an undisposed 48x48 float tensor per frame)', function () {
    const leak = (16 * 60 * 48 * 48 * 4) / MiB;
    const s = series(5, 10, (m) => levels(120, 12, 0.5)(m) + leak * m, levels(39, 1, 0.5));
    const c = A.growthCheck(s, { warmupMin: 2, windowMin: 3 });
    assert.equal(c.series.rss.ok, false, JSON.stringify(c.series.rss));
    assert.equal(c.series.heapAfterGc.ok, true);
    assert.equal(c.ok, false);
  });

  it('passes a one-off RSS step of 6 MiB in the middle of the window (V8 taking more heap pages), not a leak', function () {
    const s = series(5, 10, (m) => levels(120, 12, 0.5)(m) + (m > 3.5 ? 6 : 0), levels(39, 1, 0.5));
    const c = A.growthCheck(s, { warmupMin: 2, windowMin: 3 });
    assert.ok(c.series.rss.slopeMiBPerMin > 2, `the step fits as growth (${c.series.rss.slopeMiBPerMin.toFixed(2)} MiB/min)`);
    assert.equal(c.ok, true, JSON.stringify(c.series.rss));
  });

  it('fits RSS less V8\'s new space: a 16 MiB young-generation doubling mid-window passes, the same step outside it fails', function () {
    const s = series(5, 10, (m) => levels(120, 12, 0.5)(m) + (m > 3.5 ? 16 : 0), levels(39, 1, 0.5));
    for (const x of s) x.newSpace = (x.t / 60 > 3.5 ? 32 : 16) * MiB;
    const c = A.growthCheck(s, { warmupMin: 2, windowMin: 3 });
    assert.equal(c.ok, true, JSON.stringify(c.series.rss));
    for (const x of s) x.newSpace = 16 * MiB;
    assert.equal(A.growthCheck(s, { warmupMin: 2, windowMin: 3 }).series.rss.ok, false);
  });

  it('ignores the warm-up: a steep first two minutes that level off pass', function () {
    const s = series(5, 10, levels(80, 60, 0.4), levels(20, 20, 0.4));
    assert.equal(A.growthCheck(s, { warmupMin: 2, windowMin: 3 }).ok, true);
    assert.equal(A.growthCheck(s, { warmupMin: 0, windowMin: 5 }).ok, false, 'the same series fitted from minute 0 grows');
  });

  it('rejects too few samples and bad points with clear errors', function () {
    assert.throws(() => A.growthCheck([], {}), /no samples/);
    assert.throws(() => A.growthCheck(series(1, 30, () => 1, () => 1), { warmupMin: 0.9, windowMin: 3 }), /only 1 samples after/);
    assert.throws(() => A.fitLine([1, 2], [1, 2]), /at least 3 points/);
    assert.throws(() => A.fitLine([1, 1, 1], [1, 2, 3]), /all xs are equal/);
    assert.throws(() => A.fitLine([1, 2, NaN], [1, 2, 3]), /not finite/);
  });

  it('writes a CSV it can read back, and plots it as a PNG', async function () {
    const s = series(3, 20, levels(120, 12, 0.5), levels(39, 1, 0.5));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-soak-'));
    try {
      const csv = path.join(dir, 'samples.csv');
      fs.writeFileSync(csv, A.csvHeader() + s.map(A.csvLine).join(''));
      const back = A.readCsv(csv);
      assert.equal(back.length, s.length);
      assert.ok(Math.abs(back[4].rss - s[4].rss) < 0.01 * MiB);
      const svg = A.plotSvg(back, { check: A.growthCheck(back, { warmupMin: 1, windowMin: 2 }) });
      assert.match(svg, /^<svg[^>]+width="900"/);
      const png = path.join(dir, 'plot.png');
      await A.writePng(svg, png);
      const meta = await require('sharp')(png).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, 900);
      fs.writeFileSync(csv, 'a,b\n1,2\n');
      assert.throws(() => A.readCsv(csv), /not a soak CSV/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
