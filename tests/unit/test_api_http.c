/* Pure HTTP helpers of the API layer: URL/query decoding, filters, response
 * heads, chunked encoding, error bodies, status mapping, stdcopy framing. */
#define MACHINE_API_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-priv.h"

static void test_url_decode(void **state)
{
    struct merr err = MERR_INIT;
    char *s = api_url_decode("a%2Fb+c%3a", 10, true, &err);
    assert_string_equal(s, "a/b c:");
    free(s);
    s = api_url_decode("a+b", 3, false, &err);
    assert_string_equal(s, "a+b");
    free(s);
    assert_null(api_url_decode("%4", 2, true, &err));
    assert_int_equal(err.code, MERR_INVALID);
    assert_null(api_url_decode("%zz", 3, true, &err));
    assert_null(api_url_decode("a%00b", 5, true, &err)); /* no NUL smuggling */
}

/* Query string as sent by the docker CLI for `docker ps -a --filter label=a=b`. */
static void test_query_parse(void **state)
{
    const char *qs = "all=1&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D&name=a+b&flag&&"
                     "all=0";
    struct api_kv *kvs;
    size_t n;
    struct merr err = MERR_INIT;
    assert_int_equal(api_query_parse(qs, strlen(qs), &kvs, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_string_equal(api_kv_get(kvs, n, "all", false), "1"); /* first wins, like Go */
    assert_string_equal(api_kv_get(kvs, n, "filters", false), "{\"label\":{\"a=b\":true}}");
    assert_string_equal(api_kv_get(kvs, n, "name", false), "a b");
    assert_string_equal(api_kv_get(kvs, n, "flag", false), "");
    assert_null(api_kv_get(kvs, n, "ALL", false));
    assert_string_equal(api_kv_get(kvs, n, "ALL", true), "1");
    api_kvs_free(kvs, n);
    assert_int_equal(api_query_parse("a=%G1", 5, &kvs, &n, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_bool_value(void **state)
{
    static const char *const truthy[] = { "1", "true", "True", "yes", "on", "x" };
    static const char *const falsy[] = { "", "0", "no", "false", "FALSE", "none", " 0 " };
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++)
        assert_true(api_bool_value(truthy[i]));
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++)
        assert_false(api_bool_value(falsy[i]));
    assert_false(api_bool_value(NULL));
}

static void test_filters(void **state)
{
    struct api_filters f;
    struct merr err = MERR_INIT;
    assert_int_equal(
        api_filters_parse("{\"label\":{\"a=b\":true,\"c\":true,\"off\":false},\"status\":{\"running\":true}}",
                          &f, &err),
        0);
    assert_int_equal(f.n, 2);
    char *const *labels = api_filters_get(&f, "label");
    assert_non_null(labels);
    assert_string_equal(labels[0], "a=b");
    assert_string_equal(labels[1], "c");
    assert_null(labels[2]); /* false entries are dropped */
    assert_true(api_filters_match(&f, "status", "running"));
    assert_false(api_filters_match(&f, "status", "exited"));
    assert_true(api_filters_match(&f, "name", "anything")); /* absent filter */
    static const char *const allowed[] = { "label", "status", NULL };
    assert_int_equal(api_filters_validate(&f, allowed, &err), 0);
    static const char *const narrow[] = { "label", NULL };
    assert_int_equal(api_filters_validate(&f, narrow, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    api_filters_release(&f);

    /* legacy format from old clients */
    assert_int_equal(api_filters_parse("{\"dangling\":[\"true\"]}", &f, &err), 0);
    assert_string_equal(api_filters_get(&f, "dangling")[0], "true");
    api_filters_release(&f);

    assert_int_equal(api_filters_parse("", &f, &err), 0);
    assert_int_equal(f.n, 0);
    assert_int_equal(api_filters_parse(NULL, &f, &err), 0);

    static const char *const bad[] = { "[1]", "{", "{\"a\":1}", "{\"a\":{\"b\":1}}",
                                       "{\"a\":[1]}", "\"x\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.code = MERR_OK;
        assert_int_equal(api_filters_parse(bad[i], &f, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
        assert_int_equal(f.n, 0);
    }
}

#define COMMON "Api-Version: 1.45\r\nDocker-Experimental: false\r\nOstype: linux\r\n" \
               "Server: machine-engine/0.1.0 (linux)\r\n"

static void expect_head(const struct api_head *h, const char *want)
{
    struct abuf b = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(api_build_head(&b, h, &err), 0);
    assert_string_equal(b.data, want);
    abuf_release(&b);
}

static void test_build_head(void **state)
{
    const char *server = "machine-engine/0.1.0 (linux)";
    expect_head(&(struct api_head){ .status = 200, .content_type = "application/json",
                                    .content_length = 3, .server = server },
                "HTTP/1.1 200 OK\r\n" COMMON
                "Content-Type: application/json\r\nContent-Length: 3\r\n\r\n");
    expect_head(&(struct api_head){ .status = 204, .content_length = API_LENGTH_NONE,
                                    .server = server },
                "HTTP/1.1 204 No Content\r\n" COMMON "\r\n");
    expect_head(&(struct api_head){ .status = 200, .content_type = "application/json",
                                    .content_length = API_LENGTH_CHUNKED, .close = true,
                                    .server = server },
                "HTTP/1.1 200 OK\r\n" COMMON "Content-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    expect_head(&(struct api_head){ .status = 101, .reason = "UPGRADED",
                                    .content_type = API_MEDIA_MULTIPLEXED_STREAM,
                                    .content_length = API_LENGTH_NONE, .upgrade = true,
                                    .server = server },
                "HTTP/1.1 101 UPGRADED\r\n" COMMON
                "Content-Type: application/vnd.docker.multiplexed-stream\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
    struct api_kv extra[] = { { "Swarm", "inactive" } };
    expect_head(&(struct api_head){ .status = 404, .content_length = 0, .server = server,
                                    .extra = extra, .n_extra = 1 },
                "HTTP/1.1 404 Not Found\r\n" COMMON "Content-Length: 0\r\nSwarm: inactive\r\n\r\n");

    struct abuf b = { 0 };
    struct merr err = MERR_INIT;
    struct api_kv evil[] = { { "X", "a\r\nSet-Cookie: y" } };
    assert_int_equal(api_build_head(&b, &(struct api_head){ .status = 200, .server = server,
                                                            .extra = evil, .n_extra = 1 },
                                    &err),
                     -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(api_build_head(&b, &(struct api_head){ .status = 42, .server = server }, &err),
                     -1);
    abuf_release(&b);
}

static void test_chunk_encode(void **state)
{
    struct abuf b = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(api_chunk_encode(&b, "hello", 5, &err), 0);
    assert_int_equal(api_chunk_encode(&b, "", 0, &err), 0); /* would end the stream */
    char big[300];
    memset(big, 'x', sizeof big);
    assert_int_equal(api_chunk_encode(&b, big, sizeof big, &err), 0);
    assert_memory_equal(b.data, "5\r\nhello\r\n12c\r\n", 15);
    assert_int_equal(b.len, 15 + 300 + 2);
    assert_memory_equal(b.data + 15 + 300, "\r\n", 2);
    abuf_release(&b);
    assert_string_equal(API_CHUNK_END, "0\r\n\r\n");
}

static void test_error_body(void **state)
{
    size_t len;
    struct merr err = MERR_INIT;
    char *body = api_error_body("No such container: \"x\"", &len, &err);
    assert_string_equal(body, "{\"message\":\"No such container: \\\"x\\\"\"}\n");
    assert_int_equal(len, strlen(body));
    free(body);
}

static void test_status_from_merr(void **state)
{
    static const struct {
        enum merr_code code;
        int status;
    } map[] = {
        { MERR_INVALID, 400 },  { MERR_NOT_FOUND, 404 },   { MERR_EXISTS, 409 },
        { MERR_BUSY, 409 },     { MERR_UNSUPPORTED, 501 }, { MERR_UNREACHABLE, 503 },
        { MERR_AUTH, 401 },     { MERR_PERM, 403 },        { MERR_IO, 500 },
        { MERR_INTERNAL, 500 },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        struct merr e = { map[i].code, 0, "" };
        assert_int_equal(api_status_from_merr(&e), map[i].status);
    }
}

static void test_abuf_cap(void **state)
{
    struct abuf b = { .max = 8 };
    struct merr err = MERR_INIT;
    assert_int_equal(abuf_append(&b, "12345678", 8, &err), 0);
    assert_int_equal(abuf_append(&b, "9", 1, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    abuf_consume(&b, 3);
    assert_string_equal(b.data, "45678");
    abuf_release(&b);
}

/* ---- stdcopy ------------------------------------------------------------------ */

static void test_stdcopy_header(void **state)
{
    uint8_t h[STDCOPY_HEADER_LEN];
    stdcopy_header(h, STDCOPY_STDERR, 0x01020304);
    static const uint8_t want[] = { 2, 0, 0, 0, 1, 2, 3, 4 };
    assert_memory_equal(h, want, sizeof want);
    stdcopy_header(h, STDCOPY_STDOUT, 5);
    static const uint8_t want5[] = { 1, 0, 0, 0, 0, 0, 0, 5 };
    assert_memory_equal(h, want5, sizeof want5);
}

struct collected {
    char out[64];
    char err[64];
    size_t n_out, n_err;
};

static int collect(void *data, enum stdcopy_stream stream, const uint8_t *p, size_t len,
                   struct merr *err)
{
    struct collected *c = data;
    if (stream == STDCOPY_STDOUT) {
        memcpy(c->out + c->n_out, p, len);
        c->n_out += len;
    } else {
        memcpy(c->err + c->n_err, p, len);
        c->n_err += len;
    }
    return 0;
}

static void test_stdcopy_decode_any_split(void **state)
{
    /* out "hello", err "oops", out "" (empty frame), out "!" */
    static const uint8_t stream[] = {
        1, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o',
        2, 0, 0, 0, 0, 0, 0, 4, 'o', 'o', 'p', 's',
        1, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 1, '!',
    };
    for (size_t step = 1; step <= sizeof stream; step++) {
        struct stdcopy_decoder d;
        struct collected c = { 0 };
        struct merr err = MERR_INIT;
        stdcopy_decoder_init(&d);
        for (size_t off = 0; off < sizeof stream; off += step) {
            size_t n = sizeof stream - off < step ? sizeof stream - off : step;
            assert_int_equal(stdcopy_decode(&d, stream + off, n, collect, &c, &err), 0);
        }
        assert_true(stdcopy_decoder_idle(&d));
        assert_int_equal(c.n_out, 6);
        assert_memory_equal(c.out, "hello!", 6);
        assert_int_equal(c.n_err, 4);
        assert_memory_equal(c.err, "oops", 4);
    }
    struct stdcopy_decoder d;
    struct collected c = { 0 };
    struct merr err = MERR_INIT;
    stdcopy_decoder_init(&d);
    assert_int_equal(stdcopy_decode(&d, stream, 10, collect, &c, &err), 0);
    assert_false(stdcopy_decoder_idle(&d)); /* stopped inside a frame */
    static const uint8_t bad[] = { 7, 0, 0, 0, 0, 0, 0, 1, 'x' };
    stdcopy_decoder_init(&d);
    assert_int_equal(stdcopy_decode(&d, bad, sizeof bad, collect, &c, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_query_parse),
        cmocka_unit_test(test_bool_value),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_build_head),
        cmocka_unit_test(test_chunk_encode),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_status_from_merr),
        cmocka_unit_test(test_abuf_cap),
        cmocka_unit_test(test_stdcopy_header),
        cmocka_unit_test(test_stdcopy_decode_any_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
