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
 * - Out of file descriptors: libuv sheds the waiting connections with a
 *   spare descriptor of the loop (its "EMFILE trick"). With several loops
 *   one loop's spare can be taken by another in the moment it is released;
 *   libuv then calls on_connection with EMFILE in a loop, forever. So on
 *   EMFILE the listener is closed (its waiting connections are reset, as
 *   the trick would have done; the other loops' sockets keep the port) and
 *   the date timer binds a new one once descriptors are free again.
 * - event_loops: one wc_server_t per loop, each on its own thread with its
 *   own listening socket bound to the same address with SO_REUSEPORT, so the
 *   kernel spreads new connections over the loops and no lock is taken on
 *   any request path. The kernel's spread is a hash of the addresses, so
 *   two connections may well land on one loop while another has none:
 *   with balance_connections, a loop that accepts a connection while
 *   another loop has a smaller `load` (its open connections plus those
 *   handed to it and not yet adopted, plus WC_HEAVY_LOAD for each of its
 *   connections that is receiving a body fast, at least WC_HEAVY_BYTES
 *   between two ticks of the date timer, until the body is in (see
 *   wc_conn_body_bytes): such a loop is busy copying and new connections
 *   are better served elsewhere; atomics read by every loop) hands
 *   it over: the accepted descriptor is duplicated, this loop's handle on
 *   it closed, and the duplicate put in the other loop's inbox (a mutex
 *   around a small array, the only lock, taken once per hand-over) before
 *   its uv_async handle is woken; that loop adopts it with uv_tcp_open. The
 *   max_connections slot goes with it. A loop that drains (shutdown) takes
 *   no more (`adopting`) and closes what is still in its inbox. From then
 *   on a connection stays on its loop.
 *   They share max_connections (an atomic count in wc_shared_t: a slot is
 *   reserved before uv_accept); a loop that stopped accepting at the limit
 *   is woken through its uv_async handle when another loop frees a slot.
 *   The budget (buffered bytes, queued jobs) is split evenly between loops.
 *   Shutdown reaches each loop through the same async handle. Before the
 *   SO_REUSEPORT sockets are bound, a plain bind probes the port, so that a
 *   second server started on a port in use fails as it would without
 *   SO_REUSEPORT instead of sharing its connections.
 * - Shutdown: stop accepting (close the listener), answer /readyz with 503,
 *   close idle connections, let the others finish their request (answered
 *   with Connection: close). When the last connection is freed, the server
 *   closes its timers and calls on_stopped. After timeouts_ms.shutdown every
 *   connection is closed and the exit code becomes 1.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

/* Formats the Date header from the wall clock. (Not time(): glibc reads a
 * coarse clock for it, which can still show the last second a few ms after
 * the boundary the date timer is armed for.) Returns the ms to the next
 * whole second. */
static uint64_t update_date(wc_server_t *srv) {
  char buf[40];
  struct timespec ts;
  time_t now;
  struct tm tm;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
    ts.tv_sec = time(NULL);
    ts.tv_nsec = 0;
  }
  now = ts.tv_sec;
  gmtime_r(&now, &tm);
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  srv->date_len =
      (size_t)snprintf(srv->date, sizeof srv->date, "Date: %s\r\n", buf);
  return 1000 - (uint64_t)ts.tv_nsec / 1000000;
}

/* Takes one of the max_connections slots shared by all loops. */
static int reserve_slot(wc_server_t *srv) {
  wc_shared_t *sh = srv->shared;
  if (atomic_fetch_add(&sh->nconns, 1) >= srv->cfg->limits.max_connections) {
    atomic_fetch_sub(&sh->nconns, 1);
    return 0;
  }
  return 1;
}

/* Gives back a max_connections slot that no connection took, and wakes a
 * loop that waits for one. */
static void release_slot(wc_server_t *srv) {
  wc_shared_t *sh = srv->shared;
  atomic_fetch_sub(&sh->nconns, 1);
  for (unsigned i = 0; i < sh->n; i++)
    if (atomic_load(&sh->servers[i]->accept_pending)) {
      if (sh->servers[i] == srv)
        continue; /* the caller's own loop retries itself */
      uv_async_send(&sh->servers[i]->wake);
      break;
    }
}

/* A connection counted in this loop's load and holding a slot was not set
 * up after all: both are given back. */
static void unaccepted(wc_server_t *srv) {
  atomic_fetch_sub(&srv->load, 1);
  release_slot(srv);
}

/* balance_connections: the loop with the fewest connections, when it has
 * fewer than this one (ties stay here), else NULL. */
static wc_server_t *balance_target(wc_server_t *srv) {
  wc_shared_t *sh = srv->shared;
  wc_server_t *best = NULL;
  unsigned least = atomic_load(&srv->load);
  if (!srv->cfg->balance_connections)
    return NULL;
  for (unsigned i = 0; i < sh->n; i++) {
    wc_server_t *o = sh->servers[i];
    unsigned l;
    if (o == srv || !atomic_load(&o->adopting))
      continue;
    l = atomic_load(&o->load);
    if (l < least) {
      least = l;
      best = o;
    }
  }
  return best;
}

static void on_handoff_closed(uv_handle_t *h) {
  free(h);
}

/*
 * Accepts a connection for loop dst: a duplicate of its descriptor goes into
 * dst's inbox (its slot and its load go with it) and dst is woken; this
 * loop's handle on it is closed. libuv has already accept(2)ed the
 * connection when on_connection runs (uv_accept only moves that descriptor
 * into a handle), so the duplicate needs a second descriptor: it is taken
 * first, as a copy of the listener's that dup3 then replaces (dup, which
 * ThreadSanitizer follows, unlike fcntl(F_DUPFD); tests/tsan.supp tells why
 * it still reports the number's reuse). At the descriptor limit that copy
 * fails and the connection, which libuv holds, is served here
 * (wc_conn_accept with -1 needs no new descriptor) instead of being
 * accepted and lost. Returns 0; 1 when the connection is to be
 * served here after all (*fd: the duplicate when dst's inbox is full, -1
 * when no descriptor or memory was to spare); or a negative errno when
 * uv_accept, uv_fileno or dup3 failed and the connection is lost.
 */
static int hand_off(wc_server_t *srv, wc_server_t *dst, int *fd) {
  uv_tcp_t *t;
  uv_os_fd_t lfd, ofd;
  int rc, nfd, queued = 0;
  *fd = -1;
  if (uv_fileno((uv_handle_t *)&srv->listener, &lfd) < 0 ||
      (nfd = dup(lfd)) < 0) /* dup3 below sets O_CLOEXEC */
    return 1;
  t = malloc(sizeof *t);
  if (t == NULL || uv_tcp_init(srv->loop, t) < 0) {
    free(t);
    close(nfd);
    return 1;
  }
  rc = uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t);
  if (rc == 0)
    rc = uv_fileno((uv_handle_t *)t, &ofd);
  if (rc == 0 && dup3(ofd, nfd, O_CLOEXEC) < 0)
    rc = -errno;
  uv_close((uv_handle_t *)t, on_handoff_closed);
  if (rc < 0) {
    close(nfd);
    return rc;
  }
  /* Under the lock: a loop that drains clears `adopting` under it before
   * its last look at the inbox, so nothing lands there afterwards. */
  uv_mutex_lock(&dst->inbox_lock);
  if (atomic_load(&dst->adopting) && dst->inbox_n < WC_INBOX_SIZE) {
    dst->inbox[dst->inbox_n++] = nfd;
    atomic_fetch_add(&dst->load, 1);
    queued = 1;
  }
  uv_mutex_unlock(&dst->inbox_lock);
  if (!queued) {
    *fd = nfd;
    return 1;
  }
  wc_metrics_counter_add(WC_C_CONNS_HANDED_OVER, 1);
  uv_async_send(&dst->wake);
  return 0;
}

/* Serves the connections other loops handed over (on_wake). */
static void adopt_inbox(wc_server_t *srv) {
  int fds[WC_INBOX_SIZE];
  unsigned n;
  uv_mutex_lock(&srv->inbox_lock);
  n = srv->inbox_n;
  memcpy(fds, srv->inbox, n * sizeof *fds);
  srv->inbox_n = 0;
  uv_mutex_unlock(&srv->inbox_lock);
  for (unsigned i = 0; i < n; i++) {
    unsigned before = srv->nconns;
    int rc;
    if (srv->draining) { /* handed over just before the drain began */
      close(fds[i]);
      rc = UV_ECANCELED;
    } else {
      rc = wc_conn_accept(srv, fds[i]); /* closes fds[i] on failure */
    }
    if (rc < 0 && srv->nconns == before)
      unaccepted(srv); /* else given back when the connection is freed */
    if (rc < 0 && rc != UV_ECANCELED)
      wc_log(WC_LOG_WARN, "accept (handed over): %s", uv_strerror(rc));
  }
}

/* Accepts one waiting connection if a slot is free; otherwise leaves it in
 * the listener (libuv stops polling it until uv_accept) and marks the loop
 * as waiting for a slot. */
static void try_accept(wc_server_t *srv) {
  unsigned before = srv->nconns;
  wc_server_t *dst;
  int rc, fd = -1;
  if (srv->draining || srv->listener_lost)
    return;
  atomic_store(&srv->accept_pending, 1);
  if (!reserve_slot(srv))
    return;
  atomic_store(&srv->accept_pending, 0);
  dst = balance_target(srv);
  if (dst != NULL) {
    rc = hand_off(srv, dst, &fd);
    if (rc == 0)
      return;
    if (rc < 0) { /* uv_accept, uv_fileno or dup3 failed: lost */
      wc_log(WC_LOG_WARN, "accept: %s", uv_strerror(rc));
      release_slot(srv);
      return;
    }
  }
  /* Counted before it is set up: the balancing of the other loops sees it,
   * and a connection that fails after being set up gives it back when it
   * is freed (wc_server_conn_freed). */
  atomic_fetch_add(&srv->load, 1);
  rc = wc_conn_accept(srv, fd); /* closes fd (when >= 0) on failure */
  if (srv->nconns == before) /* no connection was set up */
    unaccepted(srv);
  if (rc < 0)
    wc_log(WC_LOG_WARN, "accept: %s", uv_strerror(rc));
  /* Out of memory before uv_accept: the client still waits in the
   * listener, which libuv no longer polls; the date timer retries. */
  if (rc == UV_ENOMEM)
    atomic_store(&srv->accept_pending, 1);
}

static void reopen_listener(wc_server_t *srv);

/* The date timer fires just after each whole second of the wall clock, so
 * the cached Date header is never more than a few ms old (a plain 1 s
 * repeat, read with time(), could leave it up to 2 s behind). */
static void on_date_timer(uv_timer_t *t) {
  wc_server_t *srv = container_of(t, wc_server_t, date_timer);
  uv_timer_start(&srv->date_timer, on_date_timer, update_date(srv) + 1, 0);
  wc_bodypool_tick(&srv->bodies);
  wc_blockpool_tick(&srv->blocks);
  wc_conn_heavy_tick(srv);
  wc_log_flush();
  reopen_listener(srv);
  if (atomic_load(&srv->accept_pending) && !srv->listener_lost)
    try_accept(srv);
}

static void on_server_handle_closed(uv_handle_t *h);
static int open_listener(const struct sockaddr_storage *ss, int reuseport);

static void on_listener_lost(uv_handle_t *h) {
  wc_server_t *srv = h->data;
  if (srv->draining) /* wc_server_shutdown found it closing */
    on_server_handle_closed(h);
  else
    srv->listener_down = 1;
}

static void on_connection(uv_stream_t *l, int status);
static int bind_listener(wc_server_t *srv);

/* Closes the listener after EMFILE; reopen_listener binds it again. */
static void lose_listener(wc_server_t *srv) {
  srv->listener_lost = 1;
  srv->listener.data = srv;
  uv_close((uv_handle_t *)&srv->listener, on_listener_lost);
}

/* The date timer: a listener closed after EMFILE is bound again. */
static void reopen_listener(wc_server_t *srv) {
  if (!srv->listener_down || srv->draining ||
      uv_tcp_init(srv->loop, &srv->listener) < 0)
    return;
  srv->listener_down = 0;
  srv->listener_lost = 0;
  atomic_store(&srv->accept_pending, 0); /* that connection was reset */
  if (bind_listener(srv) < 0) {
    lose_listener(srv); /* still out of descriptors: next second */
    return;
  }
  wc_log(WC_LOG_INFO, "listening again after running out of descriptors");
}

static void on_connection(uv_stream_t *l, int status) {
  wc_server_t *srv = container_of((uv_tcp_t *)l, wc_server_t, listener);
  if (status == UV_EMFILE || status == UV_ENFILE) {
    if (!srv->listener_lost && !srv->draining) {
      wc_log(WC_LOG_WARN,
             "accept: %s; closing this loop's listener until descriptors "
             "are free",
             uv_strerror(status));
      lose_listener(srv);
    }
    return;
  }
  if (status < 0) {
    wc_log(WC_LOG_WARN, "listen: %s", uv_strerror(status));
    return;
  }
  try_accept(srv);
}

void wc_server_on_check(uv_check_t *h) {
  wc_server_t *srv = container_of(h, wc_server_t, turn_check);
  uv_check_stop(h);
  wc_conn_turns_over(srv);
}

static void on_wake(uv_async_t *a) {
  wc_server_t *srv = container_of(a, wc_server_t, wake);
  if (atomic_load(&srv->shutdown_requested))
    wc_server_shutdown(srv);
  adopt_inbox(srv); /* closes them when draining */
  if (atomic_load(&srv->accept_pending))
    try_accept(srv);
}

void wc_server_request_shutdown(wc_server_t *srv) {
  atomic_store(&srv->shutdown_requested, 1);
  uv_async_send(&srv->wake);
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

void wc_server_heavy(wc_server_t *srv, int on) {
  if (on)
    atomic_fetch_add(&srv->load, WC_HEAVY_LOAD);
  else
    atomic_fetch_sub(&srv->load, WC_HEAVY_LOAD);
  wc_metrics_loop_uploads(srv->index, on ? 1 : -1);
}

void wc_server_conn_freed(wc_server_t *srv) {
  wc_shared_t *sh = srv->shared;
  srv->nconns--;
  atomic_fetch_sub(&srv->load, 1);
  wc_metrics_loop_conns(srv->index, -1);
  if (atomic_load(&srv->accept_pending)) {
    atomic_fetch_sub(&sh->nconns, 1);
    try_accept(srv);
  } else {
    release_slot(srv); /* and wake a loop that waits for one */
  }
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
  uv_mutex_lock(&srv->inbox_lock);
  atomic_store(&srv->adopting, 0); /* see hand_off */
  uv_mutex_unlock(&srv->inbox_lock);
  adopt_inbox(srv); /* closes what came before */
  wc_log(WC_LOG_INFO,
         "shutting down: event loop %u of %u has %u connection(s) open",
         srv->index + 1, srv->shared->n, srv->nconns);
  if (srv->listener_down) { /* closed after EMFILE, not reopened */
    srv->listener_down = 0;
    srv->handles_open--;
  } else if (!srv->listener_lost) {
    close_server_handle(srv, (uv_handle_t *)&srv->listener);
  } /* else closing: on_listener_lost counts it */
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

static socklen_t addr_len(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
}

static int addr_port(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6
             ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
             : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* A plain bind (no SO_REUSEPORT) to see whether the port is taken. */
static int probe_port(const struct sockaddr_storage *ss) {
  socklen_t len = addr_len(ss);
  int one = 1, rc = 0;
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)ss, len) < 0)
    rc = -errno;
  close(fd);
  return rc;
}

/* A listening socket on ss for this loop; SO_REUSEPORT when several loops
 * share the address. Returns the descriptor or a negative errno. */
static int open_listener(const struct sockaddr_storage *ss, int reuseport) {
  socklen_t len = addr_len(ss);
  int one = 1, rc;
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (reuseport &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      bind(fd, (const struct sockaddr *)ss, len) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

/* Binds srv->addr on the (initialized) listener handle and listens. On
 * failure the handle still needs closing; the descriptor is not leaked. */
static int bind_listener(wc_server_t *srv) {
  int rc, fd = open_listener(&srv->addr, srv->shared->n > 1);
  if (fd < 0)
    return fd;
  rc = uv_tcp_open(&srv->listener, fd);
  if (rc < 0) {
    close(fd); /* not the handle's */
    return rc;
  }
  return uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
}

int wc_server_start(wc_server_t *srv, uv_loop_t *loop, const wc_config_t *cfg,
                    wc_shared_t *shared, unsigned index,
                    wc_server_stopped_cb on_stopped) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int rc, reuseport = shared->n > 1;
  unsigned nloops = shared->n ? shared->n : 1;
  memset(srv, 0, offsetof(wc_server_t, read_buf));
  srv->loop = loop;
  srv->cfg = cfg;
  srv->shared = shared;
  srv->index = index;
  srv->on_stopped = on_stopped;
  wc_list_init(&srv->conns);
  wc_list_init(&srv->heavies);
  wc_list_init(&srv->waiters);
  wc_list_init(&srv->turners);
  /* The budget is split between the loops. */
  srv->buffered_cap = cfg->limits.max_json_body_bytes * 2;
  if (srv->buffered_cap < (256u << 20))
    srv->buffered_cap = 256u << 20;
  srv->buffered_cap /= nloops;
  srv->jobs_cap = 64 * (cfg->workers ? cfg->workers : 1) / nloops;
  if (srv->jobs_cap < 8)
    srv->jobs_cap = 8;
  (void)update_date(srv);
  atomic_store(&srv->load, 0);
  atomic_store(&srv->adopting, 1);
  rc = uv_mutex_init(&srv->inbox_lock);
  if (rc < 0)
    return rc;
  srv->inbox_ok = 1;
  /* Handles first: wc_server_close may be called whatever fails below. */
  rc = uv_async_init(loop, &srv->wake, on_wake);
  if (rc < 0)
    return rc;
  srv->wake_open = 1;
  uv_unref((uv_handle_t *)&srv->wake); /* does not keep the loop alive */
  rc = uv_check_init(loop, &srv->turn_check);
  if (rc < 0)
    return rc;
  srv->turn_check_open = 1;
  uv_unref((uv_handle_t *)&srv->turn_check); /* connections keep it alive */
  rc = uv_tcp_init(loop, &srv->listener);
  if (rc < 0)
    return rc;
  srv->handles_open = 1;
  rc = resolve(cfg->host, index == 0 ? cfg->port : shared->port, &ss);
  if (rc < 0) {
    wc_log(WC_LOG_ERROR, "cannot resolve listen.host \"%s\"", cfg->host);
    return rc;
  }
  srv->addr = ss;
  rc = reuseport && index == 0 && cfg->port != 0 ? probe_port(&ss) : 0;
  if (rc == 0)
    rc = bind_listener(srv);
  if (rc == 0)
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
  if (rc < 0) {
    wc_log(WC_LOG_ERROR, "cannot listen on %s:%d: %s", cfg->host,
           index == 0 ? cfg->port : shared->port, uv_strerror(rc));
    return rc;
  }
  srv->addr = ss; /* now with the port the kernel chose */
  if (index == 0) {
    shared->port = addr_port(&ss);
  }
  uv_timer_init(loop, &srv->date_timer);
  uv_timer_init(loop, &srv->shutdown_timer);
  srv->handles_open += 2;
  uv_timer_start(&srv->date_timer, on_date_timer, update_date(srv) + 1, 0);
  return 0;
}

void wc_server_announce(const wc_server_t *srv) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[64];
  if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) < 0)
    return;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    printf("listening on http://[%s]:%d\n", ip, addr_port(&ss));
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    printf("listening on http://%s:%d\n", ip, addr_port(&ss));
  }
  fflush(stdout);
}

void wc_server_close(wc_server_t *srv) {
  if (srv->inbox_ok) {
    /* Handed over after this loop stopped: never served. */
    for (unsigned i = 0; i < srv->inbox_n; i++)
      close(srv->inbox[i]);
    srv->inbox_n = 0;
    srv->inbox_ok = 0;
    uv_mutex_destroy(&srv->inbox_lock);
  }
  wc_setcache_free(&srv->setcache);
  wc_blockpool_free(&srv->blocks);
  wc_bodypool_free(&srv->bodies);
  if (srv->wake_open) {
    srv->wake_open = 0;
    uv_close((uv_handle_t *)&srv->wake, NULL);
  }
  if (srv->turn_check_open) {
    srv->turn_check_open = 0;
    uv_close((uv_handle_t *)&srv->turn_check, NULL);
  }
  /* A server that failed to start: its listener (and nothing else). */
  if (srv->handles_open == 1 && !srv->draining) {
    srv->on_stopped = NULL;
    close_server_handle(srv, (uv_handle_t *)&srv->listener);
  }
}
