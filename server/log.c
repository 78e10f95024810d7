/*
 * log.c - access log and diagnostics.
 *
 * DESIGN: the access log must never stall the event loop. Lines are
 * collected in a static buffer and written with one write(2) per second (from
 * the server's Date timer) or when the buffer is full. If the destination is
 * a pipe or a socket nobody drains (a test harness that read only the first
 * line), the descriptor is made non-blocking and lines that do not fit are
 * counted as dropped. Terminals and files are written normally.
 *
 * Formats (log.format): "common" is
 *   PEER "METHOD TARGET" STATUS BYTES_IN BYTES_OUT DURATIONms id=REQUEST_ID
 * followed, for error responses, by  error=CODE "MESSAGE"; "json" writes one
 * JSON object per line with the same fields (time added, RFC 3339 UTC).
 * Client-supplied text is reduced to printable ASCII (common) or escaped
 * (json), so a line is always one line.
 *
 * THREADS: every event loop (event_loops) logs here. The access-log buffer
 * and its descriptor are guarded by one mutex (held for a memcpy per line,
 * and for the write(2) once a second); a diagnostic line is written under
 * stdio's own lock of stderr, so lines of two loops never interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"

static int log_level = WC_LOG_INFO;
static int log_access = 1;
static int log_format = WC_LOG_FORMAT_COMMON;
static int log_fd = STDOUT_FILENO;
static char log_path[512]; /* empty unless the destination is a file */
static char buf[64 * 1024];
static size_t buf_len;
static unsigned long dropped;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void flush_locked(void);

static int open_path(void) {
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  return fd < 0 ? -errno : fd;
}

int wc_log_init(int level, int access, int format, const char *file, char *err,
                size_t errlen) {
  struct stat st;
  log_level = level;
  log_access = access;
  log_format = format;
  log_path[0] = '\0';
  if (file == NULL || strcmp(file, "stdout") == 0) {
    log_fd = STDOUT_FILENO;
  } else if (strcmp(file, "stderr") == 0) {
    log_fd = STDERR_FILENO;
  } else {
    int fd;
    snprintf(log_path, sizeof log_path, "%s", file);
    fd = open_path();
    if (fd < 0) {
      snprintf(err, errlen, "log.file %s: %s", file, strerror(-fd));
      log_path[0] = '\0';
      return fd;
    }
    log_fd = fd;
  }
  if (log_fd != STDERR_FILENO && fstat(log_fd, &st) == 0 &&
      (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    int fl = fcntl(log_fd, F_GETFL);
    if (fl >= 0)
      (void)fcntl(log_fd, F_SETFL, fl | O_NONBLOCK);
  }
  return 0;
}

int wc_log_reopen(void) {
  int fd;
  if (log_path[0] == '\0')
    return 0;
  pthread_mutex_lock(&lock);
  flush_locked();
  fd = open_path();
  if (fd >= 0) {
    dup2(fd, log_fd);
    close(fd);
  }
  pthread_mutex_unlock(&lock);
  return fd < 0 ? fd : 0;
}

int wc_log_enabled(int level) {
  return level <= log_level;
}

void wc_log(int level, const char *fmt, ...) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  va_list ap;
  if (level > log_level)
    return;
  flockfile(stderr);
  fprintf(stderr, "wordcount-server: %s: ", names[level]);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  funlockfile(stderr);
}

void wc_log_flush(void) {
  pthread_mutex_lock(&lock);
  flush_locked();
  pthread_mutex_unlock(&lock);
}

static void flush_locked(void) {
  size_t off = 0;
  fflush(stdout);
  while (off < buf_len) {
    ssize_t n = write(log_fd, buf + off, buf_len - off);
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

/* Printable ASCII only, at most cap - 1 bytes (common format). */
static void safe_copy(char *dst, size_t cap, const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    dst[n++] = (ch > 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
  }
  dst[n] = '\0';
}

static size_t format_common(char *line, size_t cap, const wc_access_t *a) {
  char target[256];
  int len;
  safe_copy(target, sizeof target, a->target, a->target_len);
  len = snprintf(line, cap, "%s \"%s %s\" %d %llu %zu %.3fms id=%s", a->peer,
                 a->method, target, a->status, (unsigned long long)a->bytes_in,
                 a->bytes_out, a->ms, a->request_id);
  if (len < 0)
    return 0;
  if ((size_t)len < cap && a->error_code != NULL) {
    char msg[200];
    size_t i, n = 0;
    /* The message is ours but may quote the client: keep it on one line. */
    for (i = 0; a->error_msg[i] != '\0' && n + 1 < sizeof msg; i++) {
      unsigned char ch = (unsigned char)a->error_msg[i];
      msg[n++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
    }
    msg[n] = '\0';
    len += snprintf(line + len, cap - (size_t)len, " error=%s \"%s\"",
                    a->error_code, msg);
  }
  return (size_t)len;
}

static size_t format_json(char *line, size_t cap, const wc_access_t *a) {
  struct timeval tv;
  struct tm tm;
  char ts[40];
  size_t pos;
  int n;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  /* Leave room for the fixed fields after each escaped string. */
  n = snprintf(line, cap,
               "{\"time\":\"%s.%03dZ\",\"peer\":\"%s\",\"method\":\"", ts,
               (int)(tv.tv_usec / 1000), a->peer);
  if (n < 0 || (size_t)n >= cap)
    return 0;
  pos = (size_t)n;
  wc_errors_json_escape(line, cap - 200, &pos, a->method, strlen(a->method));
  pos += (size_t)snprintf(line + pos, cap - pos, "\",\"target\":\"");
  wc_errors_json_escape(line, cap - 400, &pos, a->target,
                        a->target_len > 300 ? 300 : a->target_len);
  n = snprintf(line + pos, cap - pos,
               "\",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%zu,"
               "\"duration_ms\":%.3f,\"request_id\":\"%s\"",
               a->status, (unsigned long long)a->bytes_in, a->bytes_out, a->ms,
               a->request_id);
  if (n < 0 || (size_t)n >= cap - pos)
    return 0;
  pos += (size_t)n;
  if (a->error_code != NULL) {
    n = snprintf(line + pos, cap - pos, ",\"error\":\"%s\",\"message\":\"",
                 a->error_code);
    if (n < 0 || (size_t)n >= cap - pos)
      return 0;
    pos += (size_t)n;
    wc_errors_json_escape(line, cap - 8, &pos, a->error_msg,
                          strlen(a->error_msg));
    line[pos++] = '"';
  }
  line[pos++] = '}';
  line[pos] = '\0';
  return pos;
}

int wc_log_access_enabled(void) {
  return log_access;
}

void wc_log_access(const wc_access_t *a) {
  char line[1536];
  size_t len;
  if (!log_access)
    return;
  len = log_format == WC_LOG_FORMAT_JSON
            ? format_json(line, sizeof line - 1, a)
            : format_common(line, sizeof line - 1, a);
  if (len == 0)
    return;
  if (len > sizeof line - 2)
    len = sizeof line - 2;
  line[len++] = '\n';
  pthread_mutex_lock(&lock);
  if (buf_len + len > sizeof buf)
    flush_locked();
  memcpy(buf + buf_len, line, len);
  buf_len += len;
  pthread_mutex_unlock(&lock);
}
