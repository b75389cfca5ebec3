#include "tfr_ops.h"
#include "tfr_simd.h"

/* mlp(v) = w2 . relu(w1 . v + b1) + b2 */
static void mlp(const float *v, int c, int hidden, const float *w1, const float *b1,
                const float *w2, const float *b2, float *h, float *out) {
  int j;
  tfr_op_dense(v, c, hidden, w1, b1, h);
  for (j = 0; j < hidden; j++) h[j] = h[j] > 0.0f ? h[j] : 0.0f;
  tfr_op_dense(h, hidden, c, w2, b2, out);
}

void tfr_op_cbam_channel(float *x, int hw, int c, int hidden, const float *w1, const float *b1,
                         const float *w2, const float *b2, float *scratch) {
  float *avg = scratch, *mx = scratch + c, *ma = scratch + 2 * c, *mm = scratch + 3 * c;
  float *h = scratch + 4 * c;
  int i, k, k4 = 0;
#if defined(TFR_USE_SIMD)
  k4 = c & ~3; /* channels 0..k4-1 four at a time (each lane one channel, pixels in order) */
  for (k = 0; k < k4; k += 4) {
    tfr_v4f sum = tfr_v4f_splat(0.0f), m = tfr_v4f_load(x + k);
    for (i = 0; i < hw; i++) {
      const tfr_v4f v = tfr_v4f_load(x + i * c + k);
      sum = sum + v;
      m = tfr_v4f_select(v > m, v, m);
    }
    tfr_v4f_store(avg + k, sum);
    tfr_v4f_store(mx + k, m);
  }
#endif
  for (k = k4; k < c; k++) {
    avg[k] = 0.0f;
    mx[k] = x[k];
  }
  for (i = 0; i < hw && k4 < c; i++) {
    const float *p = x + i * c;
    for (k = k4; k < c; k++) {
      avg[k] = avg[k] + p[k];
      if (p[k] > mx[k]) mx[k] = p[k];
    }
  }
  for (k = 0; k < c; k++) avg[k] = avg[k] / (float)hw;
  mlp(avg, c, hidden, w1, b1, w2, b2, h, ma);
  mlp(mx, c, hidden, w1, b1, w2, b2, h, mm);
  k = 0;
#if defined(TFR_USE_SIMD)
  for (; k < k4; k += 4) tfr_v4f_store(ma + k, tfr_sigmoidf4(tfr_v4f_load(ma + k) + tfr_v4f_load(mm + k)));
#endif
  for (; k < c; k++) ma[k] = tfr_sigmoidf(ma[k] + mm[k]);
  for (i = 0; i < hw; i++) {
    float *p = x + i * c;
    k = 0;
#if defined(TFR_USE_SIMD)
    for (; k < k4; k += 4) tfr_v4f_store(p + k, tfr_v4f_load(p + k) * tfr_v4f_load(ma + k));
#endif
    for (; k < c; k++) p[k] = p[k] * ma[k];
  }
}
