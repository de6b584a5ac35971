/* Driver registry, flags as data, unsupported operations, driver input checks. */
#include "test_helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "machine.h"
#include "registry.h"

static void test_registry(void **state)
{
    const struct driver *const *t = machine_drivers();
    assert_ptr_equal(driver_find(t, "generic"), &driver_generic);
    assert_ptr_equal(driver_find(t, "none"), &driver_none);
    assert_null(driver_find(t, "virtualbox9"));
    for (size_t i = 0; t[i] != NULL; i++) {
        assert_non_null(t[i]->name);
        assert_non_null(t[i]->description);
        for (const struct driver_flag *f = t[i]->flags; f->name != NULL; f++) {
            assert_non_null(f->key);
            assert_non_null(f->help);
        }
    }
}

static void test_unsupported_ops(void **state)
{
    auto_machine struct machine *m = machine_new("g1", "generic");
    struct driver_ctx ctx = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(driver_start(&driver_generic, &ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "generic"));
    assert_int_equal(driver_stop(&driver_generic, &ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    assert_int_equal(driver_kill(&driver_generic, &ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    assert_int_equal(driver_restart(&driver_none, &ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
}

struct fake_flags {
    const char *name;
    char *values[3];
};

static char *const *lookup(void *opaque, const char *name)
{
    struct fake_flags *f = opaque;
    for (; f->name != NULL; f++)
        if (strcmp(f->name, name) == 0)
            return f->values;
    return NULL;
}

static void test_apply_flags(void **state)
{
    unsetenv("GENERIC_SSH_USER");
    setenv("GENERIC_SSH_PORT", "2200", 1);
    struct fake_flags given[] = {
        { "generic-ip-address", { "10.9.8.7", NULL } },
        { "generic-engine-port", { "1000", "2000", NULL } }, /* last wins */
        { NULL, { NULL } },
    };
    auto_machine struct machine *m = machine_new("g1", "generic");
    struct merr err = MERR_INIT;
    assert_int_equal(driver_apply_flags(&driver_generic, m, lookup, given, &err), 0);
    assert_string_equal(machine_driver_str(m, DKEY_IP), "10.9.8.7");
    assert_string_equal(machine_driver_str(m, DKEY_SSH_USER), "root");   /* default */
    assert_int_equal(machine_driver_int(m, DKEY_SSH_PORT, 0), 2200);      /* env */
    assert_int_equal(machine_driver_int(m, DKEY_ENGINE_PORT, 0), 2000);
    unsetenv("GENERIC_SSH_PORT");

    struct fake_flags none_given[] = { { NULL, { NULL } } };
    auto_machine struct machine *m2 = machine_new("g2", "generic");
    unsetenv("GENERIC_IP_ADDRESS");
    assert_int_equal(driver_apply_flags(&driver_generic, m2, lookup, none_given, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_non_null(strstr(err.msg, "generic-ip-address"));

    struct fake_flags badport[] = {
        { "generic-ip-address", { "10.9.8.7", NULL } },
        { "generic-ssh-port", { "twenty-two", NULL } },
        { NULL, { NULL } },
    };
    auto_machine struct machine *m3 = machine_new("g3", "generic");
    assert_int_equal(driver_apply_flags(&driver_generic, m3, lookup, badport, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static int precreate(const struct driver *d, struct machine *m, struct merr *err)
{
    struct driver_ctx ctx = { 0 };
    return driver_precreate_check(d, &ctx, m, err);
}

static void test_generic_precreate(void **state)
{
    char *dir = test_tmpdir();
    auto_free char *key = path_join(dir, "id_test");
    struct merr err = MERR_INIT;
    assert_int_equal(fs_write_atomic(key, "not really a key\n", 17, 0600, &err), 0);

    const char *bad_ips[] = { "300.1.1.1", "not an ip", "", "-x", "1.2.3" };
    for (size_t i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++) {
        auto_machine struct machine *m = machine_new("g", "generic");
        machine_driver_set_str(m, DKEY_IP, bad_ips[i]);
        machine_driver_set_int(m, DKEY_SSH_PORT, 22);
        machine_driver_set_int(m, DKEY_ENGINE_PORT, 2376);
        machine_driver_set_str(m, DKEY_SSH_USER, "root");
        machine_driver_set_str(m, "SSHKeySource", key);
        assert_int_equal(precreate(&driver_generic, m, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }

    auto_machine struct machine *m = machine_new("g", "generic");
    machine_driver_set_str(m, DKEY_IP, "10.0.0.2");
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);
    machine_driver_set_int(m, DKEY_ENGINE_PORT, 2376);
    machine_driver_set_str(m, DKEY_SSH_USER, "root");
    machine_driver_set_str(m, "SSHKeySource", key);
    assert_int_equal(precreate(&driver_generic, m, &err), 0);

    machine_driver_set_int(m, DKEY_SSH_PORT, 70000);
    assert_int_equal(precreate(&driver_generic, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);

    /* A key readable by others is refused (security case 5). */
    assert_int_equal(chmod(key, 0644), 0);
    assert_int_equal(precreate(&driver_generic, m, &err), -1);
    assert_int_equal(err.code, MERR_PERM);

    machine_driver_set_str(m, "SSHKeySource", "/nonexistent/key");
    assert_int_equal(precreate(&driver_generic, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    test_tmpdir_remove(dir);
}

static void test_none_driver(void **state)
{
    struct merr err = MERR_INIT;
    struct driver_ctx ctx = { 0 };
    auto_machine struct machine *m = machine_new("e1", "none");
    machine_driver_set_str(m, "URL", "");
    assert_int_equal(precreate(&driver_none, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    machine_driver_set_str(m, "URL", "tcp://1.2.3.4:notaport");
    assert_int_equal(precreate(&driver_none, m, &err), -1);
    /* any other URL is stored as docker-machine stores it, with no address */
    static const char *const others[] = { "none", "unix:///var/run/docker.sock", "http://h:1" };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        auto_machine struct machine *o = machine_new("o1", "none");
        machine_driver_set_str(o, "URL", others[i]);
        assert_int_equal(precreate(&driver_none, o, &err), 0);
        assert_int_equal(driver_create(&driver_none, &ctx, o, &err), 0);
        auto_free char *ourl = driver_get_url(&driver_none, &ctx, o, &err);
        assert_string_equal(ourl, others[i]);
        assert_null(machine_driver_str(o, DKEY_IP));
    }
    machine_driver_set_str(m, "URL", "tcp://127.0.0.1:12376");
    assert_int_equal(precreate(&driver_none, m, &err), 0);
    assert_int_equal(driver_create(&driver_none, &ctx, m, &err), 0);
    assert_string_equal(machine_driver_str(m, DKEY_IP), "127.0.0.1");
    auto_free char *url = driver_get_url(&driver_none, &ctx, m, &err);
    assert_string_equal(url, "tcp://127.0.0.1:12376");
    auto_free char *ip = driver_get_ip(&driver_none, &ctx, m, &err);
    assert_string_equal(ip, "127.0.0.1");
    enum machine_state st = MSTATE_NONE;
    assert_int_equal(driver_get_state(&driver_none, &ctx, m, &st, &err), 0);
    assert_int_equal(st, MSTATE_RUNNING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),          cmocka_unit_test(test_unsupported_ops),
        cmocka_unit_test(test_apply_flags),       cmocka_unit_test(test_generic_precreate),
        cmocka_unit_test(test_none_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
