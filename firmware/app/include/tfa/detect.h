/*
 * The device's face detector: portable C99, integer arithmetic in the hot loops, no allocation
 * (all working memory is the caller's tfa_detector, ~38 KiB; the int8 path, TFA_DET_INT8_DOT, adds
 * ~21 KiB of static repacked weights and per-channel constants), no OS includes. The same source
 * runs on the ESP32-S3 and in the host build (tinyfer-device, the tests, the benchmark).
 *
 * A two-stage cascade of tiny CNNs trained here (scripts/detector/train.js, weights in
 * detect_weights.h), MTCNN-style:
 *   P  a fully convolutional 16x16 window classifier + box regressor, run over an image pyramid
 *      (level 0 puts the smallest face at 16 px; levels shrink by 1/sqrt(2)); every window at a
 *      stride of 4 level pixels is scored; the windows it keeps are merged per level (NMS) and
 *      the best TFA_DET_MAX_PROPOSALS overall go on;
 *   R  a 24x24 classifier + box regressor re-scores each proposal on its own crop of the frame
 *      and refines its box; the survivors are merged (NMS) and returned best first.
 * Boxes are squares framed like a FER2013 face crop (what the classifier was trained on), moved
 * inside the frame.
 */
#ifndef TFA_DETECT_H
#define TFA_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "tfa/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest pyramid level (pixels): a 4:3 frame with the default smallest face (1/5 of the shorter
 * side) has a 106x80 level 0. A smaller min_face is raised until level 0 fits. */
#define TFA_DET_LEVEL_PIXELS 8704u
#define TFA_DET_MAX_PROPOSALS 8
#define TFA_DET_MAX_CANDIDATES 64
/* Frames whose longer side is at most this are one face: the whole frame (the Node pipeline's
 * wholeFaceMaxSide; FER2013 frames are face crops). */
#define TFA_DET_WHOLE_FACE_MAX_SIDE 64

/* Errors (negative returns). */
#define TFA_DET_EINVAL (-1) /* NULL pointer, zero size, stride < width, max < 0, bad params */
#define TFA_DET_ESMALL (-2) /* frame smaller than the 16x16 window */

typedef struct {
  uint16_t min_face;     /* smallest face side in frame pixels; 0: the shorter side / 5 (at least 16) */
  float p_threshold;     /* face logit P keeps (default from the training validation) */
  float r_threshold;     /* face logit R keeps (default 0: probability 0.5) */
  int max_proposals;     /* R runs on at most this many (1..TFA_DET_MAX_PROPOSALS) */
} tfa_detect_params;

typedef struct {
  tfa_box box;
  float score; /* R's probability, 0..1 */
} tfa_face;

typedef struct {
  float x, y, w, h, score;
} tfa_det_cand;

/* What the last call did (trip counts for the cost model): multiply-accumulates per stage,
 * pixels read by the pyramid resizes, pyramid levels, windows scored by P, proposals run by R. */
typedef struct {
  uint32_t macs_p, macs_r, resize_px, levels, windows, proposals, faces;
} tfa_detect_stats;

typedef struct {
  uint8_t level0[TFA_DET_LEVEL_PIXELS];
  uint8_t level[TFA_DET_LEVEL_PIXELS * 3 / 5]; /* level 1 and up: about half of level 0; R's window */
  union {
    uint8_t a1[2 * TFA_DET_LEVEL_PIXELS];   /* P conv1 out (<= 2 x level pixels), then the first pointwise
                                               out (<= 3/4); R scratch */
    uint16_t colsum[TFA_DET_LEVEL_PIXELS];  /* the pyramid resizes' column sums (done before P uses a1) */
  } s;
  uint8_t a2[3 * TFA_DET_LEVEL_PIXELS / 4]; /* P first depthwise out (<= 1/2 x level pixels); R scratch */
  tfa_det_cand lvl[2 * TFA_DET_MAX_CANDIDATES];
  tfa_det_cand cand[TFA_DET_MAX_CANDIDATES];
  int n_lvl, n_cand;
  tfa_detect_stats stats;
} tfa_detector;

void tfa_detect_defaults(tfa_detect_params *p);

/* Faces in a grayscale frame (row stride `stride` bytes): up to `max` into out, best first.
 * params NULL: the defaults. Returns the number of faces (0..max) or a TFA_DET_E* error. */
int tfa_detect(tfa_detector *d, const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, const tfa_detect_params *params,
               tfa_face *out, int max);

/* The platforms' detect hook: tfa_detect with the defaults on a captured frame, as boxes; a frame
 * whose longer side is at most TFA_DET_WHOLE_FACE_MAX_SIDE is one face (its centred square).
 * Returns the number of boxes, 0 on any error. */
int tfa_detect_frame(tfa_detector *d, const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, tfa_box *boxes, int max);

/* Integer area averaging of the window (x, y, side_w, side_h) of a frame to kw x kh: output
 * pixel (i, j) is the rounded mean of the source rectangle [x + floor(j*side/k),
 * x + floor((j+1)*side/k)) x [...] (at least one pixel); coordinates outside the frame repeat the
 * nearest edge pixel. The rule the training windows are made with (scripts/detector/train.js
 * resizeArea) and the pyramid is built with. Returns the pixels read. */
uint32_t tfa_resize_area(const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, int32_t x, int32_t y, uint32_t side_w,
                         uint32_t side_h, uint16_t kw, uint16_t kh, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
