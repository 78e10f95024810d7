/*
 * test_unicode.c - the Unicode helpers of the core against the Unicode data
 * files of the Debian package unicode-data (not against utf8proc, which the
 * core may use): wc_simple_fold for every code point against
 * CaseFolding.txt, wc_is_word_char against the general categories of
 * UnicodeData.txt, and wc_utf8_valid against an independent validator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/ref.h"
#include "wordcount.h"

#define NCP 0x110000

#ifndef UNICODE_DIR
#define UNICODE_DIR "/usr/share/unicode"
#endif

static FILE *open_data(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", UNICODE_DIR, name);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    fail_msg("cannot open %s (Debian package unicode-data)", path);
  return f;
}

static void test_simple_fold_matches_casefolding_txt(void **state) {
  (void)state;
  int32_t *want = malloc(NCP * sizeof *want);
  assert_non_null(want);
  for (int32_t cp = 0; cp < NCP; cp++)
    want[cp] = cp;
  FILE *f = open_data("CaseFolding.txt");
  char line[512];
  int entries = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long from, to;
    char status;
    if (line[0] == '#' || line[0] == '\n')
      continue;
    if (sscanf(line, "%lx; %c; %lx;", &from, &status, &to) != 3)
      fail_msg("unparsed CaseFolding.txt line: %s", line);
    if (status == 'C' || status == 'S') {
      assert_true(from < NCP && to < NCP);
      want[from] = (int32_t)to;
      entries++;
    }
  }
  fclose(f);
  assert_true(entries > 1000);
  int bad = 0;
  for (int32_t cp = 0; cp < NCP; cp++) {
    int32_t got = wc_simple_fold(cp);
    if (got != want[cp] && bad++ < 20)
      print_error("wc_simple_fold(U+%04X) = U+%04X, CaseFolding.txt: U+%04X\n",
                  (unsigned)cp, (unsigned)got, (unsigned)want[cp]);
  }
  free(want);
  if (bad)
    fail_msg("%d code points fold wrongly", bad);
}

/* Word constituents from UnicodeData.txt: L*, M*, Nl, Nd, plus '_'. */
static unsigned char *load_word_table(void) {
  unsigned char *word = calloc(NCP, 1);
  assert_non_null(word);
  FILE *f = open_data("UnicodeData.txt");
  char line[1024];
  unsigned long first = 0;
  int in_range = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    char *f1 = strchr(line, ';');
    char *f2 = f1 != NULL ? strchr(f1 + 1, ';') : NULL;
    if (f2 == NULL)
      continue;
    unsigned long cp = strtoul(line, NULL, 16);
    assert_true(cp < NCP);
    int is_word = (f2[1] == 'L') || (f2[1] == 'M') ||
                  (f2[1] == 'N' && (f2[2] == 'l' || f2[2] == 'd'));
    int last = strstr(f1, ", Last>") != NULL;
    if (strstr(f1, ", First>") != NULL) {
      first = cp;
      in_range = 1;
      continue;
    }
    unsigned long lo = (last && in_range) ? first : cp;
    in_range = 0;
    for (unsigned long c = lo; c <= cp; c++)
      word[c] = (unsigned char)is_word;
  }
  fclose(f);
  word['_'] = 1;
  return word;
}

static void test_is_word_char_matches_unicodedata_txt(void **state) {
  (void)state;
  unsigned char *word = load_word_table();
  int bad = 0, bad_ref = 0;
  for (int32_t cp = 0; cp < NCP; cp++) {
    int got = wc_is_word_char(cp) != 0;
    if (got != word[cp] && bad++ < 20)
      print_error("wc_is_word_char(U+%04X) = %d, UnicodeData.txt: %d\n",
                  (unsigned)cp, got, word[cp]);
    if ((ref_is_word_char(cp) != 0) != word[cp] && bad_ref++ < 5)
      print_error("ref_is_word_char(U+%04X) disagrees with UnicodeData.txt\n",
                  (unsigned)cp);
  }
  free(word);
  if (bad_ref)
    fail_msg("the reference disagrees with UnicodeData.txt (%d)", bad_ref);
  if (bad)
    fail_msg("%d code points classified wrongly", bad);
}

static void check_valid(const unsigned char *s, size_t len) {
  int want = ref_utf8_valid(s, len);
  int got = wc_utf8_valid(s, len) != 0;
  if (got != want) {
    char hex[3 * 64 + 1] = "";
    for (size_t i = 0; i < len && i < 64; i++)
      snprintf(hex + 3 * i, 4, "%02x ", s[i]);
    fail_msg("wc_utf8_valid(%s, %zu) = %d, expected %d", hex, len, got, want);
  }
}

static void test_utf8_valid_reference_sanity(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int valid;
  } cases[] = {
      {"", 1},
      {"abc", 1},
      {"\xc3\xa9", 1},
      {"\xe2\x82\xac", 1},
      {"\xf0\x9f\x98\x80", 1},
      {"\xf4\x8f\xbf\xbf", 1},     /* U+10FFFF */
      {"\xef\xbf\xbf", 1},         /* U+FFFF */
      {"\xc0\x80", 0},             /* overlong NUL */
      {"\xc1\xbf", 0},             /* overlong */
      {"\xe0\x9f\xbf", 0},         /* overlong */
      {"\xf0\x8f\xbf\xbf", 0},     /* overlong */
      {"\xed\xa0\x80", 0},         /* U+D800 */
      {"\xed\xbf\xbf", 0},         /* U+DFFF */
      {"\xed\x9f\xbf", 1},         /* U+D7FF */
      {"\xf4\x90\x80\x80", 0},     /* U+110000 */
      {"\xf5\x80\x80\x80", 0},
      {"\xff", 0},
      {"\x80", 0},
      {"\xc3", 0},
      {"\xe2\x82", 0},
      {"\xf0\x9f\x98", 0},
      {"a\xc3(", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i].s);
    assert_int_equal(ref_utf8_valid(cases[i].s, len), cases[i].valid);
    check_valid((const unsigned char *)cases[i].s, len);
  }
  /* NUL is valid UTF-8 and must not end the scan. */
  check_valid((const unsigned char *)"a\0b", 3);
  check_valid((const unsigned char *)"a\0\xff", 3);
}

static void test_utf8_valid_exhaustive_short(void **state) {
  (void)state;
  unsigned char b[8];
  for (unsigned x = 0; x < 256; x++) {
    b[0] = (unsigned char)x;
    check_valid(b, 1);
    for (unsigned y = 0; y < 256; y++) {
      b[1] = (unsigned char)y;
      check_valid(b, 2);
    }
  }
  /* 3- and 4-byte forms: every lead byte with continuation bytes at and
   * around every range boundary of Table 3-7. */
  static const unsigned char edge[] = {0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f,
                                       0x90, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0,
                                       0xc2, 0xe0, 0xf0, 0xff};
  const size_t ne = sizeof edge;
  for (unsigned x = 0x80; x < 256; x++) {
    b[0] = (unsigned char)x;
    for (size_t i = 0; i < ne; i++)
      for (size_t j = 0; j < ne; j++) {
        b[1] = edge[i];
        b[2] = edge[j];
        check_valid(b, 3);
        for (size_t k = 0; k < ne; k++) {
          b[3] = edge[k];
          check_valid(b, 4);
        }
      }
  }
}

static void test_utf8_valid_random(void **state) {
  (void)state;
  uint64_t seed = ref_seed_from_env();
  ref_rng_t r = {seed};
  static const char *const pieces[] = {
      "a", " ", "\n", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf",
      "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xc3", "\xe2\x82", "\xf0\x9f\x98",
      "\x80", "\xbf", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\0"};
  const size_t np = sizeof pieces / sizeof pieces[0];
  unsigned char buf[600];
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = 0;
    size_t want = ref_rng_below(&r, 120);
    int only_valid = ref_rng_below(&r, 2) == 0;
    while (len < want) {
      size_t p = ref_rng_below(&r, only_valid ? 9 : np);
      size_t pl = p == np - 1 ? 1 : strlen(pieces[p]);
      memcpy(buf + len, pieces[p], pl);
      len += pl;
    }
    /* Long valid runs with one error at a random place exercise any
     * vectorised fast path. */
    if (ref_rng_below(&r, 4) == 0 && len > 0)
      buf[ref_rng_below(&r, len)] = (unsigned char)ref_rng_next(&r);
    int want_v = ref_utf8_valid(buf, len);
    int got_v = wc_utf8_valid(buf, len) != 0;
    if (want_v != got_v) {
      print_error("seed %llu (WC_TEST_SEED=%llu to repeat), iteration %d\n",
                  (unsigned long long)seed, (unsigned long long)seed, iter);
      check_valid(buf, len);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_fold_matches_casefolding_txt),
      cmocka_unit_test(test_is_word_char_matches_unicodedata_txt),
      cmocka_unit_test(test_utf8_valid_reference_sanity),
      cmocka_unit_test(test_utf8_valid_exhaustive_short),
      cmocka_unit_test(test_utf8_valid_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
