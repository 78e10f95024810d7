/*
 * test_diff.c - differential test of the core against the reference:
 * thousands of random texts from a small alphabet chosen to hit every rule
 * (CR/LF handling, spaces, tabs, case folding with length changes, word
 * constituents, invalid UTF-8), random needle sets of 1..70 needles in every
 * flag combination, through every entry point (wc_count, streaming with
 * random chunks, wc_split slices, cut functions, wc_count_parallel).
 * The seed is printed; WC_TEST_SEED=<seed> repeats a run, WC_TEST_ITERS
 * changes the number of texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/check.h"
#include "support/ref.h"
#include "wordcount.h"
#include "internal.h" /* WC_FORCE_SSE2, WC_FORCE_SCALAR */

static uint64_t g_seed;

static const char *const alphabet[] = {
    "a", "b", "is", " ", "\n", "\r", "\t", "I", "S", "s", "k",
    "\xc3\xa9",     /* é */
    "\xc3\x89",     /* É */
    "\xc5\xbf",     /* ſ, folds to s */
    "\xe2\x84\xaa", /* Kelvin sign, folds to k */
    "_", "-", ",", "\xff", "\xc3", "\xa9", "\x00", "1",
};
#define NALPHA (sizeof alphabet / sizeof alphabet[0])

static size_t piece_len(size_t i) { return i == 21 ? 1 : strlen(alphabet[i]); }

/* Appends random pieces; separators are frequent so that words are short
 * and matches common. */
static size_t random_text(ref_rng_t *r, unsigned char *buf, size_t max_pieces) {
  size_t n = ref_rng_below(r, max_pieces + 1), len = 0;
  for (size_t i = 0; i < n; i++) {
    size_t p;
    uint64_t roll = ref_rng_below(r, 10);
    if (roll < 3)
      p = 3; /* ' ' */
    else if (roll < 4)
      p = ref_rng_below(r, 3) ? 4 : 5; /* '\n' or '\r' */
    else
      p = ref_rng_below(r, NALPHA);
    memcpy(buf + len, alphabet[p], piece_len(p));
    len += piece_len(p);
  }
  return len;
}

/* A needle: a run of pieces, or a word or substring of the text. */
static size_t random_needle(ref_rng_t *r, const unsigned char *text, size_t len,
                            unsigned char *out) {
  for (;;) {
    size_t nl = 0;
    if (len > 0 && ref_rng_below(r, 2) == 0) {
      size_t a = ref_rng_below(r, len);
      size_t max = 1 + ref_rng_below(r, 8);
      while (a + nl < len && nl < max && text[a + nl] != ' ' && text[a + nl] != '\n')
        nl++;
      memcpy(out, text + a, nl);
    } else {
      size_t k = 1 + ref_rng_below(r, 4);
      for (size_t i = 0; i < k; i++) {
        size_t p = ref_rng_below(r, NALPHA);
        if (p == 3 || p == 4)
          continue;
        memcpy(out + nl, alphabet[p], piece_len(p));
        nl += piece_len(p);
      }
    }
    if (nl > 0)
      return nl;
  }
}

static uint64_t lib_count_one(const void *needle, size_t nlen, unsigned flags,
                              const void *text, size_t len) {
  wc_needles_t *set = NULL;
  const char *nd[1] = {needle};
  uint64_t c = 0;
  if (wc_needles_new(&set, nd, &nlen, 1, flags, NULL) != 0)
    return UINT64_MAX;
  if (wc_count(set, text, len, &c) != 0)
    c = UINT64_MAX - 1;
  wc_needles_free(set);
  return c;
}

/*
 * When wc_count disagrees with the reference for some needle, removes byte
 * ranges from the text as long as the disagreement stays, and prints the
 * smallest input found: that is what goes into a bug report.
 */
static void shrink_and_report(const char *const *nd, const size_t *nl, size_t n,
                              unsigned flags, const unsigned char *text,
                              size_t len) {
  for (size_t i = 0; i < n; i++) {
    if (lib_count_one(nd[i], nl[i], flags, text, len) ==
        ref_count_one(nd[i], nl[i], flags, text, len))
      continue;
    unsigned char *t = malloc(len + 1), *tmp = malloc(len + 1);
    assert_non_null(t);
    assert_non_null(tmp);
    memcpy(t, text, len);
    size_t tl = len;
    for (size_t chunk = tl / 2 ? tl / 2 : 1; chunk >= 1; chunk /= 2) {
      for (size_t a = 0; a + chunk <= tl;) {
        memcpy(tmp, t, a);
        memcpy(tmp + a, t + a + chunk, tl - a - chunk);
        size_t ml = tl - chunk;
        if (lib_count_one(nd[i], nl[i], flags, tmp, ml) !=
            ref_count_one(nd[i], nl[i], flags, tmp, ml)) {
          memcpy(t, tmp, ml);
          tl = ml;
        } else {
          a++;
        }
      }
      if (chunk == 1)
        break;
    }
    char tq[512], nq[256];
    check_quote(tq, sizeof tq, t, tl);
    check_quote(nq, sizeof nq, nd[i], nl[i]);
    print_error("MINIMAL: flags %u, needle %s, text %s: wc_count %llu, "
                "reference %llu\n", flags, nq, tq,
                (unsigned long long)lib_count_one(nd[i], nl[i], flags, t, tl),
                (unsigned long long)ref_count_one(nd[i], nl[i], flags, t, tl));
    free(t);
    free(tmp);
    return;
  }
}

static void run_differential(uint64_t seed, int iters, size_t max_pieces,
                             unsigned paths) {
  ref_rng_t r = {seed};
  size_t cap = max_pieces * 4 + 16;
  unsigned char *text = malloc(cap);
  unsigned char *store = malloc(70 * 64);
  assert_non_null(text);
  assert_non_null(store);
  const char *nd[70];
  size_t nl[70];
  uint64_t want[70];
  char why[512];
  for (int it = 0; it < iters; it++) {
    size_t len = random_text(&r, text, max_pieces);
    size_t n = 1 + ref_rng_below(&r, ref_rng_below(&r, 4) == 0 ? 70 : 6);
    for (size_t i = 0; i < n; i++) {
      if (i > 0 && ref_rng_below(&r, 10) == 0) { /* a duplicate */
        size_t j = ref_rng_below(&r, i);
        nd[i] = nd[j];
        nl[i] = nl[j];
        continue;
      }
      unsigned char *o = store + 64 * i;
      nl[i] = random_needle(&r, text, len, o);
      nd[i] = (const char *)o;
    }
    for (unsigned flags = 0; flags < 4; flags++) {
      memset(want, 0, sizeof want);
      ref_count(nd, nl, n, flags, text, len, want);
      wc_needles_t *set = NULL;
      size_t ei = 0;
      /* Every third text goes through the SSE2 kernel and every third
       * through the scalar one (test-only flags from core/internal.h):
       * this machine would otherwise test only the AVX2 kernel. */
      static const unsigned kernel[3] = {0, WC_FORCE_SSE2, WC_FORCE_SCALAR};
      int rc = wc_needles_new(&set, nd, nl, n, flags | kernel[it % 3], &ei);
      if (rc != 0)
        fail_msg("wc_needles_new = %d at needle %zu (seed %llu, iteration %d)",
                 rc, ei, (unsigned long long)seed, it);
      if (check_paths(set, text, len, want, paths, &r, why, sizeof why) != 0) {
        char tq[1024], nq[256];
        check_quote(tq, sizeof tq, text, len);
        print_error("seed %llu (WC_TEST_SEED=%llu to repeat), iteration %d\n",
                    (unsigned long long)seed, (unsigned long long)seed, it);
        print_error("text (%zu bytes): %s\n", len, tq);
        for (size_t i = 0; i < n; i++) {
          check_quote(nq, sizeof nq, nd[i], nl[i]);
          print_error("needle %zu: %s (ref count %llu)\n", i, nq,
                      (unsigned long long)want[i]);
        }
        wc_needles_free(set);
        shrink_and_report(nd, nl, n, flags, text, len);
        fail_msg("flags %u%s%s: %s", flags, flags & WC_IGNORE_CASE ? " IGNORE_CASE" : "",
                 flags & WC_BOUNDARY_WORD ? " BOUNDARY_WORD" : "", why);
      }
      wc_needles_free(set);
    }
  }
  free(text);
  free(store);
}

static int iters_from_env(int dflt) {
  const char *e = getenv("WC_TEST_ITERS");
  return e != NULL && atoi(e) > 0 ? atoi(e) : dflt;
}

/* Short texts: every path, thousands of times. */
static void test_diff_short_texts(void **state) {
  (void)state;
  run_differential(g_seed, iters_from_env(3000), 60, CHECK_ALL);
}

/* Texts of a few hundred bytes: vector loops see full blocks. */
static void test_diff_medium_texts(void **state) {
  (void)state;
  run_differential(g_seed + 1, iters_from_env(3000) / 4, 400,
                   CHECK_COUNT | CHECK_STREAM | CHECK_SPLIT | CHECK_CUTS);
}

/* Texts big enough that wc_count_parallel really uses threads. */
static void test_diff_parallel(void **state) {
  (void)state;
  ref_rng_t r = {g_seed + 2};
  size_t cap = 300000 * 4;
  unsigned char *text = malloc(cap);
  assert_non_null(text);
  const char *nd[4] = {"is", "\xc3\xa9", "a", "_"};
  size_t nl[4] = {2, 2, 1, 1};
  char why[512];
  for (int it = 0; it < 6; it++) {
    size_t len = random_text(&r, text, 100000 + ref_rng_below(&r, 200000));
    for (unsigned flags = 0; flags < 4; flags++) {
      uint64_t want[4] = {0, 0, 0, 0};
      ref_count(nd, nl, 4, flags, text, len, want);
      wc_needles_t *set = NULL;
      assert_int_equal(wc_needles_new(&set, nd, nl, 4, flags, NULL), 0);
      for (int rep = 0; rep < 3; rep++)
        if (check_paths(set, text, len, want, CHECK_PARALLEL | CHECK_SPLIT, &r,
                        why, sizeof why) != 0) {
          wc_needles_free(set);
          fail_msg("text of %zu bytes, flags %u: %s (seed %llu)", len, flags,
                   why, (unsigned long long)g_seed);
        }
      wc_needles_free(set);
    }
  }
  free(text);
}

/*
 * Tiny texts (under 64 bytes over the number of needles), exact and in
 * space mode, as small requests carry them: wc_count takes its word-by-word
 * path (count_tiny, which finds a word's end 8 bytes at a time), so the
 * texts here have words of 1-12 bytes, with CR, LF and CR LF around them.
 */
static void test_diff_tiny_texts(void **state) {
  static const char *const pieces[] = {"is", "i",    "s",        " ", "\n",
                                       "\r", "\r\n", "abcdefgh", "x", "  "};
  ref_rng_t r = {g_seed + 3};
  unsigned char text[64];
  (void)state;
  for (int it = 0; it < iters_from_env(3000) * 10; it++) {
    const char *nd[3] = {"is", "abcdefgh", "\r"};
    size_t nl[3] = {2, 8, 1}, n = 1 + ref_rng_below(&r, 3), len = 0;
    uint64_t want[3] = {0, 0, 0}, got[3] = {0, 0, 0};
    wc_needles_t *set = NULL;
    while (len < 63 / n) {
      const char *p = pieces[ref_rng_below(&r, 10)];
      size_t pl = strlen(p);
      if ((len + pl) * n >= 64 || ref_rng_below(&r, 16) == 0)
        break;
      memcpy(text + len, p, pl);
      len += pl;
    }
    if (ref_rng_below(&r, 2)) { /* the needle of one of its words */
      size_t a = ref_rng_below(&r, len + 1), b = a;
      while (b < len && text[b] != ' ' && text[b] != '\n' && b - a < 12)
        b++;
      if (b > a) {
        nd[0] = (const char *)text + a;
        nl[0] = b - a;
      }
    }
    ref_count(nd, nl, n, 0, text, len, want);
    assert_int_equal(wc_needles_new(&set, nd, nl, n, 0, NULL), 0);
    assert_int_equal(wc_count(set, text, len, got), 0);
    wc_needles_free(set);
    for (size_t j = 0; j < n; j++)
      if (got[j] != want[j]) {
        char tq[512], nq[64];
        check_quote(tq, sizeof tq, text, len);
        check_quote(nq, sizeof nq, nd[j], nl[j]);
        fail_msg("tiny text %s, needle %s: wc_count %llu, reference %llu "
                 "(seed %llu)",
                 tq, nq, (unsigned long long)got[j],
                 (unsigned long long)want[j], (unsigned long long)g_seed);
      }
  }
}

static int setup(void **state) {
  (void)state;
  g_seed = ref_seed_from_env();
  print_message("test_diff seed: %llu (WC_TEST_SEED to repeat)\n",
                (unsigned long long)g_seed);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_diff_short_texts),
      cmocka_unit_test(test_diff_medium_texts),
      cmocka_unit_test(test_diff_parallel),
      cmocka_unit_test(test_diff_tiny_texts),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
