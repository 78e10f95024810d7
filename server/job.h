/*
 * job.h - counting work for POST /count, run in libuv's worker pool.
 * See the DESIGN and LIFETIME comment at the top of job.c.
 */
#ifndef WC_JOB_H
#define WC_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "reqparse.h"
#include "util.h"
#include "wordcount.h"

typedef struct wc_conn wc_conn_t;

/* Needles whose sums live inside the request (no allocation). */
#define WC_COUNTS_IN 4

/* Raw bodies are cut into blocks of this size for the workers. */
#ifndef WC_BLOCK_SIZE /* -DWC_BLOCK_SIZE=... to measure another size */
#define WC_BLOCK_SIZE (1024 * 1024)
#endif

/*
 * Needle sets kept per event loop for requests that ask for the same
 * needles again (a load test, a service that always counts one word):
 * building a set costs about eight allocations. Loop thread only; a set in
 * use by a request (refs > 0) is never evicted. See job.c.
 */
#define WC_SETCACHE_N 4
#define WC_SETCACHE_KEY 256
typedef struct {
  struct {
    wc_needles_t *set;
    unsigned refs;
    unsigned flags;
    uint64_t used;
    size_t keylen;
    char key[WC_SETCACHE_KEY];
  } e[WC_SETCACHE_N];
  uint64_t tick;
} wc_setcache_t;

/* Frees the cached sets (no request may hold one). */
void wc_setcache_free(wc_setcache_t *sc);

/*
 * Free body blocks kept per event loop (up to 8): a raw body's blocks are
 * reused, sparing a fresh block's mmap and page faults. Blocks left unused
 * for two whole date-timer ticks (2-3 s) are freed (wc_blockpool_tick):
 * each is a mapping of its own (main.c fixes malloc's mmap threshold), so
 * its memory goes back to the kernel, and RSS follows the load instead of
 * keeping the highest number of blocks ever in flight. Loop thread only.
 */
typedef struct {
  void *head;
  unsigned n;
  unsigned low, low_prev; /* fewest blocks kept during this tick, the last */
} wc_blockpool_t;
void wc_blockpool_tick(wc_blockpool_t *bp);
void wc_blockpool_free(wc_blockpool_t *bp);

/*
 * Large JSON and form body buffers kept per event loop for the next large
 * body (up to WC_BODYPOOL_N, each used only for a body of at least half its
 * size, each freed after 2-3 s unused, together at most half the loop's
 * share of the buffered-bytes budget): a fresh buffer costs a page fault
 * (allocation, zeroing, page tables) per 4 KiB, about 30% of the server's
 * CPU time for an 85.8 MB JSON body, and munmap when freed. Loop thread
 * only.
 */
#define WC_BODYPOOL_N 2
typedef struct {
  struct {
    char *p;
    size_t cap, faulted; /* p[0..faulted) is mapped */
    unsigned age;        /* date-timer ticks unused */
  } e[WC_BODYPOOL_N];
  unsigned n;
  uint64_t bytes; /* their capacity, at most half the loop's budget */
} wc_bodypool_t;
void wc_bodypool_free(wc_bodypool_t *bp);
/* Once a second (the date timer): frees buffers unused for 2 ticks. */
void wc_bodypool_tick(wc_bodypool_t *bp);

/* The counting state of one request; embedded in the connection. */
typedef struct {
  wc_countspec_t spec; /* needles and options; JSON/form text */
  wc_needles_t *set;   /* immutable once built; shared with jobs */
  int set_cached;      /* set belongs to the loop's wc_setcache_t */
  int body_type;       /* WC_BODY_* */
  uint64_t *counts;    /* sums, one per needle (loop thread); counts_in
                          when there are at most WC_COUNTS_IN */
  uint64_t counts_in[WC_COUNTS_IN];
  uint64_t bytes;      /* text bytes counted */
  wc_error_t err;      /* first failure; kind WC_E_NONE when none */
  /* raw bodies */
  char *block; /* the block being filled */
  size_t block_len, block_cap;
  unsigned inflight, max_inflight;
  int stream_mode; /* a block had no separator: count in order */
  wc_stream_t *stream;
  int body_done;  /* the whole body was received */
  int final_sent; /* the last job is queued */
  /* JSON and form bodies */
  char *buf;
  size_t buf_len, buf_cap;
  size_t buf_faulted; /* buf[0..buf_faulted) is known to be mapped */
  uint64_t expect;    /* Content-Length, 0 when chunked */
  size_t buf_charged; /* of buf, counted in the budget (grows with buf_len,
                         not with buf_cap: a Content-Length is a promise) */
  /* a large JSON body's text, looked for in the pool as the body arrives
   * (a JOB_TSCAN at a time, over a buffer that no longer moves); the parse
   * job waits for the one in flight */
  wc_textscan_t tscan;
  int tscan_busy; /* a JOB_TSCAN is in flight */
  /* the fast JSON path (job.c): the body while slices decode it in place;
   * why slices failed; the query's options */
  char *jbody;
  size_t jbody_len, jbody_cap, jbody_faulted;
  int jfail;
  wc_jbad_t jbad;
  unsigned q_flags;
  int q_mode;
  uint64_t held;  /* budget bytes this request holds */
  wc_link_t jobs; /* its jobs queued or running */
} wc_count_t;

void wc_job_init(wc_count_t *ct);

/* Frees the request's counting state. No job may still be in flight. */
void wc_job_reset(wc_conn_t *c);

/*
 * The calling thread's nice value (*now) and the one a worker takes on its
 * first job when the server runs at it: worker_nice higher, at most 19
 * (*target). 0, or -1 when the nice value cannot be read. main.c logs
 * *target - *now.
 */
int wc_job_worker_nice(unsigned worker_nice, int *now, int *target);

/* Raw body: builds the needle set from ct->spec. 0 or -errno (err set). */
int wc_job_begin_raw(wc_conn_t *c);

/*
 * Takes body bytes (a raw body: at most WC_READ_BUF_SIZE at a time; they may
 * already be in place, read there by wc_job_read_into). Returns 0, 1 when
 * the connection must stop feeding the parser until jobs finish (the bytes
 * were taken), or -ENOMEM.
 */
int wc_job_data(wc_conn_t *c, const char *p, size_t len);

/*
 * Where the next read of a large JSON or form body with a Content-Length
 * may go: straight into its buffer, at its end, so that wc_job_data has
 * nothing to copy (*len: at most the bytes the body still lacks). NULL
 * when the read should use the loop's read buffer.
 */
char *wc_job_read_into(wc_conn_t *c, size_t *len);

/* The body is complete: queue what is left. 0 or -ENOMEM. When all jobs are
 * done, wc_http_count_done() is called. */
int wc_job_end(wc_conn_t *c);

/* The connection is closing: cancel the jobs that have not started. */
void wc_job_cancel_all(wc_conn_t *c);

#endif
