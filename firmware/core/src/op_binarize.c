#include "tfr_ops.h"
#include "tfr_simd.h"

/* One interior pixel: bit j of word k = v[32k+j] >= thr[32k+j] (false for NaN). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline void pack_pixel(const float *v, int c, const float *thr, uint32_t *p) {
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

/* The compares of pack_pixel (v >= thr, false for NaN), each written straight as a +1 / -1
 * byte, four channels per loop step. */
void tfr_op_binarize_i8(const float *in, int h, int w, int c, const float *thr, int8_t *plane) {
  const int cp = TFR_I8C(c), wp = w + 2, hp = h + 2;
  int y, x, k;
  for (y = 0; y < hp; y++) {
    for (x = 0; x < wp; x++) {
      int8_t *p = plane + (y * wp + x) * cp;
      if (y == 0 || x == 0 || y == hp - 1 || x == wp - 1) {
        for (k = 0; k < c; k++) p[k] = 1; /* +1 padding */
      } else {
        const float *v = in + ((y - 1) * w + (x - 1)) * c;
        for (k = 0; k + 4 <= c; k += 4) {
          p[k] = v[k] >= thr[k] ? 1 : -1;
          p[k + 1] = v[k + 1] >= thr[k + 1] ? 1 : -1;
          p[k + 2] = v[k + 2] >= thr[k + 2] ? 1 : -1;
          p[k + 3] = v[k + 3] >= thr[k + 3] ? 1 : -1;
        }
        for (; k < c; k++) p[k] = v[k] >= thr[k] ? 1 : -1;
      }
      for (k = c; k < cp; k++) p[k] = 0;
    }
  }
}
#endif
