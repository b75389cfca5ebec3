#include "tfr_ops.h"

/* Four outputs at a time: four independent sums, each in the order of i as the one-output loop
 * (so the FPU's latency overlaps instead of each add waiting on the one before it). b NULL: no
 * bias, out[o] is the sum itself (the grid head's reduce). */
void tfr_op_dense(const float *in, int nin, int nout, const float *w, const float *b, float *out) {
  int o = 0, i;
  for (; o + 4 <= nout; o += 4) {
    const float *w0 = w + o * nin, *w1 = w0 + nin, *w2 = w1 + nin, *w3 = w2 + nin;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    for (i = 0; i < nin; i++) {
      const float x = in[i];
      a0 = a0 + w0[i] * x;
      a1 = a1 + w1[i] * x;
      a2 = a2 + w2[i] * x;
      a3 = a3 + w3[i] * x;
    }
    if (b) {
      a0 = a0 + b[o];
      a1 = a1 + b[o + 1];
      a2 = a2 + b[o + 2];
      a3 = a3 + b[o + 3];
    }
    out[o] = a0;
    out[o + 1] = a1;
    out[o + 2] = a2;
    out[o + 3] = a3;
  }
  for (; o < nout; o++) {
    const float *wo = w + o * nin;
    float acc = 0.0f;
    for (i = 0; i < nin; i++) acc = acc + wo[i] * in[i];
    out[o] = b ? acc + b[o] : acc;
  }
}
