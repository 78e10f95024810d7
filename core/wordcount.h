/*
 * wordcount.h - the counting core of wordcount-server.
 *
 * This is the only header the server, the CLI, the tests and the benchmarks
 * use. The library is pure: no I/O, no globals, no event loop; it works on
 * caller buffers and is safe to call from any number of threads at once
 * (a wc_needles_t is immutable once built and may be shared read-only; a
 * wc_stream_t belongs to one thread at a time).
 *
 * SEMANTICS (the PyO3 "Parallelism" word-count example):
 *   contents.lines().map(|l| l.split(' ').filter(|w| *w == needle).count()).sum()
 * - lines end at '\n'; a '\r' immediately before a '\n' is dropped; any other
 *   '\r' (also a final '\r' with no '\n' after it) is an ordinary byte;
 * - words are separated by every single space ' ' (two spaces make an empty
 *   word between them; tabs are ordinary bytes);
 * - a word counts when it is byte-for-byte equal to the needle.
 * Example: in "Is is is,\r\nis\r" the needle "is" counts 1.
 *
 * Options (flags of wc_needles_new):
 * - WC_IGNORE_CASE: Unicode simple case folding (CaseFolding.txt status C
 *   and S, from utf8proc) of both text and needles; bytes that are not valid
 *   UTF-8 compare exactly.
 * - WC_BOUNDARY_WORD: grep -w in a UTF-8 locale: the needle may occur
 *   anywhere in a line, but the character before and after it must not be a
 *   word constituent (Unicode letters L*, letter numbers Nl, decimal digits
 *   Nd, and '_'); like grep -o, matches of one needle do not overlap (the
 *   scan resumes after a match). Spaces are ordinary non-word characters.
 *   A match never includes the '\r' of a "\r\n".
 *
 * Needles are byte strings: non-empty, with no ' ' and no '\n' (such a
 * needle could never match, so it is an error, not a count of 0), at most
 * WC_MAX_NEEDLE_BYTES bytes, at most WC_MAX_NEEDLES of them. The text is
 * bytes: it needs no validation.
 *
 * Errors: every fallible function returns 0 or a negative errno value.
 * Counts are always added to the caller's array (counts[i] for needle i, in
 * the order given), so that the counts of slices can be summed in place.
 */
#ifndef WORDCOUNT_H
#define WORDCOUNT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WC_VERSION "0.1.0"

#define WC_MAX_NEEDLES 1024
#define WC_MAX_NEEDLE_BYTES 4096

enum wc_flags {
  WC_IGNORE_CASE = 1u << 0,
  WC_BOUNDARY_WORD = 1u << 1,
};

/* A compiled, immutable set of needles with their options. */
typedef struct wc_needles wc_needles_t;

/*
 * Builds a needle set from n needles (needles[i] of lens[i] bytes; they need
 * not be NUL-terminated). The same needle may appear twice: each copy gets
 * its own count. Returns 0 and stores the set in *out, or:
 *   -EINVAL  n == 0, an empty needle, a needle with ' ' or '\n', or an
 *            unknown flag;
 *   -E2BIG   more than WC_MAX_NEEDLES needles, or one longer than
 *            WC_MAX_NEEDLE_BYTES;
 *   -ENOMEM  out of memory.
 * On error *out is left untouched. When err_index is not NULL it receives
 * the index of the offending needle (or n for errors about the whole set).
 */
int wc_needles_new(wc_needles_t **out, const char *const *needles,
                   const size_t *lens, size_t n, unsigned flags,
                   size_t *err_index);

/* Frees a needle set; NULL is allowed. No counter may still use it. */
void wc_needles_free(wc_needles_t *set);

/* Number of needles in the set (the length of every counts array). */
size_t wc_needles_count(const wc_needles_t *set);

/* The flags the set was built with. */
unsigned wc_needles_flags(const wc_needles_t *set);

/*
 * Counts the whole text (text[0..len) is the complete input: its start is
 * the start of a line and its end the end of the text) and adds the count of
 * needle i to counts[i]. Thread-safe; allocates a small bounded scratch.
 * Returns 0 or -ENOMEM (then counts are unchanged).
 */
int wc_count(const wc_needles_t *set, const void *text, size_t len,
             uint64_t *counts);

/*
 * Streaming: a counter that takes the text in chunks of any size (down to
 * one byte, or zero) and returns what wc_count on the concatenation would,
 * in memory bounded by the needle set, not the text.
 *   wc_stream_new    allocates a counter for set (set must outlive it);
 *   wc_stream_feed   counts a chunk (the chunk is not retained);
 *   wc_stream_finish ends the text, adds the counts to counts[] and resets
 *                    the counter so that it can count a new text;
 *   wc_stream_bytes  bytes fed since the last reset;
 *   wc_stream_free   frees it (NULL allowed).
 * new returns 0 or -ENOMEM; feed and finish return 0 or -ENOMEM (after an
 * error the counter must be freed or finished and its result discarded).
 */
typedef struct wc_stream wc_stream_t;

int wc_stream_new(wc_stream_t **out, const wc_needles_t *set);
int wc_stream_feed(wc_stream_t *st, const void *chunk, size_t len);
int wc_stream_finish(wc_stream_t *st, uint64_t *counts);
uint64_t wc_stream_bytes(const wc_stream_t *st);
void wc_stream_free(wc_stream_t *st);

/*
 * Splitting for parallel counting. Cuts text[0..len) into at most nslices
 * slices of roughly equal size, each cut placed right after a ' ' or '\n'
 * (searched forward from the ideal point), so that counting every slice with
 * wc_count and summing equals counting the whole text, in every mode.
 * Writes slice i as [cuts[i], cuts[i+1]) into cuts[0..k], where k is the
 * returned number of slices (1 <= k <= nslices; cuts[0] == 0, cuts[k] ==
 * len). cuts must have room for nslices + 1 entries. A text without enough
 * separators yields fewer slices. nslices == 0 is treated as 1.
 */
size_t wc_split(const void *text, size_t len, size_t nslices, size_t *cuts);

/*
 * Finds a cut point at or after pos: the smallest c >= pos such that c == len
 * or text[c - 1] is ' ' or '\n' (c == 0 counts as a cut too). Used by
 * streaming callers that hand out blocks to workers.
 */
size_t wc_next_cut(const void *text, size_t len, size_t pos);

/* Like wc_next_cut, but backwards: the largest cut c <= pos (0 if none). */
size_t wc_prev_cut(const void *text, size_t len, size_t pos);

/*
 * Counts text on nthreads threads (0 means one per online CPU): splits it
 * with wc_split and counts the slices at once on their own pthreads, adding
 * to counts[]. With nthreads == 1 or a small text it counts on the caller's
 * thread. Returns 0, -ENOMEM or -EAGAIN (thread creation failed; counts are
 * then unchanged).
 */
int wc_count_parallel(const wc_needles_t *set, const void *text, size_t len,
                      unsigned nthreads, uint64_t *counts);

/* Which kernel the library chose at run time: "avx2", "sse2" or "scalar". */
const char *wc_kernel_name(void);

/*
 * Unicode helpers used by the counter, exported for the server (which checks
 * needles) and for tests.
 * wc_utf8_valid: 1 when s[0..len) is valid UTF-8 (no surrogates, no overlong
 * forms, at most U+10FFFF), else 0.
 * wc_simple_fold: the simple case folding of a code point (C + S), or the
 * code point itself.
 * wc_is_word_char: 1 when the code point is a word constituent for
 * WC_BOUNDARY_WORD.
 * wc_utf8_encode: writes code point cp (0..U+10FFFF) as UTF-8 at out (room
 * for 4 bytes); returns the length (the server's JSON decoder uses it).
 */
int wc_utf8_valid(const void *s, size_t len);
int32_t wc_simple_fold(int32_t cp);
int wc_is_word_char(int32_t cp);
size_t wc_utf8_encode(int32_t cp, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* WORDCOUNT_H */
