/* machine up's progress frame on a terminal: back over the lines of the last frame, then one
 * cleared line per host with its step and the time it has taken (stopped when it finished). */
#include "test_helpers.h"

#include "upview.h"

static void test_first_frame(void **state)
{
    (void)state;
    struct upview_host hosts[] = {
        { .name = "web-1", .step = "Creating the VM", .start = 1.0 },
        { .name = "db", .step = "waiting", .start = -1 },
    };
    auto_free char *f = upview_frame(hosts, 2, 0, 3.5);
    assert_string_equal(f, "\r\033[2Kweb-1                Creating the VM                                       2.5s\n"
                           "\r\033[2Kdb                   waiting                                           \n");
}

static void test_redraw(void **state)
{
    (void)state;
    struct upview_host hosts[] = {
        { .name = "a", .step = "done", .start = 0.5, .end = 2.0, .finished = true },
        { .name = "b", .step = "a step far longer than the fifty characters a line gives it", .start = 0 },
    };
    auto_free char *f = upview_frame(hosts, 2, 2, 10.0);
    assert_true(strncmp(f, "\033[2A\r\033[2Ka ", 11) == 0);
    assert_non_null(strstr(f, "done"));
    assert_non_null(strstr(f, "   1.5s\n")); /* a finished host's clock stopped */
    assert_non_null(strstr(f, "a step far longer than the fifty characters a line  "));
    assert_non_null(strstr(f, "  10.0s\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_frame),
        cmocka_unit_test(test_redraw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
