/*
 * log.c - access log and diagnostics.
 *
 * DESIGN: the access log must never stall the event loop. Lines are
 * collected in a static buffer and written with one write(2) per second (from
 * the server's Date timer) or when the buffer is full. If stdout is a pipe or
 * a socket nobody drains (a test harness that read only the first line), the
 * descriptor is made non-blocking and lines that do not fit are counted as
 * dropped. Terminals and files are written normally.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

static int log_level = WC_LOG_INFO;
static int log_access = 1;
static char buf[64 * 1024];
static size_t buf_len;
static unsigned long dropped;

void wc_log_init(int level, int access) {
  struct stat st;
  log_level = level;
  log_access = access;
  if (fstat(STDOUT_FILENO, &st) == 0 &&
      (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    int fl = fcntl(STDOUT_FILENO, F_GETFL);
    if (fl >= 0)
      (void)fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK);
  }
}

void wc_log(int level, const char *fmt, ...) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  va_list ap;
  if (level > log_level)
    return;
  fprintf(stderr, "wordcount-server: %s: ", names[level]);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void wc_log_flush(void) {
  size_t off = 0;
  fflush(stdout);
  while (off < buf_len) {
    ssize_t n = write(STDOUT_FILENO, buf + off, buf_len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      dropped++;
      break;
    }
    off += (size_t)n;
  }
  buf_len = 0;
}

void wc_log_access(const char *peer, const char *method, const char *target,
                   size_t target_len, int status, uint64_t bytes_in,
                   size_t bytes_out, double ms) {
  char line[512];
  char safe[256];
  size_t n = 0;
  int len;
  if (!log_access)
    return;
  /* The target comes from the client: keep printable ASCII only. */
  for (size_t i = 0; i < target_len && n + 1 < sizeof safe; i++) {
    unsigned char ch = (unsigned char)target[i];
    safe[n++] = (ch > 0x20 && ch < 0x7f) ? (char)ch : '?';
  }
  safe[n] = '\0';
  len = snprintf(line, sizeof line, "%s \"%s %s\" %d %llu %zu %.3fms\n", peer,
                 method, safe, status, (unsigned long long)bytes_in, bytes_out,
                 ms);
  if (len < 0)
    return;
  if ((size_t)len >= sizeof line) {
    len = sizeof line - 1;
    line[len - 1] = '\n';
  }
  if (buf_len + (size_t)len > sizeof buf)
    wc_log_flush();
  memcpy(buf + buf_len, line, (size_t)len);
  buf_len += (size_t)len;
}
