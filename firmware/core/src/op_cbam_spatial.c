#include "tfr_ops.h"

void tfr_op_cbam_spatial(float *x, int h, int w, int c, const float *sw, float sb, float *scratch) {
  float *am = scratch;        /* [h][w][2]: mean, max over channels */
  float *s = scratch + 2 * h * w; /* [h][w] */
  int y, xx, k, ky, kx;
  for (y = 0; y < h * w; y++) {
    const float *p = x + y * c;
    float sum = 0.0f, m = p[0];
    for (k = 0; k < c; k++) {
      sum = sum + p[k];
      if (p[k] > m) m = p[k];
    }
    am[2 * y] = sum / (float)c;
    am[2 * y + 1] = m;
  }
  for (y = 0; y < h; y++) {
    for (xx = 0; xx < w; xx++) {
      float acc = 0.0f;
      for (ky = 0; ky < 7; ky++) {
        const int iy = y + ky - 3;
        if (iy < 0 || iy >= h) continue;
        for (kx = 0; kx < 7; kx++) {
          const int ix = xx + kx - 3;
          const float *wt, *v;
          if (ix < 0 || ix >= w) continue;
          wt = sw + (ky * 7 + kx) * 2;
          v = am + (iy * w + ix) * 2;
          acc = acc + wt[0] * v[0];
          acc = acc + wt[1] * v[1];
        }
      }
      s[y * w + xx] = tfr_sigmoidf(acc + sb);
    }
  }
  for (y = 0; y < h * w; y++) {
    float *p = x + y * c;
    const float a = s[y];
    for (k = 0; k < c; k++) p[k] = p[k] * a;
  }
}
