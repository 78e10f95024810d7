/*
 * log.h - the access log (one line per request, stdout) and diagnostics
 * (stderr) filtered by level. Loop thread only.
 */
#ifndef WC_LOG_H
#define WC_LOG_H

#include <stddef.h>
#include <stdint.h>

void wc_log_init(int level, int access);

/* Diagnostics at a WC_LOG_* level, to stderr. */
void wc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One access-log line. Buffered; written by wc_log_flush or when the buffer
 * is full. When stdout is a pipe or socket it is written without blocking:
 * lines that do not fit are dropped rather than stalling the loop. */
void wc_log_access(const char *peer, const char *method, const char *target,
                   size_t target_len, int status, uint64_t bytes_in,
                   size_t bytes_out, double ms);

void wc_log_flush(void);

#endif
