/*
 * Ed25519 verification and SHA-512: see tfa/ed25519.h.
 *
 * Field GF(p), p = 2^255 - 19: 16 signed 64-bit limbs of 16 bits (value = sum l[i] 2^(16 i)),
 * reduced lazily; 2^256 = 38 (mod p) folds the high half of a product back. Points: extended
 * coordinates (X:Y:Z:T) of -x^2 + y^2 = 1 + d x^2 y^2 with x = X/Z, y = Y/Z, xy = T/Z, added with
 * the unified law of Hisil, Wong, Carter and Dawson (2008), complete on this curve (d is not a
 * square), so it doubles as well. Everything here handles public data: variable time is fine.
 * The constants (d, 2d, sqrt(-1), the base point, L, the SHA-512 round constants) were computed
 * from their definitions with exact integer arithmetic.
 */
#include "tfa/ed25519.h"

#include <string.h>

/* ------------------------------------------------------------------ SHA-512 (FIPS 180-4) */

/* First 64 bits of the fractional parts of the cube roots of the first 80 primes. */
static const uint64_t kK[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
    0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
    0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
    0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
    0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
    0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
    0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
    0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
    0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
    0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
    0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
    0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
    0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
    0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull};

#define ROR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static uint64_t load_be64(const uint8_t *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

static void store_be64(uint8_t *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

/* One 128-byte block; the message schedule is kept as a 16-word ring. */
static void sha512_block(uint64_t st[8], const uint8_t *blk) {
  uint64_t w[16], v[8];
  int i;
  for (i = 0; i < 16; i++) w[i] = load_be64(blk + 8 * i);
  memcpy(v, st, sizeof v);
  for (i = 0; i < 80; i++) {
    uint64_t t1, t2;
    if (i >= 16) {
      uint64_t a = w[(i + 1) & 15], b = w[(i + 14) & 15];
      w[i & 15] += (ROR64(a, 1) ^ ROR64(a, 8) ^ (a >> 7)) + w[(i + 9) & 15] + (ROR64(b, 19) ^ ROR64(b, 61) ^ (b >> 6));
    }
    t1 = v[7] + (ROR64(v[4], 14) ^ ROR64(v[4], 18) ^ ROR64(v[4], 41)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + kK[i] + w[i & 15];
    t2 = (ROR64(v[0], 28) ^ ROR64(v[0], 34) ^ ROR64(v[0], 39)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
    memmove(v + 1, v, 7 * sizeof v[0]);
    v[4] += t1;
    v[0] = t1 + t2;
  }
  for (i = 0; i < 8; i++) st[i] += v[i];
}

void tfa_sha512_init(tfa_sha512_ctx *c) {
  /* First 64 bits of the fractional parts of the square roots of the first 8 primes. */
  static const uint64_t kH[8] = {0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
                                 0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull};
  memcpy(c->h, kH, sizeof kH);
  c->bytes = 0;
  c->fill = 0;
}

void tfa_sha512_update(tfa_sha512_ctx *c, const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  c->bytes += len;
  if (c->fill) {
    size_t n = 128 - c->fill < len ? 128 - c->fill : len;
    memcpy(c->buf + c->fill, p, n);
    c->fill += n;
    p += n;
    len -= n;
    if (c->fill < 128) return;
    sha512_block(c->h, c->buf);
    c->fill = 0;
  }
  for (; len >= 128; p += 128, len -= 128) sha512_block(c->h, p);
  memcpy(c->buf, p, len);
  c->fill = len;
}

void tfa_sha512_final(tfa_sha512_ctx *c, uint8_t out[64]) {
  int i;
  c->buf[c->fill++] = 0x80;
  if (c->fill > 112) {
    memset(c->buf + c->fill, 0, 128 - c->fill);
    sha512_block(c->h, c->buf);
    c->fill = 0;
  }
  memset(c->buf + c->fill, 0, 112 - c->fill);
  store_be64(c->buf + 112, c->bytes >> 61); /* the 128-bit bit length */
  store_be64(c->buf + 120, c->bytes << 3);
  sha512_block(c->h, c->buf);
  for (i = 0; i < 8; i++) store_be64(out + 8 * i, c->h[i]);
  memset(c, 0, sizeof *c);
}

void tfa_sha512(const void *data, size_t len, uint8_t out[64]) {
  tfa_sha512_ctx c;
  tfa_sha512_init(&c);
  tfa_sha512_update(&c, data, len);
  tfa_sha512_final(&c, out);
}

/* ------------------------------------------------------------------ GF(2^255 - 19) */

typedef int64_t fe[16];

/* d = -121665/121666, 2d, sqrt(-1) = 2^((p-1)/4) */
static const fe kD = {0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070,
                      0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203};
static const fe kD2 = {0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0,
                       0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const fe kSqrtM1 = {0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43,
                           0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83};
/* The base point: y = 4/5, x even. */
static const fe kBx = {0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c,
                       0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const fe kBy = {0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666,
                       0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};

/* floor(v / 2^16) without relying on >> of a negative number */
static int64_t floor16(int64_t v) { return v >= 0 ? v >> 16 : -((-(v + 1)) >> 16) - 1; }

/* One carry pass: limbs 1..15 end in [0, 2^16); limb 0 takes 38 x the carry out of limb 15. */
static void fe_carry(fe o) {
  int i;
  for (i = 0; i < 16; i++) {
    int64_t c = floor16(o[i]);
    o[i] -= c * 65536;
    if (i < 15) o[i + 1] += c;
    else o[0] += 38 * c;
  }
}

static void fe_set(fe o, int64_t v) {
  memset(o, 0, sizeof(fe));
  o[0] = v;
}

static void fe_add(fe o, const fe a, const fe b) {
  int i;
  for (i = 0; i < 16; i++) o[i] = a[i] + b[i];
}

static void fe_sub(fe o, const fe a, const fe b) {
  int i;
  for (i = 0; i < 16; i++) o[i] = a[i] - b[i];
}

/* Inputs: limbs below 2^19 in magnitude (sums and differences of carried values). */
static void fe_mul(fe o, const fe a, const fe b) {
  int64_t t[31];
  int i, j;
  memset(t, 0, sizeof t);
  for (i = 0; i < 16; i++)
    for (j = 0; j < 16; j++) t[i + j] += a[i] * b[j];
  for (i = 0; i < 15; i++) t[i] += 38 * t[i + 16];
  memcpy(o, t, sizeof(fe));
  fe_carry(o);
  fe_carry(o);
}

static void fe_sq(fe o, const fe a) { fe_mul(o, a, a); }

/* The canonical 32-byte little-endian encoding (value reduced below p). */
static void fe_pack(uint8_t out[32], const fe a) {
  fe t;
  int i, k;
  memcpy(t, a, sizeof t);
  for (k = 0; k < 4; k++) fe_carry(t); /* now every limb is in [0, 2^16): 0 <= t < 2^256 < 3p */
  for (k = 0; k < 2; k++) {
    fe m;
    int64_t borrow = 0;
    for (i = 0; i < 16; i++) {
      int64_t pl = i == 0 ? 0xffed : i == 15 ? 0x7fff : 0xffff;
      m[i] = t[i] - pl - borrow;
      borrow = m[i] < 0;
      if (borrow) m[i] += 65536;
    }
    if (!borrow) memcpy(t, m, sizeof t);
  }
  for (i = 0; i < 16; i++) {
    out[2 * i] = (uint8_t)(t[i] & 0xff);
    out[2 * i + 1] = (uint8_t)(t[i] >> 8);
  }
}

/* The 255 low bits of s (the top bit is the caller's). */
static void fe_unpack(fe o, const uint8_t s[32]) {
  int i;
  for (i = 0; i < 16; i++) o[i] = (int64_t)s[2 * i] | ((int64_t)s[2 * i + 1] << 8);
  o[15] &= 0x7fff;
}

static int fe_eq(const fe a, const fe b) {
  uint8_t x[32], y[32];
  fe_pack(x, a);
  fe_pack(y, b);
  return memcmp(x, y, 32) == 0;
}

static int fe_is_zero(const fe a) {
  static const uint8_t zero[32];
  uint8_t x[32];
  fe_pack(x, a);
  return memcmp(x, zero, 32) == 0;
}

static int fe_parity(const fe a) {
  uint8_t x[32];
  fe_pack(x, a);
  return x[0] & 1;
}

/* a^(p-2) = 1/a; p - 2 = 2^255 - 21 has every bit 0..254 set except bits 2 and 4. */
static void fe_invert(fe o, const fe a) {
  fe c;
  int i;
  memcpy(c, a, sizeof c);
  for (i = 253; i >= 0; i--) {
    fe_sq(c, c);
    if (i != 2 && i != 4) fe_mul(c, c, a);
  }
  memcpy(o, c, sizeof c);
}

/* a^((p-5)/8); (p - 5)/8 = 2^252 - 3 has every bit 0..251 set except bit 1. */
static void fe_pow_p58(fe o, const fe a) {
  fe c;
  int i;
  memcpy(c, a, sizeof c);
  for (i = 250; i >= 0; i--) {
    fe_sq(c, c);
    if (i != 1) fe_mul(c, c, a);
  }
  memcpy(o, c, sizeof c);
}

/* y < p for the 255-bit y of an encoding (every y >= p has bits 1..254 set and s[0] >= 0xed). */
static int fe_bytes_canonical(const uint8_t s[32]) {
  int i;
  if ((s[31] & 0x7f) != 0x7f) return 1;
  for (i = 30; i > 0; i--)
    if (s[i] != 0xff) return 1;
  return s[0] < 0xed;
}

/* ------------------------------------------------------------------ the curve */

typedef struct {
  fe x, y, z, t;
} point;

static void point_identity(point *r) {
  fe_set(r->x, 0);
  fe_set(r->y, 1);
  fe_set(r->z, 1);
  fe_set(r->t, 0);
}

/* r = p + q (r may alias p or q) */
static void point_add(point *r, const point *p, const point *q) {
  fe a, b, c, d, e, f, g, h, t;
  fe_sub(a, p->y, p->x);
  fe_sub(t, q->y, q->x);
  fe_mul(a, a, t);
  fe_add(b, p->y, p->x);
  fe_add(t, q->y, q->x);
  fe_mul(b, b, t);
  fe_mul(c, p->t, q->t);
  fe_mul(c, c, kD2);
  fe_mul(d, p->z, q->z);
  fe_add(d, d, d);
  fe_sub(e, b, a);
  fe_sub(f, d, c);
  fe_add(g, d, c);
  fe_add(h, b, a);
  fe_mul(r->x, e, f);
  fe_mul(r->y, g, h);
  fe_mul(r->t, e, h);
  fe_mul(r->z, f, g);
}

/* RFC 8032 5.1.3 decoding (the caller checks y < p where it matters); -1 when s is no point. */
static int point_decode(point *r, const uint8_t s[32]) {
  fe u, v, v3, x, chk;
  int sign = s[31] >> 7;
  fe_unpack(r->y, s);
  fe_set(r->z, 1);
  fe_sq(u, r->y);
  fe_mul(v, u, kD);
  u[0] -= 1; /* u = y^2 - 1 */
  v[0] += 1; /* v = d y^2 + 1 */
  fe_sq(v3, v);
  fe_mul(v3, v3, v);
  fe_sq(x, v3);
  fe_mul(x, x, v);
  fe_mul(x, x, u); /* u v^7 */
  fe_pow_p58(x, x);
  fe_mul(x, x, v3);
  fe_mul(x, x, u); /* candidate root of u/v: u v^3 (u v^7)^((p-5)/8) */
  fe_sq(chk, x);
  fe_mul(chk, chk, v);
  if (!fe_eq(chk, u)) {
    fe_add(chk, chk, u);
    if (!fe_is_zero(chk)) return -1; /* u/v is not a square */
    fe_mul(x, x, kSqrtM1);
  }
  if (fe_is_zero(x) && sign) return -1;
  if (fe_parity(x) != sign) {
    fe zero;
    fe_set(zero, 0);
    fe_sub(x, zero, x);
  }
  memcpy(r->x, x, sizeof x);
  fe_mul(r->t, x, r->y);
  return 0;
}

static void point_encode(uint8_t s[32], const point *p) {
  fe zi, x, y;
  fe_invert(zi, p->z);
  fe_mul(x, p->x, zi);
  fe_mul(y, p->y, zi);
  fe_pack(s, y);
  s[31] ^= (uint8_t)(fe_parity(x) << 7);
}

/* [8]p is the identity: p is one of the 8 points of small order. */
static int point_small_order(const point *p) {
  point q = *p;
  point_add(&q, &q, &q);
  point_add(&q, &q, &q);
  point_add(&q, &q, &q);
  return fe_is_zero(q.x) && fe_eq(q.y, q.z);
}

/* ------------------------------------------------------------------ scalars mod L */

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes and 32-bit words */
static const uint8_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                               0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
static const uint32_t kLw[8] = {0x5cf5d3edu, 0x5812631au, 0xa2f79cd6u, 0x14def9deu, 0, 0, 0, 0x10000000u};

static int scalar_below_L(const uint8_t s[32]) {
  int i;
  for (i = 31; i >= 0; i--) {
    if (s[i] != kL[i]) return s[i] < kL[i];
  }
  return 0;
}

/* out = h mod L for a 512-bit little-endian h, one bit at a time from the top: r = 2r + bit,
 * minus L when r >= L (r < L < 2^253 throughout, so 8 words hold 2r + 1). */
static void scalar_reduce(uint8_t out[32], const uint8_t h[64]) {
  uint32_t r[8] = {0};
  int bit, i;
  for (bit = 511; bit >= 0; bit--) {
    uint32_t carry = (uint32_t)(h[bit >> 3] >> (bit & 7)) & 1u;
    int ge = 1;
    for (i = 0; i < 8; i++) {
      uint32_t top = r[i] >> 31;
      r[i] = (r[i] << 1) | carry;
      carry = top;
    }
    for (i = 7; i >= 0; i--) {
      if (r[i] != kLw[i]) {
        ge = r[i] > kLw[i];
        break;
      }
    }
    if (ge) {
      uint64_t borrow = 0;
      for (i = 0; i < 8; i++) {
        uint64_t d = (uint64_t)r[i] - kLw[i] - borrow;
        r[i] = (uint32_t)d;
        borrow = (d >> 32) & 1u;
      }
    }
  }
  for (i = 0; i < 32; i++) out[i] = (uint8_t)(r[i >> 2] >> (8 * (i & 3)));
}

/* ------------------------------------------------------------------ verification */

int tfa_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]) {
  tfa_sha512_ctx hc;
  uint8_t digest[64], h[32], check[32];
  point a, r, b, sum;
  const uint8_t *s = sig ? sig + 32 : NULL;
  int i;
  if (!sig || !pk || (!msg && len)) return -1;
  if (!scalar_below_L(s)) return -1;                                                 /* S < L */
  if (!fe_bytes_canonical(pk) || point_decode(&a, pk) != 0 || point_small_order(&a)) return -1;
  if (point_decode(&r, sig) == 0 && point_small_order(&r)) return -1;               /* R */

  tfa_sha512_init(&hc);
  tfa_sha512_update(&hc, sig, 32);
  tfa_sha512_update(&hc, pk, 32);
  tfa_sha512_update(&hc, msg, len);
  tfa_sha512_final(&hc, digest);
  scalar_reduce(h, digest);

  /* [S]B - [h]A, both scalars below 2^253: one shared doubling chain (Straus-Shamir). */
  {
    fe zero;
    fe_set(zero, 0);
    fe_sub(a.x, zero, a.x); /* a = -A */
    fe_sub(a.t, zero, a.t);
  }
  memcpy(b.x, kBx, sizeof(fe));
  memcpy(b.y, kBy, sizeof(fe));
  fe_set(b.z, 1);
  fe_mul(b.t, kBx, kBy);
  point_add(&sum, &b, &a);
  point_identity(&r);
  for (i = 252; i >= 0; i--) {
    int bs = (s[i >> 3] >> (i & 7)) & 1, bh = (h[i >> 3] >> (i & 7)) & 1;
    point_add(&r, &r, &r);
    if (bs && bh) point_add(&r, &r, &sum);
    else if (bs) point_add(&r, &r, &b);
    else if (bh) point_add(&r, &r, &a);
  }
  point_encode(check, &r);
  return memcmp(check, sig, 32) == 0 ? 0 : -1;
}
