/* check.c - see check.h. */
#include "support/check.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void check_quote(char *out, size_t outlen, const void *s, size_t len) {
  const unsigned char *p = s;
  size_t o = 0;
  if (outlen < 8) {
    if (outlen)
      out[0] = '\0';
    return;
  }
  out[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    char tmp[8];
    unsigned char c = p[i];
    if (c == '\n')
      snprintf(tmp, sizeof tmp, "\\n");
    else if (c == '\r')
      snprintf(tmp, sizeof tmp, "\\r");
    else if (c == '\t')
      snprintf(tmp, sizeof tmp, "\\t");
    else if (c == '"' || c == '\\')
      snprintf(tmp, sizeof tmp, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      snprintf(tmp, sizeof tmp,
               i + 1 < len && isxdigit(p[i + 1]) ? "\\x%02x\"\"" : "\\x%02x", c);
    else
      snprintf(tmp, sizeof tmp, "%c", c);
    size_t tl = strlen(tmp);
    if (o + tl + 5 >= outlen) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(out + o, tmp, tl);
    o += tl;
  }
  out[o++] = '"';
  out[o] = '\0';
}

static int failf(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Counts start at a non-zero base so that "adds to counts[]" is checked. */
#define BASE 1000u

static int compare(const char *what, const uint64_t *got, const uint64_t *expect,
                   size_t n, char *why, size_t whylen) {
  for (size_t i = 0; i < n; i++)
    if (got[i] != expect[i] + BASE)
      return failf(why, whylen, "%s: needle %zu counted %llu, expected %llu",
                   what, i, (unsigned long long)(got[i] - BASE),
                   (unsigned long long)expect[i]);
  return 0;
}

static void reset(uint64_t *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    c[i] = BASE;
}

static size_t pick_chunk(ref_rng_t *rng, size_t left) {
  switch (ref_rng_below(rng, 6)) {
  case 0:
    return 0;
  case 1:
    return left < 1 ? left : 1;
  case 2: {
    size_t c = 1 + ref_rng_below(rng, 8);
    return c < left ? c : left;
  }
  case 3: {
    size_t c = 1 + ref_rng_below(rng, 70);
    return c < left ? c : left;
  }
  case 4:
    return left;
  default:
    return left ? ref_rng_below(rng, left + 1) : 0;
  }
}

static int check_stream(const wc_needles_t *set, const unsigned char *text,
                        size_t len, const uint64_t *expect, uint64_t *got,
                        size_t n, ref_rng_t *rng, char *why, size_t whylen) {
  wc_stream_t *st = NULL;
  int rc = wc_stream_new(&st, set);
  if (rc != 0 || st == NULL)
    return failf(why, whylen, "wc_stream_new returned %d", rc);
  int ret = 0;
  /* Twice: the second round checks that finish resets the counter. */
  for (int round = 0; round < 2 && ret == 0; round++) {
    int bytewise = ref_rng_below(rng, 4) == 0;
    size_t off = 0;
    char what[80];
    reset(got, n);
    while (off < len || ref_rng_below(rng, 3) == 0) {
      size_t c = bytewise ? (len - off > 0) : pick_chunk(rng, len - off);
      rc = wc_stream_feed(st, text + off, c);
      if (rc != 0) {
        ret = failf(why, whylen, "wc_stream_feed returned %d", rc);
        break;
      }
      off += c;
      if (wc_stream_bytes(st) != off) {
        ret = failf(why, whylen, "wc_stream_bytes = %llu after %zu bytes",
                    (unsigned long long)wc_stream_bytes(st), off);
        break;
      }
      if (off == len && ref_rng_below(rng, 2) == 0)
        break;
    }
    if (ret != 0)
      break;
    rc = wc_stream_finish(st, got);
    if (rc != 0) {
      ret = failf(why, whylen, "wc_stream_finish returned %d", rc);
      break;
    }
    if (wc_stream_bytes(st) != 0) {
      ret = failf(why, whylen, "wc_stream_bytes = %llu after finish",
                  (unsigned long long)wc_stream_bytes(st));
      break;
    }
    snprintf(what, sizeof what, "wc_stream (round %d, %s chunks)", round + 1,
             bytewise ? "1-byte" : "random");
    ret = compare(what, got, expect, n, why, whylen);
  }
  wc_stream_free(st);
  return ret;
}

static int is_sep(unsigned char c) { return c == ' ' || c == '\n'; }

static int check_split(const wc_needles_t *set, const unsigned char *text,
                       size_t len, const uint64_t *expect, uint64_t *got,
                       size_t n, ref_rng_t *rng, char *why, size_t whylen) {
  size_t want = ref_rng_below(rng, 13); /* 0 means 1 */
  if (ref_rng_below(rng, 8) == 0)
    want = 64 + ref_rng_below(rng, 200);
  size_t room = (want ? want : 1) + 1;
  size_t *cuts = malloc((room + 1) * sizeof *cuts);
  if (cuts == NULL)
    abort();
  cuts[room] = (size_t)-7; /* canary: one past the room we promised */
  size_t k = wc_split(text, len, want, cuts);
  int ret = 0;
  if (cuts[room] != (size_t)-7) {
    ret = failf(why, whylen, "wc_split(nslices=%zu) wrote past cuts[nslices]", want);
  } else if (k < 1 || k > room - 1) {
    ret = failf(why, whylen, "wc_split(nslices=%zu) returned %zu slices", want, k);
  } else if (cuts[0] != 0 || cuts[k] != len) {
    ret = failf(why, whylen,
                "wc_split(nslices=%zu): cuts[0]=%zu cuts[%zu]=%zu, len %zu",
                want, cuts[0], k, cuts[k], len);
  } else {
    for (size_t i = 1; i < k && ret == 0; i++) {
      size_t c = cuts[i];
      if (c <= cuts[i - 1] || c >= len || !is_sep(text[c - 1]))
        ret = failf(why, whylen,
                    "wc_split(nslices=%zu): bad cut %zu (cuts[%zu]=%zu) in len %zu",
                    want, c, i - 1, cuts[i - 1], len);
    }
  }
  if (ret == 0) {
    reset(got, n);
    for (size_t i = 0; i < k && ret == 0; i++) {
      int rc = wc_count(set, text + cuts[i], cuts[i + 1] - cuts[i], got);
      if (rc != 0)
        ret = failf(why, whylen, "wc_count on a slice returned %d", rc);
    }
    if (ret == 0) {
      char what[80];
      snprintf(what, sizeof what, "wc_split into %zu slices (asked %zu)", k, want);
      ret = compare(what, got, expect, n, why, whylen);
    }
  }
  free(cuts);
  return ret;
}

static int check_cuts(const unsigned char *text, size_t len, ref_rng_t *rng,
                      char *why, size_t whylen) {
  size_t tries = len <= 200 ? len + 1 : 200;
  for (size_t t = 0; t < tries; t++) {
    size_t pos = len <= 200 ? t : ref_rng_below(rng, len + 1);
    size_t a = wc_next_cut(text, len, pos), b = ref_next_cut(text, len, pos);
    if (a != b)
      return failf(why, whylen, "wc_next_cut(len %zu, pos %zu) = %zu, expected %zu",
                   len, pos, a, b);
    /* pos == len is left to test_prev_cut_at_end in test_core.c, so that
     * one known disagreement does not hide every other check. */
    if (pos == len)
      continue;
    a = wc_prev_cut(text, len, pos);
    b = ref_prev_cut(text, len, pos);
    if (a != b)
      return failf(why, whylen, "wc_prev_cut(len %zu, pos %zu) = %zu, expected %zu",
                   len, pos, a, b);
  }
  return 0;
}

int check_paths(const wc_needles_t *set, const void *text, size_t len,
                const uint64_t *expect, unsigned paths, ref_rng_t *rng,
                char *why, size_t whylen) {
  const unsigned char *t = text;
  size_t n = wc_needles_count(set);
  uint64_t *got = malloc((n ? n : 1) * sizeof *got);
  if (got == NULL)
    abort();
  int ret = 0, rc;
  if (ret == 0 && (paths & CHECK_COUNT)) {
    reset(got, n);
    rc = wc_count(set, t, len, got);
    ret = rc != 0 ? failf(why, whylen, "wc_count returned %d", rc)
                  : compare("wc_count", got, expect, n, why, whylen);
  }
  if (ret == 0 && (paths & CHECK_STREAM))
    ret = check_stream(set, t, len, expect, got, n, rng, why, whylen);
  if (ret == 0 && (paths & CHECK_SPLIT))
    ret = check_split(set, t, len, expect, got, n, rng, why, whylen);
  if (ret == 0 && (paths & CHECK_CUTS))
    ret = check_cuts(t, len, rng, why, whylen);
  if (ret == 0 && (paths & CHECK_PARALLEL)) {
    unsigned th = 1 + (unsigned)ref_rng_below(rng, 4);
    char what[64];
    reset(got, n);
    rc = wc_count_parallel(set, t, len, th, got);
    snprintf(what, sizeof what, "wc_count_parallel(%u threads)", th);
    ret = rc != 0 ? failf(why, whylen, "%s returned %d", what, rc)
                  : compare(what, got, expect, n, why, whylen);
  }
  free(got);
  return ret;
}
