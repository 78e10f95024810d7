/*
 * cpus.h - how many CPUs the server may use: what `workers` 0 and
 * `event_loops` 0 resolve to.
 *
 * The CPUs of the process's affinity (libuv's uv_available_parallelism:
 * taskset, docker --cpuset-cpus), lowered to a cgroup CPU quota
 * (docker --cpus, Kubernetes CPU limits, systemd CPUQuota=), which the
 * affinity does not show: a container limited to 2 CPUs on a 64-core host
 * would otherwise start 64 busy loops that take turns in scheduler slices.
 * The quota is rounded up (1.5 CPUs -> 2), as Go's runtime and the JVM do.
 */
#ifndef WC_CPUS_H
#define WC_CPUS_H

/* The CPUs to size the loops and the worker pool by (>= 1). */
unsigned wc_cpus_usable(void);

/*
 * The CPU quota of this process's cgroup and its ancestors, in whole CPUs
 * rounded up, or 0 when none is set. Reads root/proc/self/cgroup,
 * root/proc/self/mountinfo and the cgroup files under the mount points it
 * names (cpu.max on cgroup v2; cpu.cfs_quota_us and cpu.cfs_period_us on
 * v1), each prefixed with root: "" on a real system, a directory made to
 * look like one in the tests. Anything missing or unreadable counts as no
 * quota.
 */
unsigned wc_cgroup_cpu_limit(const char *root);

#endif
