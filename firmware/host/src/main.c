/*
 * tinyfer-device: the TinyFER app (firmware/app) on Linux, a virtual XIAO ESP32S3 Sense.
 * Camera = image files, face detector = the app's (firmware/app/src/detect.c; frames of at most
 * 64 px, FER crops, are one face), settings/slots = files, SHA-256 = libsodium (Ed25519: the app's
 * own verifier, as on the device), MQTT 5 (or 3.1.1) = libmosquitto.
 * Single-threaded: mosquitto_loop() delivers messages in this thread between app steps.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "tfa/app.h"
#include "tfa/detect.h"

/* The firmware version this binary reports (a test build of an update sets another one). */
#ifndef TFA_HOST_FIRMWARE
#define TFA_HOST_FIRMWARE TFA_FIRMWARE_VERSION "-linux"
#endif

#define ARENA_BYTES (512u * 1024u)
#define SCRATCH_BYTES (64u * 1024u)

static const char kUsage[] =
    "usage: tinyfer-device --id <device-id> --frames <image|dir> [options]\n"
    "  --broker URL        mqtt://host:port (default mqtt://127.0.0.1:1883) or mqtts://host:port (TLS, default port 8883)\n"
    "  --ca FILE           CA certificate (PEM) the broker's certificate must chain to; required with mqtts://\n"
    "  --cert FILE --key FILE  client certificate and key (PEM), for brokers that authenticate by certificate\n"
    "  --username U        MQTT username (default: the device id, as the shipped broker ACL expects)\n"
    "  --password-file F   file whose first line is the MQTT password (never given on the command line)\n"
    "  --id ID             device id ([A-Za-z0-9][A-Za-z0-9_-]{0,63})\n"
    "  --frames PATH       a JPEG/PNG file or a folder of them, cycled in name order\n"
    "  --model FILE        the built-in model blob (.tfer), slot 0\n"
    "  --model-key FILE    Ed25519 public key model updates must be signed with\n"
    "                      (SPKI PEM, 64 hex digits or 32 raw bytes); without it model_update is refused\n"
    "  --settings FILE     persistent settings (config, active OTA model); model and app slots go beside it\n"
    "  --firmware-key FILE Ed25519 public key firmware updates must be signed with (as --model-key);\n"
    "                      needs --settings; without it firmware_update is refused\n"
    "  --confirm-ms N      a new firmware must reach the broker within N ms of its trial boot, or the\n"
    "                      previous one is booted again (default 30000)\n"
    "  --ota-timeout-ms N  a chunked update not complete after N ms fails (default 60000)\n"
    "  --prefix P          topic prefix (default tinyfer)\n"
    "  --interval-ms N     capture interval until a config says otherwise (default 500)\n"
    "  --telemetry-ms N    telemetry interval (default 5000)\n"
    "  --frames-enabled    publish frames from the start (default off: privacy)\n"
    "  --threshold X       confidence threshold until a config says otherwise (default 0.5)\n"
    "  --chunk-bytes N     frame bytes per chunk, the device buffer (default 8192)\n"
    "  --mqtt 5|3          protocol version (default 5; 3 = MQTT 3.1.1)\n"
    "  --keepalive S       MQTT keepalive seconds (default 15)\n"
    "  --dry-run N         no broker: capture N frames and print what would be published\n"
    "  -v / -q             more / less logging (stderr)\n";

typedef struct {
  host_camera cam;
  host_storage store;
  struct mosquitto *mosq;
  tfa_app app;
  const char *id;
  int verbosity;
  bool dry_run;
  bool v5;
  bool connected;
  int last_mid, acked_mid;
  bool reboot;
  uint32_t reboot_delay;
  char ip[64];
  host_apps apps;
} host;

static host g;
static volatile sig_atomic_t g_stop;

static void on_signal(int s) {
  (void)s;
  g_stop = 1;
}

/* ---------------------------------------------------------------- platform */

static uint64_t p_now_us(void *ctx) {
  struct timespec t;
  (void)ctx;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static uint64_t p_epoch_ms(void *ctx) {
  struct timespec t;
  (void)ctx;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int p_capture(void *ctx, tfa_frame *f, bool want_jpeg, int quality) {
  host *h = ctx;
  if (host_camera_capture(&h->cam, f, want_jpeg, quality) != 0) {
    fprintf(stderr, "[%s] camera: %s\n", h->id, h->cam.error);
    return -1;
  }
  return 0;
}

/* The app's face detector (tfa/detect.h), the same code the device runs; frames of at most
 * 64 px (FER2013 crops) are one face. */
static int p_detect(void *ctx, const tfa_frame *f, tfa_box *boxes, int max) {
  static tfa_detector det;
  (void)ctx;
  return tfa_detect_frame(&det, f->gray, f->width, f->height, f->stride, boxes, max);
}

static int p_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos, bool retain, const uint8_t *corr,
                     size_t corr_len) {
  host *h = ctx;
  mosquitto_property *props = NULL;
  int mid = 0, rc;
  if (h->dry_run) {
    const char *p = payload;
    if (len && p[0] == '{') printf("%s %.*s\n", topic, (int)len, p);
    else printf("%s <%lu bytes>\n", topic, (unsigned long)len);
    fflush(stdout);
    return 0;
  }
  if (!h->connected) return -1;
  if (corr && corr_len && h->v5) mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr, (uint16_t)corr_len);
  rc = mosquitto_publish_v5(h->mosq, &mid, topic, (int)len, payload, qos, retain, props);
  mosquitto_property_free_all(&props);
  if (rc != MOSQ_ERR_SUCCESS) {
    if (h->verbosity >= 1) fprintf(stderr, "[%s] publish %s: %s\n", h->id, topic, mosquitto_strerror(rc));
    return -1;
  }
  if (qos > 0) h->last_mid = mid;
  return 0;
}

static int p_subscribe(void *ctx, const char *filter, int qos) {
  host *h = ctx;
  if (h->dry_run) return 0;
  return mosquitto_subscribe(h->mosq, NULL, filter, qos) == MOSQ_ERR_SUCCESS ? 0 : -1;
}

static int p_settings_get(void *ctx, const char *key, char *out, size_t cap) { return host_settings_get(&((host *)ctx)->store, key, out, cap); }
static int p_settings_set(void *ctx, const char *key, const char *value) { return host_settings_set(&((host *)ctx)->store, key, value); }
static size_t p_slot_capacity(void *ctx, int slot) { return host_slot_capacity(&((host *)ctx)->store, slot); }
static int p_slot_begin(void *ctx, int slot, size_t size) { return host_slot_begin(&((host *)ctx)->store, slot, size); }
static int p_slot_write(void *ctx, int slot, size_t off, const void *d, size_t n) { return host_slot_write(&((host *)ctx)->store, slot, off, d, n); }
static int p_slot_map(void *ctx, int slot, size_t size, const uint8_t **d) { return host_slot_map(&((host *)ctx)->store, slot, size, d); }

static int p_sha256(void *ctx, const void *d, size_t n, uint8_t out[32]) {
  (void)ctx;
  return host_sha256(d, n, out);
}

static void p_sysinfo(void *ctx, tfa_sysinfo *si) {
  FILE *f;
  char line[256];
  (void)ctx;
  si->heap_free = 0;
  si->psram_free = 0;
  si->rssi = 0; /* no radio: a virtual device is "wired" */
  si->temp_c = 0.0;
  if ((f = fopen("/proc/meminfo", "r")) != NULL) {
    unsigned long kb;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %lu kB", &kb) == 1) si->heap_free = kb > 0xFFFFFFFFul / 1024 ? 0xFFFFFFFFu : (uint32_t)(kb * 1024);
    fclose(f);
  }
  if ((f = fopen("/sys/class/thermal/thermal_zone0/temp", "r")) != NULL) {
    long mc;
    if (fscanf(f, "%ld", &mc) == 1) si->temp_c = (double)mc / 1000.0;
    fclose(f);
  }
}

static const char *p_ip(void *ctx) {
  host *h = ctx;
  struct sockaddr_storage a;
  socklen_t n = sizeof a;
  int fd = h->mosq ? mosquitto_socket(h->mosq) : -1;
  if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &n) != 0) return NULL;
  if (a.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, h->ip, sizeof h->ip);
  else if (a.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, h->ip, sizeof h->ip);
  else return NULL;
  return h->ip;
}

static void p_reboot(void *ctx, uint32_t delay_ms) {
  host *h = ctx;
  h->reboot = true;
  h->reboot_delay = delay_ms;
}

static int p_app_begin(void *ctx, size_t size) { return host_app_begin(&((host *)ctx)->apps, size); }
static int p_app_write(void *ctx, size_t off, const void *d, size_t n) { return host_app_write(&((host *)ctx)->apps, off, d, n); }
static int p_app_finish(void *ctx, size_t size, const uint8_t sha256[32], const char *version) {
  (void)version;
  return host_app_finish(&((host *)ctx)->apps, size, sha256);
}
static void p_app_confirm(void *ctx) { host_app_confirm(&((host *)ctx)->apps); }

static void p_log(void *ctx, int level, const char *msg) {
  host *h = ctx;
  static const char *const names[] = {"error", "warn", "info", "debug"};
  if (level <= h->verbosity) fprintf(stderr, "[%s] %s: %s\n", h->id, names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

static const tfa_platform kPlatform = {
    &g,           p_now_us,       p_epoch_ms,      p_capture,    NULL,         p_detect,   p_publish,
    p_subscribe,  p_settings_get, p_settings_set,  p_slot_capacity, p_slot_begin, p_slot_write, p_slot_map,
    p_sha256,     p_sysinfo,       p_ip,         p_reboot,     p_log,
    p_app_begin,  p_app_write,    p_app_finish,    p_app_confirm};

/* ---------------------------------------------------------------- MQTT */

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *props) {
  host *h = ud;
  (void)m;
  (void)flags;
  (void)props;
  if (rc != 0) {
    fprintf(stderr, "[%s] connect refused: %s\n", h->id, mosquitto_reason_string(rc));
    return;
  }
  h->connected = true;
  tfa_app_on_connected(&h->app);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc, const mosquitto_property *props) {
  host *h = ud;
  (void)m;
  (void)props;
  h->connected = false;
  tfa_app_on_disconnected(&h->app);
  if (rc != 0 && h->verbosity >= 1) fprintf(stderr, "[%s] connection lost (%d)\n", h->id, rc);
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason, const mosquitto_property *props) {
  host *h = ud;
  (void)m;
  (void)reason;
  (void)props;
  h->acked_mid = mid;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg, const mosquitto_property *props) {
  host *h = ud;
  tfa_msg_props mp;
  char *resp = NULL;
  void *corr = NULL;
  uint16_t corr_len = 0;
  (void)m;
  memset(&mp, 0, sizeof mp);
  if (props) {
    mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &resp, false);
    mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len, false);
  }
  mp.response_topic = resp;
  mp.correlation = corr;
  mp.correlation_len = corr_len;
  tfa_app_on_message(&h->app, msg->topic, msg->payload, (size_t)msg->payloadlen, &mp);
  free(resp);
  free(corr);
}

static int parse_broker(const char *url, char *host_out, size_t cap, int *port, bool *tls) {
  const char *p = url, *colon;
  size_t n;
  *tls = false;
  if (strncmp(p, "mqtt://", 7) == 0) p += 7;
  else if (strncmp(p, "tcp://", 6) == 0) p += 6;
  else if (strncmp(p, "mqtts://", 8) == 0) p += 8, *tls = true;
  else if (strncmp(p, "ssl://", 6) == 0) p += 6, *tls = true;
  else if (strstr(p, "://")) return -1;
  colon = strrchr(p, ':');
  n = colon ? (size_t)(colon - p) : strlen(p);
  if (n == 0 || n >= cap) return -1;
  memcpy(host_out, p, n);
  host_out[n] = '\0';
  *port = colon ? atoi(colon + 1) : *tls ? 8883 : 1883;
  return *port > 0 && *port < 65536 ? 0 : -1;
}

/* Wait (up to ms) until the last QoS 1 publish is acknowledged. */
static void flush(host *h, int ms) {
  uint64_t until = p_now_us(h) + (uint64_t)ms * 1000u;
  while (h->connected && h->acked_mid != h->last_mid && p_now_us(h) < until) mosquitto_loop(h->mosq, 20, 1);
}

/* The first line of a password file (no trailing newline); 0 or -1. The password is never logged. */
static int read_password(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n;
  if (!f) return -1;
  if (!fgets(out, (int)cap, f)) {
    fclose(f);
    return -1;
  }
  fclose(f);
  n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
  return n > 0 ? 0 : -1;
}

static void sleep_ms(uint32_t ms) {
  struct timespec t;
  t.tv_sec = ms / 1000;
  t.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&t, &t) != 0 && errno == EINTR && !g_stop) {
  }
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"broker", 1, 0, 'b'},      {"id", 1, 0, 'i'},          {"frames", 1, 0, 'f'},     {"model", 1, 0, 'm'},
      {"model-key", 1, 0, 'k'},   {"settings", 1, 0, 's'},    {"prefix", 1, 0, 'p'},     {"interval-ms", 1, 0, 'n'},
      {"telemetry-ms", 1, 0, 't'}, {"frames-enabled", 0, 0, 'F'}, {"threshold", 1, 0, 'T'}, {"chunk-bytes", 1, 0, 'c'},
      {"mqtt", 1, 0, 'M'},        {"keepalive", 1, 0, 'K'},   {"dry-run", 1, 0, 'D'},    {"help", 0, 0, 'h'},
      {"ca", 1, 0, 'A'},          {"cert", 1, 0, 'C'},        {"key", 1, 0, 'Y'},        {"username", 1, 0, 'u'},
      {"password-file", 1, 0, 'P'}, {"firmware-key", 1, 0, 'W'}, {"confirm-ms", 1, 0, 'O'}, {"ota-timeout-ms", 1, 0, 'L'},
      {0, 0, 0, 0}};
  const char *firmware_key = NULL;
  uint32_t confirm_ms = 30000;
  const char *ca = NULL, *cert = NULL, *cert_key = NULL, *username = NULL, *password_file = NULL;
  static char password[256];
  bool tls = false;
  int last_fail = MOSQ_ERR_SUCCESS;
  const char *broker = "mqtt://127.0.0.1:1883", *frames = NULL, *model = NULL, *key = NULL, *settings = NULL;
  tfa_options o;
  char hostname[256], err[512], client_id[96];
  int port, opt, mqtt_version = 5, keepalive = 15, dry = 0, rc, backoff = 250;
  static uint8_t *arena, *scratch;
  memset(&o, 0, sizeof o);
  o.prefix = "tinyfer";
  o.firmware = TFA_HOST_FIRMWARE;
  o.has_defaults = true;
  o.defaults = TFA_DEFAULT_CONFIG;
  g.verbosity = 2;
  while ((opt = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
    switch (opt) {
      case 'b': broker = optarg; break;
      case 'i': o.device_id = optarg; break;
      case 'f': frames = optarg; break;
      case 'm': model = optarg; break;
      case 'k': key = optarg; break;
      case 's': settings = optarg; break;
      case 'p': o.prefix = optarg; break;
      case 'n': o.defaults.capture_interval_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 't': o.telemetry_interval_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'F': o.defaults.frames_enabled = true; break;
      case 'T': o.defaults.confidence_threshold = strtod(optarg, NULL); break;
      case 'c': o.chunk_bytes = (size_t)strtoul(optarg, NULL, 10); break;
      case 'M': mqtt_version = atoi(optarg); break;
      case 'K': keepalive = atoi(optarg); break;
      case 'D': dry = atoi(optarg); break;
      case 'A': ca = optarg; break;
      case 'C': cert = optarg; break;
      case 'Y': cert_key = optarg; break;
      case 'u': username = optarg; break;
      case 'P': password_file = optarg; break;
      case 'W': firmware_key = optarg; break;
      case 'O': confirm_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'L': o.ota_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'v': g.verbosity++; break;
      case 'q': g.verbosity--; break;
      case 'h': fputs(kUsage, stdout); return 0;
      default: fputs(kUsage, stderr); return 2;
    }
  }
  g.id = o.device_id ? o.device_id : "?";
  if (!o.device_id || !frames) {
    fputs(kUsage, stderr);
    return 2;
  }
  if (o.defaults.capture_interval_ms < 50 || o.defaults.capture_interval_ms > 3600000 || !(o.defaults.confidence_threshold >= 0 && o.defaults.confidence_threshold <= 1) ||
      (mqtt_version != 5 && mqtt_version != 3) || keepalive < 5 || (o.chunk_bytes && (o.chunk_bytes < 256 || o.chunk_bytes > 16384))) {
    fprintf(stderr, "tinyfer-device: bad option value: --interval-ms 50..3600000, --threshold 0..1, --mqtt 5|3, --keepalive >= 5, --chunk-bytes 256..16384\n");
    return 2;
  }
  if (parse_broker(broker, hostname, sizeof hostname, &port, &tls) != 0) {
    fprintf(stderr, "tinyfer-device: bad --broker %s (mqtt://host:port or mqtts://host:port)\n", broker);
    return 2;
  }
  if (tls && !ca) {
    fprintf(stderr, "tinyfer-device: mqtts:// needs --ca (the CA the broker's certificate is checked against)\n");
    return 2;
  }
  if (!tls && (ca || cert || cert_key)) {
    fprintf(stderr, "tinyfer-device: --ca/--cert/--key need an mqtts:// broker\n");
    return 2;
  }
  if (!cert != !cert_key) {
    fprintf(stderr, "tinyfer-device: --cert and --key go together\n");
    return 2;
  }
  if (password_file && read_password(password_file, password, sizeof password) != 0) {
    fprintf(stderr, "tinyfer-device: --password-file %s: cannot read a password from its first line\n", password_file);
    return 1;
  }
  if (firmware_key && !settings) {
    fprintf(stderr, "tinyfer-device: --firmware-key needs --settings (the app slots go beside it)\n");
    return 2;
  }
  if (confirm_ms < 1000 || (o.ota_timeout_ms && o.ota_timeout_ms < 1000)) {
    fprintf(stderr, "tinyfer-device: --confirm-ms and --ota-timeout-ms are at least 1000\n");
    return 2;
  }
  /* The bootloader's part: boot the installed firmware, or a new one on trial (with rollback). */
  if (settings && !dry && host_app_init(&g.apps, settings, g.id) == 0) host_app_boot(&g.apps, argv, confirm_ms);
  if (host_crypto_init() != 0) {
    fprintf(stderr, "tinyfer-device: libsodium init failed\n");
    return 1;
  }
  if (host_camera_open(&g.cam, frames) != 0) {
    fprintf(stderr, "tinyfer-device: --frames: %s\n", g.cam.error);
    return 1;
  }
  if (host_storage_open(&g.store, settings) != 0) {
    fprintf(stderr, "tinyfer-device: --settings %s: %s\n", settings, strerror(errno));
    return 1;
  }
  if (model) {
    if (host_storage_load_builtin(&g.store, model, err, sizeof err) != 0) {
      fprintf(stderr, "tinyfer-device: --model: %s\n", err);
      return 1;
    }
    o.builtin_size = g.store.slot_size[0];
  }
  if (key) {
    if (host_read_public_key(key, o.model_key, err, sizeof err) != 0) {
      fprintf(stderr, "tinyfer-device: --model-key: %s\n", err);
      return 1;
    }
    o.has_model_key = true;
  }
  if (firmware_key) {
    if (host_read_public_key(firmware_key, o.firmware_key, err, sizeof err) != 0) {
      fprintf(stderr, "tinyfer-device: --firmware-key: %s\n", err);
      return 1;
    }
    o.has_firmware_key = g.apps.enabled;
  }
  arena = aligned_alloc(16, ARENA_BYTES);
  scratch = malloc(SCRATCH_BYTES);
  if (!arena || !scratch) return 1;
  o.arena = arena;
  o.arena_size = ARENA_BYTES;
  o.scratch = scratch;
  o.scratch_size = SCRATCH_BYTES;
  g.dry_run = dry > 0;
  g.v5 = mqtt_version == 5;
  if (tfa_app_init(&g.app, &kPlatform, &o) != 0) {
    fprintf(stderr, "tinyfer-device: bad --id or --prefix\n");
    return 2;
  }
  if (g.dry_run) {
    int i;
    tfa_app_on_connected(&g.app);
    for (i = 0; i < dry; i++) tfa_app_capture_once(&g.app);
    return 0;
  }

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  mosquitto_lib_init();
  snprintf(client_id, sizeof client_id, "tinyfer-dev-%s", o.device_id);
  g.mosq = mosquitto_new(client_id, true, &g);
  if (!g.mosq) return 1;
  mosquitto_int_option(g.mosq, MOSQ_OPT_PROTOCOL_VERSION, g.v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  if (tls) {
    /* The broker's certificate must chain to --ca and name the host we dial (libmosquitto checks
     * the host name unless told otherwise; we never tell it otherwise). */
    rc = mosquitto_tls_set(g.mosq, ca, NULL, cert, cert_key, NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(g.mosq, 1 /* SSL_VERIFY_PEER */, "tlsv1.2", NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
      fprintf(stderr, "tinyfer-device: TLS setup (--ca %s%s%s): %s\n", ca, cert ? ", --cert " : "", cert ? cert : "", mosquitto_strerror(rc));
      return 1;
    }
  }
  if (password_file || username) {
    rc = mosquitto_username_pw_set(g.mosq, username ? username : o.device_id, password_file ? password : NULL);
    memset(password, 0, sizeof password); /* libmosquitto keeps its own copy */
    if (rc != MOSQ_ERR_SUCCESS) {
      fprintf(stderr, "tinyfer-device: username/password: %s\n", mosquitto_strerror(rc));
      return 1;
    }
  }
  {
    const char *wt, *wp;
    tfa_app_will(&g.app, &wt, &wp);
    mosquitto_will_set_v5(g.mosq, wt, (int)strlen(wp), wp, 1, true, NULL);
  }
  mosquitto_connect_v5_callback_set(g.mosq, on_connect);
  mosquitto_disconnect_v5_callback_set(g.mosq, on_disconnect);
  mosquitto_message_v5_callback_set(g.mosq, on_message);
  mosquitto_publish_v5_callback_set(g.mosq, on_publish);
  rc = mosquitto_connect_bind_v5(g.mosq, hostname, port, keepalive, NULL, NULL);
  while (!g_stop) {
    uint32_t wait;
    if (rc != MOSQ_ERR_SUCCESS) {
      /* Each new kind of failure once at the default verbosity (a TLS failure: a broker certificate
       * that does not chain to --ca, or a plain-MQTT port), every retry with -v. */
      if (g.verbosity >= 3 || (g.verbosity >= 2 && rc != last_fail))
        fprintf(stderr, "[%s] broker %s:%d: %s; retrying in %d ms\n", g.id, hostname, port, mosquitto_strerror(rc), backoff);
      last_fail = rc;
      sleep_ms((uint32_t)backoff);
      backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
      rc = mosquitto_reconnect(g.mosq);
      continue;
    }
    backoff = 250;
    wait = tfa_app_step(&g.app);
    if (g.reboot) {
      flush(&g, 2000);
      mosquitto_disconnect(g.mosq);
      mosquitto_loop(g.mosq, 50, 1);
      mosquitto_destroy(g.mosq);
      mosquitto_lib_cleanup();
      sleep_ms(g.reboot_delay);
      fprintf(stderr, "[%s] rebooting\n", g.id);
      execv("/proc/self/exe", argv);
      fprintf(stderr, "[%s] reboot (exec) failed: %s\n", g.id, strerror(errno));
      return 1;
    }
    rc = mosquitto_loop(g.mosq, wait ? (int)wait : 1, 1);
  }
  /* SIGINT/SIGTERM: a clean goodbye (no last will) */
  tfa_app_shutdown(&g.app, "shutdown");
  flush(&g, 2000);
  mosquitto_disconnect(g.mosq);
  mosquitto_loop(g.mosq, 50, 1);
  mosquitto_destroy(g.mosq);
  mosquitto_lib_cleanup();
  host_camera_close(&g.cam);
  host_storage_close(&g.store);
  free(arena);
  free(scratch);
  return 0;
}
