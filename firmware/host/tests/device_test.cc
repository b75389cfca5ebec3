// The tinyfer-device binary itself, without a broker (--dry-run): real JPEG/PNG files in, the
// emotion messages it would publish out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "harness.h"

namespace {

std::string run(const std::string &cmd) {
  std::string out;
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

void write(const std::string &path, const void *data, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write((const char *)data, (std::streamsize)n);
}

TEST(Device, DryRunClassifiesFiles) {
  char dir[] = "/tmp/tfa-device-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string d = dir;
  auto blob = make_blob(1);
  write(d + "/model.tfer", blob.data(), blob.size());
  // a 64x48 frame: at most 64 px, so one face (the whole-face rule of tfa_detect_frame)
  std::vector<uint8_t> gray(64 * 48);
  for (size_t i = 0; i < gray.size(); i++) gray[i] = (uint8_t)(i % 251);
  uint8_t *jpeg;
  size_t n;
  ASSERT_EQ(host_encode_jpeg(gray.data(), 64, 48, 90, &jpeg, &n), 0);
  mkdir((d + "/frames").c_str(), 0700);
  write(d + "/frames/a.jpg", jpeg, n);
  free(jpeg);
  write(d + "/frames/b.txt", "ignored", 7);
  std::string out = run(std::string(TFA_DEVICE_BIN) + " --id dry-1 --frames " + d + "/frames --model " + d +
                        "/model.tfer --threshold 0 --dry-run 3 -q 2>&1");
  size_t count = 0, pos = 0;
  while ((pos = out.find("tinyfer/dry-1/emotion {", pos)) != std::string::npos) count++, pos++;
  EXPECT_EQ(count, 3u) << out;
  EXPECT_NE(out.find("\"box\":{\"x\":8,\"y\":0,\"w\":48,\"h\":48}"), std::string::npos) << out;
  // a larger frame goes through the face detector: a ramp pattern has no face, so no emotion
  std::vector<uint8_t> ramp(96 * 64);
  for (size_t i = 0; i < ramp.size(); i++) ramp[i] = (uint8_t)(i % 251);
  ASSERT_EQ(host_encode_jpeg(ramp.data(), 96, 64, 90, &jpeg, &n), 0);
  mkdir((d + "/ramp").c_str(), 0700);
  write(d + "/ramp/a.jpg", jpeg, n);
  free(jpeg);
  std::string none = run(std::string(TFA_DEVICE_BIN) + " --id dry-1 --frames " + d + "/ramp --model " + d +
                         "/model.tfer --threshold 0 --dry-run 3 -q 2>&1");
  EXPECT_EQ(none.find("tinyfer/dry-1/emotion {"), std::string::npos) << none;
  EXPECT_NE(none.find("tinyfer/dry-1/status {"), std::string::npos) << none;
  // bad arguments are refused with a message
  std::string bad = run(std::string(TFA_DEVICE_BIN) + " --id dry-1 --frames " + d + "/nothing-here 2>&1; echo rc=$?");
  EXPECT_NE(bad.find("--frames"), std::string::npos) << bad;
  EXPECT_NE(bad.find("rc=1"), std::string::npos) << bad;
  std::string badid = run(std::string(TFA_DEVICE_BIN) + " --id _x --frames " + d + "/frames 2>&1; echo rc=$?");
  EXPECT_NE(badid.find("rc=2"), std::string::npos) << badid;
  std::string badmodel = run(std::string(TFA_DEVICE_BIN) + " --id x --frames " + d + "/frames --model " + d + "/frames/b.txt --dry-run 1 2>&1");
  EXPECT_NE(badmodel.find("built-in model unusable"), std::string::npos) << badmodel;
  run("rm -rf " + d);
}

}  // namespace
