/*
 * Test-only builder of TFER blobs with random parameters (a fixture for the parser tests,
 * the seed corpus of the fuzzer and the arena tests). The normative encoder is
 * src/model/format.ts; tests/vectors_test.cc checks that this parser reads its blobs.
 */
#ifndef TINYFER_BLOB_BUILDER_H
#define TINYFER_BLOB_BUILDER_H
#include <stdint.h>
#include <string.h>

typedef struct {
  uint8_t type; /* 1 binary, 2 cbam */
  uint16_t cin, cout, stride, hidden;
  uint8_t shared, source; /* binary: a repeat pass of block `source` (format flag 2) */
} tfb_block_spec;

typedef struct {
  uint16_t stem_cout;
  uint8_t stem_int8; /* an int8 stem (format version 2) */
  uint8_t head_grid, head_k; /* a grid head of head_grid x head_grid regions (format version 3) */
  int num_blocks;
  tfb_block_spec blocks[32];
} tfb_spec;

typedef struct {
  uint8_t *buf;
  size_t cap, len;
  uint32_t rng;
  int overflow;
} tfb_writer;

static uint32_t tfb_rand(tfb_writer *w) {
  uint32_t x = w->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  w->rng = x;
  return x;
}
static void tfb_u8(tfb_writer *w, uint32_t v) {
  if (w->len < w->cap) w->buf[w->len] = (uint8_t)v;
  else w->overflow = 1;
  w->len++;
}
static void tfb_u16(tfb_writer *w, uint32_t v) { tfb_u8(w, v & 0xFF); tfb_u8(w, (v >> 8) & 0xFF); }
static void tfb_u32(tfb_writer *w, uint32_t v) { tfb_u16(w, v & 0xFFFF); tfb_u16(w, v >> 16); }
static void tfb_f32(tfb_writer *w, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  tfb_u32(w, u);
}
/* uniform in [lo, hi) */
static void tfb_rand_f32s(tfb_writer *w, size_t n, float lo, float hi) {
  size_t i;
  for (i = 0; i < n; i++) tfb_f32(w, lo + (hi - lo) * (float)(tfb_rand(w) >> 8) / 16777216.0f);
}

static uint32_t tfb_crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  size_t i;
  int k;
  for (i = 0; i < n; i++) {
    c ^= p[i];
    for (k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

/* Rewrites the size and CRC fields of buf[0..len) (after a test edits the content). */
static void tfb_reseal(uint8_t *buf, size_t len) {
  uint32_t crc = tfb_crc32(buf + 16, len - 16);
  int k;
  for (k = 0; k < 4; k++) {
    buf[8 + k] = (uint8_t)((uint32_t)len >> (8 * k));
    buf[12 + k] = (uint8_t)(crc >> (8 * k));
  }
}

/* Writes a valid blob for `spec` with random parameters; returns its length (which may be
 * larger than cap: then nothing past cap was written and the caller must retry larger). */
static size_t tfb_build(uint8_t *buf, size_t cap, const tfb_spec *spec, uint32_t seed) {
  static const char *const labels[7] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
  static const char name[] = "test";
  tfb_writer w;
  int i, k;
  uint32_t c = spec->stem_cout;
  w.buf = buf;
  w.cap = cap;
  w.len = 0;
  w.rng = seed ? seed : 1u;
  w.overflow = 0;
  tfb_u8(&w, 'T'); tfb_u8(&w, 'F'); tfb_u8(&w, 'E'); tfb_u8(&w, 'R');
  tfb_u16(&w, spec->head_grid ? 3u : spec->stem_int8 ? 2u : 1u); tfb_u16(&w, 0); tfb_u32(&w, 0); tfb_u32(&w, 0);
  tfb_u8(&w, 48); tfb_u8(&w, 7); tfb_u8(&w, (uint32_t)spec->num_blocks); tfb_u8(&w, 4);
  tfb_f32(&w, 1.0f / 255.0f);
  for (k = 0; k < 4; k++) tfb_u8(&w, (uint8_t)name[k]);
  for (i = 0; i < 7; i++) {
    size_t n = strlen(labels[i]);
    tfb_u8(&w, (uint32_t)n);
    for (k = 0; k < (int)n; k++) tfb_u8(&w, (uint8_t)labels[i][k]);
  }
  while (w.len % 4) tfb_u8(&w, 0);
  tfb_u16(&w, c); tfb_u16(&w, spec->stem_int8 ? 1u : 0u);
  if (spec->stem_int8) {
    /* int8 weights (the whole range), zero padding, scales that bring sums of 9 * 127 * 255 to ~1 */
    size_t t;
    for (t = 0; t < (size_t)c * 9; t++) tfb_u8(&w, tfb_rand(&w) >> 24);
    while (w.len % 4) tfb_u8(&w, 0);
    tfb_rand_f32s(&w, c, 2e-6f, 2e-5f);
  } else {
    tfb_rand_f32s(&w, (size_t)c * 9, -1.0f, 1.0f);
  }
  tfb_rand_f32s(&w, c, -0.2f, 0.2f);
  for (i = 0; i < spec->num_blocks; i++) {
    const tfb_block_spec *b = &spec->blocks[i];
    if (b->type == 1) {
      const int projected = b->stride == 2 || b->cin != b->cout;
      const uint32_t words = (b->cin + 31u) / 32u;
      size_t t;
      tfb_u8(&w, 1); tfb_u8(&w, b->stride); tfb_u8(&w, (projected ? 1u : 0u) | (b->shared ? 2u : 0u));
      tfb_u8(&w, b->shared ? b->source : 0u);
      tfb_u16(&w, b->cin); tfb_u16(&w, b->cout);
      if (!b->shared) tfb_rand_f32s(&w, b->cin, -0.3f, 0.3f);
      tfb_rand_f32s(&w, b->cout, 0.01f, 0.05f);
      tfb_rand_f32s(&w, b->cout, -0.3f, 0.3f);
      tfb_rand_f32s(&w, b->cout, 0.0f, 0.3f);
      for (t = 0; !b->shared && t < (size_t)b->cout * 9; t++) {
        for (k = 0; k < (int)words; k++) {
          uint32_t word = tfb_rand(&w);
          const int n = (int)b->cin - 32 * k;
          if (n < 32) word &= (1u << n) - 1u;
          tfb_u32(&w, word);
        }
      }
      if (projected) {
        tfb_rand_f32s(&w, (size_t)b->cout * b->cin, -0.3f, 0.3f);
        tfb_rand_f32s(&w, b->cout, -0.1f, 0.1f);
      }
      c = b->cout;
    } else {
      tfb_u8(&w, 2); tfb_u8(&w, 0); tfb_u8(&w, 0); tfb_u8(&w, 0);
      tfb_u16(&w, c); tfb_u16(&w, b->hidden);
      tfb_rand_f32s(&w, (size_t)b->hidden * c, -0.5f, 0.5f);
      tfb_rand_f32s(&w, b->hidden, -0.1f, 0.1f);
      tfb_rand_f32s(&w, (size_t)c * b->hidden, -0.5f, 0.5f);
      tfb_rand_f32s(&w, c, -0.1f, 0.1f);
      tfb_rand_f32s(&w, 98, -0.3f, 0.3f);
      tfb_f32(&w, 0.1f);
    }
  }
  tfb_u16(&w, 7); tfb_u16(&w, c);
  if (spec->head_grid) {
    const uint32_t g = spec->head_grid, k = spec->head_k;
    tfb_u8(&w, g); tfb_u8(&w, k); tfb_u16(&w, 0);
    tfb_rand_f32s(&w, (size_t)k * c, -0.5f, 0.5f);
    tfb_rand_f32s(&w, (size_t)7 * g * g * k, -1.0f, 1.0f);
  } else {
    tfb_rand_f32s(&w, (size_t)7 * c, -1.0f, 1.0f);
  }
  tfb_rand_f32s(&w, 7, -0.1f, 0.1f);
  if (!w.overflow) tfb_reseal(buf, w.len);
  return w.len;
}

/* A small model with every kind of block (identity, projected, cbam). */
static tfb_spec tfb_small_spec(void) {
  tfb_spec s;
  memset(&s, 0, sizeof s);
  s.stem_cout = 8;
  s.num_blocks = 4;
  s.blocks[0].type = 1; s.blocks[0].cin = 8; s.blocks[0].cout = 8; s.blocks[0].stride = 1;
  s.blocks[1].type = 1; s.blocks[1].cin = 8; s.blocks[1].cout = 40; s.blocks[1].stride = 2;
  s.blocks[2].type = 2; s.blocks[2].hidden = 4;
  s.blocks[3].type = 1; s.blocks[3].cin = 40; s.blocks[3].cout = 40; s.blocks[3].stride = 1;
  return s;
}
#endif
