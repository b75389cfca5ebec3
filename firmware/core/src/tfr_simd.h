/*
 * Optional 128-bit SIMD path (TFR_USE_SIMD), written with the GCC/clang generic vector
 * extensions so that the same kernels build for wasm32 (-msimd128: v128 ops, i8x16.popcnt)
 * and for the host (SSE2), where ctest runs them against the same tests as the reference path.
 *
 * Bit-exactness: every float vector op works lane by lane (one output element per lane, the
 * vectors run across output channels), with the same operations in the same order as the
 * scalar code; no FMA (-ffp-contract=off), no horizontal float sums, no min/max instructions
 * (compare + select, so NaN and -0 behave like the scalar `if (b > m) m = b`).
 */
#ifndef TINYFER_SIMD_H
#define TINYFER_SIMD_H
#if defined(TFR_USE_SIMD)
#if !(defined(__GNUC__) || defined(__clang__))
#error "TFR_USE_SIMD needs GCC or clang vector extensions"
#endif
#include <stdint.h>
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

typedef uint32_t tfr_v4u __attribute__((vector_size(16)));
typedef int32_t tfr_v4i __attribute__((vector_size(16)));
typedef float tfr_v4f __attribute__((vector_size(16)));

#define TFR_INLINE static inline __attribute__((always_inline))

TFR_INLINE tfr_v4u tfr_v4u_splat(uint32_t x) { return (tfr_v4u){x, x, x, x}; }
TFR_INLINE tfr_v4i tfr_v4i_splat(int32_t x) { return (tfr_v4i){x, x, x, x}; }
TFR_INLINE tfr_v4f tfr_v4f_splat(float x) { return (tfr_v4f){x, x, x, x}; }
/* unaligned loads and stores */
TFR_INLINE tfr_v4f tfr_v4f_load(const float *p) {
  tfr_v4f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
TFR_INLINE void tfr_v4f_store(float *p, tfr_v4f v) { __builtin_memcpy(p, &v, sizeof v); }
/* four floats, p[0], p[stride], p[2*stride], p[3*stride] */
TFR_INLINE tfr_v4f tfr_v4f_gather(const float *p, int stride) {
  return (tfr_v4f){p[0], p[stride], p[2 * stride], p[3 * stride]};
}
TFR_INLINE tfr_v4u tfr_v4u_gather(const uint32_t *p, int stride) {
  return (tfr_v4u){p[0], p[stride], p[2 * stride], p[3 * stride]};
}
/* mask ? a : b, bitwise (mask lanes are all ones or all zeros) */
TFR_INLINE tfr_v4f tfr_v4f_select(tfr_v4i mask, tfr_v4f a, tfr_v4f b) {
  return (tfr_v4f)((mask & (tfr_v4i)a) | (~mask & (tfr_v4i)b));
}

/* Bit count of every byte of v (each byte 0..8), as i8x16.popcnt. */
TFR_INLINE tfr_v4u tfr_v4u_popcnt_bytes(tfr_v4u v) {
#if defined(__wasm_simd128__)
  return (tfr_v4u)wasm_i8x16_popcnt((v128_t)v);
#else
  v = v - ((v >> 1) & tfr_v4u_splat(0x55555555u));
  v = (v & tfr_v4u_splat(0x33333333u)) + ((v >> 2) & tfr_v4u_splat(0x33333333u));
  return (v + (v >> 4)) & tfr_v4u_splat(0x0F0F0F0Fu);
#endif
}
/* Sum of the four byte counters of each 32-bit lane (bytes <= 255, no carries between them). */
TFR_INLINE tfr_v4u tfr_v4u_sum_bytes(tfr_v4u v) {
  v = (v & tfr_v4u_splat(0x00FF00FFu)) + ((v >> 8) & tfr_v4u_splat(0x00FF00FFu));
  return (v & tfr_v4u_splat(0xFFFFu)) + (v >> 16);
}
#ifdef __cplusplus
extern "C" {
#endif
/* tfr_math.c: tfr_expf and tfr_sigmoidf on four lanes, bit-identical to the scalar ones. */
tfr_v4f tfr_expf4(tfr_v4f x);
tfr_v4f tfr_sigmoidf4(tfr_v4f x);
#ifdef __cplusplus
}
#endif
#endif /* TFR_USE_SIMD */
#endif
