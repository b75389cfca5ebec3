/* Small JSON writer and bounded reader: see tfa/json.h. */
#include "tfa/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writer */

void tfa_jw_init(tfa_jw *w, char *buf, size_t cap) {
  memset(w, 0, sizeof *w);
  w->buf = buf;
  w->cap = cap;
  w->first[0] = true;
  if (cap == 0) w->overflow = true;
}

static void put(tfa_jw *w, const char *s, size_t n) {
  if (w->overflow) return;
  if (n >= w->cap - w->len) { /* keep one byte for the NUL */
    w->overflow = true;
    return;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void putc_(tfa_jw *w, char c) { put(w, &c, 1); }

/* Comma handling before a value or a key. */
static void sep(tfa_jw *w) {
  if (w->after_key) {
    w->after_key = false;
    return;
  }
  if (!w->first[w->depth]) putc_(w, ',');
  w->first[w->depth] = false;
}

static void open_(tfa_jw *w, char c) {
  sep(w);
  putc_(w, c);
  if (w->depth + 1 >= TFA_JW_MAX_DEPTH) {
    w->overflow = true;
    return;
  }
  w->depth++;
  w->first[w->depth] = true;
}

static void close_(tfa_jw *w, char c) {
  if (w->depth == 0 || w->after_key) {
    w->overflow = true;
    return;
  }
  w->depth--;
  putc_(w, c);
}

void tfa_jw_obj_begin(tfa_jw *w) { open_(w, '{'); }
void tfa_jw_obj_end(tfa_jw *w) { close_(w, '}'); }
void tfa_jw_arr_begin(tfa_jw *w) { open_(w, '['); }
void tfa_jw_arr_end(tfa_jw *w) { close_(w, ']'); }

static void str_body(tfa_jw *w, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i;
  putc_(w, '"');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': put(w, "\\\"", 2); break;
      case '\\': put(w, "\\\\", 2); break;
      case '\n': put(w, "\\n", 2); break;
      case '\r': put(w, "\\r", 2); break;
      case '\t': put(w, "\\t", 2); break;
      default:
        if (c < 0x20) {
          char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          put(w, e, 6);
        } else {
          putc_(w, (char)c);
        }
    }
  }
  putc_(w, '"');
}

void tfa_jw_key(tfa_jw *w, const char *key) {
  sep(w);
  str_body(w, key, strlen(key));
  putc_(w, ':');
  w->after_key = true;
}

void tfa_jw_strn(tfa_jw *w, const char *s, size_t n) {
  sep(w);
  str_body(w, s, n);
}

void tfa_jw_str(tfa_jw *w, const char *s) { tfa_jw_strn(w, s, strlen(s)); }

void tfa_jw_int(tfa_jw *w, int64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%lld", (long long)v);
  sep(w);
  put(w, b, (size_t)n);
}

void tfa_jw_uint(tfa_jw *w, uint64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  sep(w);
  put(w, b, (size_t)n);
}

void tfa_jw_num(tfa_jw *w, double v, int decimals) {
  char b[48];
  int n;
  sep(w);
  if (!isfinite(v) || fabs(v) > 1e15) {
    put(w, "0", 1);
    w->overflow = true;
    return;
  }
  if (decimals < 0) decimals = 0;
  if (decimals > 9) decimals = 9;
  n = snprintf(b, sizeof b, "%.*f", decimals, v);
  if (n <= 0 || (size_t)n >= sizeof b) {
    w->overflow = true;
    return;
  }
  if (memchr(b, '.', (size_t)n)) {
    while (n > 0 && b[n - 1] == '0') n--;
    if (n > 0 && b[n - 1] == '.') n--;
  }
  if (n == 2 && b[0] == '-' && b[1] == '0') { /* -0 */
    b[0] = '0';
    n = 1;
  }
  put(w, b, (size_t)n);
}

void tfa_jw_bool(tfa_jw *w, bool v) {
  sep(w);
  if (v) put(w, "true", 4);
  else put(w, "false", 5);
}

void tfa_jw_null(tfa_jw *w) {
  sep(w);
  put(w, "null", 4);
}

void tfa_jw_raw(tfa_jw *w, const char *json, size_t n) {
  sep(w);
  put(w, json, n);
}

int tfa_jw_finish(tfa_jw *w) {
  if (w->overflow || w->depth != 0 || w->after_key) {
    if (w->cap) w->buf[0] = '\0';
    return -1;
  }
  w->buf[w->len] = '\0';
  return (int)w->len;
}

/* ---------------------------------------------------------------- reader */

typedef struct {
  const char *s;
  size_t len;
  size_t pos;
  tfa_jtok *tok;
  int max;
  int count;
} parser;

static void ws(parser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int new_tok(parser *p, tfa_json_type type) {
  tfa_jtok *t;
  if (p->count >= p->max) return TFA_JSON_ERR_TOKENS;
  t = &p->tok[p->count];
  memset(t, 0, sizeof *t);
  t->type = (uint8_t)type;
  t->start = (uint32_t)p->pos;
  return p->count++;
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_string(parser *p) {
  int i;
  bool escaped = false;
  /* at the opening quote */
  p->pos++;
  i = new_tok(p, TFA_JSON_STRING);
  if (i < 0) return i;
  while (p->pos < p->len) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '"') {
      p->tok[i].end = (uint32_t)p->pos;
      p->tok[i].escaped = escaped;
      p->tok[i].next = (uint32_t)(i + 1);
      p->pos++;
      return i;
    }
    if (c < 0x20) return TFA_JSON_ERR_SYNTAX;
    if (c == '\\') {
      escaped = true;
      if (p->pos + 1 >= p->len) return TFA_JSON_ERR_SYNTAX;
      c = (unsigned char)p->s[p->pos + 1];
      if (c == 'u') {
        int k;
        if (p->pos + 6 > p->len) return TFA_JSON_ERR_SYNTAX;
        for (k = 2; k < 6; k++)
          if (!is_hex(p->s[p->pos + (size_t)k])) return TFA_JSON_ERR_SYNTAX;
        p->pos += 6;
        continue;
      }
      if (!strchr("\"\\/bfnrt", (int)c) || c == 0) return TFA_JSON_ERR_SYNTAX;
      p->pos += 2;
      continue;
    }
    p->pos++;
  }
  return TFA_JSON_ERR_SYNTAX;
}

static int parse_number(parser *p) {
  size_t q = p->pos;
  int i;
  if (q < p->len && p->s[q] == '-') q++;
  if (q >= p->len) return TFA_JSON_ERR_SYNTAX;
  if (p->s[q] == '0') {
    q++;
  } else if (p->s[q] >= '1' && p->s[q] <= '9') {
    while (q < p->len && is_digit(p->s[q])) q++;
  } else {
    return TFA_JSON_ERR_SYNTAX;
  }
  if (q < p->len && p->s[q] == '.') {
    q++;
    if (q >= p->len || !is_digit(p->s[q])) return TFA_JSON_ERR_SYNTAX;
    while (q < p->len && is_digit(p->s[q])) q++;
  }
  if (q < p->len && (p->s[q] == 'e' || p->s[q] == 'E')) {
    q++;
    if (q < p->len && (p->s[q] == '+' || p->s[q] == '-')) q++;
    if (q >= p->len || !is_digit(p->s[q])) return TFA_JSON_ERR_SYNTAX;
    while (q < p->len && is_digit(p->s[q])) q++;
  }
  i = new_tok(p, TFA_JSON_NUMBER);
  if (i < 0) return i;
  p->tok[i].end = (uint32_t)q;
  p->tok[i].next = (uint32_t)(i + 1);
  p->pos = q;
  return i;
}

static int parse_literal(parser *p, const char *word, tfa_json_type type) {
  size_t n = strlen(word);
  int i;
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return TFA_JSON_ERR_SYNTAX;
  i = new_tok(p, type);
  if (i < 0) return i;
  p->pos += n;
  p->tok[i].end = (uint32_t)p->pos;
  p->tok[i].next = (uint32_t)(i + 1);
  return i;
}

static int parse_value(parser *p, int depth);

static int parse_container(parser *p, int depth, bool object) {
  int i, r;
  char close = object ? '}' : ']';
  if (depth >= TFA_JSON_MAX_DEPTH) return TFA_JSON_ERR_DEPTH;
  i = new_tok(p, object ? TFA_JSON_OBJECT : TFA_JSON_ARRAY);
  if (i < 0) return i;
  p->pos++; /* the opening bracket */
  ws(p);
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
  } else {
    for (;;) {
      ws(p);
      if (object) {
        if (p->pos >= p->len || p->s[p->pos] != '"') return TFA_JSON_ERR_SYNTAX;
        r = parse_string(p);
        if (r < 0) return r;
        ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return TFA_JSON_ERR_SYNTAX;
        p->pos++;
        ws(p);
      }
      r = parse_value(p, depth + 1);
      if (r < 0) return r;
      p->tok[i].size++;
      ws(p);
      if (p->pos >= p->len) return TFA_JSON_ERR_SYNTAX;
      if (p->s[p->pos] == ',') {
        p->pos++;
        continue;
      }
      if (p->s[p->pos] == close) {
        p->pos++;
        break;
      }
      return TFA_JSON_ERR_SYNTAX;
    }
  }
  p->tok[i].end = (uint32_t)p->pos;
  p->tok[i].next = (uint32_t)p->count;
  return i;
}

static int parse_value(parser *p, int depth) {
  if (p->pos >= p->len) return TFA_JSON_ERR_SYNTAX;
  switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", TFA_JSON_TRUE);
    case 'f': return parse_literal(p, "false", TFA_JSON_FALSE);
    case 'n': return parse_literal(p, "null", TFA_JSON_NULL);
    default: return parse_number(p);
  }
}

int tfa_json_parse(tfa_json *doc, const char *text, size_t len, tfa_jtok *tokens, int max_tokens) {
  parser p;
  int r;
  memset(doc, 0, sizeof *doc);
  if (!text || !tokens || max_tokens <= 0) return TFA_JSON_ERR_TOKENS;
  if (len > 0x7FFFFFFFu) return TFA_JSON_ERR_SIZE;
  p.s = text;
  p.len = len;
  p.pos = 0;
  p.tok = tokens;
  p.max = max_tokens;
  p.count = 0;
  ws(&p);
  r = parse_value(&p, 0);
  if (r < 0) return r;
  ws(&p);
  if (p.pos != p.len) return TFA_JSON_ERR_SYNTAX;
  doc->text = text;
  doc->len = len;
  doc->tok = tokens;
  doc->count = p.count;
  return p.count;
}

const char *tfa_json_strerror(int err) {
  switch (err) {
    case TFA_JSON_ERR_SYNTAX: return "not valid JSON";
    case TFA_JSON_ERR_DEPTH: return "JSON nested too deeply";
    case TFA_JSON_ERR_TOKENS: return "JSON has too many values";
    case TFA_JSON_ERR_SIZE: return "JSON text too long";
    default: return err >= 0 ? "ok" : "JSON error";
  }
}

static bool valid(const tfa_json *doc, int t) { return doc && doc->tok && t >= 0 && t < doc->count; }

bool tfa_json_member(const tfa_json *doc, int obj, uint32_t *it, int *key, int *val) {
  uint32_t k;
  if (!valid(doc, obj) || doc->tok[obj].type != TFA_JSON_OBJECT) return false;
  k = *it == 0 ? (uint32_t)obj + 1 : *it;
  if (k >= doc->tok[obj].next) return false;
  *key = (int)k;
  *val = (int)k + 1;
  *it = doc->tok[k + 1].next;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

static uint32_t u4(const char *s) {
  return (uint32_t)(hexval(s[0]) << 12 | hexval(s[1]) << 8 | hexval(s[2]) << 4 | hexval(s[3]));
}

/* Decodes the escape at s[i] (a backslash) into out[0..4); returns bytes written, advances *i. */
static int unescape_one(const char *s, size_t end, size_t *i, char out[4]) {
  char c = s[*i + 1];
  uint32_t cp;
  *i += 2;
  switch (c) {
    case 'b': out[0] = '\b'; return 1;
    case 'f': out[0] = '\f'; return 1;
    case 'n': out[0] = '\n'; return 1;
    case 'r': out[0] = '\r'; return 1;
    case 't': out[0] = '\t'; return 1;
    case 'u': break;
    default: out[0] = c; return 1;
  }
  cp = u4(s + *i);
  *i += 4;
  if (cp >= 0xD800 && cp <= 0xDBFF && *i + 6 <= end && s[*i] == '\\' && s[*i + 1] == 'u') {
    uint32_t lo = u4(s + *i + 2);
    if (lo >= 0xDC00 && lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      *i += 6;
    }
  }
  if (cp == 0) return -1;
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* lone surrogate */
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int tfa_json_str(const tfa_json *doc, int t, char *out, size_t cap) {
  const tfa_jtok *k;
  size_t i, n = 0;
  if (!valid(doc, t) || !out || cap == 0) return -1;
  k = &doc->tok[t];
  if (k->type != TFA_JSON_STRING) return -1;
  for (i = k->start; i < k->end;) {
    char tmp[4];
    int m;
    if (doc->text[i] == '\\') {
      m = unescape_one(doc->text, k->end, &i, tmp);
      if (m < 0) return -1;
    } else {
      tmp[0] = doc->text[i++];
      m = 1;
    }
    if ((size_t)m >= cap - n) return -1;
    memcpy(out + n, tmp, (size_t)m);
    n += (size_t)m;
  }
  out[n] = '\0';
  return (int)n;
}

bool tfa_json_eq(const tfa_json *doc, int t, const char *s) {
  const tfa_jtok *k;
  size_t n = strlen(s);
  if (!valid(doc, t) || doc->tok[t].type != TFA_JSON_STRING) return false;
  k = &doc->tok[t];
  if (!k->escaped) return k->end - k->start == n && memcmp(doc->text + k->start, s, n) == 0;
  {
    char buf[128];
    int m = tfa_json_str(doc, t, buf, sizeof buf);
    return m >= 0 && (size_t)m == n && memcmp(buf, s, n) == 0;
  }
}

int tfa_json_get(const tfa_json *doc, int obj, const char *key) {
  uint32_t it = 0;
  int k, v;
  while (tfa_json_member(doc, obj, &it, &k, &v))
    if (tfa_json_eq(doc, k, key)) return v;
  return -1;
}

bool tfa_json_num(const tfa_json *doc, int t, double *out) {
  char buf[64];
  size_t n;
  char *endp;
  if (!valid(doc, t) || doc->tok[t].type != TFA_JSON_NUMBER) return false;
  n = doc->tok[t].end - doc->tok[t].start;
  if (n == 0 || n >= sizeof buf) return false;
  memcpy(buf, doc->text + doc->tok[t].start, n);
  buf[n] = '\0';
  *out = strtod(buf, &endp);
  return endp == buf + n && isfinite(*out);
}

bool tfa_json_int(const tfa_json *doc, int t, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (!tfa_json_num(doc, t, &d)) return false;
  if (d != floor(d) || d < (double)lo || d > (double)hi) return false;
  *out = (int64_t)d;
  return true;
}

bool tfa_json_bool(const tfa_json *doc, int t, bool *out) {
  if (!valid(doc, t)) return false;
  if (doc->tok[t].type == TFA_JSON_TRUE) *out = true;
  else if (doc->tok[t].type == TFA_JSON_FALSE) *out = false;
  else return false;
  return true;
}
