/* The API server end to end, in-process, over a Unix socket in a temporary
 * directory: socket mode, keep-alive and pipelining, body cap, errors,
 * routing with variables, chunked worker streams, hijacking with
 * half-close, and shutdown of a long-running stream. */
#define MACHINE_API_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api-priv.h"
#include "events/events.h"
#include "handlers/handlers.h"

#define IO_TIMEOUT_MS 5000

struct fixture {
    char dir[64];
    char sock[100];
    struct api_server *srv;
    int stop_fd;
    pthread_t thread;
    int run_rc;
    bool running;
    struct evt_bus *events;
    struct engine_services services; /* only the event bus: /events is served */
};

/* ---- test handlers ---------------------------------------------------------- */

static int h_echo(struct api_request *req, void *data, struct merr *err)
{
    json_t *body;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    size_t len;
    api_request_body(req, &len);
    json_t *reply = json_pack("{s:I, s:o?}", "len", (json_int_t)len, "body", body);
    return api_reply_json(req, 200, reply, err);
}

static int h_thing(struct api_request *req, void *data, struct merr *err)
{
    long long n;
    if (api_request_query_int(req, "n", -1, &n, err) < 0)
        return -1;
    json_t *reply = json_pack("{s:s, s:b, s:I, s:s?}", "name", api_request_var(req, "name"), "all",
                              api_request_query_bool(req, "all"), "n", (json_int_t)n, "auth",
                              api_request_header(req, "x-registry-auth"));
    return api_reply_json(req, 200, reply, err);
}

static int h_fail(struct api_request *req, void *data, struct merr *err)
{
    return merr_set(err, MERR_NOT_FOUND, 0, "No such container: x");
}

static int h_stream(struct api_request *req, void *data, struct merr *err)
{
    if (api_stream_begin(req, 200, API_MEDIA_JSON, err) < 0 ||
        api_stream_write(req, "a", 1, err) < 0)
        return -1;
    return api_stream_write(req, "b", 1, err); /* the server ends the stream */
}

/* Reads stdin until the client half-closes, then answers: output must still
 * reach the client after its SHUT_WR. */
static int h_hijack(struct api_request *req, void *data, struct merr *err)
{
    bool tty = api_request_query_bool(req, "tty");
    if (api_hijack(req, tty, err) < 0)
        return -1;
    size_t body_len;
    const char *body = api_request_body(req, &body_len);
    char got[256];
    size_t n = (size_t)snprintf(got, sizeof got, "%.*sgot:", (int)body_len, body);
    while (n < sizeof got) {
        ssize_t r = api_stream_read(req, got + n, sizeof got - n, err);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (tty)
        return api_stream_write(req, got, n, err);
    return api_stream_frame(req, STDCOPY_STDOUT, got, n, err);
}

/* Streams the whole body (no size cap) and answers with its length and byte sum;
 * ?max=N stops after N bytes (the rest is left unread). */
static int h_sink(struct api_request *req, void *data, struct merr *err)
{
    long long max;
    if (api_request_query_int(req, "max", -1, &max, err) < 0)
        return -1;
    unsigned long long len = 0, sum = 0;
    char buf[7000]; /* not a divisor of anything the tests send */
    for (;;) {
        size_t want = sizeof buf;
        if (max >= 0 && (unsigned long long)max - len < want)
            want = (size_t)((unsigned long long)max - len);
        if (want == 0)
            break;
        ssize_t n = api_request_body_read(req, buf, want, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            sum += (unsigned char)buf[i];
        len += (unsigned long long)n;
    }
    return api_reply_json(req, 200, json_pack("{s:I, s:I}", "len", (json_int_t)len, "sum",
                                              (json_int_t)sum), err);
}

static const struct api_system test_system = { .server_version = "0.1.0" };

static const struct api_param thing_params[] = {
    API_PARAM("all"), API_PARAM("n"), API_PARAM_REFUSE_BUT("link", "local"), API_PARAMS_END,
};
static const struct api_param sink_params[] = {
    API_PARAM("max"), API_PARAM_REFUSE("link"), API_PARAMS_END,
};

static const struct api_route test_routes[] = {
    { "POST", "/echo", h_echo, 0, NULL },
    { "GET", "/things/{name}/json", h_thing, 0, thing_params },
    { "GET", "/fail", h_fail, 0, NULL },
    { "GET", "/stream", h_stream, API_ROUTE_WORKER, NULL },
    { "POST", "/hijack", h_hijack, API_ROUTE_WORKER, NULL },
    { "POST", "/sink", h_sink, API_ROUTE_STREAM_BODY, sink_params },
    { "POST", "/sink-buffered", h_sink, API_ROUTE_WORKER, NULL },
};

/* ---- fixture ----------------------------------------------------------------- */

static void *run_server(void *arg)
{
    struct fixture *f = arg;
    struct merr err = MERR_INIT;
    f->run_rc = api_server_run(f->srv, f->stop_fd, &err);
    return NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_api_server.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof f->sock, "%s/api.sock", f->dir);
    struct api_server_config cfg = { .server_version = "0.1.0", .max_body = 1024 };
    struct merr err = MERR_INIT;
    f->srv = api_server_new(&cfg, &err);
    assert_non_null(f->srv);
    assert_int_equal(api_system_register(api_server_router(f->srv), &test_system, &err), 0);
    assert_int_equal(api_router_add_table(api_server_router(f->srv), test_routes,
                                          sizeof test_routes / sizeof test_routes[0], NULL, &err),
                     0);
    f->events = evt_bus_new(0);
    f->services.events = f->events;
    assert_int_equal(handlers_register_storage(api_server_router(f->srv), &f->services, &err), 0);
    struct api_listen_spec spec;
    char addr[160];
    snprintf(addr, sizeof addr, "unix://%s", f->sock);
    assert_int_equal(api_listen_spec_parse(addr, false, &spec, &err), 0);
    assert_int_equal(api_server_listen(f->srv, &spec, &err), 0);
    api_listen_spec_release(&spec);
    f->stop_fd = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(pthread_create(&f->thread, NULL, run_server, f), 0);
    f->running = true;
    *state = f;
    return 0;
}

static void stop_server(struct fixture *f)
{
    if (!f->running)
        return;
    uint64_t one = 1;
    assert_int_equal(write(f->stop_fd, &one, sizeof one), sizeof one);
    pthread_join(f->thread, NULL);
    f->running = false;
    assert_int_equal(f->run_rc, 0);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    stop_server(f);
    api_server_free(f->srv);
    evt_bus_free(f->events);
    close(f->stop_fd);
    struct stat st;
    assert_int_equal(lstat(f->sock, &st), -1); /* the socket is removed */
    assert_int_equal(rmdir(f->dir), 0);        /* and nothing else is left */
    free(f);
    return 0;
}

/* ---- client helpers ------------------------------------------------------------ */

static int client_connect(const struct fixture *f)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", f->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    return fd;
}

static void send_text(int fd, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads until `needle` has been seen `times` times (NULL: until EOF), with
 * a time bound. Returns a NUL-terminated buffer (binary safe through *len). */
static char *read_until(int fd, const char *needle, int times, size_t *len_out)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap + 1);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (needle != NULL) {
            int seen = 0;
            for (char *p = memmem(buf, len, needle, strlen(needle)); p != NULL;
                 p = memmem(p + 1, len - (size_t)(p + 1 - buf), needle, strlen(needle)))
                seen++;
            if (seen >= times)
                break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > IO_TIMEOUT_MS)
            fail_msg("timed out waiting for '%s'; got: %.*s", needle ? needle : "EOF", (int)len, buf);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) {
            if (needle != NULL)
                fail_msg("EOF before '%s'; got: %.*s", needle, (int)len, buf);
            break;
        }
        len += (size_t)n;
        assert_true(len < cap);
    }
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return buf;
}

static char *roundtrip_close(struct fixture *f, const char *request)
{
    int fd = client_connect(f);
    send_text(fd, request);
    char *resp = read_until(fd, NULL, 0, NULL);
    close(fd);
    return resp;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_socket_mode(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    assert_int_equal(lstat(f->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    DIR *d = opendir(f->dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.' || strncmp(e->d_name, ".machine-engine-", 16) == 0;
    closedir(d);
    assert_int_equal(entries, 1); /* no temporary directory left behind */
}

static void test_refuses_live_socket(void **state)
{
    struct fixture *f = *state;
    struct api_server_config cfg = { .server_version = "0.1.0" };
    struct merr err = MERR_INIT;
    struct api_server *other = api_server_new(&cfg, &err);
    struct api_listen_spec spec = { .kind = API_LISTEN_UNIX, .path = f->sock };
    assert_int_equal(api_server_listen(other, &spec, &err), -1);
    assert_int_equal(err.code, MERR_BUSY);
    api_server_free(other);
}

static void test_keepalive_and_pipelining(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    send_text(fd, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /v1.41/_ping HTTP/1.1\r\nHost: x\r\n\r\n");
    char *two = read_until(fd, "\r\n\r\nOK", 2, NULL);
    assert_non_null(strstr(two, "HTTP/1.1 200 OK\r\n"));
    assert_null(strstr(two, "Connection: close"));
    free(two);
    send_text(fd, "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char *third = read_until(fd, NULL, 0, NULL); /* the server closes */
    assert_non_null(strstr(third, "Connection: close\r\n"));
    assert_non_null(strstr(third, "\"ApiVersion\":\"1.45\""));
    free(third);
    close(fd);
}

static void test_head_ping(void **state)
{
    char *r = roundtrip_close(*state, "HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(r, "Content-Length: 0\r\n"));
    assert_non_null(strstr(r, "Swarm: inactive\r\n"));
    assert_non_null(strstr(r, "Builder-Version: 1\r\n"));
    assert_non_null(strstr(r, "Docker-Experimental: false\r\n"));
    assert_non_null(strstr(r, "Server: machine-engine/0.1.0 (linux)\r\n"));
    assert_int_equal(strcmp(r + strlen(r) - 4, "\r\n\r\n"), 0); /* no body */
    free(r);
}

static void test_body_limit(void **state)
{
    char *r = roundtrip_close(*state, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 413 ", 13) == 0);
    assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
    free(r);
    /* a chunked body crossing the cap is cut off as well */
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "400\r\n%01024d\r\n10\r\n%016d\r\n0\r\n\r\n", 0, 0);
    assert_true(n > 0 && n < (int)sizeof req);
    r = roundtrip_close(*state, req);
    assert_true(strncmp(r, "HTTP/1.1 413 ", 13) == 0);
    free(r);
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        buf += n;
        len -= (size_t)n;
    }
}

/* A streamed body far above max_body (1 KiB here) arrives whole, with Content-Length and
 * chunked, and the connection stays usable for the next request. */
static void test_stream_body(void **state)
{
    struct fixture *f = *state;
    size_t big = (size_t)5 << 20;
    char *body = malloc(big);
    unsigned long long sum = 0;
    for (size_t i = 0; i < big; i++) {
        body[i] = (char)(i * 7 + 3);
        sum += (unsigned char)body[i];
    }
    int fd = client_connect(f);
    char head[256];
    snprintf(head, sizeof head, "POST /v1.45/sink HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", big);
    send_text(fd, head);
    send_all(fd, body, big);
    send_text(fd, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"); /* pipelined after the body */
    char *r = read_until(fd, "\r\n\r\nOK", 1, NULL);
    char expect[128];
    snprintf(expect, sizeof expect, "{\"len\":%zu,\"sum\":%llu}", big, sum);
    assert_non_null(strstr(r, expect));
    free(r);
    /* chunked, in uneven chunks */
    send_text(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    unsigned long long csum = 0;
    size_t clen = 0;
    for (size_t off = 0, step = 1; off < big; off += step, step = step * 3 + 1) {
        size_t n = off + step > big ? big - off : step;
        char sz[32];
        snprintf(sz, sizeof sz, "%zx\r\n", n);
        send_text(fd, sz);
        send_all(fd, body + off, n);
        send_text(fd, "\r\n");
        for (size_t i = 0; i < n; i++)
            csum += (unsigned char)body[off + i];
        clen += n;
    }
    send_text(fd, "0\r\n\r\n");
    r = read_until(fd, NULL, 0, NULL);
    snprintf(expect, sizeof expect, "{\"len\":%zu,\"sum\":%llu}", clen, csum);
    assert_non_null(strstr(r, expect));
    free(r);
    close(fd);
    free(body);
}

/* A handler that stops reading early still answers; the connection then closes, since the
 * unread rest of the body is not a request. A client that leaves mid-body ends the handler. */
static void test_stream_body_unread_and_cut(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    send_text(fd, "POST /sink?max=10 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
    send_text(fd, "0123456789abcdefghij");
    char *r = read_until(fd, NULL, 0, NULL); /* EOF: closed by the server */
    assert_non_null(strstr(r, "{\"len\":10,"));
    free(r);
    close(fd);
    fd = client_connect(f);
    send_text(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc");
    shutdown(fd, SHUT_WR);
    r = read_until(fd, NULL, 0, NULL);
    assert_null(strstr(r, "\"len\""));
    free(r);
    close(fd);
    /* the server is fine afterwards; a buffered worker route reads its body the same way */
    r = roundtrip_close(f, "POST /sink-buffered HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Content-Length: 3\r\n\r\nabc");
    assert_non_null(strstr(r, "{\"len\":3,\"sum\":294}"));
    free(r);
}

/* A handler that stops reading early (a tar's reader stops at the end marker, before the
 * padding): the rest of the body is read and dropped, the reply comes, and the connection
 * serves the next request instead of closing over unread input (which makes the kernel reset
 * it while the client still writes: docker cp saw "broken pipe"). */
static void test_stream_body_rest_drained(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    size_t big = 300000;
    char head[128];
    snprintf(head, sizeof head, "POST /sink?max=10 HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", big);
    send_text(fd, head);
    char *body = malloc(big);
    memset(body, 'x', big);
    for (size_t off = 0; off < big;) {
        ssize_t n = write(fd, body + off, big - off);
        assert_true(n > 0); /* no reset while writing */
        off += (size_t)n;
    }
    free(body);
    send_text(fd, "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char *r = read_until(fd, NULL, 0, NULL);
    assert_non_null(strstr(r, "{\"len\":10,"));
    assert_non_null(strstr(r, "\r\n\r\nOK")); /* the second request was served */
    free(r);
    close(fd);
}

static void test_json_body(void **state)
{
    char *r = roundtrip_close(*state, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                      "Content-Length: 8\r\n\r\n{\"a\":1 }");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(r, "\r\n\r\n{\"len\":8,\"body\":{\"a\":1}}\n"));
    free(r);
    r = roundtrip_close(*state, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Content-Length: 3\r\n\r\n{x}");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    free(r);
}

static void test_errors(void **state)
{
    char *r = roundtrip_close(*state, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    assert_non_null(strstr(r, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(r, "\r\n\r\n{\"message\":\"page not found\"}\n"));
    free(r);
    r = roundtrip_close(*state, "GET /v9.99/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(r, "Maximum supported API version is 1.45"));
    free(r);
    r = roundtrip_close(*state, "GET /v1.12/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    free(r);
    r = roundtrip_close(*state, "GET /fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
    assert_non_null(strstr(r, "{\"message\":\"No such container: x\"}"));
    free(r);
    r = roundtrip_close(*state, "BLAH\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    free(r);
}

static void test_vars_query_headers(void **state)
{
    char *r = roundtrip_close(*state,
                              "GET /v1.41/things/127.0.0.1:5000/a/b%3Atag/json?all=1&n=42 HTTP/1.1\r\n"
                              "Host: x\r\nX-Registry-Auth: e30=\r\nConnection: close\r\n\r\n");
    assert_non_null(
        strstr(r, "{\"name\":\"127.0.0.1:5000/a/b:tag\",\"all\":true,\"n\":42,\"auth\":\"e30=\"}"));
    free(r);
    r = roundtrip_close(*state, "GET /things/x/json?n=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    free(r);
}

/* A refused parameter set to a non-default value is a 400 naming it, before the handler runs;
 * a streamed body is drained so the connection serves the next request. */
static void test_refused_query_params(void **state)
{
    char *r = roundtrip_close(*state, "GET /things/x/json?n=1&link=1 HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(r, "{\"message\":\"query parameter 'link' is not supported by "
                              "machine-engine\"}"));
    free(r);
    const char *fine[] = { "link=0", "link=", "link=false", "link=local", "linked=1" };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET /things/x/json?n=1&%s HTTP/1.1\r\nHost: x\r\n"
                                  "Connection: close\r\n\r\n", fine[i]);
        r = roundtrip_close(*state, req);
        assert_true(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
        free(r);
    }

    struct fixture *f = *state;
    int fd = client_connect(f);
    send_text(fd, "POST /sink?link=yes HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    char body[5000];
    memset(body, 'x', sizeof body);
    assert_int_equal(write(fd, body, sizeof body), (ssize_t)sizeof body);
    send_text(fd, "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    r = read_until(fd, NULL, 0, NULL);
    assert_true(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(r, "query parameter 'link' is not supported"));
    assert_null(strstr(r, "\"len\"")); /* the handler did not run */
    assert_non_null(strstr(r, "\r\n\r\nOK"));
    free(r);
    close(fd);
}

static void test_worker_stream_then_keepalive(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    send_text(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    char *r = read_until(fd, "0\r\n\r\n", 1, NULL);
    assert_non_null(strstr(r, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(r, "\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n"));
    free(r);
    /* the worker handed the connection back to the loop */
    send_text(fd, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n");
    r = read_until(fd, "\r\n\r\nOK", 1, NULL);
    free(r);
    close(fd);
}

static void test_hijack_upgrade_half_close(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    /* "hello" arrives together with the request: buffered stdin */
    send_text(fd, "POST /v1.45/hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                  "Upgrade: tcp\r\nContent-Length: 0\r\n\r\nhello");
    char *head = read_until(fd, "\r\n\r\n", 1, NULL);
    assert_true(strncmp(head, "HTTP/1.1 101 UPGRADED\r\n", 23) == 0);
    assert_non_null(strstr(head, "Content-Type: application/vnd.docker.multiplexed-stream\r\n"));
    assert_non_null(strstr(head, "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
    free(head);
    send_text(fd, "world");
    assert_int_equal(shutdown(fd, SHUT_WR), 0); /* stdin EOF */
    size_t len;
    char *out = read_until(fd, NULL, 0, &len);
    static const char want[] = { 1, 0, 0, 0, 0, 0, 0, 14, 'g', 'o', 't', ':', 'h', 'e', 'l',
                                 'l', 'o', 'w', 'o', 'r', 'l', 'd' };
    assert_int_equal(len, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    free(out);
    close(fd);
}

/* exec start: a JSON body precedes the hijacked stream on the wire */
static void test_hijack_with_body(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    send_text(fd, "POST /v1.45/hijack?tty=true HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                  "Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
                  "{\"Tty\":true}\nstdin");
    shutdown(fd, SHUT_WR);
    char *all = read_until(fd, NULL, 0, NULL);
    assert_true(strncmp(all, "HTTP/1.1 101 UPGRADED\r\n", 23) == 0);
    assert_non_null(strstr(all, "Content-Type: application/vnd.docker.raw-stream\r\n"));
    assert_non_null(strstr(all, "\r\n\r\n{\"Tty\":true}\ngot:stdin"));
    free(all);
    close(fd);
}

static void test_hijack_tty_and_old_clients(void **state)
{
    struct fixture *f = *state;
    /* API < 1.42 upgrade: raw stream type even without a TTY */
    int fd = client_connect(f);
    send_text(fd, "POST /v1.41/hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                  "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n");
    char *head = read_until(fd, "\r\n\r\n", 1, NULL);
    assert_true(strncmp(head, "HTTP/1.1 101 UPGRADED\r\n", 23) == 0);
    assert_non_null(strstr(head, "Content-Type: application/vnd.docker.raw-stream\r\n"));
    free(head);
    shutdown(fd, SHUT_WR);
    free(read_until(fd, NULL, 0, NULL));
    close(fd);

    /* no upgrade asked: 200 + raw stream; TTY output is not framed */
    fd = client_connect(f);
    send_text(fd, "POST /hijack?tty=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nab");
    shutdown(fd, SHUT_WR);
    char *all = read_until(fd, NULL, 0, NULL);
    assert_true(strncmp(all, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(all, "Content-Type: application/vnd.docker.raw-stream\r\n"));
    assert_non_null(strstr(all, "\r\n\r\ngot:ab"));
    free(all);
    close(fd);
}

static void test_events_end_on_shutdown(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    send_text(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    char *head = read_until(fd, "\r\n\r\n", 1, NULL);
    assert_non_null(strstr(head, "Transfer-Encoding: chunked"));
    free(head);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 200), 0); /* nothing streams, nothing closes */
    stop_server(f);                          /* must cancel the worker */
    char *rest = read_until(fd, NULL, 0, NULL);
    assert_string_equal(rest, "0\r\n\r\n");
    free(rest);
    close(fd);
}

static void test_events_client_leaves(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        int fd = client_connect(f);
        send_text(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
        free(read_until(fd, "\r\n\r\n", 1, NULL));
        close(fd); /* the worker notices and ends */
    }
    /* the loop is still responsive */
    char *r = roundtrip_close(f, "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(r, "\r\n\r\nOK"));
    free(r);
}

static void test_events_live_and_filtered(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(f);
    /* docker events --filter type=volume (the CLI's encoding) */
    send_text(fd, "GET /v1.45/events?filters=%7B%22type%22%3A%7B%22volume%22%3Atrue%7D%7D "
                  "HTTP/1.1\r\nHost: x\r\n\r\n");
    free(read_until(fd, "\r\n\r\n", 1, NULL));
    evt_emit(f->events, "container", "start", "c1", NULL); /* filtered out */
    evt_emit(f->events, "volume", "create", "v1", NULL);
    char *got = read_until(fd, "\"Action\":\"create\"", 1, NULL);
    assert_non_null(strstr(got, "\"Type\":\"volume\""));
    assert_null(strstr(got, "\"c1\""));
    free(got);
    close(fd);
    /* since/until in the past: replayed, then the stream ends */
    fd = client_connect(f);
    char req[160];
    snprintf(req, sizeof req,
             "GET /events?since=1&until=%lld HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             (long long)time(NULL) + 1);
    send_text(fd, req);
    char *all = read_until(fd, "0\r\n\r\n", 1, NULL);
    assert_non_null(strstr(all, "\"c1\""));
    assert_non_null(strstr(all, "\"v1\""));
    free(all);
    close(fd);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_socket_mode),
        T(test_refuses_live_socket),
        T(test_keepalive_and_pipelining),
        T(test_head_ping),
        T(test_body_limit),
        T(test_json_body),
        T(test_stream_body),
        T(test_stream_body_unread_and_cut),
        T(test_stream_body_rest_drained),
        T(test_errors),
        T(test_vars_query_headers),
        T(test_refused_query_params),
        T(test_worker_stream_then_keepalive),
        T(test_hijack_upgrade_half_close),
        T(test_hijack_with_body),
        T(test_hijack_tty_and_old_clients),
        T(test_events_end_on_shutdown),
        T(test_events_client_leaves),
        T(test_events_live_and_filtered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
