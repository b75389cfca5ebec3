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

/* The pyramid's resizes: a whole w x h image (row stride `stride`) to kw x kh (kw <= w, kh <= h,
 * w <= TFA_DET_LEVEL_PIXELS, at most 257 rows per output row), the same pixels as
 * tfa_resize_area(src, w, h, stride, 0, 0, w, h, kw, kh, out), summed column-wise first: per output
 * row, its band of source rows is added into colsum (one pass over the pixels, no per-box row
 * loop), then each output pixel adds its box's columns. Box edges advance without a division:
 * ox * w = fx * kw + rx. Returns the pixels read (w x h: the boxes tile the image). */
static uint32_t resize_whole(const uint8_t *src, uint32_t w, uint32_t h, size_t stride, uint32_t kw, uint32_t kh,
                             uint16_t *restrict colsum, uint8_t *restrict out) {
  const uint32_t qx = w / kw, mx = w % kw;
  uint32_t oy;
  for (oy = 0; oy < kh; oy++) {
    const uint32_t y0 = oy * h / kh, y1 = (oy + 1) * h / kh, bh = y1 - y0;
    const uint8_t *r = src + (size_t)y0 * stride;
    uint32_t x, y, ox, x0 = 0, fx = 0, rx = 0;
    /* the band's rows, up to three per pass over colsum */
    if (bh >= 3) {
      for (x = 0; x < w; x++) colsum[x] = (uint16_t)(r[x] + r[x + stride] + r[x + 2 * stride]);
      y = 3;
    } else if (bh == 2) {
      for (x = 0; x < w; x++) colsum[x] = (uint16_t)(r[x] + r[x + stride]);
      y = 2;
    } else {
      for (x = 0; x < w; x++) colsum[x] = r[x];
      y = 1;
    }
    for (r += (size_t)y * stride; y + 2 <= bh; y += 2, r += 2 * stride)
      for (x = 0; x < w; x++) colsum[x] = (uint16_t)(colsum[x] + r[x] + r[x + stride]);
    if (y < bh)
      for (x = 0; x < w; x++) colsum[x] = (uint16_t)(colsum[x] + r[x]);
    for (ox = 0; ox < kw; ox++) {
      uint32_t s = 0, n;
      fx += qx;
      rx += mx;
      if (rx >= kw) {
        rx -= kw;
        fx++;
      }
      n = (fx - x0) * bh;
      for (x = x0; x < fx; x++) s += colsum[x];
      *out++ = (uint8_t)((s + n / 2) / n);
      x0 = fx;
    }
  }
  return w * h;
}

/* A whole-image pyramid resize: resize_whole where it applies, else tfa_resize_area. */
static uint32_t resize_level(tfa_detector *d, const uint8_t *src, uint32_t w, uint32_t h, size_t stride, uint32_t kw, uint32_t kh,
                             uint8_t *out) {
  if (kw <= w && kh <= h && w <= TFA_DET_LEVEL_PIXELS && (h + kh - 1) / kh <= 257u) return resize_whole(src, w, h, stride, kw, kh, d->s.colsum, out);
  return tfa_resize_area(src, (uint16_t)w, (uint16_t)h, stride, 0, 0, w, h, (uint16_t)kw, (uint16_t)kh, out);
}

/* Dot product of n int8 weights and n uint8 activations, four at a time (fewer loop and pointer
 * steps per multiply on the ESP32-S3: one zero-overhead loop, indexed loads). */
static inline int32_t dot_u8(const int8_t *w, const uint8_t *a, uint32_t n) {
  int32_t s = 0;
  uint32_t i;
  for (i = n >> 2; i > 0; i--) {
    s += (int32_t)w[0] * (int32_t)a[0] + (int32_t)w[1] * (int32_t)a[1] + (int32_t)w[2] * (int32_t)a[2] +
         (int32_t)w[3] * (int32_t)a[3];
    w += 4;
    a += 4;
  }
  for (i = n & 3u; i > 0; i--) s += (int32_t)*w++ * (int32_t)*a++;
  return s;
}

/* ReLU and requantization: (acc * mult + 2^(shift-1)) >> shift, clamped to 255, in 32-bit
 * arithmetic (no 64-bit product or shift on the ESP32-S3). The trainer writes mult in 1..2^15
 * and shift in 16..31 (scripts/detector/train.js refuses others; these weights have mult
 * 2^14..2^15, shift 20..25). With acc = q * 2^16 + r (0 < acc < 2^31, so q < 2^15, r < 2^16):
 * acc * mult + 2^(shift-1) = q * mult * 2^16 + X, X = r * mult + 2^(shift-1) < 2^31 + 2^30, and
 * floor((q * mult * 2^16 + X) / 2^shift) = (q * mult + (X >> 16)) >> (shift - 16) exactly; acc <= 0
 * is taken as 0 (ReLU), which gives 0. */
static inline uint8_t requant(int32_t mult, int8_t shift, int32_t acc) {
  const uint32_t sh = (uint32_t)shift, m = (uint32_t)mult;
  const uint32_t a = acc > 0 ? (uint32_t)acc : 0u; /* ReLU: 0 requantizes to 0, no branch */
  const uint32_t x = (a & 0xffffu) * m + (1u << (sh - 1));
  const uint32_t v = ((a >> 16) * m + (x >> 16)) >> (sh - 16);
  return (uint8_t)(v < 255u ? v : 255u);
}


/* The largest window a full (not depthwise) convolution gathers: k x k x cin bytes. */
#define WIN_MAX 160

#if defined(TFA_DET_INT8_DOT)
/* The int8 x int8 path (TFA_DET_INT8_DOT; on the ESP32-S3 with TFA_DET_PIE its dot products are
 * PIE vector instructions, idf.py -DTINYFER_PIE=1). PIE multiplies signed bytes, the activations
 * are 0..255: with a' = a - 128 (-128..127), sum(w * a) = sum(w * a') + 128 * sum(w), exactly, so
 * each output channel's bias gets 128 * sum(w) once (at packing) and the window is shifted as it
 * is gathered. A full convolution's weights are repacked once per process: each output channel's
 * k x k x cin bytes padded with zeros to whole 16-byte vectors, 16-byte aligned (PIE's 128-bit
 * loads); the gathered window is padded with zeros the same way. Same integers as the reference
 * path, so the same boxes and scores. */
typedef struct {
  int32_t bias;  /* bias + 128 * sum(w) */
  uint32_t mult; /* requantization multiplier */
  uint32_t rnd;  /* 2^(shift-1) */
  uint32_t sh;   /* shift - 16 */
} tfa_det_chan;

typedef struct {
  const int8_t *w;       /* [cout][nv * 16], 16-byte aligned; NULL: the layer is not packed */
  int32_t *bias;         /* bias + 128 * sum(w) per output channel */
  const tfa_det_chan *q; /* per output channel: bias and requantization together (mult != NULL) */
  uint32_t nv;           /* 16-byte vectors per output channel */
} tfa_det_pack;

#define PACK_BYTES 16384u  /* the weights take 13,632 padded bytes */
#define PACK_CHANNELS 256u /* and 154 output channels */
static int8_t pack_raw[PACK_BYTES + 16];
static int32_t pack_bias[PACK_CHANNELS];
static tfa_det_chan pack_chan[PACK_CHANNELS];
static tfa_det_pack pack_p[sizeof tfa_det_p_layers / sizeof tfa_det_p_layers[0]];
static tfa_det_pack pack_r[sizeof tfa_det_r_layers / sizeof tfa_det_r_layers[0]];
static int packed; /* once per process: the same bytes every time, from const weights */

static int8_t *align16(int8_t *p) { return p + ((16u - ((uintptr_t)p & 15u)) & 15u); }

static void pack_layers(const tfa_det_layer *L, size_t n, tfa_det_pack *pk, size_t *used, size_t *chans) {
  int8_t *base = align16(pack_raw);
  size_t l;
  for (l = 0; l < n; l++, L++, pk++) {
    const uint32_t len = (uint32_t)L->k * L->k * L->cin, nv = (len + 15u) / 16u;
    uint16_t co;
    pk->w = NULL;
    if (L->dw || len > WIN_MAX || *used + (size_t)L->cout * nv * 16u > PACK_BYTES || *chans + L->cout > PACK_CHANNELS)
      continue; /* the reference path */
    pk->w = base + *used;
    pk->bias = pack_bias + *chans;
    pk->q = pack_chan + *chans;
    pk->nv = nv;
    for (co = 0; co < L->cout; co++) {
      const int8_t *src = L->w + (size_t)co * len;
      int8_t *dst = base + *used + (size_t)co * nv * 16u;
      int32_t sum = 0;
      uint32_t i;
      for (i = 0; i < len; i++) sum += dst[i] = src[i];
      for (; i < nv * 16u; i++) dst[i] = 0;
      pk->bias[co] = L->bias[co] + 128 * sum;
      pack_chan[*chans + co].bias = pk->bias[co];
      pack_chan[*chans + co].mult = L->mult ? (uint32_t)L->mult[co] : 0u;
      pack_chan[*chans + co].rnd = L->mult ? 1u << (L->shift[co] - 1) : 0u;
      pack_chan[*chans + co].sh = L->mult ? (uint32_t)(L->shift[co] - 16) : 0u;
    }
    *used += (size_t)L->cout * nv * 16u;
    *chans += L->cout;
  }
}

static void pack_all(void) {
  size_t used = 0, chans = 0;
  if (packed) return;
  pack_layers(tfa_det_p_layers, sizeof pack_p / sizeof pack_p[0], pack_p, &used, &chans);
  pack_layers(tfa_det_r_layers, sizeof pack_r / sizeof pack_r[0], pack_r, &used, &chans);
  packed = 1;
}

static const tfa_det_pack *pack_of(const tfa_det_layer *L) {
  if (L >= tfa_det_p_layers && L < tfa_det_p_layers + sizeof pack_p / sizeof pack_p[0]) return &pack_p[L - tfa_det_p_layers];
  if (L >= tfa_det_r_layers && L < tfa_det_r_layers + sizeof pack_r / sizeof pack_r[0]) return &pack_r[L - tfa_det_r_layers];
  return NULL;
}

/* w . a over nv >= 1 vectors of 16 signed bytes (both 16-byte aligned), software-pipelined as the
 * PIE code is: the first pair loaded, then nv - 1 steps that multiply-accumulate the loaded pair
 * while loading the next one, then the last multiply-accumulate. The loop is the same source line
 * on the device and on the host, so the host's trip counts are the device's. |sum| <= 16384 x 160:
 * the low 32 bits of PIE's 40-bit ACCX are the sum. */
#if defined(TFA_DET_PIE)
/* ESP32-S3 PIE: ACCX is the accumulator; a step is the MAC of q0 . q1 fused with the next load of
 * a into q0 (the MAC uses q0 as it was), then the next load of w into q1. */
#define DOT_DECL
#define DOT_FIRST(a, w) \
  __asm__ volatile("ee.zero.accx\n\tee.vld.128.ip q0, %0, 16\n\tee.vld.128.ip q1, %1, 16" : "+r"(a), "+r"(w) : : "memory")
#define DOT_STEP(a, w) \
  __asm__ volatile("ee.vmulas.s8.accx.ld.ip q0, %0, 16, q0, q1\n\tee.vld.128.ip q1, %1, 16" : "+r"(a), "+r"(w) : : "memory")
#define DOT_LAST(s) __asm__ volatile("ee.vmulas.s8.accx q0, q1\n\trur.accx_0 %0" : "=r"(s) : : "memory")
/* One-vector windows (k x k x cin <= 16 bytes): the window is loaded into q0 once per position
 * (DOT1_WINDOW), then each output channel is one load of its weights into q1 and one
 * multiply-accumulate (DOT1: w advances by 16). */
#define DOT1_DECL
#define DOT1_WINDOW(a) __asm__ volatile("ee.vld.128.ip q0, %0, 0" : : "r"(a) : "memory")
#define DOT1(s, w) \
  __asm__ volatile("ee.zero.accx\n\tee.vld.128.ip q1, %1, 16\n\tee.vmulas.s8.accx q0, q1\n\trur.accx_0 %0" : "=&r"(s), "+r"(w) : : "memory")
#else
/* the portable twin: the "registers" q0, q1 are pointers to the loaded vectors */
static int32_t dot16_s8(const int8_t *q0, const int8_t *q1) {
  int32_t s = 0;
  int j;
  for (j = 0; j < 16; j++) s += (int32_t)q0[j] * (int32_t)q1[j];
  return s;
}
#define DOT_DECL int32_t s_ = 0; const int8_t *q0_, *q1_;
#define DOT_FIRST(a, w) (q0_ = (a), q1_ = (w), (a) += 16, (w) += 16)
#define DOT_STEP(a, w) (s_ += dot16_s8(q0_, q1_), q0_ = (a), q1_ = (w), (a) += 16, (w) += 16)
#define DOT_LAST(s) ((s) = s_ + dot16_s8(q0_, q1_))
#define DOT1_DECL const int8_t *q0w_;
#define DOT1_WINDOW(a) (q0w_ = (a))
#define DOT1(s, w) ((s) = dot16_s8(q0w_, (w)), (w) += 16)
#endif
static inline int32_t dot_s8(const int8_t *w, const int8_t *a, uint32_t nv) {
  int32_t s;
  uint32_t i;
  DOT_DECL
  DOT_FIRST(a, w);
  for (i = 1; i < nv; i++) DOT_STEP(a, w);
  DOT_LAST(s);
  return s;
}

/* requant(mult, shift, acc) with the channel's constants precomputed at packing (one pointer). */
static inline uint8_t requant_q(const tfa_det_chan *q, int32_t acc) {
  const int32_t s = acc + q->bias;
  const uint32_t a = s > 0 ? (uint32_t)s : 0u;
  const uint32_t x = (a & 0xffffu) * q->mult + q->rnd;
  const uint32_t v = ((a >> 16) * q->mult + (x >> 16)) >> q->sh;
  return (uint8_t)(v < 255u ? v : 255u);
}

/* A packed full convolution + ReLU + requantization over ow x oh positions (the first at `in`,
 * row pitch `pitch`), into out: per position the window is gathered once (shifted to signed, its
 * zero padding written once per call), then every output channel is one dot product and its
 * requantization. The layer's arrays are held in locals (the byte stores may alias anything). */
static void conv_layer_s8(const tfa_det_layer *L, const tfa_det_pack *pk, const uint8_t *in, size_t pitch, int ow, int oh, uint8_t *out) {
  int8_t raw[WIN_MAX + 16 + 16];
  int8_t *win = align16(raw);
  const int8_t *w0 = pk->w;
  const tfa_det_chan *q0 = pk->q;
  const uint32_t nv = pk->nv, nb = nv * 16u, k = L->k, run = k * L->cin;
  const size_t xstep = (size_t)L->stride * L->cin, ystep = (size_t)L->stride * pitch;
  const uint16_t n = L->cout;
  int x, y;
  uint32_t i;
  DOT1_DECL
  for (i = run * k; i < nb; i++) win[i] = 0;
  for (y = 0; y < oh; y++) {
    const uint8_t *pos = in + (size_t)y * ystep;
    for (x = 0; x < ow; x++, pos += xstep) {
      const uint8_t *a = pos;
      int8_t *o = win;
      const int8_t *wv = w0;
      const tfa_det_chan *q = q0;
      uint32_t ky;
      uint16_t co;
      for (ky = 0; ky < k; ky++, a += pitch) {
        if ((run & 3u) == 0) {
          for (i = 0; i < run; i += 4, o += 4) {
            o[0] = (int8_t)((int32_t)a[i] - 128);
            o[1] = (int8_t)((int32_t)a[i + 1] - 128);
            o[2] = (int8_t)((int32_t)a[i + 2] - 128);
            o[3] = (int8_t)((int32_t)a[i + 3] - 128);
          }
        } else {
          for (i = 0; i < run; i++) *o++ = (int8_t)((int32_t)a[i] - 128);
        }
      }
      if (nv == 1) {
        DOT1_WINDOW(win);
        for (co = 0; co < n; co++, q++) {
          int32_t s;
          DOT1(s, wv);
          *out++ = requant_q(q, s);
        }
      } else {
        for (co = 0; co < n; co++, q++, wv += nb) *out++ = requant_q(q, dot_s8(wv, win, nv));
      }
    }
  }
}
#endif

/* All output channels of layer L at one position whose window starts at `in` (row pitch `pitch`
 * bytes): int32 accumulators into acc[cout]. A full convolution with k > 1 first gathers its
 * window (k rows of k x cin contiguous bytes) into one run, so each output channel is one dot
 * product over k x k x cin bytes, its weights' own layout [k][k][cin]. */
static void conv_at(const tfa_det_layer *L, const uint8_t *in, size_t pitch, int32_t *acc) {
  const uint32_t run = (uint32_t)L->k * L->cin; /* one kernel row: k x cin contiguous bytes */
  const int8_t *w = L->w;
  uint16_t co;
  if (L->dw) {
    for (co = 0; co < L->cout; co++) {
      int32_t s = L->bias[co];
      uint8_t ky, kx;
      if (L->k == 3) { /* every depthwise layer: the 3 x 3 taps written out */
        const uint8_t *a = in + co;
        const size_t c = L->cin;
        for (ky = 0; ky < 3; ky++, a += pitch, w += 3)
          s += (int32_t)w[0] * (int32_t)a[0] + (int32_t)w[1] * (int32_t)a[c] + (int32_t)w[2] * (int32_t)a[2 * c];
      } else {
        for (ky = 0; ky < L->k; ky++) {
          const uint8_t *a = in + ky * pitch + co;
          for (kx = 0; kx < L->k; kx++) s += (int32_t)*w++ * (int32_t)a[(size_t)kx * L->cin];
        }
      }
      acc[co] = s;
    }
    return;
  }
#if defined(TFA_DET_INT8_DOT)
  {
    const tfa_det_pack *pk = pack_of(L);
    if (pk && pk->w) {
      int8_t raw[WIN_MAX + 16 + 16];
      int8_t *win = align16(raw), *o = win;
      const int8_t *wv = pk->w;
      const int32_t *bias = pk->bias; /* in locals: the window's byte stores may alias anything */
      const uint32_t nv = pk->nv, nb = nv * 16u;
      const uint16_t n = L->cout;
      uint8_t ky;
      uint32_t i;
      for (ky = 0; ky < L->k; ky++) {
        const uint8_t *a = in + ky * pitch;
        for (i = 0; i < run; i++) *o++ = (int8_t)((int32_t)a[i] - 128);
      }
      for (i = run * L->k; i < nb; i++) *o++ = 0;
      for (co = 0; co < n; co++, wv += nb) acc[co] = bias[co] + dot_s8(wv, win, nv);
      return;
    }
  }
#endif
  if (L->k > 1 && run * L->k <= WIN_MAX) {
    uint8_t win[WIN_MAX];
    const uint32_t n = run * L->k;
    const int32_t *bias = L->bias;
    const uint16_t cout = L->cout;
    uint8_t ky;
    uint8_t *o = win;
    for (ky = 0; ky < L->k; ky++) {
      const uint8_t *a = in + ky * pitch;
      uint32_t i;
      for (i = 0; i < run; i++) *o++ = a[i];
    }
    for (co = 0; co < cout; co++, w += n) acc[co] = bias[co] + dot_u8(w, win, n);
    return;
  }
  for (co = 0; co < L->cout; co++) {
    int32_t s = L->bias[co];
    uint8_t ky;
    for (ky = 0; ky < L->k; ky++, w += run) s += dot_u8(w, in + ky * pitch, run);
    acc[co] = s;
  }
}

/* Every output channel of one position: out[co] = requant(acc[co]). The layer's arrays are held in
 * locals (a byte store may alias anything: read through L, they would be reloaded per channel). */
static inline void requant_all(const tfa_det_layer *L, const int32_t *acc, uint8_t *out) {
  const int32_t *mult = L->mult;
  const int8_t *shift = L->shift;
  const uint16_t n = L->cout;
  uint16_t co;
  for (co = 0; co < n; co++) out[co] = requant(mult[co], shift[co], acc[co]);
}

/* A valid (unpadded) convolution + ReLU over an iw x ih x cin map into out; returns the MACs. */
static uint32_t conv_layer(const tfa_det_layer *L, const uint8_t *in, int iw, int ih, uint8_t *out, int *ow, int *oh) {
  int32_t acc[48];
  int x, y;
  const size_t pitch = (size_t)iw * L->cin;
  *ow = (iw - L->k) / L->stride + 1;
  *oh = (ih - L->k) / L->stride + 1;
  if (L->dw && L->k == 3) {
    /* every depthwise layer: 3 x 3 taps written out, requantized as computed */
    const int8_t *w0 = L->w;
    const int32_t *bias = L->bias, *mult = L->mult;
    const int8_t *shift = L->shift;
    const size_t c = L->cin, xstep = (size_t)L->stride * c, ystep = (size_t)L->stride * pitch;
    const int nx = *ow, ny = *oh;
    for (y = 0; y < ny; y++) {
      const uint8_t *pos = in + (size_t)y * ystep;
      for (x = 0; x < nx; x++, pos += xstep) {
        const uint8_t *a = pos;
        const int8_t *w = w0;
        size_t co;
        for (co = 0; co < c; co++, a++, w += 9) {
          const uint8_t *b = a + pitch, *d = b + pitch;
          const int32_t s = bias[co] + (int32_t)w[0] * (int32_t)a[0] + (int32_t)w[1] * (int32_t)a[c] + (int32_t)w[2] * (int32_t)a[2 * c] +
                            (int32_t)w[3] * (int32_t)b[0] + (int32_t)w[4] * (int32_t)b[c] + (int32_t)w[5] * (int32_t)b[2 * c] +
                            (int32_t)w[6] * (int32_t)d[0] + (int32_t)w[7] * (int32_t)d[c] + (int32_t)w[8] * (int32_t)d[2 * c];
          *out++ = requant(mult[co], shift[co], s);
        }
      }
    }
    return (uint32_t)(nx * ny) * L->cout * 9u;
  }
#if defined(TFA_DET_INT8_DOT)
  {
    const tfa_det_pack *pk = pack_of(L);
    if (pk && pk->w && L->mult) {
      conv_layer_s8(L, pk, in, pitch, *ow, *oh, out);
      return (uint32_t)(*ow * *oh) * L->cout * L->k * L->k * L->cin;
    }
  }
#endif
  for (y = 0; y < *oh; y++) {
    for (x = 0; x < *ow; x++) {
      conv_at(L, in + (size_t)y * L->stride * pitch + (size_t)x * L->stride * L->cin, pitch, acc);
      requant_all(L, acc, out);
      out += L->cout;
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

#if defined(__GNUC__)
#define TFA_NOINLINE __attribute__((noinline))
#else
#define TFA_NOINLINE
#endif

/* Whether b suppresses a, for boxes that overlap along x: intersection over union above thr, or
 * (final) intersection over the smaller box above 0.7 (a box mostly inside another is the same
 * face). Compared as products (i > thr * u), no division. A call of its own: NMS's loop keeps
 * only the cheap test along x, which rejects most pairs on busy frames. */
static TFA_NOINLINE int overlaps_xy(const tfa_det_cand *a, const tfa_det_cand *b, float thr, int final) {
  const float ax1 = a->x + a->w, bx1 = b->x + b->w;
  const float x0 = a->x > b->x ? a->x : b->x, y0 = a->y > b->y ? a->y : b->y;
  const float x1 = ax1 < bx1 ? ax1 : bx1;
  const float y1 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
  float i, aa, ab;
  if (!(x1 > x0 && y1 > y0)) return 0;
  i = (x1 - x0) * (y1 - y0);
  aa = a->w * a->h;
  ab = b->w * b->h;
  if (i > thr * (aa + ab - i)) return 1;
  return final && i > 0.7f * (aa < ab ? aa : ab);
}

/* Whether b suppresses a: apart along x, no (overlaps_xy would find x1 <= x0); else overlaps_xy. */
static inline int overlaps(const tfa_det_cand *a, const tfa_det_cand *b, float thr, int final) {
  if (!(a->x + a->w > b->x && b->x + b->w > a->x)) return 0;
  return overlaps_xy(a, b, thr, final);
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
      if (overlaps(&c[i], &c[j], thr, final)) keep = 0;
    if (keep) c[kept++] = c[i];
  }
  return kept;
}

/* Add to a bounded list: when full, the new candidate replaces the lowest-scoring one (the first
 * of equals) if better. *lo caches that one's index between calls (-1: not known; the caller
 * starts with -1 and passes the same cache with the same list): found once, kept until replaced. */
static void push(tfa_det_cand *c, int *n, int cap, const tfa_det_cand *v, int *lo) {
  int i;
  if (*n < cap) {
    c[(*n)++] = *v;
    return;
  }
  if (*lo < 0) {
    *lo = 0;
    for (i = 1; i < cap; i++)
      if (c[i].score < c[*lo].score) *lo = i;
  }
  if (v->score > c[*lo].score) {
    c[*lo] = *v;
    *lo = -1;
  }
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
  int lo_lvl = -1, lo_cand = -1; /* push's caches */
  const float thr = p->p_threshold;
#if defined(TFA_DET_INT8_DOT)
  const tfa_det_pack *pk4 = pack_of(&L[4]);
#endif
  d->stats.macs_p += conv_layer(&L[0], lvl, lw, lh, d->s.a1, &w1, &h1);
  d->stats.macs_p += conv_layer(&L[1], d->s.a1, w1, h1, d->a2, &w2, &h2);
  d->stats.macs_p += conv_layer(&L[2], d->a2, w2, h2, d->s.a1, &w2, &h2);
  d->n_lvl = 0;
  /* the last depthwise 3x3, its pointwise and the head, fused per window */
  for (y = 0; y + L[3].k <= h2; y++) {
    for (x = 0; x + L[3].k <= w2; x++) {
      float logit;
      conv_at(&L[3], d->s.a1 + ((size_t)y * w2 + x) * L[3].cin, (size_t)w2 * L[3].cin, acc);
      requant_all(&L[3], acc, q3);
#if defined(TFA_DET_INT8_DOT)
      if (pk4 && pk4->w) {
        conv_layer_s8(&L[4], pk4, q3, 0, 1, 1, q4);
      } else
#endif
      {
        conv_at(&L[4], q3, 0, acc);
        requant_all(&L[4], acc, q4);
      }
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
        push(d->lvl, &d->n_lvl, 2 * TFA_DET_MAX_CANDIDATES, &c, &lo_lvl);
      }
    }
  }
  if (h2 >= L[3].k && w2 >= L[3].k)
    d->stats.macs_p += (uint32_t)(h2 - L[3].k + 1) * (uint32_t)(w2 - L[3].k + 1) *
                       (uint32_t)(L[3].cout * L[3].k * L[3].k + L[4].cout * L[4].cin + L[5].cout * L[5].cin);
  d->n_lvl = nms(d->lvl, d->n_lvl, NMS_LEVEL, 0);
  for (x = 0; x < d->n_lvl; x++) push(d->cand, &d->n_cand, TFA_DET_MAX_CANDIDATES, &d->lvl[x], &lo_cand);
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
  d->stats.macs_r += conv_layer(&L[0], win, R_WIN, R_WIN, d->s.a1, &ow, &oh);
  maxpool(d->s.a1, ow, oh, L[0].cout, d->a2, &pw, &ph);
  d->stats.macs_r += conv_layer(&L[1], d->a2, pw, ph, d->s.a1, &ow, &oh);
  maxpool(d->s.a1, ow, oh, L[1].cout, d->a2, &pw, &ph);
  d->stats.macs_r += conv_layer(&L[2], d->a2, pw, ph, d->s.a1, &ow, &oh);
  d->stats.macs_r += conv_layer(&L[3], d->s.a1, 1, 1, d->a2, &pw, &ph); /* dense = 1x1 conv on the flattened map */
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
#if defined(TFA_DET_INT8_DOT)
  pack_all();
#endif
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
  d->stats.resize_px += resize_level(d, gray, w, h, stride, lw0, lh0, d->level0);
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
        d->stats.resize_px += resize_level(d, d->level0, lw0, lh0, lw0, lw, lh, d->level);
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
