/* engine/filters: Go's path.Match, moby's filters.Args semantics, the image list filters and the
 * container list filters, on captured shapes of the docker 28 CLI's filters. */
#include "test_helpers.h"

#include <jansson.h>

#include "api/api.h"
#include "filters/filters.h"

static bool glob(const char *pattern, const char *name)
{
    bool out = false;
    struct merr err = MERR_INIT;
    assert_int_equal(flt_path_match(pattern, name, &out, &err), 0);
    return out;
}

static void test_path_match(void **state)
{
    (void)state;
    assert_true(glob("busybox", "busybox"));
    assert_true(glob("busy*", "busybox"));
    assert_true(glob("*", "busybox:latest"));
    assert_false(glob("*", "library/busybox"));
    assert_true(glob("*/*", "library/busybox"));
    assert_true(glob("b?sybox", "busybox"));
    assert_false(glob("b?sybox", "b/sybox"));
    assert_true(glob("[a-c]usybox", "busybox"));
    assert_false(glob("[^a-c]usybox", "busybox"));
    assert_true(glob("\\*x", "*x"));
    assert_false(glob("\\*x", "ax"));
    assert_true(glob("*:[0-9]*", "alpine:3.19"));
    assert_false(glob("alpine", "alpine:3"));
    assert_true(glob("", ""));
    assert_true(glob("a**b", "axyb"));
    bool out = true;
    struct merr err = MERR_INIT;
    const char *bad[] = { "[", "[a", "a\\", "[]a]", "[a-]", "x[" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(flt_path_match(bad[i], "abc", &out, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    /* Go checks the whole pattern even when the name already failed to match */
    assert_int_equal(flt_path_match("zz[", "abc", &out, &err), -1);
}

static void test_args_match(void **state)
{
    (void)state;
    char *regex[] = { "^c[12]$", NULL };
    assert_true(flt_match(regex, "c1"));
    assert_false(flt_match(regex, "c3"));
    char *plain[] = { "web", NULL };
    assert_true(flt_match(plain, "myweb1")); /* unanchored */
    char *broken[] = { "(", NULL };
    assert_false(flt_match(broken, "x"));
    assert_true(flt_match(broken, "(")); /* exact wins before the regex */
    assert_true(flt_match(NULL, "anything"));

    json_t *labels = json_pack("{s:s,s:s}", "tier", "mid", "color", "blue");
    char *k[] = { "tier", NULL }, *kv[] = { "tier=mid", "color", NULL }, *wrong[] = { "tier=old", NULL };
    assert_true(flt_match_labels(k, labels));
    assert_true(flt_match_labels(kv, labels));
    assert_false(flt_match_labels(wrong, labels));
    assert_false(flt_match_labels(k, NULL));
    json_decref(labels);
}

static void test_bool(void **state)
{
    (void)state;
    struct api_filters f;
    struct merr err = MERR_INIT;
    bool v = false;
    assert_int_equal(api_filters_parse("{\"dangling\":{\"true\":true}}", &f, &err), 0);
    assert_int_equal(flt_bool(&f, "dangling", false, &v, &err), 0);
    assert_true(v);
    api_filters_release(&f);
    assert_int_equal(api_filters_parse("{\"dangling\":{\"maybe\":true}}", &f, &err), 0);
    assert_int_equal(flt_bool(&f, "dangling", false, &v, &err), -1);
    assert_string_equal(err.msg, "invalid filter 'dangling=[maybe]'");
    api_filters_release(&f);
    assert_int_equal(api_filters_parse("{\"dangling\":{\"true\":true,\"0\":true}}", &f, &err), 0);
    assert_int_equal(flt_bool(&f, "dangling", false, &v, &err), -1);
    api_filters_release(&f);
}

static void test_timestamp(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    int64_t ns = 0, now = 1700000000LL * 1000000000LL;
    assert_int_equal(flt_parse_timestamp("10m", now, &ns, &err), 0);
    assert_int_equal(ns, now - 600LL * 1000000000LL);
    assert_int_equal(flt_parse_timestamp("1h30m", now, &ns, &err), 0);
    assert_int_equal(ns, now - 5400LL * 1000000000LL);
    assert_int_equal(flt_parse_timestamp("2021-06-01", now, &ns, &err), 0);
    assert_int_equal(ns, 1622505600LL * 1000000000LL);
    assert_int_equal(flt_parse_timestamp("1600000000", now, &ns, &err), 0);
    assert_int_equal(ns, 1600000000LL * 1000000000LL);
    assert_int_equal(flt_parse_timestamp("yesterday", now, &ns, &err), -1);
}

/* Images: a (2020, tagged a:1 and b:1, label tier=a), c (2021, tagged c:1, child of a),
 * d (2019, only a repo@digest), e (2022, no reference at all). An untagged image with children
 * (an intermediate one) is tested through e below, by giving it a child. */
static json_t *image_entries(void)
{
    return json_pack(
        "[{s:s,s:s,s:[s,s],s:[],s:I,s:{s:s}},{s:s,s:s,s:[s],s:[],s:I,s:n},"
        "{s:s,s:s,s:[],s:[s],s:I,s:n},{s:s,s:s,s:[],s:[],s:I,s:n}]",
        "Id", "sha256:a", "ParentId", "", "RepoTags", "a:1", "127.0.0.1:5000/x/b:1",
        "RepoDigests", "Created", (json_int_t)1577836800, "Labels", "tier", "a",
        "Id", "sha256:c", "ParentId", "sha256:a", "RepoTags", "c:1", "RepoDigests", "Created",
        (json_int_t)1609459200, "Labels",
        "Id", "sha256:d", "ParentId", "", "RepoTags", "RepoDigests", "d@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "Created", (json_int_t)1546300800, "Labels",
        "Id", "sha256:e", "ParentId", "", "RepoTags", "RepoDigests", "Created",
        (json_int_t)1640995200, "Labels");
}

static int created_of(void *data, const char *ref, int64_t *created_s, struct merr *err)
{
    (void)data;
    if (strcmp(ref, "a:1") == 0) {
        *created_s = 1577836800;
        return 0;
    }
    return merr_set(err, MERR_NOT_FOUND, 0, "No such image: %s", ref);
}

/* Ids of the entries the filters JSON keeps, "a,c". */
static char *images_kept(const char *filters_json, bool all, bool ge143, int *rc)
{
    struct api_filters f;
    struct merr err = MERR_INIT;
    assert_int_equal(api_filters_parse(filters_json, &f, &err), 0);
    json_t *entries = image_entries();
    struct flt_images o;
    json_t *out = NULL;
    *rc = flt_images_prepare(&f, all, 1700000000LL * 1000000000LL, created_of, NULL, &o, &err);
    if (*rc == 0)
        out = flt_images_apply(entries, &o, ge143, &err);
    *rc = out != NULL ? 0 : -1;
    char buf[256] = "";
    size_t i;
    json_t *e;
    json_array_foreach(out, i, e) {
        if (i > 0)
            strcat(buf, ",");
        strcat(buf, json_string_value(json_object_get(e, "Id")) + 7);
        if (!ge143 && strcmp(json_string_value(json_object_get(e, "Id")), "sha256:e") == 0)
            assert_string_equal(json_string_value(json_array_get(json_object_get(e, "RepoTags"), 0)),
                                "<none>:<none>");
    }
    json_decref(out);
    json_decref(entries);
    api_filters_release(&f);
    return strdup(buf);
}

static void expect_images(const char *filters_json, const char *want)
{
    int rc;
    char *got = images_kept(filters_json, false, true, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
}

static void test_images(void **state)
{
    (void)state;
    expect_images("", "e,c,a,d"); /* newest first */
    char *all;
    int rc;
    all = images_kept("", true, false, &rc); /* "<none>:<none>" before 1.43 */
    assert_string_equal(all, "e,c,a,d");
    free(all);
    expect_images("{\"reference\":{\"nosuch\":true}}", "");
    expect_images("{\"reference\":{\"c\":true}}", "c");              /* familiar name */
    expect_images("{\"reference\":{\"docker.io/library/c:1\":true}}", "c"); /* full name:tag */
    expect_images("{\"reference\":{\"*/x/b\":true}}", "a");
    expect_images("{\"reference\":{\"d\":true}}", "d");                /* by its digest ref */
    expect_images("{\"dangling\":{\"true\":true}}", "e,d");
    expect_images("{\"dangling\":{\"false\":true}}", "c,a,d");
    expect_images("{\"label\":{\"tier=a\":true}}", "a");
    expect_images("{\"before\":{\"a:1\":true}}", "d");
    expect_images("{\"since\":{\"a:1\":true}}", "e,c");
    expect_images("{\"until\":{\"2021-06-01T00:00:00Z\":true}}", "c,a,d");

    struct api_filters f;
    struct merr err = MERR_INIT;
    struct flt_images o;
    assert_int_equal(api_filters_parse("{\"nosuch\":{\"x\":true}}", &f, &err), 0);
    assert_int_equal(flt_images_prepare(&f, false, 0, created_of, NULL, &o, &err), -1);
    assert_string_equal(err.msg, "invalid filter 'nosuch'");
    api_filters_release(&f);
    assert_int_equal(api_filters_parse("{\"before\":{\"zz\":true}}", &f, &err), 0);
    assert_int_equal(flt_images_prepare(&f, false, 0, created_of, NULL, &o, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    api_filters_release(&f);

    /* the reference filter narrows RepoTags to the matching references */
    assert_int_equal(api_filters_parse("{\"reference\":{\"a\":true}}", &f, &err), 0);
    assert_int_equal(flt_images_prepare(&f, true, 0, created_of, NULL, &o, &err), 0);
    json_t *entries = image_entries();
    json_t *out = flt_images_apply(entries, &o, true, &err);
    assert_int_equal(json_array_size(out), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(out, 0), "RepoTags")), 1);
    json_decref(out);
    json_decref(entries);
    api_filters_release(&f);

    /* an untagged image with a child is an intermediate image: only all=1 lists it */
    entries = image_entries();
    json_array_append_new(entries, json_pack("{s:s,s:s,s:[s],s:[],s:I}", "Id", "sha256:g",
                                             "ParentId", "sha256:e", "RepoTags", "g:1",
                                             "RepoDigests", "Created", (json_int_t)1650000000));
    assert_int_equal(api_filters_parse("", &f, &err), 0);
    assert_int_equal(flt_images_prepare(&f, false, 0, created_of, NULL, &o, &err), 0);
    out = flt_images_apply(entries, &o, true, &err);
    assert_int_equal(json_array_size(out), 4); /* g, c, a, d */
    json_decref(out);
    o.all = true;
    out = flt_images_apply(entries, &o, true, &err);
    assert_int_equal(json_array_size(out), 5);
    json_decref(out);
    json_decref(entries);

    json_t *ids = json_object();
    entries = image_entries();
    flt_image_descendants(entries, "sha256:a", ids);
    assert_int_equal(json_object_size(ids), 2);
    assert_non_null(json_object_get(ids, "sha256:c"));
    json_decref(ids);
    json_decref(entries);
}

/* Containers newest first: w (running, web, port 8080->80, volume v1 at /data, net bridge),
 * x (exited 3, label role=db), y (created, never started). */
static json_t *container_entries(void)
{
    return json_pack(
        "[{s:s,s:[s],s:s,s:s,s:{s:s},s:[{s:i,s:i,s:s}],s:[{s:s,s:s,s:s}],s:{s:{s:{s:s}}},"
        "s:{s:b,s:b,s:i,s:s}},"
        "{s:s,s:[s],s:s,s:s,s:{s:s},s:[],s:[],s:{s:{}},s:{s:b,s:b,s:i,s:s}},"
        "{s:s,s:[s],s:s,s:s,s:{},s:[],s:[],s:{s:{}},s:{s:b,s:b,s:i,s:s}}]",
        "Id", "aaaa1111", "Names", "/web", "ImageID", "sha256:i1", "State", "running", "Labels",
        "role", "web", "Ports", "PrivatePort", 80, "PublicPort", 8080, "Type", "tcp", "Mounts",
        "Name", "v1", "Source", "/var/v1", "Destination", "/data", "NetworkSettings",
        "Networks", "bridge", "NetworkID", "n1234", "_facts", "Running", 1, "Started", 1,
        "ExitCode", 0, "Health", "none",
        "Id", "bbbb2222", "Names", "/x", "ImageID", "sha256:i2", "State", "exited", "Labels",
        "role", "db", "Ports", "Mounts", "NetworkSettings", "Networks", "_facts", "Running", 0,
        "Started", 1, "ExitCode", 3, "Health", "none",
        "Id", "cccc3333", "Names", "/y", "ImageID", "sha256:i1", "State", "created", "Labels",
        "Ports", "Mounts", "NetworkSettings", "Networks", "_facts", "Running", 0, "Started", 0,
        "ExitCode", 0, "Health", "none");
}

static void expect_ps(const char *filters_json, bool all, long long limit, const char *before,
                      const char *since, const json_t *ancestors, const char *want)
{
    struct api_filters f;
    struct merr err = MERR_INIT;
    assert_int_equal(api_filters_parse(filters_json, &f, &err), 0);
    assert_int_equal(flt_containers_validate(&f, &err), 0);
    struct flt_containers o = { .all = all, .limit = limit, .before_id = before,
                                .since_id = since, .ancestor_ids = ancestors, .f = &f };
    json_t *entries = container_entries();
    json_t *out = flt_containers_apply(entries, &o, &err);
    char buf[64] = "";
    size_t i;
    json_t *e;
    json_array_foreach(out, i, e) {
        assert_null(json_object_get(e, "_facts"));
        strcat(buf, json_string_value(json_array_get(json_object_get(e, "Names"), 0)) + 1);
    }
    assert_string_equal(buf, want);
    json_decref(out);
    json_decref(entries);
    api_filters_release(&f);
}

static void test_containers(void **state)
{
    (void)state;
    expect_ps("", false, 0, NULL, NULL, NULL, "web");
    expect_ps("", true, 0, NULL, NULL, NULL, "webxy");
    expect_ps("", false, 1, NULL, NULL, NULL, "web"); /* -l */
    expect_ps("", false, 2, NULL, NULL, NULL, "webx"); /* a limit implies all */
    expect_ps("", true, 0, "aaaa1111", NULL, NULL, "xy");
    expect_ps("", true, 0, NULL, "cccc3333", NULL, "webx");
    expect_ps("{\"status\":{\"exited\":true}}", false, 0, NULL, NULL, NULL, "x");
    expect_ps("{\"exited\":{\"3\":true}}", true, 0, NULL, NULL, NULL, "x");
    expect_ps("{\"exited\":{\"0\":true}}", true, 0, NULL, NULL, NULL, ""); /* y never started */
    expect_ps("{\"name\":{\"^[wx]\":true}}", true, 0, NULL, NULL, NULL, "webx");
    expect_ps("{\"id\":{\"bbbb\":true}}", true, 0, NULL, NULL, NULL, "x");
    expect_ps("{\"label\":{\"role=db\":true}}", true, 0, NULL, NULL, NULL, "x");
    expect_ps("{\"health\":{\"none\":true}}", true, 0, NULL, NULL, NULL, "webxy");
    expect_ps("{\"health\":{\"healthy\":true}}", true, 0, NULL, NULL, NULL, "");
    expect_ps("{\"volume\":{\"v1\":true}}", true, 0, NULL, NULL, NULL, "web");
    expect_ps("{\"volume\":{\"/data\":true}}", true, 0, NULL, NULL, NULL, "web");
    expect_ps("{\"network\":{\"n12\":true}}", true, 0, NULL, NULL, NULL, "web");
    expect_ps("{\"publish\":{\"8000-8100\":true}}", true, 0, NULL, NULL, NULL, "web");
    expect_ps("{\"publish\":{\"8080/udp\":true}}", true, 0, NULL, NULL, NULL, "");
    expect_ps("{\"expose\":{\"80/tcp\":true}}", true, 0, NULL, NULL, NULL, "web");
    expect_ps("{\"is-task\":{\"true\":true}}", true, 0, NULL, NULL, NULL, "");
    expect_ps("{\"is-task\":{\"false\":true}}", true, 0, NULL, NULL, NULL, "webxy");
    json_t *anc = json_pack("{s:b}", "sha256:i1", 1);
    expect_ps("{\"ancestor\":{\"i\":true}}", true, 0, NULL, NULL, anc, "weby");
    json_decref(anc);
    anc = json_object();
    expect_ps("{\"ancestor\":{\"i\":true}}", true, 0, NULL, NULL, anc, "");
    json_decref(anc);

    const char *bad[][2] = {
        { "{\"exited\":{\"x\":true}}", "invalid filter 'exited=x'" },
        { "{\"status\":{\"bogus\":true}}", "invalid filter 'status=bogus'" },
        { "{\"health\":{\"bogus\":true}}", "invalid filter 'health=bogus'" },
        { "{\"publish\":{\"1:2\":true}}", "filter for 'publish' should not contain ':'" },
        { "{\"expose\":{\"x\":true}}", "error while looking up for expose x" },
        { "{\"is-task\":{\"maybe\":true}}", "invalid filter 'is-task=[maybe]'" },
        { "{\"nosuch\":{\"x\":true}}", "invalid filter 'nosuch'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct api_filters f;
        struct merr err = MERR_INIT;
        assert_int_equal(api_filters_parse(bad[i][0], &f, &err), 0);
        assert_int_equal(flt_containers_validate(&f, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        assert_non_null(strstr(err.msg, bad[i][1]));
        api_filters_release(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_match), cmocka_unit_test(test_args_match),
        cmocka_unit_test(test_bool),       cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_images),     cmocka_unit_test(test_containers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
