#include <gtest/gtest.h>

#include "tfr_ops.h"

TEST(Shortcut, AvgPoolThen1x1ConvAddedToOutput) {
  // 2x2 plane, 2 channels -> 1x1 plane, 3 channels
  const float in[8] = {1, 10, 2, 20, 3, 30, 4, 40};  // avg: 2.5, 25
  const float sw[6] = {1, 0, 0, 1, 2, -0.1f};
  const float sb[3] = {0.5f, -1, 0};
  float pooled[2];
  float out[3] = {1, 1, 1};
  tfr_op_shortcut_proj(in, 2, 2, 2, 3, sw, sb, pooled, out);
  EXPECT_FLOAT_EQ(out[0], 1 + 2.5f + 0.5f);
  EXPECT_FLOAT_EQ(out[1], 1 + 25 - 1);
  EXPECT_FLOAT_EQ(out[2], 1 + 5 - 2.5f);
}
