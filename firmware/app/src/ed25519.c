/* Ed25519 verification and SHA-512 (see tfa/ed25519.h). Field elements are 16 signed 64-bit
 * limbs of 16 bits (radix 2^16, reduced lazily mod p = 2^255 - 19); points are extended
 * coordinates (X, Y, Z, T). The curve constants (d, 2d, sqrt(-1), the base point) are derived
 * from their definitions at first use rather than written out, so a typo cannot hide in them. */
#include "tfa/ed25519.h"

#include <string.h>

/* ---- SHA-512 (FIPS 180-4) ---- */

static const uint64_t kK[80] = {
0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL
};
static const uint64_t kH0[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static uint64_t ror64(uint64_t x, unsigned n) { return (x >> n) | (x << (64u - n)); }

static void sha512_block(uint64_t h[8], const uint8_t *p) {
  uint64_t w[80], a, b, c, d, e, f, g, k, t1, t2;
  int i;
  for (i = 0; i < 16; i++) {
    w[i] = 0;
    for (int j = 0; j < 8; j++) w[i] = (w[i] << 8) | p[8 * i + j];
  }
  for (i = 16; i < 80; i++) {
    uint64_t s0 = ror64(w[i - 15], 1) ^ ror64(w[i - 15], 8) ^ (w[i - 15] >> 7);
    uint64_t s1 = ror64(w[i - 2], 19) ^ ror64(w[i - 2], 61) ^ (w[i - 2] >> 6);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
  for (i = 0; i < 80; i++) {
    t1 = k + (ror64(e, 14) ^ ror64(e, 18) ^ ror64(e, 41)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    t2 = (ror64(a, 28) ^ ror64(a, 34) ^ ror64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void tfa_sha512_init(tfa_sha512_ctx *c) {
  memcpy(c->h, kH0, sizeof kH0);
  c->bytes = 0;
  c->fill = 0;
}

void tfa_sha512_update(tfa_sha512_ctx *c, const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  c->bytes += len;
  while (len > 0) {
    size_t n = 128 - c->fill;
    if (n > len) n = len;
    memcpy(c->buf + c->fill, p, n);
    c->fill += n;
    p += n;
    len -= n;
    if (c->fill == 128) {
      sha512_block(c->h, c->buf);
      c->fill = 0;
    }
  }
}

void tfa_sha512_final(tfa_sha512_ctx *c, uint8_t out[64]) {
  uint64_t bits = c->bytes * 8u;
  int i;
  c->buf[c->fill++] = 0x80;
  if (c->fill > 112) {
    memset(c->buf + c->fill, 0, 128 - c->fill);
    sha512_block(c->h, c->buf);
    c->fill = 0;
  }
  memset(c->buf + c->fill, 0, 128 - c->fill);
  for (i = 0; i < 8; i++) c->buf[127 - i] = (uint8_t)(bits >> (8 * i)); /* lengths < 2^64 bits */
  sha512_block(c->h, c->buf);
  for (i = 0; i < 64; i++) out[i] = (uint8_t)(c->h[i / 8] >> (56 - 8 * (i % 8)));
}

/* ---- GF(2^255 - 19) ---- */

typedef int64_t gf[16];

static void gf_set(gf r, const gf a) { memcpy(r, a, sizeof(gf)); }
static void gf_small(gf r, int64_t v) {
  memset(r, 0, sizeof(gf));
  r[0] = v;
}

/* One carry pass: limbs 0..14 into [0, 2^16), the top carry folded into limb 0 (2^256 = 38 mod p). */
static void gf_carry(gf o) {
  for (int i = 0; i < 16; i++) {
    int64_t c = o[i] >> 16; /* arithmetic shift: floor division */
    o[i] -= c * 65536;
    if (i < 15) o[i + 1] += c;
    else o[0] += 38 * c;
  }
}

static void gf_add(gf o, const gf a, const gf b) {
  for (int i = 0; i < 16; i++) o[i] = a[i] + b[i];
}
static void gf_sub(gf o, const gf a, const gf b) {
  for (int i = 0; i < 16; i++) o[i] = a[i] - b[i];
}
static void gf_mul(gf o, const gf a, const gf b) {
  int64_t t[31];
  int i, j;
  memset(t, 0, sizeof t);
  for (i = 0; i < 16; i++)
    for (j = 0; j < 16; j++) t[i + j] += a[i] * b[j];
  for (i = 0; i < 15; i++) t[i] += 38 * t[i + 16];
  for (i = 0; i < 16; i++) o[i] = t[i];
  gf_carry(o);
  gf_carry(o);
}
static void gf_sqr(gf o, const gf a) { gf_mul(o, a, a); }

/* Square-and-multiply over the exponent bits top..0, all ones except bits skip1 and skip2
 * (the two fixed exponents below). */
static void gf_pow_chain(gf o, const gf a, int top, int skip1, int skip2) {
  gf c;
  gf_set(c, a);
  for (int i = top; i >= 0; i--) {
    gf_sqr(c, c);
    if (i != skip1 && i != skip2) gf_mul(c, c, a);
  }
  gf_set(o, c);
}
/* a^(p-2) = a^-1, and a^((p-5)/8) = a^(2^252 - 3) (square roots). */
static void gf_inv(gf o, const gf a) { gf_pow_chain(o, a, 253, 2, 4); }
static void gf_pow2523(gf o, const gf a) { gf_pow_chain(o, a, 250, 1, 1); }

/* The canonical 32-byte encoding (fully reduced mod p). */
static void gf_pack(uint8_t out[32], const gf n) {
  gf t, m;
  int i, j;
  gf_set(t, n);
  gf_carry(t);
  gf_carry(t);
  gf_carry(t);
  for (j = 0; j < 2; j++) { /* subtract p while t >= p */
    int64_t borrow;
    m[0] = t[0] - 0xffed;
    for (i = 1; i < 15; i++) {
      m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
      m[i - 1] &= 0xffff;
    }
    m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
    borrow = (m[15] >> 16) & 1;
    m[14] &= 0xffff;
    if (!borrow) gf_set(t, m);
  }
  for (i = 0; i < 16; i++) {
    out[2 * i] = (uint8_t)(t[i] & 0xff);
    out[2 * i + 1] = (uint8_t)((t[i] >> 8) & 0xff);
  }
}
static void gf_unpack(gf o, const uint8_t in[32]) {
  for (int i = 0; i < 16; i++) o[i] = in[2 * i] + ((int64_t)in[2 * i + 1] << 8);
  o[15] &= 0x7fff;
}
static int gf_equal(const gf a, const gf b) {
  uint8_t x[32], y[32];
  gf_pack(x, a);
  gf_pack(y, b);
  return memcmp(x, y, 32) == 0;
}
static int gf_parity(const gf a) {
  uint8_t x[32];
  gf_pack(x, a);
  return x[0] & 1;
}

/* ---- the curve -x^2 + y^2 = 1 + d x^2 y^2 ---- */

typedef gf point[4]; /* X, Y, Z, T with x = X/Z, y = Y/Z, T = XY/Z */

static struct {
  int ready;
  gf d, d2, sqrtm1;
  point base;
} K25519;

static void point_add(point p, point q) {
  gf a, b, c, d, t, e, f, g, h;
  gf_sub(a, p[1], p[0]);
  gf_sub(t, q[1], q[0]);
  gf_mul(a, a, t);
  gf_add(b, p[0], p[1]);
  gf_add(t, q[0], q[1]);
  gf_mul(b, b, t);
  gf_mul(c, p[3], q[3]);
  gf_mul(c, c, K25519.d2);
  gf_mul(d, p[2], q[2]);
  gf_add(d, d, d);
  gf_sub(e, b, a);
  gf_sub(f, d, c);
  gf_add(g, d, c);
  gf_add(h, b, a);
  gf_mul(p[0], e, f);
  gf_mul(p[1], h, g);
  gf_mul(p[2], g, f);
  gf_mul(p[3], e, h);
}

static void point_identity(point p) {
  gf_small(p[0], 0);
  gf_small(p[1], 1);
  gf_small(p[2], 1);
  gf_small(p[3], 0);
}

static void point_copy(point r, point p) {
  for (int i = 0; i < 4; i++) gf_set(r[i], p[i]);
}

static void point_pack(uint8_t out[32], point p) {
  gf zi, x, y;
  gf_inv(zi, p[2]);
  gf_mul(x, p[0], zi);
  gf_mul(y, p[1], zi);
  gf_pack(out, y);
  out[31] ^= (uint8_t)(gf_parity(x) << 7);
}

/* r += [s]q, s a 256-bit little-endian scalar (double and add; public data only). */
static void point_scalarmul_add(point r, point q, const uint8_t s[32]) {
  point acc;
  point_identity(acc);
  for (int i = 255; i >= 0; i--) {
    point_add(acc, acc);
    if ((s[i / 8] >> (i & 7)) & 1) point_add(acc, q);
  }
  point_add(r, acc);
}

/* Decodes a point; 0 on success. Rejects y >= p when `canonical`, x = 0 with the sign bit set,
 * and y values with no x on the curve. */
static int point_unpack(point r, const uint8_t in[32], int canonical) {
  gf num, den, den2, den4, den6, t, chk, zero;
  int sign = in[31] >> 7;
  if (canonical) { /* y < p = 2^255 - 19 */
    int i, below = 0;
    if ((in[31] & 0x7f) != 0x7f) below = 1;
    for (i = 30; !below && i >= 1; i--)
      if (in[i] != 0xff) below = 1;
    if (!below && in[0] >= 0xed) return -1;
  }
  gf_small(r[2], 1);
  gf_unpack(r[1], in);
  gf_sqr(num, r[1]);
  gf_mul(den, num, K25519.d);
  gf_sub(num, num, r[2]); /* y^2 - 1 */
  gf_add(den, r[2], den); /* d y^2 + 1 */
  /* x = num * den^3 * (num * den^7)^((p-5)/8) */
  gf_sqr(den2, den);
  gf_sqr(den4, den2);
  gf_mul(den6, den4, den2);
  gf_mul(t, den6, num);
  gf_mul(t, t, den);
  gf_pow2523(t, t);
  gf_mul(t, t, num);
  gf_mul(t, t, den);
  gf_mul(t, t, den);
  gf_mul(r[0], t, den);
  gf_sqr(chk, r[0]);
  gf_mul(chk, chk, den);
  if (!gf_equal(chk, num)) gf_mul(r[0], r[0], K25519.sqrtm1);
  gf_sqr(chk, r[0]);
  gf_mul(chk, chk, den);
  if (!gf_equal(chk, num)) return -1;
  gf_small(zero, 0);
  if (gf_equal(r[0], zero) && sign) return -1;
  if (gf_parity(r[0]) != sign) gf_sub(r[0], zero, r[0]);
  gf_mul(r[3], r[0], r[1]);
  return 0;
}

static int point_small_order(point p) {
  static const uint8_t kIdentity[32] = {1};
  point q;
  uint8_t enc[32];
  point_copy(q, p);
  point_add(q, q);
  point_add(q, q);
  point_add(q, q);
  point_pack(enc, q);
  return memcmp(enc, kIdentity, 32) == 0;
}

static void curve_init(void) {
  gf t, u;
  uint8_t by[32];
  if (K25519.ready) return;
  /* d = -121665 / 121666 */
  gf_small(t, 121666);
  gf_inv(u, t);
  gf_small(t, -121665);
  gf_mul(K25519.d, t, u);
  gf_add(K25519.d2, K25519.d, K25519.d);
  /* sqrt(-1) = 2^((p-1)/4) = 2^(2^253 - 5) = (2^((p-5)/8))^2 * 2 */
  gf_small(t, 2);
  gf_pow2523(u, t);
  gf_sqr(u, u);
  gf_mul(K25519.sqrtm1, u, t);
  /* the base point: y = 4/5, x even */
  gf_small(t, 5);
  gf_inv(u, t);
  gf_small(t, 4);
  gf_mul(u, t, u);
  gf_pack(by, u);
  (void)point_unpack(K25519.base, by, 1);
  K25519.ready = 1;
}

/* ---- scalars mod L = 2^252 + 27742317777372353535851937790883648493 ---- */

static const int64_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                               0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                               0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

/* r = x mod L, x given as 64 signed byte-sized limbs (consumed). */
static void mod_l(uint8_t r[32], int64_t x[64]) {
  int64_t carry;
  int i, j;
  for (i = 63; i >= 32; --i) {
    carry = 0;
    for (j = i - 32; j < i - 12; ++j) {
      x[j] += carry - 16 * x[i] * kL[j - (i - 32)];
      carry = (x[j] + 128) >> 8;
      x[j] -= carry * 256;
    }
    x[j] += carry;
    x[i] = 0;
  }
  carry = 0;
  for (j = 0; j < 32; j++) {
    x[j] += carry - (x[31] >> 4) * kL[j];
    carry = x[j] >> 8;
    x[j] &= 255;
  }
  for (j = 0; j < 32; j++) x[j] -= carry * kL[j];
  for (i = 0; i < 32; i++) {
    x[i + 1] += x[i] >> 8;
    r[i] = (uint8_t)(x[i] & 255);
  }
}

static int scalar_canonical(const uint8_t s[32]) { /* s < L */
  for (int i = 31; i >= 0; i--) {
    if (s[i] < kL[i]) return 1;
    if (s[i] > kL[i]) return 0;
  }
  return 0;
}

int tfa_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]) {
  point a, r, p;
  gf zero;
  tfa_sha512_ctx hs;
  uint8_t h[64], k[32], check[32];
  int64_t x[64];
  int i;
  if (!sig || !pk || (!msg && len > 0)) return -1;
  curve_init();
  if (!scalar_canonical(sig + 32)) return -1;
  if (point_unpack(a, pk, 1) != 0 || point_small_order(a)) return -1;
  if (point_unpack(r, sig, 0) != 0 || point_small_order(r)) return -1;
  tfa_sha512_init(&hs);
  tfa_sha512_update(&hs, sig, 32);
  tfa_sha512_update(&hs, pk, 32);
  if (len > 0) tfa_sha512_update(&hs, msg, len);
  tfa_sha512_final(&hs, h);
  for (i = 0; i < 64; i++) x[i] = h[i];
  mod_l(k, x);
  /* p = [S]B + [k](-A) */
  gf_small(zero, 0);
  gf_sub(a[0], zero, a[0]);
  gf_sub(a[3], zero, a[3]);
  point_identity(p);
  point_scalarmul_add(p, K25519.base, sig + 32);
  point_scalarmul_add(p, a, k);
  point_pack(check, p);
  return memcmp(check, sig, 32) == 0 ? 0 : -1;
}
