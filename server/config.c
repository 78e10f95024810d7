/*
 * config.c - defaults -> file -> environment -> flags.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cpus.h"
#include "reqparse.h"
#include "util.h"
#include "wordcount.h"

void wc_config_defaults(wc_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->host, sizeof cfg->host, "%s", "127.0.0.1");
  cfg->port = 8080;
  cfg->workers = 0;
  cfg->event_loops = 0;
  cfg->limits.max_body_bytes = 1073741824ull;
  cfg->limits.max_json_body_bytes = 67108864ull;
  cfg->limits.max_header_bytes = 16384;
  cfg->limits.max_connections = 4096;
  cfg->limits.max_needles = 64;
  cfg->limits.max_needle_bytes = 256;
  cfg->timeouts_ms.header = 10000;
  cfg->timeouts_ms.body = 30000;
  cfg->timeouts_ms.keepalive = 5000;
  cfg->timeouts_ms.shutdown = 10000;
  cfg->parallel_min_bytes = 1048576;
  cfg->parallel_inline_max_bytes = 65536;
  cfg->log_access = 1;
  cfg->balance_connections = 1;
  cfg->worker_nice = 5;
  cfg->log_level = WC_LOG_INFO;
  cfg->log_format = WC_LOG_FORMAT_COMMON;
  snprintf(cfg->log_file, sizeof cfg->log_file, "%s", "stdout");
}

/* auth.token: 1 to WC_AUTH_TOKEN_MAX characters of RFC 6750's b64token
 * (A-Z a-z 0-9 - . _ ~ + / then '=' padding), or empty (no auth). */
static int set_token(wc_config_t *cfg, const char *name, const char *v,
                     char *err, size_t errlen) {
  size_t n = strlen(v), i = 0;
  while (i < n && (isalnum((unsigned char)v[i]) || strchr("-._~+/", v[i])))
    i++;
  while (i > 0 && i < n && v[i] == '=')
    i++;
  if (n > WC_AUTH_TOKEN_MAX || i != n) {
    snprintf(err, errlen,
             "%s must be empty or 1 to %d characters of A-Z a-z 0-9 "
             "-._~+/ (then = padding)",
             name, WC_AUTH_TOKEN_MAX);
    return -EINVAL;
  }
  snprintf(cfg->auth_token, sizeof cfg->auth_token, "%s", v);
  return 0;
}

/* One integer key: its JSON path, where it goes, and its allowed range. */
typedef struct {
  const char *name;
  uint64_t min, max;
  void *dst;
  size_t size; /* sizeof the destination */
} int_key_t;

static int store_int(const int_key_t *k, double v, char *err, size_t errlen) {
  if (!(v >= (double)k->min && v <= (double)k->max) || floor(v) != v) {
    snprintf(err, errlen, "%s must be an integer from %llu to %llu", k->name,
             (unsigned long long)k->min, (unsigned long long)k->max);
    return -EINVAL;
  }
  uint64_t u = (uint64_t)v;
  if (k->size == sizeof(uint64_t))
    *(uint64_t *)k->dst = u;
  else if (k->size == sizeof(unsigned))
    *(unsigned *)k->dst = (unsigned)u;
  else
    *(int *)k->dst = (int)u;
  return 0;
}

/* One integer key's JSON value: a number within the key's range. */
static int load_int(const int_key_t *k, const cJSON *v, char *err,
                    size_t errlen) {
  if (!cJSON_IsNumber(v)) {
    snprintf(err, errlen, "%s must be a number", k->name);
    return -EINVAL;
  }
  return store_int(k, v->valuedouble, err, errlen);
}

/* Walks one JSON object against a table of integer keys; sub-objects and
 * other types are handled by the caller through `other`. */
static int load_ints(const cJSON *obj, const char *prefix,
                     const int_key_t *keys, size_t nkeys, char *err,
                     size_t errlen) {
  const cJSON *it;
  if (!cJSON_IsObject(obj)) {
    snprintf(err, errlen, "%s must be an object", prefix);
    return -EINVAL;
  }
  cJSON_ArrayForEach(it, obj) {
    size_t i;
    for (i = 0; i < nkeys; i++) {
      const char *leaf = strrchr(keys[i].name, '.');
      leaf = leaf != NULL ? leaf + 1 : keys[i].name;
      if (strcmp(leaf, it->string) == 0)
        break;
    }
    if (i == nkeys) {
      snprintf(err, errlen, "unknown key %s.%s", prefix, it->string);
      return -EINVAL;
    }
    int rc = load_int(&keys[i], it, err, errlen);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int check_duplicates(const cJSON *obj, const char *prefix, char *err,
                            size_t errlen) {
  for (const cJSON *a = obj->child; a != NULL; a = a->next) {
    for (const cJSON *b = a->next; b != NULL; b = b->next)
      if (strcmp(a->string, b->string) == 0) {
        snprintf(err, errlen, "duplicate key %s%s%s", prefix,
                 *prefix ? "." : "", a->string);
        return -EINVAL;
      }
    if (cJSON_IsObject(a)) {
      char sub[128];
      snprintf(sub, sizeof sub, "%s%s%s", prefix, *prefix ? "." : "",
               a->string);
      int rc = check_duplicates(a, sub, err, errlen);
      if (rc < 0)
        return rc;
    }
  }
  return 0;
}

static int load_json(wc_config_t *cfg, const cJSON *root, char *err,
                     size_t errlen) {
  const cJSON *it;
  int rc;
  if (!cJSON_IsObject(root)) {
    snprintf(err, errlen, "the top level must be an object");
    return -EINVAL;
  }
  rc = check_duplicates(root, "", err, errlen);
  if (rc < 0)
    return rc;
  cJSON_ArrayForEach(it, root) {
    const char *k = it->string;
    if (strcmp(k, "listen") == 0) {
      const cJSON *l;
      if (!cJSON_IsObject(it)) {
        snprintf(err, errlen, "listen must be an object");
        return -EINVAL;
      }
      cJSON_ArrayForEach(l, it) {
        if (strcmp(l->string, "host") == 0) {
          if (!cJSON_IsString(l) || l->valuestring[0] == '\0' ||
              strlen(l->valuestring) >= sizeof cfg->host) {
            snprintf(err, errlen, "listen.host must be a non-empty string");
            return -EINVAL;
          }
          snprintf(cfg->host, sizeof cfg->host, "%s", l->valuestring);
        } else if (strcmp(l->string, "port") == 0) {
          int_key_t key = {"listen.port", 0, 65535, &cfg->port, sizeof(int)};
          rc = load_int(&key, l, err, errlen);
          if (rc < 0)
            return rc;
        } else {
          snprintf(err, errlen, "unknown key listen.%s", l->string);
          return -EINVAL;
        }
      }
    } else if (strcmp(k, "workers") == 0) {
      int_key_t key = {"workers", 0, 1024, &cfg->workers, sizeof(unsigned)};
      rc = load_int(&key, it, err, errlen);
      if (rc < 0)
        return rc;
    } else if (strcmp(k, "event_loops") == 0) {
      int_key_t key = {"event_loops", 0, WC_MAX_EVENT_LOOPS, &cfg->event_loops,
                       sizeof(unsigned)};
      rc = load_int(&key, it, err, errlen);
      if (rc < 0)
        return rc;
    } else if (strcmp(k, "worker_nice") == 0) {
      int_key_t key = {"worker_nice", 0, 19, &cfg->worker_nice,
                       sizeof(unsigned)};
      rc = load_int(&key, it, err, errlen);
      if (rc < 0)
        return rc;
    } else if (strcmp(k, "balance_connections") == 0) {
      if (!cJSON_IsBool(it)) {
        snprintf(err, errlen, "balance_connections must be true or false");
        return -EINVAL;
      }
      cfg->balance_connections = cJSON_IsTrue(it);
    } else if (strcmp(k, "limits") == 0) {
      const int_key_t keys[] = {
          {"limits.max_body_bytes", 1, UINT64_C(1) << 50,
           &cfg->limits.max_body_bytes, sizeof(uint64_t)},
          {"limits.max_json_body_bytes", 1, UINT64_C(1) << 40,
           &cfg->limits.max_json_body_bytes, sizeof(uint64_t)},
          {"limits.max_header_bytes", 256, 1 << 24,
           &cfg->limits.max_header_bytes, sizeof(size_t)},
          {"limits.max_connections", 1, 1 << 20, &cfg->limits.max_connections,
           sizeof(unsigned)},
          {"limits.max_needles", 1, WC_MAX_NEEDLES, &cfg->limits.max_needles,
           sizeof(unsigned)},
          {"limits.max_needle_bytes", 1, WC_MAX_NEEDLE_BYTES,
           &cfg->limits.max_needle_bytes, sizeof(unsigned)},
      };
      rc = load_ints(it, "limits", keys, WC_ARRAY_SIZE(keys), err, errlen);
      if (rc < 0)
        return rc;
    } else if (strcmp(k, "timeouts_ms") == 0) {
      const uint64_t day = 86400000;
      const int_key_t keys[] = {
          {"timeouts_ms.header", 1, day, &cfg->timeouts_ms.header,
           sizeof(uint64_t)},
          {"timeouts_ms.body", 1, day, &cfg->timeouts_ms.body,
           sizeof(uint64_t)},
          {"timeouts_ms.keepalive", 1, day, &cfg->timeouts_ms.keepalive,
           sizeof(uint64_t)},
          {"timeouts_ms.shutdown", 1, day, &cfg->timeouts_ms.shutdown,
           sizeof(uint64_t)},
      };
      rc = load_ints(it, "timeouts_ms", keys, WC_ARRAY_SIZE(keys), err, errlen);
      if (rc < 0)
        return rc;
    } else if (strcmp(k, "parallel") == 0) {
      const int_key_t keys[] = {
          {"parallel.min_bytes", 1, UINT64_C(1) << 50, &cfg->parallel_min_bytes,
           sizeof(uint64_t)},
          {"parallel.inline_max_bytes", 0, UINT64_C(1) << 30,
           &cfg->parallel_inline_max_bytes, sizeof(uint64_t)},
      };
      rc = load_ints(it, "parallel", keys, WC_ARRAY_SIZE(keys), err, errlen);
      if (rc < 0)
        return rc;
    } else if (strcmp(k, "log") == 0) {
      const cJSON *l;
      if (!cJSON_IsObject(it)) {
        snprintf(err, errlen, "log must be an object");
        return -EINVAL;
      }
      cJSON_ArrayForEach(l, it) {
        if (strcmp(l->string, "access") == 0) {
          if (!cJSON_IsBool(l)) {
            snprintf(err, errlen, "log.access must be true or false");
            return -EINVAL;
          }
          cfg->log_access = cJSON_IsTrue(l);
        } else if (strcmp(l->string, "level") == 0) {
          static const char *const levels[] = {"error", "warn", "info",
                                               "debug"};
          size_t i = WC_ARRAY_SIZE(levels);
          if (cJSON_IsString(l))
            for (i = 0; i < WC_ARRAY_SIZE(levels); i++)
              if (strcmp(levels[i], l->valuestring) == 0)
                break;
          if (i == WC_ARRAY_SIZE(levels)) {
            snprintf(err, errlen,
                     "log.level must be \"error\", \"warn\", \"info\" or "
                     "\"debug\"");
            return -EINVAL;
          }
          cfg->log_level = (int)i;
        } else if (strcmp(l->string, "format") == 0) {
          if (cJSON_IsString(l) && strcmp(l->valuestring, "common") == 0) {
            cfg->log_format = WC_LOG_FORMAT_COMMON;
          } else if (cJSON_IsString(l) && strcmp(l->valuestring, "json") == 0) {
            cfg->log_format = WC_LOG_FORMAT_JSON;
          } else {
            snprintf(err, errlen, "log.format must be \"common\" or \"json\"");
            return -EINVAL;
          }
        } else if (strcmp(l->string, "file") == 0) {
          if (!cJSON_IsString(l) || l->valuestring[0] == '\0' ||
              strlen(l->valuestring) >= sizeof cfg->log_file) {
            snprintf(err, errlen,
                     "log.file must be \"stdout\", \"stderr\" or a path "
                     "(shorter than %zu bytes)",
                     sizeof cfg->log_file);
            return -EINVAL;
          }
          snprintf(cfg->log_file, sizeof cfg->log_file, "%s", l->valuestring);
        } else {
          snprintf(err, errlen, "unknown key log.%s", l->string);
          return -EINVAL;
        }
      }
    } else if (strcmp(k, "auth") == 0) {
      const cJSON *a;
      if (!cJSON_IsObject(it)) {
        snprintf(err, errlen, "auth must be an object");
        return -EINVAL;
      }
      cJSON_ArrayForEach(a, it) {
        if (strcmp(a->string, "token") == 0) {
          if (!cJSON_IsString(a)) {
            snprintf(err, errlen, "auth.token must be a string");
            return -EINVAL;
          }
          rc = set_token(cfg, "auth.token", a->valuestring, err, errlen);
          if (rc < 0)
            return rc;
        } else {
          snprintf(err, errlen, "unknown key auth.%s", a->string);
          return -EINVAL;
        }
      }
    } else {
      snprintf(err, errlen, "unknown key %s", k);
      return -EINVAL;
    }
  }
  return 0;
}

int wc_config_load_file(wc_config_t *cfg, const char *path, char *err,
                        size_t errlen) {
  char msg[256] = "";
  char *buf = NULL;
  size_t len = 0, cap = 0;
  cJSON *root = NULL;
  const char *end = NULL;
  size_t at = 0;
  int rc, nul;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    rc = -errno;
    snprintf(err, errlen, "config %s: %s", path, strerror(-rc));
    return rc;
  }
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 4096;
      char *n;
      if (ncap > (16u << 20)) {
        snprintf(msg, sizeof msg, "file too large");
        rc = -EFBIG;
        goto fail;
      }
      n = realloc(buf, ncap);
      if (n == NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        rc = -ENOMEM;
        goto fail;
      }
      buf = n;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) {
        snprintf(msg, sizeof msg, "read error");
        rc = -EIO;
        goto fail;
      }
      break;
    }
  }
  /* cJSON would end a string at a \u0000 (or a \u without four hex
   * digits, which it reads as one) and keep only the part before it: an
   * auth.token cut short would accept a prefix of the real one. */
  nul = wc_json_has_nul(buf, len, &at);
  if (nul != 0) {
    if (nul == 1)
      snprintf(msg, sizeof msg,
               "a NUL (a raw byte or \\u0000): a string would be cut there");
    else
      snprintf(msg, sizeof msg,
               "a \\u escape without four hex digits at byte %zu (cJSON "
               "reads \\u0000: a string would be cut there)",
               at);
    rc = -EINVAL;
    goto fail;
  }
  root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
  if (root == NULL) {
    snprintf(msg, sizeof msg, "invalid JSON");
    rc = -EINVAL;
    goto fail;
  }
  while (end < buf + len &&
         (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
    end++;
  if (end != buf + len) {
    snprintf(msg, sizeof msg, "trailing data after the JSON value");
    rc = -EINVAL;
    goto fail;
  }
  rc = load_json(cfg, root, msg, sizeof msg);
  if (rc < 0)
    goto fail;
  cJSON_Delete(root);
  free(buf);
  fclose(f);
  return 0;
fail:
  snprintf(err, errlen, "config %s: %s", path, msg);
  cJSON_Delete(root);
  free(buf);
  fclose(f);
  return rc;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  unsigned long v;
  if (*s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

int wc_config_set(wc_config_t *cfg, const char *key, const char *value,
                  char *err, size_t errlen) {
  unsigned long v;
  if (strcmp(key, "host") == 0) {
    if (value[0] == '\0' || strlen(value) >= sizeof cfg->host) {
      snprintf(err, errlen, "host must be a non-empty address");
      return -EINVAL;
    }
    snprintf(cfg->host, sizeof cfg->host, "%s", value);
    return 0;
  }
  {
    const int_key_t flags[] = {
        {"port", 0, 65535, &cfg->port, sizeof(int)},
        {"workers", 0, 1024, &cfg->workers, sizeof(unsigned)},
        {"event-loops", 0, WC_MAX_EVENT_LOOPS, &cfg->event_loops,
         sizeof(unsigned)},
    };
    for (size_t i = 0; i < WC_ARRAY_SIZE(flags); i++) {
      if (strcmp(key, flags[i].name) != 0)
        continue;
      if (parse_uint(value, (unsigned long)flags[i].max, &v) < 0) {
        snprintf(err, errlen, "%s must be an integer from 0 to %llu: %s", key,
                 (unsigned long long)flags[i].max, value);
        return -EINVAL;
      }
      return store_int(&flags[i], (double)v, err, errlen);
    }
  }
  snprintf(err, errlen, "unknown setting %s", key);
  return -EINVAL;
}

int wc_config_load_env(wc_config_t *cfg, char *err, size_t errlen) {
  static const char *const vars[][2] = {
      {"WORDCOUNT_HOST", "host"},
      {"WORDCOUNT_PORT", "port"},
      {"WORDCOUNT_WORKERS", "workers"},
      {"WORDCOUNT_EVENT_LOOPS", "event-loops"}};
  for (size_t i = 0; i < WC_ARRAY_SIZE(vars); i++) {
    const char *v = getenv(vars[i][0]);
    char msg[200];
    if (v == NULL)
      continue;
    if (wc_config_set(cfg, vars[i][1], v, msg, sizeof msg) < 0) {
      snprintf(err, errlen, "%s: %s", vars[i][0], msg);
      return -EINVAL;
    }
  }
  {
    const char *t = getenv("WORDCOUNT_AUTH_TOKEN");
    if (t != NULL && t[0] != '\0' &&
        set_token(cfg, "WORDCOUNT_AUTH_TOKEN", t, err, errlen) < 0)
      return -EINVAL;
  }
  return 0;
}

int wc_config_apply_workers(wc_config_t *cfg) {
  char buf[16];
  unsigned n = cfg->workers == 0 || cfg->event_loops == 0 ? wc_cpus_usable()
                                                          : 1;
  if (cfg->workers == 0)
    cfg->workers = n > 1024 ? 1024 : n;
  if (cfg->event_loops == 0)
    cfg->event_loops = n > WC_MAX_EVENT_LOOPS ? WC_MAX_EVENT_LOOPS : n;
  snprintf(buf, sizeof buf, "%u", cfg->workers);
  if (setenv("UV_THREADPOOL_SIZE", buf, 1) != 0)
    return -errno;
  return 0;
}
