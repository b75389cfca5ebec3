#include "tfr_ops.h"

void tfr_op_stem_conv_rows(const uint8_t *face, float input_scale, const float *weight,
                           const float *bias, int cout, int y0, int nrows, float *out) {
  const int n = 48;
  int r, x, o, ky, kx;
  for (r = 0; r < nrows; r++) {
    const int y = y0 + r;
    for (x = 0; x < n; x++) {
      float px[9];
      int valid[9];
      for (ky = 0; ky < 3; ky++) {
        for (kx = 0; kx < 3; kx++) {
          const int iy = y + ky - 1, ix = x + kx - 1;
          const int t = ky * 3 + kx;
          valid[t] = iy >= 0 && iy < n && ix >= 0 && ix < n;
          px[t] = valid[t] ? (float)face[iy * n + ix] * input_scale : 0.0f;
        }
      }
      if (y > 0 && y < n - 1 && x > 0 && x < n - 1) {
        /* interior: every tap is inside, same order of additions */
        for (o = 0; o < cout; o++) {
          const float *wo = weight + o * 9;
          float acc = 0.0f;
          acc = acc + wo[0] * px[0];
          acc = acc + wo[1] * px[1];
          acc = acc + wo[2] * px[2];
          acc = acc + wo[3] * px[3];
          acc = acc + wo[4] * px[4];
          acc = acc + wo[5] * px[5];
          acc = acc + wo[6] * px[6];
          acc = acc + wo[7] * px[7];
          acc = acc + wo[8] * px[8];
          out[(r * n + x) * cout + o] = acc + bias[o];
        }
        continue;
      }
      for (o = 0; o < cout; o++) {
        const float *wo = weight + o * 9;
        float acc = 0.0f;
        int t;
        for (t = 0; t < 9; t++) {
          if (valid[t]) acc = acc + wo[t] * px[t];
        }
        out[(r * n + x) * cout + o] = acc + bias[o];
      }
    }
  }
}

/* ---- the fused stem: conv + 2x2 max-pool + bias (see tfr_ops.h for why it is bit-exact) ---- */
#include "tfr_simd.h"

#define XS 50 /* padded row length */

/* acc = 0 + w0 * p(dy,dx) + ... + w8 * p(dy+2,dx+2), left to right, as the row kernel */
#define TFR_CONV9(acc, W, P, dy, dx)                      \
  do {                                                    \
    acc = zero;                                           \
    acc = acc + W[0] * P[(dy) + 0][(dx) + 0];             \
    acc = acc + W[1] * P[(dy) + 0][(dx) + 1];             \
    acc = acc + W[2] * P[(dy) + 0][(dx) + 2];             \
    acc = acc + W[3] * P[(dy) + 1][(dx) + 0];             \
    acc = acc + W[4] * P[(dy) + 1][(dx) + 1];             \
    acc = acc + W[5] * P[(dy) + 1][(dx) + 2];             \
    acc = acc + W[6] * P[(dy) + 2][(dx) + 0];             \
    acc = acc + W[7] * P[(dy) + 2][(dx) + 1];             \
    acc = acc + W[8] * P[(dy) + 2][(dx) + 2];             \
  } while (0)

void tfr_op_stem_conv_pool(const uint8_t *face, float input_scale, const float *weight,
                           const float *bias, int cout, float *xs, float *out) {
  int y, x, o, o_lo = 0;
  /* the zero border apart, then the interior rows without a test per pixel */
  for (x = 0; x < XS; x++) xs[x] = xs[(XS - 1) * XS + x] = 0.0f;
  for (y = 1; y < XS - 1; y++) {
    float *row = xs + y * XS;
    const uint8_t *src = face + (y - 1) * 48;
    row[0] = row[XS - 1] = 0.0f;
    for (x = 0; x < 48; x++) row[x + 1] = (float)src[x] * input_scale;
  }
#if defined(TFR_USE_SIMD)
  {
    const tfr_v4f zero = tfr_v4f_splat(0.0f);
    int i, j;
    for (o = 0; o + 4 <= cout; o += 4) {
      tfr_v4f wv[9];
      const tfr_v4f b = tfr_v4f_load(bias + o);
      for (i = 0; i < 9; i++) wv[i] = tfr_v4f_gather(weight + o * 9 + i, 9);
      for (y = 0; y < 24; y++) {
        for (x = 0; x < 24; x++) {
          const float *r = xs + (2 * y) * XS + 2 * x;
          tfr_v4f p[4][4], c00, c01, c10, c11, m;
          for (i = 0; i < 4; i++)
            for (j = 0; j < 4; j++) p[i][j] = tfr_v4f_splat(r[i * XS + j]);
          TFR_CONV9(c00, wv, p, 0, 0);
          TFR_CONV9(c01, wv, p, 0, 1);
          TFR_CONV9(c10, wv, p, 1, 0);
          TFR_CONV9(c11, wv, p, 1, 1);
          m = tfr_v4f_max_gt(c00, c01);
          m = tfr_v4f_max_gt(m, c10);
          m = tfr_v4f_max_gt(m, c11);
          tfr_v4f_store(out + (y * 24 + x) * cout + o, m + b);
        }
      }
    }
    o_lo = o;
  }
#endif
  if (o_lo >= cout) return;
  {
    /* One output channel at a time over every pooled pixel (the ESP32-S3's path): the four
     * convs of a pixel are independent chains, interleaved tap by tap so that the FPU's latency
     * overlaps; each is still summed as TFR_CONV9. The weights are re-read from memory rather
     * than held: sixteen FPU registers cannot hold nine weights and four sums without spills
     * (nor two channels' eight sums: 2.5x the cycles in the listing). */
    const float zero = 0.0f;
    for (o = o_lo; o < cout; o++) {
      const float *wo = weight + o * 9;
      float *dst = out + o;
      for (y = 0; y < 24; y++) {
        const float *r = xs + (2 * y) * XS;
        for (x = 0; x < 24; x++, r += 2, dst += cout) {
          const float *r1 = r + XS, *r2 = r1 + XS, *r3 = r2 + XS;
          float c00 = zero, c01 = zero, c10 = zero, c11 = zero, m;
#define TFR_STEM_TAP(W, ra, rb, k)  \
  c00 = c00 + W * ra[(k)];         \
  c01 = c01 + W * ra[(k) + 1];     \
  c10 = c10 + W * rb[(k)];         \
  c11 = c11 + W * rb[(k) + 1];
          TFR_STEM_TAP(wo[0], r, r1, 0)
          TFR_STEM_TAP(wo[1], r, r1, 1)
          TFR_STEM_TAP(wo[2], r, r1, 2)
          TFR_STEM_TAP(wo[3], r1, r2, 0)
          TFR_STEM_TAP(wo[4], r1, r2, 1)
          TFR_STEM_TAP(wo[5], r1, r2, 2)
          TFR_STEM_TAP(wo[6], r2, r3, 0)
          TFR_STEM_TAP(wo[7], r2, r3, 1)
          TFR_STEM_TAP(wo[8], r2, r3, 2)
#undef TFR_STEM_TAP
          m = c00;
          if (c01 > m) m = c01;
          if (c10 > m) m = c10;
          if (c11 > m) m = c11;
          *dst = m + bias[o];
        }
      }
    }
  }
}

/* ---- the int8 stem (see tfr_ops.h) ---- */
#include <string.h>

#if defined(TFR_USE_INT8_DOT) || !defined(TFR_USE_SIMD)
/* The face with a zero border as bytes (both integer kernels below): 50 rows of `pitch` >= 50
 * bytes, pixel (y, x) at (y + 1) * pitch + x + 1. */
static void stem_bordered(const uint8_t *face, uint8_t *dst, int pitch) {
  int y;
  memset(dst, 0, (size_t)50 * (size_t)pitch);
  for (y = 0; y < 48; y++) memcpy(dst + (y + 1) * pitch + 1, face + y * 48, 48);
}
#endif

#if defined(TFR_USE_INT8_DOT)
#include "tfr_pie.h"

#define TFR_STEM_PAD 52 /* the padded face's row: 50 bytes and two to keep rows 4-byte aligned */

/* The window vectors: win[py * 24 + px] = the 4x4 pixels of rows 2py-1..2py+2 and columns
 * 2px-1..2px+2 (zero outside the face), row by row, each byte the pixel - 128 (pixel ^ 0x80: a
 * signed byte). A window row is one aligned 32-bit word of the zero-bordered face: of its copy
 * `a` (column x at x + 1) for even px, of its copy shifted by two bytes for odd px. */
static void stem_windows(const uint8_t *face, uint8_t *a, uint32_t *win) {
  uint8_t *b = a + 50 * TFR_STEM_PAD;
  int y, x, i;
  stem_bordered(face, a, TFR_STEM_PAD);
  memcpy(b, a + 2, 50 * TFR_STEM_PAD - 2);
  b[50 * TFR_STEM_PAD - 2] = b[50 * TFR_STEM_PAD - 1] = 0;
  for (y = 0; y < 24; y++) {
    const uint32_t *ra = (const uint32_t *)(const void *)(a + 2 * y * TFR_STEM_PAD);
    const uint32_t *rb = (const uint32_t *)(const void *)(b + 2 * y * TFR_STEM_PAD);
    for (x = 0; x < 24; x += 2, win += 8, ra++, rb++) {
      for (i = 0; i < 4; i++) {
        win[i] = ra[i * (TFR_STEM_PAD / 4)] ^ 0x80808080u;
        win[4 + i] = rb[i * (TFR_STEM_PAD / 4)] ^ 0x80808080u;
      }
    }
  }
}

/* One output over the 576 windows from w, its conv weights framed in q1..q4: each window's four
 * convs (ACCX from 0 for each), their largest + corr, and the float epilogue of the window before
 * it (scale * m + bias, stored at dst, dst += dstep floats), interleaved with the integer work,
 * each float step five instructions after the one it waits on (software-pipelined: the last
 * window's epilogue is left to the caller). The next window is loaded by the fourth product; the
 * last one reads the 16 bytes after the windows (the frames). TFR_STEM_HEAD: the integer part of
 * the first window alone. */
#if defined(TFR_USE_PIE)
#define TFR_STEM_FRAMES(s, f)                                                                        \
  __asm__ volatile("ee.vld.128.ip q1, %0, 16\n\tee.vld.128.ip q2, %0, 16\n\tee.vld.128.ip q3, %0, 16\n\t" \
                   "ee.vld.128.ip q4, %0, 16" : "+r"(f) : : "memory")
#define TFR_STEM_HEAD(s, w, pv, corr)                                                                   \
  do {                                                                                                  \
    int32_t t1_;                                                                                        \
    __asm__ volatile("ee.vld.128.ip q0, %[wa], 16\n\t"                                                  \
                     "ee.zero.accx\n\tee.vmulas.s8.accx q0, q1\n\trur.accx_0 %[pv]\n\t"                \
                     "ee.zero.accx\n\tee.vmulas.s8.accx q0, q2\n\trur.accx_0 %[t1]\n\t"                \
                     "ee.zero.accx\n\tee.vmulas.s8.accx q0, q3\n\tmax %[pv], %[pv], %[t1]\n\t"         \
                     "rur.accx_0 %[t1]\n\t"                                                              \
                     "ee.zero.accx\n\tee.vmulas.s8.accx.ld.ip q0, %[wa], 16, q0, q4\n\t"               \
                     "max %[pv], %[pv], %[t1]\n\trur.accx_0 %[t1]\n\tmax %[pv], %[pv], %[t1]\n\t"      \
                     "add %[pv], %[pv], %[ka]"                                                          \
                     : [wa] "+r"(w), [pv] "=&r"(pv), [t1] "=&r"(t1_) : [ka] "r"(corr) : "memory");         \
  } while (0)
#define TFR_STEM_RUN(s, w, pv, corr, scale, bias, dst, dstep, n)                                        \
  do {                                                                                                  \
    int32_t t0_, t1_;                                                                                   \
    float f0_;                                                                                          \
    __asm__ volatile("sub %[da], %[da], %[ds]\n\tloopgtz %[na], 1f\n\t"                                   \
                     "ee.zero.accx\n\tee.vmulas.s8.accx q0, q1\n\tfloat.s %[f0], %[pv], 0\n\t"         \
                     "rur.accx_0 %[t0]\n\t"                                                              \
                     "ee.zero.accx\n\tee.vmulas.s8.accx q0, q2\n\tadd %[da], %[da], %[ds]\n\t"          \
                     "rur.accx_0 %[t1]\n\t"                                                              \
                     "mul.s %[f0], %[f0], %[fs]\n\t"                                                      \
                     "ee.zero.accx\n\tee.vmulas.s8.accx q0, q3\n\tmax %[t0], %[t0], %[t1]\n\t"         \
                     "rur.accx_0 %[t1]\n\tadd.s %[f0], %[f0], %[fb]\n\t"                                 \
                     "ee.zero.accx\n\tee.vmulas.s8.accx.ld.ip q0, %[wa], 16, q0, q4\n\t"               \
                     "max %[t0], %[t0], %[t1]\n\trur.accx_0 %[t1]\n\tssi %[f0], %[da], 0\n\t"          \
                     "max %[t0], %[t0], %[t1]\n\tadd %[pv], %[t0], %[ka]\n"                             \
                     "1:\n\tadd %[da], %[da], %[ds]"                                                      \
                     : [wa] "+r"(w), [pv] "+r"(pv), [da] "+r"(dst), [t0] "=&r"(t0_), [t1] "=&r"(t1_),     \
                       [f0] "=&f"(f0_)                                                                  \
                     : [ka] "r"(corr), [fs] "f"(scale), [fb] "f"(bias), [ds] "r"((dstep) * 4), [na] "r"(n) \
                     : "memory");                                                                       \
  } while (0)
#else
#define TFR_STEM_FRAMES(s, f)                                                                   \
  (tfr_pie_vld(&(s), 1, &(f), 16), tfr_pie_vld(&(s), 2, &(f), 16), tfr_pie_vld(&(s), 3, &(f), 16), \
   tfr_pie_vld(&(s), 4, &(f), 16))
/* the integer part of one window: the largest of its four convs (window in q0, the next loaded) */
TFR_KERNEL int32_t stem_conv_max(tfr_pie *s, const int8_t **w) {
  int32_t t0, t1;
  s->accx = 0;
  tfr_pie_vmulas(s, 0, 1);
  t0 = TFR_PIE_RUR(*s);
  s->accx = 0;
  tfr_pie_vmulas(s, 0, 2);
  t1 = TFR_PIE_RUR(*s);
  s->accx = 0;
  tfr_pie_vmulas(s, 0, 3);
  t0 = t1 > t0 ? t1 : t0;
  t1 = TFR_PIE_RUR(*s);
  s->accx = 0;
  tfr_pie_mac(s, 0, w, 16, 0, 4);
  t0 = t1 > t0 ? t1 : t0;
  t1 = TFR_PIE_RUR(*s);
  return t1 > t0 ? t1 : t0;
}
#define TFR_STEM_HEAD(s, w, pv, corr) (tfr_pie_vld(&(s), 0, &(w), 16), (pv) = stem_conv_max(&(s), &(w)) + (corr))
#define TFR_STEM_RUN(s, w, pv, corr, scale, bias, dst, dstep, n)   \
  for (int i_ = 0; i_ < (n); i_++) {                                \
    const float f_ = (scale) * (float)(pv);                         \
    const int32_t t_ = stem_conv_max(&(s), &(w)) + (corr);           \
    *(dst) = f_ + (bias);                                           \
    (dst) += (dstep);                                               \
    (pv) = t_;                                                      \
  }
#endif

void tfr_op_stem_conv_pool_i8(const uint8_t *face, const int8_t *q, const float *scale, const float *bias,
                              int cout, void *scratch, float *out) {
  uint8_t *base = (uint8_t *)scratch + ((16u - ((uintptr_t)scratch & 15u)) & 15u);
  int8_t *win = (int8_t *)base, *frames = win + 576 * 16;
  tfr_pie s;
  int o, t, d;
  stem_windows(face, (uint8_t *)(frames + 64 * cout), (uint32_t *)(void *)win);
  /* each output's 3x3 weights at the four offsets of a 4x4 frame: conv (dy, dx) of a window */
  memset(frames, 0, (size_t)64 * cout);
  for (o = 0; o < cout; o++) {
    for (d = 0; d < 4; d++) {
      for (t = 0; t < 9; t++) frames[o * 64 + d * 16 + (t / 3 + d / 2) * 4 + t % 3 + d % 2] = q[o * 9 + t];
    }
  }
  TFR_PIE_INIT(s);
  for (o = 0; o < cout; o++) {
    const int8_t *f = frames + o * 64, *w = win;
    const float so = scale[o], bo = bias[o];
    float *dst = out + o;
    int32_t pv, corr = 0;
    /* sum q * pixel = sum q * (pixel - 128) + 128 * sum q */
    for (t = 0; t < 9; t++) corr += 128 * q[o * 9 + t];
    TFR_STEM_FRAMES(s, f);
    TFR_STEM_HEAD(s, w, pv, corr);
    TFR_STEM_RUN(s, w, pv, corr, so, bo, dst, cout, 575); /* windows 1..575 (xtensa-cost: loop) */
    *dst = so * (float)pv + bo;
  }
}
#elif !defined(TFR_USE_SIMD)
/* The reference build (the ESP32-S3's default): the integers summed as integers, one output at a
 * time over every pooled pixel, its nine weights held in registers; a window's four convs two at a
 * time (the two of a row of the window: each pixel of their 3x4 patch loaded once and multiplied
 * into both, 18 integer multiply-adds with no FPU latency), then the largest and the two float32
 * roundings. Integer sums are exact in any order, so the scores are the reference's bit for bit. */
#define TFR_I8_ROW(a, b, r, u, v, t)                    \
  do {                                                  \
    int32_t p_ = (r)[0];                                \
    a += (u) * p_;                                      \
    p_ = (r)[1];                                        \
    a += (v) * p_;                                      \
    b += (u) * p_;                                      \
    p_ = (r)[2];                                        \
    a += (t) * p_;                                      \
    b += (v) * p_;                                      \
    p_ = (r)[3];                                        \
    b += (t) * p_;                                      \
  } while (0)
TFR_SCHED_PRESSURE void tfr_op_stem_conv_pool_i8(const uint8_t *face, const int8_t *q, const float *scale,
                                                 const float *bias, int cout, void *scratch, float *out) {
  uint8_t *pad = (uint8_t *)scratch; /* the face with a zero border, XS x XS bytes */
  int o, y, x;
  stem_bordered(face, pad, XS);
  for (o = 0; o < cout; o++) {
    const int8_t *wq = q + o * 9;
    const int32_t w0 = wq[0], w1 = wq[1], w2 = wq[2], w3 = wq[3], w4 = wq[4], w5 = wq[5], w6 = wq[6], w7 = wq[7],
                  w8 = wq[8];
    const float so = scale[o], bo = bias[o];
    float *dst = out + o;
    for (y = 0; y < 24; y++) {
      const uint8_t *r = pad + 2 * y * XS;
      for (x = 0; x < 24; x++, r += 2, dst += cout) {
        int32_t a = 0, b = 0, c = 0, d = 0, m;
        TFR_I8_ROW(a, b, r, w0, w1, w2);
        TFR_I8_ROW(a, b, r + XS, w3, w4, w5);
        TFR_I8_ROW(a, b, r + 2 * XS, w6, w7, w8);
        TFR_I8_ROW(c, d, r + XS, w0, w1, w2);
        TFR_I8_ROW(c, d, r + 2 * XS, w3, w4, w5);
        TFR_I8_ROW(c, d, r + 3 * XS, w6, w7, w8);
        m = a > b ? a : b;
        m = c > m ? c : m;
        m = d > m ? d : m;
        *dst = so * (float)m + bo;
      }
    }
  }
}
#else
void tfr_op_stem_conv_pool_i8(const uint8_t *face, const int8_t *q, const float *scale, const float *bias,
                              int cout, void *scratch, float *out) {
  float *xs = (float *)(void *)((uint8_t *)scratch + ((4u - ((uintptr_t)scratch & 3u)) & 3u));
  float *wf = xs + TFR_STEM_XS, *zero = wf + 9 * cout;
  int o, i;
  for (i = 0; i < 9 * cout; i++) wf[i] = (float)q[i];
  for (o = 0; o < cout; o++) zero[o] = 0.0f;
  /* integers through the float kernel: exact (every partial sum is below 2^24 in magnitude) */
  tfr_op_stem_conv_pool(face, 1.0f, wf, zero, cout, xs, out);
  for (i = 0; i < 576; i++, out += cout) {
    for (o = 0; o < cout; o++) out[o] = scale[o] * out[o] + bias[o];
  }
}
#endif
