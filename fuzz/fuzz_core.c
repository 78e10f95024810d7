/*
 * fuzz_core.c - libFuzzer target: the counting core against the reference.
 *
 * Input layout:
 *   byte 0      bits 0-1: flags (WC_IGNORE_CASE, WC_BOUNDARY_WORD);
 *               bits 2-4: number of needles - 1 (1..8)
 *   byte 1      seed for chunk sizes and slice counts
 *   per needle  one length byte L (1 + L % 16), then that many bytes
 *               (' ' becomes 'a' and '\n' becomes 'b': such needles are
 *               rejected by wc_needles_new, which the unit tests cover)
 *   the rest    the text
 * wc_count, the streaming counter with fuzz-chosen chunks and the slices
 * of wc_split must all equal ref_count; any mismatch aborts with the input
 * described on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/check.h"
#include "support/ref.h"
#include "wordcount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  unsigned flags = data[0] & 3u;
  size_t n = 1 + ((data[0] >> 2) & 7u);
  ref_rng_t rng = {0x5eed0000u + data[1]};
  size_t off = 2;
  unsigned char store[MAXN][16];
  const char *nd[MAXN];
  size_t nl[MAXN];
  for (size_t i = 0; i < n; i++) {
    if (off >= size)
      return 0;
    size_t l = 1 + data[off++] % 16;
    if (off + l > size)
      return 0;
    for (size_t k = 0; k < l; k++) {
      unsigned char c = data[off + k];
      store[i][k] = c == ' ' ? 'a' : c == '\n' ? 'b' : c;
    }
    off += l;
    nd[i] = (const char *)store[i];
    nl[i] = l;
  }
  const unsigned char *text = data + off;
  size_t len = size - off;

  uint64_t want[MAXN] = {0};
  ref_count(nd, nl, n, flags, text, len, want);
  wc_needles_t *set = NULL;
  int rc = wc_needles_new(&set, nd, nl, n, flags, NULL);
  if (rc != 0) {
    fprintf(stderr, "fuzz_core: wc_needles_new = %d\n", rc);
    abort();
  }
  char why[512];
  if (check_paths(set, text, len, want,
                  CHECK_COUNT | CHECK_STREAM | CHECK_SPLIT | CHECK_CUTS, &rng,
                  why, sizeof why) != 0) {
    char q[2048];
    check_quote(q, sizeof q, text, len);
    fprintf(stderr, "fuzz_core: flags %u, text %s\n", flags, q);
    for (size_t i = 0; i < n; i++) {
      check_quote(q, sizeof q, nd[i], nl[i]);
      fprintf(stderr, "fuzz_core: needle %zu %s, reference %llu\n", i, q,
              (unsigned long long)want[i]);
    }
    fprintf(stderr, "fuzz_core: MISMATCH: %s\n", why);
    abort();
  }
  wc_needles_free(set);
  return 0;
}
