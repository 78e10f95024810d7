/*
 * conn.h - one client connection: its socket, timer, input and output
 * buffers, the HTTP parser state and the request in progress.
 * See the LIFETIME comment at the top of conn.c. Loop thread only.
 */
#ifndef WC_CONN_H
#define WC_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "server.h"
#include "util.h"

/* Why the connection is not reading and parsing; it reads when none is set. */
enum {
  WC_PAUSE_REQUEST = 1u << 0, /* a request is being counted/answered */
  WC_PAUSE_JOBS = 1u << 1,    /* this request has enough blocks in flight */
  WC_PAUSE_BUDGET = 1u << 2,  /* the global budget is spent */
  WC_PAUSE_OUTPUT = 1u << 3,  /* too much unsent output */
  WC_PAUSE_TURN = 1u << 4,    /* read its share of this loop turn */
};

/* A connection reads at most this much before the other connections of
 * its loop get their turn (WC_PAUSE_TURN). */
#define WC_READ_TURN (1024 * 1024)

/* What the one timer of a connection is measuring. */
typedef enum {
  WC_TIMER_NONE,    /* working on a request: no client deadline */
  WC_TIMER_IDLE,    /* keep-alive: no byte of the next request yet */
  WC_TIMER_HEADERS, /* from the first byte to the end of the headers */
  WC_TIMER_BODY,    /* since the last body bytes */
  WC_TIMER_LINGER,  /* discarding input before closing */
  WC_TIMER_CLOSE,   /* waiting for the last output before closing */
  WC_TIMER_SEND,    /* answers (or pipelined requests behind them) wait for
                       the client to read: since it last took bytes */
} wc_timer_state_t;

struct wc_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wreq;
  uv_shutdown_t shut;
  wc_server_t *srv;
  wc_link_t link;      /* in srv->conns */
  wc_link_t wait_link; /* in srv->waiters while over budget */
  wc_link_t turn_link; /* in srv->turners while WC_PAUSE_TURN */
  uint64_t turn_at;    /* loop time of its last read */
  size_t turn_bytes;   /* read since then, or since its last turn ended */
  unsigned refs;       /* open handles + jobs in flight */
  unsigned pause;      /* WC_PAUSE_* */
  wc_timer_state_t tstate;
  uint64_t deadline;       /* loop time (ms) when tstate expires; 0: none */
  uint64_t armed_due;      /* when the libuv timer fires, if it is active */
  unsigned closing : 1;    /* wc_conn_close was called: handles closing */
  unsigned want_close : 1; /* close once the output is written */
  unsigned linger : 1;     /* ... after a lingering close */
  unsigned lingering : 1;  /* write side shut, discarding input */
  unsigned reading : 1;
  unsigned writing : 1;
  unsigned eof : 1;
  unsigned in_pump : 1;
  unsigned heavy : 1; /* receiving a body fast: counts WC_HEAVY_LOAD */
  char *pend;         /* input not parsed yet (the parser was paused) */
  size_t pend_len, pend_off;
  char *wbuf; /* output being written */
  size_t wbuf_len;
  char *obuf; /* output collected for the next write */
  size_t obuf_len, obuf_cap;
  wc_link_t heavy_link; /* in srv->heavies while heavy */
  uint64_t rate_tick;   /* srv->ticks when rate_bytes was started */
  size_t rate_bytes;    /* body bytes received since then */
  char peer[64];
  wc_http_t http;
};

/* Accepts one connection from the listener (fd < 0), or adopts fd, a
 * connected socket handed over by another loop (server.c); fd is closed on
 * failure. 0 or a negative errno. */
int wc_conn_accept(wc_server_t *srv, int fd);

/* Closes now (idempotent); memory is freed once no job refers to it. */
void wc_conn_close(wc_conn_t *c);

/* Closes once the output is written; with linger, shuts the write side and
 * discards input for a bounded time first (after early errors). */
void wc_conn_close_after_write(wc_conn_t *c, int linger);

void wc_conn_ref(wc_conn_t *c);
void wc_conn_unref(wc_conn_t *c);

/* Queues output (written by wc_conn_flush, or at the end of the current
 * event). 0 or -ENOMEM. */
int wc_conn_send(wc_conn_t *c, const char *p, size_t len);
void wc_conn_flush(wc_conn_t *c);

void wc_conn_pause(wc_conn_t *c, unsigned why);

/* The loop's check phase: the connections that paused for WC_PAUSE_TURN
 * read again (server.c runs it). */
void wc_conn_turns_over(wc_server_t *srv);
void wc_conn_resume(wc_conn_t *c, unsigned why);

void wc_conn_timer(wc_conn_t *c, wc_timer_state_t st);

/* 1 when the connection has no request in progress and nothing to write. */
int wc_conn_is_idle(const wc_conn_t *c);

/*
 * balance_connections' weight (server.h): a connection that has received
 * WC_HEAVY_BYTES of body (of bodies over WC_HEAVY_BODY bytes: a pipeline of
 * small requests never weighs) since the loop's date timer last ticked weighs
 * WC_HEAVY_LOAD more in its loop's load, until its body is in, it closes or
 * lingers, or a tick finds fewer bytes than that since the tick before (a
 * stalled or slow upload does not keep a loop busy). wc_conn_body_bytes:
 * body bytes arrived (http.c); wc_conn_heavy_off: the weight goes (at
 * once; idempotent); wc_conn_heavy_tick: the date timer's tick (server.c).
 */
void wc_conn_body_bytes(wc_conn_t *c, size_t len);
void wc_conn_heavy_off(wc_conn_t *c);
void wc_conn_heavy_tick(wc_server_t *srv);

/* The global budget has room again (server.c). */
void wc_conn_budget_wake(wc_conn_t *c);

#endif
