/* base64, hex, chunk header, face crop: see tfa/util.h. */
#include "tfa/util.h"

#include <string.h>

static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long tfa_b64_decode(const char *src, size_t n, uint8_t *out, size_t cap) {
  size_t i, o = 0;
  if (n % 4 != 0) return -1;
  for (i = 0; i < n; i += 4) {
    int v[4], k, pad = 0;
    uint32_t q;
    for (k = 0; k < 4; k++) {
      char c = src[i + (size_t)k];
      if (c == '=') {
        /* padding only in the last quantum, only at positions 2..3, and nothing after it */
        if (i + 4 != n || k < 2) return -1;
        pad++;
        v[k] = 0;
        continue;
      }
      if (pad) return -1;
      v[k] = b64val(c);
      if (v[k] < 0) return -1;
    }
    q = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    if ((size_t)(3 - pad) > cap - o) return -1;
    out[o++] = (uint8_t)(q >> 16);
    if (pad < 2) out[o++] = (uint8_t)(q >> 8);
    if (pad < 1) out[o++] = (uint8_t)q;
  }
  return (long)o;
}

long tfa_b64_encode(const uint8_t *src, size_t n, char *out, size_t cap) {
  size_t i, o = 0, need = (n + 2) / 3 * 4 + 1;
  if (cap < need) return -1;
  for (i = 0; i < n; i += 3) {
    uint32_t q = (uint32_t)src[i] << 16;
    if (i + 1 < n) q |= (uint32_t)src[i + 1] << 8;
    if (i + 2 < n) q |= src[i + 2];
    out[o++] = kB64[(q >> 18) & 63];
    out[o++] = kB64[(q >> 12) & 63];
    out[o++] = i + 1 < n ? kB64[(q >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? kB64[q & 63] : '=';
  }
  out[o] = '\0';
  return (long)o;
}

void tfa_hex(const uint8_t *src, size_t n, char *out) {
  static const char h[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = h[src[i] >> 4];
    out[2 * i + 1] = h[src[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool tfa_unhex(const char *src, size_t len, uint8_t *out, size_t n) {
  size_t i;
  if (len != 2 * n) return false;
  for (i = 0; i < n; i++) {
    int a = hexv(src[2 * i]), b = hexv(src[2 * i + 1]);
    if (a < 0 || b < 0) return false;
    out[i] = (uint8_t)(a << 4 | b);
  }
  return true;
}

static void be16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void be32(uint8_t *p, uint32_t v) {
  be16(p, v >> 16);
  be16(p + 2, v & 0xFFFFu);
}
static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) << 16 | rd16(p + 2); }

void tfa_chunk_encode(const tfa_chunk_hdr *h, uint8_t out[TFA_CHUNK_HEADER_BYTES]) {
  be16(out, TFA_CHUNK_MAGIC);
  out[2] = TFA_CHUNK_VERSION;
  out[3] = 0;
  be32(out + 4, h->id);
  be16(out + 8, h->index);
  be16(out + 10, h->count);
  be32(out + 12, h->total);
  be32(out + 16, h->offset);
}

int tfa_chunk_decode(const uint8_t *msg, size_t len, tfa_chunk_hdr *h, const uint8_t **data, size_t *data_len) {
  size_t n;
  if (!msg || len < TFA_CHUNK_HEADER_BYTES) return -1;
  if (rd16(msg) != TFA_CHUNK_MAGIC || msg[2] != TFA_CHUNK_VERSION) return -1;
  h->id = rd32(msg + 4);
  h->index = (uint16_t)rd16(msg + 8);
  h->count = (uint16_t)rd16(msg + 10);
  h->total = rd32(msg + 12);
  h->offset = rd32(msg + 16);
  n = len - TFA_CHUNK_HEADER_BYTES;
  if (h->count < 1 || h->index >= h->count || h->total < 1) return -1;
  if (n == 0 || n > h->total || h->offset > h->total - n) return -1;
  *data = msg + TFA_CHUNK_HEADER_BYTES;
  *data_len = n;
  return 0;
}

tfa_box tfa_centre_square(uint16_t w, uint16_t h) {
  tfa_box b;
  uint16_t s = w < h ? w : h;
  b.x = (uint16_t)((w - s) / 2);
  b.y = (uint16_t)((h - s) / 2);
  b.w = s;
  b.h = s;
  return b;
}

int tfa_crop_gray48(const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, tfa_box box, uint8_t out[48 * 48]) {
  uint32_t bx = box.x, by = box.y, bw = box.w, bh = box.h, ox, oy;
  if (!gray || !out || stride < w || bx >= w || by >= h || bw == 0 || bh == 0) return -1;
  if (bw > w - bx) bw = w - bx;
  if (bh > h - by) bh = h - by;
  if (bw == 48 && bh == 48) {
    for (oy = 0; oy < 48; oy++) memcpy(out + oy * 48, gray + (by + oy) * stride + bx, 48);
    return 0;
  }
  for (oy = 0; oy < 48; oy++) {
    uint32_t y0 = oy * bh / 48, y1 = (oy + 1) * bh / 48;
    if (y1 <= y0) y1 = y0 + 1;
    for (ox = 0; ox < 48; ox++) {
      uint32_t x0 = ox * bw / 48, x1 = (ox + 1) * bw / 48, x, y, sum = 0, n;
      if (x1 <= x0) x1 = x0 + 1;
      for (y = y0; y < y1; y++)
        for (x = x0; x < x1; x++) sum += gray[(by + y) * stride + bx + x];
      n = (y1 - y0) * (x1 - x0);
      out[oy * 48 + ox] = (uint8_t)((sum + n / 2) / n);
    }
  }
  return 0;
}
