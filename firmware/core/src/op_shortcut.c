#include "tfr_ops.h"

/* `out` may alias `in` (same base) when cout <= 2 * cin: each output pixel is written after
 * its 2x2 window has been pooled, and never reaches input that a later pixel still reads. */

void tfr_op_shortcut_proj(const float *in, int h, int w, int cin, int cout, const float *sw,
                          const float *sb, float *pooled, float *out) {
  const int ho = h / 2, wo = w / 2;
  int y, x, c, o;
  for (y = 0; y < ho; y++) {
    for (x = 0; x < wo; x++) {
      const float *a = in + ((2 * y) * w + 2 * x) * cin;
      const float *b = a + cin;
      const float *d = a + w * cin;
      const float *e = d + cin;
      float *dst = out + (y * wo + x) * cout;
      for (c = 0; c < cin; c++) pooled[c] = (((a[c] + b[c]) + d[c]) + e[c]) * 0.25f;
      for (o = 0; o < cout; o++) {
        const float *wo_ = sw + o * cin;
        float acc = 0.0f;
        for (c = 0; c < cin; c++) acc = acc + wo_[c] * pooled[c];
        dst[o] = acc + sb[o];
      }
    }
  }
}
