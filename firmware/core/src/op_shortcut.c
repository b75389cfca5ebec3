#include "tfr_ops.h"
#include "tfr_simd.h"

/* `out` may alias `in` (same base) when cout <= 2 * cin: each output pixel is written after
 * its 2x2 window has been pooled, and never reaches input that a later pixel still reads. */

/* SIMD path: the 1x1 weights transposed to [c][o] on the stack, up to this many floats. */
#define TFR_SC_SIMD_WEIGHTS 2048

void tfr_op_shortcut_proj(const float *in, int h, int w, int cin, int cout, const float *sw,
                          const float *sb, float *pooled, float *out) {
  const int ho = h / 2, wo = w / 2;
  int y, x, c, o;
#if defined(TFR_USE_SIMD)
  float wt[TFR_SC_SIMD_WEIGHTS];
  const int simd = cin * cout <= TFR_SC_SIMD_WEIGHTS && cout >= 4;
  const int o_simd = simd ? (cout & ~3) : 0;
  if (simd)
    for (c = 0; c < cin; c++)
      for (o = 0; o < cout; o++) wt[c * cout + o] = sw[o * cin + c];
#else
  const int o_simd = 0;
#endif
  for (y = 0; y < ho; y++) {
    for (x = 0; x < wo; x++) {
      const float *a = in + ((2 * y) * w + 2 * x) * cin;
      const float *b = a + cin;
      const float *d = a + w * cin;
      const float *e = d + cin;
      float *dst = out + (y * wo + x) * cout;
      for (c = 0; c < cin; c++) pooled[c] = (((a[c] + b[c]) + d[c]) + e[c]) * 0.25f;
#if defined(TFR_USE_SIMD)
      /* four outputs per vector, each lane summing over c in order, as the scalar loop */
      for (o = 0; o < o_simd; o += 4) {
        tfr_v4f acc = tfr_v4f_splat(0.0f);
        for (c = 0; c < cin; c++) acc = acc + tfr_v4f_load(wt + c * cout + o) * tfr_v4f_splat(pooled[c]);
        tfr_v4f_store(dst + o, acc + tfr_v4f_load(sb + o));
      }
#endif
      for (o = o_simd; o < cout; o++) {
        const float *wo_ = sw + o * cin;
        float acc = 0.0f;
        for (c = 0; c < cin; c++) acc = acc + wo_[c] * pooled[c];
        dst[o] = acc + sb[o];
      }
    }
  }
}
