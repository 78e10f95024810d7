/*
 * server.h - the listener and everything shared by all connections: the
 * connection list, max_connections, the global budget of buffered body bytes
 * and queued jobs, the cached Date header, and shutdown (drain) state.
 * Loop thread only.
 */
#ifndef WC_SERVER_H
#define WC_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "util.h"

/* Size of the one read buffer that every read uses (reads are handled
 * synchronously, so one buffer serves all connections). It also bounds the
 * length of every chunk handed to the HTTP parser. */
#define WC_READ_BUF_SIZE (64 * 1024)

typedef struct wc_server wc_server_t;
typedef void (*wc_server_stopped_cb)(wc_server_t *srv);

struct wc_server {
  uv_loop_t *loop;
  const wc_config_t *cfg;
  uv_tcp_t listener;
  uv_timer_t date_timer;
  uv_timer_t shutdown_timer;
  wc_link_t conns;   /* every open connection */
  wc_link_t waiters; /* connections stopped on the global budget */
  unsigned nconns;
  int accept_pending; /* a connection waits in the listener (over max) */
  int draining;
  int stopping;
  int handles_open;
  int exit_code; /* 0, or 1 when shutdown timed out */
  char date[48]; /* "Date: ...\r\n" */
  size_t date_len;
  uint64_t buffered, buffered_cap; /* body bytes held, all requests */
  const void *privileged; /* the connection allowed past buffered_cap */
  unsigned jobs, jobs_cap;         /* jobs queued or running */
  wc_server_stopped_cb on_stopped;
  char read_buf[WC_READ_BUF_SIZE];
};

/*
 * Binds, listens and prints "listening on http://HOST:PORT" to stdout.
 * on_stopped runs once after a shutdown when every connection and server
 * handle is closed. Returns 0 or a negative errno (nothing to clean up).
 */
int wc_server_start(wc_server_t *srv, uv_loop_t *loop, const wc_config_t *cfg,
                    wc_server_stopped_cb on_stopped);

/* Begins a graceful shutdown (idempotent). */
void wc_server_shutdown(wc_server_t *srv);

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
