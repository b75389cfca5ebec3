/*
 * esp-mqtt glue: MQTT 5 with the last will, events copied into a queue that the app task drains
 * (the app itself is single-threaded). Messages larger than the client buffer arrive in pieces;
 * they are reassembled here in PSRAM, up to the app's command size limit.
 */
#include <stdlib.h>
#include <string.h>

#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_glue.h"
#include "mqtt_client.h" /* with CONFIG_MQTT_PROTOCOL_5 it declares the MQTT 5 API too */

static const char *TAG = "mqtt";
static esp_mqtt_client_handle_t s_client;
static QueueHandle_t s_queue;
static app_event s_partial; /* a message being reassembled */
static size_t s_partial_total;

void app_event_free(app_event *e) {
  free(e->topic);
  heap_caps_free(e->payload);
  free(e->resp_topic);
  free(e->corr);
  memset(e, 0, sizeof *e);
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static void post(app_event *e) {
  if (xQueueSend(s_queue, e, pdMS_TO_TICKS(100)) != pdTRUE) {
    ESP_LOGW(TAG, "app queue full: message dropped");
    app_event_free(e);
  }
}

static void on_data(esp_mqtt_event_handle_t ev) {
  if (ev->current_data_offset == 0) {
    app_event_free(&s_partial);
    s_partial_total = (size_t)ev->total_data_len;
    if (s_partial_total > TFA_MAX_CMD_BYTES) {
      ESP_LOGW(TAG, "%.*s: %u bytes > %u, dropped", ev->topic_len, ev->topic, (unsigned)s_partial_total, (unsigned)TFA_MAX_CMD_BYTES);
      s_partial_total = 0;
      return;
    }
    s_partial.type = EV_MESSAGE;
    s_partial.topic = dupn(ev->topic, (size_t)ev->topic_len);
    s_partial.payload = heap_caps_malloc(s_partial_total ? s_partial_total : 1, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    if (ev->property && ev->property->response_topic && ev->property->response_topic_len > 0)
      s_partial.resp_topic = dupn(ev->property->response_topic, (size_t)ev->property->response_topic_len);
    if (ev->property && ev->property->correlation_data && ev->property->correlation_data_len > 0) {
      s_partial.corr = malloc(ev->property->correlation_data_len);
      if (s_partial.corr) {
        memcpy(s_partial.corr, ev->property->correlation_data, ev->property->correlation_data_len);
        s_partial.corr_len = ev->property->correlation_data_len;
      }
    }
    if (!s_partial.topic || !s_partial.payload) {
      ESP_LOGE(TAG, "out of memory for a %u-byte message", (unsigned)s_partial_total);
      app_event_free(&s_partial);
      s_partial_total = 0;
      return;
    }
  }
  if (!s_partial.payload || (size_t)ev->current_data_offset + (size_t)ev->data_len > s_partial_total) return;
  memcpy(s_partial.payload + ev->current_data_offset, ev->data, (size_t)ev->data_len);
  s_partial.len = (size_t)ev->current_data_offset + (size_t)ev->data_len;
  if (s_partial.len == s_partial_total) {
    post(&s_partial); /* the queue owns the buffers now */
    memset(&s_partial, 0, sizeof s_partial);
    s_partial_total = 0;
  }
}

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
  esp_mqtt_event_handle_t ev = data;
  app_event e = {0};
  (void)arg;
  (void)base;
  switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
      e.type = EV_CONNECTED;
      post(&e);
      break;
    case MQTT_EVENT_DISCONNECTED:
      e.type = EV_DISCONNECTED;
      post(&e);
      break;
    case MQTT_EVENT_DATA:
      on_data(ev);
      break;
    case MQTT_EVENT_ERROR:
      ESP_LOGW(TAG, "mqtt error (transport %d)", ev->error_handle ? ev->error_handle->error_type : -1);
      break;
    default:
      break;
  }
}

esp_err_t mqtt_start(const char *uri, const char *client_id, const char *username, const char *password, const char *ca_pem,
                     const char *will_topic, const char *will_payload, QueueHandle_t q) {
  esp_mqtt_client_config_t cfg = {
      .broker.address.uri = uri,
      /* mqtts://: the broker's certificate is checked against this CA, host name included */
      .broker.verification.certificate = ca_pem,
      .credentials.client_id = client_id,
      .credentials.username = username,
      .credentials.authentication.password = password,
      .session =
          {
              .protocol_ver = MQTT_PROTOCOL_V_5,
              .keepalive = 15,
              .disable_clean_session = false,
              .last_will = {.topic = will_topic, .msg = will_payload, .msg_len = (int)strlen(will_payload), .qos = 1, .retain = 1},
          },
      .buffer = {.size = 16 * 1024 + 64, .out_size = 16 * 1024 + 512},
      .network = {.reconnect_timeout_ms = 2000},
  };
  bool tls = strncmp(uri, "mqtts://", 8) == 0;
  if (tls && !ca_pem) {
    ESP_LOGE(TAG, "mqtts:// needs the broker's CA: `set ca_cert ...` on the console");
    return ESP_ERR_INVALID_ARG;
  }
  if (!tls && password) {
    ESP_LOGE(TAG, "a password is set but the broker is not mqtts://: credentials are never sent in clear");
    return ESP_ERR_INVALID_ARG;
  }
  s_queue = q;
  s_client = esp_mqtt_client_init(&cfg);
  if (!s_client) return ESP_FAIL;
  esp_mqtt_client_register_event(s_client, ESP_EVENT_ANY_ID, on_event, NULL);
  return esp_mqtt_client_start(s_client);
}

int mqtt_publish(const char *topic, const void *data, size_t len, int qos, bool retain, const uint8_t *corr, size_t corr_len) {
  if (!s_client) return -1;
  if (corr && corr_len) {
    esp_mqtt5_publish_property_config_t prop = {.correlation_data = (const char *)corr, .correlation_data_len = (uint16_t)corr_len};
    esp_mqtt5_client_set_publish_property(s_client, &prop);
  }
  return esp_mqtt_client_publish(s_client, topic, data, (int)len, qos, retain ? 1 : 0) < 0 ? -1 : 0;
}

int mqtt_subscribe(const char *filter, int qos) {
  return s_client && esp_mqtt_client_subscribe(s_client, filter, qos) >= 0 ? 0 : -1;
}

void mqtt_disconnect(void) {
  if (s_client) esp_mqtt_client_disconnect(s_client);
}
