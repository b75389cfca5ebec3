/* The XIAO ESP32S3 Sense platform of the TinyFER app: declarations shared by the files of main/. */
#ifndef TINYFER_ESP_GLUE_H
#define TINYFER_ESP_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "tfa/app.h"

/* XIAO ESP32S3 Sense camera connector (OV2640), from Seeed's pin table. */
#define CAM_PIN_PWDN (-1)
#define CAM_PIN_RESET (-1)
#define CAM_PIN_XCLK 10
#define CAM_PIN_SIOD 40
#define CAM_PIN_SIOC 39
#define CAM_PIN_D7 48
#define CAM_PIN_D6 11
#define CAM_PIN_D5 12
#define CAM_PIN_D4 14
#define CAM_PIN_D3 16
#define CAM_PIN_D2 18
#define CAM_PIN_D1 17
#define CAM_PIN_D0 15
#define CAM_PIN_VSYNC 38
#define CAM_PIN_HREF 47
#define CAM_PIN_PCLK 13

#define NVS_NAMESPACE "tinyfer"

/* provision.c: NVS settings and the serial console */
esp_err_t settings_init(void);
int settings_get(const char *key, char *out, size_t cap);
int settings_set(const char *key, const char *value);
int settings_len(const char *key); /* stored length of a string setting, -1 when unset */
bool settings_provisioned(void); /* Wi-Fi SSID and broker set */
void console_start(void);        /* `set`, `show`, `erase`, `reboot` on the USB console */

/* mqtt_esp.c: esp-mqtt, events queued to the app task */
typedef enum { EV_CONNECTED, EV_DISCONNECTED, EV_MESSAGE } ev_type;
typedef struct {
  ev_type type;
  char *topic;         /* heap, NUL-terminated */
  uint8_t *payload;    /* heap (PSRAM) */
  size_t len;
  char *resp_topic;    /* heap or NULL */
  uint8_t *corr;       /* heap or NULL */
  size_t corr_len;
} app_event;
/* username/password: NULL for none; ca_pem: the CA (PEM, NUL-terminated) the broker's certificate
 * must chain to, required for mqtts:// (NULL otherwise). */
esp_err_t mqtt_start(const char *uri, const char *client_id, const char *username, const char *password, const char *ca_pem,
                     const char *will_topic, const char *will_payload, QueueHandle_t q);
int mqtt_publish(const char *topic, const void *data, size_t len, int qos, bool retain, const uint8_t *corr, size_t corr_len);
int mqtt_subscribe(const char *filter, int qos);
void mqtt_disconnect(void);
void app_event_free(app_event *e);

/* platform_esp.c */
esp_err_t camera_start(void);
void platform_fill(tfa_platform *p);
void net_set_ip(const char *ip);
size_t platform_builtin_size(void); /* bytes of the compiled-in model, 0 without one */
bool platform_can_update_app(void); /* two OTA app partitions: firmware_update is possible */
void platform_app_trial_start(uint32_t ms); /* a new image on trial: roll back unless confirmed within ms */

#endif
