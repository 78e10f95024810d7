/*
 * test_jsonfast.c - the fast path for large JSON bodies (server/reqparse.c)
 * against the cJSON path, on random bodies built from JSON escape tokens
 * (good and bad \u escapes, surrogates, \u0000, raw NUL and LF, runs of
 * backslashes, spaces), with a fixed seed so that a failure reproduces.
 *
 * For each body that wc_reqparse_json_split takes, the text is decoded in
 * place, whole and in 1-6 slices (wc_split, made safe by wc_json_cuts, in
 * reverse order as pool workers may run them), and:
 *   - decoding succeeds exactly when wc_reqparse_json does, with the same
 *     text (the slices laid end to end);
 *   - on failure the bytes from fail_at on are unchanged, and wc_jbad_error
 *     gives wc_reqparse_json's error message byte for byte;
 *   - no cut has a backslash in the 12 bytes before it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "reqparse.h"
#include "wordcount.h"

#define BODIES 150000

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static unsigned rnd(unsigned n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

static const char *const tokens[] = {
    "\\",
    "u",
    "0",
    "D",
    "8",
    "C",
    "F",
    "n",
    "a",
    " ",
    "\n",
    "\\u",
    "\\uD800",
    "\\uDC00",
    "\\u0000",
    "\\\\",
    "\\n",
    "b",
    "\\uD83D\\uDE00",
    "\\u00e9",
    "z",
    "\\uZZ",
    "\\\"",
    "\\q",
    "\\t",
    "is",
    "\\u002",
    "\\uDBFF ",
    "x\\",
    "\\/",
};

#define NTOK (sizeof tokens / sizeof *tokens)

/* A body {"needle":"a","text":"..."} of random tokens, and now and then a
 * raw NUL byte. */
static size_t make_body(char *body, size_t cap) {
  static const char pre[] = "{\"needle\":\"a\",\"text\":\"";
  size_t len = sizeof pre - 1, b;
  int ntok = 1 + (int)rnd(60);
  memcpy(body, pre, len);
  for (int t = 0; t < ntok && len + 32 < cap; t++) {
    unsigned w = rnd(NTOK + 1);
    if (w == NTOK) {
      body[len++] = '\0';
    } else {
      size_t tl = strlen(tokens[w]);
      memcpy(body + len, tokens[w], tl);
      len += tl;
    }
    if (rnd(3) == 0)
      for (unsigned s = rnd(14); s > 0 && len + 32 < cap; s--)
        body[len++] = rnd(2) ? ' ' : 'x';
  }
  /* an odd run of backslashes would escape the closing quote */
  for (b = len; b > sizeof pre - 1 && body[b - 1] == '\\'; b--)
    ;
  if ((len - b) % 2)
    body[len++] = '\\';
  memcpy(body + len, "\"}", 2);
  return len + 2;
}

static void check_body(const char *body, size_t len, size_t *taken,
                       size_t *failed) {
  wc_reqlimits_t lim = {64, 256};
  wc_countspec_t a, s;
  wc_error_t e;
  size_t vs, ve;
  int ra;
  wc_reqparse_init(&a);
  wc_reqparse_init(&s);
  memset(&e, 0, sizeof e);
  ra = wc_reqparse_json(&a, body, len, &lim, &e);
  if (ra == 0)
    ra = wc_reqparse_finish(&a, WC_BODY_JSON, &e);
  if (!wc_reqparse_json_split(&s, body, len, &lim, &vs, &ve)) {
    wc_reqparse_free(&a);
    wc_reqparse_free(&s);
    return;
  }
  (*taken)++;
  for (size_t k = 1; k <= 6; k++) {
    char *buf = malloc(len);
    size_t cuts[8], dec[8], nk;
    wc_jbad_t jb;
    int fail = 0;
    assert_non_null(buf);
    memcpy(buf, body, len);
    nk = wc_split(buf + vs, ve - vs, k, cuts);
    nk = wc_json_cuts(buf + vs, ve - vs, cuts, nk);
    assert_true(nk >= 1 && nk <= k && cuts[0] == 0 && cuts[nk] == ve - vs);
    for (size_t i = 1; i < nk; i++) {
      assert_true(cuts[i] > cuts[i - 1]);
      for (size_t c = cuts[i] > 12 ? cuts[i] - 12 : 0; c < cuts[i]; c++)
        assert_true(buf[vs + c] != '\\');
    }
    wc_jbad_init(&jb);
    for (size_t i = nk; i-- > 0;) {
      size_t n = 0, at = 0, sl = cuts[i + 1] - cuts[i];
      char *p = buf + vs + cuts[i];
      if (wc_json_unescape(p, sl, p, &n, &at) < 0) {
        assert_true(at < sl);
        assert_memory_equal(p + at, body + vs + cuts[i] + at, sl - at);
        wc_jbad_add(&jb, p, sl, at, vs + cuts[i]);
        fail = 1;
      } else {
        dec[i] = n;
      }
    }
    if ((ra == 0) == fail) {
      fprintf(stderr, "success differs (%d slices): %.*s\n", (int)k, (int)len,
              body);
      fail_msg("fast path and cJSON disagree on success");
    }
    if (fail) {
      wc_error_t ew;
      memset(&ew, 0, sizeof ew);
      wc_jbad_error(&jb, &ew);
      if (ew.kind != e.kind || strcmp(ew.msg, e.msg) != 0) {
        fprintf(stderr, "cJSON: %s\nfast:  %s\nbody:  %.*s\n", e.msg, ew.msg,
                (int)len, body);
        fail_msg("error differs (%d slices)", (int)k);
      }
      (*failed)++;
    } else {
      /* the decoded slices laid end to end are cJSON's text */
      size_t at = 0;
      for (size_t i = 0; i < nk; i++) {
        assert_true(at + dec[i] <= a.text_len);
        assert_memory_equal(buf + vs + cuts[i], a.text + at, dec[i]);
        at += dec[i];
      }
      assert_int_equal(at, a.text_len);
    }
    free(buf);
  }
  wc_reqparse_free(&a);
  wc_reqparse_free(&s);
}

static void run_bodies(int nbodies, const char *what) {
  static char body[4096];
  size_t taken = 0, failed = 0;
  for (int i = 0; i < nbodies; i++) {
    size_t len = make_body(body, sizeof body);
    check_body(body, len, &taken, &failed);
  }
  printf("jsonfast (%s): %zu bodies taken by the fast path, %zu failing "
         "decodes checked\n",
         what, taken, failed);
  assert_true(taken > (size_t)nbodies / 2);
  assert_true(failed > (size_t)nbodies);
}

/* wc_json_unescape's AVX2 loop where the CPU has it (32-byte vectors) */
static void test_fast_path_matches_cjson(void **state) {
  (void)state;
  run_bodies(BODIES, "default loop");
}

/* and its SSE2 loop (16-byte vectors), which other CPUs run */
static void test_fast_path_matches_cjson_sse2(void **state) {
  (void)state;
  wc_json_avx2_allowed = 0;
  run_bodies(BODIES / 3, "SSE2 loop");
  wc_json_avx2_allowed = 1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fast_path_matches_cjson),
      cmocka_unit_test(test_fast_path_matches_cjson_sse2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
