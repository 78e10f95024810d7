/*
 * http.h - HTTP/1.x on top of llhttp for one connection: strict parsing,
 * the request in progress, and response framing. Loop thread only.
 */
#ifndef WC_HTTP_H
#define WC_HTTP_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "job.h"
#include "router.h"

typedef struct wc_conn wc_conn_t;

/* Longest X-Request-Id taken from a client. */
#define WC_REQUEST_ID_MAX 128

typedef struct {
  llhttp_t parser;
  /* The raw header-section scanner (obs-fold, bare CR/LF, size limit). */
  int scan_state;
  size_t header_bytes;
  /* The request in progress. */
  int started;  /* a byte of this request was seen */
  int in_body;  /* headers complete, message not complete */
  int has_body; /* Content-Length > 0 or chunked */
  int early;    /* close after the answer */
  int unread;   /* answered before the request was read: linger */
  int timed_out;
  int kick; /* the parser paused and may owe input-free transitions */
  int method;    /* from the first byte of the target on (on_url) */
  unsigned head_seen; /* bytes of "HEAD " the request starts with; 5: it
                         is HEAD, 6: it is not (for an answer before llhttp
                         has parsed the method: the scanner's 431) */
  uint8_t major, minor;
  char *url;
  size_t url_len, url_cap;
  size_t field_len;
  int field_long;
  int hdr; /* which header the current value belongs to */
  size_t value_len;
  int value_long;
  unsigned n_host, n_cl, n_te, n_expect, n_ctype;
  int te_chunked;
  int expect_continue; /* every Expect header is 100-continue */
  size_t trailer_bytes; /* chunk extensions and trailer fields, capped */
  int in_trailer;        /* the trailer section has begun */
  const char *tmark;     /* trailer bytes before it (in this feed) counted */
  size_t ctype_len;
  /* X-Request-Id (valid, or empty: one is generated for the response) and
   * Authorization (checked as it arrives; only the verdict is kept). */
  size_t reqid_len;
  unsigned n_reqid, n_auth;
  int auth_ok;
  int in_flight; /* counted in wordcount_requests_in_flight */
  uint64_t body_bytes, body_limit;
  wc_route_t route;
  wc_error_t pending_err; /* decided at the headers, sent at the end */
  uint64_t start_ns;
  size_t bytes_out;
  /* request_reset clears everything above; count is reset by job.c. */
  wc_count_t count;
  /* Not cleared between requests: the buffers are read only up to their
   * lengths above, and feed_ns is per wc_http_feed call. */
  uint64_t feed_ns; /* when this feed's bytes arrived; 0: not taken yet */
  char field[40];
  char value[512];
  char ctype[128];
  char reqid[WC_REQUEST_ID_MAX + 1];
  char body_in[512]; /* a small JSON or form body (job.c) */
} wc_http_t;

/* Sets up the parser of a new connection. */
void wc_http_init(wc_conn_t *c);

/* Frees the request state (no job may be in flight). */
void wc_http_free(wc_conn_t *c);

/*
 * Feeds input. Stops early when the connection pauses (c->pause != 0);
 * *consumed says how much was taken, and the rest must be fed again later.
 * Returns 0, or -1 when the connection must not parse any more (an error was
 * answered or the connection is closing).
 */
int wc_http_feed(wc_conn_t *c, const char *data, size_t len, size_t *consumed);

/* 1 when bytes of a request were received and it is not answered yet. */
int wc_http_busy(const wc_conn_t *c);

/* A header or body deadline passed: 408 (best effort) and close. */
void wc_http_timeout(wc_conn_t *c);

/* All counting of the current request is done (job.c): answer it. */
void wc_http_count_done(wc_conn_t *c);

/* Answers the current request with an error before its body was read, then
 * closes with a lingering close. */
void wc_http_early_error(wc_conn_t *c, const wc_error_t *e);

#endif
