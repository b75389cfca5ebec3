/*
 * Runs the device's face detector (tfa_detect_frame, firmware/app/src/detect.c) over N frames of
 * one size, for the ESP32-S3 cost table (scripts/xtensa-cost.js builds it with gcc --coverage and
 * reads the detector's loop trip counts per frame with gcov).
 *   detect_count FRAMES.u8 WIDTH HEIGHT N     (FRAMES.u8: N grayscale frames, WIDTH x HEIGHT bytes
 *                                              each; N = 0 runs nothing)
 * Prints one line per frame: faces and the detector's own counters (tfa_detect_stats).
 */
#include <stdio.h>
#include <stdlib.h>

#include "tfa/detect.h"

static tfa_detector det;

int main(int argc, char **argv) {
  FILE *f;
  uint8_t *frame;
  long w, h, n, i;
  tfa_box boxes[TFA_DET_MAX_PROPOSALS];
  if (argc != 5 || (w = atol(argv[2])) < 16 || (h = atol(argv[3])) < 16 || w > 4096 || h > 4096 || (n = atol(argv[4])) < 0) {
    fprintf(stderr, "usage: detect_count FRAMES.u8 WIDTH HEIGHT N\n");
    return 2;
  }
  if (!(f = fopen(argv[1], "rb"))) {
    fprintf(stderr, "detect_count: cannot open %s\n", argv[1]);
    return 1;
  }
  frame = malloc((size_t)(w * h));
  if (!frame) return 1;
  for (i = 0; i < n; i++) {
    int faces;
    if (fread(frame, 1, (size_t)(w * h), f) != (size_t)(w * h)) {
      fprintf(stderr, "detect_count: %s holds fewer than %ld frames\n", argv[1], n);
      return 1;
    }
    faces = tfa_detect_frame(&det, frame, (uint16_t)w, (uint16_t)h, (size_t)w, boxes, TFA_DET_MAX_PROPOSALS);
    if (faces < 0) {
      fprintf(stderr, "detect_count: tfa_detect_frame failed (%d)\n", faces);
      return 1;
    }
    printf("%ld faces %d macs_p %lu macs_r %lu resize_px %lu proposals %lu\n", i, faces, (unsigned long)det.stats.macs_p,
           (unsigned long)det.stats.macs_r, (unsigned long)det.stats.resize_px, (unsigned long)det.stats.proposals);
  }
  fclose(f);
  free(frame);
  return 0;
}
