#include <gtest/gtest.h>

#include <cmath>

#include "tfr_ops.h"

TEST(Gap, MeansEachChannelOverPixels) {
  const float in[6] = {1, 2, 3, 4, 5, 9};
  float out[2];
  tfr_op_gap(in, 3, 2, out);
  EXPECT_FLOAT_EQ(out[0], 3);
  EXPECT_FLOAT_EQ(out[1], 5);
}

TEST(Dense, WeightsRowsPlusBias) {
  const float in[3] = {1, 2, 3}, w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {10, -1};
  float out[2];
  tfr_op_dense(in, 3, 2, w, b, out);
  EXPECT_FLOAT_EQ(out[0], 8);
  EXPECT_FLOAT_EQ(out[1], 2);
}

TEST(Dense, NullBiasGivesTheSumAlone) {
  const float in[5] = {1, 2, 3, 4, 5}, w[10] = {1, 0, -1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, b[2] = {0, 0};
  float out[2], with_zero[2];
  tfr_op_dense(in, 5, 2, w, NULL, out);
  tfr_op_dense(in, 5, 2, w, b, with_zero);
  EXPECT_FLOAT_EQ(out[0], -2);
  EXPECT_FLOAT_EQ(out[1], 7.5f);
  EXPECT_EQ(out[0], with_zero[0]);
  EXPECT_EQ(out[1], with_zero[1]);
}

TEST(Softmax, SumsToOneAndIsShiftInvariant) {
  const float a[3] = {1, 2, 3}, b[3] = {1001, 1002, 1003};
  float pa[3], pb[3];
  tfr_op_softmax(a, 3, pa);
  tfr_op_softmax(b, 3, pb);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int i = 0; i < 3; i++) {
    EXPECT_NEAR(pa[i], std::exp(i + 1.0) / z, 1e-7);
    EXPECT_EQ(pa[i], pb[i]);
  }
}
