/* machine-engine command-line flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "daemon/daemon.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_defaults(void **state)
{
    char *argv[] = { "machine-engine" };
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv), argv, &err), 0);
    assert_non_null(cfg.hosts);
    assert_string_equal(cfg.hosts[0], ENGINE_DEFAULT_HOST);
    assert_null(cfg.hosts[1]);
    assert_string_equal(cfg.data_root, ENGINE_DEFAULT_DATA_ROOT);
    assert_string_equal(cfg.pidfile, ENGINE_DEFAULT_PIDFILE);
    assert_int_equal(cfg.log_level, MLOG_INFO);
    assert_false(cfg.tlsverify);
    assert_null(cfg.labels);
    engine_config_release(&cfg);
}

static void test_all_flags(void **state)
{
    char *argv[] = { "machine-engine",
                     "-H", "unix:///run/a.sock",
                     "--host=tcp://127.0.0.1:2375",
                     "-Hunix:///run/b.sock",
                     "--data-root=/srv/engine",
                     "--pidfile", "/run/e.pid",
                     "--label", "zone=a",
                     "--label=tier=b",
                     "--insecure-registry", "10.0.0.0/8",
                     "--insecure-registry", "reg.local:5000",
                     "--registry-mirror", "https://mirror.example",
                     "--registry-mirror=http://m2.example:5000/",
                     "--log-level", "warn",
                     "--tlscacert", "ca.pem", "--tlscert=cert.pem", "--tlskey", "key.pem" };
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv), argv, &err), 0);
    assert_string_equal(cfg.hosts[0], "unix:///run/a.sock");
    assert_string_equal(cfg.hosts[1], "tcp://127.0.0.1:2375");
    assert_string_equal(cfg.hosts[2], "unix:///run/b.sock");
    assert_null(cfg.hosts[3]);
    assert_string_equal(cfg.data_root, "/srv/engine");
    assert_string_equal(cfg.pidfile, "/run/e.pid");
    assert_string_equal(cfg.labels[0], "zone=a");
    assert_string_equal(cfg.labels[1], "tier=b");
    assert_string_equal(cfg.insecure_registries[0], "10.0.0.0/8");
    assert_string_equal(cfg.insecure_registries[1], "reg.local:5000");
    assert_string_equal(cfg.registry_mirrors[0], "https://mirror.example/");
    assert_string_equal(cfg.registry_mirrors[1], "http://m2.example:5000/");
    assert_int_equal(cfg.log_level, MLOG_WARN);
    assert_string_equal(cfg.tlscacert, "ca.pem");
    assert_string_equal(cfg.tlscert, "cert.pem");
    assert_string_equal(cfg.tlskey, "key.pem");
    engine_config_release(&cfg);
}

static void test_debug_and_bools(void **state)
{
    char *argv[] = { "machine-engine", "-D", "--tlsverify", "-H", "tcp://0.0.0.0:2376" };
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv), argv, &err), 0);
    assert_int_equal(cfg.log_level, MLOG_DEBUG);
    assert_true(cfg.tlsverify);
    engine_config_release(&cfg);

    char *argv2[] = { "machine-engine", "--tlsverify=false" };
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv2), argv2, &err), 0);
    assert_false(cfg.tlsverify);
    engine_config_release(&cfg);
}

static void test_version_and_help_skip_validation(void **state)
{
    char *argv[] = { "machine-engine", "-v", "-H", "tcp://0.0.0.0:1" };
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv), argv, &err), 0);
    assert_true(cfg.show_version);
    engine_config_release(&cfg);
    char *argv2[] = { "machine-engine", "--help" };
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv2), argv2, &err), 0);
    assert_true(cfg.show_help);
    engine_config_release(&cfg);
    assert_non_null(strstr(engine_config_usage(), "--data-root"));
}

struct bad_case {
    const char *args[4];
    enum merr_code code;
};

static void test_bad_input(void **state)
{
    static const struct bad_case cases[] = {
        { { "--bogus" }, MERR_INVALID },
        { { "-X" }, MERR_INVALID },
        { { "-H" }, MERR_INVALID },                        /* missing value */
        { { "--data-root" }, MERR_INVALID },
        { { "--log-level", "loud" }, MERR_INVALID },
        { { "--label", "novalue" }, MERR_INVALID },
        { { "--label", "=v" }, MERR_INVALID },
        { { "positional" }, MERR_INVALID },
        { { "--", "extra" }, MERR_INVALID },
        { { "-H", "tcp://0.0.0.0:2375" }, MERR_PERM },     /* security case 3 */
        { { "-H", "tcp://:2375" }, MERR_PERM },
        { { "-H", "tcp://10.1.2.3:2375" }, MERR_PERM },
        { { "-H", "ftp://x" }, MERR_INVALID },
        { { "-H", "tcp://127.0.0.1:99999" }, MERR_INVALID },
        { { "-H", "tcp://example.com:2375" }, MERR_INVALID },
        { { "-H", "unix://" }, MERR_INVALID },
        { { "--registry-mirror", "mirror.example" }, MERR_INVALID },
        { { "--registry-mirror", "https://m.example/v2/" }, MERR_INVALID },
        { { "--insecure-registry", "http://reg:5000" }, MERR_INVALID },
        { { "--data-root", "relative/dir" }, MERR_INVALID },
        { { "--tlsverify=maybe" }, MERR_INVALID },
        { { "-Dx" }, MERR_INVALID },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = { "machine-engine" };
        int argc = 1;
        for (size_t j = 0; j < 4 && cases[i].args[j] != NULL; j++)
            argv[argc++] = (char *)cases[i].args[j];
        struct engine_config cfg;
        struct merr err = MERR_INIT;
        int r = engine_config_parse(&cfg, argc, argv, &err);
        if (r != -1 || err.code != cases[i].code)
            fail_msg("case %zu (%s): r=%d code=%s msg=%s", i, cases[i].args[0], r,
                     merr_code_name(err.code), err.msg);
        assert_null(cfg.hosts); /* released on failure */
    }
}

static void test_loopback_tcp_allowed_without_tls(void **state)
{
    char *argv[] = { "machine-engine", "-H", "tcp://127.0.0.1:23750", "-H", "tcp://[::1]:23751",
                     "-H", "tcp://localhost:23752" };
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv), argv, &err), 0);
    engine_config_release(&cfg);
}

static void test_pidfile_parse(void **state)
{
    pid_t pid;
    struct merr err = MERR_INIT;
    assert_int_equal(pidfile_parse("1234\n", &pid, &err), 0);
    assert_int_equal(pid, 1234);
    assert_int_equal(pidfile_parse("", &pid, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    assert_int_equal(pidfile_parse("12ab", &pid, &err), -1);
    assert_int_equal(pidfile_parse("-5", &pid, &err), -1);
    assert_int_equal(pidfile_parse("0", &pid, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_flags),
        cmocka_unit_test(test_debug_and_bools),
        cmocka_unit_test(test_version_and_help_skip_validation),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_loopback_tcp_allowed_without_tls),
        cmocka_unit_test(test_pidfile_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
