#include "tfr_ops.h"

/* Popcount of the three words of one kernel row, a[k] ^ b[k] for k = 0..2 (one word per tap).
 * Portable path: the 2-bit and 4-bit SWAR steps per word, then one byte fold for all three
 * (a nibble holds at most 12, a byte at most 24, the total at most 96). */
static inline uint32_t popcount_row3(const uint32_t *a, const uint32_t *b) {
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

#if defined(TFR_USE_64BIT_WORDS)
/* Optional fast path for 64-bit hosts: popcount of n words of a ^ b, two words per step
 * (unaligned-safe loads through __builtin_memcpy, which becomes a plain 64-bit load). */
static inline uint32_t popcount_words64(const uint32_t *a, const uint32_t *b, int n) {
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

void tfr_op_binary_conv(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                        const uint32_t *weight_bits, const float *scale, const float *bias,
                        int accumulate, float *out) {
  const int words = TFR_WORDS(cin);
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
      for (o = 0; o < cout; o++) {
        const uint32_t *wt = weight_bits + o * n9;
        uint32_t pc = 0;
        int conv;
        float m;
        if (gathered) {
#if defined(TFR_USE_64BIT_WORDS)
          pc = popcount_words64(patch, wt, n9);
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
        conv = n - 2 * (int)pc;
        m = scale[o] * (float)conv + bias[o];
        dst[o] = accumulate ? m + dst[o] : m;
      }
    }
  }
}
