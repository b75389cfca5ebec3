/*
 * TinyFER portable inference core: public API.
 *
 * Plain C99, no OS, no allocation: the model blob (docs/model-format.md) is read in place
 * (flash or RAM), activations live in a caller-provided arena whose size the parser plans up
 * front. Semantics: src/model/folded.ts. One op per file in src/, each tested in tests/.
 *
 *   tfr_model_t model;
 *   int err = tfr_model_parse(&model, blob, blob_len);      // checks everything, never reads OOB
 *   if (err) printf("%s\n", tfr_strerror(err));
 *   static uint32_t arena[96 * 1024 / 4];                   // >= tfr_arena_size(&model) bytes
 *   float scores[TFR_NUM_CLASSES];
 *   err = tfr_classify(&model, arena, sizeof arena, face, scores);
 */
#ifndef TINYFER_TINYFER_H
#define TINYFER_TINYFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blob format versions read: 1, 2 (which adds the int8 stem) and 3 (the grid head); a blob is
 * written with the oldest version that holds it. */
#define TFR_FORMAT_VERSION 3
#define TFR_FORMAT_VERSION_MIN 1
/* Stem kinds (the stem section's second u16): float32 weights, or int8 weights with a scale. */
enum { TFR_STEM_FLOAT = 0, TFR_STEM_INT8 = 1 };
#define TFR_FACE_SIZE 48
#define TFR_FACE_PIXELS (TFR_FACE_SIZE * TFR_FACE_SIZE)
#define TFR_NUM_CLASSES 7
#define TFR_MAX_BLOCKS 32
#define TFR_MAX_CHANNELS 1024
#define TFR_HEADER_SIZE 16

/* Error codes: 0 is success, every error is negative. tfr_strerror() says what each means. */
enum {
  TFR_OK = 0,
  TFR_ERR_NULL = -1,          /* a required pointer argument is NULL */
  TFR_ERR_ALIGN = -2,         /* the blob is not 4-byte aligned */
  TFR_ERR_TRUNCATED = -3,     /* the blob ends before a section does */
  TFR_ERR_MAGIC = -4,         /* not a TFER blob */
  TFR_ERR_VERSION = -5,       /* unsupported format version */
  TFR_ERR_FLAGS = -6,         /* unknown header or block flags */
  TFR_ERR_SIZE = -7,          /* header size field differs from the blob length */
  TFR_ERR_CRC = -8,           /* CRC-32 of the content does not match the header */
  TFR_ERR_SHAPE = -9,         /* sizes do not chain (input size, classes, channels, strides) */
  TFR_ERR_BLOCK_TYPE = -10,   /* unknown block type */
  TFR_ERR_TOO_MANY_BLOCKS = -11,
  TFR_ERR_RESERVED = -12,     /* a reserved field, padding byte or padding bit is not zero */
  TFR_ERR_NONFINITE = -13,    /* a parameter is NaN or infinite */
  TFR_ERR_TRAILING = -14,     /* bytes after the head section */
  TFR_ERR_LABEL = -15,        /* a label is not one of the seven known names, or repeats */
  TFR_ERR_NOT_PARSED = -16,   /* the model struct was not filled by a successful tfr_model_parse */
  TFR_ERR_ARENA_SMALL = -17,  /* the arena is smaller than tfr_arena_size() */
  TFR_ERR_LUT = -18,          /* lookup tables too small, or not built for this model */
  TFR_ERR_SHARED = -19,       /* a block shares the weights of a block that is not an earlier binary
                                 block of the same shape with weights of its own */
  TFR_ERR_SCALE = -20         /* an int8 stem's scale is not positive */
};

enum { TFR_BLOCK_BINARY = 1, TFR_BLOCK_CBAM = 2 };

/* One block of the network; pointers point into the blob. */
typedef struct {
  uint8_t type;       /* TFR_BLOCK_BINARY or TFR_BLOCK_CBAM */
  uint8_t stride;     /* binary: 1 or 2 */
  uint8_t projected;  /* binary: 1 when the shortcut is avgpool 2x2 + 1x1 conv */
  uint16_t cin;       /* binary: input channels; cbam: channels */
  uint16_t cout;      /* binary: output channels; cbam: channels */
  uint16_t hidden;    /* cbam: MLP hidden units */
  uint16_t size_in;   /* side of the square input plane */
  /* binary */
  const float *threshold;     /* [cin] */
  const float *scale;         /* [cout] */
  const float *bias;          /* [cout] */
  const float *prelu;         /* [cout] */
  const uint32_t *weight_bits;/* [cout][3][3][words(cin)] */
  int8_t shares;              /* binary: index of the block whose threshold and weight_bits these
                                 are (a repeat pass, format flag 2), else -1 */
  const float *sc_weight;     /* [cout][cin] or NULL */
  const float *sc_bias;       /* [cout] or NULL */
  /* cbam */
  const float *w1, *b1, *w2, *b2; /* [hidden][C], [hidden], [C][hidden], [C] */
  const float *spatial_weight;    /* [7][7][2] */
  float spatial_bias;
} tfr_block_t;

/* A parsed model. Fill it with tfr_model_parse(); it borrows the blob, which must outlive it. */
typedef struct {
  uint32_t parsed;            /* set by a successful parse */
  const uint8_t *blob;
  size_t blob_size;
  const char *name;           /* not NUL-terminated: name_len bytes of UTF-8 */
  uint8_t name_len;
  uint8_t num_blocks;
  uint8_t label_index[TFR_NUM_CLASSES]; /* output i is tfr_label_name(label_index[i]) */
  float input_scale;
  uint16_t stem_cout;
  uint8_t stem_kind;          /* TFR_STEM_FLOAT or TFR_STEM_INT8 */
  const float *stem_weight;   /* [cout][3][3][1] (float stem; NULL for an int8 stem) */
  const int8_t *stem_q;       /* [cout][3][3][1] (int8 stem; NULL for a float stem) */
  const float *stem_scale;    /* [cout] (int8 stem: out = scale * max(sum q * pixel) + bias) */
  const float *stem_bias;     /* [cout] */
  tfr_block_t blocks[TFR_MAX_BLOCKS];
  uint16_t head_cin;          /* C, the last block's channels */
  uint8_t head_grid;          /* 0: global average; g: the grid head's g x g regions (format 3) */
  uint8_t head_k;             /* grid head: values per region after the reduce */
  uint32_t head_nin;          /* the classifier's inputs: C, or g * g * k */
  const float *head_reduce;   /* grid head: [k][C]; NULL otherwise */
  const float *head_weight;   /* [classes][head_nin] */
  const float *head_bias;     /* [classes] */
  size_t arena_size;          /* planned by the parser */
} tfr_model_t;

/* Parses and checks a blob (magic, version, flags, size, CRC-32, every section's bounds and
 * shapes, finiteness). Never reads outside blob[0..size). Returns TFR_OK or an error code. */
int tfr_model_parse(tfr_model_t *model, const void *blob, size_t size);

/* Bytes of arena tfr_classify() needs (for a 4-byte aligned arena; add 3 for any alignment).
 * 0 when the model was not parsed. */
size_t tfr_arena_size(const tfr_model_t *model);

/* Classifies one 48x48 grayscale face (row-major) into TFR_NUM_CLASSES softmax scores. */
int tfr_classify(const tfr_model_t *model, void *arena, size_t arena_size,
                 const uint8_t face[TFR_FACE_PIXELS], float scores[TFR_NUM_CLASSES]);

#if defined(TFR_USE_CONV_LUT)
/* Optional fast path (TFR_USE_CONV_LUT with TFR_USE_SIMD; the wasm build): the binary convs
 * count bits by table look-up, one table row per 4-bit nibble of the input window, instead of
 * XOR + popcount. The tables (tfr_lut_size() bytes: 811,024 for tinyfer-b1) are built once per
 * parsed model; tfr_classify_lut() then gives the same scores as tfr_classify(), bit for bit,
 * in the same arena. TFR_ERR_LUT when the tables are too small or were built for another model. */
size_t tfr_lut_size(const tfr_model_t *model);
int tfr_lut_build(const tfr_model_t *model, void *lut, size_t lut_size);
int tfr_classify_lut(const tfr_model_t *model, const void *lut, void *arena, size_t arena_size,
                     const uint8_t face[TFR_FACE_PIXELS], float scores[TFR_NUM_CLASSES]);
#endif

/* A short English sentence for an error code (never NULL). */
const char *tfr_strerror(int err);

/* The canonical label names, index 0..6: angry, disgust, fear, happy, sad, surprise, neutral. */
const char *tfr_label_name(int index);

#ifdef __cplusplus
}
#endif
#endif /* TINYFER_TINYFER_H */
