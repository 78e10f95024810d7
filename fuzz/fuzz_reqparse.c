/*
 * fuzz_reqparse.c - libFuzzer target: the request parsers of server/reqparse.c
 * (query string, form body, JSON body) on arbitrary bytes.
 *
 * Input layout:
 *   byte 0      bits 0-1: the body parser (0 none, 1 form, 2 JSON, 3 JSON);
 *               bit 2: small limits (2 needles of at most 4 bytes);
 *               bit 3: the JSON text's room is the body's own buffer, as
 *               the server lends a small body's (flat path check only);
 *               bits 4-7: ignored
 *   the rest    a query string, then optionally the byte 0x00 and a body:
 *               the query is parsed first and the body into the same spec,
 *               as the server does for a JSON or form request with options
 *               in its query.
 * Checked on every input (any failure aborts with a message):
 *   - no crash, no leak, no undefined behaviour (sanitizers);
 *   - a failure returns -EINVAL or -ENOMEM and sets an error whose JSON body
 *     (wc_errors_body) is valid UTF-8 JSON {"error":{"status":N,...}} with
 *     the status of the error kind;
 *   - a success holds only valid needles: non-empty, valid UTF-8, no space,
 *     no newline, within the length limit, distinct, NUL-terminated at their
 *     length, at most max_needles of them; text[text_len] is NUL;
 *   - for the query and form parsers, the needles equal those of an
 *     independent decoder written here (distinct, in first-seen order), and
 *     the form text equals its decoded "text" field;
 *   - for JSON bodies, the fast path (wc_reqparse_json_split and
 *     wc_json_unescape, whole and in slices) agrees with wc_reqparse_json;
 *   - for JSON bodies, wc_reqparse_json's flat path and its cJSON path
 *     (wc_reqparse_flat_allowed 1 and 0) give the same return value, the
 *     same error message and the same needles, options and text (after an
 *     error too).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "reqparse.h"
#include "wordcount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const uint8_t *in, size_t len) {
  fprintf(stderr, "fuzz_reqparse: %s (input of %zu bytes:", what, len);
  for (size_t i = 0; i < len && i < 256; i++)
    fprintf(stderr, " %02x", in[i]);
  fprintf(stderr, ")\n");
  abort();
}

/* The error body must be valid JSON naming the status of its kind. */
static void check_error(const wc_error_t *e, const uint8_t *in, size_t len) {
  char body[512];
  size_t n;
  cJSON *root, *err, *st;
  if (e->kind <= WC_E_NONE || e->kind >= WC_E__COUNT)
    die("failure without an error kind", in, len);
  if (memchr(e->msg, '\0', sizeof e->msg) == NULL)
    die("error message not NUL-terminated", in, len);
  n = wc_errors_body(e, body, sizeof body);
  if (n >= sizeof body || body[n] != '\0')
    die("error body length", in, len);
  if (!wc_utf8_valid(body, n))
    die("error body is not valid UTF-8", in, len);
  root = cJSON_ParseWithLength(body, n);
  if (root == NULL)
    die("error body is not JSON", in, len);
  err = cJSON_GetObjectItemCaseSensitive(root, "error");
  st = cJSON_GetObjectItemCaseSensitive(err, "status");
  if (!cJSON_IsNumber(st) || st->valueint != wc_errors_status(e->kind) ||
      !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "code")) ||
      !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message")))
    die("error body shape", in, len);
  cJSON_Delete(root);
}

static void check_spec(const wc_countspec_t *s, const wc_reqlimits_t *lim,
                       const uint8_t *in, size_t len) {
  if (s->n > lim->max_needles)
    die("more needles than max_needles", in, len);
  for (size_t i = 0; i < s->n; i++) {
    const char *p = s->needles[i];
    size_t l = s->lens[i];
    if (l == 0 || l > lim->max_needle_bytes)
      die("needle length out of range", in, len);
    if (p[l] != '\0')
      die("needle not NUL-terminated at its length", in, len);
    if (memchr(p, ' ', l) != NULL || memchr(p, '\n', l) != NULL)
      die("needle with a space or newline accepted", in, len);
    if (!wc_utf8_valid(p, l))
      die("invalid UTF-8 needle accepted", in, len);
    for (size_t k = 0; k < i; k++)
      if (s->lens[k] == l && memcmp(s->needles[k], p, l) == 0)
        die("needle kept twice", in, len);
  }
  if ((s->flags & ~3u) != 0 || s->mode < WC_MODE_AUTO ||
      s->mode > WC_MODE_PARALLEL)
    die("flags or mode out of range", in, len);
  if (s->has_text && (s->text == NULL || s->text[s->text_len] != '\0'))
    die("text not NUL-terminated at its length", in, len);
}

/* An independent %-decoder; -1 on a bad escape. */
static long decode(const char *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '+') {
      out[o++] = ' ';
    } else if (p[i] == '%') {
      unsigned v = 0;
      if (i + 2 >= n)
        return -1;
      for (int k = 1; k <= 2; k++) {
        char c = p[i + k];
        v <<= 4;
        if (c >= '0' && c <= '9')
          v |= (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
          v |= (unsigned)((c | 0x20) - 'a' + 10);
        else
          return -1;
      }
      out[o++] = (char)v;
      i += 2;
    } else {
      out[o++] = p[i];
    }
  }
  return (long)o;
}

/* On a successful urlencoded parse: the needles and the text must be what
 * an independent walk over the pairs finds. */
static void check_urlencoded(const wc_countspec_t *s, size_t n0, const char *q,
                             size_t n, int form, const uint8_t *in,
                             size_t len) {
  char *name = malloc(n + 1), *val = malloc(n + 1);
  size_t want = n0, i = 0;
  if (name == NULL || val == NULL)
    abort();
  while (i <= n) {
    const char *amp = memchr(q + i, '&', n - i);
    size_t end = amp ? (size_t)(amp - q) : n;
    const char *eq = memchr(q + i, '=', end - i);
    size_t nend = eq ? (size_t)(eq - q) : end;
    long nl, vl;
    if (end > i) {
      nl = decode(q + i, nend - i, name);
      vl = eq ? decode(q + nend + 1, end - nend - 1, val) : 0;
      if (nl < 0 || vl < 0)
        die("accepted a bad %-escape", in, len);
      if ((nl == 6 && memcmp(name, "needle", 6) == 0) ||
          (form && nl == 7 && memcmp(name, "needles", 7) == 0)) {
        size_t k;
        for (k = 0; k < want; k++)
          if (s->lens[k] == (size_t)vl &&
              memcmp(s->needles[k], val, (size_t)vl) == 0)
            break;
        if (k == want) {
          if (want >= s->n || s->lens[want] != (size_t)vl ||
              memcmp(s->needles[want], val, (size_t)vl) != 0)
            die("needles differ from an independent decode", in, len);
          want++;
        }
      } else if (form && nl == 4 && memcmp(name, "text", 4) == 0) {
        if (!s->has_text || s->text_len != (size_t)vl ||
            memcmp(s->text, val, (size_t)vl) != 0)
          die("text differs from an independent decode", in, len);
      }
    }
    i = end + 1;
  }
  if (want != s->n)
    die("needle count differs from an independent decode", in, len);
  free(name);
  free(val);
}

/*
 * wc_textscan_feed over the body in pieces (sized from the input's bytes),
 * then wc_reqparse_json_split_hint: the same answer as the split without
 * the hint (rs, vs, ve, and the same needles and options).
 */
static void check_hint(const wc_countspec_t *q, const char *body, size_t blen,
                       const wc_reqlimits_t *lim, int rs, size_t vs, size_t ve,
                       const wc_countspec_t *b, const uint8_t *in, size_t len) {
  wc_textscan_t ts;
  wc_countspec_t h;
  size_t pos = 0, hvs = 0, hve = 0, i = 0;
  int rh;
  memset(&ts, 0, sizeof ts);
  while (pos < blen) {
    size_t step = 1 + in[i++ % len] % 61;
    pos = blen - pos < step ? blen : pos + step;
    wc_textscan_feed(&ts, body, pos);
    if (ts.state == 2 && (ts.ve < ts.vs || ts.ve >= pos || body[ts.ve] != '"'))
      die("textscan: its end is not a quote it has seen", in, len);
  }
  wc_reqparse_init(&h);
  h.flags = q->flags;
  h.mode = q->mode;
  rh = wc_reqparse_json_split_hint(&h, body, blen, lim, &ts, &hvs, &hve);
  if (rh != rs)
    die("json split: the hint changes whether it is taken", in, len);
  if (rs && (hvs != vs || hve != ve || h.n != b->n || h.flags != b->flags ||
             h.mode != b->mode))
    die("json split: the hint changes the split", in, len);
  wc_reqparse_free(&h);
}

/*
 * The fast JSON path against cJSON's: whenever wc_reqparse_json_split takes
 * a body, decoding its text in place (whole, and in wc_split slices made
 * safe by wc_json_cuts, decoded one by one in reverse order) succeeds
 * exactly when wc_reqparse_json (+ finish) does; then the text, needles and
 * options are the same, and otherwise wc_jbad_error, from what the failing
 * decodes saw, gives wc_reqparse_json's error message byte for byte.
 */
static void check_json_fast(const wc_countspec_t *q, const char *body,
                            size_t blen, const wc_reqlimits_t *lim,
                            const uint8_t *in, size_t len) {
  wc_countspec_t a, b;
  wc_error_t e, ew, es;
  wc_jbad_t bw, bs;
  size_t vs = 0, ve = 0, olen = 0, slen = 0, cuts[5], k, at = 0;
  char *whole, *sliced, *out2;
  int ra, ru, rs = 0;
  wc_reqparse_init(&a);
  wc_reqparse_init(&b);
  a.flags = b.flags = q->flags;
  a.mode = b.mode = q->mode;
  ra = wc_reqparse_json_split(&b, body, blen, lim, &vs, &ve);
  check_hint(q, body, blen, lim, ra, vs, ve, &b, in, len);
  if (!ra) {
    wc_reqparse_free(&b);
    return;
  }
  if (vs > ve || ve > blen || b.text_len != 0 || !b.has_text)
    die("json_split: bad span or text", in, len);
  memset(&e, 0, sizeof e);
  wc_reqparse_flat_allowed = 0; /* the reference: cJSON */
  ra = wc_reqparse_json(&a, body, blen, lim, &e);
  wc_reqparse_flat_allowed = 1;
  if (ra == 0)
    ra = wc_reqparse_finish(&a, WC_BODY_JSON, &e);
  whole = malloc(blen + 1);
  sliced = malloc(blen + 1);
  out2 = malloc(ve - vs + 1);
  if (whole == NULL || sliced == NULL || out2 == NULL)
    abort();
  memcpy(whole, body, blen);
  memcpy(sliced, body, blen);
  wc_jbad_init(&bw);
  wc_jbad_init(&bs);
  ru = wc_json_unescape(whole + vs, ve - vs, whole + vs, &olen, &at);
  if (ru < 0) {
    if (at >= ve - vs ||
        memcmp(whole + vs + at, body + vs + at, ve - vs - at) != 0)
      die("json unescape: bytes from fail_at on were changed", in, len);
    wc_jbad_add(&bw, whole + vs, ve - vs, at, vs);
  }
  k = wc_split(body + vs, ve - vs, 4, cuts);
  k = wc_json_cuts(body + vs, ve - vs, cuts, k);
  if (k < 1 || cuts[0] != 0 || cuts[k] != ve - vs)
    die("json cuts: bad bounds", in, len);
  for (size_t i = 0; i < k; i++) {
    if (cuts[i] >= cuts[i + 1] && ve > vs)
      die("json cuts: not increasing", in, len);
    for (size_t c = cuts[i + 1] > 12 ? cuts[i + 1] - 12 : 0;
         i + 1 < k && c < cuts[i + 1]; c++)
      if (body[vs + c] == '\\')
        die("json cuts: a backslash within 12 bytes before a cut", in, len);
  }
  for (size_t i = k; i-- > 0;) { /* any order: slices are independent */
    size_t n = 0, sat = 0;
    char *p = sliced + vs + cuts[i];
    if (wc_json_unescape(p, cuts[i + 1] - cuts[i], p, &n, &sat) < 0) {
      wc_jbad_add(&bs, p, cuts[i + 1] - cuts[i], sat, vs + cuts[i]);
      rs = -1;
    }
  }
  if (rs == 0)
    for (size_t i = 0; i < k; i++) {
      size_t n = 0;
      (void)wc_json_unescape(body + vs + cuts[i], cuts[i + 1] - cuts[i],
                             out2 + slen, &n, &at);
      /* the slice decoded in place sits at the start of its span */
      if (memcmp(out2 + slen, sliced + vs + cuts[i], n) != 0)
        die("json unescape: in place differs from a copy", in, len);
      slen += n;
    }
  if ((ru == 0) != (rs == 0) ||
      (ru == 0 && (olen != slen || memcmp(whole + vs, out2, olen) != 0)))
    die("json unescape: slices differ from the whole", in, len);
  if ((ru == 0) != (ra == 0))
    die("json fast path and cJSON disagree on success", in, len);
  if (ru == 0) {
    if (a.text_len != olen || memcmp(a.text, whole + vs, olen) != 0)
      die("json fast path: text differs from cJSON's", in, len);
    if (a.n != b.n || a.flags != b.flags || a.mode != b.mode)
      die("json fast path: options differ", in, len);
    for (size_t i = 0; i < a.n; i++)
      if (a.lens[i] != b.lens[i] ||
          memcmp(a.needles[i], b.needles[i], a.lens[i]) != 0)
        die("json fast path: needles differ", in, len);
  } else {
    memset(&ew, 0, sizeof ew);
    memset(&es, 0, sizeof es);
    wc_jbad_error(&bw, &ew);
    wc_jbad_error(&bs, &es);
    if (ew.kind != e.kind || strcmp(ew.msg, e.msg) != 0)
      die("json fast path: error (whole) differs from cJSON's", in, len);
    if (es.kind != e.kind || strcmp(es.msg, e.msg) != 0)
      die("json fast path: error (slices) differs from cJSON's", in, len);
  }
  free(whole);
  free(sliced);
  free(out2);
  wc_reqparse_free(&a);
  wc_reqparse_free(&b);
}

/*
 * wc_reqparse_json with its flat path against the same call with cJSON
 * only, both after the same query string, as the server parses them.
 */
static void check_flat(const char *q, size_t qlen, const char *body,
                       size_t blen, const wc_reqlimits_t *lim, int in_body,
                       const uint8_t *in, size_t len) {
  wc_countspec_t a, b;
  wc_error_t ea, eb;
  int ra, rb, same;
  char *ba = malloc(blen + 1), *bb = malloc(blen + 1);
  if (ba == NULL || bb == NULL)
    abort();
  memcpy(ba, body, blen);
  memcpy(bb, body, blen);
  wc_reqparse_init(&a);
  wc_reqparse_init(&b);
  if (wc_reqparse_query(&a, q, qlen, lim, &ea) == 0 &&
      wc_reqparse_query(&b, q, qlen, lim, &eb) == 0) {
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    if (in_body) {
      a.text_room = ba;
      b.text_room = bb;
      a.text_room_cap = b.text_room_cap = blen + 1;
    }
    ra = wc_reqparse_json(&a, ba, blen, lim, &ea);
    wc_reqparse_flat_allowed = 0;
    rb = wc_reqparse_json(&b, bb, blen, lim, &eb);
    wc_reqparse_flat_allowed = 1;
    if (ra != rb)
      die("json flat path: return value differs from cJSON's", in, len);
    if (ra < 0 && (ea.kind != eb.kind || strcmp(ea.msg, eb.msg) != 0))
      die("json flat path: error differs from cJSON's", in, len);
    same = a.n == b.n && a.flags == b.flags && a.mode == b.mode &&
           a.has_text == b.has_text && a.text_len == b.text_len &&
           (!a.has_text || memcmp(a.text, b.text, a.text_len + 1) == 0);
    for (size_t i = 0; same && i < a.n; i++)
      same = a.lens[i] == b.lens[i] &&
             memcmp(a.needles[i], b.needles[i], a.lens[i] + 1) == 0;
    if (!same) /* after an error too: the same changes to the spec */
      die("json flat path: spec differs from cJSON's", in, len);
  }
  wc_reqparse_free(&a);
  wc_reqparse_free(&b);
  free(ba);
  free(bb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wc_countspec_t s;
  wc_error_t e;
  wc_reqlimits_t lim = {64, 256};
  const char *q, *body = NULL;
  size_t qlen, blen = 0;
  int which, rc;
  if (size < 1)
    return 0;
  /* both loops of wc_json_unescape: AVX2 (where the CPU has it) for odd
   * sizes, SSE2 for even ones */
  wc_json_avx2_allowed = (int)(size & 1);
  which = data[0] & 3;
  if (data[0] & 4) {
    lim.max_needles = 2;
    lim.max_needle_bytes = 4;
  }
  q = (const char *)data + 1;
  qlen = size - 1;
  if (which != 0) {
    const char *z = memchr(q, '\0', qlen);
    if (z != NULL) {
      body = z + 1;
      blen = qlen - (size_t)(body - q);
      qlen = (size_t)(z - q);
    } else {
      body = q;
      blen = qlen;
      qlen = 0;
    }
  }
  wc_reqparse_init(&s);
  memset(&e, 0, sizeof e);
  rc = wc_reqparse_query(&s, q, qlen, &lim, &e);
  if (rc == 0) {
    check_spec(&s, &lim, data, size);
    check_urlencoded(&s, 0, q, qlen, 0, data, size);
  } else if (rc != -EINVAL && rc != -ENOMEM) {
    die("query: unexpected return value", data, size);
  } else {
    check_error(&e, data, size);
  }
  if (rc == 0 && body != NULL && which != 1 && s.n == 0)
    check_json_fast(&s, body, blen, &lim, data, size);
  if (rc == 0 && body != NULL && which != 1)
    check_flat(q, qlen, body, blen, &lim, (data[0] & 8) != 0, data, size);
  if (rc == 0 && body != NULL) {
    size_t n0 = s.n;
    memset(&e, 0, sizeof e);
    rc = which == 1 ? wc_reqparse_form(&s, body, blen, &lim, &e)
                    : wc_reqparse_json(&s, body, blen, &lim, &e);
    if (rc == 0) {
      check_spec(&s, &lim, data, size);
      if (which == 1)
        check_urlencoded(&s, n0, body, blen, 1, data, size);
      else if (s.has_text && strlen(s.text) != s.text_len)
        die("JSON text holds a NUL", data, size);
      if (wc_reqparse_finish(&s, which == 1 ? WC_BODY_FORM : WC_BODY_JSON, &e) <
          0)
        check_error(&e, data, size);
    } else if (rc != -EINVAL && rc != -ENOMEM) {
      die("body: unexpected return value", data, size);
    } else {
      check_error(&e, data, size);
    }
  }
  (void)wc_reqparse_body_type(q, qlen);
  wc_reqparse_free(&s);
  return 0;
}
