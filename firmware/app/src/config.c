/* Device config: validateConfig of src/fleet/protocol.ts, in C. */
#include <stdio.h>
#include <string.h>

#include "tfa/app.h"
#include "tfa/json.h"

const tfa_config TFA_DEFAULT_CONFIG = {500u, false, 80u, 0.5};

static void add_err(char *err, size_t cap, const char *key, const char *what) {
  size_t n;
  if (!err || cap == 0) return;
  n = strlen(err);
  if (n + 1 >= cap) return;
  snprintf(err + n, cap - n, "%s%s: %s", n ? "; " : "", key, what);
}

int tfa_config_from_json(tfa_config *cfg, const char *json, size_t len, bool partial, char *err, size_t err_cap) {
  tfa_jtok tok[32];
  tfa_json doc;
  tfa_config c = *cfg;
  uint32_t it = 0;
  int k, v, r;
  bool seen[4] = {false, false, false, false};
  if (err && err_cap) err[0] = '\0';
  r = tfa_json_parse(&doc, json, len, tok, 32);
  if (r < 0) {
    add_err(err, err_cap, "config", tfa_json_strerror(r));
    return -1;
  }
  if (tok[0].type != TFA_JSON_OBJECT) {
    add_err(err, err_cap, "config", "must be an object");
    return -1;
  }
  while (tfa_json_member(&doc, 0, &it, &k, &v)) {
    int64_t i64;
    double d;
    bool b;
    if (tfa_json_eq(&doc, k, "capture_interval_ms")) {
      seen[0] = true;
      if (tfa_json_int(&doc, v, 50, 3600000, &i64)) c.capture_interval_ms = (uint32_t)i64;
      else add_err(err, err_cap, "capture_interval_ms", "must be an integer 50..3600000");
    } else if (tfa_json_eq(&doc, k, "frames_enabled")) {
      seen[1] = true;
      if (tfa_json_bool(&doc, v, &b)) c.frames_enabled = b;
      else add_err(err, err_cap, "frames_enabled", "must be a boolean");
    } else if (tfa_json_eq(&doc, k, "jpeg_quality")) {
      seen[2] = true;
      if (tfa_json_int(&doc, v, 1, 100, &i64)) c.jpeg_quality = (uint8_t)i64;
      else add_err(err, err_cap, "jpeg_quality", "must be an integer 1..100");
    } else if (tfa_json_eq(&doc, k, "confidence_threshold")) {
      seen[3] = true;
      if (tfa_json_num(&doc, v, &d) && d >= 0.0 && d <= 1.0) c.confidence_threshold = d;
      else add_err(err, err_cap, "confidence_threshold", "must be a number 0..1");
    } else {
      char key[48];
      if (tfa_json_str(&doc, k, key, sizeof key) < 0) strcpy(key, "(long key)");
      add_err(err, err_cap, key, "unknown field");
    }
  }
  if (!partial) {
    static const char *const names[4] = {"capture_interval_ms", "frames_enabled", "jpeg_quality", "confidence_threshold"};
    for (k = 0; k < 4; k++)
      if (!seen[k]) add_err(err, err_cap, names[k], "required");
  }
  if (err && err_cap && err[0]) return -1;
  if (!err || !err_cap) {
    /* no error buffer: recheck without one is not possible, so be strict */
    char tmp[256];
    return tfa_config_from_json(cfg, json, len, partial, tmp, sizeof tmp);
  }
  *cfg = c;
  return 0;
}

int tfa_config_to_json(const tfa_config *cfg, char *out, size_t cap) {
  tfa_jw w;
  tfa_jw_init(&w, out, cap);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "capture_interval_ms");
  tfa_jw_uint(&w, cfg->capture_interval_ms);
  tfa_jw_key(&w, "frames_enabled");
  tfa_jw_bool(&w, cfg->frames_enabled);
  tfa_jw_key(&w, "jpeg_quality");
  tfa_jw_uint(&w, cfg->jpeg_quality);
  tfa_jw_key(&w, "confidence_threshold");
  tfa_jw_num(&w, cfg->confidence_threshold, 6);
  tfa_jw_obj_end(&w);
  return tfa_jw_finish(&w);
}
