/*
 * stream.c - wc_count and the streaming counter.
 *
 * DESIGN. A counter keeps a small window of the most recent bytes of the
 * stream: WC_LOOKBEHIND bytes before the first position not yet scanned
 * (`next`) and whatever follows it. Each chunk is handled in two steps:
 *   1. the junction: the first bytes of the chunk are appended to the window
 *      and the window is scanned as far as the look-ahead allows;
 *   2. the bulk: the rest of the chunk is scanned in place (no copy), with
 *      the chunk's own first bytes as look-behind;
 * then the chunk's last bytes become the window. The window holds at most
 * 2 * (WC_LOOKAHEAD + WC_LOOKBEHIND) bytes whatever the chunk sizes, so
 * memory is bounded by the longest needle, not by the text.
 *
 * With WC_IGNORE_CASE the counter works on the folded stream: each chunk is
 * taken in pieces of FOLD_PIECE bytes; a piece of pure ASCII is scanned as
 * it is (the kernel lowers ASCII letters in registers), any other piece is
 * folded into `fold` first. A UTF-8 character cut by a chunk boundary waits
 * in `pend` for its last bytes.
 *
 * OWNERSHIP. A counter is owned by its caller and used by one thread at a
 * time; it reads its needle set, which must outlive it.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FOLD_PIECE (64 * 1024)

struct wc_stream {
  const wc_needles_t *set;
  uint64_t *counts; /* accumulated since the last reset */
  uint64_t *until;  /* word mode: see wc_scan */
  uint64_t fed;     /* bytes given by the caller */
  uint64_t pos;     /* stream offset (folded stream) of win[0] */
  uint64_t next;    /* first stream offset not scanned yet */
  size_t la;        /* look-ahead the kernel needs */
  uint8_t *win;
  size_t wlen, wcap;
  uint8_t *fold; /* 2 * FOLD_PIECE + 8, allocated on first use */
  uint8_t pend[4];
  size_t npend;
};

static void reset(wc_stream_t *st) {
  size_t n = st->set->n;
  memset(st->counts, 0, n * sizeof(*st->counts));
  memset(st->until, 0, n * sizeof(*st->until));
  st->fed = st->pos = st->next = 0;
  st->wlen = st->npend = 0;
}

int wc_stream_new(wc_stream_t **out, const wc_needles_t *set) {
  wc_stream_t *st = calloc(1, sizeof(*st));
  if (!st)
    return -ENOMEM;
  st->set = set;
  st->la = WC_LOOKAHEAD(set->maxlen);
  st->wcap = 2 * (st->la + WC_LOOKBEHIND);
  st->counts = calloc(set->n, sizeof(*st->counts));
  st->until = calloc(set->n, sizeof(*st->until));
  st->win = malloc(st->wcap);
  if (!st->counts || !st->until || !st->win) {
    wc_stream_free(st);
    return -ENOMEM;
  }
  reset(st);
  *out = st;
  return 0;
}

void wc_stream_free(wc_stream_t *st) {
  if (!st)
    return;
  free(st->counts);
  free(st->until);
  free(st->win);
  free(st->fold);
  free(st);
}

uint64_t wc_stream_bytes(const wc_stream_t *st) {
  return st->fed;
}

/* Scans the window from `next` as far as the look-ahead allows (or to its
 * end when eot), then drops what is no longer needed. */
static void scan_window(wc_stream_t *st, bool eot) {
  size_t from = (size_t)(st->next - st->pos);
  size_t to = eot ? st->wlen : (st->wlen > st->la ? st->wlen - st->la : 0);
  if (to > from) {
    wc_scan(st->set, st->win, st->wlen, st->pos == 0, eot, from, to, st->pos,
            st->until, st->counts);
    st->next = st->pos + to;
  }
  /* Keep WC_LOOKBEHIND bytes before `next`. */
  size_t keep_from = (size_t)(st->next - st->pos);
  keep_from = keep_from > WC_LOOKBEHIND ? keep_from - WC_LOOKBEHIND : 0;
  if (keep_from > 0) {
    memmove(st->win, st->win + keep_from, st->wlen - keep_from);
    st->wlen -= keep_from;
    st->pos += keep_from;
  }
}

/* Feeds bytes of the (folded) stream. */
static void feed_folded(wc_stream_t *st, const uint8_t *p, size_t n) {
  while (n > 0) {
    size_t room = st->wcap - st->wlen;
    size_t j = n < room ? n : room;
    const size_t bulk_min = st->la + WC_LOOKBEHIND;
    /* 1. The junction: enough of the chunk to reach past the window. */
    if (j > bulk_min)
      j = bulk_min;
    memcpy(st->win + st->wlen, p, j);
    st->wlen += j;
    uint64_t p_pos = st->pos + st->wlen - j; /* stream offset of p[0] */
    scan_window(st, false);
    if (j == n)
      return;
    /* 2. The bulk, in place. The junction scanned up to p_pos + j - la
     * (or less while the stream is shorter than the look-ahead). */
    if (n - j > st->la && st->next >= p_pos + WC_LOOKBEHIND) {
      size_t from = (size_t)(st->next - p_pos);
      size_t to = n - st->la;
      wc_scan(st->set, p, n, p_pos == 0, false, from, to, p_pos, st->until,
              st->counts);
      /* 3. The chunk's tail becomes the window. */
      size_t keep = st->la + WC_LOOKBEHIND;
      memcpy(st->win, p + n - keep, keep);
      st->wlen = keep;
      st->pos = p_pos + n - keep;
      st->next = p_pos + to;
      return;
    }
    p += j;
    n -= j;
  }
}

static int ensure_fold(wc_stream_t *st) {
  if (!st->fold && !(st->fold = malloc(2 * FOLD_PIECE + 16)))
    return -ENOMEM;
  return 0;
}

int wc_stream_feed(wc_stream_t *st, const void *chunk, size_t len) {
  const uint8_t *p = chunk;
  st->fed += len;
  if (!(st->set->flags & WC_IGNORE_CASE)) {
    feed_folded(st, p, len);
    return 0;
  }
  while (len > 0 || st->npend > 0) {
    if (st->npend > 0) {
      /* pend holds the valid start of a character cut by the last chunk:
       * complete it with the chunk's first bytes, or find it invalid. */
      uint8_t tmp[8], out[16];
      size_t k = len < 4 ? len : 4, q = 0, used;
      memcpy(tmp, st->pend, st->npend);
      memcpy(tmp + st->npend, p, k);
      while (q < st->npend) {
        int32_t cp;
        bool trunc;
        size_t d = wc_utf8_decode(tmp + q, st->npend + k - q, &cp, &trunc);
        if (d == 0 && trunc) { /* the chunk is too short: wait for more */
          memcpy(st->pend + st->npend, p, k);
          st->npend += k;
          return 0;
        }
        q += d ? d : 1;
      }
      feed_folded(st, out, wc_fold(tmp, q, out, false, &used));
      p += q - st->npend;
      len -= q - st->npend;
      st->npend = 0;
      continue;
    }
    size_t piece = len < FOLD_PIECE ? len : FOLD_PIECE;
    if (wc_is_ascii(p, piece)) {
      feed_folded(st, p, piece);
      p += piece;
      len -= piece;
      continue;
    }
    if (ensure_fold(st) < 0)
      return -ENOMEM;
    size_t used;
    size_t o = wc_fold(p, piece, st->fold, true, &used);
    feed_folded(st, st->fold, o);
    if (used < piece) {
      /* A valid but truncated character at the end of the piece. */
      size_t rest = piece - used;
      if (piece < len) {
        /* not the chunk's end: fold it with the next piece */
        p += used;
        len -= used;
        continue;
      }
      memcpy(st->pend, p + used, rest);
      st->npend = rest;
    }
    p += piece;
    len -= piece;
  }
  return 0;
}

int wc_stream_finish(wc_stream_t *st, uint64_t *counts) {
  if (st->npend > 0) {
    /* A character still cut at the end of the text: its bytes are invalid
     * UTF-8 and compare as themselves. */
    uint8_t out[8];
    size_t used, o = wc_fold(st->pend, st->npend, out, false, &used);
    st->npend = 0;
    feed_folded(st, out, o);
  }
  scan_window(st, true);
  for (size_t i = 0; i < st->set->n; i++)
    counts[i] += st->counts[i];
  reset(st);
  return 0;
}

/*
 * A text of fewer than TINY_TEXT bytes (divided by the number of needles),
 * exact and in space mode (what a small request carries): word by word in
 * plain C, the word's end found 8 bytes at a time, each word against each
 * needle. Setting up a vector kernel costs more than that: one needle, 8 to
 * 32 bytes, 64-74 ns through wc_scan's AVX2 kernel against 24-63 ns here;
 * 63 bytes 141 against 97-101 ns; two needles, 63 bytes, 111 against 131
 * ns (hence the division). The kernels' own test flags (WC_FORCE_*) keep
 * the kernels, so tests still reach them with tiny texts.
 */
#ifndef TINY_TEXT
#define TINY_TEXT 64
#endif
#define TINY_FLAGS                                                             \
  (WC_IGNORE_CASE | WC_BOUNDARY_WORD | WC_FORCE_SCALAR | WC_FORCE_SSE2)

/* Bit 7 of each byte of x that is ' ' or '\n'; exact up to the first such
 * byte (the borrow of the zero-byte test spoils only bytes above it). */
static inline uint64_t tiny_seps(uint64_t x) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t a = x ^ (ones * ' '), b = x ^ (ones * '\n');
  return (((a - ones) & ~a) | ((b - ones) & ~b)) & highs;
}

static void count_tiny(const wc_needles_t *set, const uint8_t *t, size_t len,
                       uint64_t *counts) {
  const wc_needle_t *v = set->v; /* in locals: counts[] may alias set */
  size_t n = set->n, s = 0;
  while (s < len) {
    size_t e = s, w;
    for (;;) { /* e: the end of the word, 8 bytes at a time */
      uint64_t x, m;
      if (e + 8 > len || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) {
        while (e < len && t[e] != ' ' && t[e] != '\n')
          e++;
        break;
      }
      memcpy(&x, t + e, 8);
      m = tiny_seps(x);
      if (m != 0) {
        e += (size_t)__builtin_ctzll(m) / 8; /* little-endian: byte order */
        break;
      }
      e += 8;
    }
    w = e - s; /* the word t[s..e); a '\r' before a '\n' is not part of it */
    if (w > 0 && e < len && t[e] == '\n' && t[e - 1] == '\r')
      w--;
    for (size_t j = 0; j < n; j++) {
      const uint8_t *nb = v[j].bytes;
      size_t k = 0;
      if (v[j].len != w)
        continue;
      while (k < w && nb[k] == t[s + k])
        k++;
      counts[j] += k == w;
    }
    s = e + 1;
  }
}

int wc_count(const wc_needles_t *set, const void *text, size_t len,
             uint64_t *counts) {
  if (len < TINY_TEXT && len * set->n < TINY_TEXT &&
      !(set->flags & TINY_FLAGS)) {
    count_tiny(set, text, len, counts);
    return 0;
  }
  if (!(set->flags & WC_IGNORE_CASE)) {
    /* The whole text is at hand: one scan, no copy. */
    uint64_t local[64], *until = local;
    if (set->n > 64 && !(until = calloc(set->n, sizeof(*until))))
      return -ENOMEM;
    if (until == local) /* only the entries in use */
      memset(local, 0, set->n * sizeof(*until));
    wc_scan(set, text, len, true, true, 0, len, 0, until, counts);
    if (until != local)
      free(until);
    return 0;
  }
  wc_stream_t *st;
  int rc = wc_stream_new(&st, set);
  if (rc < 0)
    return rc;
  rc = wc_stream_feed(st, text, len);
  if (rc == 0)
    rc = wc_stream_finish(st, counts);
  wc_stream_free(st);
  return rc;
}
