/*
 * Small JSON for the TinyFER app: a writer into a caller buffer and a bounded reader.
 *
 * Writer: never writes past `cap`; once something does not fit, `overflow` is set and every
 * later call is a no-op, so the caller checks once at the end (tfa_jw_finish).
 *
 * Reader: tfa_json_parse() checks the whole text against the JSON grammar (RFC 8259) and
 * fills a flat array of tokens (objects, arrays, strings, numbers, literals) that point into
 * the text; it never reads outside text[0..len), rejects anything deeper than TFA_JSON_MAX_DEPTH,
 * and fails cleanly when the token array is full. Accessors look keys up and copy values out
 * with explicit bounds.
 */
#ifndef TFA_JSON_H
#define TFA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- writer ---- */

#define TFA_JW_MAX_DEPTH 16

typedef struct {
  char *buf;
  size_t cap;
  size_t len;
  bool overflow;
  int depth;
  bool first[TFA_JW_MAX_DEPTH]; /* no member written yet at this depth */
  bool after_key;               /* a key was written; the next value takes no comma */
} tfa_jw;

void tfa_jw_init(tfa_jw *w, char *buf, size_t cap);
void tfa_jw_obj_begin(tfa_jw *w);
void tfa_jw_obj_end(tfa_jw *w);
void tfa_jw_arr_begin(tfa_jw *w);
void tfa_jw_arr_end(tfa_jw *w);
void tfa_jw_key(tfa_jw *w, const char *key);
void tfa_jw_str(tfa_jw *w, const char *s);
void tfa_jw_strn(tfa_jw *w, const char *s, size_t n);
void tfa_jw_int(tfa_jw *w, int64_t v);
void tfa_jw_uint(tfa_jw *w, uint64_t v);
/* A finite number with at most `decimals` digits after the point, trailing zeros dropped
 * (so 0.5 is "0.5" and 3.0 is "3"); NaN and infinities are written as 0 and set overflow. */
void tfa_jw_num(tfa_jw *w, double v, int decimals);
void tfa_jw_bool(tfa_jw *w, bool v);
void tfa_jw_null(tfa_jw *w);
/* Inserts n bytes of JSON text (already valid, e.g. from tfa_config_to_json) as one value. */
void tfa_jw_raw(tfa_jw *w, const char *json, size_t n);
/* NUL-terminates and returns the length, or -1 when the text did not fit (or nesting is open). */
int tfa_jw_finish(tfa_jw *w);

/* ---- reader ---- */

#define TFA_JSON_MAX_DEPTH 16

typedef enum { TFA_JSON_OBJECT = 1, TFA_JSON_ARRAY, TFA_JSON_STRING, TFA_JSON_NUMBER, TFA_JSON_TRUE, TFA_JSON_FALSE, TFA_JSON_NULL } tfa_json_type;

typedef struct {
  uint8_t type;       /* tfa_json_type */
  uint32_t start;     /* strings: first byte after the opening quote; others: first byte */
  uint32_t end;       /* strings: the closing quote; others: one past the last byte */
  uint32_t size;      /* objects: members; arrays: elements */
  uint32_t next;      /* index of the token after this value's subtree */
  bool escaped;       /* strings: contains at least one backslash escape */
} tfa_jtok;

enum {
  TFA_JSON_ERR_SYNTAX = -1,
  TFA_JSON_ERR_DEPTH = -2,
  TFA_JSON_ERR_TOKENS = -3, /* more values than the token array holds */
  TFA_JSON_ERR_SIZE = -4    /* text longer than 2^31 bytes */
};

typedef struct {
  const char *text;
  size_t len;
  tfa_jtok *tok;
  int count;
} tfa_json;

/* Parses text[0..len) (NUL not needed). Returns the token count (>= 1) or a TFA_JSON_ERR_*.
 * Keys of an object are tokens too: members are key, value, key, value... */
int tfa_json_parse(tfa_json *doc, const char *text, size_t len, tfa_jtok *tokens, int max_tokens);
const char *tfa_json_strerror(int err);

/* Index of the value of `key` in object token `obj`, or -1 (also when `obj` is not an object).
 * Keys are compared after unescaping. */
int tfa_json_get(const tfa_json *doc, int obj, const char *key);
/* Iterate an object's members: `*key` and `*val` get the token indices; start with it = 0. */
bool tfa_json_member(const tfa_json *doc, int obj, uint32_t *it, int *key, int *val);
/* True when string token `t` equals `s` (after unescaping). */
bool tfa_json_eq(const tfa_json *doc, int t, const char *s);
/* Unescapes string token `t` into out[0..cap) with a NUL; returns the byte length, or -1 when
 * `t` is not a string, the value does not fit, or it holds a \u0000. */
int tfa_json_str(const tfa_json *doc, int t, char *out, size_t cap);
/* Number token -> double; false when `t` is not a number. */
bool tfa_json_num(const tfa_json *doc, int t, double *out);
/* Number token that is an integer in [lo, hi]. */
bool tfa_json_int(const tfa_json *doc, int t, int64_t lo, int64_t hi, int64_t *out);
bool tfa_json_bool(const tfa_json *doc, int t, bool *out);

#ifdef __cplusplus
}
#endif
#endif
