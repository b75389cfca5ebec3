#include "tfr_ops.h"

void tfr_op_binary_conv(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                        const uint32_t *weight_bits, const float *scale, const float *bias,
                        int accumulate, float *out) {
  const int words = TFR_WORDS(cin);
  const int wp = w + 2;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  const int row_words = 3 * words; /* the three kx taps of one ky are contiguous */
  const int n = 9 * cin;
  int oy, ox, o, ky, k;
  for (oy = 0; oy < ho; oy++) {
    for (ox = 0; ox < wo; ox++) {
      const uint32_t *base = packed + ((oy * stride) * wp + ox * stride) * words;
      float *dst = out + (oy * wo + ox) * cout;
      for (o = 0; o < cout; o++) {
        const uint32_t *wt = weight_bits + o * 9 * words;
        uint32_t pc = 0;
        int conv;
        float m;
        for (ky = 0; ky < 3; ky++) {
          const uint32_t *a = base + ky * wp * words;
          const uint32_t *b = wt + ky * row_words;
          for (k = 0; k < row_words; k++) pc += tfr_popcount32(a[k] ^ b[k]);
        }
        conv = n - 2 * (int)pc;
        m = scale[o] * (float)conv + bias[o];
        dst[o] = accumulate ? m + dst[o] : m;
      }
    }
  }
}
