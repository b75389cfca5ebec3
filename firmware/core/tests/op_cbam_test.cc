#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "tfr_ops.h"

static double Sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

TEST(CbamChannel, FactorsAreSigmoidOfSharedMlp) {
  const int hw = 3, c = 2, hidden = 1;
  const float x[hw * c] = {1, -1, 2, 0, 3, 4};  // avg: 2, 1  max: 3, 4
  const float w1[2] = {1, -1}, b1[1] = {0.5f}, w2[2] = {2, -1}, b2[2] = {0, 0.25f};
  float scratch[TFR_CBAM_CHANNEL_SCRATCH(c, hidden)], f[c];
  tfr_op_cbam_factors(x, hw, c, hidden, w1, b1, w2, b2, scratch, f);
  // mlp(avg): h = relu(2-1+0.5)=1.5 -> [3, -1.25]; mlp(max): h = relu(3-4+0.5)=0 -> [0, 0.25]
  EXPECT_NEAR(f[0], Sig(3 + 0), 1e-6);
  EXPECT_NEAR(f[1], Sig(-1.25 + 0.25), 1e-6);
}

// The channel factors applied inside the spatial op (in the pass of its channel statistics where
// the build does that) give the floats of a separate scaling pass first, bit for bit: power-of-two
// and other channel counts, odd ones, rows with and without a remainder of four pixels.
TEST(CbamSpatial, ChannelFactorsEqualAScalingPassFirst) {
  for (int c : {32, 56, 3, 7, 8})
    for (int w : {24, 6, 5}) {
      const int h = 4;
      std::vector<float> x(h * w * c), chan(c), ones(c, 1.0f), sw(98);
      for (size_t i = 0; i < x.size(); i++) x[i] = static_cast<float>(std::sin(0.37 * i + c));
      for (int k = 0; k < c; k++) chan[k] = 0.25f + 0.7f * static_cast<float>(std::fabs(std::cos(1.3 * k)));
      for (int i = 0; i < 98; i++) sw[i] = 0.01f * ((i * 13) % 17) - 0.08f;
      std::vector<float> fused = x, plain = x, scratch(TFR_CBAM_SPATIAL_SCRATCH(h, w));
      for (int i = 0; i < h * w; i++)
        for (int k = 0; k < c; k++) plain[i * c + k] = plain[i * c + k] * chan[k];
      tfr_op_cbam_spatial(plain.data(), h, w, c, ones.data(), sw.data(), 0.1f, scratch.data());
      tfr_op_cbam_spatial(fused.data(), h, w, c, chan.data(), sw.data(), 0.1f, scratch.data());
      ASSERT_EQ(0, std::memcmp(fused.data(), plain.data(), x.size() * sizeof(float))) << "c " << c << " w " << w;
    }
}

TEST(CbamSpatial, SevenBySevenConvOverMeanAndMax) {
  const int h = 4, w = 5, c = 3;
  std::vector<float> x(h * w * c);
  for (int i = 0; i < h * w * c; i++) x[i] = std::sin(0.7 * i);
  std::vector<float> sw(98);
  for (int i = 0; i < 98; i++) sw[i] = 0.01f * ((i * 13) % 17) - 0.08f;
  const float sb = 0.2f;
  std::vector<float> y = x, scratch(TFR_CBAM_SPATIAL_SCRATCH(h, w)), ones(c, 1.0f);
  tfr_op_cbam_spatial(y.data(), h, w, c, ones.data(), sw.data(), sb, scratch.data());
  for (int py = 0; py < h; py++)
    for (int px = 0; px < w; px++) {
      double acc = sb;
      for (int ky = 0; ky < 7; ky++)
        for (int kx = 0; kx < 7; kx++) {
          int iy = py + ky - 3, ix = px + kx - 3;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
          const float *p = &x[(iy * w + ix) * c];
          double mean = (p[0] + p[1] + p[2]) / 3.0, mx = std::max(p[0], std::max(p[1], p[2]));
          acc += sw[(ky * 7 + kx) * 2] * mean + sw[(ky * 7 + kx) * 2 + 1] * mx;
        }
      const double s = Sig(acc);
      for (int k = 0; k < c; k++) ASSERT_NEAR(y[(py * w + px) * c + k], x[(py * w + px) * c + k] * s, 1e-5);
    }
}
