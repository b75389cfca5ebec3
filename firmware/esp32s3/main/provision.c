/*
 * Settings in NVS (namespace "tinyfer") and first-boot provisioning over the USB serial console.
 * No credentials live in the repository: flash the firmware, open `idf.py monitor`, then
 *   set wifi_ssid MyNetwork
 *   set wifi_pass secret
 *   set broker mqtts://broker.lan:8883
 *   set ca_cert <base64 body of the fleet CA certificate, one line>   (required for mqtts://)
 *   set mqtt_pass <this device's broker password>             (username: mqtt_user, default the device id)
 *   set model_pk <64 hex digits of the Ed25519 public key>   (optional: enables model_update)
 *   set fw_pk <64 hex digits>                                (optional: enables firmware_update)
 *   set device_id xiao-kitchen                               (optional: default xiao-<MAC>)
 *   reboot
 * `show` prints the settings (passwords masked, the CA only as its length), `erase` forgets them
 * all. Secrets live only in NVS (enable NVS/flash encryption to protect them against a flash
 * read-out), never in the firmware image, and are never logged.
 */
#include <stdio.h>
#include <string.h>

#include "esp_console.h"
#include "esp_log.h"
#include "esp_system.h"
#include "esp_glue.h"
#include "nvs.h"
#include "nvs_flash.h"

static const char *TAG = "provision";

/* Keys the console may set (the app's own keys, "config" and "model", are not listed). */
static const char *const kKeys[] = {"wifi_ssid", "wifi_pass", "broker", "device_id", "prefix", "model_pk", "ntp",
                                    "mqtt_user", "mqtt_pass", "ca_cert", "fw_pk"};
static bool secret(const char *k) { return strcmp(k, "wifi_pass") == 0 || strcmp(k, "mqtt_pass") == 0; }

esp_err_t settings_init(void) {
  esp_err_t err = nvs_flash_init();
  if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
    ESP_ERROR_CHECK(nvs_flash_erase());
    err = nvs_flash_init();
  }
  return err;
}

int settings_get(const char *key, char *out, size_t cap) {
  nvs_handle_t h;
  size_t n = cap;
  if (nvs_open(NVS_NAMESPACE, NVS_READONLY, &h) != ESP_OK) return -1;
  esp_err_t err = nvs_get_str(h, key, out, &n);
  nvs_close(h);
  return err == ESP_OK && n > 0 ? (int)(n - 1) : -1; /* n counts the NUL */
}

int settings_set(const char *key, const char *value) {
  nvs_handle_t h;
  esp_err_t err = nvs_open(NVS_NAMESPACE, NVS_READWRITE, &h);
  if (err != ESP_OK) return -1;
  err = nvs_set_str(h, key, value);
  if (err == ESP_OK) err = nvs_commit(h);
  nvs_close(h);
  return err == ESP_OK ? 0 : -1;
}

int settings_len(const char *key) {
  nvs_handle_t h;
  size_t n = 0;
  if (nvs_open(NVS_NAMESPACE, NVS_READONLY, &h) != ESP_OK) return -1;
  esp_err_t err = nvs_get_str(h, key, NULL, &n);
  nvs_close(h);
  return err == ESP_OK && n > 0 ? (int)(n - 1) : -1;
}

bool settings_provisioned(void) {
  char b[128];
  return settings_get("wifi_ssid", b, sizeof b) > 0 && settings_get("broker", b, sizeof b) > 0;
}

static int cmd_set(int argc, char **argv) {
  size_t i;
  if (argc != 3) {
    printf("usage: set <key> <value>\n");
    return 1;
  }
  for (i = 0; i < sizeof kKeys / sizeof kKeys[0]; i++) {
    if (strcmp(argv[1], kKeys[i]) == 0) {
      if (settings_set(argv[1], argv[2]) != 0) {
        printf("could not store %s\n", argv[1]);
        return 1;
      }
      printf("%s stored (%u chars); `reboot` to apply\n", argv[1], (unsigned)strlen(argv[2]));
      return 0;
    }
  }
  printf("unknown key %s (wifi_ssid, wifi_pass, broker, device_id, prefix, model_pk, ntp, mqtt_user, mqtt_pass, ca_cert, fw_pk)\n", argv[1]);
  return 1;
}

static int cmd_show(int argc, char **argv) {
  size_t i;
  char v[160];
  (void)argc;
  (void)argv;
  for (i = 0; i < sizeof kKeys / sizeof kKeys[0]; i++) {
    int n = settings_len(kKeys[i]);
    if (n < 0) strcpy(v, "(unset)");
    else if (secret(kKeys[i])) strcpy(v, "********");
    else if (strcmp(kKeys[i], "ca_cert") == 0) snprintf(v, sizeof v, "(set, %d base64 chars)", n);
    else if (settings_get(kKeys[i], v, sizeof v) < 0) strcpy(v, "(too long to show)");
    printf("%-10s %s\n", kKeys[i], v);
  }
  if (settings_get("config", v, sizeof v) > 0) printf("%-10s %s\n", "config", v);
  if (settings_get("model", v, sizeof v) > 0) printf("%-10s %s\n", "model", v);
  return 0;
}

static int cmd_erase(int argc, char **argv) {
  nvs_handle_t h;
  (void)argc;
  (void)argv;
  if (nvs_open(NVS_NAMESPACE, NVS_READWRITE, &h) == ESP_OK) {
    nvs_erase_all(h);
    nvs_commit(h);
    nvs_close(h);
  }
  printf("settings erased\n");
  return 0;
}

static int cmd_reboot(int argc, char **argv) {
  (void)argc;
  (void)argv;
  esp_restart();
  return 0;
}

void console_start(void) {
  esp_console_repl_t *repl = NULL;
  esp_console_repl_config_t rc = ESP_CONSOLE_REPL_CONFIG_DEFAULT();
  esp_console_dev_usb_serial_jtag_config_t hw = ESP_CONSOLE_DEV_USB_SERIAL_JTAG_CONFIG_DEFAULT();
  const esp_console_cmd_t cmds[] = {
      {.command = "set", .help = "set <key> <value>: store a setting in NVS", .func = cmd_set},
      {.command = "show", .help = "print the settings", .func = cmd_show},
      {.command = "erase", .help = "forget all settings", .func = cmd_erase},
      {.command = "reboot", .help = "restart", .func = cmd_reboot},
  };
  size_t i;
  rc.prompt = "tinyfer>";
  rc.max_cmdline_length = 4096; /* `set ca_cert` takes a whole certificate */
  for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) ESP_ERROR_CHECK(esp_console_cmd_register(&cmds[i]));
  ESP_ERROR_CHECK(esp_console_register_help_command());
  if (esp_console_new_repl_usb_serial_jtag(&hw, &rc, &repl) != ESP_OK || esp_console_start_repl(repl) != ESP_OK)
    ESP_LOGE(TAG, "serial console unavailable");
}
