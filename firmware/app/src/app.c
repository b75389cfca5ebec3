/* The TinyFER app state machine and the fleet protocol (docs/protocol.md): see tfa/app.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tfa/app.h"
#include "tfa/json.h"
#include "tfa_internal.h"

static const char *const kCapabilities[] = {"emotion", "telemetry", "frame", "snapshot", "reboot", "config"};

void tfa_log(tfa_app *app, int level, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  if (!app->p->log) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  app->p->log(app->p->ctx, level, msg);
}

uint64_t tfa_now_ms(const tfa_app *app) { return app->p->now_us(app->p->ctx) / 1000u; }

static uint64_t ts_ms(const tfa_app *app) {
  uint64_t e = app->p->epoch_ms ? app->p->epoch_ms(app->p->ctx) : 0;
  return e ? e : tfa_now_ms(app) - app->boot_ms;
}

static bool id_char(char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && (c == '_' || c == '-'));
}

static bool valid_device_id(const char *id) {
  size_t i, n = id ? strlen(id) : 0;
  if (n < 1 || n > 64) return false;
  for (i = 0; i < n; i++)
    if (!id_char(id[i], i == 0)) return false;
  return true;
}

static bool valid_prefix(const char *p) {
  size_t i, n = p ? strlen(p) : 0;
  if (n < 1 || p[0] == '$' || p[0] == '/' || p[n - 1] == '/') return false;
  for (i = 0; i < n; i++) {
    if (p[i] == '+' || p[i] == '#') return false;
    if (p[i] == '/' && p[i + 1] == '/') return false;
  }
  return true;
}

int tfa_topic(const tfa_app *app, const char *suffix, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s/%s", app->base, suffix);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tfa_publish(tfa_app *app, const char *suffix, const void *payload, size_t len, int qos, bool retain) {
  char topic[TFA_TOPIC_MAX];
  int r;
  if (tfa_topic(app, suffix, topic, sizeof topic) != 0) return -1;
  r = app->p->publish(app->p->ctx, topic, payload, len, qos, retain, NULL, 0);
  if (r != 0) app->n.publish_errors++;
  return r;
}

/* ------------------------------------------------------------------ status */

static int publish_birth(tfa_app *app) {
  char buf[768];
  tfa_jw w;
  size_t i;
  const char *ip = app->p->ip ? app->p->ip(app->p->ctx) : NULL;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "state");
  tfa_jw_str(&w, "online");
  tfa_jw_key(&w, "protocol");
  tfa_jw_int(&w, TFA_PROTOCOL_VERSION);
  tfa_jw_key(&w, "firmware");
  tfa_jw_str(&w, app->o.firmware);
  tfa_jw_key(&w, "model");
  tfa_jw_str(&w, tfa_app_model_version(app));
  if (ip && ip[0]) {
    tfa_jw_key(&w, "ip");
    tfa_jw_strn(&w, ip, strlen(ip) > 45 ? 45 : strlen(ip));
  }
  tfa_jw_key(&w, "capabilities");
  tfa_jw_arr_begin(&w);
  for (i = 0; i < sizeof kCapabilities / sizeof kCapabilities[0]; i++) tfa_jw_str(&w, kCapabilities[i]);
  if (app->o.has_model_key) tfa_jw_str(&w, "model_update");
  if (app->o.has_firmware_key && app->p->app_begin && app->p->app_write && app->p->app_finish) tfa_jw_str(&w, "firmware_update");
  tfa_jw_arr_end(&w);
  if (app->p->epoch_ms && app->p->epoch_ms(app->p->ctx)) {
    tfa_jw_key(&w, "ts");
    tfa_jw_uint(&w, app->p->epoch_ms(app->p->ctx));
  }
  tfa_jw_obj_end(&w);
  if (tfa_jw_finish(&w) < 0) return -1;
  return tfa_publish(app, "status", buf, w.len, 1, true);
}

int tfa_app_publish_birth(tfa_app *app) { return publish_birth(app); }

static const char kWill[] = "{\"state\":\"offline\"}";

void tfa_app_will(const tfa_app *app, const char **topic, const char **payload) {
  static char will_topic[TFA_TOPIC_MAX + 8];
  snprintf(will_topic, sizeof will_topic, "%s/status", app->base);
  *topic = will_topic;
  *payload = kWill;
}

void tfa_app_shutdown(tfa_app *app, const char *reason) {
  char buf[160];
  tfa_jw w;
  if (app->state != TFA_ONLINE) return;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "state");
  tfa_jw_str(&w, "offline");
  tfa_jw_key(&w, "reason");
  tfa_jw_strn(&w, reason, strlen(reason) > 64 ? 64 : strlen(reason));
  if (app->p->epoch_ms && app->p->epoch_ms(app->p->ctx)) {
    tfa_jw_key(&w, "ts");
    tfa_jw_uint(&w, app->p->epoch_ms(app->p->ctx));
  }
  tfa_jw_obj_end(&w);
  if (tfa_jw_finish(&w) >= 0) tfa_publish(app, "status", buf, w.len, 1, true);
  app->state = TFA_CONNECTING;
}

/* ------------------------------------------------------------------ init */

const char *tfa_app_model_version(const tfa_app *app) { return app->has_model ? app->cur.version : "none"; }

/* A status-safe version string from the name inside a blob. */
static void version_from_name(const tfr_model_t *m, char out[65]) {
  size_t i, n = m->name_len > 64 ? 64 : m->name_len;
  for (i = 0; i < n; i++) {
    char c = m->name[i];
    out[i] = (c >= 0x20 && c < 0x7F) ? c : '_';
  }
  out[n] = '\0';
  if (n == 0) strcpy(out, "unnamed");
}

static void load_config(tfa_app *app) {
  char buf[TFA_MAX_CONFIG_BYTES], err[256];
  int n;
  app->cfg = app->o.has_defaults ? app->o.defaults : TFA_DEFAULT_CONFIG;
  if (!app->p->settings_get) return;
  n = app->p->settings_get(app->p->ctx, "config", buf, sizeof buf);
  if (n <= 0) return;
  if (tfa_config_from_json(&app->cfg, buf, (size_t)n, false, err, sizeof err) != 0)
    tfa_log(app, 1, "stored config ignored: %s", err);
}

/* The stored active-model record: {"slot":1,"size":12345,"version":"v2"}. */
static void load_model(tfa_app *app) {
  char buf[256];
  int n;
  app->has_model = false;
  if (app->p->settings_get && (n = app->p->settings_get(app->p->ctx, "model", buf, sizeof buf)) > 0) {
    tfa_jtok tok[16];
    tfa_json doc;
    int64_t slot, size;
    char version[65];
    if (tfa_json_parse(&doc, buf, (size_t)n, tok, 16) > 0 && tfa_json_int(&doc, tfa_json_get(&doc, 0, "slot"), 1, TFA_NUM_SLOTS - 1, &slot) &&
        tfa_json_int(&doc, tfa_json_get(&doc, 0, "size"), 1, TFA_MAX_MODEL_BYTES, &size) &&
        tfa_json_str(&doc, tfa_json_get(&doc, 0, "version"), version, sizeof version) > 0) {
      int r = tfa_model_check(app, (int)slot, (size_t)size, &app->cur.model);
      if (r == 0) {
        app->cur.slot = (int)slot;
        app->cur.size = (size_t)size;
        strcpy(app->cur.version, version);
        app->has_model = true;
        tfa_log(app, 2, "model %s from slot %d (%u bytes)", version, (int)slot, (unsigned)size);
        return;
      }
      tfa_log(app, 1, "model in slot %d unusable (%d), falling back to the built-in model", (int)slot, r);
    } else {
      tfa_log(app, 1, "stored model record ignored");
    }
  }
  if (app->o.builtin_size) {
    int r = tfa_model_check(app, TFA_SLOT_BUILTIN, app->o.builtin_size, &app->cur.model);
    if (r == 0) {
      app->cur.slot = TFA_SLOT_BUILTIN;
      app->cur.size = app->o.builtin_size;
      if (app->o.builtin_version && app->o.builtin_version[0]) {
        strncpy(app->cur.version, app->o.builtin_version, 64);
        app->cur.version[64] = '\0';
      } else {
        version_from_name(&app->cur.model, app->cur.version);
      }
      app->has_model = true;
      tfa_log(app, 2, "built-in model %s (%u bytes)", app->cur.version, (unsigned)app->o.builtin_size);
    } else {
      tfa_log(app, 0, "built-in model unusable: %s", r == -100 ? "self-test failed" : r == -101 ? "slot unreadable" : tfr_strerror(r));
    }
  } else {
    tfa_log(app, 1, "no model: the device reports and classifies nothing until a model_update");
  }
}

int tfa_app_init(tfa_app *app, const tfa_platform *p, const tfa_options *o) {
  memset(app, 0, sizeof *app);
  app->p = p;
  app->o = *o;
  if (!p || !p->now_us || !p->publish || !p->subscribe) return -1;
  if (!app->o.prefix) app->o.prefix = "tinyfer";
  if (!app->o.firmware) app->o.firmware = TFA_FIRMWARE_VERSION;
  if (!app->o.chunk_bytes) app->o.chunk_bytes = 8192;
  if (!app->o.telemetry_interval_ms) app->o.telemetry_interval_ms = 5000;
  if (!app->o.ota_timeout_ms) app->o.ota_timeout_ms = TFA_OTA_TIMEOUT_MS;
  if (!valid_device_id(app->o.device_id) || !valid_prefix(app->o.prefix)) return -1;
  if (!app->o.arena || app->o.arena_size < 1024 || ((uintptr_t)app->o.arena & 3u)) return -1;
  if (!app->o.scratch || app->o.scratch_size < 4096) return -1;
  if (app->o.chunk_bytes + TFA_CHUNK_HEADER_BYTES > app->o.scratch_size) app->o.chunk_bytes = app->o.scratch_size - TFA_CHUNK_HEADER_BYTES;
  if (tfa_topic_base(app) != 0) return -1;
  app->boot_ms = tfa_now_ms(app);
  load_config(app);
  load_model(app);
  app->state = TFA_CONNECTING;
  return 0;
}

int tfa_topic_base(tfa_app *app) {
  int n = snprintf(app->base, sizeof app->base, "%s/%s", app->o.prefix, app->o.device_id);
  /* leave room for the longest suffix, "/frame/chunk" */
  return n < 0 || (size_t)n + 16 >= sizeof app->base ? -1 : 0;
}

void tfa_app_on_connected(tfa_app *app) {
  char t[TFA_TOPIC_MAX];
  uint64_t now = tfa_now_ms(app);
  if (tfa_topic(app, "cmd/+", t, sizeof t) == 0) app->p->subscribe(app->p->ctx, t, 1);
  if (tfa_topic(app, "config", t, sizeof t) == 0) app->p->subscribe(app->p->ctx, t, 1);
  if (tfa_topic(app, "ota/chunk", t, sizeof t) == 0) app->p->subscribe(app->p->ctx, t, 1);
  app->state = TFA_ONLINE;
  publish_birth(app);
  if (!app->app_confirmed && app->p->app_confirm) {
    /* Booted, configured, on the network and accepted by the broker: this image works. */
    app->app_confirmed = true;
    app->p->app_confirm(app->p->ctx);
  }
  app->next_capture_ms = now + app->cfg.capture_interval_ms;
  app->next_telemetry_ms = now + app->o.telemetry_interval_ms;
  app->win_start_ms = now;
  app->win_captures = 0;
  app->win_faces = 0;
  app->win_inference_ms = 0;
  tfa_log(app, 2, "online as %s (model %s)", app->base, tfa_app_model_version(app));
}

void tfa_app_on_disconnected(tfa_app *app) {
  if (app->state == TFA_ONLINE) app->state = TFA_CONNECTING;
}

/* ------------------------------------------------------------------ capture */

static double round4(double v) { return floor(v * 1e4 + 0.5) / 1e4; }

int tfa_publish_frame(tfa_app *app, uint32_t frame_id, const uint8_t *jpeg, size_t len) {
  size_t chunk = app->o.chunk_bytes, count = (len + chunk - 1) / chunk, i;
  char topic[TFA_TOPIC_MAX];
  if (len == 0 || len > TFA_MAX_FRAME_BYTES || count > 65535u) {
    tfa_log(app, 1, "frame of %lu bytes not sent (1..%u)", (unsigned long)len, (unsigned)TFA_MAX_FRAME_BYTES);
    return -1;
  }
  if (tfa_topic(app, "frame/chunk", topic, sizeof topic) != 0) return -1;
  for (i = 0; i < count; i++) {
    tfa_chunk_hdr h;
    size_t off = i * chunk, n = len - off < chunk ? len - off : chunk;
    h.id = frame_id;
    h.index = (uint16_t)i;
    h.count = (uint16_t)count;
    h.total = (uint32_t)len;
    h.offset = (uint32_t)off;
    tfa_chunk_encode(&h, app->o.scratch);
    memcpy(app->o.scratch + TFA_CHUNK_HEADER_BYTES, jpeg + off, n);
    if (app->p->publish(app->p->ctx, topic, app->o.scratch, TFA_CHUNK_HEADER_BYTES + n, 0, false, NULL, 0) != 0) {
      app->n.publish_errors++;
      return -1;
    }
  }
  app->n.frames++;
  return 0;
}

static int publish_emotion(tfa_app *app, const tfa_box *box, const float canon[TFR_NUM_CLASSES], double inference_ms, uint32_t frame_id) {
  char buf[640];
  tfa_jw w;
  int i, best = 0;
  double conf;
  for (i = 1; i < TFR_NUM_CLASSES; i++)
    if (canon[i] > canon[best]) best = i;
  conf = round4(canon[best]);
  if (conf < app->cfg.confidence_threshold) return 0;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "ts");
  tfa_jw_uint(&w, ts_ms(app));
  tfa_jw_key(&w, "seq");
  tfa_jw_uint(&w, app->seq);
  tfa_jw_key(&w, "box");
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "x");
  tfa_jw_uint(&w, box->x);
  tfa_jw_key(&w, "y");
  tfa_jw_uint(&w, box->y);
  tfa_jw_key(&w, "w");
  tfa_jw_uint(&w, box->w);
  tfa_jw_key(&w, "h");
  tfa_jw_uint(&w, box->h);
  tfa_jw_obj_end(&w);
  tfa_jw_key(&w, "label");
  tfa_jw_str(&w, tfr_label_name(best));
  tfa_jw_key(&w, "confidence");
  tfa_jw_num(&w, conf, 4);
  tfa_jw_key(&w, "scores");
  tfa_jw_obj_begin(&w);
  for (i = 0; i < TFR_NUM_CLASSES; i++) {
    tfa_jw_key(&w, tfr_label_name(i));
    tfa_jw_num(&w, round4(canon[i]), 4);
  }
  tfa_jw_obj_end(&w);
  tfa_jw_key(&w, "inference_ms");
  tfa_jw_num(&w, inference_ms, 2);
  if (frame_id) {
    tfa_jw_key(&w, "frame_id");
    tfa_jw_uint(&w, frame_id);
  }
  tfa_jw_obj_end(&w);
  if (tfa_jw_finish(&w) < 0) return -1;
  app->seq++;
  if (tfa_publish(app, "emotion", buf, w.len, 1, false) != 0) return -1;
  app->n.emotions++;
  return 1;
}

int tfa_classify_face(tfa_app *app, const uint8_t face[TFR_FACE_PIXELS], float canon[TFR_NUM_CLASSES], double *ms) {
  uint64_t t0 = app->p->now_us(app->p->ctx);
  int i, r = tfr_classify(&app->cur.model, app->o.arena, app->o.arena_size, face, app->scores);
  *ms = (double)(app->p->now_us(app->p->ctx) - t0) / 1000.0;
  if (r != TFR_OK) return r;
  for (i = 0; i < TFR_NUM_CLASSES; i++) canon[i] = 0.0f;
  for (i = 0; i < TFR_NUM_CLASSES; i++) canon[app->cur.model.label_index[i]] = app->scores[i];
  return 0;
}

int tfa_app_capture_once(tfa_app *app) {
  tfa_frame f;
  tfa_box boxes[TFA_MAX_FACES];
  uint32_t fid = 0;
  int nb, i, published = 0;
  if (!app->p->capture) return -1;
  memset(&f, 0, sizeof f);
  if (app->p->capture(app->p->ctx, &f, app->cfg.frames_enabled, app->cfg.jpeg_quality) != 0) {
    tfa_log(app, 1, "capture failed");
    return -1;
  }
  app->n.captures++;
  app->win_captures++;
  if (app->cfg.frames_enabled && f.jpeg && f.jpeg_len) {
    app->frame_id++;
    if (app->frame_id == 0) app->frame_id = 1;
    if (tfa_publish_frame(app, app->frame_id, f.jpeg, f.jpeg_len) == 0) fid = app->frame_id;
  }
  if (app->has_model && f.gray) {
    nb = app->p->detect ? app->p->detect(app->p->ctx, &f, boxes, TFA_MAX_FACES) : 0;
    if (nb > TFA_MAX_FACES) nb = TFA_MAX_FACES;
    for (i = 0; i < nb; i++) {
      float canon[TFR_NUM_CLASSES];
      double ms;
      int r;
      if (tfa_crop_gray48(f.gray, f.width, f.height, f.stride, boxes[i], app->face) != 0) continue;
      r = tfa_classify_face(app, app->face, canon, &ms);
      if (r != 0) {
        tfa_log(app, 0, "classify: %s", tfr_strerror(r));
        continue;
      }
      app->last_inference_ms = ms;
      app->win_inference_ms += ms;
      app->win_faces++;
      if (publish_emotion(app, &boxes[i], canon, ms, fid) > 0) published++;
    }
  }
  if (app->p->release) app->p->release(app->p->ctx, &f);
  return published;
}

/* ------------------------------------------------------------------ telemetry */

static void publish_telemetry(tfa_app *app, uint64_t now) {
  char buf[384];
  tfa_jw w;
  tfa_sysinfo si = {0, 0, 0, 0.0};
  uint64_t span = now - app->win_start_ms;
  double fps = span ? (double)app->win_captures * 1000.0 / (double)span : 0.0;
  if (app->p->sysinfo) app->p->sysinfo(app->p->ctx, &si);
  if (si.rssi < -127) si.rssi = -127;
  if (si.rssi > 0) si.rssi = 0;
  if (!(si.temp_c >= -60.0 && si.temp_c <= 200.0)) si.temp_c = 0.0;
  if (fps > 1000.0) fps = 1000.0;
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "uptime_s");
  tfa_jw_uint(&w, (now - app->boot_ms) / 1000u);
  tfa_jw_key(&w, "heap_free");
  tfa_jw_uint(&w, si.heap_free);
  tfa_jw_key(&w, "psram_free");
  tfa_jw_uint(&w, si.psram_free);
  tfa_jw_key(&w, "rssi");
  tfa_jw_int(&w, si.rssi);
  tfa_jw_key(&w, "fps");
  tfa_jw_num(&w, fps, 2);
  tfa_jw_key(&w, "inference_ms");
  tfa_jw_num(&w, app->win_faces ? app->win_inference_ms / app->win_faces : 0.0, 2);
  tfa_jw_key(&w, "temp_c");
  tfa_jw_num(&w, si.temp_c, 1);
  if (app->p->epoch_ms && app->p->epoch_ms(app->p->ctx)) {
    tfa_jw_key(&w, "ts");
    tfa_jw_uint(&w, app->p->epoch_ms(app->p->ctx));
  }
  tfa_jw_obj_end(&w);
  if (tfa_jw_finish(&w) >= 0 && tfa_publish(app, "telemetry", buf, w.len, 0, false) == 0) app->n.telemetry++;
  app->win_start_ms = now;
  app->win_captures = 0;
  app->win_faces = 0;
  app->win_inference_ms = 0;
}

void tfa_app_set_config(tfa_app *app, const tfa_config *c) {
  bool resched = c->capture_interval_ms != app->cfg.capture_interval_ms;
  char buf[256];
  app->cfg = *c;
  if (resched) app->next_capture_ms = tfa_now_ms(app) + c->capture_interval_ms;
  if (app->p->settings_set && tfa_config_to_json(c, buf, sizeof buf) > 0) app->p->settings_set(app->p->ctx, "config", buf);
}

uint32_t tfa_app_step(tfa_app *app) {
  uint64_t now = tfa_now_ms(app), next;
  if (app->state != TFA_ONLINE) return 100;
  if (app->reboot_pending) {
    app->reboot_pending = false;
    tfa_app_shutdown(app, "reboot");
    app->state = TFA_REBOOTING;
    if (app->p->reboot) app->p->reboot(app->p->ctx, app->reboot_delay_ms);
    return 100;
  }
  tfa_ota_poll(app, now);
  if (now >= app->next_capture_ms) {
    tfa_app_capture_once(app);
    now = tfa_now_ms(app);
    app->next_capture_ms += app->cfg.capture_interval_ms;
    if (app->next_capture_ms <= now) app->next_capture_ms = now + app->cfg.capture_interval_ms; /* slow: skip, don't pile up */
  }
  if (now >= app->next_telemetry_ms) {
    publish_telemetry(app, now);
    app->next_telemetry_ms = now + app->o.telemetry_interval_ms;
  }
  next = app->next_capture_ms < app->next_telemetry_ms ? app->next_capture_ms : app->next_telemetry_ms;
  if (app->ota.active && app->ota.started_ms + app->o.ota_timeout_ms < next) next = app->ota.started_ms + app->o.ota_timeout_ms;
  return next <= now ? 0 : (next - now > 1000 ? 1000 : (uint32_t)(next - now));
}
