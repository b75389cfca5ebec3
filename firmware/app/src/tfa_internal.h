/* Shared between the app's source files; not part of the platform API. */
#ifndef TFA_INTERNAL_H
#define TFA_INTERNAL_H

#include "tfa/app.h"
#include "tfa/json.h"

#if defined(__GNUC__) || defined(__clang__)
#define TFA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TFA_PRINTF(a, b)
#endif

/* Where and how a command response goes: the MQTT 5 response topic + correlation data, or
 * <base>/resp with the request id (MQTT 3.1.1). */
typedef struct {
  char id[65];
  char cmd[33];
  char topic[TFA_TOPIC_MAX];
  uint8_t corr[64];
  size_t corr_len;
} tfa_reply;

void tfa_log(tfa_app *app, int level, const char *fmt, ...) TFA_PRINTF(3, 4);
uint64_t tfa_now_ms(const tfa_app *app);
int tfa_topic_base(tfa_app *app);
int tfa_topic(const tfa_app *app, const char *suffix, char *out, size_t cap);
int tfa_publish(tfa_app *app, const char *suffix, const void *payload, size_t len, int qos, bool retain);
int tfa_publish_frame(tfa_app *app, uint32_t frame_id, const uint8_t *jpeg, size_t len);
int tfa_app_publish_birth(tfa_app *app);
void tfa_app_set_config(tfa_app *app, const tfa_config *c);
int tfa_classify_face(tfa_app *app, const uint8_t face[TFR_FACE_PIXELS], float canon[TFR_NUM_CLASSES], double *ms);

/* A response: ok with `result_json` (a JSON object text, NULL = {}), or an error. */
int tfa_respond(tfa_app *app, const tfa_reply *r, const char *result_json, const char *err_code, const char *err_msg);

/* model_update and firmware_update (ota.c): params is the JSON object of the request. */
void tfa_ota_command(tfa_app *app, const tfa_reply *r, const tfa_json *doc, int params, bool firmware);
void tfa_ota_chunk(tfa_app *app, const uint8_t *payload, size_t len);
void tfa_ota_poll(tfa_app *app, uint64_t now_ms);

#endif
