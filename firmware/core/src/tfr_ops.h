/*
 * TinyFER ops: one op per file, plain float32 reference kernels (channels-last, HWC).
 * Every op's exact semantics and summation order are those of src/model/folded.ts as
 * mirrored by src/engine/reference.ts, so that host, wasm and TS agree bit for bit
 * (compile without -ffast-math and with -ffp-contract=off).
 */
#ifndef TINYFER_OPS_H
#define TINYFER_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A small kernel the compilers must inline (its constant arguments then specialise it). */
#if defined(__GNUC__) || defined(__clang__)
#define TFR_KERNEL static inline __attribute__((always_inline))
#else
#define TFR_KERNEL static inline
#endif

/* GCC 12.2 for Xtensa schedules a long straight run's loads and products ahead of their uses
 * before register allocation and then spills (the shortcut's pair loop: 110 instructions instead
 * of 93; the reference build's int8 stem: 172 per window instead of 124); pressure-aware
 * scheduling (-fsched-pressure), for the functions that need it, keeps their values in registers. */
#if defined(__XTENSA__) && defined(__GNUC__) && !defined(__clang__)
#define TFR_SCHED_PRESSURE __attribute__((optimize("sched-pressure")))
#else
#define TFR_SCHED_PRESSURE
#endif

/* Words of 32 bits that hold the activation bits of one pixel with `c` channels. */
#define TFR_WORDS(c) (((c) + 31) / 32)

/* ---- math (tfr_math.c) ---- */
/* exp(x) in float32, Cody-Waite reduction + degree 7 polynomial; the same operations as
 * expf32() in src/engine/reference.ts. 0 below -87, clamped at 88. */
float tfr_expf(float x);
/* 1 / (1 + tfr_expf(-x)) */
float tfr_sigmoidf(float x);
/* v[j] = tfr_sigmoidf(v[j]) for j = 0..3, bit for bit: four interleaved chains */
void tfr_sigmoidf_x4(float *v);

/* Running maxima of four independent chains: mj = vj > mj ? vj : mj (j = 0..3; a NaN v never
 * replaces m, as in the TS reference's `if (v > m) m = v`). In the opt-in PIE build (TFR_USE_PIE:
 * Xtensa, whose assembly is checked in the listing, never run here) four compares into four
 * boolean registers, then four conditional moves (olt.s b, m, v is "m < v, ordered"), so the
 * compares overlap instead of each move waiting on b0: GCC branches, or moves on b0 alone. b1-b3
 * are bits of the same BR register as GCC's b0 (saved and restored with it) and hold nothing of
 * GCC's. The reference path (the default firmware build) stays the plain C the host tests run.
 * Every argument is a plain float variable (an lvalue for m). */
#if defined(TFR_USE_PIE)
/* Its instructions, for asm loops too: named operands [m0]..[m3] (read and written), [v0]..[v3]. */
#define TFR_ASM_MAX4                                                                                \
  "olt.s b0, %[m0], %[v0]\n\tolt.s b1, %[m1], %[v1]\n\tolt.s b2, %[m2], %[v2]\n\tolt.s b3, %[m3], %[v3]\n\t" \
  "movt.s %[m0], %[v0], b0\n\tmovt.s %[m1], %[v1], b1\n\tmovt.s %[m2], %[v2], b2\n\tmovt.s %[m3], %[v3], b3\n\t"
#define TFR_MAX4(M0, M1, M2, M3, V0, V1, V2, V3)                                                    \
  __asm__(TFR_ASM_MAX4 : [m0] "+f"(M0), [m1] "+f"(M1), [m2] "+f"(M2), [m3] "+f"(M3)                \
          : [v0] "f"(V0), [v1] "f"(V1), [v2] "f"(V2), [v3] "f"(V3)                                  \
          : "b0")
/* tfr_sum_max4's arithmetic for asm loops: sj = sj + vj, then TFR_ASM_MAX4; the operands as
 * TFR_ASM_SUM_MAX4_OPS gives them ([v0]..[v3] scratch: the loop loads them) */
#define TFR_ASM_SUM_MAX4                                                                            \
  "add.s %[s0], %[s0], %[v0]\n\tadd.s %[s1], %[s1], %[v1]\n\t"                                     \
  "add.s %[s2], %[s2], %[v2]\n\tadd.s %[s3], %[s3], %[v3]\n\t" TFR_ASM_MAX4
#define TFR_ASM_SUM_MAX4_OPS(S0, S1, S2, S3, M0, M1, M2, M3, V0, V1, V2, V3)                        \
  [s0] "+f"(S0), [s1] "+f"(S1), [s2] "+f"(S2), [s3] "+f"(S3), [m0] "+f"(M0), [m1] "+f"(M1),        \
      [m2] "+f"(M2), [m3] "+f"(M3), [v0] "=&f"(V0), [v1] "=&f"(V1), [v2] "=&f"(V2), [v3] "=&f"(V3)
#else
#define TFR_MAX4(m0, m1, m2, m3, v0, v1, v2, v3)                               \
  do {                                                                         \
    if ((v0) > (m0)) (m0) = (v0);                                              \
    if ((v1) > (m1)) (m1) = (v1);                                              \
    if ((v2) > (m2)) (m2) = (v2);                                              \
    if ((v3) > (m3)) (m3) = (v3);                                              \
  } while (0)
#endif

/* Four running sums and maxima over the values p[0], p[stride], p[2 stride], p[3 stride]:
 * sj = sj + vj, then TFR_MAX4 (the CBAM channel and spatial pooling's step). */
TFR_KERNEL void tfr_sum_max4(const float *p, int stride, float *s0, float *s1, float *s2, float *s3, float *m0,
                             float *m1, float *m2, float *m3) {
  const float v0 = p[0], v1 = p[stride], v2 = p[2 * stride], v3 = p[3 * stride];
  *s0 = *s0 + v0;
  *s1 = *s1 + v1;
  *s2 = *s2 + v2;
  *s3 = *s3 + v3;
  TFR_MAX4(*m0, *m1, *m2, *m3, v0, v1, v2, v3);
}

/* Fast-path macros (the reference path, none of them, is always built and tested too):
 *   TFR_USE_BUILTIN_POPCOUNT  compiler popcount (x86 -mpopcnt, wasm i32.popcnt)
 *   TFR_USE_64BIT_WORDS       binary conv XORs two 32-bit words at a time (64-bit hosts; GCC/clang)
 *   TFR_USE_INT8_DOT          binary convs of up to TFR_I8_MAX_CIN input channels as +-1 byte dot
 *                             products over a byte plane instead of XOR + popcount over bits (the
 *                             ESP32-S3 path: with TFR_USE_PIE the dot products are the S3's 128-bit
 *                             PIE multiply-accumulates; without it portable C, what the host tests) */
#if defined(TFR_USE_PIE) && !defined(TFR_USE_INT8_DOT)
#error "TFR_USE_PIE needs TFR_USE_INT8_DOT"
#endif
#if defined(TFR_USE_PIE) && !(defined(__XTENSA__) && defined(__GNUC__))
#error "TFR_USE_PIE is the ESP32-S3's PIE (Xtensa, GCC): the host builds TFR_USE_INT8_DOT alone"
#endif
#if defined(TFR_USE_64BIT_WORDS) && !(defined(__GNUC__) || defined(__clang__))
#error "TFR_USE_64BIT_WORDS needs __builtin_popcountll (GCC or clang)"
#endif

static inline uint32_t tfr_popcount32(uint32_t v) {
#if defined(TFR_USE_BUILTIN_POPCOUNT) && (defined(__GNUC__) || defined(__clang__))
  return (uint32_t)__builtin_popcount(v);
#else
  /* Portable SWAR popcount: 32-bit only, no lookup table. */
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0F0F0F0Fu;
  return (v * 0x01010101u) >> 24;
#endif
}

/* q[j] = q[j] * fj, j = 0..7: eight independent products through one pointer, all loaded before
 * any is stored (the CBAM ops' channel and spatial scaling). */
TFR_KERNEL void tfr_mul8(float *q, float f0, float f1, float f2, float f3, float f4, float f5, float f6,
                            float f7) {
  const float v0 = q[0] * f0, v1 = q[1] * f1, v2 = q[2] * f2, v3 = q[3] * f3;
  const float v4 = q[4] * f4, v5 = q[5] * f5, v6 = q[6] * f6, v7 = q[7] * f7;
  q[0] = v0;
  q[1] = v1;
  q[2] = v2;
  q[3] = v3;
  q[4] = v4;
  q[5] = v5;
  q[6] = v6;
  q[7] = v7;
}

/* ---- op_stem_conv.c ----
 * Rows y0..y0+nrows-1 of the 48x48 stem conv: x = pixel * input_scale, 3x3 zero 'same'
 * padding, out[r][x][o] = sum_{ky,kx} w[o][ky][kx] * x + b[o] (taps outside skipped). */
void tfr_op_stem_conv_rows(const uint8_t *face, float input_scale, const float *weight,
                           const float *bias, int cout, int y0, int nrows, float *out);

/* ---- op_stem_conv.c ----
 * The stem conv fused with the 2x2 max-pool and the bias: out[py][px][o] =
 * max over the 2x2 window of (sum_t w[o][t] * x) + b[o], 24x24xcout. The same scores as
 * tfr_op_stem_conv_rows + tfr_op_maxpool2x2 bit for bit: rounding is monotonic, so adding the
 * bias after the max gives the max of the biased values; the zero padding adds w * 0 terms to
 * sums that are never -0 (they start at +0), which leaves them unchanged.
 * xs: scratch for TFR_STEM_XS floats (the scaled face with its zero border). */
#define TFR_STEM_XS (50 * 50)
void tfr_op_stem_conv_pool(const uint8_t *face, float input_scale, const float *weight,
                           const float *bias, int cout, float *xs, float *out);

/* ---- op_stem_conv.c ----
 * The int8 stem (a blob of format version 2): out[py][px][o] = scale[o] * m + bias[o] (float32, in
 * that order), m = the largest over the 2x2 window of the exact integer sums_t q[o][t] * pixel
 * (raw pixels 0..255, zero padding); no input scale (it is in `scale`). scratch:
 * TFR_STEM_I8_SCRATCH(cout) bytes, any alignment. The reference build sums the integers as
 * integers; the SIMD builds run the float kernel above on them (every partial sum is an integer
 * below 2^24, exact in float32); with TFR_USE_INT8_DOT, each 2x2 window's 4x4 pixels are one 16-byte vector and each of its four
 * convs one 16-byte dot product (the ESP32-S3's PIE, or its portable twin). */
#if defined(TFR_USE_INT8_DOT)
/* alignment, the 576 window vectors, the conv weights framed in 4x4 (64 bytes per output), the
 * zero-bordered face's two copies the windows are cut from (2 x 50 x 52 bytes) */
#define TFR_STEM_I8_SCRATCH(cout) (16u + 576u * 16u + 64u * (size_t)(cout) + 2u * 50u * 52u)
#else
/* alignment, the padded face, the weights as floats, zero biases */
#define TFR_STEM_I8_SCRATCH(cout) (4u + 4u * (TFR_STEM_XS + 10u * (size_t)(cout)))
#endif
void tfr_op_stem_conv_pool_i8(const uint8_t *face, const int8_t *q, const float *scale, const float *bias,
                              int cout, void *scratch, float *out);

/* ---- op_maxpool.c ---- 2x2 max-pool, stride 2: [h][w][c] -> [h/2][w/2][c]. */
void tfr_op_maxpool2x2(const float *in, int h, int w, int c, float *out);

/* ---- op_binarize.c ----
 * Sign with learnt threshold + bit packing into the (h+2)x(w+2) plane padded with +1:
 * packed[(y+1)][(x+1)][k] bit j = in[y][x][32k+j] >= thr[32k+j]; border pixels have every
 * channel bit set; bits past c are 0. */
void tfr_op_binarize_pack(const float *in, int h, int w, int c, const float *thr, uint32_t *packed);

/* ---- op_binary_conv.c ----
 * 3x3 XNOR/popcount conv over the packed padded plane (input h x w unpadded), stride 1|2:
 * conv = 9*cin - 2*popcount(a ^ w) (exact integer), main = scale[o] * conv + bias[o];
 * out = main (accumulate 0) or main + out (accumulate 1, the shortcut already in out), then,
 * when prelu is not NULL, PReLU in place: out = out >= 0 ? out : prelu[o] * out (fused
 * tfr_op_prelu, the same operations per element). */
void tfr_op_binary_conv(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                        const uint32_t *weight_bits, const float *scale, const float *bias,
                        int accumulate, const float *prelu, float *out);

#if defined(TFR_USE_INT8_DOT)
/* ---- op_binarize.c / op_binary_conv.c, byte path (TFR_USE_INT8_DOT) ----
 * The plane holds one signed byte per channel instead of one bit: [(h+2)][(w+2)][TFR_I8C(c)],
 * +1 where in >= thr, -1 below (and for NaN), the border +1, the padding channels c..TFR_I8C(c)-1
 * 0 everywhere; its base must be 16-byte aligned (PIE loads). The conv is then the +-1 dot product
 * of the window with the weights expanded to bytes, the same exact integer as 9*cin - 2*popcount,
 * so the floats that follow are those of tfr_op_binary_conv bit for bit. Layers with more input
 * channels than TFR_I8_MAX_CIN keep the bit path. */
#define TFR_I8_MAX_CIN 256
#define TFR_I8C(c) (((c) + 15) & ~15)
static inline int tfr_i8_layer(int cin) { return cin <= TFR_I8_MAX_CIN; }
void tfr_op_binarize_i8(const float *in, int h, int w, int c, const float *thr, int8_t *plane);
void tfr_op_binary_conv_i8(const int8_t *plane, int h, int w, int cin, int cout, int stride,
                           const uint32_t *weight_bits, const float *scale, const float *bias,
                           int accumulate, const float *prelu, float *out);
#endif

#if defined(TFR_USE_CONV_LUT)
/* ---- op_binary_conv.c, table look-up path (TFR_USE_CONV_LUT; needs TFR_USE_SIMD) ----
 * The same results as tfr_op_binary_conv, bit for bit, from a table built once per layer:
 * tfr_conv_lut_bytes(cin, cout) bytes, filled by tfr_conv_lut_build from the weight bits. */
size_t tfr_conv_lut_bytes(int cin, int cout);
void tfr_conv_lut_build(const uint32_t *weight_bits, int cin, int cout, uint8_t *lut);
void tfr_op_binary_conv_lut(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                            const uint8_t *lut, const float *scale, const float *bias, int accumulate,
                            const float *prelu, float *out);
#endif

/* ---- op_shortcut.c ----
 * Projected shortcut: out[y][x][o] = (sum_c sw[o][c] * avgpool2x2(in)[y][x][c]) + sb[o];
 * pooled is scratch for cin floats. out may be in itself when cout <= 2 * cin (in place). */
void tfr_op_shortcut_proj(const float *in, int h, int w, int cin, int cout, const float *sw,
                          const float *sb, float *pooled, float *out);

/* ---- op_prelu.c ---- x = x >= 0 ? x : slope[c] * x, in place over n pixels of c channels. */
void tfr_op_prelu(float *x, int n, int c, const float *slope);

/* ---- op_cbam_channel.c ----
 * The channel attention's factors f[k] = sigmoid(mlp(avg_k) + mlp(max_k)) over hw pixels of c
 * channels (x is only read; the spatial op applies them); scratch: TFR_CBAM_CHANNEL_SCRATCH
 * floats, f (c floats) outside it. */
#define TFR_CBAM_CHANNEL_SCRATCH(c, hidden) (3 * (c) + (hidden))
void tfr_op_cbam_factors(const float *x, int hw, int c, int hidden, const float *w1, const float *b1,
                         const float *w2, const float *b2, float *scratch, float *f);

/* ---- op_cbam_spatial.c ----
 * The channel attention's factors chan, then the spatial attention, in place over h x w pixels of c
 * channels: x[i][k] * chan[k] (in the pass of the channel statistics where the build has no
 * vectors), then the spatial map's products; scratch: TFR_CBAM_SPATIAL_SCRATCH(h, w) floats (mean
 * and max planes with a 3-pixel border, the map), chan outside it. */
#define TFR_CBAM_SPATIAL_SCRATCH(h, w) (2 * ((h) + 6) * ((w) + 6) + (h) * (w))
void tfr_op_cbam_spatial(float *x, int h, int w, int c, const float *chan, const float *sw, float sb,
                         float *scratch);
/* A CBAM block's scratch in floats: the two ops' (they run one after the other), then the factors
 * from TFR_CBAM_FACTORS_AT on */
#define TFR_CBAM_FACTORS_AT(h, w, c, hidden)                                                   \
  (TFR_CBAM_CHANNEL_SCRATCH(c, hidden) > TFR_CBAM_SPATIAL_SCRATCH(h, w) ? TFR_CBAM_CHANNEL_SCRATCH(c, hidden) \
                                                                         : TFR_CBAM_SPATIAL_SCRATCH(h, w))

/* ---- op_gap.c ---- global average pooling: out[c] = (sum over hw pixels) / hw. */
void tfr_op_gap(const float *in, int hw, int c, float *out);
/* The grid head's features (src/model/folded.ts): the side x side x c plane averaged over g x g
 * regions (side % g == 0; each summed row by row, then divided by its pixel count), each
 * region's c averages reduced by reduce [k][c] (no bias): out[(i * g + j) * k + q]. avg: c
 * floats of scratch. */
void tfr_op_grid_head(const float *in, int side, int c, int g, int k, const float *reduce, float *avg,
                      float *out);

/* ---- op_dense.c ---- out[o] = (sum_i w[o][i] * in[i]) + b[o]; b NULL: no bias. */
void tfr_op_dense(const float *in, int nin, int nout, const float *w, const float *b, float *out);

/* ---- op_softmax.c ---- out = exp(in - max) / sum. */
void tfr_op_softmax(const float *in, int n, float *out);

#ifdef __cplusplus
}
#endif
#endif /* TINYFER_OPS_H */
