#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "tfr_ops.h"

TEST(Math, ExpfMatchesLibmWithinTwoUlpsOverItsRange) {
  for (float x = -87.0f; x <= 88.0f; x += 0.173f) {
    const double want = std::exp(static_cast<double>(x));
    const double got = tfr_expf(x);
    EXPECT_NEAR(got / want, 1.0, 3e-7) << "x=" << x;
  }
  EXPECT_EQ(tfr_expf(0.0f), 1.0f);
  EXPECT_EQ(tfr_expf(-100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(tfr_expf(NAN)));
  EXPECT_TRUE(std::isfinite(tfr_expf(1000.0f)));
}

TEST(Math, SigmoidIsOneOverOnePlusExp) {
  EXPECT_FLOAT_EQ(tfr_sigmoidf(0.0f), 0.5f);
  EXPECT_NEAR(tfr_sigmoidf(2.0f), 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  EXPECT_LT(tfr_sigmoidf(-200.0f), 1e-37f);
  EXPECT_EQ(tfr_sigmoidf(200.0f), 1.0f);
}

// The four-input sigmoid (CBAM, scalar builds) is tfr_sigmoidf bit for bit, edges included (a NaN
// in gives a NaN out).
TEST(Math, FourInputSigmoidEqualsTheScalarOneBitForBit) {
  std::vector<float> xs = {0.0f,   -0.0f,    88.0f,   88.5f,   -88.0f, -88.5f, 1000.0f,  -1000.0f, 87.0f,
                           -87.0f, 87.5f,    -87.5f,  NAN,     -NAN,   INFINITY, -INFINITY, 0.5f,   -0.5f,
                           1e-30f, -1e-30f,  126.9f,  -126.9f, 0.3465736f, -0.3465736f, 1e-45f, -1e-45f};
  for (float x = -100.0f; x <= 100.0f; x += 0.0371f) xs.push_back(x);
  uint32_t r = 12345u;
  for (int i = 0; i < 4000; i++) { // random bit patterns: every exponent, NaNs and subnormals included
    r = r * 1664525u + 1013904223u;
    float f;
    std::memcpy(&f, &r, 4);
    xs.push_back(f);
  }
  while (xs.size() % 4) xs.push_back(1.0f);
  for (size_t i = 0; i < xs.size(); i += 4) {
    float s[4] = {xs[i], xs[i + 1], xs[i + 2], xs[i + 3]};
    tfr_sigmoidf_x4(s);
    for (int j = 0; j < 4; j++) {
      const float want = tfr_sigmoidf(xs[i + j]);
      if (std::isnan(want)) { // a NaN's sign and payload are the compiler's (they differ under ASan/UBSan)
        EXPECT_TRUE(std::isnan(s[j])) << "lane " << j;
        continue;
      }
      EXPECT_EQ(0, std::memcmp(&s[j], &want, 4)) << "sigmoid x=" << xs[i + j] << " lane " << j;
    }
  }
}

TEST(Math, PopcountCountsBits) {
  EXPECT_EQ(tfr_popcount32(0u), 0u);
  EXPECT_EQ(tfr_popcount32(0xFFFFFFFFu), 32u);
  EXPECT_EQ(tfr_popcount32(0x80000001u), 2u);
  uint32_t x = 0x12345678u;
  for (int i = 0; i < 1000; i++) {
    x = x * 1664525u + 1013904223u;
    uint32_t n = 0;
    for (int b = 0; b < 32; b++) n += (x >> b) & 1u;
    ASSERT_EQ(tfr_popcount32(x), n);
  }
}

#if defined(TFR_USE_SIMD)
#include <cstring>

#include "tfr_simd.h"

// The 4-lane exp and sigmoid of the SIMD path are the scalar ones bit for bit, edges included.
TEST(Math, VectorExpAndSigmoidEqualTheScalarOnesBitForBit) {
  std::vector<float> xs = {0.0f, -0.0f, 88.0f, 88.5f, 1000.0f, -87.0f, -87.5f, -1000.0f, NAN, INFINITY, -INFINITY,
                           0.5f, -0.5f, 1e-30f, -1e-30f, 126.9f, -126.9f};
  for (float x = -100.0f; x <= 100.0f; x += 0.0371f) xs.push_back(x);
  while (xs.size() % 4) xs.push_back(1.0f);
  for (size_t i = 0; i < xs.size(); i += 4) {
    const tfr_v4f v = tfr_v4f_load(&xs[i]);
    float e[4], s[4];
    tfr_v4f_store(e, tfr_expf4(v));
    tfr_v4f_store(s, tfr_sigmoidf4(v));
    for (int j = 0; j < 4; j++) {
      const float we = tfr_expf(xs[i + j]), ws = tfr_sigmoidf(xs[i + j]);
      if (std::isnan(we)) {
        EXPECT_TRUE(std::isnan(e[j]));
        EXPECT_TRUE(std::isnan(s[j]));
        continue;
      }
      EXPECT_EQ(0, std::memcmp(&e[j], &we, 4)) << "exp x=" << xs[i + j];
      EXPECT_EQ(0, std::memcmp(&s[j], &ws, 4)) << "sigmoid x=" << xs[i + j];
    }
  }
}
#endif
