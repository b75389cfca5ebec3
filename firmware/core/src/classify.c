/* Runs a parsed model over one face, op by op, inside the caller's arena (see tfr_plan.h). */
#include <string.h>

#include "tfr_ops.h"
#include "tfr_plan.h"

/* The block's binary conv, + shortcut already in out, PReLU fused; with tables (*lut not
 * NULL) through the look-up path, *lut then moves on to the next block's table. */
static void binary_conv(const tfr_block_t *b, const uint8_t **lut, const uint32_t *packed, int size, float *out) {
#if defined(TFR_USE_INT8_DOT)
  if (tfr_i8_layer(b->cin)) {
    tfr_op_binary_conv_i8((const int8_t *)(const void *)packed, size, size, b->cin, b->cout, b->stride,
                          b->weight_bits, b->scale, b->bias, 1, b->prelu, out);
    return;
  }
#endif
#if defined(TFR_USE_CONV_LUT)
  if (*lut) {
    tfr_op_binary_conv_lut(packed, size, size, b->cin, b->cout, b->stride, *lut, b->scale, b->bias, 1,
                           b->prelu, out);
    *lut += tfr_conv_lut_bytes(b->cin, b->cout);
    return;
  }
#endif
  (void)lut;
  tfr_op_binary_conv(packed, size, size, b->cin, b->cout, b->stride, b->weight_bits, b->scale, b->bias, 1,
                     b->prelu, out);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Binarize cur into the scratch at `at` (4-byte aligned): bits, or on the byte path a byte plane
 * at the next 16-byte boundary (tfr_packed_bytes counts the 12 bytes this may skip). Returns
 * the plane for binary_conv. */
static uint32_t *binarize(const tfr_block_t *b, const float *cur, int size, uint8_t *at) {
#if defined(TFR_USE_INT8_DOT)
  if (tfr_i8_layer(b->cin)) {
    int8_t *plane = (int8_t *)(void *)(at + ((16u - ((uintptr_t)at & 15u)) & 15u));
    tfr_op_binarize_i8(cur, size, size, b->cin, b->threshold, plane);
    return (uint32_t *)(void *)plane;
  }
#endif
  tfr_op_binarize_pack(cur, size, size, b->cin, b->threshold, (uint32_t *)(void *)at);
  return (uint32_t *)(void *)at;
}

size_t tfr_plan_arena(const tfr_model_t *m) {
  size_t need, cur;
  int i, size = TFR_FACE_SIZE / 2, c = m->stem_cout, cur_low = 1;
  /* stem: output (pooled) + the padded face */
  cur = TFR_F32(size * size * c);
  need = cur + tfr_stem_scratch(m);
  for (i = 0; i < m->num_blocks; i++) {
    const tfr_block_t *b = &m->blocks[i];
    if (b->type == TFR_BLOCK_BINARY) {
      const size_t packed = tfr_packed_bytes(size, b->cin);
      if (b->projected) {
        const int so = (size - 1) / b->stride + 1;
        const size_t out = TFR_F32(so * so * b->cout);
        if (cur_low && tfr_projected_in_place(b)) {
          need = max_sz(need, cur + packed + TFR_F32(b->cin));
        } else {
          need = max_sz(need, cur + out + packed + TFR_F32(b->cin));
          cur_low = !cur_low;
        }
        cur = out;
        size = so;
      } else {
        need = max_sz(need, cur + packed);
      }
      c = b->cout;
    } else {
      need = max_sz(need, cur + TFR_F32(TFR_CBAM_FACTORS_AT(size, size, c, b->hidden) + c));
    }
  }
  /* head: the classifier's inputs + logits, and a grid head's region averages */
  need = max_sz(need, cur + TFR_F32(m->head_nin + TFR_NUM_CLASSES + (m->head_grid ? c : 0)));
  return need;
}

#if defined(TFR_USE_CONV_LUT)
/* Tables of tfr_lut_build: a header, then one table per binary block, in block order. */
#define TFR_LUT_MAGIC 0x4C524654u /* 'TFRL' */
#define TFR_LUT_HEADER 16u

static uint32_t lut_id(const tfr_model_t *m) { return (uint32_t)(uintptr_t)m->blob ^ (uint32_t)m->blob_size; }

size_t tfr_lut_size(const tfr_model_t *m) {
  size_t n = TFR_LUT_HEADER;
  int i;
  if (!tfr_model_is_parsed(m)) return 0;
  for (i = 0; i < m->num_blocks; i++)
    if (m->blocks[i].type == TFR_BLOCK_BINARY) n += tfr_conv_lut_bytes(m->blocks[i].cin, m->blocks[i].cout);
  return n;
}

int tfr_lut_build(const tfr_model_t *m, void *lut, size_t lut_size) {
  uint8_t *p = (uint8_t *)lut;
  uint32_t head[4];
  int i;
  if (!m || !lut) return TFR_ERR_NULL;
  if (!tfr_model_is_parsed(m)) return TFR_ERR_NOT_PARSED;
  if (lut_size < tfr_lut_size(m)) return TFR_ERR_LUT;
  head[0] = TFR_LUT_MAGIC;
  head[1] = (uint32_t)tfr_lut_size(m);
  head[2] = lut_id(m);
  head[3] = 0;
  memcpy(p, head, sizeof head);
  p += TFR_LUT_HEADER;
  for (i = 0; i < m->num_blocks; i++) {
    const tfr_block_t *b = &m->blocks[i];
    if (b->type != TFR_BLOCK_BINARY) continue;
    tfr_conv_lut_build(b->weight_bits, b->cin, b->cout, p);
    p += tfr_conv_lut_bytes(b->cin, b->cout);
  }
  return TFR_OK;
}
#endif

/* The op sequence; lut: NULL, or the tables of tfr_lut_build (checked by the caller). */
static int run(const tfr_model_t *m, const uint8_t *lut, void *arena, size_t arena_size,
               const uint8_t face[TFR_FACE_PIXELS], float scores[TFR_NUM_CLASSES]) {
  uint8_t *lo, *hi;
  float *cur;
  int cur_low = 1; /* which end the current activation is at */
  size_t cur_bytes, pad;
  int i, size = TFR_FACE_SIZE / 2, c;
  if (!m || !arena || !face || !scores) return TFR_ERR_NULL;
  if (!tfr_model_is_parsed(m)) return TFR_ERR_NOT_PARSED;
  pad = (4u - ((uintptr_t)arena & 3u)) & 3u;
  if (arena_size < pad || arena_size - pad < m->arena_size) return TFR_ERR_ARENA_SMALL;
  lo = (uint8_t *)arena + pad;
  hi = lo + m->arena_size;

  /* stem conv + 2x2 max-pool + bias, fused; scratch: the scaled, zero-bordered face */
  c = m->stem_cout;
  cur = (float *)(void *)lo;
  cur_bytes = TFR_F32(size * size * c);
  if (m->stem_kind == TFR_STEM_INT8) {
    tfr_op_stem_conv_pool_i8(face, m->stem_q, m->stem_scale, m->stem_bias, c, lo + cur_bytes, cur);
  } else {
    tfr_op_stem_conv_pool(face, m->input_scale, m->stem_weight, m->stem_bias, c,
                          (float *)(void *)(lo + cur_bytes), cur);
  }

  for (i = 0; i < m->num_blocks; i++) {
    const tfr_block_t *b = &m->blocks[i];
    uint8_t *scratch = cur_low ? lo + cur_bytes : lo;
    if (b->type == TFR_BLOCK_BINARY) {
      uint32_t *packed = (uint32_t *)(void *)scratch;
      if (b->projected) {
        const int so = (size - 1) / b->stride + 1;
        const size_t out_bytes = TFR_F32(so * so * b->cout);
        float *out;
        float *pooled;
        if (cur_low && tfr_projected_in_place(b)) {
          out = cur; /* written behind the shortcut's reads, see op_shortcut.c */
        } else if (cur_low) {
          out = (float *)(void *)(hi - out_bytes);
          cur_low = 0;
        } else {
          out = (float *)(void *)lo;
          packed = (uint32_t *)(void *)(lo + out_bytes);
          cur_low = 1;
        }
        pooled = (float *)(void *)((uint8_t *)packed + tfr_packed_bytes(size, b->cin));
        packed = binarize(b, cur, size, (uint8_t *)packed);
        tfr_op_shortcut_proj(cur, size, size, b->cin, b->cout, b->sc_weight, b->sc_bias, pooled, out);
        binary_conv(b, &lut, packed, size, out);
        cur = out;
        cur_bytes = out_bytes;
        size = so;
      } else {
        packed = binarize(b, cur, size, (uint8_t *)packed);
        binary_conv(b, &lut, packed, size, cur);
      }
    } else {
      float *s = (float *)(void *)scratch, *f = s + TFR_CBAM_FACTORS_AT(size, size, b->cin, b->hidden);
      tfr_op_cbam_factors(cur, size * size, b->cin, b->hidden, b->w1, b->b1, b->w2, b->b2, s, f);
      tfr_op_cbam_spatial(cur, size, size, b->cin, f, b->spatial_weight, b->spatial_bias, s);
    }
  }

  {
    float *v = (float *)(void *)(cur_low ? lo + cur_bytes : lo);
    float *logits = v + m->head_nin;
    if (m->head_grid) {
      tfr_op_grid_head(cur, size, m->head_cin, m->head_grid, m->head_k, m->head_reduce,
                       logits + TFR_NUM_CLASSES, v);
    } else {
      tfr_op_gap(cur, size * size, m->head_cin, v);
    }
    tfr_op_dense(v, (int)m->head_nin, TFR_NUM_CLASSES, m->head_weight, m->head_bias, logits);
    tfr_op_softmax(logits, TFR_NUM_CLASSES, scores);
  }
  return TFR_OK;
}

int tfr_classify(const tfr_model_t *m, void *arena, size_t arena_size,
                 const uint8_t face[TFR_FACE_PIXELS], float scores[TFR_NUM_CLASSES]) {
  return run(m, NULL, arena, arena_size, face, scores);
}

#if defined(TFR_USE_CONV_LUT)
int tfr_classify_lut(const tfr_model_t *m, const void *lut, void *arena, size_t arena_size,
                     const uint8_t face[TFR_FACE_PIXELS], float scores[TFR_NUM_CLASSES]) {
  uint32_t head[4];
  if (!lut) return TFR_ERR_NULL;
  if (!tfr_model_is_parsed(m)) return m ? TFR_ERR_NOT_PARSED : TFR_ERR_NULL;
  memcpy(head, lut, sizeof head);
  if (head[0] != TFR_LUT_MAGIC || head[1] != (uint32_t)tfr_lut_size(m) || head[2] != lut_id(m)) return TFR_ERR_LUT;
  return run(m, (const uint8_t *)lut + TFR_LUT_HEADER, arena, arena_size, face, scores);
}
#endif
