// The app over the harness platform: birth/will, capture -> emotion, frames, telemetry,
// commands (MQTT 5 response topic + correlation data, 3.1.1 fallback), retained config, reboot.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "harness.h"

namespace {

const char *kStatus = "tinyfer/xiao-01/status";
const char *kEmotion = "tinyfer/xiao-01/emotion";
const char *kResp = "tinyfer/xiao-01/resp";

TEST(App, RefusesBadOptions) {
  Harness h;
  h.o.device_id = "-bad";
  EXPECT_EQ(h.init(), -1);
  h.o.device_id = "xiao-01";
  h.o.prefix = "a/+/b";
  EXPECT_EQ(h.init(), -1);
  h.o.prefix = "tinyfer";
  h.o.arena = nullptr;
  EXPECT_EQ(h.init(), -1);
}

TEST(App, WillAndBirth) {
  Harness h;
  ASSERT_EQ(h.init(), 0);
  const char *topic, *payload;
  tfa_app_will(&h.app, &topic, &payload);
  EXPECT_STREQ(topic, kStatus);
  EXPECT_STREQ(payload, "{\"state\":\"offline\"}");
  EXPECT_TRUE(h.out.empty());  // nothing before the connection
  tfa_app_on_connected(&h.app);
  EXPECT_EQ(h.subs, (std::vector<std::string>{"tinyfer/xiao-01/cmd/+", "tinyfer/xiao-01/config", "tinyfer/xiao-01/ota/chunk"}));
  const Published *s = h.last(kStatus);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->qos, 1);
  EXPECT_TRUE(s->retain);
  Doc d(s->payload);
  ASSERT_GT(d.n, 0) << s->payload;
  EXPECT_EQ(d.str("state"), "online");
  EXPECT_EQ(d.num("protocol"), 1);
  EXPECT_EQ(d.str("model"), "test");
  EXPECT_EQ(d.str("ip"), "10.0.0.7");
  EXPECT_NE(s->payload.find("\"model_update\""), std::string::npos);
}

TEST(App, NoKeyNoModelUpdateCapability) {
  Harness h(false);
  h.start();
  EXPECT_EQ(h.last(kStatus)->payload.find("model_update"), std::string::npos);
}

TEST(App, CaptureClassifiesAndPublishesEmotion) {
  Harness h;
  h.o.defaults = TFA_DEFAULT_CONFIG;
  h.o.defaults.confidence_threshold = 0;
  h.o.has_defaults = true;
  h.start();
  ASSERT_EQ(tfa_app_capture_once(&h.app), 1);
  ASSERT_EQ(tfa_app_capture_once(&h.app), 1);
  auto em = h.on(kEmotion);
  ASSERT_EQ(em.size(), 2u);
  EXPECT_EQ(em[0].qos, 1);
  EXPECT_FALSE(em[0].retain);
  Doc d(em[1].payload);
  ASSERT_GT(d.n, 0) << em[1].payload;
  EXPECT_EQ(d.num("seq"), 1);
  EXPECT_EQ(d.num("ts"), (double)h.epoch);
  int box = d.get("box");
  EXPECT_EQ(d.num("w", box), 48);
  EXPECT_EQ(d.num("x", box), 0);
  int scores = d.get("scores");
  ASSERT_GE(scores, 0);
  EXPECT_EQ(d.d.tok[scores].size, 7u);
  double best = -1, sum = 0;
  std::string best_label;
  for (int i = 0; i < 7; i++) {
    double v = d.num(tfr_label_name(i), scores);
    ASSERT_GE(v, 0);
    sum += v;
    if (v > best) best = v, best_label = tfr_label_name(i);
  }
  EXPECT_NEAR(sum, 1.0, 1e-3);
  EXPECT_EQ(d.str("label"), best_label);
  EXPECT_DOUBLE_EQ(d.num("confidence"), best);
  EXPECT_GE(d.num("inference_ms"), 0);
  EXPECT_FALSE(d.has("frame_id"));  // frames are off by default
  EXPECT_TRUE(h.on("tinyfer/xiao-01/frame/chunk").empty());
}

TEST(App, ThresholdSuppressesLowConfidence) {
  Harness h;
  h.start();
  h.cmd("set_config", "{\"id\":\"c\",\"params\":{\"confidence_threshold\":1}}");
  EXPECT_EQ(tfa_app_capture_once(&h.app), 0);
  EXPECT_TRUE(h.on(kEmotion).empty());
}

TEST(App, FramesWhenEnabledAreChunkedWithAFrameId) {
  Harness h;
  h.set_frame(160, 120);
  h.start();
  h.cmd("set_config", "{\"id\":\"c\",\"params\":{\"frames_enabled\":true,\"confidence_threshold\":0}}");
  ASSERT_EQ(tfa_app_capture_once(&h.app), 1);
  auto chunks = h.on("tinyfer/xiao-01/frame/chunk");
  ASSERT_GT(chunks.size(), 1u);  // 256-byte device buffer in the harness
  std::string jpeg;
  for (size_t i = 0; i < chunks.size(); i++) {
    tfa_chunk_hdr c;
    const uint8_t *data;
    size_t n;
    ASSERT_EQ(tfa_chunk_decode((const uint8_t *)chunks[i].payload.data(), chunks[i].payload.size(), &c, &data, &n), 0);
    EXPECT_EQ(c.index, i);
    EXPECT_EQ(c.count, chunks.size());
    EXPECT_EQ(c.offset, jpeg.size());
    EXPECT_LE(n, 256u);
    EXPECT_EQ(chunks[i].qos, 0);
    jpeg.append((const char *)data, n);
    EXPECT_EQ(c.total, h.jpeg.size());
    EXPECT_EQ(c.id, 1u);
  }
  EXPECT_EQ(jpeg, std::string(h.jpeg.begin(), h.jpeg.end()));
  Doc d(h.last(kEmotion)->payload);
  EXPECT_EQ(d.num("frame_id"), 1);
  int box = d.get("box");
  EXPECT_EQ(d.num("x", box), 20);  // centre square of 160x120
  EXPECT_EQ(d.num("w", box), 120);
}

TEST(App, FramesOverTheProtocolLimitAreNotSent) {
  Harness h;
  h.set_frame(1400, 1000);  // a noisy 1.4 MP frame: its JPEG at quality 100 is over 1 MiB
  for (size_t i = 0; i < h.frame.size(); i++) h.frame[i] = (uint8_t)((i * 2654435761u) >> 24);
  h.start();
  h.cmd("set_config", "{\"id\":\"c\",\"params\":{\"frames_enabled\":true,\"jpeg_quality\":100,\"confidence_threshold\":0}}");
  ASSERT_EQ(tfa_app_capture_once(&h.app), 1);  // the emotion still goes out
  ASSERT_GT(h.jpeg.size(), (size_t)TFA_MAX_FRAME_BYTES);
  EXPECT_TRUE(h.on("tinyfer/xiao-01/frame/chunk").empty());
  EXPECT_FALSE(Doc(h.last(kEmotion)->payload).has("frame_id"));
}

TEST(App, StepRunsCaptureAndTelemetryOnTime) {
  Harness h;
  h.start();
  h.cmd("set_config", "{\"id\":\"c\",\"params\":{\"capture_interval_ms\":100,\"confidence_threshold\":0}}");
  uint32_t wait = tfa_app_step(&h.app);
  EXPECT_GT(wait, 0u);
  EXPECT_LE(wait, 100u);
  for (int i = 0; i < 60; i++) {  // 6 s of simulated time in 100 ms ticks
    h.now_us += 100000;
    tfa_app_step(&h.app);
  }
  EXPECT_EQ(h.on(kEmotion).size(), 60u);
  auto tel = h.on("tinyfer/xiao-01/telemetry");
  ASSERT_EQ(tel.size(), 1u);
  EXPECT_EQ(tel[0].qos, 0);
  Doc d(tel[0].payload);
  ASSERT_GT(d.n, 0) << tel[0].payload;
  EXPECT_EQ(d.num("rssi"), -55);
  EXPECT_EQ(d.num("heap_free"), 200000);
  EXPECT_NEAR(d.num("fps"), 10.0, 0.5);
  EXPECT_EQ(d.num("uptime_s"), 5);
  for (const char *k : {"psram_free", "inference_ms", "temp_c", "ts"}) EXPECT_TRUE(d.has(k)) << k;
}

TEST(App, CommandsAnswerOnTheResponseTopicWithCorrelationData) {
  Harness h;
  h.start();
  h.cmd("get_config", "{\"id\":\"r1\"}", "tinyfer/_resp/nr1", "corr-1");
  const Published *r = h.last("tinyfer/_resp/nr1");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->corr, "corr-1");
  EXPECT_EQ(r->qos, 1);
  Doc d(r->payload);
  EXPECT_EQ(d.str("id"), "r1");
  EXPECT_EQ(d.str("cmd"), "get_config");
  EXPECT_TRUE(d.flag("ok"));
  int res = d.get("result");
  EXPECT_EQ(d.num("capture_interval_ms", res), 500);
  EXPECT_FALSE(d.flag("frames_enabled", res));
}

TEST(App, Mqtt311FallbackAnswersOnRespWithTheId) {
  Harness h;
  h.start();
  h.cmd("set_config", "{\"id\":\"r2\",\"params\":{\"jpeg_quality\":55}}");
  const Published *r = h.last(kResp);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->corr.empty());
  Doc d(r->payload);
  EXPECT_EQ(d.str("id"), "r2");
  EXPECT_TRUE(d.flag("ok"));
  EXPECT_EQ(d.num("jpeg_quality", d.get("result")), 55);
  EXPECT_EQ(h.app.cfg.jpeg_quality, 55);
  char stored[256];
  ASSERT_GT(host_settings_get(&h.store, "config", stored, sizeof stored), 0);  // persisted
  EXPECT_NE(std::string(stored).find("\"jpeg_quality\":55"), std::string::npos);
}

TEST(App, BadRequestsGetClearErrors) {
  Harness h;
  h.start();
  struct Case {
    std::string cmd, payload, code, id;
  } cases[] = {
      {"get_config", "not json", "bad_request", "unknown"},
      {"get_config", "[1]", "bad_request", "unknown"},
      {"get_config", "{\"params\":{}}", "bad_request", "unknown"},
      {"get_config", "{\"id\":7}", "bad_request", "unknown"},
      {"get_config", "{\"id\":\"\"}", "bad_request", "unknown"},
      {"get_config", "{\"id\":\"x\",\"extra\":1}", "bad_request", "x"},
      {"get_config", "{\"id\":\"x\",\"params\":[]}", "bad_request", "x"},
      {"set_config", "{\"id\":\"y\",\"params\":{\"capture_interval_ms\":1}}", "bad_request", "y"},
      {"set_config", "{\"id\":\"y\",\"params\":{\"wifi\":\"x\"}}", "bad_request", "y"},
      {"self_destruct", "{\"id\":\"z\"}", "unknown_command", "z"},
      {"snapshot", "{\"id\":\"s\"}", "frames_disabled", "s"},
  };
  for (auto &c : cases) {
    size_t before = h.out.size();
    h.cmd(c.cmd, c.payload);
    ASSERT_EQ(h.out.size(), before + 1) << c.payload;
    Doc d(h.out.back().payload);
    ASSERT_GT(d.n, 0) << h.out.back().payload;
    EXPECT_FALSE(d.flag("ok")) << c.payload;
    int e = d.get("error");
    EXPECT_EQ(d.str("code", e), c.code) << c.payload;
    EXPECT_NE(d.str("message", e), "") << c.payload;
    EXPECT_EQ(d.str("id"), c.id) << c.payload;
  }
  EXPECT_EQ(h.app.cfg.capture_interval_ms, 500u);  // nothing changed
  // an oversized request, and topics of other devices or unknown kinds, are handled too
  h.cmd("get_config", std::string(TFA_MAX_CMD_BYTES + 1, ' '));
  EXPECT_EQ(Doc(h.out.back().payload).str("code", Doc(h.out.back().payload).get("error")), "bad_request");
  size_t before = h.out.size();
  h.msg("tinyfer/xiao-02/cmd/get_config", "{\"id\":\"a\"}");
  h.msg("tinyfer/xiao-01/cmd/Bad", "{\"id\":\"a\"}");
  h.msg("tinyfer/xiao-01/whatever", "{}");
  h.msg("tinyfer/xiao-01", "{}");
  EXPECT_EQ(h.out.size(), before);
}

TEST(App, SnapshotPublishesAFrameWhenEnabled) {
  Harness h;
  h.start();
  h.cmd("set_config", "{\"id\":\"c\",\"params\":{\"frames_enabled\":true}}");
  h.cmd("snapshot", "{\"id\":\"s1\"}");
  Doc d(h.last(kResp)->payload);
  EXPECT_TRUE(d.flag("ok")) << h.last(kResp)->payload;
  EXPECT_EQ(d.num("frame_id", d.get("result")), 1);
  EXPECT_EQ(d.num("size", d.get("result")), (double)h.jpeg.size());
  EXPECT_FALSE(h.on("tinyfer/xiao-01/frame/chunk").empty());
  h.camera_ok = false;
  h.cmd("snapshot", "{\"id\":\"s2\"}");
  Doc e(h.last(kResp)->payload);
  EXPECT_EQ(e.str("code", e.get("error")), "internal");
}

TEST(App, RetainedConfigIsAppliedAndBadOnesIgnored) {
  Harness h;
  h.start();
  h.msg("tinyfer/xiao-01/config", "{\"capture_interval_ms\":1000,\"frames_enabled\":false,\"jpeg_quality\":70,\"confidence_threshold\":0.3}");
  EXPECT_EQ(h.app.cfg.capture_interval_ms, 1000u);
  EXPECT_DOUBLE_EQ(h.app.cfg.confidence_threshold, 0.3);
  h.msg("tinyfer/xiao-01/config", "{\"capture_interval_ms\":20}");  // partial and invalid
  h.msg("tinyfer/xiao-01/config", "garbage");
  h.msg("tinyfer/xiao-01/config", "");  // retained message cleared
  EXPECT_EQ(h.app.cfg.capture_interval_ms, 1000u);
  // the stored config survives a restart
  Harness *same = &h;
  ASSERT_EQ(same->init(), 0);
  EXPECT_EQ(h.app.cfg.capture_interval_ms, 1000u);
}

TEST(App, RebootSaysGoodbyeThenHandsOver) {
  Harness h;
  h.start();
  h.cmd("reboot", "{\"id\":\"b\",\"params\":{\"delay_ms\":1500}}");
  Doc d(h.last(kResp)->payload);
  EXPECT_EQ(d.num("delay_ms", d.get("result")), 1500);
  EXPECT_EQ(h.reboots, 0);
  tfa_app_step(&h.app);
  EXPECT_EQ(h.reboots, 1);
  EXPECT_EQ(h.reboot_delay, 1500u);
  Doc s(h.last(kStatus)->payload);
  EXPECT_EQ(s.str("state"), "offline");
  EXPECT_EQ(s.str("reason"), "reboot");
  EXPECT_TRUE(h.last(kStatus)->retain);
  // offline: no captures, commands ignored
  size_t before = h.out.size();
  h.now_us += 10000000;
  tfa_app_step(&h.app);
  h.cmd("get_config", "{\"id\":\"x\"}");
  EXPECT_EQ(h.out.size(), before);
}

TEST(App, ShutdownAndReconnect) {
  Harness h;
  h.start();
  tfa_app_on_disconnected(&h.app);
  h.now_us += 10000000;
  tfa_app_step(&h.app);
  EXPECT_TRUE(h.on(kEmotion).empty());
  tfa_app_on_connected(&h.app);  // a reconnect publishes a fresh birth
  EXPECT_EQ(h.on(kStatus).size(), 2u);
  tfa_app_shutdown(&h.app, "shutdown");
  Doc s(h.last(kStatus)->payload);
  EXPECT_EQ(s.str("state"), "offline");
  EXPECT_EQ(s.str("reason"), "shutdown");
}

TEST(App, NoModelStillRunsAndSaysSo) {
  Harness h(true, 0);
  h.start();
  EXPECT_EQ(Doc(h.last(kStatus)->payload).str("model"), "none");
  EXPECT_EQ(tfa_app_capture_once(&h.app), 0);
}

TEST(App, CorruptBuiltinModelIsRefused) {
  Harness h(true, 3);
  h.store.slot[0][100] ^= 0x40;  // CRC now fails
  h.start();
  EXPECT_EQ(Doc(h.last(kStatus)->payload).str("model"), "none");
}

}  // namespace
