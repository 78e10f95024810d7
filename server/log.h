/*
 * log.h - the access log (one line per request, in the common or JSON lines
 * format, to stdout, stderr or a file) and diagnostics (stderr) filtered by
 * level. Loop thread only.
 */
#ifndef WC_LOG_H
#define WC_LOG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Sets the level and the access log: access on/off, format (WC_LOG_FORMAT_*)
 * and destination ("stdout", "stderr" or a path, opened for appending).
 * Returns 0, or a negative errno with a message in err when the file cannot
 * be opened.
 */
int wc_log_init(int level, int access, int format, const char *file, char *err,
                size_t errlen);

/* Reopens a log file (after rotation, on SIGHUP). 0 or a negative errno. */
int wc_log_reopen(void);

/* 1 when diagnostics at this level are printed. */
int wc_log_enabled(int level);

/* Diagnostics at a WC_LOG_* level, to stderr. */
void wc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What one access-log line says about a request. Strings need not be
 * NUL-terminated where a length is given. method, target and error_msg may
 * come from the client and are escaped; peer ("IP:port") and request_id
 * (http.c keeps only [A-Za-z0-9._-]) are the server's and go in as they
 * are. */
typedef struct {
  const char *peer;
  const char *method;
  const char *target;
  size_t target_len;
  const char *request_id;
  int status;
  uint64_t bytes_in;
  size_t bytes_out;
  uint64_t ns;            /* from the request's first byte to its answer */
  const char *error_code; /* NULL unless an error response */
  const char *error_msg;
} wc_access_t;

/* One access-log line. Buffered; written by wc_log_flush or when the buffer
 * is full. When the destination is a pipe or socket it is written without
 * blocking: lines that do not fit are dropped rather than stalling the loop. */
void wc_log_access(const wc_access_t *a);

/* Formats a's line (without the newline) into line, at most cap bytes, in
 * format (WC_LOG_FORMAT_*); returns its length. A common line that does not
 * fit is cut at cap bytes; a JSON line that does not fit gives 0 (nothing
 * to write). Used by wc_log_access; public for the unit tests. */
size_t wc_log_format_access(char *line, size_t cap, const wc_access_t *a,
                            int format);

/* 1 when access lines are written (log.access). */
int wc_log_access_enabled(void);

void wc_log_flush(void);

#endif
