/* libFuzzer target: parse arbitrary bytes as a model blob and, when they parse, run one
 * inference on a face taken from the same bytes. Build with -DTFR_FUZZ=ON (clang). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinyfer/tinyfer.h"

#define MAX_ARENA (4u * 1024u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfr_model_t model;
  uint32_t *aligned = (uint32_t *)malloc(size / 4 + 1);
  uint8_t face[TFR_FACE_PIXELS];
  float scores[TFR_NUM_CLASSES];
  size_t i, need;
  int err;
  if (!aligned) return 0;
  aligned = (uint32_t *)realloc(aligned, (size / 4 + 1) * 4);
  if (!aligned) return 0;
  if (size) memcpy(aligned, data, size);
  err = tfr_model_parse(&model, aligned, size);
  if (tfr_strerror(err) == NULL) abort();
  if (err == TFR_OK) {
    need = tfr_arena_size(&model);
    if (need > 0 && need <= MAX_ARENA) {
      /* exactly sized heap arena: ASan flags any access past the plan */
      void *arena = malloc(need);
      for (i = 0; i < TFR_FACE_PIXELS; i++) face[i] = size ? data[i % size] : 0;
      if (arena) {
        if (tfr_classify(&model, arena, need, face, scores) != TFR_OK) abort();
        if (tfr_classify(&model, arena, need - 4, face, scores) != TFR_ERR_ARENA_SMALL) abort();
        free(arena);
      }
    }
  }
  free(aligned);
  return 0;
}
