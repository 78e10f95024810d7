/*
 * check.h - runs every counting entry point of the core on one input and
 * compares each with expected counts. Shared by the unit tests (which turn
 * a mismatch into a cmocka failure) and the fuzz target (which aborts).
 */
#ifndef WC_TEST_CHECK_H
#define WC_TEST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "support/ref.h"
#include "wordcount.h"

enum check_paths {
  CHECK_COUNT = 1u << 0,    /* wc_count */
  CHECK_STREAM = 1u << 1,   /* wc_stream_* with random chunks, reused */
  CHECK_SPLIT = 1u << 2,    /* wc_split contract + counting the slices */
  CHECK_CUTS = 1u << 3,     /* wc_next_cut / wc_prev_cut vs ref */
  CHECK_PARALLEL = 1u << 4, /* wc_count_parallel, 1..4 threads */
  CHECK_ALL = 0x1f,
};

/*
 * Checks the paths in `paths` for set on text[0..len) against expect[]
 * (wc_needles_count(set) entries). Chunk sizes, slice and thread counts
 * come from rng. Returns 0, or -1 with a one-line description of the first
 * mismatch in why[0..whylen).
 */
int check_paths(const wc_needles_t *set, const void *text, size_t len,
                const uint64_t *expect, unsigned paths, ref_rng_t *rng,
                char *why, size_t whylen);

/* Formats bytes as a C string literal (escaped, truncated) for messages. */
void check_quote(char *out, size_t outlen, const void *s, size_t len);

#endif /* WC_TEST_CHECK_H */
