/* The registry client against scripted HTTP servers on loopback, for what a real
 * registry will not do on demand: cross-host redirects (case 11), 429/5xx with
 * Retry-After (case 28), broken transfers, lying Docker-Content-Digest headers
 * (case 7), oversized manifests (case 9), Basic authentication, Bearer tokens for login
 * (no scope) and push (push,pull plus the mount source). The pull itself is
 * tested against a real docker-registry in itest_pull. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "image/auth.h"
#include "image/internal.h"
#include "image/manifest.h"

#define MAX_SEEN 64

struct request_seen {
    char method[8];
    char path[512];
    char authorization[512];
    char range[64];
};

struct server;
typedef void (*handler_fn)(struct server *srv, const struct request_seen *rq, int fd);

struct server {
    int fd;
    char ip[32];
    int port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    struct request_seen seen[MAX_SEEN];
    size_t n_seen;
    handler_fn handler;
    void *ctx;
};

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sendf(int fd, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    send_all(fd, buf, (size_t)n);
}

static void header_value(const char *headers, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = headers; p != NULL && *p != '\0'; p = strstr(p, "\r\n")) {
        if (p[0] == '\r')
            p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return;
        }
    }
}

static void *server_main(void *arg)
{
    struct server *srv = arg;
    while (!atomic_load(&srv->stop)) {
        struct pollfd pfd = { srv->fd, POLLIN, 0 };
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int c = accept(srv->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = { 5, 0 };
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[8192];
        size_t len = 0;
        while (len < sizeof buf - 1) {
            ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            if (strstr(buf, "\r\n\r\n") != NULL)
                break;
        }
        buf[len] = '\0';
        struct request_seen rq = { 0 };
        sscanf(buf, "%7s %511s", rq.method, rq.path);
        header_value(buf, "Authorization", rq.authorization, sizeof rq.authorization);
        header_value(buf, "Range", rq.range, sizeof rq.range);
        pthread_mutex_lock(&srv->lock);
        if (srv->n_seen < MAX_SEEN)
            srv->seen[srv->n_seen++] = rq;
        pthread_mutex_unlock(&srv->lock);
        srv->handler(srv, &rq, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static void server_start(struct server *srv, const char *ip, handler_fn h, void *ctx)
{
    memset(srv, 0, sizeof *srv);
    snprintf(srv->ip, sizeof srv->ip, "%s", ip);
    srv->handler = h;
    srv->ctx = ctx;
    pthread_mutex_init(&srv->lock, NULL);
    srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(srv->fd >= 0);
    int one = 1;
    setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET };
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    assert_int_equal(bind(srv->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv->fd, 16), 0);
    socklen_t sl = sizeof a;
    getsockname(srv->fd, (struct sockaddr *)&a, &sl);
    srv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

static void server_stop(struct server *srv)
{
    atomic_store(&srv->stop, true);
    pthread_join(srv->thread, NULL);
    close(srv->fd);
    pthread_mutex_destroy(&srv->lock);
}

/* ---- fixtures ---- */

struct fixture {
    char blob[200000];
    char digest[DIGEST_BUF_LEN];
    struct server a, b, c;
    struct registry_config rc;
    struct curl_api curl;
    atomic_int hits;      /* scenario counter */
    const char *scenario;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    for (size_t i = 0; i < sizeof f->blob; i++)
        f->blob[i] = (char)((i * 2654435761u) >> 13);
    sha256_digest(f->blob, sizeof f->blob, f->digest);
    image_registry_config_init(&f->rc);
    f->rc.connect_timeout_ms = 2000;
    f->rc.request_timeout_s = 10;
    f->rc.low_speed_time_s = 5;
    f->rc.max_attempts = 4;
    f->rc.backoff_base_ms = 20;
    f->rc.backoff_max_ms = 2000;
    struct merr err = MERR_INIT;
    assert_int_equal(curl_api_load(&f->curl, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    curl_api_unload(&f->curl);
    free(f);
    return 0;
}

struct sink_buf {
    char *data;
    size_t len;
};

static int sink_write(void *ctx, const void *buf, size_t len, struct merr *err)
{
    struct sink_buf *s = ctx;
    s->data = realloc(s->data, s->len + len);
    memcpy(s->data + s->len, buf, len);
    s->len += len;
    return 0;
}

static int stream(struct fixture *f, struct registry_client *c, struct sink_buf *out,
                  struct merr *err)
{
    struct blob_sink sink = { .write = sink_write, .ctx = out };
    return registry_stream_blob(c, f->digest, sizeof f->blob, &sink, err);
}

static struct registry_client *client_for(struct fixture *f, struct server *srv,
                                          const struct registry_creds *creds)
{
    char url[64];
    snprintf(url, sizeof url, "http://%s:%d", srv->ip, srv->port);
    struct merr err = MERR_INIT;
    struct registry_client *c = registry_client_new(&f->rc, &f->curl, url, "test/img", creds, &err);
    assert_non_null(c);
    return c;
}

static void send_blob(int fd, const char *body, size_t len, const char *extra)
{
    sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", len,
          extra != NULL ? extra : "");
    send_all(fd, body, len);
}

/* ---- case 11: credentials never follow a redirect to another host ---- */

static void blob_host(struct server *srv, const struct request_seen *rq, int fd)
{
    struct fixture *f = srv->ctx;
    send_blob(fd, f->blob, sizeof f->blob, NULL);
}

static void auth_registry(struct server *srv, const struct request_seen *rq, int fd)
{
    struct fixture *f = srv->ctx;
    if (strncmp(rq->path, "/token?", 7) == 0) {
        static const char tok[] = "{\"token\":\"tok-123\",\"expires_in\":300}";
        send_blob(fd, tok, strlen(tok), "Content-Type: application/json\r\n");
        return;
    }
    if (strcmp(rq->authorization, "Bearer tok-123") != 0) {
        sendf(fd,
              "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n"
              "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"test\"\r\n\r\n",
              srv->port);
        return;
    }
    if (strcmp(rq->path, "/v2/") == 0) {
        send_blob(fd, "{}", 2, NULL);
        return;
    }
    /* blobs live elsewhere: another address, then the same address on another port */
    struct server *to = strstr(f->scenario, "port") ? &f->c : &f->b;
    sendf(fd,
          "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://%s:%d/storage/%s?sig=1\r\n"
          "Content-Length: 0\r\nConnection: close\r\n\r\n",
          to->ip, to->port, f->digest);
}

static void test_no_credentials_across_redirect(void **state)
{
    struct fixture *f = *state;
    server_start(&f->a, "127.0.0.1", auth_registry, f);
    server_start(&f->b, "127.0.0.2", blob_host, f);
    server_start(&f->c, "127.0.0.1", blob_host, f);
    struct registry_creds creds = { .username = "alice", .password = "pw" };
    static const char *const scenarios[] = { "other host", "other port" };
    for (size_t s = 0; s < 2; s++) {
        f->scenario = scenarios[s];
        struct registry_client *c = client_for(f, &f->a, &creds);
        struct merr err = MERR_INIT;
        if (registry_ping(c, &err) < 0)
            fail_msg("ping: %s", err.msg);
        struct sink_buf out = { 0 };
        if (stream(f, c, &out, &err) < 0)
            fail_msg("%s: %s", scenarios[s], err.msg);
        assert_int_equal(out.len, sizeof f->blob);
        assert_memory_equal(out.data, f->blob, out.len);
        free(out.data);
        registry_client_free(c);
    }
    server_stop(&f->a);
    server_stop(&f->b);
    server_stop(&f->c);
    /* the registry got the bearer token, its realm the Basic credentials ... */
    bool saw_basic = false, saw_bearer_blob = false;
    for (size_t i = 0; i < f->a.n_seen; i++) {
        if (strncmp(f->a.seen[i].path, "/token?", 7) == 0)
            saw_basic |= strcmp(f->a.seen[i].authorization, "Basic YWxpY2U6cHc=") == 0;
        if (strstr(f->a.seen[i].path, "/blobs/") != NULL)
            saw_bearer_blob |= strcmp(f->a.seen[i].authorization, "Bearer tok-123") == 0;
    }
    assert_true(saw_basic);
    assert_true(saw_bearer_blob);
    /* ... and the hosts the redirects pointed at got nothing */
    assert_int_equal(f->b.n_seen, 1);
    assert_int_equal(f->c.n_seen, 1);
    assert_string_equal(f->b.seen[0].authorization, "");
    assert_string_equal(f->c.seen[0].authorization, "");
    assert_non_null(strstr(f->b.seen[0].path, "/storage/"));
}

/* A registry reached over plain HTTP only because it is loopback cannot send our
 * credentials to a plain-HTTP realm elsewhere. [::ffff:127.0.0.1] is not loopback
 * by our rule (only 127/8 and ::1 are), yet dialing it stays on this machine. */
static void downgrade_registry(struct server *srv, const struct request_seen *rq, int fd)
{
    sendf(fd,
          "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n"
          "WWW-Authenticate: Bearer realm=\"http://[::ffff:127.0.0.1]:%d/token\",service=\"x\"\r\n"
          "\r\n",
          srv->port);
}

static void test_realm_must_not_downgrade(void **state)
{
    struct fixture *f = *state;
    server_start(&f->a, "127.0.0.1", downgrade_registry, f);
    struct registry_creds creds = { .username = "alice", .password = "pw" };
    struct registry_client *c = client_for(f, &f->a, &creds);
    struct merr err = MERR_INIT;
    assert_int_equal(registry_ping(c, &err), -1);
    assert_int_equal(err.code, MERR_AUTH);
    registry_client_free(c);
    server_stop(&f->a);
    for (size_t i = 0; i < f->a.n_seen; i++)
        assert_null(strstr(f->a.seen[i].path, "/token"));
}

/* ---- case 28: 429/5xx, Retry-After, bounded attempts ---- */

static void flaky_registry(struct server *srv, const struct request_seen *rq, int fd)
{
    struct fixture *f = srv->ctx;
    if (strcmp(rq->path, "/v2/") == 0) {
        send_blob(fd, "{}", 2, NULL);
        return;
    }
    int n = atomic_fetch_add(&f->hits, 1);
    if (strcmp(f->scenario, "retry-after") == 0 && n == 0) {
        sendf(fd, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n");
    } else if (strcmp(f->scenario, "retry-after") == 0 && n == 1) {
        sendf(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n"
                  "\r\nbusy!");
    } else if (strcmp(f->scenario, "always-503") == 0) {
        sendf(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
                  "\r\n");
    } else if (strcmp(f->scenario, "retry-after-long") == 0) {
        sendf(fd, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n");
    } else if (strcmp(f->scenario, "cut") == 0 && n == 0) {
        /* promise everything, send half, hang up */
        sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
              sizeof f->blob);
        send_all(fd, f->blob, sizeof f->blob / 2);
    } else if (strcmp(f->scenario, "cut") == 0 && rq->range[0] != '\0') {
        unsigned long start = strtoul(rq->range + 6, NULL, 10);
        sendf(fd,
              "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %lu-%zu/%zu\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
              start, sizeof f->blob - 1, sizeof f->blob, sizeof f->blob - start);
        send_all(fd, f->blob + start, sizeof f->blob - start);
    } else if (strcmp(f->scenario, "cut-no-range") == 0 && n == 0) {
        sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
              sizeof f->blob);
        send_all(fd, f->blob, 1000);
    } else if (strcmp(f->scenario, "lying-digest") == 0) {
        /* right length, wrong bytes, and a header that vouches for them */
        char *bad = malloc(sizeof f->blob);
        memcpy(bad, f->blob, sizeof f->blob);
        bad[100] ^= 1;
        char hdr[128], d[DIGEST_BUF_LEN];
        sha256_digest(bad, sizeof f->blob, d);
        snprintf(hdr, sizeof hdr, "Docker-Content-Digest: %s\r\n", d);
        send_blob(fd, bad, sizeof f->blob, hdr);
        free(bad);
    } else if (strcmp(f->scenario, "big-manifest") == 0) {
        size_t len = MANIFEST_MAX_SIZE + 4096;
        char *big = malloc(len);
        memset(big, ' ', len);
        big[0] = '{';
        send_blob(fd, big, len, "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n");
        free(big);
    } else {
        send_blob(fd, f->blob, sizeof f->blob, NULL);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_scenario(struct fixture *f, const char *scenario, struct merr *err, double *secs,
                        size_t *blob_requests)
{
    f->scenario = scenario;
    atomic_store(&f->hits, 0);
    server_start(&f->a, "127.0.0.1", flaky_registry, f);
    struct registry_client *c = client_for(f, &f->a, NULL);
    double t0 = now_s();
    int r = registry_ping(c, err);
    struct sink_buf out = { 0 };
    if (r == 0)
        r = stream(f, c, &out, err);
    *secs = now_s() - t0;
    if (r == 0) {
        assert_int_equal(out.len, sizeof f->blob);
        assert_memory_equal(out.data, f->blob, out.len);
    }
    free(out.data);
    registry_client_free(c);
    server_stop(&f->a);
    *blob_requests = (size_t)atomic_load(&f->hits);
    return r;
}

static void test_retry_after_honoured(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    double secs;
    size_t n;
    if (run_scenario(f, "retry-after", &err, &secs, &n) < 0)
        fail_msg("retry-after: %s", err.msg);
    assert_int_equal(n, 3);      /* 429, 503, 200 */
    assert_true(secs >= 1.0);    /* waited as asked */
    assert_true(secs < 5.0);
}

static void test_retries_are_bounded(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    double secs;
    size_t n;
    assert_int_equal(run_scenario(f, "always-503", &err, &secs, &n), -1);
    assert_int_equal(err.code, MERR_UNREACHABLE);
    assert_int_equal(n, f->rc.max_attempts);
    /* backoff 20, 40, 80 ms with jitter: well under the cap */
    assert_true(secs < 2.0);

    /* a Retry-After beyond our cap is not waited out */
    assert_int_equal(run_scenario(f, "retry-after-long", &err, &secs, &n), -1);
    assert_int_equal(err.code, MERR_UNREACHABLE);
    assert_int_equal(n, 1);
    assert_true(secs < 1.0);
}

static void test_resume_broken_transfer(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    double secs;
    size_t n;
    if (run_scenario(f, "cut", &err, &secs, &n) < 0)
        fail_msg("cut: %s", err.msg);
    assert_int_equal(n, 2);
    /* the second request asked for the rest only */
    bool ranged = false;
    for (size_t i = 0; i < f->a.n_seen; i++)
        ranged |= strncmp(f->a.seen[i].range, "bytes=", 6) == 0 &&
                  strtoul(f->a.seen[i].range + 6, NULL, 10) > 0;
    assert_true(ranged);
    /* a server that ignores Range resends everything; we skip what we have */
    if (run_scenario(f, "cut-no-range", &err, &secs, &n) < 0)
        fail_msg("cut-no-range: %s", err.msg);
    assert_int_equal(n, 2);
}

static void test_lying_digest_header(void **state)
{
    struct fixture *f = *state;
    struct merr err = MERR_INIT;
    double secs;
    size_t n;
    assert_int_equal(run_scenario(f, "lying-digest", &err, &secs, &n), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    /* the same for a manifest fetched by digest */
    f->scenario = "lying-digest";
    server_start(&f->a, "127.0.0.1", flaky_registry, f);
    struct registry_client *c = client_for(f, &f->a, NULL);
    struct fetched m = { 0 };
    assert_int_equal(registry_get_manifest(c, f->digest, &m, &err), -1);
    assert_int_equal(err.code, MERR_CORRUPT);
    assert_null(m.buf);
    registry_client_free(c);
    server_stop(&f->a);
}

static void test_manifest_size_cap(void **state)
{
    struct fixture *f = *state;
    f->scenario = "big-manifest";
    server_start(&f->a, "127.0.0.1", flaky_registry, f);
    struct registry_client *c = client_for(f, &f->a, NULL);
    struct fetched m = { 0 };
    struct merr err = MERR_INIT;
    assert_int_equal(registry_get_manifest(c, "v1", &m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    registry_client_free(c);
    server_stop(&f->a);
}

/* ---- Basic authentication ---- */

static void basic_registry(struct server *srv, const struct request_seen *rq, int fd)
{
    struct fixture *f = srv->ctx;
    if (strcmp(rq->authorization, "Basic YWxpY2U6cHc=") != 0) {
        sendf(fd, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n"
                  "Content-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    send_blob(fd, f->blob, strcmp(rq->path, "/v2/") == 0 ? 0 : sizeof f->blob, NULL);
}

static void test_basic_auth(void **state)
{
    struct fixture *f = *state;
    server_start(&f->a, "127.0.0.1", basic_registry, f);
    struct merr err = MERR_INIT;
    struct registry_client *anon = client_for(f, &f->a, NULL);
    assert_int_equal(registry_ping(anon, &err), -1);
    assert_int_equal(err.code, MERR_AUTH);
    registry_client_free(anon);

    struct registry_creds creds = { .username = "alice", .password = "pw" };
    struct registry_client *c = client_for(f, &f->a, &creds);
    if (registry_ping(c, &err) < 0)
        fail_msg("ping: %s", err.msg);
    struct sink_buf out = { 0 };
    if (stream(f, c, &out, &err) < 0)
        fail_msg("blob: %s", err.msg);
    free(out.data);
    registry_client_free(c);

    struct registry_creds wrong = { .username = "alice", .password = "nope" };
    c = client_for(f, &f->a, &wrong);
    assert_int_equal(registry_ping(c, &err), -1);
    assert_int_equal(err.code, MERR_AUTH);
    registry_client_free(c);
    server_stop(&f->a);
}

/* ---- Bearer tokens for docker login (no scope) and docker push (push,pull + mount source) ---- */

static void bearer_checking_registry(struct server *srv, const struct request_seen *rq, int fd)
{
    if (strncmp(rq->path, "/token", 6) == 0) {
        if (strcmp(rq->authorization, "Basic YWxpY2U6cHc=") != 0) {
            sendf(fd, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        static const char tok[] = "{\"token\":\"tok-123\",\"expires_in\":300}";
        send_blob(fd, tok, strlen(tok), "Content-Type: application/json\r\n");
        return;
    }
    if (strcmp(rq->authorization, "Bearer tok-123") != 0) {
        sendf(fd,
              "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n"
              "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"test\"\r\n\r\n",
              srv->port);
        return;
    }
    send_blob(fd, "{}", 2, NULL);
}

static const char *token_path(const struct server *srv)
{
    for (size_t i = srv->n_seen; i-- > 0;)
        if (strncmp(srv->seen[i].path, "/token", 6) == 0)
            return srv->seen[i].path;
    return "";
}

static void test_bearer_login_and_push_scope(void **state)
{
    struct fixture *f = *state;
    server_start(&f->a, "127.0.0.1", bearer_checking_registry, f);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->a.port);
    struct merr err = MERR_INIT;
    /* docker login: no repository, so no scope */
    struct registry_creds good = { .username = "alice", .password = "pw" };
    struct registry_client *c = registry_client_new(&f->rc, &f->curl, url, "", &good, &err);
    assert_non_null(c);
    if (registry_ping(c, &err) < 0)
        fail_msg("login: %s", err.msg);
    assert_null(strstr(token_path(&f->a), "scope="));
    registry_client_free(c);
    struct registry_creds bad = { .username = "alice", .password = "nope" };
    c = registry_client_new(&f->rc, &f->curl, url, "", &bad, &err);
    assert_non_null(c);
    assert_int_equal(registry_ping(c, &err), -1);
    assert_int_equal(err.code, MERR_AUTH);
    registry_client_free(c);
    /* docker push: push,pull on the target, pull on the repository a blob is mounted from */
    c = registry_client_new(&f->rc, &f->curl, url, "x/y", &good, &err);
    assert_non_null(c);
    assert_int_equal(registry_client_set_scope(c, "push,pull", "x/other", &err), 0);
    if (registry_ping(c, &err) < 0)
        fail_msg("push ping: %s", err.msg);
    assert_non_null(strstr(token_path(&f->a),
                           "scope=repository%3Ax%2Fy%3Apush%2Cpull&scope=repository%3Ax%2Fother%3Apull"));
    registry_client_free(c);
    server_stop(&f->a);
}

/* ---- push: an upload Location on another host gets no credentials ---- */

static void upload_registry(struct server *srv, const struct request_seen *rq, int fd)
{
    struct fixture *f = srv->ctx;
    if (strcmp(rq->authorization, "Basic YWxpY2U6cHc=") != 0) {
        sendf(fd, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n"
                  "Content-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if (strcmp(rq->method, "POST") == 0) {
        sendf(fd, "HTTP/1.1 202 Accepted\r\nLocation: http://%s:%d/upload/1?_state=s\r\n"
                  "Content-Length: 0\r\nConnection: close\r\n\r\n", f->b.ip, f->b.port);
        return;
    }
    send_blob(fd, "{}", 2, NULL);
}

static void upload_target(struct server *srv, const struct request_seen *rq, int fd)
{
    sendf(fd, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

static void test_upload_location_elsewhere(void **state)
{
    struct fixture *f = *state;
    server_start(&f->a, "127.0.0.1", upload_registry, f);
    server_start(&f->b, "127.0.0.2", upload_target, f);
    char path[] = "/tmp/itest-upload-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "hello", 5), 5);
    char digest[DIGEST_BUF_LEN];
    sha256_digest("hello", 5, digest);
    struct registry_creds creds = { .username = "alice", .password = "pw" };
    struct registry_client *c = client_for(f, &f->a, &creds);
    struct merr err = MERR_INIT;
    if (registry_ping(c, &err) < 0)
        fail_msg("ping: %s", err.msg);
    struct blob_upload up = { .digest = digest, .fd = fd, .size = 5 };
    bool mounted = true;
    if (registry_blob_upload(c, &up, &mounted, &err) < 0)
        fail_msg("upload: %s", err.msg);
    assert_false(mounted);
    registry_client_free(c);
    close(fd);
    server_stop(&f->a);
    server_stop(&f->b);
    assert_int_equal(f->b.n_seen, 1);
    assert_string_equal(f->b.seen[0].method, "PUT");
    assert_non_null(strstr(f->b.seen[0].path, "/upload/1?_state=s&digest=sha256:"));
    assert_string_equal(f->b.seen[0].authorization, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_credentials_across_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_realm_must_not_downgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_login_and_push_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_location_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_broken_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lying_digest_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
