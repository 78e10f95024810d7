/*
 * bench_core.c - the counting-core benchmark behind `make bench-core`.
 *
 * Usage (bench/bench-core.sh runs both steps):
 *   bench_core corpus DIR
 *       Writes the seed's corpora into DIR (when missing or wrong):
 *       zen-x1000.txt (The Zen of Python x 1000 = 858,000 bytes) and
 *       zen-x100000.txt (x 100,000 = 85,800,000 bytes).
 *   bench_core run DIR [--python FILE] [--json FILE]
 *       Times the rows below on both corpora and prints one table per corpus
 *       in the style of the seed's pytest-benchmark table, then the target
 *       checks; writes the same numbers as JSON to FILE. --python names a
 *       file of "search_py bytes=... count=... rounds=... min_ms=...
 *       median_ms=... max_ms=..." lines from bench/search_py.py; without it
 *       (no python3) the pure-Python row is skipped.
 *
 * Rows: wc_count (sequential), wc_count_parallel on all cores, two
 * sequential counts on two pthreads at once (the seed's "sequential twice
 * with threads"; MB/s counts both texts), WC_IGNORE_CASE, WC_BOUNDARY_WORD,
 * eight needles at once, the seed's pure-Python search_py, and memchr for an
 * absent byte (the memory-bandwidth ceiling). The C rows of a corpus are
 * timed round-robin (see measure_all); search_py is timed beforehand by
 * bench/search_py.py in its own process.
 *
 * Every timed call is checked: the needle "is" must count exactly 10 per
 * copy of the text (10,000 and 1,000,000), and every other mode must count
 * copies x its count on one copy (each copy starts and ends at a line
 * break, so counts of copies add up in every mode). A wrong count, a wrong
 * corpus size or a failing call ends the program with status 1; the target
 * checks at the end are reported, never asserted.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wordcount.h"

/* The seed's text: The Zen of Python (PEP 20) between two newlines, as in
 * the PyO3 word-count test fixture. */
static const char zen[] =
    "\n"
    "The Zen of Python, by Tim Peters\n"
    "\n"
    "Beautiful is better than ugly.\n"
    "Explicit is better than implicit.\n"
    "Simple is better than complex.\n"
    "Complex is better than complicated.\n"
    "Flat is better than nested.\n"
    "Sparse is better than dense.\n"
    "Readability counts.\n"
    "Special cases aren't special enough to break the rules.\n"
    "Although practicality beats purity.\n"
    "Errors should never pass silently.\n"
    "Unless explicitly silenced.\n"
    "In the face of ambiguity, refuse the temptation to guess.\n"
    "There should be one-- and preferably only one --obvious way to do it.\n"
    "Although that way may not be obvious at first unless you're Dutch.\n"
    "Now is better than never.\n"
    "Although never is often better than *right* now.\n"
    "If the implementation is hard to explain, it's a bad idea.\n"
    "If the implementation is easy to explain, it may be a good idea.\n"
    "Namespaces are one honking great idea -- let's do more of those!\n";

#define ZEN_BYTES 858
_Static_assert(sizeof zen - 1 == ZEN_BYTES, "the Zen text must be 858 bytes");

#define NEEDLE "is"
#define NEEDLE_PER_COPY 10 /* "is" occurs 10 times as a word in one copy */
#define ABSENT_BYTE 0x01   /* never in the corpus: memchr scans it all */
#define MAX_NEEDLES 8

static const char *const multi_needles[MAX_NEEDLES] = {
    "is", "the", "of", "better", "than", "be", "it", "never"};

/* How long the rows of a corpus are timed (all together, round-robin): at
 * least min_rounds sweeps and budget_s seconds, at most max_rounds sweeps,
 * and never much past hard_s once 3 sweeps exist. */
typedef struct {
  const char *name;
  unsigned copies;
  unsigned min_rounds;
  unsigned max_rounds;
  double budget_s;
  double hard_s;
} corpus_spec_t;

static const corpus_spec_t corpora[] = {
    {"zen-x1000", 1000, 100, 5000, 4.0, 10.0},
    {"zen-x100000", 100000, 15, 500, 16.0, 30.0},
};
#define NCORPORA (sizeof corpora / sizeof corpora[0])

enum row_kind {
  ROW_SEQ,
  ROW_PAR,
  ROW_TWICE,
  ROW_ICASE,
  ROW_WORD,
  ROW_MULTI,
  ROW_PY,
  ROW_MEMCHR,
  NROWS
};

static const char *const row_names[NROWS] = {
    [ROW_SEQ] = "wc_count_sequential",
    [ROW_PAR] = "wc_count_parallel_all_cores",
    [ROW_TWICE] = "wc_count_sequential_twice_with_threads",
    [ROW_ICASE] = "wc_count_ignore_case",
    [ROW_WORD] = "wc_count_boundary_word",
    [ROW_MULTI] = "wc_count_8_needles",
    [ROW_PY] = "search_py_python_sequential",
    [ROW_MEMCHR] = "memchr_absent_byte_ceiling",
};

typedef struct {
  int present; /* 0: skipped (no python3, or the row could not run) */
  unsigned rounds;
  double min_ms, median_ms, max_ms;
  double mb_s;    /* from the median; the twice row counts 2 x size */
  uint64_t count; /* count of needle 0 in one call */
} row_result_t;

typedef struct {
  size_t bytes;
  uint64_t count;
  unsigned rounds;
  double min_ms, median_ms, max_ms;
} py_result_t;

/* Two persistent threads that each count the whole text once per round, so
 * that a round costs two barrier hand-offs rather than two pthread_create
 * calls (the seed's ThreadPoolExecutor also reuses its threads). set, text,
 * len and quit are written by the main thread only before the start barrier
 * and read by the workers after it; rc and counts are written by worker i
 * only before the done barrier and read by the main thread after it. */
typedef struct twin twin_t;
typedef struct {
  twin_t *owner;
  int index;
} twin_arg_t;
struct twin {
  pthread_t tid[2];
  twin_arg_t arg[2];
  pthread_barrier_t start, done;
  const wc_needles_t *set;
  const char *text;
  size_t len;
  int quit;
  int rc[2];
  uint64_t counts[2][MAX_NEEDLES];
};

typedef struct {
  const char *text;
  size_t len;
  unsigned copies;
  wc_needles_t *exact, *icase, *word, *multi;
  /* Expected counts per call: needle i of the set for mode m. */
  uint64_t want_exact, want_icase, want_word, want_multi[MAX_NEEDLES];
  twin_t *twin;
} bench_t;

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("bench_core: FAIL: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ---- corpora ---- */

static void corpus_path(char *buf, size_t size, const char *dir,
                        const corpus_spec_t *c) {
  int n = snprintf(buf, size, "%s/%s.txt", dir, c->name);
  if (n < 0 || (size_t)n >= size)
    die("corpus path too long: %s", dir);
}

/* Reads a corpus into a 64-byte aligned buffer (which touches every page)
 * and checks that it is exactly copies x the Zen text. */
static char *corpus_load(const char *path, unsigned copies, size_t *len_out) {
  size_t want = (size_t)copies * ZEN_BYTES;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    die("%s: %s (run `bench_core corpus DIR` first)", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0)
    die("%s: %s", path, strerror(errno));
  if ((size_t)st.st_size != want)
    die("%s is %lld bytes, want %zu (%u x %d)", path, (long long)st.st_size,
        want, copies, ZEN_BYTES);
  void *mem = NULL;
  if (posix_memalign(&mem, 64, want) != 0)
    die("out of memory for %zu bytes", want);
  char *buf = mem;
  if (fread(buf, 1, want, f) != want)
    die("%s: short read", path);
  fclose(f);
  for (size_t off = 0; off < want; off += ZEN_BYTES)
    if (memcmp(buf + off, zen, ZEN_BYTES) != 0)
      die("%s: byte range [%zu, %zu) is not the Zen text", path, off,
          off + ZEN_BYTES);
  *len_out = want;
  return buf;
}

/* 1 when path holds exactly copies x the Zen text; never fails. */
static int corpus_ok(const char *path, unsigned copies) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return 0;
  char buf[ZEN_BYTES];
  unsigned i = 0;
  while (i < copies && fread(buf, 1, ZEN_BYTES, f) == ZEN_BYTES &&
         memcmp(buf, zen, ZEN_BYTES) == 0)
    i++;
  int ok = i == copies && fgetc(f) == EOF;
  fclose(f);
  return ok;
}

static void corpus_write(const char *path, unsigned copies) {
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (n < 0 || (size_t)n >= sizeof tmp)
    die("path too long: %s", path);
  FILE *f = fopen(tmp, "wb");
  if (f == NULL)
    die("%s: %s", tmp, strerror(errno));
  for (unsigned i = 0; i < copies; i++)
    if (fwrite(zen, 1, ZEN_BYTES, f) != ZEN_BYTES)
      die("%s: write failed: %s", tmp, strerror(errno));
  if (fclose(f) != 0)
    die("%s: %s", tmp, strerror(errno));
  if (rename(tmp, path) != 0)
    die("rename %s: %s", tmp, strerror(errno));
}

static int cmd_corpus(const char *dir) {
  for (size_t i = 0; i < NCORPORA; i++) {
    char path[4096];
    corpus_path(path, sizeof path, dir, &corpora[i]);
    if (corpus_ok(path, corpora[i].copies)) {
      printf("corpus %s: up to date (%zu bytes)\n", path,
             (size_t)corpora[i].copies * ZEN_BYTES);
      continue;
    }
    corpus_write(path, corpora[i].copies);
    if (!corpus_ok(path, corpora[i].copies))
      die("%s: wrong after writing", path);
    printf("corpus %s: written (%zu bytes)\n", path,
           (size_t)corpora[i].copies * ZEN_BYTES);
  }
  return 0;
}

/* ---- the two-thread row ---- */

static void *twin_main(void *p) {
  twin_arg_t *a = p;
  twin_t *t = a->owner;
  for (;;) {
    pthread_barrier_wait(&t->start);
    if (t->quit)
      return NULL;
    memset(t->counts[a->index], 0, sizeof t->counts[a->index]);
    t->rc[a->index] = wc_count(t->set, t->text, t->len, t->counts[a->index]);
    pthread_barrier_wait(&t->done);
  }
}

static twin_t *twin_start(void) {
  twin_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    die("out of memory");
  if (pthread_barrier_init(&t->start, NULL, 3) != 0 ||
      pthread_barrier_init(&t->done, NULL, 3) != 0)
    die("pthread_barrier_init failed");
  for (int i = 0; i < 2; i++) {
    t->arg[i].owner = t;
    t->arg[i].index = i;
    int rc = pthread_create(&t->tid[i], NULL, twin_main, &t->arg[i]);
    if (rc != 0)
      die("pthread_create: %s", strerror(rc));
  }
  return t;
}

static void twin_stop(twin_t *t) {
  t->quit = 1;
  pthread_barrier_wait(&t->start);
  for (int i = 0; i < 2; i++)
    pthread_join(t->tid[i], NULL);
  pthread_barrier_destroy(&t->start);
  pthread_barrier_destroy(&t->done);
  free(t);
}

/* ---- one call of a row, with its check ---- */

static void check(const char *row, const char *what, uint64_t got,
                  uint64_t want) {
  if (got != want)
    die("%s: %s counted %" PRIu64 ", want %" PRIu64, row, what, got, want);
}

static uint64_t run_once(bench_t *b, enum row_kind k) {
  uint64_t counts[MAX_NEEDLES] = {0};
  const char *name = row_names[k];
  int rc = 0;
  switch (k) {
  case ROW_SEQ:
    rc = wc_count(b->exact, b->text, b->len, counts);
    break;
  case ROW_PAR:
    rc = wc_count_parallel(b->exact, b->text, b->len, 0, counts);
    break;
  case ROW_TWICE:
    b->twin->set = b->exact;
    b->twin->text = b->text;
    b->twin->len = b->len;
    pthread_barrier_wait(&b->twin->start);
    pthread_barrier_wait(&b->twin->done);
    for (int i = 0; i < 2; i++) {
      if (b->twin->rc[i] != 0)
        die("%s: thread %d: wc_count: %s", name, i, strerror(-b->twin->rc[i]));
      check(name, NEEDLE, b->twin->counts[i][0], b->want_exact);
    }
    return b->twin->counts[0][0];
  case ROW_ICASE:
    rc = wc_count(b->icase, b->text, b->len, counts);
    break;
  case ROW_WORD:
    rc = wc_count(b->word, b->text, b->len, counts);
    break;
  case ROW_MULTI:
    rc = wc_count(b->multi, b->text, b->len, counts);
    break;
  case ROW_MEMCHR:
    if (memchr(b->text, ABSENT_BYTE, b->len) != NULL)
      die("%s: byte 0x%02x found in the corpus", name, ABSENT_BYTE);
    return 0;
  case ROW_PY:
  case NROWS:
    die("run_once: row %d is not timed here", (int)k);
  }
  if (rc != 0)
    die("%s: %s", name, strerror(-rc));
  switch (k) {
  case ROW_SEQ:
  case ROW_PAR:
    check(name, NEEDLE, counts[0], b->want_exact);
    break;
  case ROW_ICASE:
    check(name, NEEDLE, counts[0], b->want_icase);
    break;
  case ROW_WORD:
    check(name, NEEDLE, counts[0], b->want_word);
    break;
  case ROW_MULTI:
    for (size_t i = 0; i < MAX_NEEDLES; i++)
      check(name, multi_needles[i], counts[i], b->want_multi[i]);
    break;
  default:
    break;
  }
  return counts[0];
}

static void summarize(double *ms, unsigned n, double bytes, uint64_t count,
                      row_result_t *r) {
  qsort(ms, n, sizeof *ms, cmp_double);
  r->present = 1;
  r->rounds = n;
  r->min_ms = ms[0];
  r->max_ms = ms[n - 1];
  r->median_ms = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  r->mb_s = bytes / 1e6 / (r->median_ms / 1e3);
  r->count = count;
}

/*
 * Times every C row of one corpus. Each row is first warmed up (at least
 * one call and 50 ms, so every page of the buffer has been read and the
 * clocks have settled). Then the rows are timed round-robin, one call each
 * per sweep, starting the sweep at a different row each time: a noisy
 * moment on a shared host then slows all rows alike instead of one row,
 * which keeps the ratios between rows (the target checks) honest.
 */
static void measure_all(bench_t *b, const corpus_spec_t *c,
                        row_result_t *rows) {
  enum row_kind timed[NROWS];
  unsigned nt = 0;
  for (int k = 0; k < NROWS; k++)
    if (k != ROW_PY)
      timed[nt++] = (enum row_kind)k;

  for (unsigned i = 0; i < nt; i++) {
    double t_start = now_s();
    unsigned warm = 0;
    do {
      run_once(b, timed[i]);
      warm++;
    } while (now_s() - t_start < 0.05 && warm < 1000);
  }

  double *ms = malloc((size_t)nt * c->max_rounds * sizeof *ms);
  if (ms == NULL)
    die("out of memory");
  uint64_t count[NROWS] = {0};
  unsigned n = 0;
  double begin = now_s();
  for (;;) {
    for (unsigned j = 0; j < nt; j++) {
      unsigned i = (j + n) % nt;
      double t0 = now_s();
      count[i] = run_once(b, timed[i]);
      double t1 = now_s();
      ms[(size_t)i * c->max_rounds + n] = (t1 - t0) * 1e3;
    }
    n++;
    double spent = now_s() - begin;
    if (n >= c->max_rounds)
      break;
    if (n >= c->min_rounds && spent >= c->budget_s)
      break;
    if (n >= 3 && spent >= c->hard_s)
      break;
  }
  for (unsigned i = 0; i < nt; i++) {
    double bytes = (double)b->len * (timed[i] == ROW_TWICE ? 2 : 1);
    summarize(ms + (size_t)i * c->max_rounds, n, bytes, count[i],
              &rows[timed[i]]);
  }
  free(ms);
}

/* ---- needle sets and expectations ---- */

static wc_needles_t *needles(const char *const *list, size_t n,
                             unsigned flags) {
  size_t lens[MAX_NEEDLES];
  for (size_t i = 0; i < n; i++)
    lens[i] = strlen(list[i]);
  wc_needles_t *set = NULL;
  size_t bad = 0;
  int rc = wc_needles_new(&set, list, lens, n, flags, &bad);
  if (rc != 0)
    die("wc_needles_new(flags=%u): %s (needle %zu)", flags, strerror(-rc), bad);
  return set;
}

/* Counts of one copy of the text, scaled to the corpus. */
static uint64_t per_copy(const wc_needles_t *set, size_t i, unsigned copies) {
  uint64_t counts[MAX_NEEDLES] = {0};
  int rc = wc_count(set, zen, ZEN_BYTES, counts);
  if (rc != 0)
    die("wc_count on one copy: %s", strerror(-rc));
  return counts[i] * copies;
}

static void bench_init(bench_t *b, const char *text, size_t len,
                       unsigned copies, twin_t *twin) {
  static const char *const one[] = {NEEDLE};
  memset(b, 0, sizeof *b);
  b->text = text;
  b->len = len;
  b->copies = copies;
  b->twin = twin;
  b->exact = needles(one, 1, 0);
  b->icase = needles(one, 1, WC_IGNORE_CASE);
  b->word = needles(one, 1, WC_BOUNDARY_WORD);
  b->multi = needles(multi_needles, MAX_NEEDLES, 0);
  b->want_exact = (uint64_t)NEEDLE_PER_COPY * copies;
  check("one copy", NEEDLE, per_copy(b->exact, 0, 1), NEEDLE_PER_COPY);
  b->want_icase = per_copy(b->icase, 0, copies);
  b->want_word = per_copy(b->word, 0, copies);
  for (size_t i = 0; i < MAX_NEEDLES; i++)
    b->want_multi[i] = per_copy(b->multi, i, copies);
}

static void bench_fini(bench_t *b) {
  wc_needles_free(b->exact);
  wc_needles_free(b->icase);
  wc_needles_free(b->word);
  wc_needles_free(b->multi);
}

/* ---- the pure-Python row, measured by bench/search_py.py ---- */

static size_t py_load(const char *path, py_result_t *out, size_t max) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  char line[512];
  size_t n = 0;
  while (n < max && fgets(line, sizeof line, f) != NULL) {
    py_result_t *p = &out[n];
    if (sscanf(line,
               "search_py bytes=%zu count=%" SCNu64
               " rounds=%u min_ms=%lf median_ms=%lf max_ms=%lf",
               &p->bytes, &p->count, &p->rounds, &p->min_ms, &p->median_ms,
               &p->max_ms) == 6)
      n++;
  }
  fclose(f);
  return n;
}

/* ---- output ---- */

static void host_cpu(char *buf, size_t size) {
  snprintf(buf, size, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL)
    return;
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "model name", 10) != 0)
      continue;
    char *v = strchr(line, ':');
    if (v == NULL)
      break;
    v++;
    while (*v == ' ' || *v == '\t')
      v++;
    v[strcspn(v, "\n")] = '\0';
    snprintf(buf, size, "%s", v);
    break;
  }
  fclose(f);
}

/* The 1-minute load average: the benchmark is only as quiet as the host. */
static double host_load(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL) {
    if (fscanf(f, "%lf", &l) != 1)
      l = -1;
    fclose(f);
  }
  return l;
}

/* CPU time stolen by the hypervisor, as ticks from /proc/stat: on a shared
 * VM this, more than the load average, explains a wide Min..Median. */
typedef struct {
  unsigned long long total, steal;
} ticks_t;

static ticks_t host_ticks(void) {
  ticks_t t = {0, 0};
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (f == NULL)
    return t;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n != 8)
    return t;
  for (int i = 0; i < 8; i++)
    t.total += v[i];
  t.steal = v[7];
  return t;
}

static double steal_pct(ticks_t a, ticks_t b) {
  if (b.total <= a.total)
    return 0;
  return 100.0 * (double)(b.steal - a.steal) / (double)(b.total - a.total);
}

static void with_commas(char *buf, size_t size, uint64_t v) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
  size_t o = 0;
  for (int i = 0; i < n && o + 2 < size; i++) {
    if (i > 0 && (n - i) % 3 == 0)
      buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
}

/* A table cell: a number right-aligned in its column, then its ratio to the
 * best row, as pytest-benchmark prints "7.3348 (4.24)". The Name and Rounds
 * columns have no ratio. */
typedef struct {
  char val[64];
  char ratio[16];
} cell_t;

static void ratio_cell(cell_t *cell, double v, double best, int decimals) {
  snprintf(cell->val, sizeof cell->val, "%.*f", decimals, v);
  double r = best > 0 ? v / best : 0;
  if (r > 0.9995 && r < 1.0005)
    snprintf(cell->ratio, sizeof cell->ratio, "(1.0)");
  else
    snprintf(cell->ratio, sizeof cell->ratio, "(%.2f)", r);
}

#define NCOLS 6
#define GAP 4

static void print_dashes(int n) {
  for (int i = 0; i < n; i++)
    putchar('-');
}

static void print_table(const corpus_spec_t *c, size_t len, uint64_t count,
                        const row_result_t *rows) {
  int order[NROWS], n = 0;
  for (int k = 0; k < NROWS; k++)
    if (rows[k].present)
      order[n++] = k;
  /* Like pytest-benchmark: fastest (by Min) first. */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && rows[order[j]].min_ms < rows[order[j - 1]].min_ms;
         j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  double best_min = 0, best_med = 0, best_max = 0, best_mbs = 0;
  for (int i = 0; i < n; i++) {
    const row_result_t *r = &rows[order[i]];
    if (i == 0 || r->min_ms < best_min)
      best_min = r->min_ms;
    if (i == 0 || r->median_ms < best_med)
      best_med = r->median_ms;
    if (i == 0 || r->max_ms < best_max)
      best_max = r->max_ms;
    if (r->mb_s > best_mbs)
      best_mbs = r->mb_s;
  }

  static const char *const head[NCOLS] = {
      "Name (time in ms)", "Min", "Median", "Max", "MB/s (median)", "Rounds"};
  cell_t cells[NROWS][NCOLS];
  memset(cells, 0, sizeof cells);
  /* vw: width of the number part (the header is right-aligned to it);
   * rw: width of the ratio part; w: the whole column. */
  int vw[NCOLS], rw[NCOLS], w[NCOLS];
  for (int j = 0; j < NCOLS; j++) {
    vw[j] = (int)strlen(head[j]);
    rw[j] = 0;
  }
  for (int i = 0; i < n; i++) {
    const row_result_t *r = &rows[order[i]];
    snprintf(cells[i][0].val, sizeof cells[i][0].val, "%s",
             row_names[order[i]]);
    ratio_cell(&cells[i][1], r->min_ms, best_min, 4);
    ratio_cell(&cells[i][2], r->median_ms, best_med, 4);
    ratio_cell(&cells[i][3], r->max_ms, best_max, 4);
    ratio_cell(&cells[i][4], r->mb_s, best_mbs, 1);
    snprintf(cells[i][5].val, sizeof cells[i][5].val, "%u", r->rounds);
    for (int j = 0; j < NCOLS; j++) {
      if ((int)strlen(cells[i][j].val) > vw[j])
        vw[j] = (int)strlen(cells[i][j].val);
      if (cells[i][j].ratio[0] != '\0' &&
          (int)strlen(cells[i][j].ratio) + 1 > rw[j])
        rw[j] = (int)strlen(cells[i][j].ratio) + 1;
    }
  }
  int total = 0;
  for (int j = 0; j < NCOLS; j++) {
    w[j] = vw[j] + rw[j];
    total += w[j] + (j ? GAP : 0);
  }

  char bytes[32], cnt[32], title[256];
  with_commas(bytes, sizeof bytes, len);
  with_commas(cnt, sizeof cnt, count);
  snprintf(title, sizeof title,
           " benchmark '%s': %s bytes, needle \"%s\" counts %s, %d tests ",
           c->name, bytes, NEEDLE, cnt, n);
  int pad = total - (int)strlen(title);
  if (pad < 4)
    pad = 4;
  print_dashes(pad / 2);
  fputs(title, stdout);
  print_dashes(pad - pad / 2);
  putchar('\n');

  for (int j = 0; j < NCOLS; j++) {
    if (j == 0)
      printf("%-*s", w[0], head[0]);
    else
      printf("%*s%*s%*s", GAP, "", vw[j], head[j], rw[j], "");
  }
  putchar('\n');
  print_dashes(total);
  putchar('\n');
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < NCOLS; j++) {
      const cell_t *cl = &cells[i][j];
      if (j == 0)
        printf("%-*s", w[0], cl->val);
      else if (j + 1 < NCOLS)
        printf("%*s%*s %-*s", GAP, "", vw[j], cl->val, rw[j] - 1, cl->ratio);
      else
        printf("%*s%*s", GAP, "", vw[j], cl->val);
    }
    putchar('\n');
  }
  print_dashes(total);
  putchar('\n');
}

typedef struct {
  const char *name;
  const char *corpus;
  double value;     /* a fraction, or a speed-up factor when factor is set */
  double value_min; /* the same from the Min times: less host noise */
  double target;
  int factor;
  int ok;
} check_t;

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static void write_json(const char *path, const char *cpu, long cores,
                       const double *load, double steal, const size_t *lens,
                       const uint64_t *counts, row_result_t (*rows)[NROWS],
                       const check_t *checks, size_t nchecks) {
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (n < 0 || (size_t)n >= sizeof tmp)
    die("path too long: %s", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL)
    die("%s: %s", tmp, strerror(errno));
  char stamp[64];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);

  fprintf(f, "{\n  \"benchmark\": \"bench-core\",\n  \"time\": ");
  json_str(f, stamp);
  fprintf(f, ",\n  \"wordcount_version\": ");
  json_str(f, WC_VERSION);
  fprintf(f, ",\n  \"kernel\": ");
  json_str(f, wc_kernel_name());
  fprintf(f, ",\n  \"cpu\": ");
  json_str(f, cpu);
  fprintf(f,
          ",\n  \"cores\": %ld,\n  \"loadavg_1min\": [%.2f, %.2f],\n"
          "  \"cpu_steal_pct\": %.2f,\n  \"needle\": ",
          cores, load[0], load[1], steal);
  json_str(f, NEEDLE);
  fprintf(f, ",\n  \"corpora\": [\n");
  for (size_t ci = 0; ci < NCORPORA; ci++) {
    fprintf(f, "    {\n      \"name\": ");
    json_str(f, corpora[ci].name);
    fprintf(f,
            ",\n      \"bytes\": %zu,\n      \"copies\": %u,\n"
            "      \"count\": %" PRIu64 ",\n      \"rows\": [\n",
            lens[ci], corpora[ci].copies, counts[ci]);
    int first = 1;
    for (int k = 0; k < NROWS; k++) {
      const row_result_t *r = &rows[ci][k];
      if (!r->present)
        continue;
      fprintf(f, "%s        {\"name\": ", first ? "" : ",\n");
      json_str(f, row_names[k]);
      fprintf(f,
              ", \"min_ms\": %.6f, \"median_ms\": %.6f, \"max_ms\": %.6f, "
              "\"mb_per_s\": %.3f, \"rounds\": %u, \"count\": %" PRIu64 "}",
              r->min_ms, r->median_ms, r->max_ms, r->mb_s, r->rounds, r->count);
      first = 0;
    }
    fprintf(f, "\n      ]\n    }%s\n", ci + 1 < NCORPORA ? "," : "");
  }
  fprintf(f, "  ],\n  \"checks\": [\n");
  for (size_t i = 0; i < nchecks; i++) {
    const check_t *c = &checks[i];
    fprintf(f, "    {\"name\": ");
    json_str(f, c->name);
    fprintf(f, ", \"corpus\": ");
    json_str(f, c->corpus);
    fprintf(f,
            ", \"unit\": \"%s\", \"value\": %.4f, \"value_from_min\": %.4f, "
            "\"target\": %.4f, "
            "\"ok\": %s}%s\n",
            c->factor ? "x" : "fraction", c->value, c->value_min, c->target,
            c->ok ? "true" : "false", i + 1 < nchecks ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  if (fclose(f) != 0)
    die("%s: %s", tmp, strerror(errno));
  if (rename(tmp, path) != 0)
    die("rename %s: %s", tmp, strerror(errno));
}

static size_t add_check(check_t *checks, size_t n, const char *name,
                        const char *corpus, const row_result_t *num,
                        const row_result_t *den, double target, int factor) {
  if (!num->present || !den->present)
    return n;
  check_t *c = &checks[n];
  c->name = name;
  c->corpus = corpus;
  c->factor = factor;
  c->target = target;
  /* Both are throughput ratios from the medians. */
  c->value = num->mb_s / den->mb_s;
  double scale_num = num == den ? 1 : num->median_ms / num->min_ms;
  double scale_den = den->median_ms / den->min_ms;
  c->value_min = c->value * scale_num / scale_den;
  c->ok = c->value >= target;
  return n + 1;
}

static void print_checks(const check_t *checks, size_t n) {
  printf("\nTarget checks (throughput ratios from the medians, and from the "
         "Min times;\nreported, not asserted; ok/below is by the median):\n");
  for (size_t i = 0; i < n; i++) {
    const check_t *c = &checks[i];
    char val[32], vmin[32], tgt[32];
    if (c->factor) {
      snprintf(val, sizeof val, "%.0fx", c->value);
      snprintf(vmin, sizeof vmin, "(min %.0fx)", c->value_min);
      snprintf(tgt, sizeof tgt, ">= %.0fx", c->target);
    } else {
      snprintf(val, sizeof val, "%.1f%%", c->value * 100);
      snprintf(vmin, sizeof vmin, "(min %.1f%%)", c->value_min * 100);
      snprintf(tgt, sizeof tgt, ">= %.0f%%", c->target * 100);
    }
    printf("  %-34s %-12s %7s %-14s target %-7s  %s\n", c->name, c->corpus, val,
           vmin, tgt, c->ok ? "ok" : "below");
  }
}

static int cmd_run(const char *dir, const char *py_path,
                   const char *json_path) {
  char cpu[256];
  host_cpu(cpu, sizeof cpu);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  double load[2] = {host_load(), 0};
  ticks_t ticks0 = host_ticks();
  printf("bench-core: wordcount %s, kernel %s, CPU %s, %ld cores online, "
         "load average %.2f\n",
         WC_VERSION, wc_kernel_name(), cpu, cores, load[0]);

  py_result_t py[8];
  size_t npy = py_path ? py_load(py_path, py, 8) : 0;
  if (npy == 0)
    printf("bench-core: no search_py results: the "
           "pure-Python row is skipped\n");

  twin_t *twin = twin_start();
  row_result_t rows[NCORPORA][NROWS];
  size_t lens[NCORPORA];
  uint64_t counts[NCORPORA];
  memset(rows, 0, sizeof rows);
  for (size_t ci = 0; ci < NCORPORA; ci++) {
    const corpus_spec_t *c = &corpora[ci];
    char path[4096];
    corpus_path(path, sizeof path, dir, c);
    size_t len;
    char *text = corpus_load(path, c->copies, &len);
    bench_t b;
    bench_init(&b, text, len, c->copies, twin);
    lens[ci] = len;
    counts[ci] = b.want_exact;
    printf("\ncorpus %s: %zu bytes; needle \"%s\" counts %" PRIu64
           " (checked on every call)\n",
           path, len, NEEDLE, b.want_exact);

    measure_all(&b, c, rows[ci]);
    for (size_t i = 0; i < npy; i++) {
      if (py[i].bytes != len)
        continue;
      check(row_names[ROW_PY], NEEDLE, py[i].count, b.want_exact);
      row_result_t *r = &rows[ci][ROW_PY];
      r->present = 1;
      r->rounds = py[i].rounds;
      r->min_ms = py[i].min_ms;
      r->median_ms = py[i].median_ms;
      r->max_ms = py[i].max_ms;
      r->mb_s = (double)len / 1e6 / (r->median_ms / 1e3);
      r->count = py[i].count;
    }
    print_table(c, len, b.want_exact, rows[ci]);
    bench_fini(&b);
    free(text);
  }
  twin_stop(twin);

  check_t checks[32];
  size_t nc = 0;
  const size_t big = NCORPORA - 1;
  nc = add_check(checks, nc, "sequential exact / memchr ceiling",
                 corpora[big].name, &rows[big][ROW_SEQ], &rows[big][ROW_MEMCHR],
                 0.60, 0);
  for (size_t ci = 0; ci < NCORPORA; ci++)
    nc = add_check(checks, nc, "sequential exact / pure Python",
                   corpora[ci].name, &rows[ci][ROW_SEQ], &rows[ci][ROW_PY], 200,
                   1);
  for (size_t ci = 0; ci < NCORPORA; ci++) {
    nc = add_check(checks, nc, "ignore case / sequential exact",
                   corpora[ci].name, &rows[ci][ROW_ICASE], &rows[ci][ROW_SEQ],
                   0.40, 0);
    nc = add_check(checks, nc, "boundary=word / sequential exact",
                   corpora[ci].name, &rows[ci][ROW_WORD], &rows[ci][ROW_SEQ],
                   0.40, 0);
    nc = add_check(checks, nc, "8 needles / sequential exact", corpora[ci].name,
                   &rows[ci][ROW_MULTI], &rows[ci][ROW_SEQ], 0.40, 0);
  }
  print_checks(checks, nc);
  load[1] = host_load();
  double steal = steal_pct(ticks0, host_ticks());
  printf("\nbench-core: load average %.2f before, %.2f after; CPU steal "
         "%.1f%% during the run\n(a busy host or a busy hypervisor widens "
         "Min..Max and slows the medians)\n",
         load[0], load[1], steal);
  if (json_path != NULL) {
    write_json(json_path, cpu, cores, load, steal, lens, counts, rows, checks,
               nc);
    printf("\nbench-core: results written to %s\n", json_path);
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: bench_core corpus DIR\n"
                  "       bench_core run DIR [--python FILE] [--json FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3)
    usage();
  if (strcmp(argv[1], "corpus") == 0 && argc == 3)
    return cmd_corpus(argv[2]);
  if (strcmp(argv[1], "run") != 0)
    usage();
  const char *py = NULL, *json = NULL;
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--python") == 0 && i + 1 < argc)
      py = argv[++i];
    else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
      json = argv[++i];
    else
      usage();
  }
  return cmd_run(argv[2], py, json);
}
