/* Ed25519 signature verification (RFC 8032, pure Ed25519) and SHA-512, portable C99, no allocation.
 *
 * The one verifier of model (and application) signatures on every platform: the ESP32-S3 build
 * and the Linux virtual device both call it, so the device carries no crypto library for one
 * signature check. Acceptance rules are libsodium's crypto_sign_verify_detached (the host tests
 * compare the two on RFC 8032 vectors and thousands of random and corrupted signatures):
 * S must be canonical (< L), the public key a canonical encoding of a point that is not of small
 * order, R not of small order, and [S]B - [k]A must encode to exactly R, k = SHA-512(R||A||M) mod L.
 * Not constant time: it handles public data only. */
#ifndef TFA_ED25519_H
#define TFA_ED25519_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when `sig` is a valid signature of msg[0..len) under `pk`, -1 otherwise. */
int tfa_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]);

/* SHA-512, incremental (used by the verifier; exposed for its tests). */
typedef struct {
  uint64_t h[8];
  uint64_t bytes;
  uint8_t buf[128];
  size_t fill;
} tfa_sha512_ctx;
void tfa_sha512_init(tfa_sha512_ctx *c);
void tfa_sha512_update(tfa_sha512_ctx *c, const void *data, size_t len);
void tfa_sha512_final(tfa_sha512_ctx *c, uint8_t out[64]);

#ifdef __cplusplus
}
#endif
#endif
