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
  const int r = side / g, n = r * r;
  /* x / n is x * (1 / n) bit for bit when n is a power of two (1 / n exact: the same real number,
   * rounded once), and a multiply is a few cycles where a float division is ~65 on the ESP32-S3 */
  const int pow2 = (n & (n - 1)) == 0;
  const float inv = 1.0f / (float)n;
  int i, j, y, x, ch, q;
  for (i = 0; i < g; i++) {
    for (j = 0; j < g; j++) {
      float *o = out + (i * g + j) * k;
      for (ch = 0; ch < c; ch++) avg[ch] = 0.0f;
      for (y = i * r; y < i * r + r; y++) {
        for (x = j * r; x < j * r + r; x++) {
          const float *p = in + (y * side + x) * c;
          for (ch = 0; ch < c; ch++) avg[ch] = avg[ch] + p[ch];
        }
      }
      if (pow2) {
        for (ch = 0; ch < c; ch++) avg[ch] = avg[ch] * inv;
      } else {
        for (ch = 0; ch < c; ch++) avg[ch] = avg[ch] / (float)n;
      }
      /* four values at a time, each summed in channel order as the one-value loop (as tfr_op_dense) */
      for (q = 0; q + 4 <= k; q += 4) {
        const float *w0 = reduce + q * c, *w1 = w0 + c, *w2 = w1 + c, *w3 = w2 + c;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (ch = 0; ch < c; ch++) {
          const float v = avg[ch];
          a0 = a0 + w0[ch] * v;
          a1 = a1 + w1[ch] * v;
          a2 = a2 + w2[ch] * v;
          a3 = a3 + w3[ch] * v;
        }
        o[q] = a0;
        o[q + 1] = a1;
        o[q + 2] = a2;
        o[q + 3] = a3;
      }
      for (; q < k; q++) {
        const float *w = reduce + q * c;
        float acc = 0.0f;
        for (ch = 0; ch < c; ch++) acc = acc + w[ch] * avg[ch];
        o[q] = acc;
      }
    }
  }
}
