#!/usr/bin/env bash
# The test command: set up whatever is missing, then run every test suite: the C core and host
# firmware (ctest), then mocha on each runtime the package is tested on:
#   Node 20 + Node-RED 4 (the system Node and the devDependency), and
#   Node 22 + Node-RED 5 (.cache/node22, installed by setup.sh; scripts/mocha-node22.sh).
# The second mocha run goes on when the first fails. Then the 5-minute soak (test/soak.ci.js), once.
# The output ends with ONE line for all three: "N passed, N failed, N skipped" (each run closes
# with its own "[runtime] N passing ..." line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
bash scripts/test-c.sh

summary="$(mktemp)"; trap 'rm -f "$summary"' EXIT
export TINYFER_SUMMARY_FILE="$summary"
rc=0
echo "== mocha: Node $(node -v), Node-RED 4 (devDependency)"
node node_modules/mocha/bin/mocha.js || rc=1
echo "== mocha: Node 22, Node-RED 5 (.cache/node22)"
bash scripts/mocha-node22.sh || rc=1
# The 5-minute soak (memory that does not level off fails it) runs once, on the first runtime:
# test/soak.ci.js is outside mocha's default spec; its counts join the line below.
echo "== soak: 5 minutes, Node $(node -v), Node-RED 4 (once)"
node node_modules/mocha/bin/mocha.js --no-config --reporter ./test/helpers/summary-reporter.js --timeout 600000 --exit test/soak.ci.js || rc=1
RUNS=3 node -e '
  const lines = require("node:fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
  const t = { passed: 0, failed: 0, skipped: 0 };
  for (const r of lines) for (const k in t) t[k] += r[k];
  if (lines.length < Number(process.env.RUNS)) console.log(`only ${lines.length} of ${process.env.RUNS} mocha runs reported counts (see above); the line below counts those`);
  console.log(`\n${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  process.exit(lines.length < Number(process.env.RUNS) || t.failed ? 1 : 0);
' "$summary" || rc=1
exit "$rc"
