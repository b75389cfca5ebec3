// The app's Ed25519 verifier and SHA-512 (firmware/app/src/ed25519.c, the code the device runs)
// against libsodium: RFC 8032 test vectors, thousands of random keys, messages and signatures
// (valid and corrupted), non-canonical S, small-order and off-curve points, non-canonical keys.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <string>
#include <vector>

#include "tfa/ed25519.h"

namespace {

std::vector<uint8_t> unhex(const std::string &s) {
  std::vector<uint8_t> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); i++) out[i] = (uint8_t)std::stoul(s.substr(2 * i, 2), nullptr, 16);
  return out;
}

class Ed25519 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_GE(sodium_init(), 0); }
  static bool sodium_ok(const uint8_t *sig, const uint8_t *m, size_t n, const uint8_t *pk) {
    return crypto_sign_verify_detached(sig, m, n, pk) == 0;
  }
  static bool ours_ok(const uint8_t *sig, const uint8_t *m, size_t n, const uint8_t *pk) { return tfa_ed25519_verify(sig, m, n, pk) == 0; }
};

// L, little-endian
const uint8_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};

// The encodings of the 8 points of small order (computed from the curve equation).
const char *const kSmallOrder[8] = {
    "0100000000000000000000000000000000000000000000000000000000000000",  // identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // (0, -1), order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  // order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  // order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  // order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
};

TEST_F(Ed25519, Rfc8032Vectors) {
  struct V {
    const char *seed, *pk, *msg, *sig;
  } v[] = {
      {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
      {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
      {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
       "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
  };
  for (const V &t : v) {
    std::vector<uint8_t> seed = unhex(t.seed), pk = unhex(t.pk), msg = unhex(t.msg), sig = unhex(t.sig);
    uint8_t pk2[32], sk[64], sig2[64];
    ASSERT_EQ(crypto_sign_seed_keypair(pk2, sk, seed.data()), 0);
    EXPECT_EQ(memcmp(pk2, pk.data(), 32), 0) << t.pk;  // the vector is what libsodium derives
    crypto_sign_detached(sig2, nullptr, msg.data(), msg.size(), sk);
    EXPECT_EQ(memcmp(sig2, sig.data(), 64), 0) << t.sig;
    EXPECT_TRUE(ours_ok(sig.data(), msg.data(), msg.size(), pk.data())) << t.sig;
    for (int bit = 0; bit < 512; bit += 7) {
      std::vector<uint8_t> bad = sig;
      bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      EXPECT_FALSE(ours_ok(bad.data(), msg.data(), msg.size(), pk.data())) << "bit " << bit;
    }
  }
}

TEST_F(Ed25519, Sha512MatchesLibsodium) {
  uint8_t abc[64];
  tfa_sha512("abc", 3, abc);
  EXPECT_EQ(memcmp(abc, unhex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                              "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
                            .data(),
                   64),
            0);
  std::vector<uint8_t> m(1200);
  randombytes_buf(m.data(), m.size());
  for (size_t n = 0; n <= m.size(); n += (n < 300 ? 1 : 37)) {
    uint8_t want[64], got[64], inc[64];
    crypto_hash_sha512(want, m.data(), n);
    tfa_sha512(m.data(), n, got);
    ASSERT_EQ(memcmp(want, got, 64), 0) << n;
    // the same bytes fed in uneven pieces
    tfa_sha512_ctx c;
    tfa_sha512_init(&c);
    size_t off = 0;
    while (off < n) {
      size_t k = 1 + randombytes_uniform(150);
      if (k > n - off) k = n - off;
      tfa_sha512_update(&c, m.data() + off, k);
      off += k;
    }
    tfa_sha512_final(&c, inc);
    ASSERT_EQ(memcmp(want, inc, 64), 0) << n;
  }
}

// Random keys and messages: valid signatures, then one corruption each (a bit of R, of S, of
// the message, of the key, a random key, a random R); every verdict must equal libsodium's.
TEST_F(Ed25519, AgreesWithLibsodiumOnRandomInputs) {
  const int kKeys = 3000;
  int valid = 0, agreed = 0, rejected = 0, total = 0;
  for (int it = 0; it < kKeys; it++) {
    uint8_t pk[32], sk[64], sig[64], m[256];
    size_t n = randombytes_uniform(sizeof m + 1);
    randombytes_buf(m, n);
    crypto_sign_keypair(pk, sk);
    crypto_sign_detached(sig, nullptr, m, n, sk);
    ASSERT_TRUE(ours_ok(sig, m, n, pk)) << "valid signature rejected, iteration " << it;
    valid++;
    for (int mode = 0; mode < 6; mode++) {
      uint8_t s2[64], k2[32], m2[256];
      memcpy(s2, sig, 64);
      memcpy(k2, pk, 32);
      memcpy(m2, m, n);
      switch (mode) {
        case 0: s2[randombytes_uniform(32)] ^= (uint8_t)(1u << randombytes_uniform(8)); break;
        case 1: s2[32 + randombytes_uniform(32)] ^= (uint8_t)(1u << randombytes_uniform(8)); break;
        case 2:
          if (n) m2[randombytes_uniform((uint32_t)n)] ^= (uint8_t)(1u << randombytes_uniform(8));
          else continue;
          break;
        case 3: k2[randombytes_uniform(32)] ^= (uint8_t)(1u << randombytes_uniform(8)); break;
        case 4: randombytes_buf(k2, 32); break;  // about half are not on the curve
        default: randombytes_buf(s2, 32); break;
      }
      bool a = sodium_ok(s2, m2, n, k2), b = ours_ok(s2, m2, n, k2);
      total++;
      if (a == b) agreed++;
      if (!b) rejected++;
      EXPECT_EQ(a, b) << "mode " << mode << " iteration " << it;
    }
  }
  EXPECT_EQ(valid, kKeys);
  EXPECT_EQ(agreed, total);
  EXPECT_EQ(rejected, total);  // no corruption yields a valid signature
}

// S + L satisfies the same equation (S is used mod L) but is not canonical: rejected, as S >= L.
TEST_F(Ed25519, RejectsNonCanonicalS) {
  for (int it = 0; it < 200; it++) {
    uint8_t pk[32], sk[64], sig[64], m[32];
    randombytes_buf(m, sizeof m);
    crypto_sign_keypair(pk, sk);
    crypto_sign_detached(sig, nullptr, m, sizeof m, sk);
    uint8_t bad[64];
    memcpy(bad, sig, 32);
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
      unsigned v = sig[32 + i] + kL[i] + carry;
      bad[32 + i] = (uint8_t)v;
      carry = v >> 8;
    }
    ASSERT_EQ(carry, 0u);  // S < L < 2^253, so S + L < 2^254
    EXPECT_TRUE(ours_ok(sig, m, sizeof m, pk));
    EXPECT_FALSE(sodium_ok(bad, m, sizeof m, pk));
    EXPECT_FALSE(ours_ok(bad, m, sizeof m, pk));
    memcpy(bad + 32, sig + 32, 32);
    bad[63] |= 0xe0;  // top bits set: S far above L
    EXPECT_FALSE(ours_ok(bad, m, sizeof m, pk));
  }
  uint8_t l_itself[64] = {0}, pk[32], sk[64];
  crypto_sign_keypair(pk, sk);
  memcpy(l_itself + 32, kL, 32);
  EXPECT_FALSE(ours_ok(l_itself, nullptr, 0, pk));
}

// A key of small order makes the equation hold for forged signatures: with A the identity,
// R = [S]B verifies any message. Both implementations refuse such keys, and small-order R.
TEST_F(Ed25519, RejectsSmallOrderKeysAndR) {
  uint8_t m[16] = "model digest..";
  for (const char *hex : kSmallOrder) {
    std::vector<uint8_t> small = unhex(hex);
    uint8_t sig[64], s[32];
    crypto_core_ed25519_scalar_random(s);
    ASSERT_EQ(crypto_scalarmult_ed25519_base_noclamp(sig, s), 0);
    memcpy(sig + 32, s, 32);
    EXPECT_FALSE(sodium_ok(sig, m, sizeof m, small.data())) << hex;
    EXPECT_FALSE(ours_ok(sig, m, sizeof m, small.data())) << hex;

    uint8_t pk[32], sk[64], good[64];
    crypto_sign_keypair(pk, sk);
    crypto_sign_detached(good, nullptr, m, sizeof m, sk);
    memcpy(good, small.data(), 32);
    EXPECT_FALSE(sodium_ok(good, m, sizeof m, pk)) << hex;
    EXPECT_FALSE(ours_ok(good, m, sizeof m, pk)) << hex;
  }
}

// Keys whose y is not reduced (y = p + k, k = 0..18, both signs) and random invalid points.
TEST_F(Ed25519, RejectsNonCanonicalAndOffCurveKeys) {
  uint8_t m[8] = {1, 2, 3, 4, 5, 6, 7, 8}, sig[64], pk[32], sk[64];
  crypto_sign_keypair(pk, sk);
  crypto_sign_detached(sig, nullptr, m, sizeof m, sk);
  for (unsigned k = 0; k < 19; k++) {
    for (int sign = 0; sign < 2; sign++) {
      uint8_t key[32];
      memset(key, 0xff, 32);
      key[0] = (uint8_t)(0xed + k);
      key[31] = sign ? 0xff : 0x7f;
      EXPECT_EQ(sodium_ok(sig, m, sizeof m, key), ours_ok(sig, m, sizeof m, key)) << k;
      EXPECT_FALSE(ours_ok(sig, m, sizeof m, key)) << k;
    }
  }
  int invalid = 0;  // off the curve, or of small or mixed order
  for (int it = 0; it < 500; it++) {
    uint8_t key[32];
    randombytes_buf(key, 32);
    if (crypto_core_ed25519_is_valid_point(key)) continue;
    invalid++;
    EXPECT_FALSE(ours_ok(sig, m, sizeof m, key));
    EXPECT_FALSE(sodium_ok(sig, m, sizeof m, key));
  }
  EXPECT_GT(invalid, 100);
}

TEST_F(Ed25519, RejectsMissingArguments) {
  uint8_t pk[32], sk[64], sig[64], m[4] = {0};
  crypto_sign_keypair(pk, sk);
  crypto_sign_detached(sig, nullptr, m, sizeof m, sk);
  EXPECT_TRUE(ours_ok(sig, m, sizeof m, pk));
  EXPECT_EQ(tfa_ed25519_verify(nullptr, m, sizeof m, pk), -1);
  EXPECT_EQ(tfa_ed25519_verify(sig, nullptr, sizeof m, pk), -1);
  EXPECT_EQ(tfa_ed25519_verify(sig, m, sizeof m, nullptr), -1);
}

}  // namespace
