/*
 * config.h - server configuration. Precedence: built-in defaults, then the
 * JSON file (--config), then the environment (WORDCOUNT_HOST, WORDCOUNT_PORT,
 * WORDCOUNT_WORKERS, WORDCOUNT_EVENT_LOOPS, WORDCOUNT_AUTH_TOKEN), then
 * command-line flags. Every
 * key is optional in the file; an unknown key or a bad value is an error
 * naming the key.
 */
#ifndef WC_CONFIG_H
#define WC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum { WC_LOG_ERROR = 0, WC_LOG_WARN, WC_LOG_INFO, WC_LOG_DEBUG };
enum { WC_LOG_FORMAT_COMMON = 0, WC_LOG_FORMAT_JSON };

/* Longest accepted auth.token (RFC 6750 b64token characters). */
#define WC_AUTH_TOKEN_MAX 256
/* Most event loops (threads accepting connections). */
#define WC_MAX_EVENT_LOOPS 64

typedef struct {
  char host[256];
  int port;
  unsigned workers; /* 0: one per CPU (resolved by wc_config_apply_workers) */
  /* Event loops, each on its own thread with its own SO_REUSEPORT listener;
   * 0: one per CPU (resolved by wc_config_apply_workers). */
  unsigned event_loops;
  /* A loop that accepts a connection while another loop has fewer hands
   * it over (server.c). */
  int balance_connections;
  /* How much lower the worker pool's threads run than the event loops: a
   * nice increment over the process's own nice value (0-19, capped at 19),
   * set by each worker on its first job (job.c). Default 5, from
   * bench/http/hol.py. */
  unsigned worker_nice;
  struct {
    uint64_t max_body_bytes;
    uint64_t max_json_body_bytes;
    size_t max_header_bytes;
    unsigned max_connections;
    unsigned max_needles;
    unsigned max_needle_bytes;
  } limits;
  struct {
    uint64_t header, body, keepalive, shutdown;
  } timeouts_ms;
  uint64_t parallel_min_bytes;
  /* Bodies up to this size are counted on the event loop, not in the pool
   * (default 64 KiB, from bench/http/sweep.sh). */
  uint64_t parallel_inline_max_bytes;
  int log_access;
  int log_level;
  int log_format;     /* WC_LOG_FORMAT_* */
  char log_file[512]; /* "stdout", "stderr" or a path */
  /* Bearer token for /count and /metrics; empty: no authentication. */
  char auth_token[WC_AUTH_TOKEN_MAX + 1];
} wc_config_t;

/* Fills cfg with the defaults of config.example.json. */
void wc_config_defaults(wc_config_t *cfg);

/*
 * Loads the JSON file at path over cfg. Returns 0, or a negative errno with
 * a message naming the file and the key in err (errlen bytes).
 */
int wc_config_load_file(wc_config_t *cfg, const char *path, char *err,
                        size_t errlen);

/* Applies WORDCOUNT_HOST/PORT/WORKERS/AUTH_TOKEN (an empty token variable
 * counts as unset). Returns 0 or -EINVAL with err set. */
int wc_config_load_env(wc_config_t *cfg, char *err, size_t errlen);

/* Parses a flag value: "host", "port", "workers" or "event-loops".
 * 0 or -EINVAL. */
int wc_config_set(wc_config_t *cfg, const char *key, const char *value,
                  char *err, size_t errlen);

/*
 * Resolves workers == 0 and event_loops == 0 to the number of CPUs the
 * process may use (wc_cpus_usable: its affinity, lowered to a cgroup CPU
 * quota), exports
 * UV_THREADPOOL_SIZE, which libuv reads once, on the first use of its pool:
 * call this before anything queues work. Returns 0 or a negative errno.
 */
int wc_config_apply_workers(wc_config_t *cfg);

#endif
