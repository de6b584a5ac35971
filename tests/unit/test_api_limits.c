/* The API server's connection limits and deadlines, in-process over a Unix socket (issue 20):
 * a full server still serves a new client by closing the oldest waiting connection, never a
 * busy one; a connection without a request, a request head that never ends and an idle
 * keep-alive connection are each closed after their deadline. */
#define MACHINE_API_PRIV
#include "test_helpers.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api-priv.h"

#define MAX_CONNS 8
#define DEADLINE_MS 300
#define WAIT_MS 5000 /* bound on every wait; never an assertion on time */

struct fx {
    char *dir;
    char sock[100];
    struct api_server *srv;
    int stop_fd;
    pthread_t thread;
    int run_rc;
};

/* Holds its connection busy until the client writes a byte (or the server stops). */
static int h_hold(struct api_request *req, void *data, struct merr *err)
{
    struct pollfd p[2] = { { .fd = api_request_fd(req), .events = POLLIN },
                           { .fd = api_request_cancel_fd(req), .events = POLLIN } };
    (void)poll(p, 2, WAIT_MS);
    return api_reply_empty(req, 204, err);
}

static int h_ok(struct api_request *req, void *data, struct merr *err)
{
    return api_reply_raw(req, 200, "text/plain", "OK", 2, err);
}

static const struct api_route routes[] = {
    { "GET", "/ok", h_ok, 0, NULL },
    { "POST", "/hold", h_hold, API_ROUTE_WORKER, NULL },
};

static void *run(void *arg)
{
    struct fx *f = arg;
    struct merr err = MERR_INIT;
    f->run_rc = api_server_run(f->srv, f->stop_fd, &err);
    return NULL;
}

static struct fx *start(unsigned deadline_ms)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir();
    snprintf(f->sock, sizeof f->sock, "%s/api.sock", f->dir);
    struct api_server_config cfg = { .server_version = "0.1.0", .max_conns = MAX_CONNS,
                                     .handshake_timeout_ms = deadline_ms,
                                     .header_timeout_ms = deadline_ms,
                                     .idle_timeout_ms = deadline_ms };
    struct merr err = MERR_INIT;
    f->srv = api_server_new(&cfg, &err);
    assert_non_null(f->srv);
    assert_int_equal(api_router_add_table(api_server_router(f->srv), routes,
                                          sizeof routes / sizeof routes[0], NULL, &err),
                     0);
    struct api_listen_spec spec;
    assert_int_equal(api_listen_spec_parse(f->sock, false, &spec, &err), 0);
    assert_int_equal(api_server_listen(f->srv, &spec, &err), 0);
    api_listen_spec_release(&spec);
    f->stop_fd = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(pthread_create(&f->thread, NULL, run, f), 0);
    return f;
}

static void stop(struct fx *f)
{
    uint64_t one = 1;
    assert_int_equal(write(f->stop_fd, &one, sizeof one), sizeof one);
    pthread_join(f->thread, NULL);
    assert_int_equal(f->run_rc, 0);
    api_server_free(f->srv);
    close(f->stop_fd);
    test_tmpdir_remove(f->dir);
    free(f);
}

static int dial(const struct fx *f)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", f->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    return fd;
}

static void say(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* 1 when the server closed fd (EOF or reset) within wait_ms, else 0; replies are skipped. */
static int closed_by_server(int fd, int wait_ms)
{
    char buf[4096];
    for (int waited = 0; waited < wait_ms; waited += 50) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return 1;
    }
    return 0;
}

/* The reply to GET /ok on a fresh connection, "" when there was none. */
static void get_ok(const struct fx *f, char *out, size_t size)
{
    int fd = dial(f);
    say(fd, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    size_t len = 0;
    for (int waited = 0; waited < WAIT_MS && len + 1 < size; waited += 50) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, out + len, size - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    out[len] = '\0';
    close(fd);
}

static void test_full_server_evicts_oldest_waiting_connection(void **state)
{
    struct fx *f = start(60000); /* deadlines out of the way: only the limit acts */
    /* two busy connections first (the oldest), then silent and half-sent ones to the limit */
    int busy[2], idle[MAX_CONNS];
    for (int i = 0; i < 2; i++) {
        busy[i] = dial(f);
        say(busy[i], "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    }
    struct timespec ts = { 0, 100 * 1000000L };
    nanosleep(&ts, NULL); /* the holds are dispatched */
    for (int i = 0; i < MAX_CONNS - 2; i++) {
        idle[i] = dial(f);
        if (i % 2)
            say(idle[i], "GET /ok HTTP/1.1\r\nHost:");
    }
    char reply[512];
    get_ok(f, reply, sizeof reply);
    assert_non_null(strstr(reply, "200 OK"));
    assert_int_equal(closed_by_server(idle[0], WAIT_MS), 1); /* the oldest waiting one went */
    for (int i = 0; i < 2; i++) { /* the busy ones were kept and still answer */
        say(busy[i], "x");
        char buf[256] = "";
        struct pollfd p = { .fd = busy[i], .events = POLLIN };
        assert_int_equal(poll(&p, 1, WAIT_MS), 1);
        assert_true(recv(busy[i], buf, sizeof buf - 1, 0) > 0);
        assert_non_null(strstr(buf, "204"));
        close(busy[i]);
    }
    for (int i = 0; i < MAX_CONNS - 2; i++)
        close(idle[i]);
    stop(f);
}

static void test_deadlines_close_waiting_connections(void **state)
{
    struct fx *f = start(DEADLINE_MS);
    int silent = dial(f);
    int half = dial(f);
    say(half, "GET /ok HTTP/1.1\r\nHost: x\r\n");
    int idle = dial(f);
    say(idle, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(closed_by_server(silent, WAIT_MS), 1);
    assert_int_equal(closed_by_server(half, WAIT_MS), 1);
    assert_int_equal(closed_by_server(idle, WAIT_MS), 1); /* after its reply */
    close(silent);
    close(half);
    close(idle);
    stop(f);
}

static void test_default_deadlines_keep_a_slow_client(void **state)
{
    struct fx *f = start(0); /* the defaults: seconds, not milliseconds */
    int fd = dial(f);
    say(fd, "GET /ok HTTP/1.1\r\nHost: x\r\n");
    assert_int_equal(closed_by_server(fd, 2 * DEADLINE_MS), 0);
    say(fd, "\r\n");
    char buf[512] = "";
    struct pollfd p = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    assert_true(recv(fd, buf, sizeof buf - 1, 0) > 0);
    assert_non_null(strstr(buf, "200 OK"));
    close(fd);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_server_evicts_oldest_waiting_connection),
        cmocka_unit_test(test_deadlines_close_waiting_connections),
        cmocka_unit_test(test_default_deadlines_keep_a_slow_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
