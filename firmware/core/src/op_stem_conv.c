#include "tfr_ops.h"

void tfr_op_stem_conv_rows(const uint8_t *face, float input_scale, const float *weight,
                           const float *bias, int cout, int y0, int nrows, float *out) {
  const int n = 48;
  int r, x, o, ky, kx;
  for (r = 0; r < nrows; r++) {
    const int y = y0 + r;
    for (x = 0; x < n; x++) {
      float px[9];
      int valid[9];
      for (ky = 0; ky < 3; ky++) {
        for (kx = 0; kx < 3; kx++) {
          const int iy = y + ky - 1, ix = x + kx - 1;
          const int t = ky * 3 + kx;
          valid[t] = iy >= 0 && iy < n && ix >= 0 && ix < n;
          px[t] = valid[t] ? (float)face[iy * n + ix] * input_scale : 0.0f;
        }
      }
      if (y > 0 && y < n - 1 && x > 0 && x < n - 1) {
        /* interior: every tap is inside, same order of additions */
        for (o = 0; o < cout; o++) {
          const float *wo = weight + o * 9;
          float acc = 0.0f;
          acc = acc + wo[0] * px[0];
          acc = acc + wo[1] * px[1];
          acc = acc + wo[2] * px[2];
          acc = acc + wo[3] * px[3];
          acc = acc + wo[4] * px[4];
          acc = acc + wo[5] * px[5];
          acc = acc + wo[6] * px[6];
          acc = acc + wo[7] * px[7];
          acc = acc + wo[8] * px[8];
          out[(r * n + x) * cout + o] = acc + bias[o];
        }
        continue;
      }
      for (o = 0; o < cout; o++) {
        const float *wo = weight + o * 9;
        float acc = 0.0f;
        int t;
        for (t = 0; t < 9; t++) {
          if (valid[t]) acc = acc + wo[t] * px[t];
        }
        out[(r * n + x) * cout + o] = acc + bias[o];
      }
    }
  }
}
