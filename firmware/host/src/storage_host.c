/* Host settings (a key=value file, rewritten atomically) and model slots (<settings>.slotN files). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define HOST_SLOT_CAPACITY (4u * 1024u * 1024u)

static int save(host_storage *s) {
  char tmp[4096];
  FILE *f;
  int i;
  if (!s->path) return 0;
  snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
  f = fopen(tmp, "w");
  if (!f) return -1;
  for (i = 0; i < HOST_MAX_SETTINGS; i++)
    if (s->keys[i]) fprintf(f, "%s=%s\n", s->keys[i], s->values[i]);
  if (fclose(f) != 0) return -1;
  return rename(tmp, s->path);
}

int host_settings_set(host_storage *s, const char *key, const char *value) {
  int i, free_i = -1;
  char *v;
  if (strchr(key, '=') || strchr(key, '\n') || strchr(value, '\n')) return -1;
  v = strdup(value);
  if (!v) return -1;
  for (i = 0; i < HOST_MAX_SETTINGS; i++) {
    if (s->keys[i] && strcmp(s->keys[i], key) == 0) {
      free(s->values[i]);
      s->values[i] = v;
      return save(s);
    }
    if (!s->keys[i] && free_i < 0) free_i = i;
  }
  if (free_i < 0 || !(s->keys[free_i] = strdup(key))) {
    free(v);
    return -1;
  }
  s->values[free_i] = v;
  return save(s);
}

int host_settings_get(host_storage *s, const char *key, char *out, size_t cap) {
  int i;
  for (i = 0; i < HOST_MAX_SETTINGS; i++) {
    if (s->keys[i] && strcmp(s->keys[i], key) == 0) {
      size_t n = strlen(s->values[i]);
      if (n + 1 > cap) return -1;
      memcpy(out, s->values[i], n + 1);
      return (int)n;
    }
  }
  return -1;
}

int host_storage_open(host_storage *s, const char *settings_path) {
  FILE *f;
  char line[4096];
  memset(s, 0, sizeof *s);
  s->slot_capacity = HOST_SLOT_CAPACITY;
  if (!settings_path) return 0;
  s->path = strdup(settings_path);
  if (!s->path) return -1;
  f = fopen(settings_path, "r");
  if (!f) return errno == ENOENT ? 0 : -1; /* first boot */
  while (fgets(line, sizeof line, f)) {
    char *eq = strchr(line, '='), *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (!eq || eq == line) continue;
    *eq = '\0';
    if (strchr(line, ' ')) continue;
    /* in memory only while loading: save() would rewrite the file we are reading */
    {
      char *path = s->path;
      s->path = NULL;
      host_settings_set(s, line, eq + 1);
      s->path = path;
    }
  }
  fclose(f);
  return 0;
}

void host_storage_close(host_storage *s) {
  int i;
  for (i = 0; i < HOST_MAX_SETTINGS; i++) {
    free(s->keys[i]);
    free(s->values[i]);
  }
  for (i = 0; i < TFA_NUM_SLOTS; i++) free(s->slot[i]);
  free(s->path);
  memset(s, 0, sizeof *s);
}

/* 16-byte aligned buffer: the core wants a 4-byte aligned blob. */
static uint8_t *alloc_slot(size_t size) {
  void *p = NULL;
  if (posix_memalign(&p, 16, size ? size : 1) != 0) return NULL;
  return p;
}

int host_storage_load_builtin(host_storage *s, const char *model_path, char *err, size_t cap) {
  FILE *f = fopen(model_path, "rb");
  long n;
  if (!f) {
    snprintf(err, cap, "%s: %s", model_path, strerror(errno));
    return -1;
  }
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || (size_t)n > s->slot_capacity || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    snprintf(err, cap, "%s: empty, unreadable or over %lu bytes", model_path, (unsigned long)s->slot_capacity);
    return -1;
  }
  free(s->slot[0]);
  s->slot[0] = alloc_slot((size_t)n);
  if (!s->slot[0] || fread(s->slot[0], 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    snprintf(err, cap, "%s: read failed", model_path);
    return -1;
  }
  fclose(f);
  s->slot_size[0] = (size_t)n;
  return 0;
}

size_t host_slot_capacity(host_storage *s, int slot) {
  return slot >= 1 && slot < TFA_NUM_SLOTS ? s->slot_capacity : 0;
}

int host_slot_begin(host_storage *s, int slot, size_t size) {
  if (slot < 1 || slot >= TFA_NUM_SLOTS || size > s->slot_capacity) return -1;
  free(s->slot[slot]);
  s->slot[slot] = alloc_slot(size);
  if (!s->slot[slot]) return -1;
  memset(s->slot[slot], 0xFF, size); /* like erased flash */
  s->slot_size[slot] = size;
  s->slot_dirty[slot] = true;
  return 0;
}

int host_slot_write(host_storage *s, int slot, size_t offset, const void *data, size_t len) {
  if (slot < 1 || slot >= TFA_NUM_SLOTS || !s->slot[slot] || offset > s->slot_size[slot] || len > s->slot_size[slot] - offset) return -1;
  memcpy(s->slot[slot] + offset, data, len);
  s->slot_dirty[slot] = true;
  return 0;
}

static void slot_path(const host_storage *s, int slot, char *out, size_t cap) { snprintf(out, cap, "%s.slot%d", s->path, slot); }

int host_slot_map(host_storage *s, int slot, size_t size, const uint8_t **data) {
  char path[4096];
  if (slot < 0 || slot >= TFA_NUM_SLOTS) return -1;
  if (!s->slot[slot] && slot > 0 && s->path) {
    /* after a restart: read the slot file back */
    FILE *f;
    slot_path(s, slot, path, sizeof path);
    f = fopen(path, "rb");
    if (!f) return -1;
    s->slot[slot] = alloc_slot(size);
    if (!s->slot[slot] || fread(s->slot[slot], 1, size, f) != size) {
      fclose(f);
      free(s->slot[slot]);
      s->slot[slot] = NULL;
      return -1;
    }
    fclose(f);
    s->slot_size[slot] = size;
    s->slot_dirty[slot] = false;
  }
  if (!s->slot[slot] || size > s->slot_size[slot]) return -1;
  if (slot > 0 && s->slot_dirty[slot] && s->path) {
    FILE *f;
    slot_path(s, slot, path, sizeof path);
    f = fopen(path, "wb");
    if (!f || fwrite(s->slot[slot], 1, s->slot_size[slot], f) != s->slot_size[slot] || fclose(f) != 0) return -1;
    s->slot_dirty[slot] = false;
  }
  *data = s->slot[slot];
  return 0;
}
