/* cgroup v2 manager: one directory <root>/<parent>/<id> in the unified
 * hierarchy; the controllers the container needs are enabled in
 * cgroup.subtree_control of every level above it. The container also gets a
 * private cgroup namespace (see runtime.c), as docker does on v2. */
#include "runtime-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enables in dir/cgroup.subtree_control each wanted controller dir offers. */
static int enable_controllers(const char *dir, struct merr *err)
{
    static const char *const wanted[] = { "memory", "cpu", "pids", "io", "cpuset", NULL };
    char available[512];
    if (rt_read_file(dir, "cgroup.controllers", available, sizeof available, err) < 0)
        return -1;
    for (char *p = available; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\n')
            *p = ',';
    }
    for (int i = 0; wanted[i] != NULL; i++) {
        if (!rt_option_present(available, wanted[i]))
            continue;
        char op[32];
        snprintf(op, sizeof op, "+%s", wanted[i]);
        if (rt_write_file(dir, "cgroup.subtree_control", op, err) < 0)
            return -1;
    }
    return 0;
}

static int open_v2(struct rt_cgroup *cg, bool create, struct merr *err)
{
    const struct rt_runtime *rt = cg->rt;
    char *dir = cg->dirs[0];
    if (snprintf(dir, sizeof cg->dirs[0], "%s/%s/%s", rt->unified, rt->cgroup_parent, cg->id) >=
        (int)sizeof cg->dirs[0])
        return merr_set(err, MERR_INVALID, ENAMETOOLONG, "cgroup path of '%s' too long", cg->id);
    snprintf(cg->names[0], sizeof cg->names[0], "unified");
    if (!create) {
        if (access(dir, F_OK) == 0)
            cg->n_dirs = 1;
        cg->memory = cg->cpu = cg->cpuacct = cg->pids = cg->unified = cg->n_dirs == 1 ? 0 : -1;
        return 0;
    }
    /* root, then each level of the parent, gets subtree_control before its child */
    if (enable_controllers(rt->unified, err) < 0)
        return -1;
    char *slash = dir + strlen(rt->unified);
    while ((slash = strchr(slash + 1, '/')) != NULL) {
        *slash = '\0';
        int r = 0;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            r = merr_set(err, MERR_IO, errno, "cannot create cgroup '%s'", dir);
        if (r == 0)
            r = enable_controllers(dir, err);
        *slash = '/';
        if (r < 0)
            return -1;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create cgroup '%s'", dir);
    cg->n_dirs = 1;
    cg->memory = cg->cpu = cg->cpuacct = cg->pids = cg->unified = cg->cpuset = cg->blkio = 0;
    return 0;
}

static int write_limit(const char *dir, const char *file, int64_t v, struct merr *err)
{
    char buf[32];
    if (v < 0)
        snprintf(buf, sizeof buf, "max");
    else
        snprintf(buf, sizeof buf, "%" PRId64, v);
    return rt_write_file(dir, file, buf, err);
}

static int set_resources_v2(struct rt_cgroup *cg, const struct rt_resources *res,
                            struct merr *err)
{
    if (cg->n_dirs == 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "cgroup of '%s' is gone", cg->id);
    const char *dir = cg->dirs[0];
    if (res->memory > 0) {
        if (write_limit(dir, "memory.max", res->memory, err) < 0)
            return -1;
        int64_t swap = rt_swap_only_limit(res);
        /* memory.swap.max is absent without swap accounting: nothing to cap */
        char probe[2];
        if (swap != -2 && rt_read_file(dir, "memory.swap.max", probe, sizeof probe, NULL) >= 0 &&
            write_limit(dir, "memory.swap.max", swap, err) < 0)
            return -1;
    }
    int64_t quota;
    uint64_t period;
    rt_cpu_quota_period(res, &quota, &period);
    if (quota > 0 || period > 0) {
        char buf[64];
        if (quota > 0)
            snprintf(buf, sizeof buf, "%" PRId64 " %" PRIu64, quota, period > 0 ? period : 100000);
        else
            snprintf(buf, sizeof buf, "max %" PRIu64, period);
        if (rt_write_file(dir, "cpu.max", buf, err) < 0)
            return -1;
    }
    if (res->cpu_shares > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, rt_shares_to_weight((uint64_t)res->cpu_shares));
        if (rt_write_file(dir, "cpu.weight", buf, err) < 0)
            return -1;
    }
    if (res->pids_limit != 0 && write_limit(dir, "pids.max", res->pids_limit, err) < 0)
        return -1;
    return 0;
}

static int set_devices_v2(struct rt_cgroup *cg, bool allow_all, const char *const *extra,
                          struct merr *err)
{
    if (allow_all)
        return 0;
    if (cg->n_dirs == 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "cgroup of '%s' is gone", cg->id);
    const char *const empty[] = { NULL };
    const char *const *const lists[] = { rt_default_device_rules, extra != NULL ? extra : empty,
                                         NULL };
    return rt_devices_bpf_attach(cg->dirs[0], lists, err);
}

static int oom_killed_v2(struct rt_cgroup *cg, bool *out, struct merr *err)
{
    *out = false;
    if (cg->n_dirs == 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "cgroup of '%s' is gone", cg->id);
    char buf[512];
    if (rt_read_file(cg->dirs[0], "memory.events", buf, sizeof buf, err) < 0)
        return -1;
    uint64_t v;
    if (rt_kv_lookup(buf, "oom_kill", &v) < 0)
        return merr_set(err, MERR_CORRUPT, 0, "no oom_kill in '%s/memory.events'", cg->dirs[0]);
    *out = v > 0;
    return 0;
}

static int stats_v2(struct rt_cgroup *cg, struct rt_stats *out, struct merr *err)
{
    *out = (struct rt_stats){ .memory_limit = UINT64_MAX, .pids_limit = UINT64_MAX };
    if (cg->n_dirs == 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "cgroup of '%s' is gone", cg->id);
    const char *dir = cg->dirs[0];
    if (rt_read_u64(dir, "memory.current", &out->memory_usage, err) < 0 ||
        rt_read_u64(dir, "memory.max", &out->memory_limit, err) < 0)
        return -1;
    char buf[8192];
    if (rt_read_file(dir, "memory.stat", buf, sizeof buf, err) < 0)
        return -1;
    (void)rt_kv_lookup(buf, "inactive_file", &out->memory_inactive_file);
    if (rt_read_file(dir, "cpu.stat", buf, sizeof buf, err) < 0)
        return -1;
    uint64_t usec;
    if (rt_kv_lookup(buf, "usage_usec", &usec) == 0)
        out->cpu_usage_ns = usec * 1000;
    if (rt_read_u64(dir, "pids.current", &out->pids_current, err) < 0 ||
        rt_read_u64(dir, "pids.max", &out->pids_limit, err) < 0)
        return -1;
    return 0;
}

static void thaw_v2(struct rt_cgroup *cg)
{
    if (cg->n_dirs > 0)
        rt_best_effort(rt_write_file(cg->dirs[0], "cgroup.freeze", "0", NULL));
}

const struct rt_cgroup_ops rt_cgroup_v2_ops = {
    .name = "v2",
    .open = open_v2,
    .set_resources = set_resources_v2,
    .set_devices = set_devices_v2,
    .oom_killed = oom_killed_v2,
    .stats = stats_v2,
    .thaw = thaw_v2,
};
