/*
 * job.c - counting in libuv's worker pool.
 *
 * DESIGN
 * - Raw bodies stream into blocks of WC_BLOCK_SIZE. A full block is cut at
 *   the last word boundary (wc_prev_cut, searched in its last CUT_WINDOW
 *   bytes so that the loop does bounded work), the part before the cut is
 *   counted by one job with wc_count, and the rest is carried into the next
 *   block. Up to max_inflight blocks of one request are counted at once
 *   (workers, or 1 for mode=sequential; one fewer for mode=auto while other
 *   clients are connected: inflight_cap); when the next block is full and the
 *   limit is reached, the connection stops reading (WC_PAUSE_JOBS) until a
 *   block finishes. Counting slices cut at word boundaries and summing gives
 *   the count of the whole text (see wc_split in wordcount.h).
 * - A block with no separator in its window switches the request to a
 *   wc_stream: from then on blocks are fed to it in order, one job at a time,
 *   and the last job finishes it.
 * - A body with a Content-Length is read straight into where it is kept
 *   (wc_job_read_into, called from the connection's alloc callback): a raw
 *   body into its block up to the block's end, a JSON or form body over
 *   1 MiB into its buffer; never past the body's last byte, so what follows
 *   is read into the loop's read buffer as usual. wc_job_data then has
 *   nothing to copy.
 * - Free blocks are kept per loop for the next raw body (wc_blockpool_t, up
 *   to 8) and freed after two date-timer ticks unused; every block is a
 *   mapping of its own (main.c fixes malloc's mmap threshold at 1 MiB), so
 *   its memory goes back to the kernel.
 * - JSON and form buffers of 1 MiB and more are sized from the
 *   Content-Length and kept per loop when their request ends
 *   (wc_bodypool_t): a fresh one costs a page fault per 4 KiB. Buffers go
 *   back to the loop with their job (no free on a worker).
 * - While a large JSON body with a Content-Length arrives (TSCAN_MIN and
 *   more), its text is looked for in the pool: each TSCAN_STEP of new bytes
 *   queues a JOB_TSCAN (one at a time) that feeds them to the request's
 *   wc_textscan_t, over the body's buffer, which has its final size then and
 *   never moves; the job reads only bytes below those the loop goes on
 *   writing. The parse job finishes the scan and takes its result instead of
 *   walking the text again: the serial pass that finds the text's end (about
 *   5 ms of 85.8 MB) is then mostly done while the body was still coming.
 *   A body that is complete while a scan job runs queues its parse job when
 *   the scan job is back (body_done, not final_sent). Bodies that do not start
 *   {"text":" give up at the first job.
 * - JSON and form bodies are buffered (up to max_json_body_bytes), then one
 *   job parses them, validates the needles, builds the needle set and either
 *   counts the text itself or, for a large text (parallel.min_bytes, or
 *   mode=parallel), splits it with wc_split; the loop then queues one job
 *   per slice. Counts are summed on the loop thread.
 * - Needle sets built on the loop thread (raw bodies, inline bodies) come
 *   from a small per-loop cache (wc_setcache_t, 4 entries, LRU): a request
 *   holds a reference on its set until it is reset, and only unreferenced
 *   entries are evicted, so a set shared with running jobs is never freed.
 *   Sets built by a worker (large JSON) are private to their request.
 * - Bodies up to parallel.inline_max_bytes (64 KiB) are parsed and counted
 *   on the loop thread, by the same code a worker runs: for them the hop to
 *   the pool and back (two thread wake-ups, about three context switches)
 *   costs more than the work (bench/http/sweep.sh: 1.5-2.8x the requests/s
 *   up to 64 KiB). Everything larger goes to the pool; for it the loop only
 *   copies bytes, cuts blocks, queues jobs and sums results, so a loop
 *   stalls for at most the time of one 64 KiB body (about 30 us raw, 300 us
 *   as JSON through cJSON).
 *
 * LIFETIME (see also conn.c)
 * - A job holds a reference on its connection from uv_queue_work until the
 *   end of on_after_work, which libuv always runs (UV_ECANCELED when
 *   uv_cancel removed it before it started).
 * - What a worker reads or writes is either moved into the job (a block, the
 *   body buffer, the job's counts array) or shared read-only (the needle
 *   set, the parsed text for slices). The shared things belong to the
 *   request, which is reset only when no job is in flight, and to the
 *   connection, which is freed only when its references reach zero. The
 *   parse job also fills the request's spec: the loop does not touch the
 *   spec while a parse job is in flight.
 * - A wc_stream_t is used by one job at a time (stream jobs are queued one
 *   after the other).
 * - If the connection is closing, or was answered early, on_after_work drops
 *   the result and frees what the job owns.
 */
#include "job.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

/* Where a full block is cut: within its last CUT_WINDOW bytes. */
#define CUT_WINDOW (64 * 1024)
/* A block has room for one more read past WC_BLOCK_SIZE. */
#define BLOCK_CAP (WC_BLOCK_SIZE + WC_READ_BUF_SIZE)

/* JSON bodies from this size try wc_reqparse_json_split (reqparse.h). */
#define FAST_JSON_MIN (64 * 1024)
/* A JSON body's text is looked for as it arrives (JOB_TSCAN) in steps of
 * TSCAN_STEP new bytes, in bodies of TSCAN_MIN bytes and more. */
#define TSCAN_STEP (1u << 20)
#define TSCAN_MIN (4u << 20)

typedef enum {
  JOB_BLOCK,
  JOB_STREAM,
  JOB_PARSE,
  JOB_SLICE,
  JOB_JSLICE, /* decodes a slice of a JSON text, then counts it */
  JOB_TSCAN   /* looks for a JSON text's end in the body received so far */
} job_kind_t;

typedef struct {
  uv_work_t work;
  wc_link_t link; /* in ct->jobs */
  wc_conn_t *conn;
  job_kind_t kind;
  unsigned nice; /* worker_nice, for a worker's first job (nice_worker) */
  const wc_needles_t *set; /* shared, read-only */
  wc_stream_t *stream;     /* JOB_STREAM: this job is its only user */
  int finish;              /* JOB_STREAM: the text ends here */
  char *data;              /* JOB_BLOCK/STREAM/PARSE: owned */
  size_t len;
  size_t cap, faulted; /* JOB_PARSE: of data (body_put) */
  const char *text;    /* JOB_SLICE: into spec.text; JOB_TSCAN: the request's
                          body buffer (text[0..len)); shared, read-only */
  char *out;           /* JOB_JSLICE: its slice of the raw body, decoded in
                          place (slices are disjoint) */
  size_t out_len;      /* decoded bytes */
  size_t base;         /* JOB_JSLICE: body offset of out[0] */
  wc_jbad_t bad;       /* JOB_JSLICE, rc -EINVAL: why it did not decode */
  uint64_t held;       /* budget bytes released when done */
  size_t n;
  uint64_t *counts;    /* owned (unless counts_in); moved to the request for
                          JOB_PARSE */
  uint64_t *counts_in; /* JOB_PARSE run inline: the request's counts_in */
  int rc;
  /* JOB_PARSE */
  wc_countspec_t *spec;
  int body_type;
  wc_reqlimits_t lim;
  unsigned workers;
  uint64_t min_bytes;
  wc_needles_t *out_set;
  size_t *cuts;
  size_t ncuts;
  wc_error_t err;
  wc_setcache_t *cache; /* JOB_PARSE run inline: the loop's set cache */
  int set_cached;       /* out_set came from it */
  int fast;             /* the fast JSON path was taken */
  size_t vs, ve;        /* fast: the raw text is data[vs..ve) */
  wc_textscan_t tscan;  /* JOB_TSCAN and JOB_PARSE: the request's, fed */
  unsigned q_flags;     /* the query string's options, to start over */
  int q_mode;
} job_t;

/* The cache key of a spec: flags aside, each needle as 2 length bytes
 * and its bytes. 0 when it does not fit (not cached). */
static size_t set_key(const wc_countspec_t *s, char *key) {
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (k + 2 + s->lens[i] > WC_SETCACHE_KEY)
      return 0;
    key[k++] = (char)(s->lens[i] & 0xff);
    key[k++] = (char)(s->lens[i] >> 8);
    memcpy(key + k, s->needles[i], s->lens[i]);
    k += s->lens[i];
  }
  return k;
}

/* Loop thread: the needle set of s, from the cache when it is there.
 * Returns 0 or what wc_needles_new returns. */
static int set_acquire(wc_setcache_t *sc, const wc_countspec_t *s,
                       wc_needles_t **set, int *cached, size_t *idx) {
  char key[WC_SETCACHE_KEY];
  size_t klen = set_key(s, key);
  int victim = -1, rc;
  *cached = 0;
  if (klen > 0) {
    for (int i = 0; i < WC_SETCACHE_N; i++) {
      if (sc->e[i].set != NULL && sc->e[i].flags == s->flags &&
          sc->e[i].keylen == klen && memcmp(sc->e[i].key, key, klen) == 0) {
        sc->e[i].refs++;
        sc->e[i].used = ++sc->tick;
        *set = sc->e[i].set;
        *cached = 1;
        return 0;
      }
      if (sc->e[i].refs == 0 &&
          (victim < 0 || sc->e[i].set == NULL ||
           (sc->e[victim].set != NULL && sc->e[i].used < sc->e[victim].used)))
        victim = i;
    }
  }
  rc = wc_needles_new(set, (const char *const *)s->needles, s->lens, s->n,
                      s->flags, idx);
  if (rc < 0 || klen == 0 || victim < 0)
    return rc;
  wc_needles_free(sc->e[victim].set);
  sc->e[victim].set = *set;
  sc->e[victim].refs = 1;
  sc->e[victim].flags = s->flags;
  sc->e[victim].used = ++sc->tick;
  sc->e[victim].keylen = klen;
  memcpy(sc->e[victim].key, key, klen);
  *cached = 1;
  return 0;
}

/* Loop thread: a request is done with its set. */
static void set_release(wc_setcache_t *sc, wc_needles_t *set, int cached) {
  if (!cached) {
    wc_needles_free(set);
    return;
  }
  for (int i = 0; i < WC_SETCACHE_N; i++)
    if (sc->e[i].set == set) {
      sc->e[i].refs--;
      return;
    }
}

void wc_setcache_free(wc_setcache_t *sc) {
  for (int i = 0; i < WC_SETCACHE_N; i++) {
    wc_needles_free(sc->e[i].set);
    sc->e[i].set = NULL;
    sc->e[i].refs = 0;
  }
}

static void block_put(wc_blockpool_t *bp, char *b);

/* Kept blocks and body buffers are poisoned for ASan while they wait in
 * their pool (a block but for the link in its first bytes), so that a
 * use after it was given back is reported as free() would have it. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Large body buffers kept for the next large body (wc_bodypool_t). From
 * 1 MiB: a smaller body is faulted in as it is copied and freed into the
 * heap, where its pages stay mapped. */
#define BODYPOOL_MIN (1u << 20)

/* The smallest kept buffer with room for `need` bytes and at most twice
 * that (a budget of twice the body at most); NULL when there is none. */
static char *bodypool_take(wc_bodypool_t *bp, size_t need, size_t *cap,
                           size_t *faulted) {
  unsigned best = bp->n;
  char *p;
  for (unsigned i = 0; i < bp->n; i++)
    if (bp->e[i].cap >= need && bp->e[i].cap / 2 <= need &&
        (best == bp->n || bp->e[i].cap < bp->e[best].cap))
      best = i;
  if (best == bp->n)
    return NULL;
  p = bp->e[best].p;
  *cap = bp->e[best].cap;
  *faulted = bp->e[best].faulted;
  bp->bytes -= bp->e[best].cap;
  bp->e[best] = bp->e[--bp->n];
  POOL_UNPOISON(p, *cap);
  return p;
}

/* Keeps p for the next large body: within WC_BODYPOOL_N buffers and `max`
 * bytes (memory outside the budget: half of it), smaller kept buffers make
 * room for it; if it still does not fit, it is freed. */
static int bodypool_full(const wc_bodypool_t *bp, size_t cap, uint64_t max) {
  return bp->n == WC_BODYPOOL_N || bp->bytes + cap > max;
}

static void bodypool_put(wc_bodypool_t *bp, char *p, size_t cap,
                         size_t faulted, uint64_t max) {
  while (bp->n > 0 && bodypool_full(bp, cap, max)) {
    unsigned small = 0;
    for (unsigned i = 1; i < bp->n; i++)
      if (bp->e[i].cap < bp->e[small].cap)
        small = i;
    if (bp->e[small].cap >= cap)
      break;
    bp->bytes -= bp->e[small].cap;
    free(bp->e[small].p);
    bp->e[small] = bp->e[--bp->n];
  }
  if (bodypool_full(bp, cap, max)) {
    free(p);
    return;
  }
  bp->e[bp->n].p = p;
  bp->e[bp->n].cap = cap;
  bp->e[bp->n].faulted = faulted;
  bp->e[bp->n].age = 0;
  bp->n++;
  bp->bytes += cap;
  POOL_POISON(p, cap);
}

void wc_bodypool_tick(wc_bodypool_t *bp) {
  for (unsigned i = 0; i < bp->n;)
    if (++bp->e[i].age > 2) {
      bp->bytes -= bp->e[i].cap;
      free(bp->e[i].p);
      bp->e[i] = bp->e[--bp->n];
    } else {
      i++;
    }
}

void wc_bodypool_free(wc_bodypool_t *bp) {
  while (bp->n > 0)
    free(bp->e[--bp->n].p);
  bp->bytes = 0;
}

/* Loop thread: gives back a JSON or form body buffer: kept when large, and
 * nothing to do for the connection's own body_in (a small body parsed on
 * the loop). */
static void body_put(wc_conn_t *c, char *p, size_t cap, size_t faulted) {
  if (p == NULL || p == c->http.body_in)
    return;
  if (cap >= BODYPOOL_MIN)
    bodypool_put(&c->srv->bodies, p, cap, faulted,
                 c->srv->buffered_cap / 2);
  else
    free(p);
}

/* The request's body buffer goes to its parse job (which gives it back
 * with body_put); the request forgets it once the job has it. */
static void body_lend(const wc_count_t *ct, job_t *j) {
  j->data = ct->buf;
  j->len = ct->buf_len;
  j->cap = ct->buf_cap;
  j->faulted = ct->buf_faulted;
}

static void body_forget(wc_count_t *ct) {
  ct->buf = NULL;
  ct->buf_len = ct->buf_cap = ct->buf_charged = ct->buf_faulted = 0;
}

/* Loop thread: frees what the job still owns (not the job itself, which
 * may live on the stack: run_parse_inline). */
static void job_release(job_t *j) {
  if (j->kind == JOB_BLOCK || j->kind == JOB_STREAM)
    block_put(&j->conn->srv->blocks, j->data);
  else if (j->kind == JOB_PARSE)
    body_put(j->conn, j->data, j->cap, j->faulted);
  if (j->counts != j->counts_in)
    free(j->counts);
  free(j->cuts);
  if (j->out_set != NULL)
    set_release(j->cache, j->out_set, j->set_cached);
}

static void job_free(job_t *j) {
  job_release(j);
  free(j);
}

static job_t *job_new(wc_conn_t *c, job_kind_t kind, size_t n) {
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  j->conn = c;
  j->kind = kind;
  j->n = n;
  wc_list_init(&j->link);
  if (n > 0) {
    j->counts = calloc(n, sizeof *j->counts);
    if (j->counts == NULL) {
      free(j);
      return NULL;
    }
  }
  return j;
}

/* Puts the spec back as the query string left it. */
static void spec_restart(wc_countspec_t *s, unsigned flags, int mode) {
  wc_reqparse_free(s);
  wc_reqparse_init(s);
  s->flags = flags;
  s->mode = mode;
}

/* Worker thread: decodes the JSON text p[0..n) in place (p[0] is at body
 * offset base). 0, or -EINVAL with bad saying why. */
static int decode_in_place(char *p, size_t n, size_t base, size_t *out_len,
                           wc_jbad_t *bad) {
  size_t at = 0;
  if (wc_json_unescape(p, n, p, out_len, &at) == 0)
    return 0;
  wc_jbad_init(bad);
  wc_jbad_add(bad, p, n, at, base);
  return -EINVAL;
}

/*
 * Worker thread: the fast JSON path (see reqparse.h). Returns 1 when taken:
 * counted here (or answered with an error in j->err, j->rc < 0), or split
 * (j->ncuts > 1: the loop queues one JOB_JSLICE per slice, which decodes and
 * counts it); 0 with nothing changed otherwise.
 */
static int parse_fast(job_t *j) {
  wc_countspec_t *s = j->spec;
  size_t vs, ve, idx = 0;
  /* what the scan jobs did not see yet (all of it without them) */
  wc_textscan_feed(&j->tscan, j->data, j->len);
  if (!wc_reqparse_json_split_hint(s, j->data, j->len, &j->lim, &j->tscan,
                                   &vs, &ve))
    return 0;
  if (wc_needles_new(&j->out_set, (const char *const *)s->needles, s->lens,
                     s->n, s->flags, &idx) < 0)
    goto undo;
  j->n = s->n;
  j->counts = calloc(s->n, sizeof *j->counts);
  if (j->counts == NULL)
    goto undo;
  j->vs = vs;
  j->ve = ve;
  j->fast = 1;
  if (s->mode == WC_MODE_PARALLEL ||
      (s->mode == WC_MODE_AUTO && ve - vs >= j->min_bytes)) {
    size_t k = j->workers > 1 ? j->workers : 2;
    j->cuts = malloc((k + 1) * sizeof *j->cuts);
    if (j->cuts != NULL) {
      j->ncuts = wc_split(j->data + vs, ve - vs, k, j->cuts);
      j->ncuts = wc_json_cuts(j->data + vs, ve - vs, j->cuts, j->ncuts);
      if (j->ncuts > 1)
        return 1;
    }
  }
  j->ncuts = 0;
  /* Decoded in place: from here the body is no longer the client's, so a
   * bad escape is answered from what the decoder saw (wc_jbad_t), exactly
   * as cJSON would answer it. */
  if (decode_in_place(j->data + vs, ve - vs, vs, &j->out_len, &j->bad) < 0) {
    wc_jbad_error(&j->bad, &j->err);
    j->rc = -EINVAL;
  } else if (wc_count(j->out_set, j->data + vs, j->out_len, j->counts) < 0) {
    wc_errors_set(&j->err, WC_E_NO_MEMORY, NULL);
    j->rc = -ENOMEM;
  }
  return 1;
undo:
  wc_needles_free(j->out_set);
  j->out_set = NULL;
  free(j->counts);
  j->counts = NULL;
  free(j->cuts);
  j->cuts = NULL;
  j->ncuts = 0;
  j->fast = 0;
  spec_restart(s, j->q_flags, j->q_mode);
  return 0;
}

/* Worker thread: sees only the job. */
static void parse_work(job_t *j) {
  wc_countspec_t *s = j->spec;
  size_t idx = 0;
  int rc;
  /* The body goes back to the loop with the job (body_put). */
  if (j->body_type == WC_BODY_JSON && j->len >= FAST_JSON_MIN &&
      parse_fast(j))
    return;
  rc = j->body_type == WC_BODY_JSON
           ? wc_reqparse_json(s, j->data, j->len, &j->lim, &j->err)
           : wc_reqparse_form(s, j->data, j->len, &j->lim, &j->err);
  if (rc < 0)
    goto fail;
  rc = wc_reqparse_finish(s, j->body_type, &j->err);
  if (rc < 0)
    goto fail;
  rc = j->cache != NULL
           ? set_acquire(j->cache, s, &j->out_set, &j->set_cached, &idx)
           : wc_needles_new(&j->out_set, (const char *const *)s->needles,
                            s->lens, s->n, s->flags, &idx);
  if (rc < 0) {
    wc_errors_set(&j->err, wc_errors_from_errno(rc), NULL);
    goto fail;
  }
  j->n = s->n;
  if (j->counts_in != NULL && s->n <= WC_COUNTS_IN) {
    j->counts = j->counts_in; /* zeroed with the request */
  } else {
    j->counts = calloc(s->n, sizeof *j->counts);
  }
  if (j->counts == NULL) {
    rc = -ENOMEM;
    wc_errors_set(&j->err, WC_E_NO_MEMORY, NULL);
    goto fail;
  }
  if (s->mode == WC_MODE_PARALLEL ||
      (s->mode == WC_MODE_AUTO && s->text_len >= j->min_bytes)) {
    size_t k = j->workers > 1 ? j->workers : 2;
    j->cuts = malloc((k + 1) * sizeof *j->cuts);
    if (j->cuts != NULL) {
      j->ncuts = wc_split(s->text, s->text_len, k, j->cuts);
      if (j->ncuts > 1)
        return; /* the loop queues one job per slice */
    }
  }
  rc = wc_count(j->out_set, s->text, s->text_len, j->counts);
  if (rc < 0) {
    wc_errors_set(&j->err, WC_E_NO_MEMORY, NULL);
    goto fail;
  }
  j->ncuts = 0;
  return;
fail:
  if (j->err.kind == WC_E_NONE)
    wc_errors_set(&j->err, wc_errors_from_errno(rc), NULL);
  j->rc = rc;
}

/* Each worker lowers its own priority once, on its first job, by
 * worker_nice over the nice value it was created with (that of the
 * process): on a busy machine the loops, which answer small requests, then
 * run before the counting of large bodies (the p99 of small requests beside
 * 85.8 MB uploads: bench/http/hol.py, README). A thread's nice value is its
 * own on Linux (setpriority(2)); raising it needs no privilege, and if it
 * fails the worker just runs at the loops' priority. */
static __thread int worker_niced;

int wc_job_worker_nice(unsigned worker_nice, int *now, int *target) {
  errno = 0;
  *now = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  if (*now == -1 && errno != 0)
    return -1;
  *target = *now + (int)worker_nice > 19 ? 19 : *now + (int)worker_nice;
  return 0;
}

static void nice_worker(unsigned incr) {
  int now, target;
  worker_niced = 1;
  if (incr > 0 && wc_job_worker_nice(incr, &now, &target) == 0 && target != now)
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), target);
}

static void on_work(uv_work_t *w) {
  job_t *j = container_of(w, job_t, work);
  if (!worker_niced)
    nice_worker(j->nice);
  wc_metrics_gauge_add(WC_G_POOL_QUEUE_DEPTH, -1); /* started */
  switch (j->kind) {
  case JOB_BLOCK:
    j->rc = wc_count(j->set, j->data, j->len, j->counts);
    break;
  case JOB_SLICE:
    j->rc = wc_count(j->set, j->text, j->len, j->counts);
    break;
  case JOB_JSLICE:
    j->rc = decode_in_place(j->out, j->len, j->base, &j->out_len, &j->bad);
    if (j->rc == 0)
      j->rc = wc_count(j->set, j->out, j->out_len, j->counts);
    break;
  case JOB_STREAM:
    j->rc = j->len > 0 ? wc_stream_feed(j->stream, j->data, j->len) : 0;
    if (j->rc == 0 && j->finish)
      j->rc = wc_stream_finish(j->stream, j->counts);
    break;
  case JOB_PARSE:
    parse_work(j);
    break;
  case JOB_TSCAN:
    wc_textscan_feed(&j->tscan, j->text, j->len);
    break;
  }
}

static void on_after_work(uv_work_t *w, int status);

/* Queues j. On failure j is not queued and still belongs to the caller. */
static int queue(wc_conn_t *c, job_t *j) {
  wc_count_t *ct = &c->http.count;
  int rc;
  /* Counted before queueing: a worker may start it (and count it down)
   * before uv_queue_work returns. */
  wc_metrics_gauge_add(WC_G_POOL_QUEUE_DEPTH, 1);
  j->nice = c->srv->cfg->worker_nice;
  rc = uv_queue_work(c->srv->loop, &j->work, on_work, on_after_work);
  if (rc < 0) {
    wc_metrics_gauge_add(WC_G_POOL_QUEUE_DEPTH, -1);
    return rc;
  }
  wc_conn_ref(c);
  ct->inflight++;
  wc_metrics_gauge_add(WC_G_JOBS_IN_FLIGHT, 1);
  wc_list_push(&ct->jobs, &j->link);
  wc_server_budget_take(c->srv, 0, 1);
  return 0;
}

static void fail(wc_count_t *ct, wc_err_t kind) {
  if (ct->err.kind == WC_E_NONE)
    wc_errors_set(&ct->err, kind, NULL);
}

/* Free blocks kept per loop (wc_blockpool_t). */
#define BLOCK_POOL 8

static char *block_get(wc_blockpool_t *bp) {
  char *b = bp->head;
  if (b == NULL)
    return malloc(BLOCK_CAP);
  memcpy(&bp->head, b, sizeof bp->head);
  if (--bp->n < bp->low)
    bp->low = bp->n;
  POOL_UNPOISON(b, BLOCK_CAP);
  return b;
}

static void block_put(wc_blockpool_t *bp, char *b) {
  if (b == NULL)
    return;
  if (bp->n >= BLOCK_POOL) {
    free(b);
    return;
  }
  memcpy(b, &bp->head, sizeof bp->head);
  bp->head = b;
  bp->n++;
  POOL_POISON(b + sizeof bp->head, BLOCK_CAP - sizeof bp->head);
}

/* The pool is a stack: its `low` bottom blocks were not taken during this
 * tick, and min(low, low_prev) in neither this nor the last one. */
void wc_blockpool_tick(wc_blockpool_t *bp) {
  unsigned idle = bp->low < bp->low_prev ? bp->low : bp->low_prev;
  bp->low_prev = bp->low - idle; /* the spare ones left */
  while (idle-- > 0)
    free(block_get(bp)); /* idle <= low <= n: never a malloc */
  bp->low = bp->n;
}

void wc_blockpool_free(wc_blockpool_t *bp) {
  while (bp->head != NULL)
    free(block_get(bp));
}

static char *block_alloc(wc_conn_t *c) {
  char *b = block_get(&c->srv->blocks);
  if (b != NULL) {
    c->http.count.held += BLOCK_CAP;
    wc_server_budget_take(c->srv, BLOCK_CAP, 0);
  }
  return b;
}

/*
 * Blocks of one raw body counted at once: 1 with mode=sequential, every
 * worker with mode=parallel; with mode=auto every worker while this is the
 * server's only client connection, one fewer while there are others, so
 * that a big upload leaves a core to the event loops that serve them.
 */
static unsigned inflight_cap(const wc_count_t *ct) {
  if (ct->spec.mode != WC_MODE_AUTO || ct->max_inflight <= 1 ||
      wc_metrics_gauge_get(WC_G_OPEN_CONNECTIONS) <= 1)
    return ct->max_inflight;
  return ct->max_inflight - 1;
}

/*
 * Queues the filled block(s) of a raw body, the last one when the body is
 * complete. Returns 0 (maybe nothing could be queued yet) or -ENOMEM.
 */
static int dispatch(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  for (;;) {
    int final = ct->body_done;
    size_t cut, rest;
    char *next = NULL;
    job_t *j;
    if (ct->final_sent || ct->err.kind != WC_E_NONE)
      return 0;
    if (!final && ct->block_len < WC_BLOCK_SIZE)
      return 0;
    if (ct->stream_mode) {
      if (ct->inflight > 0)
        return 0; /* in order, one at a time */
      j = job_new(c, JOB_STREAM, final ? ct->spec.n : 0);
      if (j == NULL)
        return -ENOMEM;
      j->stream = ct->stream;
      j->finish = final;
      j->data = ct->block;
      j->len = ct->block_len;
      j->held = ct->block != NULL ? BLOCK_CAP : 0;
      if (queue(c, j) < 0) {
        j->data = NULL;
        job_free(j);
        return -ENOMEM;
      }
      ct->held -= j->held;
      ct->block = NULL;
      ct->block_len = 0;
      ct->final_sent = final;
      return 0;
    }
    if (final && ct->inflight == 0 && ct->block != NULL &&
        ct->bytes <= c->srv->cfg->parallel_inline_max_bytes) {
      /* A tiny body: counting it here costs less than the hop to a worker
       * and back (parallel.inline_max_bytes). */
      if (wc_count(ct->set, ct->block, ct->block_len, ct->counts) < 0)
        return -ENOMEM;
      ct->final_sent = 1;
      return 0;
    }
    if (ct->inflight >= inflight_cap(ct))
      return 0;
    if (final) {
      if (ct->block_len == 0) {
        ct->final_sent = 1;
        return 0;
      }
      cut = ct->block_len;
    } else {
      size_t win = ct->block_len < CUT_WINDOW ? ct->block_len : CUT_WINDOW;
      size_t off = ct->block_len - win;
      char last = ct->block[ct->block_len - 1];
      /* wc_prev_cut treats the end of its text as a cut, but the end of a
       * block is not the end of the body: ask for the last separator before
       * the final byte, and check the final byte here. */
      size_t k = last == ' ' || last == '\n'
                     ? win
                     : wc_prev_cut(ct->block + off, win, win - 1);
      if (k == 0) {
        int rc = wc_stream_new(&ct->stream, ct->set);
        if (rc < 0)
          return rc;
        ct->stream_mode = 1;
        continue;
      }
      cut = off + k;
    }
    rest = ct->block_len - cut;
    if (rest > 0) {
      next = block_alloc(c);
      if (next == NULL)
        return -ENOMEM;
      memcpy(next, ct->block + cut, rest);
    }
    j = job_new(c, JOB_BLOCK, ct->spec.n);
    if (j == NULL || (j->set = ct->set, j->data = ct->block, j->len = cut,
                      j->held = BLOCK_CAP, queue(c, j) < 0)) {
      if (j != NULL) {
        j->data = NULL;
        job_free(j);
      }
      if (next != NULL) {
        block_put(&c->srv->blocks, next);
        ct->held -= BLOCK_CAP;
        wc_server_budget_give(c->srv, BLOCK_CAP, 0);
      }
      return -ENOMEM;
    }
    ct->held -= BLOCK_CAP;
    ct->block = next;
    ct->block_len = rest;
    if (final)
      ct->final_sent = 1;
  }
}

static void check_done(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  /* After a failure nothing more is queued: the request is done once the
   * body is read and the jobs in flight are back. */
  if (ct->body_done && (ct->final_sent || ct->err.kind != WC_E_NONE) &&
      ct->inflight == 0)
    wc_http_count_done(c);
}

static void add_counts(wc_count_t *ct, const uint64_t *counts) {
  for (size_t i = 0; i < ct->spec.n; i++)
    ct->counts[i] += counts[i];
}

/* A parse job finished: take its results, queue slices if it split. */
static void parse_done(wc_conn_t *c, job_t *j) {
  wc_count_t *ct = &c->http.count;
  if (j->rc < 0) {
    ct->err = j->err;
    return;
  }
  ct->set = j->out_set;
  ct->set_cached = j->set_cached;
  j->out_set = NULL;
  ct->counts = j->counts;
  j->counts = NULL;
  ct->bytes = ct->spec.text_len;
  if (j->fast) {
    ct->bytes = j->out_len;
    if (j->ncuts > 1) {
      /* The body, which the slices decode in place, stays with the
       * request (and in its budget) until it ends. */
      ct->jbody = j->data;
      ct->jbody_len = j->len;
      ct->jbody_cap = j->cap;
      ct->jbody_faulted = j->faulted;
      j->data = NULL;
      ct->held += j->held;
      j->held = 0;
    }
  }
  for (size_t i = 0; i < j->ncuts; i++) {
    job_t *s = job_new(c, j->fast ? JOB_JSLICE : JOB_SLICE, ct->spec.n);
    if (s == NULL) {
      fail(ct, WC_E_NO_MEMORY);
      return;
    }
    s->set = ct->set;
    s->len = j->cuts[i + 1] - j->cuts[i];
    if (j->fast) {
      s->out = ct->jbody + j->vs + j->cuts[i];
      s->base = j->vs + j->cuts[i];
    } else {
      s->text = ct->spec.text + j->cuts[i];
    }
    if (queue(c, s) < 0) {
      job_free(s);
      fail(ct, WC_E_NO_MEMORY);
      return;
    }
  }
}

/* What a parse job needs of its request and of the configuration. */
static void parse_setup(wc_conn_t *c, job_t *j) {
  wc_count_t *ct = &c->http.count;
  const wc_config_t *cfg = c->srv->cfg;
  j->spec = &ct->spec;
  j->body_type = ct->body_type;
  j->lim.max_needles = cfg->limits.max_needles;
  j->lim.max_needle_bytes = cfg->limits.max_needle_bytes;
  j->workers = cfg->workers;
  j->min_bytes = cfg->parallel_min_bytes;
  j->q_flags = ct->q_flags;
  j->q_mode = ct->q_mode;
  j->tscan = ct->tscan;
}

/* Queues the parse job of the request's JSON or form body, which then
 * owns the body and its budget bytes. 0, or -ENOMEM with nothing taken. */
static int queue_parse(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  job_t *j = job_new(c, JOB_PARSE, 0);
  if (j == NULL)
    return -ENOMEM;
  parse_setup(c, j);
  body_lend(ct, j);
  j->held = ct->held;
  if (queue(c, j) < 0) {
    j->data = NULL;
    job_free(j);
    return -ENOMEM;
  }
  return 0;
}

/* The body is complete and no scan job runs: its parse job goes, and the
 * request's last job is queued (waited: when the scan job that was running
 * as the body completed is back). 0 or -ENOMEM. */
static int start_parse(wc_conn_t *c, int waited) {
  wc_count_t *ct = &c->http.count;
  if (ct->tscan.pos > 0 && wc_log_enabled(WC_LOG_DEBUG))
    wc_log(WC_LOG_DEBUG,
           "%s: JSON text scanned as the body arrived: %zu of %zu bytes, "
           "end %s%s",
           c->peer, (size_t)ct->tscan.pos, ct->buf_len,
           ct->tscan.state == 2 ? "found" : "not yet found",
           waited ? "; the parse waited for a scan job" : "");
  if (queue_parse(c) < 0)
    return -ENOMEM;
  body_forget(ct);
  ct->held = 0;
  ct->final_sent = 1;
  return 0;
}

/* Queues a JOB_TSCAN over the JSON body received so far when TSCAN_STEP
 * new bytes are there, the body is not complete yet, none runs and the pool
 * has no job waiting (a scan would take a worker from another request's
 * count). Best effort: without it the parse job scans what is left. */
static void tscan_maybe(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  job_t *j;
  if (ct->tscan_busy || ct->tscan.state >= 2 ||
      ct->body_type != WC_BODY_JSON || ct->err.kind != WC_E_NONE ||
      ct->expect < TSCAN_MIN ||
      ct->expect <= c->srv->cfg->parallel_inline_max_bytes ||
      ct->buf_cap < ct->expect || /* may still move */
      ct->buf_len >= ct->expect || /* the parse job does the rest */
      ct->buf_len - ct->tscan.pos < TSCAN_STEP || c->closing ||
      c->want_close || wc_metrics_gauge_get(WC_G_POOL_QUEUE_DEPTH) > 0)
    return;
  j = job_new(c, JOB_TSCAN, 0);
  if (j == NULL)
    return;
  j->text = ct->buf;
  j->len = ct->buf_len;
  j->tscan = ct->tscan;
  if (queue(c, j) < 0) {
    job_free(j);
    return;
  }
  ct->tscan_busy = 1;
}

static void on_after_work(uv_work_t *w, int status) {
  job_t *j = container_of(w, job_t, work);
  wc_conn_t *c = j->conn;
  wc_count_t *ct = &c->http.count;
  uint64_t held = j->held;
  wc_list_remove(&j->link);
  ct->inflight--;
  wc_metrics_gauge_add(WC_G_JOBS_IN_FLIGHT, -1);
  if (status == UV_ECANCELED) /* on_work never ran */
    wc_metrics_gauge_add(WC_G_POOL_QUEUE_DEPTH, -1);
  if (status != 0 || c->closing || c->want_close) {
    /* Cancelled, or the client is gone or was answered: drop it. */
    job_free(j);
    wc_server_budget_give(c->srv, held, 1);
    wc_conn_unref(c);
    return;
  }
  switch (j->kind) {
  case JOB_PARSE:
    parse_done(c, j);
    held = j->held; /* 0 when the body stayed with the request */
    break;
  case JOB_JSLICE:
    if (j->rc == -EINVAL) { /* a bad escape (wc_count fails with -ENOMEM) */
      ct->jfail = 1;
      wc_jbad_merge(&ct->jbad, &j->bad);
    } else if (j->rc < 0) {
      fail(ct, WC_E_NO_MEMORY);
    } else {
      add_counts(ct, j->counts);
      ct->bytes += j->out_len;
    }
    break;
  case JOB_STREAM:
    if (j->rc < 0)
      fail(ct, WC_E_NO_MEMORY);
    else if (j->finish)
      add_counts(ct, j->counts);
    break;
  case JOB_TSCAN:
    ct->tscan = j->tscan;
    ct->tscan_busy = 0;
    if (!ct->body_done)
      tscan_maybe(c);
    else if (!ct->final_sent && ct->err.kind == WC_E_NONE &&
             start_parse(c, 1) < 0) /* wc_job_end left it to this job */
      fail(ct, WC_E_NO_MEMORY);
    break;
  default:
    if (j->rc < 0)
      fail(ct, WC_E_NO_MEMORY);
    else
      add_counts(ct, j->counts);
    break;
  }
  job_free(j);
  if (ct->jfail && ct->inflight == 0)   /* every slice is back: cJSON's */
    wc_jbad_error(&ct->jbad, &ct->err); /* error, even over a no-memory */
  if (ct->body_type == WC_BODY_RAW && dispatch(c) < 0)
    fail(ct, WC_E_NO_MEMORY);
  if ((c->pause & WC_PAUSE_JOBS) &&
      (ct->block_len < WC_BLOCK_SIZE || ct->err.kind != WC_E_NONE))
    wc_conn_resume(c, WC_PAUSE_JOBS);
  if (!c->closing && !c->want_close)
    check_done(c);
  wc_conn_flush(c);
  wc_server_budget_give(c->srv, held, 1);
  wc_conn_unref(c);
}

void wc_job_init(wc_count_t *ct) {
  memset(ct, 0, sizeof *ct);
  wc_reqparse_init(&ct->spec);
  wc_list_init(&ct->jobs);
  wc_jbad_init(&ct->jbad);
}

void wc_job_reset(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  wc_server_unprivilege(c->srv, c);
  block_put(&c->srv->blocks, ct->block);
  body_put(c, ct->buf, ct->buf_cap, ct->buf_faulted);
  body_put(c, ct->jbody, ct->jbody_cap, ct->jbody_faulted);
  if (ct->held > 0)
    wc_server_budget_give(c->srv, ct->held, 0);
  wc_stream_free(ct->stream);
  set_release(&c->srv->setcache, ct->set, ct->set_cached);
  if (ct->counts != ct->counts_in)
    free(ct->counts);
  wc_reqparse_free(&ct->spec);
  wc_job_init(ct);
}

int wc_job_begin_raw(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  const wc_config_t *cfg = c->srv->cfg;
  size_t idx = 0;
  int rc = wc_reqparse_finish(&ct->spec, WC_BODY_RAW, &ct->err);
  if (rc < 0)
    return rc;
  rc = set_acquire(&c->srv->setcache, &ct->spec, &ct->set, &ct->set_cached,
                   &idx);
  if (rc < 0) {
    wc_errors_set(&ct->err, wc_errors_from_errno(rc), NULL);
    return rc;
  }
  ct->counts = ct->spec.n <= WC_COUNTS_IN
                   ? ct->counts_in /* zeroed by wc_job_init */
                   : calloc(ct->spec.n, sizeof *ct->counts);
  if (ct->counts == NULL) {
    wc_errors_set(&ct->err, WC_E_NO_MEMORY, NULL);
    return -ENOMEM;
  }
  ct->max_inflight = ct->spec.mode == WC_MODE_SEQUENTIAL ? 1
                     : cfg->workers > 0                  ? cfg->workers
                                                         : 1;
  return 0;
}

/*
 * A large JSON or form body is faulted in 512 KiB at a time with
 * MADV_POPULATE_WRITE instead of one page fault per 4 KiB as the copy
 * touches it (85.8 MB: 21,000 faults, most of the time spent receiving it).
 * At most one step beyond the bytes received is made resident (2 MiB steps
 * left a whole 2 MiB buffer resident for a 1.1 MB body, and glibc keeps
 * freed heap chunks). Best effort: without the advice (Linux < 5.14) the
 * copy faults as before.
 */
#define PREFAULT_MIN (1u << 20)
#define PREFAULT_STEP (512u << 10)

static void prefault(wc_count_t *ct, size_t need) {
#ifdef MADV_POPULATE_WRITE
  size_t to =
      need + PREFAULT_STEP < ct->buf_cap ? need + PREFAULT_STEP : ct->buf_cap;
  uintptr_t a = (uintptr_t)(ct->buf + ct->buf_faulted) & ~(uintptr_t)4095;
  uintptr_t b = (uintptr_t)(ct->buf + to) & ~(uintptr_t)4095;
  if (b > a)
    (void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
  ct->buf_faulted = (size_t)((char *)b - ct->buf);
#else
  ct->buf_faulted = need;
#endif
  if (ct->buf_faulted < need)
    ct->buf_faulted = need;
}

int wc_job_data(wc_conn_t *c, const char *p, size_t len) {
  wc_count_t *ct = &c->http.count;
  wc_server_t *srv = c->srv;
  if (ct->err.kind != WC_E_NONE)
    return 0; /* failed already: the body is read and dropped */
  if (ct->body_type != WC_BODY_RAW) {
    char *in = c->http.body_in;
    if (ct->buf == NULL && len <= sizeof c->http.body_in &&
        srv->cfg->parallel_inline_max_bytes >= sizeof c->http.body_in) {
      /* Most bodies are small: the connection's own buffer, no malloc
       * (and no budget: it is part of the connection). Only for bodies
       * parsed on the loop: a pool job would outlive the buffer's use. */
      ct->buf = in;
      ct->buf_cap = sizeof c->http.body_in;
    } else if (ct->buf_len + len > ct->buf_cap) {
      /* Small first: a large first block costs the allocator a
       * consolidation on every request. From BODYPOOL_MIN on, a body of
       * known length gets its whole buffer at once, a kept one if there is
       * one (already faulted in). */
      size_t ncap = ct->buf_cap ? ct->buf_cap : 512;
      size_t faulted = 0;
      char *n = NULL;
      while (ncap < ct->buf_len + len)
        ncap *= 2;
      if (ncap >= BODYPOOL_MIN && ct->expect > 0) {
        ncap = (size_t)ct->expect;
        n = bodypool_take(&srv->bodies, ncap, &ncap, &faulted);
        if (n != NULL) {
          memcpy(n, ct->buf, ct->buf_len);
          body_put(c, ct->buf, ct->buf_cap, ct->buf_faulted);
        }
      }
      if (n == NULL) {
        if (ct->buf == in) {
          n = malloc(ncap);
          if (n != NULL)
            memcpy(n, in, ct->buf_len);
        } else {
          n = realloc(ct->buf, ncap);
        }
        if (n == NULL)
          return -ENOMEM;
        /* realloc's copy faulted in what it moved; the rest is new */
        faulted = n == ct->buf ? ct->buf_faulted : ct->buf_len;
      }
      ct->buf = n;
      ct->buf_cap = ncap;
      ct->buf_faulted = faulted;
    }
    if (ct->buf != in && ct->buf_len + len > ct->buf_charged) {
      /* The budget counts what arrives, in doubling steps, whatever the
       * capacity: a client that announces 64 MiB and sends 600 KB holds
       * about 1 MiB of it. */
      size_t nc = ct->buf_charged ? ct->buf_charged : 512;
      while (nc < ct->buf_len + len)
        nc *= 2;
      if (nc > ct->buf_cap)
        nc = ct->buf_cap;
      wc_server_budget_take(srv, nc - ct->buf_charged, 0);
      ct->held += nc - ct->buf_charged;
      ct->buf_charged = nc;
    }
    if (ct->buf_len + len > ct->buf_faulted && ct->buf_cap >= PREFAULT_MIN)
      prefault(ct, ct->buf_len + len);
    if (p != ct->buf + ct->buf_len) /* else read in place */
      memcpy(ct->buf + ct->buf_len, p, len);
    ct->buf_len += len;
    tscan_maybe(c);
  } else {
    if (ct->block == NULL) {
      ct->block = block_alloc(c);
      if (ct->block == NULL)
        return -ENOMEM;
    }
    if (ct->block_len + len > BLOCK_CAP) {
      /* Cannot happen: the parser gets at most one read at a time and a
       * full block pauses it. Refuse rather than overflow. */
      return -ENOMEM;
    }
    if (p != ct->block + ct->block_len) /* else read in place */
      memcpy(ct->block + ct->block_len, p, len);
    ct->block_len += len;
    ct->bytes += len;
    if (dispatch(c) < 0)
      return -ENOMEM;
    if (ct->block_len >= WC_BLOCK_SIZE) {
      wc_conn_pause(c, WC_PAUSE_JOBS);
      return 1;
    }
  }
  if (ct->body_type != WC_BODY_RAW ? !wc_server_may_buffer(srv, c)
                                   : wc_server_over_budget(srv)) {
    wc_list_remove(&c->wait_link);
    wc_list_push(&srv->waiters, &c->wait_link);
    wc_conn_pause(c, WC_PAUSE_BUDGET);
    return 1;
  }
  return 0;
}

/* Largest read straight into a body buffer. */
#define READ_INTO_MAX (1u << 20)

char *wc_job_read_into(wc_conn_t *c, size_t *len) {
  wc_http_t *h = &c->http;
  wc_count_t *ct = &h->count;
  uint64_t rest = h->parser.content_length; /* what llhttp still expects */
  size_t room;
  if (!h->in_body || ct->expect == 0 || rest == 0 ||
      ct->err.kind != WC_E_NONE || h->route.action != WC_ACT_COUNT ||
      h->pending_err.kind != WC_E_NONE)
    return NULL;
  if (ct->body_type == WC_BODY_RAW) {
    /* up to the end of the block: a full block is queued (wc_job_data) */
    if (ct->block == NULL || ct->block_len >= WC_BLOCK_SIZE)
      return NULL;
    room = WC_BLOCK_SIZE - ct->block_len;
    *len = rest < room ? (size_t)rest : room;
    return ct->block + ct->block_len;
  }
  if (ct->buf == NULL || ct->buf_cap < BODYPOOL_MIN ||
      rest > ct->buf_cap - ct->buf_len)
    return NULL;
  room = READ_INTO_MAX;
  *len = rest < room ? (size_t)rest : room;
  if (ct->buf_len + *len > ct->buf_faulted) /* before the kernel's copy */
    prefault(ct, ct->buf_len + *len);
  return ct->buf + ct->buf_len;
}

/*
 * A small JSON or form body is parsed (and, unless it is split, counted) on
 * the loop thread by a job on the stack, as a worker would: the hop to the
 * pool and back costs more than the work (parallel.inline_max_bytes).
 */
static void run_parse_inline(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  job_t j;
  memset(&j, 0, sizeof j);
  wc_list_init(&j.link);
  j.conn = c;
  j.kind = JOB_PARSE;
  parse_setup(c, &j);
  j.cache = &c->srv->setcache;
  j.counts_in = ct->counts_in;
  if (ct->buf == c->http.body_in) {
    /* Parsed, the body is not needed: its room takes the decoded text
     * (never longer than the body). */
    ct->spec.text_room = c->http.body_in;
    ct->spec.text_room_cap = sizeof c->http.body_in;
  }
  body_lend(ct, &j); /* job_release gives it back */
  body_forget(ct);
  parse_work(&j);
  if (ct->held > 0) {
    wc_server_budget_give(c->srv, ct->held, 0);
    ct->held = 0;
  }
  parse_done(c, &j);
  job_release(&j);
}

int wc_job_end(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  const wc_config_t *cfg = c->srv->cfg;
  ct->body_done = 1;
  ct->q_flags = ct->spec.flags;
  ct->q_mode = ct->spec.mode;
  if (ct->err.kind != WC_E_NONE) {
    ct->final_sent = 1;
  } else if (ct->body_type == WC_BODY_RAW) {
    if (dispatch(c) < 0)
      return -ENOMEM;
  } else if (ct->buf_len <= cfg->parallel_inline_max_bytes) {
    run_parse_inline(c);
    ct->final_sent = 1;
  } else if (ct->tscan_busy) {
    /* the scan job reads the buffer: its on_after_work queues the parse */
  } else if (start_parse(c, 0) < 0) {
    return -ENOMEM;
  }
  check_done(c);
  return 0;
}

void wc_job_cancel_all(wc_conn_t *c) {
  wc_count_t *ct = &c->http.count;
  for (wc_link_t *l = ct->jobs.next; l != &ct->jobs; l = l->next) {
    job_t *j = container_of(l, job_t, link);
    (void)uv_cancel((uv_req_t *)&j->work); /* UV_EBUSY once started */
  }
}
