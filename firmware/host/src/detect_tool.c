/*
 * tinyfer-detect: the device's detect -> crop -> classify path on image files, one JSON line per
 * file, for the detector benchmark (bench/detect.js) and for trying the detector by hand:
 *
 *   tinyfer-detect [--model models/tinyfer-b1.tfer] [--min-face N] FILE...
 *
 * Each file is decoded to 8-bit grayscale exactly as tinyfer-device's camera does (JPEG/PNG),
 * the faces come from tfa_detect_frame (the hook both platforms use), each is cropped with
 * tfa_crop_gray48 and, with --model, classified with tfr_classify. Output per file:
 *   {"file":..,"width":..,"height":..,"detect_us":..,"stats":{..},"faces":[{"x","y","w","h",
 *    "label","scores":[angry, disgust, fear, happy, sad, surprise, neutral]}]}
 * (scores in tfr_label_name order). Exit status 2 on bad arguments, 1 when a file fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "tfa/app.h"
#include "tfa/detect.h"
#include "tinyfer/tinyfer.h"

static tfa_detector g_det;

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static int read_all(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  long n;
  if (!f) return -1;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return -1;
  }
  *data = malloc(n ? (size_t)n : 1);
  if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
    free(*data);
    fclose(f);
    return -1;
  }
  fclose(f);
  *len = (size_t)n;
  return 0;
}

int main(int argc, char **argv) {
  const char *model_path = NULL;
  uint8_t *blob = NULL, *arena = NULL;
  size_t blob_len = 0, arena_size = 0;
  tfr_model_t model;
  tfa_detect_params params;
  int i, failed = 0, nfiles = 0;
  tfa_detect_defaults(&params);
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc) {
      model_path = argv[++i];
    } else if (!strcmp(argv[i], "--min-face") && i + 1 < argc) {
      params.min_face = (uint16_t)atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: tinyfer-detect [--model blob.tfer] [--min-face N] FILE...\n");
      return 2;
    } else {
      nfiles++;
    }
  }
  if (nfiles == 0) {
    fprintf(stderr, "usage: tinyfer-detect [--model blob.tfer] [--min-face N] FILE...\n");
    return 2;
  }
  if (model_path) {
    int r;
    if (read_all(model_path, &blob, &blob_len) != 0) {
      fprintf(stderr, "tinyfer-detect: cannot read %s\n", model_path);
      return 2;
    }
    if ((r = tfr_model_parse(&model, blob, blob_len)) != TFR_OK) {
      fprintf(stderr, "tinyfer-detect: %s: %s\n", model_path, tfr_strerror(r));
      return 2;
    }
    arena_size = tfr_arena_size(&model) + 16;
    arena = aligned_alloc(16, (arena_size + 15) / 16 * 16);
    if (!arena) return 1;
  }
  for (i = 1; i < argc; i++) {
    uint8_t *data = NULL, *gray = NULL;
    size_t len = 0;
    uint16_t w = 0, h = 0;
    char err[160];
    tfa_box boxes[TFA_MAX_FACES];
    long long t0, t1;
    int n, j;
    if (!strcmp(argv[i], "--model") || !strcmp(argv[i], "--min-face")) {
      i++;
      continue;
    }
    if (read_all(argv[i], &data, &len) != 0 || host_decode_gray(data, len, &gray, &w, &h, err, sizeof err) != 0) {
      fprintf(stderr, "tinyfer-detect: %s: cannot decode\n", argv[i]);
      free(data);
      failed = 1;
      continue;
    }
    t0 = now_us();
    if (params.min_face) {
      tfa_face faces[TFA_MAX_FACES];
      n = tfa_detect(&g_det, gray, w, h, w, &params, faces, TFA_MAX_FACES);
      for (j = 0; j < n; j++) boxes[j] = faces[j].box;
      if (n < 0) n = 0;
    } else {
      n = tfa_detect_frame(&g_det, gray, w, h, w, boxes, TFA_MAX_FACES);
    }
    t1 = now_us();
    printf("{\"file\":\"%s\",\"width\":%u,\"height\":%u,\"detect_us\":%lld,", argv[i], w, h, t1 - t0);
    printf("\"stats\":{\"macs_p\":%u,\"macs_r\":%u,\"resize_px\":%u,\"levels\":%u,\"windows\":%u,\"proposals\":%u},\"faces\":[",
           (unsigned)g_det.stats.macs_p, (unsigned)g_det.stats.macs_r, (unsigned)g_det.stats.resize_px,
           (unsigned)g_det.stats.levels, (unsigned)g_det.stats.windows, (unsigned)g_det.stats.proposals);
    for (j = 0; j < n; j++) {
      uint8_t face[TFR_FACE_PIXELS];
      printf("%s{\"x\":%u,\"y\":%u,\"w\":%u,\"h\":%u", j ? "," : "", boxes[j].x, boxes[j].y, boxes[j].w, boxes[j].h);
      if (arena && tfa_crop_gray48(gray, w, h, w, boxes[j], face) == 0) {
        float scores[TFR_NUM_CLASSES], canon[TFR_NUM_CLASSES];
        int k, best = 0;
        if (tfr_classify(&model, arena, arena_size, face, scores) == TFR_OK) {
          for (k = 0; k < TFR_NUM_CLASSES; k++) canon[model.label_index[k]] = scores[k];
          for (k = 1; k < TFR_NUM_CLASSES; k++)
            if (canon[k] > canon[best]) best = k;
          printf(",\"label\":\"%s\",\"scores\":[", tfr_label_name(best));
          for (k = 0; k < TFR_NUM_CLASSES; k++) printf("%s%.6f", k ? "," : "", (double)canon[k]);
          printf("]");
        }
      }
      printf("}");
    }
    printf("]}\n");
    free(data);
    free(gray);
  }
  free(arena);
  free(blob);
  return failed;
}
