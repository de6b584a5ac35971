/* Route matching and API version negotiation. */
#define MACHINE_API_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/api-priv.h"

static int h_images_list(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_image_inspect(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_image_delete(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_image_tag(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_ctr_list(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_ctr_inspect(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_ctr_archive(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_exec_start(struct api_request *r, void *d, struct merr *e) { return 0; }
static int h_ping(struct api_request *r, void *d, struct merr *e) { return 0; }

static const struct api_route routes[] = {
    { "GET", "/images/{name}/json", h_image_inspect, 0, NULL },
    { "GET", "/images/json", h_images_list, 0, NULL },
    { "DELETE", "/images/{name}", h_image_delete, 0, NULL },
    { "POST", "/images/{name}/tag", h_image_tag, 0, NULL },
    { "GET", "/containers/{id}/json", h_ctr_inspect, 0, NULL },
    { "GET", "/containers/json", h_ctr_list, 0, NULL },
    { "GET", "/containers/{id}/archive", h_ctr_archive, 0, NULL },
    { "POST", "/exec/{id}/start", h_exec_start, API_ROUTE_WORKER, NULL },
    { "GET", "/_ping", h_ping, 0, NULL },
    { "HEAD", "/_ping", h_ping, 0, NULL },
};

static int sentinel;

static int setup(void **state)
{
    struct merr err = MERR_INIT;
    struct api_router *r = api_router_new(&err);
    assert_non_null(r);
    assert_int_equal(api_router_add_table(r, routes, sizeof routes / sizeof routes[0], &sentinel, &err),
                     0);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    api_router_free(*state);
    return 0;
}

struct match_case {
    const char *method;
    const char *path;
    api_handler_fn want; /* NULL: no route */
    const char *var_name;
    const char *var_value;
};

static void test_match_table(void **state)
{
    static const struct match_case cases[] = {
        { "GET", "/images/127.0.0.1:5000/a/b:tag/json", h_image_inspect, "name",
          "127.0.0.1:5000/a/b:tag" },
        { "GET", "/images/alpine/json", h_image_inspect, "name", "alpine" },
        { "GET", "/images/sha256:abc/json", h_image_inspect, "name", "sha256:abc" },
        { "GET", "/images/json", h_images_list, NULL, NULL }, /* literal wins */
        { "GET", "/images/a/json/json", h_image_inspect, "name", "a/json" },
        { "DELETE", "/images/docker.io/library/alpine:3.19", h_image_delete, "name",
          "docker.io/library/alpine:3.19" },
        { "POST", "/images/localhost:5000/x/y/tag", h_image_tag, "name", "localhost:5000/x/y" },
        { "GET", "/containers/json", h_ctr_list, NULL, NULL },
        { "GET", "/containers/abc123/json", h_ctr_inspect, "id", "abc123" },
        { "GET", "/containers/web/archive", h_ctr_archive, "id", "web" },
        { "POST", "/exec/e1/start", h_exec_start, "id", "e1" },
        { "HEAD", "/_ping", h_ping, NULL, NULL },
        { "GET", "/images//json", NULL, NULL, NULL },   /* empty name */
        { "GET", "/images/", NULL, NULL, NULL },
        { "POST", "/images/json", NULL, NULL, NULL },   /* wrong method */
        { "GET", "/containers/json/", NULL, NULL, NULL },
        { "GET", "/nope", NULL, NULL, NULL },
        { "GET", "", NULL, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct api_route_match m;
        struct merr err = MERR_INIT;
        int r = api_router_match(*state, cases[i].method, cases[i].path, &m, &err);
        if (cases[i].want == NULL) {
            if (r != 0)
                fail_msg("case %zu %s %s: expected no route", i, cases[i].method, cases[i].path);
            continue;
        }
        if (r != 1 || m.route->handler != cases[i].want)
            fail_msg("case %zu %s %s: wrong route", i, cases[i].method, cases[i].path);
        if (cases[i].var_name != NULL) {
            assert_int_equal(m.n_vars, 1);
            assert_string_equal(m.vars[0].key, cases[i].var_name);
            assert_string_equal(m.vars[0].value, cases[i].var_value);
        } else {
            assert_int_equal(m.n_vars, 0);
        }
        assert_ptr_equal(m.data, &sentinel);
        api_route_match_release(&m);
    }
}

static void test_two_vars(void **state)
{
    struct merr err = MERR_INIT;
    struct api_router *r = api_router_new(&err);
    static const struct api_route two = { "GET", "/plugins/{name}/x/{id}", h_ping, 0, NULL };
    assert_int_equal(api_router_add(r, &two, NULL, &err), 0);
    struct api_route_match m;
    assert_int_equal(api_router_match(r, "GET", "/plugins/a/b/x/c/d", &m, &err), 1);
    assert_int_equal(m.n_vars, 2);
    assert_string_equal(m.vars[0].key, "name");
    assert_string_equal(m.vars[0].value, "a/b");
    assert_string_equal(m.vars[1].key, "id");
    assert_string_equal(m.vars[1].value, "c/d");
    api_route_match_release(&m);
    api_router_free(r);
}

static void test_long_path_not_matched(void **state)
{
    char path[5000];
    memset(path, 'a', sizeof path);
    memcpy(path, "/images/", 8);
    memcpy(path + sizeof path - 6, "/json", 6);
    struct api_route_match m;
    struct merr err = MERR_INIT;
    assert_int_equal(api_router_match(*state, "GET", path, &m, &err), 0);
}

static void test_bad_patterns(void **state)
{
    static const char *const bad[] = {
        "images", "/a/{}", "/a/{x}{y}", "/a/{x", "/a/x}", "/a/{x-y}", "/{a}/{b}/{c}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct api_route route = { "GET", bad[i], h_ping, 0, NULL };
        struct merr err = MERR_INIT;
        if (api_router_add(*state, &route, NULL, &err) != -1 || err.code != MERR_INVALID)
            fail_msg("pattern '%s' accepted", bad[i]);
    }
    struct api_route dup = { "GET", "/_ping", h_ping, 0, NULL };
    struct merr err = MERR_INIT;
    assert_int_equal(api_router_add(*state, &dup, NULL, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    struct api_route no_handler = { "GET", "/x", NULL, 0, NULL };
    assert_int_equal(api_router_add(*state, &no_handler, NULL, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_version_parse_cmp(void **state)
{
    struct api_version v;
    struct merr err = MERR_INIT;
    assert_int_equal(api_version_parse("1.41", &v, &err), 0);
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 41);
    assert_int_equal(api_version_parse("2", &v, &err), 0);
    assert_int_equal(v.minor, 0);
    static const char *const bad[] = { "", "1.", ".4", "1.4.5", "v1.4", "1.x", "1.41 " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(api_version_parse(bad[i], &v, &err), -1);
    struct api_version a = { 1, 9 }, b = { 1, 10 }, c = { 2, 0 };
    assert_true(api_version_cmp(a, b) < 0); /* numeric, not lexical */
    assert_true(api_version_cmp(b, a) > 0);
    assert_true(api_version_cmp(c, b) > 0);
    assert_int_equal(api_version_cmp(a, a), 0);
}

static void test_negotiate(void **state)
{
    struct api_version v;
    struct merr err = MERR_INIT;
    assert_int_equal(api_version_negotiate(NULL, &v, &err), 0);
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 45);
    assert_int_equal(api_version_negotiate("1.41", &v, &err), 0);
    assert_int_equal(v.minor, 41);
    assert_int_equal(api_version_negotiate("1.24", &v, &err), 0);
    assert_int_equal(api_version_negotiate("1.45", &v, &err), 0);
    assert_int_equal(api_version_negotiate("1.46", &v, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(api_version_negotiate("9.99", &v, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    /* the CLI shows this text to users; it is part of the API contract */
    assert_string_equal(err.msg,
                        "client version 9.99 is too new. Maximum supported API version is 1.45");
    assert_int_equal(api_version_negotiate("1.23", &v, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(api_version_negotiate("x", &v, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_split_version(void **state)
{
    static const struct {
        const char *path, *version, *rest;
        bool has;
    } cases[] = {
        { "/v1.41/containers/json", "1.41", "/containers/json", true },
        { "/v1.45/_ping", "1.45", "/_ping", true },
        { "/v9.99/version", "9.99", "/version", true },
        { "/version", "", "/version", false },
        { "/volumes", "", "/volumes", false },
        { "/v1.41", "", "/v1.41", false },
        { "/v1x/a", "", "/v1x/a", false },
        { "/_ping", "", "/_ping", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char version[16];
        const char *rest;
        bool has;
        struct merr err = MERR_INIT;
        assert_int_equal(
            api_path_split_version(cases[i].path, version, sizeof version, &rest, &has, &err), 0);
        assert_int_equal(has, cases[i].has);
        assert_string_equal(version, cases[i].version);
        assert_string_equal(rest, cases[i].rest);
    }
    char version[16];
    const char *rest;
    bool has;
    struct merr err = MERR_INIT;
    assert_int_equal(api_path_split_version("/v1.111111111111111111/x", version, sizeof version,
                                            &rest, &has, &err),
                     -1);
    assert_int_equal(err.code, MERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match_table, setup, teardown),
        cmocka_unit_test(test_two_vars),
        cmocka_unit_test_setup_teardown(test_long_path_not_matched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_patterns, setup, teardown),
        cmocka_unit_test(test_version_parse_cmp),
        cmocka_unit_test(test_negotiate),
        cmocka_unit_test(test_split_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
