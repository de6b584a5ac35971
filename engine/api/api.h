/* The engine's HTTP API layer: listeners, an epoll event loop, request
 * parsing (Debian's http-parser), a router with {var} path segments, Docker
 * API version negotiation, response helpers (JSON, errors, chunked streams,
 * hijacked connections) and the stdcopy multiplexer.
 *
 * Threading: the event loop is single-threaded. A route registered with
 * API_ROUTE_WORKER runs on its own thread, which owns the connection until
 * the handler returns; use it for anything that may block (pull, wait,
 * attach, logs -f, events). Plain routes run on the loop and must not block.
 *
 * Ownership: struct api_request belongs to the server; handlers use it only
 * until they return. */
#ifndef MACHINE_ENGINE_API_H
#define MACHINE_ENGINE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"
#include "error.h"
#include "filters/args.h"

struct json_t;
struct mlog;

/* Highest (advertised) and lowest Docker API versions served. */
#define API_VERSION_MAX "1.45"
#define API_VERSION_MIN "1.24"
/* Request bodies above this size are answered with 413. */
#define API_BODY_MAX ((size_t)16 << 20)

#define API_MEDIA_JSON "application/json"
#define API_MEDIA_RAW_STREAM "application/vnd.docker.raw-stream"
#define API_MEDIA_MULTIPLEXED_STREAM "application/vnd.docker.multiplexed-stream"

/* ---- versions ---------------------------------------------------------- */

struct api_version {
    unsigned major;
    unsigned minor;
};

/* Parses "1.41" (or "1"); MERR_INVALID on anything else. */
MUST_CHECK int api_version_parse(const char *s, struct api_version *out, struct merr *err);
/* <0, 0, >0 like strcmp. */
int api_version_cmp(struct api_version a, struct api_version b);

/* ---- listeners --------------------------------------------------------- */

enum api_listen_kind { API_LISTEN_UNIX, API_LISTEN_TCP };

struct api_listen_spec {
    enum api_listen_kind kind;
    char *path;    /* unix */
    char *host;    /* tcp: numeric address ("" = all interfaces) */
    uint16_t port; /* tcp */
    bool loopback; /* tcp: bound to 127.0.0.0/8 or ::1 only */
    bool tls;      /* tcp: serve through the TLS transport */
};

/* Parses a dockerd-style -H value: unix:///path, unix://path, tcp://host:port,
 * tcp://[::1]:port, tcp://:port (default port 2375, or 2376 with tls).
 * Refuses a non-loopback TCP address when !tls (security case 3). */
MUST_CHECK int api_listen_spec_parse(const char *addr, bool tls, struct api_listen_spec *out,
                                     struct merr *err);
void api_listen_spec_release(struct api_listen_spec *spec);

/* Per-connection I/O seam, so TLS can be plugged in without touching the
 * loop. The plain transport (used when a listener has no TLS) wraps
 * send/recv. Hooks behave like their syscalls on a non-blocking fd: -1 with
 * errno EAGAIN when they would block; read returns 0 at the end of the peer's
 * stream (TCP FIN, or a TLS close_notify), which for hijacked streams means
 * "stdin closed" while output may continue. */
struct api_transport {
    const char *name;
    void *data;
    MUST_CHECK int (*wrap)(void *data, int fd, void **conn_ctx, struct merr *err);
    ssize_t (*read)(void *conn_ctx, int fd, void *buf, size_t len);
    ssize_t (*write)(void *conn_ctx, int fd, const void *buf, size_t len);
    int (*shutdown_write)(void *conn_ctx, int fd);
    /* Bytes already decrypted and buffered inside the transport (may be NULL). */
    size_t (*pending)(void *conn_ctx);
    void (*release)(void *conn_ctx);
};

/* ---- router ------------------------------------------------------------ */

struct api_request;
struct api_router;

/* A handler answers with one of the api_reply_* / api_stream_* calls and
 * returns 0, or returns -1 with err filled: if nothing was sent yet the
 * server answers with api_status_from_merr(err) and {"message": err->msg};
 * otherwise the connection is closed. */
typedef int (*api_handler_fn)(struct api_request *req, void *data, struct merr *err);

enum api_route_flags {
    API_ROUTE_WORKER = 1 << 0, /* run on a worker thread that owns the connection */
    /* A worker route dispatched as soon as the headers are in: the body (any size, no
     * API_BODY_MAX cap) is read with api_request_body_read(). A body the handler leaves
     * unread closes the connection after the reply. */
    API_ROUTE_STREAM_BODY = 1 << 1,
};

/* Patterns are literal paths with {var} segments; a variable matches one or
 * more characters including '/', so "/images/{name}/json" matches
 * "/images/127.0.0.1:5000/a/b:tag/json". When several routes match, the
 * one with the most literal characters wins. Patterns never carry the
 * "/v1.NN" prefix: every route is served with and without it. */
struct api_param;

struct api_route {
    const char *method; /* "GET", "HEAD", "POST", "DELETE", ... */
    const char *pattern;
    api_handler_fn handler;
    unsigned flags;
    /* The route's query parameters (params.c); NULL: none declared yet, which
     * tests/unit/test_api_params.c reports. */
    const struct api_param *params;
};

/* ---- query parameters (params.c) ---------------------------------------- */

/* What the engine does with a query parameter of a route. Every parameter moby's swagger gives
 * a served route is declared (docs/engine-api.md lists them; a unit test holds the three
 * together); a parameter nobody declared is ignored, as dockerd ignores unknown ones. */
enum api_param_use {
    API_PARAM_HONOURED, /* the handler carries it out (and refuses values it cannot do) */
    /* The router answers 400 "query parameter 'x' is not supported by machine-engine" when it is
     * set to anything but a default: absent, "", a false boolean ("0", "false", "no", "none"),
     * JSON "null", "[]", "{}", or one of the `accepted` values. */
    API_PARAM_REFUSED,
    API_PARAM_IGNORED,   /* dockerd ignores it on Linux too; `note` says why */
    API_PARAM_UNREACHED, /* "*": the route answers an error whatever it is given (swarm) */
};

struct api_param {
    const char *name; /* "*" with API_PARAM_UNREACHED: every parameter */
    enum api_param_use use;
    const char *accepted; /* REFUSED: '|'-separated values that also count as defaults */
    const char *note;     /* shown in docs/engine-api.md; for REFUSED appended to the message */
};

#define API_PARAM(n) { n, API_PARAM_HONOURED, NULL, NULL }
#define API_PARAM_NOTE(n, note) { n, API_PARAM_HONOURED, NULL, note }
#define API_PARAM_REFUSE(n) { n, API_PARAM_REFUSED, NULL, NULL }
#define API_PARAM_REFUSE_BUT(n, accepted) { n, API_PARAM_REFUSED, accepted, NULL }
#define API_PARAM_IGNORE(n, why) { n, API_PARAM_IGNORED, NULL, why }
#define API_PARAMS_END { NULL, API_PARAM_HONOURED, NULL, NULL }

/* A route without query parameters, and one that answers an error whatever it is given. */
extern const struct api_param api_params_none[];
extern const struct api_param api_params_unreached[];

const char *api_param_use_name(enum api_param_use use);
/* The declaration of name in params (a "*" entry matches every name), NULL if undeclared. */
const struct api_param *api_params_find(const struct api_param *params, const char *name);

MUST_CHECK struct api_router *api_router_new(struct merr *err);
void api_router_free(struct api_router *router);
DEFINE_CLEANUP(struct api_router, api_router_free)
/* Copies method/pattern; data is passed to the handler unchanged. */
MUST_CHECK int api_router_add(struct api_router *router, const struct api_route *route, void *data,
                              struct merr *err);
MUST_CHECK int api_router_add_table(struct api_router *router, const struct api_route *routes,
                                    size_t n_routes, void *data, struct merr *err);
/* The registered routes, in order (the parameter table test walks them). */
size_t api_router_count(const struct api_router *router);
const struct api_route *api_router_route(const struct api_router *router, size_t i);

/* ---- server ------------------------------------------------------------ */

struct api_server;

struct api_server_config {
    const char *server_version; /* "0.1.0": Server: machine-engine/<v> (linux) */
    const struct mlog *log;
    /* Transport for listeners with tls set; NULL makes them fail to start. */
    const struct api_transport *tls;
    size_t max_body;        /* 0: API_BODY_MAX */
    unsigned max_conns;     /* 0: 1024 */
    /* Connections from one TCP peer address; 0: 256. Past either limit a
     * new connection takes the place of the oldest one that is only waiting (in its TLS
     * handshake, on a request head, or idle between requests), as nginx and haproxy do, so a
     * flood of silent connections cannot lock clients out. */
    unsigned max_conns_per_source;
    /* Deadlines (ms; 0: the default): the TLS handshake and the first request (10 s), a request
     * head (30 s from its first byte), an idle keep-alive connection (120 s). */
    unsigned handshake_timeout_ms;
    unsigned header_timeout_ms;
    unsigned idle_timeout_ms;
    /* Test hook: sleep this long after listen(), before the Unix socket gets its mode and
     * appears at its final path (widens the window the race test probes). */
    unsigned unix_publish_delay_ms;
};

MUST_CHECK struct api_server *api_server_new(const struct api_server_config *cfg, struct merr *err);
/* Closes listeners and removes the Unix sockets this server created. */
void api_server_free(struct api_server *srv);
DEFINE_CLEANUP(struct api_server, api_server_free)

struct api_router *api_server_router(struct api_server *srv);

/* Unix sockets are created mode 0660, group "docker" when that group exists,
 * and are never reachable at their path with a looser mode (security case 4). */
MUST_CHECK int api_server_listen(struct api_server *srv, const struct api_listen_spec *spec,
                                 struct merr *err);

/* Calls cb on the loop thread whenever fd is readable (e.g. a signalfd). */
typedef void (*api_watch_fn)(int fd, void *data);
MUST_CHECK int api_server_watch_fd(struct api_server *srv, int fd, api_watch_fn cb, void *data,
                                   struct merr *err);

/* Serves until stop_fd becomes readable, then stops accepting, cancels
 * workers (api_request_cancel_fd turns readable) and waits for them. */
MUST_CHECK int api_server_run(struct api_server *srv, int stop_fd, struct merr *err);

/* ---- requests ---------------------------------------------------------- */

const char *api_request_method(const struct api_request *req);
/* Percent-decoded path without the "/v1.NN" prefix. */
const char *api_request_path(const struct api_request *req);
/* Value of a {var} of the matched pattern, NULL if the pattern has none. */
const char *api_request_var(const struct api_request *req, const char *name);
/* Case-insensitive; NULL if absent. */
const char *api_request_header(const struct api_request *req, const char *name);
/* Negotiated version: the URL prefix, or API_VERSION_MAX without one. */
struct api_version api_request_version(const struct api_request *req);
bool api_request_version_ge(const struct api_request *req, unsigned major, unsigned minor);
const struct mlog *api_request_log(const struct api_request *req);

/* Decoded query value (first occurrence), NULL if absent. */
const char *api_request_query(const struct api_request *req, const char *key);
/* Every value of a repeated key (names=a&names=b), in order; NULL-terminated list of borrowed
 * strings to free() (not the strings), or NULL when out of memory. */
const char **api_request_query_all(const struct api_request *req, const char *key);
/* Like moby's BoolValue: absent, "", "0", "no", "false", "none" are false. */
bool api_request_query_bool(const struct api_request *req, const char *key);
/* *out = def when absent; MERR_INVALID when not an integer. */
MUST_CHECK int api_request_query_int(const struct api_request *req, const char *key, long long def,
                                     long long *out, struct merr *err);

const char *api_request_body(const struct api_request *req, size_t *len);
/* Reads the next bytes of the request body (chunked or with Content-Length): bytes read, 0 at
 * its end, -1 on error (MERR_PROTOCOL for a malformed body, MERR_IO when the client goes away
 * before its end or the server stops). Works on every worker route: for buffered bodies it
 * returns the buffered bytes. Blocks. */
MUST_CHECK ssize_t api_request_body_read(struct api_request *req, void *buf, size_t len,
                                         struct merr *err);
/* Copies the rest of the body into fd (a spool file); `what` names it in errors. */
MUST_CHECK int api_request_body_to_fd(struct api_request *req, int fd, const char *what,
                                      struct merr *err);
/* Parses the body as JSON; an empty body gives *out = NULL. */
MUST_CHECK int api_request_body_json(const struct api_request *req, struct json_t **out,
                                     struct merr *err);

/* The `filters` query parameter (struct api_filters: filters/args.h). */
MUST_CHECK int api_request_filters(const struct api_request *req, struct api_filters *out,
                                   struct merr *err);

/* ---- replies ----------------------------------------------------------- */

/* Maps an error code to the Docker status classes: 400 invalid, 404 not
 * found, 409 conflict, 401/403, 501 unsupported, 503 unavailable, 500. */
int api_status_from_merr(const struct merr *err);

/* Adds a header to the reply this request will send (api_reply_* or api_stream_begin);
 * name and value are copied. Used by the archive routes (X-Docker-Container-Path-Stat). */
void api_reply_add_header(struct api_request *req, const char *name, const char *value);
/* Sends body (compact JSON + "\n", Content-Type: application/json) and
 * releases it; a NULL body is answered with 500. */
MUST_CHECK int api_reply_json(struct api_request *req, int status, struct json_t *body,
                              struct merr *err);
MUST_CHECK int api_reply_raw(struct api_request *req, int status, const char *content_type,
                             const void *data, size_t len, struct merr *err);
/* No body: 204, 304, or 201/200 with Content-Length: 0. */
MUST_CHECK int api_reply_empty(struct api_request *req, int status, struct merr *err);
/* {"message": "..."} */
MUST_CHECK int api_reply_error(struct api_request *req, int status, struct merr *err,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
MUST_CHECK int api_reply_merr(struct api_request *req, const struct merr *cause, struct merr *err);

/* Chunked stream (pull progress, logs, events, wait): the head is sent at
 * once; each write is one chunk, sent before the call returns on a worker. */
MUST_CHECK int api_stream_begin(struct api_request *req, int status, const char *content_type,
                                struct merr *err);
MUST_CHECK int api_stream_write(struct api_request *req, const void *data, size_t len,
                                struct merr *err);
/* Compact JSON + "\n"; obj is borrowed. */
MUST_CHECK int api_stream_write_json(struct api_request *req, const struct json_t *obj,
                                     struct merr *err);
MUST_CHECK int api_stream_end(struct api_request *req, struct merr *err);

/* Hijacks the connection (attach, exec start). When the client asked for an
 * upgrade: "101 UPGRADED" + Connection/Upgrade headers; otherwise (old
 * clients) "200 OK". Content-Type is the multiplexed type when !tty and the
 * version is >= 1.42, else the raw type. Worker routes only. Afterwards use
 * api_stream_write / api_stream_frame for output and api_stream_read for
 * input; bytes the client sent after the request are returned first. */
MUST_CHECK int api_hijack(struct api_request *req, bool tty, struct merr *err);

/* Reads from a hijacked connection. Returns bytes read, 0 at the client's
 * end of stream (stdin EOF: keep writing output), -1 on error or when the
 * server stops. Blocks; worker routes only. */
MUST_CHECK ssize_t api_stream_read(struct api_request *req, void *buf, size_t len,
                                   struct merr *err);
/* Ends our side of a hijacked stream (SHUT_WR). */
MUST_CHECK int api_stream_close_write(struct api_request *req, struct merr *err);

/* The connection fd, to poll() for readability/hang-up next to one's own fds;
 * do the I/O through the api_stream_* calls (TLS seam). */
int api_request_fd(const struct api_request *req);
/* Readable once the server is stopping: workers poll it and give up. */
int api_request_cancel_fd(const struct api_request *req);
/* Blocks until the client closes the connection or the server stops. */
MUST_CHECK int api_request_wait_closed(struct api_request *req, struct merr *err);

/* ---- stdcopy (multiplexed streams) ------------------------------------- */

enum stdcopy_stream {
    STDCOPY_STDIN = 0,
    STDCOPY_STDOUT = 1,
    STDCOPY_STDERR = 2,
    STDCOPY_SYSTEMERR = 3,
};

#define STDCOPY_HEADER_LEN 8

/* [stream, 0, 0, 0, size as big-endian uint32] */
void stdcopy_header(uint8_t out[STDCOPY_HEADER_LEN], enum stdcopy_stream stream, uint32_t size);

typedef int (*stdcopy_sink_fn)(void *data, enum stdcopy_stream stream, const uint8_t *payload,
                               size_t len, struct merr *err);

/* Incremental decoder: feed any split of a multiplexed stream. */
struct stdcopy_decoder {
    uint8_t header[STDCOPY_HEADER_LEN];
    size_t header_len;
    uint32_t remaining;
    enum stdcopy_stream stream;
};

void stdcopy_decoder_init(struct stdcopy_decoder *d);
/* Calls sink for every payload piece; MERR_PROTOCOL on a bad stream id. */
MUST_CHECK int stdcopy_decode(struct stdcopy_decoder *d, const uint8_t *buf, size_t len,
                              stdcopy_sink_fn sink, void *data, struct merr *err);
/* True between frames (a clean place for the stream to end). */
bool stdcopy_decoder_idle(const struct stdcopy_decoder *d);

/* Writes one frame (header + payload) to a chunked or hijacked stream. */
MUST_CHECK int api_stream_frame(struct api_request *req, enum stdcopy_stream stream,
                                const void *data, size_t len, struct merr *err);

/* ---- system endpoints (/_ping, /version, /info, /events) --------------- */

struct api_system_counts {
    long long containers, running, paused, stopped, images;
};

struct api_system {
    const char *engine_id;
    const char *server_version;
    const char *git_commit;
    const char *build_time;
    const char *data_root;
    const char *storage_driver;       /* "overlay2", "vfs" (NULL: overlay2) */
    char *const *labels;              /* NULL-terminated, may be NULL */
    char *const *insecure_registries; /* CIDRs or host[:port] */
    char *const *registry_mirrors;
    char *const *warnings;            /* extra daemon warnings */
    bool debug;
    /* Container and image counts; NULL reports zeros. */
    int (*counts)(void *data, struct api_system_counts *out, struct merr *err);
    void *counts_data;
};

/* Registers the system routes; sys must outlive the router. */
MUST_CHECK int api_system_register(struct api_router *router, const struct api_system *sys,
                                   struct merr *err);

#endif
