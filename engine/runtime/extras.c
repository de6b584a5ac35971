/* The options beyond docker's default profile: cgroup settings only some layouts have
 * (memory reservation, OOM killer, swappiness, cpuset, blkio weight), device nodes and their
 * cgroup rules, rlimits, oom_score_adj and sysctls. What a layout lacks is refused by name,
 * never skipped. The child-side functions only make system calls (no allocation). */
#include "runtime-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- cgroups ---- */

static bool has_file(const char *dir, const char *file)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

static int write_num(const char *dir, const char *file, int64_t v, struct merr *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return rt_write_file(dir, file, buf, err);
}

static int no_control(const char *option, const char *what, struct merr *err)
{
    return merr_set(err, MERR_INVALID, 0,
                    "%s is not supported by machine-engine on this host: %s", option, what);
}

static int set_memory_extras(struct rt_cgroup *cg, bool v2, const struct rt_resources *res,
                             struct merr *err)
{
    if (res->memory_reservation <= 0 && !res->oom_kill_disable && res->memory_swappiness < 0)
        return 0;
    if (cg->memory < 0)
        return no_control("a memory option", "no memory cgroup controller", err);
    const char *dir = cg->dirs[cg->memory];
    if (res->memory_reservation > 0 &&
        write_num(dir, v2 ? "memory.low" : "memory.soft_limit_in_bytes", res->memory_reservation,
                  err) < 0)
        return -1;
    if (res->oom_kill_disable) {
        if (v2 || !has_file(dir, "memory.oom_control"))
            return no_control("OomKillDisable",
                              "cgroup v2 has no switch to turn the OOM killer off", err);
        if (rt_write_file(dir, "memory.oom_control", "1", err) < 0)
            return -1;
    }
    if (res->memory_swappiness >= 0) {
        if (v2 || !has_file(dir, "memory.swappiness"))
            return no_control("MemorySwappiness", "cgroup v2 has no per-cgroup swappiness", err);
        if (write_num(dir, "memory.swappiness", res->memory_swappiness, err) < 0)
            return -1;
    }
    return 0;
}

static int set_cpuset(struct rt_cgroup *cg, const struct rt_resources *res, struct merr *err)
{
    if (res->cpuset_cpus == NULL && res->cpuset_mems == NULL)
        return 0;
    const char *dir = cg->cpuset >= 0 ? cg->dirs[cg->cpuset] : NULL;
    if (dir == NULL || !has_file(dir, "cpuset.cpus"))
        return no_control("CpusetCpus/CpusetMems", "no cpuset cgroup controller", err);
    /* the kernel says EINVAL for CPUs or nodes the parent does not have */
    if (res->cpuset_cpus != NULL && rt_write_file(dir, "cpuset.cpus", res->cpuset_cpus, err) < 0)
        return merr_prefix(err, "Requested CPUs are not available - requested %s",
                           res->cpuset_cpus);
    if (res->cpuset_mems != NULL && rt_write_file(dir, "cpuset.mems", res->cpuset_mems, err) < 0)
        return merr_prefix(err, "Requested memory nodes are not available - requested %s",
                           res->cpuset_mems);
    return 0;
}

static int set_blkio_weight(struct rt_cgroup *cg, bool v2, const struct rt_resources *res,
                            struct merr *err)
{
    if (res->blkio_weight <= 0)
        return 0;
    const char *dir = cg->blkio >= 0 ? cg->dirs[cg->blkio] : NULL;
    /* Only the BFQ (and the old CFQ) I/O scheduler has a weight. */
    static const char *const v1_files[] = { "blkio.weight", "blkio.bfq.weight", NULL };
    static const char *const v2_files[] = { "io.bfq.weight", "io.weight", NULL };
    for (const char *const *f = v2 ? v2_files : v1_files; dir != NULL && *f != NULL; f++) {
        if (!has_file(dir, *f))
            continue;
        int64_t w = res->blkio_weight;
        if (strcmp(*f, "io.weight") == 0) /* 1..10000, 100 the default, like blkio's 500 */
            w = 1 + ((w - 10) * 9999) / 990;
        char buf[32];
        snprintf(buf, sizeof buf, strcmp(*f, "io.weight") == 0 ? "default %" PRId64 : "%" PRId64,
                 w);
        return rt_write_file(dir, *f, buf, err);
    }
    return no_control("BlkioWeight", "no I/O scheduler with weights (blkio.weight, io.weight)",
                      err);
}

/* As runc: the period first, then the runtime; the kernel refuses (EINVAL) a runtime the parent
 * cgroup has no budget for, as with dockerd without --cpu-rt-runtime. */
static int set_cpu_rt(struct rt_cgroup *cg, bool v2, const struct rt_resources *res,
                      struct merr *err)
{
    if (res->cpu_rt_period == 0 && res->cpu_rt_runtime == 0)
        return 0;
    const char *dir = cg->cpu >= 0 ? cg->dirs[cg->cpu] : NULL;
    if (v2 || dir == NULL || !has_file(dir, "cpu.rt_runtime_us"))
        return no_control("CpuRealtimePeriod/CpuRealtimeRuntime",
                          "no real-time group scheduling (cgroup v1 cpu.rt_runtime_us)", err);
    if (res->cpu_rt_period != 0 && write_num(dir, "cpu.rt_period_us", res->cpu_rt_period, err) < 0)
        return -1;
    if (res->cpu_rt_runtime != 0 &&
        write_num(dir, "cpu.rt_runtime_us", res->cpu_rt_runtime, err) < 0)
        return -1;
    return 0;
}

int rt_cgroup_set_extras(struct rt_cgroup *cg, const struct rt_resources *res, struct merr *err)
{
    bool v2 = cg->rt->mode == RT_CGROUP_V2;
    if (set_memory_extras(cg, v2, res, err) < 0 || set_cpuset(cg, res, err) < 0 ||
        set_blkio_weight(cg, v2, res, err) < 0 || set_cpu_rt(cg, v2, res, err) < 0)
        return -1;
    return 0;
}

char **rt_device_rules(const struct rt_spec *spec)
{
    size_t n = spec->n_devices, k = 0;
    while (spec->device_rules != NULL && spec->device_rules[k] != NULL)
        k++;
    /* one block: the pointer array, then each rule's text */
    size_t size = (n + k + 1) * sizeof(char *) + n * 48;
    for (size_t i = 0; i < k; i++)
        size += strlen(spec->device_rules[i]) + 1;
    char **out = calloc(1, size);
    if (out == NULL)
        abort();
    char *text = (char *)(out + n + k + 1);
    for (size_t i = 0; i < n; i++) {
        const struct rt_device *d = &spec->devices[i];
        out[i] = text;
        text += snprintf(text, 48, "%c %u:%u %s", d->type, d->major, d->minor,
                         d->perms != NULL ? d->perms : "rwm") + 1;
    }
    for (size_t i = 0; i < k; i++) {
        out[n + i] = text;
        text = stpcpy(text, spec->device_rules[i]) + 1;
    }
    return out;
}

/* ---- the child ---- */

int rt_child_apply_limits(const struct rt_process *p, struct merr *err)
{
    for (size_t i = 0; i < p->n_rlimits; i++) {
        struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
        if (syscall(SYS_prlimit64, 0, p->rlimits[i].resource, &rl, NULL) < 0)
            return merr_set(err, MERR_INVALID, errno, "cannot set ulimit %d to %llu:%llu",
                            p->rlimits[i].resource, (unsigned long long)rl.rlim_cur,
                            (unsigned long long)rl.rlim_max);
    }
    if (p->oom_score_adj_set) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "%d", p->oom_score_adj);
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        ssize_t w = fd >= 0 ? write(fd, buf, (size_t)len) : -1;
        int saved = errno;
        if (fd >= 0)
            close(fd);
        if (w != len)
            return merr_set(err, MERR_IO, saved, "cannot set oom_score_adj to %d",
                            p->oom_score_adj);
    }
    return 0;
}

int rt_child_sysctls(const struct rt_spec *spec, struct merr *err)
{
    for (size_t i = 0; spec->sysctls != NULL && spec->sysctls[i] != NULL; i++) {
        const char *kv = spec->sysctls[i];
        const char *eq = strchr(kv, '=');
        char path[512];
        size_t klen = eq != NULL ? (size_t)(eq - kv) : 0;
        if (eq == NULL || klen == 0 || klen + sizeof "/proc/sys/" >= sizeof path)
            return merr_set(err, MERR_INVALID, 0, "invalid sysctl '%s'", kv);
        size_t used = (size_t)snprintf(path, sizeof path, "/proc/sys/");
        for (size_t k = 0; k < klen; k++)
            path[used++] = kv[k] == '.' ? '/' : kv[k];
        path[used] = '\0';
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t w = fd >= 0 ? write(fd, eq + 1, strlen(eq + 1)) : -1;
        int saved = errno;
        if (fd >= 0)
            close(fd);
        if (w < 0)
            return merr_set(err, MERR_INVALID, saved, "cannot set sysctl %.*s", (int)klen, kv);
    }
    return 0;
}

static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC,
                            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
                                       RESOLVE_NO_SYMLINKS };
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* mkdir -p of the parents of a device path under the container's /dev (no symlinks). */
static int device_parent(int rootfd, const char *path, char *name, size_t name_size,
                         struct merr *err)
{
    char dir[256];
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof dir ||
        strlen(slash + 1) >= name_size || slash[1] == '\0')
        return merr_set(err, MERR_INVALID, 0, "invalid device path '%s'", path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    snprintf(name, name_size, "%s", slash + 1);
    for (char *p = dir + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            int fd = open_in_root(rootfd, dir, O_PATH | O_DIRECTORY);
            if (fd < 0) {
                char *base = strrchr(dir, '/');
                *base = '\0';
                int parent = open_in_root(rootfd, dir[0] ? dir : "/", O_PATH | O_DIRECTORY);
                *base = '/';
                if (parent < 0 || (mkdirat(parent, base + 1, 0755) < 0 && errno != EEXIST)) {
                    int saved = errno;
                    if (parent >= 0)
                        close(parent);
                    return merr_set(err, MERR_IO, saved, "cannot create '%s'", dir);
                }
                close(parent);
            } else {
                close(fd);
            }
            if (end)
                break;
            *p = '/';
        }
    }
    int fd = open_in_root(rootfd, dir, O_PATH | O_DIRECTORY);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", dir);
    return fd;
}

int rt_child_make_devices(int rootfd, const struct rt_spec *spec, struct merr *err)
{
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct rt_device *d = &spec->devices[i];
        if (d->path == NULL || strncmp(d->path, "/dev/", 5) != 0 || strstr(d->path, "/..") != NULL)
            return merr_set(err, MERR_INVALID, 0, "device path '%s' is not under /dev",
                            d->path != NULL ? d->path : "");
        char name[256];
        int dirfd = device_parent(rootfd, d->path, name, sizeof name, err);
        if (dirfd < 0)
            return -1;
        mode_t type = d->type == 'b' ? S_IFBLK : S_IFCHR;
        unlinkat(dirfd, name, 0); /* a default node of the same name (/dev/null) gives way */
        int r = mknodat(dirfd, name, type | (d->mode & 07777), makedev(d->major, d->minor));
        int saved = errno;
        if (r == 0 && fchownat(dirfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
            saved = errno, r = -1;
        if (r == 0 && fchmodat(dirfd, name, d->mode & 07777, 0) < 0) /* umask-free */
            saved = errno, r = -1;
        close(dirfd);
        if (r < 0)
            return merr_set(err, MERR_IO, saved, "cannot create device '%s'", d->path);
    }
    return 0;
}
