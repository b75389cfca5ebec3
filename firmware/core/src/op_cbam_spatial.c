#include "tfr_ops.h"
#include "tfr_simd.h"

/* The mean and max maps are kept as two planes with a 3-pixel zero border, so the 7x7 conv
 * runs without bounds checks: the border adds w * 0 terms to sums that start at +0 and so are
 * never -0, which leaves every sum bit-identical to skipping those taps. */
void tfr_op_cbam_spatial(float *x, int h, int w, int c, const float *sw, float sb, float *scratch) {
  const int pw = w + 6, plane = (h + 6) * (w + 6);
  float *mean = scratch, *mx = scratch + plane; /* [h+6][w+6] each */
  float *s = scratch + 2 * plane;               /* [h][w] */
  int y, xx, k, ky, kx, i;
  for (i = 0; i < 2 * plane; i++) scratch[i] = 0.0f;
  for (y = 0; y < h; y++) {
    xx = 0;
#if defined(TFR_USE_SIMD)
    /* four pixels per vector, each lane summing its own channels in order */
    for (; xx + 4 <= w; xx += 4) {
      const float *p = x + (y * w + xx) * c;
      tfr_v4f sum = tfr_v4f_splat(0.0f), m = tfr_v4f_gather(p, c);
      for (k = 0; k < c; k++) {
        const tfr_v4f v = tfr_v4f_gather(p + k, c);
        sum = sum + v;
        m = tfr_v4f_select(v > m, v, m);
      }
      tfr_v4f_store(mean + (y + 3) * pw + xx + 3, sum / tfr_v4f_splat((float)c));
      tfr_v4f_store(mx + (y + 3) * pw + xx + 3, m);
    }
#endif
    for (; xx < w; xx++) {
      const float *p = x + (y * w + xx) * c;
      float sum = 0.0f, m = p[0];
      for (k = 0; k < c; k++) {
        sum = sum + p[k];
        if (p[k] > m) m = p[k];
      }
      mean[(y + 3) * pw + xx + 3] = sum / (float)c;
      mx[(y + 3) * pw + xx + 3] = m;
    }
  }
  for (y = 0; y < h; y++) {
    xx = 0;
#if defined(TFR_USE_SIMD)
    for (; xx + 4 <= w; xx += 4) {
      tfr_v4f acc = tfr_v4f_splat(0.0f);
      for (ky = 0; ky < 7; ky++) {
        const float *a = mean + (y + ky) * pw + xx, *b = mx + (y + ky) * pw + xx;
        for (kx = 0; kx < 7; kx++) {
          const float *wt = sw + (ky * 7 + kx) * 2;
          acc = acc + tfr_v4f_splat(wt[0]) * tfr_v4f_load(a + kx);
          acc = acc + tfr_v4f_splat(wt[1]) * tfr_v4f_load(b + kx);
        }
      }
      tfr_v4f_store(s + y * w + xx, tfr_sigmoidf4(acc + tfr_v4f_splat(sb)));
    }
#endif
    for (; xx < w; xx++) {
      float acc = 0.0f;
      for (ky = 0; ky < 7; ky++) {
        const float *a = mean + (y + ky) * pw + xx, *b = mx + (y + ky) * pw + xx;
        for (kx = 0; kx < 7; kx++) {
          const float *wt = sw + (ky * 7 + kx) * 2;
          acc = acc + wt[0] * a[kx];
          acc = acc + wt[1] * b[kx];
        }
      }
      s[y * w + xx] = tfr_sigmoidf(acc + sb);
    }
  }
  for (y = 0; y < h * w; y++) {
    float *p = x + y * c;
    const float a = s[y];
    k = 0;
#if defined(TFR_USE_SIMD)
    for (; k + 4 <= c; k += 4) tfr_v4f_store(p + k, tfr_v4f_load(p + k) * tfr_v4f_splat(a));
#endif
    for (; k < c; k++) p[k] = p[k] * a;
  }
}
