/* Low-level container runtime of machine-engine: mounts an overlay rootfs,
 * clones the container's first process into fresh namespaces, puts it into
 * its own cgroup, applies docker's default security profile and execs the
 * user's binary directly (the engine never re-executes itself inside a
 * container). The engine's container manager drives it; this module holds no
 * global state: everything lives in a struct rt_runtime passed in.
 *
 * Reaping is the caller's job: the container's first process (and every
 * rt_exec process) is a child of the calling process. Decode its wait status
 * with rt_decode_status(), ask rt_oom_killed(), then rt_container_destroy(). */
#ifndef MACHINE_ENGINE_RUNTIME_H
#define MACHINE_ENGINE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"
#include "error.h"

struct mlog;
struct rt_runtime;
struct rt_container;

enum rt_cgroup_mode {
    RT_CGROUP_V1,     /* only v1 hierarchies under the cgroup root */
    RT_CGROUP_HYBRID, /* v1 controllers + a controller-less cgroup2 at <root>/unified */
    RT_CGROUP_V2,     /* the cgroup root is cgroup2 */
};

struct rt_runtime_config {
    const char *cgroup_root;   /* NULL: "/sys/fs/cgroup" */
    const char *cgroup_parent; /* NULL: "machine-engine"; containers go to <parent>/<id> */
    const struct mlog *log;    /* may be NULL */
};

/* Detects the cgroup layout once and chooses the matching cgroup manager. */
MUST_CHECK int rt_runtime_new(const struct rt_runtime_config *config, struct rt_runtime **out,
                              struct merr *err);
void rt_runtime_free(struct rt_runtime *rt);
enum rt_cgroup_mode rt_runtime_cgroup_mode(const struct rt_runtime *rt);
/* Whether containers can be given real-time CPU time (cgroup v1 cpu.rt_*, dockerd's
 * sysinfo.CPURealtime). */
bool rt_runtime_cpu_rt(const struct rt_runtime *rt);
DEFINE_CLEANUP(struct rt_runtime, rt_runtime_free)

enum rt_network_mode {
    RT_NET_NONE, /* new network namespace with only lo, up */
    RT_NET_HOST, /* the host's network namespace */
    RT_NET_PATH, /* join the namespace at rt_spec.netns_path (e.g. /run/netns/x) */
};

/* 0 (or -1 where noted) means "not set". */
struct rt_resources {
    int64_t memory;      /* bytes */
    int64_t memory_swap; /* memory+swap bytes; 0: same as memory (no swap), -1: unlimited */
    int64_t nano_cpus;   /* 1e9 = one CPU; converted to a CFS quota over a 100 ms period */
    int64_t cpu_quota;   /* microseconds; ignored when nano_cpus is set */
    int64_t cpu_period;  /* microseconds */
    int64_t cpu_shares;  /* v1 cpu.shares; converted to cpu.weight on v2 */
    int64_t pids_limit;  /* 0 or -1: unlimited */
    /* Start only (docker update leaves them); each fails clearly where the layout lacks it. */
    int64_t memory_reservation; /* bytes: v1 memory.soft_limit_in_bytes, v2 memory.low */
    bool oom_kill_disable;      /* v1 memory.oom_control; refused on v2 */
    int64_t memory_swappiness;  /* 0..100; -1: not set; refused on v2 */
    const char *cpuset_cpus, *cpuset_mems; /* NULL: the parent's */
    int64_t blkio_weight;       /* 10..1000; 0: not set */
    int64_t cpu_rt_period, cpu_rt_runtime; /* v1 cpu.rt_period_us / cpu.rt_runtime_us; 0: not set */
};

struct rt_rlimit {
    int resource; /* RLIMIT_* */
    uint64_t soft, hard;
};

/* A device node the container gets (and may use, by the devices cgroup). */
struct rt_device {
    const char *path; /* absolute, inside the container */
    char type;        /* 'c' or 'b' */
    unsigned major, minor;
    unsigned mode; /* permission bits of the node */
    uid_t uid;
    gid_t gid;
    const char *perms; /* cgroup permissions, subset of "rwm" */
};

struct rt_bind_mount {
    const char *source;      /* host path (a bind), or the device name for fstype */
    const char *destination; /* absolute path inside the container */
    bool readonly;
    const char *fstype;  /* NULL: bind source; "tmpfs": a new filesystem of that type */
    const char *data;    /* fstype only: mount data ("size=64m,mode=1777"), may be NULL */
    unsigned long flags; /* fstype only: MS_NOSUID, MS_NODEV, MS_NOEXEC, ... */
};

/* The stdio the first process (or an exec) gets as fds 0, 1, 2: pipe ends or
 * a pty slave the caller created; -1 means /dev/null. The caller keeps
 * ownership of these fds. */
struct rt_process {
    const char *const *argv; /* argv[0] is looked up in PATH from env when it has no '/' */
    const char *const *env;  /* NULL-terminated "K=V" list */
    const char *cwd;         /* absolute, inside the container; NULL: "/" */
    uid_t uid;
    gid_t gid;
    const gid_t *additional_gids;
    size_t n_additional_gids;
    bool tty;      /* stdio[0] is a pty slave: make it the controlling terminal */
    int stdio[3];
    const char *const *cap_add;  /* names like "NET_ADMIN" / "CAP_NET_ADMIN" / "ALL" */
    const char *const *cap_drop;
    bool privileged;        /* all capabilities, no seccomp */
    bool no_new_privileges; /* docker --security-opt no-new-privileges */
    bool seccomp_unconfined; /* --security-opt seccomp=unconfined */
    const char *seccomp_profile; /* a docker seccomp profile (JSON) instead of the default */
    const struct rt_rlimit *rlimits; /* --ulimit */
    size_t n_rlimits;
    bool oom_score_adj_set;
    int oom_score_adj;
};

/* A monitor that becomes the first process's parent (engine/monitor/): rt_start forks a copy
 * of the engine that sets itself up as a subreaper in a session of its own, clones the
 * container, and execs path with argv plus "--pid PID", handing it fds[i] as fd 3 + i (-1:
 * /dev/null), 0-2 on /dev/null and nothing else. It is not the engine's child (double fork),
 * and the container dies with it (PR_SET_PDEATHSIG). */
#define RT_MONITOR_FDS 7
struct rt_monitor {
    const char *path;
    const char *const *argv; /* at most RT_MONITOR_ARGS entries */
    int fds[RT_MONITOR_FDS];
};
#define RT_MONITOR_ARGS 24

struct rt_spec {
    const char *id; /* [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters */
    const struct rt_monitor *monitor; /* NULL: the caller is the first process's parent */

    /* Root filesystem: an overlay of lowerdirs (NULL-terminated, top first)
     * with upperdir/workdir, mounted at rootfs (an existing empty directory). Without
     * lowerdirs and workdir, upperdir is the whole rootfs and bound writable (vfs). */
    const char *const *lowerdirs;
    const char *upperdir;
    const char *workdir;
    const char *rootfs;
    bool readonly_rootfs;
    /* A devpts instance the caller mounted (and opens ptys in), bound at /dev/pts; NULL: a new
     * instance. A tty's fds are reopened through it, so the process sees /dev/pts/N. */
    const char *devpts;

    struct rt_process process;
    const char *hostname; /* NULL: keep the (new) UTS namespace's name */

    enum rt_network_mode network;
    const char *netns_path; /* RT_NET_PATH only */

    struct rt_resources resources;

    const struct rt_bind_mount *mounts; /* extra mounts (volumes, binds, tmpfs), in order */
    size_t n_mounts;

    /* NULL: docker's default lists; an empty list (just NULL) disables. Ignored
     * (nothing masked) for privileged containers. */
    const char *const *masked_paths;
    const char *const *readonly_paths;

    /* Namespaces beyond the network: the host's (no new one), or another container's (join the
     * namespace file, /proc/PID/ns/...). cgroupns: 0 the layout's default (private on v2),
     * 1 host, 2 private. */
    bool pid_host, ipc_host, uts_host;
    const char *pid_ns_path, *ipc_ns_path;
    int cgroupns;
    const char *domainname; /* NULL: none */
    uint64_t shm_size;      /* bytes of /dev/shm; 0: docker's 64 MiB */
    bool no_shm;            /* IpcMode none: no /dev/shm at all */
    const char *shm_source; /* a host directory bound at /dev/shm instead of a new tmpfs */
    const char *const *sysctls; /* "key=value", written under /proc/sys in the container */
    const struct rt_device *devices; /* created in /dev and allowed by the devices cgroup */
    size_t n_devices;
    const char *const *device_rules; /* more devices cgroup rules ("c 1:3 rwm") */
};

/* Mounts the rootfs, creates the cgroup, starts the first process and returns
 * once it has exec'd the user's binary. On failure everything made is undone.
 * Error codes: MERR_NOT_FOUND when the binary does not exist (docker maps it
 * to 127), MERR_PERM when it cannot be executed (126), MERR_INVALID for a bad
 * spec or an unsafe rootfs (a symlinked /proc, a cwd outside the rootfs). */
MUST_CHECK int rt_start(struct rt_runtime *rt, const struct rt_spec *spec, struct rt_container **out,
                        struct merr *err);

pid_t rt_container_pid(const struct rt_container *c);
/* The monitor's pid (rt_spec.monitor), 0 without one. */
pid_t rt_container_monitor_pid(const struct rt_container *c);
/* A pidfd for the first process (poll() readable once it exits), or -1. */
int rt_container_pidfd(const struct rt_container *c);
const char *rt_container_id(const struct rt_container *c);

/* What the caller persists to find a container again after an engine restart. */
#define RT_ID_MAX 128
struct rt_state {
    char id[RT_ID_MAX + 1];
    pid_t pid;
    uint64_t start_time; /* /proc/PID/stat field 22: defeats PID reuse */
    char rootfs[4096];   /* where the overlay is mounted */
};
void rt_container_state(const struct rt_container *c, struct rt_state *out);

/* After a restart: returns 1 and a handle when st->pid is still the same
 * process, 0 after cleaning up its leftovers (processes in its cgroup, the
 * cgroup directories, the rootfs mount) when it is gone. */
MUST_CHECK int rt_adopt(struct rt_runtime *rt, const struct rt_state *st, struct rt_container **out,
                        struct merr *err);

/* Signals the first process (pidfd_send_signal when available). */
MUST_CHECK int rt_kill(struct rt_container *c, int sig, struct merr *err);

/* Sends sig, waits up to timeout_ms for the first process to exit, then sends
 * SIGKILL and waits up to kill_timeout_ms. Does not reap. Returns 0 once it has
 * exited, MERR_TIMEOUT if it is still there. */
MUST_CHECK int rt_stop(struct rt_container *c, int sig, int timeout_ms, int kill_timeout_ms,
                       struct merr *err);

/* Whether the kernel OOM-killed a process of the container (call after the
 * first process exited, before rt_container_destroy). */
MUST_CHECK int rt_oom_killed(struct rt_container *c, bool *out, struct merr *err);

struct rt_stats {
    uint64_t memory_usage;         /* bytes */
    uint64_t memory_limit;         /* bytes; UINT64_MAX when unlimited */
    uint64_t memory_inactive_file; /* bytes docker subtracts from usage */
    uint64_t cpu_usage_ns;
    uint64_t pids_current;
    uint64_t pids_limit; /* UINT64_MAX when unlimited */
};
MUST_CHECK int rt_stats(struct rt_container *c, struct rt_stats *out, struct merr *err);

/* Reads a file of the container's cgroup (cgfile.c): controller "memory", "cpuacct", "cpu",
 * "blkio"... on v1, ignored on v2 (one directory); "" is the cgroup2 directory of a hybrid
 * layout. *out is malloc'd. MERR_NOT_FOUND when there is no such cgroup or file. */
MUST_CHECK int rt_cgroup_read(struct rt_container *c, const char *controller, const char *file,
                              char **out, struct merr *err);
bool rt_container_cgroup_v2(struct rt_container *c);

/* Updates the limits of a running container (docker update). */
MUST_CHECK int rt_update_resources(struct rt_container *c, const struct rt_resources *res,
                                   struct merr *err);

/* docker pause/unpause (freeze.c): the v1 freezer, else cgroup.freeze of cgroup v2; both
 * return once the kernel reports the cgroup frozen (or thawed), MERR_TIMEOUT after ~10 s. */
MUST_CHECK int rt_pause(struct rt_container *c, struct merr *err);
MUST_CHECK int rt_resume(struct rt_container *c, struct merr *err);

/* Starts a process inside a running container: joins its namespaces and its
 * cgroup, with the same capability/seccomp/fd hygiene as rt_start. extra_env
 * entries override process->env entries of the same name. *pid_out is a child
 * of the caller, which reaps it. */
MUST_CHECK int rt_exec(struct rt_container *c, const struct rt_process *process,
                       const char *const *extra_env, pid_t *pid_out, struct merr *err);

/* Kills whatever is left in the cgroup, removes the cgroup directories and
 * unmounts the rootfs, then frees c. The first process must have exited (and
 * should have been reaped). Frees c even when cleanup fails. */
MUST_CHECK int rt_container_destroy(struct rt_container *c, struct merr *err);

/* Mounts spec's overlay (lowerdirs, upperdir, workdir) at spec->rootfs in the caller's mount
 * namespace, as rt_start does: for a stopped container's files (docker cp), from a thread that
 * unshared its mount namespace so the mount dies with it (view.c). */
MUST_CHECK int rt_mount_rootfs(const struct rt_spec *spec, struct merr *err);

/* Frees the handle only, leaving the container running (engine shutdown). */
void rt_container_release(struct rt_container *c);
DEFINE_CLEANUP(struct rt_container, rt_container_release)

/* Whether name is a capability docker accepts ("NET_ADMIN", "CAP_NET_ADMIN", any case) or ALL. */
bool rt_cap_name_valid(const char *name);

/* waitpid() status -> docker exit code: the exit status, or 128 + signal. */
int rt_decode_status(int wstatus);

/* Resolves docker's User field ("name", "uid", "name:group", "uid:gid", ...,
 * "" for root) against the image's /etc/passwd and /etc/group contents
 * (either may be NULL when the file is missing). Numeric ids need no entry.
 * Errors: MERR_NOT_FOUND for an unknown name, MERR_INVALID for a bad spec. */
#define RT_USER_MAX_GROUPS 64
struct rt_user {
    uid_t uid;
    gid_t gid;
    gid_t additional_gids[RT_USER_MAX_GROUPS]; /* supplementary groups from /etc/group */
    size_t n_additional_gids;
    char home[256]; /* from passwd, "/" when unknown */
};
MUST_CHECK int rt_user_resolve(const char *user, const char *passwd, const char *group,
                               struct rt_user *out, struct merr *err);

#endif
