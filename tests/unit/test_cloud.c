/* core/cloud: throttling verdicts, API errors onto merr codes, the pagination loop's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cloud.h"
#include "error.h"
#include "fsutil.h"

static void test_throttled(void **state)
{
    (void)state;
    assert_true(cloud_throttled(429, NULL));
    assert_true(cloud_throttled(503, NULL));
    assert_true(cloud_throttled(400, "Throttling"));          /* AWS query APIs */
    assert_true(cloud_throttled(503, "RequestLimitExceeded")); /* EC2 */
    assert_true(cloud_throttled(400, "ThrottlingException"));
    assert_true(cloud_throttled(429, "too_many_requests"));   /* DigitalOcean */
    assert_false(cloud_throttled(500, NULL));
    assert_false(cloud_throttled(400, "InvalidParameterValue"));
    assert_false(cloud_throttled(422, "unprocessable_entity"));
    assert_false(cloud_throttled(401, "unauthorized"));
}

static void test_error_codes(void **state)
{
    (void)state;
    assert_int_equal(cloud_error_code(401, "unauthorized"), MERR_AUTH);
    assert_int_equal(cloud_error_code(401, "AuthFailure"), MERR_AUTH);
    assert_int_equal(cloud_error_code(403, "SignatureDoesNotMatch"), MERR_AUTH);
    assert_int_equal(cloud_error_code(403, "UnauthorizedOperation"), MERR_PERM);
    assert_int_equal(cloud_error_code(403, "forbidden"), MERR_PERM);
    assert_int_equal(cloud_error_code(404, "not_found"), MERR_NOT_FOUND);
    assert_int_equal(cloud_error_code(400, "InvalidInstanceID.NotFound"), MERR_NOT_FOUND);
    assert_int_equal(cloud_error_code(400, "InvalidKeyPair.Duplicate"), MERR_EXISTS);
    assert_int_equal(cloud_error_code(409, NULL), MERR_EXISTS);
    assert_int_equal(cloud_error_code(422, "unprocessable_entity"), MERR_INVALID);
    assert_int_equal(cloud_error_code(400, "InvalidParameterValue"), MERR_INVALID);
    assert_int_equal(cloud_error_code(429, "too_many_requests"), MERR_BUSY);
    assert_int_equal(cloud_error_code(503, "RequestLimitExceeded"), MERR_BUSY);
    assert_int_equal(cloud_error_code(500, NULL), MERR_REMOTE);
    assert_int_equal(cloud_error_code(302, NULL), MERR_PROTOCOL);
}

static void test_error_message(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    assert_int_equal(cloud_error(&err, "digitalocean", 401, "unauthorized",
                                 "Unable to authenticate you"), -1);
    assert_int_equal(err.code, MERR_AUTH);
    assert_string_equal(err.msg, "digitalocean: 401 unauthorized: Unable to authenticate you");
    assert_int_equal(cloud_error(&err, "ec2", 500, NULL, NULL), -1);
    assert_string_equal(err.msg, "ec2: 500");
}

static void test_quota_wait(void **state)
{
    (void)state;
    assert_int_equal(cloud_quota_wait_ms("0", "1000", 998, 30000), 2000);
    assert_int_equal(cloud_quota_wait_ms("0", "5000", 1000, 30000), 30000); /* capped */
    assert_int_equal(cloud_quota_wait_ms("4999", "1000", 998, 30000), 0);   /* some left */
    assert_int_equal(cloud_quota_wait_ms("0", "1000", 1000, 30000), 0);     /* refilled */
    assert_int_equal(cloud_quota_wait_ms("0", "soon", 998, 30000), 0);
    assert_int_equal(cloud_quota_wait_ms("", "1000", 998, 30000), 0);
    assert_int_equal(cloud_quota_wait_ms(NULL, "1000", 998, 30000), 0);
    assert_int_equal(cloud_quota_wait_ms("0", NULL, 998, 30000), 0);
}

/* A listing of `pages` pages whose cursors are "p2", "p3", …; `loop_at` repeats a cursor. */
struct fake_listing {
    int pages;
    int loop_at;
    int calls;
    char seen[16][8];
};

static int fake_page(void *opaque, const char *cursor, char **next, struct merr *err)
{
    struct fake_listing *l = opaque;
    (void)err;
    snprintf(l->seen[l->calls % 16], sizeof l->seen[0], "%s", cursor != NULL ? cursor : "-");
    l->calls++;
    if (l->loop_at > 0 && l->calls >= l->loop_at)
        *next = xasprintf("p%d", l->loop_at);
    else if (l->calls < l->pages)
        *next = xasprintf("p%d", l->calls + 1);
    return 0;
}

static int failing_page(void *opaque, const char *cursor, char **next, struct merr *err)
{
    int *calls = opaque;
    (void)cursor;
    (*calls)++;
    *next = xstrdup("leaked-if-not-freed");
    return merr_set(err, MERR_REMOTE, 0, "page failed");
}

static void test_paginate(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    struct fake_listing l = { .pages = 3 };
    assert_int_equal(cloud_paginate(fake_page, &l, 0, &err), 0);
    assert_int_equal(l.calls, 3);
    assert_string_equal(l.seen[0], "-");
    assert_string_equal(l.seen[1], "p2");
    assert_string_equal(l.seen[2], "p3");

    struct fake_listing one = { .pages = 1 };
    assert_int_equal(cloud_paginate(fake_page, &one, 0, &err), 0);
    assert_int_equal(one.calls, 1);

    struct fake_listing loop = { .pages = 100, .loop_at = 2 };
    assert_int_equal(cloud_paginate(fake_page, &loop, 0, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_int_equal(loop.calls, 2); /* page p2 named p2 as its next */

    struct fake_listing endless = { .pages = 1000 };
    assert_int_equal(cloud_paginate(fake_page, &endless, 5, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
    assert_int_equal(endless.calls, 5);

    int calls = 0;
    assert_int_equal(cloud_paginate(failing_page, &calls, 0, &err), -1);
    assert_int_equal(err.code, MERR_REMOTE);
    assert_int_equal(calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throttled),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_quota_wait),
        cmocka_unit_test(test_paginate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
