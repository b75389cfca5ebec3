// Test harness for the app: a tfa_platform whose MQTT side records what the app publishes
// (the transport is exercised for real by test/e2e-device.test.js); storage, crypto, JPEG and
// the inference core are the real host implementations. Model blobs come from the core's test
// blob builder (random parameters, valid format); signatures from libsodium.
#ifndef TFA_TEST_HARNESS_H
#define TFA_TEST_HARNESS_H

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include "blob_builder.h"
#include "host.h"
#include "tfa/app.h"
#include "tfa/json.h"
#include "tfa/util.h"
}

struct Published {
  std::string topic;
  std::string payload;
  int qos;
  bool retain;
  std::string corr;
};

inline std::vector<uint8_t> make_blob(uint32_t seed) {
  tfb_spec spec = tfb_small_spec();
  std::vector<uint8_t> b(1 << 16);
  size_t n = tfb_build(b.data(), b.size(), &spec, seed);
  b.resize(n);
  return b;
}

struct Keys {
  uint8_t pk[32], sk[64];
  Keys() {
    if (sodium_init() < 0) abort();
    crypto_sign_keypair(pk, sk);
  }
  // base64 Ed25519 signature over the 32-byte SHA-256 digest of blob (signModel in protocol.ts)
  std::string sign(const std::vector<uint8_t> &blob) const {
    uint8_t d[32], sig[64];
    char b64[100];
    crypto_hash_sha256(d, blob.data(), blob.size());
    crypto_sign_detached(sig, nullptr, d, 32, sk);
    tfa_b64_encode(sig, 64, b64, sizeof b64);
    return b64;
  }
};

inline std::string sha_hex(const std::vector<uint8_t> &blob) {
  uint8_t d[32];
  char hex[65];
  crypto_hash_sha256(d, blob.data(), blob.size());
  tfa_hex(d, 32, hex);
  return hex;
}

inline std::string b64(const std::vector<uint8_t> &b) {
  std::string s((b.size() + 2) / 3 * 4 + 1, '\0');
  long n = tfa_b64_encode(b.data(), b.size(), &s[0], s.size());
  s.resize((size_t)n);
  return s;
}

class Harness {
 public:
  tfa_platform p{};
  tfa_options o{};
  tfa_app app{};
  host_storage store{};
  std::vector<Published> out;
  std::vector<std::string> subs, logs;
  uint64_t now_us = 1000000;
  uint64_t epoch = 1764000000000ull;
  std::vector<uint8_t> frame;  // gray
  uint16_t fw = 48, fh = 48;
  std::vector<uint8_t> jpeg;
  bool camera_ok = true;
  int reboots = 0;
  uint32_t reboot_delay = 0;
  std::vector<uint8_t> builtin;
  alignas(16) uint8_t arena[256 * 1024];
  uint8_t scratch[64 * 1024];
  Keys keys;

  explicit Harness(bool with_key = true, uint32_t builtin_seed = 1) {
    host_storage_open(&store, nullptr);
    if (builtin_seed) {
      builtin = make_blob(builtin_seed);
      store.slot[0] = (uint8_t *)aligned_alloc(16, (builtin.size() + 15) / 16 * 16);
      memcpy(store.slot[0], builtin.data(), builtin.size());
      store.slot_size[0] = builtin.size();
    }
    set_frame(48, 48);
    p.ctx = this;
    p.now_us = [](void *c) { return ((Harness *)c)->now_us; };
    p.epoch_ms = [](void *c) { return ((Harness *)c)->epoch; };
    p.capture = [](void *c, tfa_frame *f, bool want_jpeg, int q) -> int {
      Harness *h = (Harness *)c;
      if (!h->camera_ok) return -1;
      memset(f, 0, sizeof *f);
      f->gray = h->frame.data();
      f->width = h->fw;
      f->height = h->fh;
      f->stride = h->fw;
      if (want_jpeg) {
        uint8_t *j = nullptr;
        size_t n = 0;
        if (host_encode_jpeg(h->frame.data(), h->fw, h->fh, q, &j, &n) != 0) return -1;
        h->jpeg.assign(j, j + n);
        free(j);
        f->jpeg = h->jpeg.data();
        f->jpeg_len = h->jpeg.size();
      }
      return 0;
    };
    p.detect = [](void *, const tfa_frame *f, tfa_box *b, int max) -> int {
      if (max < 1) return 0;
      b[0] = tfa_centre_square(f->width, f->height);
      return 1;
    };
    p.publish = [](void *c, const char *t, const void *pl, size_t n, int qos, bool retain, const uint8_t *corr, size_t cl) -> int {
      ((Harness *)c)->out.push_back({t, std::string((const char *)pl, n), qos, retain, corr ? std::string((const char *)corr, cl) : ""});
      return 0;
    };
    p.subscribe = [](void *c, const char *f, int) -> int {
      ((Harness *)c)->subs.push_back(f);
      return 0;
    };
    p.settings_get = [](void *c, const char *k, char *o2, size_t cap) { return host_settings_get(&((Harness *)c)->store, k, o2, cap); };
    p.settings_set = [](void *c, const char *k, const char *v) { return host_settings_set(&((Harness *)c)->store, k, v); };
    p.slot_capacity = [](void *c, int s) -> size_t { return s == 0 ? 0 : 256 * 1024; (void)c; };
    p.slot_begin = [](void *c, int s, size_t n) { return host_slot_begin(&((Harness *)c)->store, s, n); };
    p.slot_write = [](void *c, int s, size_t off, const void *d, size_t n) { return host_slot_write(&((Harness *)c)->store, s, off, d, n); };
    p.slot_map = [](void *c, int s, size_t n, const uint8_t **d) { return host_slot_map(&((Harness *)c)->store, s, n, d); };
    p.sha256 = [](void *, const void *d, size_t n, uint8_t o2[32]) { return host_sha256(d, n, o2); };
    p.sysinfo = [](void *, tfa_sysinfo *si) {
      si->heap_free = 200000;
      si->psram_free = 6000000;
      si->rssi = -55;
      si->temp_c = 41.5;
    };
    p.ip = [](void *) -> const char * { return "10.0.0.7"; };
    p.reboot = [](void *c, uint32_t d) {
      ((Harness *)c)->reboots++;
      ((Harness *)c)->reboot_delay = d;
    };
    p.log = [](void *c, int, const char *m) { ((Harness *)c)->logs.push_back(m); };
    o.device_id = "xiao-01";
    o.prefix = "tinyfer";
    o.builtin_size = builtin.size();
    o.arena = arena;
    o.arena_size = sizeof arena;
    o.scratch = scratch;
    o.scratch_size = sizeof scratch;
    o.chunk_bytes = 256;
    o.telemetry_interval_ms = 5000;
    o.has_model_key = with_key;
    memcpy(o.model_key, keys.pk, 32);
  }
  ~Harness() { host_storage_close(&store); }
  Harness(const Harness &) = delete;
  Harness &operator=(const Harness &) = delete;

  void set_frame(uint16_t w, uint16_t h) {
    fw = w;
    fh = h;
    frame.resize((size_t)w * h);
    for (size_t i = 0; i < frame.size(); i++) frame[i] = (uint8_t)((i * 7 + i / w * 13) & 0xFF);
  }

  int init() { return tfa_app_init(&app, &p, &o); }
  void start() {
    ASSERT_EQ(init(), 0);
    tfa_app_on_connected(&app);
  }
  void msg(const std::string &topic, const std::string &payload, const char *resp_topic = nullptr, const std::string &corr = "") {
    tfa_msg_props mp{};
    mp.response_topic = resp_topic;
    mp.correlation = corr.empty() ? nullptr : (const uint8_t *)corr.data();
    mp.correlation_len = corr.size();
    tfa_app_on_message(&app, topic.c_str(), (const uint8_t *)payload.data(), payload.size(), &mp);
  }
  void cmd(const std::string &name, const std::string &payload, const char *resp_topic = nullptr, const std::string &corr = "") {
    msg("tinyfer/xiao-01/cmd/" + name, payload, resp_topic, corr);
  }
  std::vector<Published> on(const std::string &topic) const {
    std::vector<Published> r;
    for (auto &m : out)
      if (m.topic == topic) r.push_back(m);
    return r;
  }
  const Published *last(const std::string &topic) const {
    for (auto it = out.rbegin(); it != out.rend(); ++it)
      if (it->topic == topic) return &*it;
    return nullptr;
  }
};

// Parsed JSON for assertions.
struct Doc {
  std::string text;
  tfa_jtok tok[256];
  tfa_json d{};
  int n;
  explicit Doc(const std::string &s) : text(s) { n = tfa_json_parse(&d, text.data(), text.size(), tok, 256); }
  int get(const char *k, int obj = 0) const { return tfa_json_get(&d, obj, k); }
  std::string str(const char *k, int obj = 0) const {
    char b[512];
    int t = get(k, obj);
    return t >= 0 && tfa_json_str(&d, t, b, sizeof b) >= 0 ? b : "<none>";
  }
  double num(const char *k, int obj = 0) const {
    double v = -1e300;
    tfa_json_num(&d, get(k, obj), &v);
    return v;
  }
  bool flag(const char *k, int obj = 0) const {
    bool v = false;
    tfa_json_bool(&d, get(k, obj), &v);
    return v;
  }
  bool has(const char *k, int obj = 0) const { return get(k, obj) >= 0; }
};

#endif
