'use strict';
/**
 * The 5-minute soak (issue 21), run ONCE by scripts/test.sh (not on both runtimes: the file is
 * outside mocha's default spec). It runs the real command, `node scripts/soak.js --check`, with
 * the demo fleet sending frames (4 cameras every 250 ms) to Node-RED in a process of its own, a
 * sample every 10 s, and fails on memory that does not level off: the least-squares slope of RSS
 * (less V8's new space) and of heap-after-GC over minutes 2-5 against the bounds stated in
 * scripts/soak/analyse.js.
 * What is asserted is how memory moves per minute of messages, never how fast anything ran.
 * Run alone: npm run build && npx mocha --no-config --timeout 600000 --exit test/soak.ci.js
 */
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DEFAULT_BOUNDS } = require('../scripts/soak/analyse');

const MINUTES = Number(process.env.TINYFER_SOAK_MINUTES || 5);

describe(`soak: the demo fleet with frames on for ${MINUTES} minutes (Node-RED in its own process)`, function () {
  this.timeout((MINUTES * 60 + 180) * 1000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyfer-soak-ci-'));
  after(function () { fs.rmSync(out, { recursive: true, force: true }); });

  it('memory levels off: fitted RSS and heap-after-GC slopes over the last 3 minutes stay within the bounds', async function () {
    const args = [path.join(__dirname, '..', 'scripts', 'soak.js'), '--minutes', String(MINUTES), '--sample-seconds', '10', '--warmup', String(MINUTES - 3), '--window', '3', '--out', out, '--check'];
    const log = [];
    const code = await new Promise((resolve, reject) => {
      const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (d) => { log.push(String(d)); };
      p.stdout.on('data', keep);
      p.stderr.on('data', keep);
      p.once('error', reject);
      p.once('exit', resolve);
    });
    const text = log.join('');
    console.log(text.split('\n').filter((l) => /^soak: /.test(l)).map((l) => `      ${l}`).join('\n'));
    const summaryFile = path.join(out, 'summary.json');
    assert.ok(fs.existsSync(summaryFile), `no summary.json (exit ${code}):\n${text}`);
    const s = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
    assert.ok(fs.statSync(path.join(out, 'plot.png')).size > 1000, 'the plot was written');
    assert.ok(s.framesClassified > 0 && s.frameless === 0, `frames classified in every sample after warm-up (${s.frameless} without)`);
    assert.equal(s.errors, 0, 'no flow errors');
    for (const [k, bound] of [['rss', DEFAULT_BOUNDS.rssMiBPerMin], ['heapAfterGc', DEFAULT_BOUNDS.heapAfterGcMiBPerMin]]) {
      const v = s.check.series[k];
      assert.ok(v.points >= 15, `${k}: ${v.points} samples fitted`);
      assert.ok(v.slopeMiBPerMin <= bound, `${k} grows ${v.slopeMiBPerMin.toFixed(3)} MiB/min over minutes ${s.check.from}-${s.check.to.toFixed(1)} (bound ${bound})`);
    }
    assert.equal(code, 0, `scripts/soak.js --check exited ${code}:\n${text}`);
  });
});
