#include "tfr_ops.h"
#include "tfr_simd.h"

/* `out` may alias `in` (same base) when cout <= 2 * cin: each output pixel is written after
 * its 2x2 window has been pooled, and never reaches input that a later pixel still reads. */

/* SIMD path: the 1x1 weights transposed to [c][o] on the stack, up to this many floats. */
#define TFR_SC_SIMD_WEIGHTS 2048

#if !defined(TFR_USE_SIMD)
/* Scalar path (the ESP32-S3's): pixel pairs, both pooled windows interleaved on the stack
 * (pixel 0's channel c at [2c], pixel 1's at [2c + 1]), for layers of up to this many input
 * channels, a multiple of four (others take the one-pixel loop). */
#define TFR_SC_PAIR_CIN 64

/* 2x2 average pool of one window (rows a, b and d, e of cin channels, cin a multiple of four)
 * into every other float of dst, each channel as the reference: (((a + b) + d) + e) * 0.25f. */
static void sc_pool(const float *a, const float *b, const float *d, const float *e, int cin, float *dst) {
  int c;
  for (c = 0; c + 4 <= cin; c += 4, a += 4, b += 4, d += 4, e += 4, dst += 8) {
    dst[0] = (((a[0] + b[0]) + d[0]) + e[0]) * 0.25f;
    dst[2] = (((a[1] + b[1]) + d[1]) + e[1]) * 0.25f;
    dst[4] = (((a[2] + b[2]) + d[2]) + e[2]) * 0.25f;
    dst[6] = (((a[3] + b[3]) + d[3]) + e[3]) * 0.25f;
  }
}

/* Channel k of a pair step: each of the four weights loaded once for both pixels (pp[2k],
 * pp[2k + 1]), eight independent sums, each still over c in order. */
#define SC_PAIR_TERM(k)                                                                          \
  do {                                                                                           \
    const float x_ = pp[2 * (k)], y_ = pp[2 * (k) + 1];                                          \
    float t_ = w0[k];                                                                            \
    a0 = a0 + t_ * x_;                                                                           \
    b0 = b0 + t_ * y_;                                                                           \
    t_ = w1[k];                                                                                  \
    a1 = a1 + t_ * x_;                                                                           \
    b1 = b1 + t_ * y_;                                                                           \
    t_ = w2[k];                                                                                  \
    a2 = a2 + t_ * x_;                                                                           \
    b2 = b2 + t_ * y_;                                                                           \
    t_ = w3[k];                                                                                  \
    a3 = a3 + t_ * x_;                                                                           \
    b3 = b3 + t_ * y_;                                                                           \
  } while (0)

/* TFR_SCHED_PRESSURE (tfr_ops.h): without it GCC 12.2 for Xtensa spills sums of the pair loop,
 * 110 instructions per four channels (33 loads, 8 stores) instead of 93 (24 loads, 64 FPU
 * operations, 5 pointer steps). */
#endif

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

TFR_SCHED_PRESSURE void tfr_op_shortcut_proj(const float *in, int h, int w, int cin, int cout, const float *sw,
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
  const int pair_ok = cin >= 4 && cin <= TFR_SC_PAIR_CIN && (cin & 3) == 0;
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
#else
    /* two pixels at a time (both windows pooled before either output is written, which keeps
     * the in-place rule), four outputs per step: per channel six loads for eight multiply-adds */
    for (; pair_ok && x + 2 <= wo; x += 2) {
      float pair[2 * TFR_SC_PAIR_CIN];
      const float *a = in + ((2 * y) * w + 2 * x) * cin;
      const float *d = a + w * cin;
      float *dst = out + (y * wo + x) * cout, *dst2 = dst + cout;
      sc_pool(a, a + cin, d, d + cin, cin, pair);
      sc_pool(a + 2 * cin, a + 3 * cin, d + 2 * cin, d + 3 * cin, cin, pair + 1);
      for (o = 0; o + 4 <= cout; o += 4) {
        const float *w0 = sw + o * cin, *w1 = w0 + cin, *w2 = w1 + cin, *w3 = w2 + cin;
        const float *pp = pair;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
        float s0, s1, s2, s3;
        for (c = 0; c + 4 <= cin; c += 4, pp += 8, w0 += 4, w1 += 4, w2 += 4, w3 += 4) {
          SC_PAIR_TERM(0);
          SC_PAIR_TERM(1);
          SC_PAIR_TERM(2);
          SC_PAIR_TERM(3);
        }
        /* the four biases loaded before the first store (GCC cannot rule out that dst overlaps
         * sb and would load each one again after a store, stalling on its add) */
        s0 = sb[o];
        s1 = sb[o + 1];
        s2 = sb[o + 2];
        s3 = sb[o + 3];
        a0 = a0 + s0;
        a1 = a1 + s1;
        a2 = a2 + s2;
        a3 = a3 + s3;
        b0 = b0 + s0;
        b1 = b1 + s1;
        b2 = b2 + s2;
        b3 = b3 + s3;
        dst[o] = a0;
        dst[o + 1] = a1;
        dst[o + 2] = a2;
        dst[o + 3] = a3;
        dst2[o] = b0;
        dst2[o + 1] = b1;
        dst2[o + 2] = b2;
        dst2[o + 3] = b3;
      }
      for (; o < cout; o++) {
        const float *wo_ = sw + o * cin;
        float acc = 0.0f, acc2 = 0.0f;
        for (c = 0; c < cin; c++) {
          acc = acc + wo_[c] * pair[2 * c];
          acc2 = acc2 + wo_[c] * pair[2 * c + 1];
        }
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
      /* two outputs side by side (the scalar path's single pixels: the last one of an odd row,
       * layers the pixel pairs above do not take): each pooled value loaded
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
