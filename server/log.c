/*
 * log.c - access log and diagnostics.
 *
 * DESIGN: the access log must never stall the event loop. Lines are
 * collected in a static buffer and written with one write(2) per second (from
 * the server's Date timer) or when the buffer is full. If the destination is
 * a pipe or a socket nobody drains (a test harness that read only the first
 * line), the descriptor is made non-blocking and lines that do not fit are
 * counted as dropped (wordcount_log_lines_dropped_total). Terminals and
 * files are written normally.
 *
 * Formats (log.format): "common" is
 *   PEER "METHOD TARGET" STATUS BYTES_IN BYTES_OUT DURATIONms id=REQUEST_ID
 * followed, for error responses, by  error=CODE "MESSAGE"; "json" writes one
 * JSON object per line with the same fields (time added, RFC 3339 UTC).
 * Client-supplied text is reduced to printable ASCII (common) or escaped
 * (json), so a line is always one line.
 *
 * Diagnostics (wc_log) go to standard error, formatted into one line of at
 * most DIAG_MAX bytes and written with one write(2): a pipe write of up to
 * PIPE_BUF bytes is all or nothing, so lines of two loops never interleave,
 * and when standard error is a pipe or a socket it is non-blocking too, so
 * that warnings (a 505 is one, any error is one at log.level debug) sent
 * into a pipe nobody reads are dropped instead of stopping the loop.
 *
 * THREADS: every event loop (event_loops) logs here. The access-log buffer
 * and its descriptor are guarded by one mutex (held for a memcpy per line,
 * and for the write(2) once a second); diagnostic lines need no lock (one
 * write each).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "metrics.h"
#include "util.h"

/* A diagnostic line: at most this many bytes (<= PIPE_BUF), cut with
 * "..." when longer. */
#define DIAG_MAX 2048

static int log_level = WC_LOG_INFO;
static int log_access = 1;
static int log_format = WC_LOG_FORMAT_COMMON;
static int log_fd = STDOUT_FILENO;
static char log_path[512]; /* empty unless the destination is a file */
static char buf[64 * 1024];
static size_t buf_len;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void flush_locked(void);

/* A pipe or a socket that nobody may drain: writes to it must not block.
 * O_NONBLOCK belongs to the open file description, which a pipe shares
 * with the parent (a shell, a CI step): setting it there would leave the
 * parent's own writes non-blocking after we exit. So a pipe is reopened
 * through /proc/self/fd, which gives this process a description of its
 * own, and that one takes the descriptor's number. A socket (journald's
 * stream) cannot be reopened; it is normally the service's own, and gets
 * the flag directly, as a pipe whose reopening fails does. */
static void nonblocking_if_pipe(int fd) {
  struct stat st;
  int fl;
  if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
    return;
  if (S_ISFIFO(st.st_mode)) {
    char path[32];
    int nfd;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (nfd >= 0) {
      int ok = dup3(nfd, fd, 0) == fd;
      close(nfd);
      if (ok)
        return;
    }
  }
  fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_path(void) {
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  return fd < 0 ? -errno : fd;
}

int wc_log_init(int level, int access, int format, const char *file, char *err,
                size_t errlen) {
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
  nonblocking_if_pipe(log_fd);
  nonblocking_if_pipe(STDERR_FILENO);
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
  char line[DIAG_MAX];
  size_t len, off = 0;
  int n;
  va_list ap;
  if (level > log_level)
    return;
  n = snprintf(line, sizeof line, "wordcount-server: %s: ", names[level]);
  len = n > 0 ? (size_t)n : 0;
  va_start(ap, fmt);
  n = vsnprintf(line + len, sizeof line - len, fmt, ap);
  va_end(ap);
  if (n > 0)
    len += (size_t)n;
  if (len > sizeof line - 2) { /* cut: keep room for "...\n" */
    len = sizeof line - 4;
    memcpy(line + len, "...", 3);
    len += 3;
  }
  line[len++] = '\n';
  while (off < len) {
    ssize_t w = write(STDERR_FILENO, line + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) { /* a full pipe (non-blocking) or a closed one: dropped */
      wc_metrics_counter_add(WC_C_LOG_LINES_DROPPED, 1);
      break;
    }
    off += (size_t)w;
  }
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
    if (n <= 0) { /* the rest of the buffer is lost: count its lines */
      uint64_t lines = 0;
      for (const char *q = buf + off;
           (q = memchr(q, '\n', (size_t)(buf + buf_len - q))) != NULL; q++)
        lines++;
      wc_metrics_counter_add(WC_C_LOG_LINES_DROPPED, lines);
      break;
    }
    off += (size_t)n;
  }
  buf_len = 0;
}

/*
 * Access lines are formatted by hand: snprintf with a %.3f took about a fifth
 * of the server's CPU per small request with the access log on (perf, 16-deep
 * pipelining). Each put_* copies what fits below end and returns where the
 * next byte goes; nothing is written at or past end.
 */
static char *put(char *p, char *end, const char *s, size_t n) {
  if (n > (size_t)(end - p))
    n = (size_t)(end - p);
  memcpy(p, s, n);
  return p + n;
}

static char *put_str(char *p, char *end, const char *s) {
  return put(p, end, s, strlen(s));
}

static char *put_u64(char *p, char *end, uint64_t v) {
  char tmp[20];
  return put(p, end, tmp, wc_u64_dec(tmp, v));
}

static char *put_int(char *p, char *end, int v) {
  if (v < 0 && p < end)
    *p++ = '-';
  return put_u64(p, end, v < 0 ? 0 - (uint64_t)(int64_t)v : (uint64_t)v);
}

/* Nanoseconds as milliseconds with three decimals, rounded to the nearest
 * microsecond (as %.3f of ns / 1e6 prints it, but for exact halves). */
static char *put_ms(char *p, char *end, uint64_t ns) {
  uint64_t us = ns / 1000 + (ns % 1000 >= 500);
  char frac[3] = {(char)('0' + us % 1000 / 100), (char)('0' + us % 100 / 10),
                  (char)('0' + us % 10)};
  p = put_u64(p, end, us / 1000);
  p = put(p, end, ".", 1);
  return put(p, end, frac, 3);
}

/* n bytes of s, each byte outside lo..0x7e or a '"' as '?' (common
 * format: a line stays one line, its quoted fields stay quoted). */
static char *put_safe(char *p, char *end, const char *s, size_t n,
                      unsigned char lo) {
  for (size_t i = 0; i < n && p < end; i++) {
    unsigned char ch = (unsigned char)s[i];
    *p++ = (ch >= lo && ch < 0x7f && ch != '"') ? (char)ch : '?';
  }
  return p;
}

/* The fields both formats share, in the same order, each after its
 * separator: status, bytes in, bytes out, duration, request id. */
static char *put_fields(char *p, char *end, const wc_access_t *a,
                        const char *const sep[5]) {
  p = put_str(p, end, sep[0]);
  p = put_int(p, end, a->status);
  p = put_str(p, end, sep[1]);
  p = put_u64(p, end, a->bytes_in);
  p = put_str(p, end, sep[2]);
  p = put_u64(p, end, a->bytes_out);
  p = put_str(p, end, sep[3]);
  p = put_ms(p, end, a->ns);
  p = put_str(p, end, sep[4]);
  return put_str(p, end, a->request_id);
}

static size_t format_common(char *line, size_t cap, const wc_access_t *a) {
  static const char *const sep[5] = {"\" ", " ", " ", " ", "ms id="};
  char *p = line, *end = line + cap;
  p = put_str(p, end, a->peer);
  p = put(p, end, " \"", 2);
  p = put_str(p, end, a->method);
  p = put(p, end, " ", 1);
  /* the target without spaces, the message with them */
  p = put_safe(p, end, a->target, a->target_len < 255 ? a->target_len : 255,
               0x21);
  p = put_fields(p, end, a, sep);
  if (a->error_code != NULL) {
    /* The message is ours but may quote the client. */
    p = put(p, end, " error=", 7);
    p = put_str(p, end, a->error_code);
    p = put(p, end, " \"", 2);
    p = put_safe(p, end, a->error_msg, strnlen(a->error_msg, 199), 0x20);
    p = put(p, end, "\"", 1);
  }
  return (size_t)(p - line);
}

/* "YYYY-MM-DDTHH:MM:SS" of sec, formatted once per second per thread. */
static const char *utc_second(time_t sec) {
  static __thread time_t last = -1;
  static __thread char ts[40];
  if (sec != last) {
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    last = sec;
  }
  return ts;
}

static size_t format_json(char *line, size_t cap, const wc_access_t *a) {
  static const char *const sep[5] = {
      "\",\"status\":", ",\"bytes_in\":", ",\"bytes_out\":",
      ",\"duration_ms\":", ",\"request_id\":\""};
  struct timeval tv;
  char *p = line, *end = line + cap;
  char frac[4];
  size_t pos;
  gettimeofday(&tv, NULL);
  frac[0] = (char)('0' + tv.tv_usec / 100000);
  frac[1] = (char)('0' + tv.tv_usec / 10000 % 10);
  frac[2] = (char)('0' + tv.tv_usec / 1000 % 10);
  frac[3] = 'Z';
  p = put(p, end, "{\"time\":\"", 9);
  p = put_str(p, end, utc_second(tv.tv_sec));
  p = put(p, end, ".", 1);
  p = put(p, end, frac, 4);
  p = put(p, end, "\",\"peer\":\"", 10);
  p = put_str(p, end, a->peer);
  p = put(p, end, "\",\"method\":\"", 12);
  /* Leave room for the fixed fields after each escaped string. */
  pos = (size_t)(p - line);
  if (pos + 400 > cap)
    return 0;
  wc_errors_json_escape(line, cap - 200, &pos, a->method, strlen(a->method));
  p = put(line + pos, end, "\",\"target\":\"", 12);
  pos = (size_t)(p - line);
  wc_errors_json_escape(line, cap - 400, &pos, a->target,
                        a->target_len > 300 ? 300 : a->target_len);
  p = put_fields(line + pos, end, a, sep);
  p = put(p, end, "\"", 1);
  if (a->error_code != NULL) {
    p = put(p, end, ",\"error\":\"", 10);
    p = put_str(p, end, a->error_code);
    p = put(p, end, "\",\"message\":\"", 13);
    pos = (size_t)(p - line);
    if (pos + 8 > cap)
      return 0;
    wc_errors_json_escape(line, cap - 8, &pos, a->error_msg,
                          strlen(a->error_msg));
    p = put(line + pos, end, "\"", 1);
  }
  if (p >= end)
    return 0; /* cut short: not a JSON line */
  *p++ = '}';
  return (size_t)(p - line);
}

size_t wc_log_format_access(char *line, size_t cap, const wc_access_t *a,
                            int format) {
  return format == WC_LOG_FORMAT_JSON ? format_json(line, cap, a)
                                      : format_common(line, cap, a);
}

int wc_log_access_enabled(void) {
  return log_access;
}

void wc_log_access(const wc_access_t *a) {
  char line[1536];
  size_t len;
  if (!log_access)
    return;
  len = wc_log_format_access(line, sizeof line - 1, a, log_format);
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
