/*
 * internal.h - shared between the files of core/ only; never installed.
 *
 * DESIGN. A needle set (needles.c) is compiled once into the form the scan
 * kernel wants: needles folded when ignoring case, the distinct bytes that
 * the kernel must compare (first, second and last byte of every needle), and
 * per needle whether the SIMD mask alone decides a match. The kernel
 * (scan.c, scan_impl.h compiled once per ISA) counts the candidates that
 * start in a range of a buffer; everything else (wc_count, the streaming
 * counter, slices, threads) is built from that one function, so every path
 * shares one definition of a match.
 */
#ifndef WC_INTERNAL_H
#define WC_INTERNAL_H

#include "wordcount.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Test-only flags, not part of the public contract: force a kernel. */
#define WC_FORCE_SCALAR (1u << 8)
#define WC_FORCE_SSE2 (1u << 9)
#define WC_PUBLIC_FLAGS (WC_IGNORE_CASE | WC_BOUNDARY_WORD)

/* Needles up to this length are compared byte by byte by the AVX2 bulk
 * kernel; longer ones by their bytes 0, 1 and n - 1, then verified. */
#define WC_VEC_BYTES 8

/* Needles up to this length have their end tested by the SIMD mask. */
#define WC_MASK_MAX_LEN 48

/* Bytes a scan may look past the end of the last candidate: the needle,
 * the "\r\n" after it and one UTF-8 character (for word boundaries). */
#define WC_LOOKAHEAD(maxlen) ((maxlen) + 8)
/* Bytes a scan looks before its first candidate (one UTF-8 character). */
#define WC_LOOKBEHIND 8

typedef struct wc_needle {
  const uint8_t *bytes; /* folded when WC_IGNORE_CASE */
  size_t len;
  uint8_t i0, i1, il; /* indices into wc_needles.byteval */
  bool ends_cr;       /* last byte is '\r': it never matches before '\n' */
  bool exact;         /* the block kernels' mask decides alone (n <= 3) */
  bool exactv;        /* the AVX2 bulk kernel's compares decide alone */
  uint8_t nvec;       /* byte compares in the bulk kernel (<= WC_VEC_BYTES) */
  const uint8_t (*bvec)[32]; /* nvec broadcast bytes (see vec_offset) */
  bool never;         /* cannot match any text (folded needle has invalid
                         structure that folding of text cannot produce) */
} wc_needle_t;

/* Needles of one length (and the same ends_cr) share the loads and the
 * end-of-word test of the AVX2 kernel. */
typedef struct wc_group {
  size_t n;
  bool ends_cr;
  size_t first, count; /* indices into wc_needles.order */
} wc_group_t;

/* A slot of the word hash table (space mode, several needles): the
 * needle's first 8 bytes (zero-padded), its length and its distinct index;
 * an empty slot has len UINT32_MAX and d == ndistinct (a dummy counter). */
typedef struct wc_hslot {
  uint64_t w;
  uint32_t len;
  uint32_t d;
} wc_hslot_t;

struct wc_needles {
  unsigned flags;
  size_t n;
  size_t maxlen;
  wc_needle_t *v;
  size_t nbytes;           /* distinct compared byte values */
  uint8_t byteval[3 * 64]; /* grown below when n > 64 */
  uint8_t *bytevals;       /* points to byteval or a heap array */
  uint8_t *storage;        /* folded needle bytes */
  size_t ngroups;
  wc_group_t *groups;
  size_t *order; /* needle indices, grouped */
  uint8_t (*vstore)[32]; /* the needles' bvec, 32-byte aligned */
  /* Word hash table (space mode): two slots per key (h1, h2). */
  wc_hslot_t *htab;
  unsigned hbits;
  uint64_t hmul1, hmul2;
  size_t ndistinct;
  uint32_t *dist_of;   /* needle j -> distinct index */
  uint32_t *dist_rep;  /* distinct index -> one needle j */
  uint32_t *dist_next; /* distinct index -> next distinct with the same
                          key (long needles only), or UINT32_MAX */
};

/* Counts matches starting at p in [from, to) of buf[0..len).
 * sot: buf[0] is the start of the text; else from >= WC_LOOKBEHIND.
 * eot: buf[len] is the end of the text; else to + WC_LOOKAHEAD(maxlen) <= len.
 * base: the stream offset of buf[0]; until[j] (word mode only, stream
 * offsets) is where the next match of needle j may start, updated here.
 * Adds to counts[]. */
void wc_scan(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
             bool eot, size_t from, size_t to, uint64_t base, uint64_t *until,
             uint64_t *counts);

/* Per-ISA kernels behind wc_scan. */
typedef void wc_scan_fn(const wc_needles_t *set, const uint8_t *buf,
                        size_t len, bool sot, bool eot, size_t from, size_t to,
                        uint64_t base, uint64_t *until, uint64_t *counts);
wc_scan_fn wc_scan_scalar;
#if defined(__x86_64__) || defined(__i386__)
wc_scan_fn wc_scan_sse2;
wc_scan_fn wc_scan_avx2;
#endif

#if defined(__x86_64__) || defined(__i386__)
/* The AVX2 kernel for the middle of a buffer: candidates p in [lo, hi),
 * hi - lo a multiple of 32, lo >= 1, hi + maxlen + 1 <= len. */
void wc_scan_avx2_bulk(const wc_needles_t *set, const uint8_t *buf,
                       size_t len, bool sot, bool eot, size_t lo, size_t hi,
                       uint64_t base, uint64_t *until, uint64_t *counts);
#endif

#if defined(__x86_64__) || defined(__i386__)
/* The word-hash kernel for several needles in space mode (same contract
 * as wc_scan_avx2_bulk, with hi + 64 <= len). */
void wc_scan_hash_bulk(const wc_needles_t *set, const uint8_t *buf,
                       size_t len, bool eot, size_t lo, size_t hi,
                       uint64_t *counts);
#endif
uint64_t wc_hash_key(const wc_needles_t *set, uint64_t w, uint32_t len,
                     uint64_t mul);

/* Match verification shared by every kernel (scan.c). */
bool wc_verify(const wc_needles_t *set, const wc_needle_t *nd,
               const uint8_t *buf, size_t len, bool sot, bool eot, size_t p,
               bool check_end);

/* Unicode (unicode.c). */
/* Decodes one UTF-8 character at s[0..n): returns its length (1..4) and
 * stores the code point, or returns 0 (invalid or truncated byte: *cp is
 * untouched) . *truncated is set when s is a valid prefix cut by n. */
size_t wc_utf8_decode(const uint8_t *s, size_t n, int32_t *cp,
                      bool *truncated);
bool wc_is_ascii(const uint8_t *s, size_t n);
/* Folds in[0..n) into out (room for 2 * n bytes). Stops before a trailing
 * valid-but-truncated sequence when partial_ok, returning in *consumed how
 * many input bytes were folded. Returns the output length. */
size_t wc_fold(const uint8_t *in, size_t n, uint8_t *out, bool partial_ok,
               size_t *consumed);
/* Word-boundary tests for WC_BOUNDARY_WORD: is the character ending just
 * before p (resp. starting at p) a word constituent? */
bool wc_word_before(const uint8_t *buf, size_t p);
bool wc_word_at(const uint8_t *buf, size_t len, size_t p);
/* Is p (< len) inside a valid multi-byte character that starts before p?
 * Looks back at most 3 bytes. */
bool wc_inside_char(const uint8_t *buf, size_t len, size_t p);

#endif /* WC_INTERNAL_H */
