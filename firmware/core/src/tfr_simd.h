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
typedef uint8_t tfr_v16b __attribute__((vector_size(16)));
typedef uint16_t tfr_v8h __attribute__((vector_size(16)));

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
TFR_INLINE tfr_v16b tfr_v16b_load(const uint8_t *p) {
  tfr_v16b v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
/* four floats, p[0], p[stride], p[2*stride], p[3*stride] */
TFR_INLINE tfr_v4f tfr_v4f_gather(const float *p, int stride) {
  return (tfr_v4f){p[0], p[stride], p[2 * stride], p[3 * stride]};
}
TFR_INLINE tfr_v4u tfr_v4u_gather(const uint32_t *p, int stride) {
  return (tfr_v4u){p[0], p[stride], p[2 * stride], p[3 * stride]};
}
/* lanes (a[i], a[j], b[k], b[l]) style shuffles of two vectors; indices 0..3 pick from a, 4..7 from b */
#if defined(__clang__)
#define TFR_SHUFFLE4(a, b, i, j, k, l) __builtin_shufflevector((a), (b), i, j, k, l)
#else
#define TFR_SHUFFLE4(a, b, i, j, k, l) __builtin_shuffle((a), (b), (tfr_v4i){i, j, k, l})
#endif
/* 4x4 transpose: r[i] lane j becomes r[j] lane i */
TFR_INLINE void tfr_v4f_transpose(tfr_v4f r[4]) {
  const tfr_v4f t0 = TFR_SHUFFLE4(r[0], r[1], 0, 4, 1, 5), t1 = TFR_SHUFFLE4(r[0], r[1], 2, 6, 3, 7);
  const tfr_v4f t2 = TFR_SHUFFLE4(r[2], r[3], 0, 4, 1, 5), t3 = TFR_SHUFFLE4(r[2], r[3], 2, 6, 3, 7);
  r[0] = TFR_SHUFFLE4(t0, t2, 0, 1, 4, 5);
  r[1] = TFR_SHUFFLE4(t0, t2, 2, 3, 6, 7);
  r[2] = TFR_SHUFFLE4(t1, t3, 0, 1, 4, 5);
  r[3] = TFR_SHUFFLE4(t1, t3, 2, 3, 6, 7);
}
/* mask ? a : b, bitwise (mask lanes are all ones or all zeros) */
TFR_INLINE tfr_v4f tfr_v4f_select(tfr_v4i mask, tfr_v4f a, tfr_v4f b) {
  return (tfr_v4f)((mask & (tfr_v4i)a) | (~mask & (tfr_v4i)b));
}

/* v > m ? v : m per lane, the scalar `if (v > m) m = v` (NaN and -0 included). On wasm one
 * f32x4.pmax (defined as m < v ? v : m); elsewhere compare + select. */
TFR_INLINE tfr_v4f tfr_v4f_max_gt(tfr_v4f m, tfr_v4f v) {
#if defined(__wasm_simd128__)
  return (tfr_v4f)wasm_f32x4_pmax((v128_t)m, (v128_t)v);
#else
  return tfr_v4f_select(v > m, v, m);
#endif
}
/* a + b per byte, for sums that stay below 256. On wasm through i8x16.add_sat_u (the same
 * result there): the compiler does not reassociate it, so a long chain of table rows stays a
 * chain instead of a tree of loads that spills registers. */
TFR_INLINE tfr_v16b tfr_v16b_add(tfr_v16b a, tfr_v16b b) {
#if defined(__wasm_simd128__)
  return (tfr_v16b)wasm_u8x16_add_sat((v128_t)a, (v128_t)b);
#else
  return a + b;
#endif
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
