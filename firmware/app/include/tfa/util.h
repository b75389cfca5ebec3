/* Small pure helpers of the TinyFER app: base64, hex, the 20-byte chunk header of
 * docs/protocol.md (frame/chunk and ota/chunk), and the grayscale face crop. */
#ifndef TFA_UTIL_H
#define TFA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- base64 (RFC 4648, standard alphabet, '=' padding) ---- */

/* Bytes base64 text of length n decodes to at most. */
#define TFA_B64_MAX_DECODED(n) (((n) / 4u) * 3u)
/* Decodes src[0..n) into out[0..cap). Whitespace and any other character are errors; returns
 * the decoded length or -1. */
long tfa_b64_decode(const char *src, size_t n, uint8_t *out, size_t cap);
/* Encodes; returns the text length (NUL added) or -1 when cap is too small. */
long tfa_b64_encode(const uint8_t *src, size_t n, char *out, size_t cap);

/* ---- hex ---- */

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void tfa_hex(const uint8_t *src, size_t n, char *out);
/* Parses exactly 2n hex digits (either case) into n bytes; false on anything else. */
bool tfa_unhex(const char *src, size_t len, uint8_t *out, size_t n);

/* ---- chunk header ---- */

#define TFA_CHUNK_HEADER_BYTES 20
#define TFA_CHUNK_MAGIC 0x5446u
#define TFA_CHUNK_VERSION 1u

typedef struct {
  uint32_t id;     /* frame id or model transfer id */
  uint16_t index;  /* 0-based */
  uint16_t count;  /* >= 1 */
  uint32_t total;  /* size of the reassembled object */
  uint32_t offset; /* where this chunk's bytes go */
} tfa_chunk_hdr;

void tfa_chunk_encode(const tfa_chunk_hdr *h, uint8_t out[TFA_CHUNK_HEADER_BYTES]);
/* Checks magic, version, index < count, total >= 1, 1 <= data bytes, offset + data <= total.
 * On success data and data_len give the bytes after the header. Returns 0 or -1. */
int tfa_chunk_decode(const uint8_t *msg, size_t len, tfa_chunk_hdr *h, const uint8_t **data, size_t *data_len);

/* ---- images ---- */

typedef struct {
  uint16_t x, y, w, h;
} tfa_box;

/* The largest centred square of a w x h frame: the one face of a small frame (tfa_detect_frame:
 * a FER2013 frame is a face crop). */
tfa_box tfa_centre_square(uint16_t w, uint16_t h);
/* Crops box out of a grayscale frame (row stride `stride` bytes) and resizes it to 48x48.
 * A 48x48 box is copied byte for byte (FER2013 frames go through unchanged); a larger box is
 * shrunk by area averaging (each output pixel is the rounded mean of the source pixels it
 * covers), a smaller one is enlarged by nearest neighbour. The box is clipped to the frame;
 * returns -1 when nothing of it is inside. */
int tfa_crop_gray48(const uint8_t *gray, uint16_t w, uint16_t h, size_t stride, tfa_box box, uint8_t out[48 * 48]);

#ifdef __cplusplus
}
#endif
#endif
