// Parser, arena plan and tfr_classify: every error code, bounds, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "blob_builder.h"
#include "tfr_ops.h"
#include "tinyfer/tinyfer.h"

namespace {

// 4-byte aligned byte buffer.
struct Blob {
  std::vector<uint32_t> words;
  size_t len = 0;
  uint8_t *data() { return reinterpret_cast<uint8_t *>(words.data()); }
  void resize(size_t n) {
    words.resize((n + 3) / 4 + 1, 0);
    len = n;
  }
};

Blob Build(const tfb_spec &spec, uint32_t seed) {
  Blob b;
  b.resize(16);
  size_t n = tfb_build(b.data(), 0, &spec, seed);
  b.resize(n);
  tfb_build(b.data(), n, &spec, seed);
  return b;
}

int Parse(Blob &b, tfr_model_t *m) { return tfr_model_parse(m, b.data(), b.len); }

// Parses a copy of `good` with n bytes at `off` replaced and its size and CRC resealed.
int ParseEdited(const Blob &good, size_t off, const void *bytes, size_t n) {
  Blob b = good;
  std::memcpy(b.data() + off, bytes, n);
  tfb_reseal(b.data(), b.len);
  tfr_model_t m;
  return Parse(b, &m);
}

std::vector<uint8_t> Face(uint32_t seed) {
  std::vector<uint8_t> f(TFR_FACE_PIXELS);
  uint32_t s = seed;
  for (auto &p : f) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(s >> 24);
  }
  return f;
}

class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blob = Build(tfb_small_spec(), 42);
    ASSERT_EQ(Parse(blob, &model), TFR_OK);
  }
  // Offset of the first block header inside the blob.
  size_t FirstBlock() const {
    return reinterpret_cast<const uint8_t *>(model.blocks[0].threshold) - model.blob - 8;
  }
  int Edit(size_t at, uint8_t v) {
    Blob b = blob;
    b.data()[at] = v;
    tfb_reseal(b.data(), b.len);
    tfr_model_t m;
    return Parse(b, &m);
  }
  Blob blob;
  tfr_model_t model;
};

TEST_F(ModelTest, ParsesEveryBlockKind) {
  EXPECT_EQ(model.num_blocks, 4);
  EXPECT_EQ(model.stem_cout, 8);
  EXPECT_EQ(model.blocks[0].projected, 0);
  EXPECT_EQ(model.blocks[1].projected, 1);
  EXPECT_EQ(model.blocks[1].size_in, 24);
  EXPECT_EQ(model.blocks[2].type, TFR_BLOCK_CBAM);
  EXPECT_EQ(model.blocks[2].size_in, 12);
  EXPECT_EQ(model.head_cin, 40);
  EXPECT_EQ(std::string(model.name, model.name_len), "test");
  for (int i = 0; i < TFR_NUM_CLASSES; i++) EXPECT_EQ(model.label_index[i], i);
  EXPECT_STREQ(tfr_label_name(5), "surprise");
  EXPECT_GT(tfr_arena_size(&model), 0u);
}

TEST_F(ModelTest, ClassifyStaysInsideTheArenaAndIsDeterministic) {
  const size_t need = tfr_arena_size(&model);
  // arena + guard words; the guard must survive
  std::vector<uint32_t> arena(need / 4 + 64, 0xA5A5A5A5u);
  const auto face = Face(3);
  float s1[TFR_NUM_CLASSES], s2[TFR_NUM_CLASSES];
  ASSERT_EQ(tfr_classify(&model, arena.data(), need, face.data(), s1), TFR_OK);
  for (size_t i = need / 4; i < arena.size(); i++) ASSERT_EQ(arena[i], 0xA5A5A5A5u) << "word " << i;
  std::fill(arena.begin(), arena.end(), 0x5A5A5A5Au);
  ASSERT_EQ(tfr_classify(&model, arena.data(), need, face.data(), s2), TFR_OK);
  float sum = 0;
  for (int i = 0; i < TFR_NUM_CLASSES; i++) {
    EXPECT_EQ(s1[i], s2[i]);
    EXPECT_GE(s1[i], 0.0f);
    sum += s1[i];
  }
  EXPECT_NEAR(sum, 1.0f, 1e-5);
}

#if defined(TFR_USE_CONV_LUT)
TEST_F(ModelTest, LookupTablesGiveTheSameScoresAndBelongToTheirModel) {
  const size_t need = tfr_arena_size(&model), lsz = tfr_lut_size(&model);
  ASSERT_GT(lsz, 16u);
  std::vector<uint32_t> arena(need / 4);
  std::vector<uint8_t> lut(lsz + 64, 0xEE);
  EXPECT_EQ(tfr_lut_build(&model, lut.data(), lsz - 1), TFR_ERR_LUT);
  EXPECT_EQ(tfr_lut_build(&model, nullptr, lsz), TFR_ERR_NULL);
  EXPECT_EQ(tfr_lut_build(nullptr, lut.data(), lsz), TFR_ERR_NULL);
  ASSERT_EQ(tfr_lut_build(&model, lut.data(), lsz), TFR_OK);
  for (size_t i = lsz; i < lut.size(); i++) ASSERT_EQ(lut[i], 0xEE) << "byte " << i;
  for (uint32_t seed = 1; seed < 6; seed++) {
    const auto face = Face(seed);
    float a[TFR_NUM_CLASSES], b[TFR_NUM_CLASSES];
    ASSERT_EQ(tfr_classify(&model, arena.data(), need, face.data(), a), TFR_OK);
    ASSERT_EQ(tfr_classify_lut(&model, lut.data(), arena.data(), need, face.data(), b), TFR_OK);
    ASSERT_EQ(0, std::memcmp(a, b, sizeof a));
  }
  float s[TFR_NUM_CLASSES];
  const auto face = Face(7);
  EXPECT_EQ(tfr_classify_lut(&model, nullptr, arena.data(), need, face.data(), s), TFR_ERR_NULL);
  EXPECT_EQ(tfr_classify_lut(&model, lut.data(), arena.data(), need - 4, face.data(), s), TFR_ERR_ARENA_SMALL);
  // tables of another model (same shape, other blob) are refused
  Blob other = Build(tfb_small_spec(), 43);
  tfr_model_t m2;
  ASSERT_EQ(Parse(other, &m2), TFR_OK);
  EXPECT_EQ(tfr_classify_lut(&m2, lut.data(), arena.data(), need, face.data(), s), TFR_ERR_LUT);
  tfr_model_t bad;
  std::memset(&bad, 0, sizeof bad);
  EXPECT_EQ(tfr_lut_size(&bad), 0u);
  EXPECT_EQ(tfr_lut_build(&bad, lut.data(), lsz), TFR_ERR_NOT_PARSED);
  EXPECT_EQ(tfr_classify_lut(&bad, lut.data(), arena.data(), need, face.data(), s), TFR_ERR_NOT_PARSED);
}
#endif

TEST_F(ModelTest, UnalignedArenaWorksWithThreeSpareBytes) {
  const size_t need = tfr_arena_size(&model);
  std::vector<uint32_t> arena(need / 4 + 2);
  const auto face = Face(9);
  float a[TFR_NUM_CLASSES], b[TFR_NUM_CLASSES];
  ASSERT_EQ(tfr_classify(&model, arena.data(), need, face.data(), a), TFR_OK);
  uint8_t *odd = reinterpret_cast<uint8_t *>(arena.data()) + 1;
  ASSERT_EQ(tfr_classify(&model, odd, need + 3, face.data(), b), TFR_OK);
  for (int i = 0; i < TFR_NUM_CLASSES; i++) EXPECT_EQ(a[i], b[i]);
  EXPECT_EQ(tfr_classify(&model, odd, need, face.data(), b), TFR_ERR_ARENA_SMALL);
}

TEST_F(ModelTest, RejectsSmallArenaNullsAndUnparsedModels) {
  const size_t need = tfr_arena_size(&model);
  std::vector<uint32_t> arena(need / 4);
  const auto face = Face(1);
  float s[TFR_NUM_CLASSES];
  EXPECT_EQ(tfr_classify(&model, arena.data(), need - 4, face.data(), s), TFR_ERR_ARENA_SMALL);
  EXPECT_EQ(tfr_classify(nullptr, arena.data(), need, face.data(), s), TFR_ERR_NULL);
  EXPECT_EQ(tfr_classify(&model, nullptr, need, face.data(), s), TFR_ERR_NULL);
  EXPECT_EQ(tfr_classify(&model, arena.data(), need, nullptr, s), TFR_ERR_NULL);
  EXPECT_EQ(tfr_classify(&model, arena.data(), need, face.data(), nullptr), TFR_ERR_NULL);
  tfr_model_t bad;
  std::memset(&bad, 0, sizeof bad);
  EXPECT_EQ(tfr_classify(&bad, arena.data(), need, face.data(), s), TFR_ERR_NOT_PARSED);
  EXPECT_EQ(tfr_arena_size(&bad), 0u);
  EXPECT_EQ(tfr_model_parse(nullptr, blob.data(), blob.len), TFR_ERR_NULL);
  EXPECT_EQ(tfr_model_parse(&bad, nullptr, blob.len), TFR_ERR_NULL);
}

TEST_F(ModelTest, HeaderErrors) {
  tfr_model_t m;
  Blob b = blob;
  EXPECT_EQ(tfr_model_parse(&m, b.data() + 1, b.len - 1), TFR_ERR_ALIGN);
  EXPECT_EQ(tfr_model_parse(&m, b.data(), 15), TFR_ERR_TRUNCATED);
  b.data()[0] = 'X';
  EXPECT_EQ(Parse(b, &m), TFR_ERR_MAGIC);
  b = blob;
  b.data()[4] = 4;
  EXPECT_EQ(Parse(b, &m), TFR_ERR_VERSION);
  b.data()[4] = 0;
  EXPECT_EQ(Parse(b, &m), TFR_ERR_VERSION);
  b = blob;
  b.data()[4] = 2; // version 2 reads a float-stem blob as version 1 does
  tfb_reseal(b.data(), b.len);
  EXPECT_EQ(Parse(b, &m), TFR_OK);
  EXPECT_EQ(m.stem_kind, TFR_STEM_FLOAT);
  b = blob;
  b.data()[6] = 1;
  EXPECT_EQ(Parse(b, &m), TFR_ERR_FLAGS);
  b = blob;
  b.resize(blob.len + 4);
  EXPECT_EQ(Parse(b, &m), TFR_ERR_SIZE);
  b = blob;
  b.data()[b.len - 1] ^= 0x10;
  EXPECT_EQ(Parse(b, &m), TFR_ERR_CRC);
  EXPECT_EQ(m.parsed, 0u);
}

TEST_F(ModelTest, EveryTruncationIsReported) {
  tfr_model_t m;
  for (size_t n = 0; n < blob.len; n++) {
    ASSERT_EQ(tfr_model_parse(&m, blob.data(), n), TFR_ERR_TRUNCATED) << n;
  }
  // truncated but resealed (size and CRC consistent): the sections' own bounds catch it
  for (size_t n = 16; n < blob.len; n++) {
    Blob b = blob;
    b.resize(n);
    tfb_reseal(b.data(), n);
    ASSERT_EQ(Parse(b, &m), TFR_ERR_TRUNCATED) << n;
  }
}

TEST_F(ModelTest, ContentErrors) {
  const size_t blk = FirstBlock();
  EXPECT_EQ(Edit(16, 47), TFR_ERR_SHAPE);         // input size
  EXPECT_EQ(Edit(17, 6), TFR_ERR_SHAPE);          // classes
  EXPECT_EQ(Edit(18, 33), TFR_ERR_TOO_MANY_BLOCKS);
  EXPECT_EQ(Edit(29, 'b'), TFR_ERR_LABEL);        // "angry" -> "bngry"
  {
    // label 3 "happy" (text at 48) becomes a second "angry": same length, same layout
    Blob b = blob;
    std::memcpy(b.data() + 48, "angry", 5);
    tfb_reseal(b.data(), b.len);
    tfr_model_t m;
    EXPECT_EQ(Parse(b, &m), TFR_ERR_LABEL);
  }
  EXPECT_EQ(Edit(blk, 3), TFR_ERR_BLOCK_TYPE);
  EXPECT_EQ(Edit(blk + 1, 3), TFR_ERR_SHAPE);     // stride 3
  EXPECT_EQ(Edit(blk + 2, 1), TFR_ERR_FLAGS);     // projected flag on an identity block
  EXPECT_EQ(Edit(blk + 2, 4), TFR_ERR_FLAGS);
  EXPECT_EQ(Edit(blk + 3, 1), TFR_ERR_RESERVED);
  EXPECT_EQ(Edit(blk + 4, 9), TFR_ERR_SHAPE);     // cin 9 after 8 stem channels
  const size_t bits = reinterpret_cast<const uint8_t *>(model.blocks[0].weight_bits) - model.blob;
  EXPECT_EQ(Edit(bits + 3, 0x80), TFR_ERR_RESERVED);  // padding bit 31 of an 8-channel word
  const size_t w0 = reinterpret_cast<const uint8_t *>(model.stem_weight) - model.blob;
  {
    Blob b = blob;
    const float nan = NAN;
    std::memcpy(b.data() + w0, &nan, 4);
    tfb_reseal(b.data(), b.len);
    tfr_model_t m;
    EXPECT_EQ(Parse(b, &m), TFR_ERR_NONFINITE);
  }
  {
    Blob b = blob;
    b.resize(blob.len + 4);
    tfb_reseal(b.data(), b.len);
    tfr_model_t m;
    EXPECT_EQ(Parse(b, &m), TFR_ERR_TRAILING);
  }
}

TEST(Strerror, EveryCodeHasItsOwnMessage) {
  std::set<std::string> seen;
  for (int e = 0; e >= TFR_ERR_SCALE; e--) {
    const std::string s = tfr_strerror(e);
    EXPECT_NE(s, "unknown error") << e;
    EXPECT_TRUE(seen.insert(s).second) << s;
  }
  EXPECT_STREQ(tfr_strerror(-999), "unknown error");
}

tfb_spec Spec(uint16_t stem, std::initializer_list<tfb_block_spec> blocks) {
  tfb_spec s;
  std::memset(&s, 0, sizeof s);
  s.stem_cout = stem;
  for (const auto &b : blocks) s.blocks[s.num_blocks++] = b;
  return s;
}

// tinyfer-b1r's shape in small: block 2 repeats block 0, block 4 repeats block 3 (format flag 2).
tfb_spec RepeatSpec() {
  return Spec(8, {{1, 8, 8, 1, 0}, {1, 8, 8, 1, 0}, {1, 8, 8, 1, 0, 1, 0}, {1, 8, 40, 2, 0}, {1, 40, 40, 1, 0},
                  {1, 40, 40, 1, 0, 1, 4}, {2, 0, 0, 0, 4}});
}

size_t At(const tfr_model_t &m, const void *p) { return static_cast<const uint8_t *>(p) - m.blob; }

TEST(Shared, ARepeatPassRunsTheWeightsOfItsSource) {
  Blob a = Build(RepeatSpec(), 7);
  tfr_model_t m;
  ASSERT_EQ(Parse(a, &m), TFR_OK);
  EXPECT_EQ(m.blocks[0].shares, -1);
  EXPECT_EQ(m.blocks[2].shares, 0);
  EXPECT_EQ(m.blocks[5].shares, 4);
  EXPECT_EQ(m.blocks[2].threshold, m.blocks[0].threshold);
  EXPECT_EQ(m.blocks[2].weight_bits, m.blocks[0].weight_bits);
  EXPECT_EQ(m.blocks[5].weight_bits, m.blocks[4].weight_bits);
  EXPECT_NE(m.blocks[2].scale, m.blocks[0].scale);  // its own BatchNorm
  // The same network written without sharing: block 2 gets copies of block 0's threshold and bits.
  const tfr_block_t &b0 = m.blocks[0], &b2 = m.blocks[2];
  const size_t hdr = At(m, b2.scale) - 8, end = At(m, b2.prelu + b2.cout);
  const size_t nbits = static_cast<size_t>(b0.cout) * 9 * 4;  // one word per tap for 8 channels
  std::vector<uint8_t> u(a.data(), a.data() + hdr);
  const uint8_t h[8] = {1, 1, 0, 0, 8, 0, 8, 0};
  u.insert(u.end(), h, h + 8);
  u.insert(u.end(), a.data() + At(m, b0.threshold), a.data() + At(m, b0.threshold) + 8 * 4);
  u.insert(u.end(), a.data() + hdr + 8, a.data() + end);
  u.insert(u.end(), a.data() + At(m, b0.weight_bits), a.data() + At(m, b0.weight_bits) + nbits);
  u.insert(u.end(), a.data() + end, a.data() + a.len);
  Blob b;
  b.resize(u.size());
  std::memcpy(b.data(), u.data(), u.size());
  tfb_reseal(b.data(), b.len);
  tfr_model_t mu;
  ASSERT_EQ(Parse(b, &mu), TFR_OK);
  EXPECT_EQ(mu.blocks[2].shares, -1);
  ASSERT_EQ(b.len, a.len + 8 * 4 + nbits);
  const size_t need = tfr_arena_size(&m);
  ASSERT_EQ(need, tfr_arena_size(&mu));
  std::vector<uint32_t> arena(need / 4 + 1);
  for (uint32_t seed = 1; seed < 4; seed++) {
    const auto face = Face(seed);
    float s1[TFR_NUM_CLASSES], s2[TFR_NUM_CLASSES];
    ASSERT_EQ(tfr_classify(&m, arena.data(), need, face.data(), s1), TFR_OK);
    ASSERT_EQ(tfr_classify(&mu, arena.data(), need, face.data(), s2), TFR_OK);
    EXPECT_EQ(0, std::memcmp(s1, s2, sizeof s1)) << "face " << seed;
  }
}

TEST(Shared, BadSourcesAreRejected) {
  auto parse = [](std::initializer_list<tfb_block_spec> blocks) {
    Blob b = Build(Spec(8, blocks), 3);
    tfr_model_t m;
    return Parse(b, &m);
  };
  const tfb_block_spec id = {1, 8, 8, 1, 0};
  EXPECT_EQ(parse({id, {1, 8, 8, 1, 0, 1, 0}}), TFR_OK);
  EXPECT_EQ(parse({id, {1, 8, 8, 1, 0, 1, 1}}), TFR_ERR_SHARED);   // itself
  EXPECT_EQ(parse({id, {1, 8, 8, 1, 0, 1, 200}}), TFR_ERR_SHARED); // past the block table
  EXPECT_EQ(parse({{1, 8, 8, 1, 0, 1, 0}}), TFR_ERR_SHARED);      // no earlier block
  EXPECT_EQ(parse({{2, 0, 0, 0, 2}, {1, 8, 8, 1, 0, 1, 0}}), TFR_ERR_SHARED);  // attention has no weights to share
  EXPECT_EQ(parse({id, {1, 8, 8, 1, 0, 1, 0}, {1, 8, 8, 1, 0, 1, 1}}), TFR_ERR_SHARED);  // a repeat of a repeat
  EXPECT_EQ(parse({{1, 8, 16, 2, 0}, {1, 16, 16, 1, 0, 1, 0}}), TFR_ERR_SHARED);  // another shape
}

// tinyfer-b1 (src/model/network.ts): stem 32, 2 x binary 32, cbam, binary 32->56 /2, binary 56, cbam.
tfb_spec LeadSpec() {
  return Spec(32, {{1, 32, 32, 1, 0}, {1, 32, 32, 1, 0}, {2, 0, 0, 0, 8}, {1, 32, 56, 2, 0}, {1, 56, 56, 1, 0},
                   {2, 0, 0, 0, 14}});
}
// tinyfer-b1g: tinyfer-b1 with an int8 stem and a 3x3 grid head of 8 values a region (format
// version 3; with a float stem its blob would pass 32 KB)
tfb_spec GridSpec(uint8_t grid = 3, uint8_t k = 8) {
  tfb_spec s = LeadSpec();
  s.stem_int8 = 1;
  s.head_grid = grid;
  s.head_k = k;
  return s;
}

TEST(Arena, TinyferB1FitsTheBudget) {
  Blob b = Build(LeadSpec(), 5);
  tfr_model_t m;
  ASSERT_EQ(Parse(b, &m), TFR_OK);
  std::printf("[arena] tinyfer-b1 shape: blob %zu bytes, arena %zu bytes\n", b.len, tfr_arena_size(&m));
  EXPECT_LE(tfr_arena_size(&m), 96u * 1024u);
  EXPECT_LE(b.len, 32u * 1024u);
  Blob g = Build(GridSpec(), 5);
  ASSERT_EQ(Parse(g, &m), TFR_OK);
  std::printf("[arena] tinyfer-b1g shape (grid head): blob %zu bytes, arena %zu bytes\n", g.len, tfr_arena_size(&m));
  EXPECT_LE(tfr_arena_size(&m), 96u * 1024u);
  EXPECT_LE(g.len, 32u * 1024u);
}

// Every placement of the planner (in place, low->high, high->low, in place projected) stays
// inside the planned arena: guard words after it survive, and the result does not depend on
// what the arena held before.
TEST(Arena, EveryPlacementStaysInsideThePlan) {
  const tfb_spec specs[] = {
      LeadSpec(),
      tfb_small_spec(),
      Spec(8, {{1, 8, 40, 2, 0}, {2, 0, 0, 0, 3}, {1, 40, 96, 2, 0}, {2, 0, 0, 0, 5}, {1, 96, 100, 2, 0}}),
      Spec(4, {{1, 4, 8, 2, 0}, {1, 8, 20, 2, 0}, {1, 20, 20, 1, 0}, {1, 20, 24, 2, 0}}),
      Spec(3, {}),
      GridSpec(),
      GridSpec(12, 1),
      [] { tfb_spec s = Spec(3, {}); s.head_grid = 24; s.head_k = 5; return s; }(),  // one pixel a region
  };
  for (const auto &spec : specs) {
    Blob b = Build(spec, 77);
    tfr_model_t m;
    ASSERT_EQ(Parse(b, &m), TFR_OK);
    const size_t need = tfr_arena_size(&m);
    std::vector<uint32_t> arena(need / 4 + 16, 0xA5A5A5A5u);
    const auto face = Face(11);
    float s1[TFR_NUM_CLASSES], s2[TFR_NUM_CLASSES];
    ASSERT_EQ(tfr_classify(&m, arena.data(), need, face.data(), s1), TFR_OK);
    for (size_t i = need / 4; i < arena.size(); i++) ASSERT_EQ(arena[i], 0xA5A5A5A5u) << "word " << i;
    std::fill(arena.begin(), arena.end(), 0x7F800001u);  // NaN everywhere
    ASSERT_EQ(tfr_classify(&m, arena.data(), need, face.data(), s2), TFR_OK);
    for (int k = 0; k < TFR_NUM_CLASSES; k++) ASSERT_EQ(s1[k], s2[k]);
#if defined(TFR_USE_CONV_LUT)
    std::vector<uint8_t> lut(tfr_lut_size(&m));
    ASSERT_EQ(tfr_lut_build(&m, lut.data(), lut.size()), TFR_OK);
    std::fill(arena.begin(), arena.end(), 0xA5A5A5A5u);
    ASSERT_EQ(tfr_classify_lut(&m, lut.data(), arena.data(), need, face.data(), s2), TFR_OK);
    for (size_t i = need / 4; i < arena.size(); i++) ASSERT_EQ(arena[i], 0xA5A5A5A5u) << "word " << i;
    ASSERT_EQ(0, std::memcmp(s1, s2, sizeof s1));
#endif
  }
}

}  // namespace

// The int8 stem (format version 2): parsed in place, every field checked.
namespace {
tfb_spec Int8Spec() {
  tfb_spec s = tfb_small_spec();
  s.stem_int8 = 1;
  s.stem_cout = 7; // 63 weight bytes: one byte of padding
  s.blocks[0].cin = s.blocks[0].cout = s.blocks[1].cin = 7;
  return s;
}
// offset of the stem section (its cout, then its kind) of a parsed int8-stem blob
size_t StemAt(const tfr_model_t &m) { return static_cast<size_t>(reinterpret_cast<const uint8_t *>(m.stem_q) - m.blob) - 4; }
}  // namespace

TEST(Int8Stem, ParsesInPlace) {
  Blob b = Build(Int8Spec(), 5);
  tfr_model_t m;
  ASSERT_EQ(Parse(b, &m), TFR_OK);
  EXPECT_EQ(b.data()[4], 2);
  EXPECT_EQ(m.stem_kind, TFR_STEM_INT8);
  EXPECT_EQ(m.stem_weight, nullptr);
  const size_t at = StemAt(m);
  EXPECT_EQ(b.data()[at], 7);
  EXPECT_EQ(b.data()[at + 2], TFR_STEM_INT8);
  EXPECT_EQ(at % 4, 0u);
  EXPECT_EQ(reinterpret_cast<const uint8_t *>(m.stem_scale), b.data() + at + 4 + 64);
  EXPECT_EQ(m.stem_bias, m.stem_scale + 7);
  EXPECT_GT(tfr_arena_size(&m), 0u);
  EXPECT_EQ(tfr_arena_size(&m) % 4, 0u); // a whole number of 32-bit words, as for float stems
}

TEST(Int8Stem, EveryFieldIsChecked) {
  const Blob good = Build(Int8Spec(), 5);
  tfr_model_t m;
  Blob g = good;
  ASSERT_EQ(Parse(g, &m), TFR_OK);
  const size_t at = StemAt(m);
  auto edited = [&](size_t off, uint8_t v) { return ParseEdited(good, off, &v, 1); };
  EXPECT_EQ(edited(4, 1), TFR_ERR_RESERVED);          // version 1 has no stem kinds
  EXPECT_EQ(edited(at + 2, 2), TFR_ERR_FLAGS);        // unknown stem kind
  EXPECT_EQ(edited(at + 3, 1), TFR_ERR_FLAGS);
  EXPECT_EQ(edited(at + 4 + 63, 1), TFR_ERR_RESERVED); // the padding after the weights
  EXPECT_EQ(edited(at + 4 + 63, 0), TFR_OK);
  // a scale that is 0, negative, NaN or infinite
  const size_t sc = at + 4 + 64 + 4 * 3;
  auto scale = [&](float f) { return ParseEdited(good, sc, &f, 4); };
  EXPECT_EQ(scale(0.0f), TFR_ERR_SCALE);
  EXPECT_EQ(scale(-0.0f), TFR_ERR_SCALE);
  EXPECT_EQ(scale(-1e-5f), TFR_ERR_SCALE);
  EXPECT_EQ(scale(NAN), TFR_ERR_NONFINITE);
  EXPECT_EQ(scale(INFINITY), TFR_ERR_NONFINITE);
  EXPECT_EQ(scale(1e-30f), TFR_OK);
  // every truncation
  for (size_t n = 0; n < good.len; n++) {
    Blob b = good;
    ASSERT_EQ(tfr_model_parse(&m, b.data(), n), TFR_ERR_TRUNCATED) << n;
  }
}

TEST(Int8Stem, ClassifiesDeterministicallyInItsArena) {
  Blob b = Build(Int8Spec(), 9);
  tfr_model_t m;
  ASSERT_EQ(Parse(b, &m), TFR_OK);
  const size_t need = tfr_arena_size(&m);
  for (int shift = 0; shift < 4; shift++) {
    std::vector<uint8_t> arena(need + 3 + 64, 0xAB);
    float s1[TFR_NUM_CLASSES], s2[TFR_NUM_CLASSES];
    const auto face = Face(3);
    ASSERT_EQ(tfr_classify(&m, arena.data() + shift, need + 3, face.data(), s1), TFR_OK);
    for (int k = shift; k < 64; k++) ASSERT_EQ(arena[need + 3 + k], 0xAB) << "wrote past the arena";
    std::fill(arena.begin(), arena.end(), 0x55);
    ASSERT_EQ(tfr_classify(&m, arena.data() + shift, need + 3, face.data(), s2), TFR_OK);
    EXPECT_EQ(0, std::memcmp(s1, s2, sizeof s1));
    float sum = 0;
    for (float v : s1) sum += v;
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
  }
}

// The grid head (format version 3): parsed in place, every field checked, run inside its arena.
namespace {
// offset of the head section (classes, C, grid, k, reserved) of a parsed grid-head blob
size_t HeadAt(const tfr_model_t &m) { return static_cast<size_t>(reinterpret_cast<const uint8_t *>(m.head_reduce) - m.blob) - 8; }
}  // namespace

TEST(GridHead, ParsesInPlace) {
  Blob b = Build(GridSpec(), 5);
  tfr_model_t m;
  ASSERT_EQ(Parse(b, &m), TFR_OK);
  EXPECT_EQ(b.data()[4], 3);
  EXPECT_EQ(m.head_grid, 3);
  EXPECT_EQ(m.head_k, 8);
  EXPECT_EQ(m.head_cin, 56);
  EXPECT_EQ(m.head_nin, 72u);
  const size_t at = HeadAt(m);
  EXPECT_EQ(b.data()[at], 7);
  EXPECT_EQ(b.data()[at + 4], 3);
  EXPECT_EQ(b.data()[at + 5], 8);
  EXPECT_EQ(m.head_weight, m.head_reduce + 8 * 56);
  EXPECT_EQ(m.head_bias, m.head_weight + 7 * 72);
  // a global-average head keeps format version 1 (or 2) and no reduce
  Blob g = Build(LeadSpec(), 5);
  ASSERT_EQ(Parse(g, &m), TFR_OK);
  EXPECT_EQ(m.head_grid, 0);
  EXPECT_EQ(m.head_reduce, nullptr);
  EXPECT_EQ(m.head_nin, 56u);
}

TEST(GridHead, EveryFieldIsChecked) {
  const Blob good = Build(GridSpec(), 5);
  tfr_model_t m;
  Blob g = good;
  ASSERT_EQ(Parse(g, &m), TFR_OK);
  const size_t at = HeadAt(m);
  auto edited = [&](size_t off, uint8_t v) { return ParseEdited(good, off, &v, 1); };
  EXPECT_EQ(edited(4, 2), TFR_ERR_TRAILING);   // version 2 reads no grid field: 3 + 8 * 56 floats too many
  EXPECT_EQ(edited(4, 4), TFR_ERR_VERSION);
  EXPECT_EQ(edited(at + 4, 5), TFR_ERR_SHAPE);  // 5 does not divide the 12x12 plane
  EXPECT_EQ(edited(at + 4, 13), TFR_ERR_SHAPE);
  EXPECT_EQ(edited(at + 4, 0), TFR_ERR_SHAPE);  // grid 0 (global average) with k 8
  EXPECT_EQ(edited(at + 5, 0), TFR_ERR_SHAPE);  // a grid with k 0
  EXPECT_EQ(edited(at + 5, 7), TFR_ERR_TRAILING);   // k 7 reads fewer floats than the blob holds
  EXPECT_EQ(edited(at + 5, 9), TFR_ERR_TRUNCATED);  // k 9 more
  EXPECT_EQ(edited(at + 6, 1), TFR_ERR_RESERVED);
  EXPECT_EQ(edited(at + 7, 1), TFR_ERR_RESERVED);
  // a reduce weight that is not finite
  auto reduce = [&](float f) { return ParseEdited(good, at + 8 + 4 * 100, &f, 4); };
  EXPECT_EQ(reduce(NAN), TFR_ERR_NONFINITE);
  EXPECT_EQ(reduce(-INFINITY), TFR_ERR_NONFINITE);
  EXPECT_EQ(reduce(-3.5f), TFR_OK);
  // every truncation
  for (size_t n = 0; n < good.len; n++) {
    Blob b = good;
    ASSERT_EQ(tfr_model_parse(&m, b.data(), n), TFR_ERR_TRUNCATED) << n;
  }
}

// The head's region averages and reduce, by hand in double: a plane with one value per
// region and channel, so each region's average is exact, and the reduce's sums are small integers.
TEST(GridHead, RegionsAreAveragedThenReduced) {
  const int side = 6, c = 3, g = 3, k = 2;
  std::vector<float> plane(side * side * c), reduce(k * c), avg(c), out(g * g * k);
  for (int y = 0; y < side; y++)
    for (int x = 0; x < side; x++)
      for (int ch = 0; ch < c; ch++) plane[(y * side + x) * c + ch] = static_cast<float>((y / 2) * 10 + (x / 2) + 100 * ch + (x % 2 ? 0.5 : -0.5));
  for (int i = 0; i < k * c; i++) reduce[i] = static_cast<float>(i + 1);
  tfr_op_grid_head(plane.data(), side, c, g, k, reduce.data(), avg.data(), out.data());
  for (int i = 0; i < g; i++) {
    for (int j = 0; j < g; j++) {
      for (int q = 0; q < k; q++) {
        double want = 0;
        for (int ch = 0; ch < c; ch++) want += reduce[q * c + ch] * (i * 10 + j + 100 * ch);
        EXPECT_EQ(out[(i * g + j) * k + q], static_cast<float>(want)) << i << "," << j << "," << q;
      }
    }
  }
}
