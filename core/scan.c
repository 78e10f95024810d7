/*
 * scan.c - the counting kernel: block masks per instruction set, candidate
 * verification, and the run-time choice of kernel.
 *
 * The default build targets the x86-64 baseline (SSE2); the AVX2 kernel is
 * compiled with a target attribute and chosen at run time when the CPU has
 * AVX2. A portable scalar kernel serves other machines and the tests.
 */
#include "internal.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* One bit per byte of a 64-byte block. */
typedef struct wc_block {
  uint64_t sp, nl, cr; /* ' ', '\n', '\r' */
  uint64_t end;        /* the end of the text, when it lies in the block */
  uint64_t eq[256];    /* byte == set->bytevals[i] (after ASCII lowering) */
} wc_block_t;

static inline uint8_t lower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

bool wc_verify(const wc_needles_t *set, const wc_needle_t *nd,
               const uint8_t *buf, size_t len, bool sot, bool eot, size_t p,
               bool check_end) {
  const size_t n = nd->len;
  if (p + n > len)
    return false;
  if (set->flags & WC_IGNORE_CASE) {
    for (size_t i = 0; i < n; i++)
      if (lower(buf[p + i]) != nd->bytes[i])
        return false;
  } else if (memcmp(buf + p, nd->bytes, n) != 0) {
    return false;
  }
  const size_t q = p + n;
  if (set->flags & WC_BOUNDARY_WORD) {
    (void)sot;
    /* Like grep, a match starts at a character boundary (it may end
     * inside a character: the rest is then invalid, a non-word). */
    if ((buf[p] & 0xC0) == 0x80 && wc_inside_char(buf, len, p))
      return false;
    if (wc_word_before(buf, p))
      return false;
    if (q == len)
      return eot;
    if (nd->ends_cr && buf[q] == '\n')
      return false;
    return !wc_word_at(buf, len, q);
  }
  if (!check_end)
    return true;
  if (q == len)
    return eot;
  switch (buf[q]) {
  case ' ':
    return true;
  case '\n':
    return !nd->ends_cr;
  case '\r':
    return q + 1 < len && buf[q + 1] == '\n';
  default:
    return false;
  }
}

/* Copies a block that runs past the end of the buffer into zeroed memory.
 * Zero bytes are never ' ', '\n' or '\r'; a needle byte 0 may "match" the
 * padding, but E(p + n) is never set past the end, so no candidate can. */
static inline const uint8_t *block_ptr(const uint8_t *buf, size_t len,
                                       size_t off, uint8_t *tmp) {
  if (off + 64 <= len)
    return buf + off;
  memset(tmp, 0, 64);
  if (off < len)
    memcpy(tmp, buf + off, len - off);
  return tmp;
}

static inline uint64_t end_bit(size_t len, bool eot, size_t off) {
  return (eot && off <= len && len - off < 64) ? 1ull << (len - off) : 0;
}

/*
 * The masks of a block that starts at or past the end of buf: those that
 * the mask functions give for its zero padding, without building the
 * padding and comparing it. The scan loop needs the next block's masks
 * for the last block of every text, so a short text (a small request's)
 * would otherwise pay for a second block.
 */
static inline void masks_past_end(const wc_needles_t *set, size_t len, bool eot,
                                  size_t off, wc_block_t *m) {
  m->sp = m->nl = m->cr = 0;
  for (size_t i = 0; i < set->nbytes; i++)
    m->eq[i] = set->bytevals[i] == 0 ? ~0ull : 0;
  m->end = end_bit(len, eot, off);
}

static inline void masks_scalar(const wc_needles_t *set, const uint8_t *buf,
                                size_t len, bool eot, size_t off, bool ci,
                                wc_block_t *m) {
  uint8_t tmp[64];
  const uint8_t *p = block_ptr(buf, len, off, tmp);
  m->sp = m->nl = m->cr = 0;
  for (size_t i = 0; i < set->nbytes; i++)
    m->eq[i] = 0;
  for (unsigned b = 0; b < 64; b++) {
    uint8_t c = ci ? lower(p[b]) : p[b];
    uint64_t bit = 1ull << b;
    m->sp |= c == ' ' ? bit : 0;
    m->nl |= c == '\n' ? bit : 0;
    m->cr |= c == '\r' ? bit : 0;
    for (size_t i = 0; i < set->nbytes; i++)
      m->eq[i] |= c == set->bytevals[i] ? bit : 0;
  }
  m->end = end_bit(len, eot, off);
}

#define SCAN_NAME wc_scan_scalar
#define SCAN_SHR shr_scalar
#define SCAN_TARGET
#define SCAN_MASKS masks_scalar
#include "scan_impl.h"
#undef SCAN_NAME
#undef SCAN_SHR
#undef SCAN_TARGET
#undef SCAN_MASKS

#if defined(__x86_64__) || defined(__i386__)

/* ASCII lowering without branches: 'A'..'Z' + 0x3F lands on -128..-103
 * as signed bytes, and nothing else does. */
static inline __m128i lower_sse2(__m128i v) {
  __m128i t = _mm_add_epi8(v, _mm_set1_epi8(0x3F));
  __m128i up = _mm_cmpgt_epi8(_mm_set1_epi8(-102), t);
  return _mm_or_si128(v, _mm_and_si128(up, _mm_set1_epi8(0x20)));
}

static inline uint64_t eq_sse2(const __m128i v[4], uint8_t c) {
  __m128i k = _mm_set1_epi8((char)c);
  uint64_t r = 0;
  for (int i = 0; i < 4; i++)
    r |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[i], k))
         << (16 * i);
  return r;
}

static inline void masks_sse2(const wc_needles_t *set, const uint8_t *buf,
                              size_t len, bool eot, size_t off, bool ci,
                              wc_block_t *m) {
  uint8_t tmp[64];
  const uint8_t *p = block_ptr(buf, len, off, tmp);
  __m128i v[4];
  for (int i = 0; i < 4; i++) {
    v[i] = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
    if (ci)
      v[i] = lower_sse2(v[i]);
  }
  m->sp = eq_sse2(v, ' ');
  m->nl = eq_sse2(v, '\n');
  m->cr = eq_sse2(v, '\r');
  for (size_t i = 0; i < set->nbytes; i++)
    m->eq[i] = eq_sse2(v, set->bytevals[i]);
  m->end = end_bit(len, eot, off);
}

#define SCAN_NAME wc_scan_sse2
#define SCAN_SHR shr_sse2
#define SCAN_TARGET
#define SCAN_MASKS masks_sse2
#include "scan_impl.h"
#undef SCAN_NAME
#undef SCAN_SHR
#undef SCAN_TARGET
#undef SCAN_MASKS

#define AVX2 __attribute__((target("avx2,bmi,popcnt")))

AVX2 static inline __m256i lower_avx2(__m256i v) {
  __m256i t = _mm256_add_epi8(v, _mm256_set1_epi8(0x3F));
  __m256i up = _mm256_cmpgt_epi8(_mm256_set1_epi8(-102), t);
  return _mm256_or_si256(v, _mm256_and_si256(up, _mm256_set1_epi8(0x20)));
}

AVX2 static inline uint64_t eq_avx2(__m256i a, __m256i b, uint8_t c) {
  __m256i k = _mm256_set1_epi8((char)c);
  uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, k));
  uint32_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, k));
  return (uint64_t)lo | ((uint64_t)hi << 32);
}

AVX2 static inline void masks_avx2(const wc_needles_t *set, const uint8_t *buf,
                                   size_t len, bool eot, size_t off, bool ci,
                                   wc_block_t *m) {
  uint8_t tmp[64];
  const uint8_t *p = block_ptr(buf, len, off, tmp);
  __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
  __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
  if (ci) {
    a = lower_avx2(a);
    b = lower_avx2(b);
  }
  m->sp = eq_avx2(a, b, ' ');
  m->nl = eq_avx2(a, b, '\n');
  m->cr = eq_avx2(a, b, '\r');
  for (size_t i = 0; i < set->nbytes; i++)
    m->eq[i] = eq_avx2(a, b, set->bytevals[i]);
  m->end = end_bit(len, eot, off);
}

#define SCAN_NAME wc_scan_avx2
#define SCAN_SHR shr_avx2
#define SCAN_TARGET AVX2
#define SCAN_MASKS masks_avx2
#include "scan_impl.h"
#undef SCAN_NAME
#undef SCAN_SHR
#undef SCAN_TARGET
#undef SCAN_MASKS

/* in_range(x, lo, hi) for bytes, as signed compares after a shift. */
AVX2 static inline __m256i in_range_avx2(__m256i x, uint8_t lo, uint8_t hi) {
  __m256i t = _mm256_add_epi8(x, _mm256_set1_epi8((char)(0x80 - lo)));
  return _mm256_cmpgt_epi8(_mm256_set1_epi8((char)(hi - lo + 1 - 128)), t);
}

/* Bytes that may end a word match: anything but an ASCII letter, digit or
 * '_' (a non-ASCII byte may be part of a letter: verified later). */
AVX2 static inline __m256i maybe_boundary_avx2(__m256i x) {
  __m256i w = _mm256_or_si256(in_range_avx2(x, '0', '9'),
                              in_range_avx2(_mm256_or_si256(
                                                x, _mm256_set1_epi8(0x20)),
                                            'a', 'z'));
  w = _mm256_or_si256(w, _mm256_cmpeq_epi8(x, _mm256_set1_epi8('_')));
  return _mm256_xor_si256(w, _mm256_set1_epi8(-1));
}

#define LOADU(q) _mm256_loadu_si256((const __m256i *)(const void *)(q))
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* ASCII bytes that are not word constituents: a certain word boundary. */
AVX2 static ALWAYS_INLINE __m256i ascii_nonword_avx2(__m256i x) {
  /* maybe_boundary minus the bytes >= 0x80 (negative as signed). */
  return _mm256_andnot_si256(
      _mm256_cmpgt_epi8(_mm256_setzero_si256(), x), maybe_boundary_avx2(x));
}

/* The end-of-word test at p + n for 32 positions. In word mode *def gets
 * the positions whose boundary is certain without decoding UTF-8. */
AVX2 static ALWAYS_INLINE __m256i end_avx2(const uint8_t *q, size_t n,
                                           bool ends_cr, const bool word,
                                           __m256i *def) {
  __m256i ve = LOADU(q + n);
  if (word) {
    *def = ascii_nonword_avx2(ve);
    if (ends_cr) /* "...\r" before "\n": the '\r' is not part of the line */
      *def = _mm256_andnot_si256(_mm256_cmpeq_epi8(ve, _mm256_set1_epi8('\n')),
                                 *def);
    return maybe_boundary_avx2(ve);
  }
  __m256i crlf =
      _mm256_and_si256(_mm256_cmpeq_epi8(ve, _mm256_set1_epi8('\r')),
                       _mm256_cmpeq_epi8(LOADU(q + n + 1),
                                         _mm256_set1_epi8('\n')));
  __m256i e =
      _mm256_or_si256(_mm256_cmpeq_epi8(ve, _mm256_set1_epi8(' ')), crlf);
  if (!ends_cr)
    e = _mm256_or_si256(e, _mm256_cmpeq_epi8(ve, _mm256_set1_epi8('\n')));
  *def = e;
  return e;
}

AVX2 static ALWAYS_INLINE __m256i start_avx2(const uint8_t *q,
                                             const bool word, __m256i *def) {
  __m256i vb = LOADU(q - 1);
  if (word) {
    *def = ascii_nonword_avx2(vb);
    return maybe_boundary_avx2(vb);
  }
  __m256i s = _mm256_or_si256(_mm256_cmpeq_epi8(vb, _mm256_set1_epi8(' ')),
                              _mm256_cmpeq_epi8(vb, _mm256_set1_epi8('\n')));
  *def = s;
  return s;
}

/* The end-of-word test of space mode for a range without '\r'. */
AVX2 static ALWAYS_INLINE __m256i end_nocr_avx2(const uint8_t *q, size_t n,
                                                bool ends_cr, const bool word,
                                                __m256i *def) {
  if (word)
    return end_avx2(q, n, ends_cr, word, def);
  __m256i ve = LOADU(q + n);
  __m256i e = _mm256_cmpeq_epi8(ve, _mm256_set1_epi8(' '));
  if (!ends_cr)
    e = _mm256_or_si256(e, _mm256_cmpeq_epi8(ve, _mm256_set1_epi8('\n')));
  *def = e;
  return e;
}

/*
 * The transposed kernel: a few short needles (at most WC_VEC_BYTES bytes)
 * in space mode. A piece of TP_POS positions is taken one needle at a
 * time, with the needle's bytes in registers and a loop specialised for its
 * length, so the inner loop is a handful of compares and a popcount; the
 * start-and-end masks of each length are computed once per piece.
 */
#define TP_POS 1024

AVX2 static ALWAYS_INLINE uint64_t tp_count(const uint8_t *q, size_t nb,
                                            const uint8_t (*bv)[32],
                                            const uint32_t *se, const int n,
                                            const bool ci) {
  __m256i c[WC_VEC_BYTES];
#pragma GCC unroll 8
  for (int t = 0; t < n; t++)
    c[t] = _mm256_load_si256((const __m256i *)(const void *)bv[t]);
  uint64_t acc = 0;
  for (size_t i = 0; i < nb; i++, q += 32) {
    __m256i v = LOADU(q);
    __m256i m = _mm256_cmpeq_epi8(ci ? lower_avx2(v) : v, c[0]);
#pragma GCC unroll 8
    for (int t = 1; t < n; t++) {
      v = LOADU(q + t);
      m = _mm256_and_si256(m, _mm256_cmpeq_epi8(ci ? lower_avx2(v) : v, c[t]));
    }
    acc += (uint64_t)__builtin_popcount((uint32_t)_mm256_movemask_epi8(m) &
                                        se[i]);
  }
  return acc;
}

AVX2 static ALWAYS_INLINE void tp_impl(const wc_needles_t *set,
                                       const uint8_t *buf, size_t lo,
                                       size_t hi, uint64_t *counts,
                                       const bool ci) {
  uint32_t se[16][TP_POS / 32];
  const size_t ng = set->ngroups;
  for (size_t a = lo; a < hi; a += TP_POS) {
    const size_t nb = (hi - a < TP_POS ? hi - a : TP_POS) / 32;
    const uint8_t *q = buf + a;
    bool cr = memchr(q, '\r', nb * 32 + set->maxlen + 1) != NULL;
    for (size_t i = 0; i < nb; i++) {
      __m256i sdef, s = start_avx2(q + 32 * i, false, &sdef);
      for (size_t g = 0; g < ng; g++) {
        __m256i edef, e = cr ? end_avx2(q + 32 * i, set->groups[g].n,
                                        set->groups[g].ends_cr, false, &edef)
                             : end_nocr_avx2(q + 32 * i, set->groups[g].n,
                                             set->groups[g].ends_cr, false,
                                             &edef);
        se[g][i] = (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(s, e));
      }
    }
    for (size_t g = 0; g < ng; g++) {
      const wc_group_t *gr = &set->groups[g];
      for (size_t k = gr->first; k < gr->first + gr->count; k++) {
        const size_t j = set->order[k];
        const uint8_t(*bv)[32] = set->v[j].bvec;
        switch (gr->n) {
#define TP_CASE(N)                                                             \
  case N:                                                                      \
    counts[j] += tp_count(q, nb, bv, se[g], N, ci);                            \
    break;
          TP_CASE(1) TP_CASE(2) TP_CASE(3) TP_CASE(4)
          TP_CASE(5) TP_CASE(6) TP_CASE(7) TP_CASE(8)
#undef TP_CASE
        default:
          break;
        }
      }
    }
  }
}

/* Verifies the candidates of one needle in a mask (the rare path). */
static void verify_bits(const wc_needles_t *set, size_t j, uint64_t bits,
                        size_t p, const uint8_t *buf, size_t len, bool sot,
                        bool eot, uint64_t base, uint64_t *until,
                        uint64_t *counts) {
  const wc_needle_t *nd = &set->v[j];
  const bool word = set->flags & WC_BOUNDARY_WORD;
  while (bits) {
    size_t c = p + (size_t)__builtin_ctzll(bits);
    bits &= bits - 1;
    if (word) {
      if (base + c < until[j])
        continue;
      if (wc_verify(set, nd, buf, len, sot, eot, c, true)) {
        counts[j]++;
        until[j] = base + c + nd->len;
      }
    } else {
      counts[j] += wc_verify(set, nd, buf, len, sot, eot, c, false);
    }
  }
}

/* Candidates of one needle at 32 positions: all of them, and in *def those
 * that are matches without further checks (for a needle whose compares
 * are exact). */
AVX2 static ALWAYS_INLINE uint32_t cand_avx2(__m256i s, __m256i sdef,
                                             __m256i e, __m256i edef,
                                             __m256i v0, __m256i v1,
                                             __m256i vl, __m256i c0,
                                             __m256i c1, __m256i cl, size_t n,
                                             uint32_t *def) {
  __m256i m = _mm256_cmpeq_epi8(v0, c0);
  if (n >= 2)
    m = _mm256_and_si256(m, _mm256_cmpeq_epi8(v1, c1));
  if (n >= 3)
    m = _mm256_and_si256(m, _mm256_cmpeq_epi8(vl, cl));
  *def = (uint32_t)_mm256_movemask_epi8(
      _mm256_and_si256(m, _mm256_and_si256(sdef, edef)));
  return (uint32_t)_mm256_movemask_epi8(
      _mm256_and_si256(m, _mm256_and_si256(s, e)));
}

#define LOADA(p) _mm256_load_si256((const __m256i *)(const void *)(p))

AVX2 static ALWAYS_INLINE void
multi(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
      bool eot, size_t lo, size_t hi, uint64_t base, uint64_t *until,
      uint64_t *counts, const bool ci, const bool word);

/*
 * The AVX2 bulk kernel. Unlike the block-mask kernels, it compares
 * "vertically": for 32 candidate positions p at once it loads the text at
 * p - 1, p, p + 1, p + n - 1, p + n and p + n + 1 (unaligned loads from the
 * same cache lines are cheap) and combines byte compares lane by lane, so
 * one movemask yields the candidates of a needle. A needle with `exact`
 * set is counted with a popcount, without a branch: mispredicted branches,
 * not loads, are what limits such a loop. Other candidates (rare) are
 * verified one by one. Loads and end tests are shared by the needles of
 * one group (same length). `ci` and `word` are constants in each instance;
 * a set of one needle has its own loop with every constant in a register.
 */
AVX2 static ALWAYS_INLINE void
bulk_impl(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
          bool eot, size_t lo, size_t hi, uint64_t base, uint64_t *until,
          uint64_t *counts, const bool ci, const bool word) {
  if (set->n == 1 && set->v[0].len <= 3) {
    const wc_needle_t *nd = &set->v[0];
    const size_t n = nd->len;
    const bool ends_cr = nd->ends_cr, exact = nd->exact;
    const __m256i c0 = _mm256_set1_epi8((char)nd->bytes[0]);
    const __m256i c1 = _mm256_set1_epi8((char)nd->bytes[n >= 2 ? 1 : 0]);
    const __m256i cl = _mm256_set1_epi8((char)nd->bytes[n - 1]);
    uint64_t acc = 0;
    for (size_t p = lo; p < hi; p += 32) {
      const uint8_t *q = buf + p;
      __m256i v0 = LOADU(q), v1 = v0, vl = v0, sdef, edef;
      if (n >= 2)
        v1 = LOADU(q + 1);
      if (n >= 3)
        vl = LOADU(q + n - 1);
      if (ci) {
        v0 = lower_avx2(v0);
        v1 = n >= 2 ? lower_avx2(v1) : v0;
        vl = n >= 3 ? lower_avx2(vl) : v1;
      }
      __m256i s = start_avx2(q, word, &sdef);
      __m256i e = end_avx2(q, n, ends_cr, word, &edef);
      uint32_t def, all = cand_avx2(s, sdef, e, edef, v0, v1, vl, c0, c1, cl,
                                    n, &def);
      if (exact) {
        acc += (uint64_t)__builtin_popcount(def);
        all &= ~def;
      }
      if (all)
        verify_bits(set, 0, all, p, buf, len, sot, eot, base, until, counts);
    }
    counts[0] += acc;
    return;
  }
  multi(set, buf, len, sot, eot, lo, hi, base, until, counts, ci, word);
}

AVX2 static ALWAYS_INLINE void
multi_impl(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
           bool eot, size_t lo, size_t hi, uint64_t base, uint64_t *until,
           uint64_t *counts, const bool ci, const bool word, const bool cr) {
  const size_t vmax = set->maxlen < WC_VEC_BYTES ? set->maxlen : WC_VEC_BYTES;
  const size_t ngroups = set->ngroups;
  const wc_group_t *const groups = set->groups;
  const size_t *const order = set->order;
  const wc_needle_t *const nds = set->v;
  for (size_t p = lo; p < hi; p += 32) {
    const uint8_t *q = buf + p;
    __m256i sdef, s = start_avx2(q, word, &sdef);
    __m256i v[WC_VEC_BYTES];
    for (size_t k = 0; k < vmax; k++) {
      v[k] = LOADU(q + k);
      if (ci)
        v[k] = lower_avx2(v[k]);
    }
    for (size_t g = 0; g < ngroups; g++) {
      const size_t n = groups[g].n, first = groups[g].first,
                   last = first + groups[g].count;
      __m256i edef, e = cr ? end_avx2(q, n, groups[g].ends_cr, word, &edef)
                           : end_nocr_avx2(q, n, groups[g].ends_cr, word,
                                           &edef);
      __m256i se = _mm256_and_si256(s, e), sedef = _mm256_and_si256(sdef, edef);
      __m256i vl = v[1];
      if (n > WC_VEC_BYTES) {
        vl = LOADU(q + n - 1);
        if (ci)
          vl = lower_avx2(vl);
      }
      for (size_t k = first; k < last; k++) {
        const size_t j = order[k];
        const uint8_t(*bv)[32] = nds[j].bvec;
        __m256i m = _mm256_and_si256(se, _mm256_cmpeq_epi8(v[0], LOADA(bv[0])));
        if (n > WC_VEC_BYTES) {
          m = _mm256_and_si256(m, _mm256_cmpeq_epi8(v[1], LOADA(bv[1])));
          m = _mm256_and_si256(m, _mm256_cmpeq_epi8(vl, LOADA(bv[2])));
        } else {
          for (size_t t = 1; t < n; t++)
            m = _mm256_and_si256(m, _mm256_cmpeq_epi8(v[t], LOADA(bv[t])));
        }
        uint32_t all = (uint32_t)_mm256_movemask_epi8(m);
        if (!word && n <= WC_VEC_BYTES) {
          /* space mode: the compares are exact */
          counts[j] += (uint64_t)__builtin_popcount(all);
          continue;
        }
        if (nds[j].exactv) {
          uint32_t def =
              (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(m, sedef));
          counts[j] += (uint64_t)__builtin_popcount(def);
          all &= ~def;
        }
        if (all)
          verify_bits(set, j, all, p, buf, len, sot, eot, base, until,
                      counts);
      }
    }
  }
}

/* Sets of several needles, or of one needle longer than 3 bytes. The end
 * test is simpler where the range holds no '\r' at all, which is checked
 * once per piece of MULTI_PIECE bytes. */
#define MULTI_PIECE (32 * 1024)
AVX2 static ALWAYS_INLINE void
multi(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
      bool eot, size_t lo, size_t hi, uint64_t base, uint64_t *until,
      uint64_t *counts, const bool ci, const bool word) {
  for (size_t a = lo; a < hi; a += MULTI_PIECE) {
    size_t b = hi - a > MULTI_PIECE ? a + MULTI_PIECE : hi;
    bool cr = !word && memchr(buf + a, '\r', b - a + set->maxlen + 1);
    if (cr)
      multi_impl(set, buf, len, sot, eot, a, b, base, until, counts, ci, word,
                 true);
    else
      multi_impl(set, buf, len, sot, eot, a, b, base, until, counts, ci, word,
                 false);
  }
}

AVX2 void wc_scan_avx2_bulk(const wc_needles_t *set, const uint8_t *buf,
                            size_t len, bool sot, bool eot, size_t lo,
                            size_t hi, uint64_t base, uint64_t *until,
                            uint64_t *counts) {
  const bool ci = set->flags & WC_IGNORE_CASE;
  const bool word = set->flags & WC_BOUNDARY_WORD;
  if (!ci && !word)
    bulk_impl(set, buf, len, sot, eot, lo, hi, base, until, counts, false,
              false);
  else if (ci && !word)
    bulk_impl(set, buf, len, sot, eot, lo, hi, base, until, counts, true,
              false);
  else if (!ci && word)
    bulk_impl(set, buf, len, sot, eot, lo, hi, base, until, counts, false,
              true);
  else
    bulk_impl(set, buf, len, sot, eot, lo, hi, base, until, counts, true,
              true);
}

/* ASCII lowering of 8 bytes at once; other bytes are left alone. */
static inline uint64_t lower8(uint64_t w) {
  const uint64_t h = 0x8080808080808080ull;
  uint64_t t = w | h;
  uint64_t ge_a = t - 0x4141414141414141ull; /* high bit: byte >= 'A' */
  uint64_t gt_z = t - 0x5B5B5B5B5B5B5B5Bull; /* high bit: byte > 'Z' */
  uint64_t up = ge_a & ~gt_z & ~w & h;
  return w | (up >> 2);
}

/* A word of the text against the needles that share its key, beyond the
 * first 8 bytes (long needles only). */
static void hash_long(const wc_needles_t *set, const uint8_t *word,
                      size_t wl, uint32_t d, uint64_t *dcount) {
  const bool ci = set->flags & WC_IGNORE_CASE;
  for (; d != UINT32_MAX; d = set->dist_next[d]) {
    const wc_needle_t *nd = &set->v[set->dist_rep[d]];
    size_t i = 8;
    while (i < wl && (ci ? lower(word[i]) : word[i]) == nd->bytes[i])
      i++;
    dcount[d] += i == wl;
  }
}

/*
 * The word-hash kernel: several needles in space mode. Separator masks give
 * every word start S and the distance to the next separator, so each word
 * is looked up once, whatever the number of needles: its first 8 bytes
 * (masked to its length, lowered for ignore case) and its length select
 * two slots of a table, and both are compared without a branch. A word
 * that ends in "\r\n" loses its '\r' first, exactly as lines() drops it.
 */
static const uint64_t len_mask[9] = {
    0,          0xFF,         0xFFFF,         0xFFFFFF,          0xFFFFFFFF,
    0xFFFFFFFFFFull, 0xFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFull, ~0ull};

AVX2 static ALWAYS_INLINE void
hash_impl(const wc_needles_t *set, const uint8_t *buf, size_t len, bool eot,
          size_t lo, size_t hi, uint64_t *dcount, uint64_t *hcount,
          const bool ci) {
  const wc_hslot_t *tab = set->htab;
  const unsigned shift = 64 - set->hbits;
  const uint64_t m1 = set->hmul1, m2 = set->hmul2;
  const uint32_t maxlen = (uint32_t)set->maxlen;
  const __m256i SP = _mm256_set1_epi8(' '), NL = _mm256_set1_epi8('\n');
  uint64_t prev = buf[lo - 1] == ' ' || buf[lo - 1] == '\n';
  for (size_t p = lo; p < hi; p += 32) {
    const uint8_t *q = buf + p;
    __m256i a = LOADU(q), b = LOADU(q + 32);
    uint64_t d0 = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(
        _mm256_cmpeq_epi8(a, SP), _mm256_cmpeq_epi8(a, NL)));
    uint64_t d1 = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(
        _mm256_cmpeq_epi8(b, SP), _mm256_cmpeq_epi8(b, NL)));
    uint64_t dm = d0 | (d1 << 32);
    uint64_t st = ((d0 << 1) | prev) & 0xFFFFFFFFull;
    prev = d0 >> 31;
    while (st) {
      size_t i = (size_t)__builtin_ctzll(st);
      st &= st - 1;
      uint64_t rest = dm >> i;
      size_t wl;
      const uint8_t *w0 = q + i;
      if (__builtin_expect(rest != 0, 1)) {
        wl = (size_t)__builtin_ctzll(rest);
        /* "\r\n": the '\r' is not part of the line. w0[-1] is readable
         * (lo >= 1; reached as w0 - 1, not w0 + SIZE_MAX, which UBSan takes
         * for a pointer overflow) and w0[wl] is the separator found above. */
        wl -= (size_t)((wl > 0) & (w0[(ptrdiff_t)wl - 1] == '\r') &
                       (w0[wl] == '\n'));
      } else {
        /* A word of 33 bytes or more: find its end the slow way. */
        const uint8_t *e = w0 + (64 - i);
        while (e < buf + len && *e != ' ' && *e != '\n')
          e++;
        if (e == buf + len && !eot)
          continue; /* longer than any needle: the caller's look-ahead */
        wl = (size_t)(e - w0);
        if (e < buf + len && *e == '\n' && w0[wl - 1] == '\r')
          wl--;
        if (wl > maxlen)
          continue;
      }
      uint64_t w;
      memcpy(&w, w0, 8);
      w &= len_mask[wl < 8 ? wl : 8];
      if (ci)
        w = lower8(w);
      uint64_t k = w ^ ((uint64_t)wl * 0x9E3779B97F4A7C15ull);
      const uint64_t h1 = (k * m1) >> shift, h2 = (k * m2) >> shift;
      const wc_hslot_t *s1 = &tab[h1], *s2 = &tab[h2];
      uint64_t e1 = (s1->w == w) & (s1->len == wl);
      uint64_t e2 = (s2->w == w) & (s2->len == wl) & (h1 != h2);
      if (__builtin_expect((e1 | e2) & (wl > 8), 0)) {
        hash_long(set, w0, wl, e1 ? s1->d : s2->d, dcount);
        continue;
      }
      /* Per-slot counters: consecutive words seldom share a slot, so the
       * additions do not queue behind each other as they would on one
       * "no match" counter. */
      hcount[h1] += e1;
      hcount[h2] += e2;
    }
  }
}

AVX2 static void tp_bulk(const wc_needles_t *set, const uint8_t *buf,
                         size_t lo, size_t hi, uint64_t *counts) {
  if (set->flags & WC_IGNORE_CASE)
    tp_impl(set, buf, lo, hi, counts, true);
  else
    tp_impl(set, buf, lo, hi, counts, false);
}

AVX2 void wc_scan_hash_bulk(const wc_needles_t *set, const uint8_t *buf,
                            size_t len, bool eot, size_t lo, size_t hi,
                            uint64_t *counts) {
  const size_t nd = set->ndistinct, size = (size_t)1 << set->hbits;
  uint64_t local[512] = {0}, *dcount = local, *hcount = local + 256;
  if (nd + 1 > 256 || size > 256) {
    if (!(dcount = calloc(nd + 1 + size, sizeof(*dcount)))) {
      /* No memory for counters: the edge kernel needs none. */
      wc_scan_avx2(set, buf, len, true, eot, lo, hi, 0, NULL, counts);
      return;
    }
    hcount = dcount + nd + 1;
  }
  if (set->flags & WC_IGNORE_CASE)
    hash_impl(set, buf, len, eot, lo, hi, dcount, hcount, true);
  else
    hash_impl(set, buf, len, eot, lo, hi, dcount, hcount, false);
  for (size_t h = 0; h < size; h++)
    if (set->htab[h].len != UINT32_MAX)
      dcount[set->htab[h].d] += hcount[h];
  for (size_t j = 0; j < set->n; j++)
    counts[j] += dcount[set->dist_of[j]];
  if (dcount != local)
    free(dcount);
}

static bool have_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("popcnt");
}
#endif

void wc_scan(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
             bool eot, size_t from, size_t to, uint64_t base, uint64_t *until,
             uint64_t *counts) {
  if (from >= to)
    return;
#if defined(__x86_64__) || defined(__i386__)
  if (!(set->flags & (WC_FORCE_SCALAR | WC_FORCE_SSE2)) && have_avx2()) {
    size_t lo = from > 0 ? from : 1, hi = lo;
    if (!(set->flags & WC_BOUNDARY_WORD) &&
        (set->n > 1 || set->v[0].len > 3)) {
      /* Several needles: the word-hash kernel takes the middle. */
      if (to > lo && len > 64) {
        size_t lim = to < len - 64 ? to : len - 64;
        if (lim > lo)
          hi = lo + (lim - lo) / 32 * 32;
      }
      if (hi == lo) {
        wc_scan_avx2(set, buf, len, sot, eot, from, to, base, until, counts);
        return;
      }
      wc_scan_avx2(set, buf, len, sot, eot, from, lo, base, until, counts);
      if (set->n <= 16 && set->ngroups <= 16 && set->maxlen <= WC_VEC_BYTES)
        tp_bulk(set, buf, lo, hi, counts);
      else
        wc_scan_hash_bulk(set, buf, len, eot, lo, hi, counts);
      wc_scan_avx2(set, buf, len, sot, eot, hi, to, base, until, counts);
      return;
    }
    /* The bulk kernel takes the middle, the block kernel the edges. */
    if (to > lo && len > set->maxlen + 1) {
      size_t lim = to < len - set->maxlen - 1 ? to : len - set->maxlen - 1;
      if (lim > lo)
        hi = lo + (lim - lo) / 32 * 32;
    }
    if (hi > lo) {
      wc_scan_avx2(set, buf, len, sot, eot, from, lo, base, until, counts);
      wc_scan_avx2_bulk(set, buf, len, sot, eot, lo, hi, base, until, counts);
      wc_scan_avx2(set, buf, len, sot, eot, hi, to, base, until, counts);
    } else {
      wc_scan_avx2(set, buf, len, sot, eot, from, to, base, until, counts);
    }
    return;
  }
  if (!(set->flags & WC_FORCE_SCALAR)) {
    wc_scan_sse2(set, buf, len, sot, eot, from, to, base, until, counts);
    return;
  }
#endif
  wc_scan_scalar(set, buf, len, sot, eot, from, to, base, until, counts);
}

const char *wc_kernel_name(void) {
#if defined(__x86_64__) || defined(__i386__)
  return have_avx2() ? "avx2" : "sse2";
#else
  return "scalar";
#endif
}
