/*
 * TinyFER on the XIAO ESP32S3 Sense: settings and provisioning, Wi-Fi, SNTP, camera, MQTT, then
 * the app task (firmware/app), which owns everything protocol- and model-related.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_camera.h"
#include "esp_event.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#include "esp_glue.h"
#include "tfa/util.h"

static const char *TAG = "tinyfer";

#define ARENA_BYTES (96u * 1024u)   /* tinyfer-b1 (int8 stem) plans 85,012 B, 95,500 with TINYFER_PIE; a float-stem model 83,728 */
#define SCRATCH_BYTES (64u * 1024u) /* frame chunks */

static tfa_app s_app;
static tfa_platform s_platform;
static QueueHandle_t s_queue;
static char s_device_id[65], s_prefix[64], s_broker[128], s_client_id[96], s_mqtt_user[65], s_mqtt_pass[129];
static char *s_ca_pem; /* the fleet CA as PEM, from NVS (ca_cert: its base64 body) */
static bool s_mqtt_started;

static void on_wifi(void *arg, esp_event_base_t base, int32_t id, void *data) {
  (void)arg;
  if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
    esp_wifi_connect();
  } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
    ESP_LOGW(TAG, "Wi-Fi lost, reconnecting");
    esp_wifi_connect();
  } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
    const ip_event_got_ip_t *e = data;
    char ip[16];
    snprintf(ip, sizeof ip, IPSTR, IP2STR(&e->ip_info.ip));
    net_set_ip(ip);
    ESP_LOGI(TAG, "got IP %s", ip);
    if (!s_mqtt_started) {
      const char *wt, *wp;
      tfa_app_will(&s_app, &wt, &wp);
      s_mqtt_started = mqtt_start(s_broker, s_client_id, s_mqtt_user, s_mqtt_pass[0] ? s_mqtt_pass : NULL, s_ca_pem, wt, wp, s_queue) == ESP_OK;
    }
  }
}

static void wifi_start(void) {
  wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
  wifi_config_t wc = {0};
  char ntp[64];
  settings_get("wifi_ssid", (char *)wc.sta.ssid, sizeof wc.sta.ssid);
  settings_get("wifi_pass", (char *)wc.sta.password, sizeof wc.sta.password);
  ESP_ERROR_CHECK(esp_netif_init());
  ESP_ERROR_CHECK(esp_event_loop_create_default());
  esp_netif_create_default_wifi_sta();
  ESP_ERROR_CHECK(esp_wifi_init(&init));
  ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi, NULL));
  ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi, NULL));
  ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
  ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &wc));
  ESP_ERROR_CHECK(esp_wifi_set_ps(WIFI_PS_MIN_MODEM));
  ESP_ERROR_CHECK(esp_wifi_start());
  if (settings_get("ntp", ntp, sizeof ntp) <= 0) strcpy(ntp, "pool.ntp.org");
  {
    static char ntp_server[64];
    esp_sntp_config_t sc = ESP_NETIF_SNTP_DEFAULT_CONFIG(ntp_server);
    strcpy(ntp_server, ntp);
    esp_netif_sntp_init(&sc); /* emotion ts is the uptime until the time is set */
  }
}

/* The CA from NVS: `ca_cert` holds the base64 body of the PEM (no header, no line breaks, so that
 * it fits one console line); rebuilt here as PEM with 64-char lines. NULL when unset. */
static char *load_ca_pem(void) {
  static const char kBegin[] = "-----BEGIN CERTIFICATE-----\n", kEnd[] = "-----END CERTIFICATE-----\n";
  int n = settings_len("ca_cert"), i, o = 0;
  char *b64, *pem;
  if (n <= 0) return NULL;
  b64 = malloc((size_t)n + 1);
  pem = malloc(sizeof kBegin + (size_t)n + (size_t)n / 64 + 2 + sizeof kEnd);
  if (!b64 || !pem || settings_get("ca_cert", b64, (size_t)n + 1) != n) {
    free(b64);
    free(pem);
    return NULL;
  }
  o += sprintf(pem, "%s", kBegin);
  for (i = 0; i < n; i += 64) o += sprintf(pem + o, "%.*s\n", n - i < 64 ? n - i : 64, b64 + i);
  sprintf(pem + o, "%s", kEnd);
  free(b64);
  return pem;
}

static void app_task(void *arg) {
  (void)arg;
  for (;;) {
    app_event e;
    uint32_t wait = tfa_app_step(&s_app);
    if (xQueueReceive(s_queue, &e, pdMS_TO_TICKS(wait ? wait : 1)) != pdTRUE) continue;
    switch (e.type) {
      case EV_CONNECTED:
        /* This firmware reached the broker: if it was just installed over the air (rollback
         * enabled, partitions.csv), keep it; until then the bootloader would roll it back. */
        esp_ota_mark_app_valid_cancel_rollback();
        tfa_app_on_connected(&s_app);
        break;
      case EV_DISCONNECTED: tfa_app_on_disconnected(&s_app); break;
      case EV_MESSAGE: {
        tfa_msg_props props = {e.resp_topic, e.corr, e.corr_len};
        tfa_app_on_message(&s_app, e.topic, e.payload, e.len, &props);
        break;
      }
    }
    app_event_free(&e);
  }
}

void app_main(void) {
  tfa_options o;
  uint8_t mac[6];
  char hex[80];
  ESP_ERROR_CHECK(settings_init());
  console_start();
  if (!settings_provisioned()) {
    ESP_LOGW(TAG, "not provisioned: `set wifi_ssid ...`, `set wifi_pass ...`, `set broker mqtt://host:1883`, then `reboot`");
    return; /* the console task keeps running */
  }
  memset(&o, 0, sizeof o);
  esp_read_mac(mac, ESP_MAC_WIFI_STA);
  if (settings_get("device_id", s_device_id, sizeof s_device_id) <= 0) snprintf(s_device_id, sizeof s_device_id, "xiao-%02x%02x%02x", mac[3], mac[4], mac[5]);
  if (settings_get("prefix", s_prefix, sizeof s_prefix) <= 0) strcpy(s_prefix, "tinyfer");
  settings_get("broker", s_broker, sizeof s_broker);
  snprintf(s_client_id, sizeof s_client_id, "tinyfer-dev-%s", s_device_id);
  /* Per-device broker identity (docs/security.md): username = the device id unless mqtt_user says
   * otherwise, the password and the CA from NVS. None of them is logged. */
  if (settings_get("mqtt_user", s_mqtt_user, sizeof s_mqtt_user) <= 0) snprintf(s_mqtt_user, sizeof s_mqtt_user, "%s", s_device_id);
  if (settings_get("mqtt_pass", s_mqtt_pass, sizeof s_mqtt_pass) <= 0) s_mqtt_pass[0] = '\0';
  s_ca_pem = load_ca_pem();
  if (strncmp(s_broker, "mqtts://", 8) != 0) ESP_LOGW(TAG, "broker is not mqtts://: use TLS and credentials (docs/security.md)");
  o.device_id = s_device_id;
  o.prefix = s_prefix;
  o.builtin_size = platform_builtin_size();
  o.arena = heap_caps_aligned_alloc(16, ARENA_BYTES, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
  if (!o.arena) o.arena = heap_caps_aligned_alloc(16, ARENA_BYTES, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
  o.arena_size = ARENA_BYTES;
  o.scratch = heap_caps_malloc(SCRATCH_BYTES, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
  o.scratch_size = SCRATCH_BYTES;
  o.chunk_bytes = 16384; /* the protocol's largest: a frame up to 16 KiB is one message (protocol §7); the esp-mqtt out buffer holds it */
  o.telemetry_interval_ms = 10000;
  if (settings_get("model_pk", hex, sizeof hex) == 64 && tfa_unhex(hex, 64, o.model_key, 32)) o.has_model_key = true;
  else ESP_LOGW(TAG, "no model_pk provisioned: model_update is refused");
  if (settings_get("fw_pk", hex, sizeof hex) == 64 && tfa_unhex(hex, 64, o.firmware_key, 32) && platform_can_update_app()) o.has_firmware_key = true;
  else ESP_LOGW(TAG, "no fw_pk provisioned (or no second OTA app partition): firmware_update is refused");
  platform_fill(&s_platform);
  if (tfa_app_init(&s_app, &s_platform, &o) != 0) {
    ESP_LOGE(TAG, "bad device_id/prefix or out of memory: fix with the console and reboot");
    return;
  }
  /* A new image on trial: it confirms itself once it reached the broker (tfa_app_on_connected ->
   * app_confirm); if it has not within 2 minutes, roll back (a crash or reboot rolls back anyway). */
  platform_app_trial_start(120000);
  if (camera_start() != ESP_OK) ESP_LOGE(TAG, "camera init failed: the device runs without frames");
  s_queue = xQueueCreate(16, sizeof(app_event));
  xTaskCreatePinnedToCore(app_task, "tinyfer", 16384, NULL, 5, NULL, 1);
  wifi_start();
  ESP_LOGI(TAG, "%s/%s, model %s, broker %s", s_prefix, s_device_id, tfa_app_model_version(&s_app), s_broker);
}
