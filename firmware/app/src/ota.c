/*
 * Model and application firmware over the air (docs/protocol.md, model_update and
 * firmware_update): the blob arrives inline (base64 in the request) or in chunks on
 * <base>/ota/chunk. A model is written to the spare model slot and becomes the active model only
 * after every check passed:
 *   1. the Ed25519 signature over the 32-byte SHA-256 digest named in the request (checked first:
 *      a forged request is refused before a byte is written),
 *   2. size and SHA-256 of the bytes actually received,
 *   3. tfr_model_parse (format, CRC, shapes), the arena it needs, and a self-test inference.
 * Any failure leaves the active model untouched; the response names the active version.
 * A firmware image is checked the same way (1 and 2, with the firmware key), written to the app
 * slot that is not running through the platform's app_* functions, set to boot next on trial,
 * and the device reboots into it; the new image confirms itself once it reaches the broker
 * (tfa_app_on_connected), otherwise the platform boots the previous image again (rollback).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tfa/app.h"
#include "tfa/ed25519.h"
#include "tfa/json.h"
#include "tfa/util.h"
#include "tfa_internal.h"

/* A fixed test face: a radial gradient (any deterministic image works: the self-test checks
 * that inference runs and yields a probability distribution, not what it says). */
static void test_face(uint8_t *face) {
  int x, y;
  for (y = 0; y < TFR_FACE_SIZE; y++)
    for (x = 0; x < TFR_FACE_SIZE; x++) {
      int dx = x - 24, dy = y - 20;
      int v = 230 - (dx * dx + dy * dy) / 3;
      face[y * TFR_FACE_SIZE + x] = (uint8_t)(v < 20 ? 20 : v);
    }
}

int tfa_model_check(tfa_app *app, int slot, size_t size, tfr_model_t *out) {
  const uint8_t *data = NULL;
  float scores[TFR_NUM_CLASSES];
  double sum = 0;
  int r, i;
  if (!app->p->slot_map || size == 0 || app->p->slot_map(app->p->ctx, slot, size, &data) != 0 || !data) return -101;
  r = tfr_model_parse(out, data, size);
  if (r != TFR_OK) return r;
  if (tfr_arena_size(out) > app->o.arena_size) return TFR_ERR_ARENA_SMALL;
  test_face(app->face);
  r = tfr_classify(out, app->o.arena, app->o.arena_size, app->face, scores);
  if (r != TFR_OK) return r;
  for (i = 0; i < TFR_NUM_CLASSES; i++) {
    if (!(scores[i] >= 0.0f && scores[i] <= 1.0f)) return -100;
    sum += scores[i];
  }
  return fabs(sum - 1.0) < 1e-3 ? 0 : -100;
}

static const char *check_error(int r) {
  if (r == -100) return "self-test inference failed";
  if (r == -101) return "the spare slot could not be read back";
  return tfr_strerror(r);
}

/* Keys allowed in model_update params. */
static bool known_key(const tfa_json *doc, int k) {
  static const char *const keys[] = {"version", "size", "sha256", "signature", "blob", "transfer", "chunks"};
  size_t i;
  for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (tfa_json_eq(doc, k, keys[i])) return true;
  return false;
}

static bool lower_hex64(const tfa_json *doc, int t) {
  uint32_t i;
  if (t < 0 || doc->tok[t].type != TFA_JSON_STRING || doc->tok[t].end - doc->tok[t].start != 64) return false;
  for (i = doc->tok[t].start; i < doc->tok[t].end; i++) {
    char c = doc->text[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

static void fail(tfa_app *app, const tfa_reply *r, const char *code, const char *fmt, const char *detail) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, detail ? detail : "");
  app->n.ota_failed++;
  if (strcmp(r->cmd, "firmware_update") == 0)
    tfa_log(app, 1, "firmware_update refused (%s): %s; keeping firmware %s", code, msg, app->o.firmware);
  else
    tfa_log(app, 1, "model_update refused (%s): %s; keeping model %s", code, msg, tfa_app_model_version(app));
  tfa_respond(app, r, NULL, code, msg);
}

/* The firmware image is in the app slot: the platform checks it and sets it to boot next on trial. */
static void finish_firmware(tfa_app *app, const tfa_reply *r, size_t size, const uint8_t sha[32], const char *version) {
  char hex[65], buf[256];
  tfa_jw w;
  if (app->p->app_finish(app->p->ctx, size, sha, version) != 0) {
    fail(app, r, "verify_failed", "%s", "the image does not match its sha256 or is not bootable");
    return;
  }
  app->n.firmware_ok++;
  tfa_hex(sha, 32, hex);
  tfa_log(app, 2, "firmware %s installed (%u bytes): rebooting into it on trial", version, (unsigned)size);
  tfa_jw_init(&w, buf, sizeof buf);
  tfa_jw_obj_begin(&w);
  tfa_jw_key(&w, "firmware");
  tfa_jw_str(&w, version);
  tfa_jw_key(&w, "sha256");
  tfa_jw_str(&w, hex);
  tfa_jw_key(&w, "reboot");
  tfa_jw_bool(&w, true);
  tfa_jw_obj_end(&w);
  tfa_jw_finish(&w);
  tfa_respond(app, r, buf, NULL, NULL);
  app->reboot_pending = true; /* step() says goodbye and hands over to the platform */
  app->reboot_delay_ms = 200;
}

static int ota_write(tfa_app *app, bool firmware, int slot, size_t off, const void *d, size_t n) {
  return firmware ? app->p->app_write(app->p->ctx, off, d, n) : app->p->slot_write(app->p->ctx, slot, off, d, n);
}

/* The bytes are in `slot`: check them and switch. */
static void finish(tfa_app *app, const tfa_reply *r, int slot, size_t size, const uint8_t sha[32], const char *version) {
  const uint8_t *data = NULL;
  uint8_t got[32];
  tfr_model_t cand;
  char hex[65], buf[256];
  int rc;
  if (app->p->slot_map(app->p->ctx, slot, size, &data) != 0 || !data) {
    fail(app, r, "internal", "%s", "the spare slot could not be read back");
    return;
  }
  if (app->p->sha256(app->p->ctx, data, size, got) != 0 || memcmp(got, sha, 32) != 0) {
    fail(app, r, "verify_failed", "%s", "sha256 mismatch");
    return;
  }
  rc = tfa_model_check(app, slot, size, &cand);
  if (rc != 0) {
    fail(app, r, "verify_failed", "the model does not load: %s", check_error(rc));
    return;
  }
  app->cur.model = cand;
  app->cur.slot = slot;
  app->cur.size = size;
  strncpy(app->cur.version, version, 64);
  app->cur.version[64] = '\0';
  app->has_model = true;
  app->n.ota_ok++;
  if (app->p->settings_set) {
    tfa_jw w;
    tfa_jw_init(&w, buf, sizeof buf);
    tfa_jw_obj_begin(&w);
    tfa_jw_key(&w, "slot");
    tfa_jw_int(&w, slot);
    tfa_jw_key(&w, "size");
    tfa_jw_uint(&w, size);
    tfa_jw_key(&w, "version");
    tfa_jw_str(&w, app->cur.version);
    tfa_jw_obj_end(&w);
    if (tfa_jw_finish(&w) > 0) app->p->settings_set(app->p->ctx, "model", buf);
  }
  tfa_log(app, 2, "model %s active (slot %d, %u bytes)", app->cur.version, slot, (unsigned)size);
  tfa_app_publish_birth(app);
  tfa_hex(got, 32, hex);
  {
    tfa_jw w;
    tfa_jw_init(&w, buf, sizeof buf);
    tfa_jw_obj_begin(&w);
    tfa_jw_key(&w, "model");
    tfa_jw_str(&w, app->cur.version);
    tfa_jw_key(&w, "sha256");
    tfa_jw_str(&w, hex);
    tfa_jw_obj_end(&w);
    tfa_jw_finish(&w);
  }
  tfa_respond(app, r, buf, NULL, NULL);
}

static int spare_slot(const tfa_app *app) { return app->has_model && app->cur.slot == 1 ? 2 : 1; }

void tfa_ota_command(tfa_app *app, const tfa_reply *r, const tfa_json *doc, int params, bool firmware) {
  char version[65], err[256] = "";
  uint8_t sha[32], sig[64];
  int64_t size = 0, transfer = -1, chunks = -1;
  int tv, ts, th, tg, tb, tt, tc, k, v, slot;
  uint32_t it = 0;
  size_t cap;
  const char *cmd = firmware ? "firmware_update" : "model_update";
  const uint32_t max_size = firmware ? TFA_MAX_APP_BYTES : TFA_MAX_MODEL_BYTES;
  if (firmware && !(app->p->app_begin && app->p->app_write && app->p->app_finish)) {
    fail(app, r, "unsupported", "%s", "this device cannot update its firmware over the air");
    return;
  }
  if (firmware ? !app->o.has_firmware_key : !app->o.has_model_key) {
    fail(app, r, "unsupported", "%s", firmware ? "no firmware verification key provisioned" : "no model verification key provisioned");
    return;
  }
  if (params < 0) {
    snprintf(err, sizeof err, "%s params: must be an object", cmd);
    fail(app, r, "bad_request", "%s", err);
    return;
  }
  while (tfa_json_member(doc, params, &it, &k, &v))
    if (!known_key(doc, k)) snprintf(err, sizeof err, "unknown field in %s params", cmd);
  tv = tfa_json_get(doc, params, "version");
  ts = tfa_json_get(doc, params, "size");
  th = tfa_json_get(doc, params, "sha256");
  tg = tfa_json_get(doc, params, "signature");
  tb = tfa_json_get(doc, params, "blob");
  tt = tfa_json_get(doc, params, "transfer");
  tc = tfa_json_get(doc, params, "chunks");
  if (!err[0] && tfa_json_str(doc, tv, version, sizeof version) <= 0) snprintf(err, sizeof err, "version: must be a string of 1..64 chars");
  if (!err[0] && !tfa_json_int(doc, ts, 1, max_size, &size)) snprintf(err, sizeof err, "size: must be an integer 1..%u", (unsigned)max_size);
  if (!err[0] && (!lower_hex64(doc, th) || !tfa_unhex(doc->text + doc->tok[th].start, 64, sha, 32))) snprintf(err, sizeof err, "sha256: must be 64 lowercase hex chars");
  if (!err[0] && (tg < 0 || doc->tok[tg].type != TFA_JSON_STRING || doc->tok[tg].end - doc->tok[tg].start != 88 ||
                  tfa_b64_decode(doc->text + doc->tok[tg].start, 88, sig, sizeof sig) != 64))
    snprintf(err, sizeof err, "signature: must be a base64 Ed25519 signature (64 bytes)");
  if (!err[0] && tt >= 0 && !tfa_json_int(doc, tt, 0, 0xFFFFFFFFll, &transfer)) snprintf(err, sizeof err, "transfer: must be an integer 0..2^32-1");
  if (!err[0] && tc >= 0 && !tfa_json_int(doc, tc, 1, 65535, &chunks)) snprintf(err, sizeof err, "chunks: must be an integer 1..65535");
  if (!err[0] && tb >= 0 && (doc->tok[tb].type != TFA_JSON_STRING || doc->tok[tb].escaped)) snprintf(err, sizeof err, "blob: must be base64");
  if (!err[0] && (tb < 0) == (tt < 0)) snprintf(err, sizeof err, "exactly one of blob (inline) or transfer (chunked) must be set");
  if (!err[0] && tt >= 0 && tc < 0) snprintf(err, sizeof err, "chunks: required with transfer");
  if (err[0]) {
    fail(app, r, "bad_request", "%s", err);
    return;
  }
  if (tfa_ed25519_verify(sig, sha, 32, firmware ? app->o.firmware_key : app->o.model_key) != 0) {
    fail(app, r, "verify_failed", "%s", "bad signature");
    return;
  }
  slot = firmware ? -1 : spare_slot(app);
  cap = firmware ? max_size : app->p->slot_capacity ? app->p->slot_capacity(app->p->ctx, slot) : 0;
  if (!firmware && (size_t)size > cap) {
    snprintf(err, sizeof err, "%lu bytes do not fit the %lu-byte model slot", (unsigned long)size, (unsigned long)cap);
    fail(app, r, "too_large", "%s", err);
    return;
  }
  if (tt >= 0 && (uint64_t)chunks > TFA_MAX_OTA_CHUNKS) {
    snprintf(err, sizeof err, "%ld chunks > %u: use bigger chunks", (long)chunks, (unsigned)TFA_MAX_OTA_CHUNKS);
    fail(app, r, "too_large", "%s", err);
    return;
  }
  if (app->ota.active) {
    fail(app, r, "busy", "%s", "a transfer is already in progress");
    return;
  }
  if (firmware ? app->p->app_begin(app->p->ctx, (size_t)size) != 0 : app->p->slot_begin(app->p->ctx, slot, (size_t)size) != 0) {
    fail(app, r, "internal", "%s", firmware ? "the app slot could not be prepared (too small?)" : "the spare slot could not be erased");
    return;
  }
  if (tb >= 0) {
    /* inline: decode the base64 in pieces straight into the slot */
    const char *s = doc->text + doc->tok[tb].start;
    size_t n = doc->tok[tb].end - doc->tok[tb].start, off = 0, i;
    uint8_t piece[768];
    if (n % 4 != 0) {
      fail(app, r, "bad_request", "%s", "blob: must be base64");
      return;
    }
    for (i = 0; i < n; i += 1024) {
      size_t m = n - i < 1024 ? n - i : 1024;
      long d = tfa_b64_decode(s + i, m, piece, sizeof piece);
      if (d < 0) {
        fail(app, r, "bad_request", "%s", "blob: must be base64");
        return;
      }
      if (off + (size_t)d > (size_t)size) {
        fail(app, r, "verify_failed", "%s", "the blob is longer than size");
        return;
      }
      if (ota_write(app, firmware, slot, off, piece, (size_t)d) != 0) {
        fail(app, r, "internal", "%s", "writing the slot failed");
        return;
      }
      off += (size_t)d;
    }
    if (off != (size_t)size) {
      snprintf(err, sizeof err, "size %lu != %lu", (unsigned long)off, (unsigned long)size);
      fail(app, r, "verify_failed", "%s", err);
      return;
    }
    if (firmware) finish_firmware(app, r, (size_t)size, sha, version);
    else finish(app, r, slot, (size_t)size, sha, version);
    return;
  }
  /* chunked: remember the request, answer when the last chunk is in */
  memset(&app->ota, 0, sizeof app->ota);
  app->ota.active = true;
  app->ota.firmware = firmware;
  app->ota.transfer = (uint32_t)transfer;
  app->ota.chunks = (uint16_t)chunks;
  app->ota.size = (size_t)size;
  app->ota.slot = slot;
  app->ota.started_ms = tfa_now_ms(app);
  strcpy(app->ota.version, version);
  memcpy(app->ota.sha256, sha, 32);
  memcpy(app->ota.signature, sig, 64);
  strcpy(app->ota.req_id, r->id);
  strcpy(app->ota.resp_topic, r->topic);
  memcpy(app->ota.corr, r->corr, r->corr_len);
  app->ota.corr_len = r->corr_len;
  tfa_log(app, 2, "%s %s: waiting for %u chunks of transfer %lu", cmd, version, (unsigned)chunks, (unsigned long)transfer);
}

static void ota_reply(const tfa_app *app, tfa_reply *r) {
  memset(r, 0, sizeof *r);
  strcpy(r->id, app->ota.req_id);
  strcpy(r->cmd, app->ota.firmware ? "firmware_update" : "model_update");
  strcpy(r->topic, app->ota.resp_topic);
  memcpy(r->corr, app->ota.corr, app->ota.corr_len);
  r->corr_len = app->ota.corr_len;
}

void tfa_ota_chunk(tfa_app *app, const uint8_t *payload, size_t len) {
  tfa_chunk_hdr h;
  const uint8_t *data;
  size_t n;
  tfa_reply r;
  if (!app->ota.active) return; /* no transfer announced: stale or foreign chunks */
  if (tfa_chunk_decode(payload, len, &h, &data, &n) != 0) {
    ota_reply(app, &r);
    app->ota.active = false;
    fail(app, &r, "bad_request", "%s", "malformed chunk header");
    return;
  }
  if (h.id != app->ota.transfer) {
    tfa_log(app, 1, "chunk of transfer %lu ignored (expecting %lu)", (unsigned long)h.id, (unsigned long)app->ota.transfer);
    return;
  }
  if (h.count != app->ota.chunks || h.total != app->ota.size) {
    ota_reply(app, &r);
    app->ota.active = false;
    fail(app, &r, "bad_request", "%s", "chunk: count/total differ from the request");
    return;
  }
  if (app->ota.seen[h.index / 8] & (1u << (h.index % 8))) return; /* duplicate */
  if (ota_write(app, app->ota.firmware, app->ota.slot, h.offset, data, n) != 0) {
    ota_reply(app, &r);
    app->ota.active = false;
    fail(app, &r, "internal", "%s", "writing the slot failed");
    return;
  }
  app->ota.seen[h.index / 8] = (uint8_t)(app->ota.seen[h.index / 8] | (1u << (h.index % 8)));
  if (++app->ota.got < app->ota.chunks) return;
  ota_reply(app, &r);
  app->ota.active = false;
  if (app->ota.firmware) finish_firmware(app, &r, app->ota.size, app->ota.sha256, app->ota.version);
  else finish(app, &r, app->ota.slot, app->ota.size, app->ota.sha256, app->ota.version);
}

void tfa_ota_poll(tfa_app *app, uint64_t now_ms) {
  tfa_reply r;
  if (!app->ota.active || now_ms < app->ota.started_ms + app->o.ota_timeout_ms) return;
  ota_reply(app, &r);
  app->ota.active = false;
  fail(app, &r, "timeout", "%s", "the chunks did not all arrive");
}
