#include "tfr_ops.h"

void tfr_op_prelu(float *x, int n, int c, const float *slope) {
  int i, k;
  for (i = 0; i < n; i++) {
    float *p = x + i * c;
    for (k = 0; k < c; k++) {
      if (!(p[k] >= 0.0f)) p[k] = slope[k] * p[k];
    }
  }
}
