// model_update: inline and chunked transfers, every refusal keeps the old model.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.h"

namespace {

const char *kResp = "tinyfer/xiao-01/resp";

std::string params(const std::vector<uint8_t> &blob, const std::string &sig, const std::string &sha, const std::string &extra) {
  return "{\"version\":\"v2\",\"size\":" + std::to_string(blob.size()) + ",\"sha256\":\"" + sha + "\",\"signature\":\"" + sig + "\"," + extra + "}";
}

std::string inline_req(const std::vector<uint8_t> &blob, const std::string &sig, const std::string &sha) {
  return "{\"id\":\"u1\",\"params\":" + params(blob, sig, sha, "\"blob\":\"" + b64(blob) + "\"") + "}";
}

std::vector<std::string> split(uint32_t id, const std::vector<uint8_t> &blob, size_t chunk) {
  std::vector<std::string> out;
  size_t count = (blob.size() + chunk - 1) / chunk;
  for (size_t i = 0; i < count; i++) {
    size_t off = i * chunk, n = std::min(chunk, blob.size() - off);
    tfa_chunk_hdr h{id, (uint16_t)i, (uint16_t)count, (uint32_t)blob.size(), (uint32_t)off};
    std::string m(20 + n, '\0');
    tfa_chunk_encode(&h, (uint8_t *)&m[0]);
    memcpy(&m[20], blob.data() + off, n);
    out.push_back(m);
  }
  return out;
}

struct Result {
  bool ok;
  std::string code, model, message;
};

Result last_resp(const Harness &h) {
  const Published *r = h.last(kResp);
  if (!r) return {false, "<no response>", ""};
  Doc d(r->payload);
  return {d.flag("ok"), d.str("code", d.get("error")), d.str("model", d.get("result")), d.str("message", d.get("error"))};
}

std::string status_model(const Harness &h) { return Doc(h.last("tinyfer/xiao-01/status")->payload).str("model"); }

TEST(Ota, InlineUpdateSwitchesAndPersists) {
  Harness h;
  h.start();
  auto blob = make_blob(2);
  h.cmd("model_update", inline_req(blob, h.keys.sign(blob), sha_hex(blob)));
  Result r = last_resp(h);
  ASSERT_TRUE(r.ok) << h.last(kResp)->payload;
  EXPECT_EQ(r.model, "v2");
  EXPECT_EQ(status_model(h), "v2");  // a fresh birth announces it
  EXPECT_EQ(h.app.cur.slot, 1);
  EXPECT_EQ(Doc(h.last(kResp)->payload).str("sha256", Doc(h.last(kResp)->payload).get("result")), sha_hex(blob));
  // it classifies with the new model
  EXPECT_EQ(h.app.cur.model.blob, h.store.slot[1]);
  // and comes back after a restart (same storage)
  ASSERT_EQ(h.init(), 0);
  EXPECT_STREQ(tfa_app_model_version(&h.app), "v2");
  EXPECT_EQ(h.app.cur.slot, 1);
  // the next update goes to the other slot
  tfa_app_on_connected(&h.app);
  auto blob3 = make_blob(3);
  std::string req = inline_req(blob3, h.keys.sign(blob3), sha_hex(blob3));
  req.replace(req.find("\"v2\""), 4, "\"v3\"");
  h.cmd("model_update", req);
  ASSERT_TRUE(last_resp(h).ok) << h.last(kResp)->payload;
  EXPECT_EQ(h.app.cur.slot, 2);
  EXPECT_STREQ(tfa_app_model_version(&h.app), "v3");
}

TEST(Ota, ChunkedUpdateOutOfOrderWithDuplicates) {
  Harness h;
  h.start();
  auto blob = make_blob(4);
  auto chunks = split(77, blob, 1000);
  ASSERT_GT(chunks.size(), 3u);
  h.cmd("model_update", "{\"id\":\"u2\",\"params\":" + params(blob, h.keys.sign(blob), sha_hex(blob), "\"transfer\":77,\"chunks\":" + std::to_string(chunks.size())) + "}",
        "tinyfer/_resp/nr", "c2");
  EXPECT_EQ(h.last("tinyfer/_resp/nr"), nullptr);  // answered once the chunks are in
  std::reverse(chunks.begin(), chunks.end());
  h.msg("tinyfer/xiao-01/ota/chunk", split(76, blob, 1000)[0]);  // another transfer: ignored
  for (size_t i = 0; i < chunks.size(); i++) {
    h.msg("tinyfer/xiao-01/ota/chunk", chunks[i]);
    if (i == 0) h.msg("tinyfer/xiao-01/ota/chunk", chunks[i]);
  }
  const Published *r = h.last("tinyfer/_resp/nr");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->corr, "c2");
  EXPECT_TRUE(Doc(r->payload).flag("ok")) << r->payload;
  EXPECT_STREQ(tfa_app_model_version(&h.app), "v2");
}

TEST(Ota, RefusalsKeepTheOldModel) {
  Keys other;
  auto good = make_blob(5);
  auto corrupt = good;
  corrupt[200] ^= 0x01;  // CRC mismatch: a blob the parser rejects
  struct Case {
    const char *what;
    std::string req;
    const char *code;
  };
  Harness h;
  h.start();
  const std::string sig = h.keys.sign(good), sha = sha_hex(good);
  std::vector<Case> cases = {
      {"bad sha256", inline_req(good, sig, sha_hex(corrupt)), "verify_failed"},
      {"bad signature", inline_req(good, other.sign(good), sha), "verify_failed"},
      {"signature of another blob", inline_req(good, h.keys.sign(corrupt), sha), "verify_failed"},
      {"bytes differ from sha", inline_req(corrupt, sig, sha), "verify_failed"},
      {"bad blob, correctly signed", inline_req(corrupt, h.keys.sign(corrupt), sha_hex(corrupt)), "verify_failed"},
      {"not a model at all", inline_req(std::vector<uint8_t>(64, 7), h.keys.sign(std::vector<uint8_t>(64, 7)), sha_hex(std::vector<uint8_t>(64, 7))), "verify_failed"},
      {"size differs", "{\"id\":\"u\",\"params\":" + params(std::vector<uint8_t>(good.size() + 1), sig, sha, "\"blob\":\"" + b64(good) + "\"") + "}", "verify_failed"},
      {"both blob and transfer", "{\"id\":\"u\",\"params\":" + params(good, sig, sha, "\"blob\":\"AA==\",\"transfer\":1,\"chunks\":1") + "}", "bad_request"},
      {"transfer without chunks", "{\"id\":\"u\",\"params\":" + params(good, sig, sha, "\"transfer\":1") + "}", "bad_request"},
      {"uppercase sha", inline_req(good, sig, [&] { std::string s = sha; std::transform(s.begin(), s.end(), s.begin(), ::toupper); return s; }()), "bad_request"},
      {"short signature", inline_req(good, sig.substr(4), sha), "bad_request"},
      {"base64 with a space", "{\"id\":\"u\",\"params\":" + params(good, sig, sha, "\"blob\":\"AA A\"") + "}", "bad_request"},
      {"unknown field", "{\"id\":\"u\",\"params\":" + params(good, sig, sha, "\"blob\":\"AA==\",\"url\":\"x\"") + "}", "bad_request"},
      {"no params", "{\"id\":\"u\"}", "bad_request"},
      {"too large for the slot", "{\"id\":\"u\",\"params\":{\"version\":\"v\",\"size\":300000,\"sha256\":\"" + sha + "\",\"signature\":\"" + sig + "\",\"transfer\":1,\"chunks\":300}}", "too_large"},
  };
  for (auto &c : cases) {
    h.cmd("model_update", c.req);
    Result r = last_resp(h);
    EXPECT_FALSE(r.ok) << c.what;
    EXPECT_EQ(r.code, c.code) << c.what << ": " << h.last(kResp)->payload;
    if (std::string(c.what) == "bad blob, correctly signed" || std::string(c.what) == "not a model at all")
      EXPECT_NE(r.message.find("does not load"), std::string::npos) << c.what << ": " << r.message;
    EXPECT_STREQ(tfa_app_model_version(&h.app), "test") << c.what;
    EXPECT_EQ(h.app.cur.slot, 0) << c.what;
  }
  // still classifying with the old model
  h.cmd("set_config", "{\"id\":\"c\",\"params\":{\"confidence_threshold\":0}}");
  EXPECT_EQ(tfa_app_capture_once(&h.app), 1);
  EXPECT_EQ(h.app.n.ota_ok, 0u);
}

TEST(Ota, WithoutAKeyUpdatesAreRefused) {
  Harness h(false);
  h.start();
  auto blob = make_blob(2);
  h.cmd("model_update", inline_req(blob, h.keys.sign(blob), sha_hex(blob)));
  EXPECT_EQ(last_resp(h).code, "unsupported");
}

TEST(Ota, ChunkedFailuresAndTimeout) {
  Harness h;
  h.start();
  auto blob = make_blob(6);
  auto chunks = split(9, blob, 4096);
  std::string req = "{\"id\":\"u3\",\"params\":" + params(blob, h.keys.sign(blob), sha_hex(blob), "\"transfer\":9,\"chunks\":" + std::to_string(chunks.size())) + "}";
  // a chunk with another total aborts the transfer
  h.cmd("model_update", req);
  h.cmd("model_update", req);
  EXPECT_EQ(last_resp(h).code, "busy");
  auto wrong = split(9, std::vector<uint8_t>(blob.size() + 1, 1), 4096);
  h.msg("tinyfer/xiao-01/ota/chunk", wrong[0]);
  EXPECT_EQ(last_resp(h).code, "bad_request");
  // a malformed chunk too
  h.cmd("model_update", req);
  h.msg("tinyfer/xiao-01/ota/chunk", "TF");
  EXPECT_EQ(last_resp(h).code, "bad_request");
  // a transfer that stops half-way times out after 60 s
  h.cmd("model_update", req);
  h.msg("tinyfer/xiao-01/ota/chunk", chunks[0]);
  h.now_us += 61ull * 1000000ull;
  tfa_app_step(&h.app);
  EXPECT_EQ(last_resp(h).code, "timeout");
  EXPECT_STREQ(tfa_app_model_version(&h.app), "test");
  // chunks with no transfer announced are ignored
  size_t before = h.out.size();
  h.msg("tinyfer/xiao-01/ota/chunk", chunks[0]);
  EXPECT_EQ(h.out.size(), before);
}

}  // namespace
