/* Parsers of the create options: ulimits, --security-opt, sysctls, devices and device cgroup
 * rules, cpusets, groups, and a whole HostConfig. */
#include "test_helpers.h"

#include <jansson.h>
#include <sys/resource.h>

#include "container/options.h"

static void test_ulimits(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct ctr_ulimit u;
    json_t *j = json_pack("{s:s,s:i,s:i}", "Name", "nofile", "Soft", 100, "Hard", 200);
    assert_int_equal(ctr_ulimit_parse(j, &u, &err), 0);
    assert_int_equal(u.resource, RLIMIT_NOFILE);
    assert_int_equal(u.soft, 100);
    assert_int_equal(u.hard, 200);
    json_decref(j);
    j = json_pack("{s:s,s:i,s:i}", "Name", "core", "Soft", -1, "Hard", -1);
    assert_int_equal(ctr_ulimit_parse(j, &u, &err), 0);
    assert_true(u.soft == (uint64_t)RLIM_INFINITY && u.hard == (uint64_t)RLIM_INFINITY);
    json_decref(j);
    j = json_pack("{s:s,s:i,s:i}", "Name", "nofile", "Soft", 300, "Hard", 200);
    assert_int_equal(ctr_ulimit_parse(j, &u, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    json_decref(j);
    j = json_pack("{s:s,s:i,s:i}", "Name", "bogus", "Soft", 1, "Hard", 1);
    assert_int_equal(ctr_ulimit_parse(j, &u, &err), -1);
    json_decref(j);
    j = json_pack("{s:s}", "Name", "nofile");
    assert_int_equal(ctr_ulimit_parse(j, &u, &err), -1);
    json_decref(j);
}

static void test_security_opts(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct ctr_options o = { 0 };
    assert_int_equal(ctr_security_opt_parse("no-new-privileges", &o, &err), 0);
    assert_true(o.no_new_privileges);
    assert_int_equal(ctr_security_opt_parse("no-new-privileges=false", &o, &err), 0);
    assert_false(o.no_new_privileges);
    assert_int_equal(ctr_security_opt_parse("no-new-privileges:true", &o, &err), 0);
    assert_true(o.no_new_privileges);
    assert_int_equal(ctr_security_opt_parse("no-new-privileges=maybe", &o, &err), -1);
    assert_int_equal(ctr_security_opt_parse("seccomp=unconfined", &o, &err), 0);
    assert_int_equal(o.seccomp, CTR_SECCOMP_UNCONFINED);
    assert_int_equal(ctr_security_opt_parse("seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}", &o,
                                            &err),
                     0);
    assert_int_equal(o.seccomp, CTR_SECCOMP_PROFILE);
    assert_non_null(o.seccomp_profile);
    assert_int_equal(ctr_security_opt_parse("seccomp=builtin", &o, &err), 0);
    assert_int_equal(o.seccomp, CTR_SECCOMP_DEFAULT);
    assert_null(o.seccomp_profile);
    assert_int_equal(ctr_security_opt_parse("seccomp=/etc/profile.json", &o, &err), -1);
    assert_int_equal(ctr_security_opt_parse("apparmor=unconfined", &o, &err), 0);
    assert_int_equal(ctr_security_opt_parse("apparmor=docker-default", &o, &err), -1);
    assert_int_equal(ctr_security_opt_parse("label=disable", &o, &err), 0);
    assert_int_equal(ctr_security_opt_parse("label:disable", &o, &err), 0);
    assert_int_equal(ctr_security_opt_parse("label=type:svirt_t", &o, &err), -1);
    assert_int_equal(ctr_security_opt_parse("writable-cgroups=false", &o, &err), 0);
    assert_int_equal(ctr_security_opt_parse("writable-cgroups=true", &o, &err), -1);
    assert_int_equal(ctr_security_opt_parse("systempaths=unconfined", &o, &err), -1);
    assert_int_equal(ctr_security_opt_parse("bogus", &o, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    ctr_options_release(&o);
}

static void test_sysctls(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    assert_int_equal(ctr_sysctl_check("kernel.shmmax", "default", false, false, &err), 0);
    assert_int_equal(ctr_sysctl_check("fs.mqueue.msg_max", "default", false, false, &err), 0);
    assert_int_equal(ctr_sysctl_check("kernel.shmmax", "default", true, false, &err), -1);
    assert_int_equal(ctr_sysctl_check("net.ipv4.ip_forward", "bridge", false, false, &err), 0);
    assert_int_equal(ctr_sysctl_check("net.ipv4.ip_forward", "host", false, false, &err), -1);
    assert_int_equal(ctr_sysctl_check("kernel.domainname", "default", false, false, &err), 0);
    assert_int_equal(ctr_sysctl_check("kernel.domainname", "default", false, true, &err), -1);
    assert_int_equal(ctr_sysctl_check("kernel.panic", "default", false, false, &err), -1);
    assert_int_equal(ctr_sysctl_check("vm.swappiness", "default", false, false, &err), -1);
    assert_int_equal(ctr_sysctl_check("net.ipv4/../../x", "default", false, false, &err), -1);
    assert_int_equal(ctr_sysctl_check("net..x", "default", false, false, &err), -1);
    assert_int_equal(ctr_sysctl_check("", "default", false, false, &err), -1);
}

static void test_devices(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct ctr_device d;
    assert_int_equal(ctr_device_parse("/dev/null", &d, &err), 0);
    assert_string_equal(d.host, "/dev/null");
    assert_string_equal(d.ctr, "/dev/null");
    assert_string_equal(d.perms, "rwm");
    free(d.host);
    free(d.ctr);
    assert_int_equal(ctr_device_parse("/dev/null:/dev/xnull", &d, &err), 0);
    assert_string_equal(d.ctr, "/dev/xnull");
    free(d.host);
    free(d.ctr);
    assert_int_equal(ctr_device_parse("/dev/null:r", &d, &err), 0);
    assert_string_equal(d.ctr, "/dev/null");
    assert_string_equal(d.perms, "r");
    free(d.host);
    free(d.ctr);
    assert_int_equal(ctr_device_parse("/dev/sda:/dev/xvda:rw", &d, &err), 0);
    assert_string_equal(d.perms, "rw");
    free(d.host);
    free(d.ctr);
    assert_int_equal(ctr_device_parse("/dev/sda:/dev/xvda:rwx", &d, &err), -1);
    assert_int_equal(ctr_device_parse("/dev/sda:/dev/xvda:rr", &d, &err), -1);
    assert_int_equal(ctr_device_parse("dev/sda", &d, &err), -1);
    assert_int_equal(ctr_device_parse("/dev/a:b", &d, &err), -1);
    assert_int_equal(ctr_device_parse("/a:/b:r:x", &d, &err), -1);

    assert_int_equal(ctr_device_rule_check("c 1:3 rwm", &err), 0);
    assert_int_equal(ctr_device_rule_check("b *:* m", &err), 0);
    assert_int_equal(ctr_device_rule_check("a *:* rwm", &err), 0);
    assert_int_equal(ctr_device_rule_check("a", &err), 0);
    assert_int_equal(ctr_device_rule_check("c 1:3", &err), -1);
    assert_int_equal(ctr_device_rule_check("x 1:3 r", &err), -1);
    assert_int_equal(ctr_device_rule_check("c 1:a r", &err), -1);
    assert_int_equal(ctr_device_rule_check("c 13 r", &err), -1);
    assert_int_equal(ctr_device_rule_check("c 1:3 rwq", &err), -1);
}

static void test_cpusets_and_groups(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    assert_int_equal(ctr_cpuset_check("0", 3, &err), 0);
    assert_int_equal(ctr_cpuset_check("0-2,3", 3, &err), 0);
    assert_int_equal(ctr_cpuset_check("4", 3, &err), -1);
    assert_int_equal(ctr_cpuset_check("2-1", 3, &err), -1);
    assert_int_equal(ctr_cpuset_check("0,", 3, &err), -1);
    assert_int_equal(ctr_cpuset_check("a", 3, &err), -1);
    assert_int_equal(ctr_cpuset_check("", 3, &err), -1);

    const char *group = "root:x:0:\nwheel:x:10:root,app\n#c:x:9:\nnogroup:x:65534:\n";
    unsigned gid = 1;
    assert_int_equal(ctr_group_lookup(group, "wheel", &gid), 0);
    assert_int_equal(gid, 10);
    assert_int_equal(ctr_group_lookup(group, "nogroup", &gid), 0);
    assert_int_equal(gid, 65534);
    assert_int_equal(ctr_group_lookup(NULL, "4321", &gid), 0);
    assert_int_equal(gid, 4321);
    assert_int_equal(ctr_group_lookup(group, "whee", &gid), -1);
    assert_int_equal(ctr_group_lookup(NULL, "wheel", &gid), -1);
}

static void test_volumes_from(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    char name[64];
    int rw = 5;
    assert_int_equal(ctr_volumes_from_parse("web", name, sizeof name, &rw, &err), 0);
    assert_string_equal(name, "web");
    assert_int_equal(rw, -1);
    assert_int_equal(ctr_volumes_from_parse("web:ro", name, sizeof name, &rw, &err), 0);
    assert_int_equal(rw, 0);
    assert_int_equal(ctr_volumes_from_parse("web:rw,z", name, sizeof name, &rw, &err), 0);
    assert_int_equal(rw, 1);
    assert_int_equal(ctr_volumes_from_parse("web:ro,rw", name, sizeof name, &rw, &err), -1);
    assert_int_equal(ctr_volumes_from_parse("web:bogus", name, sizeof name, &rw, &err), -1);
    assert_int_equal(ctr_volumes_from_parse(":ro", name, sizeof name, &rw, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_links(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    char name[64], alias[64];
    assert_int_equal(ctr_link_parse("db:database", name, sizeof name, alias, sizeof alias, &err), 0);
    assert_string_equal(name, "db");
    assert_string_equal(alias, "database");
    assert_int_equal(ctr_link_parse("db", name, sizeof name, alias, sizeof alias, &err), 0);
    assert_string_equal(alias, "db");
    assert_int_equal(ctr_link_parse("/db:/web/database", name, sizeof name, alias, sizeof alias,
                                    &err),
                     0);
    assert_string_equal(name, "db");
    assert_string_equal(alias, "database");
    assert_int_equal(ctr_link_parse(":x", name, sizeof name, alias, sizeof alias, &err), -1);
    assert_int_equal(ctr_link_parse("db:", name, sizeof name, alias, sizeof alias, &err), -1);
    assert_int_equal(ctr_link_parse("db:a b", name, sizeof name, alias, sizeof alias, &err), -1);
    assert_int_equal(ctr_link_parse("a/b:c", name, sizeof name, alias, sizeof alias, &err), -1);

    json_t *cfg = json_object();
    static const char *const bad[] = {
        "{\"Links\":[\"db:x\"],\"NetworkMode\":\"host\"}",
        "{\"Links\":[\"db:x\"],\"NetworkMode\":\"container:web\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *hc = json_loads(bad[i], 0, NULL);
        struct ctr_options o;
        if (ctr_options_parse(cfg, hc, &o, &err) == 0)
            fail_msg("accepted: %s", bad[i]);
        json_decref(hc);
    }
    json_t *hc = json_loads("{\"Links\":[\"db:x\"],\"NetworkMode\":\"default\"}", 0, NULL);
    struct ctr_options o;
    assert_int_equal(ctr_options_parse(cfg, hc, &o, &err), 0);
    assert_string_equal(o.links[0], "db:x");
    ctr_options_release(&o);
    json_decref(hc);
    /* on a user network they are the network module's (its DNS's aliases) */
    hc = json_loads("{\"Links\":[\"db:x\"],\"NetworkMode\":\"mynet\"}", 0, NULL);
    assert_int_equal(ctr_options_parse(cfg, hc, &o, &err), 0);
    ctr_options_release(&o);
    json_decref(hc);
    json_decref(cfg);
}

static void test_host_config(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    json_t *cfg = json_loads("{\"Domainname\":\"example.org\"}", 0, NULL);
    json_t *hc = json_loads(
        "{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":10,\"Hard\":20},"
        "{\"Name\":\"nofile\",\"Soft\":30,\"Hard\":40}],\"ShmSize\":8388608,"
        "\"SecurityOpt\":[\"no-new-privileges\",\"seccomp=unconfined\"],\"OomScoreAdj\":500,"
        "\"GroupAdd\":[\"wheel\"],\"Sysctls\":{\"kernel.shmmax\":\"1\"},\"IpcMode\":\"shareable\","
        "\"PidMode\":\"container:web\",\"UTSMode\":\"host\",\"CgroupnsMode\":\"private\","
        "\"Devices\":[{\"PathOnHost\":\"/dev/null\",\"PathInContainer\":\"/dev/x\","
        "\"CgroupPermissions\":\"rw\"}],\"MaskedPaths\":[],\"MemoryReservation\":67108864,"
        "\"CpusetCpus\":\"0\",\"MemorySwappiness\":-1,\"CapAdd\":[\"ALL\",\"cap_net_admin\"],"
        "\"CapDrop\":[\"MKNOD\"]}",
        0, NULL);
    assert_non_null(hc);
    struct ctr_options o;
    assert_int_equal(ctr_options_parse(cfg, hc, &o, &err), 0);
    assert_int_equal(o.n_ulimits, 1); /* the later nofile wins */
    assert_int_equal(o.ulimits[0].soft, 30);
    assert_int_equal(o.shm_size, 8388608);
    assert_true(o.no_new_privileges);
    assert_int_equal(o.seccomp, CTR_SECCOMP_UNCONFINED);
    assert_true(o.oom_score_adj_set);
    assert_int_equal(o.oom_score_adj, 500);
    assert_string_equal(o.group_add[0], "wheel");
    assert_string_equal(o.sysctls[0], "kernel.shmmax=1");
    assert_true(o.ipc_shareable);
    assert_int_equal(o.pid_ns, CTR_NS_CONTAINER);
    assert_string_equal(o.pid_container, "web");
    assert_int_equal(o.uts_ns, CTR_NS_HOST);
    assert_true(o.cgroupns_private);
    assert_int_equal(o.n_devices, 1);
    assert_string_equal(o.devices[0].perms, "rw");
    assert_true(o.masked_paths_set);
    assert_null(o.masked_paths[0]);
    assert_false(o.readonly_paths_set);
    assert_int_equal(o.memory_reservation, 67108864);
    assert_string_equal(o.cpuset_cpus, "0");
    assert_int_equal(o.memory_swappiness, -1);
    assert_string_equal(o.domainname, "example.org");
    ctr_options_release(&o);
    json_decref(hc);

    static const char *const bad[] = {
        "{\"OomScoreAdj\":1001}",
        "{\"ShmSize\":-1}",
        "{\"PidMode\":\"bogus\"}",
        "{\"UTSMode\":\"container:x\"}",
        "{\"IpcMode\":\"weird\"}",
        "{\"CgroupnsMode\":\"both\"}",
        "{\"MemoryReservation\":1024}",
        "{\"Memory\":10000000,\"MemoryReservation\":20000000}",
        "{\"MemorySwappiness\":101}",
        "{\"BlkioWeight\":5}",
        "{\"IpcMode\":\"host\",\"Sysctls\":{\"kernel.sem\":\"1\"}}",
        "{\"Devices\":[{\"PathInContainer\":\"/dev/x\"}]}",
        "{\"SecurityOpt\":[\"apparmor=x\"]}",
        "{\"DeviceCgroupRules\":[\"c 1\"]}",
        "{\"CapAdd\":[\"CAP_FOO\"]}",
        "{\"CapDrop\":[\"NET-ADMIN\"]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hc = json_loads(bad[i], 0, NULL);
        assert_non_null(hc);
        if (ctr_options_parse(cfg, hc, &o, &err) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(hc);
    }
    json_decref(cfg);

    cfg = json_loads("{\"Hostname\":\"web\"}", 0, NULL);
    hc = json_loads("{\"UTSMode\":\"host\"}", 0, NULL);
    assert_int_equal(ctr_options_parse(cfg, hc, &o, &err), -1);
    json_decref(cfg);
    json_decref(hc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ulimits),        cmocka_unit_test(test_security_opts),
        cmocka_unit_test(test_sysctls),        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_cpusets_and_groups), cmocka_unit_test(test_host_config),
        cmocka_unit_test(test_volumes_from),      cmocka_unit_test(test_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
