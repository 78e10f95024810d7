/*
 * server.h - one event loop's listener and everything shared by its
 * connections: the connection list, the budget of buffered body bytes and
 * queued jobs, the cached Date header, and shutdown (drain) state. With
 * event_loops > 1 there is one wc_server_t per loop (each on its own thread,
 * each with its own SO_REUSEPORT listening socket on the same address); they
 * share only a wc_shared_t. A wc_server_t is used by its loop thread only,
 * except for the functions marked "any thread".
 */
#ifndef WC_SERVER_H
#define WC_SERVER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "job.h"
#include "util.h"

/* Size of the one read buffer that every read uses (reads are handled
 * synchronously, so one buffer serves all connections). It also bounds the
 * length of every chunk handed to the HTTP parser. */
#define WC_READ_BUF_SIZE (64 * 1024)

/* Connections handed over to a loop and not yet adopted, at most. */
#define WC_INBOX_SIZE 64

typedef struct wc_server wc_server_t;
typedef void (*wc_server_stopped_cb)(wc_server_t *srv);

/* What the event loops share (set up before the loops run). */
typedef struct {
  wc_server_t **servers; /* all of them, index order */
  unsigned n;
  int port;           /* the bound port, once server 0 has bound */
  atomic_uint nconns; /* open connections, all loops (max_connections) */
} wc_shared_t;

struct wc_server {
  uv_loop_t *loop;
  const wc_config_t *cfg;
  wc_shared_t *shared;
  unsigned index;
  uv_tcp_t listener;
  uv_timer_t date_timer;
  uv_timer_t shutdown_timer;
  uv_async_t wake; /* other threads: shut down, or try to accept again */
  int wake_open;
  uv_check_t turn_check; /* runs while `turners` is not empty */
  int turn_check_open;
  wc_link_t turners; /* connections paused for WC_PAUSE_TURN */
  atomic_int shutdown_requested;
  wc_link_t conns;           /* every open connection of this loop */
  wc_link_t heavies;         /* its connections receiving a body fast */
  uint64_t ticks;            /* date timer ticks (wc_conn_heavy_tick) */
  wc_link_t waiters;         /* connections stopped on the budget */
  unsigned nconns;           /* of this loop */
  /* Connection balancing (balance_connections, server.c). load: open
   * connections plus those handed over and not yet adopted, plus
   * WC_HEAVY_LOAD per connection receiving a large body; read by the
   * other loops. inbox: descriptors handed over, under inbox_lock. */
  atomic_uint load;
  atomic_int adopting; /* 0 once draining: nothing is handed to it */
  uv_mutex_t inbox_lock;
  int inbox_ok;
  unsigned inbox_n;
  int inbox[WC_INBOX_SIZE];
  atomic_int accept_pending; /* a connection waits in the listener */
  int listener_lost; /* closed after EMFILE; the date timer reopens it */
  int listener_down; /* ... and its close has completed */
  struct sockaddr_storage addr; /* the bound address, to reopen */
  int draining;
  int stopping;
  int handles_open;
  int exit_code; /* 0, or 1 when shutdown timed out */
  char date[48]; /* "Date: ...\r\n" */
  size_t date_len;
  uint64_t buffered, buffered_cap; /* body bytes held, all requests */
  const void *privileged;  /* the connection allowed past buffered_cap */
  unsigned jobs, jobs_cap; /* jobs queued or running */
  wc_server_stopped_cb on_stopped;
  wc_setcache_t setcache; /* needle sets of recent requests (job.c) */
  wc_blockpool_t blocks;  /* free body blocks (job.c) */
  wc_bodypool_t bodies;   /* large JSON/form buffers kept (job.c) */
  char read_buf[WC_READ_BUF_SIZE];
};

/*
 * Binds (server 0 first: the others bind to the port it got, with
 * SO_REUSEPORT when shared->n > 1) and listens. srv must be
 * shared->servers[index]. on_stopped runs once, on the loop thread, after a
 * shutdown when every connection and server handle is closed (the wake
 * handle stays: see wc_server_close). Returns 0 or a negative errno; on
 * failure the caller still calls wc_server_close and runs the loop.
 */
int wc_server_start(wc_server_t *srv, uv_loop_t *loop, const wc_config_t *cfg,
                    wc_shared_t *shared, unsigned index,
                    wc_server_stopped_cb on_stopped);

/* Prints "listening on http://HOST:PORT" to stdout (once all have bound). */
void wc_server_announce(const wc_server_t *srv);

/* Begins a graceful shutdown (idempotent). Loop thread. */
void wc_server_shutdown(wc_server_t *srv);

/* Asks the server's loop to shut down. Any thread. */
void wc_server_request_shutdown(wc_server_t *srv);

/* Closes what is left (the wake handle, a listener that failed) after the
 * loop has stopped and no other thread can wake it; run the loop once more
 * afterwards so that the close completes. */
void wc_server_close(wc_server_t *srv);

/* For conn.c: the check handle's callback (wc_conn_turns_over). */
void wc_server_on_check(uv_check_t *h);

/* balance_connections: a connection receiving a large body fast
 * (WC_HEAVY_BYTES or more of it past its first WC_HEAVY_BODY bytes since
 * the date timer's last tick, about a second; see
 * wc_conn_body_bytes) weighs WC_HEAVY_LOAD connections more in its loop's
 * load, so that new connections go to the loops that are not busy copying
 * uploads. wc_server_heavy adds (on) or takes back the weight. */
#define WC_HEAVY_BYTES (4u << 20)
#define WC_HEAVY_BODY (1u << 20) /* only bytes of a body past its first MiB */
#define WC_HEAVY_LOAD 16u
void wc_server_heavy(wc_server_t *srv, int on);

/* For conn.c: a connection was freed. */
void wc_server_conn_freed(wc_server_t *srv);

/* 1 when body buffers or queued jobs are over the global cap and some job
 * will release budget later (so a waiter is always woken). */
int wc_server_over_budget(const wc_server_t *srv);

/* Budget accounting (job.c); released budget wakes waiting connections. */
void wc_server_budget_take(wc_server_t *srv, uint64_t bytes, unsigned jobs);
void wc_server_budget_give(wc_server_t *srv, uint64_t bytes, unsigned jobs);

/* May connection c keep buffering a JSON or form body? Yes while the
 * buffered bytes are under the cap; above it, only one connection at a time
 * (the first to ask) may go on, until its request ends
 * (wc_server_unprivilege): it needs no other body to finish, so it always
 * can, and memory stays under the cap plus one max_json_body_bytes. */
int wc_server_may_buffer(wc_server_t *srv, const void *c);
void wc_server_unprivilege(wc_server_t *srv, const void *c);

#endif
