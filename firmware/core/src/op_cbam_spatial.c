#include "tfr_ops.h"
#include "tfr_simd.h"

/* The mean and max maps are kept as two planes with a 3-pixel zero border, so the 7x7 conv
 * runs without bounds checks: the border adds w * 0 terms to sums that start at +0 and so are
 * never -0, which leaves every sum bit-identical to skipping those taps. */
#if defined(TFR_USE_SIMD)
/* Mean and max over the c channels of 4 * G pixels (p: the first), G vectors side by side. */
TFR_INLINE void channel_stats(const float *p, int c, const int G, float *mean, float *mx) {
  tfr_v4f sum[2], m[2];
  int g, k;
  for (g = 0; g < G; g++) {
    sum[g] = tfr_v4f_splat(0.0f);
    m[g] = tfr_v4f_gather(p + 4 * g * c, c);
  }
  k = 0;
  /* four channels at a time: the 4 pixels x 4 channels block loaded by rows and transposed */
  for (; k + 4 <= c; k += 4)
    for (g = 0; g < G; g++) {
      const float *q = p + 4 * g * c + k;
      tfr_v4f r[4];
      int j;
      r[0] = tfr_v4f_load(q);
      r[1] = tfr_v4f_load(q + c);
      r[2] = tfr_v4f_load(q + 2 * c);
      r[3] = tfr_v4f_load(q + 3 * c);
      tfr_v4f_transpose(r);
      for (j = 0; j < 4; j++) {
        sum[g] = sum[g] + r[j];
        m[g] = tfr_v4f_max_gt(m[g], r[j]);
      }
    }
  for (; k < c; k++)
    for (g = 0; g < G; g++) {
      const tfr_v4f v = tfr_v4f_gather(p + 4 * g * c + k, c);
      sum[g] = sum[g] + v;
      m[g] = tfr_v4f_max_gt(m[g], v);
    }
  for (g = 0; g < G; g++) {
    tfr_v4f_store(mean + 4 * g, sum[g] / tfr_v4f_splat((float)c));
    tfr_v4f_store(mx + 4 * g, m[g]);
  }
}

/* The 7x7 conv + sigmoid of pixels xx..xx+4G-1 of row y (the same sum order as the scalar loop). */
TFR_INLINE void spatial_conv(const float *mean, const float *mx, int pw, int y, int xx, const int G,
                             const float *sw, float sb, float *out) {
  tfr_v4f acc[4];
  int g, ky, kx;
  for (g = 0; g < G; g++) acc[g] = tfr_v4f_splat(0.0f);
  for (ky = 0; ky < 7; ky++) {
    const float *a = mean + (y + ky) * pw + xx, *b = mx + (y + ky) * pw + xx;
    for (kx = 0; kx < 7; kx++) {
      const float *wt = sw + (ky * 7 + kx) * 2;
      const tfr_v4f w0 = tfr_v4f_splat(wt[0]), w1 = tfr_v4f_splat(wt[1]);
      for (g = 0; g < G; g++) {
        acc[g] = acc[g] + w0 * tfr_v4f_load(a + kx + 4 * g);
        acc[g] = acc[g] + w1 * tfr_v4f_load(b + kx + 4 * g);
      }
    }
  }
  for (g = 0; g < G; g++) tfr_v4f_store(out + 4 * g, tfr_sigmoidf4(acc[g] + tfr_v4f_splat(sb)));
}
#endif

/* one channel of the four pixels p, p + c, p + 2c, p + 3c scaled by fk, then tfr_sum_max4 */
TFR_KERNEL void scale_sum_max4(float *p, float fk, int c, float *s0, float *s1, float *s2, float *s3, float *m0,
                               float *m1, float *m2, float *m3) {
  const float v0 = p[0] * fk, v1 = p[c] * fk, v2 = p[2 * c] * fk, v3 = p[3 * c] * fk;
  p[0] = v0;
  p[c] = v1;
  p[2 * c] = v2;
  p[3 * c] = v3;
  *s0 = *s0 + v0;
  *s1 = *s1 + v1;
  *s2 = *s2 + v2;
  *s3 = *s3 + v3;
  TFR_MAX4(*m0, *m1, *m2, *m3, v0, v1, v2, v3);
}
/* n steps of two channels of the four pixels p, p + c, p + 2c, p + 3c (at p, then at p + 1; p += 2
 * per step), the channel attention applied on the way: each value multiplied by its channel's
 * factor (f[0], f[1]; f += 2 per step) and stored back, then summed and compared (tfr_sum_max4):
 * the products a separate scaling pass would store, and the statistics of those. On the S3 one
 * zero-overhead loop (GCC puts none around TFR_MAX4's asm): the other pixels' values by indexed
 * loads and stores (lsx / ssx at p + 4c, 8c, 12c bytes), the same operations in the same order. */
#if defined(TFR_USE_PIE)
#define TFR_STATS_HALF(fk)                                                                                  \
  "lsi %[v0], %[pa], 0\n\tlsx %[v1], %[pa], %[i1]\n\tlsx %[v2], %[pa], %[i2]\n\tlsx %[v3], %[pa], %[i3]\n\t"     \
  "mul.s %[v0], %[v0], %[" fk "]\n\tmul.s %[v1], %[v1], %[" fk "]\n\tmul.s %[v2], %[v2], %[" fk "]\n\t"           \
  "mul.s %[v3], %[v3], %[" fk "]\n\tssi %[v0], %[pa], 0\n\tssx %[v1], %[pa], %[i1]\n\tssx %[v2], %[pa], %[i2]\n\t" \
  "ssx %[v3], %[pa], %[i3]\n\t" TFR_ASM_SUM_MAX4 "addi %[pa], %[pa], 4\n\t"
#define TFR_STATS_RUN(p, f, c, n, s0, s1, s2, s3, m0, m1, m2, m3)                                           \
  do {                                                                                                  \
    float v0_, v1_, v2_, v3_, f0_, f1_;                                                                 \
    __asm__ volatile("loopgtz %[cnt], 1f\n\t"                                                           \
                     "lsi %[f0], %[fa], 0\n\tlsi %[f1], %[fa], 4\n\taddi %[fa], %[fa], 8\n\t"             \
                     TFR_STATS_HALF("f0") TFR_STATS_HALF("f1")                                     \
                     "\n1:"                                                                            \
                     : [pa] "+r"(p), [fa] "+r"(f), [f0] "=&f"(f0_), [f1] "=&f"(f1_),                      \
                       TFR_ASM_SUM_MAX4_OPS(s0, s1, s2, s3, m0, m1, m2, m3, v0_, v1_, v2_, v3_)          \
                     : [cnt] "r"(n), [i1] "r"(4 * (c)), [i2] "r"(8 * (c)), [i3] "r"(12 * (c))             \
                     : "b0", "memory"); /* GCC knows b0 alone: b1-b3 hold nothing of its own */           \
  } while (0)
#else
TFR_KERNEL void stats_step2(float *p, const float *f, int c, float *s0, float *s1, float *s2, float *s3,
                            float *m0, float *m1, float *m2, float *m3) {
  scale_sum_max4(p, f[0], c, s0, s1, s2, s3, m0, m1, m2, m3);
  scale_sum_max4(p + 1, f[1], c, s0, s1, s2, s3, m0, m1, m2, m3);
}
#define TFR_STATS_RUN(p, f, c, n, s0, s1, s2, s3, m0, m1, m2, m3)           \
  for (int k_ = 0; k_ < (n); k_++, (p) += 2, (f) += 2)                        \
  stats_step2(p, f, c, &(s0), &(s1), &(s2), &(s3), &(m0), &(m1), &(m2), &(m3))
#endif

/* Channel mean and max of four pixels (p0: the first, c channels each) side by side (independent
 * sums, so the FPU's latency overlaps), each over its channels in order; two channels per step.
 * pow2 (a constant at each call): c = 2^e, whose exact reciprocal inv_c = 2^-e makes the product
 * the quotient, bit for bit. */
TFR_KERNEL void stats4(float *p0, int c, const int pow2, float inv_c, const float *f, float *mo, float *xo) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  float m0 = p0[0] * f[0], m1 = p0[c] * f[0], m2 = p0[2 * c] * f[0], m3 = p0[3 * c] * f[0];
  TFR_STATS_RUN(p0, f, c, c / 2, s0, s1, s2, s3, m0, m1, m2, m3); /* two channels per step (xtensa-cost: loop) */
  if (c & 1) scale_sum_max4(p0, f[0], c, &s0, &s1, &s2, &s3, &m0, &m1, &m2, &m3);
  if (pow2) {
    mo[0] = s0 * inv_c;
    mo[1] = s1 * inv_c;
    mo[2] = s2 * inv_c;
    mo[3] = s3 * inv_c;
  } else {
    mo[0] = s0 / (float)c;
    mo[1] = s1 / (float)c;
    mo[2] = s2 / (float)c;
    mo[3] = s3 / (float)c;
  }
  xo[0] = m0;
  xo[1] = m1;
  xo[2] = m2;
  xo[3] = m3;
}

void tfr_op_cbam_spatial(float *x, int h, int w, int c, const float *chan, const float *sw, float sb,
                         float *scratch) {
  const int pw = w + 6, plane = (h + 6) * (w + 6);
  float *mean = scratch, *mx = scratch + plane; /* [h+6][w+6] each */
  float *s = scratch + 2 * plane;               /* [h][w] */
  /* the mean's divisor: a power of two c = 2^e (e <= 24) has the exact reciprocal 2^-e */
  const int pow2 = c > 0 && c <= (1 << 24) && (c & (c - 1)) == 0;
  const float inv_c = 1.0f / (float)c;
  int y, xx, k, ky, kx, i;
  for (i = 0; i < 2 * plane; i++) scratch[i] = 0.0f;
  for (y = 0; y < h; y++) {
    xx = 0;
#if defined(TFR_USE_SIMD)
    /* the channel attention on the pixels the vector statistics take, as a pass of its own (the
     * scalar statistics below apply it on the way) */
    for (; xx < (w & ~3); xx++) {
      float *p = x + (y * w + xx) * c;
      for (k = 0; k + 4 <= c; k += 4) tfr_v4f_store(p + k, tfr_v4f_load(p + k) * tfr_v4f_load(chan + k));
      for (; k < c; k++) p[k] = p[k] * chan[k];
    }
    xx = 0;
    /* four pixels per vector, each lane summing its own channels in order */
    for (; xx + 8 <= w; xx += 8) channel_stats(x + (y * w + xx) * c, c, 2, mean + (y + 3) * pw + xx + 3, mx + (y + 3) * pw + xx + 3);
    for (; xx + 4 <= w; xx += 4) channel_stats(x + (y * w + xx) * c, c, 1, mean + (y + 3) * pw + xx + 3, mx + (y + 3) * pw + xx + 3);
#endif
    /* scalar: four pixels at a time (stats4), one loop per divisor kind */
    if (pow2)
      for (; xx + 4 <= w; xx += 4) stats4(x + (y * w + xx) * c, c, 1, inv_c, chan, mean + (y + 3) * pw + xx + 3, mx + (y + 3) * pw + xx + 3);
    else
      for (; xx + 4 <= w; xx += 4) stats4(x + (y * w + xx) * c, c, 0, inv_c, chan, mean + (y + 3) * pw + xx + 3, mx + (y + 3) * pw + xx + 3);
    for (; xx < w; xx++) {
      float *p = x + (y * w + xx) * c;
      float sum = 0.0f, m;
      for (k = 0; k < c; k++) p[k] = p[k] * chan[k];
      m = p[0];
      for (k = 0; k < c; k++) {
        sum = sum + p[k];
        if (p[k] > m) m = p[k];
      }
      mean[(y + 3) * pw + xx + 3] = sum / (float)c;
      mx[(y + 3) * pw + xx + 3] = m;
    }
  }
  for (y = 0; y < h; y++) {
    xx = 0;
#if defined(TFR_USE_SIMD)
    /* several vectors of four pixels at once: independent sums, each weight splat once */
    for (; xx + 16 <= w; xx += 16) spatial_conv(mean, mx, pw, y, xx, 4, sw, sb, s + y * w + xx);
    for (; xx + 8 <= w; xx += 8) spatial_conv(mean, mx, pw, y, xx, 2, sw, sb, s + y * w + xx);
    for (; xx + 4 <= w; xx += 4) spatial_conv(mean, mx, pw, y, xx, 1, sw, sb, s + y * w + xx);
#endif
    /* scalar: four pixels side by side, each summed in the order below; a kernel row fully
     * unrolled, so each of its 10 + 10 inputs is loaded once for the four pixels */
    for (; xx + 4 <= w; xx += 4) {
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, v[4];
      const float *a = mean + y * pw + xx, *b = mx + y * pw + xx, *wt = sw;
      for (ky = 0; ky < 7; ky++, a += pw, b += pw, wt += 14) {
#define TFR_TAP(kx)                                                            \
  {                                                                            \
    const float w0 = wt[2 * (kx)], w1 = wt[2 * (kx) + 1];                      \
    a0 = a0 + w0 * a[(kx)];                                                    \
    a1 = a1 + w0 * a[(kx) + 1];                                                \
    a2 = a2 + w0 * a[(kx) + 2];                                                \
    a3 = a3 + w0 * a[(kx) + 3];                                                \
    a0 = a0 + w1 * b[(kx)];                                                    \
    a1 = a1 + w1 * b[(kx) + 1];                                                \
    a2 = a2 + w1 * b[(kx) + 2];                                                \
    a3 = a3 + w1 * b[(kx) + 3];                                                \
  }
        TFR_TAP(0) TFR_TAP(1) TFR_TAP(2) TFR_TAP(3) TFR_TAP(4) TFR_TAP(5) TFR_TAP(6)
#undef TFR_TAP
      }
      v[0] = a0 + sb;
      v[1] = a1 + sb;
      v[2] = a2 + sb;
      v[3] = a3 + sb;
      tfr_sigmoidf_x4(v);
      s[y * w + xx] = v[0];
      s[y * w + xx + 1] = v[1];
      s[y * w + xx + 2] = v[2];
      s[y * w + xx + 3] = v[3];
    }
    for (; xx < w; xx++) {
      float acc = 0.0f;
      for (ky = 0; ky < 7; ky++) {
        const float *a = mean + (y + ky) * pw + xx, *b = mx + (y + ky) * pw + xx;
        for (kx = 0; kx < 7; kx++) {
          const float *wt = sw + (ky * 7 + kx) * 2;
          acc = acc + wt[0] * a[kx];
          acc = acc + wt[1] * b[kx];
        }
      }
      s[y * w + xx] = tfr_sigmoidf(acc + sb);
    }
  }
  for (y = 0; y < h * w; y++) {
    float *p = x + y * c;
    const float a = s[y];
    k = 0;
#if defined(TFR_USE_SIMD)
    for (; k + 4 <= c; k += 4) tfr_v4f_store(p + k, tfr_v4f_load(p + k) * tfr_v4f_splat(a));
#endif
    for (; k + 8 <= c; k += 8) tfr_mul8(p + k, a, a, a, a, a, a, a, a); /* eight products per step */
    for (; k < c; k++) p[k] = p[k] * a;
  }
}
