/* cgroup v1 manager: one directory <hierarchy>/<parent>/<id> per mounted
 * hierarchy the runtime uses (memory, cpu, cpuacct, pids, devices, freezer,
 * blkio; co-mounted ones share a directory). The hybrid manager is the same
 * plus a directory in the controller-less cgroup2 mount, so tools that only
 * look at cgroup2 (systemd) still see the container. */
#include "runtime-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int mkdir_ok(const char *path, struct merr *err)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create cgroup '%s'", path);
    return 0;
}

/* A new cpuset cgroup starts with no CPUs and no memory nodes: give it its parent's. */
static int cpuset_inherit(const char *dir, struct merr *err)
{
    static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
    char parent[512];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    for (size_t i = 0; i < 2; i++) {
        char cur[4096], up[4096];
        if (rt_read_file(dir, files[i], cur, sizeof cur, NULL) < 0)
            return 0; /* not a cpuset hierarchy */
        if (cur[0] != '\n' && cur[0] != '\0')
            continue;
        if (rt_read_file(parent, files[i], up, sizeof up, err) < 0 ||
            rt_write_file(dir, files[i], up, err) < 0)
            return -1;
    }
    return 0;
}

/* Creates (or finds) <mount>/<parent>/<id>, appending it to cg->dirs. */
static int add_dir(struct rt_cgroup *cg, const char *mount, const char *name, bool create,
                   struct merr *err)
{
    const struct rt_runtime *rt = cg->rt;
    size_t i = cg->n_dirs;
    if (i == RT_CG_MAX_DIRS)
        return merr_set(err, MERR_INTERNAL, 0, "too many cgroup directories");
    char *dir = cg->dirs[i];
    if (snprintf(dir, sizeof cg->dirs[i], "%s/%s/%s", mount, rt->cgroup_parent, cg->id) >=
        (int)sizeof cg->dirs[i])
        return merr_set(err, MERR_INVALID, ENAMETOOLONG, "cgroup path of '%s' too long", cg->id);
    if (create) {
        /* the parent may be nested ("a/b"): create each level */
        char *slash = dir + strlen(mount);
        while ((slash = strchr(slash + 1, '/')) != NULL) {
            *slash = '\0';
            int r = mkdir_ok(dir, err);
            if (r == 0)
                r = cpuset_inherit(dir, err);
            *slash = '/';
            if (r < 0)
                return -1;
        }
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return merr_set(err, MERR_IO, errno, "cannot create cgroup '%s'", dir);
        if (cpuset_inherit(dir, err) < 0)
            return -1;
    } else if (access(dir, F_OK) < 0) {
        return 0; /* adoption: only what still exists */
    }
    snprintf(cg->names[i], sizeof cg->names[i], "%s", name);
    cg->n_dirs++;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static int open_v1(struct rt_cgroup *cg, bool create, struct merr *err)
{
    const struct rt_runtime *rt = cg->rt;
    for (size_t h = 0; h < rt->n_hier; h++) {
        const struct rt_cg_hierarchy *hi = &rt->hier[h];
        size_t before = cg->n_dirs;
        if (add_dir(cg, hi->mount_point, base_name(hi->mount_point), create, err) < 0)
            return -1;
        if (cg->n_dirs == before)
            continue;
        int idx = (int)before;
        if (rt_option_present(hi->controllers, "memory"))
            cg->memory = idx;
        if (rt_option_present(hi->controllers, "cpu"))
            cg->cpu = idx;
        if (rt_option_present(hi->controllers, "cpuacct"))
            cg->cpuacct = idx;
        if (rt_option_present(hi->controllers, "pids"))
            cg->pids = idx;
        if (rt_option_present(hi->controllers, "devices"))
            cg->devices = idx;
        if (rt_option_present(hi->controllers, "freezer"))
            cg->freezer = idx;
        if (rt_option_present(hi->controllers, "cpuset"))
            cg->cpuset = idx;
        if (rt_option_present(hi->controllers, "blkio"))
            cg->blkio = idx;
    }
    return 0;
}

static int open_hybrid(struct rt_cgroup *cg, bool create, struct merr *err)
{
    if (open_v1(cg, create, err) < 0)
        return -1;
    size_t before = cg->n_dirs;
    if (add_dir(cg, cg->rt->unified, base_name(cg->rt->unified), create, err) < 0)
        return -1;
    if (cg->n_dirs > before)
        cg->unified = (int)before;
    return 0;
}

static int write_i64(const char *dir, const char *file, int64_t v, struct merr *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return rt_write_file(dir, file, buf, err);
}

static int set_resources_v1(struct rt_cgroup *cg, const struct rt_resources *res,
                            struct merr *err)
{
    if (cg->memory >= 0 && res->memory > 0) {
        const char *dir = cg->dirs[cg->memory];
        int64_t memsw = rt_memsw_limit(res);
        /* memsw must stay >= memory: when raising, raise memsw first. */
        uint64_t cur_memsw = 0;
        bool have_memsw = rt_read_u64(dir, "memory.memsw.limit_in_bytes", &cur_memsw, NULL) == 0;
        if (have_memsw && memsw != 0 && (memsw < 0 || (uint64_t)memsw > cur_memsw) &&
            write_i64(dir, "memory.memsw.limit_in_bytes", memsw, err) < 0)
            return -1;
        if (write_i64(dir, "memory.limit_in_bytes", res->memory, err) < 0)
            return -1;
        if (have_memsw && memsw > 0 && (uint64_t)memsw <= cur_memsw &&
            write_i64(dir, "memory.memsw.limit_in_bytes", memsw, err) < 0)
            return -1;
    }
    if (cg->cpu >= 0) {
        const char *dir = cg->dirs[cg->cpu];
        int64_t quota;
        uint64_t period;
        rt_cpu_quota_period(res, &quota, &period);
        if (res->cpu_shares > 0 && write_i64(dir, "cpu.shares", res->cpu_shares, err) < 0)
            return -1;
        if (period > 0 && write_i64(dir, "cpu.cfs_period_us", (int64_t)period, err) < 0)
            return -1;
        if (quota > 0 && write_i64(dir, "cpu.cfs_quota_us", quota, err) < 0)
            return -1;
    }
    if (cg->pids >= 0 && res->pids_limit != 0) {
        const char *dir = cg->dirs[cg->pids];
        int r = res->pids_limit > 0 ? write_i64(dir, "pids.max", res->pids_limit, err)
                                    : rt_write_file(dir, "pids.max", "max", err);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* docker's default device rules: the nodes it creates, mknod of anything,
 * and ptys. */
const char *const rt_default_device_rules[] = {
    "c *:* m",   "b *:* m",   "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
    "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
    NULL,
};

static int set_devices_v1(struct rt_cgroup *cg, bool allow_all, const char *const *extra,
                          struct merr *err)
{
    if (cg->devices < 0)
        return 0;
    const char *dir = cg->dirs[cg->devices];
    if (allow_all)
        return rt_write_file(dir, "devices.allow", "a", err);
    if (rt_write_file(dir, "devices.deny", "a", err) < 0)
        return -1;
    for (int i = 0; rt_default_device_rules[i] != NULL; i++) {
        if (rt_write_file(dir, "devices.allow", rt_default_device_rules[i], err) < 0)
            return -1;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (rt_write_file(dir, "devices.allow", extra[i], err) < 0)
            return -1;
    }
    return 0;
}

/* Hybrid: the v1 devices controller, and the same rules as a program on the cgroup2 side
 * (what a pure v2 host relies on; here a second fence, so its failure is only logged). */
static int set_devices_hybrid(struct rt_cgroup *cg, bool allow_all, const char *const *extra,
                              struct merr *err)
{
    if (set_devices_v1(cg, allow_all, extra, err) < 0)
        return -1;
    if (allow_all || cg->unified < 0)
        return 0;
    const char *const empty[] = { NULL };
    const char *const *const lists[] = { rt_default_device_rules, extra != NULL ? extra : empty,
                                         NULL };
    struct merr berr = MERR_INIT;
    if (rt_devices_bpf_attach(cg->dirs[cg->unified], lists, &berr) < 0)
        mlog_debug(cg->rt->log, "devices program of %s: %s", cg->id, berr.msg);
    return 0;
}

static int oom_killed_v1(struct rt_cgroup *cg, bool *out, struct merr *err)
{
    *out = false;
    if (cg->memory < 0)
        return merr_set(err, MERR_UNSUPPORTED, 0, "no memory cgroup for '%s'", cg->id);
    const char *dir = cg->dirs[cg->memory];
    char buf[512];
    if (rt_read_file(dir, "memory.oom_control", buf, sizeof buf, err) < 0)
        return -1;
    uint64_t v;
    if (rt_kv_lookup(buf, "oom_kill", &v) == 0) {
        *out = v > 0;
        return 0;
    }
    /* Kernels before 4.13 have no oom_kill counter: hitting the limit with
     * under_oom set is the best evidence left. */
    if (rt_kv_lookup(buf, "under_oom", &v) == 0 && v > 0) {
        *out = true;
        return 0;
    }
    if (rt_read_u64(dir, "memory.failcnt", &v, err) < 0)
        return -1;
    *out = v > 0;
    return 0;
}

static int stats_v1(struct rt_cgroup *cg, struct rt_stats *out, struct merr *err)
{
    *out = (struct rt_stats){ .memory_limit = UINT64_MAX, .pids_limit = UINT64_MAX };
    if (cg->memory >= 0) {
        const char *dir = cg->dirs[cg->memory];
        if (rt_read_u64(dir, "memory.usage_in_bytes", &out->memory_usage, err) < 0 ||
            rt_read_u64(dir, "memory.limit_in_bytes", &out->memory_limit, err) < 0)
            return -1;
        char buf[8192];
        if (rt_read_file(dir, "memory.stat", buf, sizeof buf, err) < 0)
            return -1;
        if (rt_kv_lookup(buf, "total_inactive_file", &out->memory_inactive_file) < 0)
            (void)rt_kv_lookup(buf, "inactive_file", &out->memory_inactive_file);
        /* "unlimited" in v1 is a huge page-rounded number */
        if (out->memory_limit >= (UINT64_C(1) << 62))
            out->memory_limit = UINT64_MAX;
    }
    if (cg->cpuacct >= 0 &&
        rt_read_u64(cg->dirs[cg->cpuacct], "cpuacct.usage", &out->cpu_usage_ns, err) < 0)
        return -1;
    if (cg->pids >= 0) {
        const char *dir = cg->dirs[cg->pids];
        if (rt_read_u64(dir, "pids.current", &out->pids_current, err) < 0 ||
            rt_read_u64(dir, "pids.max", &out->pids_limit, err) < 0)
            return -1;
    }
    return 0;
}

static void thaw_v1(struct rt_cgroup *cg)
{
    if (cg->freezer >= 0)
        rt_best_effort(rt_write_file(cg->dirs[cg->freezer], "freezer.state", "THAWED", NULL));
}

const struct rt_cgroup_ops rt_cgroup_v1_ops = {
    .name = "v1",
    .open = open_v1,
    .set_resources = set_resources_v1,
    .set_devices = set_devices_v1,
    .oom_killed = oom_killed_v1,
    .stats = stats_v1,
    .thaw = thaw_v1,
};

const struct rt_cgroup_ops rt_cgroup_hybrid_ops = {
    .name = "hybrid",
    .open = open_hybrid,
    .set_resources = set_resources_v1,
    .set_devices = set_devices_hybrid,
    .oom_killed = oom_killed_v1,
    .stats = stats_v1,
    .thaw = thaw_v1,
};
