/* Container rendering: docker's human durations, ps status texts, timestamps, records. */
#include "test_helpers.h"

#include "container/container.h"
#include "machine.h"

#define S 1000000000LL

static void expect_duration(int64_t secs, const char *want)
{
    char *got = fmt_human_duration(secs);
    assert_string_equal(got, want);
    free(got);
}

static void test_human_duration(void **state)
{
    expect_duration(0, "Less than a second");
    expect_duration(1, "1 second");
    expect_duration(59, "59 seconds");
    expect_duration(60, "About a minute");
    expect_duration(119, "About a minute");
    expect_duration(120, "2 minutes");
    expect_duration(3599, "59 minutes");
    expect_duration(3600, "About an hour");
    expect_duration(2 * 3600, "2 hours");
    expect_duration(47 * 3600, "47 hours");
    expect_duration(3 * 86400, "3 days");
    expect_duration(20 * 86400, "2 weeks");
    expect_duration(90 * 86400, "3 months");
    expect_duration(800 * 86400, "2 years");
}

static void test_status_text(void **state)
{
    struct ctr_state st = { .status = CTR_RUNNING, .started_ns = 100 * S };
    char *s = ctr_status_text(&st, 105 * S);
    assert_string_equal(s, "Up 5 seconds");
    free(s);
    st = (struct ctr_state){ .status = CTR_EXITED, .exit_code = 137, .finished_ns = 100 * S };
    s = ctr_status_text(&st, 280 * S);
    assert_string_equal(s, "Exited (137) 3 minutes ago");
    free(s);
    st = (struct ctr_state){ .status = CTR_CREATED };
    s = ctr_status_text(&st, 1);
    assert_string_equal(s, "Created");
    free(s);
    st = (struct ctr_state){ .status = CTR_PAUSED, .started_ns = 0 };
    s = ctr_status_text(&st, 1);
    assert_string_equal(s, "Up Less than a second (Paused)");
    free(s);
}

static void test_rfc3339(void **state)
{
    char *s = fmt_rfc3339_nano(0);
    assert_string_equal(s, "0001-01-01T00:00:00Z");
    free(s);
    s = fmt_rfc3339_nano(1700000000LL * S + 123450000);
    assert_string_equal(s, "2023-11-14T22:13:20.12345Z");
    free(s);
    s = fmt_rfc3339_nano(1700000000LL * S);
    assert_string_equal(s, "2023-11-14T22:13:20Z");
    free(s);
}

static struct container *sample(void)
{
    struct merr err = MERR_INIT;
    json_t *body = json_pack("{s:s,s:[s,s],s:{s:s}}", "Image", "busybox", "Cmd", "echo", "hi",
                             "Labels", "a", "1");
    struct container *c = xcalloc(1, sizeof *c);
    memset(c->id, 'a', CTR_ID_LEN);
    c->name = xstrdup("web");
    c->image_id = xstrdup("sha256:0123");
    c->image_ref = xstrdup("busybox");
    c->created_ns = 1700000000LL * S;
    c->config = ctr_config_from_create(body, &err);
    json_decref(body);
    assert_non_null(c->config);
    assert_int_equal(ctr_plan(c->config, NULL, &c->plan, &err), 0);
    c->state.status = CTR_EXITED;
    c->state.exit_code = 3;
    c->state.oom_killed = true;
    c->state.error = xstrdup("boom");
    c->state.finished_ns = 1700000001LL * S;
    return c;
}

static void test_ps_and_inspect(void **state)
{
    struct container *c = sample();
    json_t *ps = ctr_ps_json(c, 1700000100LL * S);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ps, "Names"), 0)), "/web");
    assert_string_equal(json_string_value(json_object_get(ps, "Command")), "echo hi");
    assert_string_equal(json_string_value(json_object_get(ps, "State")), "exited");
    assert_string_equal(json_string_value(json_object_get(ps, "Status")), "Exited (3) About a minute ago");
    assert_int_equal(json_integer_value(json_object_get(ps, "Created")), 1700000000);
    json_decref(ps);

    json_t *in = ctr_inspect_json(c, NULL, "/x.log");
    json_t *st = json_object_get(in, "State");
    assert_int_equal(json_integer_value(json_object_get(st, "ExitCode")), 3);
    assert_true(json_is_true(json_object_get(st, "OOMKilled")));
    assert_false(json_is_true(json_object_get(st, "Running")));
    assert_string_equal(json_string_value(json_object_get(in, "Path")), "echo");
    assert_string_equal(json_string_value(json_array_get(json_object_get(in, "Args"), 0)), "hi");
    json_t *cfg = json_object_get(in, "Config");
    assert_false(json_is_true(json_object_get(cfg, "Tty")));
    assert_string_equal(json_string_value(json_object_get(cfg, "Hostname")), "aaaaaaaaaaaa");
    json_decref(in);
    container_free(c);
}

static void test_record_round_trip(void **state)
{
    struct container *c = sample();
    json_t *j = container_to_json(c);
    struct merr err = MERR_INIT;
    struct container *back = container_from_json(j, &err);
    json_decref(j);
    assert_non_null(back);
    assert_string_equal(back->id, c->id);
    assert_string_equal(back->name, "web");
    assert_int_equal(back->state.status, CTR_EXITED);
    assert_int_equal(back->state.exit_code, 3);
    assert_true(back->state.oom_killed);
    assert_string_equal(back->state.error, "boom");
    assert_string_equal(back->plan.argv[1], "hi");
    assert_string_equal(json_string_value(json_object_get(back->plan.labels, "a")), "1");
    container_free(back);
    container_free(c);

    json_t *bad = json_pack("{s:i,s:s}", "Version", 1, "Id", "short");
    assert_null(container_from_json(bad, &err));
    assert_int_equal(err.code, MERR_CORRUPT);
    json_decref(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_human_duration), cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_rfc3339),        cmocka_unit_test(test_ps_and_inspect),
        cmocka_unit_test(test_record_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
