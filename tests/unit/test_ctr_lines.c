/* Pure helpers of the container module: log lines (tail, timestamps), `top -o` output parsing
 * and dockerd's ps argument check. */
#include "test_helpers.h"

#include <jansson.h>

#include "container/logfile.h"
#include "container/manager.h"

static void test_loglines(void **state)
{
    (void)state;
    assert_int_equal(loglines_count("a\nb\nc\n", 6), 3);
    assert_int_equal(loglines_count("a\nb", 3), 2);
    assert_int_equal(loglines_count("", 0), 0);
    assert_int_equal(loglines_count("\n", 1), 1);
    const char *d = "one\ntwo\nthree\n";
    size_t len = strlen(d);
    assert_string_equal(d + loglines_tail_offset(d, len, 1), "three\n");
    assert_string_equal(d + loglines_tail_offset(d, len, 2), "two\nthree\n");
    assert_int_equal(loglines_tail_offset(d, len, 3), 0);
    assert_int_equal(loglines_tail_offset(d, len, 9), 0);
    assert_int_equal(loglines_tail_offset(d, len, 0), len);
    assert_string_equal("b", "a\nb" + loglines_tail_offset("a\nb", 3, 1));
    size_t n = 0;
    char *s = loglines_stamp("T", d, len, &n);
    assert_int_equal(n, len + 6);
    assert_memory_equal(s, "T one\nT two\nT three\n", n);
    free(s);
    s = loglines_stamp("T", "x\ny", 3, &n);
    assert_memory_equal(s, "T x\nT y", n);
    free(s);
}

/* `ps -o pid,comm -q ...` and `ps aux` as procps prints them (captured). */
static void test_top_parse(void **state)
{
    (void)state;
    const char *out = "    PID COMMAND\n"
                      "   4242 sleep\n"
                      "   4243 sleep\n"
                      "      1 systemd\n";
    pid_t pids[] = { 4242, 4243 };
    struct merr err = MERR_INIT;
    json_t *j = top_parse_ps(out, pids, 2, &err);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "Titles")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "Processes")), 2);
    assert_string_equal(json_string_value(json_array_get(json_array_get(json_object_get(j, "Processes"), 0), 1)),
                        "sleep");
    json_decref(j);

    const char *aux = "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\n"
                      "root 4242 0.0 0.0 1 2 ? S 05:00 0:00 sleep 300 now\n";
    j = top_parse_ps(aux, pids, 2, &err);
    json_t *row = json_array_get(json_object_get(j, "Processes"), 0);
    assert_int_equal(json_array_size(row), 11);
    assert_string_equal(json_string_value(json_array_get(row, 10)), "sleep 300 now");
    json_decref(j);

    /* thread lines ("-" for PID) follow the process they belong to */
    const char *threads = "PID TID CMD\n4242 - sleep\n- 4244 sleep\n1 - init\n- 2 init\n";
    j = top_parse_ps(threads, pids, 2, &err);
    assert_int_equal(json_array_size(json_object_get(j, "Processes")), 2);
    json_decref(j);

    assert_null(top_parse_ps("USER COMMAND\nroot x\n", pids, 2, &err));
    assert_string_equal(err.msg, "Couldn't find PID field in ps output");
    assert_null(top_parse_ps("PID CMD\nabc x\n", pids, 2, &err));
}

static void test_ps_args(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    assert_int_equal(top_validate_ps_args("-ef", &err), 0);
    assert_int_equal(top_validate_ps_args("-o pid,comm", &err), 0);
    assert_int_equal(top_validate_ps_args("-o pid=PID", &err), 0);
    assert_int_equal(top_validate_ps_args("-o pid,user=PID", &err), -1);
    assert_string_equal(err.msg, "specifying \"pid,user=PID\" is not allowed");
    assert_int_equal(top_validate_ps_args("-o user= PIDX", &err), -1);
    assert_int_equal(top_validate_ps_args("user=PID", &err), 0); /* dockerd's pattern needs a space before */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loglines),
        cmocka_unit_test(test_top_parse),
        cmocka_unit_test(test_ps_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
