/* /containers/{id}/exec and /exec/... routes. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "container/lifecycle.h"
#include "clock.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "handlers.h"

#define DRAIN_MS 2000

static int create(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    auto_free char *id = NULL;
    int rc = ctr_exec_create(s->containers, api_request_var(req, "id"), body, &id, err);
    json_decref(body);
    if (rc < 0)
        return -1;
    return api_reply_json(req, 201, json_pack("{s:s}", "Id", id), err);
}

static void close_io(struct ctr_exec_io *io)
{
    int *fds[] = { &io->stdin_fd, &io->stdout_fd, &io->stderr_fd, &io->pidfd };
    for (size_t i = 0; i < 4; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

struct detached {
    struct ctr_manager *m;
    char *id;
    struct ctr_exec_io io;
};

/* Detached exec: its output goes nowhere; the thread only reaps it. */
static void *detached_reaper(void *opaque)
{
    struct detached *d = opaque;
    char buf[4096];
    for (;;) {
        struct pollfd p[2] = { { .fd = d->io.stdout_fd, .events = POLLIN },
                               { .fd = d->io.stderr_fd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        bool open = false;
        for (int i = 0; i < 2; i++) {
            int *fd = i == 0 ? &d->io.stdout_fd : &d->io.stderr_fd;
            if (*fd < 0)
                continue;
            if (p[i].revents != 0 && read(*fd, buf, sizeof buf) <= 0) {
                close(*fd);
                *fd = -1;
            }
            open |= *fd >= 0;
        }
        if (!open)
            break;
    }
    struct merr err;
    if (ctr_exec_finish(d->m, d->id, &err) < 0) {
        /* nothing left to report to: the client is gone */
    }
    close_io(&d->io);
    free(d->id);
    free(d);
    return NULL;
}

static int forward(struct api_request *req, int *fd, bool tty, enum stdcopy_stream stream,
                   struct merr *err)
{
    char buf[32768];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        close(*fd);
        *fd = -1;
        return 0;
    }
    return tty ? api_stream_write(req, buf, (size_t)n, err)
               : api_stream_frame(req, stream, buf, (size_t)n, err);
}

/* 0 when the exec's output ended, 1 when the client typed the detach keys (dk, NULL for
 * none) or ended a TTY's input: the process goes on without it. */
static int pump_exec(struct api_request *req, struct ctr_exec_io *io, bool raw,
                     struct detach_keys *dk, struct merr *err)
{
    bool exited = false;
    int64_t exit_at = 0;
    for (;;) {
        struct pollfd p[5] = {
            { .fd = io->stdout_fd, .events = POLLIN },
            { .fd = io->stderr_fd, .events = POLLIN },
            { .fd = exited ? -1 : io->pidfd, .events = POLLIN },
            { .fd = io->stdin_fd >= 0 ? api_request_fd(req) : -1, .events = POLLIN },
            { .fd = api_request_cancel_fd(req), .events = POLLIN },
        };
        if (io->stdout_fd < 0 && io->stderr_fd < 0)
            return 0;
        int r = poll(p, 5, exited ? 100 : -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[4].revents != 0)
            return 0;
        if (p[0].revents != 0 && forward(req, &io->stdout_fd, raw, STDCOPY_STDOUT, err) < 0)
            return -1;
        if (p[1].revents != 0 && forward(req, &io->stderr_fd, raw, STDCOPY_STDERR, err) < 0)
            return -1;
        if (p[3].revents != 0) {
            char buf[16384];
            ssize_t n = api_stream_read(req, buf, sizeof buf, err);
            if (n > 0 && dk != NULL) {
                if (handlers_filter_detach(dk, io->stdin_fd, buf, n))
                    return 1;
            } else if (n > 0) {
                if (write(io->stdin_fd, buf, (size_t)n) < 0 && errno != EPIPE)
                    return merr_set(err, MERR_IO, errno, "cannot write to the exec's stdin");
            } else if (io->tty) {
                /* As dockerd: a TTY's stdin ending (the CLI detaching on its own keys, a
                 * half-close) ends the stream and leaves the process running */
                return 1;
            } else {
                /* stdin EOF (half-close or TLS close_notify); the output keeps flowing */
                close(io->stdin_fd);
                io->stdin_fd = -1;
            }
        }
        if (p[2].revents != 0) {
            exited = true;
            exit_at = clock_now_ms();
        }
        if (exited) {
            int64_t ms = clock_since_ms(exit_at);
            if (ms > DRAIN_MS || (r == 0 && ms > 100))
                return 0;
        }
    }
}

static int start_detached(struct ctr_manager *m, const char *id, struct ctr_exec_io *io)
{
    struct detached *d = xcalloc(1, sizeof *d);
    d->m = m;
    d->id = xstrdup(id);
    d->io = *io;
    if (d->io.stdin_fd >= 0) {
        close(d->io.stdin_fd);
        d->io.stdin_fd = -1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, detached_reaper, d) != 0)
        detached_reaper(d);
    else
        pthread_detach(t);
    return 0;
}

/* As dockerd: the 101 goes out before the process starts (a client reading right after the
 * upgrade never misses the first output), and a start error is written into the stream, the
 * exec's exit code (126/127) telling the client. The body's Tty chooses the framing. */
static int start(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *id = api_request_var(req, "id");
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    bool detach = json_is_true(json_object_get(body, "Detach"));
    bool raw = json_is_true(json_object_get(body, "Tty"));
    json_decref(body);
    struct ctr_exec_io io;
    if (detach) {
        if (ctr_exec_start(s->containers, id, &io, err) < 0)
            return -1;
        start_detached(s->containers, id, &io);
        return api_reply_empty(req, 200, err);
    }
    json_t *state = ctr_exec_inspect(s->containers, id, err);
    if (state == NULL)
        return -1;
    bool started = json_is_true(json_object_get(state, "Running")) ||
                   json_is_true(json_object_get(state, "CanRemove"));
    auto_free char *ctr = xstrdup(json_string_value(json_object_get(state, "ContainerID")));
    /* As dockerd: a TTY's input is scanned for the detach keys, ctrl-p,ctrl-q by default */
    const char *keys = json_string_value(json_object_get(state, "DetachKeys"));
    bool exec_tty = json_is_true(json_object_get(json_object_get(state, "ProcessConfig"), "tty"));
    struct detach_keys dk = { .n = 0 };
    int krc = exec_tty ? ctr_detach_keys_parse(keys != NULL && keys[0] != '\0' ? keys
                                                                               : "ctrl-p,ctrl-q",
                                               dk.keys, &dk.n, err)
                       : 0;
    json_decref(state);
    if (krc < 0)
        return -1;
    if (started)
        return merr_set(err, MERR_EXISTS, 0, "exec %s has already been started", id);
    /* errors a client must get as an HTTP answer come before the upgrade */
    json_t *ci = ctr_inspect(s->containers, ctr, err);
    if (ci == NULL)
        return -1;
    bool running = json_is_true(json_object_get(json_object_get(ci, "State"), "Running"));
    json_decref(ci);
    if (!running)
        return merr_set(err, MERR_EXISTS, 0, "container %s is not running", ctr);
    if (api_hijack(req, raw, err) < 0)
        return -1;
    struct merr serr = MERR_INIT;
    if (ctr_exec_start(s->containers, id, &io, &serr) < 0) {
        auto_free char *msg = xasprintf("%s\r\n", serr.msg);
        return raw ? api_stream_write(req, msg, strlen(msg), err)
                   : api_stream_frame(req, STDCOPY_STDOUT, msg, strlen(msg), err);
    }
    int rc = pump_exec(req, &io, raw, io.tty ? &dk : NULL, err);
    if (rc == 1) { /* detached: the process goes on, reaped in the background */
        start_detached(s->containers, id, &io);
        return 0;
    }
    /* The exit code must be recorded before the stream closes: the CLI asks for it next. */
    struct merr ferr = MERR_INIT;
    if (ctr_exec_finish(s->containers, id, &ferr) < 0 && rc == 0) {
        *err = ferr;
        rc = -1;
    }
    close_io(&io);
    return rc;
}

static int inspect(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *j = ctr_exec_inspect(s->containers, api_request_var(req, "id"), err);
    return j != NULL ? api_reply_json(req, 200, j, err) : -1;
}

static int resize(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    long long h = 0, w = 0;
    if (api_request_query_int(req, "h", 0, &h, err) < 0 || api_request_query_int(req, "w", 0, &w, err) < 0)
        return -1;
    if (h <= 0 || w <= 0 || h > 65535 || w > 65535)
        return merr_set(err, MERR_INVALID, 0, "invalid TTY size %lldx%lld", h, w);
    if (ctr_exec_resize(s->containers, api_request_var(req, "id"), (unsigned short)h,
                        (unsigned short)w, err) < 0)
        return -1;
    return api_reply_empty(req, 201, err);
}

static const struct api_param resize_params[] = { API_PARAM("h"), API_PARAM("w"), API_PARAMS_END };

static const struct api_route routes[] = {
    { "POST", "/containers/{id}/exec", create, 0, api_params_none },
    { "POST", "/exec/{id}/start", start, API_ROUTE_WORKER, api_params_none },
    { "GET", "/exec/{id}/json", inspect, 0, api_params_none },
    /* may wait for the start */
    { "POST", "/exec/{id}/resize", resize, API_ROUTE_WORKER, resize_params },
};

int handlers_register_exec(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
