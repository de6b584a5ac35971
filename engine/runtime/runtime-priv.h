/* Internals shared by the runtime's files and its unit tests. Not part of the
 * engine's API: the container manager uses runtime.h only. */
#ifndef MACHINE_ENGINE_RUNTIME_PRIV_H
#define MACHINE_ENGINE_RUNTIME_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime.h"

struct sock_fprog;

/* ---- parse.c: pure parsers over buffers -------------------------------- */

/* One line of /proc/PID/mountinfo; strings point into the (modified) buffer,
 * octal escapes (\040) already decoded. */
struct rt_mountinfo {
    unsigned id, parent_id, major, minor;
    const char *root;
    const char *mount_point;
    const char *mount_options;
    const char *fstype;
    const char *source;
    const char *super_options;
};

/* Parses the next line at *cursor, advancing it. Returns 1 with *out filled,
 * 0 at the end of the buffer, -1 (MERR_CORRUPT) on a malformed line. */
MUST_CHECK int rt_mountinfo_next(char **cursor, struct rt_mountinfo *out, struct merr *err);

/* Whether a comma-separated option list contains exactly opt. */
bool rt_option_present(const char *options, const char *opt);

/* A v1 hierarchy as mounted: its mount point and the controllers it carries. */
#define RT_CG_MAX_HIERARCHIES 16
struct rt_cg_hierarchy {
    char mount_point[256];
    char controllers[128]; /* "memory", "cpu,cpuacct", "name=systemd" */
};
/* Lists the cgroup (v1) mounts directly under cgroup_root in a mountinfo
 * buffer (modified); *unified gets the cgroup2 mount point under cgroup_root,
 * or "" when none. Returns the number of hierarchies. */
MUST_CHECK int rt_cg_hierarchies_parse(char *mountinfo, const char *cgroup_root,
                                       struct rt_cg_hierarchy *out, size_t max, char *unified,
                                       size_t unified_size, struct merr *err);

/* Whether a mountinfo buffer (modified) has a mount at exactly path. */
bool rt_mountinfo_has_mount_point(char *mountinfo, const char *path);

/* One line of /proc/PID/cgroup: "ID:controllers:path". */
struct rt_proc_cgroup {
    unsigned hierarchy_id;
    const char *controllers; /* "" for the cgroup2 line */
    const char *path;
};
MUST_CHECK int rt_proc_cgroup_next(char **cursor, struct rt_proc_cgroup *out, struct merr *err);
/* The path of the given controller ("" for the unified hierarchy) in a
 * /proc/PID/cgroup buffer (not modified); NULL when absent. Caller frees. */
char *rt_proc_cgroup_path(const char *buf, const char *controller);

/* Fields of /proc/PID/stat the runtime needs: state (3) and starttime (22). */
MUST_CHECK int rt_proc_stat_parse(const char *buf, char *state, uint64_t *start_time,
                                  struct merr *err);

/* "key value" lines (memory.stat, memory.events, memory.oom_control,
 * cpu.stat): 0 with *out set, -1 when the key is missing or not a number. */
int rt_kv_lookup(const char *buf, const char *key, uint64_t *out);

/* statfs() f_type of the cgroup root and of <root>/unified (0 when missing). */
MUST_CHECK int rt_cgroup_mode_detect(unsigned long root_fstype, unsigned long unified_fstype,
                                     enum rt_cgroup_mode *out, struct merr *err);

/* cpu.shares (2..262144) -> cpu.weight (1..10000), quadratic in log space so
 * that 2 -> 1, 1024 (the default) -> 100 and 262144 -> 10000, like crun. */
uint64_t rt_shares_to_weight(uint64_t shares);

/* CFS quota/period from a resources block: nano_cpus wins over cpu_quota.
 * quota -1 means unlimited; period 0 means "leave the kernel default". */
void rt_cpu_quota_period(const struct rt_resources *res, int64_t *quota, uint64_t *period);

/* Memory+swap for v1 memory.memsw.limit_in_bytes (-1 unlimited, 0 unset) and
 * swap alone for v2 memory.swap.max (-1 max, -2 unset). */
int64_t rt_memsw_limit(const struct rt_resources *res);
int64_t rt_swap_only_limit(const struct rt_resources *res);

/* Container ids become path components: refuse anything but a safe name. */
bool rt_id_valid(const char *id);

/* ---- caps.c ---------------------------------------------------------- */

/* "CHOWN", "cap_chown", "CAP_CHOWN" -> CAP_CHOWN; -1 for an unknown name. */
int rt_cap_from_name(const char *name);
/* The highest capability the running kernel knows (cap_last_cap). */
int rt_cap_last(void);
/* docker's default set (docker-api.md). */
uint64_t rt_caps_default_mask(void);
/* docker's TweakCapabilities: ALL in cap_add -> everything minus cap_drop;
 * ALL in cap_drop -> only cap_add; else default - cap_drop + cap_add.
 * MERR_INVALID for an unknown name. */
MUST_CHECK int rt_caps_compute(const struct rt_process *p, uint64_t *mask, struct merr *err);

/* ---- seccomp.c -------------------------------------------------------- */

/* Builds docker's default profile (EPERM default, allow-list, clone3 ENOSYS,
 * extra syscalls for granted capabilities) as a BPF program. */
struct rt_bpf {
    struct sock_fprog *prog; /* points into this allocation */
};
MUST_CHECK int rt_seccomp_build(uint64_t caps, struct rt_bpf **out, struct merr *err);
void rt_bpf_free(struct rt_bpf *bpf);
DEFINE_CLEANUP(struct rt_bpf, rt_bpf_free)
size_t rt_bpf_len(const struct rt_bpf *bpf);

#endif
