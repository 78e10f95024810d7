/*
 * metrics.c - counters and gauges for GET /metrics (Prometheus text 0.0.4).
 *
 * DESIGN
 * - One static table of C11 atomics per metric, updated with relaxed
 *   operations: no lock anywhere, so the hot path (the loop thread, and the
 *   workers for the queue depth) pays one uncontended atomic add per event.
 *   Relaxed order is enough because every value is independent: a scrape may
 *   see a request counted in _count a moment before its bucket, which the
 *   Prometheus model tolerates (scrapes are not snapshots).
 * - Requests are counted by endpoint and by the exact status code (a slot per
 *   code 100..599), so a status added later needs no change here; only
 *   non-zero series are printed. Durations are kept in nanoseconds (an integer
 *   adds atomically; a double would need a CAS loop) and printed in seconds.
 * - Gauges are signed counters moved by +1/-1 at the points that own the
 *   thing counted (conn.c for connections, http.c for requests, job.c for
 *   jobs and the pool queue).
 * - Rendering happens on the loop thread in O(number of series), never
 *   O(body): it is cheap enough not to need the worker pool.
 */
#include "metrics.h"

#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server.h" /* WC_HEAVY_*, spelled out in a help text below */
#include "util.h"
#include "wordcount.h"

#define STATUS_MIN 100
#define STATUS_MAX 599
#define NSTATUS (STATUS_MAX - STATUS_MIN + 1)

/* Upper bounds of the duration histogram, in seconds (+Inf is implicit). */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,  0.1,    0.25,  0.5,
                                 1,      2.5,   5,      10};
#define NBUCKETS WC_ARRAY_SIZE(buckets)

static const char *const endpoint_names[WC_EP__COUNT] = {
    "/count", "/healthz", "/readyz", "/metrics", "other"};

static struct {
  atomic_uint_fast64_t requests[WC_EP__COUNT][NSTATUS];
  atomic_uint_fast64_t bucket[WC_EP__COUNT][NBUCKETS]; /* not cumulative */
  atomic_uint_fast64_t duration_ns[WC_EP__COUNT];
  atomic_uint_fast64_t duration_count[WC_EP__COUNT];
  atomic_uint_fast64_t errors[WC_E__COUNT];
  atomic_uint_fast64_t counters[WC_C__COUNT];
  atomic_int_fast64_t gauges[WC_G__COUNT];
  atomic_int_fast64_t loop_conns[WC_METRICS_MAX_LOOPS];
  atomic_int_fast64_t loop_uploads[WC_METRICS_MAX_LOOPS];
  unsigned nloops;
} m;

void wc_metrics_set_loops(unsigned nloops) {
  m.nloops = nloops < WC_METRICS_MAX_LOOPS ? nloops : WC_METRICS_MAX_LOOPS;
}

void wc_metrics_loop_uploads(unsigned loop, int64_t delta) {
  if (loop < WC_METRICS_MAX_LOOPS)
    atomic_fetch_add_explicit(&m.loop_uploads[loop], delta,
                              memory_order_relaxed);
}

void wc_metrics_loop_conns(unsigned loop, int64_t delta) {
  if (loop < WC_METRICS_MAX_LOOPS)
    atomic_fetch_add_explicit(&m.loop_conns[loop], delta,
                              memory_order_relaxed);
}

void wc_metrics_gauge_add(wc_gauge_t g, int64_t delta) {
  atomic_fetch_add_explicit(&m.gauges[g], delta, memory_order_relaxed);
}

int64_t wc_metrics_gauge_get(wc_gauge_t g) {
  return atomic_load_explicit(&m.gauges[g], memory_order_relaxed);
}

void wc_metrics_counter_add(wc_counter_t c, uint64_t n) {
  atomic_fetch_add_explicit(&m.counters[c], n, memory_order_relaxed);
}

void wc_metrics_request(wc_endpoint_t ep, int status, uint64_t duration_ns,
                        wc_err_t err) {
  double s = (double)duration_ns / 1e9;
  size_t b;
  if (ep >= WC_EP__COUNT)
    ep = WC_EP_OTHER;
  if (status >= STATUS_MIN && status <= STATUS_MAX)
    atomic_fetch_add_explicit(&m.requests[ep][status - STATUS_MIN], 1,
                              memory_order_relaxed);
  for (b = 0; b < NBUCKETS && s > buckets[b]; b++)
    ;
  if (b < NBUCKETS)
    atomic_fetch_add_explicit(&m.bucket[ep][b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&m.duration_ns[ep], duration_ns,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&m.duration_count[ep], 1, memory_order_relaxed);
  if (err != WC_E_NONE && err < WC_E__COUNT)
    atomic_fetch_add_explicit(&m.errors[err], 1, memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *a) {
  return atomic_load_explicit(a, memory_order_relaxed);
}

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} sbuf_t;

static void put(sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(sbuf_t *b, const char *fmt, ...) {
  va_list ap;
  int n;
  if (b->oom)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    char *np = realloc(b->p, b->cap * 2 + (size_t)n);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = b->cap * 2 + (size_t)n;
  }
}

static void header(sbuf_t *b, const char *name, const char *type,
                   const char *help) {
  put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int wc_metrics_render(char **out, size_t *len) {
  static const struct {
    wc_counter_t c;
    const char *name, *help;
  } counters[] = {
      {WC_C_BODY_BYTES, "wordcount_body_bytes_received_total",
       "Request body bytes received (after chunked decoding)."},
      {WC_C_TEXT_BYTES, "wordcount_text_bytes_counted_total",
       "Bytes of text counted by successful /count requests."},
      {WC_C_WORDS_MATCHED, "wordcount_words_matched_total",
       "Matches found by successful /count requests, over all needles."},
      {WC_C_CONNS_HANDED_OVER, "wordcount_connections_handed_over_total",
       "Connections accepted by one event loop and served by another "
       "(balance_connections)."},
      {WC_C_LOG_LINES_DROPPED, "wordcount_log_lines_dropped_total",
       "Access-log and diagnostic lines dropped: their pipe or socket was "
       "full (nobody read it) or closed."},
  };
  static const struct {
    wc_gauge_t g;
    const char *name, *help;
  } gauges[] = {
      {WC_G_REQUESTS_IN_FLIGHT, "wordcount_requests_in_flight",
       "Requests received (at least one byte) and not answered yet."},
      {WC_G_JOBS_IN_FLIGHT, "wordcount_jobs_in_flight",
       "Counting jobs queued in or running on the worker pool."},
      {WC_G_POOL_QUEUE_DEPTH, "wordcount_pool_queue_depth",
       "Counting jobs queued in the worker pool and not started yet."},
      {WC_G_OPEN_CONNECTIONS, "wordcount_open_connections",
       "Client connections open."},
  };
  sbuf_t b = {malloc(8192), 0, 8192, 0};
  if (b.p == NULL)
    return -ENOMEM;

  header(&b, "wordcount_http_requests_total", "counter",
         "HTTP requests answered, by endpoint and status.");
  for (int e = 0; e < WC_EP__COUNT; e++)
    for (int s = 0; s < NSTATUS; s++) {
      uint64_t v = load(&m.requests[e][s]);
      if (v > 0)
        put(&b,
            "wordcount_http_requests_total{endpoint=\"%s\",status=\"%d\"} "
            "%llu\n",
            endpoint_names[e], s + STATUS_MIN, (unsigned long long)v);
    }

  header(&b, "wordcount_http_request_duration_seconds", "histogram",
         "Time from the first byte of a request to its response being "
         "queued.");
  for (int e = 0; e < WC_EP__COUNT; e++) {
    uint64_t count = load(&m.duration_count[e]), cum = 0;
    if (count == 0 && e != WC_EP_COUNT)
      continue;
    for (size_t i = 0; i < NBUCKETS; i++) {
      cum += load(&m.bucket[e][i]);
      put(&b,
          "wordcount_http_request_duration_seconds_bucket{endpoint=\"%s\","
          "le=\"%g\"} %llu\n",
          endpoint_names[e], buckets[i], (unsigned long long)cum);
    }
    /* +Inf equals _count; a request counted there but not yet in its
     * bucket would otherwise make the series non-monotonic. */
    if (count < cum)
      count = cum;
    put(&b,
        "wordcount_http_request_duration_seconds_bucket{endpoint=\"%s\","
        "le=\"+Inf\"} %llu\n",
        endpoint_names[e], (unsigned long long)count);
    put(&b,
        "wordcount_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n",
        endpoint_names[e], (double)load(&m.duration_ns[e]) / 1e9);
    put(&b,
        "wordcount_http_request_duration_seconds_count{endpoint=\"%s\"} "
        "%llu\n",
        endpoint_names[e], (unsigned long long)count);
  }

  for (size_t i = 0; i < WC_ARRAY_SIZE(counters); i++) {
    header(&b, counters[i].name, "counter", counters[i].help);
    put(&b, "%s %llu\n", counters[i].name,
        (unsigned long long)load(&m.counters[counters[i].c]));
  }
  for (size_t i = 0; i < WC_ARRAY_SIZE(gauges); i++) {
    int64_t v =
        atomic_load_explicit(&m.gauges[gauges[i].g], memory_order_relaxed);
    header(&b, gauges[i].name, "gauge", gauges[i].help);
    put(&b, "%s %lld\n", gauges[i].name, (long long)(v < 0 ? 0 : v));
  }

  header(&b, "wordcount_event_loop_connections", "gauge",
         "Client connections open, by event loop.");
  for (unsigned i = 0; i < m.nloops; i++) {
    int64_t v = atomic_load_explicit(&m.loop_conns[i], memory_order_relaxed);
    put(&b, "wordcount_event_loop_connections{loop=\"%u\"} %lld\n", i,
        (long long)(v < 0 ? 0 : v));
  }

  _Static_assert(WC_HEAVY_BYTES == 4u << 20 && WC_HEAVY_BODY == 1u << 20 &&
                     WC_HEAVY_LOAD == 16u,
                 "the help text below spells out the upload weight");
  header(&b, "wordcount_event_loop_uploads", "gauge",
         "Connections receiving a large body fast (4 MiB a second past its "
         "first MiB), by event loop; each weighs 16 connections in "
         "balance_connections.");
  for (unsigned i = 0; i < m.nloops; i++) {
    int64_t v = atomic_load_explicit(&m.loop_uploads[i], memory_order_relaxed);
    put(&b, "wordcount_event_loop_uploads{loop=\"%u\"} %lld\n", i,
        (long long)(v < 0 ? 0 : v));
  }

  header(&b, "wordcount_errors_total", "counter",
         "Error responses, by the JSON error code.");
  for (int k = 1; k < WC_E__COUNT; k++) {
    uint64_t v = load(&m.errors[k]);
    if (v > 0)
      put(&b, "wordcount_errors_total{code=\"%s\"} %llu\n",
          wc_errors_code((wc_err_t)k), (unsigned long long)v);
  }

  header(&b, "wordcount_build_info", "gauge",
         "Build and run-time versions; the value is always 1.");
  put(&b,
      "wordcount_build_info{version=\"%s\",libuv=\"%s\",llhttp=\"%d.%d.%d\","
      "kernel=\"%s\"} 1\n",
      WC_VERSION, uv_version_string(), LLHTTP_VERSION_MAJOR,
      LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH, wc_kernel_name());

  if (b.oom) {
    free(b.p);
    return -ENOMEM;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}
