#!/usr/bin/env bash
# Host builds and unit tests of the C code: the inference core (firmware/core) and the device
# app with its Linux platform (firmware/host), each with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"
for proj in core host; do
  src="firmware/$proj"
  [ -f "$src/CMakeLists.txt" ] || continue
  echo "== ctest: $src"
  cmake -S "$src" -B "build/$proj" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "build/$proj" -j "$JOBS" >/dev/null
  ctest --test-dir "build/$proj" --output-on-failure -j "$JOBS"
done
