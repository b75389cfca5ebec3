#include "tfr_ops.h"

void tfr_op_maxpool2x2(const float *in, int h, int w, int c, float *out) {
  const int ho = h / 2, wo = w / 2;
  int y, x, k;
  for (y = 0; y < ho; y++) {
    for (x = 0; x < wo; x++) {
      const float *a = in + ((2 * y) * w + 2 * x) * c;
      const float *b = a + c;
      const float *d = a + w * c;
      const float *e = d + c;
      float *o = out + (y * wo + x) * c;
      for (k = 0; k < c; k++) {
        float m = a[k];
        if (b[k] > m) m = b[k];
        if (d[k] > m) m = d[k];
        if (e[k] > m) m = e[k];
        o[k] = m;
      }
    }
  }
}
