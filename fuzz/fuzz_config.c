/*
 * fuzz_config.c - libFuzzer target: the configuration loader of
 * server/config.c on arbitrary bytes.
 *
 * The whole input is the file: it is written to a memfd (no disk) and
 * loaded with wc_config_load_file("/proc/self/fd/N"), the loader the server
 * uses. The input, NUL-terminated, is also given to wc_config_set as the
 * value of each flag (host, port, workers), as from the command line.
 * Checked: no crash, leak or undefined behaviour; a failure returns a
 * negative errno with a non-empty message; a success leaves every value in
 * its documented range.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "wordcount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const uint8_t *in, size_t len) {
  fprintf(stderr, "fuzz_config: %s (input of %zu bytes:", what, len);
  for (size_t i = 0; i < len && i < 256; i++)
    fprintf(stderr, " %02x", in[i]);
  fprintf(stderr, ")\n");
  abort();
}

static void check_ranges(const wc_config_t *c, const uint8_t *in, size_t len) {
  size_t hl = strnlen(c->host, sizeof c->host);
  if (hl == 0 || hl == sizeof c->host)
    die("host empty or not NUL-terminated", in, len);
  if (c->port < 0 || c->port > 65535 || c->workers > 1024)
    die("port or workers out of range", in, len);
  if (c->limits.max_body_bytes < 1 || c->limits.max_json_body_bytes < 1 ||
      c->limits.max_header_bytes < 256 ||
      c->limits.max_header_bytes > (1u << 24) ||
      c->limits.max_connections < 1 || c->limits.max_needles < 1 ||
      c->limits.max_needles > WC_MAX_NEEDLES ||
      c->limits.max_needle_bytes < 1 ||
      c->limits.max_needle_bytes > WC_MAX_NEEDLE_BYTES)
    die("a limit out of range", in, len);
  if (c->timeouts_ms.header < 1 || c->timeouts_ms.body < 1 ||
      c->timeouts_ms.keepalive < 1 || c->timeouts_ms.shutdown < 1 ||
      c->parallel_min_bytes < 1)
    die("a timeout or parallel.min_bytes out of range", in, len);
  if (c->log_level < WC_LOG_ERROR || c->log_level > WC_LOG_DEBUG ||
      (c->log_access != 0 && c->log_access != 1))
    die("log settings out of range", in, len);
}

static void check_err(int rc, const char *err, const uint8_t *in, size_t len) {
  if (rc >= 0)
    die("error path returned >= 0", in, len);
  if (err[0] == '\0')
    die("error without a message", in, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  static const char *const keys[] = {"host", "port", "workers"};
  wc_config_t cfg;
  char err[512];
  char *val;
  int rc;
  if (fd < 0) {
    fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (fd < 0)
      abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 ||
      (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
    abort();
  wc_config_defaults(&cfg);
  err[0] = '\0';
  rc = wc_config_load_file(&cfg, path, err, sizeof err);
  if (rc == 0)
    check_ranges(&cfg, data, size);
  else
    check_err(rc, err, data, size);

  val = malloc(size + 1);
  if (val == NULL)
    abort();
  memcpy(val, data, size);
  val[size] = '\0';
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    wc_config_defaults(&cfg);
    err[0] = '\0';
    rc = wc_config_set(&cfg, keys[k], val, err, sizeof err);
    if (rc == 0)
      check_ranges(&cfg, data, size);
    else
      check_err(rc, err, data, size);
  }
  free(val);
  return 0;
}
