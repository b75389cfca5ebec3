/*
 * Application firmware updates on the host device, with rollback: the app slots of an ESP32-S3
 * are files beside the settings file, and the ESP-IDF bootloader's part is played by the start of
 * main() (host_app_boot):
 *   <settings>.app-new   being written (app_begin/app_write); never booted
 *   <settings>.app-next  installed by app_finish (SHA-256 checked): boots next, ON TRIAL
 *   <settings>.app       the confirmed image: every later start execs it
 *   <settings>.app-failed  the last image that did not confirm (kept for inspection)
 * A trial boot forks: the child execs .app-next with a pipe to the parent; the parent (the image
 * that was running, i.e. the previous binary) waits for the child to confirm (host_app_confirm,
 * called by the app once it reached the broker). Confirmed: .app-next becomes .app and the parent
 * just forwards signals and waits. The child exits, re-execs or stays silent for --confirm-ms
 * instead: the parent kills it and re-execs itself, the previous binary (rollback).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

#define TRIAL_ENV "TINYFER_APP_TRIAL_FD"
#define BOOTED_ENV "TINYFER_APP_BOOTED"

static volatile sig_atomic_t g_child = 0, g_stop = 0;

static void forward(int sig) {
  g_stop = 1;
  if (g_child > 0) kill((pid_t)g_child, sig);
}

static int path_of(char *out, size_t cap, const char *base, const char *suffix) {
  int n = snprintf(out, cap, "%s%s", base, suffix);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int host_app_init(host_apps *a, const char *settings_path, const char *id) {
  const char *fd;
  memset(a, 0, sizeof *a);
  a->fd = -1;
  a->trial_fd = -1;
  a->id = id;
  if (!settings_path) return -1;
  if (path_of(a->path_new, sizeof a->path_new, settings_path, ".app-new") || path_of(a->path_next, sizeof a->path_next, settings_path, ".app-next") ||
      path_of(a->path_cur, sizeof a->path_cur, settings_path, ".app") || path_of(a->path_failed, sizeof a->path_failed, settings_path, ".app-failed"))
    return -1;
  fd = getenv(TRIAL_ENV);
  if (fd) {
    /* We are an image on trial. A re-exec before confirming closes the pipe (close-on-exec):
     * the parent reads that as a failed boot, as the ESP-IDF bootloader would. */
    a->trial_fd = atoi(fd);
    unsetenv(TRIAL_ENV);
    if (a->trial_fd <= 2 || fcntl(a->trial_fd, F_SETFD, FD_CLOEXEC) != 0) a->trial_fd = -1;
  }
  a->enabled = true;
  return 0;
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int wait_child(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void host_app_boot(host_apps *a, char **argv, uint32_t confirm_ms) {
  int p[2];
  pid_t pid;
  char buf[8];
  struct timespec t0, t;
  const char *why = NULL;
  if (!a->enabled || a->trial_fd >= 0) return; /* no slots, or we are the image on trial: boot */
  if (exists(a->path_next)) {
    if (pipe(p) != 0) return;
    pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
      char fd[16];
      close(p[0]);
      prctl(PR_SET_PDEATHSIG, SIGTERM); /* the supervisor killed: so is the trial */
      snprintf(fd, sizeof fd, "%d", p[1]);
      setenv(TRIAL_ENV, fd, 1);
      setenv(BOOTED_ENV, "1", 1);
      execv(a->path_next, argv);
      fprintf(stderr, "[%s] boot %s: %s\n", a->id, a->path_next, strerror(errno));
      _exit(127);
    }
    close(p[1]);
    g_child = pid;
    signal(SIGTERM, forward);
    signal(SIGINT, forward);
    fprintf(stderr, "[%s] booting the new firmware on trial (pid %d): it must reach the broker within %u ms\n", a->id, (int)pid, (unsigned)confirm_ms);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
      struct pollfd pf = {p[0], POLLIN, 0};
      long left;
      ssize_t n;
      clock_gettime(CLOCK_MONOTONIC, &t);
      left = (long)confirm_ms - ((t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L);
      if (g_stop) break;
      if (left <= 0) {
        why = "no confirmation in time";
        break;
      }
      if (poll(&pf, 1, (int)left) < 0) {
        if (errno == EINTR) continue;
        why = "poll failed";
        break;
      }
      if (!pf.revents) continue;
      n = read(p[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0 && buf[0] == 'k') {
        /* Confirmed: the new image is the one to boot from now on. */
        close(p[0]);
        if (rename(a->path_next, a->path_cur) != 0) fprintf(stderr, "[%s] keeping the confirmed firmware: %s\n", a->id, strerror(errno));
        else fprintf(stderr, "[%s] the new firmware confirmed itself: it boots from now on\n", a->id);
        exit(wait_child(pid));
      }
      why = "it exited or restarted before confirming";
      break;
    }
    close(p[0]);
    if (g_stop) exit(wait_child(pid)); /* stopped during the trial: the trial is retried at the next start */
    kill(pid, SIGKILL);
    wait_child(pid);
    g_child = 0;
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    rename(a->path_next, a->path_failed);
    fprintf(stderr, "[%s] the new firmware failed its trial boot (%s): rolling back to the previous image\n", a->id, why);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "[%s] rollback re-exec failed: %s; running on\n", a->id, strerror(errno));
    return;
  }
  if (exists(a->path_cur) && !getenv(BOOTED_ENV) && !same_file("/proc/self/exe", a->path_cur)) {
    /* A plain start of the factory binary: boot the installed (confirmed) firmware instead. */
    setenv(BOOTED_ENV, "1", 1);
    execv(a->path_cur, argv);
    fprintf(stderr, "[%s] boot %s: %s; running the factory image\n", a->id, a->path_cur, strerror(errno));
  }
}

int host_app_begin(host_apps *a, size_t size) {
  if (!a->enabled || size == 0 || size > TFA_MAX_APP_BYTES) return -1;
  if (a->fd >= 0) close(a->fd);
  a->fd = open(a->path_new, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (a->fd < 0) return -1;
  if (ftruncate(a->fd, (off_t)size) != 0) {
    close(a->fd);
    a->fd = -1;
    return -1;
  }
  a->size = size;
  return 0;
}

int host_app_write(host_apps *a, size_t off, const void *data, size_t len) {
  const uint8_t *d = data;
  if (a->fd < 0 || off > a->size || len > a->size - off) return -1;
  while (len > 0) {
    ssize_t n = pwrite(a->fd, d, len, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    d += n;
    off += (size_t)n;
    len -= (size_t)n;
  }
  return 0;
}

int host_app_finish(host_apps *a, size_t size, const uint8_t sha256[32]) {
  uint8_t got[32];
  void *m;
  int fd, ok;
  if (a->fd < 0 || size != a->size) return -1;
  ok = fsync(a->fd) == 0;
  close(a->fd);
  a->fd = -1;
  if (!ok || (fd = open(a->path_new, O_RDONLY | O_CLOEXEC)) < 0) return -1;
  m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return -1;
  /* The bytes written are the ones signed, and something the kernel can exec. */
  ok = host_sha256(m, size, got) == 0 && memcmp(got, sha256, 32) == 0 &&
       ((size >= 4 && memcmp(m, "\177ELF", 4) == 0) || (size >= 2 && memcmp(m, "#!", 2) == 0));
  munmap(m, size);
  if (!ok || chmod(a->path_new, 0755) != 0 || rename(a->path_new, a->path_next) != 0) {
    unlink(a->path_new);
    return -1;
  }
  return 0;
}

void host_app_confirm(host_apps *a) {
  if (a->trial_fd < 0) return;
  if (write(a->trial_fd, "k", 1) != 1) fprintf(stderr, "[%s] confirming the firmware: %s\n", a->id, strerror(errno));
  close(a->trial_fd);
  a->trial_fd = -1;
}
