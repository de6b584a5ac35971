/* Machine model: names, os-release, config.json round trip and corruption. */
#include "test_helpers.h"

#include "machine.h"

static void test_name_validation(void **state)
{
    struct merr err = MERR_INIT;
    const char *good[] = { "h1", "a", "lab-1.example", "0abc", "A-B.c" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(machine_validate_name(good[i], &err), 0);
    const char *bad[] = { "", "-x", ".x", "a b", "a/b", "a_b", "../x", "h1\n", "é",
                          "0123456789012345678901234567890123456789012345678901234567890123" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        merr_clear(&err);
        assert_int_equal(machine_validate_name(bad[i], &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    assert_int_equal(machine_validate_name(NULL, &err), -1);
}

static void test_os_release(void **state)
{
    const char *debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n"
                         "VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\n"
                         "ID=debian\nHOME_URL=\"https://www.debian.org/\"\n";
    struct os_release os;
    struct merr err = MERR_INIT;
    assert_int_equal(os_release_parse(debian, &os, &err), 0);
    assert_string_equal(os.id, "debian");
    assert_string_equal(os.version_id, "12");
    assert_string_equal(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
    assert_null(os.id_like);
    os_release_clear(&os);

    const char *ubuntu = "ID=ubuntu\nID_LIKE=debian\nVERSION_ID='22.04'\n# comment=x\n";
    assert_int_equal(os_release_parse(ubuntu, &os, &err), 0);
    assert_string_equal(os.id, "ubuntu");
    assert_string_equal(os.id_like, "debian");
    assert_string_equal(os.version_id, "22.04");
    os_release_clear(&os);

    assert_int_equal(os_release_parse("NAME=x\n", &os, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_int_equal(os_release_parse("", &os, &err), -1);
}

static void test_json_round_trip(void **state)
{
    auto_machine struct machine *m = machine_new("h1", "generic");
    machine_driver_set_str(m, "IPAddress", "10.0.0.2");
    machine_driver_set_int(m, "SSHPort", 2222);
    m->engine.labels = strv_push(m->engine.labels, "env=lab");
    m->engine.insecure_registry = strv_push(NULL, "10.0.0.9:5000");
    m->auth.sans = strv_push(NULL, "h1.example");
    m->engine.port = 12376;
    m->os.id = xstrdup("debian");
    machine_set_status(m, MACHINE_STATUS_ERROR, "ssh failed");

    json_t *j = machine_to_json(m);
    char *text = json_dumps(j, 0);
    json_decref(j);
    struct merr err = MERR_INIT;
    auto_machine struct machine *back = machine_from_text(text, strlen(text), &err);
    free(text);
    assert_non_null(back);
    assert_string_equal(back->name, "h1");
    assert_string_equal(back->driver_name, "generic");
    assert_string_equal(machine_driver_str(back, "IPAddress"), "10.0.0.2");
    assert_int_equal(machine_driver_int(back, "SSHPort", 22), 2222);
    assert_int_equal(machine_driver_int(back, "Missing", 7), 7);
    assert_string_equal(back->engine.labels[0], "env=lab");
    assert_null(back->engine.labels[1]);
    assert_string_equal(back->engine.insecure_registry[0], "10.0.0.9:5000");
    assert_string_equal(back->auth.sans[0], "h1.example");
    assert_int_equal(back->engine.port, 12376);
    assert_string_equal(back->os.id, "debian");
    assert_string_equal(back->status, MACHINE_STATUS_ERROR);
    assert_string_equal(back->error, "ssh failed");
    assert_int_equal(back->config_version, MACHINE_CONFIG_VERSION);
}

static void expect_corrupt(const char *text)
{
    struct merr err = MERR_INIT;
    struct machine *m = machine_from_text(text, strlen(text), &err);
    assert_null(m);
    assert_int_equal(err.code, MERR_CORRUPT);
}

static void test_corrupt_configs(void **state)
{
    expect_corrupt("");
    expect_corrupt("{");
    expect_corrupt("[]");
    expect_corrupt("{\"Name\":\"h1\"}");
    expect_corrupt("{\"ConfigVersion\":99,\"Name\":\"h1\",\"DriverName\":\"none\",\"Lifecycle\":{\"Status\":\"created\"}}");
    expect_corrupt("{\"ConfigVersion\":1,\"Name\":5,\"DriverName\":\"none\",\"Lifecycle\":{\"Status\":\"created\"}}");
    expect_corrupt("{\"ConfigVersion\":1,\"Name\":\"h1\",\"DriverName\":\"none\"}");
    expect_corrupt("{\"ConfigVersion\":1,\"Name\":\"h1\",\"DriverName\":\"none\",\"Lifecycle\":{\"Status\":\"created\"},"
                   "\"HostOptions\":{\"EngineOptions\":{\"Labels\":[1]}}}");
    expect_corrupt("{\"ConfigVersion\":1,\"Name\":\"h1\",\"DriverName\":\"none\",\"Lifecycle\":{\"Status\":\"created\"},"
                   "\"HostOptions\":{\"EngineOptions\":{\"Port\":70000}}}");
    /* duplicate keys are rejected rather than silently resolved */
    expect_corrupt("{\"ConfigVersion\":1,\"Name\":\"h1\",\"Name\":\"h2\",\"DriverName\":\"none\",\"Lifecycle\":{\"Status\":\"created\"}}");
}

static void test_strv(void **state)
{
    char **v = NULL;
    v = strv_push(v, "a");
    v = strv_push(v, "b");
    assert_int_equal(strv_len(v), 2);
    char **d = strv_dup(v);
    assert_string_equal(d[1], "b");
    assert_null(d[2]);
    strv_free(v);
    strv_free(d);
    assert_int_equal(strv_len(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_validation), cmocka_unit_test(test_os_release),
        cmocka_unit_test(test_json_round_trip), cmocka_unit_test(test_corrupt_configs),
        cmocka_unit_test(test_strv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
