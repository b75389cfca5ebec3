/* Runs N inferences, for scripts/callgrind-core.sh (instructions per inference) and quick
 * host timing.  usage: tfr_bench [model.tfer [faces.u8]] [N]
 * Built with TFR_USE_CONV_LUT (tfr_bench_simd) it runs tfr_classify_lut, the wasm build's path.
 * Without a model it builds the default-shaped random model of tests/blob_builder.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob_builder.h"
#include "tinyfer/tinyfer.h"

static uint32_t blob[1 << 18];
static uint32_t arena[1 << 18];
static uint8_t faces[64 * TFR_FACE_PIXELS];
#if defined(TFR_USE_CONV_LUT)
static uint8_t lut[1 << 22]; /* the binary convs' lookup tables (tfr_classify_lut, the wasm path) */
#endif

static size_t read_file(const char *path, void *dst, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;
  if (!f) {
    fprintf(stderr, "tfr_bench: cannot open %s\n", path);
    exit(2);
  }
  n = fread(dst, 1, cap, f);
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  tfr_model_t model;
  size_t size, nfaces = 1, i;
  int n = 10, err;
  float scores[TFR_NUM_CLASSES], sink = 0;
  clock_t t0;
  if (argc >= 3) {
    size = read_file(argv[1], blob, sizeof blob);
    if (argc >= 4) {
      nfaces = read_file(argv[2], faces, sizeof faces) / TFR_FACE_PIXELS;
      n = atoi(argv[3]);
    } else {
      n = atoi(argv[2]);
    }
  } else {
    tfb_spec s;
    const tfb_block_spec blocks[] = {{1, 16, 16, 1, 0}, {1, 16, 32, 2, 0}, {1, 32, 32, 1, 0}, {2, 0, 0, 0, 8},
                                     {1, 32, 64, 2, 0}, {1, 64, 64, 1, 0}, {2, 0, 0, 0, 16}};
    memset(&s, 0, sizeof s);
    s.stem_cout = 16;
    s.num_blocks = 7;
    for (i = 0; i < 7; i++) s.blocks[i] = blocks[i];
    size = tfb_build((uint8_t *)blob, sizeof blob, &s, 5);
    if (argc == 2) n = atoi(argv[1]);
  }
  if (nfaces == 0) nfaces = 1;
  if (argc < 4)
    for (i = 0; i < TFR_FACE_PIXELS; i++) faces[i] = (uint8_t)((i * 31u + (i / 48u) * 7u) & 0xFF);
  err = tfr_model_parse(&model, blob, size);
  if (err) {
    fprintf(stderr, "tfr_bench: %s\n", tfr_strerror(err));
    return 1;
  }
#if defined(TFR_USE_CONV_LUT)
  err = tfr_lut_build(&model, lut, sizeof lut);
  if (err) {
    fprintf(stderr, "tfr_bench: %s\n", tfr_strerror(err));
    return 1;
  }
#endif
  t0 = clock();
  for (i = 0; i < (size_t)n; i++) {
#if defined(TFR_USE_CONV_LUT)
    err = tfr_classify_lut(&model, lut, arena, sizeof arena, faces + (i % nfaces) * TFR_FACE_PIXELS, scores);
#else
    err = tfr_classify(&model, arena, sizeof arena, faces + (i % nfaces) * TFR_FACE_PIXELS, scores);
#endif
    if (err) {
      fprintf(stderr, "tfr_bench: %s\n", tfr_strerror(err));
      return 1;
    }
    sink += scores[0];
  }
  printf("blob %zu bytes, arena %zu bytes, %d inferences, %.3f ms each (host clock), checksum %g\n", size,
         tfr_arena_size(&model), n, 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC / (n ? n : 1), sink);
  return 0;
}
