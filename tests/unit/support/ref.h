/*
 * ref.h - a plain, obviously-correct reference for the counting core.
 *
 * The reference is written from the specification in core/wordcount.h, not
 * from the implementation: it splits the text into lines, drops the '\r' of
 * a "\r\n", and then either splits each line at every ' ' and compares
 * words (the default), or scans the line for whole-word matches
 * (WC_BOUNDARY_WORD). It is slow on purpose; tests and the fuzz target
 * compare the library against it.
 *
 * Characters: a line is decoded into tokens, each either one valid UTF-8
 * sequence (utf8proc_iterate) or one single byte that does not start one.
 * With WC_IGNORE_CASE a valid token is folded with wc_simple_fold (itself
 * checked against CaseFolding.txt by test_unicode), an invalid byte only
 * equals the same byte.
 *
 * WC_BOUNDARY_WORD follows GNU grep -F -w -o in a UTF-8 locale, as measured
 * on grep 3.8 (LC_ALL=C.UTF-8, -a) for needles that are not valid UTF-8:
 * a match starts at a character (token) start only (the needle "\xa9"
 * never matches inside "\xc3\xa9"), but it may end inside a character (the
 * needle "\xc3" matches the first byte of "\xc3\xa9", with and without -i);
 * the character after a match is decoded at the byte after it (a lone
 * continuation byte is not a word character). With WC_IGNORE_CASE whole
 * tokens are compared, except that a truncated sequence at the end of the
 * needle is compared with the text's bytes. After a match the scan resumes
 * at the first character start at or after its end.
 */
#ifndef WC_TEST_REF_H
#define WC_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

/* Adds the count of needle i in text[0..len) to counts[i]. Needles are not
 * validated: an empty needle or one with ' ' or '\n' counts 0. */
void ref_count(const char *const *needles, const size_t *lens, size_t n,
               unsigned flags, const void *text, size_t len,
               uint64_t *counts);

/* The count of one needle. */
uint64_t ref_count_one(const void *needle, size_t nlen, unsigned flags,
                       const void *text, size_t len);

/* 1 when s[0..len) is well-formed UTF-8 (Unicode Table 3-7), else 0;
 * written byte range by byte range, independently of utf8proc. */
int ref_utf8_valid(const void *s, size_t len);

/* Word constituent for WC_BOUNDARY_WORD from utf8proc's general category. */
int ref_is_word_char(int32_t cp);

/* The cut contracts of wc_next_cut / wc_prev_cut, by linear search. */
size_t ref_next_cut(const void *text, size_t len, size_t pos);
size_t ref_prev_cut(const void *text, size_t len, size_t pos);

/*
 * Deterministic PRNG (splitmix64) for tests and the fuzz target; the seed is
 * printed by the tests on failure so that a run can be repeated with
 * WC_TEST_SEED=<seed>.
 */
typedef struct {
  uint64_t s;
} ref_rng_t;

uint64_t ref_rng_next(ref_rng_t *r);
/* Uniform in [0, n); n > 0. */
uint64_t ref_rng_below(ref_rng_t *r, uint64_t n);
/* The seed from $WC_TEST_SEED, or one from the clock and pid. */
uint64_t ref_seed_from_env(void);

#endif /* WC_TEST_REF_H */
