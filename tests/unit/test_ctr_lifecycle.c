/* Lifecycle option parsers: LogConfig and sizes, Healthcheck (merge with the image, defaults,
 * validation, the streak rules), detach keys. */
#include "test_helpers.h"

#include "container/lifecycle.h"
#include "machine.h"

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

static void test_ram_bytes(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    int64_t v = 0;
    assert_int_equal(ctr_parse_ram_bytes("10", &v, &err), 0);
    assert_int_equal(v, 10);
    assert_int_equal(ctr_parse_ram_bytes("1k", &v, &err), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(ctr_parse_ram_bytes("1.5m", &v, &err), 0);
    assert_int_equal(v, 1572864);
    assert_int_equal(ctr_parse_ram_bytes("2GB", &v, &err), 0);
    assert_int_equal(v, 2147483648LL);
    assert_int_equal(ctr_parse_ram_bytes("4KiB", &v, &err), 0);
    assert_int_equal(v, 4096);
    const char *bad[] = { "", "k", "-1", "10x", "1kbb", NULL };
    for (size_t i = 0; bad[i] != NULL; i++) {
        assert_int_equal(ctr_parse_ram_bytes(bad[i], &v, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static int log_parse(const char *text, struct ctr_log_config *out, struct merr *err)
{
    json_t *j = text != NULL ? load(text) : NULL;
    int rc = ctr_log_config_parse(j, out, err);
    json_decref(j);
    return rc;
}

static void test_log_config(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct ctr_log_config lc;
    assert_int_equal(log_parse(NULL, &lc, &err), 0);
    assert_int_equal(lc.driver, CTR_LOG_JSON_FILE);
    assert_int_equal(lc.max_size, -1);
    assert_int_equal(lc.max_file, 1);
    assert_int_equal(log_parse("{\"Type\":\"\",\"Config\":{}}", &lc, &err), 0);
    assert_int_equal(lc.driver, CTR_LOG_JSON_FILE);
    assert_int_equal(
        log_parse("{\"Type\":\"json-file\",\"Config\":{\"max-size\":\"1k\",\"max-file\":\"3\"}}", &lc,
                  &err),
        0);
    assert_int_equal(lc.max_size, 1024);
    assert_int_equal(lc.max_file, 3);
    /* dockerd takes max-file alone (nothing rotates without max-size); docker-py's tests do */
    assert_int_equal(log_parse("{\"Type\":\"json-file\",\"Config\":{\"max-file\":\"100\"}}", &lc,
                               &err),
                     0);
    assert_int_equal(lc.max_size, -1);
    assert_int_equal(lc.max_file, 100);
    assert_int_equal(log_parse("{\"Type\":\"none\"}", &lc, &err), 0);
    assert_int_equal(lc.driver, CTR_LOG_NONE);
    const char *bad[] = {
        "{\"Type\":\"nosuchdriver\"}",
        "{\"Type\":\"syslog\"}",
        "{\"Type\":\"json-file\",\"Config\":{\"nosuch\":\"1\"}}",
        "{\"Type\":\"json-file\",\"Config\":{\"max-file\":\"0\",\"max-size\":\"1k\"}}",
        "{\"Type\":\"json-file\",\"Config\":{\"max-size\":\"big\"}}",
        "{\"Type\":\"json-file\",\"Config\":{\"compress\":\"true\"}}",
        "{\"Type\":\"none\",\"Config\":{\"max-size\":\"1k\"}}",
        "{\"Type\":7}",
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(log_parse(bad[i], &lc, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    auto_free char *p = ctr_log_rotated_path("/x/id-json.log", 2);
    assert_string_equal(p, "/x/id-json.log.2");
}

static void test_health_merge(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct ctr_health_config h;
    /* nothing anywhere */
    assert_int_equal(ctr_health_config_parse(NULL, NULL, &h, &err), 0);
    assert_int_equal(h.kind, CTR_HEALTH_NONE);
    /* the image's HEALTHCHECK with the defaults filled in */
    json_t *img = load("{\"Test\":[\"CMD-SHELL\",\"curl -f localhost\"],\"Interval\":2000000000}");
    assert_int_equal(ctr_health_config_parse(NULL, img, &h, &err), 0);
    assert_int_equal(h.kind, CTR_HEALTH_SHELL);
    assert_string_equal(h.argv[0], "/bin/sh");
    assert_string_equal(h.argv[1], "-c");
    assert_string_equal(h.argv[2], "curl -f localhost");
    assert_int_equal(h.interval_ns, 2000000000LL);
    assert_int_equal(h.timeout_ns, 30000000000LL);
    assert_int_equal(h.start_period_ns, 0);
    assert_int_equal(h.retries, 3);
    ctr_health_config_release(&h);
    /* the container's fields override, an empty Test keeps the image's command */
    json_t *mine = load("{\"Test\":[],\"Retries\":7,\"Timeout\":1000000000}");
    assert_int_equal(ctr_health_config_parse(mine, img, &h, &err), 0);
    assert_int_equal(h.kind, CTR_HEALTH_SHELL);
    assert_int_equal(h.retries, 7);
    assert_int_equal(h.timeout_ns, 1000000000LL);
    assert_int_equal(h.interval_ns, 2000000000LL);
    /* round trip through the persisted form */
    json_t *j = ctr_health_config_to_json(&h);
    struct ctr_health_config back;
    assert_int_equal(ctr_health_config_parse(j, NULL, &back, &err), 0);
    assert_int_equal(back.kind, CTR_HEALTH_SHELL);
    assert_string_equal(back.argv[2], "curl -f localhost");
    assert_int_equal(back.retries, 7);
    json_decref(j);
    ctr_health_config_release(&back);
    ctr_health_config_release(&h);
    json_decref(mine);
    /* NONE disables the image's check; CMD keeps its arguments */
    mine = load("{\"Test\":[\"NONE\"]}");
    assert_int_equal(ctr_health_config_parse(mine, img, &h, &err), 0);
    assert_int_equal(h.kind, CTR_HEALTH_NONE);
    json_decref(mine);
    mine = load("{\"Test\":[\"CMD\",\"/bin/check\",\"-v\"]}");
    assert_int_equal(ctr_health_config_parse(mine, img, &h, &err), 0);
    assert_int_equal(h.kind, CTR_HEALTH_CMD);
    assert_string_equal(h.argv[0], "/bin/check");
    assert_string_equal(h.argv[1], "-v");
    assert_null(h.argv[2]);
    ctr_health_config_release(&h);
    json_decref(mine);
    json_decref(img);
}

static void test_health_validate(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"Interval\":1000}",
        "{\"Timeout\":999999}",
        "{\"StartPeriod\":5}",
        "{\"Retries\":-1}",
        "{\"Test\":[\"WHAT\",\"x\"]}",
        "{\"Test\":[\"CMD\"]}",
        "{\"Test\":\"CMD true\"}",
        "{\"Interval\":\"1s\"}",
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        struct merr err = MERR_INIT;
        json_t *j = load(bad[i]);
        assert_int_equal(ctr_health_validate(j, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        json_decref(j);
    }
    struct merr err = MERR_INIT;
    json_t *j = load("{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":1000000,\"Retries\":0}");
    assert_int_equal(ctr_health_validate(j, &err), 0);
    json_decref(j);
    assert_int_equal(ctr_health_validate(NULL, &err), 0);
}

static void test_health_streak(void **state)
{
    (void)state;
    struct ctr_health_config cfg = { .kind = CTR_HEALTH_CMD, .retries = 2 };
    struct ctr_health_state h = { .status = CTR_HEALTH_STARTING };
    /* failures inside the start period do not count while starting */
    assert_false(ctr_health_apply(&h, &cfg, true, 1, "s", "e", "no"));
    assert_int_equal(h.failing_streak, 0);
    assert_int_equal(h.status, CTR_HEALTH_STARTING);
    assert_true(ctr_health_apply(&h, &cfg, true, 0, "s", "e", "ok"));
    assert_int_equal(h.status, CTR_HEALTH_HEALTHY);
    /* once healthy they count, even within the start period */
    assert_false(ctr_health_apply(&h, &cfg, true, 1, "s", "e", "no"));
    assert_int_equal(h.failing_streak, 1);
    assert_true(ctr_health_apply(&h, &cfg, false, -1, "s", "e", "timeout"));
    assert_int_equal(h.status, CTR_HEALTH_UNHEALTHY);
    assert_int_equal(h.failing_streak, 2);
    for (int i = 0; i < 4; i++)
        ctr_health_apply(&h, &cfg, false, 1, "s", "e", "no");
    assert_int_equal(json_array_size(h.log), CTR_HEALTH_LOG_MAX);
    json_t *j = ctr_health_state_json(&h);
    assert_string_equal(json_string_value(json_object_get(j, "Status")), "unhealthy");
    assert_int_equal(json_integer_value(json_object_get(j, "FailingStreak")), 6);
    struct ctr_health_state back;
    ctr_health_state_from_json(j, &back);
    assert_int_equal(back.status, CTR_HEALTH_UNHEALTHY);
    assert_int_equal(back.failing_streak, 6);
    assert_int_equal(json_array_size(back.log), CTR_HEALTH_LOG_MAX);
    json_decref(back.log);
    ctr_health_state_from_json(NULL, &back);
    assert_int_equal(back.status, CTR_HEALTH_UNSET);
    json_decref(j);
    assert_true(ctr_health_apply(&h, &cfg, false, 0, "s", "e", "ok"));
    assert_int_equal(h.failing_streak, 0);
    json_decref(h.log);
}

static void test_detach_keys(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    unsigned char k[CTR_DETACH_KEYS_MAX];
    size_t n = 0;
    assert_int_equal(ctr_detach_keys_parse("ctrl-p,ctrl-q", k, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(k[0], 16);
    assert_int_equal(k[1], 17);
    assert_int_equal(ctr_detach_keys_parse("a,ctrl-@,ctrl-[,ctrl-_", k, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(k[0], 'a');
    assert_int_equal(k[1], 0);
    assert_int_equal(k[2], 27);
    assert_int_equal(k[3], 31);
    const char *bad[] = { "", "ctrl-", "ctrl-1", "ab", "ctrl-p,,", NULL };
    for (size_t i = 0; bad[i] != NULL; i++)
        assert_int_equal(ctr_detach_keys_parse(bad[i], k, &n, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ram_bytes),       cmocka_unit_test(test_log_config),
        cmocka_unit_test(test_health_merge),    cmocka_unit_test(test_health_validate),
        cmocka_unit_test(test_health_streak),   cmocka_unit_test(test_detach_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
