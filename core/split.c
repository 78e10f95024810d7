/*
 * split.c - cutting a text into independent slices, and counting them on
 * threads.
 *
 * A cut right after ' ' or '\n' is safe in every mode: no word and no match
 * crosses it (needles contain neither byte), the character before the slice
 * is a separator (a non-word character, like the start of a text), and a
 * "\r\n" is never split because the cut comes after the '\n'.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t wc_next_cut(const void *text, size_t len, size_t pos) {
  if (pos == 0 || pos >= len)
    return pos >= len ? len : 0;
  /* The first separator at or after pos - 1; the cut follows it. */
  const uint8_t *t = text, *s = t + pos - 1, *end = t + len;
  const uint8_t *a = memchr(s, ' ', (size_t)(end - s));
  const uint8_t *b = memchr(s, '\n', (size_t)((a ? a : end) - s));
  const uint8_t *sep = b ? b : a;
  return sep ? (size_t)(sep - t) + 1 : len;
}

size_t wc_prev_cut(const void *text, size_t len, size_t pos) {
  if (pos >= len)
    return len; /* the end of the text is a cut */
  if (pos == 0)
    return 0;
  const uint8_t *t = text;
  const uint8_t *a = memrchr(t, ' ', pos);
  size_t lo = a ? (size_t)(a - t) : 0;
  const uint8_t *b = memrchr(t + lo, '\n', pos - lo);
  if (b)
    return (size_t)(b - t) + 1;
  return a ? (size_t)(a - t) + 1 : 0;
}

size_t wc_split(const void *text, size_t len, size_t nslices, size_t *cuts) {
  if (nslices == 0)
    nslices = 1;
  size_t k = 0;
  cuts[0] = 0;
  for (size_t i = 1; i < nslices; i++) {
    size_t ideal = (size_t)((unsigned __int128)len * i / nslices);
    if (ideal <= cuts[k])
      continue;
    size_t c = wc_next_cut(text, len, ideal);
    if (c >= len)
      break;
    if (c > cuts[k])
      cuts[++k] = c;
  }
  cuts[++k] = len;
  return k;
}

typedef struct slice_job {
  const wc_needles_t *set;
  const uint8_t *text;
  size_t len;
  uint64_t *counts;
  int rc;
} slice_job_t;

static void *slice_main(void *arg) {
  slice_job_t *j = arg;
  j->rc = wc_count(j->set, j->text, j->len, j->counts);
  return NULL;
}

/* Below this size starting threads costs more than it saves: a thread
 * start is ~30-50 us here, counting 1 MiB ~100 us (make bench-core). */
#define PARALLEL_MIN_BYTES (1024 * 1024)
#define MAX_THREADS 256

int wc_count_parallel(const wc_needles_t *set, const void *text, size_t len,
                      unsigned nthreads, uint64_t *counts) {
  if (nthreads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n > 0 ? (unsigned)n : 1;
  }
  if (nthreads > MAX_THREADS)
    nthreads = MAX_THREADS;
  if (nthreads == 1 || len < PARALLEL_MIN_BYTES)
    return wc_count(set, text, len, counts);

  const size_t n = set->n;
  int rc = -ENOMEM;
  size_t *cuts = malloc((nthreads + 1) * sizeof(*cuts));
  slice_job_t *jobs = calloc(nthreads, sizeof(*jobs));
  pthread_t *tids = calloc(nthreads, sizeof(*tids));
  uint64_t *acc = calloc((size_t)nthreads * n, sizeof(*acc));
  if (!cuts || !jobs || !tids || !acc)
    goto out;
  size_t k = wc_split(text, len, nthreads, cuts);
  size_t started = 0;
  for (size_t i = 0; i < k; i++) {
    jobs[i] = (slice_job_t){set, (const uint8_t *)text + cuts[i],
                            cuts[i + 1] - cuts[i], acc + i * n, 0};
  }
  /* Slice 0 runs on the caller's thread. */
  rc = 0;
  for (size_t i = 1; i < k; i++) {
    if (pthread_create(&tids[i], NULL, slice_main, &jobs[i]) != 0) {
      rc = -EAGAIN;
      break;
    }
    started = i;
  }
  if (rc == 0)
    slice_main(&jobs[0]);
  for (size_t i = 1; i <= started; i++)
    pthread_join(tids[i], NULL);
  if (rc == 0)
    for (size_t i = 0; i < k; i++)
      if (jobs[i].rc < 0)
        rc = jobs[i].rc;
  if (rc == 0)
    for (size_t i = 0; i < k; i++)
      for (size_t j = 0; j < n; j++)
        counts[j] += acc[i * n + j];
out:
  free(cuts);
  free(jobs);
  free(tids);
  free(acc);
  return rc;
}
