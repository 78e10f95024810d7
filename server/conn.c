/*
 * conn.c - one client connection: reading, writing, its timer, closing.
 *
 * LIFETIME
 * - A connection is created by wc_conn_accept and lives on the loop thread;
 *   no worker ever touches it. Workers see only their job (job.c).
 * - c->refs counts what may still call back into the connection: one
 *   reference per open handle (the TCP handle and the timer, taken at
 *   accept, dropped in their close callbacks) and one per job queued in the
 *   worker pool (taken when queued, dropped at the end of its after_work
 *   callback, which libuv always runs, with UV_ECANCELED when cancelled).
 * - wc_conn_close is the only way to end a connection: it sets `closing`,
 *   cancels jobs that have not started, unlinks the connection from the
 *   server and closes both handles. It may be called any number of times.
 * - conn_free runs exactly once, from wc_conn_unref when refs reaches zero,
 *   that is when both handles are closed and no job refers to the
 *   connection any more. It is the one place that frees its memory.
 * - A job whose client left finds `closing` (or `lingering`, after an early
 *   answer) set in its after_work callback and drops its result.
 * - Pending writes are cancelled by uv_close; their callback runs (with
 *   UV_ECANCELED) before the close callbacks, so it may still use c.
 *
 * FLOW CONTROL: the connection reads only when no WC_PAUSE_* bit is set.
 * A connection that has read WC_READ_TURN bytes in one turn of the loop
 * pauses with WC_PAUSE_TURN until the loop's check phase (after its
 * other events), so one fast upload does not hold the loop.
 * Bytes that the parser did not take when it paused are kept in `pend` (at
 * most one read buffer) and parsed first when the last bit clears.
 *
 * TIMER: one deadline per connection, its meaning in `tstate`
 * (wc_timer_state_t). The keep-alive timeout closes only a connection that
 * is really idle: one with answers not yet written or pipelined bytes in
 * `pend` switches to WC_TIMER_SEND, timeouts_ms.body renewed by each write
 * the client takes (as WC_TIMER_CLOSE is), and back to idle once its
 * output has drained.
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* Per-connection cap on output not yet written. */
#define WC_OUTPUT_CAP (64 * 1024)
/* How long a lingering close discards input. */
#define WC_LINGER_MS 3000

static void conn_pump(wc_conn_t *c);

static void conn_free(wc_conn_t *c) {
  wc_server_t *srv = c->srv;
  wc_conn_heavy_off(c); /* off since wc_conn_close; never left in a list */
  wc_http_free(c);
  free(c->pend);
  free(c->obuf);
  free(c->wbuf);
  free(c);
  wc_metrics_gauge_add(WC_G_OPEN_CONNECTIONS, -1);
  wc_server_conn_freed(srv);
}

void wc_conn_ref(wc_conn_t *c) {
  c->refs++;
}

void wc_conn_unref(wc_conn_t *c) {
  if (--c->refs == 0)
    conn_free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  wc_conn_t *c;
  if (h->type == UV_TCP)
    c = container_of((uv_tcp_t *)h, wc_conn_t, tcp);
  else
    c = container_of((uv_timer_t *)h, wc_conn_t, timer);
  wc_conn_unref(c);
}

void wc_conn_close(wc_conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  wc_conn_heavy_off(c);
  wc_job_cancel_all(c);
  wc_list_remove(&c->link);
  wc_list_remove(&c->wait_link);
  wc_list_remove(&c->turn_link);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/*
 * TIMER: one deadline per connection (c->deadline, 0 for none), kept
 * lazily. Setting a later deadline, as every request does several times
 * (idle, headers, body, none, idle again), leaves the libuv timer armed
 * where it is; when it fires early it re-arms itself for what is left. Only
 * an earlier deadline re-arms at once. So a request costs no timer-heap
 * operation in the common case instead of about nine.
 */
static void on_timer(uv_timer_t *t);

/* Arms the libuv timer for c->deadline (> now). */
static void arm_timer(wc_conn_t *c, uint64_t now) {
  uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
  c->armed_due = c->deadline;
}

static void on_timer(uv_timer_t *t) {
  wc_conn_t *c = container_of(t, wc_conn_t, timer);
  uint64_t now = uv_now(t->loop);
  if (c->deadline == 0)
    return;
  if (now < c->deadline) {
    arm_timer(c, now);
    return;
  }
  c->deadline = 0;
  switch (c->tstate) {
  case WC_TIMER_HEADERS:
  case WC_TIMER_BODY:
    wc_http_timeout(c);
    break;
  case WC_TIMER_NONE:
    break;
  case WC_TIMER_IDLE:
    /* Not idle while answers are still being written or pipelined
     * requests wait behind them: a client reading slowly gets
     * timeouts_ms.body from the last bytes it took, as a body does. */
    if (c->writing || c->obuf_len > 0 || c->pend != NULL) {
      wc_conn_timer(c, WC_TIMER_SEND);
      break;
    }
    wc_conn_close(c);
    break;
  default: /* linger, or output stuck (at close, or for a slow reader) */
    wc_conn_close(c);
    break;
  }
}

void wc_conn_timer(wc_conn_t *c, wc_timer_state_t st) {
  const wc_config_t *cfg = c->srv->cfg;
  uint64_t ms = 0, now;
  if (c->closing)
    return;
  c->tstate = st;
  switch (st) {
  case WC_TIMER_IDLE:
    ms = cfg->timeouts_ms.keepalive;
    break;
  case WC_TIMER_HEADERS:
    ms = cfg->timeouts_ms.header;
    break;
  case WC_TIMER_BODY:
  case WC_TIMER_CLOSE:
  case WC_TIMER_SEND:
    ms = cfg->timeouts_ms.body;
    break;
  case WC_TIMER_LINGER:
    ms = WC_LINGER_MS;
    break;
  case WC_TIMER_NONE:
    break;
  }
  if (ms == 0) {
    c->deadline = 0; /* an armed timer fires and finds nothing to do */
    return;
  }
  now = uv_now(c->srv->loop);
  c->deadline = now + ms;
  if (!uv_is_active((uv_handle_t *)&c->timer) || c->armed_due > c->deadline)
    arm_timer(c, now);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  wc_conn_t *c = container_of((uv_tcp_t *)h, wc_conn_t, tcp);
  size_t len = 0;
  char *into = c->pend == NULL && !c->lingering && !c->want_close
                   ? wc_job_read_into(c, &len)
                   : NULL;
  (void)hint;
  /* Reads are handled before the next alloc, so one buffer serves all;
   * the bytes of a large JSON body go straight into its buffer. */
  *buf = into != NULL ? uv_buf_init(into, (unsigned)len)
                      : uv_buf_init(c->srv->read_buf, sizeof c->srv->read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  wc_conn_t *c = container_of((uv_tcp_t *)s, wc_conn_t, tcp);
  size_t consumed = 0;
  if (c->closing)
    return;
  if (nread < 0) {
    if (nread != UV_EOF || c->lingering) {
      wc_conn_close(c);
      return;
    }
    /* The client finished sending (maybe half-closed): answer what was
     * received, then close; see conn_pump. */
    c->eof = 1;
    if (c->reading) {
      uv_read_stop(s);
      c->reading = 0;
    }
    conn_pump(c);
    return;
  }
  if (nread == 0 || c->lingering)
    return;
  c->in_pump = 1;
  if (wc_http_feed(c, buf->base, (size_t)nread, &consumed) == 0 &&
      consumed < (size_t)nread && !c->closing) {
    size_t rest = (size_t)nread - consumed;
    char *p = malloc(rest);
    if (p == NULL) {
      wc_log(WC_LOG_WARN, "out of memory keeping %zu input bytes", rest);
      c->in_pump = 0;
      wc_conn_close(c);
      return;
    }
    memcpy(p, buf->base + consumed, rest);
    free(c->pend);
    c->pend = p;
    c->pend_len = rest;
    c->pend_off = 0;
  }
  c->in_pump = 0;
  if (c->turn_at != uv_now(s->loop)) { /* a new loop turn */
    c->turn_at = uv_now(s->loop);
    c->turn_bytes = 0;
  }
  c->turn_bytes += (size_t)nread;
  if (c->turn_bytes >= WC_READ_TURN && !c->closing && c->pause == 0) {
    /* Fairness: libuv reads on while reads fill their buffer (up to 32
     * of them, 1 MiB each when read into a body), and the other
     * connections of this loop wait meanwhile. Stop reading until the
     * loop's check phase; the bytes wait in the socket. */
    c->turn_bytes = 0;
    wc_list_push(&c->srv->turners, &c->turn_link);
    uv_check_start(&c->srv->turn_check, wc_server_on_check);
    c->pause |= WC_PAUSE_TURN;
  }
  conn_pump(c);
}

void wc_conn_turns_over(wc_server_t *srv) {
  while (!wc_list_empty(&srv->turners)) {
    wc_conn_t *c = container_of(srv->turners.next, wc_conn_t, turn_link);
    wc_list_remove(&c->turn_link);
    wc_conn_resume(c, WC_PAUSE_TURN);
  }
}

/*
 * Brings reading in line with the pause bits: parses kept input first, then
 * starts or stops reading, then flushes output. Re-entrant calls (from a
 * response produced while parsing) return at once; the outer call loops.
 */
static void conn_pump(wc_conn_t *c) {
  int want;
  if (c->closing || c->in_pump)
    return;
  c->in_pump = 1;
  while (!c->closing && !c->lingering && c->pause == 0 &&
         (c->pend_off < c->pend_len || c->http.kick)) {
    size_t consumed = 0;
    int rc = c->pend != NULL
                 ? wc_http_feed(c, c->pend + c->pend_off,
                                c->pend_len - c->pend_off, &consumed)
                 : wc_http_feed(c, "", 0, &consumed);
    c->pend_off += consumed;
    if (rc < 0)
      c->pend_off = c->pend_len;
  }
  if (c->pend != NULL && c->pend_off >= c->pend_len) {
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = 0;
  }
  if (!c->closing && c->pause == 0 && c->eof && !c->lingering &&
      c->pend == NULL) {
    /* Everything the client sent is answered and no more will come. */
    wc_conn_close_after_write(c, 0);
  }
  want = !c->closing && !c->eof && (c->lingering || c->pause == 0);
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
    else
      wc_conn_close(c);
  } else if (!want && c->reading && !c->closing) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  c->in_pump = 0;
  wc_conn_flush(c);
}

void wc_conn_pause(wc_conn_t *c, unsigned why) {
  c->pause |= why;
  if ((why & (WC_PAUSE_JOBS | WC_PAUSE_BUDGET)) && c->tstate == WC_TIMER_BODY)
    c->deadline = 0; /* our delay, not the client's */
  conn_pump(c);
}

void wc_conn_resume(wc_conn_t *c, unsigned why) {
  unsigned before = c->pause;
  c->pause &= ~why;
  if (before == c->pause)
    return;
  if ((why & (WC_PAUSE_JOBS | WC_PAUSE_BUDGET)) && c->tstate == WC_TIMER_BODY &&
      !(c->pause & (WC_PAUSE_JOBS | WC_PAUSE_BUDGET)))
    wc_conn_timer(c, WC_TIMER_BODY);
  conn_pump(c);
}

void wc_conn_budget_wake(wc_conn_t *c) {
  wc_list_remove(&c->wait_link);
  wc_conn_resume(c, WC_PAUSE_BUDGET);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status; /* the linger timer or EOF ends the connection */
}

/* Output is drained and the connection should end. */
static void finish_close(wc_conn_t *c) {
  if (!c->linger) {
    wc_conn_close(c);
    return;
  }
  /* nginx's lingering close: send FIN, then read and discard what the
   * client still sends (so it reads our answer instead of a reset). */
  c->lingering = 1;
  wc_conn_heavy_off(c); /* what it still reads is discarded */
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    wc_conn_close(c);
    return;
  }
  wc_conn_timer(c, WC_TIMER_LINGER);
  if (c->eof) {
    wc_conn_close(c);
    return;
  }
  if (!c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
    else
      wc_conn_close(c);
  }
}

void wc_conn_close_after_write(wc_conn_t *c, int linger) {
  if (c->closing || c->want_close)
    return;
  c->want_close = 1;
  c->linger = linger != 0;
  /* Nothing more is parsed; the request state stays until conn_free. */
  c->pause |= WC_PAUSE_REQUEST;
  if (c->reading && !c->lingering) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  if (!c->writing && c->obuf_len == 0)
    finish_close(c);
  else
    wc_conn_timer(c, WC_TIMER_CLOSE);
}

/* All output is written: close if that was the plan, else read again. */
static void output_drained(wc_conn_t *c) {
  if (c->want_close) {
    finish_close(c);
    return;
  }
  if (c->tstate == WC_TIMER_SEND) /* read up: idle again, unless the */
    wc_conn_timer(c, WC_TIMER_IDLE); /* requests behind start earlier */
  wc_conn_resume(c, WC_PAUSE_OUTPUT);
}

static void on_write(uv_write_t *req, int status) {
  wc_conn_t *c = container_of(req, wc_conn_t, wreq);
  free(c->wbuf);
  c->wbuf = NULL;
  c->wbuf_len = 0;
  c->writing = 0;
  if (c->closing)
    return;
  if (status < 0) {
    wc_conn_close(c);
    return;
  }
  if (c->tstate == WC_TIMER_SEND || c->tstate == WC_TIMER_CLOSE)
    wc_conn_timer(c, c->tstate); /* the client took bytes: a new deadline */
  if (c->obuf_len > 0) {
    wc_conn_flush(c);
    if (c->obuf_len + c->wbuf_len <= WC_OUTPUT_CAP / 2)
      wc_conn_resume(c, WC_PAUSE_OUTPUT);
    return;
  }
  output_drained(c);
}

int wc_conn_send(wc_conn_t *c, const char *p, size_t len) {
  if (c->closing)
    return 0;
  if (c->obuf_len + len > c->obuf_cap) {
    size_t ncap = c->obuf_cap ? c->obuf_cap : 1024;
    char *n;
    while (ncap < c->obuf_len + len)
      ncap *= 2;
    n = realloc(c->obuf, ncap);
    if (n == NULL)
      return -ENOMEM;
    c->obuf = n;
    c->obuf_cap = ncap;
  }
  memcpy(c->obuf + c->obuf_len, p, len);
  c->obuf_len += len;
  if (c->obuf_len + c->wbuf_len > WC_OUTPUT_CAP)
    c->pause |= WC_PAUSE_OUTPUT; /* the pump notices; no re-entry here */
  return 0;
}

void wc_conn_flush(wc_conn_t *c) {
  uv_buf_t b;
  int n;
  if (c->closing || c->writing || c->obuf_len == 0 || c->in_pump)
    return;
  /* Most often the socket takes everything at once: then no write request,
   * no callback, and the output buffer is kept for the next response. */
  b = uv_buf_init(c->obuf, (unsigned)c->obuf_len);
  n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    wc_conn_close(c);
    return;
  }
  if (n > 0 && (size_t)n == c->obuf_len) {
    c->obuf_len = 0;
    output_drained(c);
    return;
  }
  if (n > 0) {
    memmove(c->obuf, c->obuf + n, c->obuf_len - (size_t)n);
    c->obuf_len -= (size_t)n;
  }
  /* The rest becomes the buffer in flight, so that responses produced
   * meanwhile are coalesced into the next write. */
  c->wbuf = c->obuf;
  c->wbuf_len = c->obuf_len;
  c->obuf = NULL;
  c->obuf_len = c->obuf_cap = 0;
  b = uv_buf_init(c->wbuf, (unsigned)c->wbuf_len);
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    free(c->wbuf);
    c->wbuf = NULL;
    c->wbuf_len = 0;
    wc_conn_close(c);
    return;
  }
  c->writing = 1;
}

void wc_conn_body_bytes(wc_conn_t *c, size_t len) {
  wc_server_t *srv = c->srv;
  if (c->rate_tick != srv->ticks) {
    c->rate_tick = srv->ticks;
    c->rate_bytes = 0;
  }
  c->rate_bytes += len;
  if (!c->heavy && c->rate_bytes >= WC_HEAVY_BYTES && !c->closing &&
      !c->lingering) {
    c->heavy = 1;
    wc_list_push(&srv->heavies, &c->heavy_link);
    wc_server_heavy(srv, 1);
  }
}

void wc_conn_heavy_off(wc_conn_t *c) {
  if (!c->heavy)
    return;
  c->heavy = 0;
  wc_list_remove(&c->heavy_link);
  wc_server_heavy(c->srv, 0);
}

void wc_conn_heavy_tick(wc_server_t *srv) {
  wc_link_t *l = srv->heavies.next;
  while (l != &srv->heavies) {
    wc_conn_t *c = container_of(l, wc_conn_t, heavy_link);
    l = l->next; /* c may leave the list */
    if (c->rate_tick != srv->ticks || c->rate_bytes < WC_HEAVY_BYTES)
      wc_conn_heavy_off(c);
  }
  srv->ticks++;
}

int wc_conn_is_idle(const wc_conn_t *c) {
  return !c->writing && c->obuf_len == 0 && c->pend == NULL && !wc_http_busy(c);
}

/* wc_conn_accept without the descriptor's fate: *fd becomes -1 once the
 * connection's handle owns it (then wc_conn_close closes it). */
static int conn_setup(wc_server_t *srv, int *fd) {
  wc_conn_t *c = calloc(1, sizeof *c);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int rc;
  if (c == NULL)
    return -ENOMEM;
  c->srv = srv;
  wc_list_init(&c->link);
  wc_list_init(&c->wait_link);
  wc_list_init(&c->turn_link);
  wc_list_init(&c->heavy_link);
  rc = uv_tcp_init(srv->loop, &c->tcp);
  if (rc < 0) {
    free(c);
    return rc;
  }
  /* From here on the handles own a reference each; errors go through
   * wc_conn_close so that conn_free stays the only place that frees. */
  c->refs = 2;
  rc = uv_timer_init(srv->loop, &c->timer);
  if (rc < 0) {
    c->refs = 1;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    return rc;
  }
  wc_list_push(&srv->conns, &c->link);
  srv->nconns++;
  wc_metrics_gauge_add(WC_G_OPEN_CONNECTIONS, 1);
  wc_metrics_loop_conns(srv->index, 1);
  wc_http_init(c);
  rc = *fd >= 0 ? uv_tcp_open(&c->tcp, *fd)
                : uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp);
  if (rc < 0)
    goto fail;
  *fd = -1; /* the handle's now */
  (void)uv_tcp_nodelay(&c->tcp, 1);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  } else {
    snprintf(c->peer, sizeof c->peer, "-");
  }
  wc_conn_timer(c, WC_TIMER_IDLE);
  conn_pump(c);
  return 0;
fail:
  wc_conn_close(c);
  return rc;
}

int wc_conn_accept(wc_server_t *srv, int fd) {
  int rc = conn_setup(srv, &fd);
  if (rc < 0 && fd >= 0)
    close(fd);
  return rc;
}
