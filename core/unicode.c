/*
 * unicode.c - UTF-8 decoding, simple case folding and word constituents.
 *
 * The tables come from utf8proc (Debian's libutf8proc); this file only
 * decides how to use them:
 * - simple case folding (CaseFolding.txt C + S): utf8proc stores the full
 *   folding (C + F). Where the full folding is one code point it is the C
 *   entry. Where it is several (status F), the S entry, when there is one,
 *   is the simple lowercase mapping; U+0130 has no C or S entry (its T entry
 *   is for Turkic locales only), so it folds to itself. The tests check the
 *   result against CaseFolding.txt for every code point.
 * - word constituents (as grep -w in a UTF-8 locale, and with combining
 *   marks, which never start a word of their own: UAX #29 rule WB4): '_'
 *   and the categories L*, M*, Nl and Nd.
 * Invalid UTF-8 is never an error here: an invalid byte is passed through
 * as itself, and counts as a non-word character.
 */
#include "internal.h"

#include <string.h>
#include <utf8proc.h>

size_t wc_utf8_decode(const uint8_t *s, size_t n, int32_t *cp,
                      bool *truncated) {
  *truncated = false;
  if (n == 0)
    return 0;
  uint8_t b = s[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t len;
  int32_t c, min;
  uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2, c = b & 0x1F, min = 0x80;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3, c = b & 0x0F, min = 0x800;
    if (b == 0xE0)
      lo = 0xA0; /* overlong */
    if (b == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4, c = b & 0x07, min = 0x10000;
    if (b == 0xF0)
      lo = 0x90;
    if (b == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t i = 1; i < len; i++) {
    if (i >= n) {
      *truncated = true;
      return 0;
    }
    uint8_t x = s[i];
    if (i == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF))
      return 0;
    c = (c << 6) | (x & 0x3F);
  }
  (void)min;
  *cp = c;
  return len;
}

size_t wc_utf8_encode(int32_t cp, uint8_t *out) {
  if (cp < 0x80) {
    out[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (uint8_t)(0xC0 | (cp >> 6));
    out[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xE0 | (cp >> 12));
    out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | (cp >> 18));
  out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

int wc_utf8_valid(const void *s, size_t len) {
  const uint8_t *p = s;
  size_t i = 0;
  while (i < len) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    int32_t cp;
    bool trunc;
    size_t k = wc_utf8_decode(p + i, len - i, &cp, &trunc);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

bool wc_is_ascii(const uint8_t *s, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t a, b, c, d;
    memcpy(&a, s + i, 8);
    memcpy(&b, s + i + 8, 8);
    memcpy(&c, s + i + 16, 8);
    memcpy(&d, s + i + 24, 8);
    acc |= a | b | c | d;
    if (acc & 0x8080808080808080ull)
      return false;
  }
  for (; i < n; i++)
    acc |= s[i];
  return (acc & 0x8080808080808080ull) == 0;
}

int32_t wc_simple_fold(int32_t cp) {
  if (cp < 0x80)
    return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp > 0x10FFFF || cp == 0x130)
    return cp;
  utf8proc_int32_t dst[4];
  int bc = 0;
  utf8proc_ssize_t k =
      utf8proc_decompose_char(cp, dst, 4, UTF8PROC_CASEFOLD, &bc);
  if (k == 1)
    return dst[0];
  if (k > 1)
    return utf8proc_tolower(cp);
  return cp;
}

int wc_is_word_char(int32_t cp) {
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= '0' && cp <= '9') || cp == '_';
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

size_t wc_fold(const uint8_t *in, size_t n, uint8_t *out, bool partial_ok,
               size_t *consumed) {
  size_t i = 0, o = 0;
  while (i < n) {
    uint8_t b = in[i];
    if (b < 0x80) {
      out[o++] = (b >= 'A' && b <= 'Z') ? (uint8_t)(b + 32) : b;
      i++;
      continue;
    }
    int32_t cp;
    bool trunc;
    size_t k = wc_utf8_decode(in + i, n - i, &cp, &trunc);
    if (k == 0) {
      if (trunc && partial_ok)
        break;
      out[o++] = b;
      i++;
      continue;
    }
    o += wc_utf8_encode(wc_simple_fold(cp), out + o);
    i += k;
  }
  *consumed = i;
  return o;
}

bool wc_word_before(const uint8_t *buf, size_t p) {
  if (p == 0)
    return false;
  uint8_t b = buf[p - 1];
  if (b < 0x80)
    return wc_is_word_char(b);
  /* Find the lead byte of the character that ends at p - 1. */
  size_t start = p - 1, lim = p >= 4 ? p - 4 : 0;
  while (start > lim && (buf[start] & 0xC0) == 0x80)
    start--;
  int32_t cp;
  bool trunc;
  size_t k = wc_utf8_decode(buf + start, p - start, &cp, &trunc);
  if (k == 0 || start + k != p)
    return false;
  return wc_is_word_char(cp);
}

bool wc_word_at(const uint8_t *buf, size_t len, size_t p) {
  if (p >= len)
    return false;
  uint8_t b = buf[p];
  if (b < 0x80)
    return wc_is_word_char(b);
  int32_t cp;
  bool trunc;
  size_t k = wc_utf8_decode(buf + p, len - p, &cp, &trunc);
  if (k == 0)
    return false;
  return wc_is_word_char(cp);
}

bool wc_inside_char(const uint8_t *buf, size_t len, size_t p) {
  for (size_t back = 1; back <= 3 && back <= p; back++) {
    uint8_t b = buf[p - back];
    if ((b & 0xC0) != 0x80) {
      /* b starts the only character that could cover p */
      int32_t cp;
      bool trunc;
      size_t avail = len - (p - back);
      size_t k = wc_utf8_decode(buf + p - back, avail < 4 ? avail : 4, &cp,
                                &trunc);
      return k > back;
    }
  }
  return false;
}
