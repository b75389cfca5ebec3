#include "tfr_ops.h"

float tfr_expf(float x) {
  union {
    uint32_t u;
    float f;
  } s;
  float t, fn, r, p;
  int n;
  if (x != x) return x; /* NaN */
  if (x < -87.0f) return 0.0f;
  if (x > 88.0f) x = 88.0f;
  t = x * 1.44269502f; /* log2(e) */
  n = (int)(t + (t >= 0.0f ? 0.5f : -0.5f));
  fn = (float)n;
  /* Cody-Waite: ln2 = 0.693359375 - 2.12194440e-4, the first part exact in 9 bits. */
  r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  p = 1.98412698e-4f; /* 1/5040 */
  p = p * r + 1.38888889e-3f; /* 1/720 */
  p = p * r + 8.33333377e-3f; /* 1/120 */
  p = p * r + 4.16666679e-2f; /* 1/24 */
  p = p * r + 1.66666672e-1f; /* 1/6 */
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  s.u = (uint32_t)(n + 127) << 23; /* 2^n, n in [-126, 127] */
  return p * s.f;
}

float tfr_sigmoidf(float x) { return 1.0f / (1.0f + tfr_expf(-x)); }

#if defined(TFR_USE_SIMD)
#include "tfr_simd.h"
/* tfr_expf on four lanes: the same operations per lane; the special cases (NaN, below -87)
 * are computed through and selected at the end. */
tfr_v4f tfr_expf4(tfr_v4f x) {
  const tfr_v4i nan = x != x, tiny = x < tfr_v4f_splat(-87.0f);
  tfr_v4f t, fn, r, p, s, half;
  tfr_v4i n;
  x = tfr_v4f_select(x > tfr_v4f_splat(88.0f), tfr_v4f_splat(88.0f), x);
  t = x * tfr_v4f_splat(1.44269502f);
  half = tfr_v4f_select(t >= tfr_v4f_splat(0.0f), tfr_v4f_splat(0.5f), tfr_v4f_splat(-0.5f));
  /* the lanes where the C cast is out of range (NaN, tiny) are replaced below */
  n = __builtin_convertvector(tfr_v4f_select(nan | tiny, tfr_v4f_splat(0.0f), t + half), tfr_v4i);
  fn = __builtin_convertvector(n, tfr_v4f);
  r = x - fn * tfr_v4f_splat(0.693359375f);
  r = r - fn * tfr_v4f_splat(-2.12194440e-4f);
  p = tfr_v4f_splat(1.98412698e-4f);
  p = p * r + tfr_v4f_splat(1.38888889e-3f);
  p = p * r + tfr_v4f_splat(8.33333377e-3f);
  p = p * r + tfr_v4f_splat(4.16666679e-2f);
  p = p * r + tfr_v4f_splat(1.66666672e-1f);
  p = p * r + tfr_v4f_splat(0.5f);
  p = p * r + tfr_v4f_splat(1.0f);
  p = p * r + tfr_v4f_splat(1.0f);
  s = (tfr_v4f)((n + tfr_v4i_splat(127)) << 23);
  p = p * s;
  p = tfr_v4f_select(tiny, tfr_v4f_splat(0.0f), p);
  return tfr_v4f_select(nan, x, p);
}

tfr_v4f tfr_sigmoidf4(tfr_v4f x) {
  const tfr_v4f one = tfr_v4f_splat(1.0f);
  return one / (one + tfr_expf4(-x));
}
#endif
