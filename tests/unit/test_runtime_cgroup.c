/* Unit tests of the cgroup managers without root: the runtime context is
 * built from captured mountinfo samples (rt_runtime_init_from), and the
 * managers write into a fake cgroup tree of plain files in a temp dir, whose
 * contents are then checked. */
#define MACHINE_RUNTIME_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime-priv.h"

static char root[256];

static void put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* make parents */
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void get(const char *rel, char *buf, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/test-runtime-cgroup-XXXXXX");
    return mkdtemp(root) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* A mountinfo sample (this machine's hybrid layout) moved under root. */
static char *hybrid_mountinfo(void)
{
    static const char *const lines[][2] = {
        { "cpu", "rw,cpu" },         { "cpuacct", "rw,cpuacct" }, { "cpuset", "rw,cpuset" },
        { "memory", "rw,memory" },   { "devices", "rw,devices" }, { "freezer", "rw,freezer" },
        { "blkio", "rw,blkio" },     { "pids", "rw,pids" },       { "systemd", "rw,name=systemd" },
    };
    char *buf = malloc(8192);
    assert_non_null(buf);
    int n = snprintf(buf, 8192, "31 23 0:28 / %s rw,relatime - tmpfs tmpfs rw,mode=755\n", root);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        n += snprintf(buf + n, 8192 - (size_t)n,
                      "%zu 31 0:%zu / %s/%s rw,relatime - cgroup cgroup %s\n", 32 + i, 29 + i,
                      root, lines[i][0], lines[i][1]);
    snprintf(buf + n, 8192 - (size_t)n,
             "41 31 0:38 / %s/unified rw,relatime - cgroup2 cgroup2 rw\n", root);
    return buf;
}

static void test_selects_manager(void **state)
{
    (void)state;
    struct rt_runtime rt;
    struct rt_runtime_config cfg = { .cgroup_root = root };
    char *mi = hybrid_mountinfo();
    assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_HYBRID, mi, NULL), 0);
    assert_ptr_equal(rt.cg_ops, &rt_cgroup_hybrid_ops);
    assert_int_equal(rt.n_hier, 8); /* name=systemd is not used */
    assert_string_equal(rt.cgroup_parent, "machine-engine");
    free(mi);

    /* the same hierarchies without a cgroup2 mount: plain v1 */
    mi = hybrid_mountinfo();
    *strstr(mi, "41 31") = '\0';
    assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_HYBRID, mi, NULL), 0);
    assert_ptr_equal(rt.cg_ops, &rt_cgroup_v1_ops);
    assert_int_equal(rt.mode, RT_CGROUP_V1);
    free(mi);

    char empty[] = "";
    assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_V2, empty, NULL), 0);
    assert_ptr_equal(rt.cg_ops, &rt_cgroup_v2_ops);
    assert_string_equal(rt.unified, root);

    struct merr err = MERR_INIT;
    assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_V1, empty, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);

    static const char *const bad_parents[] = { "../escape", "/abs", "a//b", "a/", "a/../b", "" };
    for (size_t i = 0; i < sizeof bad_parents / sizeof bad_parents[0]; i++) {
        cfg.cgroup_parent = bad_parents[i];
        assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_V2, empty, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_v1_limits(void **state)
{
    (void)state;
    static const char *const files[][2] = {
        { "memory/engine/c1/memory.limit_in_bytes", "9223372036854771712\n" },
        { "memory/engine/c1/memory.memsw.limit_in_bytes", "9223372036854771712\n" },
        { "memory/engine/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n" },
        { "memory/engine/c1/cgroup.procs", "" },
        { "cpu/engine/c1/cpu.shares", "1024\n" },
        { "cpu/engine/c1/cpu.cfs_period_us", "100000\n" },
        { "cpu/engine/c1/cpu.cfs_quota_us", "-1\n" },
        { "pids/engine/c1/pids.max", "max\n" },
        { "devices/engine/c1/devices.deny", "" },
        { "devices/engine/c1/devices.allow", "" },
        { "memory/engine/c1/memory.soft_limit_in_bytes", "9223372036854771712\n" },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        put(files[i][0], files[i][1]);
    static const char *const mounts[] = { "cpuacct", "freezer", "blkio", "unified", "cpuset" };
    for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", root, mounts[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    struct rt_runtime rt;
    struct rt_runtime_config cfg = { .cgroup_root = root, .cgroup_parent = "engine" };
    char *mi = hybrid_mountinfo();
    assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_HYBRID, mi, NULL), 0);
    free(mi);

    struct rt_cgroup *cg = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroup_open(&rt, "c1", true, &cg, &err), 0);
    assert_int_equal(cg->n_dirs, 9); /* 8 hierarchies + unified */
    assert_true(cg->memory >= 0 && cg->pids >= 0 && cg->cpu >= 0 && cg->unified >= 0);
    assert_string_equal(cg->names[cg->memory], "memory");

    struct rt_resources res = {
        .memory = 16 << 20, .nano_cpus = 500000000, .cpu_shares = 512, .pids_limit = 64
    };
    assert_int_equal(rt.cg_ops->set_resources(cg, &res, &err), 0);
    static const char *const extra[] = { "b 7:* r", NULL };
    assert_int_equal(rt.cg_ops->set_devices(cg, false, extra, &err), 0);
    char buf[256];
    get("devices/engine/c1/devices.allow", buf, sizeof buf);
    assert_string_equal(buf, "b 7:* r"); /* the extra rules come last */
    struct rt_resources extras = { .memory_reservation = 64 << 20, .oom_kill_disable = true,
                                   .memory_swappiness = -1 };
    assert_int_equal(rt_cgroup_set_extras(cg, &extras, &err), 0);
    get("memory/engine/c1/memory.soft_limit_in_bytes", buf, sizeof buf);
    assert_string_equal(buf, "67108864");
    get("memory/engine/c1/memory.oom_control", buf, sizeof buf);
    assert_string_equal(buf, "1");
    put("memory/engine/c1/memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 2\n");
    extras = (struct rt_resources){ .memory_swappiness = -1, .blkio_weight = 300 };
    assert_int_equal(rt_cgroup_set_extras(cg, &extras, &err), -1); /* no blkio.weight here */
    assert_int_equal(err.code, MERR_INVALID);
    get("memory/engine/c1/memory.limit_in_bytes", buf, sizeof buf);
    assert_string_equal(buf, "16777216");
    get("memory/engine/c1/memory.memsw.limit_in_bytes", buf, sizeof buf);
    assert_string_equal(buf, "16777216"); /* no swap on top, like docker */
    get("cpu/engine/c1/cpu.shares", buf, sizeof buf);
    assert_string_equal(buf, "512");
    get("cpu/engine/c1/cpu.cfs_period_us", buf, sizeof buf);
    assert_string_equal(buf, "100000");
    get("cpu/engine/c1/cpu.cfs_quota_us", buf, sizeof buf);
    assert_string_equal(buf, "50000");
    get("pids/engine/c1/pids.max", buf, sizeof buf);
    assert_string_equal(buf, "64");
    get("devices/engine/c1/devices.deny", buf, sizeof buf);
    assert_string_equal(buf, "a");

    bool oom = false;
    assert_int_equal(rt.cg_ops->oom_killed(cg, &oom, &err), 0);
    assert_true(oom);

    assert_int_equal(rt_cgroup_attach(cg, 4242, &err), -1); /* cpu/cgroup.procs missing */
    assert_int_equal(err.code, MERR_NOT_FOUND);
    rt_cgroup_free(cg);

    /* adoption opens only what exists */
    assert_int_equal(rt_cgroup_open(&rt, "c2", false, &cg, &err), 0);
    assert_int_equal(cg->n_dirs, 0);
    assert_false(rt_cgroup_exists(cg));
    rt_cgroup_free(cg);

    assert_int_equal(rt_cgroup_open(&rt, "../x", true, &cg, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_v2_limits(void **state)
{
    (void)state;
    char v2[300];
    snprintf(v2, sizeof v2, "%s/v2", root);
    static const char *const files[][2] = {
        { "v2/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n" },
        { "v2/cgroup.subtree_control", "" },
        { "v2/a/cgroup.controllers", "cpu io memory pids\n" },
        { "v2/a/cgroup.subtree_control", "" },
        { "v2/a/b/cgroup.controllers", "cpu memory pids\n" },
        { "v2/a/b/cgroup.subtree_control", "" },
        { "v2/a/b/c1/memory.max", "max\n" },
        { "v2/a/b/c1/memory.swap.max", "max\n" },
        { "v2/a/b/c1/cpu.max", "max 100000\n" },
        { "v2/a/b/c1/cpu.weight", "100\n" },
        { "v2/a/b/c1/pids.max", "max\n" },
        { "v2/a/b/c1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n" },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        put(files[i][0], files[i][1]);
    struct rt_runtime rt;
    struct rt_runtime_config cfg = { .cgroup_root = v2, .cgroup_parent = "a/b" };
    char empty[] = "";
    assert_int_equal(rt_runtime_init_from(&rt, &cfg, RT_CGROUP_V2, empty, NULL), 0);

    struct rt_cgroup *cg = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroup_open(&rt, "c1", true, &cg, &err), 0);
    assert_int_equal(cg->n_dirs, 1);
    char buf[256];
    /* each level enables, one write at a time, what it offers (last write wins
     * in a plain file) */
    get("v2/cgroup.subtree_control", buf, sizeof buf);
    assert_string_equal(buf, "+cpuset");
    get("v2/a/b/cgroup.subtree_control", buf, sizeof buf);
    assert_string_equal(buf, "+pids");

    struct rt_resources res = { .memory = 32 << 20, .memory_swap = 48 << 20,
                                .cpu_quota = 25000, .cpu_period = 50000,
                                .cpu_shares = 1024, .pids_limit = -1 };
    assert_int_equal(rt.cg_ops->set_resources(cg, &res, &err), 0);
    get("v2/a/b/c1/memory.max", buf, sizeof buf);
    assert_string_equal(buf, "33554432");
    get("v2/a/b/c1/memory.swap.max", buf, sizeof buf);
    assert_string_equal(buf, "16777216");
    get("v2/a/b/c1/cpu.max", buf, sizeof buf);
    assert_string_equal(buf, "25000 50000");
    get("v2/a/b/c1/cpu.weight", buf, sizeof buf);
    assert_string_equal(buf, "100");
    get("v2/a/b/c1/pids.max", buf, sizeof buf);
    assert_string_equal(buf, "max");

    bool oom = true;
    assert_int_equal(rt.cg_ops->oom_killed(cg, &oom, &err), 0);
    assert_false(oom);
    rt_cgroup_free(cg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selects_manager),
        cmocka_unit_test(test_v1_limits),
        cmocka_unit_test(test_v2_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
