#!/usr/bin/env bash
# The test command: set up whatever is missing, then run every test suite (C core and host
# firmware with ctest, then mocha). Ends with mocha's "N passed, N failed, N skipped" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
