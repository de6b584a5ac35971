/* Internals of engine/api shared between its files and its unit tests. */
#ifndef MACHINE_ENGINE_API_PRIV_H
#define MACHINE_ENGINE_API_PRIV_H

#ifndef MACHINE_API_PRIV
#error "api-priv.h is internal to engine/api/ and its tests (they define MACHINE_API_PRIV)"
#endif

#include "api.h"
#include "buf.h"

#include <stdarg.h>

/* ---- key/value pairs --------------------------------------------------- */

struct api_kv {
    char *key;
    char *value;
};

void api_kvs_free(struct api_kv *kvs, size_t n);

/* ---- HTTP text (http.c) ------------------------------------------------ */

/* Percent-decodes src[0..len); '+' becomes ' ' when plus_is_space. */
MUST_CHECK char *api_url_decode(const char *src, size_t len, bool plus_is_space, struct merr *err);

/* Splits "a=1&b=x%20y" into decoded pairs, in order. */
MUST_CHECK int api_query_parse(const char *qs, size_t len, struct api_kv **out, size_t *n_out,
                               struct merr *err);
const char *api_kv_get(const struct api_kv *kvs, size_t n, const char *key, bool case_insensitive);
bool api_bool_value(const char *s);

/* Length value for api_head.content_length. */
#define API_LENGTH_CHUNKED (-1LL)
#define API_LENGTH_NONE (-2LL) /* 204/304/101, or a raw stream that ends at close */

struct api_head {
    int status;
    const char *reason;       /* NULL: the standard phrase */
    const char *content_type; /* NULL: no Content-Type */
    long long content_length; /* >= 0, API_LENGTH_CHUNKED or API_LENGTH_NONE */
    bool close;               /* Connection: close */
    bool upgrade;             /* Connection: Upgrade + Upgrade: tcp */
    const char *server;       /* "machine-engine/0.1.0 (linux)" */
    const struct api_kv *extra;
    size_t n_extra;
};

/* Builds the status line and headers, including the ones every reply carries
 * (Api-Version, Ostype, Server, Docker-Experimental), ending with CRLF CRLF. */
MUST_CHECK int api_build_head(struct abuf *out, const struct api_head *head, struct merr *err);
MUST_CHECK int api_chunk_encode(struct abuf *out, const void *data, size_t len, struct merr *err);
#define API_CHUNK_END "0\r\n\r\n"

/* {"message": "..."} + "\n" */
MUST_CHECK char *api_error_body(const char *message, size_t *len, struct merr *err);

/* ---- routing (router.c) ------------------------------------------------ */

#define API_MAX_VARS 2

struct api_route_match {
    const struct api_route *route;
    void *data;
    size_t n_vars;
    struct api_kv vars[API_MAX_VARS]; /* owned */
};

/* Splits "/v1.41/containers/json" into version "1.41" and rest; *has_version
 * is false for a bare path (then rest = path). */
MUST_CHECK int api_path_split_version(const char *path, char *version, size_t version_size,
                                      const char **rest, bool *has_version, struct merr *err);

/* Checks a client version against [API_VERSION_MIN, API_VERSION_MAX]:
 * MERR_INVALID "client version X is too new. Maximum supported API version is Y"
 * (or "too old"), with the moby texts. */
MUST_CHECK int api_version_negotiate(const char *requested, struct api_version *out,
                                     struct merr *err);

/* 1 matched, 0 no route, -1 error. */
MUST_CHECK int api_router_match(const struct api_router *router, const char *method,
                                const char *path, struct api_route_match *m, struct merr *err);
void api_route_match_release(struct api_route_match *m);

/* ---- query parameters (params.c) ------------------------------------------ */

/* True when value counts as the parameter's default (see API_PARAM_REFUSED). */
bool api_param_is_default(const struct api_param *p, const char *value);
/* MERR_INVALID "query parameter 'x' is not supported by machine-engine" for the first refused
 * parameter of query set to a non-default value (each occurrence of a repeated key counts). */
MUST_CHECK int api_params_check(const struct api_param *params, const struct api_kv *query,
                                size_t n_query, struct merr *err);

/* ---- system facts (system.c) -------------------------------------------- */

struct api_host_facts {
    char kernel_version[256];
    char machine[64];          /* uname -m */
    char operating_system[256]; /* PRETTY_NAME */
    char os_version[64];        /* VERSION_ID */
    char hostname[256];
    long ncpu;
    long long mem_total;
    const char *cgroup_version; /* "1" or "2" */
    char system_time[64];
};

/* Reads PRETTY_NAME / VERSION_ID from an os-release text (quotes removed). */
void api_parse_os_release(const char *text, char *pretty, size_t pretty_size, char *version_id,
                          size_t version_id_size);
/* "2" when the filesystem type of /sys/fs/cgroup is cgroup2, else "1". */
const char *api_cgroup_version_from_fstype(long long f_type);
/* Go's GOARCH name for a uname machine ("x86_64" -> "amd64"). */
const char *api_goarch(const char *machine);

void api_host_facts_gather(struct api_host_facts *f);

MUST_CHECK struct json_t *api_system_version_json(const struct api_system *sys,
                                                  const struct api_host_facts *f,
                                                  struct merr *err);
MUST_CHECK struct json_t *api_system_info_json(const struct api_system *sys,
                                               const struct api_host_facts *f,
                                               const struct api_system_counts *c,
                                               struct merr *err);

/* ---- sockets (listen.c) --------------------------------------------------- */

MUST_CHECK int api_listen_unix(const char *path, unsigned publish_delay_ms, int *fd_out,
                               dev_t *dev, ino_t *ino, struct merr *err);
MUST_CHECK int api_listen_tcp(const struct api_listen_spec *spec, int *fd_out, struct merr *err);

/* ---- connections and requests (server.c, request.c) ------------------------ */

#include <http_parser.h>
#include <pthread.h>

enum api_ep_kind {
    API_EP_LISTENER,
    API_EP_CONN,
    API_EP_WATCH,
    API_EP_NOTIFY,
    API_EP_STOP,
    API_EP_DEAD, /* a connection freed during the current epoll batch */
};

/* First member of everything registered with epoll. */
struct api_ep_item {
    enum api_ep_kind kind;
};

/* What a connection is doing, for its deadline and whether it may make room for another. */
enum api_conn_phase {
    API_CONN_NEW,  /* accepted, TLS handshake and first request not yet there */
    API_CONN_HEAD, /* a request is arriving */
    API_CONN_BUSY, /* a request is being served (no deadline, never evicted) */
    API_CONN_IDLE, /* keep-alive, between requests */
};

/* Who is at the other end: TCP peer address or Unix peer uid. */
struct api_conn_source {
    unsigned char addr[16];
    bool is_unix;
};

struct api_conn {
    struct api_ep_item ep;
    struct api_server *srv;
    int fd;
    enum api_conn_phase phase;
    long long phase_since; /* CLOCK_MONOTONIC ms */
    struct api_conn_source source;
    const struct api_transport *io;
    void *io_ctx;
    http_parser parser;
    struct abuf in;  /* received, not yet parsed (or hijacked stdin) */
    struct abuf out; /* to send */
    struct api_request *req;
    bool in_worker;
    bool want_close;
    bool peer_eof;
    bool polling_out;
    pthread_t thread;
    struct api_conn *prev, *next; /* server's list of connections */
    struct api_conn *next_returned;
};

struct api_request {
    struct api_conn *conn;
    char method[16];
    struct abuf url;
    struct api_kv *headers;
    size_t n_headers;
    struct abuf field, value; /* header being parsed */
    bool in_value;
    struct abuf body;
    size_t body_off; /* api_request_body_read position in a buffered body */
    bool streaming;  /* API_ROUTE_STREAM_BODY: the body is parsed as the handler reads it */
    bool too_large;
    bool complete;
    bool keep_alive;
    bool upgrade; /* client asked for Connection: Upgrade */

    char *path; /* decoded, version prefix removed */
    struct api_kv *query;
    size_t n_query;
    struct api_version version;
    struct api_route_match match;

    /* response state */
    bool head_only; /* HEAD: no body */
    bool head_sent;
    bool chunked;
    bool ended;
    bool hijacked;
    int status;
    struct api_kv *reply_headers; /* api_reply_add_header */
    size_t n_reply_headers;
};

struct api_request *api_request_new(struct api_conn *conn);
void api_request_free(struct api_request *req);

/* Queues bytes; on a worker they are sent before returning. */
MUST_CHECK int api_conn_send(struct api_conn *conn, const void *data, size_t len, struct merr *err);
MUST_CHECK int api_conn_flush_blocking(struct api_conn *conn, struct merr *err);
int api_conn_cancel_fd(const struct api_conn *conn);
/* Waits on a worker until the connection has events or the server stops (MERR_IO). */
MUST_CHECK int api_request_wait_fd(struct api_request *req, short events, struct merr *err);
const char *api_conn_server_header(const struct api_conn *conn);
const struct mlog *api_conn_log(const struct api_conn *conn);

/* A reply with extra headers (used by /_ping). */
MUST_CHECK int api_reply_full(struct api_request *req, int status, const char *content_type,
                              const void *data, size_t len, const struct api_kv *extra,
                              size_t n_extra, struct merr *err);
/* Completes a handled request: error reply, end of an open stream. */
void api_request_finish(struct api_request *req, int handler_rc, const struct merr *handler_err);

#endif
