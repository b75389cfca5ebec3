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
