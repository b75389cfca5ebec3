#!/usr/bin/env bash
# Builds the C inference core (firmware/core) to WebAssembly with plain clang + wasm-ld
# (no Emscripten, no libc: wasm/libc_min.c supplies the few functions it needs).
# Output: src/engine/tinyfer_core.wasm (committed, shipped), copied to dist/engine/ when
# dist/ exists. Usage: bash scripts/build-wasm.sh   (CLANG=clang-14 to pick the compiler;
# TFR_WASM_OUT=/path/x.wasm writes there instead and copies nothing). The build is
# reproducible: the same clang gives the same bytes (test/engine.test.js checks the committed
# file against the sources with clang-14).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CORE="$ROOT/firmware/core"
OUT="${TFR_WASM_OUT:-$ROOT/src/engine/tinyfer_core.wasm}"
CLANG="${CLANG:-$(command -v clang-14 || command -v clang)}"
[ -n "$CLANG" ] || { echo "build-wasm: clang not found (apt-get install clang lld)" >&2; exit 1; }
command -v wasm-ld >/dev/null || command -v wasm-ld-14 >/dev/null || { echo "build-wasm: wasm-ld not found (apt-get install lld)" >&2; exit 1; }

SRCS=(model.c classify.c tfr_math.c op_stem_conv.c op_maxpool.c op_binarize.c op_binary_conv.c
  op_shortcut.c op_prelu.c op_cbam_channel.c op_cbam_spatial.c op_gap.c op_dense.c op_softmax.c)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# Fast paths: i32/i64.popcnt (TFR_USE_BUILTIN_POPCOUNT, TFR_USE_64BIT_WORDS), the 128-bit
# SIMD kernels (TFR_USE_SIMD + -msimd128: f32x4 across output channels or pixels; Node >= 16)
# and the binary convs by table look-up (TFR_USE_CONV_LUT: tables built once per model).
# -ffp-contract=off keeps the float order of the reference (bit-identical scores).
"$CLANG" --target=wasm32 -std=c99 -O3 -msimd128 -ffreestanding -nostdlib -fno-builtin \
  -ffp-contract=off -DTFR_USE_BUILTIN_POPCOUNT -DTFR_USE_64BIT_WORDS -DTFR_USE_SIMD -DTFR_USE_CONV_LUT -Wall -Wextra \
  -I"$CORE/include" -I"$CORE/src" -I"$CORE/wasm/include" \
  "${SRCS[@]/#/$CORE/src/}" "$CORE/wasm/wasm_api.c" "$CORE/wasm/libc_min.c" \
  -Wl,--no-entry -Wl,--export=__heap_base -Wl,--stack-first -Wl,-z,stack-size=65536 \
  -Wl,--strip-debug -o "$TMP/tinyfer_core.wasm"
mv "$TMP/tinyfer_core.wasm" "$OUT"
echo "build-wasm: $OUT ($(wc -c <"$OUT") bytes)"
if [ -z "${TFR_WASM_OUT:-}" ] && [ -d "$ROOT/dist/engine" ]; then
  cp "$OUT" "$ROOT/dist/engine/tinyfer_core.wasm"
  echo "build-wasm: copied to dist/engine/"
fi
