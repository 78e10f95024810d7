/*
 * router.c - which endpoint a request is for, and the bodies of the simple
 * endpoints. Methods not allowed on a known path give 405 with Allow.
 * /count takes POST and PUT (what `curl -T` sends); /healthz, /readyz and
 * /metrics take GET and HEAD.
 */
#include "router.h"

#include <llhttp.h>
#include <string.h>

static const struct {
  const char *path;
  const char *allow;
  wc_action_t action; /* for the allowed methods other than OPTIONS */
  int protected;      /* behind the bearer token when auth is on */
} paths[] = {
    /* In the order of WC_PATH_*, from WC_PATH_COUNT. */
    {"/count", "POST, PUT, OPTIONS", WC_ACT_COUNT, 1},
    {"/healthz", "GET, HEAD, OPTIONS", WC_ACT_HEALTH, 0},
    {"/readyz", "GET, HEAD, OPTIONS", WC_ACT_READY, 0},
    {"/metrics", "GET, HEAD, OPTIONS", WC_ACT_METRICS, 1},
};

void wc_router_match(const char *target, size_t len, int method,
                     wc_route_t *out) {
  const char *q = memchr(target, '?', len);
  size_t plen = q != NULL ? (size_t)(q - target) : len;
  size_t i;
  out->allow = NULL;
  out->err = WC_E_NONE;
  out->endpoint = WC_PATH_NONE;
  out->protected = 0;
  if (method == HTTP_OPTIONS && plen == 1 && target[0] == '*') {
    out->action = WC_ACT_OPTIONS;
    out->allow = "GET, HEAD, POST, PUT, OPTIONS";
    return;
  }
  for (i = 0; i < sizeof paths / sizeof *paths; i++)
    if (strlen(paths[i].path) == plen &&
        memcmp(paths[i].path, target, plen) == 0)
      break;
  if (i == sizeof paths / sizeof *paths) {
    out->action = WC_ACT_ERROR;
    out->err = WC_E_NOT_FOUND;
    return;
  }
  out->allow = paths[i].allow;
  out->endpoint = (int)i + WC_PATH_COUNT;
  if (method == HTTP_OPTIONS) {
    out->action = WC_ACT_OPTIONS; /* open even when auth is on */
  } else if (i == 0 && (method == HTTP_POST || method == HTTP_PUT)) {
    /* PUT too: it is what `curl -T FILE` sends, and counting is
     * idempotent. */
    out->action = WC_ACT_COUNT;
    out->protected = paths[i].protected;
  } else if (i > 0 && (method == HTTP_GET || method == HTTP_HEAD)) {
    out->action = paths[i].action;
    out->protected = paths[i].protected;
  } else {
    out->action = WC_ACT_ERROR;
    out->err = WC_E_METHOD;
  }
}

int wc_router_simple(const wc_route_t *r, int draining, const char **body) {
  switch (r->action) {
  case WC_ACT_HEALTH:
    *body = "{\"status\":\"ok\"}";
    return 200;
  case WC_ACT_READY:
    if (draining) {
      *body = NULL; /* the caller sends the WC_E_DRAINING error */
      return 503;
    }
    *body = "{\"status\":\"ready\"}";
    return 200;
  case WC_ACT_OPTIONS:
    *body = NULL;
    return 204;
  default:
    *body = NULL;
    return 500;
  }
}
