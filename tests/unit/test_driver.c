/* Driver registry, flags as data, unsupported operations, driver input checks. */
#include "test_helpers.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "command.h"
#include "context.h"
#include "curl_linked.h"
#include "curlapi.h"
#include "driver.h"
#include "http.h"
#include "lifecycle.h"
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

    /* the port's range is the flag table's, checked by core */
    machine_driver_set_int(m, DKEY_SSH_PORT, 70000);
    assert_int_equal(driver_check_flags(&driver_generic, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_non_null(strstr(err.msg, "generic-ssh-port"));
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);
    assert_int_equal(driver_check_flags(&driver_generic, m, &err), 0);

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

/* A driver of its own, for the flag table's bounds. */
static const struct driver_flag bounded_flags[] = {
    { .name = "b-count", .key = "Count", .help = "h", .type = DFLAG_INT, .def = "4", .min = 1,
      .max = 8 },
    { .name = "b-free", .key = "Free", .help = "h", .type = DFLAG_INT },
    { .name = "b-mode", .key = "Mode", .help = "h", .type = DFLAG_STRING, .def = "fast",
      .choices = (const char *const[]){ "fast", "slow", NULL } },
    { 0 },
};
static const struct driver bounded = { .name = "bounded", .description = "d", .flags = bounded_flags };

static void test_flag_bounds(void **state)
{
    struct merr err = MERR_INIT;
    struct fake_flags none[] = { { NULL, { NULL } } };
    auto_machine struct machine *m = machine_new("b", "bounded");
    assert_int_equal(driver_apply_flags(&bounded, m, lookup, none, &err), 0); /* defaults pass */
    assert_int_equal(machine_driver_int(m, "Count", 0), 4);

    const char *const bad_counts[] = { "0", "9", "-1", "99999999999" };
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++) {
        struct fake_flags given[] = { { "b-count", { (char *)bad_counts[i], NULL } }, { NULL, { NULL } } };
        auto_machine struct machine *mb = machine_new("b", "bounded");
        assert_int_equal(driver_apply_flags(&bounded, mb, lookup, given, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        assert_non_null(strstr(err.msg, "--b-count"));
    }
    const char *const edges[] = { "1", "8" };
    for (size_t i = 0; i < 2; i++) {
        struct fake_flags given[] = { { "b-count", { (char *)edges[i], NULL } },
                                      { "b-free", { "-123456", NULL } }, /* no bounds: any number */
                                      { NULL, { NULL } } };
        auto_machine struct machine *mb = machine_new("b", "bounded");
        assert_int_equal(driver_apply_flags(&bounded, mb, lookup, given, &err), 0);
    }
    struct fake_flags bad_mode[] = { { "b-mode", { "medium", NULL } }, { NULL, { NULL } } };
    auto_machine struct machine *m2 = machine_new("b", "bounded");
    assert_int_equal(driver_apply_flags(&bounded, m2, lookup, bad_mode, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_non_null(strstr(err.msg, "fast, slow")); /* the choices are named */

    /* stored values (a machine built without the CLI) are checked the same way */
    machine_driver_set_str(m, "Mode", "");
    assert_int_equal(driver_check_flags(&bounded, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    machine_driver_set_str(m, "Mode", "slow");
    machine_driver_set_str(m, "Count", "4"); /* not a number */
    assert_int_equal(driver_check_flags(&bounded, m, &err), -1);
    machine_driver_set_int(m, "Count", 8);
    assert_int_equal(driver_check_flags(&bounded, m, &err), 0);

    /* the real tables: kvm's memory, CPUs, disk and domain type */
    struct fake_flags kvm_bad[][2] = {
        { { "kvm-memory", { "16", NULL } }, { NULL, { NULL } } },
        { { "kvm-cpu-count", { "0", NULL } }, { NULL, { NULL } } },
        { { "kvm-disk-size", { "100", NULL } }, { NULL, { NULL } } },
        { { "kvm-domain-type", { "xen", NULL } }, { NULL, { NULL } } },
    };
    for (size_t i = 0; i < sizeof kvm_bad / sizeof kvm_bad[0]; i++) {
        auto_machine struct machine *mk = machine_new("k", "kvm");
        assert_int_equal(driver_apply_flags(&driver_kvm, mk, lookup, kvm_bad[i], &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        assert_non_null(strstr(err.msg, kvm_bad[i][0].name));
    }
}

struct countdown {
    int left;
    int calls;
};

static int poll_countdown(void *opaque, struct merr *err)
{
    struct countdown *c = opaque;
    c->calls++;
    if (c->left < 0)
        return merr_set(err, MERR_REMOTE, 0, "gone");
    return --c->left <= 0 ? 1 : 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void test_wait_until(void **state)
{
    struct merr err = MERR_INIT;
    struct driver_ctx ctx = { .deadline_ms = mono_ms() + 60000 };
    struct countdown c = { .left = 3 };
    assert_int_equal(driver_wait_until(&ctx, 0, "it", poll_countdown, &c, &err), 0);
    assert_int_equal(c.calls, 3);

    /* a poll's failure ends the wait with its error */
    struct countdown failing = { .left = -1 };
    assert_int_equal(driver_wait_until(&ctx, 0, "it", poll_countdown, &failing, &err), -1);
    assert_int_equal(err.code, MERR_REMOTE);
    assert_int_equal(failing.calls, 1);

    /* the context's deadline bounds every wait: past it, one poll and MERR_TIMEOUT */
    struct driver_ctx late = { .deadline_ms = mono_ms() - 1 };
    struct countdown never = { .left = 1000000 };
    assert_int_equal(driver_wait_until(&late, 60000, "the thing", poll_countdown, &never, &err), -1);
    assert_int_equal(err.code, MERR_TIMEOUT);
    assert_int_equal(never.calls, 1);
    assert_non_null(strstr(err.msg, "the thing"));
}

/* The toolkit a driver gets: the context's command runner and libcurl, an HTTP client made with
 * them, and requests bounded by what is left of the operation's deadline. */
static int record_run(void *opaque, const struct cmd_spec *spec, struct cmd_result *res,
                      struct merr *err)
{
    (*(int *)opaque)++;
    return 0;
}

static void test_toolkit(void **state)
{
    int runs = 0;
    struct cmd_runner recorder = { record_run, &runs };
    struct curl_api curl;
    curl_api_linked(&curl);
    struct machine_ctx mctx = { .drivers = machine_drivers(), .op_timeout_ms = 60000,
                                .command = &recorder, .curl = &curl };
    struct driver_ctx dctx;
    lifecycle_driver_ctx(&mctx, &dctx);
    assert_ptr_equal(dctx.command, &recorder);
    assert_ptr_equal(dctx.curl, &curl);
    char *argv[] = { "VBoxManage", "list", "vms", NULL };
    struct cmd_spec spec = { .argv = argv };
    struct cmd_result res = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(cmd_run(dctx.command, &spec, &res, &err), 0);
    cmd_result_release(&res);
    assert_int_equal(runs, 1); /* the recorder ran, not VBoxManage */
    long left = driver_http_deadline(&dctx);
    assert_true(left > 50000 && left <= 60000);
    struct http_client *c = driver_http_client(&dctx, NULL, &err);
    assert_non_null(c);
    http_client_free(c);
    dctx.curl = NULL;
    assert_null(driver_http_client(&dctx, NULL, &err));
    dctx.deadline_ms = 0;
    assert_int_equal(driver_http_deadline(&dctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),          cmocka_unit_test(test_unsupported_ops),
        cmocka_unit_test(test_apply_flags),       cmocka_unit_test(test_generic_precreate),
        cmocka_unit_test(test_none_driver),       cmocka_unit_test(test_flag_bounds),
        cmocka_unit_test(test_wait_until),        cmocka_unit_test(test_toolkit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
