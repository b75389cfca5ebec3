#include "tfr_ops.h"

void tfr_op_dense(const float *in, int nin, int nout, const float *w, const float *b, float *out) {
  int o, i;
  for (o = 0; o < nout; o++) {
    const float *wo = w + o * nin;
    float acc = 0.0f;
    for (i = 0; i < nin; i++) acc = acc + wo[i] * in[i];
    out[o] = acc + b[o];
  }
}
