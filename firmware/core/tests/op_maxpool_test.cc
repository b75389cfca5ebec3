#include <gtest/gtest.h>

#include "tfr_ops.h"

TEST(MaxPool, TakesTheMaxOfEach2x2WindowPerChannel) {
  // 2x4 plane, 2 channels
  const float in[2 * 4 * 2] = {1, -1, 5, -5, 0, 0, 2, 9,
                               3, -3, 4, -4, 8, 1, -7, -8};
  float out[1 * 2 * 2];
  tfr_op_maxpool2x2(in, 2, 4, 2, out);
  EXPECT_EQ(out[0], 5);
  EXPECT_EQ(out[1], -1);
  EXPECT_EQ(out[2], 8);
  EXPECT_EQ(out[3], 9);
}
