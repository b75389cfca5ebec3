// base64, hex, chunk header, crop, and the device config (validateConfig of protocol.ts).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace {

TEST(Base64, RoundTripAndPadding) {
  for (size_t n = 0; n < 20; n++) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 37 + 11);
    std::string s = b64(b);
    std::vector<uint8_t> back(n + 3);
    ASSERT_EQ(tfa_b64_decode(s.data(), s.size(), back.data(), back.size()), (long)n);
    back.resize(n);
    EXPECT_EQ(back, b);
  }
  uint8_t out[8];
  EXPECT_EQ(tfa_b64_decode("TWFu", 4, out, sizeof out), 3);
  EXPECT_EQ(memcmp(out, "Man", 3), 0);
}

TEST(Base64, RejectsBadText) {
  uint8_t out[16];
  const char *bad[] = {"TWF", "TW=u", "T===", "====", "TWFu=", "TW u", "TWF\n", "TQ==TWFu", "TWF-"};
  for (const char *s : bad) EXPECT_EQ(tfa_b64_decode(s, strlen(s) ? strlen(s) : 4, out, sizeof out), -1) << s;
  EXPECT_EQ(tfa_b64_decode("TWFuTWFu", 8, out, 5), -1);  // does not fit
  char small[4];
  EXPECT_EQ(tfa_b64_encode((const uint8_t *)"Man", 3, small, sizeof small), -1);
}

TEST(Hex, ParsesExactly) {
  uint8_t b[2];
  EXPECT_TRUE(tfa_unhex("aBff", 4, b, 2));
  EXPECT_EQ(b[0], 0xAB);
  EXPECT_FALSE(tfa_unhex("abf", 3, b, 2));
  EXPECT_FALSE(tfa_unhex("abgf", 4, b, 2));
  char s[5];
  tfa_hex(b, 2, s);
  EXPECT_STREQ(s, "abff");
}

TEST(Chunk, EncodeDecodeMatchesProtocol) {
  // the bytes splitChunks(7, Buffer.from('hello'), 3)[1] makes in src/fleet/protocol.ts
  const uint8_t expect[] = {'T', 'F', 1, 0, 0, 0, 0, 7, 0, 1, 0, 2, 0, 0, 0, 5, 0, 0, 0, 3, 'l', 'o'};
  tfa_chunk_hdr h{7, 1, 2, 5, 3};
  uint8_t msg[22];
  tfa_chunk_encode(&h, msg);
  memcpy(msg + 20, "lo", 2);
  EXPECT_EQ(memcmp(msg, expect, sizeof expect), 0);
  tfa_chunk_hdr g;
  const uint8_t *data;
  size_t n;
  ASSERT_EQ(tfa_chunk_decode(msg, sizeof msg, &g, &data, &n), 0);
  EXPECT_EQ(g.id, 7u);
  EXPECT_EQ(g.index, 1);
  EXPECT_EQ(g.count, 2);
  EXPECT_EQ(g.total, 5u);
  EXPECT_EQ(g.offset, 3u);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(data, msg + 20);
}

TEST(Chunk, RejectsBadHeaders) {
  uint8_t msg[24];
  const uint8_t *data;
  size_t n;
  tfa_chunk_hdr g;
  auto make = [&](tfa_chunk_hdr h) { tfa_chunk_encode(&h, msg); };
  make({1, 0, 1, 4, 0});
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), 0);
  EXPECT_EQ(tfa_chunk_decode(msg, 19, &g, &data, &n), -1);  // shorter than the header
  EXPECT_EQ(tfa_chunk_decode(msg, 20, &g, &data, &n), -1);  // no data
  EXPECT_EQ(tfa_chunk_decode(nullptr, 24, &g, &data, &n), -1);
  make({1, 0, 1, 3, 0});
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // 4 bytes do not fit in 3
  make({1, 0, 1, 4, 1});
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // offset + data > total
  make({1, 0, 1, 0xFFFFFFFFu, 0xFFFFFFFEu});
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // no wrap-around
  make({1, 2, 2, 8, 0});
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // index >= count
  make({1, 0, 0, 8, 0});
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // count 0
  make({1, 0, 1, 4, 0});
  msg[0] = 'X';
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // magic
  make({1, 0, 1, 4, 0});
  msg[2] = 2;
  EXPECT_EQ(tfa_chunk_decode(msg, 24, &g, &data, &n), -1);  // version
}

TEST(Crop, FortyEightIsCopiedAndLargerIsAveraged) {
  std::vector<uint8_t> img(48 * 48), out(48 * 48);
  for (size_t i = 0; i < img.size(); i++) img[i] = (uint8_t)(i * 31);
  ASSERT_EQ(tfa_crop_gray48(img.data(), 48, 48, 48, tfa_centre_square(48, 48), out.data()), 0);
  EXPECT_EQ(img, out);
  // 96x96 of 2x2 blocks {10, 20, 30, 40} -> every output pixel is their mean, 25
  std::vector<uint8_t> big(96 * 96);
  for (int y = 0; y < 96; y++)
    for (int x = 0; x < 96; x++) big[(size_t)y * 96 + x] = (uint8_t)(10 + 10 * ((x & 1) + 2 * (y & 1)));
  ASSERT_EQ(tfa_crop_gray48(big.data(), 96, 96, 96, tfa_centre_square(96, 96), out.data()), 0);
  for (uint8_t v : out) ASSERT_EQ(v, 25);
}

TEST(Crop, CentreSquareAndClipping) {
  tfa_box b = tfa_centre_square(320, 240);
  EXPECT_EQ(b.x, 40);
  EXPECT_EQ(b.y, 0);
  EXPECT_EQ(b.w, 240);
  EXPECT_EQ(b.h, 240);
  std::vector<uint8_t> img(64 * 32, 7), out(48 * 48);
  tfa_box outside{64, 0, 10, 10};
  EXPECT_EQ(tfa_crop_gray48(img.data(), 64, 32, 64, outside, out.data()), -1);
  tfa_box partly{40, 10, 100, 100};  // clipped to 24x22, enlarged
  EXPECT_EQ(tfa_crop_gray48(img.data(), 64, 32, 64, partly, out.data()), 0);
  for (uint8_t v : out) ASSERT_EQ(v, 7);
}

TEST(Config, FullAndPartial) {
  tfa_config c = TFA_DEFAULT_CONFIG;
  char err[256];
  EXPECT_EQ(c.capture_interval_ms, 500u);
  EXPECT_FALSE(c.frames_enabled);
  EXPECT_EQ(c.jpeg_quality, 80);
  EXPECT_DOUBLE_EQ(c.confidence_threshold, 0.5);
  std::string full = "{\"capture_interval_ms\":250,\"frames_enabled\":true,\"jpeg_quality\":60,\"confidence_threshold\":0.25}";
  ASSERT_EQ(tfa_config_from_json(&c, full.data(), full.size(), false, err, sizeof err), 0) << err;
  EXPECT_EQ(c.capture_interval_ms, 250u);
  EXPECT_TRUE(c.frames_enabled);
  std::string part = "{\"jpeg_quality\":1e2}";
  ASSERT_EQ(tfa_config_from_json(&c, part.data(), part.size(), true, err, sizeof err), 0) << err;
  EXPECT_EQ(c.jpeg_quality, 100);
  EXPECT_EQ(c.capture_interval_ms, 250u);
  char out[256];
  ASSERT_GT(tfa_config_to_json(&c, out, sizeof out), 0);
  EXPECT_STREQ(out, "{\"capture_interval_ms\":250,\"frames_enabled\":true,\"jpeg_quality\":100,\"confidence_threshold\":0.25}");
  // a full config is required where partial is false
  EXPECT_EQ(tfa_config_from_json(&c, part.data(), part.size(), false, err, sizeof err), -1);
  EXPECT_NE(std::string(err).find("capture_interval_ms: required"), std::string::npos) << err;
}

TEST(Config, BadValuesChangeNothing) {
  tfa_config c = TFA_DEFAULT_CONFIG;
  char err[256];
  const char *bad[] = {"{\"capture_interval_ms\":49}",     "{\"capture_interval_ms\":3600001}", "{\"capture_interval_ms\":100.5}",
                       "{\"capture_interval_ms\":\"100\"}", "{\"frames_enabled\":1}",            "{\"jpeg_quality\":0}",
                       "{\"jpeg_quality\":101}",           "{\"confidence_threshold\":1.01}",   "{\"confidence_threshold\":-0.1}",
                       "{\"confidence_threshold\":null}",  "{\"colour\":true}",                 "[]",
                       "\"x\"",                            "{",                                 "{\"frames_enabled\":true,\"jpeg_quality\":0}"};
  for (const char *s : bad) {
    EXPECT_EQ(tfa_config_from_json(&c, s, strlen(s), true, err, sizeof err), -1) << s;
    EXPECT_NE(err[0], '\0');
  }
  EXPECT_FALSE(c.frames_enabled);  // the last one had a valid field: still all-or-nothing
  std::string two = "{\"jpeg_quality\":0,\"foo\":1}";
  tfa_config_from_json(&c, two.data(), two.size(), true, err, sizeof err);
  EXPECT_STREQ(err, "jpeg_quality: must be an integer 1..100; foo: unknown field");
}

}  // namespace
