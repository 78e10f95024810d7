/*
 * errors.c - the error table. Every error the server sends is one row here:
 * HTTP status, the stable JSON "code" clients match on, and a default
 * message that tells the user what to change.
 */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wordcount.h"

static const struct {
  int status;
  const char *code;
  const char *message;
} table[WC_E__COUNT] = {
    [WC_E_NONE] = {200, "ok", "ok"},
    [WC_E_BAD_REQUEST] = {400, "bad_request", "malformed HTTP request"},
    [WC_E_UNKNOWN_PARAM] = {400, "unknown_parameter",
                            "unknown parameter; allowed: needle, ignore_case, "
                            "boundary, mode (and text in a body)"},
    [WC_E_BAD_VALUE] = {400, "invalid_value", "a parameter has a bad value"},
    [WC_E_DUPLICATE] = {400, "duplicate_parameter",
                        "a parameter was given twice"},
    [WC_E_MISSING_TEXT] = {400, "missing_text",
                           "the body has no \"text\" field"},
    [WC_E_MISSING_NEEDLE] = {400, "missing_needle",
                             "give needle=WORD in the query (raw body), or "
                             "\"needle\"/\"needles\" in a JSON or form body"},
    [WC_E_BAD_NEEDLE] = {400, "invalid_needle",
                         "a needle must be non-empty valid UTF-8 with no "
                         "space and no newline"},
    [WC_E_NEEDLE_TOO_LONG] = {400, "needle_too_long", "a needle is too long"},
    [WC_E_TOO_MANY_NEEDLES] = {400, "too_many_needles",
                               "too many distinct needles"},
    [WC_E_BAD_JSON] = {400, "invalid_json", "the body is not valid JSON"},
    [WC_E_BAD_FORM] = {400, "invalid_form",
                       "the body is not valid x-www-form-urlencoded data"},
    [WC_E_UNAUTHORIZED] = {401, "unauthorized",
                           "send the header \"Authorization: Bearer TOKEN\" "
                           "with the server's auth.token"},
    [WC_E_NOT_FOUND] = {404, "not_found",
                        "no such endpoint; try POST /count, GET /healthz, "
                        "GET /readyz or GET /metrics"},
    [WC_E_METHOD] = {405, "method_not_allowed",
                     "method not allowed here; see the Allow header"},
    [WC_E_TIMEOUT] = {408, "request_timeout",
                      "the request was not received in time"},
    [WC_E_TOO_LARGE] = {413, "payload_too_large", "the body is too large"},
    [WC_E_EXPECT] = {417, "expectation_failed",
                     "only \"Expect: 100-continue\" is supported"},
    [WC_E_HEADERS_TOO_LARGE] = {431, "headers_too_large",
                                "the request line and headers are too large"},
    [WC_E_INTERNAL] = {500, "internal_error", "internal error"},
    [WC_E_NO_MEMORY] = {503, "out_of_memory",
                        "the server is out of memory; retry later"},
    [WC_E_DRAINING] = {503, "shutting_down",
                       "the server is shutting down; retry on another "
                       "instance"},
    [WC_E_VERSION] = {505, "http_version_not_supported",
                      "only HTTP/1.0 and HTTP/1.1 are supported"},
};

int wc_errors_status(wc_err_t kind) {
  return kind < WC_E__COUNT ? table[kind].status : 500;
}

const char *wc_errors_code(wc_err_t kind) {
  return kind < WC_E__COUNT ? table[kind].code : "internal_error";
}

const char *wc_errors_message(wc_err_t kind) {
  return kind < WC_E__COUNT ? table[kind].message : "internal error";
}

void wc_errors_set(wc_error_t *e, wc_err_t kind, const char *fmt, ...) {
  e->kind = kind;
  e->msg[0] = '\0';
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
}

wc_err_t wc_errors_from_errno(int err) {
  switch (err) {
  case -ENOMEM:
    return WC_E_NO_MEMORY;
  case -E2BIG:
    return WC_E_TOO_MANY_NEEDLES;
  case -EINVAL:
    return WC_E_BAD_NEEDLE;
  default:
    return WC_E_INTERNAL;
  }
}

int wc_errors_json_escape(char *buf, size_t cap, size_t *pos, const char *s,
                          size_t len) {
  static const char hex[] = "0123456789abcdef";
  int utf8;
  size_t p = *pos, plain = 0;
  /* Printable ASCII without '"' and '\\' (a needle such as "is"): as is. */
  while (plain < len && (unsigned char)s[plain] >= 0x20 &&
         (unsigned char)s[plain] < 0x7f && s[plain] != '"' && s[plain] != '\\')
    plain++;
  if (plain == len && p + len + 1 <= cap) {
    memcpy(buf + p, s, len);
    buf[p + len] = '\0';
    *pos = p + len;
    return 0;
  }
  utf8 = wc_utf8_valid(s, len);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    char tmp[6];
    size_t n = 0;
    if (ch == '"' || ch == '\\') {
      tmp[n++] = '\\';
      tmp[n++] = (char)ch;
    } else if (ch < 0x20 || ch == 0x7f) {
      tmp[n++] = '\\';
      tmp[n++] = 'u';
      tmp[n++] = '0';
      tmp[n++] = '0';
      tmp[n++] = hex[ch >> 4];
      tmp[n++] = hex[ch & 15];
    } else if (ch >= 0x80 && !utf8) {
      tmp[n++] = '?';
    } else if (ch >= 0xc0) {
      /* Copy a whole UTF-8 sequence or nothing, so that truncation never
       * leaves half a character. */
      size_t seq = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
      if (i + seq > len)
        seq = len - i;
      if (p + seq + 1 > cap)
        goto full;
      memcpy(buf + p, s + i, seq);
      p += seq;
      i += seq - 1;
      continue;
    } else {
      tmp[n++] = (char)ch;
    }
    if (p + n + 1 > cap)
      goto full;
    memcpy(buf + p, tmp, n);
    p += n;
  }
  buf[p] = '\0';
  *pos = p;
  return 0;
full:
  if (cap > 0)
    buf[p] = '\0';
  *pos = p;
  return -ENOBUFS;
}

size_t wc_errors_body(const wc_error_t *e, char *buf, size_t cap) {
  const char *msg = e->msg[0] != '\0' ? e->msg : wc_errors_message(e->kind);
  size_t pos;
  int n = snprintf(buf, cap,
                   "{\"error\":{\"status\":%d,\"code\":\"%s\",\"message\":\"",
                   wc_errors_status(e->kind), wc_errors_code(e->kind));
  if (n < 0 || (size_t)n + 4 >= cap)
    return 0;
  pos = (size_t)n;
  /* Leave room for the closing "}} whatever the message length. */
  wc_errors_json_escape(buf, cap - 4, &pos, msg, strlen(msg));
  memcpy(buf + pos, "\"}}", 4);
  return pos + 3;
}
