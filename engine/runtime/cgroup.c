/* The runtime context (cgroup layout detected once) and what every cgroup
 * manager shares: file helpers, attaching a process, killing what is left and
 * removing the directories. Layout-specific work is in cgroup-v1.c (v1 and
 * hybrid) and cgroup-v2.c, reached through struct rt_cgroup_ops. */
#include "runtime-priv.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define RT_READ_ALL_MAX (8u << 20)

int rt_read_all(const char *path, char **out, struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", path);
    size_t cap = 16384, len = 0;
    auto_free char *buf = malloc(cap);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
    for (;;) {
        if (len + 1 == cap) {
            if (cap >= RT_READ_ALL_MAX)
                return merr_set(err, MERR_IO, EFBIG, "cannot read '%s'", path);
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = steal_pointer(&buf);
    return 0;
}

int rt_write_file(const char *dir, const char *file, const char *value, struct merr *err)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return merr_set(err, MERR_INVALID, ENAMETOOLONG, "cannot write '%s/%s'", dir, file);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC); /* O_TRUNC: as runc */
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", path);
    size_t len = strlen(value);
    ssize_t n;
    do
        n = write(fd, value, len);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (n < 0)
        return merr_set(err, saved == EINVAL ? MERR_INVALID : MERR_IO, saved,
                        "cannot write '%s' to '%s'", value, path);
    return 0;
}

ssize_t rt_read_file(const char *dir, const char *file, char *buf, size_t size, struct merr *err)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return merr_set(err, MERR_INVALID, ENAMETOOLONG, "cannot read '%s/%s'", dir, file);
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", path);
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

int rt_read_u64(const char *dir, const char *file, uint64_t *out, struct merr *err)
{
    char buf[64];
    if (rt_read_file(dir, file, buf, sizeof buf, err) < 0)
        return -1;
    if (strncmp(buf, "max", 3) == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || errno != 0 || (*end != '\n' && *end != '\0'))
        return merr_set(err, MERR_CORRUPT, 0, "'%s/%s' is not a number", dir, file);
    *out = v;
    return 0;
}

/* ---- runtime context ------------------------------------------------------ */

/* The controllers a container gets a v1 directory in. A fresh cpuset cgroup has no CPUs:
 * cgroup-v1.c copies cpuset.cpus/mems down from the parent at every level it creates. */
static bool hierarchy_wanted(const char *controllers)
{
    static const char *const wanted[] = { "memory", "cpu",   "cpuacct", "pids",  "devices",
                                          "freezer", "blkio", "cpuset",  NULL };
    for (int i = 0; wanted[i] != NULL; i++) {
        if (rt_option_present(controllers, wanted[i]))
            return true;
    }
    return false;
}

static bool parent_valid(const char *parent)
{
    if (parent[0] == '\0' || parent[0] == '/' || strstr(parent, "//") != NULL)
        return false;
    /* slash-separated components, each a valid id (so no "." or "..") */
    char copy[128];
    if (snprintf(copy, sizeof copy, "%s", parent) >= (int)sizeof copy)
        return false;
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
        if (!rt_id_valid(c))
            return false;
    }
    return parent[strlen(parent) - 1] != '/';
}

int rt_runtime_init_from(struct rt_runtime *rt, const struct rt_runtime_config *config,
                         enum rt_cgroup_mode mode, char *mountinfo, struct merr *err)
{
    const char *root = config != NULL && config->cgroup_root != NULL ? config->cgroup_root
                                                                     : "/sys/fs/cgroup";
    const char *parent = config != NULL && config->cgroup_parent != NULL ? config->cgroup_parent
                                                                         : "machine-engine";
    *rt = (struct rt_runtime){ .mode = mode,
                               .log = config != NULL ? config->log : NULL,
                               .seccomp_lock = PTHREAD_MUTEX_INITIALIZER };
    if (root[0] != '/' || snprintf(rt->cgroup_root, sizeof rt->cgroup_root, "%s", root) >=
                              (int)sizeof rt->cgroup_root)
        return merr_set(err, MERR_INVALID, 0, "invalid cgroup root '%s'", root);
    if (!parent_valid(parent))
        return merr_set(err, MERR_INVALID, 0, "invalid cgroup parent '%s'", parent);
    snprintf(rt->cgroup_parent, sizeof rt->cgroup_parent, "%s", parent);

    if (mode == RT_CGROUP_V2) {
        snprintf(rt->unified, sizeof rt->unified, "%s", rt->cgroup_root);
        rt->cg_ops = &rt_cgroup_v2_ops;
        return 0;
    }
    struct rt_cg_hierarchy all[RT_CG_MAX_HIERARCHIES];
    int n = rt_cg_hierarchies_parse(mountinfo, rt->cgroup_root, all, RT_CG_MAX_HIERARCHIES,
                                    rt->unified, sizeof rt->unified, err);
    if (n < 0)
        return merr_prefix(err, "cannot list cgroup hierarchies");
    for (int i = 0; i < n; i++) {
        if (hierarchy_wanted(all[i].controllers))
            rt->hier[rt->n_hier++] = all[i];
    }
    if (rt->n_hier == 0)
        return merr_set(err, MERR_UNSUPPORTED, 0, "no usable cgroup v1 controller under '%s'",
                        rt->cgroup_root);
    if (mode == RT_CGROUP_HYBRID && rt->unified[0] == '\0')
        rt->mode = RT_CGROUP_V1;
    rt->cg_ops = rt->mode == RT_CGROUP_HYBRID ? &rt_cgroup_hybrid_ops : &rt_cgroup_v1_ops;
    return 0;
}

static unsigned long fstype_of(const char *path)
{
    struct statfs st;
    if (statfs(path, &st) < 0)
        return 0;
    return (unsigned long)st.f_type;
}

int rt_runtime_new(const struct rt_runtime_config *config, struct rt_runtime **out,
                   struct merr *err)
{
    const char *root = config != NULL && config->cgroup_root != NULL ? config->cgroup_root
                                                                     : "/sys/fs/cgroup";
    char unified[300];
    snprintf(unified, sizeof unified, "%s/unified", root);
    enum rt_cgroup_mode mode;
    if (config == NULL || config->cgroup_root == NULL) {
        if (rt_cgroupfs_ensure(root, config != NULL ? config->log : NULL, err) < 0)
            return -1;
    }
    unsigned long root_type = fstype_of(root);
    if (root_type == 0)
        return merr_set(err, MERR_UNSUPPORTED, errno, "cannot inspect cgroup root '%s'", root);
    if (rt_cgroup_mode_detect(root_type, fstype_of(unified), &mode, err) < 0)
        return -1;
    auto_free char *mountinfo = NULL;
    if (rt_read_all("/proc/self/mountinfo", &mountinfo, err) < 0)
        return -1;
    auto_free struct rt_runtime *rt = malloc(sizeof *rt);
    if (rt == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate runtime");
    if (rt_runtime_init_from(rt, config, mode, mountinfo, err) < 0)
        return -1;
    *out = steal_pointer(&rt);
    return 0;
}

void rt_runtime_free(struct rt_runtime *rt)
{
    if (rt == NULL)
        return;
    rt_bpf_free(rt->seccomp_cache);
    free(rt);
}

enum rt_cgroup_mode rt_runtime_cgroup_mode(const struct rt_runtime *rt)
{
    return rt->mode;
}

bool rt_runtime_cpu_rt(const struct rt_runtime *rt)
{
    if (rt->mode == RT_CGROUP_V2) /* cgroup v2 has no real-time group scheduling */
        return false;
    for (size_t h = 0; h < rt->n_hier; h++) {
        if (!rt_option_present(rt->hier[h].controllers, "cpu"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/cpu.rt_period_us", rt->hier[h].mount_point);
        return access(path, F_OK) == 0; /* CONFIG_RT_GROUP_SCHED */
    }
    return false;
}

/* ---- per-container cgroup ------------------------------------------------- */

int rt_cgroup_open(const struct rt_runtime *rt, const char *id, bool create, struct rt_cgroup **out,
                   struct merr *err)
{
    if (!rt_id_valid(id))
        return merr_set(err, MERR_INVALID, 0, "invalid container id '%s'", id != NULL ? id : "");
    auto_free struct rt_cgroup *cg = calloc(1, sizeof *cg);
    if (cg == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate cgroup");
    cg->rt = rt;
    snprintf(cg->id, sizeof cg->id, "%s", id);
    cg->memory = cg->cpu = cg->cpuacct = cg->pids = cg->devices = cg->freezer = cg->unified = -1;
    cg->cpuset = cg->blkio = -1;
    if (rt->cg_ops->open(cg, create, err) < 0) {
        if (create) {
            struct rt_cgroup *half = steal_pointer(&cg);
            rt_best_effort(rt_cgroup_destroy(half, NULL));
            rt_cgroup_free(half);
        }
        return merr_prefix(err, "cannot set up cgroup of '%s'", id);
    }
    *out = steal_pointer(&cg);
    return 0;
}

void rt_cgroup_free(struct rt_cgroup *cg)
{
    free(cg);
}

int rt_cgroup_attach(const struct rt_cgroup *cg, pid_t pid, struct merr *err)
{
    char value[32];
    snprintf(value, sizeof value, "%d", (int)pid);
    for (size_t i = 0; i < cg->n_dirs; i++) {
        if (rt_write_file(cg->dirs[i], "cgroup.procs", value, err) < 0)
            return -1;
    }
    return 0;
}

bool rt_cgroup_exists(const struct rt_cgroup *cg)
{
    for (size_t i = 0; i < cg->n_dirs; i++) {
        if (access(cg->dirs[i], F_OK) == 0)
            return true;
    }
    return false;
}

/* SIGKILLs every pid listed in dir/cgroup.procs; returns how many were listed. */
static int kill_listed(const char *dir)
{
    char buf[65536];
    if (rt_read_file(dir, "cgroup.procs", buf, sizeof buf, NULL) < 0)
        return 0;
    int n = 0;
    for (char *p = buf; *p != '\0';) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0) {
            kill((pid_t)pid, SIGKILL);
            n++;
        }
        p = end;
        while (*p == '\n')
            p++;
    }
    return n;
}

/* Nested cgroups a container made for itself (an engine inside it): its subdirectories, whose
 * processes are killed, then removed deepest first. A cgroup with children can neither be
 * removed nor, on v1, given "a" in devices.allow at the next start. Bounded in depth. */
#define CG_MAX_DEPTH 16
static int for_each_subdir(const char *dir, int depth, int (*fn)(const char *sub, int depth))
{
    if (depth >= CG_MAX_DEPTH)
        return 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < (int)sizeof sub)
            n += fn(sub, depth + 1);
    }
    closedir(d);
    return n;
}

static int kill_tree(const char *dir, int depth)
{
    return kill_listed(dir) + for_each_subdir(dir, depth, kill_tree);
}

static int rmdir_tree(const char *dir, int depth)
{
    for_each_subdir(dir, depth, rmdir_tree);
    for (int tries = 0; depth > 0 && rmdir(dir) < 0 && errno == EBUSY && tries < 100; tries++)
        clock_sleep_ms(10);
    return 0;
}

int rt_cgroup_destroy(struct rt_cgroup *cg, struct merr *err)
{
    if (cg == NULL)
        return 0;
    if (cg->rt->cg_ops->thaw != NULL)
        cg->rt->cg_ops->thaw(cg);
    /* v2 >= 5.14 kills the whole subtree atomically. */
    if (cg->rt->mode == RT_CGROUP_V2 && cg->n_dirs > 0)
        rt_best_effort(rt_write_file(cg->dirs[0], "cgroup.kill", "1", NULL));
    /* Kill until empty: a process may fork while we read the list. ~5 s max. */
    for (int round = 0; round < 500; round++) {
        int listed = 0;
        for (size_t i = 0; i < cg->n_dirs; i++)
            listed += kill_tree(cg->dirs[i], 0);
        if (listed == 0)
            break;
        clock_sleep_ms(10);
    }
    int rc = 0;
    for (size_t i = cg->n_dirs; i-- > 0;) {
        int tries = 0;
        rmdir_tree(cg->dirs[i], 0);
        /* A killed task leaves its cgroup a little after it dies: retry EBUSY. */
        while (rmdir(cg->dirs[i]) < 0) {
            if (errno == ENOENT)
                break;
            if ((errno != EBUSY && errno != EAGAIN) || ++tries == 200) {
                rc = merr_set(err, MERR_BUSY, errno, "cannot remove cgroup '%s'", cg->dirs[i]);
                break;
            }
            clock_sleep_ms(10);
        }
    }
    return rc;
}
