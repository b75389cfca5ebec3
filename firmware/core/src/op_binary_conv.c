#include "tfr_ops.h"
#include "tfr_simd.h"
#include "tfr_pie.h"

#include <string.h>

/* Popcount of the three words of one kernel row, a[k] ^ b[k] for k = 0..2 (one word per tap).
 * Portable path: the 2-bit and 4-bit SWAR steps per word, then one byte fold for all three
 * (a nibble holds at most 12, a byte at most 24, the total at most 96). */
TFR_KERNEL uint32_t popcount_row3(const uint32_t *a, const uint32_t *b) {
#if defined(TFR_USE_BUILTIN_POPCOUNT)
  return tfr_popcount32(a[0] ^ b[0]) + tfr_popcount32(a[1] ^ b[1]) + tfr_popcount32(a[2] ^ b[2]);
#else
  uint32_t s = 0, v;
  int k;
  for (k = 0; k < 3; k++) {
    v = a[k] ^ b[k];
    v = v - ((v >> 1) & 0x55555555u);
    s += (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  }
  s = (s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu);
  return (s * 0x01010101u) >> 24;
#endif
}

#if !defined(TFR_USE_BUILTIN_POPCOUNT)
/* Nibble counts of v (each nibble 0..4): the first two SWAR steps. */
TFR_KERNEL uint32_t nibble_counts(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  return (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
}
/* Portable popcount of nine words of a ^ b (at most 288): a carry-save adder tree reduces
 * them to bit planes of weight 1, 2, 4 and 8, which need four SWAR counts instead of nine. */
TFR_KERNEL uint32_t popcount9(const uint32_t *a, const uint32_t *b) {
  const uint32_t x0 = a[0] ^ b[0], x1 = a[1] ^ b[1], x2 = a[2] ^ b[2], x3 = a[3] ^ b[3], x4 = a[4] ^ b[4],
                 x5 = a[5] ^ b[5], x6 = a[6] ^ b[6], x7 = a[7] ^ b[7], x8 = a[8] ^ b[8];
  uint32_t u, s1, c1, s2, c2, s3, c3, ones, c4, t1, f1, twos, f2, fours, eights, lo, hi;
  u = x0 ^ x1; c1 = (x0 & x1) | (u & x2); s1 = u ^ x2;
  u = x3 ^ x4; c2 = (x3 & x4) | (u & x5); s2 = u ^ x5;
  u = x6 ^ x7; c3 = (x6 & x7) | (u & x8); s3 = u ^ x8;
  u = s1 ^ s2; c4 = (s1 & s2) | (u & s3); ones = u ^ s3;
  u = c1 ^ c2; f1 = (c1 & c2) | (u & c3); t1 = u ^ c3;
  twos = t1 ^ c4; f2 = t1 & c4;
  fours = f1 ^ f2; eights = f1 & f2;
  /* per nibble: 2 * twos + ones and 2 * eights + fours, at most 12 each */
  lo = (nibble_counts(twos) << 1) + nibble_counts(ones);
  hi = (nibble_counts(eights) << 1) + nibble_counts(fours);
  lo = (lo & 0x0F0F0F0Fu) + ((lo >> 4) & 0x0F0F0F0Fu); /* per byte, at most 24 */
  hi = (hi & 0x0F0F0F0Fu) + ((hi >> 4) & 0x0F0F0F0Fu);
  lo = (hi << 2) + lo;                 /* per byte, at most 120 */
  lo = (lo & 0x00FF00FFu) + ((lo >> 8) & 0x00FF00FFu);
  return (lo * 0x00010001u) >> 16;
}
#endif

#if defined(TFR_USE_64BIT_WORDS)
/* Optional fast path for 64-bit hosts: popcount of n words of a ^ b, two words per step
 * (unaligned-safe loads through __builtin_memcpy, which becomes a plain 64-bit load). */
TFR_KERNEL uint32_t popcount_words64(const uint32_t *a, const uint32_t *b, int n) {
  uint32_t pc = 0;
  int k = 0;
  for (; k + 2 <= n; k += 2) {
    uint64_t x, y;
    __builtin_memcpy(&x, a + k, 8);
    __builtin_memcpy(&y, b + k, 8);
    pc += (uint32_t)__builtin_popcountll(x ^ y);
  }
  if (k < n) pc += tfr_popcount32(a[k] ^ b[k]);
  return pc;
}
#endif

/* Window words gathered on the stack up to this many (cin <= 256); wider layers read the
 * three rows in place. */
#define TFR_PATCH_WORDS 72

/* The float epilogue of one output element, shared by every path (same operations, same order):
 * main = scale * conv + bias; + the shortcut already in out (accumulate); PReLU (slope). */
TFR_KERNEL float epilogue(int conv, float scale, float bias, int accumulate, float prev, const float *slope, int o) {
  float m = scale * (float)conv + bias;
  if (accumulate) m = m + prev;
  if (slope && !(m >= 0.0f)) m = slope[o] * m;
  return m;
}

/* Outputs o_lo..cout-1 of every pixel, one output at a time. `words` is a compile-time
 * constant at the specialised call sites (1 and 2 words per pixel), so the window loops unroll. */
TFR_KERNEL void conv_scalar(const uint32_t *packed, int h, int w, const int words, int cin, int cout,
                            int stride, const uint32_t *weight_bits, const float *scale,
                            const float *bias, int accumulate, const float *slope, int o_lo,
                            float *out) {
  const int wp = w + 2;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  const int row_words = 3 * words; /* the three kx taps of one ky are contiguous */
  const int n9 = 9 * words;
  const int n = 9 * cin;
  uint32_t patch[TFR_PATCH_WORDS];
  int oy, ox, o, ky, k;
  for (oy = 0; oy < ho; oy++) {
    for (ox = 0; ox < wo; ox++) {
      const uint32_t *base = packed + ((oy * stride) * wp + ox * stride) * words;
      float *dst = out + (oy * wo + ox) * cout;
      const int gathered = n9 <= TFR_PATCH_WORDS;
      if (gathered) {
        /* the 3x3 window in the weights' [ky][kx][word] order: one contiguous loop per output */
        for (ky = 0; ky < 3; ky++)
          for (k = 0; k < row_words; k++) patch[ky * row_words + k] = base[ky * wp * words + k];
      }
      for (o = o_lo; o < cout; o++) {
        const uint32_t *wt = weight_bits + o * n9;
        uint32_t pc = 0;
        if (gathered) {
#if defined(TFR_USE_64BIT_WORDS)
          pc = popcount_words64(patch, wt, n9);
#elif !defined(TFR_USE_BUILTIN_POPCOUNT)
          for (k = 0; k < n9; k += 9) pc += popcount9(patch + k, wt + k); /* n9 = 9 * words */
#else
          for (k = 0; k < n9; k += 3) pc += popcount_row3(patch + k, wt + k);
#endif
        } else {
          for (ky = 0; ky < 3; ky++) {
            const uint32_t *a = base + ky * wp * words;
            const uint32_t *b = wt + ky * row_words;
            for (k = 0; k < row_words; k += 3) pc += popcount_row3(a + k, b + k);
          }
        }
        dst[o] = epilogue(n - 2 * (int)pc, scale[o], bias[o], accumulate, dst[o], slope, o);
      }
    }
  }
}

#if defined(TFR_USE_SIMD)
/* Four output channels per vector lane group; the group's weight words stay in registers
 * (wv) while the loop runs over every pixel. Bit counts gather per byte (i8x16.popcnt) and
 * are folded into the 32-bit lanes before a byte could pass 255 (31 words of 8 bits). */
TFR_KERNEL void conv_simd(const uint32_t *packed, int h, int w, const int words, int cin, int cout, int stride,
                          const uint32_t *weight_bits, const float *scale, const float *bias,
                          int accumulate, const float *slope, float *out) {
  const int wp = w + 2;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  const int row_words = 3 * words;
  const int n9 = 9 * words;
  const tfr_v4i n = tfr_v4i_splat(9 * cin);
  const tfr_v4f zero = tfr_v4f_splat(0.0f);
  tfr_v4u wv[TFR_PATCH_WORDS];
  int o0, oy, ox, ky, k;
  for (o0 = 0; o0 + 4 <= cout; o0 += 4) {
    const tfr_v4f sc = tfr_v4f_load(scale + o0), bi = tfr_v4f_load(bias + o0);
    const tfr_v4f sl = slope ? tfr_v4f_load(slope + o0) : zero;
    for (k = 0; k < n9; k++) wv[k] = tfr_v4u_gather(weight_bits + o0 * n9 + k, n9);
    for (oy = 0; oy < ho; oy++) {
      const uint32_t *row = packed + (oy * stride) * wp * words;
      float *dst = out + (oy * wo) * cout + o0;
      for (ox = 0; ox < wo; ox++, dst += cout) {
        const uint32_t *base = row + ox * stride * words;
        tfr_v4u bytes = tfr_v4u_splat(0), pc = tfr_v4u_splat(0);
        tfr_v4f m;
        int in_bytes = 0;
        for (ky = 0; ky < 3; ky++) {
          const uint32_t *a = base + ky * wp * words;
          for (k = 0; k < row_words; k++) {
            bytes += tfr_v4u_popcnt_bytes(tfr_v4u_splat(a[k]) ^ wv[ky * row_words + k]);
            if (++in_bytes == 31) {
              pc += tfr_v4u_sum_bytes(bytes);
              bytes = tfr_v4u_splat(0);
              in_bytes = 0;
            }
          }
        }
        pc += tfr_v4u_sum_bytes(bytes);
        m = sc * __builtin_convertvector(n - 2 * (tfr_v4i)pc, tfr_v4f) + bi;
        if (accumulate) m = m + tfr_v4f_load(dst);
        if (slope) m = tfr_v4f_select(m >= zero, m, sl * m);
        tfr_v4f_store(dst, m);
      }
    }
  }
}
#endif

#if defined(TFR_USE_CONV_LUT)
#if !defined(TFR_USE_SIMD)
#error "TFR_USE_CONV_LUT needs TFR_USE_SIMD (vector extensions)"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TFR_USE_CONV_LUT assumes little-endian vector lanes"
#endif
/* Table look-up path: the bit count of a ^ w over one k-bit field of the window (k = 4 or 8)
 * is lut[field position][field value][output], so one pixel costs one table row per window
 * field (72 nibbles or 36 bytes for 32 input channels) for up to 64 outputs at once, instead
 * of one XOR and popcount per window word and per 4 outputs. Layout: per chunk of up to 64
 * outputs, [tap 0..8][word][field 0..32/k-1][value 0..2^k-1][rb bytes], rb = 16, 32 or 64
 * (nv = rb / 16 vectors of 16 outputs; fields past cin are never read). In each vector,
 * byte 4m + g holds output 4g + m, so that splitting the byte counts into even/odd 16-bit
 * lanes and then 32-bit lanes gives outputs 4g..4g+3 in order. Byte fields (256 rows) halve
 * the look-ups but take 8 times the memory: used while a layer's table stays small enough
 * to sit in a core's L2 cache (TFR_LUT_BYTE_MAX). */
#define TFR_LUT_CHUNK 64 /* outputs per pass over the pixels (4 accumulator vectors) */
#ifndef TFR_LUT_BYTE_MAX
#define TFR_LUT_BYTE_MAX (320u * 1024u)
#endif
#if defined(__clang__)
/* full unrolling of the window loops; the generic-width instance (words not a constant)
 * cannot unroll its word loop, which clang would report for each use */
#pragma clang diagnostic ignored "-Wpass-failed"
#define TFR_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define TFR_UNROLL _Pragma("GCC unroll 16")
#else
#define TFR_UNROLL
#endif
/* a vector that may sit at any address */
typedef uint8_t tfr_v16b_u __attribute__((vector_size(16), aligned(1)));

/* row bytes of the chunk starting at output c0: 16, 32 or 64 */
static int lut_row_bytes(int cout, int c0) {
  const int left = cout - c0;
  return left > 32 ? 64 : left > 16 ? 32 : 16;
}

/* table bytes with k-bit fields */
static size_t lut_bytes(int cin, int cout, int k) {
  size_t n = 0;
  int c0;
  for (c0 = 0; c0 < cout; c0 += TFR_LUT_CHUNK)
    n += (size_t)9 * (size_t)TFR_WORDS(cin) * (size_t)(32 / k) * ((size_t)1 << k) * (size_t)lut_row_bytes(cout, c0);
  return n;
}

/* bits per field of the layer's table: 8 for one-word pixels (cin <= 32) while that table fits
 * TFR_LUT_BYTE_MAX (so at most 2 vectors of outputs: 295 KB for 32 outputs), else 4 */
static int lut_bits(int cin, int cout) {
  return cin <= 32 && cout <= 32 && lut_bytes(cin, cout, 8) <= TFR_LUT_BYTE_MAX ? 8 : 4;
}

size_t tfr_conv_lut_bytes(int cin, int cout) { return lut_bytes(cin, cout, lut_bits(cin, cout)); }

void tfr_conv_lut_build(const uint32_t *weight_bits, int cin, int cout, uint8_t *lut) {
  const int words = TFR_WORDS(cin), k = lut_bits(cin, cout), fields = 32 / k;
  const uint32_t mask = (1u << k) - 1u;
  int c0, tap, wd, f, val, p;
  for (c0 = 0; c0 < cout; c0 += TFR_LUT_CHUNK) {
    const int rb = lut_row_bytes(cout, c0);
    for (tap = 0; tap < 9; tap++)
      for (wd = 0; wd < words; wd++)
        for (f = 0; f < fields; f++)
          for (val = 0; val <= (int)mask; val++, lut += rb)
            for (p = 0; p < rb; p++) {
              const int o = c0 + (p & ~15) + 4 * (p & 3) + ((p & 15) >> 2);
              const uint32_t wf = o < cout ? (weight_bits[(o * 9 + tap) * words + wd] >> (k * f)) & mask : 0u;
              lut[p] = o < cout ? (uint8_t)tfr_popcount32((uint32_t)val ^ wf) : 0;
            }
  }
}

/* Outputs c0..c0 + 16 * nv - 1 (those below cout) of every pixel, k-bit fields; lut: this
 * chunk's table. The field loop's early exit (fields past cin) is also what keeps V8 from
 * sinking the adds below all the loads of a word (which spills registers): keep it a branch. */
TFR_KERNEL void conv_lut(const uint32_t *packed, int h, int w, const int words, const int k, int cin,
                         int cout, int stride, const uint8_t *lut, const int nv, int c0, const float *scale,
                         const float *bias, int accumulate, const float *slope, float *out) {
  const int wp = w + 2;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  const int fields = 32 / k;
  const int nf_last = (cin - 32 * (words - 1) + k - 1) / k; /* fields of the last word holding channels */
  const unsigned mask = (1u << k) - 1u;
  const tfr_v16b_u *tab = (const tfr_v16b_u *)(const void *)lut;
  const tfr_v4i n = tfr_v4i_splat(9 * cin);
  const tfr_v4f zero = tfr_v4f_splat(0.0f);
  const tfr_v8h lo8 = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  int oy, ox, ky, kx, wd, f, v, g, m;
  for (oy = 0; oy < ho; oy++) {
    for (ox = 0; ox < wo; ox++) {
      const uint32_t *base = packed + ((oy * stride) * wp + ox * stride) * words;
      float *dst = out + (oy * wo + ox) * cout;
      tfr_v16b b[4];
      tfr_v8h e[4], od[4];
      int since = 0;
      TFR_UNROLL for (v = 0; v < nv; v++) {
        b[v] = (tfr_v16b){0};
        e[v] = od[v] = (tfr_v8h){0};
      }
      TFR_UNROLL for (ky = 0; ky < 3; ky++) {
        const uint32_t *a = base + ky * wp * words;
        TFR_UNROLL for (kx = 0; kx < 3; kx++) {
          TFR_UNROLL for (wd = 0; wd < words; wd++) {
            const uint32_t x = k == 8 ? 0u : a[kx * words + wd];
            const uint8_t *xb = (const uint8_t *)(const void *)(a + kx * words + wd); /* little-endian */
            TFR_UNROLL for (f = 0; f < fields; f++) {
              /* the row of field f of word wd of tap (ky, kx), value (x >> kf) & mask; byte
               * fields straight from memory (one zero-extending load, no shift and mask) */
              const unsigned val = k == 8 ? (unsigned)xb[f] : (x >> (k * f)) & mask;
              const tfr_v16b_u *row = tab + ((((ky * 3 + kx) * words + wd) * fields + f) << k) * nv + val * (unsigned)nv;
              if (wd == words - 1 && f >= nf_last) break;
              TFR_UNROLL for (v = 0; v < nv; v++) b[v] = tfr_v16b_add(b[v], row[v]);
            }
            /* a byte takes at most 32 per word: fold every 7 words (<= 224) */
            if (++since == 7) {
              TFR_UNROLL for (v = 0; v < nv; v++) {
                e[v] += (tfr_v8h)b[v] & lo8;
                od[v] += (tfr_v8h)b[v] >> 8;
                b[v] = (tfr_v16b){0};
              }
              since = 0;
            }
          }
        }
      }
      TFR_UNROLL for (v = 0; v < nv; v++) {
        tfr_v4u pcs[4];
        e[v] += (tfr_v8h)b[v] & lo8;
        od[v] += (tfr_v8h)b[v] >> 8;
        pcs[0] = (tfr_v4u)e[v] & tfr_v4u_splat(0xFFFFu);
        pcs[1] = (tfr_v4u)od[v] & tfr_v4u_splat(0xFFFFu);
        pcs[2] = (tfr_v4u)e[v] >> 16;
        pcs[3] = (tfr_v4u)od[v] >> 16;
        TFR_UNROLL for (g = 0; g < 4; g++) {
          const int o = c0 + 16 * v + 4 * g;
          if (o + 4 <= cout) {
            tfr_v4f mv = tfr_v4f_load(scale + o) * __builtin_convertvector(n - 2 * (tfr_v4i)pcs[g], tfr_v4f) +
                         tfr_v4f_load(bias + o);
            if (accumulate) mv = mv + tfr_v4f_load(dst + o);
            if (slope) mv = tfr_v4f_select(mv >= zero, mv, tfr_v4f_load(slope + o) * mv);
            tfr_v4f_store(dst + o, mv);
          } else {
            for (m = 0; m < 4 && o + m < cout; m++)
              dst[o + m] = epilogue(9 * cin - 2 * (int)pcs[g][m], scale[o + m], bias[o + m], accumulate,
                                    dst[o + m], slope, o + m);
          }
        }
      }
    }
  }
}

#define TFR_CONV_LUT_NV(words_, k_)                                                                     \
  switch (nv) {                                                                                         \
    case 1: conv_lut(packed, h, w, words_, k_, cin, cout, stride, t, 1, c0, scale, bias, accumulate, prelu, out); break; \
    case 2: conv_lut(packed, h, w, words_, k_, cin, cout, stride, t, 2, c0, scale, bias, accumulate, prelu, out); break; \
    default: conv_lut(packed, h, w, words_, k_, cin, cout, stride, t, 4, c0, scale, bias, accumulate, prelu, out); break; \
  }

void tfr_op_binary_conv_lut(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                            const uint8_t *lut, const float *scale, const float *bias, int accumulate,
                            const float *prelu, float *out) {
  const int words = TFR_WORDS(cin), k = lut_bits(cin, cout);
  const uint8_t *t = lut;
  int c0;
  for (c0 = 0; c0 < cout; c0 += TFR_LUT_CHUNK) {
    const int nv = lut_row_bytes(cout, c0) / 16;
    if (k == 8) { /* one word, nv 1 or 2 (lut_bits) */
      if (nv == 1)
        conv_lut(packed, h, w, 1, 8, cin, cout, stride, t, 1, c0, scale, bias, accumulate, prelu, out);
      else
        conv_lut(packed, h, w, 1, 8, cin, cout, stride, t, 2, c0, scale, bias, accumulate, prelu, out);
    } else if (words == 1) {
      TFR_CONV_LUT_NV(1, 4)
    } else if (words == 2) {
      TFR_CONV_LUT_NV(2, 4)
    } else {
      TFR_CONV_LUT_NV(words, 4)
    }
    t += (size_t)9 * (size_t)words * (size_t)(32 / k) * ((size_t)1 << k) * (size_t)lut_row_bytes(cout, c0);
  }
}
#endif

#if defined(TFR_USE_INT8_DOT)
/* The byte path (see tfr_ops.h): conv = the +-1 dot product of the window's three kernel rows
 * (three pixels each, contiguous in the plane: 3 * TFR_I8C(cin) bytes) with the weights of one
 * output expanded to bytes. One output at a time over every pixel, so its weights are expanded
 * once per layer.
 *
 * Weights held in registers: a kernel row's 3 * m vectors of 16 bytes (m = cp / 16) are cut into
 * chunks of six vectors (and one of three when m is odd); a pass loads one chunk's weight vectors
 * into q registers once and runs over every pixel of the block, one fused multiply-accumulate +
 * activation load per 16 bytes. Between passes a pixel's running sum waits in memory as ACCX
 * itself (an 8-byte slot: ee.ld.accx.ip / ee.st.accx.ip): the first pass starts ACCX at 0 and
 * stores it, the middle ones and the last load it and store it back; the conv is then the slot's
 * low 32 bits (ACCX is stored zero-extended from 40 bits, and |conv| <= 9 * 256), which the
 * epilogue reads in place: no rur and no second store per pixel.
 *
 * One pixel on entry: q0, q1 hold its activation vectors 0 and 1 and p points at its vector 2.
 * A six-vector chunk (weights w0..w5 in q2..q7): ACCX += a0 . w0 + ... + a5 . w5, loading a2..a5
 * and then the vectors 0 and 1 at p + d, d counted from the address of a5: step - 80 for the next
 * pixel of the row, the next row's first pixel after a row's last, -80 (this pixel again: no read
 * outside the window) after the block's last. A three-vector chunk (w0..w2 in q3..q5, a2 in q2)
 * likewise, d from the address of a2 (step - 32, ..., -32). */
#if defined(TFR_USE_PIE)
/* ESP32-S3 PIE (the state and the portable twin: tfr_pie.h). The products here are -1, 0 or 1,
 * |conv| <= 9 * 256: ACCX never saturates. GCC never puts a loop holding inline asm in a
 * zero-overhead LOOP, so the pixels of a row but the last are one asm statement around loopgtz
 * (count <= 0: none). */
/* q2..q7 = six weight vectors from w; q3..q5 = three (w advanced past them) */
#define TFR_PIE_W6(s, w)                                                                                  \
  __asm__ volatile("ee.vld.128.ip q2, %0, 16\n\tee.vld.128.ip q3, %0, 16\n\tee.vld.128.ip q4, %0, 16\n\t" \
                   "ee.vld.128.ip q5, %0, 16\n\tee.vld.128.ip q6, %0, 16\n\tee.vld.128.ip q7, %0, 16"     \
                   : "+r"(w) : : "memory")
#define TFR_PIE_W3(s, w) \
  __asm__ volatile("ee.vld.128.ip q3, %0, 16\n\tee.vld.128.ip q4, %0, 16\n\tee.vld.128.ip q5, %0, 16" : "+r"(w) : : "memory")
/* q0, q1 = the first two activation vectors at p (p += 32) */
#define TFR_PIE_A2(s, p) __asm__ volatile("ee.vld.128.ip q0, %0, 16\n\tee.vld.128.ip q1, %0, 16" : "+r"(p) : : "memory")
#define TFR_PIE_MAC6                                   \
  "ee.vmulas.s8.accx.ld.ip q0, %[pa], 16, q0, q2\n\t"   \
  "ee.vmulas.s8.accx.ld.ip q1, %[pa], 16, q1, q3\n\t"   \
  "ee.vmulas.s8.accx.ld.ip q0, %[pa], 16, q0, q4\n\t"   \
  "ee.vmulas.s8.accx.ld.xp q1, %[pa], %[da], q1, q5\n\t" \
  "ee.vmulas.s8.accx.ld.ip q0, %[pa], 16, q0, q6\n\t"   \
  "ee.vmulas.s8.accx.ld.ip q1, %[pa], 16, q1, q7\n\t"
#define TFR_PIE_MAC3                                   \
  "ee.vmulas.s8.accx.ld.xp q2, %[pa], %[da], q0, q3\n\t" \
  "ee.vmulas.s8.accx.ld.ip q0, %[pa], 16, q1, q4\n\t"   \
  "ee.vmulas.s8.accx.ld.ip q1, %[pa], 16, q2, q5\n\t"
/* before and after the products, per pass: ACCX = 0 (the first) / the slot at x (the others);
 * then the slot at x = ACCX, x += 8 */
#define TFR_PIE_PRE_FIRST "ee.zero.accx\n\t"
#define TFR_PIE_PRE_MID "ee.ld.accx.ip %[xa], 0\n\t"
#define TFR_PIE_POST "ee.st.accx.ip %[xa], 8\n\t"
/* one pixel; k pixels (a zero-overhead loop) */
#define TFR_PIX(K, C, s, p, d, x)                                                                      \
  __asm__ volatile(TFR_PIE_PRE_##K TFR_PIE_MAC##C TFR_PIE_POST : [pa] "+r"(p), [xa] "+r"(x) : [da] "r"(d) : "memory")
#define TFR_PIX_RUN(K, C, s, p, d, x, k)                                                                 \
  __asm__ volatile("loopgtz %[ka], 1f\n\t" TFR_PIE_PRE_##K TFR_PIE_MAC##C TFR_PIE_POST "1:"                \
                   : [pa] "+r"(p), [xa] "+r"(x) : [da] "r"(d), [ka] "r"(k) : "memory")
#else
/* Portable twin (tfr_pie.h): the registers and memory accesses of the PIE code above. */
#define TFR_PIE_W6(s, w)                                                                          \
  (tfr_pie_vld(&(s), 2, &(w), 16), tfr_pie_vld(&(s), 3, &(w), 16), tfr_pie_vld(&(s), 4, &(w), 16), \
   tfr_pie_vld(&(s), 5, &(w), 16), tfr_pie_vld(&(s), 6, &(w), 16), tfr_pie_vld(&(s), 7, &(w), 16))
#define TFR_PIE_W3(s, w) (tfr_pie_vld(&(s), 3, &(w), 16), tfr_pie_vld(&(s), 4, &(w), 16), tfr_pie_vld(&(s), 5, &(w), 16))
#define TFR_PIE_A2(s, p) (tfr_pie_vld(&(s), 0, &(p), 16), tfr_pie_vld(&(s), 1, &(p), 16))
#define TFR_PIE_MAC6(s, p, d)                                                                                        \
  (tfr_pie_mac(&(s), 0, &(p), 16, 0, 2), tfr_pie_mac(&(s), 1, &(p), 16, 1, 3), tfr_pie_mac(&(s), 0, &(p), 16, 0, 4), \
   tfr_pie_mac(&(s), 1, &(p), (d), 1, 5), tfr_pie_mac(&(s), 0, &(p), 16, 0, 6), tfr_pie_mac(&(s), 1, &(p), 16, 1, 7))
#define TFR_PIE_MAC3(s, p, d) \
  (tfr_pie_mac(&(s), 2, &(p), (d), 0, 3), tfr_pie_mac(&(s), 0, &(p), 16, 1, 4), tfr_pie_mac(&(s), 1, &(p), 16, 2, 5))
#define TFR_PIE_PRE_FIRST(s, x) ((s).accx = 0)
#define TFR_PIE_PRE_MID(s, x) tfr_pie_ldx(&(s), &(x), 0)
#define TFR_PIE_POST(s, x) tfr_pie_stx(&(s), &(x))
#define TFR_PIX(K, C, s, p, d, x) \
  do { TFR_PIE_PRE_##K(s, x); TFR_PIE_MAC##C(s, p, d); TFR_PIE_POST(s, x); } while (0)
#define TFR_PIX_RUN(K, C, s, p, d, x, k) \
  for (int c_ = 0; c_ < (k); c_++) TFR_PIX(K, C, s, p, d, x)
#endif

/* Output pixels per block: the convs of a block of output rows (whole rows while a row fits:
 * 8 rows of a 24 x 24 layer) are gathered as integers before their float epilogues run
 * (1.5 KB of stack: the ACCX slots the passes keep, 8 bytes per pixel, the conv in each one's low
 * word). */
#define TFR_I8_RUN 192

/* The float epilogue of five pixels of one output: conv[0], conv[2], ..., conv[8] (the low words
 * of five ACCX slots) -> dst[0], dst[cout], ..., dst[4 cout]. The five are independent chains, so
 * the FPU's latency (modelled as five cycles) overlaps instead of stalling each step. Per element
 * the operations and their order are those of epilogue(). `accumulate` and `has_slope` are
 * constants at each call site. */
TFR_KERNEL void epilogue5(const int32_t *conv, float scale, float bias, const int accumulate, const int has_slope,
                          float slope, float *dst, int cout) {
  float m0 = (float)conv[0], m1 = (float)conv[2], m2 = (float)conv[4], m3 = (float)conv[6], m4 = (float)conv[8];
  m0 = scale * m0;
  m1 = scale * m1;
  m2 = scale * m2;
  m3 = scale * m3;
  m4 = scale * m4;
  m0 = m0 + bias;
  m1 = m1 + bias;
  m2 = m2 + bias;
  m3 = m3 + bias;
  m4 = m4 + bias;
  if (accumulate) {
    m0 = m0 + dst[0];
    m1 = m1 + dst[cout];
    m2 = m2 + dst[2 * cout];
    m3 = m3 + dst[3 * cout];
    m4 = m4 + dst[4 * cout];
  }
  if (has_slope) {
#if defined(TFR_USE_PIE)
    /* Xtensa: slope * m for all five, then five compares into five boolean registers and five
     * conditional moves: ult.s is "m < 0 or unordered", i.e. !(m >= 0) as below (GCC would
     * branch per element, each branch waiting on its compare) */
    const float zero = 0.0f, t0 = slope * m0, t1 = slope * m1, t2 = slope * m2, t3 = slope * m3, t4 = slope * m4;
    __asm__("ult.s b0, %0, %10\n\tult.s b1, %1, %10\n\tult.s b2, %2, %10\n\tult.s b3, %3, %10\n\t"
            "ult.s b4, %4, %10\n\tmovt.s %0, %5, b0\n\tmovt.s %1, %6, b1\n\tmovt.s %2, %7, b2\n\t"
            "movt.s %3, %8, b3\n\tmovt.s %4, %9, b4"
            : "+f"(m0), "+f"(m1), "+f"(m2), "+f"(m3), "+f"(m4)
            : "f"(t0), "f"(t1), "f"(t2), "f"(t3), "f"(t4), "f"(zero)
            : "b0"); /* GCC allocates b0 only: b1-b4 hold nothing of its own */
#else
    if (!(m0 >= 0.0f)) m0 = slope * m0;
    if (!(m1 >= 0.0f)) m1 = slope * m1;
    if (!(m2 >= 0.0f)) m2 = slope * m2;
    if (!(m3 >= 0.0f)) m3 = slope * m3;
    if (!(m4 >= 0.0f)) m4 = slope * m4;
#endif
  }
  dst[0] = m0;
  dst[cout] = m1;
  dst[2 * cout] = m2;
  dst[3 * cout] = m3;
  dst[4 * cout] = m4;
}

/* The same for one pixel: conv[0] -> dst[0] */
TFR_KERNEL void epilogue1(const int32_t *conv, float scale, float bias, const int accumulate, const int has_slope,
                          float slope, float *dst) {
  float m = scale * (float)conv[0] + bias;
  if (accumulate) m = m + dst[0];
  if (has_slope && !(m >= 0.0f)) m = slope * m;
  dst[0] = m;
}

/* k steps of epilogue5 with accumulate and PReLU (every binary block of the shipped models),
 * advancing conv by 10 and dst by 5 cout each step. On the S3 one zero-overhead loop: the five
 * elements' addresses by indexed loads and stores (lsx/ssx at dst + j * 4 cout), each stage of
 * the five chains five instructions after the one it waits on; the operations of epilogue5. */
#if defined(TFR_USE_PIE)
/* the loop, with the byte offsets of elements 1..4 from element 0 (s1..s4) and the step (s5) */
#define TFR_EPI5_ASM(conv, dst, nk, s1_, s2_, s3_, s4_, s5_, scale, bias, slope)                                   \
  do {                                                                                                          \
    const float z_ = 0.0f;                                                                                      \
    float m0_, m1_, m2_, m3_, m4_, t0_, t1_, t2_, t3_, t4_;                                                     \
    int32_t c0_, c1_;                                                                                           \
    __asm__ volatile(                                                                                           \
        "loopgtz %[k], 1f\n\t"                                                                                  \
        "l32i %[c0], %[cv], 0\n\tl32i %[c1], %[cv], 8\n\tfloat.s %[m0], %[c0], 0\n\tl32i %[c0], %[cv], 16\n\t"   \
        "float.s %[m1], %[c1], 0\n\tl32i %[c1], %[cv], 24\n\tfloat.s %[m2], %[c0], 0\n\tl32i %[c0], %[cv], 32\n\t" \
        "float.s %[m3], %[c1], 0\n\tfloat.s %[m4], %[c0], 0\n\taddi %[cv], %[cv], 40\n\t"                        \
        "mul.s %[m0], %[m0], %[fs]\n\tmul.s %[m1], %[m1], %[fs]\n\tmul.s %[m2], %[m2], %[fs]\n\t"                  \
        "mul.s %[m3], %[m3], %[fs]\n\tmul.s %[m4], %[m4], %[fs]\n\t"                                             \
        "lsi %[t0], %[y], 0\n\tlsx %[t1], %[y], %[s1]\n\tlsx %[t2], %[y], %[s2]\n\tlsx %[t3], %[y], %[s3]\n\t"     \
        "lsx %[t4], %[y], %[s4]\n\t"                                                                              \
        "add.s %[m0], %[m0], %[fb]\n\tadd.s %[m1], %[m1], %[fb]\n\tadd.s %[m2], %[m2], %[fb]\n\t"                  \
        "add.s %[m3], %[m3], %[fb]\n\tadd.s %[m4], %[m4], %[fb]\n\t"                                             \
        "add.s %[m0], %[m0], %[t0]\n\tadd.s %[m1], %[m1], %[t1]\n\tadd.s %[m2], %[m2], %[t2]\n\t"                  \
        "add.s %[m3], %[m3], %[t3]\n\tadd.s %[m4], %[m4], %[t4]\n\t"                                             \
        "mul.s %[t0], %[m0], %[fp]\n\tmul.s %[t1], %[m1], %[fp]\n\tmul.s %[t2], %[m2], %[fp]\n\t"                  \
        "mul.s %[t3], %[m3], %[fp]\n\tmul.s %[t4], %[m4], %[fp]\n\t"                                             \
        "ult.s b0, %[m0], %[fz]\n\tult.s b1, %[m1], %[fz]\n\tult.s b2, %[m2], %[fz]\n\t"                          \
        "ult.s b3, %[m3], %[fz]\n\tult.s b4, %[m4], %[fz]\n\t"                                                   \
        "movt.s %[m0], %[t0], b0\n\tmovt.s %[m1], %[t1], b1\n\tmovt.s %[m2], %[t2], b2\n\t"                       \
        "movt.s %[m3], %[t3], b3\n\tmovt.s %[m4], %[t4], b4\n\t"                                                 \
        "ssi %[m0], %[y], 0\n\tssx %[m1], %[y], %[s1]\n\tssx %[m2], %[y], %[s2]\n\tssx %[m3], %[y], %[s3]\n\t"     \
        "ssx %[m4], %[y], %[s4]\n\tadd %[y], %[y], %[s5]\n"                                                        \
        "1:"                                                                                                    \
        : [cv] "+r"(conv), [y] "+r"(dst), [c0] "=&r"(c0_), [c1] "=&r"(c1_), [m0] "=&f"(m0_), [m1] "=&f"(m1_),     \
          [m2] "=&f"(m2_), [m3] "=&f"(m3_), [m4] "=&f"(m4_), [t0] "=&f"(t0_), [t1] "=&f"(t1_), [t2] "=&f"(t2_),   \
          [t3] "=&f"(t3_), [t4] "=&f"(t4_)                                                                      \
        : [k] "r"(nk), [s1] "r"(s1_), [s2] "r"(s2_), [s3] "r"(s3_), [s4] "r"(s4_), [s5] "r"(s5_), [fs] "f"(scale), \
          [fb] "f"(bias), [fp] "f"(slope), [fz] "f"(z_)                                                         \
        : "b0", "memory"); /* GCC allocates b0 only: b1-b4 hold nothing of its own */                          \
  } while (0)
#define TFR_EPI5_RUN(conv, dst, cout, nk, scale, bias, slope) \
  TFR_EPI5_ASM(conv, dst, nk, 4 * (cout), 8 * (cout), 12 * (cout), 16 * (cout), 20 * (cout), scale, bias, slope)
/* The last r pixels (2 <= r < 5) as one step of the five-element loop: elements r..4 convert conv
 * slots past the block's (stale convs, or the zeros after the buffer's last block) and read and
 * write the scratch floats sc[r..4] instead of dst (their offsets from dst). */
#define TFR_EPI5_TAIL(conv, dst, cout, r, sc, scale, bias, slope)                                                \
  do {                                                                                                          \
    const int d_ = (int)((uintptr_t)(sc) - (uintptr_t)(dst)), s_ = 4 * (cout);                                   \
    TFR_EPI5_ASM(conv, dst, 1, s_, 2 < (r) ? 2 * s_ : d_ + 8, 3 < (r) ? 3 * s_ : d_ + 12, d_ + 16, 0, scale, bias, slope); \
  } while (0)
/* k pixels one at a time (the tail of a block, fewer than five): the same operations on one chain,
 * no load read by the instruction after it, no branch */
#define TFR_EPI1_RUN(conv, dst, cout, nk, scale, bias, slope)                                                   \
  do {                                                                                                          \
    const float z_ = 0.0f;                                                                                      \
    float m_, t_;                                                                                               \
    int32_t c_;                                                                                                 \
    __asm__ volatile("loopgtz %[k], 1f\n\t"                                                                      \
                     "l32i %[c], %[cv], 0\n\tlsi %[t], %[y], 0\n\taddi %[cv], %[cv], 8\n\tfloat.s %[m], %[c], 0\n\t" \
                     "mul.s %[m], %[m], %[fs]\n\tadd.s %[m], %[m], %[fb]\n\tadd.s %[m], %[m], %[t]\n\t"              \
                     "mul.s %[t], %[m], %[fp]\n\tult.s b0, %[m], %[fz]\n\tmovt.s %[m], %[t], b0\n\t"                 \
                     "ssi %[m], %[y], 0\n\tadd %[y], %[y], %[s1]\n"                                                 \
                     "1:"                                                                                        \
                     : [cv] "+r"(conv), [y] "+r"(dst), [c] "=&r"(c_), [m] "=&f"(m_), [t] "=&f"(t_)                  \
                     : [k] "r"(nk), [s1] "r"(4 * (cout)), [fs] "f"(scale), [fb] "f"(bias), [fp] "f"(slope), [fz] "f"(z_) \
                     : "b0", "memory");                                                                         \
  } while (0)
#else
#define TFR_EPI5_RUN(conv, dst, cout, nk, scale, bias, slope) \
  for (int c_ = 0; c_ < (nk); c_++, (conv) += 10, (dst) += 5 * (cout)) epilogue5(conv, scale, bias, 1, 1, slope, dst, cout)
#define TFR_EPI1_RUN(conv, dst, cout, nk, scale, bias, slope) \
  for (int c_ = 0; c_ < (nk); c_++, (conv) += 2, (dst) += (cout)) epilogue1(conv, scale, bias, 1, 1, slope, dst)
/* one step: the r pixels */
TFR_KERNEL void epilogue_tail(const int32_t *conv, int r, float scale, float bias, float slope, float *dst, int cout) {
  int j;
  for (j = 0; j < r; j++) epilogue1(conv + 2 * j, scale, bias, 1, 1, slope, dst + j * cout);
}
#define TFR_EPI5_TAIL(conv, dst, cout, r, sc, scale, bias, slope) \
  for (int c_ = 0; c_ < 1; c_++) epilogue_tail(conv, r, scale, bias, slope, dst, cout)
#endif

/* The float epilogue of n pixels of one output (conv[2 i], the low word of slot i -> dst[i * cout]):
 * epilogue5 while five are left, then one at a time. */
TFR_KERNEL void epilogue_run(const int32_t *conv, int n, float scale, float bias, const int accumulate,
                             const int has_slope, float slope, float *dst, int cout) {
  int i = 0;
  if (accumulate && has_slope) {
    float sc[5];
    TFR_EPI5_RUN(conv, dst, cout, n / 5, scale, bias, slope); /* five elements per step (xtensa-cost: loop) */
    if (n % 5 >= 2)
      TFR_EPI5_TAIL(conv, dst, cout, n % 5, sc, scale, bias, slope); /* the last two to four (xtensa-cost: loop) */
    else
      TFR_EPI1_RUN(conv, dst, cout, n % 5, scale, bias, slope); /* the last one (xtensa-cost: loop) */
    (void)sc;
    return;
  }
  for (; i + 5 <= n; i += 5, conv += 10, dst += 5 * cout) epilogue5(conv, scale, bias, accumulate, has_slope, slope, dst, cout);
  for (; i < n; i++, conv += 2, dst += cout) epilogue1(conv, scale, bias, accumulate, has_slope, slope, dst);
}

/* Pass k of a block (0 <= k < 3 * ((m + 1) / 2)): chunk j of kernel row ky, the six-vector chunks
 * first, then the three-vector ones of an odd m; its offset in the window (*pa) and in the
 * expanded weights [ky][kx][cp] (*pw, cp = 16 m) */
TFR_KERNEL void pass_chunk(int k, int m, int stride_row, int *pa, int *pw) {
  const int h6 = m / 2, n6 = 3 * h6;
  const int ky = k < n6 ? k / h6 : k - n6, j = k < n6 ? k % h6 : h6;
  *pa = ky * stride_row + 96 * j;
  *pw = 48 * m * ky + 96 * j;
}

/* One output over a block of nr x n output pixels (n = the layer's width, or nr = 1): the window
 * of pixel (r, c) at a + r * rstep + c * step; its ACCX slot at conv + 2 (r * n + c) (conv:
 * 2 * nr * n int32 from an 8-byte boundary), then the epilogues into dst[(r * n + c) * cout]
 * (contiguous pixels). The passes (see above), each over the block's pixels in one stream: the
 * first, then the others (six-vector chunks, then three-vector ones), each written out so that
 * every loop runs one path. A row's pixels but its last are
 * one TFR_PIX_RUN: a zero-overhead loop on the device, a for loop on the host (the same trip
 * counts: scripts/xtensa-cost.js matches the two by that line, marked `xtensa-cost: loop`); the
 * last row apart, so that its last pixel reads its own vectors again. Not inlined: its
 * small stack frame keeps every local within reach of a short load (the caller's holds the
 * expanded weights and conv). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void conv_i8_block(const int8_t *a, int nr, int n, int rstep, int step, int stride_row, const int8_t *w,
                          int nv, int32_t *conv, float scale, float bias, int accumulate, const float *prelu,
                          int o, float *dst, int cout) {
  const float slope = prelu ? prelu[o] : 0.0f;
  /* vectors per pixel of a kernel row, six-vector chunks per kernel row, passes */
  const int m = nv / 3, h6 = m / 2, np = 3 * (h6 + m % 2);
  /* d after a row's pixels but its last, after its last (all rows but the last) */
  const int d6n = step - 80, d6r = rstep - (n - 1) * step - 80;
  const int d3n = step - 32, d3r = rstep - (n - 1) * step - 32;
  tfr_pie s;
  int k, r, oa, ow;
  const int8_t *p, *wk;
  int32_t *x;
  TFR_PIE_INIT(s);
  /* the first pass: ACCX from 0 */
  pass_chunk(0, m, stride_row, &oa, &ow);
  p = a + oa, wk = w + ow, x = conv;
  TFR_PIE_A2(s, p);
  if (h6) {
    TFR_PIE_W6(s, wk);
    for (r = 1; r < nr; r++) {
      TFR_PIX_RUN(FIRST, 6, s, p, d6n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
      TFR_PIX(FIRST, 6, s, p, d6r, x);
    }
    TFR_PIX_RUN(FIRST, 6, s, p, d6n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
    TFR_PIX(FIRST, 6, s, p, -80, x);
  } else {
    TFR_PIE_W3(s, wk);
    for (r = 1; r < nr; r++) {
      TFR_PIX_RUN(FIRST, 3, s, p, d3n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
      TFR_PIX(FIRST, 3, s, p, d3r, x);
    }
    TFR_PIX_RUN(FIRST, 3, s, p, d3n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
    TFR_PIX(FIRST, 3, s, p, -32, x);
  }
  /* the other passes: ACCX from its slot and back (after the last, the slot holds the conv) */
  for (k = 1; k < 3 * h6; k++) {
    pass_chunk(k, m, stride_row, &oa, &ow);
    p = a + oa, wk = w + ow, x = conv;
    TFR_PIE_A2(s, p);
    TFR_PIE_W6(s, wk);
    for (r = 1; r < nr; r++) {
      TFR_PIX_RUN(MID, 6, s, p, d6n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
      TFR_PIX(MID, 6, s, p, d6r, x);
    }
    TFR_PIX_RUN(MID, 6, s, p, d6n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
    TFR_PIX(MID, 6, s, p, -80, x);
  }
  for (; k < np; k++) {
    pass_chunk(k, m, stride_row, &oa, &ow);
    p = a + oa, wk = w + ow, x = conv;
    TFR_PIE_A2(s, p);
    TFR_PIE_W3(s, wk);
    for (r = 1; r < nr; r++) {
      TFR_PIX_RUN(MID, 3, s, p, d3n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
      TFR_PIX(MID, 3, s, p, d3r, x);
    }
    TFR_PIX_RUN(MID, 3, s, p, d3n, x, n - 1); /* pixels 1..n-1 (xtensa-cost: loop) */
    TFR_PIX(MID, 3, s, p, -32, x);
  }
  if (accumulate && prelu)
    epilogue_run(conv, nr * n, scale, bias, 1, 1, slope, dst, cout);
  else if (accumulate)
    epilogue_run(conv, nr * n, scale, bias, 1, 0, slope, dst, cout);
  else if (prelu)
    epilogue_run(conv, nr * n, scale, bias, 0, 1, slope, dst, cout);
  else
    epilogue_run(conv, nr * n, scale, bias, 0, 0, slope, dst, cout);
}

/* The weights of one output as +-1 bytes, [tap][cp] (wexp and cp are multiples of 16 bytes): channels
 * past cin meet activation bytes of 0. Sixteen channels per vector from the bytes of their bits: byte j
 * broadcast to the 16 lanes of one register (ee.vldbc.8), byte j + 1 to another, vunzip.32 joins their
 * low halves (lanes 0-7 from byte j, 8-15 from byte j + 1: every 32-bit element of each is the same, so
 * only the TRM's order of the halves matters), & the lane bit 1 << (lane % 8), == 0 -> all ones where the
 * bit is clear (-1), | 0x01 (+1 where set), one 16-byte store. Registers: q5 = the lane bits, q6 = 0,
 * q7 = 0x01 bytes (tfr_pm1_const); q0..q3 the bytes. When cp is a multiple of 32 the 9 * words words of
 * bits and their bytes follow each other without a gap: one loop over all of them; else per tap its
 * whole words, then the 16 channels of its last one. */
static const uint8_t tfr_pm1_const[32] __attribute__((aligned(16))) = {
    1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
#if defined(TFR_USE_PIE)
#define TFR_PM1_LOAD(s)                                                                                    \
  do {                                                                                                     \
    const uint8_t *c_ = tfr_pm1_const;                                                                     \
    __asm__ volatile("ee.vld.128.ip q5, %[c], 16\n\tee.zero.q q6\n\tee.vld.128.ip q7, %[c], 16" : [c] "+r"(c_) : : "memory"); \
  } while (0)
#define TFR_PM1_HALF(a, b) "ee.vunzip.32 " a ", " b "\n\tee.andq " a ", " a ", q5\n\tee.vcmp.eq.s8 " a ", " a ", q6\n\tee.orq " a ", " a ", q7\n\t"
/* n words of bits at wb (wb += 4 n) -> 32 n bytes at d (d += 32 n): one zero-overhead loop */
#define TFR_PM1_RUN(s, wb, d, n)                                                                           \
  __asm__ volatile("loopgtz %[cnt], 1f\n\t"                                                                \
                   "ee.vldbc.8.ip q0, %[pb], 1\n\tee.vldbc.8.ip q1, %[pb], 1\n\tee.vldbc.8.ip q2, %[pb], 1\n\t" \
                   "ee.vldbc.8.ip q3, %[pb], 1\n\t" TFR_PM1_HALF("q0", "q1") TFR_PM1_HALF("q2", "q3")           \
                   "ee.vst.128.ip q0, %[pd], 16\n\tee.vst.128.ip q2, %[pd], 16\n"                             \
                   "1:"                                                                                    \
                   : [pb] "+r"(wb), [pd] "+r"(d) : [cnt] "r"(n) : "memory")
/* the 16 channels of bytes wb[0], wb[1] -> 16 bytes at d (d += 16) */
#define TFR_PM1_16(s, wb, d)                                                                               \
  __asm__ volatile("ee.vldbc.8.ip q0, %[pb], 1\n\tee.vldbc.8.ip q1, %[pb], 1\n\tnop\n\t" TFR_PM1_HALF("q0", "q1") \
                   "ee.vst.128.ip q0, %[pd], 16"                                                           \
                   : [pb] "+r"(wb), [pd] "+r"(d) : : "memory")
#else
/* Portable twin (the instructions: tfr_pie.h) */
TFR_KERNEL void pm1_half(tfr_pie *s, int a, int b) {
  tfr_pie_vunzip(s, a, b, 4);
  tfr_pie_logic(s, a, a, 5, '&');
  tfr_pie_vcmpeq8(s, a, a, 6);
  tfr_pie_logic(s, a, a, 7, '|');
}
TFR_KERNEL void pm1_load(tfr_pie *s) {
  memcpy(s->q[5], tfr_pm1_const, 16);
  memset(s->q[6], 0, 16);
  memcpy(s->q[7], tfr_pm1_const + 16, 16);
}
TFR_KERNEL void pm1_word(tfr_pie *s, const uint8_t **wb, int8_t **d) {
  tfr_pie_vldbc8(s, 0, wb);
  tfr_pie_vldbc8(s, 1, wb);
  tfr_pie_vldbc8(s, 2, wb);
  tfr_pie_vldbc8(s, 3, wb);
  pm1_half(s, 0, 1);
  pm1_half(s, 2, 3);
  tfr_pie_vst128(s, 0, d);
  tfr_pie_vst128(s, 2, d);
}
TFR_KERNEL void pm1_16(tfr_pie *s, const uint8_t **wb, int8_t **d) {
  tfr_pie_vldbc8(s, 0, wb);
  tfr_pie_vldbc8(s, 1, wb);
  pm1_half(s, 0, 1);
  tfr_pie_vst128(s, 0, d);
}
#define TFR_PM1_LOAD(s) pm1_load(&(s))
#define TFR_PM1_RUN(s, wb, d, n) for (int c_ = 0; c_ < (n); c_++) pm1_word(&(s), &(wb), &(d))
#define TFR_PM1_16(s, wb, d) pm1_16(&(s), &(wb), &(d))
#endif

/* Not inlined (a small stack frame, as conv_i8_block). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void expand_weights(const uint32_t *wt, int words, int cp, int8_t *wexp) {
  const int nw = cp % 32 == 0 ? 9 * words : 0; /* all the words in one loop, or none */
  const uint8_t *wb = (const uint8_t *)(const void *)wt;
  int8_t *d = wexp;
  tfr_pie s;
  int t;
  TFR_PIE_INIT(s);
  TFR_PM1_LOAD(s);
  TFR_PM1_RUN(s, wb, d, nw); /* every word (xtensa-cost: loop) */
  if (nw == 0) {
    for (t = 0; t < 9; t++) { /* the taps' last 16 channels apart */
      wb = (const uint8_t *)(const void *)(wt + t * words);
      TFR_PM1_RUN(s, wb, d, cp / 32); /* a tap's whole words (xtensa-cost: loop) */
      TFR_PM1_16(s, wb, d);
    }
  }
}

void tfr_op_binary_conv_i8(const int8_t *plane, int h, int w, int cin, int cout, int stride,
                           const uint32_t *weight_bits, const float *scale, const float *bias,
                           int accumulate, const float *prelu, float *out) {
  const int cp = TFR_I8C(cin), words = TFR_WORDS(cin), wp = w + 2, nv = 3 * cp / 16;
  const int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
  uint32_t wbuf[9 * TFR_I8_MAX_CIN / 4 + 4]; /* the expanded weights, from a 16-byte boundary */
  int8_t *wexp = (int8_t *)(void *)((uint8_t *)wbuf + ((16u - ((uintptr_t)wbuf & 15u)) & 15u));
  /* a block's ACCX slots, then its convs, from an 8-byte boundary; four slots more (zeros) that the
   * epilogue's last step may read past a full block (TFR_EPI5_TAIL) */
  int32_t convbuf[2 * TFR_I8_RUN + 9];
  int32_t *conv = convbuf + (((uintptr_t)convbuf & 7u) != 0);
  int o, oy, ox, nr = 1, n = 1;
  memset(conv + 2 * TFR_I8_RUN, 0, 8 * sizeof(int32_t));
  for (o = 0; o < cout; o++) {
    const uint32_t *wt = weight_bits + o * 9 * words;
    expand_weights(wt, words, cp, wexp);
    /* blocks of whole output rows (of up to TFR_I8_RUN pixels), or of one part of a wider row */
    for (oy = 0; oy < ho; oy += nr)
      for (ox = 0; ox < wo; ox += n) {
        nr = wo <= TFR_I8_RUN ? (ho - oy < TFR_I8_RUN / wo ? ho - oy : TFR_I8_RUN / wo) : 1;
        n = wo - ox < TFR_I8_RUN ? wo - ox : TFR_I8_RUN;
        conv_i8_block(plane + ((oy * wp + ox) * stride) * cp, nr, n, stride * wp * cp, stride * cp, wp * cp, wexp,
                      nv, conv, scale[o], bias[o], accumulate, prelu, o, out + (oy * wo + ox) * cout + o, cout);
      }
  }
}
#endif

void tfr_op_binary_conv(const uint32_t *packed, int h, int w, int cin, int cout, int stride,
                        const uint32_t *weight_bits, const float *scale, const float *bias,
                        int accumulate, const float *prelu, float *out) {
  const int words = TFR_WORDS(cin);
  int o_lo = 0;
#if defined(TFR_USE_SIMD)
  if (9 * words <= TFR_PATCH_WORDS && cout >= 4) {
    if (words == 1)
      conv_simd(packed, h, w, 1, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, out);
    else if (words == 2)
      conv_simd(packed, h, w, 2, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, out);
    else
      conv_simd(packed, h, w, words, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, out);
    o_lo = cout & ~3;
    if (o_lo == cout) return;
  }
#endif
  if (words == 1)
    conv_scalar(packed, h, w, 1, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, o_lo, out);
  else if (words == 2)
    conv_scalar(packed, h, w, 2, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, o_lo, out);
  else
    conv_scalar(packed, h, w, words, cin, cout, stride, weight_bits, scale, bias, accumulate, prelu, o_lo, out);
}
