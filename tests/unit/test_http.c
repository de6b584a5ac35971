/* The pure parts of util/http: backoff schedule, Retry-After, header and status lines,
 * redaction of secrets for logs, Location resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "http.h"

static void test_backoff_schedule(void **state)
{
    (void)state;
    /* rnd 0: the fixed half only; doubling from the base, capped */
    assert_int_equal(http_backoff_delay_ms(1, 500, 10000, 0), 250);
    assert_int_equal(http_backoff_delay_ms(2, 500, 10000, 0), 500);
    assert_int_equal(http_backoff_delay_ms(3, 500, 10000, 0), 1000);
    assert_int_equal(http_backoff_delay_ms(6, 500, 10000, 0), 5000);
    assert_int_equal(http_backoff_delay_ms(7, 500, 10000, 0), 5000);
    assert_int_equal(http_backoff_delay_ms(60, 500, 10000, 0), 5000);
    /* the jitter stays within [delay/2, delay] */
    for (uint64_t r = 0; r < 2000; r += 7) {
        long d = http_backoff_delay_ms(3, 500, 10000, r * 2654435761u);
        assert_true(d >= 1000 && d <= 2000);
    }
    assert_true(http_backoff_delay_ms(40, 500, 10000, UINT64_MAX) <= 10000);
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(http_retry_after_parse("120", 0), 120);
    assert_int_equal(http_retry_after_parse(" 3 ", 0), 3);
    assert_int_equal(http_retry_after_parse(NULL, 0), -1);
    assert_int_equal(http_retry_after_parse("-1", 0), -1);
    assert_int_equal(http_retry_after_parse("soon", 0), -1);
    assert_int_equal(http_retry_after_parse("3x", 0), -1);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    assert_int_equal(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 5), 5);
    assert_int_equal(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 5), 0);
}

static void test_status_transient(void **state)
{
    (void)state;
    assert_true(http_status_transient(429));
    assert_true(http_status_transient(503));
    assert_false(http_status_transient(501));
    assert_false(http_status_transient(404));
    assert_false(http_status_transient(200));
}

static void test_header_lines(void **state)
{
    (void)state;
    char name[32], value[64];
    const char *l = "Docker-Content-Digest:  sha256:abc \r\n";
    assert_true(http_header_split(l, strlen(l), name, sizeof name, value, sizeof value));
    assert_string_equal(name, "Docker-Content-Digest");
    assert_string_equal(value, "sha256:abc");
    l = "Location: /v2/x/blobs/uploads/u?_state=a:b\r\n";
    assert_true(http_header_split(l, strlen(l), name, sizeof name, value, sizeof value));
    assert_string_equal(value, "/v2/x/blobs/uploads/u?_state=a:b");
    l = "\r\n";
    assert_false(http_header_split(l, strlen(l), name, sizeof name, value, sizeof value));
    l = ": nameless\r\n";
    assert_false(http_header_split(l, strlen(l), name, sizeof name, value, sizeof value));
    l = "Bad Name: x\r\n";
    assert_false(http_header_split(l, strlen(l), name, sizeof name, value, sizeof value));
    /* values longer than the buffer are cut, not overflowed */
    l = "X: 0123456789";
    char small[5];
    assert_true(http_header_split(l, strlen(l), name, sizeof name, small, sizeof small));
    assert_string_equal(small, "0123");

    l = "HTTP/1.1 202 Accepted\r\n";
    assert_int_equal(http_status_line_parse(l, strlen(l)), 202);
    l = "HTTP/2 401\r\n";
    assert_int_equal(http_status_line_parse(l, strlen(l)), 401);
    l = "HTTP/1.1 20x OK\r\n";
    assert_int_equal(http_status_line_parse(l, strlen(l)), -1);
    l = "Location: HTTP/1.1 200";
    assert_int_equal(http_status_line_parse(l, strlen(l)), -1);
}

static void expect_redacted_url(const char *in, const char *want)
{
    char *got = http_redact_url(in);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_redact_url(void **state)
{
    (void)state;
    expect_redacted_url("https://r.example/v2/", "https://r.example/v2/");
    expect_redacted_url("https://bob:hunter2@r.example/v2/?a=1",
                        "https://bob:REDACTED@r.example/v2/?a=1");
    expect_redacted_url("https://s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=AK%2F1&x=2",
                        "https://s3.example/b/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&x=2");
    expect_redacted_url("https://auth/token?service=r&access_token=secret#frag",
                        "https://auth/token?service=r&access_token=REDACTED#frag");
    expect_redacted_url("http://h/?token=t&sig=s&password=p&tokens=ok",
                        "http://h/?token=REDACTED&sig=REDACTED&password=REDACTED&tokens=ok");
    expect_redacted_url("http://h/?&=x&flag", "http://h/?&=x&flag");
}

static void test_redact_header(void **state)
{
    (void)state;
    const struct {
        const char *in, *want;
    } cases[] = {
        { "Authorization: Bearer abc.def", "Authorization: REDACTED" },
        { "authorization:Basic Ym9iOnB3", "authorization: REDACTED" },
        { "X-Registry-Auth: eyJ1c2VybmFtZSI6ImJvYiJ9", "X-Registry-Auth: REDACTED" },
        { "Cookie: s=1", "Cookie: REDACTED" },
        { "Accept: application/json", "Accept: application/json" },
        { "Authorizations: x", "Authorizations: x" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = http_redact_header(cases[i].in);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

static void expect_location(const char *base, const char *loc, const char *want)
{
    struct merr err = MERR_INIT;
    char *got = http_resolve_location(base, loc, &err);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_resolve_location(void **state)
{
    (void)state;
    const char *base = "http://127.0.0.1:5000/v2/x/y/blobs/uploads/";
    expect_location(base, "/v2/x/y/blobs/uploads/u1?_state=s",
                    "http://127.0.0.1:5000/v2/x/y/blobs/uploads/u1?_state=s");
    expect_location(base, "https://other:443/up/u2", "https://other:443/up/u2");
    expect_location(base, "u3", "http://127.0.0.1:5000/v2/x/y/blobs/uploads/u3");
    expect_location("http://h:1/v2/a?q=/x", "b", "http://h:1/v2/b");
    expect_location("http://h:1", "b", "http://h:1/b");
    expect_location("https://h/v2/", "//cdn.example/p", "https://cdn.example/p");
    struct merr err = MERR_INIT;
    assert_null(http_resolve_location(base, "file:///etc/passwd", &err));
    assert_int_equal(err.code, MERR_PROTOCOL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_schedule),  cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_status_transient),  cmocka_unit_test(test_header_lines),
        cmocka_unit_test(test_redact_url),        cmocka_unit_test(test_redact_header),
        cmocka_unit_test(test_resolve_location),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
