/*
 * fuzz_http.c - libFuzzer target: the request path, bytes in and responses
 * out, through the server's real connection, HTTP and job code (conn.c,
 * http.c, job.c, router.c, reqparse.c, errors.c) on a real libuv loop with
 * its worker pool, with no network.
 *
 * The seam (no server change): a wc_server_t is set up by hand (the fields
 * wc_server_start would set, without binding anything), and each input gets
 * a fresh AF_UNIX socketpair. Its server end is handed to the unmodified
 * wc_conn_accept() by placing it in the listener's pending-accept slot
 * (libuv's uv_stream_t.accepted_fd, which uv_accept() consumes); the
 * listener itself is a listening AF_UNIX socket nobody connects to, so it
 * never fires. The fuzzer writes the request bytes into the client end in
 * pieces of random size (one loop turn after each, so the server sees them
 * as separate reads), half-closes, and runs the loop until the connection
 * is freed, reading the client end all along.
 *
 * Input layout:
 *   byte 0   bit 0: small limits (headers 256 B, bodies 64 B, 2 needles of
 *            at most 8 bytes); bits 1-7: the split seed
 *   byte 1   the split seed (more bits); piece sizes are 1..(1 << (b1 & 7))
 *   the rest the bytes the client sends
 *
 * Checked on every input (failures abort with a message):
 *   - no crash, leak, use-after-free or undefined behaviour (sanitizers);
 *   - the connection is freed within 5 s of the client's half-close (no
 *     hang, no lost reference), and the server's global budget (buffered
 *     bytes, queued jobs) is back to zero;
 *   - the output is a sequence of complete responses and nothing else: a
 *     "HTTP/1.1 NNN Reason" line with a known status (500 and 503 are not
 *     expected without faults), a Date header, Content-Length on all but 1xx
 *     and 204, a JSON body (error bodies with the same status inside).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "conn.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static wc_config_t cfgs[2];
static wc_server_t srv;
static wc_server_t *srvs[1] = {&srv};
static wc_shared_t shared = {.servers = srvs, .n = 1};
static char out[1 << 20];
static size_t out_len;

static const uint8_t *cur_in;
static size_t cur_len;

static void die(const char *what) {
  fprintf(stderr, "fuzz_http: %s\ninput (%zu bytes):", what, cur_len);
  for (size_t i = 0; i < cur_len && i < 512; i++)
    fprintf(stderr, " %02x", cur_in[i]);
  fprintf(stderr, "\noutput (%zu bytes): %.*s\n", out_len,
          (int)(out_len < 2048 ? out_len : 2048), out);
  abort();
}

static void setup(void) {
  int lfd;
  struct sockaddr_un sa;
  setenv("UV_THREADPOOL_SIZE", "2", 1);
  if (uv_loop_init(&loop) != 0)
    abort();
  /* The access log goes to stdout (log.c's defaults, whatever its set-up
   * function looks like); libFuzzer reports on stderr. */
  fflush(stdout);
  if (dup2(open("/dev/null", O_WRONLY | O_CLOEXEC), STDOUT_FILENO) < 0)
    abort();
  wc_config_defaults(&cfgs[0]);
  cfgs[0].workers = 2;
  cfgs[0].log_access = 0;
  cfgs[0].log_level = WC_LOG_ERROR;
  cfgs[1] = cfgs[0];
  cfgs[1].limits.max_header_bytes = 256;
  cfgs[1].limits.max_body_bytes = 64;
  cfgs[1].limits.max_json_body_bytes = 64;
  cfgs[1].limits.max_needles = 2;
  cfgs[1].limits.max_needle_bytes = 8;
  cfgs[1].parallel_min_bytes = 16;       /* JSON texts are split into slices */
  cfgs[1].parallel_inline_max_bytes = 0; /* every body goes to the pool */

  /* What wc_server_start sets up, minus the TCP listener. */
  memset(&srv, 0, offsetof(wc_server_t, read_buf));
  srv.loop = &loop;
  srv.cfg = &cfgs[0];
  srv.shared = &shared;
  wc_list_init(&srv.conns);
  wc_list_init(&srv.waiters);
  wc_list_init(&srv.turners);
  if (uv_check_init(&loop, &srv.turn_check) != 0)
    abort();
  uv_unref((uv_handle_t *)&srv.turn_check);
  srv.buffered_cap = 256u << 20;
  srv.jobs_cap = 64 * 2;
  srv.date_len = (size_t)snprintf(srv.date, sizeof srv.date,
                                  "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");

  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  /* An autobound abstract address: nothing on disk, nobody connects. */
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa_family_t)) != 0 ||
      listen(lfd, 1) != 0)
    abort();
  if (uv_tcp_init(&loop, &srv.listener) != 0 ||
      uv_tcp_open(&srv.listener, lfd) != 0)
    abort();
}

static void drain_client(int fd) {
  for (;;) {
    ssize_t n;
    if (out_len == sizeof out)
      die("more than 1 MiB of output");
    n = read(fd, out + out_len, sizeof out - out_len);
    if (n <= 0)
      return;
    out_len += (size_t)n;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int known_status(int st) {
  static const int ok[] = {100, 200, 204, 400, 404, 405,
                           408, 413, 417, 431, 505};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (ok[i] == st)
      return 1;
  return 0;
}

/* Returns the value of header `name` (case-insensitive) in head, or NULL. */
static const char *header(const char *head, size_t hlen, const char *name,
                          size_t *vlen) {
  size_t nl = strlen(name);
  const char *p = head, *end = head + hlen;
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (eol == NULL)
      eol = end;
    if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 &&
        p[nl] == ':') {
      const char *v = p + nl + 1;
      while (v < eol && *v == ' ')
        v++;
      *vlen = (size_t)(eol - v);
      return v;
    }
    p = eol + 2;
  }
  return NULL;
}

static void check_output(void) {
  size_t off = 0;
  while (off < out_len) {
    const char *p = out + off;
    size_t left = out_len - off;
    const char *hend = memmem(p, left, "\r\n\r\n", 4);
    const char *cl, *ct, *eol;
    size_t hlen, vlen = 0, ctlen = 0, body = 0;
    int st;
    if (hend == NULL)
      die("output ends inside a response head");
    hlen = (size_t)(hend - p) + 2;
    if (left < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[12] != ' ')
      die("bad status line");
    st = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (!known_status(st))
      die("unexpected status");
    eol = memmem(p, hlen, "\r\n", 2);
    off += (size_t)(hend - p) + 4;
    if (st == 100)
      continue;
    if (header(eol + 2, hlen - (size_t)(eol + 2 - p), "Date", &vlen) == NULL)
      die("response without Date");
    cl = header(eol + 2, hlen - (size_t)(eol + 2 - p), "Content-Length", &vlen);
    if (st == 204) {
      if (cl != NULL)
        die("204 with Content-Length");
      continue;
    }
    if (cl == NULL)
      die("response without Content-Length");
    for (size_t i = 0; i < vlen; i++) {
      if (cl[i] < '0' || cl[i] > '9')
        die("bad Content-Length");
      body = body * 10 + (size_t)(cl[i] - '0');
    }
    /* Every body is JSON but /metrics' (text/plain); a HEAD answer has
     * the length but no body, and then the next response (or the end)
     * follows at once. */
    ct = header(eol + 2, hlen - (size_t)(eol + 2 - p), "Content-Type", &ctlen);
    if (body > 0 && off < out_len && ct != NULL && ctlen >= 10 &&
        memcmp(ct, "text/plain", 10) == 0 &&
        !(out_len - off >= 5 && memcmp(out + off, "HTTP/", 5) == 0)) {
      if (out_len - off < body)
        die("output ends inside a response body");
      if (st != 200 || out[off] != '#')
        die("a text/plain body that is not /metrics'");
      off += body;
    } else if (body > 0 && off < out_len && out[off] == '{') {
      cJSON *j, *err;
      if (out_len - off < body)
        die("output ends inside a response body");
      j = cJSON_ParseWithLength(out + off, body);
      if (j == NULL)
        die("response body is not JSON");
      err = cJSON_GetObjectItemCaseSensitive(j, "error");
      if (st >= 400) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(err, "status");
        if (!cJSON_IsNumber(s) || s->valueint != st)
          die("error body without its status");
      }
      cJSON_Delete(j);
      off += body;
    } else if (body > 0 && off < out_len &&
               !(out_len - off >= 5 && memcmp(out + off, "HTTP/", 5) == 0)) {
      die("a response body that is not JSON");
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  int sv[2];
  uint32_t seed;
  size_t maxpiece, off;
  double deadline;
  if (!ready) {
    setup();
    ready = 1;
  }
  if (size < 2)
    return 0;
  cur_in = data;
  cur_len = size;
  out_len = 0;
  srv.cfg = &cfgs[data[0] & 1];
  seed = (uint32_t)data[0] << 8 | data[1];
  maxpiece = (size_t)1 << (data[1] & 7);
  data += 2;
  size -= 2;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
    abort();
  srv.listener.accepted_fd = sv[0];
  atomic_fetch_add(&shared.nconns, 1); /* try_accept's reservation */
  atomic_fetch_add(&srv.load, 1);      /* and its count */
  if (wc_conn_accept(&srv, -1) != 0 || srv.nconns != 1)
    die("wc_conn_accept failed");

  off = 0;
  while (off < size) {
    size_t k;
    ssize_t n;
    seed = seed * 1103515245u + 12345u;
    k = 1 + (seed >> 16) % maxpiece;
    if (k > size - off)
      k = size - off;
    n = write(sv[1], data + off, k);
    if (n < 0 && errno != EAGAIN)
      break; /* the server closed its end */
    if (n > 0)
      off += (size_t)n;
    uv_run(&loop, UV_RUN_NOWAIT);
    drain_client(sv[1]);
    if (srv.nconns == 0)
      break;
  }
  shutdown(sv[1], SHUT_WR);
  deadline = now_s() + 5.0;
  while (srv.nconns > 0) {
    if (now_s() > deadline)
      die("the connection was not freed within 5 s of the client's EOF");
    uv_run(&loop, UV_RUN_NOWAIT);
    drain_client(sv[1]);
    if (srv.nconns > 0 && srv.jobs > 0)
      usleep(50);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  drain_client(sv[1]);
  close(sv[1]);
  if (srv.buffered != 0 || srv.jobs != 0 || !wc_list_empty(&srv.waiters))
    die("the global budget is not back to zero");
  if (getenv("FUZZ_HTTP_DUMP") != NULL) /* for debugging a seed */
    fprintf(stderr, "--- output (%zu bytes):\n%.*s\n", out_len, (int)out_len,
            out);
  check_output();
  return 0;
}
