#include "tfr_ops.h"

/* The constants of tfr_expf, once for its scalar, four-lane and vector forms (and as
 * src/engine/reference.ts's expf32): log2(e), ln2 split Cody-Waite style (the first part exact in
 * 9 bits) and the degree-7 polynomial 1 + r + r^2/2 + ... + r^7/5040. */
#define TFR_EXP_LOG2E 1.44269502f
#define TFR_EXP_LN2_HI 0.693359375f
#define TFR_EXP_LN2_LO (-2.12194440e-4f)
#define TFR_EXP_P7 1.98412698e-4f /* 1/5040 */
#define TFR_EXP_P6 1.38888889e-3f /* 1/720 */
#define TFR_EXP_P5 8.33333377e-3f /* 1/120 */
#define TFR_EXP_P4 4.16666679e-2f /* 1/24 */
#define TFR_EXP_P3 1.66666672e-1f /* 1/6 */


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
  t = x * TFR_EXP_LOG2E;
  n = (int)(t + (t >= 0.0f ? 0.5f : -0.5f));
  fn = (float)n;
  r = x - fn * TFR_EXP_LN2_HI;
  r = r - fn * TFR_EXP_LN2_LO;
  p = TFR_EXP_P7;
  p = p * r + TFR_EXP_P6;
  p = p * r + TFR_EXP_P5;
  p = p * r + TFR_EXP_P4;
  p = p * r + TFR_EXP_P3;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  s.u = (uint32_t)(n + 127) << 23; /* 2^n, n in [-126, 127] */
  return p * s.f;
}

float tfr_sigmoidf(float x) { return 1.0f / (1.0f + tfr_expf(-x)); }

/* tfr_sigmoidf on four inputs, their tfr_expf chains interleaved (the FPU's latency overlaps).
 * Per lane the same float operations as tfr_expf, except:
 *  - the special cases are decided on the input's bits with masks, not branches: a NaN and an
 *    x below -87 compute on 0 (so the int cast is in range, p = 1), then the scale 2^n is
 *    replaced by +0 below -87 (p * +0: the +0 tfr_expf returns) and by x itself for a NaN
 *    (1 * x: a NaN, so the result is a NaN as tfr_sigmoidf's; no other float result is changed);
 *  - n = (int)(t + (t >= 0 ? 0.5 : -0.5)) is formed as +-(int)(|t| + 0.5), |t| = |x| * log2(e):
 *    rounding is symmetric in sign, so t - 0.5 = -(|t| + 0.5) exactly and n is the same integer
 *    (t = -0 included: n = 0 either way); n is no float result, it feeds fn = (float)n and 2^n.
 * (The masks shift negative int32 values right: arithmetic on every compiler the core supports.) */
typedef union {
  float f;
  uint32_t u;
} tfr_fbits;
#define TFR_SIG_LANE_A(j)                                                                        \
  uint32_t xb##j, sp##j; /* sp: the bits 2^n is replaced by (+0, x) where the mask is set */     \
  int32_t mk##j, sg##j;                                                                          \
  float c##j, ca##j, fn##j, r##j, p##j, e##j;                                                   \
  int n##j;                                                                                      \
  {                                                                                              \
    tfr_fbits in, cv;                                                                            \
    uint32_t ab, cb;                                                                             \
    int32_t nan, tiny;                                                                           \
    in.f = v[j];                                                                                 \
    xb##j = in.u ^ 0x80000000u; /* x = -v[j] */                                                  \
    ab = xb##j & 0x7fffffffu;                                                                    \
    nan = (int32_t)(0x7f800000u - ab) >> 31;                              /* ab > inf */         \
    tiny = ((int32_t)xb##j >> 31) & ((int32_t)(0x42ae0000u - ab) >> 31); /* x < -87 */          \
    cb = (int32_t)xb##j > 0x42b00000 ? 0x42b00000u : xb##j;              /* x > 88: 88 */       \
    mk##j = nan | tiny;                                                                          \
    cb &= ~(uint32_t)mk##j;                                                                      \
    sp##j = xb##j & (uint32_t)nan;                                                               \
    sg##j = (int32_t)cb >> 31;                                                                   \
    cv.u = cb;                                                                                   \
    c##j = cv.f;                                                                                 \
    cv.u = cb & 0x7fffffffu;                                                                     \
    ca##j = cv.f; /* |x| */                                                                      \
  }
#define TFR_SIG_LANE_N(j)                                                                        \
  n##j = (((int)(ca##j * TFR_EXP_LOG2E + 0.5f)) ^ sg##j) - sg##j;                                \
  fn##j = (float)n##j;                                                                           \
  r##j = c##j - fn##j * TFR_EXP_LN2_HI
#define TFR_SIG_LANE_R(j) r##j = r##j - fn##j * TFR_EXP_LN2_LO
#define TFR_SIG_LANE_P0(j) p##j = TFR_EXP_P7 * r##j + TFR_EXP_P6
#define TFR_SIG_LANE_P(j, k) p##j = p##j * r##j + (k)
#define TFR_SIG_LANE_E(j)                                                                        \
  {                                                                                              \
    tfr_fbits sc;                                                                                \
    sc.u = (((uint32_t)(n##j + 127) << 23) & ~(uint32_t)mk##j) | sp##j; /* 2^n, +0 or x */      \
    e##j = p##j * sc.f;                                                                          \
  }
#define TFR_SIG_LANE_S(j) v[j] = 1.0f / (1.0f + e##j)
#define TFR_SIG_4(M) M(0); M(1); M(2); M(3)
#define TFR_SIG_4P(k) TFR_SIG_LANE_P(0, k); TFR_SIG_LANE_P(1, k); TFR_SIG_LANE_P(2, k); TFR_SIG_LANE_P(3, k)

void tfr_sigmoidf_x4(float *v) {
  TFR_SIG_4(TFR_SIG_LANE_A);
  TFR_SIG_4(TFR_SIG_LANE_N);
  TFR_SIG_4(TFR_SIG_LANE_R);
  TFR_SIG_4(TFR_SIG_LANE_P0);
  TFR_SIG_4P(TFR_EXP_P5);
  TFR_SIG_4P(TFR_EXP_P4);
  TFR_SIG_4P(TFR_EXP_P3);
  TFR_SIG_4P(0.5f);
  TFR_SIG_4P(1.0f);
  TFR_SIG_4P(1.0f);
  TFR_SIG_4(TFR_SIG_LANE_E);
  TFR_SIG_4(TFR_SIG_LANE_S);
}

#if defined(TFR_USE_SIMD)
#include "tfr_simd.h"
/* tfr_expf on four lanes: the same operations per lane; the special cases (NaN, below -87)
 * are computed through and selected at the end. */
tfr_v4f tfr_expf4(tfr_v4f x) {
  const tfr_v4i nan = x != x, tiny = x < tfr_v4f_splat(-87.0f);
  tfr_v4f t, fn, r, p, s, half;
  tfr_v4i n;
  x = tfr_v4f_select(x > tfr_v4f_splat(88.0f), tfr_v4f_splat(88.0f), x);
  t = x * tfr_v4f_splat(TFR_EXP_LOG2E);
  half = tfr_v4f_select(t >= tfr_v4f_splat(0.0f), tfr_v4f_splat(0.5f), tfr_v4f_splat(-0.5f));
  /* the lanes where the C cast is out of range (NaN, tiny) are replaced below */
  n = __builtin_convertvector(tfr_v4f_select(nan | tiny, tfr_v4f_splat(0.0f), t + half), tfr_v4i);
  fn = __builtin_convertvector(n, tfr_v4f);
  r = x - fn * tfr_v4f_splat(TFR_EXP_LN2_HI);
  r = r - fn * tfr_v4f_splat(TFR_EXP_LN2_LO);
  p = tfr_v4f_splat(TFR_EXP_P7);
  p = p * r + tfr_v4f_splat(TFR_EXP_P6);
  p = p * r + tfr_v4f_splat(TFR_EXP_P5);
  p = p * r + tfr_v4f_splat(TFR_EXP_P4);
  p = p * r + tfr_v4f_splat(TFR_EXP_P3);
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
