/*
 * http.c - HTTP/1.x for one connection, on llhttp.
 *
 * DESIGN
 * - One request in flight per connection (h2o's model): on_message_complete
 *   sets WC_PAUSE_REQUEST and returns HPE_PAUSED, so llhttp stops right after
 *   the message; the bytes after it (pipelined requests) stay with the
 *   connection until the response is queued, then parsing resumes. Responses
 *   are therefore in order, and the responses of pipelined requests answered
 *   in one event are collected into one write.
 * - Raw bodies are handed to job.c as they arrive; when a request has enough
 *   blocks in flight, on_body returns HPE_PAUSED and reading stops
 *   (back-pressure).
 * - Strictness that llhttp 8.1.0 lacks is checked here: a scanner runs over
 *   the header section before llhttp sees it (obs-fold, CR or LF that is not
 *   part of a CRLF, the size limit -> 431), and on_headers_complete checks
 *   framing (CL+TE, duplicate CL, TE other than chunked, TE on 1.0, Host).
 * - Errors found before the body is read are answered at once, with
 *   Connection: close, followed by a lingering close (conn.c).
 * - Every response carries X-Request-Id: the client's (1-128 characters of
 *   A-Z a-z 0-9 . _ -, given once) or a generated one. respond() is the one
 *   place that ends a request: it logs the access line and updates the
 *   request metrics (metrics.c).
 * - Auth (auth.token): the Authorization header is compared in constant time
 *   as it arrives; a protected route without a match gets 401 before its
 *   body is read. OPTIONS, /healthz and /readyz are never protected.
 */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "conn.h"
#include "log.h"
#include "metrics.h"

enum { SC_START, SC_LINE, SC_CR, SC_LINESTART, SC_END_CR, SC_DONE };
enum { H_OTHER, H_HOST, H_CL, H_TE, H_EXPECT, H_CTYPE, H_REQID, H_AUTH };

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

static wc_conn_t *conn_of(llhttp_t *p) {
  wc_http_t *h = container_of(p, wc_http_t, parser);
  return container_of(h, wc_conn_t, http);
}

static void respond(wc_conn_t *c, int status, const char *extra,
                    const char *body, size_t len);
static void respond_full(wc_conn_t *c, int status, const char *ctype,
                         const char *extra, const char *body, size_t len,
                         const wc_error_t *e);
static void respond_error(wc_conn_t *c, const wc_error_t *e);

/* The first byte of a request arrived: start its clock and count it. */
static void request_begin(wc_conn_t *c) {
  wc_http_t *h = &c->http;
  if (h->start_ns == 0) {
    /* One clock read per batch of input: pipelined requests of one read
     * all arrived then. */
    if (h->feed_ns == 0)
      h->feed_ns = uv_hrtime();
    h->start_ns = h->feed_ns;
  }
  if (!h->in_flight) {
    h->in_flight = 1;
    wc_metrics_gauge_add(WC_G_REQUESTS_IN_FLIGHT, 1);
  }
}

/* The request stopped being in flight (answered, or its client left). */
static void request_end(wc_http_t *h) {
  if (h->in_flight) {
    h->in_flight = 0;
    wc_metrics_gauge_add(WC_G_REQUESTS_IN_FLIGHT, -1);
  }
}

/*
 * A generated request id: 16 hex digits of splitmix64(seed + n), where the
 * seed is random per process and n counts up, so ids never repeat within a
 * process and differ between replicas. Loop thread only.
 */
static char hex_pairs[512]; /* "000102...ff", filled by settings_init */

static size_t request_id_new(char *out, size_t cap) {
  /* Per thread: each event loop has its own sequence. */
  static _Thread_local uint64_t seed, n;
  static _Thread_local int seeded;
  uint64_t z;
  if (!seeded) {
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
      seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    seeded = 1;
  }
  z = seed + ++n * UINT64_C(0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  z ^= z >> 31;
  if (cap < 17)
    return 0;
  for (int i = 14; i >= 0; i -= 2, z >>= 8) /* two digits per byte */
    memcpy(out + i, hex_pairs + 2 * (z & 0xff), 2);
  out[16] = '\0';
  return 16;
}

/* 1 when s[0..len) is an acceptable X-Request-Id. */
static int request_id_valid(const char *s, size_t len) {
  if (len == 0 || len > WC_REQUEST_ID_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

/*
 * 1 when the header value is "Bearer TOKEN" with the configured token. The
 * scheme is case-insensitive (RFC 9110, 11.1); the token is compared in time
 * that depends only on the configured token's length, never on where the
 * first difference is.
 */
static int auth_matches(const char *v, size_t len, const char *token) {
  size_t tlen = strlen(token), i = 0;
  unsigned diff;
  const char *p;
  size_t plen;
  if (len < 7 || strncasecmp(v, "Bearer ", 7) != 0)
    return 0;
  p = v + 7;
  plen = len - 7;
  while (plen > 0 && *p == ' ') {
    p++;
    plen--;
  }
  while (plen > 0 && (p[plen - 1] == ' ' || p[plen - 1] == '\t'))
    plen--;
  diff = plen != tlen;
  for (i = 0; i < tlen; i++)
    diff |= (unsigned char)token[i] ^ (unsigned char)(i < plen ? p[i] : 0);
  return diff == 0;
}

/* Fails the current request inside a parser callback. */
static int cb_fail(wc_conn_t *c, wc_err_t kind, const char *msg) {
  wc_error_t e;
  wc_errors_set(&e, kind, msg != NULL ? "%s" : NULL, msg);
  wc_http_early_error(c, &e);
  return HPE_USER;
}

static int on_message_begin(llhttp_t *p) {
  wc_conn_t *c = conn_of(p);
  request_begin(c);
  c->http.started = 1;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  wc_http_t *h = &conn_of(p)->http;
  /* Known from here on: an error before the headers are complete is then
   * answered without a body to HEAD and logged with the right method. */
  h->method = p->method;
  if (len == 0) /* h->url may still be NULL: no pointer arithmetic on it */
    return 0;
  if (h->url_len + len > h->url_cap) {
    size_t ncap = h->url_cap ? h->url_cap : 256;
    char *n;
    while (ncap < h->url_len + len)
      ncap *= 2;
    n = realloc(h->url, ncap);
    if (n == NULL)
      return cb_fail(conn_of(p), WC_E_NO_MEMORY, NULL);
    h->url = n;
    h->url_cap = ncap;
  }
  memcpy(h->url + h->url_len, at, len);
  h->url_len += len;
  return 0;
}

/*
 * Chunk extensions and trailer fields (RFC 9112 7.1.1, 7.1.2) are read and
 * discarded: a trailer never sets a request id, a Host or a token. Their
 * bytes count against limits.max_header_bytes together (431 past it), since
 * the header-section scanner is done with the request by then.
 */
static int trailer_bytes(llhttp_t *p, size_t len) {
  wc_conn_t *c = conn_of(p);
  wc_http_t *h = &c->http;
  size_t max = c->srv->cfg->limits.max_header_bytes;
  wc_error_t e;
  h->trailer_bytes += len;
  if (h->trailer_bytes <= max)
    return 0;
  wc_errors_set(&e, WC_E_HEADERS_TOO_LARGE,
                "chunk extensions and trailer fields are over %zu bytes "
                "(limits.max_header_bytes)",
                max);
  wc_http_early_error(c, &e);
  return HPE_USER;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t len) {
  (void)at;
  return trailer_bytes(p, len);
}

/* A trailer field's name or value at[0..len): counts every byte of the
 * section up to its end, the colon, whitespace and line ends between the
 * spans included (llhttp does not pass those); wc_http_feed counts what is
 * left at the end of each execute. */
static int trailer_span(llhttp_t *p, const char *at, size_t len) {
  wc_http_t *h = &conn_of(p)->http;
  size_t n;
  if (!h->in_trailer) { /* its first byte (later feeds: wc_http_feed) */
    h->in_trailer = 1;
    h->tmark = at;
  }
  n = (size_t)(at + len - h->tmark);
  h->tmark = at + len;
  return trailer_bytes(p, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  wc_http_t *h = &conn_of(p)->http;
  if (h->in_body)
    return trailer_span(p, at, len);
  if (h->field_len + len > sizeof h->field) {
    h->field_long = 1;
    return 0;
  }
  memcpy(h->field + h->field_len, at, len);
  h->field_len += len;
  return 0;
}

/*
 * 1 when the header name f[0..n) equals lower (lower case letters and '-',
 * n >= 4) ignoring ASCII case, eight bytes at a time, the last load
 * overlapping the one before (four bytes, twice, below 8). Setting bit 0x20
 * lower-cases a letter and leaves '-' alone; the only other byte it maps
 * onto one of these is CR (onto '-'), which llhttp never lets into a header
 * name.
 */
static int ieq(const char *f, const char *lower, size_t n) {
  uint64_t a, b, diff = 0;
  uint32_t a4, b4;
  size_t i = 0;
  if (n < 8) { /* 4 to 7 bytes (header_kind's are 4 or 6): two loads */
    memcpy(&a4, f, 4);
    memcpy(&b4, lower, 4);
    diff = (a4 | 0x20202020u) ^ b4;
    memcpy(&a4, f + n - 4, 4);
    memcpy(&b4, lower + n - 4, 4);
    return (diff | ((a4 | 0x20202020u) ^ b4)) == 0;
  }
  for (; i + 8 <= n; i += 8) {
    memcpy(&a, f + i, 8);
    memcpy(&b, lower + i, 8);
    diff |= (a | UINT64_C(0x2020202020202020)) ^ b;
  }
  if (i < n) { /* the last 8 bytes, overlapping the ones compared */
    memcpy(&a, f + n - 8, 8);
    memcpy(&b, lower + n - 8, 8);
    diff |= (a | UINT64_C(0x2020202020202020)) ^ b;
  }
  return diff == 0;
}

/* The headers this file looks at, told apart by length first (one compare
 * per header instead of up to seven). */
static int header_kind(const wc_http_t *h) {
  const char *f = h->field;
  if (h->field_long)
    return H_OTHER;
  switch (h->field_len) {
  case 4:
    return ieq(f, "host", 4) ? H_HOST : H_OTHER;
  case 6:
    return ieq(f, "expect", 6) ? H_EXPECT : H_OTHER;
  case 12:
    return ieq(f, "content-type", 12)   ? H_CTYPE
           : ieq(f, "x-request-id", 12) ? H_REQID
                                        : H_OTHER;
  case 13:
    return ieq(f, "authorization", 13) ? H_AUTH : H_OTHER;
  case 14:
    return ieq(f, "content-length", 14) ? H_CL : H_OTHER;
  case 17:
    return ieq(f, "transfer-encoding", 17) ? H_TE : H_OTHER;
  default:
    return H_OTHER;
  }
}

static int on_header_field_complete(llhttp_t *p) {
  wc_http_t *h = &conn_of(p)->http;
  if (h->in_body) /* a trailer field */
    return 0;
  if (h->field_len == 0 && !h->field_long)
    return cb_fail(conn_of(p), WC_E_BAD_REQUEST, "a header has an empty name");
  h->hdr = header_kind(h);
  h->field_len = 0;
  h->field_long = 0;
  h->value_len = 0;
  h->value_long = 0;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  wc_http_t *h = &conn_of(p)->http;
  if (h->in_body)
    return trailer_span(p, at, len);
  if (h->hdr == H_OTHER)
    return 0;
  if (h->value_len + len > sizeof h->value) {
    /* kept as far as it fits (a Content-Type's media type may be in it);
     * value_long tells every other header that it is cut */
    memcpy(h->value + h->value_len, at, sizeof h->value - h->value_len);
    h->value_len = sizeof h->value;
    h->value_long = 1;
    return 0;
  }
  memcpy(h->value + h->value_len, at, len);
  h->value_len += len;
  return 0;
}

static int value_is(const wc_http_t *h, const char *s) {
  size_t b = 0, e = h->value_len;
  while (b < e && (h->value[b] == ' ' || h->value[b] == '\t'))
    b++;
  while (e > b && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
    e--;
  return !h->value_long && strlen(s) == e - b &&
         strncasecmp(h->value + b, s, e - b) == 0;
}

/* RFC 9112 3.2: Host is uri-host [":" port], possibly empty; anything
 * else (spaces, '/', '@', controls...) must get 400. host_ok is filled in
 * once, by settings_init. */
static unsigned char host_ok[256];

static int host_is_valid(const wc_http_t *h) {
  size_t b = 0, e = h->value_len;
  if (h->value_long)
    return 0;
  while (b < e && (h->value[b] == ' ' || h->value[b] == '\t'))
    b++;
  while (e > b && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
    e--;
  for (size_t i = b; i < e; i++)
    if (!host_ok[(unsigned char)h->value[i]])
      return 0;
  return 1;
}

static int on_header_value_complete(llhttp_t *p) {
  wc_http_t *h = &conn_of(p)->http;
  switch (h->hdr) {
  case H_HOST:
    h->n_host++;
    if (!host_is_valid(h))
      return cb_fail(conn_of(p), WC_E_BAD_REQUEST,
                     "the Host header is not a valid host[:port]");
    break;
  case H_CL:
    h->n_cl++;
    break;
  case H_TE:
    h->n_te++;
    h->te_chunked = value_is(h, "chunked");
    break;
  case H_EXPECT:
    /* 417 unless every Expect header asks for 100-continue */
    h->expect_continue = (h->n_expect++ == 0 || h->expect_continue) &&
                         value_is(h, "100-continue");
    break;
  case H_CTYPE:
    h->n_ctype++;
    /* the media type only: parameters may make the value long */
    h->ctype_len = h->value_len;
    if (h->value_long || h->ctype_len >= sizeof h->ctype) {
      const char *semi = memchr(h->value, ';', h->value_len);
      h->ctype_len = semi != NULL ? (size_t)(semi - h->value) : 0;
      if (h->ctype_len >= sizeof h->ctype)
        h->ctype_len = 0;
    }
    memcpy(h->ctype, h->value, h->ctype_len);
    break;
  case H_REQID: {
    size_t b = 0, e = h->value_len;
    while (b < e && (h->value[b] == ' ' || h->value[b] == '\t'))
      b++;
    while (e > b && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
      e--;
    /* Two ids, or a bad one: the response gets a generated id. */
    h->reqid_len = 0;
    if (++h->n_reqid == 1 && !h->value_long &&
        request_id_valid(h->value + b, e - b)) {
      memcpy(h->reqid, h->value + b, e - b);
      h->reqid_len = e - b;
      h->reqid[h->reqid_len] = '\0';
    }
    break;
  }
  case H_AUTH: {
    const char *token = conn_of(p)->srv->cfg->auth_token;
    h->auth_ok = ++h->n_auth == 1 && !h->value_long && token[0] != '\0' &&
                 auth_matches(h->value, h->value_len, token);
    memset(h->value, 0, sizeof h->value); /* no copy of a secret lingers */
    break;
  }
  }
  h->hdr = H_OTHER;
  return 0;
}

/* Decides what to do with a request once its headers are complete. */
static int on_headers_complete(llhttp_t *p) {
  wc_conn_t *c = conn_of(p);
  wc_http_t *h = &c->http;
  const wc_config_t *cfg = c->srv->cfg;
  int chunked = (p->flags & F_CHUNKED) != 0;
  uint64_t cl = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
  wc_error_t *err = &h->pending_err;
  size_t path_len;
  const char *q;

  h->method = p->method;
  h->major = p->http_major;
  h->minor = p->http_minor;
  if (h->major != 1)
    return cb_fail(c, WC_E_VERSION, NULL);
  if (h->n_cl > 1)
    return cb_fail(c, WC_E_BAD_REQUEST, "duplicate Content-Length header");
  if (h->n_cl > 0 && h->n_te > 0)
    return cb_fail(c, WC_E_BAD_REQUEST,
                   "Content-Length and Transfer-Encoding together");
  if (h->n_te > 1 || (h->n_te == 1 && !h->te_chunked))
    return cb_fail(c, WC_E_BAD_REQUEST,
                   "Transfer-Encoding must be exactly \"chunked\"");
  if (h->n_te > 0 && h->minor == 0)
    return cb_fail(c, WC_E_BAD_REQUEST, "Transfer-Encoding on HTTP/1.0");
  if (h->minor >= 1 && h->n_host == 0)
    return cb_fail(c, WC_E_BAD_REQUEST, "HTTP/1.1 requires a Host header");
  if (h->n_host > 1)
    return cb_fail(c, WC_E_BAD_REQUEST, "duplicate Host header");
  if (h->n_ctype > 1) /* which would decide the body's type? */
    return cb_fail(c, WC_E_BAD_REQUEST, "duplicate Content-Type header");
  if ((h->url_len > 7 && strncasecmp(h->url, "http://", 7) == 0) ||
      (h->url_len > 8 && strncasecmp(h->url, "https://", 8) == 0)) {
    /* absolute-form (RFC 9112, 3.2.2): servers must accept it; the
     * authority is ignored and the path kept ("/" when there is none). */
    const char *auth = memchr(h->url, '/', h->url_len) + 2;
    const char *end = h->url + h->url_len;
    const char *path = memchr(auth, '/', (size_t)(end - auth));
    const char *qm = memchr(auth, '?', (size_t)(end - auth));
    if (path == NULL || (qm != NULL && qm < path)) {
      size_t rest = qm != NULL ? (size_t)(end - qm) : 0;
      memmove(h->url + 1, qm != NULL ? qm : end, rest);
      h->url[0] = '/';
      h->url_len = rest + 1;
    } else {
      h->url_len = (size_t)(end - path);
      memmove(h->url, path, h->url_len);
    }
  }
  if (h->url_len == 0 || (h->url[0] != '/' && h->url[0] != '*'))
    return cb_fail(c, WC_E_BAD_REQUEST,
                   "the request target must be a path like /count");
  /* RFC 9112 3.2: no fragment in a request target (llhttp lets '#' in) */
  if (memchr(h->url, '#', h->url_len) != NULL)
    return cb_fail(c, WC_E_BAD_REQUEST,
                   "the request target must not have a fragment (#...)");
  if (p->upgrade)
    h->early = 1; /* no protocol switch: answer, then close */

  h->has_body = chunked || cl > 0;
  wc_router_match(h->url, h->url_len, h->method, &h->route);
  h->body_limit = cfg->limits.max_json_body_bytes;
  if (h->route.protected && cfg->auth_token[0] != '\0' && !h->auth_ok) {
    wc_errors_set(err, WC_E_UNAUTHORIZED,
                  h->n_auth == 0 ? NULL
                                 : "the bearer token is wrong; send "
                                   "\"Authorization: Bearer TOKEN\" with "
                                   "the server's auth.token");
  } else if (h->route.action == WC_ACT_COUNT) {
    wc_count_t *ct = &h->count;
    wc_reqlimits_t lim = {cfg->limits.max_needles,
                          cfg->limits.max_needle_bytes};
    ct->expect = cl;
    q = memchr(h->url, '?', h->url_len);
    path_len = q != NULL ? (size_t)(q - h->url) : h->url_len;
    if (q != NULL &&
        wc_reqparse_query(&ct->spec, q + 1, h->url_len - path_len - 1, &lim,
                          err) < 0) {
      /* err is set */
    } else if (ct->spec.n > 0) {
      ct->body_type = WC_BODY_RAW;
      h->body_limit = cfg->limits.max_body_bytes;
    } else {
      ct->body_type = wc_reqparse_body_type(h->ctype, h->ctype_len);
      if (ct->body_type == WC_BODY_RAW)
        wc_errors_set(err, WC_E_MISSING_NEEDLE,
                      "no needle: for a raw body put needle=WORD in the "
                      "query; or send Content-Type application/json or "
                      "application/x-www-form-urlencoded");
    }
  } else if (h->route.action == WC_ACT_ERROR) {
    wc_errors_set(err, h->route.err, NULL);
  }
  if (err->kind == WC_E_NONE && h->n_expect > 0 && !h->expect_continue)
    wc_errors_set(err, WC_E_EXPECT, NULL);
  if (err->kind == WC_E_NONE && h->route.action == WC_ACT_COUNT &&
      h->count.body_type == WC_BODY_RAW) {
    int rc = wc_job_begin_raw(c);
    if (rc < 0 && h->count.err.kind != WC_E_NONE)
      *err = h->count.err;
  }
  if (err->kind == WC_E_NONE && cl > h->body_limit) {
    wc_error_t e;
    wc_errors_set(
        &e, WC_E_TOO_LARGE,
        "the body has %" PRIu64 " bytes; the limit is %" PRIu64 " (limits.%s)",
        cl, h->body_limit,
        h->route.action == WC_ACT_COUNT && h->count.body_type == WC_BODY_RAW
            ? "max_body_bytes"
            : "max_json_body_bytes");
    wc_http_early_error(c, &e);
    return HPE_USER;
  }
  if (err->kind != WC_E_NONE && h->has_body) {
    /* Known bad before the body: answer now instead of reading it (and
     * close: the client may be sending it). A bodiless request, with an
     * Expect or not, is answered at its end like any other and keeps the
     * connection. */
    wc_error_t e = *err;
    wc_http_early_error(c, &e);
    return HPE_USER;
  }
  if (h->expect_continue && h->has_body && h->minor >= 1) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (wc_conn_send(c, cont, sizeof cont - 1) < 0)
      return cb_fail(c, WC_E_NO_MEMORY, NULL);
  }
  h->in_body = 1;
  wc_conn_timer(c, h->has_body ? WC_TIMER_BODY : WC_TIMER_NONE);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  wc_conn_t *c = conn_of(p);
  wc_http_t *h = &c->http;
  h->body_bytes += len;
  wc_metrics_counter_add(WC_C_BODY_BYTES, len);
  if (h->body_bytes > h->body_limit) {
    wc_error_t e;
    wc_errors_set(
        &e, WC_E_TOO_LARGE, "the body is over %" PRIu64 " bytes (limits.%s)",
        h->body_limit,
        h->route.action == WC_ACT_COUNT && h->count.body_type == WC_BODY_RAW
            ? "max_body_bytes"
            : "max_json_body_bytes");
    wc_http_early_error(c, &e);
    return HPE_USER;
  }
  wc_conn_timer(c, WC_TIMER_BODY);
  if (h->body_bytes >= WC_HEAVY_BODY) /* small bodies never weigh */
    wc_conn_body_bytes(c, len);
  if (h->route.action == WC_ACT_COUNT && h->pending_err.kind == WC_E_NONE) {
    int rc = wc_job_data(c, at, len);
    if (rc < 0)
      return cb_fail(c, WC_E_NO_MEMORY, NULL);
    if (rc > 0)
      return HPE_PAUSED;
  }
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  wc_conn_t *c = conn_of(p);
  wc_http_t *h = &c->http;
  const char *body = NULL;
  int status;
  h->in_body = 0;
  h->in_trailer = 0; /* counted up to here; what follows is not its */
  wc_conn_heavy_off(c); /* the body is in: no longer busy with it */
  /* llhttp lets keep-alive win over close on HTTP/1.0 (RFC 9112 9.3:
   * close wins) */
  if (!llhttp_should_keep_alive(p) || (p->flags & F_CONNECTION_CLOSE))
    h->early = 1; /* not an error: just close after the answer */
  c->pause |= WC_PAUSE_REQUEST;
  wc_conn_timer(c, WC_TIMER_NONE);
  if (h->pending_err.kind != WC_E_NONE) {
    respond_error(c, &h->pending_err);
    return HPE_PAUSED;
  }
  switch (h->route.action) {
  case WC_ACT_COUNT:
    if (wc_job_end(c) < 0) {
      wc_error_t e;
      wc_errors_set(&e, WC_E_NO_MEMORY, NULL);
      respond_error(c, &e);
    }
    break;
  case WC_ACT_READY:
    status = wc_router_simple(&h->route, c->srv->draining, &body);
    if (body == NULL) {
      wc_error_t e;
      wc_errors_set(&e, WC_E_DRAINING, NULL);
      respond_error(c, &e);
      break;
    }
    respond(c, status, NULL, body, strlen(body));
    break;
  case WC_ACT_HEALTH:
    status = wc_router_simple(&h->route, c->srv->draining, &body);
    respond(c, status, NULL, body, strlen(body));
    break;
  case WC_ACT_METRICS: {
    char *text = NULL;
    size_t len = 0;
    if (wc_metrics_render(&text, &len) < 0) {
      wc_error_t e;
      wc_errors_set(&e, WC_E_NO_MEMORY, NULL);
      respond_error(c, &e);
      break;
    }
    respond_full(c, 200, METRICS_CTYPE, NULL, text, len, NULL);
    free(text);
    break;
  }
  case WC_ACT_OPTIONS: {
    char allow[96];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", h->route.allow);
    respond(c, 204, allow, NULL, 0);
    break;
  }
  case WC_ACT_ERROR:
    respond_error(c, &h->pending_err);
    break;
  }
  return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void) {
  static const char ok[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
      "0123456789-._~!$&'()*+,;=:[]%";
  for (const char *q = ok; *q != '\0'; q++)
    host_ok[(unsigned char)*q] = 1;
  for (int b = 0; b < 256; b++) {
    hex_pairs[2 * b] = "0123456789abcdef"[b >> 4];
    hex_pairs[2 * b + 1] = "0123456789abcdef"[b & 15];
  }
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_header_field = on_header_field;
  settings.on_header_field_complete = on_header_field_complete;
  settings.on_header_value = on_header_value;
  settings.on_header_value_complete = on_header_value_complete;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_chunk_extension_name = on_chunk_extension;
  settings.on_chunk_extension_value = on_chunk_extension;
  settings.on_message_complete = on_message_complete;
}

void wc_http_init(wc_conn_t *c) {
  wc_http_t *h = &c->http;
  pthread_once(&settings_once, settings_init);
  memset(h, 0, sizeof *h);
  llhttp_init(&h->parser, HTTP_REQUEST, &settings);
  wc_job_init(&h->count);
  h->scan_state = SC_START;
}

/* Forgets the answered request; keeps the parser, the URL buffer and the
 * fields after count (see http.h). */
static void request_reset(wc_conn_t *c) {
  wc_http_t *h = &c->http;
  char *url = h->url;
  size_t url_cap = h->url_cap;
  llhttp_t parser = h->parser;
  int kick = h->kick;
  wc_job_reset(c); /* frees and clears h->count */
  memset(h, 0, offsetof(wc_http_t, count));
  h->parser = parser;
  h->kick = kick;
  h->url = url;
  h->url_cap = url_cap;
  h->scan_state = SC_START;
}

void wc_http_free(wc_conn_t *c) {
  request_end(&c->http);
  wc_job_reset(c);
  free(c->http.url);
  c->http.url = NULL;
}

int wc_http_busy(const wc_conn_t *c) {
  return c->http.started;
}

/* The index of the first CR or LF in p[i..n), or n. 16 bytes at a time
 * with SSE2 (the x86-64 baseline). */
static size_t line_end(const char *p, size_t i, size_t n) {
#ifdef __SSE2__
  const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
    unsigned m = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
    if (m != 0)
      return i + (size_t)__builtin_ctz(m);
  }
#endif
  while (i < n && p[i] != '\r' && p[i] != '\n')
    i++;
  return i;
}

#ifdef __SSE2__
static inline unsigned eq16(__m128i v, char c) {
  return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}

/*
 * The scanner's fast path: from p[i], inside a line (its first byte, or
 * after bytes that were not CR or LF), 16 bytes at a time, the end of the
 * header section (the index after its CR LF CR LF) when the section is in
 * p[..n) and clean: every CR followed by LF, every LF after a CR, no line
 * starting with a space or tab. 0 otherwise, and the byte loop of scan
 * then walks it, with its exact errors. In each 16-byte block, bit 16 + j
 * of a 32-bit mask is byte j and bits below it are the block before.
 */
static size_t head_end(const char *p, size_t i, size_t n) {
  unsigned pcr = 0, plf = 0; /* the block before: CR and LF masks */
  for (size_t k = i; k < n; k += 16) {
    __m128i v;
    unsigned cr, lf, ws, crw, lfw, bad, ends;
    if (k + 16 <= n) {
      v = _mm_loadu_si128((const __m128i *)(const void *)(p + k));
    } else { /* the last bytes, padded with NULs (none of CR LF SP HT) */
      char tail[16] = {0};
      memcpy(tail, p + k, n - k);
      v = _mm_loadu_si128((const __m128i *)(const void *)tail);
    }
    cr = eq16(v, '\r');
    lf = eq16(v, '\n');
    ws = eq16(v, ' ') | eq16(v, '\t');
    crw = cr << 16 | pcr;
    lfw = lf << 16 | plf;
    /* bit j: byte j is LF after CR after LF after CR */
    ends = lf & (crw >> 15) & (lfw >> 14) & (crw >> 13) & 0xFFFFu;
    /* an LF not after a CR, a CR followed by other than LF, a space or tab
     * starting a line */
    bad = ((lf & ~(crw >> 15)) | ((crw >> 15) & ~lf) | ((lfw >> 15) & ws)) &
          0xFFFFu;
    if (ends != 0) {
      unsigned e = (unsigned)__builtin_ctz(ends);
      return (bad & ((2u << e) - 1)) == 0 ? k + e + 1 : 0;
    }
    if (bad != 0)
      return 0;
    pcr = cr;
    plf = lf;
  }
  return 0;
}
#endif

/* Matches the request line's start against "HEAD ", over as many reads as
 * its first five bytes take (head_seen: bytes matched; 6 once it is known
 * not to). */
static void head_feed(wc_http_t *h, const char *p, size_t n) {
  static const char m[] = "HEAD ";
  for (size_t i = 0; i < n && h->head_seen < 5; i++)
    h->head_seen = p[i] == m[h->head_seen] ? h->head_seen + 1 : 6;
}

/*
 * The header-section scanner. Returns 0, or -1 after answering an error.
 * Stops (SC_DONE) at the empty line that ends the headers; the parser is
 * reset to SC_START when a request is answered.
 */
static int scan(wc_conn_t *c, const char *p, size_t n) {
  wc_http_t *h = &c->http;
  size_t max = c->srv->cfg->limits.max_header_bytes;
  const char *why = NULL;
  int fast = 1; /* once per call: a section not all here is walked */
  if (h->scan_state != SC_START && h->head_seen < 5)
    head_feed(h, p, n); /* the method began in an earlier read */
  for (size_t i = 0; i < n && h->scan_state != SC_DONE; i++) {
    char ch = p[i];
    if (h->scan_state == SC_START) {
      if (ch == '\r' || ch == '\n')
        continue; /* empty lines before a request are ignored */
      h->scan_state = SC_LINE;
      h->started = 1;
      h->head_seen = 0;
      head_feed(h, p + i, n - i);
      request_begin(c);
      wc_conn_timer(c, WC_TIMER_HEADERS);
    }
#ifdef __SSE2__
    if (fast && h->scan_state == SC_LINE) {
      size_t e = head_end(p, i, n);
      fast = 0;
      if (e != 0 && e - i <= max - h->header_bytes) {
        h->header_bytes += e - i;
        h->scan_state = SC_DONE;
        break;
      }
    }
#endif
    if (h->scan_state == SC_LINE) {
      /* Most bytes: the inside of a line; run to its CR or LF. */
      size_t j = line_end(p, i, n);
      if (h->header_bytes + (j - i) > max) {
        h->header_bytes = max; /* the check below fails */
      } else {
        h->header_bytes += j - i;
        i = j;
        if (i == n)
          break;
        ch = p[i];
      }
    }
    if (++h->header_bytes > max) {
      wc_error_t e;
      wc_errors_set(&e, WC_E_HEADERS_TOO_LARGE,
                    "the request line and headers are over %zu bytes "
                    "(limits.max_header_bytes)",
                    max);
      wc_http_early_error(c, &e);
      return -1;
    }
    switch (h->scan_state) {
    case SC_LINE:
      if (ch == '\r')
        h->scan_state = SC_CR;
      else if (ch == '\n')
        why = "a line ends with LF without CR";
      break;
    case SC_CR:
      if (ch == '\n')
        h->scan_state = SC_LINESTART;
      else
        why = "a CR not followed by LF";
      break;
    case SC_LINESTART:
      if (ch == '\r')
        h->scan_state = SC_END_CR;
      else if (ch == ' ' || ch == '\t')
        why = "obsolete line folding (a header line starting with a space "
              "or tab)";
      else if (ch == '\n')
        why = "a line ends with LF without CR";
      else
        h->scan_state = SC_LINE;
      break;
    case SC_END_CR:
      if (ch == '\n')
        h->scan_state = SC_DONE;
      else
        why = "a CR not followed by LF";
      break;
    }
    if (why != NULL) {
      wc_error_t e;
      wc_errors_set(&e, WC_E_BAD_REQUEST, "malformed request: %s", why);
      wc_http_early_error(c, &e);
      return -1;
    }
  }
  return 0;
}

/* HPE_INVALID_VERSION covers two cases: a well-formed HTTP/D.D that llhttp
 * does not know (1.2, 3.0: "Invalid HTTP version"), which is 505, and a
 * malformed one ("Expected dot" for HTTP/1, "Invalid minor version" for
 * HTTP/1.x, "Expected CRLF after version" for HTTP/1.10), which is a 400
 * like every other syntax error, and the scanner's answer when it sees the
 * same line first (a malformed version gets 400 whole or in pieces; a
 * well-formed unknown one followed by a bare CR can still get 505 in
 * pieces, 400 whole: llhttp judges the version before the scanner sees the
 * CR).
 * HTTP/2.0 and 0.9 parse and get their 505 after the headers (http.c's
 * on_headers_complete). */
static void protocol_error(wc_conn_t *c, llhttp_errno_t err) {
  wc_error_t e;
  const char *why = llhttp_get_error_reason(&c->http.parser);
  if (err == HPE_INVALID_VERSION && why != NULL &&
      strcmp(why, "Invalid HTTP version") == 0)
    wc_errors_set(&e, WC_E_VERSION, NULL);
  else
    wc_errors_set(&e, WC_E_BAD_REQUEST, "malformed request: %s",
                  why != NULL ? why : llhttp_errno_name(err));
  wc_http_early_error(c, &e);
}

int wc_http_feed(wc_conn_t *c, const char *data, size_t len, size_t *consumed) {
  wc_http_t *h = &c->http;
  size_t off = 0;
  h->feed_ns = 0;
  for (;;) {
    llhttp_errno_t err;
    if (c->closing || c->want_close) {
      *consumed = len;
      return -1;
    }
    if (c->pause != 0 || (off == len && !h->kick))
      break;
    /* After a pause llhttp may owe transitions that need no input (the
     * message completing right after the last body byte): a zero-length
     * execute runs them. */
    h->kick = 0;
    if (off < len && h->scan_state != SC_DONE &&
        scan(c, data + off, len - off) < 0) {
      *consumed = len;
      return -1;
    }
    if (h->in_trailer)
      h->tmark = data + off;
    err = llhttp_execute(&h->parser, data + off, len - off);
    if (h->in_trailer && h->tmark != NULL &&
        (err == HPE_OK || err == HPE_PAUSED)) {
      /* trailer bytes after its last span: whitespace, a line end */
      const char *end =
          err == HPE_OK ? data + len : llhttp_get_error_pos(&h->parser);
      size_t n = end > h->tmark ? (size_t)(end - h->tmark) : 0;
      h->tmark = NULL;
      if (trailer_bytes(&h->parser, n) != 0) {
        *consumed = len;
        return -1;
      }
    }
    if (err == HPE_OK) {
      off = len;
      continue;
    }
    if (err == HPE_PAUSED) {
      off = (size_t)(llhttp_get_error_pos(&h->parser) - data);
      llhttp_resume(&h->parser);
      h->kick = 1;
      continue;
    }
    if (err != HPE_USER && err != HPE_PAUSED_UPGRADE && !c->want_close &&
        !c->closing)
      protocol_error(c, err);
    *consumed = len;
    return -1;
  }
  *consumed = off;
  return 0;
}

static const char *reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 417:
    return "Expectation Failed";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

/* The endpoint label of the current request (metrics.c). A request
 * refused before the router saw it (a 431 or 408 during the headers, no
 * Host, a 505) is matched here from its target, so that its error counts
 * under its path; only errors take this path, and only a few compares. */
static wc_endpoint_t endpoint_of(const wc_http_t *h) {
  wc_route_t r = h->route;
  if (h->url_len == 0)
    r.endpoint = WC_PATH_NONE;
  else if (r.endpoint == WC_PATH_NONE)
    wc_router_match(h->url, h->url_len, h->method, &r);
  switch (r.endpoint) {
  case WC_PATH_COUNT:
    return WC_EP_COUNT;
  case WC_PATH_HEALTHZ:
    return WC_EP_HEALTHZ;
  case WC_PATH_READYZ:
    return WC_EP_READYZ;
  case WC_PATH_METRICS:
    return WC_EP_METRICS;
  default:
    return WC_EP_OTHER;
  }
}

/* The access-log line of an answered request, and for an error the
 * diagnostic line (server faults as warnings, client errors at debug). */
static void log_answer(wc_conn_t *c, int status, uint64_t ns,
                       const wc_error_t *e) {
  wc_http_t *h = &c->http;
  wc_access_t a;
  if (e == NULL && !wc_log_access_enabled())
    return; /* nothing to write: build nothing */
  memset(&a, 0, sizeof a);
  a.peer = c->peer;
  a.method = h->url_len ? llhttp_method_name(h->method) : "-";
  a.target = h->url ? h->url : "";
  a.target_len = h->url_len;
  a.request_id = h->reqid;
  a.status = status;
  a.bytes_in = h->body_bytes;
  a.bytes_out = h->bytes_out;
  a.ns = ns;
  if (e != NULL) {
    a.error_code = wc_errors_code(e->kind);
    a.error_msg = e->msg[0] != '\0' ? e->msg : wc_errors_message(e->kind);
    if (wc_log_enabled(status >= 500 ? WC_LOG_WARN : WC_LOG_DEBUG))
      wc_log(status >= 500 ? WC_LOG_WARN : WC_LOG_DEBUG,
             "%s %s: %d %s: %s (request %s)", c->peer, a.method, status,
             a.error_code, a.error_msg, h->reqid);
  }
  wc_log_access(&a);
}

/*
 * Queues the response of the current request and ends the request: the one
 * place that writes the access-log line and counts the request in the
 * metrics. e is the error being answered, or NULL.
 */
static void respond_full(wc_conn_t *c, int status, const char *ctype,
                         const char *extra, const char *body, size_t len,
                         const wc_error_t *e) {
  wc_http_t *h = &c->http;
  wc_server_t *srv = c->srv;
  /* An answer given while jobs of this request still run (an allocation
   * failed half way) closes the connection: the request state they use
   * must then stay until conn_free, as after an early answer. */
  int close = h->early || srv->draining || c->eof || h->count.inflight > 0;
  int head = h->url_len > 0 ? h->method == HTTP_HEAD : h->head_seen == 5;
  const char *rs = reason(status);
  size_t rs_len = strlen(rs), ct_len = ctype ? strlen(ctype) : 0;
  size_t ex_len = extra ? strlen(extra) : 0;
  char hdr[1024];
  size_t n = 0;
  uint64_t ns;
  if (h->reqid_len == 0)
    h->reqid_len = request_id_new(h->reqid, sizeof h->reqid);
  /* Formatted by hand (no printf on the hot path): the status line, the
   * cached Date line, then the fixed header names. */
  if (rs_len + srv->date_len + ct_len + h->reqid_len + ex_len + 160 >
      sizeof hdr) {
    wc_log(WC_LOG_WARN, "response header too long");
    wc_conn_close(c);
    return;
  }
  if (status == 200) {
    n = WC_PUT_LIT(hdr, n, "HTTP/1.1 200 OK\r\n");
  } else {
    n = WC_PUT_LIT(hdr, n, "HTTP/1.1 ");
    n += wc_u64_dec(hdr + n, (uint64_t)status);
    hdr[n++] = ' ';
    n = wc_put(hdr, n, rs, rs_len);
    n = WC_PUT_LIT(hdr, n, "\r\n");
  }
  n = wc_put(hdr, n, srv->date, srv->date_len);
  if (status != 204) {
    n = WC_PUT_LIT(hdr, n, "Content-Type: ");
    n = wc_put(hdr, n, ctype, ct_len);
    n = WC_PUT_LIT(hdr, n, "\r\nContent-Length: ");
    n += wc_u64_dec(hdr + n, len);
    n = WC_PUT_LIT(hdr, n, "\r\n");
  }
  n = WC_PUT_LIT(hdr, n, "X-Request-Id: ");
  n = wc_put(hdr, n, h->reqid, h->reqid_len);
  n = WC_PUT_LIT(hdr, n, "\r\n");
  n = wc_put(hdr, n, extra ? extra : "", ex_len);
  if (close)
    n = WC_PUT_LIT(hdr, n, "Connection: close\r\n");
  else if (h->minor == 0)
    n = WC_PUT_LIT(hdr, n, "Connection: keep-alive\r\n");
  n = WC_PUT_LIT(hdr, n, "\r\n");
  if (wc_conn_send(c, hdr, n) < 0 ||
      (!head && status != 204 && len > 0 && wc_conn_send(c, body, len) < 0)) {
    wc_log(WC_LOG_WARN, "out of memory queueing a response");
    wc_conn_close(c);
    return;
  }
  h->bytes_out = n + (head ? 0 : len);
  ns = h->start_ns ? uv_hrtime() - h->start_ns : 0;
  request_end(h);
  wc_metrics_request(endpoint_of(h), status, ns,
                     e != NULL ? e->kind : WC_E_NONE);
  log_answer(c, status, ns, e);
  if (close) {
    /* After an early answer the body may still be coming: linger. Jobs may
     * still run, so the request state stays until conn_free. */
    wc_conn_close_after_write(c, h->unread && !h->timed_out);
    return;
  }
  request_reset(c);
  wc_conn_timer(c, WC_TIMER_IDLE);
  wc_conn_resume(c, WC_PAUSE_REQUEST);
}

static void respond(wc_conn_t *c, int status, const char *extra,
                    const char *body, size_t len) {
  respond_full(c, status, "application/json", extra, body, len, NULL);
}

static void respond_error(wc_conn_t *c, const wc_error_t *e) {
  char body[512];
  char extra[128] = "";
  size_t len = wc_errors_body(e, body, sizeof body);
  if (e->kind == WC_E_METHOD && c->http.route.allow != NULL)
    snprintf(extra, sizeof extra, "Allow: %s\r\n", c->http.route.allow);
  else if (e->kind == WC_E_UNAUTHORIZED)
    snprintf(extra, sizeof extra,
             "WWW-Authenticate: Bearer realm=\"wordcount\"%s\r\n",
             c->http.n_auth > 0 ? ", error=\"invalid_token\"" : "");
  respond_full(c, wc_errors_status(e->kind), "application/json", extra, body,
               len, e);
}

void wc_http_early_error(wc_conn_t *c, const wc_error_t *e) {
  if (c->closing || c->want_close)
    return;
  c->http.early = 1;
  c->http.unread = 1;
  c->pause |= WC_PAUSE_REQUEST;
  respond_error(c, e);
}

void wc_http_timeout(wc_conn_t *c) {
  wc_error_t e;
  wc_log(WC_LOG_DEBUG,
         "%s: timeout (%s), pause=%#x reading=%d body=%" PRIu64
         " inflight=%u block=%zu",
         c->peer, c->http.in_body ? "body" : "headers", c->pause, c->reading,
         c->http.body_bytes, c->http.count.inflight, c->http.count.block_len);
  wc_errors_set(&e, WC_E_TIMEOUT,
                c->http.in_body ? "no body bytes arrived in time "
                                  "(timeouts_ms.body)"
                                : "the headers did not arrive in time "
                                  "(timeouts_ms.header)");
  /* No lingering for a client that is too slow: close once written. */
  c->http.early = 1;
  c->http.timed_out = 1;
  c->pause |= WC_PAUSE_REQUEST;
  respond_error(c, &e);
  wc_conn_flush(c);
}

void wc_http_count_done(wc_conn_t *c) {
  wc_http_t *h = &c->http;
  wc_count_t *ct = &h->count;
  size_t cap = 96, pos = 0, n = ct->spec.n;
  char small[1024]; /* most answers: no allocation */
  char *out;
  if (ct->err.kind != WC_E_NONE) {
    respond_error(c, &ct->err);
    return;
  }
  for (size_t i = 0; i < n; i++)
    cap += ct->spec.lens[i] * 6 + 32;
  out = cap <= sizeof small ? small : malloc(cap);
  if (out == NULL) {
    wc_error_t e;
    wc_errors_set(&e, WC_E_NO_MEMORY, NULL);
    respond_error(c, &e);
    return;
  }
  if (n == 1) {
    pos = WC_PUT_LIT(out, pos, "{\"count\":");
    pos += wc_u64_dec(out + pos, ct->counts[0]);
    pos = WC_PUT_LIT(out, pos, ",\"counts\":{");
  } else {
    pos = WC_PUT_LIT(out, pos, "{\"counts\":{");
  }
  for (size_t i = 0; i < n; i++) {
    out[pos++] = i ? ',' : '"';
    if (i)
      out[pos++] = '"';
    wc_errors_json_escape(out, cap, &pos, ct->spec.needles[i],
                          ct->spec.lens[i]);
    pos = WC_PUT_LIT(out, pos, "\":");
    pos += wc_u64_dec(out + pos, ct->counts[i]);
  }
  pos = WC_PUT_LIT(out, pos, "},\"bytes\":");
  pos += wc_u64_dec(out + pos, ct->bytes);
  out[pos++] = '}';
  {
    uint64_t words = 0;
    for (size_t i = 0; i < n; i++)
      words += ct->counts[i];
    wc_metrics_counter_add(WC_C_TEXT_BYTES, ct->bytes);
    wc_metrics_counter_add(WC_C_WORDS_MATCHED, words);
  }
  respond(c, 200, NULL, out, pos);
  if (out != small)
    free(out);
}
