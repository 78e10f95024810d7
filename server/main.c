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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "wordcount.h"

static uv_signal_t sig_term, sig_int, sig_hup;
static wc_server_t srv;

static void usage(FILE *f) {
  fprintf(f, "usage: wordcount-server [--config FILE] [--host H] [--port P] "
             "[--workers N]\n"
             "                        [--help] [--version]\n"
             "Counts words over HTTP: POST /count, GET /healthz, GET /readyz,\n"
             "GET /metrics.\n"
             "  --config FILE  JSON configuration (see config.example.json)\n"
             "  --host H       address to listen on (default 127.0.0.1)\n"
             "  --port P       port (default 8080; 0 picks a free one)\n"
             "  --workers N    counting threads (default 0: one per CPU)\n"
             "Environment: WORDCOUNT_HOST, WORDCOUNT_PORT, WORDCOUNT_WORKERS,\n"
             "WORDCOUNT_AUTH_TOKEN (bearer token for /count and /metrics).\n"
             "SIGTERM/SIGINT drain and exit; SIGHUP reopens log.file.\n"
             "Precedence: defaults < config file < environment < flags.\n");
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  if (srv.draining) {
    /* A second signal: stop at once. */
    wc_log_flush();
    fprintf(stderr, "wordcount-server: second signal, exiting now\n");
    _exit(signum == SIGINT ? 130 : 1);
  }
  wc_server_shutdown(&srv);
}

static void on_sighup(uv_signal_t *s, int signum) {
  int rc;
  (void)s;
  (void)signum;
  rc = wc_log_reopen(); /* after logrotate moved the access log away */
  if (rc < 0)
    wc_log(WC_LOG_ERROR, "reopening log.file: %s", strerror(-rc));
}

static void on_stopped(wc_server_t *s) {
  (void)s;
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
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
  static const char *const keys[] = {"host", "port", "workers"};
  wc_config_t cfg;
  const char *config_path = NULL;
  char err[512];
  uv_loop_t loop;
  int rc, code;

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

  rc = uv_loop_init(&loop);
  if (rc < 0) {
    fprintf(stderr, "wordcount-server: uv_loop_init: %s\n", uv_strerror(rc));
    return 1;
  }
  if (wc_log_init(cfg.log_level, cfg.log_access, cfg.log_format, cfg.log_file,
                  err, sizeof err) < 0) {
    fprintf(stderr, "wordcount-server: %s\n", err);
    uv_loop_close(&loop);
    return 2;
  }
  /* Signals are handled before the address is printed: whoever reads the
   * "listening on" line may signal us at once. */
  uv_signal_init(&loop, &sig_term);
  uv_signal_init(&loop, &sig_int);
  uv_signal_init(&loop, &sig_hup);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_hup, on_sighup, SIGHUP);
  rc = wc_server_start(&srv, &loop, &cfg, on_stopped);
  if (rc < 0) {
    on_stopped(&srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  wc_log(WC_LOG_INFO, "%u worker(s), kernel %s", cfg.workers, wc_kernel_name());

  uv_run(&loop, UV_RUN_DEFAULT);

  code = srv.exit_code;
  wc_log_flush();
  rc = uv_loop_close(&loop);
  if (rc < 0) {
    fprintf(stderr, "wordcount-server: uv_loop_close: %s\n", uv_strerror(rc));
    code = 1;
  }
  return code;
}
