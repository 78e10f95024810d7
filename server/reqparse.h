/*
 * reqparse.h - pure parsers for a count request: the query string, an
 * application/x-www-form-urlencoded body and a JSON body, and the needle
 * rules. No I/O, no libuv: safe on any thread (JSON and form bodies are
 * parsed in the worker pool; the query on the loop thread).
 */
#ifndef WC_REQPARSE_H
#define WC_REQPARSE_H

#include <stddef.h>

#include "errors.h"

enum { WC_MODE_AUTO = 0, WC_MODE_SEQUENTIAL, WC_MODE_PARALLEL };
enum { WC_BODY_RAW = 0, WC_BODY_JSON, WC_BODY_FORM };

typedef struct {
  size_t max_needles;
  size_t max_needle_bytes;
} wc_reqlimits_t;

/* Needles a spec holds without allocating, and bytes for their copies. */
#define WC_SPEC_INLINE 4
#define WC_SPEC_INLINE_BYTES 64

/*
 * What to count and how. Owns its needles and text. The first
 * WC_SPEC_INLINE needles (and their bytes, while they fit) live inside the
 * struct, so a spec must not be copied with '=': use wc_reqparse_move.
 */
typedef struct {
  char **needles; /* distinct needles in the order first given */
  size_t *lens;
  size_t n, cap;
  unsigned flags; /* WC_IGNORE_CASE | WC_BOUNDARY_WORD */
  int mode;       /* WC_MODE_* */
  char *text;     /* JSON/form text (NUL-terminated), NULL for raw bodies */
  size_t text_len;
  int has_text;
  /* The caller's room where wc_reqparse_json may put a short text instead
   * of allocating (it must outlive the count; text then points there and
   * is not freed). Cleared by wc_reqparse_init. */
  char *text_room;
  size_t text_room_cap;
  char *needles_in[WC_SPEC_INLINE];
  size_t lens_in[WC_SPEC_INLINE];
  size_t bytes_used;
  char bytes_in[WC_SPEC_INLINE_BYTES];
} wc_countspec_t;

void wc_reqparse_init(wc_countspec_t *s);
void wc_reqparse_free(wc_countspec_t *s);

/* Frees dst and moves src into it; src is left empty (initialised). */
void wc_reqparse_move(wc_countspec_t *dst, wc_countspec_t *src);

/* Each returns 0, or a negative errno with e filled (-EINVAL: the request
 * is wrong, e says why; -ENOMEM: out of memory). */
int wc_reqparse_query(wc_countspec_t *s, const char *q, size_t len,
                      const wc_reqlimits_t *lim, wc_error_t *e);
int wc_reqparse_form(wc_countspec_t *s, const char *body, size_t len,
                     const wc_reqlimits_t *lim, wc_error_t *e);
int wc_reqparse_json(wc_countspec_t *s, const char *body, size_t len,
                     const wc_reqlimits_t *lim, wc_error_t *e);

/*
 * The fast path for a large JSON body: when its top-level "text" is a plain
 * string, parses everything else (with cJSON, as wc_reqparse_json would),
 * checks it with wc_reqparse_finish, and returns 1 with s filled (its text
 * empty) and the inside of the text string at body[*vs..*ve): the caller
 * decodes it with wc_json_unescape, whole or in slices from wc_json_cuts.
 * Returns 0, with s untouched, in every other case, including every error:
 * the caller then uses wc_reqparse_json, so that the answer is the same.
 */
int wc_reqparse_json_split(wc_countspec_t *s, const char *body, size_t len,
                           const wc_reqlimits_t *lim, size_t *vs, size_t *ve);

/*
 * Finding a large JSON body's text while the body arrives, so that the
 * split does not walk the whole text again once it is there (a memchr
 * pass over the body: about 5 ms of 85.8 MB, serial, before any slice can
 * start). For bodies that begin {"text":" (with any whitespace between the
 * tokens), as clients write them; any other start gives up at once.
 * wc_textscan_feed is called with the body received so far (len grows;
 * the bytes already seen must not change; in job.c by one scan job at a
 * time in the pool, then by the parse job) and scans only the new bytes,
 * where wc_reqparse_json_split's walk would: after it, t->ve > 0 is that
 * walk's end of the text string (its closing quote), which
 * wc_reqparse_json_split_hint then takes instead of walking the text.
 */
typedef struct {
  int state;  /* 0 the start, 1 inside the text, 2 found, 3 given up */
  size_t pos; /* bytes of the body seen */
  size_t vs;  /* the text's first byte, once known */
  size_t ve;  /* its closing quote, once found (else 0) */
  size_t bsl; /* backslashes right before pos, inside the text */
} wc_textscan_t;

void wc_textscan_feed(wc_textscan_t *t, const char *body, size_t len);

/* wc_reqparse_json_split, with t's result (if it has one) used for the
 * text string: the same answers, one pass less. t may be NULL. */
int wc_reqparse_json_split_hint(wc_countspec_t *s, const char *body, size_t len,
                                const wc_reqlimits_t *lim,
                                const wc_textscan_t *t, size_t *vs, size_t *ve);

/*
 * Makes the cuts of wc_split (cuts[0..k], k slices of raw[0..n)) safe for
 * slices of a JSON string decoded separately, in place: a cut with a
 * backslash in the 12 bytes before it moves on to a later separator (no
 * escape, not even a bad one, is then read across a cut, and every walker
 * over the escapes starts each slice in step). Returns the new k.
 */
size_t wc_json_cuts(const char *raw, size_t n, size_t *cuts, size_t k);

/* Where cJSON would cut a string short: returns 1 for a NUL (a raw one, or
 * a \u0000 escape with *at set where it starts), else 2 with *at set for the
 * first \u escape without four hex digits (cJSON reads those as 0), else 0.
 * The request parsers refuse such bodies, and the config loader such files. */
int wc_json_has_nul(const char *p, size_t len, size_t *at);

/*
 * Decodes raw[0..n), the inside of a JSON string or a slice of it as above,
 * into out (room for n bytes: decoding never grows; out may be raw itself:
 * every byte is written below the next one read), exactly as cJSON does.
 * Returns 0 with *out_len set, or -1 where wc_reqparse_json fails (a bad
 * escape, a NUL) with *fail_at set to where the failing escape or NUL
 * starts; raw[*fail_at..n) is then still unchanged.
 */
int wc_json_unescape(const char *raw, size_t n, char *out, size_t *out_len,
                     size_t *fail_at);

/* 1 (the default): wc_json_unescape uses AVX2 where the CPU has it. Tests
 * set it to 0, before any thread runs, to check the SSE2 loop too. */
extern int wc_json_avx2_allowed;

/* 1 (the default): wc_reqparse_json takes a flat object of known keys
 * without cJSON (see reqparse_flat in reqparse.c); 0 sends every body
 * through cJSON. Tests and the fuzzer compare the two. */
extern int wc_reqparse_flat_allowed;

/*
 * Why a JSON text failed to decode, gathered slice by slice (in any order)
 * from each failing slice's fail_at on, so that the body itself is not
 * needed any more: wc_jbad_error then gives the error wc_reqparse_json
 * gives for the whole body. Positions are byte offsets in the body.
 */
typedef struct {
  int raw_nul;  /* a raw NUL byte */
  size_t zh;    /* first \u escape without 4 hex digits or \u0000 */
  int zh_nul;   /* ... and it is \u0000 */
  size_t fatal; /* first escape cJSON rejects */
} wc_jbad_t;

void wc_jbad_init(wc_jbad_t *b);

/* Adds what raw[from..n) shows (unchanged bytes; raw[0] is at body offset
 * base) to b. */
void wc_jbad_add(wc_jbad_t *b, const char *raw, size_t n, size_t from,
                 size_t base);

/* Merges a into b. */
void wc_jbad_merge(wc_jbad_t *b, const wc_jbad_t *a);

/* Sets e to wc_reqparse_json's error for the body. */
void wc_jbad_error(const wc_jbad_t *b, wc_error_t *e);

/* Checks that the request is complete (a needle; text for JSON/form). */
int wc_reqparse_finish(const wc_countspec_t *s, int body_type, wc_error_t *e);

/* Classifies a Content-Type value (media type, parameters ignored). */
int wc_reqparse_body_type(const char *ct, size_t len);

#endif
