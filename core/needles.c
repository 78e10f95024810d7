/*
 * needles.c - compiling a needle set (wc_needles_t).
 *
 * OWNERSHIP. wc_needles_new copies the caller's needles into one storage
 * block owned by the set; the set is immutable afterwards and may be read by
 * any number of threads at once. It is freed by wc_needles_free only.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t wc_hash_key(const wc_needles_t *s, uint64_t w, uint32_t len,
                     uint64_t mul) {
  return ((w ^ ((uint64_t)len * 0x9E3779B97F4A7C15ull)) * mul) >>
         (64 - s->hbits);
}

static uint64_t first8(const uint8_t *b, size_t len) {
  uint64_t w = 0;
  memcpy(&w, b, len < 8 ? len : 8);
  return w;
}

/* Builds the word hash table: each distinct needle goes into one of its
 * two slots; on a conflict the multipliers change, then the table grows.
 * Words of the text look at both slots, without a branch. */
static int build_hash(wc_needles_t *s) {
  const size_t n = s->n;
  s->dist_of = calloc(n, sizeof(*s->dist_of));
  s->dist_rep = calloc(n, sizeof(*s->dist_rep));
  s->dist_next = calloc(n, sizeof(*s->dist_next));
  if (!s->dist_of || !s->dist_rep || !s->dist_next)
    return -ENOMEM;
  size_t nd = 0;
  for (size_t j = 0; j < n; j++) {
    const wc_needle_t *a = &s->v[j];
    size_t d = 0;
    while (d < nd && !(s->v[s->dist_rep[d]].len == a->len &&
                       memcmp(s->v[s->dist_rep[d]].bytes, a->bytes, a->len) ==
                           0))
      d++;
    if (d == nd) {
      s->dist_rep[nd] = (uint32_t)j;
      s->dist_next[nd] = UINT32_MAX;
      nd++;
    }
    s->dist_of[j] = (uint32_t)d;
  }
  s->ndistinct = nd;
  static const uint64_t muls[] = {
      0xff51afd7ed558ccdull, 0xc4ceb9fe1a85ec53ull, 0x9E3779B97F4A7C15ull,
      0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 0x2545F4914F6CDD1Dull,
      0xd6e8feb86659fd93ull, 0xa0761d6478bd642full};
  unsigned bits = 4;
  while (((size_t)1 << bits) < 4 * nd)
    bits++;
  for (;; bits++) {
    size_t size = (size_t)1 << bits;
    free(s->htab);
    if (!(s->htab = malloc(size * sizeof(*s->htab))))
      return -ENOMEM;
    s->hbits = bits;
    for (size_t t = 0; t + 1 < sizeof muls / sizeof muls[0]; t++) {
      s->hmul1 = muls[t];
      s->hmul2 = muls[t + 1];
      for (size_t i = 0; i < size; i++)
        s->htab[i] = (wc_hslot_t){0, UINT32_MAX, (uint32_t)nd};
      bool ok = true;
      for (size_t d = 0; d < nd && ok; d++) {
        const wc_needle_t *a = &s->v[s->dist_rep[d]];
        uint64_t w = first8(a->bytes, a->len);
        uint32_t len = (uint32_t)a->len;
        wc_hslot_t *s1 = &s->htab[wc_hash_key(s, w, len, s->hmul1)];
        wc_hslot_t *s2 = &s->htab[wc_hash_key(s, w, len, s->hmul2)];
        wc_hslot_t *same = (s1->len == len && s1->w == w)   ? s1
                           : (s2->len == len && s2->w == w) ? s2
                                                            : NULL;
        if (same) {
          /* Long needles sharing their first 8 bytes: chain them. */
          uint32_t e = same->d;
          while (s->dist_next[e] != UINT32_MAX)
            e = s->dist_next[e];
          s->dist_next[e] = (uint32_t)d;
        } else if (s1->len == UINT32_MAX) {
          *s1 = (wc_hslot_t){w, len, (uint32_t)d};
        } else if (s2->len == UINT32_MAX) {
          *s2 = (wc_hslot_t){w, len, (uint32_t)d};
        } else {
          ok = false;
          for (size_t i = 0; i < nd; i++)
            s->dist_next[i] = UINT32_MAX;
        }
      }
      if (ok)
        return 0;
    }
  }
}

static size_t byte_index(wc_needles_t *s, uint8_t b) {
  for (size_t i = 0; i < s->nbytes; i++)
    if (s->bytevals[i] == b)
      return i;
  s->bytevals[s->nbytes] = b;
  return s->nbytes++;
}

int wc_needles_new(wc_needles_t **out, const char *const *needles,
                   const size_t *lens, size_t n, unsigned flags,
                   size_t *err_index) {
  size_t bad = n;
  int rc = -EINVAL;
  wc_needles_t *s = NULL;
  if (n == 0 || (flags & ~(WC_PUBLIC_FLAGS | WC_FORCE_SCALAR | WC_FORCE_SSE2)))
    goto fail;
  if (n > WC_MAX_NEEDLES) {
    rc = -E2BIG;
    goto fail;
  }
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (lens[i] == 0 || memchr(needles[i], ' ', lens[i]) ||
        memchr(needles[i], '\n', lens[i])) {
      bad = i;
      goto fail;
    }
    if (lens[i] > WC_MAX_NEEDLE_BYTES) {
      bad = i;
      rc = -E2BIG;
      goto fail;
    }
    total += lens[i];
  }
  rc = -ENOMEM;
  s = calloc(1, sizeof(*s));
  if (!s)
    goto fail;
  s->flags = flags;
  s->n = n;
  s->v = calloc(n, sizeof(*s->v));
  /* Folding never makes a needle longer than twice its length. */
  s->storage = malloc(2 * total);
  s->bytevals = n <= 64 ? s->byteval : malloc(256);
  s->vstore = aligned_alloc(32, n * WC_VEC_BYTES * 32);
  if (!s->v || !s->storage || !s->bytevals || !s->vstore)
    goto fail;
  uint8_t *w = s->storage;
  for (size_t i = 0; i < n; i++) {
    wc_needle_t *nd = &s->v[i];
    const uint8_t *src = (const uint8_t *)needles[i];
    size_t len = lens[i];
    if (flags & WC_IGNORE_CASE) {
      size_t used;
      len = wc_fold(src, len, w, false, &used);
    } else {
      memcpy(w, src, len);
    }
    nd->bytes = w;
    nd->len = len;
    w += len;
    if (len > s->maxlen)
      s->maxlen = len;
    nd->ends_cr = nd->bytes[len - 1] == '\r';
    nd->i0 = (uint8_t)byte_index(s, nd->bytes[0]);
    nd->i1 = (uint8_t)byte_index(s, nd->bytes[len > 1 ? 1 : 0]);
    nd->il = (uint8_t)byte_index(s, nd->bytes[len - 1]);
    /* In space mode the mask tests the start, bytes 0, 1 and len - 1 and
     * the end: it decides alone for needles of up to 3 bytes. */
    nd->exact = len <= 3;
    nd->exactv = len <= WC_VEC_BYTES;
    nd->nvec = (uint8_t)(len <= WC_VEC_BYTES ? len : 3);
    nd->bvec = (const uint8_t(*)[32])s->vstore[i * WC_VEC_BYTES];
    for (size_t k = 0; k < nd->nvec; k++) {
      size_t off = len <= WC_VEC_BYTES ? k : (k == 2 ? len - 1 : k);
      memset(s->vstore[i * WC_VEC_BYTES + k], nd->bytes[off], 32);
    }
    if (flags & WC_BOUNDARY_WORD) {
      /* In word mode the kernels count a candidate without verifying it
       * only where the boundaries are certain (ASCII non-word bytes) and
       * the needle is made of word characters: two matches of it can then
       * never overlap, so the non-overlap rule needs no state. */
      for (size_t k = 0; k < len; k++)
        if (nd->bytes[k] >= 0x80 || !wc_is_word_char(nd->bytes[k]))
          nd->exact = nd->exactv = false;
    }
  }
  if (!(flags & WC_BOUNDARY_WORD) && (rc = build_hash(s)) < 0)
    goto fail;
  rc = -ENOMEM;
  /* Group the needles by (length, ends_cr), in order of first use. */
  s->groups = calloc(n, sizeof(*s->groups));
  s->order = calloc(n, sizeof(*s->order));
  if (!s->groups || !s->order)
    goto fail;
  size_t filled = 0;
  for (size_t i = 0; i < n; i++) {
    bool seen = false;
    for (size_t g = 0; g < s->ngroups && !seen; g++)
      seen = s->groups[g].n == s->v[i].len &&
             s->groups[g].ends_cr == s->v[i].ends_cr;
    if (seen)
      continue;
    wc_group_t *g = &s->groups[s->ngroups++];
    g->n = s->v[i].len;
    g->ends_cr = s->v[i].ends_cr;
    g->first = filled;
    for (size_t j = i; j < n; j++)
      if (s->v[j].len == g->n && s->v[j].ends_cr == g->ends_cr)
        s->order[filled++] = j;
    g->count = filled - g->first;
  }
  *out = s;
  return 0;
fail:
  if (err_index)
    *err_index = bad;
  wc_needles_free(s);
  return rc;
}

void wc_needles_free(wc_needles_t *s) {
  if (!s)
    return;
  if (s->bytevals != s->byteval)
    free(s->bytevals);
  free(s->storage);
  free(s->vstore);
  free(s->htab);
  free(s->dist_of);
  free(s->dist_rep);
  free(s->dist_next);
  free(s->groups);
  free(s->order);
  free(s->v);
  free(s);
}

size_t wc_needles_count(const wc_needles_t *s) { return s->n; }

unsigned wc_needles_flags(const wc_needles_t *s) {
  return s->flags & WC_PUBLIC_FLAGS;
}
