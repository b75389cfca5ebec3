#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tfr_ops.h"

// Plain +-1 convolution over a +1 padded plane, the definition in folded.ts.
static int RefConv(const std::vector<int> &a, int h, int w, int cin, const std::vector<int> &wt, int o,
                   int oy, int ox, int stride) {
  int acc = 0;
  for (int ky = 0; ky < 3; ky++)
    for (int kx = 0; kx < 3; kx++)
      for (int c = 0; c < cin; c++) {
        int py = oy * stride + ky - 1, px = ox * stride + kx - 1;
        int v = (py < 0 || px < 0 || py >= h || px >= w) ? 1 : a[(py * w + px) * cin + c];
        acc += v * wt[((o * 3 + ky) * 3 + kx) * cin + c];
      }
  return acc;
}

static void Check(int h, int cin, int cout, int stride, uint32_t seed) {
  const int w = h, words = TFR_WORDS(cin);
  uint32_t s = seed;
  auto rnd = [&]() { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; };
  std::vector<float> x(h * w * cin), thr(cin, 0.0f);
  std::vector<int> a(h * w * cin), wt(cout * 9 * cin);
  for (size_t i = 0; i < x.size(); i++) {
    x[i] = (rnd() & 1) ? 0.5f : -0.5f;
    a[i] = x[i] >= 0 ? 1 : -1;
  }
  std::vector<uint32_t> bits(cout * 9 * words, 0);
  for (int t = 0; t < cout * 9; t++)
    for (int c = 0; c < cin; c++) {
      int v = (rnd() & 1) ? 1 : -1;
      wt[t * cin + c] = v;
      if (v > 0) bits[t * words + c / 32] |= 1u << (c % 32);
    }
  std::vector<float> scale(cout), bias(cout);
  for (int o = 0; o < cout; o++) {
    scale[o] = 0.25f * (o + 1);
    bias[o] = 0.5f * o - 1.0f;
  }
  std::vector<uint32_t> packed((h + 2) * (w + 2) * words);
  tfr_op_binarize_pack(x.data(), h, w, cin, thr.data(), packed.data());
  const int ho = (h - 1) / stride + 1;
  std::vector<float> out(ho * ho * cout, 100.0f);
  tfr_op_binary_conv(packed.data(), h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 0,
                     nullptr, out.data());
  std::vector<float> acc(out.size(), 100.0f);
  tfr_op_binary_conv(packed.data(), h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 1,
                     nullptr, acc.data());
  // fused PReLU: the same as tfr_op_prelu after the conv, bit for bit
  std::vector<float> slope(cout), fused(out.size(), 100.0f), plain(out.size(), 100.0f);
  for (int o = 0; o < cout; o++) slope[o] = 0.05f + 0.01f * o;
  tfr_op_binary_conv(packed.data(), h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 1,
                     slope.data(), fused.data());
  tfr_op_binary_conv(packed.data(), h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 1,
                     nullptr, plain.data());
  tfr_op_prelu(plain.data(), ho * ho, cout, slope.data());
  ASSERT_EQ(0, std::memcmp(fused.data(), plain.data(), fused.size() * sizeof(float)));
#if defined(TFR_USE_CONV_LUT)
  // the table look-up path: the same floats, bit for bit, in every mode
  {
    std::vector<uint8_t> lut(tfr_conv_lut_bytes(cin, cout) + 1);
    uint8_t *t = lut.data() + 1;  // any alignment
    tfr_conv_lut_build(bits.data(), cin, cout, t);
    std::vector<float> o1(out.size(), 100.0f), o2(out.size(), 100.0f), o3(out.size(), 100.0f);
    tfr_op_binary_conv_lut(packed.data(), h, w, cin, cout, stride, t, scale.data(), bias.data(), 0, nullptr,
                           o1.data());
    tfr_op_binary_conv_lut(packed.data(), h, w, cin, cout, stride, t, scale.data(), bias.data(), 1, nullptr,
                           o2.data());
    tfr_op_binary_conv_lut(packed.data(), h, w, cin, cout, stride, t, scale.data(), bias.data(), 1,
                           slope.data(), o3.data());
    ASSERT_EQ(0, std::memcmp(o1.data(), out.data(), out.size() * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(o2.data(), acc.data(), acc.size() * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(o3.data(), fused.data(), fused.size() * sizeof(float)));
  }
#endif
#if defined(TFR_USE_INT8_DOT)
  // the byte path (the ESP32-S3's): +-1 byte plane and dot products, the same floats bit for bit
  if (tfr_i8_layer(cin)) {
    const int cp = TFR_I8C(cin);
    std::vector<int8_t> buf((h + 2) * (w + 2) * cp + 16);
    int8_t *plane = buf.data() + ((16 - (reinterpret_cast<uintptr_t>(buf.data()) & 15)) & 15);
    tfr_op_binarize_i8(x.data(), h, w, cin, thr.data(), plane);
    for (int y = 0; y < h + 2; y++)
      for (int xx = 0; xx < w + 2; xx++)
        for (int c = 0; c < cp; c++) {
          const bool border = y == 0 || xx == 0 || y == h + 1 || xx == w + 1;
          const int want = c >= cin ? 0 : border ? 1 : a[((y - 1) * w + (xx - 1)) * cin + c];
          ASSERT_EQ(plane[(y * (w + 2) + xx) * cp + c], want) << y << "," << xx << "," << c;
        }
    std::vector<float> o1(out.size(), 100.0f), o2(out.size(), 100.0f), o3(out.size(), 100.0f);
    tfr_op_binary_conv_i8(plane, h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 0, nullptr, o1.data());
    tfr_op_binary_conv_i8(plane, h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 1, nullptr, o2.data());
    tfr_op_binary_conv_i8(plane, h, w, cin, cout, stride, bits.data(), scale.data(), bias.data(), 1, slope.data(),
                          o3.data());
    ASSERT_EQ(0, std::memcmp(o1.data(), out.data(), out.size() * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(o2.data(), acc.data(), acc.size() * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(o3.data(), fused.data(), fused.size() * sizeof(float)));
  }
#endif
  for (int oy = 0; oy < ho; oy++)
    for (int ox = 0; ox < ho; ox++)
      for (int o = 0; o < cout; o++) {
        const int conv = RefConv(a, h, w, cin, wt, o, oy, ox, stride);
        const float want = scale[o] * static_cast<float>(conv) + bias[o];
        const int i = (oy * ho + ox) * cout + o;
        ASSERT_EQ(out[i], want) << oy << "," << ox << "," << o;
        ASSERT_EQ(acc[i], want + 100.0f);
      }
}

TEST(BinaryConv, Stride1MatchesPlusMinusOneConv) { Check(6, 16, 5, 1, 7); }
TEST(BinaryConv, Stride2MatchesPlusMinusOneConv) { Check(8, 33, 4, 2, 11); }
// the shapes of tinyfer-b1 (1 and 2 words per pixel, cout a multiple of 4 and not)
TEST(BinaryConv, OneWordEightGroupsOfFour) { Check(7, 32, 32, 1, 3); }
TEST(BinaryConv, TwoWordsStride2) { Check(9, 56, 58, 2, 4); }
TEST(BinaryConv, TwoWordsStride1) { Check(5, 56, 56, 1, 8); }
TEST(BinaryConv, MultiWordChannels) { Check(4, 70, 3, 1, 99); }
// cin > 256: the window is read in place instead of gathered (TFR_PATCH_WORDS).
TEST(BinaryConv, WideLayersReadTheWindowInPlace) { Check(3, 300, 2, 1, 5); }
TEST(BinaryConv, WideLayersStride2) { Check(4, 257, 3, 2, 6); }
// more than 64 outputs (two table chunks), partial words and groups, both table kinds
TEST(BinaryConv, SeventyOutputs) { Check(5, 40, 70, 1, 12); }
// the byte path's blocks of output pixels: several rows and a partial last block (31 x 31), and
// rows wider than one block (200 x 200: parts of a row)
TEST(BinaryConv, ManyRowBlocks) { Check(31, 16, 3, 1, 21); }
TEST(BinaryConv, RowsWiderThanOneBlock) { Check(200, 16, 2, 1, 22); }
// the same with the byte path's other pass shapes: six-vector chunks only (32 and 64 channels),
// six- and three-vector ones (48), the widest byte plane (256: 24 passes)
TEST(BinaryConv, ManyRowBlocksSixVectorChunks) { Check(31, 32, 3, 1, 23); }
TEST(BinaryConv, ManyRowBlocksMixedChunksStride2) { Check(29, 48, 2, 2, 24); }
TEST(BinaryConv, RowsWiderThanOneBlockTwoChunks) { Check(200, 64, 1, 1, 25); }
TEST(BinaryConv, WidestBytePlane) { Check(5, 256, 2, 1, 26); }
TEST(BinaryConv, ByteTablesStride2) { Check(7, 24, 18, 2, 13); }
TEST(BinaryConv, NibbleTablesPartialWord) { Check(6, 100, 40, 1, 14); }
