/*
 * Arena plan shared by the parser (tfr_arena_size) and the runner (tfr_classify).
 *
 * The current activation lives at one end of the arena (low: offset 0, high: ends at the
 * planned size). A layer that cannot run in place writes its output at the other end;
 * scratch (packed bits, attention maps, pooled vectors) goes between the two. The arena is
 * the largest need over all layers: in + out + scratch, or in + scratch when in place
 * (identity binary blocks, CBAM, projected blocks with cout <= 2 * cin while at the low end).
 */
#ifndef TINYFER_PLAN_H
#define TINYFER_PLAN_H
#include "tinyfer/tinyfer.h"
#include "tfr_ops.h"

size_t tfr_plan_arena(const tfr_model_t *m);
int tfr_model_is_parsed(const tfr_model_t *m);

/* bytes of one layer's pieces */
#define TFR_F32(n) ((size_t)(n) * 4u)
static inline size_t tfr_stem_scratch(const tfr_model_t *m) {
  return m->stem_kind == TFR_STEM_INT8 ? TFR_STEM_I8_SCRATCH(m->stem_cout) : TFR_F32(TFR_STEM_XS);
}
static inline size_t tfr_packed_bytes(int size, int c) {
#if defined(TFR_USE_INT8_DOT)
  /* the byte plane, and 12 bytes to move its base to a 16-byte boundary */
  if (tfr_i8_layer(c)) return (size_t)(size + 2) * (size_t)(size + 2) * (size_t)TFR_I8C(c) + 12u;
#endif
  return (size_t)(size + 2) * (size_t)(size + 2) * TFR_WORDS(c) * 4u;
}
/* A projected block may write its output over its input (from the same base) when the
 * output never overtakes the input the later pixels still read: cout <= 2 * cin. */
static inline int tfr_projected_in_place(const tfr_block_t *b) { return b->cout <= 2 * b->cin; }
#endif
