/*
 * cpus.c - the CPUs the server may use (see cpus.h).
 *
 * DESIGN
 * - Runs once, at start (wc_config_apply_workers), on the main thread; it
 *   only reads files, and any failure means "no quota".
 * - /proc/self/cgroup gives the process's cgroup: on v2 the "0::PATH" line,
 *   on v1 the line whose controller list holds "cpu". /proc/self/mountinfo
 *   gives where that hierarchy is mounted (fstype cgroup2, or cgroup with
 *   the "cpu" super option) and which cgroup the mount shows at its root
 *   (field 4): inside a container with its own cgroup namespace that is
 *   "/" and PATH is "/"; on a host PATH lies below it.
 * - The limit is the smallest quota of the cgroup and of each ancestor up
 *   to the mount point (a parent's quota binds its children), each rounded
 *   up to whole CPUs.
 */
#include "cpus.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* Reads a small file into buf (NUL-terminated); -1 when it cannot. */
static int read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0)
    return -1;
  n = read(fd, buf, cap - 1);
  close(fd);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return 0;
}

/* 1 when the comma-separated list s[0..n) holds word. */
static int list_has(const char *s, size_t n, const char *word) {
  size_t wl = strlen(word);
  while (n > 0) {
    const char *c = memchr(s, ',', n);
    size_t l = c != NULL ? (size_t)(c - s) : n;
    if (l == wl && memcmp(s, word, wl) == 0)
      return 1;
    if (c == NULL)
      break;
    n -= l + 1;
    s = c + 1;
  }
  return 0;
}

/* mountinfo writes space, tab, newline and backslash as \ooo: decodes in
 * place. */
static void unescape_octal(char *s) {
  char *o = s;
  for (; *s != '\0'; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
        s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
}

/* The quota at one cgroup directory, in whole CPUs rounded up; 0: none. */
static unsigned quota_at(const char *dir, int v2) {
  char path[PATH_MAX + 32], buf[64];
  long long q = 0, p = 0;
  if (v2) {
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    if (read_small(path, buf, sizeof buf) < 0 ||
        sscanf(buf, "%lld %lld", &q, &p) != 2) /* "max 100000": no quota */
      return 0;
  } else {
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (read_small(path, buf, sizeof buf) < 0 || sscanf(buf, "%lld", &q) != 1)
      return 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (read_small(path, buf, sizeof buf) < 0 || sscanf(buf, "%lld", &p) != 1)
      return 0;
  }
  if (q <= 0 || p <= 0)
    return 0;
  q = q / p + (q % p != 0); /* rounded up, without overflow */
  return q > 1024 ? 1024 : (unsigned)q;
}

/* The smallest quota from mnt + rel up to mnt. */
static unsigned quota_walk(const char *root, const char *mnt, const char *rel,
                           int v2) {
  char dir[PATH_MAX + 1];
  size_t base;
  unsigned best = 0;
  int n = snprintf(dir, sizeof dir, "%s%s", root, mnt);
  if (n < 0 || (size_t)n >= sizeof dir)
    return 0;
  base = (size_t)n;
  while (base > 1 && dir[base - 1] == '/') /* "/sys/fs/cgroup/" */
    dir[--base] = '\0';
  n = snprintf(dir + base, sizeof dir - base, "%s", rel);
  if (n < 0 || (size_t)n >= sizeof dir - base)
    return 0;
  for (;;) {
    size_t len = strlen(dir);
    unsigned q = quota_at(dir, v2);
    char *slash;
    if (q > 0 && (best == 0 || q < best))
      best = q;
    if (len <= base)
      break;
    slash = strrchr(dir + base, '/');
    if (slash == NULL)
      break;
    *slash = '\0';
  }
  return best;
}

/* The part of cgroup path cg below the mount's root mroot ("" when the
 * mount point is cg itself, as in a container), or NULL when the mount
 * shows another part of the tree, or cg climbs out of it (a ".." part, as
 * /proc/self/cgroup shows a cgroup outside the reader's namespace). */
static const char *below(const char *cg, const char *mroot) {
  size_t l = strlen(mroot);
  for (const char *d = strstr(cg, "/.."); d != NULL; d = strstr(d + 1, "/.."))
    if (d[3] == '/' || d[3] == '\0')
      return NULL;
  if (strcmp(mroot, "/") == 0)
    return strcmp(cg, "/") == 0 ? "" : cg;
  if (strncmp(cg, mroot, l) == 0 && (cg[l] == '/' || cg[l] == '\0'))
    return cg + l;
  return NULL;
}

unsigned wc_cgroup_cpu_limit(const char *root) {
  char path[PATH_MAX + 32];
  char *line = NULL, *v1 = NULL, *v2 = NULL;
  size_t cap = 0;
  unsigned best = 0;
  FILE *f;
  snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
  if ((f = fopen(path, "re")) == NULL)
    return 0;
  while (getline(&line, &cap, f) > 0) {
    char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    char *nl;
    if (c2 == NULL)
      continue;
    if ((nl = strchr(c2, '\n')) != NULL)
      *nl = '\0';
    if (strncmp(line, "0::", 3) == 0 && v2 == NULL)
      v2 = strdup(c2 + 1);
    else if (list_has(c1 + 1, (size_t)(c2 - c1 - 1), "cpu") && v1 == NULL)
      v1 = strdup(c2 + 1);
  }
  fclose(f);
  snprintf(path, sizeof path, "%s/proc/self/mountinfo", root);
  if ((v1 != NULL || v2 != NULL) && (f = fopen(path, "re")) != NULL) {
    while (getline(&line, &cap, f) > 0) {
      /* id parent maj:min ROOT MOUNTPOINT opts [optional...] - FSTYPE
       * SOURCE SUPEROPTS */
      char *fld[5], *sep = strstr(line, " - "), *save = NULL, *fs, *opts;
      const char *rel;
      int n = 0, is2;
      unsigned q;
      if (sep == NULL)
        continue;
      *sep = '\0';
      for (char *t = strtok_r(line, " ", &save); t != NULL && n < 5;
           t = strtok_r(NULL, " ", &save))
        fld[n++] = t;
      fs = strtok_r(sep + 3, " ", &save);
      (void)strtok_r(NULL, " ", &save); /* source */
      opts = strtok_r(NULL, " \n", &save);
      if (n < 5 || fs == NULL)
        continue;
      is2 = strcmp(fs, "cgroup2") == 0;
      if (is2 ? v2 == NULL
              : strcmp(fs, "cgroup") != 0 || v1 == NULL || opts == NULL ||
                    !list_has(opts, strlen(opts), "cpu"))
        continue;
      unescape_octal(fld[3]);
      unescape_octal(fld[4]);
      if ((rel = below(is2 ? v2 : v1, fld[3])) == NULL)
        continue;
      q = quota_walk(root, fld[4], rel, is2);
      if (q > 0 && (best == 0 || q < best))
        best = q;
    }
    fclose(f);
  }
  free(line);
  free(v1);
  free(v2);
  return best;
}

unsigned wc_cpus_usable(void) {
  unsigned n = uv_available_parallelism(), q = wc_cgroup_cpu_limit("");
  if (n == 0)
    n = 1;
  return q > 0 && q < n ? q : n;
}
