/* Host camera: JPEG/PNG files from a folder, cycled in name order, decoded to grayscale. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "host.h"

#define MAX_SIDE 8192
#define MAX_FILE_BYTES (32u * 1024u * 1024u)

static bool image_name(const char *n) {
  const char *dot = strrchr(n, '.');
  return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int host_camera_open(host_camera *c, const char *path) {
  struct stat st;
  memset(c, 0, sizeof *c);
  if (stat(path, &st) != 0) {
    snprintf(c->error, sizeof c->error, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    size_t cap = 0;
    if (!d) {
      snprintf(c->error, sizeof c->error, "%s: %s", path, strerror(errno));
      return -1;
    }
    while ((e = readdir(d)) != NULL) {
      size_t n;
      char *full;
      if (e->d_name[0] == '.' || !image_name(e->d_name)) continue;
      if (c->count == cap) {
        char **nf = realloc(c->files, (cap = cap ? cap * 2 : 64) * sizeof *nf);
        if (!nf) break;
        c->files = nf;
      }
      n = strlen(path) + strlen(e->d_name) + 2;
      full = malloc(n);
      if (!full) break;
      snprintf(full, n, "%s/%s", path, e->d_name);
      c->files[c->count++] = full;
    }
    closedir(d);
    qsort(c->files, c->count, sizeof *c->files, cmp_str);
  } else {
    c->files = malloc(sizeof *c->files);
    if (c->files && (c->files[0] = strdup(path)) != NULL) c->count = 1;
  }
  if (c->count == 0) {
    snprintf(c->error, sizeof c->error, "%s: no .jpg/.jpeg/.png images", path);
    return -1;
  }
  return 0;
}

void host_camera_close(host_camera *c) {
  size_t i;
  for (i = 0; i < c->count; i++) free(c->files[i]);
  free(c->files);
  free(c->gray);
  free(c->bytes);
  free(c->jpeg);
  memset(c, 0, sizeof *c);
}

/* ---- JPEG ---- */

typedef struct {
  struct jpeg_error_mgr mgr;
  jmp_buf jmp;
  char msg[JMSG_LENGTH_MAX];
} jerr;

static void jerr_exit(j_common_ptr ci) {
  jerr *e = (jerr *)ci->err;
  (*ci->err->format_message)(ci, e->msg);
  longjmp(e->jmp, 1);
}

static void jerr_silent(j_common_ptr ci, int level) {
  (void)ci;
  (void)level;
}

static int decode_jpeg(const uint8_t *data, size_t len, uint8_t **gray, uint16_t *w, uint16_t *h, char *err, size_t cap) {
  struct jpeg_decompress_struct ci;
  jerr e;
  uint8_t *volatile out = NULL;
  ci.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jerr_exit;
  e.mgr.emit_message = jerr_silent;
  if (setjmp(e.jmp)) {
    snprintf(err, cap, "JPEG: %s", e.msg);
    jpeg_destroy_decompress(&ci);
    free(out);
    return -1;
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, (unsigned char *)data, (unsigned long)len);
  jpeg_read_header(&ci, TRUE);
  if (ci.image_width < 1 || ci.image_height < 1 || ci.image_width > MAX_SIDE || ci.image_height > MAX_SIDE) {
    snprintf(err, cap, "JPEG: %ux%u is outside 1..%d", ci.image_width, ci.image_height, MAX_SIDE);
    jpeg_destroy_decompress(&ci);
    return -1;
  }
  /* grayscale: the Y (luma) plane; for a grayscale JPEG that is the image itself */
  ci.out_color_space = JCS_GRAYSCALE;
  jpeg_start_decompress(&ci);
  out = malloc((size_t)ci.output_width * ci.output_height);
  if (!out) {
    snprintf(err, cap, "out of memory");
    jpeg_destroy_decompress(&ci);
    return -1;
  }
  while (ci.output_scanline < ci.output_height) {
    JSAMPROW row = out + (size_t)ci.output_scanline * ci.output_width;
    jpeg_read_scanlines(&ci, &row, 1);
  }
  *w = (uint16_t)ci.output_width;
  *h = (uint16_t)ci.output_height;
  jpeg_finish_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  *gray = out;
  return 0;
}

int host_encode_jpeg(const uint8_t *gray, uint16_t w, uint16_t h, int quality, uint8_t **out, size_t *out_len) {
  struct jpeg_compress_struct ci;
  jerr e;
  unsigned char *volatile buf = NULL;
  unsigned long n = 0;
  ci.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jerr_exit;
  if (setjmp(e.jmp)) {
    jpeg_destroy_compress(&ci);
    free(buf);
    return -1;
  }
  jpeg_create_compress(&ci);
  jpeg_mem_dest(&ci, (unsigned char **)&buf, &n);
  ci.image_width = w;
  ci.image_height = h;
  ci.input_components = 1;
  ci.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = (JSAMPROW)(gray + (size_t)ci.next_scanline * w);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  *out = buf;
  *out_len = n;
  return 0;
}

/* ---- PNG ---- */

static int decode_png(const uint8_t *data, size_t len, uint8_t **gray, uint16_t *w, uint16_t *h, char *err, size_t cap) {
  png_image img;
  uint8_t *out;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, len)) {
    snprintf(err, cap, "PNG: %s", img.message);
    return -1;
  }
  if (img.width < 1 || img.height < 1 || img.width > MAX_SIDE || img.height > MAX_SIDE) {
    snprintf(err, cap, "PNG: %ux%u is outside 1..%d", img.width, img.height, MAX_SIDE);
    png_image_free(&img);
    return -1;
  }
  img.format = PNG_FORMAT_GRAY; /* libpng's sRGB -> linear luminance -> sRGB conversion */
  out = malloc(PNG_IMAGE_SIZE(img));
  if (!out) {
    png_image_free(&img);
    snprintf(err, cap, "out of memory");
    return -1;
  }
  if (!png_image_finish_read(&img, NULL, out, 0, NULL)) {
    snprintf(err, cap, "PNG: %s", img.message);
    free(out);
    return -1;
  }
  *w = (uint16_t)img.width;
  *h = (uint16_t)img.height;
  *gray = out;
  return 0;
}

int host_decode_gray(const uint8_t *data, size_t len, uint8_t **gray, uint16_t *w, uint16_t *h, char *err, size_t cap) {
  if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return decode_jpeg(data, len, gray, w, h, err, cap);
  if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(data, len, gray, w, h, err, cap);
  snprintf(err, cap, "not a JPEG or PNG image");
  return -1;
}

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t cap) {
  FILE *f = fopen(path, "rb");
  long n;
  uint8_t *b;
  if (!f) {
    snprintf(err, cap, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (unsigned long)n > MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    snprintf(err, cap, "%s: unreadable or larger than %u bytes", path, MAX_FILE_BYTES);
    return -1;
  }
  b = malloc(n ? (size_t)n : 1);
  if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    fclose(f);
    snprintf(err, cap, "%s: read failed", path);
    return -1;
  }
  fclose(f);
  *out = b;
  *len = (size_t)n;
  return 0;
}

int host_camera_capture(host_camera *c, tfa_frame *f, bool want_jpeg, int quality) {
  size_t tries;
  for (tries = 0; tries < c->count; tries++) {
    const char *path = c->files[c->next];
    c->next = (c->next + 1) % c->count;
    free(c->bytes);
    free(c->gray);
    free(c->jpeg);
    c->bytes = c->gray = c->jpeg = NULL;
    c->jpeg_len = 0;
    if (read_file(path, &c->bytes, &c->bytes_len, c->error, sizeof c->error) != 0) continue;
    if (host_decode_gray(c->bytes, c->bytes_len, &c->gray, &c->width, &c->height, c->error, sizeof c->error) != 0) {
      size_t n = strlen(c->error);
      snprintf(c->error + n, sizeof c->error - n, " (%s)", path);
      continue;
    }
    memset(f, 0, sizeof *f);
    f->gray = c->gray;
    f->width = c->width;
    f->height = c->height;
    f->stride = c->width;
    if (want_jpeg) {
      if (c->bytes[0] == 0xFF) { /* a JPEG file goes out as it is */
        f->jpeg = c->bytes;
        f->jpeg_len = c->bytes_len;
      } else if (host_encode_jpeg(c->gray, c->width, c->height, quality, &c->jpeg, &c->jpeg_len) == 0) {
        f->jpeg = c->jpeg;
        f->jpeg_len = c->jpeg_len;
      }
    }
    return 0;
  }
  return -1;
}
