#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tfr_ops.h"

// Direct 'same' 3x3 conv over x = pixel * scale, computed independently in double.
static double Ref(const std::vector<uint8_t> &face, float scale, const float *w, float b, int y, int x) {
  double acc = 0;
  for (int ky = 0; ky < 3; ky++)
    for (int kx = 0; kx < 3; kx++) {
      int iy = y + ky - 1, ix = x + kx - 1;
      if (iy < 0 || iy >= 48 || ix < 0 || ix >= 48) continue;
      acc += static_cast<double>(w[ky * 3 + kx]) * face[iy * 48 + ix] * scale;
    }
  return acc + b;
}

TEST(StemConv, SamePaddingAndBiasOverEveryPixel) {
  std::vector<uint8_t> face(48 * 48);
  for (int i = 0; i < 48 * 48; i++) face[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  const int cout = 3;
  float w[cout * 9], b[cout] = {0.5f, -0.25f, 0.0f};
  for (int i = 0; i < cout * 9; i++) w[i] = static_cast<float>((i % 7) - 3) * 0.125f;
  std::vector<float> out(48 * 48 * cout);
  tfr_op_stem_conv_rows(face.data(), 1.0f / 255.0f, w, b, cout, 0, 48, out.data());
  for (int y = 0; y < 48; y++)
    for (int x = 0; x < 48; x++)
      for (int o = 0; o < cout; o++)
        ASSERT_NEAR(out[(y * 48 + x) * cout + o], Ref(face, 1.0f / 255.0f, w + o * 9, b[o], y, x), 1e-5)
            << y << "," << x << "," << o;
}

TEST(StemConv, RowWindowMatchesFullPlane) {
  std::vector<uint8_t> face(48 * 48, 200);
  face[5 * 48 + 7] = 0;
  float w[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b[1] = {0};
  std::vector<float> full(48 * 48), rows(2 * 48);
  tfr_op_stem_conv_rows(face.data(), 1.0f, w, b, 1, 0, 48, full.data());
  tfr_op_stem_conv_rows(face.data(), 1.0f, w, b, 1, 4, 2, rows.data());
  for (int i = 0; i < 2 * 48; i++) EXPECT_EQ(rows[i], full[4 * 48 + i]);
  // corner: only taps (1,1),(1,2),(2,1),(2,2) are inside
  EXPECT_EQ(full[0], 200.0f * (5 + 6 + 8 + 9));
}

// The fused stem (conv + max-pool + bias) equals the row kernel followed by the 2x2 max-pool,
// bit for bit, black borders (zero pixels) and negative weights included.
static void CheckFused(int cout, uint32_t seed) {
  uint32_t s = seed;
  auto rnd = [&]() { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; };
  std::vector<uint8_t> face(48 * 48);
  for (int i = 0; i < 48 * 48; i++) face[i] = (i % 48 < 6 || i / 48 > 40) ? 0 : static_cast<uint8_t>(rnd());
  std::vector<float> w(cout * 9), b(cout);
  for (auto &v : w) v = (static_cast<float>(rnd() % 2001) - 1000.0f) / 777.0f;
  for (auto &v : b) v = (static_cast<float>(rnd() % 2001) - 1000.0f) / 3333.0f;
  b[0] = -0.0f;
  std::vector<float> rows(48 * 48 * cout), want(24 * 24 * cout), got(24 * 24 * cout, 7.0f), xs(TFR_STEM_XS);
  tfr_op_stem_conv_rows(face.data(), 1.0f / 255.0f, w.data(), b.data(), cout, 0, 48, rows.data());
  tfr_op_maxpool2x2(rows.data(), 48, 48, cout, want.data());
  tfr_op_stem_conv_pool(face.data(), 1.0f / 255.0f, w.data(), b.data(), cout, xs.data(), got.data());
  ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float))) << "cout " << cout;
}

TEST(StemConvPool, FusedEqualsRowsThenMaxPool) {
  CheckFused(32, 1);
  CheckFused(16, 2);
  CheckFused(7, 3);  // 4 lanes + 3 scalar channels on the SIMD path
  CheckFused(1, 4);
}
