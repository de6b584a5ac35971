/* The event loop: listeners, connections, request parsing with http-parser,
 * dispatch to loop or worker handlers, and shutdown. */
#include "api-priv.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define READ_CHUNK (64 * 1024)
#define MAX_PENDING_INPUT (1024 * 1024)
#define MAX_HEADERS 128
#define DEFAULT_MAX_CONNS 1024
#define DEFAULT_MAX_CONNS_PER_SOURCE 256
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_HEADER_TIMEOUT_MS 30000
#define DEFAULT_IDLE_TIMEOUT_MS 120000
#define SWEEP_MAX_MS 1000
#define ACCEPT_PAUSE_MS 100 /* out of file descriptors and nothing to evict */
#define SHUTDOWN_WARN_MS 5000

struct listener {
    struct api_ep_item ep;
    int fd;
    bool tls;
    char *unix_path; /* removed on free when it is still our socket */
    dev_t dev;
    ino_t ino;
};

struct watch {
    struct api_ep_item ep;
    int fd;
    api_watch_fn cb;
    void *data;
};

struct api_server {
    struct api_server_config cfg;
    char *server_header;
    struct api_router *router;
    http_parser_settings settings;
    int epfd;
    struct api_ep_item notify_ep; /* workers -> loop */
    int notify_fd;
    int cancel_fd; /* loop -> workers: readable once stopping */
    struct api_ep_item stop_ep;
    struct listener **listeners;
    size_t n_listeners;
    struct watch **watches;
    size_t n_watches;
    struct api_conn *conns; /* every open connection */
    struct api_conn *dead;  /* freed after the current epoll batch */
    bool in_batch;
    long long accept_paused_until; /* ms; 0: accepting */
    unsigned n_conns;
    unsigned n_workers;
    pthread_mutex_t lock;
    struct api_conn *returned; /* guarded by lock */
};

/* ---- plain transport ---------------------------------------------------- */

static int plain_wrap(void *data, int fd, void **conn_ctx, struct merr *err)
{
    *conn_ctx = NULL;
    return 0;
}

static ssize_t plain_read(void *conn_ctx, int fd, void *buf, size_t len)
{
    return recv(fd, buf, len, 0);
}

static ssize_t plain_write(void *conn_ctx, int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL);
}

static int plain_shutdown_write(void *conn_ctx, int fd)
{
    return shutdown(fd, SHUT_WR);
}

static void plain_release(void *conn_ctx)
{
}

static const struct api_transport plain_transport = {
    .name = "plain",
    .wrap = plain_wrap,
    .read = plain_read,
    .write = plain_write,
    .shutdown_write = plain_shutdown_write,
    .release = plain_release,
};

/* ---- small helpers ------------------------------------------------------ */

static void conn_set_phase(struct api_conn *conn, enum api_conn_phase phase)
{
    conn->phase = phase;
    conn->phase_since = clock_now_ms();
}

int api_conn_cancel_fd(const struct api_conn *conn)
{
    return conn->srv->cancel_fd;
}

const char *api_conn_server_header(const struct api_conn *conn)
{
    return conn->srv->server_header;
}

const struct mlog *api_conn_log(const struct api_conn *conn)
{
    return conn->srv->cfg.log;
}

struct api_router *api_server_router(struct api_server *srv)
{
    return srv->router;
}

static int ep_add(struct api_server *srv, int fd, uint32_t events, void *item, struct merr *err)
{
    struct epoll_event ev = { .events = events, .data.ptr = item };
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return merr_set(err, MERR_IO, errno, "epoll_ctl failed");
    return 0;
}

static void ep_set(struct api_server *srv, struct api_conn *conn, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = conn };
    epoll_ctl(srv->epfd, EPOLL_CTL_MOD, conn->fd, &ev);
}

/* ---- http-parser callbacks ----------------------------------------------- */

static int push_header(struct api_request *req)
{
    if (req->field.len == 0)
        return 0;
    if (req->n_headers >= MAX_HEADERS)
        return -1;
    struct api_kv *grown = realloc(req->headers, (req->n_headers + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    req->headers = grown;
    grown[req->n_headers].key = strdup(req->field.data);
    grown[req->n_headers].value = strdup(req->value.data != NULL ? req->value.data : "");
    req->n_headers++;
    abuf_reset(&req->field);
    abuf_reset(&req->value);
    if (grown[req->n_headers - 1].key == NULL || grown[req->n_headers - 1].value == NULL)
        return -1;
    return 0;
}

static struct api_request *parser_req(http_parser *p)
{
    return ((struct api_conn *)p->data)->req;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    return abuf_append(&parser_req(p)->url, at, len, NULL);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct api_request *req = parser_req(p);
    if (req->in_value && push_header(req) < 0)
        return -1;
    req->in_value = false;
    return abuf_append(&req->field, at, len, NULL);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct api_request *req = parser_req(p);
    req->in_value = true;
    return abuf_append(&req->value, at, len, NULL);
}

/* Whether the request's route reads its body as a stream (looked up before the body arrives;
 * anything unusual answers false and the normal dispatch reports it). */
static bool route_streams_body(const struct api_server *srv, const struct api_request *req)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (req->url.len == 0 || http_parser_parse_url(req->url.data, req->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return false;
    struct merr err = MERR_INIT;
    auto_free char *path = api_url_decode(req->url.data + u.field_data[UF_PATH].off,
                                          u.field_data[UF_PATH].len, false, &err);
    char version[16];
    const char *rest;
    bool has_version;
    if (path == NULL ||
        api_path_split_version(path, version, sizeof version, &rest, &has_version, &err) < 0)
        return false;
    struct api_route_match m = { 0 };
    bool streams = api_router_match(srv->router, req->method, rest, &m, &err) > 0 &&
                   (m.route->flags & API_ROUTE_STREAM_BODY);
    api_route_match_release(&m);
    return streams;
}

static int on_headers_complete(http_parser *p)
{
    struct api_request *req = parser_req(p);
    if (push_header(req) < 0)
        return -1;
    snprintf(req->method, sizeof req->method, "%s", http_method_str(p->method));
    req->head_only = p->method == HTTP_HEAD;
    req->keep_alive = http_should_keep_alive(p);
    req->upgrade = p->upgrade;
    if (route_streams_body(((struct api_conn *)p->data)->srv, req)) {
        /* Dispatched now; the worker parses the body as it reads it. */
        req->streaming = true;
        req->body.max = 0;
        http_parser_pause(p, 1);
        return 0;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > req->body.max) {
        req->too_large = true;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct api_request *req = parser_req(p);
    if (abuf_append(&req->body, at, len, NULL) < 0) {
        req->too_large = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct api_request *req = parser_req(p);
    req->complete = true;
    req->keep_alive = http_should_keep_alive(p);
    /* One request at a time: the rest of the input waits for the reply. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_close_fd(struct api_conn *conn)
{
    if (conn->fd < 0)
        return;
    /* A graceful end: close_notify (TLS) and FIN, then drop what the peer already sent, so the
     * kernel does not answer unread data with a reset the client reports as an error. */
    if (conn->io->shutdown_write != NULL)
        conn->io->shutdown_write(conn->io_ctx, conn->fd);
    char drain[4096];
    for (int i = 0; i < 16 && recv(conn->fd, drain, sizeof drain, MSG_DONTWAIT) > 0; i++)
        ;
    conn->io->release(conn->io_ctx);
    conn->io_ctx = NULL;
    /* close() alone leaves the registration while a child forked meanwhile (a container or
     * exec being started, a health probe) still holds the socket: its events would come back
     * pointing at freed memory. */
    epoll_ctl(conn->srv->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
    close(conn->fd);
    conn->fd = -1;
}

static void conn_destroy(struct api_conn *conn)
{
    api_request_free(conn->req);
    abuf_release(&conn->in);
    abuf_release(&conn->out);
    free(conn);
}

/* Closes and unlinks a connection. Inside an epoll batch the memory lives
 * on until the batch ends, since a later event in it may point there. */
static void conn_free(struct api_conn *conn)
{
    struct api_server *srv = conn->srv;
    conn_close_fd(conn);
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    srv->n_conns--;
    if (srv->in_batch) {
        conn->ep.kind = API_EP_DEAD;
        conn->next = srv->dead;
        srv->dead = conn;
        return;
    }
    conn_destroy(conn);
}

static void free_dead_conns(struct api_server *srv)
{
    while (srv->dead != NULL) {
        struct api_conn *conn = srv->dead;
        srv->dead = conn->next;
        conn_destroy(conn);
    }
}

static int conn_new_request(struct api_conn *conn)
{
    api_request_free(conn->req);
    conn->req = api_request_new(conn);
    if (conn->req == NULL)
        return -1;
    conn->req->body.max = conn->srv->cfg.max_body;
    return 0;
}

int api_conn_flush_blocking(struct api_conn *conn, struct merr *err)
{
    while (conn->out.len > 0) {
        ssize_t n = conn->io->write(conn->io_ctx, conn->fd, conn->out.data, conn->out.len);
        if (n > 0) {
            abuf_consume(&conn->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            conn->want_close = true;
            abuf_reset(&conn->out);
            return merr_set(err, MERR_IO, errno, "cannot write to the client");
        }
        struct pollfd pfd[2] = {
            { .fd = conn->fd, .events = POLLOUT },
            { .fd = conn->srv->cancel_fd, .events = POLLIN },
        };
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            return merr_set(err, MERR_IO, errno, "poll failed");
        if (pfd[1].revents != 0) {
            conn->want_close = true;
            abuf_reset(&conn->out);
            return merr_set(err, MERR_IO, ECANCELED, "server is shutting down");
        }
    }
    return 0;
}

/* Loop side: sends what it can; the rest goes out on EPOLLOUT. Returns -1
 * when the connection is dead. */
static int conn_flush_nonblocking(struct api_conn *conn)
{
    while (conn->out.len > 0) {
        ssize_t n = conn->io->write(conn->io_ctx, conn->fd, conn->out.data, conn->out.len);
        if (n > 0) {
            abuf_consume(&conn->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!conn->polling_out) {
                ep_set(conn->srv, conn, EPOLLOUT);
                conn->polling_out = true;
            }
            return 0;
        }
        return -1;
    }
    if (conn->polling_out) {
        ep_set(conn->srv, conn, EPOLLIN | EPOLLRDHUP);
        conn->polling_out = false;
    }
    return 0;
}

int api_conn_send(struct api_conn *conn, const void *data, size_t len, struct merr *err)
{
    if (conn->fd < 0)
        return merr_set(err, MERR_IO, EPIPE, "connection closed");
    if (abuf_append(&conn->out, data, len, err) < 0)
        return -1;
    if (conn->in_worker)
        return api_conn_flush_blocking(conn, err);
    return 0;
}

static void reply_and_close(struct api_conn *conn, int status, const char *message)
{
    struct merr err = MERR_INIT;
    if (conn->req == NULL || conn->req->head_sent) {
        conn->want_close = true;
        return;
    }
    conn->req->keep_alive = false;
    conn->want_close = true;
    if (api_reply_error(conn->req, status, &err, "%s", message) < 0)
        abuf_reset(&conn->out);
}

/* Fills path, query and version; replies itself on a bad request. */
static int prepare_request(struct api_request *req)
{
    struct merr err = MERR_INIT;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (req->url.len == 0 || http_parser_parse_url(req->url.data, req->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        reply_and_close(req->conn, 400, "malformed request URL");
        return -1;
    }
    const char *raw_path = req->url.data + u.field_data[UF_PATH].off;
    char *decoded = api_url_decode(raw_path, u.field_data[UF_PATH].len, false, &err);
    if (decoded == NULL)
        goto bad;
    char version[16];
    const char *rest;
    bool has_version;
    if (api_path_split_version(decoded, version, sizeof version, &rest, &has_version, &err) < 0 ||
        api_version_negotiate(has_version ? version : NULL, &req->version, &err) < 0) {
        free(decoded);
        goto bad;
    }
    free(req->path); /* a request the server already answered can be dispatched again */
    req->path = strdup(rest);
    free(decoded);
    if (req->path == NULL) {
        merr_set(&err, MERR_NOMEM, 0, "out of memory");
        goto bad;
    }
    api_kvs_free(req->query, req->n_query);
    req->query = NULL;
    req->n_query = 0;
    if ((u.field_set & (1 << UF_QUERY)) &&
        api_query_parse(req->url.data + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len,
                        &req->query, &req->n_query, &err) < 0)
        goto bad;
    return 0;
bad:
    if (api_reply_merr(req, &err, &err) < 0)
        req->conn->want_close = true;
    return -1;
}

static void *worker_main(void *arg);

/* A refused query parameter is answered before the handler runs (on a worker for worker
 * routes, so a streamed body is drained as after any other error). */
static int run_handler(struct api_request *req, struct merr *err)
{
    if (api_params_check(req->match.route->params, req->query, req->n_query, err) < 0)
        return -1;
    return req->match.route->handler(req, req->match.data, err);
}

static void dispatch(struct api_conn *conn)
{
    struct api_server *srv = conn->srv;
    struct api_request *req = conn->req;
    struct merr err = MERR_INIT;
    conn_set_phase(conn, API_CONN_BUSY);
    if (prepare_request(req) < 0) {
        api_request_finish(req, 0, &err);
        return;
    }
    int found = api_router_match(srv->router, req->method, req->path, &req->match, &err);
    if (found <= 0) {
        int r = found < 0 ? api_reply_merr(req, &err, &err)
                          : api_reply_error(req, 404, &err, "page not found");
        api_request_finish(req, r, &err);
        return;
    }
    if (req->match.route->flags & (API_ROUTE_WORKER | API_ROUTE_STREAM_BODY)) {
        conn->in_worker = true;
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
        conn->polling_out = false;
        int rc = pthread_create(&conn->thread, NULL, worker_main, conn);
        if (rc == 0) {
            srv->n_workers++;
            return;
        }
        conn->in_worker = false;
        ep_add(srv, conn->fd, EPOLLIN | EPOLLRDHUP, conn, NULL);
        int r = api_reply_error(req, 503, &err, "cannot start a worker: %s", strerror(rc));
        api_request_finish(req, r, &err);
        return;
    }
    int rc = run_handler(req, &err);
    api_request_finish(req, rc, &err);
}

/* Parses and serves buffered requests until more input is needed, the
 * output backs up, or a worker takes the connection. Returns -1 when the
 * connection was freed. */
static int conn_process(struct api_conn *conn)
{
    for (;;) {
        if (conn->in_worker)
            return 0;
        if (conn->out.len > 0 || conn->want_close) {
            if (conn_flush_nonblocking(conn) < 0 || (conn->out.len == 0 && conn->want_close)) {
                conn_free(conn);
                return -1;
            }
            if (conn->out.len > 0)
                return 0;
        }
        if (conn->req == NULL || conn->req->complete) {
            bool served = conn->req != NULL;
            if (conn_new_request(conn) < 0) {
                conn_free(conn);
                return -1;
            }
            if (served) /* the next request is already arriving, or the client may send one */
                conn_set_phase(conn, conn->in.len > 0 ? API_CONN_HEAD : API_CONN_IDLE);
        }
        if (conn->in.len == 0) {
            if (conn->peer_eof) {
                conn_free(conn);
                return -1;
            }
            return 0;
        }
        size_t n = http_parser_execute(&conn->parser, &conn->srv->settings, conn->in.data,
                                       conn->in.len);
        enum http_errno perr = HTTP_PARSER_ERRNO(&conn->parser);
        abuf_consume(&conn->in, n);
        if (perr == HPE_PAUSED || (perr == HPE_OK && conn->req->complete)) {
            http_parser_pause(&conn->parser, 0);
            dispatch(conn);
            continue;
        }
        if (perr != HPE_OK) {
            if (conn->req->too_large)
                reply_and_close(conn, 413, "request body too large");
            else
                reply_and_close(conn, 400, http_errno_description(perr));
            continue;
        }
    }
}

static void conn_on_event(struct api_conn *conn, uint32_t events)
{
    if (events & EPOLLOUT) {
        conn_process(conn);
        return;
    }
    char buf[READ_CHUNK];
    ssize_t n = conn->io->read(conn->io_ctx, conn->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn->peer_eof = true;
        if (conn->req != NULL && !conn->req->complete && conn->in.len == 0) {
            conn_free(conn); /* nothing (complete) left to answer */
            return;
        }
    } else if (conn->in.len + (size_t)n > MAX_PENDING_INPUT ||
               abuf_append(&conn->in, buf, (size_t)n, NULL) < 0) {
        conn_free(conn);
        return;
    } else if (conn->phase == API_CONN_NEW || conn->phase == API_CONN_IDLE) {
        conn_set_phase(conn, API_CONN_HEAD);
    }
    conn_process(conn);
}

/* ---- connection limits and deadlines ---------------------------------------- */

static void conn_source(int fd, const struct sockaddr_storage *sa, struct api_conn_source *out)
{
    memset(out, 0, sizeof *out);
    if (sa->ss_family == AF_INET) {
        memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->ss_family == AF_INET6) {
        memcpy(out->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        struct ucred cred = { .uid = (uid_t)-1 };
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
            cred.uid = (uid_t)-1;
        out->is_unix = true;
        memcpy(out->addr, &cred.uid, sizeof cred.uid);
    }
}

static bool same_source(const struct api_conn_source *a, const struct api_conn_source *b)
{
    return a->is_unix == b->is_unix && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

/* Only waiting: nothing of a request is being served, so closing it loses no work. */
static bool conn_evictable(const struct api_conn *c)
{
    return !c->in_worker && c->phase != API_CONN_BUSY && c->out.len == 0;
}

/* Makes room for a connection from src: returns false when it must be refused. Past the
 * per-source limit (TCP) the oldest waiting connection of that source goes; past the total
 * limit the oldest waiting connection of any source. */
static bool make_room(struct api_server *srv, const struct api_conn_source *src)
{
    unsigned same = 0;
    struct api_conn *oldest_same = NULL, *oldest_any = NULL;
    for (struct api_conn *c = srv->conns; c != NULL; c = c->next) {
        bool mine = same_source(&c->source, src);
        same += mine;
        if (!conn_evictable(c))
            continue;
        if (mine && (oldest_same == NULL || c->phase_since <= oldest_same->phase_since))
            oldest_same = c;
        if (oldest_any == NULL || c->phase_since <= oldest_any->phase_since)
            oldest_any = c;
    }
    struct api_conn *victim = NULL;
    /* Unix peers are local and already trusted by the socket's mode: only the total applies
     * (a per-uid cap would only get in the way of a large compose project). */
    if (!src->is_unix && same >= srv->cfg.max_conns_per_source)
        victim = oldest_same;
    else if (srv->n_conns >= srv->cfg.max_conns)
        victim = oldest_any;
    else
        return true;
    if (victim == NULL)
        return false;
    mlog_debug(srv->cfg.log, "connection limit reached: closing a connection that was %s",
               victim->phase == API_CONN_IDLE ? "idle" : "waiting for a request");
    conn_free(victim);
    return true;
}

static unsigned conn_deadline_ms(const struct api_server *srv, const struct api_conn *c)
{
    switch (c->phase) {
    case API_CONN_NEW:
        return srv->cfg.handshake_timeout_ms;
    case API_CONN_HEAD:
        return srv->cfg.header_timeout_ms;
    case API_CONN_IDLE:
        return srv->cfg.idle_timeout_ms;
    case API_CONN_BUSY:
        break;
    }
    return 0;
}

/* Closes connections past their deadline; returns how long epoll may sleep (-1: forever). */
static int sweep_conns(struct api_server *srv)
{
    long long now = clock_now_ms();
    int sleep_ms = -1;
    for (struct api_conn *c = srv->conns, *next; c != NULL; c = next) {
        next = c->next;
        unsigned limit = conn_evictable(c) ? conn_deadline_ms(srv, c) : 0;
        if (limit == 0)
            continue;
        long long left = c->phase_since + limit - now;
        if (left <= 0) {
            mlog_debug(srv->cfg.log, "closing a connection %s for %u ms",
                       c->phase == API_CONN_NEW    ? "without a handshake or request"
                       : c->phase == API_CONN_HEAD ? "sending a request head"
                                                   : "idle",
                       limit);
            conn_free(c);
            continue;
        }
        if (sleep_ms < 0 || left < sleep_ms)
            sleep_ms = (int)left;
    }
    if (srv->accept_paused_until > 0) {
        long long left = srv->accept_paused_until - now;
        if (left <= 0) {
            srv->accept_paused_until = 0;
            for (size_t i = 0; i < srv->n_listeners; i++)
                if (srv->listeners[i]->fd >= 0)
                    (void)ep_add(srv, srv->listeners[i]->fd, EPOLLIN, srv->listeners[i], NULL);
        } else if (sleep_ms < 0 || left < sleep_ms) {
            sleep_ms = (int)left;
        }
    }
    if (sleep_ms > SWEEP_MAX_MS)
        sleep_ms = SWEEP_MAX_MS;
    return sleep_ms;
}

/* Out of file descriptors: close a waiting connection, or stop accepting for a moment (the
 * listener would stay readable and spin the loop). Returns whether to try accept again. */
static bool accept_out_of_fds(struct api_server *srv)
{
    struct api_conn *oldest = NULL;
    for (struct api_conn *c = srv->conns; c != NULL; c = c->next)
        if (conn_evictable(c) && (oldest == NULL || c->phase_since <= oldest->phase_since))
            oldest = c;
    if (oldest != NULL) {
        conn_free(oldest); /* closes its fd at once, even inside a batch */
        return true;
    }
    mlog_warn(srv->cfg.log, "out of file descriptors: not accepting for %d ms", ACCEPT_PAUSE_MS);
    for (size_t i = 0; i < srv->n_listeners; i++)
        if (srv->listeners[i]->fd >= 0)
            epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listeners[i]->fd, NULL);
    srv->accept_paused_until = clock_now_ms() + ACCEPT_PAUSE_MS;
    return false;
}

static void accept_conns(struct api_server *srv, struct listener *l)
{
    for (int tries = 0; tries < 256 && srv->accept_paused_until == 0; tries++) {
        struct sockaddr_storage sa = { 0 };
        socklen_t sa_len = sizeof sa;
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &sa_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && accept_out_of_fds(srv))
                continue;
            if (errno != EAGAIN && errno != EINTR && errno != EMFILE && errno != ENFILE)
                mlog_warn(srv->cfg.log, "accept failed: %s", strerror(errno));
            return;
        }
        struct api_conn_source src;
        conn_source(fd, &sa, &src);
        if (!make_room(srv, &src)) {
            mlog_warn(srv->cfg.log, "too many connections, refusing one");
            close(fd);
            continue;
        }
        struct api_conn *conn = calloc(1, sizeof *conn);
        struct merr err = MERR_INIT;
        const struct api_transport *io = l->tls ? srv->cfg.tls : &plain_transport;
        if (conn == NULL || io->wrap(io->data, fd, &conn->io_ctx, &err) < 0) {
            mlog_debug(srv->cfg.log, "dropping a connection: %s", err.msg);
            free(conn);
            close(fd);
            continue;
        }
        conn->ep.kind = API_EP_CONN;
        conn->srv = srv;
        conn->fd = fd;
        conn->io = io;
        conn->source = src;
        conn_set_phase(conn, API_CONN_NEW);
        conn->in.max = MAX_PENDING_INPUT;
        http_parser_init(&conn->parser, HTTP_REQUEST);
        conn->parser.data = conn;
        conn->next = srv->conns;
        if (srv->conns != NULL)
            srv->conns->prev = conn;
        srv->conns = conn;
        srv->n_conns++;
        if (ep_add(srv, fd, EPOLLIN | EPOLLRDHUP, conn, &err) < 0)
            conn_free(conn);
    }
}

/* ---- streamed request bodies ----------------------------------------------- */

#define BODY_FEED_MAX ((size_t)64 << 10)
#define BODY_DRAIN_MAX ((size_t)4 << 20)
#define BODY_DRAIN_IDLE_MS 1000

int api_request_body_to_fd(struct api_request *req, int fd, const char *what, struct merr *err)
{
    enum { CHUNK = 256u << 10 };
    auto_free char *buf = malloc(CHUNK);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate");
    for (;;) {
        ssize_t n = api_request_body_read(req, buf, CHUNK, err);
        if (n <= 0)
            return (int)n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return merr_set(err, MERR_IO, errno, "cannot spool %s", what);
            off += w;
        }
    }
}

ssize_t api_request_body_read(struct api_request *req, void *buf, size_t len, struct merr *err)
{
    struct api_conn *conn = req->conn;
    if (!conn->in_worker)
        return merr_set(err, MERR_INTERNAL, 0, "reading a body needs a worker route");
    if (!req->streaming) {
        size_t left = req->body.len - req->body_off;
        size_t n = left < len ? left : len;
        memcpy(buf, req->body.data + req->body_off, n);
        req->body_off += n;
        return (ssize_t)n;
    }
    for (;;) {
        if (req->body.len > 0) {
            size_t n = req->body.len < len ? req->body.len : len;
            memcpy(buf, req->body.data, n);
            abuf_consume(&req->body, n);
            return (ssize_t)n;
        }
        if (req->complete)
            return 0;
        if (conn->in.len == 0) {
            if (conn->peer_eof)
                return merr_set(err, MERR_IO, 0, "the client ended the request body early");
            bool pending = conn->io->pending != NULL && conn->io->pending(conn->io_ctx) > 0;
            if (!pending && api_request_wait_fd(req, POLLIN, err) < 0)
                return -1;
            char tmp[READ_CHUNK];
            ssize_t n = conn->io->read(conn->io_ctx, conn->fd, tmp, sizeof tmp);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                conn->peer_eof = true;
            else if (n > 0 && abuf_append(&conn->in, tmp, (size_t)n, err) < 0)
                return -1;
            continue;
        }
        /* Small feeds keep the parsed body (req->body) bounded. */
        size_t feed = conn->in.len < BODY_FEED_MAX ? conn->in.len : BODY_FEED_MAX;
        size_t n = http_parser_execute(&conn->parser, &conn->srv->settings, conn->in.data, feed);
        enum http_errno perr = HTTP_PARSER_ERRNO(&conn->parser);
        abuf_consume(&conn->in, n);
        if (perr == HPE_PAUSED) { /* the end of the message */
            http_parser_pause(&conn->parser, 0);
            continue;
        }
        if (perr != HPE_OK) {
            conn->want_close = true;
            req->complete = true;
            return merr_set(err, MERR_PROTOCOL, 0, "malformed request body: %s",
                            http_errno_description(perr));
        }
    }
}

/* ---- workers --------------------------------------------------------------- */

/* Reads and drops the rest of a streamed body while it keeps coming: at most BODY_DRAIN_MAX
 * bytes, giving up after BODY_DRAIN_IDLE_MS without input. */
static void body_drain(struct api_request *req)
{
    struct api_conn *conn = req->conn;
    char drain[16384];
    struct merr err = MERR_INIT;
    for (size_t total = 0; !req->complete && total < BODY_DRAIN_MAX;) {
        bool buffered = req->body.len > 0 || conn->in.len > 0 ||
                        (conn->io->pending != NULL && conn->io->pending(conn->io_ctx) > 0);
        struct pollfd p = { .fd = conn->fd, .events = POLLIN };
        if (!buffered && !conn->peer_eof && poll(&p, 1, BODY_DRAIN_IDLE_MS) <= 0)
            break;
        ssize_t n = api_request_body_read(req, drain, sizeof drain, &err);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

static void *worker_main(void *arg)
{
    struct api_conn *conn = arg;
    struct api_server *srv = conn->srv;
    struct api_request *req = conn->req;
    struct merr err = MERR_INIT;
    int rc = run_handler(req, &err);
    api_request_finish(req, rc, &err);
    /* What a handler left of the body (a tar's zero padding after its end marker) is read and
     * dropped, up to BODY_DRAIN_MAX: closing over unread input would make the kernel reset
     * the connection while the client is still writing, and the client report a broken pipe
     * instead of the reply. */
    body_drain(req);
    if (!req->complete) {
        /* A body left unread: the rest of the input is not a request. */
        conn->want_close = true;
        req->complete = true;
    }
    struct merr ferr = MERR_INIT;
    if (api_conn_flush_blocking(conn, &ferr) < 0 || conn->want_close)
        conn_close_fd(conn);
    pthread_mutex_lock(&srv->lock);
    conn->next_returned = srv->returned;
    srv->returned = conn;
    pthread_mutex_unlock(&srv->lock);
    uint64_t one = 1;
    if (write(srv->notify_fd, &one, sizeof one) < 0) {
        /* the eventfd counter cannot overflow in practice */
    }
    return NULL;
}

static void collect_workers(struct api_server *srv)
{
    uint64_t count;
    if (read(srv->notify_fd, &count, sizeof count) < 0) {
        /* EAGAIN: a previous call already drained it */
    }
    pthread_mutex_lock(&srv->lock);
    struct api_conn *list = srv->returned;
    srv->returned = NULL;
    pthread_mutex_unlock(&srv->lock);
    while (list != NULL) {
        struct api_conn *conn = list;
        list = conn->next_returned;
        pthread_join(conn->thread, NULL);
        srv->n_workers--;
        conn->in_worker = false;
        if (conn->fd < 0 || ep_add(srv, conn->fd, EPOLLIN | EPOLLRDHUP, conn, NULL) < 0) {
            conn_free(conn);
            continue;
        }
        conn_process(conn);
    }
}

/* ---- server ---------------------------------------------------------------- */

struct api_server *api_server_new(const struct api_server_config *cfg, struct merr *err)
{
    struct api_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    if (srv->cfg.max_body == 0)
        srv->cfg.max_body = API_BODY_MAX;
    if (srv->cfg.max_conns == 0)
        srv->cfg.max_conns = DEFAULT_MAX_CONNS;
    if (srv->cfg.max_conns_per_source == 0)
        srv->cfg.max_conns_per_source = DEFAULT_MAX_CONNS_PER_SOURCE;
    if (srv->cfg.handshake_timeout_ms == 0)
        srv->cfg.handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
    if (srv->cfg.header_timeout_ms == 0)
        srv->cfg.header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
    if (srv->cfg.idle_timeout_ms == 0)
        srv->cfg.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    srv->epfd = srv->notify_fd = srv->cancel_fd = -1;
    pthread_mutex_init(&srv->lock, NULL);
    http_parser_settings_init(&srv->settings);
    srv->settings.on_url = on_url;
    srv->settings.on_header_field = on_header_field;
    srv->settings.on_header_value = on_header_value;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_body = on_body;
    srv->settings.on_message_complete = on_message_complete;
    srv->notify_ep.kind = API_EP_NOTIFY;
    srv->stop_ep.kind = API_EP_STOP;
    if (asprintf(&srv->server_header, "machine-engine/%s (linux)",
                 cfg->server_version != NULL ? cfg->server_version : "dev") < 0) {
        srv->server_header = NULL;
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        goto fail;
    }
    srv->router = api_router_new(err);
    if (srv->router == NULL)
        goto fail;
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    srv->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    srv->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv->epfd < 0 || srv->notify_fd < 0 || srv->cancel_fd < 0) {
        merr_set(err, MERR_IO, errno, "cannot create the event loop");
        goto fail;
    }
    if (ep_add(srv, srv->notify_fd, EPOLLIN, &srv->notify_ep, err) < 0)
        goto fail;
    return srv;
fail:
    api_server_free(srv);
    return NULL;
}

static void listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0)
        close(l->fd);
    struct stat st;
    /* only remove the path if it still is our socket, not a successor's */
    if (l->unix_path != NULL && stat(l->unix_path, &st) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlink(l->unix_path);
    free(l->unix_path);
    free(l);
}

void api_server_free(struct api_server *srv)
{
    if (srv == NULL)
        return;
    /* api_server_run has joined every worker before returning */
    while (srv->conns != NULL)
        conn_free(srv->conns);
    for (size_t i = 0; i < srv->n_listeners; i++)
        listener_free(srv->listeners[i]);
    free(srv->listeners);
    for (size_t i = 0; i < srv->n_watches; i++)
        free(srv->watches[i]);
    free(srv->watches);
    if (srv->epfd >= 0)
        close(srv->epfd);
    if (srv->notify_fd >= 0)
        close(srv->notify_fd);
    if (srv->cancel_fd >= 0)
        close(srv->cancel_fd);
    api_router_free(srv->router);
    pthread_mutex_destroy(&srv->lock);
    free(srv->server_header);
    free(srv);
}

int api_server_listen(struct api_server *srv, const struct api_listen_spec *spec,
                      struct merr *err)
{
    if (spec->kind == API_LISTEN_TCP && spec->tls && srv->cfg.tls == NULL)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "TLS listeners are not supported yet (tcp://%s:%u)", spec->host,
                        spec->port);
    struct listener **grown = realloc(srv->listeners, (srv->n_listeners + 1) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    srv->listeners = grown;
    struct listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    l->ep.kind = API_EP_LISTENER;
    l->fd = -1;
    l->tls = spec->kind == API_LISTEN_TCP && spec->tls;
    int r;
    if (spec->kind == API_LISTEN_UNIX) {
        r = api_listen_unix(spec->path, srv->cfg.unix_publish_delay_ms, &l->fd, &l->dev, &l->ino,
                            err);
        if (r == 0 && (l->unix_path = strdup(spec->path)) == NULL)
            r = merr_set(err, MERR_NOMEM, 0, "out of memory");
    } else {
        r = api_listen_tcp(spec, &l->fd, err);
    }
    if (r == 0)
        r = ep_add(srv, l->fd, EPOLLIN, l, err);
    if (r < 0) {
        listener_free(l);
        return -1;
    }
    srv->listeners[srv->n_listeners++] = l;
    return 0;
}

int api_server_watch_fd(struct api_server *srv, int fd, api_watch_fn cb, void *data,
                        struct merr *err)
{
    struct watch **grown = realloc(srv->watches, (srv->n_watches + 1) * sizeof *grown);
    if (grown == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    srv->watches = grown;
    struct watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    *w = (struct watch){ .ep.kind = API_EP_WATCH, .fd = fd, .cb = cb, .data = data };
    if (ep_add(srv, fd, EPOLLIN, w, err) < 0) {
        free(w);
        return -1;
    }
    srv->watches[srv->n_watches++] = w;
    return 0;
}

/* Stops accepting, drops idle connections, cancels workers and waits. */
static void shutdown_server(struct api_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listeners[i]->fd, NULL);
        close(srv->listeners[i]->fd);
        srv->listeners[i]->fd = -1;
    }
    uint64_t one = 1;
    if (write(srv->cancel_fd, &one, sizeof one) < 0)
        mlog_warn(srv->cfg.log, "cannot signal workers: %s", strerror(errno));
    for (struct api_conn *c = srv->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (!c->in_worker)
            conn_free(c);
    }
    long long start = clock_now_ms();
    bool warned = false;
    while (srv->n_workers > 0) {
        struct pollfd pfd = { .fd = srv->notify_fd, .events = POLLIN };
        if (poll(&pfd, 1, 500) > 0)
            collect_workers(srv);
        for (struct api_conn *c = srv->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (!c->in_worker) /* returned to the loop: done */
                conn_free(c);
        }
        if (!warned && clock_now_ms() - start > SHUTDOWN_WARN_MS && srv->n_workers > 0) {
            mlog_warn(srv->cfg.log, "waiting for %u request handler(s) to finish",
                      srv->n_workers);
            warned = true;
        }
    }
}

int api_server_run(struct api_server *srv, int stop_fd, struct merr *err)
{
    if (stop_fd >= 0 && ep_add(srv, stop_fd, EPOLLIN, &srv->stop_ep, err) < 0)
        return -1;
    bool stopping = false;
    int rc = 0;
    while (!stopping) {
        struct epoll_event events[64];
        int n = epoll_wait(srv->epfd, events, 64, sweep_conns(srv));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = merr_set(err, MERR_IO, errno, "epoll_wait failed");
            break;
        }
        srv->in_batch = true;
        for (int i = 0; i < n; i++) {
            struct api_ep_item *item = events[i].data.ptr;
            switch (item->kind) {
            case API_EP_LISTENER:
                accept_conns(srv, (struct listener *)item);
                break;
            case API_EP_CONN:
                conn_on_event((struct api_conn *)item, events[i].events);
                break;
            case API_EP_DEAD:
                break;
            case API_EP_WATCH: {
                struct watch *w = (struct watch *)item;
                w->cb(w->fd, w->data);
                break;
            }
            case API_EP_NOTIFY:
                collect_workers(srv);
                break;
            case API_EP_STOP:
                stopping = true;
                break;
            }
        }
        srv->in_batch = false;
        free_dead_conns(srv);
    }
    if (stop_fd >= 0)
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, stop_fd, NULL);
    shutdown_server(srv);
    return rc;
}
