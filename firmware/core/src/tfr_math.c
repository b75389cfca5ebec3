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
