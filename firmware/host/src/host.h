/* The Linux platform of the TinyFER app (a virtual XIAO): camera from image files, settings and
 * model slots in files, SHA-256 from libsodium, libmosquitto MQTT (main.c). */
#ifndef TFA_HOST_H
#define TFA_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tfa/app.h"

/* ---- camera: image files (JPEG, PNG), cycled in name order ---- */
typedef struct {
  char **files;
  size_t count, next;
  uint8_t *gray;        /* decoded current frame */
  uint16_t width, height;
  uint8_t *bytes;       /* the file as read */
  size_t bytes_len;
  uint8_t *jpeg;        /* JPEG made from `gray` for PNG inputs */
  size_t jpeg_len;
  char error[256];
} host_camera;

/* path: a JPEG/PNG file or a folder of them (not recursive). 0 or -1 (error says why). */
int host_camera_open(host_camera *c, const char *path);
void host_camera_close(host_camera *c);
int host_camera_capture(host_camera *c, tfa_frame *f, bool want_jpeg, int quality);
/* Decoders (also used by the tests): grayscale 8-bit, malloc'd; 0 or -1. */
int host_decode_gray(const uint8_t *data, size_t len, uint8_t **gray, uint16_t *w, uint16_t *h, char *err, size_t err_cap);
int host_encode_jpeg(const uint8_t *gray, uint16_t w, uint16_t h, int quality, uint8_t **out, size_t *out_len);

/* ---- storage: settings (key=value file) and model slots ---- */
#define HOST_MAX_SETTINGS 16
typedef struct {
  char *path; /* NULL: in memory only */
  char *keys[HOST_MAX_SETTINGS];
  char *values[HOST_MAX_SETTINGS];
  uint8_t *slot[TFA_NUM_SLOTS];
  size_t slot_size[TFA_NUM_SLOTS];
  bool slot_dirty[TFA_NUM_SLOTS];
  size_t slot_capacity;
} host_storage;

int host_storage_open(host_storage *s, const char *settings_path);
void host_storage_close(host_storage *s);
/* Slot 0: the built-in model, read from a file. */
int host_storage_load_builtin(host_storage *s, const char *model_path, char *err, size_t err_cap);
int host_settings_get(host_storage *s, const char *key, char *out, size_t cap);
int host_settings_set(host_storage *s, const char *key, const char *value);
size_t host_slot_capacity(host_storage *s, int slot);
int host_slot_begin(host_storage *s, int slot, size_t size);
int host_slot_write(host_storage *s, int slot, size_t offset, const void *data, size_t len);
int host_slot_map(host_storage *s, int slot, size_t size, const uint8_t **data);

/* ---- application firmware slots and the boot with rollback (app_update_host.c) ---- */
typedef struct {
  bool enabled;
  char path_new[4096], path_next[4096], path_cur[4096], path_failed[4096];
  int fd;         /* .app-new being written */
  size_t size;
  int trial_fd;   /* pipe to the supervising previous image, while on trial */
  const char *id; /* for log lines */
} host_apps;

/* Slots beside the settings file; reads (and clears) the trial pipe of this process. 0 or -1. */
int host_app_init(host_apps *a, const char *settings_path, const char *id);
/* The bootloader's part, first thing in main(): may exec the installed image, or fork a trial of a
 * new one and supervise it (and roll back by re-executing this binary); returns to boot this image. */
void host_app_boot(host_apps *a, char **argv, uint32_t confirm_ms);
int host_app_begin(host_apps *a, size_t size);
int host_app_write(host_apps *a, size_t offset, const void *data, size_t len);
int host_app_finish(host_apps *a, size_t size, const uint8_t sha256[32]);
void host_app_confirm(host_apps *a);

/* ---- crypto: SHA-256 (libsodium) and the key file ---- */
int host_crypto_init(void);
int host_sha256(const void *data, size_t len, uint8_t out[32]);
/* An Ed25519 public key file: SPKI PEM, 64 hex digits, or 32 raw bytes. */
int host_read_public_key(const char *path, uint8_t pk[32], char *err, size_t err_cap);

#endif
