/*
 * test_cpus.c - wc_cgroup_cpu_limit (server/cpus.c) on fake systems: a
 * temporary directory with proc/self/cgroup, proc/self/mountinfo and the
 * cgroup files each case needs, laid out as cgroup v2 and v1 show them on
 * a host and inside a container, table-driven.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "cpus.h"

typedef struct {
  const char *name;
  const char *cgroup;    /* proc/self/cgroup */
  const char *mountinfo; /* proc/self/mountinfo */
  const char *files[8];  /* "path=content" under the root */
  unsigned want;
} cpu_case_t;

#define MI_V2 "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
#define MI_V1(root, dir, opts)                                                 \
  "32 31 0:29 " root " /sys/fs/cgroup/" dir " rw - cgroup cgroup rw," opts "\n"

static const cpu_case_t cases[] = {
    {"nothing there", NULL, NULL, {NULL}, 0},
    {"v2 container, 1.5 CPUs rounds up to 2",
     "0::/\n",
     MI_V2,
     {"sys/fs/cgroup/cpu.max=150000 100000\n"},
     2},
    {"v2 container, no quota",
     "0::/\n",
     MI_V2,
     {"sys/fs/cgroup/cpu.max=max 100000\n"},
     0},
    {"v2 container, a quota below one CPU is one",
     "0::/\n",
     MI_V2,
     {"sys/fs/cgroup/cpu.max=20000 100000\n"},
     1},
    {"v2 host, the parent's quota binds the service",
     "0::/system.slice/wc.service\n",
     MI_V2,
     {"sys/fs/cgroup/system.slice/wc.service/cpu.max=max 100000\n",
      "sys/fs/cgroup/system.slice/cpu.max=300000 100000\n",
      "sys/fs/cgroup/cpu.max=max 100000\n"},
     3},
    {"v2 host, the smallest of the service and its parents",
     "0::/a/b\n",
     MI_V2,
     {"sys/fs/cgroup/a/b/cpu.max=400000 100000\n",
      "sys/fs/cgroup/a/cpu.max=800000 100000\n"},
     4},
    {"v2, no cgroup2 mount",
     "0::/\n",
     "",
     {"sys/fs/cgroup/cpu.max=100000 100000\n"},
     0},
    {"v1 container (the mount shows the container's cgroup)",
     "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
     MI_V1("/docker/abc", "cpu,cpuacct", "cpu,cpuacct"),
     {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us=250000\n",
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us=100000\n"},
     3},
    {"v1 host, the parent's quota",
     "3:cpuset:/\n2:cpuacct:/\n1:cpu:/a/b\n0::/\n",
     MI_V1("/", "cpu", "cpu") MI_V1("/", "cpuacct", "cpuacct"),
     {"sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us=-1\n",
      "sys/fs/cgroup/cpu/a/b/cpu.cfs_period_us=100000\n",
      "sys/fs/cgroup/cpu/a/cpu.cfs_quota_us=100000\n",
      "sys/fs/cgroup/cpu/a/cpu.cfs_period_us=100000\n",
      "sys/fs/cgroup/cpu/cpu.cfs_quota_us=-1\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us=100000\n"},
     1},
    {"v1, cpuacct and cpuset alone are not the cpu controller",
     "3:cpuset:/\n2:cpuacct:/\n",
     MI_V1("/", "cpuacct", "cpuacct") MI_V1("/", "cpuset", "cpuset"),
     {"sys/fs/cgroup/cpuacct/cpu.cfs_quota_us=100000\n",
      "sys/fs/cgroup/cpuacct/cpu.cfs_period_us=100000\n"},
     0},
    {"v1, only the mount with the cpu option counts",
     "2:cpuacct:/\n1:cpu:/\n",
     MI_V1("/", "cpuacct", "cpuacct") MI_V1("/", "cpu", "cpu"),
     {"sys/fs/cgroup/cpuacct/cpu.cfs_quota_us=100000\n",
      "sys/fs/cgroup/cpuacct/cpu.cfs_period_us=100000\n",
      "sys/fs/cgroup/cpu/cpu.cfs_quota_us=-1\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us=100000\n"},
     0},
    {"v1, no quota",
     "1:cpu:/\n",
     MI_V1("/", "cpu", "cpu"),
     {"sys/fs/cgroup/cpu/cpu.cfs_quota_us=-1\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us=100000\n"},
     0},
    {"v1, a mount point with a space (\\040 in mountinfo)",
     "1:cpu:/\n",
     "32 31 0:29 / /sys/fs/cgroup/my\\040cpu rw - cgroup cgroup rw,cpu\n",
     {"sys/fs/cgroup/my cpu/cpu.cfs_quota_us=700000\n",
      "sys/fs/cgroup/my cpu/cpu.cfs_period_us=100000\n"},
     7},
    {"hybrid: the v1 cpu quota, the v2 tree without cpu.max",
     "1:cpu:/\n0::/\n",
     MI_V1("/", "cpu", "cpu") "40 31 0:40 / /sys/fs/cgroup/unified rw - "
                              "cgroup2 cgroup2 rw\n",
     {"sys/fs/cgroup/cpu/cpu.cfs_quota_us=200000\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us=100000\n"},
     2},
    {"v2, a second mount showing another cgroup does not count",
     "0::/user.slice/session-1.scope\n",
     MI_V2 "41 30 0:26 /system.slice/docker-abc.scope /mnt/other rw - "
           "cgroup2 cgroup2 rw\n",
     {"mnt/other/cpu.max=100000 100000\n"},
     0},
    {"v1, a mount of another cgroup (/a is not a prefix of /ab)",
     "1:cpu:/ab\n",
     MI_V1("/a", "cpu", "cpu"),
     {"sys/fs/cgroup/cpu/cpu.cfs_quota_us=100000\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us=100000\n"},
     0},
    {"a cgroup outside the namespace (..) is no quota",
     "0::/../../x\n",
     MI_V2,
     {"sys/x/cpu.max=100000 100000\n", "sys/fs/cgroup/cpu.max=100000 100000\n"},
     0},
    {"a huge quota is capped, not wrapped",
     "0::/\n",
     MI_V2,
     {"sys/fs/cgroup/cpu.max=9223372036854775807 100000\n"},
     1024},
    {"garbage in the files is no quota",
     "0::/\n",
     MI_V2,
     {"sys/fs/cgroup/cpu.max=lots\n"},
     0},
};

/* Writes root/rel, making its directories. */
static void put_file(const char *root, const char *rel, const char *data,
                     size_t len) {
  char path[PATH_MAX];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", root, rel);
  for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
    *s = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      fail_msg("mkdir %s", path);
    *s = '/';
  }
  f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void test_cgroup_cpu_limit_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const cpu_case_t *c = &cases[i];
    char root[] = "/tmp/wc-cpus-XXXXXX", cmd[64];
    unsigned got;
    assert_non_null(mkdtemp(root));
    if (c->cgroup != NULL)
      put_file(root, "proc/self/cgroup", c->cgroup, strlen(c->cgroup));
    if (c->mountinfo != NULL)
      put_file(root, "proc/self/mountinfo", c->mountinfo, strlen(c->mountinfo));
    for (size_t k = 0; k < 8 && c->files[k] != NULL; k++) {
      const char *eq = strchr(c->files[k], '=');
      char rel[PATH_MAX];
      snprintf(rel, sizeof rel, "%.*s", (int)(eq - c->files[k]), c->files[k]);
      put_file(root, rel, eq + 1, strlen(eq + 1));
    }
    got = wc_cgroup_cpu_limit(root);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", root);
    if (got != c->want)
      fail_msg("%s: got %u, want %u", c->name, got, c->want);
  }
}

/* On this machine: whatever the quota, the usable count is at least 1 and
 * at most the affinity's. */
static void test_cpus_usable_is_sane(void **state) {
  unsigned n = wc_cpus_usable();
  (void)state;
  assert_true(n >= 1);
  assert_true(n <= uv_available_parallelism() || n == 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cgroup_cpu_limit_cases),
      cmocka_unit_test(test_cpus_usable_is_sane),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
