/* Ed25519 signature verification (RFC 8032, PureEd25519) and SHA-512 (FIPS 180-4), in portable
 * C99 with no allocation: what the model update needs to check one signed digest. The device and
 * the host virtual device both verify with this code (one definition; libsodium is only the
 * host tests' oracle).
 *
 * Accepts exactly what libsodium's crypto_sign_verify_detached accepts (cofactorless equation,
 * compared on encodings): it rejects S >= L, an R or a public key of small order, a public key
 * whose y is not reduced mod p or that is not on the curve. It works on public data only and
 * takes variable time. */
#ifndef TFA_ED25519_H
#define TFA_ED25519_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when sig (R || S) is a valid signature of msg[0..len) under the public key pk, else -1. */
int tfa_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]);

/* SHA-512, incremental. */
typedef struct {
  uint64_t h[8];
  uint64_t bytes; /* message length so far (messages below 2^61 bytes) */
  uint8_t buf[128];
  size_t fill;
} tfa_sha512_ctx;

void tfa_sha512_init(tfa_sha512_ctx *c);
void tfa_sha512_update(tfa_sha512_ctx *c, const void *data, size_t len);
void tfa_sha512_final(tfa_sha512_ctx *c, uint8_t out[64]);
void tfa_sha512(const void *data, size_t len, uint8_t out[64]);

#ifdef __cplusplus
}
#endif

#endif
