#include "tfr_ops.h"
#include "tfr_simd.h"

/* `out` may alias `in` (same base) when cout <= 2 * cin: each output pixel is written after
 * its 2x2 window has been pooled, and never reaches input that a later pixel still reads. */

/* SIMD path: the 1x1 weights transposed to [c][o] on the stack, up to this many floats. */
#define TFR_SC_SIMD_WEIGHTS 2048

#if defined(TFR_USE_SIMD)
/* Outputs o..o+4G-1 of two pixels (pooled vectors p0, p1) from the [c][o] weights: each
 * weight vector loaded once for both, 2G independent sums over c in order. */
TFR_INLINE void sc_pair(const float *p0, const float *p1, const float *wt, int cin, int cout, int o,
                        const int G, const float *sb, float *d0, float *d1) {
  tfr_v4f a[4], b[4];
  int c, g;
  for (g = 0; g < G; g++) a[g] = b[g] = tfr_v4f_splat(0.0f);
  for (c = 0; c < cin; c++) {
    const tfr_v4f s0 = tfr_v4f_splat(p0[c]), s1 = tfr_v4f_splat(p1[c]);
    const float *wc = wt + c * cout + o;
    for (g = 0; g < G; g++) {
      const tfr_v4f wv = tfr_v4f_load(wc + 4 * g);
      a[g] = a[g] + wv * s0;
      b[g] = b[g] + wv * s1;
    }
  }
  for (g = 0; g < G; g++) {
    tfr_v4f_store(d0 + o + 4 * g, a[g] + tfr_v4f_load(sb + o + 4 * g));
    tfr_v4f_store(d1 + o + 4 * g, b[g] + tfr_v4f_load(sb + o + 4 * g));
  }
}
#endif

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
    x = 0;
#if defined(TFR_USE_SIMD)
    /* two pixels at a time (both windows pooled before either output is written, which keeps
     * the in-place rule): pooled and pooled2 */
    for (; simd && x + 2 <= wo; x += 2) {
      float pooled2[TFR_SC_SIMD_WEIGHTS / 4]; /* cin <= 512 on this path (cout >= 4) */
      const float *a = in + ((2 * y) * w + 2 * x) * cin;
      const float *b = a + cin, *d = a + w * cin, *e = d + cin;
      float *dst = out + (y * wo + x) * cout, *dst2 = dst + cout;
      for (c = 0; c < cin; c++) pooled[c] = (((a[c] + b[c]) + d[c]) + e[c]) * 0.25f;
      a += 2 * cin;
      b += 2 * cin;
      d += 2 * cin;
      e += 2 * cin;
      for (c = 0; c < cin; c++) pooled2[c] = (((a[c] + b[c]) + d[c]) + e[c]) * 0.25f;
      for (o = 0; o + 16 <= o_simd; o += 16) sc_pair(pooled, pooled2, wt, cin, cout, o, 4, sb, dst, dst2);
      for (; o + 8 <= o_simd; o += 8) sc_pair(pooled, pooled2, wt, cin, cout, o, 2, sb, dst, dst2);
      for (; o < o_simd; o += 4) sc_pair(pooled, pooled2, wt, cin, cout, o, 1, sb, dst, dst2);
      for (; o < cout; o++) {
        const float *wo_ = sw + o * cin;
        float acc = 0.0f, acc2 = 0.0f;
        for (c = 0; c < cin; c++) acc = acc + wo_[c] * pooled[c];
        for (c = 0; c < cin; c++) acc2 = acc2 + wo_[c] * pooled2[c];
        dst[o] = acc + sb[o];
        dst2[o] = acc2 + sb[o];
      }
    }
#endif
    for (; x < wo; x++) {
      const float *a = in + ((2 * y) * w + 2 * x) * cin;
      const float *b = a + cin;
      const float *d = a + w * cin;
      const float *e = d + cin;
      float *dst = out + (y * wo + x) * cout;
      for (c = 0; c < cin; c++) pooled[c] = (((a[c] + b[c]) + d[c]) + e[c]) * 0.25f;
#if defined(TFR_USE_SIMD)
      /* four outputs per vector, each lane summing over c in order, as the scalar loop */
      o = 0;
      /* 16 outputs at a time: one splat of pooled[c] feeds four accumulators */
      for (; o + 16 <= o_simd; o += 16) {
        tfr_v4f a0 = tfr_v4f_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (c = 0; c < cin; c++) {
          const tfr_v4f p = tfr_v4f_splat(pooled[c]);
          const float *wc = wt + c * cout + o;
          a0 = a0 + tfr_v4f_load(wc) * p;
          a1 = a1 + tfr_v4f_load(wc + 4) * p;
          a2 = a2 + tfr_v4f_load(wc + 8) * p;
          a3 = a3 + tfr_v4f_load(wc + 12) * p;
        }
        tfr_v4f_store(dst + o, a0 + tfr_v4f_load(sb + o));
        tfr_v4f_store(dst + o + 4, a1 + tfr_v4f_load(sb + o + 4));
        tfr_v4f_store(dst + o + 8, a2 + tfr_v4f_load(sb + o + 8));
        tfr_v4f_store(dst + o + 12, a3 + tfr_v4f_load(sb + o + 12));
      }
      /* 8 outputs: two independent sums side by side */
      for (; o + 8 <= o_simd; o += 8) {
        tfr_v4f a0 = tfr_v4f_splat(0.0f), a1 = a0;
        for (c = 0; c < cin; c++) {
          const tfr_v4f p = tfr_v4f_splat(pooled[c]);
          const float *wc = wt + c * cout + o;
          a0 = a0 + tfr_v4f_load(wc) * p;
          a1 = a1 + tfr_v4f_load(wc + 4) * p;
        }
        tfr_v4f_store(dst + o, a0 + tfr_v4f_load(sb + o));
        tfr_v4f_store(dst + o + 4, a1 + tfr_v4f_load(sb + o + 4));
      }
      for (; o < o_simd; o += 4) {
        tfr_v4f acc = tfr_v4f_splat(0.0f);
        for (c = 0; c < cin; c++) acc = acc + tfr_v4f_load(wt + c * cout + o) * tfr_v4f_splat(pooled[c]);
        tfr_v4f_store(dst + o, acc + tfr_v4f_load(sb + o));
      }
#endif
      o = o_simd;
      /* two outputs side by side (the scalar path: the ESP32-S3's): each pooled value loaded
       * once for two independent sums, each over c in order as below, so a dependent FPU add
       * need not wait alone for its latency. (Four side by side make GCC 12.2 for Xtensa fail in
       * reload: "insn does not satisfy its constraints", rematerialising 0.0f into an FPU register.) */
      for (; o + 2 <= cout; o += 2) {
        const float *w0 = sw + o * cin, *w1 = w0 + cin;
        float a0 = 0.0f, a1 = 0.0f;
        /* four channels per step (fewer pointer updates and loop branches), each sum still over
         * c in order */
        for (c = 0; c + 4 <= cin; c += 4) {
          const float p0 = pooled[c], p1 = pooled[c + 1], p2 = pooled[c + 2], p3 = pooled[c + 3];
          a0 = a0 + w0[c] * p0;
          a1 = a1 + w1[c] * p0;
          a0 = a0 + w0[c + 1] * p1;
          a1 = a1 + w1[c + 1] * p1;
          a0 = a0 + w0[c + 2] * p2;
          a1 = a1 + w1[c + 2] * p2;
          a0 = a0 + w0[c + 3] * p3;
          a1 = a1 + w1[c + 3] * p3;
        }
        for (; c < cin; c++) {
          const float p = pooled[c];
          a0 = a0 + w0[c] * p;
          a1 = a1 + w1[c] * p;
        }
        dst[o] = a0 + sb[o];
        dst[o + 1] = a1 + sb[o + 1];
      }
      for (; o < cout; o++) {
        const float *wo_ = sw + o * cin;
        float acc = 0.0f;
        for (c = 0; c < cin; c++) acc = acc + wo_[c] * pooled[c];
        dst[o] = acc + sb[o];
      }
    }
  }
}
