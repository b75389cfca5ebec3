#include "tfr_ops.h"

void tfr_op_gap(const float *in, int hw, int c, float *out) {
  int i, k;
  for (k = 0; k < c; k++) out[k] = 0.0f;
  for (i = 0; i < hw; i++) {
    const float *p = in + i * c;
    for (k = 0; k < c; k++) out[k] = out[k] + p[k];
  }
  for (k = 0; k < c; k++) out[k] = out[k] / (float)hw;
}

void tfr_op_grid_head(const float *in, int side, int c, int g, int k, const float *reduce, float *avg,
                      float *out) {
  const int r = side / g;
  int i, j, y, x, ch, q;
  for (i = 0; i < g; i++) {
    for (j = 0; j < g; j++) {
      for (ch = 0; ch < c; ch++) avg[ch] = 0.0f;
      for (y = i * r; y < i * r + r; y++) {
        for (x = j * r; x < j * r + r; x++) {
          const float *p = in + (y * side + x) * c;
          for (ch = 0; ch < c; ch++) avg[ch] = avg[ch] + p[ch];
        }
      }
      for (ch = 0; ch < c; ch++) avg[ch] = avg[ch] / (float)(r * r);
      for (q = 0; q < k; q++) {
        const float *w = reduce + q * c;
        float acc = 0.0f;
        for (ch = 0; ch < c; ch++) acc = acc + w[ch] * avg[ch];
        out[(i * g + j) * k + q] = acc;
      }
    }
  }
}
