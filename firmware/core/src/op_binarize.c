#include "tfr_ops.h"
#include "tfr_simd.h"

/* Bit j of the result = v[j] >= t[j] (false for NaN), j = 0..3. On the S3 four ole.s
 * ("t <= v", ordered: false for NaN, as v >= t) into the boolean registers b0..b3, read at once
 * with rsr.br (bits 4..15 are other booleans, masked off); GCC alone compares into b0 and moves
 * each result out before the next compare. */
#if defined(TFR_USE_PIE)
/* its instructions, for asm loops too: named operands [v0]..[v3], [t0]..[t3], [m] (the BR bits) */
#define TFR_ASM_GE_MASK4                                                                           \
  "ole.s b0, %[t0], %[v0]\n\tole.s b1, %[t1], %[v1]\n\tole.s b2, %[t2], %[v2]\n\tole.s b3, %[t3], %[v3]\n\t" \
  "rsr.br %[m]\n\t"
#endif
TFR_KERNEL uint32_t ge_mask4(const float *v, const float *t) {
#if defined(TFR_USE_PIE)
  uint32_t bits;
  __asm__(TFR_ASM_GE_MASK4
          : [m] "=r"(bits)
          : [v0] "f"(v[0]), [v1] "f"(v[1]), [v2] "f"(v[2]), [v3] "f"(v[3]), [t0] "f"(t[0]), [t1] "f"(t[1]),
            [t2] "f"(t[2]), [t3] "f"(t[3])
          : "b0"); /* GCC knows b0 alone: b1-b3 hold nothing of its own */
  return bits & 15u;
#else
  /* as a sum of the bits times 1, 2, 4, 8: GCC for Xtensa joins it with addx2/4/8 (with ORs and
   * shifts the reference path's four-channel step is 34 instructions instead of 30) */
  return (uint32_t)(v[0] >= t[0]) + 2u * (uint32_t)(v[1] >= t[1]) + 4u * (uint32_t)(v[2] >= t[2]) +
         8u * (uint32_t)(v[3] >= t[3]);
#endif
}

/* One interior pixel: bit j of word k = v[32k+j] >= thr[32k+j] (false for NaN). */
TFR_KERNEL void pack_pixel(const float *v, int c, const float *thr, uint32_t *p) {
  int k = 0, ch = 0;
#if defined(TFR_USE_SIMD)
  /* 32 channels per word: eight 4-lane compares, each lane's mask selecting its own bit */
  for (; ch + 32 <= c; ch += 32, k++) {
    int j;
#if defined(__wasm_simd128__)
    /* the eight 4-lane masks narrowed to two 16-lane byte masks (order kept), one
     * i8x16.bitmask each: 16 bits per instruction */
    v128_t m[8];
    for (j = 0; j < 8; j++) m[j] = (v128_t)(tfr_v4f_load(v + ch + 4 * j) >= tfr_v4f_load(thr + ch + 4 * j));
    p[k] = (uint32_t)wasm_i8x16_bitmask(wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(m[0], m[1]),
                                                                wasm_i16x8_narrow_i32x4(m[2], m[3]))) |
           ((uint32_t)wasm_i8x16_bitmask(wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(m[4], m[5]),
                                                                 wasm_i16x8_narrow_i32x4(m[6], m[7])))
            << 16);
#else
    tfr_v4u bits = tfr_v4u_splat(0);
    for (j = 0; j < 8; j++) {
      const tfr_v4i ge = tfr_v4f_load(v + ch + 4 * j) >= tfr_v4f_load(thr + ch + 4 * j);
      bits |= (tfr_v4u)ge & ((tfr_v4u){1u, 2u, 4u, 8u} << (uint32_t)(4 * j));
    }
    p[k] = bits[0] | bits[1] | bits[2] | bits[3];
#endif
  }
#endif
  for (; ch < c; ch += 32, k++) {
    const int n = c - ch < 32 ? c - ch : 32;
    uint32_t word = 0;
    int j = 0;
#if defined(TFR_USE_SIMD)
    /* the last, partial word: four channels per compare */
    for (; j + 4 <= n; j += 4) {
      const tfr_v4i ge = tfr_v4f_load(v + ch + j) >= tfr_v4f_load(thr + ch + j);
#if defined(__wasm_simd128__)
      word |= (uint32_t)wasm_i32x4_bitmask((v128_t)ge) << j;
#else
      const tfr_v4u b = (tfr_v4u)ge & (tfr_v4u){1u, 2u, 4u, 8u};
      word |= (b[0] | b[1] | b[2] | b[3]) << j;
#endif
    }
#endif
    /* four compares per step as one nibble (ge_mask4), one variable shift */
    for (; j + 4 <= n; j += 4) {
      const uint32_t nib = ge_mask4(v + ch + j, thr + ch + j);
      word |= nib << j;
    }
    for (; j < n; j++) word |= (uint32_t)(v[ch + j] >= thr[ch + j]) << j;
    p[k] = word;
  }
}

void tfr_op_binarize_pack(const float *in, int h, int w, int c, const float *thr, uint32_t *packed) {
  const int words = TFR_WORDS(c);
  const int wp = w + 2, hp = h + 2;
  int y, x, k;
  for (y = 0; y < hp; y++) {
    for (x = 0; x < wp; x++) {
      uint32_t *p = packed + (y * wp + x) * words;
      if (y == 0 || x == 0 || y == hp - 1 || x == wp - 1) {
        /* +1 padding: every real channel bit set, bits past c clear. */
        for (k = 0; k < words; k++) {
          const int n = c - 32 * k;
          p[k] = n >= 32 ? 0xFFFFFFFFu : ((1u << n) - 1u);
        }
      } else if (c == 32) {
        /* interior run of the row, one word per pixel (the compiler keeps thr in registers) */
        for (; x < wp - 1; x++) pack_pixel(in + ((y - 1) * w + (x - 1)) * 32, 32, thr, packed + y * wp + x);
        x--;
      } else {
        pack_pixel(in + ((y - 1) * w + (x - 1)) * c, c, thr, p);
      }
    }
  }
}

#if defined(TFR_USE_INT8_DOT)
#include <string.h>

#include "tfr_pie.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the byte path's +-1 nibble table assumes little-endian words"
#endif
/* tfr_pm1x4[v]: bits 0..3 of v as four bytes +1 (0x01) / -1 (0xFF), bit j in byte j */
#define TFR_PM1B(v, j) ((((v) >> (j)) & 1) ? 0x01u : 0xFFu)
#define TFR_PM1X4(v) (TFR_PM1B(v, 0) | TFR_PM1B(v, 1) << 8 | TFR_PM1B(v, 2) << 16 | TFR_PM1B(v, 3) << 24)
static const uint32_t tfr_pm1x4[16] = {TFR_PM1X4(0),  TFR_PM1X4(1),  TFR_PM1X4(2),  TFR_PM1X4(3),
                                TFR_PM1X4(4),  TFR_PM1X4(5),  TFR_PM1X4(6),  TFR_PM1X4(7),
                                TFR_PM1X4(8),  TFR_PM1X4(9),  TFR_PM1X4(10), TFR_PM1X4(11),
                                TFR_PM1X4(12), TFR_PM1X4(13), TFR_PM1X4(14), TFR_PM1X4(15)};


/* One pixel's c bytes of +1 (a border pixel), then its cp - c padding bytes of 0 */
static void border_pixel(int8_t *p, int c, int cp) {
  memset(p, 1, (size_t)c);
  memset(p + c, 0, (size_t)(cp - c));
}

/* Four channels of n pixels: *p4 = tfr_pm1x4[ge_mask4(v, t)], v += c floats, p4 += cp bytes. On the
 * S3 one zero-overhead loop (GCC puts none around inline asm) of ge_mask4's instructions, the
 * table look-up and the store. */
#if defined(TFR_USE_PIE)
#define TFR_BIN4_RUN(v, p4, t, n, c, cp)                                                                  \
  do {                                                                                                    \
    float v0_, v1_, v2_, v3_;                                                                             \
    uint32_t m_;                                                                                          \
    __asm__ volatile("loopgtz %[cnt], 1f\n\t"                                                               \
                     "lsi %[v0], %[va], 0\n\tlsi %[v1], %[va], 4\n\tlsi %[v2], %[va], 8\n\tlsi %[v3], %[va], 12\n\t" \
                     TFR_ASM_GE_MASK4 "extui %[m], %[m], 0, 4\n\t"                                          \
                     "addx4 %[m], %[m], %[tab]\n\tl32i %[m], %[m], 0\n\tadd %[va], %[va], %[vs]\n\t"            \
                     "s32i %[m], %[p], 0\n\tadd %[p], %[p], %[ps]\n"                                           \
                     "1:"                                                                                 \
                     : [va] "+r"(v), [p] "+r"(p4), [m] "=&r"(m_), [v0] "=&f"(v0_), [v1] "=&f"(v1_),        \
                       [v2] "=&f"(v2_), [v3] "=&f"(v3_)                                                   \
                     : [cnt] "r"(n), [vs] "r"(4 * (c)), [ps] "r"(cp), [tab] "r"(tfr_pm1x4), [t0] "f"((t)[0]), \
                       [t1] "f"((t)[1]), [t2] "f"((t)[2]), [t3] "f"((t)[3])                              \
                     : "b0", "memory"); /* GCC knows b0 alone: b1-b3 hold nothing of its own */           \
  } while (0)
#else
#define TFR_BIN4_RUN(v, p4, t, n, c, cp) \
  for (int x_ = 0; x_ < (n); x_++, (v) += (c), (p4) += (cp) / 4) *(p4) = tfr_pm1x4[ge_mask4(v, t)]
#endif

/* Eight channels of n pixels with PIE's 32-bit lane compares (TFR_USE_PIE; the portable twin of tfr_pie.h
 * elsewhere). A float's bits b read as the signed integer key(b) = b ^ (b < 0 ? 0x7FFFFFFF : 0) are ordered
 * as the floats are (-0 just below +0), and every NaN falls outside [key(-inf), key(+inf)]: v >= t (false
 * for NaN) is key(v) >= kt && key(v) <= key(+inf), with kt = key(t), except key(-0) = -1 for t = +-0 (both
 * zeros pass) and INT32_MAX for a NaN t (nothing passes): bin8_key. Registers: q3 = 0x7FFFFFFF, q4 =
 * key(+inf), q7 = 0x01 bytes (the constants below), q5, q6 = kt of channels k..k+3, k+4..k+7; per pixel
 * q0, q1 = its eight floats (p: 16-byte aligned), their keys, then all-ones lanes where v fails (q2 the
 * sign mask, then the NaN test), the eight lanes narrowed to bytes in order (vunzip.16, vunzip.8: ESP32-S3
 * TRM), | 0x01 (-1 / +1) and stored as 8 bytes; p += 4c bytes, the plane's pointer += cp. One
 * zero-overhead loop on the S3 (SAR = 31 for vsr.32, set in the same statement). */
#define TFR_KEY_INF 0x7F800000
static const int32_t tfr_bin8_const[12] __attribute__((aligned(16))) = {
    0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF, TFR_KEY_INF, TFR_KEY_INF, TFR_KEY_INF, TFR_KEY_INF,
    0x01010101, 0x01010101, 0x01010101, 0x01010101};
TFR_KERNEL int32_t bin8_key(float t) {
  uint32_t b;
  memcpy(&b, &t, 4);
  if (t != t) return INT32_MAX;
  if (t == 0.0f) return -1;
  return (int32_t)(b ^ (b >> 31 ? 0x7FFFFFFFu : 0u));
}
#if defined(TFR_USE_PIE)
#define TFR_BIN8_LOAD(s, kt)                                                                               \
  do {                                                                                                     \
    const int32_t *c_ = tfr_bin8_const, *k_ = (kt);                                                        \
    __asm__ volatile("ee.vld.128.ip q3, %[c], 16\n\tee.vld.128.ip q4, %[c], 16\n\tee.vld.128.ip q7, %[c], 16\n\t" \
                     "ee.vld.128.ip q5, %[k], 16\n\tee.vld.128.ip q6, %[k], 16"                               \
                     : [c] "+r"(c_), [k] "+r"(k_) : : "memory");                                           \
  } while (0)
#define TFR_BIN8_STEP(q, t)                                                                                \
  "ee.vsr.32 q2, " q "\n\tee.andq q2, q2, q3\n\tee.xorq " q ", " q ", q2\n\tee.vcmp.gt.s32 q2, " q ", q4\n\t" \
  "ee.vcmp.lt.s32 " q ", " q ", " t "\n\tee.orq " q ", " q ", q2\n\t"
#define TFR_BIN8_RUN(s, v, p, n, c, cp)                                                                    \
  __asm__ volatile("ssai 31\n\tloopgtz %[cnt], 1f\n\t"                                                     \
                   "ee.vld.128.ip q0, %[va], 16\n\tee.vld.128.xp q1, %[va], %[vs]\n\t"                      \
                   TFR_BIN8_STEP("q0", "q5") TFR_BIN8_STEP("q1", "q6")                                     \
                   "ee.vunzip.16 q0, q1\n\tee.vunzip.8 q0, q1\n\tee.orq q0, q0, q7\n\t"                    \
                   "ee.vst.l.64.xp q0, %[pa], %[ps]\n"                                                     \
                   "1:"                                                                                    \
                   : [va] "+r"(v), [pa] "+r"(p) : [cnt] "r"(n), [vs] "r"(4 * (c) - 16), [ps] "r"(cp) : "memory")
#else
TFR_KERNEL void bin8_load(tfr_pie *s, const int32_t *kt) {
  tfr_pie_put32(s, 3, tfr_bin8_const);
  tfr_pie_put32(s, 4, tfr_bin8_const + 4);
  tfr_pie_put32(s, 7, tfr_bin8_const + 8);
  tfr_pie_put32(s, 5, kt);
  tfr_pie_put32(s, 6, kt + 4);
}
TFR_KERNEL void bin8_step(tfr_pie *s, int q, int t) {
  tfr_pie_vsr32(s, 2, q, 31);
  tfr_pie_logic(s, 2, 2, 3, '&');
  tfr_pie_logic(s, q, q, 2, '^');
  tfr_pie_vcmp32(s, 2, q, 4, 1);
  tfr_pie_vcmp32(s, q, q, t, 0);
  tfr_pie_logic(s, q, q, 2, '|');
}
TFR_KERNEL void bin8_pixel(tfr_pie *s, const float **v, int8_t **p, int c, int cp) {
  tfr_pie_vldf(s, 0, v, 16);
  tfr_pie_vldf(s, 1, v, 4 * c - 16);
  bin8_step(s, 0, 5);
  bin8_step(s, 1, 6);
  tfr_pie_vunzip(s, 0, 1, 2);
  tfr_pie_vunzip(s, 0, 1, 1);
  tfr_pie_logic(s, 0, 0, 7, '|');
  tfr_pie_vstl64(s, 0, p, cp);
}
#define TFR_BIN8_LOAD(s, kt) bin8_load(&(s), kt)
#define TFR_BIN8_RUN(s, v, p, n, c, cp) for (int x_ = 0; x_ < (n); x_++) bin8_pixel(&(s), &(v), &(p), c, cp)
#endif

/* The compares of pack_pixel (v >= thr, false for NaN), each written as a +1 / -1 byte: eight
 * channels per step with the vector compare above where every pixel's floats start on a 16-byte
 * boundary (c a multiple of four, `in` aligned), then four per step as one 4-bit mask and one
 * 32-bit store of its tfr_pm1x4 entry (the plane is 16-byte aligned and cp a multiple of 16, so
 * p + k is 4-byte aligned for k a multiple of 4), then one at a time. A group of channels at a
 * time over every pixel, their thresholds held in registers; the border is written apart from the
 * interior, whose pixels then need no test. */
void tfr_op_binarize_i8(const float *in, int h, int w, int c, const float *thr, int8_t *plane) {
  const int cp = TFR_I8C(c), wp = w + 2, hp = h + 2, c4 = c & ~3;
  int y, x, k;
  for (x = 0; x < wp; x++) {
    border_pixel(plane + x * cp, c, cp);
    border_pixel(plane + ((hp - 1) * wp + x) * cp, c, cp);
  }
  for (y = 1; y < hp - 1; y++) {
    border_pixel(plane + y * wp * cp, c, cp);
    border_pixel(plane + (y * wp + wp - 1) * cp, c, cp);
  }
  k = 0;
  if (c % 4 == 0 && ((uintptr_t)in & 15u) == 0) {
    /* eight channels at a time where every pixel's floats start on a 16-byte boundary */
    tfr_pie s;
    int32_t kt[8] __attribute__((aligned(16)));
    TFR_PIE_INIT(s);
    for (; k + 8 <= c; k += 8) {
      for (x = 0; x < 8; x++) kt[x] = bin8_key(thr[k + x]);
      TFR_BIN8_LOAD(s, kt);
      for (y = 0; y < h; y++) {
        const float *v = in + y * w * c + k;
        int8_t *p = plane + ((y + 1) * wp + 1) * cp + k;
        TFR_BIN8_RUN(s, v, p, w, c, cp); /* a row's pixels (xtensa-cost: loop) */
      }
    }
  }
  for (; k < c4; k += 4) {
    const float t[4] = {thr[k], thr[k + 1], thr[k + 2], thr[k + 3]};
    for (y = 0; y < h; y++) {
      const float *v = in + y * w * c + k;
      uint32_t *p4 = (uint32_t *)(void *)(plane + ((y + 1) * wp + 1) * cp + k);
      TFR_BIN4_RUN(v, p4, t, w, c, cp); /* a row's pixels (xtensa-cost: loop) */
    }
  }
  if (c4 < cp) {
    /* the last c % 4 channels and the padding channels */
    for (y = 0; y < h; y++) {
      const float *v = in + y * w * c;
      int8_t *p = plane + ((y + 1) * wp + 1) * cp;
      for (x = 0; x < w; x++, p += cp, v += c) {
        for (k = c4; k < c; k++) p[k] = v[k] >= thr[k] ? 1 : -1;
        for (; k < cp; k++) p[k] = 0;
      }
    }
  }
}
#endif
