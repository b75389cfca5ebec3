#include <gtest/gtest.h>

#include "tfr_ops.h"

TEST(Prelu, ScalesNegativesPerChannel) {
  float x[4] = {-2, 3, 0, -4};
  const float slope[2] = {0.5f, 0.25f};
  tfr_op_prelu(x, 2, 2, slope);
  EXPECT_EQ(x[0], -1);
  EXPECT_EQ(x[1], 3);
  EXPECT_EQ(x[2], 0);
  EXPECT_EQ(x[3], -1);
}
