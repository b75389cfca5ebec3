/*
 * tfa_platform for the XIAO ESP32S3 Sense: OV2640 camera (grayscale QVGA; JPEG only for published
 * frames), the app's face detector (firmware/app/src/detect.c), NVS settings, model
 * slots in the model_a/model_b partitions plus the compiled-in model, SHA-256 from mbedtls (the
 * Ed25519 check is the app's own, firmware/app/src/ed25519.c), esp-mqtt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "driver/temperature_sensor.h"
#include "esp_camera.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/task.h"
#include "img_converters.h"
#include "mbedtls/sha256.h"
#include "model_default.h"

#include "esp_glue.h"
#include "tfa/detect.h"

static const char *TAG = "platform";

/* ------------------------------------------------------------------ camera */

typedef struct {
  camera_fb_t *fb;
  uint8_t *jpeg; /* frame2jpg output, malloc'd */
} frame_handle;

static frame_handle s_frame;

esp_err_t camera_start(void) {
  camera_config_t c = {
      .pin_pwdn = CAM_PIN_PWDN,
      .pin_reset = CAM_PIN_RESET,
      .pin_xclk = CAM_PIN_XCLK,
      .pin_sccb_sda = CAM_PIN_SIOD,
      .pin_sccb_scl = CAM_PIN_SIOC,
      .pin_d7 = CAM_PIN_D7,
      .pin_d6 = CAM_PIN_D6,
      .pin_d5 = CAM_PIN_D5,
      .pin_d4 = CAM_PIN_D4,
      .pin_d3 = CAM_PIN_D3,
      .pin_d2 = CAM_PIN_D2,
      .pin_d1 = CAM_PIN_D1,
      .pin_d0 = CAM_PIN_D0,
      .pin_vsync = CAM_PIN_VSYNC,
      .pin_href = CAM_PIN_HREF,
      .pin_pclk = CAM_PIN_PCLK,
      .xclk_freq_hz = 20000000,
      .ledc_timer = LEDC_TIMER_0,
      .ledc_channel = LEDC_CHANNEL_0,
      .pixel_format = PIXFORMAT_GRAYSCALE, /* what the network sees; JPEG is made on demand */
      .frame_size = FRAMESIZE_QVGA,        /* 320x240 */
      .jpeg_quality = 12,
      .fb_count = 2,
      .fb_location = CAMERA_FB_IN_PSRAM,
      .grab_mode = CAMERA_GRAB_LATEST,
  };
  return esp_camera_init(&c);
}

static int p_capture(void *ctx, tfa_frame *f, bool want_jpeg, int quality) {
  (void)ctx;
  memset(f, 0, sizeof *f);
  s_frame.fb = esp_camera_fb_get();
  if (!s_frame.fb) return -1;
  f->gray = s_frame.fb->buf;
  f->width = (uint16_t)s_frame.fb->width;
  f->height = (uint16_t)s_frame.fb->height;
  f->stride = s_frame.fb->width;
  f->handle = &s_frame;
  if (want_jpeg) {
    size_t n = 0;
    s_frame.jpeg = NULL;
    if (frame2jpg(s_frame.fb, (uint8_t)quality, &s_frame.jpeg, &n) && s_frame.jpeg) {
      f->jpeg = s_frame.jpeg;
      f->jpeg_len = n;
    }
  }
  return 0;
}

static void p_release(void *ctx, tfa_frame *f) {
  (void)ctx;
  (void)f;
  if (s_frame.jpeg) free(s_frame.jpeg);
  if (s_frame.fb) esp_camera_fb_return(s_frame.fb);
  memset(&s_frame, 0, sizeof s_frame);
}

/* The app's face detector (tfa/detect.h), the same code the host build runs. Its ~38 KiB of
 * working memory is taken once, from internal RAM when there is room (else PSRAM). */
static int p_detect(void *ctx, const tfa_frame *f, tfa_box *boxes, int max) {
  static tfa_detector *det;
  (void)ctx;
  if (!det) det = heap_caps_malloc(sizeof *det, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
  if (!det) det = heap_caps_malloc(sizeof *det, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
  if (!det) return 0;
  return tfa_detect_frame(det, f->gray, f->width, f->height, f->stride, boxes, max);
}

/* ------------------------------------------------------------------ clock */

static uint64_t p_now_us(void *ctx) {
  (void)ctx;
  return (uint64_t)esp_timer_get_time();
}

static uint64_t p_epoch_ms(void *ctx) {
  struct timeval tv;
  (void)ctx;
  gettimeofday(&tv, NULL);
  if (tv.tv_sec < 1700000000) return 0; /* no SNTP time yet */
  return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* ------------------------------------------------------------------ MQTT */

static int p_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain, const uint8_t *corr, size_t corr_len) {
  (void)ctx;
  return mqtt_publish(topic, payload, len, qos, retain, corr, corr_len);
}

static int p_subscribe(void *ctx, const char *filter, int qos) {
  (void)ctx;
  return mqtt_subscribe(filter, qos);
}

/* ------------------------------------------------------------------ settings */

static int p_settings_get(void *ctx, const char *key, char *out, size_t cap) {
  (void)ctx;
  return settings_get(key, out, cap);
}

static int p_settings_set(void *ctx, const char *key, const char *value) {
  (void)ctx;
  return settings_set(key, value);
}

/* ------------------------------------------------------------------ model slots */

static const char *const kSlotLabel[TFA_NUM_SLOTS] = {NULL, "model_a", "model_b"};

/* The network reads every weight once per inference: a model runs from internal SRAM, not through
 * the flash cache. slot_map copies the slot (the compiled-in model or a partition) into an
 * internal buffer. The app holds at most two slots at once, the active model and the candidate
 * being checked, and the active one is always the slot mapped before the current one, so a
 * mapping frees the buffer of any third slot. Without internal room the flash mapping is used. */
typedef struct {
  uint8_t *ram; /* internal copy, or NULL */
  size_t size;
  esp_partition_mmap_handle_t map; /* the fallback flash mapping */
  bool mapped;
} slot_buf;
static slot_buf s_slot[TFA_NUM_SLOTS];
static int s_recent[2] = {-1, -1}; /* [0] the slot mapped last, [1] the one before */

static const esp_partition_t *slot_partition(int slot) {
  if (slot < 1 || slot >= TFA_NUM_SLOTS) return NULL;
  return esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, kSlotLabel[slot]);
}

static void slot_release(int slot) {
  slot_buf *b = &s_slot[slot];
  heap_caps_free(b->ram);
  if (b->mapped) esp_partition_munmap(b->map);
  memset(b, 0, sizeof *b);
}

static size_t p_slot_capacity(void *ctx, int slot) {
  const esp_partition_t *p = slot_partition(slot);
  (void)ctx;
  return p ? p->size : 0;
}

static int p_slot_begin(void *ctx, int slot, size_t size) {
  const esp_partition_t *p = slot_partition(slot);
  (void)ctx;
  if (!p || size > p->size) return -1;
  slot_release(slot);
  return esp_partition_erase_range(p, 0, (size + 4095u) & ~(size_t)4095u) == ESP_OK ? 0 : -1;
}

static int p_slot_write(void *ctx, int slot, size_t offset, const void *data, size_t len) {
  const esp_partition_t *p = slot_partition(slot);
  (void)ctx;
  if (!p || offset > p->size || len > p->size - offset) return -1;
  return esp_partition_write(p, offset, data, len) == ESP_OK ? 0 : -1;
}

static int p_slot_map(void *ctx, int slot, size_t size, const uint8_t **data) {
  const esp_partition_t *p = NULL;
  slot_buf *b;
  int i;
  (void)ctx;
  if (slot < 0 || slot >= TFA_NUM_SLOTS || size == 0) return -1;
  if (slot == TFA_SLOT_BUILTIN ? size > tinyfer_model_len : (p = slot_partition(slot)) == NULL || size > p->size) return -1;
  if (s_recent[0] != slot) {
    s_recent[1] = s_recent[0];
    s_recent[0] = slot;
  }
  for (i = 0; i < TFA_NUM_SLOTS; i++)
    if (i != s_recent[0] && i != s_recent[1]) slot_release(i);
  slot_release(slot); /* a fresh copy sees what was just written */
  b = &s_slot[slot];
  b->ram = heap_caps_aligned_alloc(16, size, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
  if (b->ram) {
    if (slot == TFA_SLOT_BUILTIN) memcpy(b->ram, tinyfer_model, size);
    else if (esp_partition_read(p, 0, b->ram, size) != ESP_OK) {
      slot_release(slot);
      return -1;
    }
    b->size = size;
    *data = b->ram;
    return 0;
  }
  ESP_LOGW(TAG, "no %u bytes of internal RAM for model slot %d: it runs from flash", (unsigned)size, slot);
  if (slot == TFA_SLOT_BUILTIN) {
    *data = tinyfer_model; /* in flash, 16-byte aligned */
    return 0;
  }
  {
    const void *ptr = NULL;
    if (esp_partition_mmap(p, 0, size, ESP_PARTITION_MMAP_DATA, &ptr, &b->map) != ESP_OK) return -1;
    b->mapped = true;
    *data = ptr;
  }
  return 0;
}

/* ------------------------------------------------------------------ crypto */

static int p_sha256(void *ctx, const void *data, size_t len, uint8_t out[32]) {
  (void)ctx;
  return mbedtls_sha256(data, len, out, 0) == 0 ? 0 : -1; /* 0: SHA-256, not SHA-224 */
}

/* ------------------------------------------------------------------ system */

static temperature_sensor_handle_t s_tsens;
static char s_ip[16];

void net_set_ip(const char *ip) { snprintf(s_ip, sizeof s_ip, "%s", ip); }

static void p_sysinfo(void *ctx, tfa_sysinfo *si) {
  wifi_ap_record_t ap;
  float t = 0;
  (void)ctx;
  si->heap_free = (uint32_t)heap_caps_get_free_size(MALLOC_CAP_INTERNAL);
  si->psram_free = (uint32_t)heap_caps_get_free_size(MALLOC_CAP_SPIRAM);
  si->rssi = esp_wifi_sta_get_ap_info(&ap) == ESP_OK ? ap.rssi : -127;
  if (!s_tsens) {
    temperature_sensor_config_t c = TEMPERATURE_SENSOR_CONFIG_DEFAULT(-10, 80);
    if (temperature_sensor_install(&c, &s_tsens) == ESP_OK) temperature_sensor_enable(s_tsens);
  }
  if (s_tsens && temperature_sensor_get_celsius(s_tsens, &t) == ESP_OK) si->temp_c = t;
}

static const char *p_ip(void *ctx) {
  (void)ctx;
  return s_ip[0] ? s_ip : NULL;
}

static void p_reboot(void *ctx, uint32_t delay_ms) {
  (void)ctx;
  vTaskDelay(pdMS_TO_TICKS(200)); /* let the offline status and the response go out */
  mqtt_disconnect();              /* a clean DISCONNECT: no last will */
  vTaskDelay(pdMS_TO_TICKS(delay_ms));
  esp_restart();
}

static void p_log(void *ctx, int level, const char *msg) {
  (void)ctx;
  if (level <= 0) ESP_LOGE("app", "%s", msg);
  else if (level == 1) ESP_LOGW("app", "%s", msg);
  else if (level == 2) ESP_LOGI("app", "%s", msg);
  else ESP_LOGD("app", "%s", msg);
}

size_t platform_builtin_size(void) { return tinyfer_model_len; }

/* ------------------------------------------------------------------ application firmware (OTA app slots) */

static esp_ota_handle_t s_ota;
static const esp_partition_t *s_ota_part;
static size_t s_ota_size;
static esp_timer_handle_t s_trial_timer;

bool platform_can_update_app(void) { return esp_ota_get_next_update_partition(NULL) != NULL; }

static int p_app_begin(void *ctx, size_t size) {
  (void)ctx;
  if (s_ota) esp_ota_abort(s_ota);
  s_ota = 0;
  s_ota_part = esp_ota_get_next_update_partition(NULL);
  if (!s_ota_part || size == 0 || size > s_ota_part->size) return -1;
  if (esp_ota_begin(s_ota_part, size, &s_ota) != ESP_OK) { /* erases `size` bytes of the slot */
    s_ota = 0;
    return -1;
  }
  s_ota_size = size;
  return 0;
}

static int p_app_write(void *ctx, size_t off, const void *data, size_t len) {
  (void)ctx;
  if (!s_ota || off > s_ota_size || len > s_ota_size - off) return -1;
  return esp_ota_write_with_offset(s_ota, data, len, (uint32_t)off) == ESP_OK ? 0 : -1;
}

static int p_app_finish(void *ctx, size_t size, const uint8_t sha256[32], const char *version) {
  static uint8_t buf[4096];
  uint8_t got[32];
  mbedtls_sha256_context c;
  size_t off;
  int ok = 1;
  (void)ctx;
  if (!s_ota || size != s_ota_size) return -1;
  if (esp_ota_end(s_ota) != ESP_OK) { /* esp_image_verify: a valid app image for this chip */
    s_ota = 0;
    return -1;
  }
  s_ota = 0;
  /* The bytes in the slot are the ones the signature covers. */
  mbedtls_sha256_init(&c);
  mbedtls_sha256_starts(&c, 0);
  for (off = 0; ok && off < size; off += sizeof buf) {
    size_t n = size - off < sizeof buf ? size - off : sizeof buf;
    ok = esp_partition_read(s_ota_part, off, buf, n) == ESP_OK;
    if (ok) mbedtls_sha256_update(&c, buf, n);
  }
  mbedtls_sha256_finish(&c, got);
  mbedtls_sha256_free(&c);
  if (!ok || memcmp(got, sha256, 32) != 0) return -1;
  if (esp_ota_set_boot_partition(s_ota_part) != ESP_OK) return -1;
  ESP_LOGI(TAG, "firmware %s in %s: boots next, on trial", version, s_ota_part->label);
  return 0;
}

static void p_app_confirm(void *ctx) {
  esp_ota_img_states_t st;
  (void)ctx;
  if (esp_ota_get_state_partition(esp_ota_get_running_partition(), &st) == ESP_OK && st == ESP_OTA_IMG_PENDING_VERIFY) {
    esp_ota_mark_app_valid_cancel_rollback();
    if (s_trial_timer) esp_timer_stop(s_trial_timer);
    ESP_LOGI(TAG, "this firmware reached the broker: confirmed, no rollback");
  }
}

static void trial_expired(void *arg) {
  (void)arg;
  ESP_LOGE(TAG, "the new firmware did not reach the broker in time: rolling back");
  esp_ota_mark_app_invalid_rollback_and_reboot();
}

void platform_app_trial_start(uint32_t ms) {
  esp_ota_img_states_t st;
  const esp_timer_create_args_t a = {.callback = trial_expired, .name = "app_trial"};
  if (esp_ota_get_state_partition(esp_ota_get_running_partition(), &st) != ESP_OK || st != ESP_OTA_IMG_PENDING_VERIFY) return;
  if (esp_timer_create(&a, &s_trial_timer) == ESP_OK) esp_timer_start_once(s_trial_timer, (uint64_t)ms * 1000u);
  ESP_LOGW(TAG, "new firmware on trial: it must reach the broker within %u s", (unsigned)(ms / 1000));
}

void platform_fill(tfa_platform *p) {
  memset(p, 0, sizeof *p);
  p->now_us = p_now_us;
  p->epoch_ms = p_epoch_ms;
  p->capture = p_capture;
  p->release = p_release;
  p->detect = p_detect;
  p->publish = p_publish;
  p->subscribe = p_subscribe;
  p->settings_get = p_settings_get;
  p->settings_set = p_settings_set;
  p->slot_capacity = p_slot_capacity;
  p->slot_begin = p_slot_begin;
  p->slot_write = p_slot_write;
  p->slot_map = p_slot_map;
  p->sha256 = p_sha256;
  p->sysinfo = p_sysinfo;
  p->ip = p_ip;
  p->reboot = p_reboot;
  p->log = p_log;
  if (platform_can_update_app()) {
    p->app_begin = p_app_begin;
    p->app_write = p_app_write;
    p->app_finish = p_app_finish;
  }
  p->app_confirm = p_app_confirm;
  ESP_LOGI(TAG, "built-in model: %u bytes", (unsigned)tinyfer_model_len);
}
