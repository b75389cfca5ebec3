/* The TFER blob parser (docs/model-format.md) and the arena planner. */
#include <string.h>

#include "tfr_ops.h"
#include "tinyfer/tinyfer.h"
#include "tfr_plan.h"

#define TFR_PARSED_MAGIC 0x54464552u /* 'TFER' */

static const char *const kLabels[TFR_NUM_CLASSES] = {"angry", "disgust", "fear", "happy",
                                                     "sad",   "surprise", "neutral"};

const char *tfr_label_name(int index) {
  return index >= 0 && index < TFR_NUM_CLASSES ? kLabels[index] : "";
}

const char *tfr_strerror(int err) {
  switch (err) {
    case TFR_OK: return "ok";
    case TFR_ERR_NULL: return "a required argument is NULL";
    case TFR_ERR_ALIGN: return "the model blob is not 4-byte aligned";
    case TFR_ERR_TRUNCATED: return "the model blob is truncated";
    case TFR_ERR_MAGIC: return "bad magic: not a TinyFER model blob";
    case TFR_ERR_VERSION: return "unsupported model format version";
    case TFR_ERR_FLAGS: return "unknown flags in the model blob";
    case TFR_ERR_SIZE: return "the size in the model header differs from the blob length";
    case TFR_ERR_CRC: return "CRC mismatch: the model blob is corrupt";
    case TFR_ERR_SHAPE: return "the model's layer sizes do not fit together";
    case TFR_ERR_BLOCK_TYPE: return "unknown block type in the model blob";
    case TFR_ERR_TOO_MANY_BLOCKS: return "the model has too many blocks";
    case TFR_ERR_RESERVED: return "a reserved field or padding in the model blob is not zero";
    case TFR_ERR_NONFINITE: return "the model has a NaN or infinite parameter";
    case TFR_ERR_TRAILING: return "unexpected bytes after the end of the model";
    case TFR_ERR_LABEL: return "the model has an unknown or repeated label";
    case TFR_ERR_NOT_PARSED: return "the model was not parsed successfully";
    case TFR_ERR_ARENA_SMALL: return "the arena is too small for this model";
    case TFR_ERR_LUT: return "the lookup tables are too small or were not built for this model";
    case TFR_ERR_SCALE: return "an int8 stem scale is not positive";
    case TFR_ERR_SHARED: return "a block shares the weights of a block that is not an earlier binary block of its shape";
    default: return "unknown error";
  }
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  size_t i;
  int k;
  for (i = 0; i < n; i++) {
    c ^= p[i];
    for (k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

typedef struct {
  const uint8_t *p;
  size_t size;
  size_t pos;
  int err;
} reader_t;

static int need(reader_t *r, size_t n) {
  if (r->err) return 0;
  if (n > r->size - r->pos) {
    r->err = TFR_ERR_TRUNCATED;
    return 0;
  }
  return 1;
}

static uint32_t rd_u8(reader_t *r) {
  if (!need(r, 1)) return 0;
  return r->p[r->pos++];
}

static uint32_t rd_u16(reader_t *r) {
  uint32_t v;
  if (!need(r, 2)) return 0;
  v = (uint32_t)r->p[r->pos] | ((uint32_t)r->p[r->pos + 1] << 8);
  r->pos += 2;
  return v;
}

static uint32_t rd_u32(reader_t *r) {
  uint32_t v;
  if (!need(r, 4)) return 0;
  v = (uint32_t)r->p[r->pos] | ((uint32_t)r->p[r->pos + 1] << 8) |
      ((uint32_t)r->p[r->pos + 2] << 16) | ((uint32_t)r->p[r->pos + 3] << 24);
  r->pos += 4;
  return v;
}

/* n 32-bit values in place; the caller guarantees 4-byte alignment of pos. */
static const void *rd_words(reader_t *r, size_t n) {
  const void *at;
  if (r->err) return NULL;
  if (n > (r->size - r->pos) / 4) {
    r->err = TFR_ERR_TRUNCATED;
    return NULL;
  }
  at = r->p + r->pos;
  r->pos += n * 4;
  return at;
}

static const float *rd_floats(reader_t *r, size_t n) {
  const uint8_t *at = (const uint8_t *)rd_words(r, n);
  size_t i;
  if (!at) return NULL;
  for (i = 0; i < n; i++) {
    /* little-endian exponent bits of value i: all ones means Inf or NaN */
    if ((at[4 * i + 3] & 0x7F) == 0x7F && (at[4 * i + 2] & 0x80)) {
      r->err = TFR_ERR_NONFINITE;
      return NULL;
    }
  }
  return (const float *)(const void *)at;
}

static float rd_f32(reader_t *r) {
  const float *f = rd_floats(r, 1);
  return f ? *f : 0.0f;
}

#define FAIL(code)    \
  do {                \
    r.err = (code);   \
    goto done;        \
  } while (0)
#define CHECK()        \
  do {                 \
    if (r.err) goto done; \
  } while (0)

static int channels_ok(uint32_t c) { return c >= 1 && c <= TFR_MAX_CHANNELS; }

int tfr_model_parse(tfr_model_t *model, const void *blob, size_t size) {
  reader_t r;
  tfr_model_t m;
  uint32_t v, version, classes, nblocks, i, c, hw, seen = 0;
  if (!model) return TFR_ERR_NULL;
  model->parsed = 0;
  if (!blob) return TFR_ERR_NULL;
  if (((uintptr_t)blob & 3u) != 0) return TFR_ERR_ALIGN;
  memset(&m, 0, sizeof m);
  r.p = (const uint8_t *)blob;
  r.size = size;
  r.pos = 0;
  r.err = 0;
  if (size < TFR_HEADER_SIZE) return TFR_ERR_TRUNCATED;
  if (memcmp(r.p, "TFER", 4) != 0) return TFR_ERR_MAGIC;
  r.pos = 4;
  version = rd_u16(&r);
  if (version < TFR_FORMAT_VERSION_MIN || version > TFR_FORMAT_VERSION) return TFR_ERR_VERSION;
  if (rd_u16(&r) != 0) return TFR_ERR_FLAGS;
  v = rd_u32(&r);
  if (v > size) return TFR_ERR_TRUNCATED;
  if (v != size) return TFR_ERR_SIZE;
  v = rd_u32(&r);
#ifndef TFR_FUZZING_SKIP_CRC /* the fuzz target skips it so that mutations reach the sections */
  if (v != crc32_ieee(r.p + TFR_HEADER_SIZE, size - TFR_HEADER_SIZE)) return TFR_ERR_CRC;
#endif

  /* meta */
  v = rd_u8(&r);
  classes = rd_u8(&r);
  nblocks = rd_u8(&r);
  m.name_len = (uint8_t)rd_u8(&r);
  CHECK();
  if (v != TFR_FACE_SIZE) FAIL(TFR_ERR_SHAPE);
  if (classes != TFR_NUM_CLASSES) FAIL(TFR_ERR_SHAPE);
  if (nblocks > TFR_MAX_BLOCKS) FAIL(TFR_ERR_TOO_MANY_BLOCKS);
  m.input_scale = rd_f32(&r);
  if (!need(&r, m.name_len)) goto done;
  m.name = (const char *)(r.p + r.pos);
  r.pos += m.name_len;
  for (i = 0; i < classes; i++) {
    uint32_t len = rd_u8(&r), k;
    int found = -1;
    if (!need(&r, len)) goto done;
    for (k = 0; k < TFR_NUM_CLASSES; k++) {
      if (strlen(kLabels[k]) == len && memcmp(kLabels[k], r.p + r.pos, len) == 0) found = (int)k;
    }
    if (found < 0 || (seen & (1u << found))) FAIL(TFR_ERR_LABEL); /* unknown or repeated */
    seen |= 1u << found;
    m.label_index[i] = (uint8_t)found;
    r.pos += len;
  }
  while (r.pos % 4) {
    v = rd_u8(&r);
    CHECK();
    if (v != 0) FAIL(TFR_ERR_RESERVED);
  }

  /* stem */
  c = rd_u16(&r);
  v = rd_u16(&r); /* the stem kind: version 2 on; reserved (0) in version 1 */
  CHECK();
  if (version < 2 && v != 0) FAIL(TFR_ERR_RESERVED);
  if (v != TFR_STEM_FLOAT && v != TFR_STEM_INT8) FAIL(TFR_ERR_FLAGS);
  if (!channels_ok(c)) FAIL(TFR_ERR_SHAPE);
  m.stem_cout = (uint16_t)c;
  m.stem_kind = (uint8_t)v;
  if (v == TFR_STEM_FLOAT) {
    m.stem_weight = rd_floats(&r, (size_t)c * 9);
  } else {
    size_t k;
    if (!need(&r, (size_t)c * 9)) goto done;
    m.stem_q = (const int8_t *)(r.p + r.pos);
    r.pos += (size_t)c * 9;
    while (r.pos % 4) {
      v = rd_u8(&r);
      CHECK();
      if (v != 0) FAIL(TFR_ERR_RESERVED);
    }
    m.stem_scale = rd_floats(&r, c);
    CHECK();
    for (k = 0; k < c; k++) {
      if (!(m.stem_scale[k] > 0.0f)) FAIL(TFR_ERR_SCALE); /* the max-pool comes first */
    }
  }
  m.stem_bias = rd_floats(&r, c);
  CHECK();

  hw = TFR_FACE_SIZE / 2;
  m.num_blocks = (uint8_t)nblocks;
  for (i = 0; i < nblocks; i++) {
    tfr_block_t *b = &m.blocks[i];
    uint32_t type = rd_u8(&r), b1 = rd_u8(&r), b2 = rd_u8(&r), b3 = rd_u8(&r);
    uint32_t f1 = rd_u16(&r), f2 = rd_u16(&r);
    CHECK();
    b->type = (uint8_t)type;
    b->shares = -1;
    b->size_in = (uint16_t)hw;
    if (type == TFR_BLOCK_BINARY) {
      uint32_t stride = b1, flags = b2, source = b3, cin = f1, cout = f2, projected;
      const tfr_block_t *src = NULL;
      if (!channels_ok(cin) || !channels_ok(cout) || cin != c) FAIL(TFR_ERR_SHAPE);
      if (stride != 1 && stride != 2) FAIL(TFR_ERR_SHAPE);
      if (stride == 1 && cin != cout) FAIL(TFR_ERR_SHAPE);
      if (stride == 2) {
        if (hw % 2) FAIL(TFR_ERR_SHAPE);
        hw /= 2;
      }
      if (flags & ~3u) FAIL(TFR_ERR_FLAGS);
      projected = (stride == 2 || cin != cout) ? 1u : 0u;
      if ((flags & 1u) != projected) FAIL(TFR_ERR_FLAGS);
      if (flags & 2u) {
        /* a repeat pass: threshold and weight bits are those of block `source` */
        if (source >= i) FAIL(TFR_ERR_SHARED);
        src = &m.blocks[source];
        if (src->type != TFR_BLOCK_BINARY || src->shares >= 0 || src->cin != cin ||
            src->cout != cout) {
          FAIL(TFR_ERR_SHARED);
        }
        b->shares = (int8_t)source;
      } else if (source != 0) {
        FAIL(TFR_ERR_RESERVED);
      }
      b->stride = (uint8_t)stride;
      b->projected = (uint8_t)projected;
      b->cin = (uint16_t)cin;
      b->cout = (uint16_t)cout;
      b->threshold = src ? src->threshold : rd_floats(&r, cin);
      b->scale = rd_floats(&r, cout);
      b->bias = rd_floats(&r, cout);
      b->prelu = rd_floats(&r, cout);
      b->weight_bits = src ? src->weight_bits
                           : (const uint32_t *)rd_words(&r, (size_t)cout * 9 * TFR_WORDS(cin));
      CHECK();
      if (cin % 32 && !src) {
        /* padding bits past cin in every word group must be 0 */
        const uint32_t words = TFR_WORDS(cin);
        const uint32_t mask = ~((1u << (cin % 32)) - 1u);
        size_t t;
        for (t = 0; t < (size_t)cout * 9; t++) {
          const uint8_t *wb = (const uint8_t *)b->weight_bits + (t * words + words - 1) * 4;
          uint32_t word = (uint32_t)wb[0] | ((uint32_t)wb[1] << 8) | ((uint32_t)wb[2] << 16) |
                          ((uint32_t)wb[3] << 24);
          if (word & mask) FAIL(TFR_ERR_RESERVED);
        }
      }
      if (projected) {
        b->sc_weight = rd_floats(&r, (size_t)cout * cin);
        b->sc_bias = rd_floats(&r, cout);
        CHECK();
      }
      c = cout;
    } else if (type == TFR_BLOCK_CBAM) {
      if (b1 != 0 || b2 != 0 || b3 != 0) FAIL(TFR_ERR_RESERVED);
      if (!channels_ok(f1) || !channels_ok(f2) || f1 != c) FAIL(TFR_ERR_SHAPE);
      b->cin = b->cout = (uint16_t)f1;
      b->hidden = (uint16_t)f2;
      b->w1 = rd_floats(&r, (size_t)f2 * f1);
      b->b1 = rd_floats(&r, f2);
      b->w2 = rd_floats(&r, (size_t)f1 * f2);
      b->b2 = rd_floats(&r, f1);
      b->spatial_weight = rd_floats(&r, 98);
      b->spatial_bias = rd_f32(&r);
      CHECK();
    } else {
      FAIL(TFR_ERR_BLOCK_TYPE);
    }
  }

  /* head */
  v = rd_u16(&r);
  i = rd_u16(&r);
  CHECK();
  if (v != classes || i != c) FAIL(TFR_ERR_SHAPE);
  m.head_cin = (uint16_t)c;
  m.head_nin = c;
  if (version >= 3) {
    /* the head's kind: grid 0 = global average (k 0), else a grid head of k values a region */
    const uint32_t grid = rd_u8(&r), k = rd_u8(&r);
    v = rd_u16(&r);
    CHECK();
    if (v != 0) FAIL(TFR_ERR_RESERVED);
    if (grid == 0 ? k != 0 : (k == 0 || hw % grid != 0)) FAIL(TFR_ERR_SHAPE);
    if (grid) {
      m.head_grid = (uint8_t)grid;
      m.head_k = (uint8_t)k;
      m.head_nin = grid * grid * k; /* at most 24 * 24 * 255: grid divides hw <= 24 */
      m.head_reduce = rd_floats(&r, (size_t)k * c);
    }
  }
  m.head_weight = rd_floats(&r, (size_t)classes * m.head_nin);
  m.head_bias = rd_floats(&r, classes);
  CHECK();
  if (r.pos != size) FAIL(TFR_ERR_TRAILING);

  m.blob = r.p;
  m.blob_size = size;
  m.arena_size = tfr_plan_arena(&m);
  m.parsed = TFR_PARSED_MAGIC;
  *model = m;
  return TFR_OK;
done:
  return r.err;
}

size_t tfr_arena_size(const tfr_model_t *model) {
  return model && model->parsed == TFR_PARSED_MAGIC ? model->arena_size : 0;
}

int tfr_model_is_parsed(const tfr_model_t *model) {
  return model && model->parsed == TFR_PARSED_MAGIC;
}
