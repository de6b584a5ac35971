/* ADD's pure helpers: the file name of a download and the HTTP date of its Last-Modified. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "build/builder.h"
#include "image/image.h"

static void check_name(const char *url, const char *want)
{
    char *got = build_url_file_name(url);
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
    free(got);
}

static void test_url_file_name(void **state)
{
    (void)state;
    check_name("http://127.0.0.1:8080/files/hello.txt", "hello.txt");
    check_name("https://example.com/a/b/pack.tar.gz?token=x#frag", "pack.tar.gz");
    check_name("https://example.com/a/dir/", "dir");
    check_name("http://example.com/x?y=/z", "x");
    check_name("http://example.com", NULL);
    check_name("http://example.com/", NULL);
    check_name("http://example.com/?q=1", NULL);
    check_name("http://example.com/a/..", NULL);
    check_name("http://example.com/a/.", NULL);
    check_name("not a url", NULL);
}

static void test_http_date(void **state)
{
    (void)state;
    /* RFC 9110's example, and what python's http.server sends */
    assert_int_equal(image_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(image_http_date_parse(" Sat, 03 Feb 2001 04:05:06 GMT"), 981173106);
    assert_int_equal(image_http_date_parse("yesterday"), 0);
    assert_int_equal(image_http_date_parse(""), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_file_name),
        cmocka_unit_test(test_http_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
