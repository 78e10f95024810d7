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
 *
 * Then the flat path of wc_reqparse_json (small objects of known keys,
 * parsed without cJSON) against the cJSON path (wc_reqparse_flat_allowed
 * 0), on random objects of known and unknown keys, strings with and
 * without escapes, booleans, arrays, numbers, null and nesting, with
 * random whitespace and, in a quarter of them, a byte deleted or inserted:
 * the same return value, the same error message byte for byte, and the
 * same needles, options and text (after an error too).
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

/* Tokens that decode: long texts of them reach wc_json_unescape's chunk
 * loop, which starts after 64 escapes. */
static const char *const good_tokens[] = {
    "\\n",         "\\\\",   "\\\"", "\\t", "\\/",     "is",
    " ",           "a",      "\n",   "b",   "\\u00e9", "\\uD83D\\uDE00",
    "xyzzy plugh", "\\r\\n",
};

#define NGOOD (sizeof good_tokens / sizeof *good_tokens)

/* A body {"needle":"a","text":"..."} or { "text" : "...", "needle":"a"}
 * (the text first, as wc_textscan_t looks for it) of random tokens, and now
 * and then a raw NUL byte; long: up to 1,500 tokens, mostly ones that
 * decode. */
static size_t make_body(char *body, size_t cap, int long_text) {
  static const char pre1[] = "{\"needle\":\"a\",\"text\":\"";
  static const char pre2[] = " {\n \"text\" : \"";
  int first = (int)rnd(2);
  const char *pre = first ? pre2 : pre1;
  size_t plen = first ? sizeof pre2 - 1 : sizeof pre1 - 1;
  size_t len = plen, b;
  int ntok = 1 + (int)rnd(long_text ? 1500 : 60);
  memcpy(body, pre, len);
  for (int t = 0; t < ntok && len + 32 < cap; t++) {
    unsigned w = rnd(NTOK + 1);
    if (long_text && rnd(200) != 0) {
      const char *g = good_tokens[rnd(NGOOD)];
      memcpy(body + len, g, strlen(g));
      len += strlen(g);
      continue;
    }
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
  for (b = len; b > plen && body[b - 1] == '\\'; b--)
    ;
  if ((len - b) % 2)
    body[len++] = '\\';
  if (first) {
    static const char post[] = "\", \"needle\":\"a\"}";
    memcpy(body + len, post, sizeof post - 1);
    return len + sizeof post - 1;
  }
  memcpy(body + len, "\"}", 2);
  return len + 2;
}

static size_t hinted; /* bodies whose text wc_textscan_t found */

/* wc_reqparse_json_split_hint, after the body was fed to wc_textscan_feed
 * in random pieces, gives what wc_reqparse_json_split gives. */
static void check_hint(const char *body, size_t len, int rs,
                       const wc_countspec_t *s, size_t vs, size_t ve) {
  wc_reqlimits_t lim = {64, 256};
  wc_textscan_t ts;
  wc_countspec_t h;
  size_t pos = 0, hvs = 0, hve = 0;
  int rh;
  memset(&ts, 0, sizeof ts);
  while (pos < len) {
    size_t left = len - pos;
    pos += 1 + rnd((unsigned)(left < 40 ? left : 40));
    wc_textscan_feed(&ts, body, pos);
  }
  wc_reqparse_init(&h);
  rh = wc_reqparse_json_split_hint(&h, body, len, &lim, &ts, &hvs, &hve);
  if (ts.state == 2)
    hinted++;
  if (rh != rs || (rs && (hvs != vs || hve != ve || h.n != s->n ||
                          h.flags != s->flags || h.mode != s->mode))) {
    fprintf(stderr, "body: %.*s\nsplit %d [%zu,%zu) hint %d [%zu,%zu)\n",
            (int)len, body, rs, vs, ve, rh, hvs, hve);
    fail_msg("the split with the text found as it arrived differs");
  }
  wc_reqparse_free(&h);
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
  wc_reqparse_flat_allowed = 0; /* the reference: cJSON */
  ra = wc_reqparse_json(&a, body, len, &lim, &e);
  wc_reqparse_flat_allowed = 1;
  if (ra == 0)
    ra = wc_reqparse_finish(&a, WC_BODY_JSON, &e);
  {
    int rs = wc_reqparse_json_split(&s, body, len, &lim, &vs, &ve);
    check_hint(body, len, rs, &s, vs, ve);
  }
  if (s.has_text == 0) { /* not taken by the split */
    wc_reqparse_free(&a);
    wc_reqparse_free(&s);
    return;
  }
  (*taken)++;
  {
    /* the text alone in a buffer of its exact size (ASan: no byte read
     * past it), decoded into a buffer of its own, as the flat path may,
     * also of the exact size, and in place */
    size_t tl = ve - vs, n = 0, at = 0;
    char *raw = malloc(tl ? tl : 1), *out = malloc(tl ? tl : 1);
    assert_non_null(raw);
    assert_non_null(out);
    memcpy(raw, body + vs, tl);
    if (wc_json_unescape(raw, tl, out, &n, &at) == 0) {
      assert_int_equal(ra, 0);
      assert_int_equal(n, a.text_len);
      assert_memory_equal(out, a.text, n);
      assert_int_equal(wc_json_unescape(raw, tl, raw, &n, &at), 0);
      assert_int_equal(n, a.text_len);
      assert_memory_equal(raw, a.text, n);
    } else {
      assert_true(ra != 0 && at < tl);
    }
    free(raw);
    free(out);
  }
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
  static char body[16384];
  size_t taken = 0, failed = 0;
  hinted = 0;
  for (int i = 0; i < nbodies; i++) {
    /* one in 8 long, in a buffer of a size that ends the text anywhere */
    size_t len = i % 8 == 7 ? make_body(body, 4096 + rnd(12288), 1)
                            : make_body(body, 4096, 0);
    check_body(body, len, &taken, &failed);
  }
  printf("jsonfast (%s): %zu bodies taken by the fast path, %zu failing "
         "decodes checked, %zu texts found as the body arrived\n",
         what, taken, failed, hinted);
  assert_true(hinted > (size_t)nbodies / 4);
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

/* ---- the flat path */

#define FLAT_BODIES 200000

static const char *const keys[] = {
    "\"text\"",     "\"needle\"",      "\"needles\"",    "\"mode\"",
    "\"boundary\"", "\"ignore_case\"", "\"te\\u0078t\"", "\"other\"",
    "\"Text\"",     "\"needle \"",
};
static const char *const strs[] = {
    "\"is\"",
    "\"a b\"",
    "\"\\u00e9t\\u00e9\"",
    "\"\xc3\xa9t\xc3\xa9\"",
    "\"\\n\"",
    "\"parallel\"",
    "\"sequential\"",
    "\"auto\"",
    "\"word\"",
    "\"space\"",
    "\"x\\q\"",
    "\"\xff\"",
    "\"\"",
    "\"is this is it\\r\\nis\"",
    "\"\\\"is\\\"\"",
    "\"\\\\\"",
    "\"\\uD83D\\uDE00\"",
    "\"\\uD800\"",
    "\"a\x01"
    "b\"",
    "\"par\\u0061llel\"",
    "\"IS\"",
    "\"is\\/it\"",
    "\"\\t\"",
};
static const char *const others[] = {
    "true", "false",     "tru", "null",     "1",     "-0.5e3",
    "{}",   "{\"a\":1}", "[]",  "[\"is\"]", "truex",
};
static const char *const spaces[] = {"",   "",   "",      " ",
                                     "\t", "\n", "\r\n ", "\x01"};

#define PICK(a) (a)[rnd(sizeof(a) / sizeof *(a))]

static size_t put(char *b, size_t n, size_t cap, const char *t) {
  size_t l = strlen(t);
  if (n + l >= cap)
    return n;
  memcpy(b + n, t, l);
  return n + l;
}

/* A random object, mostly of the shape clients send. */
static size_t make_flat_body(char *b, size_t cap) {
  size_t n = 0;
  unsigned members = rnd(6);
  if (rnd(50) == 0)
    n = put(b, n, cap, "\xef\xbb\xbf");
  n = put(b, n, cap, PICK(spaces));
  n = put(b, n, cap, rnd(40) ? "{" : "[");
  for (unsigned m = 0; m < members; m++) {
    unsigned v = rnd(10);
    if (m > 0)
      n = put(b, n, cap, ",");
    n = put(b, n, cap, PICK(spaces));
    n = put(b, n, cap, PICK(keys));
    n = put(b, n, cap, PICK(spaces));
    n = put(b, n, cap, ":");
    n = put(b, n, cap, PICK(spaces));
    if (v < 6) {
      n = put(b, n, cap, PICK(strs));
    } else if (v < 8) {
      n = put(b, n, cap, PICK(others));
    } else {
      unsigned k = rnd(5);
      n = put(b, n, cap, "[");
      for (unsigned i = 0; i < k; i++) {
        if (i > 0)
          n = put(b, n, cap, ",");
        n = put(b, n, cap, PICK(spaces));
        n = put(b, n, cap, rnd(12) ? PICK(strs) : PICK(others));
        n = put(b, n, cap, PICK(spaces));
      }
      n = put(b, n, cap, "]");
    }
    n = put(b, n, cap, PICK(spaces));
  }
  n = put(b, n, cap, "}");
  n = put(b, n, cap, PICK(spaces));
  if (rnd(4) == 0) { /* a byte deleted or inserted */
    size_t at = rnd((unsigned)n + 1);
    if (rnd(2) && at < n) {
      memmove(b + at, b + at + 1, n - at - 1);
      n--;
    } else if (n + 1 < cap) {
      static const char ins[] = "{}[],:\"\\ tx0";
      memmove(b + at + 1, b + at, n - at);
      b[at] = ins[rnd(sizeof ins - 1)];
      n++;
    }
  }
  return n;
}

static void spec_equal(const wc_countspec_t *a, const wc_countspec_t *b,
                       const char *body, size_t len) {
  int same = a->n == b->n && a->flags == b->flags && a->mode == b->mode &&
             a->has_text == b->has_text && a->text_len == b->text_len &&
             (!a->has_text || memcmp(a->text, b->text, a->text_len + 1) == 0);
  for (size_t i = 0; same && i < a->n; i++)
    same = a->lens[i] == b->lens[i] &&
           memcmp(a->needles[i], b->needles[i], a->lens[i] + 1) == 0;
  if (!same) {
    fprintf(stderr, "body: %.*s\n", (int)len, body);
    fail_msg("flat path and cJSON give different specs");
  }
}

static void test_flat_path_matches_cjson(void **state) {
  static char body[512];
  size_t ok = 0, bad = 0;
  (void)state;
  for (int i = 0; i < FLAT_BODIES; i++) {
    size_t len = make_flat_body(body, sizeof body);
    wc_reqlimits_t lim = {1 + rnd(4), 2 + rnd(8)};
    wc_countspec_t a, b;
    wc_error_t ea, eb;
    char room_a[16], room_b[16], body_a[sizeof body], body_b[sizeof body];
    const char *pa = body, *pb = body;
    int ra, rb, room = (int)rnd(3);
    wc_reqparse_init(&a);
    wc_reqparse_init(&b);
    if (room == 1) { /* the caller's room for a short text */
      a.text_room = room_a;
      b.text_room = room_b;
      a.text_room_cap = b.text_room_cap = sizeof room_a;
    } else if (room == 2) { /* the body's own buffer, as job.c lends it */
      memcpy(body_a, body, len);
      memcpy(body_b, body, len);
      pa = a.text_room = body_a;
      pb = b.text_room = body_b;
      a.text_room_cap = b.text_room_cap = sizeof body_a;
    }
    if (rnd(3) == 0) { /* options and a needle from the query string */
      a.flags = b.flags = WC_IGNORE_CASE;
      a.mode = b.mode = WC_MODE_PARALLEL;
      assert_int_equal(wc_reqparse_query(&a, "needle=is", 9, &lim, &ea), 0);
      assert_int_equal(wc_reqparse_query(&b, "needle=is", 9, &lim, &eb), 0);
    }
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    ra = wc_reqparse_json(&a, pa, len, &lim, &ea);
    wc_reqparse_flat_allowed = 0;
    rb = wc_reqparse_json(&b, pb, len, &lim, &eb);
    wc_reqparse_flat_allowed = 1;
    if (ra != rb ||
        (ra < 0 && (ea.kind != eb.kind || strcmp(ea.msg, eb.msg) != 0))) {
      fprintf(stderr, "body:  %.*s\nflat:  %d %s\ncJSON: %d %s\n", (int)len,
              body, ra, ra < 0 ? ea.msg : "", rb, rb < 0 ? eb.msg : "");
      fail_msg("flat path and cJSON disagree");
    }
    spec_equal(&a, &b, body, len); /* after an error too: the same changes */
    if (ra == 0)
      ok++;
    else
      bad++;
    wc_reqparse_free(&a);
    wc_reqparse_free(&b);
  }
  printf("jsonfast (flat): %zu bodies parsed, %zu errors, both paths alike\n",
         ok, bad);
  assert_true(ok > FLAT_BODIES / 10 && bad > FLAT_BODIES / 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fast_path_matches_cjson),
      cmocka_unit_test(test_fast_path_matches_cjson_sse2),
      cmocka_unit_test(test_flat_path_matches_cjson),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
