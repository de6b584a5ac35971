/* /containers/... routes. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "container/container.h"
#include "container/lifecycle.h"
#include "container/logfile.h"
#include "container/manager.h"
#include "error.h"
#include "fsutil.h"
#include "handlers.h"
#include "image/image.h"
#include "image/manifest.h"


static const char *id_of(struct api_request *req)
{
    return api_request_var(req, "id");
}

/* ?platform=: the image must be of that platform (dockerd's check; the engine converts none). An
 * image that is not there is left to the create, which reports it. */
static int check_platform(struct engine_services *s, const char *want, const json_t *body,
                          struct merr *err)
{
    struct platform p;
    const char *image = json_string_value(json_object_get(body, "Image"));
    if (want == NULL || want[0] == '\0' || image == NULL)
        return 0;
    if (image_platform_parse(want, &p, err) < 0)
        return -1;
    struct merr ignored = MERR_INIT;
    auto_free char *id = image_lookup(s->images, image, &ignored);
    auto_free char *text = id != NULL ? image_config_json(s->images, id, &ignored) : NULL;
    json_t *cfg = text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (cfg == NULL)
        return 0;
    const char *os = json_string_value(json_object_get(cfg, "os"));
    const char *arch = json_string_value(json_object_get(cfg, "architecture"));
    const char *variant = json_string_value(json_object_get(cfg, "variant"));
    struct platform have;
    bool match = false;
    if (os != NULL && arch != NULL) {
        auto_free char *spec = xasprintf("%s/%s%s%s", os, arch, variant != NULL ? "/" : "",
                                         variant != NULL ? variant : "");
        match = image_platform_parse(spec, &have, &ignored) == 0 && strcmp(have.os, p.os) == 0 &&
                strcmp(have.arch, p.arch) == 0 &&
                (p.variant[0] == '\0' || strcmp(have.variant, p.variant) == 0);
    }
    if (!match)
        merr_set(err, MERR_NOT_FOUND, 0,
                 "image with reference %s was found but does not match the specified "
                 "platform: wanted %s, actual: %s/%s", image, want, os != NULL ? os : "",
                 arch != NULL ? arch : "");
    json_decref(cfg);
    return match ? 0 : -1;
}

static int create(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *body = NULL;
    if (api_request_body_json(req, &body, err) < 0)
        return -1;
    if (check_platform(s, api_request_query(req, "platform"), body, err) < 0) {
        json_decref(body);
        return -1;
    }
    auto_free char *id = NULL;
    int rc = ctr_create(s->containers, api_request_query(req, "name"), body, &id, err);
    json_decref(body);
    if (rc < 0)
        return -1;
    return api_reply_json(req, 201, json_pack("{s:s,s:[]}", "Id", id, "Warnings"), err);
}

static int inspect(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    json_t *j = ctr_inspect(s->containers, id_of(req), err);
    if (j != NULL)
        handlers_inspect_complete(s, j);
    if (j != NULL && api_request_query_bool(req, "size"))
        handlers_add_sizes(s, j);
    return j != NULL ? api_reply_json(req, 200, j, err) : -1;
}

static int start(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    int rc = ctr_start(s->containers, id_of(req), err);
    return rc < 0 ? -1 : api_reply_empty(req, rc == 1 ? 304 : 204, err);
}

static int query_timeout(struct api_request *req, long long *t, struct merr *err)
{
    const char *key = api_request_query(req, "t") != NULL ? "t" : "timeout";
    return api_request_query_int(req, key, -1, t, err);
}

static int stop(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    long long t = -1;
    if (query_timeout(req, &t, err) < 0)
        return -1;
    int rc = ctr_stop(s->containers, id_of(req), (int)t, api_request_query(req, "signal"), err);
    return rc < 0 ? -1 : api_reply_empty(req, rc == 1 ? 304 : 204, err);
}

static int restart(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    long long t = -1;
    if (query_timeout(req, &t, err) < 0 ||
        ctr_restart(s->containers, id_of(req), (int)t, api_request_query(req, "signal"), err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

static int kill_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    if (ctr_kill(s->containers, id_of(req), api_request_query(req, "signal"), err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

static int remove_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    if (api_request_query_bool(req, "link"))
        return ctr_remove_link(s->containers, id_of(req), err) < 0 ? -1
                                                                    : api_reply_empty(req, 204, err);
    if (ctr_remove(s->containers, id_of(req), api_request_query_bool(req, "force"),
                   api_request_query_bool(req, "v"), err) < 0)
        return -1;
    return api_reply_empty(req, 204, err);
}

/* The CLI sends wait before start and needs the headers at once, the body at exit. */
static int wait_(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *cond = api_request_query(req, "condition");
    enum ctr_wait_condition c = CTR_WAIT_NOT_RUNNING;
    if (cond != NULL && strcmp(cond, "next-exit") == 0)
        c = CTR_WAIT_NEXT_EXIT;
    else if (cond != NULL && strcmp(cond, "removed") == 0)
        c = CTR_WAIT_REMOVED;
    else if (cond != NULL && cond[0] != '\0' && strcmp(cond, "not-running") != 0)
        return merr_set(err, MERR_INVALID, 0, "invalid condition: \"%s\"", cond);
    struct ctr_waiter *w = NULL;
    if (ctr_wait_prepare(s->containers, id_of(req), c, &w, err) < 0)
        return -1;
    int rc = api_stream_begin(req, 200, API_MEDIA_JSON, err);
    int code = 0;
    auto_free char *error = NULL;
    if (rc == 0)
        rc = ctr_wait_finish(w, api_request_cancel_fd(req), &code, &error, err);
    ctr_waiter_free(w);
    if (rc < 0)
        return -1;
    json_t *body = json_pack("{s:i,s:o}", "StatusCode", code, "Error",
                             error != NULL ? json_pack("{s:s}", "Message", error) : json_null());
    rc = api_stream_write_json(req, body, err);
    json_decref(body);
    return rc < 0 ? -1 : api_stream_end(req, err);
}

/* ---- attach, logs ---- */

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int forward_frame(struct api_request *req, int sub_fd, const struct pump_output *o,
                         struct merr *err, bool *ended)
{
    unsigned char hdr[8];
    if (read_full(sub_fd, hdr, sizeof hdr) < 0) {
        *ended = true;
        return 0;
    }
    size_t len = ((size_t)hdr[4] << 24) | ((size_t)hdr[5] << 16) | ((size_t)hdr[6] << 8) | hdr[7];
    auto_free char *buf = malloc(len + 64);
    if (buf == NULL || read_full(sub_fd, buf, len) < 0) {
        *ended = true;
        return 0;
    }
    if ((hdr[0] == STDCOPY_STDOUT && !o->stdout_) || (hdr[0] == STDCOPY_STDERR && !o->stderr_))
        return 0; /* a stream the client did not ask for */
    const char *payload = buf;
    auto_free char *t = NULL;
    if (o->timestamps) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = fmt_rfc3339_nano((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    }
    auto_free char *prefix = loglines_prefix(t, o->details);
    auto_free char *stamped = NULL;
    if (prefix != NULL) {
        stamped = loglines_stamp(prefix, buf, len, &len); /* every line, as dockerd */
        payload = stamped;
    }
    return o->tty ? api_stream_write(req, payload, len, err)
                  : api_stream_frame(req, (enum stdcopy_stream)hdr[0], payload, len, err);
}

static void write_all_stdin(int fd, const char *q, ssize_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, q, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* the container closed its stdin: keep streaming output */
        q += w;
        n -= w;
    }
}

/* Passes buf on to stdin minus the detach sequence; true once the whole sequence was typed. */
bool handlers_filter_detach(struct detach_keys *dk, int fd, const char *buf, ssize_t n)
{
    if (dk == NULL || dk->n == 0) {
        write_all_stdin(fd, buf, n);
        return false;
    }
    char out[16384 + 16];
    size_t o = 0;
    for (ssize_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)buf[i];
        if (b == dk->keys[dk->pos]) {
            if (++dk->pos == dk->n) {
                write_all_stdin(fd, out, (ssize_t)o);
                return true;
            }
            continue;
        }
        memcpy(out + o, dk->keys, dk->pos); /* a broken partial match is input after all */
        o += dk->pos;
        dk->pos = 0;
        if (b == dk->keys[0])
            dk->pos = 1;
        else
            out[o++] = (char)b;
        if (o >= sizeof out - 16) {
            write_all_stdin(fd, out, (ssize_t)o);
            o = 0;
        }
    }
    write_all_stdin(fd, out, (ssize_t)o);
    return false;
}

static int64_t wall_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* poll()'s timeout until until_ns (-1: no until; at most a minute per call). */
static int until_wait_ms(int64_t until_ns)
{
    if (until_ns <= 0)
        return -1;
    int64_t left = (until_ns - wall_now_ns()) / 1000000;
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left + 1;
}

int handlers_pump(struct api_request *req, int sub_fd, const struct pump_output *out,
                  int stdin_fd, stdin_eof_fn on_stdin_eof, void *eof_data,
                  struct detach_keys *dk, struct merr *err)
{
    bool stdin_open = stdin_fd >= 0;
    for (;;) {
        struct pollfd p[3] = {
            { .fd = sub_fd, .events = POLLIN },
            { .fd = api_request_cancel_fd(req), .events = POLLIN },
            { .fd = api_request_fd(req), .events = stdin_open ? POLLIN : 0 },
        };
        int r = poll(p, 3, until_wait_ms(out->until_ns));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && wall_now_ns() >= out->until_ns)
            return 0; /* logs -f --until: its time has come, as dockerd stops there */
        if (r == 0)
            continue;
        if (r < 0 || p[1].revents != 0)
            return 0;
        if (p[2].revents & (POLLERR | POLLNVAL))
            return 0;
        if (p[2].revents & (POLLIN | POLLHUP)) {
            if (!stdin_open)
                return 0; /* the client hung up */
            char buf[16384];
            ssize_t n = api_stream_read(req, buf, sizeof buf, err);
            if (n > 0) {
                if (handlers_filter_detach(dk, stdin_fd, buf, n))
                    return 0; /* detached: the container keeps running */
            } else {
                stdin_open = false; /* half-close (or close_notify): stdin EOF, output goes on */
                if (on_stdin_eof != NULL)
                    on_stdin_eof(eof_data);
            }
        }
        if (p[0].revents != 0) {
            bool ended = false;
            if (forward_frame(req, sub_fd, out, err, &ended) < 0)
                return -1;
            if (ended)
                return 0;
        }
    }
}

struct stdin_ctx {
    struct ctr_manager *m;
    const char *id;
    int *stdin_fd;
};

static void close_container_stdin(void *data)
{
    struct stdin_ctx *c = data;
    ctr_detach_stdin(c->m, c->id, *c->stdin_fd);
    *c->stdin_fd = -1;
}

struct log_sink {
    struct api_request *req;
    bool tty;
};
static int log_sink(void *data, int stream, const char *payload, size_t len, struct merr *err);

/* logs=1 replays the log first; stream=0 ends there (an exited container answers at once). */
static int attach(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    char id[65];
    bool tty = false;
    if (ctr_lookup(s->containers, id_of(req), id, &tty, err) < 0)
        return -1;
    bool want_stdin = api_request_query_bool(req, "stdin");
    bool want_logs = api_request_query_bool(req, "logs");
    bool want_stream = api_request_query_bool(req, "stream");
    /* As dockerd: only a TTY's input is scanned, for ctrl-p,ctrl-q when no keys are given */
    const char *keys = api_request_query(req, "detachKeys");
    struct detach_keys dk = { .n = 0 };
    if (tty && ctr_detach_keys_parse(keys != NULL && keys[0] != '\0' ? keys : "ctrl-p,ctrl-q", dk.keys,
                              &dk.n, err) < 0)
        return -1;
    struct ctr_output_sub sub = { -1 };
    int stdin_fd = -1;
    bool once = false;
    if (want_stream && ctr_attach(s->containers, id, want_stdin, &sub, &stdin_fd, &once, err) < 0)
        return -1;
    int rc = api_hijack(req, tty, err);
    if (rc == 0 && want_logs) {
        struct ctr_logs_opts o = { .stdout_ = api_request_query_bool(req, "stdout"),
                                   .stderr_ = api_request_query_bool(req, "stderr"),
                                   .tail = -1 };
        struct ctr_output_sub none = { -1 };
        struct log_sink ls = { req, tty };
        struct merr lerr = MERR_INIT;
        if ((o.stdout_ || o.stderr_) && ctr_logs(s->containers, id, &o, log_sink, &ls, &none, &lerr) < 0 &&
            lerr.code != MERR_INVALID)
            rc = merr_set(err, lerr.code, lerr.sys_errno, "%s", lerr.msg);
    }
    struct stdin_ctx sc = { s->containers, id, &stdin_fd };
    struct pump_output po = { .tty = tty,
                              .stdout_ = api_request_query_bool(req, "stdout"),
                              .stderr_ = api_request_query_bool(req, "stderr") };
    if (rc == 0 && want_stream)
        rc = handlers_pump(req, sub.fd, &po, stdin_fd, close_container_stdin, &sc, &dk, err);
    if (sub.fd >= 0)
        close(sub.fd);
    if (stdin_fd >= 0)
        close(stdin_fd);
    return rc;
}

static int log_sink(void *data, int stream, const char *payload, size_t len, struct merr *err)
{
    struct log_sink *ls = data;
    return ls->tty ? api_stream_write(ls->req, payload, len, err)
                   : api_stream_frame(ls->req, (enum stdcopy_stream)stream, payload, len, err);
}

static int query_time(struct api_request *req, const char *key, int64_t *out, struct merr *err)
{
    const char *v = api_request_query(req, key);
    *out = 0;
    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0)
        return 0;
    return parse_timestamp(v, out, err);
}

static int logs(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    char id[65];
    bool tty = false;
    if (ctr_lookup(s->containers, id_of(req), id, &tty, err) < 0 ||
        ctr_logs_readable(s->containers, id, err) < 0)
        return -1;
    struct ctr_logs_opts o = {
        .stdout_ = api_request_query_bool(req, "stdout"),
        .stderr_ = api_request_query_bool(req, "stderr"),
        .follow = api_request_query_bool(req, "follow"),
        .timestamps = api_request_query_bool(req, "timestamps"),
        .details = api_request_query_bool(req, "details"),
        .tail = -1,
    };
    if (!o.stdout_ && !o.stderr_)
        return merr_set(err, MERR_INVALID, 0, "Bad parameters: you must choose at least one stream");
    const char *tail = api_request_query(req, "tail");
    if (tail != NULL && tail[0] != '\0' && strcmp(tail, "all") != 0) {
        char *end = NULL;
        long long n = strtoll(tail, &end, 10);
        o.tail = *end == '\0' && n >= 0 ? n : -1;
    }
    if (query_time(req, "since", &o.since_ns, err) < 0 || query_time(req, "until", &o.until_ns, err) < 0)
        return -1;
    const char *media = tty || !api_request_version_ge(req, 1, 42) ? API_MEDIA_RAW_STREAM
                                                                  : API_MEDIA_MULTIPLEXED_STREAM;
    if (api_stream_begin(req, 200, media, err) < 0)
        return -1;
    struct log_sink ls = { req, tty };
    struct ctr_output_sub sub = { -1 };
    int rc = ctr_logs(s->containers, id, &o, log_sink, &ls, &sub, err);
    struct pump_output po = { .tty = tty, .stdout_ = o.stdout_, .stderr_ = o.stderr_,
                              .timestamps = o.timestamps, .details = o.details,
                              .until_ns = o.until_ns };
    if (rc == 0 && sub.fd >= 0)
        rc = handlers_pump(req, sub.fd, &po, -1, NULL, NULL, NULL, err);
    if (sub.fd >= 0)
        close(sub.fd);
    return rc < 0 ? -1 : api_stream_end(req, err);
}

static int resize(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    long long h = 0, w = 0;
    if (api_request_query_int(req, "h", 0, &h, err) < 0 || api_request_query_int(req, "w", 0, &w, err) < 0)
        return -1;
    if (h <= 0 || w <= 0 || h > 65535 || w > 65535)
        return merr_set(err, MERR_INVALID, 0, "invalid TTY size %lldx%lld", h, w);
    if (ctr_resize(s->containers, id_of(req), (unsigned short)h, (unsigned short)w, err) < 0)
        return -1;
    return api_reply_empty(req, 200, err);
}

static int top(struct api_request *req, void *data, struct merr *err)
{
    struct engine_services *s = data;
    const char *ps_args = api_request_query(req, "ps_args");
    json_t *j = ps_args != NULL && ps_args[0] != '\0'
                    ? ctr_top_ps(s->containers, id_of(req), ps_args, err)
                    : ctr_top(s->containers, id_of(req), err);
    if (j != NULL)
        ctr_emit_event(s->containers, id_of(req), "top"); /* as dockerd */
    return j != NULL ? api_reply_json(req, 200, j, err) : -1;
}

/* Query parameters (docs/engine-api.md lists them; tests/unit/test_api_params.c checks both). */
static const struct api_param create_params[] = {
    API_PARAM("name"),
    API_PARAM_NOTE("platform", "the image must be of that platform, as dockerd checks"),
    API_PARAMS_END,
};
static const struct api_param inspect_params[] = { API_PARAM("size"), API_PARAMS_END };
static const struct api_param start_params[] = {
    API_PARAM_IGNORE("detachKeys", "dockerd reads detach keys at attach, not at start"),
    API_PARAM_REFUSE("checkpoint"),
    API_PARAM_REFUSE("checkpoint-dir"),
    API_PARAMS_END,
};
static const struct api_param stop_params[] = {
    API_PARAM("t"), API_PARAM("signal"), API_PARAMS_END,
};
static const struct api_param kill_params[] = { API_PARAM("signal"), API_PARAMS_END };
static const struct api_param wait_params[] = { API_PARAM("condition"), API_PARAMS_END };
static const struct api_param remove_params[] = {
    API_PARAM("v"), API_PARAM("force"), API_PARAM("link"), API_PARAMS_END,
};
static const struct api_param attach_params[] = {
    API_PARAM("detachKeys"), API_PARAM("logs"),   API_PARAM("stream"),
    API_PARAM("stdin"),      API_PARAM("stdout"), API_PARAM("stderr"),
    API_PARAMS_END,
};
static const struct api_param logs_params[] = {
    API_PARAM("follow"), API_PARAM("stdout"),     API_PARAM("stderr"), API_PARAM("since"),
    API_PARAM("until"),  API_PARAM("timestamps"), API_PARAM("tail"),
    API_PARAM_NOTE("details", "not in the swagger; docker logs --details. No log attributes "
                              "are kept, so each line gets the empty attribute list and a space"),
    API_PARAMS_END,
};
static const struct api_param resize_params[] = { API_PARAM("h"), API_PARAM("w"), API_PARAMS_END };
static const struct api_param top_params[] = { API_PARAM("ps_args"), API_PARAMS_END };

static const struct api_route routes[] = {
    { "POST", "/containers/create", create, 0, create_params },
    { "GET", "/containers/{id}/json", inspect, 0, inspect_params },
    { "POST", "/containers/{id}/start", start, API_ROUTE_WORKER, start_params },
    { "POST", "/containers/{id}/stop", stop, API_ROUTE_WORKER, stop_params },
    { "POST", "/containers/{id}/restart", restart, API_ROUTE_WORKER, stop_params },
    { "POST", "/containers/{id}/kill", kill_, API_ROUTE_WORKER, kill_params },
    { "POST", "/containers/{id}/wait", wait_, API_ROUTE_WORKER, wait_params },
    { "DELETE", "/containers/{id}", remove_, API_ROUTE_WORKER, remove_params },
    { "POST", "/containers/{id}/attach", attach, API_ROUTE_WORKER, attach_params },
    { "GET", "/containers/{id}/logs", logs, API_ROUTE_WORKER, logs_params },
    { "POST", "/containers/{id}/resize", resize, 0, resize_params },
    { "GET", "/containers/{id}/top", top, API_ROUTE_WORKER, top_params },
};

int handlers_register_containers(struct api_router *r, struct engine_services *s, struct merr *err)
{
    return api_router_add_table(r, routes, sizeof routes / sizeof routes[0], s, err);
}
