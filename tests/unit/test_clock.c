/* util/clock: deadlines and bounded polling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "error.h"

struct probe_state {
    int calls;
    int done_at;   /* attempt that succeeds (-1: never) */
    int fail_at;   /* attempt that fails (-1: never) */
    bool leave_err;
};

static int probe(void *opaque, int attempt, struct merr *err)
{
    struct probe_state *s = opaque;
    assert_int_equal(attempt, s->calls);
    s->calls++;
    if (attempt == s->done_at)
        return 1;
    if (attempt == s->fail_at)
        return merr_set(err, MERR_AUTH, 0, "refused");
    if (s->leave_err)
        merr_set(err, MERR_UNREACHABLE, 0, "not yet");
    return 0;
}

static void test_poll_done(void **state)
{
    struct probe_state s = { .done_at = 3, .fail_at = -1 };
    struct clock_poll p = { .timeout_ms = 60000, .first_pause_ms = 1, .max_pause_ms = 4 };
    struct merr err = MERR_INIT;
    assert_int_equal(clock_poll_until(&p, probe, &s, &err), 0);
    assert_int_equal(s.calls, 4);
    assert_int_equal(err.code, MERR_OK);
}

static void test_poll_fails_at_once(void **state)
{
    struct probe_state s = { .done_at = -1, .fail_at = 1 };
    struct clock_poll p = { .timeout_ms = 60000, .first_pause_ms = 1, .max_pause_ms = 1 };
    struct merr err = MERR_INIT;
    assert_int_equal(clock_poll_until(&p, probe, &s, &err), -1);
    assert_int_equal(err.code, MERR_AUTH);
    assert_int_equal(s.calls, 2);
}

/* The attempt bound ends the wait whatever the time budget; the probe's own last error wins. */
static void test_poll_attempts_bounded(void **state)
{
    struct probe_state s = { .done_at = -1, .fail_at = -1, .leave_err = true };
    struct clock_poll p = { .timeout_ms = 60000, .first_pause_ms = 1, .max_pause_ms = 2,
                            .max_attempts = 5 };
    struct merr err = MERR_INIT;
    assert_int_equal(clock_poll_until(&p, probe, &s, &err), -1);
    assert_int_equal(s.calls, 5);
    assert_int_equal(err.code, MERR_UNREACHABLE);

    struct probe_state quiet = { .done_at = -1, .fail_at = -1 };
    merr_clear(&err);
    assert_int_equal(clock_poll_until(&p, probe, &quiet, &err), -1);
    assert_int_equal(quiet.calls, 5);
    assert_int_equal(err.code, MERR_TIMEOUT);
}

/* A spent budget still tries once. */
static void test_poll_zero_budget(void **state)
{
    struct probe_state s = { .done_at = -1, .fail_at = -1 };
    struct clock_poll p = { .timeout_ms = 0, .first_pause_ms = 10, .max_pause_ms = 10 };
    struct merr err = MERR_INIT;
    assert_int_equal(clock_poll_until(&p, probe, &s, &err), -1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(err.code, MERR_TIMEOUT);
}

static void test_deadlines(void **state)
{
    int64_t past = clock_now_ms() - 1;
    assert_true(clock_expired(past));
    assert_int_equal(clock_left_ms(past), 0);
    int64_t later = clock_deadline_ms(3600 * 1000);
    assert_false(clock_expired(later));
    assert_true(clock_left_ms(later) > 0);
    assert_true(clock_since_ms(clock_now_ms()) >= 0);
    struct timespec t = clock_ts_at_ns(1500000000LL);
    assert_int_equal(t.tv_sec, 1);
    assert_int_equal(t.tv_nsec, 500000000L);
    struct timespec gone = clock_deadline_ts(0), ahead = clock_deadline_ts(3600 * 1000);
    assert_true(clock_ts_passed(&gone));
    assert_false(clock_ts_passed(&ahead));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_done),
        cmocka_unit_test(test_poll_fails_at_once),
        cmocka_unit_test(test_poll_attempts_bounded),
        cmocka_unit_test(test_poll_zero_budget),
        cmocka_unit_test(test_deadlines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
