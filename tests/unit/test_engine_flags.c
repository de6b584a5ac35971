/* machine-engine command-line flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <stdio.h>

#include "daemon/daemon.h"
#include "engine_flags.h"

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

/* dockerd's daemon options (issue 18): honoured ones land in the config, the ones the engine
 * always does are accepted when true, others are refused by name. */
static void test_dockerd_daemon_options(void **state)
{
    (void)state;
    char *argv[] = { "machine-engine", "--dns", "10.0.0.53", "--dns=10.0.0.54",
                     "--dns-search", "lab.example", "--dns-opt", "ndots:2",
                     "--max-concurrent-downloads", "5", "--log-driver=json-file", "--live-restore",
                     "--icc=true", "--iptables", "--userland-proxy=true", "--ip-forward",
                     "--storage-driver", "overlay2", "--mtu=1500", "--max-concurrent-uploads=2",
                     "--log-opt", "max-size=10m", "--default-ulimit=nofile=1024:2048",
                     "--log-driver=none", "--storage-driver=vfs" };
    struct engine_config cfg;
    struct merr err = MERR_INIT;
    assert_int_equal(engine_config_parse(&cfg, ARGC(argv), argv, &err), 0);
    assert_string_equal(cfg.dns[0], "10.0.0.53");
    assert_string_equal(cfg.dns[1], "10.0.0.54");
    assert_null(cfg.dns[2]);
    assert_string_equal(cfg.dns_search[0], "lab.example");
    assert_string_equal(cfg.dns_options[0], "ndots:2");
    assert_int_equal(cfg.max_concurrent_downloads, 5);
    assert_true(cfg.live_restore);
    assert_int_equal(cfg.mtu, 1500);
    assert_string_equal(cfg.log_opts[0], "max-size=10m");
    assert_string_equal(cfg.default_ulimits[0], "nofile=1024:2048");
    assert_string_equal(cfg.log_driver, "none");
    assert_string_equal(cfg.storage_driver, "vfs");
    engine_config_release(&cfg);

    static const char *const refused[] = {
        "--log-driver=syslog", "--ipv6=true", "--icc=false", "--iptables=false", "--userland-proxy=false", "--storage-driver=btrfs",
        "--userns-remap=default",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *bad[] = { "machine-engine", (char *)refused[i] };
        err = (struct merr)MERR_INIT;
        assert_int_equal(engine_config_parse(&cfg, ARGC(bad), bad, &err), -1);
        assert_int_equal(err.code, MERR_UNSUPPORTED);
        assert_non_null(strstr(err.msg, "not supported by machine-engine"));
    }
    char *zero[] = { "machine-engine", "--max-concurrent-downloads=0" };
    assert_int_equal(engine_config_parse(&cfg, ARGC(zero), zero, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

/* machine create checks --engine-opt with the same table: what the engine takes passes, what
 * it refuses is refused the same way, and an unknown name is named. */
static void test_engine_opt_check_matches_engine(void **state)
{
    (void)state;
    static const char *const opts[] = {
        "dns=10.0.0.53", "dns-search=lab", "log-driver=json-file", "log-driver=syslog",
        "max-concurrent-downloads=4", "icc=false", "live-restore=true", "default-ulimit=nofile=1",
        "log-level=debug", "label=a=b", "no-such-flag=1", "mtu=9000", "mtu=20", "debug",
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        struct merr m_err = MERR_INIT, e_err = MERR_INIT;
        int machine_rc = engine_flag_check_opt(opts[i], &m_err);
        char arg[128];
        snprintf(arg, sizeof arg, "--%s", opts[i]);
        char *argv[] = { "machine-engine", arg };
        struct engine_config cfg;
        int engine_rc = engine_config_parse(&cfg, ARGC(argv), argv, &e_err);
        if (engine_rc == 0)
            engine_config_release(&cfg);
        assert_int_equal(machine_rc, engine_rc);
    }
    struct merr err = MERR_INIT;
    assert_int_equal(engine_flag_check_opt("log-driver=syslog", &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "log-driver=syslog"));
    err = (struct merr)MERR_INIT;
    assert_int_equal(engine_flag_check_opt("bogus=1", &err), -1);
    assert_non_null(strstr(err.msg, "--bogus"));
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
        cmocka_unit_test(test_dockerd_daemon_options),
        cmocka_unit_test(test_engine_opt_check_matches_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
