#include "tfr_ops.h"
#include "tfr_simd.h"

/* One interior pixel: bit j of word k = v[32k+j] >= thr[32k+j] (false for NaN). */
static void pack_pixel(const float *v, int c, const float *thr, uint32_t *p) {
  int k = 0, ch = 0;
#if defined(TFR_USE_SIMD)
  /* 32 channels per word: eight 4-lane compares, each lane's mask selecting its own bit */
  for (; ch + 32 <= c; ch += 32, k++) {
    int j;
#if defined(__wasm_simd128__)
    uint32_t word = 0; /* i32x4.bitmask: the four lane masks as four bits */
    for (j = 0; j < 8; j++)
      word |= (uint32_t)wasm_i32x4_bitmask((v128_t)(tfr_v4f_load(v + ch + 4 * j) >= tfr_v4f_load(thr + ch + 4 * j)))
              << (4 * j);
    p[k] = word;
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
    int j;
    for (j = 0; j < n; j++) word |= (uint32_t)(v[ch + j] >= thr[ch + j]) << j;
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
      } else {
        pack_pixel(in + ((y - 1) * w + (x - 1)) * c, c, thr, p);
      }
    }
  }
}
