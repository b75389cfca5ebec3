#!/usr/bin/env bash
# Host builds and unit tests of the C code: the inference core (firmware/core, against the
# TS<->C test vectors written by dist/engine/vectors.js: 1000 real faces) and the device app
# with its Linux platform (firmware/host), each with ctest. Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"
echo "== test vectors (TS reference on real faces)"
node dist/engine/vectors.js
for proj in core host; do
  src="firmware/$proj"
  flags=()
  [ "$proj" = core ] && flags+=(-DTFR_REQUIRE_VECTORS=ON)
  echo "== ctest: $src"
  cmake -S "$src" -B "build/$proj" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  cmake --build "build/$proj" -j "$JOBS" >/dev/null
  ctest --test-dir "build/$proj" --output-on-failure -j "$JOBS"
done
