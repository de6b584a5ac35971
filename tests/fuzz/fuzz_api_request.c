/* Fuzz target for the engine's HTTP request handling (security case 30): the input is what a
 * client sends on one connection to the real API server (http-parser, URL decoding, version
 * prefix and negotiation, routing with variables, query strings, filters, JSON bodies, streamed
 * bodies, keep-alive and pipelining, the connection limits and deadlines). The server runs on its
 * own thread with a Unix listener, started once; each input is one connection, half-closed after
 * the input so the server answers and closes. */
#define MACHINE_API_PRIV
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLY_WAIT_MS 2000

static int h_inspect(struct api_request *req, void *data, struct merr *err)
{
    long long n;
    if (api_request_query_int(req, "n", -1, &n, err) < 0)
        return -1;
    struct api_filters f = { 0 };
    if (api_request_filters(req, &f, err) < 0)
        return -1;
    static const char *const allowed[] = { "label", "name", "status", NULL };
    int rc = api_filters_validate(&f, allowed, err);
    api_filters_release(&f);
    if (rc < 0)
        return -1;
    return api_reply_json(req, 200,
                          json_pack("{s:s, s:b, s:s?}", "id", api_request_var(req, "id"), "all",
                                    api_request_query_bool(req, "all"), "auth",
                                    api_request_header(req, "x-registry-auth")),
                          err);
}

static int h_create(struct api_request *req, void *data, struct merr *err)
{
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    json_decref(body);
    return api_reply_empty(req, 204, err);
}

static int h_load(struct api_request *req, void *data, struct merr *err)
{
    char buf[4096];
    size_t total = 0;
    for (;;) {
        ssize_t n = api_request_body_read(req, buf, sizeof buf, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        total += (size_t)n;
    }
    if (api_stream_begin(req, 200, "application/json", err) < 0)
        return -1;
    char line[64];
    int len = snprintf(line, sizeof line, "{\"len\":%zu}\n", total);
    return api_stream_write(req, line, (size_t)len, err);
}

static const struct api_route routes[] = {
    { "GET", "/containers/{id}/json", h_inspect, 0, NULL },
    { "POST", "/containers/create", h_create, 0, NULL },
    { "POST", "/exec/{id}/start", h_create, API_ROUTE_WORKER, NULL },
    { "POST", "/images/load", h_load, API_ROUTE_STREAM_BODY, NULL },
};

struct server {
    struct api_server *srv;
    char sock[108];
    int stop_fd;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    struct merr err = MERR_INIT;
    if (api_server_run(s->srv, s->stop_fd, &err) < 0)
        fprintf(stderr, "fuzz_api_request: server stopped: %s\n", err.msg);
    return NULL;
}

/* libFuzzer's entry point takes no context: the one server lives here. */
static struct server the_server;

/* The socket and its directory go when the fuzzer exits (the server thread is left to die). */
static void remove_socket(void)
{
    unlink(the_server.sock);
    char *slash = strrchr(the_server.sock, '/');
    if (slash != NULL) {
        *slash = '\0';
        rmdir(the_server.sock);
    }
}

static struct server *server_once(void)
{
    static bool started;
    if (started)
        return &the_server;
    started = true;
    struct merr err = MERR_INIT;
    struct api_server_config cfg = { .server_version = "fuzz", .max_body = 64 * 1024,
                                     .header_timeout_ms = REPLY_WAIT_MS };
    the_server.srv = api_server_new(&cfg, &err);
    char dir[] = "/tmp/fuzz-api-XXXXXX";
    if (the_server.srv == NULL || mkdtemp(dir) == NULL ||
        api_router_add_table(api_server_router(the_server.srv), routes,
                             sizeof routes / sizeof routes[0], NULL, &err) < 0) {
        fprintf(stderr, "fuzz_api_request: %s\n", err.msg);
        abort();
    }
    snprintf(the_server.sock, sizeof the_server.sock, "%s/api.sock", dir);
    struct api_listen_spec spec;
    if (api_listen_spec_parse(the_server.sock, false, &spec, &err) < 0 ||
        api_server_listen(the_server.srv, &spec, &err) < 0) {
        fprintf(stderr, "fuzz_api_request: %s\n", err.msg);
        abort();
    }
    api_listen_spec_release(&spec);
    atexit(remove_socket);
    the_server.stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, &the_server) != 0)
        abort();
    return &the_server;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct server *s = server_once();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", s->sock);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        abort();
    /* send what fits while reading replies, so neither side blocks on a full buffer */
    size_t sent = 0;
    bool shut = false;
    char buf[65536];
    for (int rounds = 0; rounds < 10000; rounds++) {
        if (sent == size && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT) };
        if (poll(&p, 1, REPLY_WAIT_MS * 2) <= 0)
            break; /* the server hangs: a deadline that does not fire is a bug too */
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = size; /* closed on us: stop sending */
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN))
                break;
        }
    }
    close(fd);
    return 0;
}
