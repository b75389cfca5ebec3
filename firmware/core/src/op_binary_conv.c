#include "tfr_ops.h"
#include "tfr_simd.h"

#if defined(__GNUC__) || defined(__clang__)
#define TFR_KERNEL static inline __attribute__((always_inline))
#else
#define TFR_KERNEL static inline
#endif

/* Popcount of the three words of one kernel row, a[k] ^ b[k] for k = 0..2 (one word per tap).
 * Portable path: the 2-bit and 4-bit SWAR steps per word, then one byte fold for all three
 * (a nibble holds at most 12, a byte at most 24, the total at most 96). */
TFR_KERNEL uint32_t popcount_row3(const uint32_t *a, const uint32_t *b) {
#if defined(TFR_USE_BUILTIN_POPCOUNT)
  return tfr_popcount32(a[0] ^ b[0]) + tfr_popcount32(a[1] ^ b[1]) + tfr_popcount32(a[2] ^ b[2]);
#else
  uint32_t s = 0, v;
  int k;
  for (k = 0; k < 3; k++) {
    v = a[k] ^ b[k];
    v = v - ((v >> 1) & 0x55555555u);
    s += (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  }
  s = (s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu);
  return (s * 0x01010101u) >> 24;
#endif
}

#if !defined(TFR_USE_BUILTIN_POPCOUNT)
/* Nibble counts of v (each nibble 0..4): the first two SWAR steps. */
TFR_KERNEL uint32_t nibble_counts(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  return (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
}
/* Portable popcount of nine words of a ^ b (at most 288): a carry-save adder tree reduces
 * them to bit planes of weight 1, 2, 4 and 8, which need four SWAR counts instead of nine. */
TFR_KERNEL uint32_t popcount9(const uint32_t *a, const uint32_t *b) {
  const uint32_t x0 = a[0] ^ b[0], x1 = a[1] ^ b[1], x2 = a[2] ^ b[2], x3 = a[3] ^ b[3], x4 = a[4] ^ b[4],
                 x5 = a[5] ^ b[5], x6 = a[6] ^ b[6], x7 = a[7] ^ b[7], x8 = a[8] ^ b[8];
  uint32_t u, s1, c1, s2, c2, s3, c3, ones, c4, t1, f1, twos, f2, fours, eights, lo, hi;
  u = x0 ^ x1; c1 = (x0 & x1) | (u & x2); s1 = u ^ x2;
  u = x3 ^ x4; c2 = (x3 & x4) | (u & x5); s2 = u ^ x5;
  u = x6 ^ x7; c3 = (x6 & x7) | (u & x8); s3 = u ^ x8;
  u = s1 ^ s2; c4 = (s1 & s2) | (u & s3); ones = u ^ s3;
  u = c1 ^ c2; f1 = (c1 & c2) | (u & c3); t1 = u ^ c3;
  twos = t1 ^ c4; f2 = t1 & c4;
  fours = f1 ^ f2; eights = f1 & f2;
  /* per nibble: 2 * twos + ones and 2 * eights + fours, at most 12 each */
  lo = (nibble_counts(twos) << 1) + nibble_counts(ones);
  hi = (nibble_counts(eights) << 1) + nibble_counts(fours);
  lo = (lo & 0x0F0F0F0Fu) + ((lo >> 4) & 0x0F0F0F0Fu); /* per byte, at most 24 */
  hi = (hi & 0x0F0F0F0Fu) + ((hi >> 4) & 0x0F0F0F0Fu);
  lo = (hi << 2) + lo;                 /* per byte, at most 120 */
  lo = (lo & 0x00FF00FFu) + ((lo >> 8) & 0x00FF00FFu);
  return (lo * 0x00010001u) >> 16;
}
#endif

#if defined(TFR_USE_64BIT_WORDS)
/* Optional fast path for 64-bit hosts: popcount of n words of a ^ b, two words per step
 * (unaligned-safe loads through __builtin_memcpy, which becomes a plain 64-bit load). */
TFR_KERNEL uint32_t popcount_words64(const uint32_t *a, const uint32_t *b, int n) {
  uint32_t pc = 0;
  int k = 0;
  for (; k + 2 <= n; k += 2) {
    uint64_t x, y;
    __builtin_memcpy(&x, a + k, 8);
    __builtin_memcpy(&y, b + k, 8);
    pc += (uint32_t)__builtin_popcountll(x ^ y);
  }
  if (k < n) pc += tfr_popcount32(a[k] ^ b[k]);
  return pc;
}
#endif

/* Window words gathered on the stack up to this many (cin <= 256); wider layers read the
 * three rows in place. */
#define TFR_PATCH_WORDS 72

/* The float epilogue of one output element, shared by every path (same operations, same order):
 * main = scale * conv + bias; + the shortcut already in out (accumulate); PReLU (slope). */
TFR_KERNEL float epilogue(int conv, float scale, float bias, int accumulate, float prev, const float *slope, int o) {
  float m = scale * (float)conv + bias;
  if (accumulate) m = m + prev;
  if (slope && !(m >= 0.0f)) m = slope[o] * m;
  return m;
}

/* Outputs o_lo..cout-1 of every pixel, one output at a time. `words` is a compile-time
 * constant at the specialised call sites (1 and 2 words per pixel), so the window loops unroll. */
TFR_KERNEL void conv_scalar(const uint32_t *packed, int h, int w, const int words, int cin, int cout,
                            int stride, const uint32_t *weight_bits, const float *scale,
                            const float *bias, int accumulate, const float *slope, int o_lo,
                            float *out) {
  const int wp = w + 2;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  const int row_words = 3 * words; /* the three kx taps of one ky are contiguous */
  const int n9 = 9 * words;
  const int n = 9 * cin;
  uint32_t patch[TFR_PATCH_WORDS];
  int oy, ox, o, ky, k;
  for (oy = 0; oy < ho; oy++) {
    for (ox = 0; ox < wo; ox++) {
      const uint32_t *base = packed + ((oy * stride) * wp + ox * stride) * words;
      float *dst = out + (oy * wo + ox) * cout;
      const int gathered = n9 <= TFR_PATCH_WORDS;
      if (gathered) {
        /* the 3x3 window in the weights' [ky][kx][word] order: one contiguous loop per output */
        for (ky = 0; ky < 3; ky++)
          for (k = 0; k < row_words; k++) patch[ky * row_words + k] = base[ky * wp * words + k];
      }
      for (o = o_lo; o < cout; o++) {
        const uint32_t *wt = weight_bits + o * n9;
        uint32_t pc = 0;
        if (gathered) {
#if defined(TFR_USE_64BIT_WORDS)
          pc = popcount_words64(patch, wt, n9);
#elif !defined(TFR_USE_BUILTIN_POPCOUNT)
          for (k = 0; k < n9; k += 9) pc += popcount9(patch + k, wt + k); /* n9 = 9 * words */
#else
          for (k = 0; k < n9; k += 3) pc += popcount_row3(patch + k, wt + k);
#endif
        } else {
          for (ky = 0; ky < 3; ky++) {
            const uint32_t *a = base + ky * wp * words;
            const uint32_t *b = wt + ky * row_words;
            for (k = 0; k < row_words; k += 3) pc += popcount_row3(a + k, b + k);
          }
        }
        dst[o] = epilogue(n - 2 * (int)pc, scale[o], bias[o], accumulate, dst[o], slope, o);
      }
    }
  }
}

#if defined(TFR_USE_SIMD)
/* Four output channels per vector lane group; the group's weight words stay in registers
 * (wv) while the loop runs over every pixel. Bit counts gather per byte (i8x16.popcnt) and
 * are folded into the 32-bit lanes before a byte could pass 255 (31 words of 8 bits). */
TFR_KERNEL void conv_simd(const uint32_t *packed, int h, int w, const int words, int cin, int cout, int stride,
                          const uint32_t *weight_bits, const float *scale, const float *bias,
                          int accumulate, const float *slope, float *out) {
  const int wp = w + 2;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  const int row_words = 3 * words;
  const int n9 = 9 * words;
  const tfr_v4i n = tfr_v4i_splat(9 * cin);
  const tfr_v4f zero = tfr_v4f_splat(0.0f);
  tfr_v4u wv[TFR_PATCH_WORDS];
  int o0, oy, ox, ky, k;
  for (o0 = 0; o0 + 4 <= cout; o0 += 4) {
    const tfr_v4f sc = tfr_v4f_load(scale + o0), bi = tfr_v4f_load(bias + o0);
    const tfr_v4f sl = slope ? tfr_v4f_load(slope + o0) : zero;
    for (k = 0; k < n9; k++) wv[k] = tfr_v4u_gather(weight_bits + o0 * n9 + k, n9);
    for (oy = 0; oy < ho; oy++) {
      const uint32_t *row = packed + (oy * stride) * wp * words;
      float *dst = out + (oy * wo) * cout + o0;
      for (ox = 0; ox < wo; ox++, dst += cout) {
        const uint32_t *base = row + ox * stride * words;
        tfr_v4u bytes = tfr_v4u_splat(0), pc = tfr_v4u_splat(0);
        tfr_v4f m;
        int in_bytes = 0;
        for (ky = 0; ky < 3; ky++) {
          const uint32_t *a = base + ky * wp * words;
          for (k = 0; k < row_words; k++) {
            bytes += tfr_v4u_popcnt_bytes(tfr_v4u_splat(a[k]) ^ wv[ky * row_words + k]);
            if (++in_bytes == 31) {
              pc += tfr_v4u_sum_bytes(bytes);
              bytes = tfr_v4u_splat(0);
              in_bytes = 0;
            }
          }
        }
        pc += tfr_v4u_sum_bytes(bytes);
        m = sc * __builtin_convertvector(n - 2 * (tfr_v4i)pc, tfr_v4f) + bi;
        if (accumulate) m = m + tfr_v4f_load(dst);
        if (slope) m = tfr_v4f_select(m >= zero, m, sl * m);
        tfr_v4f_store(dst, m);
      }
    }
  }
}
#endif

void tfr_op_binary_conv(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                        const uint32_t *weight_bits, const float *scale, const float *bias,
                        int accumulate, const float *prelu, float *out) {
  const int words = TFR_WORDS(cin);
  int o_lo = 0;
#if defined(TFR_USE_SIMD)
  if (9 * words <= TFR_PATCH_WORDS && cout >= 4) {
    if (words == 1)
      conv_simd(packed, h, w, 1, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, out);
    else if (words == 2)
      conv_simd(packed, h, w, 2, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, out);
    else
      conv_simd(packed, h, w, words, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, out);
    o_lo = cout & ~3;
    if (o_lo == cout) return;
  }
#endif
  if (words == 1)
    conv_scalar(packed, h, w, 1, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, o_lo, out);
  else if (words == 2)
    conv_scalar(packed, h, w, 2, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, o_lo, out);
  else
    conv_scalar(packed, h, w, words, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, o_lo, out);
}
