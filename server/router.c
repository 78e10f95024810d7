/*
 * router.c - which endpoint a request is for, and the bodies of the simple
 * endpoints. Methods not allowed on a known path give 405 with Allow.
 * /count takes POST and PUT (what `curl -T` sends).
 */
#include "router.h"

#include <llhttp.h>
#include <string.h>

static const struct {
  const char *path;
  const char *allow;
} paths[] = {
    {"/count", "POST, PUT, OPTIONS"},
    {"/healthz", "GET, HEAD, OPTIONS"},
    {"/readyz", "GET, HEAD, OPTIONS"},
};

void wc_router_match(const char *target, size_t len, int method,
                     wc_route_t *out) {
  const char *q = memchr(target, '?', len);
  size_t plen = q != NULL ? (size_t)(q - target) : len;
  size_t i;
  out->allow = NULL;
  out->err = WC_E_NONE;
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
  if (method == HTTP_OPTIONS) {
    out->action = WC_ACT_OPTIONS;
  } else if (i == 0 && (method == HTTP_POST || method == HTTP_PUT)) {
    /* PUT too: it is what `curl -T FILE` sends, and counting is
     * idempotent. */
    out->action = WC_ACT_COUNT;
  } else if (i > 0 && (method == HTTP_GET || method == HTTP_HEAD)) {
    out->action = i == 1 ? WC_ACT_HEALTH : WC_ACT_READY;
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
