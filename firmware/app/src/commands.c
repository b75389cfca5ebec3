/* Incoming messages: commands (request/response), the retained config, OTA chunks. */
#include <stdio.h>
#include <string.h>

#include "tfa/app.h"
#include "tfa/json.h"
#include "tfa_internal.h"

#define MAX_TOKENS 64

int tfa_respond(tfa_app *app, const tfa_reply *r, const char *result_json, const char *err_code, const char *err_msg) {
  char buf[TFA_RESP_BYTES];
  tfa_jw w;
  int rc;
  uint64_t e = app->p->epoch_ms ? app->p->epoch_ms(app->p->ctx) : 0;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "id");
  tfa_jw_str(&w, r->id[0] ? r->id : "unknown");
  tfa_jw_key(&w, "cmd");
  tfa_jw_str(&w, r->cmd);
  tfa_jw_key(&w, "ok");
  tfa_jw_bool(&w, err_code == NULL);
  if (err_code) {
    size_t n = strlen(err_msg ? err_msg : "");
    tfa_jw_key(&w, "error");
    tfa_jw_obj_begin(&w);
    tfa_jw_key(&w, "code");
    tfa_jw_str(&w, err_code);
    tfa_jw_key(&w, "message");
    tfa_jw_strn(&w, err_msg ? err_msg : "", n > 500 ? 500 : n);
    tfa_jw_obj_end(&w);
  } else {
    tfa_jw_key(&w, "result");
    if (result_json) tfa_jw_raw(&w, result_json, strlen(result_json));
    else tfa_jw_raw(&w, "{}", 2);
  }
  if (e) {
    tfa_jw_key(&w, "ts");
    tfa_jw_uint(&w, e);
  }
  tfa_jw_obj_end(&w);
  if (tfa_jw_finish(&w) < 0) return -1;
  rc = app->p->publish(app->p->ctx, r->topic, buf, w.len, 1, false, r->corr_len ? r->corr : NULL, r->corr_len);
  if (rc == 0) app->n.responses++;
  else app->n.publish_errors++;
  return rc;
}

static void on_config(tfa_app *app, const uint8_t *payload, size_t len) {
  tfa_config c = app->cfg;
  char err[256];
  if (len == 0) return; /* retained config cleared */
  if (len > TFA_MAX_CONFIG_BYTES) {
    tfa_log(app, 1, "retained config ignored: %u bytes", (unsigned)len);
    return;
  }
  if (tfa_config_from_json(&c, (const char *)payload, len, false, err, sizeof err) != 0) {
    tfa_log(app, 1, "retained config ignored: %s", err);
    app->n.rejected++;
    return;
  }
  tfa_app_set_config(app, &c);
  tfa_log(app, 2, "config from the retained topic: interval %u ms, frames %s", (unsigned)c.capture_interval_ms, c.frames_enabled ? "on" : "off");
}

static void cmd_get_config(tfa_app *app, const tfa_reply *r) {
  char buf[256];
  if (tfa_config_to_json(&app->cfg, buf, sizeof buf) < 0) tfa_respond(app, r, NULL, "internal", "config does not fit");
  else tfa_respond(app, r, buf, NULL, NULL);
}

static void cmd_set_config(tfa_app *app, const tfa_reply *r, const tfa_json *doc, int params) {
  tfa_config c = app->cfg;
  char err[256], buf[256];
  if (params < 0) {
    /* no params: nothing to change, answer with the config like get_config */
    cmd_get_config(app, r);
    return;
  }
  if (tfa_config_from_json(&c, doc->text + doc->tok[params].start, doc->tok[params].end - doc->tok[params].start, true, err, sizeof err) != 0) {
    tfa_respond(app, r, NULL, "bad_request", err);
    return;
  }
  tfa_app_set_config(app, &c);
  tfa_config_to_json(&app->cfg, buf, sizeof buf);
  tfa_respond(app, r, buf, NULL, NULL);
}

static void cmd_snapshot(tfa_app *app, const tfa_reply *r) {
  tfa_frame f;
  char buf[96];
  uint32_t fid;
  if (!app->cfg.frames_enabled) {
    tfa_respond(app, r, NULL, "frames_disabled", "frames_enabled is false (privacy default): enable it with set_config first");
    return;
  }
  memset(&f, 0, sizeof f);
  if (!app->p->capture || app->p->capture(app->p->ctx, &f, true, app->cfg.jpeg_quality) != 0 || !f.jpeg || !f.jpeg_len) {
    if (app->p->release && app->p->capture) app->p->release(app->p->ctx, &f);
    tfa_respond(app, r, NULL, "internal", "the camera gave no frame");
    return;
  }
  app->frame_id++;
  if (app->frame_id == 0) app->frame_id = 1;
  fid = app->frame_id;
  if (tfa_publish_frame(app, fid, f.jpeg, f.jpeg_len) != 0) {
    tfa_respond(app, r, NULL, "internal", "the frame could not be published");
  } else {
    snprintf(buf, sizeof buf, "{\"frame_id\":%lu,\"size\":%lu}", (unsigned long)fid, (unsigned long)f.jpeg_len);
    tfa_respond(app, r, buf, NULL, NULL);
  }
  if (app->p->release) app->p->release(app->p->ctx, &f);
}

static void cmd_reboot(tfa_app *app, const tfa_reply *r, const tfa_json *doc, int params) {
  char buf[48];
  double d;
  uint32_t delay = 200;
  int t = params >= 0 ? tfa_json_get(doc, params, "delay_ms") : -1;
  if (t >= 0 && tfa_json_num(doc, t, &d) && d >= 0) delay = d > 60000 ? 60000u : (uint32_t)d;
  snprintf(buf, sizeof buf, "{\"delay_ms\":%lu}", (unsigned long)delay);
  tfa_respond(app, r, buf, NULL, NULL);
  app->reboot_pending = true; /* step() says goodbye and hands over to the platform */
  app->reboot_delay_ms = delay;
}

/* The command name after "<base>/cmd/": [a-z][a-z0-9_]{0,31}. */
static bool valid_command(const char *s) {
  size_t i, n = strlen(s);
  if (n < 1 || n > 32 || s[0] < 'a' || s[0] > 'z') return false;
  for (i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return false;
  return true;
}

static void on_command(tfa_app *app, const char *name, const uint8_t *payload, size_t len, const tfa_msg_props *props) {
  tfa_reply r;
  tfa_jtok tok[MAX_TOKENS];
  tfa_json doc;
  int n, id = -1, params = -1, k, v;
  uint32_t it = 0;
  char err[160] = "";
  memset(&r, 0, sizeof r);
  strncpy(r.cmd, name, sizeof r.cmd - 1);
  if (props && props->response_topic && props->response_topic[0] && strlen(props->response_topic) < sizeof r.topic) {
    strcpy(r.topic, props->response_topic);
  } else {
    tfa_topic(app, "resp", r.topic, sizeof r.topic);
  }
  if (props && props->correlation && props->correlation_len <= sizeof r.corr) {
    memcpy(r.corr, props->correlation, props->correlation_len);
    r.corr_len = props->correlation_len;
  }
  app->n.commands++;
  if (len > TFA_MAX_CMD_BYTES) {
    snprintf(err, sizeof err, "oversized: %lu bytes > %lu", (unsigned long)len, (unsigned long)TFA_MAX_CMD_BYTES);
    tfa_respond(app, &r, NULL, "bad_request", err);
    return;
  }
  n = tfa_json_parse(&doc, (const char *)payload, len, tok, MAX_TOKENS);
  if (n < 0) {
    snprintf(err, sizeof err, "not JSON: %s", tfa_json_strerror(n));
    tfa_respond(app, &r, NULL, "bad_request", err);
    return;
  }
  if (tok[0].type != TFA_JSON_OBJECT) {
    tfa_respond(app, &r, NULL, "bad_request", "request: must be an object");
    return;
  }
  while (tfa_json_member(&doc, 0, &it, &k, &v)) {
    if (tfa_json_eq(&doc, k, "id")) id = v;
    else if (tfa_json_eq(&doc, k, "params")) params = v;
    else if (!err[0]) snprintf(err, sizeof err, "unknown field in the request (only id, params)");
  }
  if (id >= 0 && (tfa_json_str(&doc, id, r.id, sizeof r.id) <= 0)) {
    r.id[0] = '\0';
    if (!err[0]) snprintf(err, sizeof err, "id: must be a string of 1..64 chars");
  }
  if (id < 0 && !err[0]) snprintf(err, sizeof err, "id: required");
  if (params >= 0 && tok[params].type != TFA_JSON_OBJECT && !err[0]) snprintf(err, sizeof err, "params: must be an object");
  if (err[0]) {
    app->n.rejected++;
    tfa_respond(app, &r, NULL, "bad_request", err);
    return;
  }
  tfa_log(app, 3, "command %s (id %s)", name, r.id);
  if (strcmp(name, "get_config") == 0) cmd_get_config(app, &r);
  else if (strcmp(name, "set_config") == 0) cmd_set_config(app, &r, &doc, params);
  else if (strcmp(name, "snapshot") == 0) cmd_snapshot(app, &r);
  else if (strcmp(name, "reboot") == 0) cmd_reboot(app, &r, &doc, params);
  else if (strcmp(name, "model_update") == 0) tfa_ota_command(app, &r, &doc, params, false);
  else if (strcmp(name, "firmware_update") == 0) tfa_ota_command(app, &r, &doc, params, true);
  else {
    snprintf(err, sizeof err, "unknown command %s", name);
    tfa_respond(app, &r, NULL, "unknown_command", err);
  }
}

void tfa_app_on_message(tfa_app *app, const char *topic, const uint8_t *payload, size_t len, const tfa_msg_props *props) {
  size_t bl = strlen(app->base);
  const char *rest;
  if (!topic || strncmp(topic, app->base, bl) != 0 || topic[bl] != '/') return;
  if (app->state != TFA_ONLINE) return;
  rest = topic + bl + 1;
  if (strcmp(rest, "config") == 0) on_config(app, payload, len);
  else if (strcmp(rest, "ota/chunk") == 0) tfa_ota_chunk(app, payload, len);
  else if (strncmp(rest, "cmd/", 4) == 0 && valid_command(rest + 4)) on_command(app, rest + 4, payload, len, props);
}
