/*
 * metrics.h - process-wide counters and gauges, rendered for GET /metrics in
 * the Prometheus text format 0.0.4. See the DESIGN comment in metrics.c.
 * Every function may be called from any thread.
 */
#ifndef WC_METRICS_H
#define WC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* The endpoint label of a request. */
typedef enum {
  WC_EP_COUNT,
  WC_EP_HEALTHZ,
  WC_EP_READYZ,
  WC_EP_METRICS,
  WC_EP_OTHER, /* unknown paths, OPTIONS *, requests that never parsed */
  WC_EP__COUNT
} wc_endpoint_t;

/* Gauges: what the +1/-1 calls track. */
typedef enum {
  WC_G_REQUESTS_IN_FLIGHT,
  WC_G_JOBS_IN_FLIGHT,
  WC_G_POOL_QUEUE_DEPTH,
  WC_G_OPEN_CONNECTIONS,
  WC_G__COUNT
} wc_gauge_t;

/* Counters without labels. */
typedef enum {
  WC_C_BODY_BYTES,
  WC_C_TEXT_BYTES,
  WC_C_WORDS_MATCHED,
  WC_C_CONNS_HANDED_OVER,
  WC_C_LOG_LINES_DROPPED,
  WC_C__COUNT
} wc_counter_t;

void wc_metrics_gauge_add(wc_gauge_t g, int64_t delta);
int64_t wc_metrics_gauge_get(wc_gauge_t g);
void wc_metrics_counter_add(wc_counter_t c, uint64_t n);

/* Open connections of event loop `loop` (< WC_METRICS_MAX_LOOPS); the
 * series are printed for loops 0..nloops-1 (wc_metrics_set_loops, called
 * once before the loops run). */
#define WC_METRICS_MAX_LOOPS 64
void wc_metrics_set_loops(unsigned nloops);
void wc_metrics_loop_conns(unsigned loop, int64_t delta);
/* Connections of event loop `loop` receiving a large body fast (weighted in
 * balance_connections, server.h). */
void wc_metrics_loop_uploads(unsigned loop, int64_t delta);

/* One answered request: status, duration, and the error kind when it is an
 * error response (WC_E_NONE otherwise). */
void wc_metrics_request(wc_endpoint_t ep, int status, uint64_t duration_ns,
                        wc_err_t err);

/*
 * Renders every metric into a new malloc'd buffer (*out, *len); the caller
 * frees it. Returns 0 or -ENOMEM.
 */
int wc_metrics_render(char **out, size_t *len);

#endif
