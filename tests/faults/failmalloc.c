/*
 * failmalloc.c - allocation-failure injection for the fault tests (test
 * build only: build/fault/wordcount-server is linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every allocation made
 * by our own code (server/ and core/) comes through here; libuv, cJSON and
 * libc allocate with their own calls and are not affected).
 *
 * SIGUSR2 toggles injection. While it is on, one allocation in
 * WC_FAIL_EVERY (default 5) fails and returns NULL, as a real out-of-memory
 * would: the k-th allocation fails when a hash of k (splitmix64, seeded by
 * WC_FAIL_SEED) is 0 modulo WC_FAIL_EVERY, so that failures land at varied
 * call sites rather than in step with a request's allocation pattern.
 * WC_FAIL_TRACE=1 prints a backtrace of each failure on stderr. The counter
 * and the flag are atomics: worker threads allocate too.
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static atomic_int on;
static int trace;
static atomic_ulong calls;
static unsigned long every = 5;
static unsigned long seed;

static void toggle(int sig) {
  (void)sig;
  atomic_fetch_xor(&on, 1);
}

__attribute__((constructor)) static void init(void) {
  const char *e = getenv("WC_FAIL_EVERY");
  if (e != NULL && atol(e) > 0)
    every = (unsigned long)atol(e);
  e = getenv("WC_FAIL_SEED");
  if (e != NULL)
    seed = strtoul(e, NULL, 10);
  signal(SIGUSR2, toggle);
  trace = getenv("WC_FAIL_TRACE") != NULL;
}

static unsigned long mix(unsigned long x) {
  x += 0x9e3779b97f4a7c15UL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
  return x ^ (x >> 31);
}

static int fail_now(void) {
  int f = atomic_load_explicit(&on, memory_order_relaxed) &&
          mix(atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) +
              seed) % every ==
              0;
  if (f && trace) {
    void *bt[8];
    int n = backtrace(bt, 8);
    write(2, "FAIL\n", 5);
    backtrace_symbols_fd(bt, n, 2);
  }
  return f;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t k, size_t n) {
  return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n) {
  return fail_now() ? NULL : __real_realloc(p, n);
}
