// The app's own Ed25519 verifier and SHA-512 (firmware/app/src/ed25519.c) against libsodium, the
// host's oracle: RFC 8032's first test vector, random keys and messages, corrupted signatures,
// keys and messages, non-canonical S, small-order and non-canonical keys, random bytes.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <random>
#include <vector>

#include "tfa/ed25519.h"

namespace {

std::vector<uint8_t> Unhex(const char *h) {
  std::vector<uint8_t> v;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) v.push_back((uint8_t)std::stoi(std::string(h + i, 2), nullptr, 16));
  return v;
}

int Sodium(const uint8_t *sig, const std::vector<uint8_t> &m, const uint8_t *pk) {
  return crypto_sign_verify_detached(sig, m.data(), m.size(), pk) == 0 ? 0 : -1;
}
int Ours(const uint8_t *sig, const std::vector<uint8_t> &m, const uint8_t *pk) {
  return tfa_ed25519_verify(sig, m.empty() ? nullptr : m.data(), m.size(), pk);
}

class Ed25519 : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GE(sodium_init(), 0); }
  std::mt19937 rng{20261204};
  std::vector<uint8_t> Bytes(size_t n) {
    std::vector<uint8_t> v(n);
    for (auto &b : v) b = (uint8_t)rng();
    return v;
  }
};

TEST_F(Ed25519, Sha512MatchesLibsodium) {
  for (size_t n = 0; n < 700; n += (n < 260 ? 1 : 37)) {
    auto m = Bytes(n);
    uint8_t a[64], b[64];
    crypto_hash_sha512(a, m.data(), m.size());
    tfa_sha512_ctx c;
    tfa_sha512_init(&c);
    size_t half = n / 3;  // two updates, across block boundaries
    tfa_sha512_update(&c, m.data(), half);
    tfa_sha512_update(&c, m.data() + half, n - half);
    tfa_sha512_final(&c, b);
    ASSERT_EQ(0, memcmp(a, b, 64)) << "length " << n;
  }
}

TEST_F(Ed25519, Rfc8032FirstVector) {
  auto pk = Unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = Unhex(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  std::vector<uint8_t> empty;
  ASSERT_EQ(0, Sodium(sig.data(), empty, pk.data()));  // the vector as transcribed is right
  EXPECT_EQ(0, Ours(sig.data(), empty, pk.data()));
  sig[10] ^= 1;
  EXPECT_EQ(-1, Ours(sig.data(), empty, pk.data()));
}

TEST_F(Ed25519, RandomSignaturesAndCorruptionsAgreeWithLibsodium) {
  int valid = 0, rejected = 0;
  for (int i = 0; i < 300; i++) {
    uint8_t pk[32], sk[64], sig[64];
    crypto_sign_keypair(pk, sk);
    auto m = Bytes(rng() % 200);
    crypto_sign_detached(sig, nullptr, m.data(), m.size(), sk);
    ASSERT_EQ(0, Ours(sig, m, pk)) << "case " << i;
    valid++;
    // one flipped bit in the signature, the key or the message
    uint8_t s2[64], pk2[32];
    memcpy(s2, sig, 64);
    memcpy(pk2, pk, 32);
    auto m2 = m;
    switch (i % 3) {
      case 0: s2[rng() % 64] ^= (uint8_t)(1u << (rng() % 8)); break;
      case 1: pk2[rng() % 32] ^= (uint8_t)(1u << (rng() % 8)); break;
      default:
        if (m2.empty()) m2.push_back(0);
        else m2[rng() % m2.size()] ^= 1;
    }
    int want = Sodium(s2, m2, pk2);
    ASSERT_EQ(want, Ours(s2, m2, pk2)) << "case " << i;
    rejected += want != 0;
  }
  EXPECT_EQ(300, valid);
  EXPECT_GE(rejected, 299);
}

TEST_F(Ed25519, NonCanonicalScalarIsRejected) {
  static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  uint8_t pk[32], sk[64], sig[64];
  crypto_sign_keypair(pk, sk);
  auto m = Bytes(40);
  crypto_sign_detached(sig, nullptr, m.data(), m.size(), sk);
  unsigned carry = 0;  // S + L: the same point, a non-canonical scalar
  for (int i = 0; i < 32; i++) {
    unsigned v = sig[32 + i] + L[i] + carry;
    sig[32 + i] = (uint8_t)v;
    carry = v >> 8;
  }
  EXPECT_EQ(-1, Sodium(sig, m, pk));
  EXPECT_EQ(-1, Ours(sig, m, pk));
}

TEST_F(Ed25519, SmallOrderAndNonCanonicalKeysAgreeWithLibsodium) {
  std::vector<std::vector<uint8_t>> keys = {
      std::vector<uint8_t>(32, 0),                                                   // y = 0 (order 4)
      Unhex("0100000000000000000000000000000000000000000000000000000000000000"),     // identity
      Unhex("0100000000000000000000000000000000000000000000000000000000000080"),     // identity, x sign set
      Unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),     // y = p - 1 (order 2)
      Unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),     // y = p
      Unhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),     // y = p + 1
      Unhex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),     // y = 2^255 - 1
  };
  uint8_t pk[32], sk[64], sig[64];
  crypto_sign_keypair(pk, sk);
  auto m = Bytes(16);
  crypto_sign_detached(sig, nullptr, m.data(), m.size(), sk);
  for (auto &k : keys) {
    EXPECT_EQ(-1, Sodium(sig, m, k.data()));
    EXPECT_EQ(-1, Ours(sig, m, k.data()));
    uint8_t s2[64];  // the small-order encodings as R as well
    memcpy(s2, sig, 64);
    memcpy(s2, k.data(), 32);
    EXPECT_EQ(Sodium(s2, m, pk), Ours(s2, m, pk));
  }
}

TEST_F(Ed25519, RandomBytesAgreeWithLibsodium) {
  for (int i = 0; i < 200; i++) {
    auto sig = Bytes(64), pk = Bytes(32), m = Bytes(rng() % 64);
    if (i % 2) sig[63] &= 0x0f;  // half with an S below 2^252, past the canonical-S check
    ASSERT_EQ(Sodium(sig.data(), m, pk.data()), Ours(sig.data(), m, pk.data())) << "case " << i;
  }
}

TEST_F(Ed25519, NullArgumentsAreRejected) {
  uint8_t sig[64] = {0}, pk[32] = {0};
  EXPECT_EQ(-1, tfa_ed25519_verify(nullptr, nullptr, 0, pk));
  EXPECT_EQ(-1, tfa_ed25519_verify(sig, nullptr, 5, pk));
  EXPECT_EQ(-1, tfa_ed25519_verify(sig, nullptr, 0, nullptr));
}

}  // namespace
