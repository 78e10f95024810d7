/*
 * test_core.c - hand-checked edge cases of the counting core, needle-set
 * errors, and matches at every offset around the 16/32/64-byte vector
 * boundaries and at the very end (and start) of a mapping whose
 * neighbouring pages are PROT_NONE, so that any over-read faults.
 *
 * Every expected count in the table was worked out by hand from the
 * specification in wordcount.h; the reference (support/ref.c) is checked
 * against the same table, and every entry point (wc_count, streaming,
 * wc_split slices, wc_count_parallel) must agree with it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/check.h"
#include "support/ref.h"
#include "wordcount.h"

#define I WC_IGNORE_CASE
#define W WC_BOUNDARY_WORD
#define S(lit) lit, sizeof(lit) - 1

static uint64_t g_seed;

/* ---- guarded memory ------------------------------------------------------ */

/* [PROT_NONE page][data pages][PROT_NONE page]; data is the middle. */
typedef struct {
  unsigned char *base;
  unsigned char *data;
  size_t data_len;
  size_t map_len;
} guard_t;

static void guard_init(guard_t *g, size_t min_len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  g->data_len = (min_len + page - 1) / page * page;
  if (g->data_len == 0)
    g->data_len = page;
  g->map_len = g->data_len + 2 * page;
  void *p = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(p != MAP_FAILED);
  g->base = p;
  g->data = g->base + page;
  assert_int_equal(mprotect(g->base, page, PROT_NONE), 0);
  assert_int_equal(mprotect(g->data + g->data_len, page, PROT_NONE), 0);
}

static void guard_free(guard_t *g) { munmap(g->base, g->map_len); }

/* A copy of s[0..len) that ends right before the trailing guard page. */
static unsigned char *guard_at_end(guard_t *g, const void *s, size_t len) {
  assert_true(len <= g->data_len);
  unsigned char *p = g->data + g->data_len - len;
  if (len)
    memcpy(p, s, len);
  return p;
}

/* A copy of s[0..len) that starts right after the leading guard page. */
static unsigned char *guard_at_start(guard_t *g, const void *s, size_t len) {
  assert_true(len <= g->data_len);
  if (len)
    memcpy(g->data, s, len);
  return g->data;
}

/* ---- helpers ------------------------------------------------------------- */

static wc_needles_t *make_set(const char *const *nd, const size_t *lens,
                              size_t n, unsigned flags) {
  wc_needles_t *set = NULL;
  size_t ei = 12345;
  int rc = wc_needles_new(&set, nd, lens, n, flags, &ei);
  if (rc != 0)
    fail_msg("wc_needles_new(n=%zu, flags=%u) = %d (index %zu)", n, flags, rc, ei);
  assert_non_null(set);
  assert_int_equal(wc_needles_count(set), n);
  assert_int_equal(wc_needles_flags(set), flags);
  return set;
}

/* Checks every path of the library and the reference against expect[]. */
static void expect_counts(const char *const *nd, const size_t *lens, size_t n,
                          unsigned flags, const void *text, size_t len,
                          const uint64_t *expect, const char *label) {
  char why[512], q[256];
  uint64_t *r = calloc(n, sizeof *r);
  assert_non_null(r);
  ref_count(nd, lens, n, flags, text, len, r);
  for (size_t i = 0; i < n; i++)
    if (r[i] != expect[i]) {
      check_quote(q, sizeof q, text, len);
      fail_msg("REFERENCE disagrees with the table (%s): text %s flags %u "
               "needle %zu: ref %llu, table %llu",
               label, q, flags, i, (unsigned long long)r[i],
               (unsigned long long)expect[i]);
    }
  free(r);

  wc_needles_t *set = make_set(nd, lens, n, flags);
  ref_rng_t rng = {g_seed ^ len};
  /* Several times, so that random chunkings and slice counts vary. */
  for (int rep = 0; rep < 8; rep++)
    if (check_paths(set, text, len, expect, CHECK_ALL, &rng, why, sizeof why) != 0) {
      char nq[128];
      check_quote(q, sizeof q, text, len);
      check_quote(nq, sizeof nq, nd[0], lens[0]);
      wc_needles_free(set);
      fail_msg("%s: text %s, needle[0] %s, flags %u%s%s: %s (seed %llu)", label,
               q, nq, flags, flags & I ? " IGNORE_CASE" : "",
               flags & W ? " BOUNDARY_WORD" : "", why,
               (unsigned long long)g_seed);
    }
  wc_needles_free(set);
}

/* ---- the table ------------------------------------------------------------ */

#define MAXN 4
typedef struct {
  const char *text;
  size_t len;
  unsigned flags;
  size_t n;
  const char *nd[MAXN];
  size_t nlen[MAXN];
  uint64_t want[MAXN];
} edge_t;

/* One needle given as a literal (so it may contain NUL bytes). */
#define E1(txt, fl, ndl, w) {S(txt), fl, 1, {ndl}, {sizeof(ndl) - 1}, {w}}

static const edge_t edges[] = {
    /* The example of the header, in every mode. */
    E1("Is is is,\r\nis\r", 0, "is", 1),
    E1("Is is is,\r\nis\r", I, "is", 2),
    E1("Is is is,\r\nis\r", W, "is", 3),
    E1("Is is is,\r\nis\r", I | W, "is", 4),
    /* CRLF, lone CR, final CR. */
    E1("a\r\nb", 0, "a", 1),
    E1("a\r\nb", 0, "b", 1),
    E1("a\rb", 0, "a", 0),
    E1("a\rb", 0, "a\rb", 1),
    E1("a\r", 0, "a", 0),
    E1("a\r", 0, "a\r", 1),
    E1("a\r", W, "a\r", 1),
    E1("a\r\n", 0, "a\r", 0),
    E1("a\r\n", W, "a\r", 0),
    E1("a\r\n", W, "a", 1),
    E1("a\r\r\n", 0, "a\r", 1),
    E1("a\r\r\n", 0, "a", 0),
    E1("a\r\r\n", W, "a", 1), /* the '\r' after "a" is a non-word char */
    E1("a \r\n", 0, "a", 1),
    E1("\r \r\r\n", 0, "\r", 2),
    E1("\r\n\r\n", 0, "\r", 0),
    E1("x\r\n\r", 0, "\r", 1),
    E1("\n\n\n", 0, "a", 0),
    E1("a\n\na\n", 0, "a", 2),
    /* Spaces and tabs. */
    E1("a  a", 0, "a", 2),
    E1("  a  ", 0, "a", 1),
    E1("a\ta a", 0, "a", 1),
    E1("a\ta a", 0, "a\ta", 1),
    E1("a\ta a", W, "a", 3),
    E1("a\ta a", W, "a\ta", 1),
    /* Empty text, text equal to the needle, needle at the start and end. */
    E1("", 0, "a", 0),
    E1("", I | W, "a", 0),
    E1("abc", 0, "abc", 1),
    E1("abc", I, "ABC", 1),
    E1("abc", W, "abc", 1),
    E1("abc x abc", 0, "abc", 2),
    E1("abc\nx\nabc", W, "abc", 2),
    E1("a", 0, "a", 1),
    E1("a", 0, "ab", 0),
    E1("ab", 0, "a", 0),
    /* Candidate overlaps. */
    E1("aaa", 0, "aa", 0),
    E1("aaa", W, "aa", 0),
    E1("aa aaa aa", 0, "aa", 2),
    E1("aa aaa aa", W, "aa", 2),
    E1("a-a-a", 0, "a-a", 0),
    E1("a-a-a", W, "a-a", 1),
    E1("x-a-a", W, "a-a", 1),
    E1("xa-a-a", W, "a-a", 1),
    E1("aa-aa-aa", W, "aa-aa", 1),
    E1("a-a a-a", 0, "a-a", 2),
    E1("ab abab ab", W, "ab", 2),
    E1("isis is", W, "is", 1),
    E1("ab ab", W, "b", 0),
    E1("--", W, "-", 2),
    E1("---", W, "--", 1),
    E1("a -b", W, "-b", 1),
    E1("a-b", W, "-b", 0),
    E1("a-", W, "-", 0),
    E1("-a", W, "-", 0),
    E1(".a.", W, ".", 0),
    E1(". .", W, ".", 2),
    /* Word constituents. */
    E1("foo_bar foo", W, "foo", 1),
    E1("foo-bar foo", W, "foo", 2),
    E1("foo1 1foo", W, "foo", 0),
    E1("\xc3\xa9" "foo foo\xc3\xa9", W, "foo", 0),        /* é is Ll */
    E1("\xe2\x80\x94" "foo\xe2\x80\x94", W, "foo", 1),    /* em dash Pd */
    E1("\xe2\x82\xac" "foo \xc2\xb2" "foo", W, "foo", 2), /* €, ² (No) */
    E1("\xe2\x85\xb7" "foo", W, "foo", 0),                /* U+2177 Nl */
    E1("\xd9\xa3" "foo", W, "foo", 0),                    /* U+0663 Nd */
    E1("\xca\xb0" "foo", W, "foo", 0),                    /* U+02B0 Lm */
    E1("\xe4\xb8\xad" "foo", W, "foo", 0),                /* U+4E2D Lo */
    E1("\xcc\x81" "foo", W, "foo", 0),                    /* U+0301 Mn */
    E1("foo\xcc\x81 foo", W, "foo", 1), /* a mark ends no word: fo + o\u0301 */
    E1("e\xcc\x81 e", W, "e", 1),
    E1("\xe0\xa4\x95\xe0\xa4\xbf\xe0\xa4\xa4\xe0\xa4\xbe\xe0\xa4\xac "
       "\xe0\xa4\x95",
       W, "\xe0\xa4\x95", 1),            /* KA in KITAB (vowel sign Mc): no */
    E1("\xe2\x83\x9d" "foo", W, "foo", 0), /* U+20DD enclosing circle Me */
    E1("\xffis\xff", W, "is", 1),                         /* invalid bytes */
    E1("\xc3is", W, "is", 1),
    E1("is\xc3", W, "is", 1),
    E1("\x00is\x00", W, "is", 1),
    E1("a\nis\r\nb", W, "is", 1),
    /* Case folding. */
    E1("\xc3\x89" "COLE \xc3\xa9" "cole Ecole", I, "\xc3\xa9" "cole", 2),
    E1("\xc3\x89" "COLE \xc3\xa9" "cole Ecole", 0, "\xc3\xa9" "cole", 1),
    E1("\xc5\xbf S s", I, "s", 3),                 /* ſ folds to s */
    E1("\xc5\xbf S s", I, "\xc5\xbf", 3),
    E1("\xe2\x84\xaa k K", I, "k", 3),             /* Kelvin sign */
    E1("\xe2\x84\xaa k K", I, "\xe2\x84\xaa", 3),
    E1("\xe2\x84\xaa k K", 0, "k", 1),
    E1("KELVIN \xe2\x84\xaa" "elvin", I | W, "kelvin", 2),
    E1("\xe1\xba\x9e \xc3\x9f ss", I, "\xc3\x9f", 2), /* ẞ folds to ß only */
    E1("\xce\xa3 \xcf\x83 \xcf\x82", I, "\xcf\x83", 3), /* Σ σ ς */
    E1("\xc4\xb0 i I", I, "i", 2),                  /* İ has no C/S folding */
    E1("\xff \xc3 \xc3\xa9 \xc3\x89", I, "\xc3", 1), /* invalid bytes exact */
    E1("\xff \xc3 \xc3\xa9 \xc3\x89", I, "\xc3\xa9", 2),
    E1("\xff \xc3 \xc3\xa9 \xc3\x89", 0, "\xc3", 1),
    E1("\xff \xc3 \xc3\xa9 \xc3\x89", I, "\xff", 1),
    E1("A\xff" "B a\xff" "b", I, "a\xff" "b", 2),
    E1("A\xc3" "B a\xc3" "b", I | W, "a\xc3" "b", 2),
    /* NUL bytes in needles and text. */
    E1("a\0b a", 0, "a\0b", 1),
    E1("a\0b a", 0, "a", 1),
    E1("a\0b a", W, "a", 2),
    E1("\0 \0\0", 0, "\0", 1),
    /* Non-ASCII needles. */
    E1("\xe4\xb8\xad\xe6\x96\x87 \xe4\xb8\xad", 0, "\xe4\xb8\xad", 1),
    E1("\xe4\xb8\xad\xe6\x96\x87 \xe4\xb8\xad", W, "\xe4\xb8\xad", 1),
    E1("\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\xf0\x9f\x98\x80", W, "\xf0\x9f\x98\x80", 3),
    /* Several needles, duplicates get their own count. */
    {S("a b a"), 0, 4, {"a", "b", "a", "c"}, {1, 1, 1, 1}, {2, 1, 2, 0}},
    {S("a b a"), W, 3, {"a", "a", "b"}, {1, 1, 1}, {2, 2, 1}},
    {S("Is is IS"), I, 2, {"is", "IS"}, {2, 2}, {3, 3}},
    {S("aaa aa a"), W, 3, {"a", "aa", "aaa"}, {1, 2, 3}, {1, 1, 1}},
    {S("aaa aa a"), 0, 3, {"aaa", "aa", "a"}, {3, 2, 1}, {1, 1, 1}},
};

static void test_edge_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
    const edge_t *e = &edges[i];
    char label[64];
    snprintf(label, sizeof label, "edge case #%zu", i);
    /* The empty text is given a real pointer: the API needs none, but a
     * NULL would test nothing more. */
    expect_counts(e->nd, e->nlen, e->n, e->flags, e->text, e->len, e->want, label);
  }
}

/* Every edge case once more, right before a guard page and right after one. */
static void test_edge_table_guarded(void **state) {
  (void)state;
  guard_t g, gn;
  guard_init(&g, 4096);
  guard_init(&gn, 4096);
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
    const edge_t *e = &edges[i];
    char label[64];
    const char *nd[MAXN];
    for (int where = 0; where < 2; where++) {
      unsigned char *t = where ? guard_at_start(&g, e->text, e->len)
                               : guard_at_end(&g, e->text, e->len);
      /* The first needle also ends at a guard page. */
      memcpy(nd, e->nd, sizeof nd);
      nd[0] = (const char *)guard_at_end(&gn, e->nd[0], e->nlen[0]);
      snprintf(label, sizeof label, "edge case #%zu at the %s of a page", i,
               where ? "start" : "end");
      expect_counts(nd, e->nlen, e->n, e->flags, t, e->len, e->want, label);
    }
  }
  guard_free(&g);
  guard_free(&gn);
}

/*
 * Word mode with needles that are not valid UTF-8, where GNU grep -w (3.8,
 * LC_ALL=C.UTF-8, -a, with and without -i) decides at character
 * boundaries: a match must start at a character start, but may end inside
 * a character. Every expected count here was observed with grep -aow[i].
 */
static void test_word_mode_invalid_needles(void **state) {
  (void)state;
  static const edge_t cases[] = {
      E1("\xc3\xa9", W, "\xa9", 0),     /* starts inside e-acute */
      E1("\xc3\xa9", I | W, "\xa9", 0),
      E1("x\xc5\xbf", W, "\xbf", 0),    /* inside long s */
      E1("\xe2\x84\xaa", W, "\x84\xaa", 0),
      E1("\xc3\x89\xc3\xa9", I | W, "\xa9\xc3\xa9", 0),
      E1("\xc3\xa9", W, "\xc3", 1),     /* ends inside e-acute */
      E1("\xc3\xa9", I | W, "\xc3", 1),
      E1("\xc3\x89", I | W, "\xc3", 1),
      E1("\xc3\x89\xc3\xa9", W, "\xc3", 1),
      /* With -i the text is folded first: the Kelvin sign is "k" then, and
       * grep (which gives 1 here) differs; see the README. */
      E1("\xe2\x84\xaa", I | W, "\xe2", 0),
      E1("\xe2\x84\xaa", W, "\xe2", 1),
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const edge_t *e = &cases[i];
    uint64_t got = ref_count_one(e->nd[0], e->nlen[0], e->flags, e->text, e->len);
    if (got != e->want[0]) /* the reference must agree with grep */
      fail_msg("reference: case %zu counts %llu", i, (unsigned long long)got);
    wc_needles_t *set = make_set(e->nd, e->nlen, 1, e->flags);
    got = 0;
    assert_int_equal(wc_count(set, e->text, e->len, &got), 0);
    wc_needles_free(set);
    if (got != e->want[0]) {
      char tq[64], nq[64];
      check_quote(tq, sizeof tq, e->text, e->len);
      check_quote(nq, sizeof nq, e->nd[0], e->nlen[0]);
      print_error("flags %u needle %s text %s: wc_count %llu, grep -ow %llu\n",
                  e->flags, nq, tq, (unsigned long long)got,
                  (unsigned long long)e->want[0]);
      bad++;
    }
  }
  if (bad)
    fail_msg("%d word-mode cases differ from grep -w", bad);
}

/* ---- offsets around vector widths ----------------------------------------- */

/*
 * For each needle length and each offset 0..130, a text of filler words
 * with one match at that offset, ending at several distances from the end
 * of a guarded mapping. Filler is "x" runs that never match.
 */
static void test_match_at_every_offset(void **state) {
  (void)state;
  static const size_t nlens[] = {1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100};
  static const size_t tails[] = {0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65};
  static const unsigned modes[] = {0, I, W, I | W};
  guard_t g;
  guard_init(&g, 8192);
  unsigned char text[512], needle[128];
  for (size_t a = 0; a < sizeof nlens / sizeof nlens[0]; a++) {
    size_t nl = nlens[a];
    for (size_t k = 0; k < nl; k++)
      needle[k] = (unsigned char)('a' + k % 26);
    if (nl > 1)
      needle[0] = 'A'; /* differs in case from the text below */
    const char *nd[1] = {(const char *)needle};
    wc_needles_t *sets[4];
    for (size_t m = 0; m < 4; m++)
      sets[m] = make_set(nd, &nl, 1, modes[m]);
    for (size_t off = 0; off <= 130; off++) {
      for (size_t ti = 0; ti < sizeof tails / sizeof tails[0]; ti++) {
        size_t tail = tails[ti];
        size_t len = off + nl + tail;
        for (size_t k = 0; k < len; k++)
          text[k] = (k % 9 == 8) ? ' ' : 'x';
        if (off > 0)
          text[off - 1] = off % 2 ? ' ' : '\n';
        memcpy(text + off, needle, nl);
        if (nl > 1)
          text[off] = 'a';
        if (tail > 0)
          text[off + nl] = tail % 2 ? ' ' : '\n';
        for (size_t m = 0; m < 4; m++) {
          unsigned flags = modes[m];
          uint64_t want = (flags & I) || nl == 1 ? 1 : 0;
          unsigned char *t = guard_at_end(&g, text, len);
          wc_needles_t *set = sets[m];
          uint64_t got = 0;
          assert_int_equal(wc_count(set, t, len, &got), 0);
          if (got != want)
            fail_msg("needle of %zu bytes at offset %zu, %zu bytes after it, "
                     "flags %u: counted %llu, expected %llu",
                     nl, off, tail, flags, (unsigned long long)got,
                     (unsigned long long)want);
          /* The same text starting right after a guard page, and with a
           * second copy of the match straddling the end of the buffer cut
           * one byte short. */
          t = guard_at_start(&g, text, len);
          got = 0;
          assert_int_equal(wc_count(set, t, len, &got), 0);
          assert_int_equal(got, want);
          if (tail == 0) {
            t = guard_at_end(&g, text, len - 1);
            got = 0;
            assert_int_equal(wc_count(set, t, len - 1, &got), 0);
            uint64_t want_short = ref_count_one(needle, nl, flags, text, len - 1);
            if (got != want_short)
              fail_msg("truncated match: needle %zu bytes at %zu, flags %u: "
                       "counted %llu, expected %llu", nl, off, flags,
                       (unsigned long long)got, (unsigned long long)want_short);
          }
        }
      }
    }
    for (size_t m = 0; m < 4; m++)
      wc_needles_free(sets[m]);
  }
  guard_free(&g);
}

/* Many matches in one long text, each at a different alignment. */
static void test_dense_matches(void **state) {
  (void)state;
  static const unsigned modes[] = {0, I, W, I | W};
  guard_t g;
  guard_init(&g, 1 << 16);
  unsigned char *buf = malloc(1 << 16);
  assert_non_null(buf);
  ref_rng_t rng = {g_seed};
  const char *words[] = {"is", "Is", "this", "is,", "\xc3\xa9t\xc3\xa9", "x", "isis"};
  for (int iter = 0; iter < 40; iter++) {
    size_t len = 0, max = 1000 + ref_rng_below(&rng, 60000);
    while (len + 16 < max) {
      const char *w = words[ref_rng_below(&rng, 7)];
      memcpy(buf + len, w, strlen(w));
      len += strlen(w);
      static const char seps[] = {' ', ' ', ' ', '\n', '\t'};
      int sep = (int)ref_rng_below(&rng, 6);
      if (sep == 5) {
        buf[len++] = '\r';
        buf[len++] = '\n';
      } else {
        buf[len++] = (unsigned char)seps[sep];
      }
    }
    len -= ref_rng_below(&rng, 3); /* end in a word, a separator or a CR */
    const char *nd[3] = {"is", "\xc3\xa9t\xc3\xa9", "isis"};
    size_t nl[3] = {2, 6, 4};
    unsigned char *t = guard_at_end(&g, buf, len);
    for (int m = 0; m < 4; m++) {
      uint64_t want[3] = {0, 0, 0};
      ref_count(nd, nl, 3, modes[m], t, len, want);
      char why[256];
      wc_needles_t *set = make_set(nd, nl, 3, modes[m]);
      if (check_paths(set, t, len, want, CHECK_ALL, &rng, why, sizeof why) != 0)
        fail_msg("dense text of %zu bytes, flags %u: %s (seed %llu)", len,
                 modes[m], why, (unsigned long long)g_seed);
      wc_needles_free(set);
    }
  }
  free(buf);
  guard_free(&g);
}

/* Needles of 1..4096 bytes, including ones with '\r' and NUL. */
static void test_long_needles(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 2, 255, 256, 257, 1000, 4095, 4096};
  static const unsigned modes[] = {0, I, W, I | W};
  size_t cap = 3 * 4096 + 64;
  unsigned char *text = malloc(cap), *needle = malloc(4096);
  assert_non_null(text);
  assert_non_null(needle);
  guard_t g;
  guard_init(&g, cap);
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t nl = sizes[s];
    for (size_t k = 0; k < nl; k++)
      needle[k] = (unsigned char)"ab\r\0c-_"[k % 7];
    needle[nl - 1] = 'z';
    /* text: needle, ' ', needle-with-last-byte-changed, '\n', needle */
    size_t len = 0;
    memcpy(text + len, needle, nl);
    len += nl;
    text[len++] = ' ';
    memcpy(text + len, needle, nl);
    len += nl;
    text[len - 1] = 'y';
    text[len++] = '\n';
    memcpy(text + len, needle, nl);
    len += nl;
    const char *nd[1] = {(const char *)needle};
    for (int m = 0; m < 4; m++) {
      uint64_t want = 2;
      expect_counts(nd, &nl, 1, modes[m], guard_at_end(&g, text, len), len,
                    &want, "long needle");
    }
  }
  free(text);
  free(needle);
  guard_free(&g);
}

/* ---- needle-set errors ------------------------------------------------------ */

static void expect_error(const char *const *nd, const size_t *lens, size_t n,
                         unsigned flags, int want_rc, size_t want_index) {
  wc_needles_t *sentinel = (wc_needles_t *)(uintptr_t)0x1234;
  wc_needles_t *set = sentinel;
  size_t ei = 99999;
  int rc = wc_needles_new(&set, nd, lens, n, flags, &ei);
  if (rc != want_rc)
    fail_msg("wc_needles_new(n=%zu, flags=%#x) = %d, expected %d", n, flags,
             rc, want_rc);
  assert_ptr_equal(set, sentinel);
  if (ei != want_index)
    fail_msg("wc_needles_new(n=%zu) error %d: err_index %zu, expected %zu", n,
             rc, ei, want_index);
  /* err_index may be NULL. */
  set = sentinel;
  assert_int_equal(wc_needles_new(&set, nd, lens, n, flags, NULL), want_rc);
  assert_ptr_equal(set, sentinel);
}

static void test_needles_errors(void **state) {
  (void)state;
  const char *nd[4] = {"a", "b", "", "d"};
  size_t lens[4] = {1, 1, 0, 1};
  expect_error(nd, lens, 0, 0, -EINVAL, 0);
  expect_error(nd, lens, 4, 0, -EINVAL, 2); /* empty needle */
  const char *sp[3] = {"a", "b c", "d"};
  size_t spl[3] = {1, 3, 1};
  expect_error(sp, spl, 3, 0, -EINVAL, 1);
  expect_error(sp, spl, 3, W | I, -EINVAL, 1);
  const char *lf[2] = {"a\n", "b"};
  size_t lfl[2] = {2, 1};
  expect_error(lf, lfl, 2, 0, -EINVAL, 0);
  const char *lead[1] = {" a"};
  size_t leadl[1] = {2};
  expect_error(lead, leadl, 1, 0, -EINVAL, 0);
  /* A space hidden after a NUL byte: the length counts, not strlen. */
  const char *nul[2] = {"ok", "a\0 b"};
  size_t null[2] = {2, 4};
  expect_error(nul, null, 2, 0, -EINVAL, 1);
  const char *good[2] = {"a", "b"};
  size_t goodl[2] = {1, 1};
  expect_error(good, goodl, 2, 1u << 2, -EINVAL, 2); /* unknown flag */
  expect_error(good, goodl, 2, 0x80000000u, -EINVAL, 2);

  /* Too many needles, and one too long. */
  size_t many = WC_MAX_NEEDLES + 1;
  const char **mn = malloc(many * sizeof *mn);
  size_t *ml = malloc(many * sizeof *ml);
  assert_non_null(mn);
  assert_non_null(ml);
  for (size_t i = 0; i < many; i++) {
    mn[i] = "n";
    ml[i] = 1;
  }
  expect_error(mn, ml, many, 0, -E2BIG, many);
  wc_needles_t *set = NULL;
  assert_int_equal(wc_needles_new(&set, mn, ml, WC_MAX_NEEDLES, I | W, NULL), 0);
  assert_int_equal(wc_needles_count(set), WC_MAX_NEEDLES);
  uint64_t *counts = calloc(WC_MAX_NEEDLES, sizeof *counts);
  assert_non_null(counts);
  assert_int_equal(wc_count(set, "n N x n", 7, counts), 0);
  for (size_t i = 0; i < WC_MAX_NEEDLES; i++)
    assert_int_equal(counts[i], 3);
  free(counts);
  wc_needles_free(set);

  char *big = malloc(WC_MAX_NEEDLE_BYTES + 1);
  assert_non_null(big);
  memset(big, 'q', WC_MAX_NEEDLE_BYTES + 1);
  mn[1] = big;
  ml[1] = WC_MAX_NEEDLE_BYTES + 1;
  expect_error(mn, ml, 3, 0, -E2BIG, 1);
  ml[1] = WC_MAX_NEEDLE_BYTES;
  set = NULL;
  assert_int_equal(wc_needles_new(&set, mn, ml, 3, 0, NULL), 0);
  wc_needles_free(set);
  wc_needles_free(NULL);
  free(big);
  free(mn);
  free(ml);
}

static void test_needles_are_copied(void **state) {
  (void)state;
  char buf[4] = "abc";
  const char *nd[1] = {buf};
  size_t nl = 3;
  wc_needles_t *set = make_set(nd, &nl, 1, 0);
  memcpy(buf, "zzz", 3);
  uint64_t c = 0;
  assert_int_equal(wc_count(set, "abc zzz", 7, &c), 0);
  assert_int_equal(c, 1);
  wc_needles_free(set);
}

static void test_kernel_name_and_version(void **state) {
  (void)state;
  const char *k = wc_kernel_name();
  assert_non_null(k);
  assert_true(strcmp(k, "avx2") == 0 || strcmp(k, "sse2") == 0 ||
              strcmp(k, "scalar") == 0);
  assert_string_equal(WC_VERSION, "0.1.0");
}

/* Counts add up; a stream can be reused after finish; 0 threads works. */
static void test_accumulation_and_reuse(void **state) {
  (void)state;
  const char *nd[2] = {"to", "be"};
  size_t nl[2] = {2, 2};
  wc_needles_t *set = make_set(nd, nl, 2, 0);
  const char *t = "to be or not to be\n";
  uint64_t c[2] = {5, 7};
  assert_int_equal(wc_count(set, t, strlen(t), c), 0);
  assert_int_equal(c[0], 7);
  assert_int_equal(c[1], 9);
  assert_int_equal(wc_count_parallel(set, t, strlen(t), 0, c), 0);
  assert_int_equal(c[0], 9);
  wc_stream_t *st = NULL;
  assert_int_equal(wc_stream_new(&st, set), 0);
  for (int round = 0; round < 3; round++) {
    uint64_t s[2] = {0, 0};
    /* "t" | "o b" | "e" : words split over chunk ends */
    assert_int_equal(wc_stream_feed(st, "t", 1), 0);
    assert_int_equal(wc_stream_feed(st, "o b", 3), 0);
    assert_int_equal(wc_stream_feed(st, "", 0), 0);
    assert_int_equal(wc_stream_feed(st, "e", 1), 0);
    assert_int_equal(wc_stream_bytes(st), 5);
    assert_int_equal(wc_stream_finish(st, s), 0);
    assert_int_equal(s[0], 1);
    assert_int_equal(s[1], 1);
    assert_int_equal(wc_stream_bytes(st), 0);
  }
  /* A CR at a chunk end followed by LF in the next chunk is dropped; one
   * left at the end of the text is not. */
  const char *cr[1] = {"a\r"};
  size_t crl = 2;
  wc_needles_t *cs = make_set(cr, &crl, 1, 0);
  wc_stream_t *st2 = NULL;
  assert_int_equal(wc_stream_new(&st2, cs), 0);
  uint64_t x = 0;
  assert_int_equal(wc_stream_feed(st2, "a\r", 2), 0);
  assert_int_equal(wc_stream_feed(st2, "\na\r", 3), 0);
  assert_int_equal(wc_stream_finish(st2, &x), 0);
  assert_int_equal(x, 1);
  wc_stream_free(st2);
  wc_needles_free(cs);
  wc_stream_free(st);
  wc_stream_free(NULL);
  wc_needles_free(set);
}

/* wc_split on texts without separators, and its exact contract. */
static void test_split_contract(void **state) {
  (void)state;
  size_t cuts[20];
  assert_int_equal(wc_split("", 0, 4, cuts), 1);
  assert_int_equal(cuts[0], 0);
  assert_int_equal(cuts[1], 0);
  assert_int_equal(wc_split("abcdefgh", 8, 4, cuts), 1);
  assert_int_equal(cuts[1], 8);
  assert_int_equal(wc_split("abcd", 4, 0, cuts), 1);
  size_t k = wc_split("a b c d e f g h ", 16, 4, cuts);
  assert_true(k >= 2 && k <= 4);
  assert_int_equal(wc_next_cut("ab cd", 5, 0), 0);
  assert_int_equal(wc_next_cut("ab cd", 5, 1), 3);
  assert_int_equal(wc_next_cut("ab cd", 5, 3), 3);
  assert_int_equal(wc_next_cut("ab cd", 5, 4), 5);
  assert_int_equal(wc_next_cut("ab cd", 5, 5), 5);
  assert_int_equal(wc_prev_cut("ab cd", 5, 4), 3);
  assert_int_equal(wc_prev_cut("ab cd", 5, 2), 0);
  assert_int_equal(wc_prev_cut("ab\ncd", 5, 3), 3);
}

/*
 * wordcount.h defines a cut by wc_next_cut ("c == len or text[c - 1] is ' '
 * or '\n'; c == 0 counts too") and wc_prev_cut as "the largest cut c <=
 * pos", so the end of the text is a cut for both.
 */
static void test_prev_cut_at_end(void **state) {
  (void)state;
  assert_int_equal(wc_next_cut("ab cd", 5, 5), 5);
  assert_int_equal(wc_prev_cut("ab", 2, 2), 2);
  assert_int_equal(wc_prev_cut("ab cd", 5, 5), 5);
  assert_int_equal(wc_prev_cut("ab cd ", 6, 6), 6);
}

static int setup(void **state) {
  (void)state;
  g_seed = ref_seed_from_env();
  print_message("test_core seed: %llu (WC_TEST_SEED to repeat)\n",
                (unsigned long long)g_seed);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_edge_table),
      cmocka_unit_test(test_edge_table_guarded),
      cmocka_unit_test(test_word_mode_invalid_needles),
      cmocka_unit_test(test_match_at_every_offset),
      cmocka_unit_test(test_dense_matches),
      cmocka_unit_test(test_long_needles),
      cmocka_unit_test(test_needles_errors),
      cmocka_unit_test(test_needles_are_copied),
      cmocka_unit_test(test_kernel_name_and_version),
      cmocka_unit_test(test_accumulation_and_reuse),
      cmocka_unit_test(test_split_contract),
      cmocka_unit_test(test_prev_cut_at_end),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
