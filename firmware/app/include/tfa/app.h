/*
 * TinyFER companion app: the same C99 source on the XIAO ESP32S3 Sense and on Linux.
 *
 * The app speaks the fleet protocol of docs/protocol.md (one definition: src/fleet/protocol.ts)
 * and runs the inference core (firmware/core). Everything device-specific is behind
 * tfa_platform, a struct of function pointers the platform glue fills (firmware/esp32s3/main,
 * firmware/host/src). The app never blocks and never allocates: the platform owns the thread,
 * the MQTT client and the memory, and calls in:
 *
 *   tfa_app_init(&app, &platform, &opts);       // settings, active model (spare slot or built-in)
 *   tfa_app_will(&app, ...);                     // the last will to connect with
 *   on CONNACK:    tfa_app_on_connected(&app);   // subscribes, publishes the birth status
 *   on PUBLISH:    tfa_app_on_message(&app, topic, payload, len, &props);
 *   on connection loss: tfa_app_on_disconnected(&app);
 *   forever:       wait = tfa_app_step(&app);    // capture/classify/publish, telemetry; returns
 *                                                // the ms until it wants to run again
 *   on SIGTERM:    tfa_app_shutdown(&app, "shutdown");  // retained offline status
 *
 * States: BOOT -> CONNECTING -> ONLINE (loop) -> (REBOOTING) ; a connection loss goes back to
 * CONNECTING and the platform reconnects; every (re)connect publishes a fresh birth message.
 */
#ifndef TFA_APP_H
#define TFA_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tfa/util.h"
#include "tinyfer/tinyfer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFA_PROTOCOL_VERSION 1
#define TFA_FIRMWARE_VERSION "0.1.0"
#define TFA_MAX_FACES 4
#define TFA_TOPIC_MAX 192
#define TFA_MAX_MODEL_BYTES (4u * 1024u * 1024u) /* MAX_MODEL_BYTES */
#define TFA_MAX_FRAME_BYTES (1024u * 1024u)     /* MAX_FRAME_BYTES: larger frames are not sent */
#define TFA_MAX_OTA_CHUNKS 4096u                 /* a 4 MiB model in 1 KiB chunks */
#define TFA_MAX_CMD_BYTES (96u * 1024u)          /* a 48 KiB inline model is 64 KiB of base64 */
#define TFA_MAX_CONFIG_BYTES 2048u               /* TOPIC_RULES.config.maxBytes */
#define TFA_RESP_BYTES 2048u
#define TFA_OTA_TIMEOUT_MS 60000u              /* default tfa_options.ota_timeout_ms */
#define TFA_MAX_APP_BYTES (8u * 1024u * 1024u)  /* MAX_FIRMWARE_BYTES: an application image */

/* Slot 0 is the built-in model (compiled in, or --model on the host); 1 and 2 are the OTA slots. */
#define TFA_SLOT_BUILTIN 0
#define TFA_NUM_SLOTS 3

typedef struct {
  uint32_t capture_interval_ms; /* 50..3600000 */
  bool frames_enabled;          /* privacy default: false */
  uint8_t jpeg_quality;         /* 1..100 */
  double confidence_threshold;  /* 0..1 */
} tfa_config;

extern const tfa_config TFA_DEFAULT_CONFIG;

/* validateConfig of protocol.ts on a JSON object: `partial` accepts any subset (set_config).
 * Applies the fields found onto *cfg only when all are valid; otherwise writes a message like
 * "capture_interval_ms: must be an integer 50..3600000; foo: unknown field" to err and returns -1. */
int tfa_config_from_json(tfa_config *cfg, const char *json, size_t len, bool partial, char *err, size_t err_cap);
/* The full config as a JSON object; returns the length or -1. */
int tfa_config_to_json(const tfa_config *cfg, char *out, size_t cap);

/* One captured frame. `gray` is what the detector and classifier see; `jpeg` is what a frame
 * publish sends (NULL when the camera was asked for no JPEG). */
typedef struct {
  const uint8_t *gray;
  uint16_t width, height;
  size_t stride;
  const uint8_t *jpeg;
  size_t jpeg_len;
  void *handle; /* the platform's */
} tfa_frame;

typedef struct {
  uint32_t heap_free, psram_free;
  int rssi;      /* dBm, -127..0 */
  double temp_c; /* chip temperature */
} tfa_sysinfo;

/* MQTT 5 properties of a received command (absent with MQTT 3.1.1). */
typedef struct {
  const char *response_topic; /* NUL-terminated or NULL */
  const uint8_t *correlation;
  size_t correlation_len;
} tfa_msg_props;

typedef struct {
  void *ctx;
  /* clock: monotonic microseconds; wall clock ms since the Unix epoch, 0 when unknown (no SNTP
   * yet: emotion `ts` is then the uptime in ms) */
  uint64_t (*now_us)(void *ctx);
  uint64_t (*epoch_ms)(void *ctx);
  /* camera: fill *f (want_jpeg: also a JPEG at `quality`); 0 or -1. release() after use. */
  int (*capture)(void *ctx, tfa_frame *f, bool want_jpeg, int quality);
  void (*release)(void *ctx, tfa_frame *f);
  /* face detector: up to `max` boxes in frame pixels; returns how many (0 = no face). */
  int (*detect)(void *ctx, const tfa_frame *f, tfa_box *boxes, int max);
  /* MQTT: 0 on success (queued). `correlation` is sent as MQTT 5 correlation data when set. */
  int (*publish)(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 const uint8_t *correlation, size_t correlation_len);
  int (*subscribe)(void *ctx, const char *filter, int qos);
  /* settings (NVS / a file): get returns the value length (copied with a NUL) or -1 */
  int (*settings_get)(void *ctx, const char *key, char *out, size_t cap);
  int (*settings_set)(void *ctx, const char *key, const char *value);
  /* model slots 1..2: prepare for `size` bytes (erase), write at an offset, map read-only
   * (4-byte aligned, valid until the slot is prepared again). Slot 0: map only. */
  size_t (*slot_capacity)(void *ctx, int slot);
  int (*slot_begin)(void *ctx, int slot, size_t size);
  int (*slot_write)(void *ctx, int slot, size_t offset, const void *data, size_t len);
  int (*slot_map)(void *ctx, int slot, size_t size, const uint8_t **data);
  /* crypto: SHA-256 (mbedtls on the device). The Ed25519 check is the app's own,
   * tfa_ed25519_verify (tfa/ed25519.h), the same code on every platform. */
  int (*sha256)(void *ctx, const void *data, size_t len, uint8_t out[32]);
  /* system */
  void (*sysinfo)(void *ctx, tfa_sysinfo *out);
  const char *(*ip)(void *ctx);
  /* Restart after delay_ms (the app has already said goodbye); the host reconnects instead. */
  void (*reboot)(void *ctx, uint32_t delay_ms);
  void (*log)(void *ctx, int level, const char *msg); /* 0 error, 1 warn, 2 info, 3 debug */
  /* Application firmware update (all NULL: firmware_update is not offered). The image goes to the
   * app slot that is not running: app_begin prepares it for `size` bytes (0, or -1), app_write
   * writes at an offset; app_finish checks that the `size` bytes written have this SHA-256 and
   * form a bootable image, and makes it the one to boot next ON TRIAL (0, or -1: nothing
   * changes). app_confirm is called once per boot, after the first connection to the broker:
   * the running image works, so the trial ends (without it, a reboot or a failed boot goes back to
   * the previous image: ESP-IDF app rollback on the device, a re-exec of the previous binary on
   * the host). */
  int (*app_begin)(void *ctx, size_t size);
  int (*app_write)(void *ctx, size_t offset, const void *data, size_t len);
  int (*app_finish)(void *ctx, size_t size, const uint8_t sha256[32], const char *version);
  void (*app_confirm)(void *ctx);
} tfa_platform;

typedef struct {
  const char *device_id; /* [A-Za-z0-9][A-Za-z0-9_-]{0,63} */
  const char *prefix;    /* default "tinyfer" */
  const char *firmware;  /* default TFA_FIRMWARE_VERSION */
  size_t builtin_size;   /* bytes in slot 0 (0: no built-in model) */
  const char *builtin_version; /* default: the name inside the blob */
  void *arena;           /* for tfr_classify, 4-byte aligned */
  size_t arena_size;
  uint8_t *scratch;      /* OTA/inline-blob and publish buffer (>= 64 KiB recommended) */
  size_t scratch_size;
  size_t chunk_bytes;    /* frame payload bytes per chunk (the device buffer), default 8192 */
  uint32_t telemetry_interval_ms; /* default 5000 */
  bool has_defaults;     /* use `defaults` instead of TFA_DEFAULT_CONFIG until a config is stored */
  tfa_config defaults;
  bool has_model_key;    /* model_key below is provisioned */
  uint8_t model_key[32]; /* raw Ed25519 public key that model blobs must be signed with */
  bool has_firmware_key;    /* firmware_key below is provisioned (firmware_update needs it) */
  uint8_t firmware_key[32]; /* raw Ed25519 public key that application images must be signed with */
  uint32_t ota_timeout_ms;  /* a chunked transfer that has not completed after this fails (default TFA_OTA_TIMEOUT_MS) */
} tfa_options;

typedef enum { TFA_BOOT = 0, TFA_CONNECTING, TFA_ONLINE, TFA_REBOOTING } tfa_state;

typedef struct {
  int slot;
  size_t size;
  char version[65];
  tfr_model_t model;
} tfa_active_model;

typedef struct {
  bool active;
  bool firmware; /* firmware_update (to the app slot) rather than model_update */
  uint32_t transfer;
  uint16_t chunks, got;
  size_t size;
  int slot;
  uint64_t started_ms;
  char version[65];
  uint8_t sha256[32], signature[64];
  char req_id[65];
  char resp_topic[TFA_TOPIC_MAX];
  uint8_t corr[64];
  size_t corr_len;
  uint8_t seen[TFA_MAX_OTA_CHUNKS / 8];
} tfa_ota;

typedef struct {
  uint32_t emotions, frames, telemetry, responses, commands, rejected, publish_errors, ota_ok, ota_failed, captures, firmware_ok;
} tfa_counters;

typedef struct tfa_app {
  const tfa_platform *p;
  tfa_options o;
  tfa_state state;
  tfa_config cfg;
  char base[TFA_TOPIC_MAX];
  bool has_model;
  tfa_active_model cur;
  tfa_ota ota;
  uint32_t seq, frame_id;
  uint64_t boot_ms, next_capture_ms, next_telemetry_ms, reboot_at_ms;
  bool reboot_pending;
  uint32_t reboot_delay_ms;
  bool app_confirmed; /* platform app_confirm called this boot */
  /* telemetry window */
  uint32_t win_captures, win_faces;
  uint64_t win_start_ms;
  double win_inference_ms; /* sum over the window: telemetry reports the mean per face */
  double last_inference_ms;
  tfa_counters n;
  uint8_t face[TFR_FACE_PIXELS];
  float scores[TFR_NUM_CLASSES];
} tfa_app;

/* Returns 0, or -1 when the options are unusable (bad id/prefix, no arena); a model that does
 * not load is not an error (the device runs, reports model "none" and classifies nothing). */
int tfa_app_init(tfa_app *app, const tfa_platform *p, const tfa_options *o);
/* The last will: topic and payload (retained, QoS 1). */
void tfa_app_will(const tfa_app *app, const char **topic, const char **payload);
void tfa_app_on_connected(tfa_app *app);
void tfa_app_on_disconnected(tfa_app *app);
void tfa_app_on_message(tfa_app *app, const char *topic, const uint8_t *payload, size_t len, const tfa_msg_props *props);
/* Runs what is due; returns ms until the next thing is due (0..1000). */
uint32_t tfa_app_step(tfa_app *app);
/* Graceful goodbye: retained {"state":"offline","reason":...}. */
void tfa_app_shutdown(tfa_app *app, const char *reason);
/* Capture, detect, classify and publish once now (what step() does on its timer); returns the
 * faces published, or -1 when capturing failed. */
int tfa_app_capture_once(tfa_app *app);
/* Active model version ("none" without a model). */
const char *tfa_app_model_version(const tfa_app *app);
/* Loads the model in `slot` (size bytes): parse, arena check, self-test; 0 or a negative
 * tfr error / -100 (self-test failed) / -101 (slot unreadable). Does not switch. */
int tfa_model_check(tfa_app *app, int slot, size_t size, tfr_model_t *out);

#ifdef __cplusplus
}
#endif
#endif
