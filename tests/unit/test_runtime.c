/* Unit tests of engine/runtime's pure parts: parsers over captured samples,
 * status decoding, cgroup arithmetic, capability names, seccomp profile. */
#define MACHINE_RUNTIME_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include <cmocka.h>

#include <linux/capability.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime-priv.h"

/* This machine (hybrid: v1 controllers, cgroup2 at unified with no controllers). */
static const char mountinfo_hybrid[] =
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/* Debian 10 with systemd: co-mounted cpu,cpuacct and shared: tags. */
static const char mountinfo_debian10[] =
    "29 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "31 29 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "34 29 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "35 29 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup "
    "cgroup rw,memory\n";

/* Debian 12 on a pure cgroup2 boot. */
static const char mountinfo_v2[] =
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
    "25 30 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "90 22 0:45 / /var/lib/x/with\\040space rw,relatime master:3 - overlay overlay "
    "rw,lowerdir=/a:/b,upperdir=/u,workdir=/w\n";

static void test_mountinfo_fields(void **state)
{
    (void)state;
    char *buf = strdup(mountinfo_v2);
    char *cursor = buf;
    struct rt_mountinfo m;
    assert_int_equal(rt_mountinfo_next(&cursor, &m, NULL), 1);
    assert_int_equal(m.id, 22);
    assert_int_equal(m.parent_id, 1);
    assert_int_equal(m.major, 254);
    assert_int_equal(m.minor, 1);
    assert_string_equal(m.mount_point, "/");
    assert_string_equal(m.fstype, "ext4");
    assert_string_equal(m.source, "/dev/vda1");
    assert_int_equal(rt_mountinfo_next(&cursor, &m, NULL), 1);
    assert_string_equal(m.fstype, "cgroup2");
    assert_true(rt_option_present(m.super_options, "nsdelegate"));
    assert_false(rt_option_present(m.super_options, "nsdelegat"));
    assert_int_equal(rt_mountinfo_next(&cursor, &m, NULL), 1);
    assert_string_equal(m.mount_point, "/var/lib/x/with space");
    assert_string_equal(m.fstype, "overlay");
    assert_true(rt_option_present(m.super_options, "upperdir=/u"));
    assert_int_equal(rt_mountinfo_next(&cursor, &m, NULL), 0);
    free(buf);
}

static void test_mountinfo_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "22 1 254:1 / / rw,relatime shared:1 ext4 /dev/vda1 rw\n", /* no separator */
        "x 1 254:1 / / rw - ext4 /dev/vda1 rw\n",
        "22 1 254 / / rw - ext4 /dev/vda1 rw\n",
        "22 1 254:1 / /\n",
        "22 1 254:1 / / rw - ext4\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *buf = strdup(bad[i]);
        char *cursor = buf;
        struct rt_mountinfo m;
        struct merr err = MERR_INIT;
        assert_int_equal(rt_mountinfo_next(&cursor, &m, &err), -1);
        assert_int_equal(err.code, MERR_CORRUPT);
        free(buf);
    }
}

static void test_cg_hierarchies_hybrid(void **state)
{
    (void)state;
    char *buf = strdup(mountinfo_hybrid);
    struct rt_cg_hierarchy h[RT_CG_MAX_HIERARCHIES];
    char unified[256];
    int n = rt_cg_hierarchies_parse(buf, "/sys/fs/cgroup", h, RT_CG_MAX_HIERARCHIES, unified,
                                    sizeof unified, NULL);
    assert_int_equal(n, 9);
    assert_string_equal(h[0].mount_point, "/sys/fs/cgroup/cpu");
    assert_string_equal(h[0].controllers, "cpu");
    assert_string_equal(h[3].controllers, "memory");
    assert_string_equal(h[8].controllers, "name=systemd");
    assert_string_equal(unified, "/sys/fs/cgroup/unified");
    free(buf);
}

static void test_cg_hierarchies_comounted(void **state)
{
    (void)state;
    char *buf = strdup(mountinfo_debian10);
    struct rt_cg_hierarchy h[RT_CG_MAX_HIERARCHIES];
    char unified[256];
    int n = rt_cg_hierarchies_parse(buf, "/sys/fs/cgroup/", h, RT_CG_MAX_HIERARCHIES, unified,
                                    sizeof unified, NULL);
    assert_int_equal(n, 3);
    assert_string_equal(h[0].controllers, "name=systemd"); /* xattr dropped */
    assert_string_equal(h[1].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
    assert_string_equal(h[1].controllers, "cpu,cpuacct");
    assert_true(rt_option_present(h[1].controllers, "cpuacct"));
    assert_string_equal(unified, "");
    free(buf);

    buf = strdup(mountinfo_v2);
    n = rt_cg_hierarchies_parse(buf, "/sys/fs/cgroup", h, RT_CG_MAX_HIERARCHIES, unified,
                                sizeof unified, NULL);
    assert_int_equal(n, 0); /* the root itself is the v2 mount: nothing below */
    free(buf);
}

static void test_mountinfo_has_mount_point(void **state)
{
    (void)state;
    char *buf = strdup(mountinfo_v2);
    assert_true(rt_mountinfo_has_mount_point(buf, "/var/lib/x/with space"));
    free(buf);
    buf = strdup(mountinfo_v2);
    assert_false(rt_mountinfo_has_mount_point(buf, "/var/lib/x"));
    free(buf);
}

static void test_cgroup_mode_detect(void **state)
{
    (void)state;
    enum rt_cgroup_mode mode;
    /* statfs f_type samples: CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, CGROUP_SUPER_MAGIC */
    assert_int_equal(rt_cgroup_mode_detect(0x63677270, 0, &mode, NULL), 0);
    assert_int_equal(mode, RT_CGROUP_V2);
    assert_int_equal(rt_cgroup_mode_detect(0x01021994, 0x63677270, &mode, NULL), 0);
    assert_int_equal(mode, RT_CGROUP_HYBRID);
    assert_int_equal(rt_cgroup_mode_detect(0x01021994, 0, &mode, NULL), 0);
    assert_int_equal(mode, RT_CGROUP_V1);
    struct merr err = MERR_INIT;
    assert_int_equal(rt_cgroup_mode_detect(0xEF53 /* ext4 */, 0, &mode, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
}

static void test_proc_cgroup(void **state)
{
    (void)state;
    static const char hybrid[] = "9:name=systemd:/\n8:pids:/machine-engine/c1\n"
                                 "4:memory:/process_api/e9aa\n2:cpu,cpuacct:/machine-engine/c1\n"
                                 "0::/\n";
    static const char v2[] = "0::/machine-engine/c1\n";
    static const char v1[] = "12:devices:/docker/abc\n11:memory:/docker/abc\n";
    char *p;
    p = rt_proc_cgroup_path(hybrid, "pids");
    assert_string_equal(p, "/machine-engine/c1");
    free(p);
    p = rt_proc_cgroup_path(hybrid, "cpuacct");
    assert_string_equal(p, "/machine-engine/c1");
    free(p);
    p = rt_proc_cgroup_path(hybrid, "memory");
    assert_string_equal(p, "/process_api/e9aa");
    free(p);
    p = rt_proc_cgroup_path(hybrid, "");
    assert_string_equal(p, "/");
    free(p);
    assert_null(rt_proc_cgroup_path(hybrid, "cpuset"));
    p = rt_proc_cgroup_path(v2, "");
    assert_string_equal(p, "/machine-engine/c1");
    free(p);
    assert_null(rt_proc_cgroup_path(v2, "memory"));
    assert_null(rt_proc_cgroup_path(v1, ""));
    p = rt_proc_cgroup_path(v1, "devices");
    assert_string_equal(p, "/docker/abc");
    free(p);

    char *bad = strdup("garbage\n");
    char *cursor = bad;
    struct rt_proc_cgroup e;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_proc_cgroup_next(&cursor, &e, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    free(bad);
}

static void test_proc_stat(void **state)
{
    (void)state;
    static const char cat[] = "10409 (cat) R 10407 10407 3281 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 "
                              "0 131423 3133440 362 18446744073709551615 94037229576192 0\n";
    /* comm with spaces and a ')' of its own */
    static const char odd[] = "77 (a) b) c) S 1 77 77 0 -1 4194560 62281 1117539 0 889 172 627 "
                              "3159 2007 20 0 13 0 32 48922624 4164\n";
    char st;
    uint64_t start;
    assert_int_equal(rt_proc_stat_parse(cat, &st, &start, NULL), 0);
    assert_int_equal(st, 'R');
    assert_int_equal(start, 131423);
    assert_int_equal(rt_proc_stat_parse(odd, &st, &start, NULL), 0);
    assert_int_equal(st, 'S');
    assert_int_equal(start, 32);
    struct merr err = MERR_INIT;
    assert_int_equal(rt_proc_stat_parse("1 (x) S 0 0", &st, &start, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    assert_int_equal(rt_proc_stat_parse("no paren", &st, &start, NULL), -1);
}

static void test_kv_lookup(void **state)
{
    (void)state;
    static const char oom_control[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
    static const char events[] = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
    uint64_t v;
    assert_int_equal(rt_kv_lookup(oom_control, "oom_kill", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(rt_kv_lookup(events, "oom_kill", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(rt_kv_lookup(events, "oom", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(rt_kv_lookup(events, "missing", &v), -1);
    assert_int_equal(rt_kv_lookup("oom_kill x\n", "oom_kill", &v), -1);
}

static void test_decode_status(void **state)
{
    (void)state;
    assert_int_equal(rt_decode_status(0), 0);
    assert_int_equal(rt_decode_status(1 << 8), 1);
    assert_int_equal(rt_decode_status(127 << 8), 127);
    assert_int_equal(rt_decode_status(SIGKILL), 137);
    assert_int_equal(rt_decode_status(SIGTERM), 143);
    assert_int_equal(rt_decode_status(SIGSEGV | 0x80 /* core dumped */), 139);
}

static void test_shares_to_weight(void **state)
{
    (void)state;
    assert_int_equal(rt_shares_to_weight(0), 0);
    assert_int_equal(rt_shares_to_weight(2), 1);
    assert_int_equal(rt_shares_to_weight(1024), 100);
    assert_int_equal(rt_shares_to_weight(262144), 10000);
    assert_int_equal(rt_shares_to_weight(1000000), 10000);
    uint64_t prev = 0;
    for (uint64_t s = 2; s <= 262144; s *= 2) {
        uint64_t w = rt_shares_to_weight(s);
        assert_true(w >= prev);
        assert_true(w >= 1 && w <= 10000);
        prev = w;
    }
    assert_true(rt_shares_to_weight(512) < 100);
    /* the engine's own log2/exp against libm's, at every shares value */
    for (uint64_t sh = 3; sh < 262144; sh++) {
        double l = log2((double)sh);
        double w = pow(10.0, (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0);
        uint64_t want = (uint64_t)llround(w);
        want = want < 1 ? 1 : want > 10000 ? 10000 : want;
        if (rt_shares_to_weight(sh) != want)
            fail_msg("shares %llu: weight %llu, libm says %llu", (unsigned long long)sh,
                     (unsigned long long)rt_shares_to_weight(sh), (unsigned long long)want);
    }
    assert_true(rt_shares_to_weight(2048) > 100);
}

static void test_cpu_and_memory_limits(void **state)
{
    (void)state;
    int64_t quota;
    uint64_t period;
    struct rt_resources r = { .nano_cpus = 1500000000 };
    rt_cpu_quota_period(&r, &quota, &period);
    assert_int_equal(quota, 150000);
    assert_int_equal(period, 100000);
    r = (struct rt_resources){ .nano_cpus = 1000, .cpu_quota = 5 };
    rt_cpu_quota_period(&r, &quota, &period);
    assert_int_equal(quota, 1000);
    r = (struct rt_resources){ .cpu_quota = 50000, .cpu_period = 200000 };
    rt_cpu_quota_period(&r, &quota, &period);
    assert_int_equal(quota, 50000);
    assert_int_equal(period, 200000);
    r = (struct rt_resources){ 0 };
    rt_cpu_quota_period(&r, &quota, &period);
    assert_int_equal(quota, -1);
    assert_int_equal(period, 0);

    r = (struct rt_resources){ .memory = 16 << 20 };
    assert_int_equal(rt_memsw_limit(&r), 16 << 20); /* docker: no swap by default */
    assert_int_equal(rt_swap_only_limit(&r), 0);
    r.memory_swap = -1;
    assert_int_equal(rt_memsw_limit(&r), -1);
    assert_int_equal(rt_swap_only_limit(&r), -1);
    r.memory_swap = 48 << 20;
    assert_int_equal(rt_memsw_limit(&r), 48 << 20);
    assert_int_equal(rt_swap_only_limit(&r), 32 << 20);
    r = (struct rt_resources){ 0 };
    assert_int_equal(rt_memsw_limit(&r), 0);
    assert_int_equal(rt_swap_only_limit(&r), -2);
}

static void test_id_valid(void **state)
{
    (void)state;
    assert_true(rt_id_valid("c1"));
    assert_true(rt_id_valid("0123abcdef_x.y-z"));
    assert_false(rt_id_valid(""));
    assert_false(rt_id_valid(NULL));
    assert_false(rt_id_valid(".."));
    assert_false(rt_id_valid("a/b"));
    assert_false(rt_id_valid("-rf"));
    char longid[RT_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_false(rt_id_valid(longid));
    longid[RT_ID_MAX] = '\0';
    assert_true(rt_id_valid(longid));
}

/* ---- /etc/passwd and /etc/group ---------------------------------------- */

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "# comment\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "app:x:1000:1000:App:/home/app:/bin/sh\n"
                             "broken:x:abc:1::/:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";
static const char group[] = "root:x:0:\n"
                            "wheel:x:10:root,app\n"
                            "audio:x:29:app\n"
                            "app:x:1000:\n"
                            "staff:x:50:other\n"
                            "nogroup:x:65534:\n";

static void test_user_by_name(void **state)
{
    (void)state;
    struct rt_user u;
    assert_int_equal(rt_user_resolve("app", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 1000);
    assert_int_equal(u.gid, 1000);
    assert_string_equal(u.home, "/home/app");
    assert_int_equal(u.n_additional_gids, 2);
    assert_int_equal(u.additional_gids[0], 10);
    assert_int_equal(u.additional_gids[1], 29);

    assert_int_equal(rt_user_resolve("nobody", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 65534);
    assert_int_equal(u.gid, 65534);
    assert_int_equal(u.n_additional_gids, 0);
}

static void test_user_default_root(void **state)
{
    (void)state;
    struct rt_user u;
    assert_int_equal(rt_user_resolve("", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 0);
    assert_int_equal(u.gid, 0);
    assert_string_equal(u.home, "/root");
    assert_int_equal(u.n_additional_gids, 1); /* wheel lists root */
    assert_int_equal(u.additional_gids[0], 10);
    /* No passwd at all (scratch image): root with home "/". */
    assert_int_equal(rt_user_resolve(NULL, NULL, NULL, &u, NULL), 0);
    assert_int_equal(u.uid, 0);
    assert_string_equal(u.home, "/");
}

static void test_user_numeric(void **state)
{
    (void)state;
    struct rt_user u;
    assert_int_equal(rt_user_resolve("1000", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 1000);
    assert_int_equal(u.gid, 1000);
    assert_int_equal(u.n_additional_gids, 2);
    /* Unknown numeric uid: fine, primary group 0. */
    assert_int_equal(rt_user_resolve("4242", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 4242);
    assert_int_equal(u.gid, 0);
    assert_string_equal(u.home, "/");
    assert_int_equal(rt_user_resolve("4242:4343", NULL, NULL, &u, NULL), 0);
    assert_int_equal(u.uid, 4242);
    assert_int_equal(u.gid, 4343);
}

static void test_user_with_group(void **state)
{
    (void)state;
    struct rt_user u;
    assert_int_equal(rt_user_resolve("app:audio", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 1000);
    assert_int_equal(u.gid, 29);
    assert_int_equal(u.n_additional_gids, 0); /* explicit group: no /etc/group extras */
    assert_int_equal(rt_user_resolve("1000:50", passwd, group, &u, NULL), 0);
    assert_int_equal(u.gid, 50);
    assert_int_equal(rt_user_resolve("daemon:staff", passwd, group, &u, NULL), 0);
    assert_int_equal(u.uid, 1);
    assert_int_equal(u.gid, 50);
}

static void test_user_errors(void **state)
{
    (void)state;
    struct rt_user u;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_user_resolve("ghost", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_int_equal(rt_user_resolve("app:ghosts", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_int_equal(rt_user_resolve("broken", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_int_equal(rt_user_resolve("app:", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(rt_user_resolve(":10", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(rt_user_resolve("a:b:c", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    /* Out of range ids are names, and no such name exists. */
    assert_int_equal(rt_user_resolve("99999999999", passwd, group, &u, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
}

/* ---- capabilities -------------------------------------------------------- */

static void test_cap_names(void **state)
{
    (void)state;
    assert_int_equal(rt_cap_from_name("CHOWN"), CAP_CHOWN);
    assert_int_equal(rt_cap_from_name("CAP_NET_ADMIN"), CAP_NET_ADMIN);
    assert_int_equal(rt_cap_from_name("cap_sys_admin"), CAP_SYS_ADMIN);
    assert_int_equal(rt_cap_from_name("net_bind_service"), CAP_NET_BIND_SERVICE);
    assert_int_equal(rt_cap_from_name("AUDIT_WRITE"), CAP_AUDIT_WRITE);
    assert_int_equal(rt_cap_from_name("NOPE"), -1);
    assert_int_equal(rt_cap_from_name("ALL"), -1);
    assert_int_equal(rt_cap_from_name("0"), -1);
    assert_int_equal(rt_cap_from_name("CAP_"), -1);
    assert_int_equal(rt_cap_from_name("chown,kill"), -1);
    assert_int_equal(rt_cap_from_name(""), -1);
}

static uint64_t bit(int c)
{
    return UINT64_C(1) << c;
}

static void test_caps_default(void **state)
{
    (void)state;
    uint64_t expected = bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_FSETID) |
                        bit(CAP_FOWNER) | bit(CAP_MKNOD) | bit(CAP_NET_RAW) | bit(CAP_SETGID) |
                        bit(CAP_SETUID) | bit(CAP_SETFCAP) | bit(CAP_SETPCAP) |
                        bit(CAP_NET_BIND_SERVICE) | bit(CAP_SYS_CHROOT) | bit(CAP_KILL) |
                        bit(CAP_AUDIT_WRITE);
    assert_int_equal(rt_caps_default_mask(), expected);
    assert_int_equal(__builtin_popcountll(expected), 14);
    struct rt_process p = { 0 };
    uint64_t m;
    assert_int_equal(rt_caps_compute(&p, &m, NULL), 0);
    assert_int_equal(m, expected);
}

static void test_caps_add_drop(void **state)
{
    (void)state;
    uint64_t def = rt_caps_default_mask(), m;
    struct rt_process p = { .cap_add = (const char *const[]){ "NET_ADMIN", NULL },
                            .cap_drop = (const char *const[]){ "CAP_CHOWN", "kill", NULL } };
    assert_int_equal(rt_caps_compute(&p, &m, NULL), 0);
    assert_int_equal(m, (def | bit(CAP_NET_ADMIN)) & ~(bit(CAP_CHOWN) | bit(CAP_KILL)));

    /* drop ALL: only what is added */
    p = (struct rt_process){ .cap_add = (const char *const[]){ "NET_RAW", NULL },
                             .cap_drop = (const char *const[]){ "ALL", NULL } };
    assert_int_equal(rt_caps_compute(&p, &m, NULL), 0);
    assert_int_equal(m, bit(CAP_NET_RAW));

    /* add ALL: everything the kernel has, minus drops */
    p = (struct rt_process){ .cap_add = (const char *const[]){ "all", NULL },
                             .cap_drop = (const char *const[]){ "SYS_ADMIN", NULL } };
    assert_int_equal(rt_caps_compute(&p, &m, NULL), 0);
    assert_true(m & bit(CAP_SYS_MODULE));
    assert_false(m & bit(CAP_SYS_ADMIN));
    assert_false(m & bit(rt_cap_last() + 1));

    /* the same capability in both lists: the add wins, as in moby */
    p = (struct rt_process){ .cap_add = (const char *const[]){ "KILL", NULL },
                             .cap_drop = (const char *const[]){ "KILL", NULL } };
    assert_int_equal(rt_caps_compute(&p, &m, NULL), 0);
    assert_true(m & bit(CAP_KILL));

    p = (struct rt_process){ .privileged = true };
    assert_int_equal(rt_caps_compute(&p, &m, NULL), 0);
    assert_int_equal(__builtin_popcountll(m), rt_cap_last() + 1);

    struct merr err = MERR_INIT;
    p = (struct rt_process){ .cap_add = (const char *const[]){ "FLY", NULL } };
    assert_int_equal(rt_caps_compute(&p, &m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

/* ---- seccomp -------------------------------------------------------------- */

static void test_seccomp_builds(void **state)
{
    (void)state;
    struct rt_bpf *bpf = NULL;
    struct merr err = MERR_INIT;
    assert_int_equal(rt_seccomp_build(rt_caps_default_mask(), &bpf, &err), 0);
    assert_non_null(bpf);
    size_t n = rt_bpf_len(bpf);
    assert_true(n > 100 && n <= BPF_MAXINSNS);
    assert_int_equal(bpf->prog->len, n);
    /* The program ends in a return; its first instruction loads the arch. */
    struct sock_filter first = bpf->prog->filter[0];
    assert_int_equal(BPF_CLASS(first.code), BPF_LD);
    struct sock_filter last = bpf->prog->filter[n - 1];
    assert_int_equal(BPF_CLASS(last.code), BPF_RET);
    rt_bpf_free(bpf);

    /* CAP_SYS_ADMIN unlocks mount & co: a different (larger) program. */
    struct rt_bpf *admin = NULL;
    assert_int_equal(rt_seccomp_build(rt_caps_default_mask() | bit(CAP_SYS_ADMIN), &admin, &err),
                     0);
    assert_int_not_equal(rt_bpf_len(admin), n);
    rt_bpf_free(admin);
    rt_bpf_free(NULL);
}

/* The runtime keeps the last program: a second start gets the same instructions in its own copy,
 * another capability set gets its own program. */
static void test_seccomp_cached_per_caps(void **state)
{
    (void)state;
    struct rt_runtime rt = { .seccomp_lock = PTHREAD_MUTEX_INITIALIZER };
    struct merr err = MERR_INIT;
    uint64_t def = rt_caps_default_mask(), admin = def | bit(CAP_SYS_ADMIN);
    struct rt_bpf *fresh = NULL, *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(rt_seccomp_build(def, &fresh, &err), 0);
    assert_int_equal(rt_seccomp_get(&rt, def, &a, &err), 0);
    assert_int_equal(rt_seccomp_get(&rt, def, &b, &err), 0);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a->prog->filter, b->prog->filter);
    assert_int_equal(rt_bpf_len(a), rt_bpf_len(fresh));
    assert_memory_equal(a->prog->filter, fresh->prog->filter, rt_bpf_len(a) * sizeof(struct sock_filter));
    assert_memory_equal(b->prog->filter, fresh->prog->filter, rt_bpf_len(b) * sizeof(struct sock_filter));
    assert_int_equal(rt_seccomp_get(&rt, admin, &c, &err), 0);
    assert_int_not_equal(rt_bpf_len(c), rt_bpf_len(a));
    rt_bpf_free(a); /* copies outlive each other and the cache */
    rt_bpf_free(fresh);
    rt_bpf_free(c);
    assert_int_equal(BPF_CLASS(b->prog->filter[rt_bpf_len(b) - 1].code), BPF_RET);
    rt_bpf_free(b);
    rt_bpf_free(rt.seccomp_cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seccomp_cached_per_caps),
        cmocka_unit_test(test_mountinfo_fields),
        cmocka_unit_test(test_mountinfo_malformed),
        cmocka_unit_test(test_cg_hierarchies_hybrid),
        cmocka_unit_test(test_cg_hierarchies_comounted),
        cmocka_unit_test(test_mountinfo_has_mount_point),
        cmocka_unit_test(test_cgroup_mode_detect),
        cmocka_unit_test(test_proc_cgroup),
        cmocka_unit_test(test_proc_stat),
        cmocka_unit_test(test_kv_lookup),
        cmocka_unit_test(test_decode_status),
        cmocka_unit_test(test_shares_to_weight),
        cmocka_unit_test(test_cpu_and_memory_limits),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_user_by_name),
        cmocka_unit_test(test_user_default_root),
        cmocka_unit_test(test_user_numeric),
        cmocka_unit_test(test_user_with_group),
        cmocka_unit_test(test_user_errors),
        cmocka_unit_test(test_cap_names),
        cmocka_unit_test(test_caps_default),
        cmocka_unit_test(test_caps_add_drop),
        cmocka_unit_test(test_seccomp_builds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
