/*
 * cli.c - the `wordcount` command: grep-like front end to the core.
 *
 *   wordcount [-i] [-w] [-e NEEDLE]... [-j THREADS] [--sequential]
 *             [NEEDLE] [FILE...]
 *
 * Regular files are mapped and counted on THREADS threads (default: one per
 * CPU) with wc_count_parallel; pipes and terminals are read in 1 MiB chunks
 * through the streaming counter, so any input size works in bounded memory.
 * Exit status: 0 on success, 2 on usage or I/O errors (one line on stderr).
 */
#include "wordcount.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1 << 20)

static const char usage_text[] =
    "Usage: wordcount [OPTION]... NEEDLE [FILE]...\n"
    "       wordcount [OPTION]... -e NEEDLE [-e NEEDLE]... [FILE]...\n"
    "Count the words of each FILE (or standard input) equal to NEEDLE.\n"
    "Lines end at '\\n' (a '\\r' before it is dropped); words are separated\n"
    "by single spaces. With several needles, print NEEDLE<TAB>COUNT lines.\n"
    "\n"
    "  -e, --regexp=NEEDLE   a needle (may repeat)\n"
    "  -i, --ignore-case     Unicode simple case folding\n"
    "  -w, --word-regexp     match anywhere between non-word characters\n"
    "                        (the convention of grep -w)\n"
    "  -j, --threads=N       count each file on N threads (0: one per CPU)\n"
    "      --sequential      count on one thread (same as -j 1)\n"
    "      --help            show this help and exit\n"
    "      --version         show the version and exit\n"
    "\n"
    "With no FILE, or when FILE is -, read standard input.\n"
    "Exit status: 0 on success, 2 on a usage or I/O error.\n";

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("wordcount: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 2;
}

/* Counts one open file into counts; returns 0 or a negative errno. */
static int count_fd(const wc_needles_t *set, int fd, unsigned threads,
                    wc_stream_t *st, uint8_t **buf, uint64_t *counts) {
  struct stat sb;
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      madvise(map, len, MADV_SEQUENTIAL | MADV_WILLNEED);
      int rc = wc_count_parallel(set, map, len, threads, counts);
      munmap(map, len);
      return rc;
    }
  }
  if (!*buf && !(*buf = malloc(READ_CHUNK)))
    return -ENOMEM;
  for (;;) {
    ssize_t r = read(fd, *buf, READ_CHUNK);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (r == 0)
      break;
    int rc = wc_stream_feed(st, *buf, (size_t)r);
    if (rc < 0)
      return rc;
  }
  return wc_stream_finish(st, counts);
}

int main(int argc, char **argv) {
  enum { OPT_SEQUENTIAL = 256, OPT_HELP, OPT_VERSION };
  static const struct option opts[] = {
      {"regexp", required_argument, NULL, 'e'},
      {"ignore-case", no_argument, NULL, 'i'},
      {"word-regexp", no_argument, NULL, 'w'},
      {"threads", required_argument, NULL, 'j'},
      {"sequential", no_argument, NULL, OPT_SEQUENTIAL},
      {"help", no_argument, NULL, OPT_HELP},
      {"version", no_argument, NULL, OPT_VERSION},
      {NULL, 0, NULL, 0},
  };
  const char **needles = calloc((size_t)argc + 1, sizeof(*needles));
  size_t nneedles = 0;
  unsigned flags = 0, threads = 0;
  if (!needles)
    return fail("out of memory");
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":e:iwj:", opts, NULL)) != -1) {
    switch (c) {
    case 'e':
      needles[nneedles++] = optarg;
      break;
    case 'i':
      flags |= WC_IGNORE_CASE;
      break;
    case 'w':
      flags |= WC_BOUNDARY_WORD;
      break;
    case 'j': {
      char *end;
      errno = 0;
      unsigned long v = strtoul(optarg, &end, 10);
      if (errno || *end || end == optarg || v > 1024 || optarg[0] == '-')
        return fail("invalid thread count '%s' (expected 0..1024)", optarg);
      threads = (unsigned)v;
      break;
    }
    case OPT_SEQUENTIAL:
      threads = 1;
      break;
    case OPT_HELP:
      fputs(usage_text, stdout);
      return 0;
    case OPT_VERSION:
      printf("wordcount %s (kernel %s)\n", WC_VERSION, wc_kernel_name());
      return 0;
    case ':':
      return fail("option '%s' needs an argument; try 'wordcount --help'",
                  argv[optind - 1]);
    default:
      return fail("unknown option '%s'; try 'wordcount --help'",
                  argv[optind - 1]);
    }
  }
  if (nneedles == 0) {
    if (optind >= argc)
      return fail("no needle given; usage: wordcount [OPTION]... NEEDLE "
                  "[FILE]...");
    needles[nneedles++] = argv[optind++];
  }
  size_t *lens = calloc(nneedles, sizeof(*lens));
  uint64_t *counts = calloc(nneedles, sizeof(*counts));
  if (!lens || !counts)
    return fail("out of memory");
  for (size_t i = 0; i < nneedles; i++)
    lens[i] = strlen(needles[i]);
  wc_needles_t *set;
  size_t bad;
  int rc = wc_needles_new(&set, needles, lens, nneedles, flags, &bad);
  if (rc == -EINVAL) {
    /* One line: show the needle with its control bytes escaped. */
    char shown[64];
    size_t o = 0;
    for (const char *ch = bad < nneedles ? needles[bad] : "";
         *ch && o + 5 < sizeof shown; ch++)
      o += (unsigned char)*ch < 0x20
               ? (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x",
                                  (unsigned char)*ch)
               : (shown[o] = *ch, 1);
    shown[o] = 0;
    return fail("invalid needle '%s': a needle must be non-empty, without "
                "spaces or newlines",
                shown);
  }
  if (rc == -E2BIG)
    return fail("too many or too long needles (at most %d needles of %d "
                "bytes)",
                WC_MAX_NEEDLES, WC_MAX_NEEDLE_BYTES);
  if (rc < 0)
    return fail("%s", strerror(-rc));

  wc_stream_t *st;
  if (wc_stream_new(&st, set) < 0)
    return fail("out of memory");
  uint8_t *buf = NULL;
  static const char *const stdin_only[] = {"-"};
  const char *const *files = (const char *const *)argv + optind;
  size_t nfiles = (size_t)(argc - optind);
  if (nfiles == 0) {
    files = stdin_only;
    nfiles = 1;
  }
  int status = 0;
  for (size_t f = 0; f < nfiles && status == 0; f++) {
    const char *name = files[f];
    int fd = strcmp(name, "-") == 0 ? STDIN_FILENO : open(name, O_RDONLY);
    if (fd < 0) {
      status = fail("%s: %s", name, strerror(errno));
      break;
    }
    rc = count_fd(set, fd, threads, st, &buf, counts);
    if (rc < 0)
      status = fail("%s: %s", strcmp(name, "-") ? name : "(standard input)",
                    strerror(-rc));
    if (fd != STDIN_FILENO)
      close(fd);
  }
  if (status == 0) {
    if (nneedles == 1) {
      printf("%" PRIu64 "\n", counts[0]);
    } else {
      for (size_t i = 0; i < nneedles; i++)
        printf("%s\t%" PRIu64 "\n", needles[i], counts[i]);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
      status = fail("write error: %s", strerror(errno));
  }
  wc_stream_free(st);
  wc_needles_free(set);
  free(buf);
  free(lens);
  free(counts);
  free(needles);
  return status;
}
