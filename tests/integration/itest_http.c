/* util/http against a scripted python3 http.server on loopback (lib/http_script_server.py),
 * with libcurl loaded the engine's way (dlopen): retries of transient answers honouring
 * Retry-After, no retry of a POST unless the caller says so, a Retry-After beyond the cap not
 * waited out, the response cap and streaming past it, the deadline, a body uploaded from a
 * file with response headers read back, JSON bodies, no secret in the debug log, and one
 * connection for a client's sequential requests. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "curlapi.h"
#include "error.h"
#include "http.h"
#include "log.h"

struct fixture {
    char dir[64];
    pid_t server;
    int port;
    struct curl_api curl;
    struct http_client *http;
    char *log_text;
    size_t log_len;
    FILE *log_out;
    struct mlog log;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/itest-http-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *src = getenv("MACHINE_SRC");
    assert_non_null(src);
    char script[4096], portfile[128];
    snprintf(script, sizeof script, "%s/tests/integration/lib/http_script_server.py", src);
    snprintf(portfile, sizeof portfile, "%s/port", f->dir);
    f->server = fork();
    assert_true(f->server >= 0);
    if (f->server == 0) {
        execlp("python3", "python3", script, portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && f->port == 0; i++) { /* 10 s at most */
        FILE *pf = fopen(portfile, "r");
        if (pf != NULL) {
            if (fscanf(pf, "%d", &f->port) != 1)
                f->port = 0;
            fclose(pf);
        }
        if (f->port == 0)
            usleep(100000);
    }
    assert_true(f->port > 0);
    struct merr err = MERR_INIT;
    if (curl_api_load(&f->curl, &err) < 0)
        fail_msg("%s", err.msg);
    f->log_out = open_memstream(&f->log_text, &f->log_len);
    f->log = (struct mlog){ .level = MLOG_DEBUG, .out = f->log_out };
    struct http_client_opts o = {
        .curl = &f->curl,
        .log = &f->log,
        .allow_http = true,
        .max_attempts = 4,
        .backoff_base_ms = 10,
        .backoff_max_ms = 2000,
    };
    f->http = http_client_new(&o, &err);
    assert_non_null(f->http);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_client_free(f->http);
    curl_api_unload(&f->curl);
    fclose(f->log_out);
    free(f->log_text);
    kill(f->server, SIGTERM);
    waitpid(f->server, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static char *url(struct fixture *f, const char *path)
{
    char *u = NULL;
    if (asprintf(&u, "http://127.0.0.1:%d%s", f->port, path) < 0)
        fail_msg("asprintf");
    return u;
}

/* How many requests the server saw for path. */
static long server_count(struct fixture *f, const char *path)
{
    char p[256];
    snprintf(p, sizeof p, "/count%s", path);
    char *u = url(f, p);
    struct http_request rq = { .url = u };
    struct http_response resp;
    struct merr err = MERR_INIT;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("count: %s", err.msg);
    long n = strtol(resp.body != NULL ? resp.body : "-1", NULL, 10);
    http_response_clear(&resp);
    free(u);
    return n;
}

static void test_transient_retried(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/flaky");
    struct http_request rq = { .url = u };
    struct http_response resp;
    struct merr err = MERR_INIT;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "ok");
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(server_count(f, "/flaky"), 3);
    http_response_clear(&resp);
    free(u);

    /* always failing: the last answer after max_attempts */
    u = url(f, "/always-503");
    rq.url = u;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(resp.status, 503);
    assert_int_equal(server_count(f, "/always-503"), 4);
    http_response_clear(&resp);
    free(u);
}

/* before_attempt (the shared rate limiter's seat) runs before every attempt, retries included;
 * its error ends the request without another attempt. */
static int count_then_refuse(void *ctx, struct merr *err)
{
    int *calls = ctx;
    if (++*calls == 3)
        return merr_set(err, MERR_TIMEOUT, 0, "no token");
    return 0;
}

static void test_before_attempt_hook(void **state)
{
    struct fixture *f = *state;
    int calls = 0;
    struct http_client_opts o = { .curl = &f->curl, .allow_http = true, .max_attempts = 4,
                                  .backoff_base_ms = 10, .backoff_max_ms = 50,
                                  .before_attempt = count_then_refuse,
                                  .before_attempt_ctx = &calls };
    struct merr err = MERR_INIT;
    struct http_client *c = http_client_new(&o, &err);
    assert_non_null(c);
    char *u = url(f, "/always-503");
    struct http_request rq = { .url = u };
    struct http_response resp;
    assert_int_equal(http_do(c, &rq, &resp, &err), -1);
    assert_int_equal(err.code, MERR_TIMEOUT);
    assert_int_equal(calls, 3);
    assert_int_equal(server_count(f, "/always-503"), 2);
    http_response_clear(&resp);
    http_client_free(c);
    free(u);
}

static void test_post_not_retried(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/post-503");
    struct http_request rq = { .method = "POST", .url = u, .body = "a=1", .body_len = 3 };
    struct http_response resp;
    struct merr err = MERR_INIT;
    assert_int_equal(http_do(f->http, &rq, &resp, &err), 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(server_count(f, "/post-503"), 1);
    http_response_clear(&resp);
    rq.retry = HTTP_RETRY_ALWAYS; /* the caller knows it is safe */
    assert_int_equal(http_do(f->http, &rq, &resp, &err), 0);
    assert_int_equal(server_count(f, "/post-503"), 1 + 4);
    http_response_clear(&resp);
    free(u);
}

static void test_retry_after_beyond_cap(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/retry-long");
    struct http_request rq = { .url = u };
    struct http_response resp;
    struct merr err = MERR_INIT;
    assert_int_equal(http_do(f->http, &rq, &resp, &err), -1);
    assert_int_equal(err.code, MERR_UNREACHABLE);
    assert_int_equal(server_count(f, "/retry-long"), 1);
    http_response_clear(&resp);
    free(u);
}

struct counter {
    size_t bytes;
};

static int count_body(void *ctx, const struct http_response *resp, const void *buf, size_t len,
                      struct merr *err)
{
    ((struct counter *)ctx)->bytes += len;
    return 0;
}

static void test_cap_and_stream(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/big");
    struct http_request rq = { .url = u, .max_response = 1 << 20 };
    struct http_response resp;
    struct merr err = MERR_INIT;
    assert_int_equal(http_do(f->http, &rq, &resp, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    http_response_clear(&resp);
    struct counter c = { 0 };
    rq.on_body = count_body;
    rq.on_body_ctx = &c;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(c.bytes, 2u << 20);
    assert_null(resp.body);
    http_response_clear(&resp);
    free(u);
}

static void test_deadline(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/slow");
    struct http_request rq = { .url = u, .deadline_ms = 500 };
    struct http_response resp;
    struct merr err = MERR_INIT;
    assert_int_equal(http_do(f->http, &rq, &resp, &err), -1);
    assert_int_equal(err.code, MERR_TIMEOUT);
    http_response_clear(&resp);
    free(u);
}

static void test_upload_from_file(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/body", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static char data[300000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7);
    /* the body is the region after a 5-byte prefix */
    assert_int_equal(write(fd, "skip!", 5), 5);
    assert_int_equal(write(fd, data, sizeof data), (ssize_t)sizeof data);
    char *u = url(f, "/echo");
    struct http_fd_body b = { fd, 5, 5 };
    struct http_request rq = { .method = "PUT", .url = u, .body_read = http_fd_read,
                               .body_rewind = http_fd_rewind, .body_ctx = &b,
                               .body_len = sizeof data };
    struct http_response resp;
    struct merr err = MERR_INIT;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(resp.status, 201);
    char want[128];
    snprintf(want, sizeof want, "%zu ", sizeof data);
    assert_memory_equal(resp.body, want, strlen(want));
    const char *loc = http_response_header(&resp, "location");
    assert_non_null(loc);
    char *abs = http_resolve_location(u, loc, &err);
    char *want_abs = url(f, "/up/next");
    assert_string_equal(abs, want_abs);
    const char *dcd = http_response_header(&resp, "Docker-Content-Digest");
    assert_non_null(dcd);
    assert_string_equal(dcd + 7, resp.body + strlen(want)); /* the same sha256 both ways */
    free(abs);
    free(want_abs);
    http_response_clear(&resp);
    free(u);
    close(fd);
}

static void test_json_body(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/json");
    json_t *doc = json_pack("{s:s,s:i}", "name", "machine", "n", 3);
    struct http_request rq = { .method = "POST", .url = u, .json = doc };
    struct http_response resp;
    struct merr err = MERR_INIT;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    json_t *back = json_loads(resp.body, 0, NULL);
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(back, "name")), "machine");
    assert_true(json_is_true(json_object_get(back, "seen")));
    json_decref(back);
    json_decref(doc);
    http_response_clear(&resp);
    free(u);
}

static void test_no_secret_in_log(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/echo?access_token=TOPSECRET2&x=1");
    const char *hdrs[] = { "Authorization: Bearer TOPSECRET1", "Accept: text/plain", NULL };
    struct http_request rq = { .method = "PUT", .url = u, .headers = hdrs, .body = "x",
                               .body_len = 1 };
    struct http_response resp;
    struct merr err = MERR_INIT;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    http_response_clear(&resp);
    fflush(f->log_out);
    assert_non_null(strstr(f->log_text, "PUT http://127.0.0.1"));
    assert_non_null(strstr(f->log_text, "Accept: text/plain"));
    assert_non_null(strstr(f->log_text, "Authorization: REDACTED"));
    assert_null(strstr(f->log_text, "TOPSECRET"));
    free(u);
}

static void test_connections_reused(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/ping");
    struct merr err = MERR_INIT;
    for (int i = 0; i < 3; i++) {
        struct http_request rq = { .url = u };
        struct http_response resp;
        if (http_do(f->http, &rq, &resp, &err) < 0)
            fail_msg("%s", err.msg);
        assert_string_equal(resp.body, "pong");
        http_response_clear(&resp);
    }
    free(u);
    u = url(f, "/conns");
    struct http_request rq = { .url = u };
    struct http_response resp;
    if (http_do(f->http, &rq, &resp, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(resp.body, "1"); /* four requests, one connection */
    http_response_clear(&resp);
    free(u);
}

static void test_https_only(void **state)
{
    struct fixture *f = *state;
    struct http_client_opts o = { .curl = &f->curl };
    struct merr err = MERR_INIT;
    struct http_client *strict = http_client_new(&o, &err);
    assert_non_null(strict);
    char *u = url(f, "/ping");
    struct http_request rq = { .url = u };
    struct http_response resp;
    assert_int_equal(http_do(strict, &rq, &resp, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(server_count(f, "/ping"), 0);
    http_client_free(strict);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transient_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_before_attempt_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_beyond_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_and_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secret_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
