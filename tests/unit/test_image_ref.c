/* Image reference parsing and digest validation (security case 8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "image/reference.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct ref_case {
    const char *in;
    const char *domain, *path, *tag, *digest;
};

static const struct ref_case good[] = {
    { "alpine", "docker.io", "library/alpine", "latest", "" },
    { "alpine:3.19", "docker.io", "library/alpine", "3.19", "" },
    { "library/alpine", "docker.io", "library/alpine", "latest", "" },
    { "docker.io/alpine", "docker.io", "library/alpine", "latest", "" },
    { "index.docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", "" },
    { "bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", "" },
    { "127.0.0.1:5000/x/y:tag", "127.0.0.1:5000", "x/y", "tag", "" },
    { "localhost/foo", "localhost", "foo", "latest", "" },
    { "localhost:5000/foo/bar", "localhost:5000", "foo/bar", "latest", "" },
    { "[::1]:5000/img:v1", "[::1]:5000", "img", "v1", "" },
    { "ghcr.io/owner/repo-name/sub_dir__x:v1.2.3-rc_1", "ghcr.io", "owner/repo-name/sub_dir__x",
      "v1.2.3-rc_1", "" },
    { "a--b.c/d", "a--b.c", "d", "latest", "" },
    { "alpine@sha256:" HEX64, "docker.io", "library/alpine", "", "sha256:" HEX64 },
    { "127.0.0.1:5000/x/y:t@sha256:" HEX64, "127.0.0.1:5000", "x/y", "t", "sha256:" HEX64 },
    /* a first component with upper case is a domain (docker's rule) */
    { "Example.com/foo", "Example.com", "foo", "latest", "" },
    /* "localhost:5000" alone is repository "localhost" tag "5000" */
    { "localhost:5000", "docker.io", "library/localhost", "5000", "" },
};

static void test_ref_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct image_ref ref;
        struct merr err = MERR_INIT;
        if (image_ref_parse(good[i].in, &ref, &err) < 0)
            fail_msg("'%s': %s", good[i].in, err.msg);
        assert_string_equal(ref.domain, good[i].domain);
        assert_string_equal(ref.path, good[i].path);
        assert_string_equal(ref.tag, good[i].tag);
        assert_string_equal(ref.digest, good[i].digest);
    }
}

static const char *const bad[] = {
    "",
    "Alpine",                  /* upper case repository */
    "docker.io/Library/alpine",
    "alpine:",                 /* empty tag */
    "alpine:-x",               /* tag must not start with '-' */
    "alpine::x",
    ":tag",
    "/alpine",
    "alpine/",
    "a//b",
    "-alpine",
    "alpine-",
    "al..pine",
    "al___pine",
    "al._pine",
    "example.com:port/x",
    "-bad.com/x",
    "bad-.com/x",
    "[zz]:5000/x",
    "alpine@sha256:" HEX64 "0",            /* wrong length */
    "alpine@sha256:" HEX64 "@sha256:" HEX64,
    "alpine@sha512:" HEX64 HEX64,          /* only sha256 */
    "alpine@sha256:../../x",
    "alpine@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    HEX64,                                 /* 64 hex is an ID, not a name */
    "alpine:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* tag of 129 */
};

static void test_ref_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct image_ref ref;
        struct merr err = MERR_INIT;
        if (image_ref_parse(bad[i], &ref, &err) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

static void test_ref_name_too_long(void **state)
{
    (void)state;
    char name[400];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    struct image_ref ref;
    struct merr err = MERR_INIT;
    assert_int_equal(image_ref_parse(name, &ref, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    /* 255 in total (with "docker.io/library/") is the limit */
    name[255 - strlen("docker.io/library/")] = '\0';
    assert_int_equal(image_ref_parse(name, &ref, &err), 0);
    name[strlen(name)] = 'a';
    name[256 - strlen("docker.io/library/")] = '\0';
    assert_int_equal(image_ref_parse(name, &ref, &err), -1);
}

static void test_digest_validation(void **state)
{
    (void)state;
    assert_true(image_digest_is_valid("sha256:" HEX64));
    static const char *const invalid[] = {
        "sha256:../../x",
        "sha256:../../../../etc/passwd",
        "sha256:" HEX64 "0",
        "sha256:0123",
        "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "sha256:" HEX64 "/",
        "SHA256:" HEX64,
        "sha512:" HEX64,
        "sha256" HEX64,
        HEX64,
        "",
        "sha256:",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        struct merr err = MERR_INIT;
        if (image_digest_is_valid(invalid[i]))
            fail_msg("'%s' accepted", invalid[i]);
        assert_int_equal(image_digest_validate(invalid[i], &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    assert_false(image_digest_is_valid(NULL));
}

static void test_familiar_and_host(void **state)
{
    (void)state;
    struct image_ref ref;
    struct merr err = MERR_INIT;
    char buf[300];
    assert_int_equal(image_ref_parse("alpine", &ref, &err), 0);
    image_ref_familiar_repo(&ref, buf, sizeof buf);
    assert_string_equal(buf, "alpine");
    image_ref_repo(&ref, buf, sizeof buf);
    assert_string_equal(buf, "docker.io/library/alpine");
    assert_string_equal(image_ref_registry_host(&ref), "registry-1.docker.io");

    assert_int_equal(image_ref_parse("bitnami/redis", &ref, &err), 0);
    image_ref_familiar_repo(&ref, buf, sizeof buf);
    assert_string_equal(buf, "bitnami/redis");

    assert_int_equal(image_ref_parse("127.0.0.1:5000/x/y", &ref, &err), 0);
    image_ref_familiar_repo(&ref, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:5000/x/y");
    assert_string_equal(image_ref_registry_host(&ref), "127.0.0.1:5000");

    image_repo_familiar("docker.io/library/a/b", buf, sizeof buf);
    assert_string_equal(buf, "library/a/b");
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(image_host_is_loopback("127.0.0.1:5000"));
    assert_true(image_host_is_loopback("127.1.2.3"));
    assert_true(image_host_is_loopback("localhost:5000"));
    assert_true(image_host_is_loopback("[::1]:5000"));
    assert_false(image_host_is_loopback("128.0.0.1:5000"));
    assert_false(image_host_is_loopback("10.0.0.1"));
    assert_false(image_host_is_loopback("127.0.0.1.example.com"));
    assert_false(image_host_is_loopback("localhost.example.com:5000"));
    assert_false(image_host_is_loopback("[::2]:5000"));
    assert_false(image_host_is_loopback("docker.io"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_good),
        cmocka_unit_test(test_ref_bad),
        cmocka_unit_test(test_ref_name_too_long),
        cmocka_unit_test(test_digest_validation),
        cmocka_unit_test(test_familiar_and_host),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
