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
