/*
 * scan_impl.h - the scan loop, included once per instruction set by scan.c
 * with SCAN_NAME (the function to define), SCAN_TARGET (its target
 * attribute) and SCAN_MASKS (the block-mask function of that ISA).
 *
 * The text is processed in 64-byte blocks. For each block the mask function
 * gives one bit per byte for ' ', '\n', '\r' and for every distinct needle
 * byte (see wc_block_t). With the masks of the next block at hand, the loop
 * derives for each position p:
 *   S(p)  p starts a word (the byte before is ' ' or '\n', or p is the
 *         start of the text);
 *   E(p)  a word may end just before p (p is ' ', '\n', "\r\n" or the end
 *         of the text; '\n' is left out for needles ending in '\r');
 * and for needle j of length n the candidates
 *   S(p) & B0(p) & B1(p+1) & Blast(p+n-1) & E(p+n)
 * which, for n <= 3 in space mode, are exactly the matches: a popcount
 * counts them without a branch. Longer needles verify the middle bytes of
 * each (rare) candidate; word mode verifies the characters around it.
 */
SCAN_TARGET static inline uint64_t SCAN_SHR(uint64_t a, uint64_t b,
                                            size_t s) {
  return s == 0 ? a : (a >> s) | (b << (64 - s));
}

SCAN_TARGET void SCAN_NAME(const wc_needles_t *set, const uint8_t *buf,
                           size_t len, bool sot, bool eot, size_t from,
                           size_t to, uint64_t base, uint64_t *until,
                           uint64_t *counts) {
  if (from >= to)
    return;
  const bool ci = set->flags & WC_IGNORE_CASE;
  const bool word = set->flags & WC_BOUNDARY_WORD;
  const size_t nn = set->n;
  wc_block_t blk[2];
  wc_block_t *cur = &blk[0], *nxt = &blk[1];
  size_t k = from / 64;
  const size_t kend = (to - 1) / 64;
  uint64_t prev_d;
  if (k == 0) {
    prev_d = sot ? 1 : 0;
  } else {
    uint8_t c = buf[64 * k - 1];
    prev_d = c == ' ' || c == '\n';
  }
  SCAN_MASKS(set, buf, len, eot, 64 * k, ci, cur);
  for (; k <= kend; k++) {
    const size_t off = 64 * k;
    if (off + 64 >= len)
      masks_past_end(set, len, eot, off + 64, nxt);
    else
      SCAN_MASKS(set, buf, len, eot, off + 64, ci, nxt);
    uint64_t range = ~0ull;
    if (off < from)
      range &= ~0ull << (from - off);
    if (to - off < 64)
      range &= (1ull << (to - off)) - 1;
    if (word) {
      for (size_t j = 0; j < nn; j++) {
        const wc_needle_t *nd = &set->v[j];
        const size_t n = nd->len;
        uint64_t m = cur->eq[nd->i0] & range;
        if (!m)
          continue;
        if (n >= 2)
          m &= SCAN_SHR(cur->eq[nd->i1], nxt->eq[nd->i1], 1);
        if (n <= 64)
          m &= SCAN_SHR(cur->eq[nd->il], nxt->eq[nd->il], n - 1);
        while (m) {
          size_t p = off + (size_t)__builtin_ctzll(m);
          m &= m - 1;
          if (base + p < until[j])
            continue;
          if (wc_verify(set, nd, buf, len, sot, eot, p, true)) {
            counts[j]++;
            until[j] = base + p + n;
          }
        }
      }
    } else {
      const uint64_t d = cur->sp | cur->nl;
      const uint64_t s = ((d << 1) | prev_d) & range;
      prev_d = d >> 63;
      if (s) {
        const uint64_t crlf = cur->cr & ((cur->nl >> 1) | (nxt->nl << 63));
        const uint64_t e0 = cur->sp | crlf | cur->end;
        const uint64_t e1 = e0 | cur->nl;
        /* Bit 63 of the next block's "\r\n" is unknown here; needles of
         * at most WC_MASK_MAX_LEN bytes never look that far. */
        const uint64_t ncrlf = nxt->cr & (nxt->nl >> 1);
        const uint64_t n0 = nxt->sp | ncrlf | nxt->end;
        const uint64_t n1 = n0 | nxt->nl;
        for (size_t j = 0; j < nn; j++) {
          const wc_needle_t *nd = &set->v[j];
          const size_t n = nd->len;
          uint64_t m = s & cur->eq[nd->i0];
          if (!m)
            continue;
          if (n >= 2)
            m &= SCAN_SHR(cur->eq[nd->i1], nxt->eq[nd->i1], 1);
          const bool long_needle = n > WC_MASK_MAX_LEN;
          if (!long_needle) {
            m &= SCAN_SHR(cur->eq[nd->il], nxt->eq[nd->il], n - 1);
            m &= nd->ends_cr ? SCAN_SHR(e0, n0, n) : SCAN_SHR(e1, n1, n);
          }
          if (nd->exact) {
            counts[j] += (uint64_t)__builtin_popcountll(m);
            continue;
          }
          while (m) {
            size_t p = off + (size_t)__builtin_ctzll(m);
            m &= m - 1;
            counts[j] += wc_verify(set, nd, buf, len, sot, eot, p, long_needle);
          }
        }
      }
    }
    wc_block_t *t = cur;
    cur = nxt;
    nxt = t;
  }
}
