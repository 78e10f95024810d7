/*
 * router.h - endpoints and their methods. Pure.
 */
#ifndef WC_ROUTER_H
#define WC_ROUTER_H

#include <stddef.h>

#include "errors.h"

typedef enum {
  WC_ACT_COUNT,   /* POST /count */
  WC_ACT_HEALTH,  /* GET|HEAD /healthz */
  WC_ACT_READY,   /* GET|HEAD /readyz */
  WC_ACT_METRICS, /* GET|HEAD /metrics */
  WC_ACT_OPTIONS, /* OPTIONS on a known path, or OPTIONS * */
  WC_ACT_ERROR,   /* 404 or 405 (err) */
} wc_action_t;

typedef struct {
  wc_action_t action;
  wc_err_t err;      /* for WC_ACT_ERROR */
  const char *allow; /* the Allow header value of the path, or NULL */
  int endpoint;      /* 0: no known path; 1.. the WC_PATH_* of the path */
  int protected;     /* needs the bearer token when auth is on */
} wc_route_t;

/* Known paths (wc_route_t.endpoint). */
enum {
  WC_PATH_NONE,
  WC_PATH_COUNT,
  WC_PATH_HEALTHZ,
  WC_PATH_READYZ,
  WC_PATH_METRICS
};

/* Matches the request target (path and query) and an llhttp method. */
void wc_router_match(const char *target, size_t len, int method,
                     wc_route_t *out);

/* The status and JSON body of the simple endpoints. */
int wc_router_simple(const wc_route_t *r, int draining, const char **body);

#endif
