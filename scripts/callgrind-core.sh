#!/usr/bin/env bash
# Instructions per inference of the C core on the host (valgrind callgrind, counting only inside
# tfr_classify / tfr_classify_lut), for the reference path (portable popcount), the fast path (builtin
# popcount), the wide path (TFR_USE_64BIT_WORDS, 64-bit hosts only) and the SIMD path with the
# binary convs by table look-up (TFR_USE_SIMD + TFR_USE_CONV_LUT, tfr_classify_lut: 128-bit
# generic vectors, SSE2 here; the wasm build runs the same code on simd128).
#   bash scripts/callgrind-core.sh [model.tfer [faces.u8]]
# Model: the argument, else .cache/vectors/model.tfer (+ its faces), else
# models/tinyfer-b1.tfer, else a random model of the tinyfer-b1 shape.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build/core-bench"
N="${N:-10}"
command -v valgrind >/dev/null || { echo "callgrind-core: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
cmake -S "$ROOT/firmware/core" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTFR_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" --target tfr_bench tfr_bench_ref tfr_bench_fast64 tfr_bench_simd >/dev/null

MODEL="${1:-}"
FACES="${2:-}"
if [ -z "$MODEL" ]; then
  if [ -f "$ROOT/.cache/vectors/model.tfer" ]; then
    MODEL="$ROOT/.cache/vectors/model.tfer"
    FACES="$ROOT/.cache/vectors/faces.u8"
  elif [ -f "$ROOT/models/tinyfer-b1.tfer" ]; then
    MODEL="$ROOT/models/tinyfer-b1.tfer"
  fi
fi
ARGS=()
[ -n "$MODEL" ] && ARGS+=("$MODEL")
[ -n "$FACES" ] && ARGS+=("$FACES")
ARGS+=("$N")

echo "model: ${MODEL:-random tinyfer-b1 shape (tools/tfr_bench.c)}, $N inferences"
for variant in tfr_bench_ref tfr_bench tfr_bench_fast64 tfr_bench_simd; do
  out="$(mktemp)"
  valgrind --tool=callgrind --toggle-collect=tfr_classify --toggle-collect=tfr_classify_lut --callgrind-out-file=/dev/null \
    "$BUILD/$variant" "${ARGS[@]}" >"$out.stdout" 2>"$out"
  total="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out" | tail -1)"
  [ -n "$total" ] || { cat "$out" >&2; exit 1; }
  case "$variant" in
    tfr_bench_ref) label="reference (portable popcount)" ;;
    tfr_bench) label="fast (builtin popcount)" ;;
    tfr_bench_fast64) label="wide (XOR of 2 words at a time)" ;;
    *) label="simd + tables (wasm's path)" ;;
  esac
  printf '%-32s %12d instructions per inference   (%s)\n' "$label" $((total / N)) "$(head -1 "$out.stdout" | cut -d, -f1-2)"
  rm -f "$out" "$out.stdout"
done
