/*
 * errors.h - the one table that maps internal error kinds to an HTTP status,
 * the JSON error code string and a default message, and the JSON error body
 * {"error":{"status":413,"code":"payload_too_large","message":"..."}}.
 */
#ifndef WC_ERRORS_H
#define WC_ERRORS_H

#include <stddef.h>

typedef enum {
  WC_E_NONE = 0,
  WC_E_BAD_REQUEST,       /* 400 malformed HTTP */
  WC_E_UNKNOWN_PARAM,     /* 400 unknown query parameter, form field or key */
  WC_E_BAD_VALUE,         /* 400 a parameter with a wrong type or value */
  WC_E_DUPLICATE,         /* 400 a parameter given twice */
  WC_E_MISSING_TEXT,      /* 400 */
  WC_E_MISSING_NEEDLE,    /* 400 */
  WC_E_BAD_NEEDLE,        /* 400 empty, not UTF-8, space or \n */
  WC_E_NEEDLE_TOO_LONG,   /* 400 */
  WC_E_TOO_MANY_NEEDLES,  /* 400 */
  WC_E_BAD_JSON,          /* 400 */
  WC_E_BAD_FORM,          /* 400 */
  WC_E_UNAUTHORIZED,      /* 401 missing or wrong bearer token */
  WC_E_NOT_FOUND,         /* 404 */
  WC_E_METHOD,            /* 405 */
  WC_E_TIMEOUT,           /* 408 */
  WC_E_TOO_LARGE,         /* 413 */
  WC_E_EXPECT,            /* 417 */
  WC_E_HEADERS_TOO_LARGE, /* 431 */
  WC_E_INTERNAL,          /* 500 */
  WC_E_NO_MEMORY,         /* 503 */
  WC_E_DRAINING,          /* 503 */
  WC_E_VERSION,           /* 505 */
  WC_E__COUNT
} wc_err_t;

/* An error with an optional specific message (empty means the default). */
typedef struct {
  wc_err_t kind;
  char msg[200];
} wc_error_t;

int wc_errors_status(wc_err_t kind);
const char *wc_errors_code(wc_err_t kind);
const char *wc_errors_message(wc_err_t kind);

/* Sets e to kind with a printf-style message (NULL fmt: the default). */
void wc_errors_set(wc_error_t *e, wc_err_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps a negative errno (-ENOMEM, -E2BIG, ...) to an error kind. */
wc_err_t wc_errors_from_errno(int err);

/*
 * Writes the JSON error body for e into buf (cap bytes, NUL-terminated) and
 * returns its length (never more than cap - 1; messages are truncated).
 */
size_t wc_errors_body(const wc_error_t *e, char *buf, size_t cap);

/*
 * Appends s[0..len) as the inside of a JSON string to buf at *pos (without
 * quotes), escaping '"', '\\' and control characters; bytes that would not
 * make valid UTF-8 are replaced with '?'. Returns 0, or -ENOBUFS when it did
 * not fit (buf then holds a truncated, still valid prefix).
 */
int wc_errors_json_escape(char *buf, size_t cap, size_t *pos, const char *s,
                          size_t len);

#endif
