/* Driver plugins: the protocol codec, flag import, error mapping, field updates, discovery. */
#include "test_helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "jsonutil.h"
#include "machine.h"
#include "plugin.h"
#include "registry.h"
#include "secrets.h"
#include "strv.h"

#define HS "{\"protocol\":1,\"name\":\"ex\",\"version\":\"0.3\",\"description\":\"an example\"," \
           "\"capabilities\":[\"create\",\"state\"],\"fields\":[\"Netns\"]}\n"

static int parse(const char *text, struct plugin_reply *r, struct merr *err)
{
    merr_clear(err);
    return plugin_parse_reply("ex", text, r, err);
}

static void test_reply_good(void **state)
{
    (void)state;
    struct plugin_reply r;
    struct merr err = MERR_INIT;
    assert_int_equal(parse(HS "{\"progress\":\"making\"}\n\n{\"progress\":\"booting\"}\n"
                              "{\"result\":{\"fields\":{\"IPAddress\":\"10.0.0.2\"}}}\n",
                           &r, &err), 0);
    assert_string_equal(r.info.name, "ex");
    assert_string_equal(r.info.version, "0.3");
    assert_true(r.info.uses_ssh);
    assert_true(plugin_info_can(&r.info, "create"));
    assert_false(plugin_info_can(&r.info, "kill"));
    assert_int_equal(strv_len(r.progress), 2);
    assert_string_equal(r.progress[1], "booting");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.result, "fields"),
                                                          "IPAddress")),
                        "10.0.0.2");
    plugin_reply_release(&r);
}

static void test_reply_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum merr_code code;
        const char *says;
    } cases[] = {
        { "", MERR_PROTOCOL, "ended without an answer" },
        { HS, MERR_PROTOCOL, "ended without an answer" },
        { "hello there\n", MERR_PROTOCOL, "not JSON" },
        { HS "Traceback (most recent call last):\n", MERR_PROTOCOL, "not JSON" },
        { "{\"result\":{}}\n", MERR_PROTOCOL, "handshake" },
        { "{\"protocol\":2,\"name\":\"ex\",\"version\":\"1\"}\n{\"result\":{}}\n", MERR_PROTOCOL,
          "protocol 2" },
        { "{\"protocol\":1,\"name\":\"other\",\"version\":\"1\"}\n{\"result\":{}}\n", MERR_PROTOCOL,
          "calls itself 'other'" },
        { "{\"protocol\":1,\"name\":\"ex\",\"version\":\"1\",\"colour\":1}\n{\"result\":{}}\n",
          MERR_PROTOCOL, "unknown field 'colour'" },
        { "{\"protocol\":1,\"name\":\"ex\"}\n{\"result\":{}}\n", MERR_PROTOCOL, "without name" },
        { HS "{\"result\":{}}\n{\"progress\":\"late\"}\n", MERR_PROTOCOL, "after its answer" },
        { HS "{\"result\":{},\"error\":{}}\n", MERR_PROTOCOL, "not one of" },
        { HS "{\"shout\":1}\n", MERR_PROTOCOL, "unknown message 'shout'" },
        { HS "{\"progress\":7}\n", MERR_PROTOCOL, "progress" },
        { HS "{\"result\":[]}\n", MERR_PROTOCOL, "not an object" },
        { HS "{\"error\":{\"code\":\"invalid\"}}\n", MERR_PROTOCOL, "code and a message" },
        { HS "{\"error\":{\"code\":\"not_found\",\"message\":\"no host 'x'\"}}\n", MERR_NOT_FOUND,
          "driver plugin 'ex': no host 'x'" },
        { HS "{\"error\":{\"code\":\"precreate\",\"message\":\"no netns support\"}}\n",
          MERR_PRECREATE, "no netns support" },
        { HS "{\"error\":{\"code\":\"martian\",\"message\":\"odd\"}}\n", MERR_REMOTE, "odd" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct plugin_reply r;
        struct merr err = MERR_INIT;
        if (parse(cases[i].text, &r, &err) != -1 || err.code != cases[i].code ||
            strstr(err.msg, cases[i].says) == NULL)
            fail_msg("case %zu: code %d, '%s'", i, err.code, err.msg);
        assert_non_null(strstr(err.msg, "'ex'")); /* every message names the plugin */
        plugin_reply_release(&r);
    }
}

static void test_error_codes(void **state)
{
    (void)state;
    assert_int_equal(plugin_error_code("invalid"), MERR_INVALID);
    assert_int_equal(plugin_error_code("not_found"), MERR_NOT_FOUND);
    assert_int_equal(plugin_error_code("unsupported"), MERR_UNSUPPORTED);
    assert_int_equal(plugin_error_code("timeout"), MERR_TIMEOUT);
    assert_int_equal(plugin_error_code("auth"), MERR_AUTH);
    assert_int_equal(plugin_error_code("precreate"), MERR_PRECREATE);
    assert_int_equal(plugin_error_code("unreachable"), MERR_UNREACHABLE);
    assert_int_equal(plugin_error_code("whatever"), MERR_REMOTE);
    assert_int_equal(plugin_error_code(NULL), MERR_REMOTE);
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    assert_non_null(v);
    return v;
}

static char *const *lookup(void *opaque, const char *name)
{
    (void)opaque;
    static char *token[] = { "s3cr3t", NULL };
    return strcmp(name, "ex-token") == 0 ? token : NULL;
}

static void test_flags_import(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    auto_json json_t *res = load(
        "{\"flags\":[{\"name\":\"ex-size\",\"key\":\"Size\",\"type\":\"int\",\"default\":\"2\","
        "\"min\":1,\"max\":8,\"env\":\"EX_SIZE\",\"help\":\"how big\"},"
        "{\"name\":\"ex-token\",\"key\":\"Token\",\"secret\":true,\"required\":true},"
        "{\"name\":\"ex-tier\",\"key\":\"Tier\",\"choices\":[\"a\",\"b\"],\"default\":\"a\"},"
        "{\"name\":\"ex-tag\",\"key\":\"Tags\",\"type\":\"list\"},"
        "{\"name\":\"ex-fast\",\"key\":\"Fast\",\"type\":\"bool\"}]}");
    struct driver_flag *f = plugin_flags_import("ex", res, &err);
    assert_non_null(f);
    assert_string_equal(f[0].name, "ex-size");
    assert_int_equal(f[0].type, DFLAG_INT);
    assert_int_equal(f[0].min, 1);
    assert_int_equal(f[0].max, 8);
    assert_string_equal(f[0].env, "EX_SIZE");
    assert_string_equal(f[0].def, "2");
    assert_true(f[1].secret);
    assert_true(f[1].required);
    assert_int_equal(f[1].type, DFLAG_STRING);
    assert_string_equal(f[2].choices[1], "b");
    assert_null(f[2].choices[2]);
    assert_int_equal(f[3].type, DFLAG_STRING_LIST);
    assert_int_equal(f[4].type, DFLAG_BOOL);
    assert_null(f[5].name);

    /* the imported table drives the common flag code: the secret lands apart */
    struct driver d = { .name = "ex", .flags = f };
    auto_machine struct machine *m = machine_new("p1", "ex");
    unsetenv("EX_SIZE");
    assert_int_equal(driver_apply_flags(&d, m, lookup, NULL, &err), 0);
    assert_int_equal(machine_driver_int(m, "Size", 0), 2);
    assert_null(json_object_get(m->driver, "Token"));
    assert_string_equal(machine_secret(m, "Token"), "s3cr3t");

    /* ... and the request carries it in "secrets", not in "fields" */
    auto_free char *req = plugin_request("create", m, "ssh-ed25519 AAAA p1", 5000);
    auto_json json_t *jr = load(req);
    json_t *jm = json_object_get(jr, "machine");
    assert_string_equal(json_string_value(json_object_get(jr, "verb")), "create");
    assert_int_equal(json_integer_value(json_object_get(jr, "protocol")), PLUGIN_PROTOCOL);
    assert_int_equal(json_integer_value(json_object_get(jr, "timeout_ms")), 5000);
    assert_string_equal(json_string_value(json_object_get(jr, "ssh_public_key")), "ssh-ed25519 AAAA p1");
    assert_null(json_object_get(json_object_get(jm, "fields"), "Token"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(jm, "secrets"), "Token")),
                        "s3cr3t");
    assert_int_equal(req[strlen(req) - 1], '\n');
    assert_ptr_equal(strchr(req, '\n'), req + strlen(req) - 1); /* one line */
    plugin_flags_free(f);
}

static void test_flags_import_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{}",
        "{\"flags\":[7]}",
        "{\"flags\":[{\"name\":\"ex-a\"}]}",                                  /* no key */
        "{\"flags\":[{\"name\":\"size\",\"key\":\"Size\"}]}",                 /* not ex- */
        "{\"flags\":[{\"name\":\"ex-a\",\"key\":\"A\",\"type\":\"float\"}]}", /* type */
        "{\"flags\":[{\"name\":\"ex-a\",\"key\":\"A\",\"default\":3}]}",      /* default */
        "{\"flags\":[{\"name\":\"ex-a\",\"key\":\"A\",\"colour\":\"red\"}]}", /* unknown */
        "{\"flags\":[{\"name\":\"ex-a\",\"key\":\"A\",\"choices\":[1]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct merr err = MERR_INIT;
        auto_json json_t *res = load(bad[i]);
        if (plugin_flags_import("ex", res, &err) != NULL || err.code != MERR_PROTOCOL)
            fail_msg("case %zu accepted", i);
    }
}

static void test_apply_fields(void **state)
{
    (void)state;
    struct plugin_info info = { .name = xstrdup("ex") };
    info.fields = strv_push(strv_push(NULL, "Netns"), "Index");
    auto_machine struct machine *m = machine_new("p1", "ex");
    machine_driver_set_str(m, "Netns", "old");
    machine_secret_set(m, "Token", "s3cr3t");
    struct merr err = MERR_INIT;

    auto_json json_t *good = load("{\"fields\":{\"IPAddress\":\"10.1.0.2\",\"SSHPort\":22,"
                                  "\"Netns\":null,\"Index\":3}}");
    assert_int_equal(plugin_apply_fields(&info, good, m, &err), 0);
    assert_string_equal(machine_driver_str(m, DKEY_IP), "10.1.0.2");
    assert_int_equal(machine_driver_int(m, "Index", 0), 3);
    assert_null(json_object_get(m->driver, "Netns"));

    /* all or nothing: one bad field and nothing changes */
    static const char *const bad[] = {
        "{\"fields\":{\"IPAddress\":\"10.9.9.9\",\"Colour\":\"red\"}}",
        "{\"fields\":{\"IPAddress\":\"10.9.9.9\",\"Token\":\"stolen\"}}",
        "{\"fields\":{\"IPAddress\":\"10.9.9.9\",\"Index\":[1]}}",
        "{\"fields\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        auto_json json_t *res = load(bad[i]);
        merr_clear(&err);
        assert_int_equal(plugin_apply_fields(&info, res, m, &err), -1);
        assert_int_equal(err.code, MERR_PROTOCOL);
        assert_string_equal(machine_driver_str(m, DKEY_IP), "10.1.0.2");
    }
    assert_string_equal(machine_secret(m, "Token"), "s3cr3t");
    assert_null(json_object_get(m->driver, "Token"));
    plugin_info_release(&info);
}

static void write_exec(const char *dir, const char *name)
{
    auto_free char *p = path_join(dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    assert_int_equal(chmod(p, 0755), 0);
}

static void test_discovery(void **state)
{
    (void)state;
    char *a = test_tmpdir(), *b = test_tmpdir();
    write_exec(a, "machine-driver-ex");
    write_exec(b, "machine-driver-ex");
    write_exec(b, "machine-driver-two");
    write_exec(b, "machine-driver-generic"); /* cannot shadow the built-in */
    auto_free char *notexec = path_join(b, "machine-driver-plain");
    assert_int_equal(fs_write_atomic(notexec, "x", 1, 0644, &(struct merr)MERR_INIT), 0);
    auto_free char *path = xasprintf("%s:%s", a, b);
    setenv("MACHINE_DRIVER_PATH", path, 1);
    auto_free char *found = plugin_find(NULL, "ex");
    auto_free char *want = path_join(a, "machine-driver-ex");
    assert_string_equal(found, want);
    assert_null(plugin_find(NULL, "plain"));
    assert_null(plugin_find(NULL, "../bin/sh"));
    auto_strv char **names = plugin_list(NULL, machine_drivers());
    assert_int_equal(strv_len(names), 2);
    assert_string_equal(names[0], "ex");
    assert_string_equal(names[1], "two");

    struct plugin_set *set = plugin_set_new();
    struct merr err = MERR_INIT;
    assert_null(plugin_set_load(set, NULL, NULL, machine_drivers(), "generic", 1000, &err));
    assert_int_equal(err.code, MERR_EXISTS);
    merr_clear(&err);
    assert_null(plugin_set_load(set, NULL, NULL, machine_drivers(), "nosuch", 1000, &err));
    assert_int_equal(err.code, MERR_NOT_FOUND);
    merr_clear(&err);
    /* exits 0 without a word */
    assert_null(plugin_set_load(set, NULL, NULL, machine_drivers(), "ex", 5000, &err));
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "'ex'"));
    plugin_set_free(set);
    unsetenv("MACHINE_DRIVER_PATH");
    test_tmpdir_remove(a);
    test_tmpdir_remove(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_good),   cmocka_unit_test(test_reply_bad),
        cmocka_unit_test(test_error_codes),  cmocka_unit_test(test_flags_import),
        cmocka_unit_test(test_flags_import_bad), cmocka_unit_test(test_apply_fields),
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
