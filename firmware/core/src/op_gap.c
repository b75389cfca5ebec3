#include "tfr_ops.h"

/* Per channel, the mean of rows x cols pixels (rows `stride` pixels apart): summed pixel by pixel
 * in row order, then divided by their count; by a multiply when the count is a power of two,
 * which is x / n bit for bit (1 / n exact: the same real number, rounded once) and a few cycles
 * where a float division is ~65 on the ESP32-S3. */
static void pixel_mean(const float *in, int rows, int cols, int stride, int c, float *out) {
  const int n = rows * cols;
  const float inv = 1.0f / (float)n;
  int y, x, k;
  for (k = 0; k < c; k++) out[k] = 0.0f;
  for (y = 0; y < rows; y++) {
    for (x = 0; x < cols; x++) {
      const float *p = in + (y * stride + x) * c;
      for (k = 0; k < c; k++) out[k] = out[k] + p[k];
    }
  }
  if ((n & (n - 1)) == 0) {
    for (k = 0; k < c; k++) out[k] = out[k] * inv;
  } else {
    for (k = 0; k < c; k++) out[k] = out[k] / (float)n;
  }
}

void tfr_op_gap(const float *in, int hw, int c, float *out) { pixel_mean(in, 1, hw, hw, c, out); }

void tfr_op_grid_head(const float *in, int side, int c, int g, int k, const float *reduce, float *avg,
                      float *out) {
  const int r = side / g;
  int i, j;
  for (i = 0; i < g; i++) {
    for (j = 0; j < g; j++) {
      pixel_mean(in + (i * r * side + j * r) * c, r, r, side, c, avg);
      tfr_op_dense(avg, c, k, reduce, NULL, out + (i * g + j) * k);
    }
  }
}
