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

// Every path (SIMD: 16, 8 and 4 outputs per vector, pixel pairs; scalar: pixel pairs of four
// outputs per step, single pixels; the tails) against the plain definition, bit for bit, out of
// place and in place.
static void CheckShortcut(int h, int cin, int cout) {
  const int ho = h / 2;
  std::vector<float> in(h * h * cin), sw(cout * cin), sb(cout), pooled(cin);
  for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<float>((i * 37) % 101) / 7.0f - 7.0f;
  for (size_t i = 0; i < sw.size(); i++) sw[i] = static_cast<float>((i * 13) % 29) / 11.0f - 1.3f;
  for (int o = 0; o < cout; o++) sb[o] = 0.03f * o - 0.5f;
  std::vector<float> want(ho * ho * cout);
  for (int y = 0; y < ho; y++)
    for (int x = 0; x < ho; x++) {
      std::vector<float> p(cin);
      for (int c = 0; c < cin; c++) {
        const float *a = &in[((2 * y) * h + 2 * x) * cin + c];
        volatile float s = a[0] + a[cin];  // the definition's order, one rounding per step
        s = s + a[h * cin];
        s = s + a[h * cin + cin];
        p[c] = s * 0.25f;
      }
      for (int o = 0; o < cout; o++) {
        volatile float acc = 0.0f;
        for (int c = 0; c < cin; c++) {
          volatile float prod = sw[o * cin + c] * p[c];
          acc = acc + prod;
        }
        want[(y * ho + x) * cout + o] = acc + sb[o];
      }
    }
  std::vector<float> out(want.size(), 123.0f);
  tfr_op_shortcut_proj(in.data(), h, h, cin, cout, sw.data(), sb.data(), pooled.data(), out.data());
  for (size_t i = 0; i < out.size(); i++) ASSERT_EQ(out[i], want[i]) << i;
  if (cout <= 2 * cin) {
    std::vector<float> buf = in;
    tfr_op_shortcut_proj(buf.data(), h, h, cin, cout, sw.data(), sb.data(), pooled.data(), buf.data());
    for (size_t i = 0; i < want.size(); i++) ASSERT_EQ(buf[i], want[i]) << i;
  }
}

TEST(Shortcut, TinyferShapeBitExact) { CheckShortcut(24, 32, 56); }
TEST(Shortcut, OddWidthsAndTails) {
  CheckShortcut(10, 7, 30);
  CheckShortcut(6, 9, 5);
  CheckShortcut(14, 40, 3);
}
// The scalar pixel pairs (cin a multiple of four, at most 64): output tails, an odd last pixel,
// cout = 2 * cin in place, and the widest layer they take; wider ones go one pixel at a time.
TEST(Shortcut, ScalarPairsAndTheirLimits) {
  CheckShortcut(10, 8, 14);
  CheckShortcut(8, 8, 16);
  CheckShortcut(6, 64, 20);
  CheckShortcut(6, 68, 12);
}
