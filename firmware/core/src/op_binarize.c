#include "tfr_ops.h"

void tfr_op_binarize_pack(const float *in, int h, int w, int c, const float *thr, uint32_t *packed) {
  const int words = TFR_WORDS(c);
  const int wp = w + 2, hp = h + 2;
  int y, x, k, ch;
  for (y = 0; y < hp; y++) {
    for (x = 0; x < wp; x++) {
      uint32_t *p = packed + (y * wp + x) * words;
      if (y == 0 || x == 0 || y == hp - 1 || x == wp - 1) {
        /* +1 padding: every real channel bit set, bits past c clear. */
        for (k = 0; k < words; k++) {
          const int n = c - 32 * k;
          p[k] = n >= 32 ? 0xFFFFFFFFu : ((1u << n) - 1u);
        }
      } else {
        const float *v = in + ((y - 1) * w + (x - 1)) * c;
        for (k = 0; k < words; k++) p[k] = 0;
        for (ch = 0; ch < c; ch++) {
          if (v[ch] >= thr[ch]) p[ch >> 5] |= 1u << (ch & 31);
        }
      }
    }
  }
}
