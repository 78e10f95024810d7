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

static bool have_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("popcnt");
}
#endif

void wc_scan(const wc_needles_t *set, const uint8_t *buf, size_t len, bool sot,
             bool eot, size_t from, size_t to, uint64_t base, uint64_t *until,
             uint64_t *counts) {
#if defined(__x86_64__) || defined(__i386__)
  if (!(set->flags & (WC_FORCE_SCALAR | WC_FORCE_SSE2)) && have_avx2()) {
    wc_scan_avx2(set, buf, len, sot, eot, from, to, base, until, counts);
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
