#!/usr/bin/env bash
# Fuzzes the C core's blob parser + one inference (libFuzzer + ASan + UBSan) for a bounded
# time, from a seed corpus generated at build time (fuzz/seedgen.c; nothing committed).
#   bash scripts/fuzz-core.sh [seconds]      (default 60; needs clang)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
BUILD="$ROOT/build/core-fuzz"
CC_BIN="$(command -v clang || command -v clang-14 || true)"
CXX_BIN="$(command -v clang++ || command -v clang++-14 || true)"
[ -n "$CC_BIN" ] && [ -n "$CXX_BIN" ] || { echo "fuzz-core: clang not found (apt-get install clang)" >&2; exit 1; }
cmake -S "$ROOT/firmware/core" -B "$BUILD" -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" \
  -DTFR_FUZZ=ON -DTFR_FUZZ_SECONDS="$SECONDS_TO_RUN" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" --target tfr_fuzz_model tfr_fuzz_corpus >/dev/null
ctest --test-dir "$BUILD" -L fuzz --output-on-failure
