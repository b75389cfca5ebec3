#include "tfr_ops.h"
#include "tfr_simd.h"

/* Four channels' sums and maxima over n pixels from p (p += c floats per pixel): tfr_sum_max4
 * per pixel. On the S3 (TFR_USE_PIE) one zero-overhead loop (GCC puts none around the asm of
 * TFR_MAX4): four loads, four adds, four `olt.s` into b0..b3 and four `movt.s`, the same
 * operations in the same order per channel. */
#if defined(TFR_USE_PIE)
#define TFR_POOL4_RUN(p, c, n, s0, s1, s2, s3, m0, m1, m2, m3)                                        \
  do {                                                                                                \
    float v0_, v1_, v2_, v3_;                                                                         \
    __asm__ volatile("loopgtz %[cnt], 1f\n\t"                                                         \
                     "lsi %[v0], %[pa], 0\n\tlsi %[v1], %[pa], 4\n\tlsi %[v2], %[pa], 8\n\tlsi %[v3], %[pa], 12\n\t" \
                     TFR_ASM_SUM_MAX4 "add %[pa], %[pa], %[cs]\n"                                      \
                     "1:"                                                                            \
                     : [pa] "+r"(p), TFR_ASM_SUM_MAX4_OPS(s0, s1, s2, s3, m0, m1, m2, m3, v0_, v1_, v2_, v3_) \
                     : [cnt] "r"(n), [cs] "r"(4 * (c))                                                  \
                     : "b0", "memory"); /* GCC knows b0 alone: b1-b3 hold nothing of its own */         \
  } while (0)
#else
/* a function per step, so that the marked line holds the loop alone (for gcov) */
#define TFR_POOL4_RUN(p, c, n, s0, s1, s2, s3, m0, m1, m2, m3) \
  for (int i_ = 0; i_ < (n); i_++, (p) += (c)) tfr_sum_max4(p, 1, &(s0), &(s1), &(s2), &(s3), &(m0), &(m1), &(m2), &(m3))
#endif

/* mlp(v) = w2 . relu(w1 . v + b1) + b2 */
static void mlp(const float *v, int c, int hidden, const float *w1, const float *b1,
                const float *w2, const float *b2, float *h, float *out) {
  int j;
  tfr_op_dense(v, c, hidden, w1, b1, h);
  for (j = 0; j < hidden; j++) h[j] = h[j] > 0.0f ? h[j] : 0.0f;
  tfr_op_dense(h, hidden, c, w2, b2, out);
}

#if defined(TFR_USE_SIMD)
/* avg (the sum, divided later) and max over hw pixels of channels k..k+4G-1, pixels in order */
TFR_INLINE void pool_channels(const float *x, int hw, int c, int k, const int G, float *avg, float *mx) {
  tfr_v4f sum[4], m[4];
  int i, g;
  for (g = 0; g < G; g++) {
    sum[g] = tfr_v4f_splat(0.0f);
    m[g] = tfr_v4f_load(x + k + 4 * g);
  }
  for (i = 0; i < hw; i++) {
    const float *p = x + i * c + k;
    for (g = 0; g < G; g++) {
      const tfr_v4f v = tfr_v4f_load(p + 4 * g);
      sum[g] = sum[g] + v;
      m[g] = tfr_v4f_max_gt(m[g], v);
    }
  }
  for (g = 0; g < G; g++) {
    tfr_v4f_store(avg + k + 4 * g, sum[g]);
    tfr_v4f_store(mx + k + 4 * g, m[g]);
  }
}
#endif

void tfr_op_cbam_factors(const float *x, int hw, int c, int hidden, const float *w1, const float *b1,
                         const float *w2, const float *b2, float *scratch, float *f) {
  float *avg = scratch, *mx = scratch + c, *mm = scratch + 2 * c;
  float *h = scratch + 3 * c;
  int i, k, k4 = 0;
#if defined(TFR_USE_SIMD)
  k4 = c & ~3; /* channels 0..k4-1 four at a time (each lane one channel, pixels in order) */
  /* 4 * G channels per pass over the pixels: G independent sums (and maxima) side by side */
  for (k = 0; k + 16 <= k4; k += 16) pool_channels(x, hw, c, k, 4, avg, mx);
  for (; k + 8 <= k4; k += 8) pool_channels(x, hw, c, k, 2, avg, mx);
  for (; k < k4; k += 4) pool_channels(x, hw, c, k, 1, avg, mx);
#endif
  /* scalar: four channels per pass over the pixels, their sums and maxima in registers (four
   * independent chains each), each channel over the pixels in order */
  for (k = k4; k + 4 <= c; k += 4) {
    const float *p = x + k;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, m0 = p[0], m1 = p[1], m2 = p[2], m3 = p[3];
    TFR_POOL4_RUN(p, c, hw, s0, s1, s2, s3, m0, m1, m2, m3); /* the pixels (xtensa-cost: loop) */
    avg[k] = s0;
    avg[k + 1] = s1;
    avg[k + 2] = s2;
    avg[k + 3] = s3;
    mx[k] = m0;
    mx[k + 1] = m1;
    mx[k + 2] = m2;
    mx[k + 3] = m3;
  }
  for (; k < c; k++) {
    const float *p = x + k;
    float s0 = 0.0f, m0 = p[0];
    for (i = 0; i < hw; i++, p += c) {
      s0 = s0 + p[0];
      if (p[0] > m0) m0 = p[0];
    }
    avg[k] = s0;
    mx[k] = m0;
  }
  for (k = 0; k < c; k++) avg[k] = avg[k] / (float)hw;
  mlp(avg, c, hidden, w1, b1, w2, b2, h, f);
  mlp(mx, c, hidden, w1, b1, w2, b2, h, mm);
  k = 0;
#if defined(TFR_USE_SIMD)
  for (; k < k4; k += 4) tfr_v4f_store(f + k, tfr_sigmoidf4(tfr_v4f_load(f + k) + tfr_v4f_load(mm + k)));
#endif
  for (; k + 4 <= c; k += 4) { /* four interleaved exp chains */
    for (i = 0; i < 4; i++) f[k + i] = f[k + i] + mm[k + i];
    tfr_sigmoidf_x4(f + k);
  }
  for (; k < c; k++) f[k] = tfr_sigmoidf(f[k] + mm[k]);
}
