/*
 * libFuzzer target: arbitrary MQTT messages into the app (commands of every name, the retained
 * config, OTA chunks) between capture/telemetry steps. The platform records nothing; storage and
 * crypto are the host ones (in memory), the model is a core test blob. Finds crashes, reads out
 * of bounds (ASan) and undefined behaviour (UBSan) in the JSON reader, the config and command
 * handling and the OTA state machine.
 *   cmake -S firmware/host -B build/host-fuzz -DTFA_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
 *   build/host-fuzz/tfa_fuzz_app -max_total_time=60
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blob_builder.h"
#include "host.h"
#include "tfa/app.h"

static host_storage g_store;
static tfa_app g_app;
static tfa_platform g_p;
static uint64_t g_now = 1000000;
static uint8_t g_frame[64 * 48];
static uint32_t g_arena[256 * 1024 / 4];
static uint8_t g_scratch[64 * 1024];

static uint64_t now_us(void *c) { (void)c; return g_now; }
static uint64_t epoch_ms(void *c) { (void)c; return 1764000000000ull; }
static int capture(void *c, tfa_frame *f, bool want_jpeg, int q) {
  (void)c; (void)q;
  memset(f, 0, sizeof *f);
  f->gray = g_frame; f->width = 64; f->height = 48; f->stride = 64;
  if (want_jpeg) { f->jpeg = g_frame; f->jpeg_len = sizeof g_frame; } /* bytes only: nobody decodes them here */
  return 0;
}
static int detect(void *c, const tfa_frame *f, tfa_box *b, int max) {
  (void)c;
  if (max < 1) return 0;
  b[0] = tfa_centre_square(f->width, f->height);
  return 1;
}
static int publish(void *c, const char *t, const void *p, size_t n, int q, bool r, const uint8_t *cd, size_t cl) {
  (void)c; (void)t; (void)p; (void)n; (void)q; (void)r; (void)cd; (void)cl;
  return 0;
}
static int subscribe(void *c, const char *f, int q) { (void)c; (void)f; (void)q; return 0; }
static int sget(void *c, const char *k, char *o, size_t cap) { (void)c; return host_settings_get(&g_store, k, o, cap); }
static int sset(void *c, const char *k, const char *v) { (void)c; return host_settings_set(&g_store, k, v); }
static size_t scap(void *c, int s) { (void)c; return s ? 256 * 1024 : 0; }
static int sbegin(void *c, int s, size_t n) { (void)c; return host_slot_begin(&g_store, s, n); }
static int swrite(void *c, int s, size_t o, const void *d, size_t n) { (void)c; return host_slot_write(&g_store, s, o, d, n); }
static int smap(void *c, int s, size_t n, const uint8_t **d) { (void)c; return host_slot_map(&g_store, s, n, d); }
static int sha(void *c, const void *d, size_t n, uint8_t o[32]) { (void)c; return host_sha256(d, n, o); }
static void reboot(void *c, uint32_t d) { (void)c; (void)d; tfa_app_on_connected(&g_app); }

static void setup(void) {
  static uint8_t blob[1 << 16];
  tfb_spec spec = tfb_small_spec();
  size_t n = tfb_build(blob, sizeof blob, &spec, 1);
  tfa_options o;
  size_t i;
  host_crypto_init();
  host_storage_open(&g_store, NULL);
  {
    void *b = NULL;
    if (posix_memalign(&b, 16, n) != 0) abort();
    g_store.slot[0] = b;
  }
  memcpy(g_store.slot[0], blob, n);
  g_store.slot_size[0] = n;
  for (i = 0; i < sizeof g_frame; i++) g_frame[i] = (uint8_t)(i * 7);
  g_p.now_us = now_us; g_p.epoch_ms = epoch_ms; g_p.capture = capture; g_p.detect = detect; g_p.publish = publish;
  g_p.subscribe = subscribe; g_p.settings_get = sget; g_p.settings_set = sset; g_p.slot_capacity = scap;
  g_p.slot_begin = sbegin; g_p.slot_write = swrite; g_p.slot_map = smap; g_p.sha256 = sha;
  g_p.reboot = reboot;
  memset(&o, 0, sizeof o);
  o.device_id = "fz";
  o.builtin_size = n;
  o.arena = g_arena;
  o.arena_size = sizeof g_arena;
  o.scratch = g_scratch;
  o.scratch_size = sizeof g_scratch;
  o.chunk_bytes = 512;
  o.has_model_key = true;
  memset(o.model_key, 0x42, 32);
  if (tfa_app_init(&g_app, &g_p, &o) != 0) abort();
  tfa_app_on_connected(&g_app);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const topics[] = {"tinyfer/fz/cmd/get_config", "tinyfer/fz/cmd/set_config", "tinyfer/fz/cmd/snapshot", "tinyfer/fz/cmd/reboot",
                                       "tinyfer/fz/cmd/model_update", "tinyfer/fz/cmd/unknown", "tinyfer/fz/config", "tinyfer/fz/ota/chunk"};
  static int ready;
  if (!ready) {
    setup();
    ready = 1;
  }
  if (size < 1) return 0;
  /* first byte: topic (low 3 bits) and whether to advance the clock and step (bit 3) */
  tfa_msg_props props = {NULL, NULL, 0};
  if (data[0] & 0x10) {
    props.response_topic = "tinyfer/_resp/x";
    props.correlation = data;
    props.correlation_len = size > 8 ? 8 : size;
  }
  tfa_app_on_message(&g_app, topics[data[0] & 7], data + 1, size - 1, &props);
  if (data[0] & 8) {
    g_now += 700000;
    tfa_app_step(&g_app);
  }
  if (g_app.state != TFA_ONLINE) tfa_app_on_connected(&g_app);
  return 0;
}
