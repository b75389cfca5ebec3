/*
 * WebAssembly entry points for src/engine/binary.ts. One model per instance, held in a
 * static tfr_model_t; JS owns the rest of linear memory above __heap_base (blob, arena,
 * faces, scores) and passes pointers in.
 */
#include "tinyfer/tinyfer.h"

#define EXPORT(name) __attribute__((export_name(#name)))

static tfr_model_t g_model;
#if defined(TFR_USE_CONV_LUT)
static const void *g_lut; /* the binary convs' lookup tables, once built */
#endif

EXPORT(tfr_wasm_load) int tfr_wasm_load(const uint8_t *blob, size_t size) {
#if defined(TFR_USE_CONV_LUT)
  g_lut = 0;
#endif
  return tfr_model_parse(&g_model, blob, size);
}

EXPORT(tfr_wasm_arena_size) size_t tfr_wasm_arena_size(void) { return tfr_arena_size(&g_model); }

/* Bytes of lookup tables the fast binary conv wants (0: the build has no table path). */
EXPORT(tfr_wasm_lut_size) size_t tfr_wasm_lut_size(void) {
#if defined(TFR_USE_CONV_LUT)
  return tfr_lut_size(&g_model);
#else
  return 0;
#endif
}

/* Builds the tables at lut (tfr_wasm_lut_size() bytes, owned by JS); classify uses them after. */
EXPORT(tfr_wasm_lut_build) int tfr_wasm_lut_build(void *lut, size_t size) {
#if defined(TFR_USE_CONV_LUT)
  const int err = tfr_lut_build(&g_model, lut, size);
  g_lut = err == TFR_OK ? lut : 0;
  return err;
#else
  (void)lut;
  (void)size;
  return TFR_OK;
#endif
}

/* Output i of the model is label tfr_label_name(tfr_wasm_label_index(i)). */
EXPORT(tfr_wasm_label_index) int tfr_wasm_label_index(int i) {
  return i >= 0 && i < TFR_NUM_CLASSES ? g_model.label_index[i] : -1;
}

/* n faces of TFR_FACE_PIXELS bytes each -> n * TFR_NUM_CLASSES scores. */
EXPORT(tfr_wasm_classify)
int tfr_wasm_classify(void *arena, size_t arena_size, const uint8_t *faces, int n, float *scores) {
  int i, err;
  for (i = 0; i < n; i++) {
#if defined(TFR_USE_CONV_LUT)
    if (g_lut)
      err = tfr_classify_lut(&g_model, g_lut, arena, arena_size, faces + (size_t)i * TFR_FACE_PIXELS,
                             scores + (size_t)i * TFR_NUM_CLASSES);
    else
#endif
      err = tfr_classify(&g_model, arena, arena_size, faces + (size_t)i * TFR_FACE_PIXELS,
                         scores + (size_t)i * TFR_NUM_CLASSES);
    if (err) return err;
  }
  return TFR_OK;
}

EXPORT(tfr_wasm_strerror) const char *tfr_wasm_strerror(int err) { return tfr_strerror(err); }
