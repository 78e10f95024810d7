/*
 * server.c - the listener, max_connections, the global budget, the cached
 * Date header, and graceful shutdown.
 *
 * DESIGN
 * - max_connections: when the limit is reached, on_connection returns
 *   without uv_accept; libuv then stops polling the listening socket until
 *   uv_accept is called, which happens when a connection is freed. Waiting
 *   clients stay in the kernel backlog instead of being reset.
 * - Global budget: bytes held in body blocks and buffers and the number of
 *   queued jobs, over all connections. A connection that finds the budget
 *   spent stops reading and waits in `waiters`; whenever a job finishes and
 *   the budget has room again, the waiters resume. A raw body waits only
 *   while some job is in flight, since only a job can release budget. JSON
 *   and form bodies, which are buffered whole, could wait on each other
 *   forever: above the cap, one of them at a time (`privileged`) goes on
 *   to its end, the others wait for it (wc_server_may_buffer).
 * - A connection that cannot be set up for lack of memory stays in the
 *   listener (accept_pending); the 1 s date timer tries again.
 * - Shutdown: stop accepting (close the listener), answer /readyz with 503,
 *   close idle connections, let the others finish their request (answered
 *   with Connection: close). When the last connection is freed, the server
 *   closes its timers and calls on_stopped. After timeouts_ms.shutdown every
 *   connection is closed and the exit code becomes 1.
 */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "log.h"

static void update_date(wc_server_t *srv) {
  char buf[40];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  srv->date_len =
      (size_t)snprintf(srv->date, sizeof srv->date, "Date: %s\r\n", buf);
}

static void try_accept(wc_server_t *srv) {
  int rc;
  srv->accept_pending = 0;
  rc = wc_conn_accept(srv);
  if (rc < 0)
    wc_log(WC_LOG_WARN, "accept: %s", uv_strerror(rc));
  /* Out of memory before uv_accept: the client still waits in the
   * listener, which libuv no longer polls; the date timer retries. */
  if (rc == UV_ENOMEM)
    srv->accept_pending = 1;
}

static void on_date_timer(uv_timer_t *t) {
  wc_server_t *srv = container_of(t, wc_server_t, date_timer);
  update_date(srv);
  wc_log_flush();
  if (srv->accept_pending && !srv->draining &&
      srv->nconns < srv->cfg->limits.max_connections)
    try_accept(srv);
}

static void on_connection(uv_stream_t *l, int status) {
  wc_server_t *srv = container_of((uv_tcp_t *)l, wc_server_t, listener);
  if (status < 0) {
    wc_log(WC_LOG_WARN, "listen: %s", uv_strerror(status));
    return;
  }
  if (srv->draining)
    return;
  if (srv->nconns >= srv->cfg->limits.max_connections) {
    srv->accept_pending = 1; /* libuv stops polling until we accept */
    return;
  }
  try_accept(srv);
}

static void on_server_handle_closed(uv_handle_t *h) {
  wc_server_t *srv = h->data;
  if (--srv->handles_open == 0 && srv->on_stopped != NULL)
    srv->on_stopped(srv);
}

static void close_server_handle(wc_server_t *srv, uv_handle_t *h) {
  if (!uv_is_closing(h)) {
    h->data = srv;
    uv_close(h, on_server_handle_closed);
  }
}

static void maybe_stopped(wc_server_t *srv) {
  if (!srv->draining || srv->nconns > 0 || srv->stopping)
    return;
  srv->stopping = 1;
  close_server_handle(srv, (uv_handle_t *)&srv->date_timer);
  close_server_handle(srv, (uv_handle_t *)&srv->shutdown_timer);
}

void wc_server_conn_freed(wc_server_t *srv) {
  srv->nconns--;
  if (srv->accept_pending && !srv->draining &&
      srv->nconns < srv->cfg->limits.max_connections)
    try_accept(srv);
  maybe_stopped(srv);
}

static void on_shutdown_timer(uv_timer_t *t) {
  wc_server_t *srv = container_of(t, wc_server_t, shutdown_timer);
  wc_log(WC_LOG_WARN,
         "shutdown: %u connection(s) still busy after %llu ms; "
         "closing them",
         srv->nconns, (unsigned long long)srv->cfg->timeouts_ms.shutdown);
  srv->exit_code = 1;
  while (!wc_list_empty(&srv->conns))
    wc_conn_close(container_of(srv->conns.next, wc_conn_t, link));
}

void wc_server_shutdown(wc_server_t *srv) {
  wc_link_t *l, *next;
  if (srv->draining)
    return;
  srv->draining = 1;
  wc_log(WC_LOG_INFO, "shutting down: %u connection(s) open", srv->nconns);
  close_server_handle(srv, (uv_handle_t *)&srv->listener);
  uv_timer_start(&srv->shutdown_timer, on_shutdown_timer,
                 srv->cfg->timeouts_ms.shutdown, 0);
  for (l = srv->conns.next; l != &srv->conns; l = next) {
    wc_conn_t *c = container_of(l, wc_conn_t, link);
    next = l->next;
    if (wc_conn_is_idle(c))
      wc_conn_close(c);
  }
  maybe_stopped(srv);
}

int wc_server_over_budget(const wc_server_t *srv) {
  return srv->jobs > 0 &&
         (srv->buffered > srv->buffered_cap || srv->jobs > srv->jobs_cap);
}

void wc_server_budget_take(wc_server_t *srv, uint64_t bytes, unsigned jobs) {
  srv->buffered += bytes;
  srv->jobs += jobs;
}

static void wake_waiters(wc_server_t *srv) {
  wc_link_t ready;
  if (wc_list_empty(&srv->waiters))
    return;
  /* Move the waiters aside first: a woken connection may wait again. */
  wc_list_init(&ready);
  ready.next = srv->waiters.next;
  ready.prev = srv->waiters.prev;
  ready.next->prev = &ready;
  ready.prev->next = &ready;
  wc_list_init(&srv->waiters);
  while (!wc_list_empty(&ready))
    wc_conn_budget_wake(container_of(ready.next, wc_conn_t, wait_link));
}

void wc_server_budget_give(wc_server_t *srv, uint64_t bytes, unsigned jobs) {
  srv->buffered -= bytes;
  srv->jobs -= jobs;
  if (!wc_server_over_budget(srv))
    wake_waiters(srv);
}

int wc_server_may_buffer(wc_server_t *srv, const void *c) {
  if (srv->buffered <= srv->buffered_cap)
    return 1;
  if (srv->privileged == NULL)
    srv->privileged = c;
  return srv->privileged == c;
}

void wc_server_unprivilege(wc_server_t *srv, const void *c) {
  if (srv->privileged != c)
    return;
  srv->privileged = NULL;
  wake_waiters(srv);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss) {
  struct addrinfo hints, *res = NULL;
  char portbuf[8];
  int rc;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(portbuf, sizeof portbuf, "%d", port);
  rc = getaddrinfo(host, portbuf, &hints, &res);
  if (rc != 0 || res == NULL)
    return UV_EINVAL;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

int wc_server_start(wc_server_t *srv, uv_loop_t *loop, const wc_config_t *cfg,
                    wc_server_stopped_cb on_stopped) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[64];
  int rc, port;
  memset(srv, 0, offsetof(wc_server_t, read_buf));
  srv->loop = loop;
  srv->cfg = cfg;
  srv->on_stopped = on_stopped;
  wc_list_init(&srv->conns);
  wc_list_init(&srv->waiters);
  srv->buffered_cap = cfg->limits.max_json_body_bytes * 2;
  if (srv->buffered_cap < (256u << 20))
    srv->buffered_cap = 256u << 20;
  srv->jobs_cap = 64 * (cfg->workers ? cfg->workers : 1);
  update_date(srv);
  rc = resolve(cfg->host, cfg->port, &ss);
  if (rc < 0) {
    wc_log(WC_LOG_ERROR, "cannot resolve listen.host \"%s\"", cfg->host);
    return rc;
  }
  rc = uv_tcp_init(loop, &srv->listener);
  if (rc < 0)
    return rc;
  srv->handles_open = 1;
  rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
  if (rc < 0) {
    wc_log(WC_LOG_ERROR, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
           uv_strerror(rc));
    goto fail;
  }
  uv_timer_init(loop, &srv->date_timer);
  uv_timer_init(loop, &srv->shutdown_timer);
  srv->handles_open += 2;
  uv_timer_start(&srv->date_timer, on_date_timer, 1000, 1000);
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    printf("listening on http://[%s]:%d\n", ip, port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    printf("listening on http://%s:%d\n", ip, port);
  }
  fflush(stdout);
  return 0;
fail:
  /* The listener is closed by the caller running the loop once more. */
  srv->on_stopped = NULL;
  uv_close((uv_handle_t *)&srv->listener, NULL);
  return rc;
}
