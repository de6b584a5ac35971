/* What handlers see of a request, and the replies they send. */
#include "api-priv.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"

struct api_request *api_request_new(struct api_conn *conn)
{
    struct api_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->conn = conn;
    req->url.max = 64 * 1024;
    req->field.max = 8 * 1024;
    req->value.max = 64 * 1024;
    req->body.max = 0; /* set by the server from its config */
    return req;
}

void api_request_free(struct api_request *req)
{
    if (req == NULL)
        return;
    abuf_release(&req->url);
    abuf_release(&req->field);
    abuf_release(&req->value);
    abuf_release(&req->body);
    api_kvs_free(req->headers, req->n_headers);
    api_kvs_free(req->query, req->n_query);
    api_kvs_free(req->reply_headers, req->n_reply_headers);
    free(req->path);
    api_route_match_release(&req->match);
    free(req);
}

/* ---- accessors ----------------------------------------------------------- */

const char *api_request_method(const struct api_request *req)
{
    return req->method;
}

const char *api_request_path(const struct api_request *req)
{
    return req->path != NULL ? req->path : "";
}

const char *api_request_var(const struct api_request *req, const char *name)
{
    return api_kv_get(req->match.vars, req->match.n_vars, name, false);
}

const char *api_request_header(const struct api_request *req, const char *name)
{
    return api_kv_get(req->headers, req->n_headers, name, true);
}

struct api_version api_request_version(const struct api_request *req)
{
    return req->version;
}

bool api_request_version_ge(const struct api_request *req, unsigned major, unsigned minor)
{
    return api_version_cmp(req->version, (struct api_version){ major, minor }) >= 0;
}

const struct mlog *api_request_log(const struct api_request *req)
{
    return api_conn_log(req->conn);
}

const char *api_request_query(const struct api_request *req, const char *key)
{
    return api_kv_get(req->query, req->n_query, key, false);
}

const char **api_request_query_all(const struct api_request *req, const char *key)
{
    const char **out = calloc(req->n_query + 1, sizeof *out);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < req->n_query; i++)
        if (strcmp(req->query[i].key, key) == 0)
            out[n++] = req->query[i].value;
    return out;
}

bool api_request_query_bool(const struct api_request *req, const char *key)
{
    return api_bool_value(api_request_query(req, key));
}

int api_request_query_int(const struct api_request *req, const char *key, long long def,
                          long long *out, struct merr *err)
{
    const char *s = api_request_query(req, key);
    if (s == NULL || *s == '\0') {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno != 0)
        return merr_set(err, MERR_INVALID, 0, "invalid value for '%s': '%s' is not an integer",
                        key, s);
    *out = v;
    return 0;
}

const char *api_request_body(const struct api_request *req, size_t *len)
{
    if (len != NULL)
        *len = req->body.len;
    return req->body.data != NULL ? req->body.data : "";
}

int api_request_body_json(const struct api_request *req, struct json_t **out, struct merr *err)
{
    *out = NULL;
    if (req->body.len == 0)
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(req->body.data, req->body.len, 0, &jerr);
    if (root == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid JSON in request body: %s", jerr.text);
    *out = root;
    return 0;
}

int api_request_filters(const struct api_request *req, struct api_filters *out, struct merr *err)
{
    return api_filters_parse(api_request_query(req, "filters"), out, err);
}

int api_request_fd(const struct api_request *req)
{
    return req->conn->fd;
}

int api_request_cancel_fd(const struct api_request *req)
{
    return api_conn_cancel_fd(req->conn);
}

/* ---- replies -------------------------------------------------------------- */

void api_reply_add_header(struct api_request *req, const char *name, const char *value)
{
    struct api_kv *kv = realloc(req->reply_headers, (req->n_reply_headers + 1) * sizeof *kv);
    if (kv == NULL)
        abort();
    req->reply_headers = kv;
    kv[req->n_reply_headers].key = xstrdup(name);
    kv[req->n_reply_headers].value = xstrdup(value);
    req->n_reply_headers++;
}

static int send_head(struct api_request *req, struct abuf *buf, struct merr *err)
{
    int r = api_conn_send(req->conn, buf->data, buf->len, err);
    abuf_release(buf);
    return r;
}

int api_reply_full(struct api_request *req, int status, const char *content_type,
                   const void *data, size_t len, const struct api_kv *extra, size_t n_extra,
                   struct merr *err)
{
    if (req->head_sent)
        return merr_set(err, MERR_INTERNAL, 0, "response already sent");
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    struct api_head head = {
        .status = status,
        .content_type = no_body ? NULL : content_type,
        .content_length = no_body ? API_LENGTH_NONE : (long long)len,
        .close = !req->keep_alive,
        .server = api_conn_server_header(req->conn),
        .extra = extra != NULL ? extra : req->reply_headers,
        .n_extra = extra != NULL ? n_extra : req->n_reply_headers,
    };
    struct abuf buf = { 0 };
    if (api_build_head(&buf, &head, err) < 0 ||
        (!no_body && !req->head_only && abuf_append(&buf, data, len, err) < 0)) {
        abuf_release(&buf);
        return -1;
    }
    req->head_sent = req->ended = true;
    req->status = status;
    return send_head(req, &buf, err);
}

int api_reply_raw(struct api_request *req, int status, const char *content_type, const void *data,
                  size_t len, struct merr *err)
{
    return api_reply_full(req, status, content_type, data, len, NULL, 0, err);
}

int api_reply_empty(struct api_request *req, int status, struct merr *err)
{
    return api_reply_full(req, status, NULL, "", 0, NULL, 0, err);
}

int api_reply_json(struct api_request *req, int status, struct json_t *body, struct merr *err)
{
    if (body == NULL)
        return api_reply_error(req, 500, err, "cannot encode the response");
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text == NULL)
        return api_reply_error(req, 500, err, "cannot encode the response");
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the NUL; the length below excludes nothing else */
    int r = api_reply_raw(req, status, API_MEDIA_JSON, text, n + 1, err);
    free(text);
    return r;
}

int api_reply_error(struct api_request *req, int status, struct merr *err, const char *fmt, ...)
{
    char msg[MERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = api_error_body(msg, &len, err);
    if (body == NULL)
        return -1;
    int r = api_reply_raw(req, status, API_MEDIA_JSON, body, len, err);
    free(body);
    return r;
}

int api_reply_merr(struct api_request *req, const struct merr *cause, struct merr *err)
{
    return api_reply_error(req, api_status_from_merr(cause), err, "%s",
                           cause->msg[0] != '\0' ? cause->msg : "internal error");
}

/* ---- streams -------------------------------------------------------------- */

int api_stream_begin(struct api_request *req, int status, const char *content_type,
                     struct merr *err)
{
    if (req->head_sent)
        return merr_set(err, MERR_INTERNAL, 0, "response already sent");
    struct api_head head = {
        .status = status,
        .content_type = content_type,
        .content_length = API_LENGTH_CHUNKED,
        .close = !req->keep_alive,
        .server = api_conn_server_header(req->conn),
        .extra = req->reply_headers,
        .n_extra = req->n_reply_headers,
    };
    struct abuf buf = { 0 };
    if (api_build_head(&buf, &head, err) < 0) {
        abuf_release(&buf);
        return -1;
    }
    req->head_sent = req->chunked = true;
    req->status = status;
    return send_head(req, &buf, err);
}

int api_stream_write(struct api_request *req, const void *data, size_t len, struct merr *err)
{
    if (req->hijacked)
        return api_conn_send(req->conn, data, len, err);
    if (!req->chunked || req->ended)
        return merr_set(err, MERR_INTERNAL, 0, "no stream is open");
    if (req->head_only || len == 0)
        return 0;
    struct abuf buf = { 0 };
    if (api_chunk_encode(&buf, data, len, err) < 0) {
        abuf_release(&buf);
        return -1;
    }
    return send_head(req, &buf, err);
}

int api_stream_write_json(struct api_request *req, const struct json_t *obj, struct merr *err)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, 0, "cannot encode JSON");
    size_t n = strlen(text);
    text[n] = '\n';
    int r = api_stream_write(req, text, n + 1, err);
    free(text);
    return r;
}

int api_stream_frame(struct api_request *req, enum stdcopy_stream stream, const void *data,
                     size_t len, struct merr *err)
{
    const uint8_t *p = data;
    do {
        uint32_t part = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        struct abuf buf = { 0 };
        uint8_t header[STDCOPY_HEADER_LEN];
        stdcopy_header(header, stream, part);
        if (abuf_append(&buf, header, sizeof header, err) < 0 ||
            abuf_append(&buf, p, part, err) < 0 || api_stream_write(req, buf.data, buf.len, err) < 0) {
            abuf_release(&buf);
            return -1;
        }
        abuf_release(&buf);
        p += part;
        len -= part;
    } while (len > 0);
    return 0;
}

int api_stream_end(struct api_request *req, struct merr *err)
{
    if (req->hijacked || !req->chunked || req->ended)
        return 0;
    req->ended = true;
    if (req->head_only)
        return 0;
    return api_conn_send(req->conn, API_CHUNK_END, strlen(API_CHUNK_END), err);
}

int api_hijack(struct api_request *req, bool tty, struct merr *err)
{
    if (!req->conn->in_worker)
        return merr_set(err, MERR_INTERNAL, 0, "hijacking needs a worker route");
    if (req->head_sent)
        return merr_set(err, MERR_INTERNAL, 0, "response already sent");
    const char *type = !tty && api_request_version_ge(req, 1, 42) ? API_MEDIA_MULTIPLEXED_STREAM
                                                                  : API_MEDIA_RAW_STREAM;
    struct api_head head = {
        .status = req->upgrade ? 101 : 200,
        .reason = req->upgrade ? "UPGRADED" : NULL,
        /* moby: old clients that did not ask for an upgrade get the raw type */
        .content_type = req->upgrade ? type : API_MEDIA_RAW_STREAM,
        .content_length = API_LENGTH_NONE,
        .upgrade = req->upgrade,
        .server = api_conn_server_header(req->conn),
    };
    struct abuf buf = { 0 };
    if (api_build_head(&buf, &head, err) < 0) {
        abuf_release(&buf);
        return -1;
    }
    req->head_sent = req->hijacked = true;
    req->status = head.status;
    req->conn->want_close = true; /* the stream ends with the connection */
    return send_head(req, &buf, err);
}

/* Waits until fd is ready for events or the server stops (then -1). */
int api_request_wait_fd(struct api_request *req, short events, struct merr *err)
{
    struct pollfd pfd[2] = {
        { .fd = req->conn->fd, .events = events },
        { .fd = api_conn_cancel_fd(req->conn), .events = POLLIN },
    };
    for (;;) {
        int n = poll(pfd, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return merr_set(err, MERR_IO, errno, "poll failed");
        if (pfd[1].revents != 0)
            return merr_set(err, MERR_IO, ECANCELED, "server is shutting down");
        return 0;
    }
}

ssize_t api_stream_read(struct api_request *req, void *buf, size_t len, struct merr *err)
{
    struct api_conn *conn = req->conn;
    if (!conn->in_worker || !req->hijacked)
        return merr_set(err, MERR_INTERNAL, 0, "reading needs a hijacked worker route");
    if (conn->in.len > 0) {
        size_t n = conn->in.len < len ? conn->in.len : len;
        memcpy(buf, conn->in.data, n);
        abuf_consume(&conn->in, n);
        return (ssize_t)n;
    }
    if (conn->peer_eof)
        return 0;
    for (;;) {
        bool pending = conn->io->pending != NULL && conn->io->pending(conn->io_ctx) > 0;
        if (!pending && api_request_wait_fd(req, POLLIN, err) < 0)
            return -1;
        ssize_t n = conn->io->read(conn->io_ctx, conn->fd, buf, len);
        if (n > 0)
            return n;
        if (n == 0) {
            conn->peer_eof = true;
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR)
            return merr_set(err, MERR_IO, errno, "cannot read from the client");
    }
}

int api_stream_close_write(struct api_request *req, struct merr *err)
{
    struct api_conn *conn = req->conn;
    if (!req->hijacked)
        return merr_set(err, MERR_INTERNAL, 0, "the connection is not hijacked");
    if (api_conn_flush_blocking(conn, err) < 0)
        return -1;
    if (conn->io->shutdown_write(conn->io_ctx, conn->fd) < 0)
        return merr_set(err, MERR_IO, errno, "cannot close the stream");
    return 0;
}

int api_request_wait_closed(struct api_request *req, struct merr *err)
{
    struct api_conn *conn = req->conn;
    if (!conn->in_worker)
        return merr_set(err, MERR_INTERNAL, 0, "waiting needs a worker route");
    char scratch[4096];
    while (!conn->peer_eof) {
        if (api_request_wait_fd(req, POLLIN | POLLRDHUP, err) < 0)
            return 0; /* server stopping */
        ssize_t n = conn->io->read(conn->io_ctx, conn->fd, scratch, sizeof scratch);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn->peer_eof = true;
            conn->want_close = true;
        }
        /* bytes sent meanwhile (a pipelined request) cannot be served after
         * an endless stream anyway: the connection closes with it */
        if (n > 0)
            conn->want_close = true;
    }
    return 0;
}

/* ---- completion ----------------------------------------------------------- */

void api_request_finish(struct api_request *req, int handler_rc, const struct merr *handler_err)
{
    struct merr err = MERR_INIT;
    const struct mlog *log = api_conn_log(req->conn);
    if (handler_rc < 0 && !req->head_sent) {
        if (api_reply_merr(req, handler_err, &err) < 0)
            req->conn->want_close = true;
    } else if (handler_rc < 0) {
        mlog_debug(log, "%s %s failed after the reply started: %s", req->method,
                   req->url.data, handler_err->msg);
        req->conn->want_close = true;
    } else if (!req->head_sent) {
        mlog_warn(log, "handler for %s %s sent no response", req->method, req->url.data);
        if (api_reply_error(req, 500, &err, "internal error: no response") < 0)
            req->conn->want_close = true;
    } else if (req->chunked && !req->ended) {
        if (api_stream_end(req, &err) < 0)
            req->conn->want_close = true;
    }
    if (!req->keep_alive || req->upgrade)
        req->conn->want_close = true;
    mlog_debug(log, "%s %s -> %d", req->method, req->url.data, req->status);
}
