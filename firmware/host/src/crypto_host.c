/* Host crypto: SHA-256 from libsodium, Ed25519 verification by the app's own verifier (the one the
 * ESP32-S3 runs too; tests/ed25519_test.cc holds it against libsodium), and reading the model
 * verification key. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "host.h"
#include "tfa/ed25519.h"
#include "tfa/util.h"

int host_crypto_init(void) { return sodium_init() < 0 ? -1 : 0; }

int host_sha256(const void *data, size_t len, uint8_t out[32]) {
  return crypto_hash_sha256(out, (const unsigned char *)data, (unsigned long long)len);
}

int host_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]) {
  return tfa_ed25519_verify(sig, msg, len, pk);
}

/* SubjectPublicKeyInfo of an Ed25519 key: this 12-byte prefix, then the 32 key bytes. */
static const uint8_t kSpkiPrefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

int host_read_public_key(const char *path, uint8_t pk[32], char *err, size_t cap) {
  char text[2048];
  size_t n;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, cap, "%s: %s", path, strerror(errno));
    return -1;
  }
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  if (n == 32 && !strstr(text, "-----")) {
    memcpy(pk, text, 32);
    return 0;
  }
  if (strstr(text, "-----BEGIN PUBLIC KEY-----")) {
    char b64[128];
    uint8_t der[96];
    size_t m = 0;
    long d;
    const char *p = strstr(text, "-----BEGIN PUBLIC KEY-----") + 26, *end = strstr(p, "-----END");
    for (; p && end && p < end; p++)
      if (*p != '\n' && *p != '\r' && *p != ' ' && m < sizeof b64 - 1) b64[m++] = *p;
    d = tfa_b64_decode(b64, m, der, sizeof der);
    if (d == 44 && memcmp(der, kSpkiPrefix, 12) == 0) {
      memcpy(pk, der + 12, 32);
      return 0;
    }
    snprintf(err, cap, "%s: not an Ed25519 public key (SPKI PEM)", path);
    return -1;
  }
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) text[--n] = '\0';
  if (tfa_unhex(text, n, pk, 32)) return 0;
  snprintf(err, cap, "%s: expected an Ed25519 public key (SPKI PEM, 64 hex digits or 32 raw bytes)", path);
  return -1;
}
