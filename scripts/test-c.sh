#!/usr/bin/env bash
# Host builds and unit tests of the C code (then bounded fuzzing): the inference core (firmware/core, against the
# TS<->C test vectors written by dist/engine/vectors.js: 1000 real faces) and the device app
# with its Linux platform (firmware/host), each with ctest. Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"
echo "== test vectors (TS reference on real faces): the default model (int8 stem), the float-stem test blob (r8), a random int8-stem model, a random grid-head model"
node dist/engine/vectors.js
node dist/engine/vectors.js --model test/fixtures/models/tinyfer-b1f.tfer --out .cache/vectors-f --count 300
node dist/engine/vectors.js --random --stem-int8 --out .cache/vectors-int8
node dist/engine/vectors.js --random --stem-int8 --head-grid 3 --out .cache/vectors-grid --count 300
for proj in core host; do
  src="firmware/$proj"
  flags=()
  [ "$proj" = core ] && flags+=(-DTFR_REQUIRE_VECTORS=ON)
  echo "== ctest: $src"
  cmake -S "$src" -B "build/$proj" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  cmake --build "build/$proj" -j "$JOBS" >/dev/null
  ctest --test-dir "build/$proj" --output-on-failure -j "$JOBS"
done
# Fuzzing in CI, bounded: the blob parser + one inference (libFuzzer, ASan, UBSan) and the
# device app's command/config parsers. Longer runs: bash scripts/fuzz-core.sh 600.
echo "== fuzz: firmware/core (${FUZZ_SECONDS:-30} s)"
bash scripts/fuzz-core.sh "${FUZZ_SECONDS:-30}"
echo "== fuzz: firmware/app (${FUZZ_SECONDS:-30} s)"
cmake -S firmware/host -B build/host-fuzz -DCMAKE_C_COMPILER="$(command -v clang || command -v clang-14)" \
  -DCMAKE_CXX_COMPILER="$(command -v clang++ || command -v clang++-14)" -DTFA_FUZZ=ON \
  -DTFA_FUZZ_SECONDS="${FUZZ_SECONDS:-30}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/host-fuzz -j "$JOBS" --target tfa_fuzz_app >/dev/null
ctest --test-dir build/host-fuzz -L fuzz --output-on-failure
