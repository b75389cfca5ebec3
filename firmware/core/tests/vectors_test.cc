// TS <-> C equivalence: the vectors written by `node dist/engine/vectors.js` (a model blob
// encoded by src/model/format.ts, real FER2013 faces and the scores of the TS reference
// src/engine/reference.ts). Directory: $TINYFER_VECTORS, else <repo>/.cache/vectors; and those of
// the float-stem test blob r8 (test/fixtures/models/tinyfer-b1f.tfer): <repo>/.cache/vectors-f, and of
// a random int8-stem model (the whole int8 range: vectors.js --random --stem-int8): .cache/vectors-int8,
// and of a random model with an int8 stem and a 3x3 grid head (--head-grid 3): .cache/vectors-grid.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include "tinyfer/tinyfer.h"

namespace {

bool ReadFile(const std::string &path, std::vector<uint8_t> *out) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  uint8_t buf[65536];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return true;
}

void CheckVectors(const std::string &dir, int stem_kind, int head_grid = -1) {
  std::vector<uint8_t> blob, faces, scores_raw;
  if (!ReadFile(dir + "/model.tfer", &blob) || !ReadFile(dir + "/faces.u8", &faces) ||
      !ReadFile(dir + "/scores.f32", &scores_raw)) {
#ifdef TFR_REQUIRE_VECTORS
    FAIL() << "no vectors in " << dir << ": run `npm run build && node dist/engine/vectors.js` first";
#else
    GTEST_SKIP() << "no vectors in " << dir << ": run `npm run build && node dist/engine/vectors.js` first";
#endif
  }
  const size_t n = faces.size() / TFR_FACE_PIXELS;
  ASSERT_GT(n, 0u);
  ASSERT_EQ(faces.size(), n * TFR_FACE_PIXELS);
  ASSERT_EQ(scores_raw.size(), n * TFR_NUM_CLASSES * 4);
  std::vector<uint32_t> aligned((blob.size() + 3) / 4);
  std::memcpy(aligned.data(), blob.data(), blob.size());
  tfr_model_t model;
  const int err = tfr_model_parse(&model, aligned.data(), blob.size());
  ASSERT_EQ(err, TFR_OK) << tfr_strerror(err);
  if (stem_kind >= 0) ASSERT_EQ(model.stem_kind, stem_kind) << "the vectors in " << dir << " are of another model";
  if (head_grid >= 0) ASSERT_EQ(model.head_grid, head_grid) << "the vectors in " << dir << " are of another model";
  std::vector<uint32_t> arena(tfr_arena_size(&model) / 4);
#if defined(TFR_USE_CONV_LUT)
  std::vector<uint8_t> lut(tfr_lut_size(&model));
  ASSERT_EQ(tfr_lut_build(&model, lut.data(), lut.size()), TFR_OK);
  size_t lut_exact = 0;
#endif
  double max_diff = 0;
  size_t exact = 0, top1 = 0;
  for (size_t i = 0; i < n; i++) {
    float s[TFR_NUM_CLASSES], want[TFR_NUM_CLASSES];
    std::memcpy(want, scores_raw.data() + i * TFR_NUM_CLASSES * 4, sizeof want);
    ASSERT_EQ(tfr_classify(&model, arena.data(), arena.size() * 4, faces.data() + i * TFR_FACE_PIXELS, s),
              TFR_OK);
    int a = 0, b = 0;
    bool same = true;
    for (int k = 0; k < TFR_NUM_CLASSES; k++) {
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(s[k]) - want[k]));
      same = same && s[k] == want[k];
      if (s[k] > s[a]) a = k;
      if (want[k] > want[b]) b = k;
    }
    exact += same;
#if defined(TFR_USE_CONV_LUT)
    float t[TFR_NUM_CLASSES];
    ASSERT_EQ(tfr_classify_lut(&model, lut.data(), arena.data(), arena.size() * 4, faces.data() + i * TFR_FACE_PIXELS, t),
              TFR_OK);
    lut_exact += std::memcmp(s, t, sizeof s) == 0;
#endif
    top1 += a == b;
  }
  std::printf("[vectors] %zu faces, arena %zu bytes, max |diff| %.3g, bit-exact %zu/%zu, top-1 agree %zu/%zu\n",
              n, arena.size() * 4, max_diff, exact, n, top1, n);
  EXPECT_LE(max_diff, 1e-4);
  EXPECT_EQ(top1, n);
  // every build's kernels keep the reference's float operations in order: the same scores bit for bit
  EXPECT_EQ(exact, n);
#if defined(TFR_USE_CONV_LUT)
  std::printf("[vectors] table look-up path: %zu-byte tables, same scores as tfr_classify %zu/%zu\n", lut.size(),
              lut_exact, n);
  EXPECT_EQ(lut_exact, n);
#endif
}

TEST(Vectors, CoreMatchesTheTypeScriptReference) {
  const char *env = std::getenv("TINYFER_VECTORS");
  CheckVectors(env && *env ? env : TFR_DEFAULT_VECTORS, -1);
}

TEST(Vectors, FloatStemMatchesTheTypeScriptReference) {
  CheckVectors(TFR_DEFAULT_VECTORS_F, TFR_STEM_FLOAT);
}

TEST(Vectors, RandomInt8StemMatchesTheTypeScriptReference) {
  CheckVectors(TFR_DEFAULT_VECTORS_INT8, TFR_STEM_INT8, 0);
}

TEST(Vectors, RandomGridHeadMatchesTheTypeScriptReference) {
  CheckVectors(TFR_DEFAULT_VECTORS_GRID, TFR_STEM_INT8, 3);
}

}  // namespace
