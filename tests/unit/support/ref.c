/*
 * ref.c - the reference counter; see ref.h for the rules it implements.
 * Everything here favours obviousness over speed: quadratic scans and
 * per-word decoding are fine for test-sized inputs.
 */
#include "ref.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <utf8proc.h>

#include "wordcount.h"

/* Tokens: a valid code point is itself, an invalid byte b is RAW_BASE + b,
 * which no code point (<= 0x10FFFF) can equal. */
#define RAW_BASE 0x200000

/* Decodes the token at s[i] (i < len): returns its length, stores it. */
static size_t token_at(const unsigned char *s, size_t len, size_t i,
                       int32_t *tok) {
  utf8proc_int32_t cp = -1;
  utf8proc_ssize_t n = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
  if (n <= 0 || cp < 0) {
    *tok = RAW_BASE + s[i];
    return 1;
  }
  *tok = cp;
  return (size_t)n;
}

static int32_t fold_token(int32_t tok) {
  return tok >= RAW_BASE ? tok : wc_simple_fold(tok);
}

int ref_is_word_char(int32_t cp) {
  if (cp == '_')
    return 1;
  if (cp < 0 || cp > 0x10FFFF)
    return 0;
  switch (utf8proc_category(cp)) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC:
  case UTF8PROC_CATEGORY_ME:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_ND:
    return 1;
  default:
    return 0;
  }
}

static int token_is_word(int32_t tok) {
  return tok < RAW_BASE && ref_is_word_char(tok);
}

/* Case-insensitive equality of two byte strings, token by token. */
static int fold_equal(const unsigned char *a, size_t alen,
                      const unsigned char *b, size_t blen) {
  size_t i = 0, j = 0;
  while (i < alen && j < blen) {
    int32_t ta, tb;
    i += token_at(a, alen, i, &ta);
    j += token_at(b, blen, j, &tb);
    if (fold_token(ta) != fold_token(tb))
      return 0;
  }
  return i == alen && j == blen;
}

/* Default mode on one line (without its terminator): split at every ' '. */
static uint64_t count_words(const unsigned char *line, size_t m,
                            const unsigned char *nd, size_t nlen, int fold) {
  uint64_t c = 0;
  size_t start = 0;
  for (size_t i = 0; i <= m; i++) {
    if (i < m && line[i] != ' ')
      continue;
    const unsigned char *w = line + start;
    size_t wlen = i - start;
    if (fold ? fold_equal(w, wlen, nd, nlen)
             : (wlen == nlen && memcmp(w, nd, nlen) == 0))
      c++;
    start = i + 1;
  }
  return c;
}


/*
 * Whole-word mode on one line. starts[] lists the byte offset of every
 * token of the line plus m at the end; toks[] the (unfolded) tokens.
 */
static uint64_t count_boundary(const unsigned char *line, size_t m,
                               const unsigned char *nd, size_t nlen) {
  size_t *starts = malloc((m + 1) * sizeof *starts);
  int32_t *toks = malloc((m + 1) * sizeof *toks);
  if (starts == NULL || toks == NULL)
    abort();
  size_t nt = 0;
  for (size_t i = 0; i < m;) {
    starts[nt] = i;
    i += token_at(line, m, i, &toks[nt]);
    nt++;
  }
  starts[nt] = m;

  uint64_t c = 0;
  size_t t = 0; /* index of the token where the next candidate starts */
  while (t < nt) {
    size_t i = starts[t];
    size_t end = 0;
    int found = 0;
    if (m - i >= nlen && memcmp(line + i, nd, nlen) == 0) {
      found = 1;
      end = i + nlen;
    }
    if (found) {
      int before_ok = t == 0 || !token_is_word(toks[t - 1]);
      int after_ok = 1;
      if (end < m) {
        int32_t next;
        token_at(line, m, end, &next);
        after_ok = !token_is_word(next);
      }
      if (before_ok && after_ok) {
        c++;
        while (t < nt && starts[t] < end)
          t++;
        continue;
      }
    }
    t++;
  }
  free(starts);
  free(toks);
  return c;
}

/* The bytes of s with every character replaced by its simple case
 * folding; invalid bytes stay as they are. The caller frees the result. */
static unsigned char *fold_bytes(const unsigned char *s, size_t len,
                                 size_t *out_len) {
  unsigned char *out = malloc(4 * len + 1);
  if (out == NULL)
    abort();
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    int32_t tok;
    i += token_at(s, len, i, &tok);
    if (tok >= RAW_BASE)
      out[o++] = (unsigned char)(tok - RAW_BASE);
    else
      o += (size_t)utf8proc_encode_char(wc_simple_fold(tok), out + o);
  }
  *out_len = o;
  return out;
}

/* Word mode with ignore case: the library folds text and needle, then
 * applies the word rule to the folded bytes. (grep -i differs only for
 * needles that are not valid UTF-8; see the README.) */
static uint64_t count_boundary_folded(const unsigned char *line, size_t m,
                                      const unsigned char *nd, size_t nlen) {
  size_t fm, fn;
  unsigned char *fl = fold_bytes(line, m, &fm);
  unsigned char *fnd = fold_bytes(nd, nlen, &fn);
  uint64_t c = count_boundary(fl, fm, fnd, fn);
  free(fl);
  free(fnd);
  return c;
}

uint64_t ref_count_one(const void *needle, size_t nlen, unsigned flags,
                       const void *text, size_t len) {
  const unsigned char *nd = needle, *s = text;
  int fold = (flags & WC_IGNORE_CASE) != 0;
  if (nlen == 0 || memchr(nd, ' ', nlen) != NULL ||
      memchr(nd, '\n', nlen) != NULL)
    return 0;
  uint64_t c = 0;
  size_t start = 0;
  while (start < len) {
    const unsigned char *nl = memchr(s + start, '\n', len - start);
    size_t stop = nl != NULL ? (size_t)(nl - s) : len;
    size_t m = stop - start;
    if (nl != NULL && m > 0 && s[stop - 1] == '\r')
      m--;
    if ((flags & WC_BOUNDARY_WORD) && fold)
      c += count_boundary_folded(s + start, m, nd, nlen);
    else if (flags & WC_BOUNDARY_WORD)
      c += count_boundary(s + start, m, nd, nlen);
    else
      c += count_words(s + start, m, nd, nlen, fold);
    start = stop + 1;
  }
  return c;
}

void ref_count(const char *const *needles, const size_t *lens, size_t n,
               unsigned flags, const void *text, size_t len,
               uint64_t *counts) {
  for (size_t i = 0; i < n; i++)
    counts[i] += ref_count_one(needles[i], lens[i], flags, text, len);
}

int ref_utf8_valid(const void *s, size_t len) {
  const unsigned char *p = s;
  size_t i = 0;
  while (i < len) {
    unsigned b = p[i];
    unsigned lo = 0x80, hi = 0xBF;
    size_t need;
    if (b <= 0x7F) {
      i++;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0)
        lo = 0xA0; /* no overlong forms */
      if (b == 0xED)
        hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0)
        lo = 0x90; /* no overlong forms */
      if (b == 0xF4)
        hi = 0x8F; /* nothing above U+10FFFF */
    } else {
      return 0;
    }
    if (len - i - 1 < need)
      return 0;
    if (p[i + 1] < lo || p[i + 1] > hi)
      return 0;
    for (size_t k = 2; k <= need; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF)
        return 0;
    i += need + 1;
  }
  return 1;
}

static int is_sep(unsigned char c) { return c == ' ' || c == '\n'; }

size_t ref_next_cut(const void *text, size_t len, size_t pos) {
  const unsigned char *s = text;
  for (size_t c = pos; c < len; c++)
    if (c == 0 || is_sep(s[c - 1]))
      return c;
  return len;
}

size_t ref_prev_cut(const void *text, size_t len, size_t pos) {
  const unsigned char *s = text;
  for (size_t c = pos;; c--) {
    if (c == 0 || c == len || is_sep(s[c - 1]))
      return c;
  }
}

uint64_t ref_rng_next(ref_rng_t *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t ref_rng_below(ref_rng_t *r, uint64_t n) {
  return ref_rng_next(r) % n;
}

uint64_t ref_seed_from_env(void) {
  const char *e = getenv("WC_TEST_SEED");
  if (e != NULL && *e != '\0')
    return strtoull(e, NULL, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^
         ((uint64_t)getpid() << 32);
}
