/*
 * reqparse.c - query, form and JSON parsing for POST /count.
 *
 * All functions are pure (they touch only their arguments, and a per-thread
 * scratch arena for cJSON that is empty between calls) so that they can run
 * in a worker and be unit-tested and fuzzed alone. Rules shared by the
 * three sources: names are case-sensitive; an unknown name, a wrong type or a
 * bad value is an error naming the culprit; "needle" repeats (and "needles"
 * in JSON is an array), other names may appear once per source; needles are
 * kept distinct in the order first given.
 *
 * JSON has three paths, all giving cJSON's answers and error messages:
 * cJSON itself (any body); reqparse_flat, for the flat objects clients send
 * (no cJSON tree: it falls back to cJSON on anything else); and, for large
 * bodies, wc_reqparse_json_split, which leaves the text to wc_json_unescape
 * (whole or in parallel slices) and parses the rest.
 */
#include "reqparse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define JSON_AVX2 __attribute__((target("avx2,bmi")))
#endif

#include "wordcount.h"

enum {
  SEEN_TEXT = 1u << 0,
  SEEN_IGNORE_CASE = 1u << 1,
  SEEN_BOUNDARY = 1u << 2,
  SEEN_MODE = 1u << 3,
  SEEN_NEEDLE = 1u << 4,
  SEEN_NEEDLES = 1u << 5,
};

void wc_reqparse_init(wc_countspec_t *s) {
  memset(s, 0, sizeof *s);
}

static int in_bytes(const wc_countspec_t *s, const char *p) {
  return p >= s->bytes_in && p < s->bytes_in + WC_SPEC_INLINE_BYTES;
}

void wc_reqparse_free(wc_countspec_t *s) {
  for (size_t i = 0; i < s->n; i++)
    if (!in_bytes(s, s->needles[i]))
      free(s->needles[i]);
  if (s->needles != s->needles_in) {
    free(s->needles);
    free(s->lens);
  }
  if (s->text != s->text_room)
    free(s->text);
  wc_reqparse_init(s);
}

void wc_reqparse_move(wc_countspec_t *dst, wc_countspec_t *src) {
  wc_reqparse_free(dst);
  *dst = *src;
  if (src->needles == src->needles_in) {
    dst->needles = dst->needles_in;
    dst->lens = dst->lens_in;
  }
  for (size_t i = 0; i < dst->n; i++)
    if (in_bytes(src, dst->needles[i]))
      dst->needles[i] = dst->bytes_in + (dst->needles[i] - src->bytes_in);
  wc_reqparse_init(src);
}

/* Shows at most 64 bytes of a client-given name in a message. */
#define SHOWN(len) ((int)((len) > 64 ? 64 : (len)))

static int add_needle(wc_countspec_t *s, const char *p, size_t len,
                      const wc_reqlimits_t *lim, wc_error_t *e) {
  char *copy;
  if (len == 0) {
    wc_errors_set(e, WC_E_BAD_NEEDLE, "a needle is empty");
    return -EINVAL;
  }
  if (memchr(p, ' ', len) != NULL) {
    wc_errors_set(e, WC_E_BAD_NEEDLE,
                  "needle \"%.*s\" contains a space (needles are single "
                  "words; in a query or form '+' means space, write %%2B)",
                  SHOWN(len), p);
    return -EINVAL;
  }
  if (memchr(p, '\n', len) != NULL) {
    wc_errors_set(e, WC_E_BAD_NEEDLE, "a needle contains a newline");
    return -EINVAL;
  }
  if (!wc_utf8_valid(p, len)) {
    wc_errors_set(e, WC_E_BAD_NEEDLE, "a needle is not valid UTF-8");
    return -EINVAL;
  }
  if (len > lim->max_needle_bytes) {
    wc_errors_set(e, WC_E_NEEDLE_TOO_LONG,
                  "a needle has %zu bytes; the limit is %zu", len,
                  lim->max_needle_bytes);
    return -EINVAL;
  }
  for (size_t i = 0; i < s->n; i++)
    if (s->lens[i] == len && memcmp(s->needles[i], p, len) == 0)
      return 0; /* given twice: counted once */
  if (s->n >= lim->max_needles) {
    wc_errors_set(e, WC_E_TOO_MANY_NEEDLES, "more than %zu distinct needles",
                  lim->max_needles);
    return -EINVAL;
  }
  if (s->cap == 0) {
    s->needles = s->needles_in;
    s->lens = s->lens_in;
    s->cap = WC_SPEC_INLINE;
  }
  if (s->n == s->cap) {
    size_t ncap = s->cap * 2;
    char **nn = malloc(ncap * sizeof *nn);
    size_t *nl = malloc(ncap * sizeof *nl);
    if (nn == NULL || nl == NULL) {
      free(nn);
      free(nl);
      goto nomem;
    }
    memcpy(nn, s->needles, s->n * sizeof *nn);
    memcpy(nl, s->lens, s->n * sizeof *nl);
    if (s->needles != s->needles_in) {
      free(s->needles);
      free(s->lens);
    }
    s->needles = nn;
    s->lens = nl;
    s->cap = ncap;
  }
  if (len + 1 <= WC_SPEC_INLINE_BYTES - s->bytes_used) {
    copy = s->bytes_in + s->bytes_used;
    s->bytes_used += len + 1;
  } else {
    copy = malloc(len + 1);
    if (copy == NULL)
      goto nomem;
  }
  memcpy(copy, p, len);
  copy[len] = '\0';
  s->needles[s->n] = copy;
  s->lens[s->n] = len;
  s->n++;
  return 0;
nomem:
  wc_errors_set(e, WC_E_NO_MEMORY, NULL);
  return -ENOMEM;
}

static int set_bool(wc_countspec_t *s, int on) {
  if (on)
    s->flags |= WC_IGNORE_CASE;
  else
    s->flags &= ~(unsigned)WC_IGNORE_CASE;
  return 0;
}

static int set_boundary(wc_countspec_t *s, const char *v, size_t len,
                        wc_error_t *e) {
  if (len == 5 && memcmp(v, "space", 5) == 0)
    s->flags &= ~(unsigned)WC_BOUNDARY_WORD;
  else if (len == 4 && memcmp(v, "word", 4) == 0)
    s->flags |= WC_BOUNDARY_WORD;
  else {
    wc_errors_set(e, WC_E_BAD_VALUE,
                  "boundary must be \"space\" or \"word\", not \"%.*s\"",
                  SHOWN(len), v);
    return -EINVAL;
  }
  return 0;
}

static int set_mode(wc_countspec_t *s, const char *v, size_t len,
                    wc_error_t *e) {
  if (len == 4 && memcmp(v, "auto", 4) == 0)
    s->mode = WC_MODE_AUTO;
  else if (len == 10 && memcmp(v, "sequential", 10) == 0)
    s->mode = WC_MODE_SEQUENTIAL;
  else if (len == 8 && memcmp(v, "parallel", 8) == 0)
    s->mode = WC_MODE_PARALLEL;
  else {
    wc_errors_set(e, WC_E_BAD_VALUE,
                  "mode must be \"auto\", \"sequential\" or \"parallel\", not "
                  "\"%.*s\"",
                  SHOWN(len), v);
    return -EINVAL;
  }
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes %XX and '+' of src[0..len) into dst (room for len bytes). */
static int urldecode(const char *src, size_t len, char *dst, size_t *out) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '+') {
      dst[o++] = ' ';
    } else if (src[i] == '%') {
      int hi, lo;
      if (i + 2 >= len)
        return -EINVAL;
      hi = hexval((unsigned char)src[i + 1]);
      lo = hexval((unsigned char)src[i + 2]);
      if (hi < 0 || lo < 0)
        return -EINVAL;
      dst[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      dst[o++] = src[i];
    }
  }
  *out = o;
  return 0;
}

static int parse_flag(const char *v, size_t len, int *on) {
  static const char *const yes[] = {"", "1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    if (strlen(yes[i]) == len && memcmp(yes[i], v, len) == 0)
      return *on = 1, 0;
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (strlen(no[i]) == len && memcmp(no[i], v, len) == 0)
      return *on = 0, 0;
  return -EINVAL;
}

/*
 * The shared urlencoded walker: the query (allow_text == 0) and form bodies
 * (allow_text == 1). Decodes each name and value into one scratch buffer as
 * large as the input, so memory is bounded by the input.
 */
static int parse_urlencoded(wc_countspec_t *s, const char *in, size_t len,
                            int allow_text, const wc_reqlimits_t *lim,
                            wc_error_t *e) {
  const char *what = allow_text ? "form field" : "query parameter";
  wc_err_t syntax = allow_text ? WC_E_BAD_FORM : WC_E_BAD_VALUE;
  unsigned seen = 0;
  char *scratch = NULL;
  int rc = 0;
  size_t i = 0;
  if (len == 0)
    return 0;
  scratch = malloc(len + 1);
  if (scratch == NULL) {
    wc_errors_set(e, WC_E_NO_MEMORY, NULL);
    return -ENOMEM;
  }
  while (i <= len) {
    int dup = 0;
    const char *amp = memchr(in + i, '&', len - i);
    size_t end = amp != NULL ? (size_t)(amp - in) : len;
    const char *eq = memchr(in + i, '=', end - i);
    size_t nend = eq != NULL ? (size_t)(eq - in) : end;
    size_t vstart = eq != NULL ? nend + 1 : end;
    size_t nlen, vlen;
    char *name = scratch, *val;
    if (end == i) { /* empty pair, e.g. "a=1&&b=2" or a trailing '&' */
      i = end + 1;
      continue;
    }
    if (urldecode(in + i, nend - i, name, &nlen) < 0 ||
        urldecode(in + vstart, end - vstart, name + nlen, &vlen) < 0) {
      wc_errors_set(e, syntax, "bad %%-escape in a %s", what);
      rc = -EINVAL;
      goto out;
    }
    val = name + nlen;
    if (nlen == 6 && memcmp(name, "needle", 6) == 0) {
      rc = add_needle(s, val, vlen, lim, e);
    } else if (allow_text && nlen == 7 && memcmp(name, "needles", 7) == 0) {
      rc = add_needle(s, val, vlen, lim, e);
    } else if (nlen == 11 && memcmp(name, "ignore_case", 11) == 0) {
      int on;
      if (seen & SEEN_IGNORE_CASE) {
        dup = 1;
        goto dupl;
      }
      seen |= SEEN_IGNORE_CASE;
      if (parse_flag(val, vlen, &on) < 0) {
        wc_errors_set(e, WC_E_BAD_VALUE,
                      "ignore_case must be true or false, not \"%.*s\"",
                      SHOWN(vlen), val);
        rc = -EINVAL;
      } else {
        rc = set_bool(s, on);
      }
    } else if (nlen == 8 && memcmp(name, "boundary", 8) == 0) {
      if (seen & SEEN_BOUNDARY) {
        dup = 1;
        goto dupl;
      }
      seen |= SEEN_BOUNDARY;
      rc = set_boundary(s, val, vlen, e);
    } else if (nlen == 4 && memcmp(name, "mode", 4) == 0) {
      if (seen & SEEN_MODE) {
        dup = 1;
        goto dupl;
      }
      seen |= SEEN_MODE;
      rc = set_mode(s, val, vlen, e);
    } else if (allow_text && nlen == 4 && memcmp(name, "text", 4) == 0) {
      if (seen & SEEN_TEXT) {
        dup = 1;
        goto dupl;
      }
      seen |= SEEN_TEXT;
      s->text = malloc(vlen + 1);
      if (s->text == NULL) {
        wc_errors_set(e, WC_E_NO_MEMORY, NULL);
        rc = -ENOMEM;
        goto out;
      }
      memcpy(s->text, val, vlen);
      s->text[vlen] = '\0';
      s->text_len = vlen;
      s->has_text = 1;
    } else {
      wc_errors_set(e, WC_E_UNKNOWN_PARAM,
                    "unknown %s \"%.*s\"; allowed: %sneedle, %signore_case, "
                    "boundary, mode",
                    what, SHOWN(nlen), name, allow_text ? "text, " : "",
                    allow_text ? "needles, " : "");
      rc = -EINVAL;
    }
  dupl:
    if (dup) {
      wc_errors_set(e, WC_E_DUPLICATE, "%s \"%.*s\" is given twice", what,
                    SHOWN(nlen), name);
      rc = -EINVAL;
    }
    if (rc < 0)
      goto out;
    i = end + 1;
  }
out:
  free(scratch);
  return rc;
}

int wc_reqparse_query(wc_countspec_t *s, const char *q, size_t len,
                      const wc_reqlimits_t *lim, wc_error_t *e) {
  return parse_urlencoded(s, q, len, 0, lim, e);
}

int wc_reqparse_form(wc_countspec_t *s, const char *body, size_t len,
                     const wc_reqlimits_t *lim, wc_error_t *e) {
  return parse_urlencoded(s, body, len, 1, lim, e);
}

/*
 * cJSON decodes "\u0000" into a NUL and then treats the string as ending
 * there, silently truncating it, and a raw NUL byte ends its input. Find
 * both before parsing. (JSON forbids the other raw control bytes in strings
 * too; cJSON accepts them, and so does the server: they are counted as
 * text.) A backslash is only valid inside a string, so every escape found
 * here is inside one.
 */
static int hexval4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval((unsigned char)p[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

/*
 * Returns 1 for a NUL (raw, or \u0000 with *at set where it starts), else 2
 * with *at set for the first \u escape without four hex digits (cJSON reads
 * those as 0, a NUL again: it is reported once cJSON has accepted the body),
 * else 0. memchr does the walking: this runs over every JSON body.
 */
int wc_json_has_nul(const char *p, size_t len, size_t *at) {
  const char *q = p, *end;
  if (len == 0) /* p may be NULL, and NULL + 0 is undefined */
    return 0;
  end = p + len;
  if (memchr(p, '\0', len) != NULL)
    return 1;
  while ((q = memchr(q, '\\', (size_t)(end - q))) != NULL) {
    if (q + 1 < end && q[1] == 'u') {
      int v = end - q >= 6 ? hexval4(q + 2) : -1;
      if (v <= 0) {
        *at = (size_t)(q - p);
        return v == 0 ? 1 : 2;
      }
    }
    q += 2; /* skip the escaped character (maybe another backslash) */
    if (q >= end)
      break;
  }
  return 0;
}

/*
 * cJSON allocates every node, key and string on its own (about seven
 * malloc/free pairs for {"text":...,"needle":...}). While wc_reqparse_json
 * runs, its thread bumps them out of a per-thread arena instead, and the
 * tree is dropped by resetting the arena: nothing cJSON allocated in it
 * outlives the call (the text is copied out of it). Outside the call, or
 * once the arena is full, cJSON's hooks fall through to malloc and free.
 * Under ASan the unused part of the arena and a gap after each allocation
 * are poisoned, so overruns are still caught.
 */
#define ARENA_SIZE 8192
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_GAP 16
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_GAP 0
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static _Thread_local struct {
  _Alignas(16) char buf[ARENA_SIZE];
  size_t used;
  int on;          /* inside wc_reqparse_json */
  unsigned spills; /* allocations that went to malloc during the call */
} arena;

static int arena_owns(const void *p) {
  const char *q = p;
  return q >= arena.buf && q < arena.buf + ARENA_SIZE;
}

static void *arena_malloc(size_t n) {
  if (arena.on) {
    size_t need = ((n + 15) & ~(size_t)15) + ARENA_GAP;
    if (n <= ARENA_SIZE && need <= ARENA_SIZE - arena.used) {
      char *p = arena.buf + arena.used;
      arena.used += need;
      ARENA_UNPOISON(p, n);
      return p;
    }
    arena.spills++;
  }
  return malloc(n);
}

static void arena_free(void *p) {
  if (!arena_owns(p))
    free(p); /* arena blocks go when the arena is reset */
}

static void arena_hooks(void) {
  cJSON_Hooks h = {arena_malloc, arena_free};
  cJSON_InitHooks(&h);
}

static void arena_begin(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, arena_hooks);
  arena.used = 0;
  arena.spills = 0;
  arena.on = 1;
  ARENA_POISON(arena.buf, ARENA_SIZE);
}

/* Frees root (skipped when every node is in the arena) and resets. */
static void arena_end(cJSON *root) {
  arena.on = 0;
  if (arena.spills > 0)
    cJSON_Delete(root);
  arena.used = 0;
  ARENA_POISON(arena.buf, ARENA_SIZE);
}

#define NUL_MSG                                                                \
  "the JSON body contains a NUL character (\\u0000 or a raw NUL byte), "       \
  "which is not supported"

static const char *json_type(const cJSON *v) {
  if (cJSON_IsString(v))
    return "a string";
  if (cJSON_IsNumber(v))
    return "a number";
  if (cJSON_IsBool(v))
    return "a boolean";
  if (cJSON_IsNull(v))
    return "null";
  if (cJSON_IsArray(v))
    return "an array";
  return "an object";
}

static size_t skip_ws(const char *p, size_t i, size_t len);
static size_t skip_string(const char *p, size_t i, size_t len);

/*
 * The flat fast path of wc_reqparse_json, for the bodies clients send:
 * one object whose keys are known names without escapes, each given once,
 * with string values (text, needle, mode, boundary), true or false
 * (ignore_case) and a non-empty array of strings (needles). Anything else
 * (another key or type, a duplicate, a number, null, nesting, a byte order
 * mark, a bad escape, too many members) returns 0 with s untouched, and
 * cJSON parses the body as before; so every error message comes from the
 * cJSON path. Tokens are skipped as cJSON skips them (skip_ws, skip_string)
 * and strings decoded as cJSON decodes them (wc_json_unescape, which
 * test_jsonfast and fuzz_reqparse check against cJSON).
 *
 * Phase 1 walks the whole body and decodes every string, so a body the
 * fast path takes is one cJSON would take with the same members in the same
 * order. Phase 2 then applies them in that order with the functions the
 * cJSON path calls, so a needle or value it rejects gets the same error
 * after the same changes to s. cJSON builds a tree of about seven nodes for
 * {"text":...,"needle":...}: 1,600 instructions of the 8,800 a small
 * request costs (callgrind); this path takes about 300.
 */
#define FLAT_OPS 32
#define FLAT_SCRATCH 1024

enum { FLAT_NO = 0, FLAT_TAKEN = 1 };

typedef struct {
  unsigned bit;  /* SEEN_*; SEEN_NEEDLES once per array element */
  const char *v; /* decoded string (not for SEEN_IGNORE_CASE, SEEN_TEXT) */
  size_t len;
  int on; /* SEEN_IGNORE_CASE */
} flat_op_t;

static unsigned flat_key(const char *k, size_t n) {
  switch (n) {
  case 4:
    return memcmp(k, "text", 4) == 0   ? SEEN_TEXT
           : memcmp(k, "mode", 4) == 0 ? SEEN_MODE
                                       : 0;
  case 6:
    return memcmp(k, "needle", 6) == 0 ? SEEN_NEEDLE : 0;
  case 7:
    return memcmp(k, "needles", 7) == 0 ? SEEN_NEEDLES : 0;
  case 8:
    return memcmp(k, "boundary", 8) == 0 ? SEEN_BOUNDARY : 0;
  case 11:
    return memcmp(k, "ignore_case", 11) == 0 ? SEEN_IGNORE_CASE : 0;
  default:
    return 0;
  }
}

/* p[i] is an opening quote: the index of the closing one (len if none),
 * with *plain set when no backslash comes before it. Short strings (keys,
 * needles) are walked byte by byte, which costs less than skip_string's
 * memchr calls; a long one, or one with escapes, is left to skip_string. */
static size_t flat_span(const char *p, size_t i, size_t len, int *plain) {
  size_t k = i + 1, stop = len - k > 64 ? k + 64 : len;
#ifdef __SSE2__
  const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
  for (; k + 16 <= len && k < stop; k += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + k));
    unsigned m = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b)));
    if (m != 0) {
      k += (size_t)__builtin_ctz(m);
      if (p[k] == '"') {
        *plain = 1;
        return k;
      }
      stop = k; /* a backslash */
      break;
    }
  }
#endif
  for (; k < stop; k++) {
    if (p[k] == '"') {
      *plain = 1;
      return k;
    }
    if (p[k] == '\\')
      break;
  }
  k = skip_string(p, i, len);
  *plain = k < len && memchr(p + i + 1, '\\', k - i - 1) == NULL;
  return k;
}

/* The string from p[i] (an opening quote) to p[end] (its closing one),
 * decoded into out (room for its raw length) unless plain. */
static int flat_decode(const char *p, size_t i, size_t end, int plain,
                       char *out, size_t *out_len) {
  size_t at = 0;
  if (plain) {
    memcpy(out, p + i + 1, end - i - 1);
    *out_len = end - i - 1;
    return 0;
  }
  return wc_json_unescape(p + i + 1, end - i - 1, out, out_len, &at);
}

/* After a value in an object or array: 1 at a ',' (*i moved to the next
 * value), 0 at the closer (*i moved past it), -1 at anything else. */
static int flat_next(const char *p, size_t len, size_t *i, char closer) {
  size_t k = skip_ws(p, *i, len);
  if (k < len && p[k] == ',') {
    *i = skip_ws(p, k + 1, len);
    return 1;
  }
  if (k < len && p[k] == closer) {
    *i = k + 1;
    return 0;
  }
  return -1;
}

/* 1 when p lies in the scratch buffer (else it is NULL or malloc'd). */
static int flat_in_scratch(const char *p, const char *scratch) {
  return p >= scratch && p < scratch + FLAT_SCRATCH;
}

static int reqparse_flat(wc_countspec_t *s, const char *p, size_t len,
                         const wc_reqlimits_t *lim, wc_error_t *e, int *rc) {
  flat_op_t ops[FLAT_OPS];
  char scratch[FLAT_SCRATCH];
  size_t nops = 0, used = 0, i, k, tl = 0;
  unsigned seen = 0;
  int more;
  char *t = NULL;          /* the text's place in s, once phase 2 reaches it */
  const char *tsrc = NULL; /* the text: its raw bytes when plain, else... */
  char *tdec = NULL;       /* ...decoded in scratch or, when long, a malloc
                              freed on the way out */
  i = skip_ws(p, 0, len);
  if (i >= len || p[i] != '{')
    return FLAT_NO;
  i = skip_ws(p, i + 1, len);
  if (i < len && p[i] == '}') {
    i++;
    goto close;
  }
  for (;;) {
    size_t ks, ke, n;
    unsigned bit;
    int plain;
    if (i >= len || p[i] != '"' || nops == FLAT_OPS)
      goto no;
    ks = i + 1;
    ke = flat_span(p, i, len, &plain);
    if (ke >= len || !plain)
      goto no;
    bit = flat_key(p + ks, ke - ks);
    if (bit == 0 || (seen & bit))
      goto no;
    seen |= bit;
    i = skip_ws(p, ke + 1, len);
    if (i >= len || p[i] != ':')
      goto no;
    i = skip_ws(p, i + 1, len);
    if (i >= len)
      goto no;
    if (bit == SEEN_IGNORE_CASE) {
      int on = len - i >= 4 && memcmp(p + i, "true", 4) == 0;
      if (!on && !(len - i >= 5 && memcmp(p + i, "false", 5) == 0))
        goto no;
      ops[nops++] = (flat_op_t){bit, NULL, 0, on};
      i += on ? 4 : 5;
    } else if (bit == SEEN_TEXT) {
      size_t end, raw;
      if (p[i] != '"')
        goto no;
      end = flat_span(p, i, len, &plain);
      if (end >= len)
        goto no;
      raw = end - i - 1;
      if (plain) {
        tsrc = p + i + 1;
        tl = raw;
      } else {
        /* Decoded now (so that a bad escape leaves it to cJSON), into
         * scratch or, when long, a buffer of its own. */
        tdec = raw <= FLAT_SCRATCH - used ? scratch + used : malloc(raw);
        if (tdec == NULL || flat_decode(p, i, end, 0, tdec, &tl) < 0)
          goto no;
        tsrc = tdec;
        if (tdec == scratch + used)
          used += tl;
      }
      ops[nops++] = (flat_op_t){bit, NULL, 0, 0};
      i = end + 1;
    } else {
      int array = bit == SEEN_NEEDLES;
      if (array) {
        if (p[i] != '[')
          goto no;
        i = skip_ws(p, i + 1, len);
      }
      for (;;) {
        size_t end;
        if (i >= len || p[i] != '"' || nops == FLAT_OPS)
          goto no;
        end = flat_span(p, i, len, &plain);
        if (end >= len)
          goto no;
        if (plain) { /* used where it is: the body outlives the call */
          ops[nops++] = (flat_op_t){bit, p + i + 1, end - i - 1, 0};
        } else {
          if (end - i - 1 > FLAT_SCRATCH - used ||
              flat_decode(p, i, end, 0, scratch + used, &n) < 0)
            goto no;
          ops[nops++] = (flat_op_t){bit, scratch + used, n, 0};
          used += n;
        }
        i = end + 1;
        if (!array || (more = flat_next(p, len, &i, ']')) == 0)
          break;
        if (more < 0)
          goto no;
      }
    }
    if ((more = flat_next(p, len, &i, '}')) == 0)
      break;
    if (more < 0)
      goto no;
  }
close:
  /* After the value, wc_reqparse_json allows only these. */
  while (i < len &&
         (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
    i++;
  if (i != len)
    goto no;

  /* Phase 2: what the cJSON path does with each member, in order. The
   * text takes its room (or its allocation, which may fail) in its turn,
   * but its bytes are copied last: the room may be the body itself (job.c
   * lends a small body's buffer), which later members may point into. */
  *rc = 0;
  for (k = 0; k < nops && *rc == 0; k++) {
    const flat_op_t *o = &ops[k];
    switch (o->bit) {
    case SEEN_IGNORE_CASE:
      set_bool(s, o->on);
      break;
    case SEEN_TEXT:
      t = s->text_room != NULL && tl < s->text_room_cap ? s->text_room
                                                        : malloc(tl + 1);
      if (t == NULL) {
        wc_errors_set(e, WC_E_NO_MEMORY, NULL);
        *rc = -ENOMEM;
        break;
      }
      if (s->text != s->text_room)
        free(s->text);
      s->text = t;
      s->text_len = tl;
      s->has_text = 1;
      break;
    case SEEN_NEEDLE:
    case SEEN_NEEDLES:
      *rc = add_needle(s, o->v, o->len, lim, e);
      break;
    case SEEN_BOUNDARY:
      *rc = set_boundary(s, o->v, o->len, e);
      break;
    default:
      *rc = set_mode(s, o->v, o->len, e);
      break;
    }
  }
  if (t != NULL) {
    memmove(t, tsrc, tl); /* the room may overlap the body */
    t[tl] = '\0';
  }
  if (!flat_in_scratch(tdec, scratch))
    free(tdec);
  return FLAT_TAKEN;
no:
  if (!flat_in_scratch(tdec, scratch))
    free(tdec);
  return FLAT_NO;
}

int wc_reqparse_flat_allowed = 1;

int wc_reqparse_json(wc_countspec_t *s, const char *body, size_t len,
                     const wc_reqlimits_t *lim, wc_error_t *e) {
  cJSON *root = NULL, *it;
  const char *end = NULL;
  unsigned seen = 0;
  int rc = -EINVAL;
  size_t at = 0;
  int nul = wc_json_has_nul(body, len, &at);
  if (nul == 1) {
    wc_errors_set(e, WC_E_BAD_JSON, "%s", NUL_MSG);
    return -EINVAL;
  }
  if (nul == 0 && wc_reqparse_flat_allowed &&
      reqparse_flat(s, body, len, lim, e, &rc) == FLAT_TAKEN)
    return rc;
  arena_begin();
  root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
  if (root == NULL) {
    arena_end(NULL);
    at = end != NULL && end >= body && end <= body + len ? (size_t)(end - body)
                                                         : 0;
    wc_errors_set(e, WC_E_BAD_JSON,
                  "the body is not valid JSON (near byte %zu)", at);
    return -EINVAL;
  }
  while (end < body + len &&
         (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    end++;
  if (end != body + len) {
    wc_errors_set(e, WC_E_BAD_JSON,
                  "the body has data after the JSON value (at byte %zu)",
                  (size_t)(end - body));
    goto out;
  }
  if (nul == 2) {
    /* cJSON took a \u escape without four hex digits (as a NUL). */
    wc_errors_set(e, WC_E_BAD_JSON,
                  "the body is not valid JSON (near byte %zu)", at);
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    wc_errors_set(e, WC_E_BAD_JSON,
                  "the JSON body must be an object, like "
                  "{\"text\": \"...\", \"needle\": \"is\"}");
    goto out;
  }
  cJSON_ArrayForEach(it, root) {
    const char *k = it->string;
    unsigned bit;
    if (strcmp(k, "text") == 0)
      bit = SEEN_TEXT;
    else if (strcmp(k, "needle") == 0)
      bit = SEEN_NEEDLE;
    else if (strcmp(k, "needles") == 0)
      bit = SEEN_NEEDLES;
    else if (strcmp(k, "ignore_case") == 0)
      bit = SEEN_IGNORE_CASE;
    else if (strcmp(k, "boundary") == 0)
      bit = SEEN_BOUNDARY;
    else if (strcmp(k, "mode") == 0)
      bit = SEEN_MODE;
    else {
      wc_errors_set(e, WC_E_UNKNOWN_PARAM,
                    "unknown key \"%.*s\"; allowed: text, needle, needles, "
                    "ignore_case, boundary, mode",
                    SHOWN(strlen(k)), k);
      goto out;
    }
    if (seen & bit) {
      wc_errors_set(e, WC_E_DUPLICATE, "key \"%s\" is given twice", k);
      goto out;
    }
    seen |= bit;
    if (bit == SEEN_IGNORE_CASE) {
      if (!cJSON_IsBool(it))
        goto wrong_type;
      set_bool(s, cJSON_IsTrue(it));
      continue;
    }
    if (bit == SEEN_NEEDLES) {
      const cJSON *n;
      if (!cJSON_IsArray(it))
        goto wrong_type;
      if (it->child == NULL) {
        wc_errors_set(e, WC_E_MISSING_NEEDLE, "\"needles\" is empty");
        goto out;
      }
      cJSON_ArrayForEach(n, it) {
        if (!cJSON_IsString(n)) {
          wc_errors_set(e, WC_E_BAD_VALUE,
                        "\"needles\" must hold strings, not %s", json_type(n));
          goto out;
        }
        rc = add_needle(s, n->valuestring, strlen(n->valuestring), lim, e);
        if (rc < 0)
          goto out;
      }
      rc = -EINVAL;
      continue;
    }
    if (!cJSON_IsString(it))
      goto wrong_type;
    if (bit == SEEN_TEXT) {
      /* Take the decoded string from cJSON instead of copying it, unless
       * it lives in the arena. */
      size_t tl = strlen(it->valuestring);
      char *t = it->valuestring;
      if (arena_owns(t)) {
        t = s->text_room != NULL && tl < s->text_room_cap ? s->text_room
                                                          : malloc(tl + 1);
        if (t == NULL) {
          wc_errors_set(e, WC_E_NO_MEMORY, NULL);
          rc = -ENOMEM;
          goto out;
        }
        memcpy(t, it->valuestring, tl + 1);
      } else {
        it->valuestring = NULL;
      }
      if (s->text != s->text_room)
        free(s->text);
      s->text = t;
      s->text_len = tl;
      s->has_text = 1;
    } else if (bit == SEEN_NEEDLE) {
      rc = add_needle(s, it->valuestring, strlen(it->valuestring), lim, e);
      if (rc < 0)
        goto out;
      rc = -EINVAL;
    } else if (bit == SEEN_BOUNDARY) {
      if (set_boundary(s, it->valuestring, strlen(it->valuestring), e) < 0)
        goto out;
    } else if (set_mode(s, it->valuestring, strlen(it->valuestring), e) < 0) {
      goto out;
    }
    continue;
  wrong_type:
    wc_errors_set(e, WC_E_BAD_VALUE, "\"%s\" must be %s, not %s", k,
                  bit == SEEN_IGNORE_CASE ? "a boolean"
                  : bit == SEEN_NEEDLES   ? "an array of strings"
                                          : "a string",
                  json_type(it));
    goto out;
  }
  rc = 0;
out:
  arena_end(root);
  return rc;
}

int wc_reqparse_finish(const wc_countspec_t *s, int body_type, wc_error_t *e) {
  if (s->n == 0) {
    wc_errors_set(e, WC_E_MISSING_NEEDLE, NULL);
    return -EINVAL;
  }
  if (body_type != WC_BODY_RAW && !s->has_text) {
    wc_errors_set(e, WC_E_MISSING_TEXT, "the %s body has no \"text\" field",
                  body_type == WC_BODY_JSON ? "JSON" : "form");
    return -EINVAL;
  }
  return 0;
}

int wc_reqparse_body_type(const char *ct, size_t len) {
  size_t n = 0;
  /* The media type ends at ';', a space or a tab (parameters follow);
   * "application/json" has none of them, so it is checked before the
   * walk that finds the end of a longer one. */
  if (len >= 16 &&
      (len == 16 || ct[16] == ';' || ct[16] == ' ' || ct[16] == '\t') &&
      strncasecmp(ct, "application/json", 16) == 0)
    return WC_BODY_JSON;
  while (n < len && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t')
    n++;
  if (n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
    return WC_BODY_FORM;
  return WC_BODY_RAW;
}

/*
 * The fast path for large JSON bodies (wc_reqparse_json_split).
 *
 * cJSON decodes a string byte by byte (about 230 MB/s here), which made a
 * large JSON body five times slower than the same text sent raw. For a body
 * whose top-level "text" is a plain string, only the rest of the body goes
 * through cJSON (with "" in place of the text), and the text is decoded by
 * wc_json_unescape, which copies the runs between backslashes 16 bytes at a
 * time, in place (no second buffer as large as the text, whose page faults
 * were about a third of the time), and can work on slices in parallel.
 * Anything unusual in the rest (an escaped key, a second "text", a BOM, any
 * error at all) makes the caller use wc_reqparse_json on the whole body
 * instead. A bad escape in the text is found while decoding, when the body
 * is already partly overwritten: wc_jbad_t keeps, per slice, what the
 * decoder and the two walks of wc_reqparse_json (wc_json_has_nul's and
 * cJSON's) meet from the first failure on, which decides the error
 * wc_reqparse_json would give. So answers and error messages are exactly
 * those of the cJSON path; fuzz_reqparse checks both against each other.
 */

/* Bytes cJSON skips between tokens. */
static size_t skip_ws(const char *p, size_t i, size_t len) {
  while (i < len && (unsigned char)p[i] <= 32)
    i++;
  return i;
}

/* p[i] is an opening quote: the index of the closing one, or len. A quote
 * is escaped when an odd run of backslashes precedes it (cJSON's rule: a
 * backslash takes the next byte with it). */
static size_t skip_string(const char *p, size_t i, size_t len) {
  size_t from = i + 1;
  for (;;) {
    const char *q = memchr(p + from, '"', len - from);
    size_t k, b;
    if (q == NULL)
      return len;
    k = (size_t)(q - p);
    for (b = k; b > from && p[b - 1] == '\\'; b--)
      ;
    if ((k - b) % 2 == 0)
      return k;
    from = k + 1;
  }
}

/* The index after the value starting at p[i], or len when it cannot tell
 * (cJSON checks the value itself later). */
static size_t skip_value(const char *p, size_t i, size_t len) {
  size_t depth = 0;
  if (i >= len)
    return len;
  if (p[i] == '"') {
    size_t k = skip_string(p, i, len);
    return k < len ? k + 1 : len;
  }
  if (p[i] != '{' && p[i] != '[') {
    size_t st = i;
    while (i < len && (unsigned char)p[i] > 32 && p[i] != ',' && p[i] != '}' &&
           p[i] != ']')
      i++;
    return i > st ? i : len;
  }
  for (; i < len; i++) {
    if (p[i] == '"') {
      i = skip_string(p, i, len);
      if (i >= len)
        return len;
    } else if (p[i] == '{' || p[i] == '[') {
      depth++;
    } else if (p[i] == '}' || p[i] == ']') {
      if (--depth == 0)
        return i + 1;
    }
  }
  return len;
}

/* Finds the inside [*vs, *ve) of the one top-level "text" string. A hint
 * (hvs > 0) is the end of the string that starts at p[hvs - 1], found
 * before (wc_textscan_t): taken instead of walking that string again. */
static int locate_text(const char *p, size_t len, size_t hvs, size_t hve,
                       size_t *vs, size_t *ve) {
  size_t i = skip_ws(p, 0, len);
  int found = 0;
  if (i >= len || p[i] != '{')
    return 0;
  i = skip_ws(p, i + 1, len);
  if (i < len && p[i] == '}')
    return 0;
  for (;;) {
    size_t ks, ke;
    if (i >= len || p[i] != '"')
      return 0;
    ks = i + 1;
    ke = skip_string(p, i, len);
    if (ke >= len || memchr(p + ks, '\\', ke - ks) != NULL)
      return 0;
    i = skip_ws(p, ke + 1, len);
    if (i >= len || p[i] != ':')
      return 0;
    i = skip_ws(p, i + 1, len);
    if (ke - ks == 4 && memcmp(p + ks, "text", 4) == 0) {
      size_t e;
      if (found || i >= len || p[i] != '"')
        return 0;
      e = hvs > 0 && i + 1 == hvs ? hve : skip_string(p, i, len);
      if (e >= len)
        return 0;
      *vs = i + 1;
      *ve = e;
      found = 1;
      i = e + 1;
    } else {
      i = skip_value(p, i, len);
      if (i >= len)
        return 0;
    }
    i = skip_ws(p, i, len);
    if (i < len && p[i] == ',') {
      i = skip_ws(p, i + 1, len);
      continue;
    }
    if (i < len && p[i] == '}')
      return found;
    return 0;
  }
}

/* A body's start up to its text's first byte: ws { ws "text" ws : ws " */
static size_t textscan_start(const char *p, size_t len, int *more) {
  size_t i = skip_ws(p, 0, len);
  *more = 1;
  if (i >= len)
    return 0;
  if (p[i] != '{')
    goto no;
  i = skip_ws(p, i + 1, len);
  if (len - i < 6)
    return memcmp(p + i, "\"text\"", len - i) == 0 ? 0 : (*more = 0);
  if (memcmp(p + i, "\"text\"", 6) != 0)
    goto no;
  i = skip_ws(p, i + 6, len);
  if (i >= len)
    return 0;
  if (p[i] != ':')
    goto no;
  i = skip_ws(p, i + 1, len);
  if (i >= len)
    return 0;
  if (p[i] != '"')
    goto no;
  return i + 1;
no:
  *more = 0;
  return 0;
}

void wc_textscan_feed(wc_textscan_t *t, const char *body, size_t len) {
  if (t->state == 0) {
    int more;
    size_t vs = textscan_start(body, len, &more);
    if (vs == 0) {
      /* a start that long is not what clients send */
      if (!more || len > 4096)
        t->state = 3;
      return;
    }
    t->state = 1;
    t->vs = vs;
    t->pos = vs;
    t->bsl = 0;
  }
  while (t->state == 1 && t->pos < len) {
    /* skip_string's rule: a quote after an even run of backslashes (back
     * to the string's start) ends the string */
    const char *q = memchr(body + t->pos, '"', len - t->pos);
    size_t k = q != NULL ? (size_t)(q - body) : len, b = k;
    while (b > t->pos && body[b - 1] == '\\')
      b--;
    t->bsl = b == t->pos ? t->bsl + (k - b) : k - b;
    if (q == NULL) {
      t->pos = len;
      break;
    }
    if (t->bsl % 2 == 0) {
      t->ve = k;
      t->state = 2;
    }
    t->pos = k + 1;
    t->bsl = 0;
  }
}

int wc_reqparse_json_split(wc_countspec_t *s, const char *body, size_t len,
                           const wc_reqlimits_t *lim, size_t *vs, size_t *ve) {
  return wc_reqparse_json_split_hint(s, body, len, lim, NULL, vs, ve);
}

int wc_reqparse_json_split_hint(wc_countspec_t *s, const char *body, size_t len,
                                const wc_reqlimits_t *lim,
                                const wc_textscan_t *t, size_t *vs,
                                size_t *ve) {
  wc_countspec_t tmp;
  wc_error_t e;
  size_t a = 0, b = 0, rlen;
  char *rest;
  int rc;
  int hinted = t != NULL && t->state == 2 && t->ve < len;
  if (len == 0 ||
      !locate_text(body, len, hinted ? t->vs : 0, hinted ? t->ve : 0, &a, &b))
    return 0;
  rlen = len - (b - a);
  rest = malloc(rlen ? rlen : 1);
  if (rest == NULL)
    return 0;
  memcpy(rest, body, a);
  memcpy(rest + a, body + b, len - b);
  wc_reqparse_init(&tmp);
  tmp.flags = s->flags; /* options from the query string */
  tmp.mode = s->mode;
  rc = wc_reqparse_json(&tmp, rest, rlen, lim, &e);
  free(rest);
  if (rc < 0 || !tmp.has_text || tmp.text_len != 0 ||
      wc_reqparse_finish(&tmp, WC_BODY_JSON, &e) < 0) {
    wc_reqparse_free(&tmp);
    return 0;
  }
  wc_reqparse_move(s, &tmp);
  *vs = a;
  *ve = b;
  return 1;
}

int wc_json_avx2_allowed = 1;

/* The two-byte escapes and what they decode to; 0 for the rest (\u, and
 * every escape cJSON rejects). The vector loops and the byte loop share it. */
static const unsigned char simple_escape[256] = {
    ['b'] = '\b', ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r',
    ['t'] = '\t', ['"'] = '"',  ['\\'] = '\\', ['/'] = '/'};

/*
 * The bulk of wc_json_unescape, in two loops that copy plain bytes a vector
 * at a time and decode two-byte escapes without leaving the loop (JSON text
 * with \n line ends has one every 40 bytes or so; a memchr call per run, or
 * a return to the byte loop per escape, costs more than the copy). Both stop
 * at a NUL, a \u, a bad escape or a backslash ending the text, which the
 * caller handles, and leave the last bytes (fewer than a step or a chunk
 * needs) to it.
 *
 * UNESCAPE_STEPS takes one vector per escape: load, find the first
 * backslash or NUL, store, decode, go on right after the escape. Each step
 * waits for the one before it, and whether a vector holds an escape is a
 * coin toss for the branch predictor on such text. In place (out == raw), a
 * vector is stored only where it lands below the next byte to read
 * (o + W <= i + k; o <= i always), else the k bytes before the escape are
 * moved; so raw[i..n) is never written before it is read.
 *
 * UNESCAPE_CHUNKS takes 64 bytes at a time: one mask for all of them, then
 * one 64-byte copy per escape in it, from the byte after the last escape
 * (loads at fixed places, a chain of additions for o: about 2.6x the bytes
 * per second of the steps on the seed's text). It runs only while what it
 * stores lands below what it has still to read: 64 bytes or more between
 * out + o and raw + i, which in place is the case after 64 escapes (every
 * escape puts one more byte between them), and with a separate out from the
 * start. The steps run until then, and after the last whole chunk.
 */
#define GAP_CHUNKS 64
#define UNESCAPE_GAP ((uintptr_t)(raw + i) - (uintptr_t)(out + o))

#define UNESCAPE_STEPS(W, T, LOAD, STORE, MASK, LEAVE)                         \
  while (i + (W) <= n && !(LEAVE)) {                                           \
    T v = LOAD((const T *)(const void *)(raw + i));                            \
    unsigned m = MASK(v), k;                                                   \
    unsigned char c;                                                           \
    if (m == 0) {                                                              \
      if (out + o != raw + i)                                                  \
        STORE((T *)(void *)(out + o), v);                                      \
      i += (W);                                                                \
      o += (W);                                                                \
      continue;                                                                \
    }                                                                          \
    k = (unsigned)__builtin_ctz(m);                                            \
    if (o + (W) <= i + k)                                                      \
      STORE((T *)(void *)(out + o), v);                                        \
    else if (out + o != raw + i)                                               \
      memmove(out + o, raw + i, k);                                            \
    i += k;                                                                    \
    o += k;                                                                    \
    c = raw[i] == '\\' && i + 1 < n ? simple_escape[(unsigned char)raw[i + 1]] \
                                    : 0;                                       \
    if (c == 0)                                                                \
      goto stop;                                                               \
    out[o++] = (char)c;                                                        \
    i += 2;                                                                    \
  }

/* MASK64(p): bit j set where p[j] is a backslash or a NUL, j < 64.
 * COPY64(d, s): the 64 bytes at s to d (d + 64 <= s, or apart). Chunks need
 * i + 128 <= n: a copy from the byte after an escape at 63 reads 64 more. */
#define UNESCAPE_CHUNKS(MASK64, COPY64)                                        \
  while (i + 128 <= n) {                                                       \
    uint64_t m = MASK64(raw + i);                                              \
    size_t s = 0; /* the chunk's next byte to copy */                          \
    while (m != 0) {                                                           \
      unsigned p = (unsigned)__builtin_ctzll(m);                               \
      unsigned char c = raw[i + p] == '\\'                                     \
                            ? simple_escape[(unsigned char)raw[i + p + 1]]     \
                            : 0;                                               \
      COPY64(out + o, raw + i + s);                                            \
      o += p - s;                                                              \
      if (c == 0) {                                                            \
        i += p;                                                                \
        goto stop;                                                             \
      }                                                                        \
      out[o++] = (char)c;                                                      \
      s = p + 2; /* the escaped byte may be a backslash: its bit goes too */   \
      m = s < 64 ? m & (~(uint64_t)0 << s) : 0;                                \
    }                                                                          \
    if (s < 64) {                                                              \
      COPY64(out + o, raw + i + s);                                            \
      o += 64 - s;                                                             \
      s = 64;                                                                  \
    }                                                                          \
    i += s; /* 65 after an escape at 63 */                                     \
  }

/* The body of unescape_run_sse2 and unescape_run_avx2: from raw[*pi]
 * (out[*po]), steps until chunks may run, chunks while whole ones are
 * left, steps for the rest. */
#define UNESCAPE_RUN(W, T, LOAD, STORE, MASK, MASK64, COPY64)                  \
  size_t i = *pi, o = *po;                                                     \
  for (;;) {                                                                   \
    UNESCAPE_STEPS(W, T, LOAD, STORE, MASK,                                    \
                   UNESCAPE_GAP >= GAP_CHUNKS && i + 128 <= n)                 \
    if (i + 128 > n)                                                           \
      break;                                                                   \
    UNESCAPE_CHUNKS(MASK64, COPY64)                                            \
  }                                                                            \
  stop:                                                                        \
  *pi = i;                                                                     \
  *po = o

#ifdef __SSE2__
static inline unsigned mask_sse2(__m128i v) {
  return (unsigned)_mm_movemask_epi8(
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
                   _mm_cmpeq_epi8(v, _mm_setzero_si128())));
}

static inline uint64_t mask64_sse2(const char *p) {
  uint64_t m = 0;
  for (int j = 3; j >= 0; j--)
    m = m << 16 |
        mask_sse2(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * j)));
  return m;
}

static inline void copy64_sse2(char *d, const char *s) {
  __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
  __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
  __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 32));
  __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + 48));
  _mm_storeu_si128((__m128i *)(void *)d, a);
  _mm_storeu_si128((__m128i *)(void *)(d + 16), b);
  _mm_storeu_si128((__m128i *)(void *)(d + 32), c);
  _mm_storeu_si128((__m128i *)(void *)(d + 48), e);
}

static void unescape_run_sse2(const char *raw, size_t n, char *out, size_t *pi,
                              size_t *po) {
  UNESCAPE_RUN(16, __m128i, _mm_loadu_si128, _mm_storeu_si128, mask_sse2,
               mask64_sse2, copy64_sse2);
}
#endif

#ifdef JSON_AVX2
JSON_AVX2 static inline unsigned mask_avx2(__m256i v) {
  return (unsigned)_mm256_movemask_epi8(
      _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('\\')),
                      _mm256_cmpeq_epi8(v, _mm256_setzero_si256())));
}

JSON_AVX2 static inline uint64_t mask64_avx2(const char *p) {
  __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
  __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
  return (uint64_t)mask_avx2(b) << 32 | mask_avx2(a);
}

JSON_AVX2 static inline void copy64_avx2(char *d, const char *s) {
  __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)s);
  __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + 32));
  _mm256_storeu_si256((__m256i *)(void *)d, a);
  _mm256_storeu_si256((__m256i *)(void *)(d + 32), b);
}

/* 1.4x the bytes/s of the SSE2 loop on 85.8 MB of the seed's text as JSON
 * (16.8 vs 24 ms, one core of the bench machine), with steps only. */
JSON_AVX2 static void unescape_run_avx2(const char *raw, size_t n, char *out,
                                        size_t *pi, size_t *po) {
  UNESCAPE_RUN(32, __m256i, _mm256_loadu_si256, _mm256_storeu_si256, mask_avx2,
               mask64_avx2, copy64_avx2);
}
#endif

int wc_json_unescape(const char *raw, size_t n, char *out, size_t *out_len,
                     size_t *fail_at) {
  size_t i = 0, o = 0;
#ifdef JSON_AVX2
  int avx2 = wc_json_avx2_allowed && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("bmi");
#endif
  while (i < n) {
    int cp, lo;
    unsigned char c;
#ifdef JSON_AVX2
    if (avx2)
      unescape_run_avx2(raw, n, out, &i, &o);
#endif
#ifdef __SSE2__
    unescape_run_sse2(raw, n, out, &i, &o);
#endif
    while (i < n && raw[i] != '\\' && raw[i] != '\0')
      out[o++] = raw[i++];
    if (i >= n)
      break;
    if (raw[i] == '\0' || i + 1 >= n)
      goto fail;
    if ((c = simple_escape[(unsigned char)raw[i + 1]]) != 0) {
      out[o++] = (char)c;
    } else if (raw[i + 1] == 'u') {
      /* cJSON's rules: no lone low surrogate, a high one only with a low
       * one right after it; and no NUL (see wc_json_has_nul). */
      if (n - i < 6 || (cp = hexval4(raw + i + 2)) <= 0 ||
          (cp >= 0xDC00 && cp <= 0xDFFF))
        goto fail;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (n - i < 12 || raw[i + 6] != '\\' || raw[i + 7] != 'u' ||
            (lo = hexval4(raw + i + 8)) < 0xDC00 || lo > 0xDFFF)
          goto fail;
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
        i += 6;
      }
      o += wc_utf8_encode(cp, (uint8_t *)(out + o));
      i += 4;
    } else {
      goto fail;
    }
    i += 2;
  }
  *out_len = o;
  return 0;
fail:
  *fail_at = i;
  return -1;
}

/*
 * One forward pass per cut, never over bytes an earlier cut has passed, so
 * the whole is linear in n whatever the text holds (moving from separator
 * to separator with wc_next_cut was quadratic on a text of "\\n" + LF
 * lines without a space).
 */
size_t wc_json_cuts(const char *raw, size_t n, size_t *cuts, size_t k) {
  size_t m = 0, last = 0;
  for (size_t i = 1; i < k; i++) {
    size_t c = cuts[i] > last ? cuts[i] : last, lb = SIZE_MAX;
    if (c == 0)
      continue;
    /* the last backslash in the 12 bytes before c (after the last cut) */
    for (size_t j = c - last > 12 ? c - 12 : last; j < c; j++)
      if (raw[j] == '\\')
        lb = j;
    /* the first c at or after cuts[i] right after a separator, with no
     * backslash in the 12 bytes before it */
    while (c < n && !((raw[c - 1] == ' ' || raw[c - 1] == '\n') &&
                      (lb == SIZE_MAX || c - lb > 12))) {
      if (raw[c] == '\\')
        lb = c;
      c++;
    }
    if (c >= n)
      break; /* no room for another slice */
    if (c > last)
      cuts[++m] = last = c;
  }
  cuts[0] = 0;
  cuts[++m] = n;
  return m;
}

void wc_jbad_init(wc_jbad_t *b) {
  b->raw_nul = 0;
  b->zh = SIZE_MAX;
  b->zh_nul = 0;
  b->fatal = SIZE_MAX;
}

/*
 * Two walks over the escapes from `from` (where a decoder failed, so in step
 * with both): wc_json_has_nul's, two bytes per backslash, stopping at the
 * first \u that is \u0000 or lacks four hex digits; and cJSON's
 * parse_string, which takes a \u escape as six bytes (twelve for a
 * surrogate pair) whatever they hold, reads bad hex digits as 0, and fails
 * at a bad escape character, a lone or unpaired surrogate, or a \u too
 * near the end.
 */
void wc_jbad_add(wc_jbad_t *b, const char *raw, size_t n, size_t from,
                 size_t base) {
  const char *q, *end = raw + n;
  size_t at = 0;
  int nul;
  if (from >= n)
    return;
  if (memchr(raw + from, '\0', n - from) != NULL) {
    b->raw_nul = 1; /* the answer whatever else the text holds */
    return;
  }
  nul = wc_json_has_nul(raw + from, n - from, &at);
  if (nul != 0 && base + from + at < b->zh) {
    b->zh = base + from + at;
    b->zh_nul = nul == 1;
  }
  for (q = raw + from; q < end && (q = memchr(q, '\\', (size_t)(end - q)));) {
    int bad = 0, cp, lo;
    if (q + 1 >= end) {
      /* Only at the end of the text, reached out of step after a bad \\u
       * took six bytes: cJSON reads the closing quote as the escaped
       * character and the string ends there. */
      break;
    } else if (simple_escape[(unsigned char)q[1]] != 0) {
      q += 2;
      continue;
    } else if (q[1] != 'u' || end - q < 6) {
      bad = 1;
    } else {
      cp = hexval4(q + 2);
      if (cp < 0)
        cp = 0;
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        bad = 1;
      } else if (cp >= 0xD800 && cp <= 0xDBFF) {
        lo = end - q >= 12 && q[6] == '\\' && q[7] == 'u' ? hexval4(q + 8) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
          bad = 1;
        else
          q += 6;
      }
      if (!bad)
        q += 6;
    }
    if (bad) {
      at = base + (size_t)(q - raw);
      if (at < b->fatal)
        b->fatal = at;
      break;
    }
  }
}

void wc_jbad_merge(wc_jbad_t *b, const wc_jbad_t *a) {
  b->raw_nul |= a->raw_nul;
  if (a->zh < b->zh) {
    b->zh = a->zh;
    b->zh_nul = a->zh_nul;
  }
  if (a->fatal < b->fatal)
    b->fatal = a->fatal;
}

void wc_jbad_error(const wc_jbad_t *b, wc_error_t *e) {
  /* As wc_reqparse_json: wc_json_has_nul first (a raw NUL anywhere, or
   * \u0000 before any bad \u), then cJSON's first failure, then the bad \u. */
  if (b->raw_nul || (b->zh != SIZE_MAX && b->zh_nul))
    wc_errors_set(e, WC_E_BAD_JSON, "%s", NUL_MSG);
  else
    wc_errors_set(e, WC_E_BAD_JSON,
                  "the body is not valid JSON (near byte %zu)",
                  b->fatal != SIZE_MAX ? b->fatal : b->zh);
}
