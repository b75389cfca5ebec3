#include "tfr_ops.h"

void tfr_op_softmax(const float *in, int n, float *out) {
  float m = in[0], sum = 0.0f;
  int i;
  for (i = 1; i < n; i++)
    if (in[i] > m) m = in[i];
  for (i = 0; i < n; i++) {
    out[i] = tfr_expf(in[i] - m);
    sum = sum + out[i];
  }
  for (i = 0; i < n; i++) out[i] = out[i] / sum;
}
