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
  int i, j, y, x, ch;
  for (i = 0; i < g; i++) {
    for (j = 0; j < g; j++) {
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
      tfr_op_dense(avg, c, k, reduce, NULL, out + (i * g + j) * k);
    }
  }
}
