/* Internals shared by the runtime's files and its unit tests. Not part of the
 * engine's API: the container manager uses runtime.h only. */
#ifndef MACHINE_ENGINE_RUNTIME_PRIV_H
#define MACHINE_ENGINE_RUNTIME_PRIV_H

#ifndef MACHINE_RUNTIME_PRIV
#error "runtime-priv.h is internal to engine/runtime/ and its tests (they define MACHINE_RUNTIME_PRIV)"
#endif

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime.h"

struct sock_fprog;

/* Marks a call whose failure is deliberately ignored (cleanup on an error
 * path, a best-effort write). */
static inline void rt_best_effort(int result)
{
    (void)result;
}

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
struct rt_runtime;
/* The same program for a copy to own: built once per capability set and kept in the runtime
 * (compiling docker's profile costs several milliseconds of every container start). */
MUST_CHECK int rt_seccomp_get(struct rt_runtime *rt, uint64_t caps, struct rt_bpf **out,
                              struct merr *err);
void rt_bpf_free(struct rt_bpf *bpf);
DEFINE_CLEANUP(struct rt_bpf, rt_bpf_free)
size_t rt_bpf_len(const struct rt_bpf *bpf);

/* ---- the runtime context and its cgroup manager ----------------------- */

struct rt_cgroup;

/* A cgroup manager: one per layout, chosen once by rt_runtime_new(). */
struct rt_cgroup_ops {
    const char *name;
    /* Fills cg->dirs for container id; with create, makes the directories
     * (and enables v2 controllers on the way), else keeps the existing ones. */
    int (*open)(struct rt_cgroup *cg, bool create, struct merr *err);
    int (*set_resources)(struct rt_cgroup *cg, const struct rt_resources *res, struct merr *err);
    /* Devices: docker's default allow-list plus extra rules ("c 1:3 rwm"), or everything. */
    int (*set_devices)(struct rt_cgroup *cg, bool allow_all, const char *const *extra,
                       struct merr *err);
    int (*oom_killed)(struct rt_cgroup *cg, bool *out, struct merr *err);
    int (*stats)(struct rt_cgroup *cg, struct rt_stats *out, struct merr *err);
    /* Thaws a frozen cgroup so SIGKILL can land; may be NULL. */
    void (*thaw)(struct rt_cgroup *cg);
};
extern const struct rt_cgroup_ops rt_cgroup_v1_ops;
extern const struct rt_cgroup_ops rt_cgroup_hybrid_ops;
extern const struct rt_cgroup_ops rt_cgroup_v2_ops;

struct rt_runtime {
    char cgroup_root[256];
    char cgroup_parent[128];
    enum rt_cgroup_mode mode;
    const struct rt_cgroup_ops *cg_ops;
    /* v1/hybrid: the hierarchies the runtime uses; hybrid: the cgroup2 mount. */
    struct rt_cg_hierarchy hier[RT_CG_MAX_HIERARCHIES];
    size_t n_hier;
    char unified[256];
    const struct mlog *log;
    pthread_mutex_t seccomp_lock;
    struct rt_bpf *seccomp_cache; /* the last program built, for seccomp_cache_caps */
    uint64_t seccomp_cache_caps;
};

/* Builds the runtime context from already-gathered facts (the seam the unit
 * tests use instead of statfs() and a real mountinfo). */
MUST_CHECK int rt_runtime_init_from(struct rt_runtime *rt, const struct rt_runtime_config *config,
                                    enum rt_cgroup_mode mode, char *mountinfo, struct merr *err);

#define RT_CG_MAX_DIRS (RT_CG_MAX_HIERARCHIES + 1)
struct rt_cgroup {
    const struct rt_runtime *rt;
    char id[RT_ID_MAX + 1];
    size_t n_dirs;
    char dirs[RT_CG_MAX_DIRS][512];   /* absolute directories, one per hierarchy */
    char names[RT_CG_MAX_DIRS][128];  /* hierarchy name inside /sys/fs/cgroup ("memory") */
    /* index into dirs for each controller, -1 when absent */
    int memory, cpu, cpuacct, pids, devices, freezer, unified, cpuset, blkio;
};

MUST_CHECK int rt_cgroup_open(const struct rt_runtime *rt, const char *id, bool create,
                              struct rt_cgroup **out, struct merr *err);
void rt_cgroup_free(struct rt_cgroup *cg);
DEFINE_CLEANUP(struct rt_cgroup, rt_cgroup_free)
/* Moves pid (0: the caller) into every directory of cg. Allocation-free, so a
 * freshly cloned child may call it. */
MUST_CHECK int rt_cgroup_attach(const struct rt_cgroup *cg, pid_t pid, struct merr *err);
/* Kills every process left in cg, then removes its directories (bounded). */
MUST_CHECK int rt_cgroup_destroy(struct rt_cgroup *cg, struct merr *err);
/* The cgroup of a container (freeze.c). */
struct rt_cgroup *rt_container_cgroup(struct rt_container *c);
/* Whether any directory of cg still exists. */
bool rt_cgroup_exists(const struct rt_cgroup *cg);

/* Small file helpers for cgroupfs (and /proc). rt_read_all reads a whole
 * (procfs) file into a NUL-terminated malloc'd buffer, capped at 8 MiB. */
MUST_CHECK int rt_read_all(const char *path, char **out, struct merr *err);
MUST_CHECK int rt_write_file(const char *dir, const char *file, const char *value,
                             struct merr *err);
/* Reads at most size-1 bytes, NUL-terminated; returns the length. */
MUST_CHECK ssize_t rt_read_file(const char *dir, const char *file, char *buf, size_t size,
                                struct merr *err);
MUST_CHECK int rt_read_u64(const char *dir, const char *file, uint64_t *out, struct merr *err);

/* ---- extras.c: the options beyond docker's defaults ---------------------- */

/* Memory reservation, OOM killer, swappiness, cpuset and blkio weight of a starting container;
 * MERR_INVALID naming the option where this cgroup layout has no such control. */
MUST_CHECK int rt_cgroup_set_extras(struct rt_cgroup *cg, const struct rt_resources *res,
                                    struct merr *err);
/* The devices cgroup rules a spec adds to docker's defaults (its devices, then its rules);
 * one allocation, NULL-terminated. */
char **rt_device_rules(const struct rt_spec *spec);
/* Child side: rlimits and oom_score_adj, while the child still has every capability. */
MUST_CHECK int rt_child_apply_limits(const struct rt_process *p, struct merr *err);
/* Child side, after pivot_root: writes spec->sysctls under /proc/sys. */
MUST_CHECK int rt_child_sysctls(const struct rt_spec *spec, struct merr *err);
/* Child side, before pivot_root: creates spec->devices in the rootfs's /dev (devfd). */
MUST_CHECK int rt_child_make_devices(int rootfd, const struct rt_spec *spec, struct merr *err);
/* A docker seccomp profile (JSON) compiled for the given capabilities; *out NULL when the
 * profile allows everything by default and has no rules. */
MUST_CHECK int rt_seccomp_from_profile(const char *json, uint64_t caps, struct rt_bpf **out,
                                       struct merr *err);
/* seccomp.c: exports a libseccomp filter (scmp_filter_ctx) as a program. */
MUST_CHECK int rt_seccomp_export(void *ctx, struct rt_bpf **out, struct merr *err);

/* ---- devices-bpf.c: device access on cgroup v2 ---------------------------- */

struct bpf_insn;
/* docker's default device rules (cgroup-v1.c), NULL-terminated. */
extern const char *const rt_default_device_rules[];
/* One rule ("c 1:3 rwm", "b *:* m", "a"): type 0 any, major/minor -1 any, BPF_DEVCG_ACC_*. */
int rt_dev_rule_parse(const char *text, int *type, int64_t *major, int64_t *minor,
                      unsigned *access);
/* A BPF_PROG_TYPE_CGROUP_DEVICE program allowing what the NULL-terminated list of
 * NULL-terminated rule lists allows, denying the rest. Caller frees *out. */
MUST_CHECK int rt_devices_bpf_build(const char *const *const *lists, struct bpf_insn **out,
                                    size_t *n_out, struct merr *err);
/* Loads that program and attaches it to a cgroup2 directory. */
MUST_CHECK int rt_devices_bpf_attach(const char *cgroup_dir, const char *const *const *lists,
                                     struct merr *err);

/* ---- the cloned child (runtime.c, mounts.c) ------------------------------ */

/* Everything the container's first process (or an exec'd one) needs, prepared
 * by the engine before clone so the child only makes system calls: after a
 * raw clone of a possibly multi-threaded engine, malloc may be unusable. */
struct rt_child {
    const struct rt_spec *spec;    /* rt_start only; NULL for rt_exec */
    const struct rt_process *proc;
    const struct rt_cgroup *cg;
    enum rt_cgroup_mode cg_mode;
    char *const *argv;
    char *const *envp;
    const char *path;              /* PATH for the argv[0] lookup */
    uint64_t caps;
    const struct sock_fprog *seccomp; /* NULL: no filter (privileged) */
    const char *const *masked;
    const char *const *readonly;
    int target_pidfd;              /* rt_exec: the container's first process */
    pid_t target_pid;
};

extern const char *const rt_default_masked_paths[];
extern const char *const rt_default_readonly_paths[];

/* Host side: mounts the overlay (or a lone read-only lower dir) at spec->rootfs. */
MUST_CHECK int rt_rootfs_mount(const struct rt_spec *spec, struct merr *err);
/* Host side: unmounts rootfs if something is mounted there. */
MUST_CHECK int rt_rootfs_umount(const char *rootfs, struct merr *err);
/* Child side, in the new mount namespace: /proc, /dev, /sys, cgroups, bind
 * mounts, pivot_root, masked and read-only paths. Refuses a rootfs whose
 * /proc, /dev or /sys is a symlink (MERR_INVALID). */
MUST_CHECK int rt_child_mount(const struct rt_child *ch, struct merr *err);

/* ---- cgroupfs.c: mounting cgroups where the host's init did not ---------- */

#define RT_CGROUPFS_MAX 24
struct rt_cgroupfs_plan {
    bool v2; /* mount cgroup2 at the root; else the v1 mounts below */
    size_t n;
    struct {
        unsigned hierarchy; /* from /proc/cgroups; controllers sharing one are co-mounted */
        char controllers[96];
    } mounts[RT_CGROUPFS_MAX];
};
/* What to mount from /proc/filesystems and /proc/cgroups: cgroup2 when the kernel has it and
 * no v1 hierarchy is in use, else one v1 mount per hierarchy (cgroupfs-mount's layout).
 * MERR_UNSUPPORTED when the kernel has neither. Pure. */
MUST_CHECK int rt_cgroupfs_plan(const char *filesystems, const char *proc_cgroups,
                                struct rt_cgroupfs_plan *plan, struct merr *err);
/* Mounts that plan at root when no cgroup filesystem (nor a tmpfs of v1 ones) is there. */
struct mlog;
MUST_CHECK int rt_cgroupfs_ensure(const char *root, const struct mlog *log, struct merr *err);

#endif
