// The JSON writer and the bounded reader, including bad input.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "harness.h"

namespace {

int parse(const std::string &s, int max_tokens = 64) {
  // an exact-size heap copy: ASan (-DTFA_SANITIZE=ON) catches any read past the end
  std::vector<char> buf(s.begin(), s.end());
  std::vector<tfa_jtok> tok((size_t)max_tokens);
  tfa_json d;
  return tfa_json_parse(&d, buf.data(), buf.size(), tok.data(), max_tokens);
}

TEST(JsonWriter, ObjectsArraysAndEscapes) {
  char buf[256];
  tfa_jw w;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "s");
  tfa_jw_str(&w, "a\"b\\c\n\x01");
  tfa_jw_key(&w, "a");
  tfa_jw_arr_begin(&w);
  tfa_jw_int(&w, -3);
  tfa_jw_uint(&w, 4294967295u);
  tfa_jw_bool(&w, true);
  tfa_jw_null(&w);
  tfa_jw_obj_begin(&w);
  tfa_jw_obj_end(&w);
  tfa_jw_arr_end(&w);
  tfa_jw_key(&w, "n");
  tfa_jw_num(&w, 0.5, 4);
  tfa_jw_key(&w, "m");
  tfa_jw_num(&w, 3.0, 4);
  tfa_jw_key(&w, "r");
  tfa_jw_num(&w, 0.123456, 4);
  tfa_jw_key(&w, "z");
  tfa_jw_num(&w, -0.00001, 4);
  tfa_jw_obj_end(&w);
  ASSERT_GT(tfa_jw_finish(&w), 0);
  EXPECT_STREQ(buf, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"a\":[-3,4294967295,true,null,{}],\"n\":0.5,\"m\":3,\"r\":0.1235,\"z\":0}");
  EXPECT_GT(parse(buf), 0);
}

TEST(JsonWriter, OverflowIsReportedNotWritten) {
  char buf[16];
  memset(buf, 'x', sizeof buf);
  tfa_jw w;
  tfa_jw_init(&w, buf, 8);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "long-key");
  tfa_jw_str(&w, "value");
  tfa_jw_obj_end(&w);
  EXPECT_EQ(tfa_jw_finish(&w), -1);
  EXPECT_EQ(buf[8], 'x');  // nothing past cap
}

TEST(JsonWriter, UnbalancedAndNonFiniteFail) {
  char buf[64];
  tfa_jw w;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  EXPECT_EQ(tfa_jw_finish(&w), -1);
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_num(&w, NAN, 2);
  EXPECT_EQ(tfa_jw_finish(&w), -1);
}

TEST(JsonReader, ReadsValues) {
  Doc d("{\"id\":\"r1\",\"params\":{\"x\":[1,2,{\"y\":null}],\"b\":false,\"e\":\"\\u00e9\\n\\\"\"},\"n\":-1.5e2}");
  ASSERT_GT(d.n, 0);
  EXPECT_EQ(d.str("id"), "r1");
  int params = d.get("params");
  ASSERT_GE(params, 0);
  EXPECT_EQ(d.d.tok[params].size, 3u);
  EXPECT_EQ(d.str("e", params), "\xc3\xa9\n\"");
  EXPECT_FALSE(d.flag("b", params));
  EXPECT_DOUBLE_EQ(d.num("n"), -150.0);
  EXPECT_EQ(d.get("x"), -1);  // only direct members
  int64_t i;
  EXPECT_TRUE(tfa_json_int(&d.d, d.get("n"), -1000, 1000, &i));
  EXPECT_EQ(i, -150);
  EXPECT_FALSE(tfa_json_int(&d.d, d.get("n"), 0, 1000, &i));
}

TEST(JsonReader, SurrogatePairsAndEscapedKeys) {
  Doc d("{\"\\u0069d\":\"\\ud83d\\ude00\"}");
  ASSERT_GT(d.n, 0);
  EXPECT_EQ(d.str("id"), "\xf0\x9f\x98\x80");
}

TEST(JsonReader, RejectsBadInput) {
  const char *bad[] = {"",        " ",          "{",           "}",         "{\"a\"}",        "{\"a\":}",        "{\"a\":1,}",
                       "[1,]",    "[1 2]",      "{a:1}",       "'x'",       "\"abc",          "\"a\\x\"",        "\"\\u12\"",
                       "\"\\u12G4\"", "01",     "-",           "1.",        ".5",             "1e",              "+1",
                       "tru",     "nul",        "falsey",      "{} {}",     "[1]x",           "\"a\tb\"",         "\"\\",
                       "{\"a\":1 \"b\":2}", "[[[]]", "NaN",     "Infinity",  "\x01",           "{\"a\":1}}"};
  for (const char *s : bad) EXPECT_LT(parse(s), 0) << "accepted: " << s;
}

TEST(JsonReader, DepthAndTokenLimits) {
  std::string deep(TFA_JSON_MAX_DEPTH + 1, '[');
  deep += std::string(TFA_JSON_MAX_DEPTH + 1, ']');
  EXPECT_EQ(parse(deep), TFA_JSON_ERR_DEPTH);
  std::string ok(TFA_JSON_MAX_DEPTH, '[');
  ok += std::string(TFA_JSON_MAX_DEPTH, ']');
  EXPECT_GT(parse(ok), 0);
  EXPECT_EQ(parse("[1,2,3,4,5]", 5), TFA_JSON_ERR_TOKENS);
  EXPECT_EQ(parse("[1,2,3,4,5]", 6), 6);
}

TEST(JsonReader, StringCopyIsBounded) {
  Doc d("{\"k\":\"0123456789\",\"z\":\"a\\u0000b\"}");
  char small[8];
  EXPECT_EQ(tfa_json_str(&d.d, d.get("k"), small, sizeof small), -1);
  char big[11];
  EXPECT_EQ(tfa_json_str(&d.d, d.get("k"), big, sizeof big), 10);
  EXPECT_EQ(tfa_json_str(&d.d, d.get("z"), big, sizeof big), -1);  // embedded NUL refused
  EXPECT_EQ(tfa_json_str(&d.d, 999, big, sizeof big), -1);
  EXPECT_EQ(tfa_json_get(&d.d, d.get("k"), "x"), -1);  // not an object
}

TEST(JsonReader, MutatedInputNeverCrashes) {
  const std::string seed = "{\"id\":\"a1\",\"params\":{\"capture_interval_ms\":250,\"frames_enabled\":true,\"s\":\"\\u00e9\",\"a\":[1,-2.5e3,null]}}";
  std::mt19937 rng(42);
  const char alphabet[] = "{}[]\",:\\u0123456789eE+-.tfnl x";
  int accepted = 0;
  for (int i = 0; i < 20000; i++) {
    std::string s = seed;
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits; e++) {
      size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[pos] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: s.erase(pos, 1 + rng() % 3); break;
        default: s.insert(pos, 1, alphabet[rng() % (sizeof alphabet - 1)]);
      }
      if (s.empty()) s = "x";
    }
    int r = parse(s);
    if (r > 0) {
      accepted++;
      // whatever parsed must also be walkable
      Doc d(s);
      char b[64];
      for (int t = 0; t < d.n; t++) tfa_json_str(&d.d, t, b, sizeof b);
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 20000);
}

}  // namespace
