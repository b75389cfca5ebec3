'use strict';
// Mocha's spec reporter, plus one closing line in the plain form CI reads:
//   "N passed, N failed, N skipped"
// scripts/test.sh runs mocha once per runtime (Node 20 + Node-RED 4, Node 22 + Node-RED 5) and
// prints that line once, for all runs together: with TINYFER_SUMMARY_FILE set, each run appends
// its counts there as a JSON line and closes with a line naming its runtime instead.
const fs = require('node:fs');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats || {};
      const counts = { passed: s.passes || 0, failed: s.failures || 0, skipped: s.pending || 0 };
      const file = process.env.TINYFER_SUMMARY_FILE;
      if (!file) {
        process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
        return;
      }
      const runtime = `Node ${process.version}, Node-RED ${require('node-red/package.json').version}`;
      fs.appendFileSync(file, JSON.stringify({ runtime, ...counts }) + '\n');
      process.stdout.write(`\n[${runtime}] ${counts.passed} passing, ${counts.failed} failing, ${counts.skipped} pending\n`);
    });
  }
}

module.exports = SummaryReporter;
