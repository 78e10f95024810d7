/*
 * cli.c - the `wordcount` command: grep-like front end to the core.
 *
 *   wordcount [-i] [-w] [-e NEEDLE]... [-j THREADS] [--sequential]
 *             [NEEDLE] [FILE...]
 *
 * Regular files are mapped and counted on THREADS threads (default: one per
 * CPU) with wc_count_parallel; pipes and terminals are read in 1 MiB chunks
 * through the streaming counter, so any input size works in bounded memory.
 * A regular file is counted from its current offset (standard input may be
 * a file a shell has read part of) to its end, and left at its end, as if
 * it had been read. If no thread can be started, the file is counted on
 * this one. A mapped file that shrinks while it is counted raises SIGBUS:
 * its handler prints the one-line error and exits 2.
 * Exit status: 0 on success, 2 on usage or I/O errors (one line on stderr;
 * control bytes in needles and file names are shown as \xNN).
 */
#include "wordcount.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
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

/* Text for messages: s with its control bytes and DEL as \xNN, cut (at a
 * character's start, with "...") after about max bytes; malloc'd, or NULL
 * when out of memory. */
static char *shown(const char *s, size_t max) {
  size_t n = strlen(s), o = 0;
  char *out = malloc(4 * n + 4);
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (o >= max && (ch & 0xc0) != 0x80) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (ch < 0x20 || ch == 0x7f)
      o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
    else
      out[o++] = (char)ch;
  }
  out[o] = 0;
  return out;
}

/* What the SIGBUS handler prints: set before a file is mapped. */
static const char *bus_name = "";
static size_t bus_name_len;

static void on_sigbus(int sig) {
  static const char a[] = "wordcount: ",
                    b[] = ": the file shrank while it was counted\n";
  ssize_t r;
  (void)sig;
  r = write(STDERR_FILENO, a, sizeof a - 1);
  r = write(STDERR_FILENO, bus_name, bus_name_len);
  r = write(STDERR_FILENO, b, sizeof b - 1);
  (void)r;
  _exit(2);
}

/* Counts what is left of a mapped regular file, from its offset pos. */
static int count_mapped(const wc_needles_t *set, int fd, off_t pos,
                        off_t size, unsigned threads, uint64_t *counts) {
  long page = sysconf(_SC_PAGESIZE);
  off_t base = pos - pos % (page > 0 ? page : 4096);
  size_t len = (size_t)(size - base), skip = (size_t)(pos - base);
  void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, base);
  int rc;
  if (map == MAP_FAILED)
    return 1;
  /* two calls: the advice values are not flags */
  madvise(map, len, MADV_SEQUENTIAL);
  madvise(map, len, MADV_WILLNEED);
  rc = wc_count_parallel(set, (const char *)map + skip, len - skip, threads,
                         counts);
  if (rc == -EAGAIN && threads != 1) /* no thread to be had: count here */
    rc = wc_count_parallel(set, (const char *)map + skip, len - skip, 1,
                           counts);
  munmap(map, len);
  if (rc == 0 && lseek(fd, size, SEEK_SET) < 0)
    rc = -errno;
  return rc;
}

/* Counts one open file into counts; returns 0 or a negative errno. */
static int count_fd(const wc_needles_t *set, int fd, unsigned threads,
                    wc_stream_t *st, uint8_t **buf, uint64_t *counts) {
  struct stat sb;
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
    off_t pos = lseek(fd, 0, SEEK_CUR);
    /* At or past the size: read (a /proc file has size 0 and a text) */
    if (pos >= 0 && pos < sb.st_size) {
      int rc = count_mapped(set, fd, pos, sb.st_size, threads, counts);
      if (rc <= 0)
        return rc;
    } /* else read it */
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

/* An option letter as -C, for messages. */
static char *letter_named(int opt) {
  char one[3] = {'-', (char)opt, 0};
  return shown(one, 64);
}

/* The option argv[optind - 1] ends in, for messages: a long option up to
 * its '=', else the letter opt. */
static char *option_named(char **argv, int optind_now, int opt) {
  const char *a = optind_now > 0 ? argv[optind_now - 1] : "";
  if (strncmp(a, "--", 2) == 0) {
    char *s = shown(a, 64), *eq = s ? strchr(s, '=') : NULL;
    if (eq != NULL)
      *eq = 0;
    return s;
  }
  return opt > 0 && opt < 256 ? letter_named(opt) : shown(a, 64);
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
  size_t nneedles = 0, *lens = NULL;
  uint64_t *counts = NULL;
  wc_needles_t *set = NULL;
  wc_stream_t *st = NULL;
  uint8_t *buf = NULL;
  char *msg = NULL;
  unsigned flags = 0, threads = 0;
  int c, rc, status = 0;
  if (!needles)
    return fail("out of memory");
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
      if (errno || *end || v > 1024 || optarg[0] < '0' || optarg[0] > '9') {
        msg = shown(optarg, 64);
        status = fail("invalid thread count '%s' (expected 0..1024)",
                      msg ? msg : "?");
        goto out;
      }
      threads = (unsigned)v;
      break;
    }
    case OPT_SEQUENTIAL:
      threads = 1;
      break;
    case OPT_HELP:
      fputs(usage_text, stdout);
      goto out;
    case OPT_VERSION:
      printf("wordcount %s (kernel %s)\n", WC_VERSION, wc_kernel_name());
      goto out;
    case ':':
      msg = option_named(argv, optind, optopt);
      status = fail("option '%s' needs an argument; try 'wordcount --help'",
                    msg ? msg : "?");
      goto out;
    default:
      /* optopt: 0 for an unknown long option; a known option's value for
       * one given an argument it does not take; else the unknown letter */
      if (optopt == 'i' || optopt == 'w' || optopt >= OPT_SEQUENTIAL) {
        msg = option_named(argv, optind, 0);
        status = fail("option '%s' takes no argument; try 'wordcount --help'",
                      msg ? msg : "?");
      } else {
        /* a letter by itself: argv[optind - 1] may be the argument before
         * its group (getopt moves on only after a group's last letter) */
        msg = optopt != 0 ? letter_named(optopt)
                          : option_named(argv, optind, 0);
        status = fail("unknown option '%s'; try 'wordcount --help'",
                      msg ? msg : "?");
      }
      goto out;
    }
  }
  if (nneedles == 0) {
    if (optind >= argc) {
      status = fail("no needle given; usage: wordcount [OPTION]... NEEDLE "
                    "[FILE]...");
      goto out;
    }
    needles[nneedles++] = argv[optind++];
  }
  lens = calloc(nneedles, sizeof(*lens));
  counts = calloc(nneedles, sizeof(*counts));
  if (!lens || !counts) {
    status = fail("out of memory");
    goto out;
  }
  for (size_t i = 0; i < nneedles; i++)
    lens[i] = strlen(needles[i]);
  size_t bad;
  rc = wc_needles_new(&set, needles, lens, nneedles, flags, &bad);
  if (rc == -EINVAL) {
    msg = shown(bad < nneedles ? needles[bad] : "", 56);
    status = fail("invalid needle '%s': a needle must be non-empty, without "
                  "spaces or newlines",
                  msg ? msg : "?");
    goto out;
  }
  if (rc == -E2BIG) {
    status = fail("too many or too long needles (at most %d needles of %d "
                  "bytes)",
                  WC_MAX_NEEDLES, WC_MAX_NEEDLE_BYTES);
    goto out;
  }
  if (rc < 0) {
    status = fail("%s", strerror(-rc));
    goto out;
  }
  if (wc_stream_new(&st, set) < 0) {
    status = fail("out of memory");
    goto out;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigbus;
  sigaction(SIGBUS, &sa, NULL);

  static const char *const stdin_only[] = {"-"};
  const char *const *files = (const char *const *)argv + optind;
  size_t nfiles = (size_t)(argc - optind);
  if (nfiles == 0) {
    files = stdin_only;
    nfiles = 1;
  }
  for (size_t f = 0; f < nfiles && status == 0; f++) {
    const char *name = files[f];
    int is_stdin = strcmp(name, "-") == 0;
    free(msg);
    msg = is_stdin ? strdup("(standard input)") : shown(name, SIZE_MAX);
    if (msg == NULL) {
      status = fail("out of memory");
      break;
    }
    int fd = is_stdin ? STDIN_FILENO : open(name, O_RDONLY);
    if (fd < 0) {
      status = fail("%s: %s", msg, strerror(errno));
      break;
    }
    bus_name = msg;
    bus_name_len = strlen(msg);
    rc = count_fd(set, fd, threads, st, &buf, counts);
    if (rc < 0)
      status = fail("%s: %s", msg, strerror(-rc));
    if (!is_stdin)
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
out:
  wc_stream_free(st);
  wc_needles_free(set);
  free(msg);
  free(buf);
  free(lens);
  free(counts);
  free(needles);
  return status;
}
