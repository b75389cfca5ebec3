#include <gtest/gtest.h>

#include <vector>

#include "tfr_ops.h"

TEST(Binarize, ThresholdsPacksAndPadsWithPlusOne) {
  const int h = 2, w = 3, c = 35;  // two words per pixel, 3 padding bits
  std::vector<float> in(h * w * c), thr(c);
  for (int ch = 0; ch < c; ch++) thr[ch] = 0.1f * (ch % 5) - 0.2f;
  for (int i = 0; i < h * w * c; i++) in[i] = 0.05f * ((i * 7) % 11) - 0.25f;
  std::vector<uint32_t> packed((h + 2) * (w + 2) * 2, 0xDEADBEEFu);
  tfr_op_binarize_pack(in.data(), h, w, c, thr.data(), packed.data());
  for (int y = 0; y < h + 2; y++)
    for (int x = 0; x < w + 2; x++) {
      const uint32_t *p = &packed[(y * (w + 2) + x) * 2];
      const bool border = y == 0 || x == 0 || y == h + 1 || x == w + 1;
      for (int ch = 0; ch < 64; ch++) {
        const uint32_t bit = (p[ch / 32] >> (ch % 32)) & 1u;
        uint32_t want;
        if (ch >= c) want = 0;
        else if (border) want = 1;
        else want = in[((y - 1) * w + (x - 1)) * c + ch] >= thr[ch] ? 1 : 0;
        ASSERT_EQ(bit, want) << y << "," << x << " ch " << ch;
      }
    }
}

TEST(Binarize, EqualToThresholdIsPlusOne) {
  const float in[1] = {0.5f}, thr[1] = {0.5f};
  uint32_t packed[9];
  tfr_op_binarize_pack(in, 1, 1, 1, thr, packed);
  EXPECT_EQ(packed[4], 1u);
}

#if defined(TFR_USE_INT8_DOT)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

static float Bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// The byte plane against the definition (+1 where v >= thr, -1 below and for NaN, the border +1,
// padding channels 0) for every pair of the floats where an integer compare of the bits could go
// wrong: both zeros, denormals, infinities, NaNs of both signs and payloads, the extremes. Channel
// counts: eight at a time (48: the S3's vector compare), eight plus four (36), none of them (35:
// four-byte steps and the scalar tail), and a float input off a 16-byte boundary (the same answer
// through the four-channel path).
TEST(Binarize, BytePlaneSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> vals = {0.0f, -0.0f, Bits(1), Bits(0x80000001u), Bits(0x007FFFFFu), Bits(0x807FFFFFu),
                                   1.0f, -1.0f, 0.5f, -0.5f, inf, -inf, Bits(0x7FC00000u), Bits(0xFFC00000u),
                                   Bits(0x7F800001u), Bits(0xFF800001u), Bits(0x7FFFFFFFu), Bits(0xFFFFFFFFu),
                                   std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                   1e-30f, -1e-30f, 3.0f, -3.0f};
  const int n = static_cast<int>(vals.size());
  for (int c : {48, 36, 35, 8, 64})
    for (int offset : {0, 1}) {
      // one row per threshold value, one pixel per input value, each channel its own threshold
      const int h = n, w = n, cp = TFR_I8C(c);
      std::vector<float> buf(h * w * c + 8), thr(c);
      float *in = buf.data() + ((16 - (reinterpret_cast<uintptr_t>(buf.data()) & 15)) & 15) / 4 + offset;
      std::vector<int8_t> pbuf((h + 2) * (w + 2) * cp + 16, 77);
      int8_t *plane = pbuf.data() + ((16 - (reinterpret_cast<uintptr_t>(pbuf.data()) & 15)) & 15);
      for (int ch = 0; ch < c; ch++) thr[ch] = vals[(ch * 7) % n];
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
          for (int ch = 0; ch < c; ch++) in[(y * w + x) * c + ch] = vals[(x + y + ch) % n];
      tfr_op_binarize_i8(in, h, w, c, thr.data(), plane);
      for (int y = 0; y < h + 2; y++)
        for (int x = 0; x < w + 2; x++)
          for (int ch = 0; ch < cp; ch++) {
            const bool border = y == 0 || x == 0 || y == h + 1 || x == w + 1;
            int want = 0;
            if (ch < c) want = border || in[((y - 1) * w + (x - 1)) * c + ch] >= thr[ch] ? 1 : -1;
            ASSERT_EQ(plane[(y * (w + 2) + x) * cp + ch], want) << "c " << c << " offset " << offset << " at " << y
                                                                 << "," << x << " ch " << ch;
          }
    }
}
#endif
