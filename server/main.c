/*
 * main.c - command line, signals, exit codes. Only this file ends the
 * process.
 *
 * Exit codes: 0 after a clean shutdown; 1 when the shutdown timed out, the
 * server could not start, or a second signal ended it at once; 2 for usage
 * and configuration errors.
 */
#include <errno.h>
#include <llhttp.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "util.h"
#include "wordcount.h"

/*
 * THREADS: event loop 0 runs on the main thread and owns the signal
 * handles; loops 1..N-1 (event_loops) run on their own threads. A signal
 * asks every loop to shut down (wc_server_request_shutdown); each loop's
 * on_stopped counts itself and wakes loop 0, which closes the signal
 * handles once all have stopped (so a second signal still ends the process
 * while any loop drains). After the threads are joined, main closes what is
 * left of each loop and exits with the worst exit code.
 */
typedef struct {
  uv_loop_t loop;
  uv_thread_t thread;
  int loop_ok, thread_ok;
  wc_server_t srv;
} loop_t;

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_async_t all_stopped;
static atomic_uint nstopped;
static loop_t *loops;
static wc_shared_t shared;

/*
 * MEMORY: glibc serves an allocation of M_MMAP_THRESHOLD bytes or more with
 * its own mmap and gives it back to the kernel on free. By default the
 * threshold moves: each free of such a mapping raises it to that size (up to
 * 32 MiB), so after the first large body the 1 MiB body blocks and JSON
 * buffers come from the arenas' heaps, where a freed chunk below a live one
 * stays resident. A 10-minute `make soak` then saw the main heap grow in
 * 1-2 MiB steps (8.8 -> 14.3 MiB, RSS +14.3% over the second half) and keep
 * it after the clients left. A fixed 1 MiB threshold keeps every block and
 * large buffer in a mapping of its own; the per-loop block and buffer pools
 * (job.c) already spare the hot paths the cost of a fresh mapping. A
 * threshold set in the environment (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES)
 * wins.
 */
#define WC_MMAP_THRESHOLD (1024 * 1024)
static void fix_mmap_threshold(void) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  const char *t = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_MMAP_THRESHOLD_") != NULL ||
      (t != NULL && strstr(t, "mmap_threshold") != NULL))
    return;
  mallopt(M_MMAP_THRESHOLD, WC_MMAP_THRESHOLD);
#endif
}

static void usage(FILE *f) {
  fprintf(f, "usage: wordcount-server [--config FILE] [--host H] [--port P] "
             "[--workers N]\n"
             "                        [--event-loops N] [--help] [--version]\n"
             "Counts words over HTTP: POST /count, GET /healthz, GET /readyz,\n"
             "GET /metrics.\n"
             "  --config FILE  JSON configuration (see config.example.json)\n"
             "  --host H       address to listen on (default 127.0.0.1)\n"
             "  --port P       port (default 8080; 0 picks a free one)\n"
             "  --workers N    counting threads (default 0: one per CPU)\n"
             "  --event-loops N  event loops, one thread each (default 0: one\n"
             "                 per CPU)\n"
             "Environment: WORDCOUNT_HOST, WORDCOUNT_PORT, WORDCOUNT_WORKERS,\n"
             "WORDCOUNT_EVENT_LOOPS, "
             "WORDCOUNT_AUTH_TOKEN (bearer token for /count and /metrics).\n"
             "SIGTERM/SIGINT drain and exit; SIGHUP reopens log.file.\n"
             "Precedence: defaults < config file < environment < flags.\n");
}

static void on_signal(uv_signal_t *s, int signum) {
  static int signalled;
  (void)s;
  if (signalled) {
    /* A second signal: stop at once, with the shell's status for a death
     * by that signal (130 for SIGINT, 143 for SIGTERM). */
    wc_log_flush();
    fprintf(stderr, "wordcount-server: second signal, exiting now\n");
    _exit(128 + signum);
  }
  signalled = 1;
  for (unsigned i = 0; i < shared.n; i++)
    wc_server_request_shutdown(&loops[i].srv);
}

static void on_sighup(uv_signal_t *s, int signum) {
  int rc;
  (void)s;
  (void)signum;
  rc = wc_log_reopen(); /* after logrotate moved the access log away */
  if (rc < 0)
    wc_log(WC_LOG_ERROR, "reopening log.file: %s", strerror(-rc));
}

/* Loop 0: every loop has stopped. */
static void on_all_stopped(uv_async_t *a) {
  if (atomic_load(&nstopped) < shared.n)
    return;
  uv_close((uv_handle_t *)a, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
}

/* A loop's server has stopped (on that loop's thread). */
static void on_stopped(wc_server_t *s) {
  (void)s;
  atomic_fetch_add(&nstopped, 1);
  uv_async_send(&all_stopped);
}

static void run_loop(void *arg) {
  loop_t *l = arg;
  uv_run(&l->loop, UV_RUN_DEFAULT);
}

/* "--name value" or "--name=value": returns the value or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] != '\0')
    return NULL;
  if (*i + 1 >= argc) {
    fprintf(stderr, "wordcount-server: %s needs a value\n", name);
    exit(2);
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  static const char *const keys[] = {"host", "port", "workers", "event-loops"};
  wc_config_t cfg;
  const char *config_path = NULL;
  char err[512];
  int rc, code;

  fix_mmap_threshold();
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("wordcount-server %s (libuv %s, llhttp %d.%d.%d, %s kernel)\n",
             WC_VERSION, uv_version_string(), LLHTTP_VERSION_MAJOR,
             LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH, wc_kernel_name());
      return 0;
    }
    if ((v = flag_value(argc, argv, &i, "--config")) != NULL) {
      config_path = v;
      continue;
    }
    int known = 0;
    for (size_t k = 0; k < WC_ARRAY_SIZE(keys); k++) {
      char name[16];
      snprintf(name, sizeof name, "--%s", keys[k]);
      if (flag_value(argc, argv, &i, name) != NULL) {
        known = 1;
        break;
      }
    }
    if (!known) {
      fprintf(stderr, "wordcount-server: unknown argument %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }

  wc_config_defaults(&cfg);
  if (config_path != NULL &&
      wc_config_load_file(&cfg, config_path, err, sizeof err) < 0) {
    fprintf(stderr, "wordcount-server: %s\n", err);
    return 2;
  }
  if (wc_config_load_env(&cfg, err, sizeof err) < 0) {
    fprintf(stderr, "wordcount-server: %s\n", err);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (flag_value(argc, argv, &i, "--config") != NULL)
      continue;
    for (size_t k = 0; k < WC_ARRAY_SIZE(keys); k++) {
      char name[16];
      snprintf(name, sizeof name, "--%s", keys[k]);
      if ((v = flag_value(argc, argv, &i, name)) != NULL) {
        if (wc_config_set(&cfg, keys[k], v, err, sizeof err) < 0) {
          fprintf(stderr, "wordcount-server: --%s\n", err);
          return 2;
        }
        break;
      }
    }
  }

  /* Before anything can queue work: libuv sizes its pool on first use. */
  rc = wc_config_apply_workers(&cfg);
  if (rc < 0) {
    fprintf(stderr, "wordcount-server: setenv: %s\n", strerror(-rc));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  if (wc_log_init(cfg.log_level, cfg.log_access, cfg.log_format, cfg.log_file,
                  err, sizeof err) < 0) {
    fprintf(stderr, "wordcount-server: %s\n", err);
    return 2;
  }
  loops = calloc(cfg.event_loops, sizeof *loops);
  shared.servers = calloc(cfg.event_loops, sizeof *shared.servers);
  if (loops == NULL || shared.servers == NULL) {
    fprintf(stderr, "wordcount-server: out of memory\n");
    return 1;
  }
  shared.n = cfg.event_loops;
  wc_metrics_set_loops(shared.n);
  for (unsigned i = 0; i < shared.n; i++)
    shared.servers[i] = &loops[i].srv;

  code = 0;
  for (unsigned i = 0; i < shared.n && code == 0; i++) {
    rc = uv_loop_init(&loops[i].loop);
    if (rc < 0) {
      fprintf(stderr, "wordcount-server: uv_loop_init: %s\n", uv_strerror(rc));
      code = 1;
      break;
    }
    loops[i].loop_ok = 1;
    if (i == 0) {
      /* Signals are handled before the address is printed: whoever reads
       * the "listening on" line may signal us at once. */
      uv_async_init(&loops[0].loop, &all_stopped, on_all_stopped);
      uv_signal_init(&loops[0].loop, &sig_term);
      uv_signal_init(&loops[0].loop, &sig_int);
      uv_signal_init(&loops[0].loop, &sig_hup);
      uv_signal_start(&sig_term, on_signal, SIGTERM);
      uv_signal_start(&sig_int, on_signal, SIGINT);
      uv_signal_start(&sig_hup, on_sighup, SIGHUP);
    }
    if (wc_server_start(&loops[i].srv, &loops[i].loop, &cfg, &shared, i,
                        on_stopped) < 0)
      code = 1;
  }
  if (code != 0) {
    /* Could not start: close what was opened, on this thread. */
    for (unsigned i = 0; i < shared.n; i++) {
      if (!loops[i].loop_ok)
        continue;
      loops[i].srv.on_stopped = NULL;
      if (loops[i].srv.handles_open == 3)
        wc_server_shutdown(&loops[i].srv);
      else
        wc_server_close(&loops[i].srv);
      if (i == 0) {
        atomic_store(&nstopped, shared.n);
        on_all_stopped(&all_stopped);
      }
      uv_run(&loops[i].loop, UV_RUN_DEFAULT);
      wc_server_close(&loops[i].srv);
      uv_run(&loops[i].loop, UV_RUN_DEFAULT);
      uv_loop_close(&loops[i].loop);
    }
    return 1;
  }
  wc_server_announce(&loops[0].srv);
  {
    int now, target, incr = (int)cfg.worker_nice;
    if (wc_job_worker_nice(cfg.worker_nice, &now, &target) == 0)
      incr = target - now; /* the increment in effect */
    wc_log(WC_LOG_INFO,
           "%u event loop(s), %u worker(s) at nice +%d, kernel %s", shared.n,
           cfg.workers, incr, wc_kernel_name());
  }

  for (unsigned i = 1; i < shared.n; i++) {
    rc = uv_thread_create(&loops[i].thread, run_loop, &loops[i]);
    if (rc < 0) {
      wc_log(WC_LOG_ERROR, "cannot start event loop %u: %s", i,
             uv_strerror(rc));
      on_signal(NULL, SIGTERM); /* the others drain and stop */
      run_loop(&loops[i]);      /* this one on the main thread */
      continue;
    }
    loops[i].thread_ok = 1;
  }
  uv_run(&loops[0].loop, UV_RUN_DEFAULT);

  code = 0;
  for (unsigned i = 0; i < shared.n; i++) {
    if (loops[i].thread_ok)
      uv_thread_join(&loops[i].thread);
  }
  wc_log_flush();
  for (unsigned i = 0; i < shared.n; i++) {
    wc_server_close(&loops[i].srv);
    uv_run(&loops[i].loop, UV_RUN_DEFAULT);
    if (loops[i].srv.exit_code > code)
      code = loops[i].srv.exit_code;
    rc = uv_loop_close(&loops[i].loop);
    if (rc < 0) {
      fprintf(stderr, "wordcount-server: uv_loop_close: %s\n", uv_strerror(rc));
      code = 1;
    }
  }
  free(loops);
  free(shared.servers);
  return code;
}
