/* Provisioning text builders: shell quoting, the engine's command line, the systemd unit and
 * the supervisor script (pure). */
#include "test_helpers.h"

#include <unistd.h>

#include "provision.h"

static void test_sh_quote(void **state)
{
    char *q = sh_quote("plain");
    assert_string_equal(q, "'plain'");
    free(q);
    q = sh_quote("it's $(rm -rf /)");
    assert_string_equal(q, "'it'\\''s $(rm -rf /)'");
    free(q);
    /* The quoted text survives a real shell unchanged. */
    auto_free char *cmd = xasprintf("printf %%s %s", q = sh_quote("a'b\"c$d`e"));
    free(q);
    FILE *p = popen(cmd, "r");
    char buf[64] = "";
    assert_non_null(fgets(buf, sizeof buf, p));
    pclose(p);
    assert_string_equal(buf, "a'b\"c$d`e");
}

static void test_engine_args(void **state)
{
    char *labels[] = { "lab=one", "owner=it's me", NULL };
    char *insecure[] = { "10.0.0.9:5000", NULL };
    char *mirrors[] = { "https://mirror.example", NULL };
    char *opts[] = { "log-level=debug", "debug", NULL };
    struct engine_launch l = { .hostname = "h1", .port = 12376, .labels = labels,
                               .insecure_registries = insecure, .registry_mirrors = mirrors,
                               .opts = opts };
    struct merr err = MERR_INIT;
    auto_free char *args = provision_engine_args(&l, &err);
    assert_non_null(args);
    assert_non_null(strstr(args, "-H tcp://0.0.0.0:12376 --tlsverify"));
    assert_non_null(strstr(args, "--tlscacert /etc/machine-engine/ca.pem"));
    assert_non_null(strstr(args, "--label 'lab=one' --label 'owner=it'\\''s me'"));
    assert_non_null(strstr(args, "--insecure-registry '10.0.0.9:5000'"));
    assert_non_null(strstr(args, "--registry-mirror 'https://mirror.example'"));
    assert_non_null(strstr(args, "--log-level='debug' --debug"));

    char *bad_opts[] = { "Log Level=x", NULL };
    l.opts = bad_opts;
    assert_null(provision_engine_args(&l, &err));
    assert_int_equal(err.code, MERR_INVALID);
    /* what machine-engine would refuse at start (the shared flag table) */
    char *refused[] = { "dns=10.0.0.53", "log-driver=syslog", NULL };
    l.opts = refused;
    err = (struct merr)MERR_INIT;
    assert_null(provision_engine_args(&l, &err));
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    l.opts = NULL;
    l.storage_driver = "devicemapper";
    assert_null(provision_engine_args(&l, &err));
    assert_int_equal(err.code, MERR_INVALID);
    l.storage_driver = "overlay2";
    char *ok = provision_engine_args(&l, &err);
    assert_non_null(ok);
    assert_null(strstr(ok, "--storage-driver"));
    free(ok);
    l.storage_driver = "vfs";
    ok = provision_engine_args(&l, &err);
    assert_non_null(ok);
    assert_non_null(strstr(ok, " --storage-driver vfs"));
    free(ok);
}

static void test_unit_and_supervisor(void **state)
{
    char *env[] = { "HTTP_PROXY=http://proxy:3128", "PCT=100%", "bad key=x", "NOEQUALS", NULL };
    char *unit = provision_render_unit("-H unix:///x", env);
    assert_non_null(strstr(unit, "[Service]"));
    assert_non_null(strstr(unit, "Environment=\"HTTP_PROXY=http://proxy:3128\"\n"));
    assert_non_null(strstr(unit, "Environment=\"PCT=100%%\"\n")); /* systemd specifier escaped */
    assert_null(strstr(unit, "bad key"));
    assert_null(strstr(unit, "NOEQUALS"));
    assert_non_null(strstr(unit, "Restart=always"));
    /* a restart stops the engine, not the containers' monitors in its cgroup */
    assert_non_null(strstr(unit, "KillMode=process\n"));
    assert_non_null(strstr(unit, "WantedBy=multi-user.target"));
    free(unit);

    char *sup = provision_render_supervisor("-H unix:///x", env);
    assert_memory_equal(sup, "#!/bin/sh\n", 10);
    assert_non_null(strstr(sup, "export HTTP_PROXY='http://proxy:3128'\n"));
    assert_non_null(strstr(sup, "/opt/machine-engine/bin/machine-engine -H unix:///x"));
    assert_null(strstr(sup, "bad key"));
    /* The script is valid sh. */
    char path[] = "/tmp/machine-sup-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, sup, strlen(sup)), (ssize_t)strlen(sup));
    close(fd);
    auto_free char *cmd = xasprintf("sh -n %s", path);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    free(sup);
}

/* The host check's report (captured from a Debian 12 host, then with one feature taken away
 * at a time): every missing feature is named. */
static void test_check_features(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    static const char ok[] = "kernel=6.1.0-18-amd64\noverlay=yes\ncgroup2=yes\n"
                             "cgroup_controllers=12\nseccomp=yes\n";
    assert_int_equal(provision_check_features(ok, &err), 0);
    /* cgroup v1 only, or cgroup2 only, is enough */
    assert_int_equal(provision_check_features("kernel=4.19.0\noverlay=yes\ncgroup2=no\n"
                                              "cgroup_controllers=3\nseccomp=yes\n", &err), 0);
    assert_int_equal(provision_check_features("kernel=5.10.0\noverlay=yes\ncgroup2=yes\n"
                                              "cgroup_controllers=0\nseccomp=yes\n", &err), 0);
    static const struct {
        const char *report, *names;
    } bad[] = {
        { "kernel=4.9.0\noverlay=yes\ncgroup2=yes\ncgroup_controllers=3\nseccomp=yes\n", "4.14" },
        { "kernel=6.1.0\noverlay=no\ncgroup2=yes\ncgroup_controllers=3\nseccomp=yes\n", "overlayfs" },
        { "kernel=6.1.0\noverlay=yes\ncgroup2=no\ncgroup_controllers=0\nseccomp=yes\n", "cgroups" },
        { "kernel=6.1.0\noverlay=yes\ncgroup2=yes\ncgroup_controllers=3\nseccomp=no\n", "seccomp" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(provision_check_features(bad[i].report, &err), -1);
        assert_int_equal(err.code, MERR_UNSUPPORTED);
        assert_non_null(strstr(err.msg, bad[i].names));
    }
    err = (struct merr)MERR_INIT;
    assert_int_equal(provision_check_features("", &err), -1);
    assert_int_equal(err.code, MERR_REMOTE);
}

/* The engine's fatal line in its log tail: the last one wins, other lines are not fatal. */
static void test_engine_fatal(void **state)
{
    (void)state;
    assert_null(provision_engine_fatal(""));
    assert_null(provision_engine_fatal("API listen on unix:///var/run/machine-engine.sock\n"
                                       "warning: something\n"));
    auto_free char *f = provision_engine_fatal(
        "machine-engine: old reason\nAPI listen on x\n"
        "machine-engine: unknown flag '--log-driver'\nSee 'machine-engine --help'.\n");
    assert_string_equal(f, "unknown flag '--log-driver'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sh_quote),
        cmocka_unit_test(test_engine_args),
        cmocka_unit_test(test_unit_and_supervisor),
        cmocka_unit_test(test_check_features),
        cmocka_unit_test(test_engine_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
