/*
 * test_log.c - the access-log line formatter (server/log.c,
 * wc_log_format_access), which formats by hand, against a plain snprintf
 * reference: the code it replaced, kept here. Table-driven edge cases, then
 * random lines with hostile targets, peers, request ids and error messages,
 * extreme numbers and every kind of rounding of the duration. JSON lines are
 * also parsed back with cJSON, field by field.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cJSON.h>
#include <cmocka.h>

#include "config.h"
#include "errors.h"
#include "log.h"

#define RID_MAX 128 /* WC_REQUEST_ID_MAX (http.h) */

/* ---- the reference: the snprintf formatter as it was ---- */

static void ref_safe_copy(char *dst, size_t cap, const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    dst[n++] = (ch > 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
  }
  dst[n] = '\0';
}

static size_t ref_common(char *line, size_t cap, const wc_access_t *a) {
  char target[256];
  int len;
  ref_safe_copy(target, sizeof target, a->target, a->target_len);
  len = snprintf(line, cap, "%s \"%s %s\" %d %llu %zu %.3fms id=%s", a->peer,
                 a->method, target, a->status, (unsigned long long)a->bytes_in,
                 a->bytes_out, (double)a->ns / 1e6, a->request_id);
  if ((size_t)len < cap && a->error_code != NULL) {
    char msg[200];
    size_t i, n = 0;
    for (i = 0; a->error_msg[i] != '\0' && n + 1 < sizeof msg; i++) {
      unsigned char ch = (unsigned char)a->error_msg[i];
      msg[n++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
    }
    msg[n] = '\0';
    len += snprintf(line + len, cap - (size_t)len, " error=%s \"%s\"",
                    a->error_code, msg);
  }
  return (size_t)len;
}

/* The JSON line from "peer" on (the time differs from call to call), with
 * the caps of the old code: its line was cap bytes, of which the time took
 * the first 33. */
static size_t ref_json_tail(char *line, size_t cap, const wc_access_t *a) {
  size_t pos;
  cap -= 33;
  int n = snprintf(line, cap, "\",\"peer\":\"%s\",\"method\":\"", a->peer);
  pos = (size_t)n;
  wc_errors_json_escape(line, cap - 200, &pos, a->method, strlen(a->method));
  pos += (size_t)snprintf(line + pos, cap - pos, "\",\"target\":\"");
  wc_errors_json_escape(line, cap - 400, &pos, a->target,
                        a->target_len > 300 ? 300 : a->target_len);
  n = snprintf(line + pos, cap - pos,
               "\",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%zu,"
               "\"duration_ms\":%.3f,\"request_id\":\"%s\"",
               a->status, (unsigned long long)a->bytes_in, a->bytes_out,
               (double)a->ns / 1e6, a->request_id);
  pos += (size_t)n;
  if (a->error_code != NULL) {
    n = snprintf(line + pos, cap - pos, ",\"error\":\"%s\",\"message\":\"",
                 a->error_code);
    pos += (size_t)n;
    wc_errors_json_escape(line, cap - 8, &pos, a->error_msg,
                          strlen(a->error_msg));
    line[pos++] = '"';
  }
  line[pos++] = '}';
  line[pos] = '\0';
  return pos;
}

/* ---- checks ---- */

/* "YYYY-MM-DDTHH:MM:SS.mmm" now, by gmtime and strftime. */
static void utc_now(char *out) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + 19, 5, ".%03d", (int)(tv.tv_usec / 1000));
}

static void check_line(const wc_access_t *a) {
  char got[1536], want[4096], t0[24], t1[24];
  size_t n = wc_log_format_access(got, sizeof got - 1, a, WC_LOG_FORMAT_COMMON);
  size_t m = ref_common(want, sizeof want, a);
  got[n] = '\0';
  if (n != m || memcmp(got, want, n) != 0)
    fail_msg("common line differs (ns %" PRIu64 "):\n got %s\nwant %s", a->ns,
             got, want);
  assert_null(memchr(got, '\n', n));

  utc_now(t0);
  n = wc_log_format_access(got, sizeof got - 1, a, WC_LOG_FORMAT_JSON);
  utc_now(t1);
  m = ref_json_tail(want, sizeof got - 1, a);
  assert_true(n > 33);
  got[n] = '\0';
  /* {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ" then the rest; such times compare
   * as strings, so the line's lies between the clock before and after */
  assert_memory_equal(got, "{\"time\":\"", 9);
  assert_int_equal(got[32], 'Z');
  if (memcmp(t0, got + 9, 23) > 0 || memcmp(got + 9, t1, 23) > 0)
    fail_msg("time %.24s not between %s and %s", got + 9, t0, t1);
  if (n - 33 != m || memcmp(got + 33, want, m) != 0)
    fail_msg("JSON line differs:\n got %s\nwant %s", got + 33, want);
  assert_null(memchr(got, '\n', n));

  cJSON *j = cJSON_Parse(got);
  if (j == NULL)
    fail_msg("not JSON: %s", got);
  assert_int_equal(cJSON_GetObjectItem(j, "status")->valuedouble, a->status);
  assert_string_equal(cJSON_GetObjectItem(j, "peer")->valuestring, a->peer);
  assert_string_equal(cJSON_GetObjectItem(j, "request_id")->valuestring,
                      a->request_id);
  if (a->error_code != NULL)
    assert_string_equal(cJSON_GetObjectItem(j, "error")->valuestring,
                        a->error_code);
  cJSON_Delete(j);
}

static wc_access_t base(void) {
  wc_access_t a;
  memset(&a, 0, sizeof a);
  a.peer = "127.0.0.1:5000";
  a.method = "POST";
  a.target = "/count?needle=is";
  a.target_len = strlen(a.target);
  a.request_id = "abc-123";
  a.status = 200;
  a.bytes_in = 13;
  a.bytes_out = 92;
  a.ns = 123456;
  return a;
}

static void test_table(void **state) {
  (void)state;
  static const uint64_t ns[] = {0,      1,       499,        501,
                                999,    1000,    1499,       999499,
                                999501, 1000000, 1234567890, 999999999999ull};
  wc_access_t a = base();
  char got[64];
  for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
    a.ns = ns[i];
    check_line(&a);
  }
  /* Halves round up: 0.0005 ms is printed as 0.001. */
  a.ns = 500;
  wc_log_format_access(got, sizeof got, &a, WC_LOG_FORMAT_COMMON);
  assert_non_null(strstr(got, " 0.001ms "));
  a.ns = 1999500;
  wc_log_format_access(got, sizeof got, &a, WC_LOG_FORMAT_COMMON);
  assert_non_null(strstr(got, " 2.000ms "));
  a = base();
  a.bytes_in = UINT64_MAX;
  a.bytes_out = SIZE_MAX;
  check_line(&a);
  a.status = -1;
  check_line(&a);
  a.status = 0;
  check_line(&a);
  a = base();
  a.target = "";
  a.target_len = 0;
  a.method = "-";
  check_line(&a);
  a.target = "/a b\"c\x01\x7f\xc3\xa9";
  a.target_len = 10;
  check_line(&a);
  a.error_code = "bad_request";
  a.error_msg = "say \"hi\"\n\tthen \\ go";
  check_line(&a);
  a.error_msg = "";
  check_line(&a);
}

static void fill(char *s, size_t n, unsigned mode) {
  for (size_t i = 0; i < n; i++) {
    unsigned r = (unsigned)rand();
    s[i] = mode == 0   ? (char)(0x21 + r % 94)
           : mode == 1 ? (char)(1 + r % 255)
           : mode == 2 ? "ab \"\\\n\x01\xc3\xa9~"[r % 10]
                       : "0123456789.:_-abcxyzABCXYZ"[r % 26];
  }
  s[n] = '\0';
}

static void test_random(void **state) {
  (void)state;
  static const char *const methods[] = {"GET", "POST",      "PUT",
                                        "-",   "PROPPATCH", "DELETE"};
  static const char *const codes[] = {"bad_request", "payload_too_large",
                                      "internal"};
  char peer[64], target[420], rid[RID_MAX + 1], msg[260];
  srand(20261127);
  for (int it = 0; it < 20000; it++) {
    wc_access_t a;
    unsigned r = (unsigned)rand();
    memset(&a, 0, sizeof a);
    /* peers ("IP:port") and request ids ([A-Za-z0-9._-], http.c) are ours */
    fill(peer, (size_t)rand() % 48, 3);
    a.peer = peer;
    a.method = methods[r % 6];
    a.target_len = (size_t)rand() % 400;
    fill(target, a.target_len, (r >> 3) % 3);
    a.target = target;
    fill(rid, (size_t)rand() % (RID_MAX + 1), 3);
    a.request_id = rid;
    a.status = 100 + rand() % 500;
    a.bytes_in = ((uint64_t)rand() << 31 ^ (uint64_t)rand()) >> (rand() % 60);
    a.bytes_out = (size_t)rand() >> (rand() % 31);
    a.ns = ((uint64_t)rand() << 20 ^ (uint64_t)rand()) >> (rand() % 50);
    if (a.ns % 1000 == 500)
      a.ns++; /* exact halves: %.3f rounds the binary value (see table) */
    if (r % 4 == 0) {
      a.error_code = codes[r / 4 % 3];
      fill(msg, (size_t)rand() % 250, (r >> 5) % 3);
      a.error_msg = msg;
    }
    check_line(&a);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
