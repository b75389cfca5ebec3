#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tfr_ops.h"

static double Sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

TEST(CbamChannel, ScalesEachChannelBySigmoidOfSharedMlp) {
  const int hw = 3, c = 2, hidden = 1;
  float x[hw * c] = {1, -1, 2, 0, 3, 4};  // avg: 2, 1  max: 3, 4
  const float w1[2] = {1, -1}, b1[1] = {0.5f}, w2[2] = {2, -1}, b2[2] = {0, 0.25f};
  float scratch[4 * c + hidden];
  std::vector<float> orig(x, x + hw * c);
  tfr_op_cbam_channel(x, hw, c, hidden, w1, b1, w2, b2, scratch);
  // mlp(avg): h = relu(2-1+0.5)=1.5 -> [3, -1.25]; mlp(max): h = relu(3-4+0.5)=0 -> [0, 0.25]
  const double a0 = Sig(3 + 0), a1 = Sig(-1.25 + 0.25);
  for (int i = 0; i < hw; i++) {
    EXPECT_NEAR(x[i * c], orig[i * c] * a0, 1e-6);
    EXPECT_NEAR(x[i * c + 1], orig[i * c + 1] * a1, 1e-6);
  }
}

TEST(CbamSpatial, SevenBySevenConvOverMeanAndMax) {
  const int h = 4, w = 5, c = 3;
  std::vector<float> x(h * w * c);
  for (int i = 0; i < h * w * c; i++) x[i] = std::sin(0.7 * i);
  std::vector<float> sw(98);
  for (int i = 0; i < 98; i++) sw[i] = 0.01f * ((i * 13) % 17) - 0.08f;
  const float sb = 0.2f;
  std::vector<float> y = x, scratch(TFR_CBAM_SPATIAL_SCRATCH(h, w));
  tfr_op_cbam_spatial(y.data(), h, w, c, sw.data(), sb, scratch.data());
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
