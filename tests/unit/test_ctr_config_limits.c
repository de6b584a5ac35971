/* Create bodies the engine must refuse as dockerd does (issue 20): PidsLimit below -1 (0 and
 * -1 are unlimited), and hostnames that are not RFC 1123 labels of at most 63 bytes. */
#include "test_helpers.h"

#include <jansson.h>

#include "container/config.h"

static int create_with(const char *config_members, const char *host_config, struct merr *err)
{
    auto_free char *text = xasprintf("{\"Image\":\"busybox\"%s,\"HostConfig\":{%s}}",
                                     config_members, host_config);
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    assert_non_null(body);
    struct ctr_config *c = ctr_config_from_create(body, err);
    json_decref(body);
    int rc = c != NULL ? 0 : -1;
    ctr_config_free(c);
    return rc;
}

static void test_pids_limit(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int rc;
    } cases[] = { { "null", 0 }, { "0", 0 }, { "-1", 0 }, { "64", 0 }, { "-2", -1 },
                  { "-5", -1 }, { "-9223372036854775807", -1 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct merr err = MERR_INIT;
        auto_free char *hc = xasprintf("\"PidsLimit\":%s", cases[i].value);
        int rc = create_with("", hc, &err);
        if (rc != cases[i].rc)
            fail_msg("PidsLimit %s: rc %d, want %d", cases[i].value, rc, cases[i].rc);
        if (rc < 0)
            assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_hostname(void **state)
{
    (void)state;
    static const char *const good[] = { "", "web", "web-1", "a.b-c.d", "x",
                                        "123", "A1-b2.C3",
                                        "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh" }; /* 63 */
    static const char *const bad[] = { "web\\nevil", "-web", "web-", "a..b", ".a", "a.",
                                       "web_1", "we b", "a/b", "w\\u00e9b", "a.-b", "a-.b",
                                       "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi" }; /* 64 */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct merr err = MERR_INIT;
        auto_free char *member = xasprintf(",\"Hostname\":\"%s\"", good[i]);
        if (create_with(member, "", &err) < 0)
            fail_msg("hostname '%s' refused: %s", good[i], err.msg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct merr err = MERR_INIT;
        auto_free char *member = xasprintf(",\"Hostname\":\"%s\"", bad[i]);
        if (create_with(member, "", &err) == 0)
            fail_msg("hostname '%s' accepted", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pids_limit),
        cmocka_unit_test(test_hostname),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
