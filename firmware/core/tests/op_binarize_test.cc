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
