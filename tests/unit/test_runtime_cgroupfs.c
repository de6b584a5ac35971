/* What the engine mounts where no cgroup filesystem is mounted: the plan from captured
 * /proc/filesystems and /proc/cgroups of a v1 host (this test machine), a cgroup2-only host,
 * a v1 host with co-mounted controllers, and a kernel with no cgroups at all. */
#define MACHINE_RUNTIME_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "error.h"
#include "runtime/runtime-priv.h"

static const char filesystems_both[] = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tcgroup\nnodev\tcgroup2\n"
                                       "nodev\toverlay\n\text4\n";

/* A kernel whose v1 hierarchies are mounted elsewhere (the host's init namespace). */
static const char cgroups_v1_in_use[] =
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    "cpuset\t3\t5\t1\ncpu\t1\t23\t1\ncpuacct\t2\t22\t1\nblkio\t7\t23\t1\nmemory\t4\t180\t1\n"
    "devices\t5\t22\t1\nfreezer\t6\t23\t1\nnet_cls\t0\t23\t1\nperf_event\t0\t23\t1\n"
    "net_prio\t0\t23\t1\nhugetlb\t0\t23\t1\npids\t8\t22\t1\n";

/* Nothing mounted anywhere: every controller free. */
static const char cgroups_free[] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                                   "cpu\t0\t1\t1\nmemory\t0\t1\t1\npids\t0\t1\t1\nrdma\t0\t1\t0\n";

static void test_v1_in_use_mounts_v1(void **state)
{
    (void)state;
    struct rt_cgroupfs_plan p;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroupfs_plan(filesystems_both, cgroups_v1_in_use, &p, &err), 0);
    assert_false(p.v2);
    assert_int_equal(p.n, 12);
    assert_string_equal(p.mounts[0].controllers, "cpuset");
    assert_string_equal(p.mounts[1].controllers, "cpu");
    assert_string_equal(p.mounts[4].controllers, "memory");
    assert_string_equal(p.mounts[11].controllers, "pids");
}

static void test_co_mounted_hierarchy_stays_together(void **state)
{
    (void)state;
    static const char cg[] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                             "cpu\t2\t1\t1\ncpuacct\t2\t1\t1\nmemory\t3\t1\t1\n"
                             "net_cls\t4\t1\t1\nnet_prio\t4\t1\t1\ndevices\t0\t1\t1\n";
    struct rt_cgroupfs_plan p;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroupfs_plan(filesystems_both, cg, &p, &err), 0);
    assert_false(p.v2);
    assert_int_equal(p.n, 4);
    assert_string_equal(p.mounts[0].controllers, "cpu,cpuacct");
    assert_string_equal(p.mounts[1].controllers, "memory");
    assert_string_equal(p.mounts[2].controllers, "net_cls,net_prio");
    assert_string_equal(p.mounts[3].controllers, "devices");
}

static void test_nothing_in_use_mounts_cgroup2(void **state)
{
    (void)state;
    struct rt_cgroupfs_plan p;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroupfs_plan(filesystems_both, cgroups_free, &p, &err), 0);
    assert_true(p.v2);
    assert_int_equal(p.n, 0);
    /* a cgroup2-only kernel without /proc/cgroups */
    assert_int_equal(rt_cgroupfs_plan("nodev\tcgroup2\n", "", &p, &err), 0);
    assert_true(p.v2);
}

static void test_v1_only_kernel(void **state)
{
    (void)state;
    struct rt_cgroupfs_plan p;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroupfs_plan("nodev\tcgroup\n", cgroups_free, &p, &err), 0);
    assert_false(p.v2);
    assert_int_equal(p.n, 3); /* rdma is disabled */
    assert_string_equal(p.mounts[2].controllers, "pids");
}

static void test_no_cgroups_at_all(void **state)
{
    (void)state;
    struct rt_cgroupfs_plan p;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroupfs_plan("nodev\tsysfs\nnodev\ttmpfs\n", "", &p, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    /* "cgroup" must match the whole name, not cgroup2's prefix */
    assert_int_equal(rt_cgroupfs_plan("nodev\tcgroupx\n", cgroups_free, &p, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_in_use_mounts_v1),
        cmocka_unit_test(test_co_mounted_hierarchy_stays_together),
        cmocka_unit_test(test_nothing_in_use_mounts_cgroup2),
        cmocka_unit_test(test_v1_only_kernel),
        cmocka_unit_test(test_no_cgroups_at_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
