#include <gtest/gtest.h>

#include <vector>

#include "tfr_ops.h"

TEST(Shortcut, AvgPoolThen1x1Conv) {
  // 2x2 plane, 2 channels -> 1x1 plane, 3 channels
  const float in[8] = {1, 10, 2, 20, 3, 30, 4, 40};  // avg: 2.5, 25
  const float sw[6] = {1, 0, 0, 1, 2, -0.1f};
  const float sb[3] = {0.5f, -1, 0};
  float pooled[2];
  float out[3] = {1, 1, 1};
  tfr_op_shortcut_proj(in, 2, 2, 2, 3, sw, sb, pooled, out);
  EXPECT_FLOAT_EQ(out[0], 2.5f + 0.5f);
  EXPECT_FLOAT_EQ(out[1], 25 - 1);
  EXPECT_FLOAT_EQ(out[2], 5 - 2.5f);
}

TEST(Shortcut, InPlaceEqualsOutOfPlaceWhenCoutAtMostTwiceCin) {
  const int h = 6, cin = 3, cout = 6;
  std::vector<float> in(h * h * cin), sw(cout * cin), sb(cout), pooled(cin);
  for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<float>((i * 7) % 13) - 6;
  for (size_t i = 0; i < sw.size(); i++) sw[i] = 0.1f * static_cast<float>((i * 5) % 9) - 0.4f;
  for (int o = 0; o < cout; o++) sb[o] = 0.01f * o;
  std::vector<float> out((h / 2) * (h / 2) * cout);
  tfr_op_shortcut_proj(in.data(), h, h, cin, cout, sw.data(), sb.data(), pooled.data(), out.data());
  std::vector<float> buf = in;
  tfr_op_shortcut_proj(buf.data(), h, h, cin, cout, sw.data(), sb.data(), pooled.data(), buf.data());
  for (size_t i = 0; i < out.size(); i++) EXPECT_EQ(buf[i], out[i]) << i;
}
