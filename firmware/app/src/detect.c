/* The device's face detector (see tfa/detect.h): pyramid, P over every level, NMS, R on the best
 * proposals, NMS. Integer convolutions (uint8 activations, int8 weights, int32 accumulators,
 * fixed-point requantization); float only per kept window (box arithmetic, a sigmoid). */
#include "tfa/detect.h"

#include <math.h>
#include <string.h>

typedef struct {
  uint8_t k, stride;
  uint8_t dw;           /* depthwise: output channel c sees input channel c only (cin == cout) */
  uint16_t cin, cout;
  const int8_t *w;      /* [cout][k][k][cin]; depthwise: [c][k][k] */
  const int32_t *bias;  /* input zero point folded in */
  const int32_t *mult;  /* requantization: out = (acc * mult + 2^(shift-1)) >> shift, 0..255 */
  const int8_t *shift;
  const float *scale;   /* last layer: real output = acc * scale (mult/shift NULL) */
} tfa_det_layer;

#include "detect_weights.h"

#define P_WIN 16
#define R_WIN 24
#define P_STRIDE 4 /* level pixels between P's windows: conv1 stride 2 x conv2 stride 2 */
#define NMS_LEVEL 0.5f
#define NMS_FINAL 0.3f

void tfa_detect_defaults(tfa_detect_params *p) {
  p->min_face = 0;
  p->p_threshold = TFA_DET_P_THRESHOLD;
  p->r_threshold = TFA_DET_R_THRESHOLD;
  p->max_proposals = TFA_DET_MAX_PROPOSALS;
}

uint32_t tfa_resize_area(const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, int32_t x, int32_t y, uint32_t side_w,
                         uint32_t side_h, uint16_t kw, uint16_t kh, uint8_t *out) {
  uint32_t oy, ox, reads = 0;
  for (oy = 0; oy < kh; oy++) {
    int32_t y0 = y + (int32_t)(oy * side_h / kh), y1 = y + (int32_t)((oy + 1) * side_h / kh), yy;
    if (y1 <= y0) y1 = y0 + 1;
    for (ox = 0; ox < kw; ox++) {
      int32_t x0 = x + (int32_t)(ox * side_w / kw), x1 = x + (int32_t)((ox + 1) * side_w / kw), xx;
      uint32_t sum = 0, n;
      if (x1 <= x0) x1 = x0 + 1;
      n = (uint32_t)((y1 - y0) * (x1 - x0));
      for (yy = y0; yy < y1; yy++) {
        const uint8_t *row = gray + (size_t)(yy < 0 ? 0 : yy >= h ? h - 1 : yy) * stride;
        if (x0 >= 0 && x1 <= (int32_t)w) {
          for (xx = x0; xx < x1; xx++) sum += row[xx];
        } else {
          for (xx = x0; xx < x1; xx++) sum += row[xx < 0 ? 0 : xx >= (int32_t)w ? w - 1 : xx];
        }
      }
      reads += n;
      out[oy * kw + ox] = (uint8_t)((sum + n / 2) / n);
    }
  }
  return reads;
}

/* All output channels of layer L at one position whose window starts at `in` (row pitch `pitch`
 * bytes): int32 accumulators into acc[cout]. */
static void conv_at(const tfa_det_layer *L, const uint8_t *in, size_t pitch, int32_t *acc) {
  const uint32_t run = (uint32_t)L->k * L->cin; /* one kernel row: k x cin contiguous bytes */
  const int8_t *w = L->w;
  uint16_t co;
  if (L->dw) {
    for (co = 0; co < L->cout; co++) {
      int32_t s = L->bias[co];
      uint8_t ky, kx;
      for (ky = 0; ky < L->k; ky++) {
        const uint8_t *a = in + ky * pitch + co;
        for (kx = 0; kx < L->k; kx++) s += (int32_t)*w++ * (int32_t)a[(size_t)kx * L->cin];
      }
      acc[co] = s;
    }
    return;
  }
  for (co = 0; co < L->cout; co++) {
    int32_t s = L->bias[co];
    uint8_t ky;
    for (ky = 0; ky < L->k; ky++) {
      const uint8_t *a = in + ky * pitch;
      uint32_t i;
      for (i = 0; i < run; i++) s += (int32_t)w[i] * (int32_t)a[i];
      w += run;
    }
    acc[co] = s;
  }
}

static uint8_t requant(const tfa_det_layer *L, uint16_t co, int32_t acc) {
  int64_t v;
  if (acc <= 0) return 0; /* ReLU */
  v = ((int64_t)acc * L->mult[co] + ((int64_t)1 << (L->shift[co] - 1))) >> L->shift[co];
  return (uint8_t)(v > 255 ? 255 : v);
}

/* A valid (unpadded) convolution + ReLU over an iw x ih x cin map into out; returns the MACs. */
static uint32_t conv_layer(const tfa_det_layer *L, const uint8_t *in, int iw, int ih, uint8_t *out, int *ow, int *oh) {
  int32_t acc[48];
  int x, y;
  uint16_t co;
  const size_t pitch = (size_t)iw * L->cin;
  *ow = (iw - L->k) / L->stride + 1;
  *oh = (ih - L->k) / L->stride + 1;
  for (y = 0; y < *oh; y++) {
    for (x = 0; x < *ow; x++) {
      conv_at(L, in + (size_t)y * L->stride * pitch + (size_t)x * L->stride * L->cin, pitch, acc);
      for (co = 0; co < L->cout; co++) *out++ = requant(L, co, acc[co]);
    }
  }
  return (uint32_t)(*ow * *oh) * L->cout * L->k * L->k * (L->dw ? 1u : L->cin);
}

/* 2x2 max pooling, stride 2 (floor). */
static void maxpool(const uint8_t *in, int iw, int ih, int c, uint8_t *out, int *ow, int *oh) {
  int x, y, ch;
  *ow = iw / 2;
  *oh = ih / 2;
  for (y = 0; y < *oh; y++)
    for (x = 0; x < *ow; x++)
      for (ch = 0; ch < c; ch++) {
        const uint8_t *a = in + ((size_t)(2 * y) * iw + 2 * x) * c + ch;
        uint8_t m = a[0];
        if (a[c] > m) m = a[c];
        if (a[(size_t)iw * c] > m) m = a[(size_t)iw * c];
        if (a[(size_t)iw * c + c] > m) m = a[(size_t)iw * c + c];
        *out++ = m;
      }
}

static float iou(const tfa_det_cand *a, const tfa_det_cand *b) {
  float x0 = a->x > b->x ? a->x : b->x, y0 = a->y > b->y ? a->y : b->y;
  float x1 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
  float y1 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
  float i = (x1 > x0 && y1 > y0) ? (x1 - x0) * (y1 - y0) : 0.0f;
  float u = a->w * a->h + b->w * b->h - i;
  return u > 0.0f ? i / u : 0.0f;
}

/* Intersection over the smaller box: a box mostly inside another is the same face. */
static float overlap_min(const tfa_det_cand *a, const tfa_det_cand *b) {
  float x0 = a->x > b->x ? a->x : b->x, y0 = a->y > b->y ? a->y : b->y;
  float x1 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
  float y1 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
  float i = (x1 > x0 && y1 > y0) ? (x1 - x0) * (y1 - y0) : 0.0f;
  float m = a->w * a->h < b->w * b->h ? a->w * a->h : b->w * b->h;
  return m > 0.0f ? i / m : 0.0f;
}

/* Sort by score, best first (insertion sort: n <= 128), then greedy NMS; returns the count kept. */
static int nms(tfa_det_cand *c, int n, float thr, int final) {
  int i, j, kept = 0;
  for (i = 1; i < n; i++) {
    tfa_det_cand t = c[i];
    for (j = i; j > 0 && c[j - 1].score < t.score; j--) c[j] = c[j - 1];
    c[j] = t;
  }
  for (i = 0; i < n; i++) {
    int keep = 1;
    for (j = 0; j < kept && keep; j++)
      if (iou(&c[i], &c[j]) > thr || (final && overlap_min(&c[i], &c[j]) > 0.7f)) keep = 0;
    if (keep) c[kept++] = c[i];
  }
  return kept;
}

/* Add to a bounded list: when full, the new candidate replaces the lowest-scoring one if better. */
static void push(tfa_det_cand *c, int *n, int cap, const tfa_det_cand *v) {
  int i, lo = 0;
  if (*n < cap) {
    c[(*n)++] = *v;
    return;
  }
  for (i = 1; i < cap; i++)
    if (c[i].score < c[lo].score) lo = i;
  if (v->score > c[lo].score) c[lo] = *v;
}

/* The square of the same centre whose side is the longer side. */
static void square(tfa_det_cand *c) {
  float s = c->w > c->h ? c->w : c->h;
  c->x += (c->w - s) / 2;
  c->y += (c->h - s) / 2;
  c->w = c->h = s;
}

/* P over one pyramid level (lw x lh pixels; fx, fy frame pixels per level pixel). Layers: conv
 * 4x4/2, depthwise 3x3/2 + pointwise, then per window depthwise 3x3 + pointwise + the 1x1 head. */
static void run_p(tfa_detector *d, const uint8_t *lvl, int lw, int lh, float fx, float fy, const tfa_detect_params *p) {
  const tfa_det_layer *L = tfa_det_p_layers;
  int w1, h1, w2, h2, x, y;
  int32_t acc[16], out[5];
  uint8_t q3[16], q4[16];
  const float thr = p->p_threshold;
  d->stats.macs_p += conv_layer(&L[0], lvl, lw, lh, d->a1, &w1, &h1);
  d->stats.macs_p += conv_layer(&L[1], d->a1, w1, h1, d->a2, &w2, &h2);
  d->stats.macs_p += conv_layer(&L[2], d->a2, w2, h2, d->a1, &w2, &h2);
  d->n_lvl = 0;
  /* the last depthwise 3x3, its pointwise and the head, fused per window */
  for (y = 0; y + L[3].k <= h2; y++) {
    for (x = 0; x + L[3].k <= w2; x++) {
      uint16_t co;
      float logit;
      conv_at(&L[3], d->a1 + ((size_t)y * w2 + x) * L[3].cin, (size_t)w2 * L[3].cin, acc);
      for (co = 0; co < L[3].cout; co++) q3[co] = requant(&L[3], co, acc[co]);
      conv_at(&L[4], q3, 0, acc);
      for (co = 0; co < L[4].cout; co++) q4[co] = requant(&L[4], co, acc[co]);
      conv_at(&L[5], q4, 0, out);
      d->stats.windows++;
      logit = (float)out[0] * L[5].scale[0];
      if (logit >= thr) {
        tfa_det_cand c;
        float side = (float)P_WIN, x0 = (float)(x * P_STRIDE), y0 = (float)(y * P_STRIDE);
        float bx0 = x0 + side * (float)out[1] * L[5].scale[1], by0 = y0 + side * (float)out[2] * L[5].scale[2];
        float bx1 = x0 + side + side * (float)out[3] * L[5].scale[3], by1 = y0 + side + side * (float)out[4] * L[5].scale[4];
        if (bx1 <= bx0 || by1 <= by0) continue;
        c.x = bx0 * fx;
        c.y = by0 * fy;
        c.w = (bx1 - bx0) * fx;
        c.h = (by1 - by0) * fy;
        c.score = logit;
        push(d->lvl, &d->n_lvl, 2 * TFA_DET_MAX_CANDIDATES, &c);
      }
    }
  }
  if (h2 >= L[3].k && w2 >= L[3].k)
    d->stats.macs_p += (uint32_t)(h2 - L[3].k + 1) * (uint32_t)(w2 - L[3].k + 1) *
                       (uint32_t)(L[3].cout * L[3].k * L[3].k + L[4].cout * L[4].cin + L[5].cout * L[5].cin);
  d->n_lvl = nms(d->lvl, d->n_lvl, NMS_LEVEL, 0);
  for (x = 0; x < d->n_lvl; x++) push(d->cand, &d->n_cand, TFA_DET_MAX_CANDIDATES, &d->lvl[x]);
}

/* R on one proposal; returns 1 and the refined face when R keeps it. */
static int run_r(tfa_detector *d, const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, tfa_det_cand *c, float thr) {
  const tfa_det_layer *L = tfa_det_r_layers;
  uint8_t *win = d->level; /* 576 bytes; P is done with the pyramid */
  int32_t out[5];
  int ow, oh, pw, ph;
  int32_t x0, y0;
  uint32_t side;
  float logit, s;
  square(c);
  side = (uint32_t)(c->w + 0.5f);
  if (side < 1) side = 1;
  x0 = (int32_t)floorf(c->x + 0.5f);
  y0 = (int32_t)floorf(c->y + 0.5f);
  d->stats.resize_px += tfa_resize_area(gray, w, h, stride, x0, y0, side, side, R_WIN, R_WIN, win);
  d->stats.macs_r += conv_layer(&L[0], win, R_WIN, R_WIN, d->a1, &ow, &oh);
  maxpool(d->a1, ow, oh, L[0].cout, d->a2, &pw, &ph);
  d->stats.macs_r += conv_layer(&L[1], d->a2, pw, ph, d->a1, &ow, &oh);
  maxpool(d->a1, ow, oh, L[1].cout, d->a2, &pw, &ph);
  d->stats.macs_r += conv_layer(&L[2], d->a2, pw, ph, d->a1, &ow, &oh);
  d->stats.macs_r += conv_layer(&L[3], d->a1, 1, 1, d->a2, &pw, &ph); /* dense = 1x1 conv on the flattened map */
  conv_at(&L[4], d->a2, 0, out);
  d->stats.macs_r += (uint32_t)L[4].cout * L[4].cin;
  d->stats.proposals++;
  logit = (float)out[0] * L[4].scale[0];
  if (logit < thr) return 0;
  s = (float)side;
  {
    float bx0 = (float)x0 + s * (float)out[1] * L[4].scale[1], by0 = (float)y0 + s * (float)out[2] * L[4].scale[2];
    float bx1 = (float)x0 + s + s * (float)out[3] * L[4].scale[3], by1 = (float)y0 + s + s * (float)out[4] * L[4].scale[4];
    if (bx1 <= bx0 || by1 <= by0) return 0;
    c->x = bx0;
    c->y = by0;
    c->w = bx1 - bx0;
    c->h = by1 - by0;
  }
  square(c);
  c->score = 1.0f / (1.0f + expf(-logit));
  return 1;
}

int tfa_detect(tfa_detector *d, const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, const tfa_detect_params *params,
               tfa_face *out, int max) {
  tfa_detect_params p;
  uint32_t short_side, face, lw0, lh0;
  int i, n = 0;
  if (!d || !gray || (!out && max > 0) || max < 0 || w == 0 || h == 0 || stride < w) return TFA_DET_EINVAL;
  if (params) {
    p = *params;
    if (p.max_proposals < 1 || p.max_proposals > TFA_DET_MAX_PROPOSALS || !(p.p_threshold == p.p_threshold) ||
        !(p.r_threshold == p.r_threshold))
      return TFA_DET_EINVAL;
  } else {
    tfa_detect_defaults(&p);
  }
  if (w < P_WIN || h < P_WIN) return TFA_DET_ESMALL;
  memset(&d->stats, 0, sizeof d->stats);
  d->n_cand = 0;
  short_side = w < h ? w : h;
  face = p.min_face ? p.min_face : short_side / 5;
  if (face < P_WIN) face = P_WIN;
  if (face > short_side) face = short_side;
  /* level 0 must fit: raise the smallest face until it does */
  for (;;) {
    lw0 = (uint32_t)w * P_WIN / face;
    lh0 = (uint32_t)h * P_WIN / face;
    if (lw0 * lh0 <= TFA_DET_LEVEL_PIXELS) break;
    face++;
  }
  d->stats.resize_px += tfa_resize_area(gray, w, h, stride, 0, 0, w, h, (uint16_t)lw0, (uint16_t)lh0, d->level0);
  {
    /* levels: the face side grows by sqrt(2) per level (kept as face x 2^(k/2) exactly) */
    uint32_t k;
    for (k = 0;; k++) {
      uint32_t f = (k & 1) ? (uint32_t)((float)face * 1.41421356f * (float)(1u << (k / 2)) + 0.5f) : face << (k / 2);
      uint32_t lw = (uint32_t)w * P_WIN / f, lh = (uint32_t)h * P_WIN / f;
      const uint8_t *lvl;
      if (lw < P_WIN || lh < P_WIN) break;
      if (k == 0) {
        lvl = d->level0;
      } else if (lw * lh > sizeof d->level) {
        continue; /* cannot happen with TFA_DET_LEVEL_PIXELS * 3 / 5 (see detect.h) */
      } else {
        d->stats.resize_px += tfa_resize_area(d->level0, (uint16_t)lw0, (uint16_t)lh0, lw0, 0, 0, lw0, lh0, (uint16_t)lw, (uint16_t)lh, d->level);
        lvl = d->level;
      }
      run_p(d, lvl, (int)lw, (int)lh, (float)w / (float)lw, (float)h / (float)lh, &p);
      d->stats.levels++;
    }
  }
  d->n_cand = nms(d->cand, d->n_cand, NMS_LEVEL, 0);
  if (d->n_cand > p.max_proposals) d->n_cand = p.max_proposals;
  for (i = 0; i < d->n_cand; i++)
    if (run_r(d, gray, w, h, stride, &d->cand[i], p.r_threshold)) d->cand[n++] = d->cand[i];
  n = nms(d->cand, n, NMS_FINAL, 1);
  if (n > max) n = max;
  for (i = 0; i < n; i++) {
    const tfa_det_cand *c = &d->cand[i];
    float side = c->w, x = c->x, y = c->y;
    if (side > (float)short_side) {
      x += (side - (float)short_side) / 2;
      y += (side - (float)short_side) / 2;
      side = (float)short_side;
    }
    if (side < 1.0f) side = 1.0f;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x + side > (float)w) x = (float)w - side;
    if (y + side > (float)h) y = (float)h - side;
    out[i].box.x = (uint16_t)(x + 0.5f);
    out[i].box.y = (uint16_t)(y + 0.5f);
    out[i].box.w = out[i].box.h = (uint16_t)(side + 0.5f);
    if (out[i].box.x + out[i].box.w > w) out[i].box.w = out[i].box.h = (uint16_t)(w - out[i].box.x);
    if (out[i].box.y + out[i].box.h > h) out[i].box.w = out[i].box.h = (uint16_t)(h - out[i].box.y);
    out[i].score = c->score;
  }
  d->stats.faces = (uint32_t)n;
  return n;
}

int tfa_detect_frame(tfa_detector *d, const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, tfa_box *boxes, int max) {
  tfa_face faces[TFA_DET_MAX_PROPOSALS];
  int i, n;
  if (!boxes || max < 1 || !gray || w == 0 || h == 0) return 0;
  if ((w > h ? w : h) <= TFA_DET_WHOLE_FACE_MAX_SIDE) {
    boxes[0] = tfa_centre_square(w, h);
    return 1;
  }
  n = tfa_detect(d, gray, w, h, stride, NULL, faces, max < TFA_DET_MAX_PROPOSALS ? max : TFA_DET_MAX_PROPOSALS);
  if (n < 0) return 0;
  for (i = 0; i < n; i++) boxes[i] = faces[i].box;
  return n;
}
