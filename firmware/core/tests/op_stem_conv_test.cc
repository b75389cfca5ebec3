#include <gtest/gtest.h>

#include <cstdint>
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

// The int8 stem: scale * (largest exact integer sum of the 2x2 window) + bias, in float32, computed
// here directly in 64-bit integers; the full weight range, black and white faces, any scratch
// alignment; bit for bit on every build (float kernel, SIMD, the PIE twin).
static void CheckInt8(int cout, uint32_t seed, int face_kind) {
  uint32_t s = seed;
  auto rnd = [&]() { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; };
  std::vector<uint8_t> face(48 * 48);
  for (int i = 0; i < 48 * 48; i++) {
    face[i] = face_kind == 0 ? static_cast<uint8_t>(rnd()) : face_kind == 1 ? 255 : face_kind == 2 ? 0
            : static_cast<uint8_t>(((i / 48) ^ (i % 48)) & 1 ? 255 : 0);
  }
  std::vector<int8_t> q(cout * 9);
  std::vector<float> sc(cout), b(cout);
  for (auto &v : q) v = static_cast<int8_t>(rnd() >> 24);
  q[0] = -128;
  q[cout * 9 - 1] = 127;
  for (int o = 0; o < cout && o < 2; o++)  // all -128 and all +127: the largest sums of either sign
    for (int t = 0; t < 9; t++) q[o * 9 + t] = o ? 127 : -128;
  for (auto &v : sc) v = static_cast<float>(rnd() % 1000 + 1) * 1e-8f;
  for (auto &v : b) v = (static_cast<float>(rnd() % 2001) - 1000.0f) / 3333.0f;
  std::vector<float> want(24 * 24 * cout), got(24 * 24 * cout, 7.0f);
  for (int py = 0; py < 24; py++)
    for (int px = 0; px < 24; px++)
      for (int o = 0; o < cout; o++) {
        int64_t m = INT64_MIN;
        for (int d = 0; d < 4; d++) {
          int64_t acc = 0;
          for (int t = 0; t < 9; t++) {
            const int y = 2 * py + d / 2 + t / 3 - 1, x = 2 * px + d % 2 + t % 3 - 1;
            if (y >= 0 && y < 48 && x >= 0 && x < 48) acc += int64_t{q[o * 9 + t]} * face[y * 48 + x];
          }
          m = acc > m ? acc : m;
        }
        volatile float prod = sc[o] * static_cast<float>(m);
        want[(py * 24 + px) * cout + o] = prod + b[o];
      }
  for (int shift = 0; shift < 4; shift++) {
    std::vector<uint8_t> scratch(TFR_STEM_I8_SCRATCH(cout) + 16);
    tfr_op_stem_conv_pool_i8(face.data(), q.data(), sc.data(), b.data(), cout, scratch.data() + shift, got.data());
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
        << "cout " << cout << " face " << face_kind << " shift " << shift;
  }
}

TEST(StemConvPoolI8, ExactIntegerSumsThenScaleAndBias) {
  for (int kind = 0; kind < 4; kind++) {
    CheckInt8(32, 1 + kind, kind);
    CheckInt8(7, 11 + kind, kind);  // 4 lanes + 3 scalar channels on the SIMD path
    CheckInt8(1, 21 + kind, kind);
  }
  CheckInt8(56, 99, 0);
}
