/* engine/container/defaults.c: --default-ulimit's text (docker's units.ParseUlimit), --log-opt
 * pairs checked together, the log options merged into a create body as dockerd's
 * mergeAndVerifyLogConfig does, and the ulimits of a start (the container's own win). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/resource.h>

#include "container/defaults.h"
#include "error.h"

static void test_ulimit_text(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct ctr_ulimit u;
    assert_int_equal(ctr_default_ulimit_parse("nofile=1024:2048", &u, &err), 0);
    assert_int_equal(u.resource, RLIMIT_NOFILE);
    assert_int_equal(u.soft, 1024);
    assert_int_equal(u.hard, 2048);
    assert_int_equal(ctr_default_ulimit_parse("nproc=512", &u, &err), 0);
    assert_int_equal(u.resource, RLIMIT_NPROC);
    assert_int_equal(u.hard, 512); /* hard defaults to soft */
    assert_int_equal(ctr_default_ulimit_parse("core=-1", &u, &err), 0);
    assert_true(u.soft == (uint64_t)RLIM_INFINITY);
    static const char *const bad[] = { "nofile", "bogus=1", "nofile=1:2:3", "nofile=x",
                                       "nofile=3:2", "nofile=", NULL };
    for (size_t i = 0; bad[i] != NULL; i++) {
        err = (struct merr)MERR_INIT;
        assert_int_equal(ctr_default_ulimit_parse(bad[i], &u, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_log_opts(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    json_t *opts = json_object();
    /* max-file before max-size: checked together, not one by one */
    assert_int_equal(ctr_default_log_opt_parse("max-file=2", opts, &err), 0);
    assert_int_equal(ctr_default_log_opt_parse("max-size=1k", opts, &err), 0);
    assert_int_equal(ctr_default_log_opts_check(NULL, opts, &err), 0);
    assert_int_equal(ctr_default_log_opt_parse("novalue", opts, &err), -1);
    json_t *bad = json_pack("{s:s}", "nosuch", "1");
    assert_int_equal(ctr_default_log_opts_check(NULL, bad, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    json_decref(bad);

    /* a body without LogConfig gets the options; its own keys win; another driver gets none */
    json_t *body = json_pack("{s:s}", "Image", "x");
    json_t *m = ctr_log_defaults_apply(body, NULL, opts);
    json_t *cfg = json_object_get(json_object_get(json_object_get(m, "HostConfig"), "LogConfig"), "Config");
    assert_string_equal(json_string_value(json_object_get(cfg, "max-size")), "1k");
    assert_string_equal(json_string_value(json_object_get(cfg, "max-file")), "2");
    assert_null(json_object_get(body, "HostConfig")); /* the body itself is left alone */
    json_decref(m);
    json_decref(body);
    body = json_pack("{s:{s:{s:s,s:{s:s}}}}", "HostConfig", "LogConfig", "Type", "json-file",
                     "Config", "max-size", "1m");
    m = ctr_log_defaults_apply(body, NULL, opts);
    cfg = json_object_get(json_object_get(json_object_get(m, "HostConfig"), "LogConfig"), "Config");
    assert_string_equal(json_string_value(json_object_get(cfg, "max-size")), "1m");
    assert_string_equal(json_string_value(json_object_get(cfg, "max-file")), "2");
    json_decref(m);
    json_decref(body);
    body = json_pack("{s:{s:{s:s}}}", "HostConfig", "LogConfig", "Type", "none");
    m = ctr_log_defaults_apply(body, NULL, opts);
    assert_ptr_equal(m, body);
    json_decref(m);
    json_decref(body);
    /* --log-driver none: a container without a driver gets none, and no json-file options */
    assert_int_equal(ctr_default_log_opts_check("none", opts, &err), -1);
    body = json_pack("{s:s}", "Image", "x");
    m = ctr_log_defaults_apply(body, "none", NULL);
    json_t *lc = json_object_get(json_object_get(m, "HostConfig"), "LogConfig");
    assert_string_equal(json_string_value(json_object_get(lc, "Type")), "none");
    assert_null(json_object_get(lc, "Config"));
    json_decref(m);
    m = ctr_log_defaults_apply(body, NULL, NULL); /* nothing to do: the body itself */
    assert_ptr_equal(m, body);
    json_decref(m);
    json_decref(body);
    body = json_pack("{s:{s:{s:s}}}", "HostConfig", "LogConfig", "Type", "json-file");
    m = ctr_log_defaults_apply(body, "none", opts); /* its own driver: the options are none's */
    lc = json_object_get(json_object_get(m, "HostConfig"), "LogConfig");
    assert_string_equal(json_string_value(json_object_get(lc, "Type")), "json-file");
    assert_null(json_object_get(lc, "Config"));
    json_decref(m);
    json_decref(body);
    json_decref(opts);
}

static void test_ulimits_merge(void **state)
{
    (void)state;
    struct ctr_ulimit own[] = { { RLIMIT_NOFILE, 100, 100 } };
    struct ctr_ulimit defs[] = { { RLIMIT_NOFILE, 200, 300 }, { RLIMIT_NPROC, 90, 90 } };
    struct ctr_ulimit out[3];
    assert_int_equal(ctr_ulimits_merge(own, 1, defs, 2, out), 2);
    assert_int_equal(out[0].resource, RLIMIT_NOFILE);
    assert_int_equal(out[0].soft, 100);
    assert_int_equal(out[1].resource, RLIMIT_NPROC);
    assert_int_equal(ctr_ulimits_merge(NULL, 0, defs, 2, out), 2);
    assert_int_equal(out[0].soft, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ulimit_text),
        cmocka_unit_test(test_log_opts),
        cmocka_unit_test(test_ulimits_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
