// firmware_update in the app, with the host's real app slots (files beside a settings file):
// refusals (no key, no platform support, bad signature, tampered bytes) write nothing bootable;
// a good image lands in <settings>.app-next and the app reboots into it; the running image is
// confirmed once per boot, on the first connection. (The trial boot and rollback themselves run
// end to end in test/e2e-firmware-update.test.js.)
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "harness.h"

namespace {

const char *kResp = "tinyfer/xiao-01/resp";

struct Slots {
  std::string dir, settings;
  host_apps apps{};
  int confirms = 0;
  Slots() {
    char tmpl[] = "/tmp/tfa-fw-XXXXXX";
    dir = mkdtemp(tmpl);
    settings = dir + "/dev.conf";
    host_app_init(&apps, settings.c_str(), "xiao-01");
  }
  ~Slots() { std::system(("rm -rf " + dir).c_str()); }
  bool exists(const char *suffix) const {
    struct stat st;
    return stat((settings + suffix).c_str(), &st) == 0;
  }
};

// The harness's platform plus the host app slots; the firmware key is a second key pair.
struct FwHarness : Harness {
  Slots slots;
  Keys fw;
  explicit FwHarness(bool with_key = true, bool with_slots = true) {
    o.has_firmware_key = with_key;
    memcpy(o.firmware_key, fw.pk, 32);
    if (with_slots) {
      p.app_begin = [](void *c, size_t n) { return host_app_begin(&((FwHarness *)c)->slots.apps, n); };
      p.app_write = [](void *c, size_t off, const void *d, size_t n) { return host_app_write(&((FwHarness *)c)->slots.apps, off, d, n); };
      p.app_finish = [](void *c, size_t n, const uint8_t sha[32], const char *) { return host_app_finish(&((FwHarness *)c)->slots.apps, n, sha); };
    }
    p.app_confirm = [](void *c) { ((FwHarness *)c)->slots.confirms++; };
  }
};

std::vector<uint8_t> image(const std::string &s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::string req(const std::vector<uint8_t> &img, const std::string &sig, const std::string &sha, const std::string &tail) {
  return "{\"id\":\"f1\",\"params\":{\"version\":\"2.0\",\"size\":" + std::to_string(img.size()) + ",\"sha256\":\"" + sha + "\",\"signature\":\"" + sig + "\"," + tail + "}}";
}

Doc resp(const Harness &h) { return Doc(h.last(kResp)->payload); }

TEST(FirmwareUpdate, OfferedOnlyWithAKeyAndAppSlots) {
  for (int k = 0; k < 3; k++) {
    FwHarness h(k != 1, k != 2);
    h.start();
    bool offered = Doc(h.last("tinyfer/xiao-01/status")->payload).text.find("firmware_update") != std::string::npos;
    EXPECT_EQ(offered, k == 0);
    auto img = image("#!/bin/sh\nexit 0\n");
    h.cmd("firmware_update", req(img, h.fw.sign(img), sha_hex(img), "\"blob\":\"" + b64(img) + "\""));
    if (k == 0) {
      EXPECT_TRUE(resp(h).flag("ok")) << h.last(kResp)->payload;
    } else {
      EXPECT_EQ(resp(h).str("code", resp(h).get("error")), "unsupported");
      EXPECT_FALSE(h.slots.exists(".app-new") || h.slots.exists(".app-next"));
    }
  }
}

TEST(FirmwareUpdate, RefusalsWriteNothingBootable) {
  FwHarness h;
  h.start();
  auto img = image("#!/bin/sh\necho new\n");
  // signed with the MODEL key: not the firmware key
  h.cmd("firmware_update", req(img, h.keys.sign(img), sha_hex(img), "\"blob\":\"" + b64(img) + "\""));
  EXPECT_EQ(resp(h).str("code", resp(h).get("error")), "verify_failed");
  EXPECT_FALSE(h.slots.exists(".app-new"));  // refused before a byte was written
  // a valid signature of these bytes' digest, with other bytes sent
  auto other = image("#!/bin/sh\necho bad\n");
  h.cmd("firmware_update", req(img, h.fw.sign(img), sha_hex(img), "\"blob\":\"" + b64(other) + "\""));
  EXPECT_EQ(resp(h).str("code", resp(h).get("error")), "verify_failed");
  // well signed but not an executable image
  auto junk = image("not a program");
  h.cmd("firmware_update", req(junk, h.fw.sign(junk), sha_hex(junk), "\"blob\":\"" + b64(junk) + "\""));
  EXPECT_EQ(resp(h).str("code", resp(h).get("error")), "verify_failed");
  EXPECT_FALSE(h.slots.exists(".app-next"));
  tfa_app_step(&h.app);
  EXPECT_EQ(h.reboots, 0);
}

TEST(FirmwareUpdate, AGoodImageIsInstalledOnTrialAndTheDeviceReboots) {
  FwHarness h;
  h.start();
  std::string body = "#!/bin/sh\n";
  for (int i = 0; i < 400; i++) body += "# padding line " + std::to_string(i) + "\n";
  auto img = image(body);
  // chunked, out of order
  size_t chunk = 1000, count = (img.size() + chunk - 1) / chunk;
  h.cmd("firmware_update", req(img, h.fw.sign(img), sha_hex(img), "\"transfer\":5,\"chunks\":" + std::to_string(count)));
  for (size_t i = count; i-- > 0;) {
    size_t off = i * chunk, n = std::min(chunk, img.size() - off);
    tfa_chunk_hdr hd{5, (uint16_t)i, (uint16_t)count, (uint32_t)img.size(), (uint32_t)off};
    std::string m(20 + n, '\0');
    tfa_chunk_encode(&hd, (uint8_t *)&m[0]);
    memcpy(&m[20], img.data() + off, n);
    h.msg("tinyfer/xiao-01/ota/chunk", m);
  }
  Doc r = resp(h);
  ASSERT_TRUE(r.flag("ok")) << h.last(kResp)->payload;
  EXPECT_EQ(r.str("firmware", r.get("result")), "2.0");
  EXPECT_EQ(r.str("sha256", r.get("result")), sha_hex(img));
  EXPECT_TRUE(r.flag("reboot", r.get("result")));
  ASSERT_TRUE(h.slots.exists(".app-next"));
  struct stat st;
  stat((h.slots.settings + ".app-next").c_str(), &st);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  std::ifstream f(h.slots.settings + ".app-next", std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, body);
  tfa_app_step(&h.app);  // goodbye, then the platform reboots
  EXPECT_EQ(h.reboots, 1);
  EXPECT_EQ(Doc(h.last("tinyfer/xiao-01/status")->payload).str("reason"), "reboot");
}

TEST(FirmwareUpdate, TheRunningImageIsConfirmedOncePerBootOnTheFirstConnection) {
  FwHarness h;
  ASSERT_EQ(h.init(), 0);
  EXPECT_EQ(h.slots.confirms, 0);  // not before it reached the broker
  tfa_app_on_connected(&h.app);
  EXPECT_EQ(h.slots.confirms, 1);
  tfa_app_on_disconnected(&h.app);
  tfa_app_on_connected(&h.app);
  EXPECT_EQ(h.slots.confirms, 1);
}

}  // namespace
