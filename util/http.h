/* One HTTP client for the engine (registries) and the machine side (engines, cloud APIs), on
 * libcurl through a function table (curlapi.h) so the engine can load libcurl on demand.
 *
 * A request is data (struct http_request); http_do() performs it with retries (idempotent
 * methods, or when the caller says so) under capped exponential backoff with jitter that honours
 * Retry-After, within a total deadline. Every HTTP status is a successful exchange for
 * http_do(): the caller judges the status. Transport failures, caps and deadlines are errors,
 * translated from libcurl's codes in one place. Debug logs carry a request ID and never a
 * secret (Authorization and token headers, passwords and signatures in URLs are redacted).
 * A client keeps a few idle libcurl handles, so its requests reuse connections. */
#ifndef MACHINE_HTTP_H
#define MACHINE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cleanup.h"

struct merr;
struct mlog;
struct curl_api;
struct json_t;

struct http_client_opts {
    const struct curl_api *curl;   /* a loaded table, borrowed for the client's lifetime */
    const struct mlog *log;        /* debug log, may be NULL */
    const char *user_agent;        /* NULL: "machine/<version>" */
    const char *ca_file;           /* NULL: the system bundle */
    const char *cert_file;         /* client certificate and key (mutual TLS), or NULL */
    const char *key_file;
    const char *unix_socket;       /* dial this socket whatever the URL's host, or NULL */
    bool allow_http;               /* plain http:// URLs (and redirects to them) allowed;
                                    * otherwise only https:// */
    bool tls12_min;                /* refuse TLS below 1.2 */
    bool no_proxy;                 /* dial directly, ignoring *_proxy variables */
    bool follow_redirects;         /* GET/HEAD only, at most 5, credentials never re-sent */
    long connect_timeout_ms;       /* 0: 10 s */
    long low_speed_time_s;         /* abort a transfer under low_speed_limit bytes/s for this */
    long low_speed_limit;          /*   long (0: 30 s under 1 KiB/s) */
    unsigned max_attempts;         /* per request, the first included (0: 5) */
    long backoff_base_ms;          /* first retry delay, doubled each time (0: 500) */
    long backoff_max_ms;           /* cap of one delay, Retry-After included (0: 10 s) */
    /* Called before every attempt (retries too), e.g. a shared rate limiter
     * (core/ratelimit.h); an error ends the request with it. NULL: none. */
    int (*before_attempt)(void *ctx, struct merr *err);
    void *before_attempt_ctx;
};

struct http_client;

MUST_CHECK struct http_client *http_client_new(const struct http_client_opts *opts,
                                               struct merr *err);
void http_client_free(struct http_client *c);
DEFINE_CLEANUP(struct http_client, http_client_free)
#define auto_http_client __attribute__((cleanup(cleanup_http_client_freep)))

struct http_response {
    long status;
    char **headers;  /* "Name: value" lines of the final response, NULL-terminated */
    char *body;      /* NUL-terminated; NULL when streamed to on_body or empty */
    size_t len;
    unsigned attempts;
};
void http_response_clear(struct http_response *r);

/* The first value of header name (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *r, const char *name);

/* Fills buf with the next request body bytes: count, 0 at the end, -1 with err set. */
typedef ssize_t (*http_read_fn)(void *ctx, void *buf, size_t len, struct merr *err);
/* Receives response body bytes in order; resp holds the status and headers so far. */
typedef int (*http_write_fn)(void *ctx, const struct http_response *resp, const void *buf,
                             size_t len, struct merr *err);

enum http_retry {
    HTTP_RETRY_IDEMPOTENT = 0, /* GET, HEAD, PUT, DELETE retried; POST, PATCH not */
    HTTP_RETRY_NEVER,
    HTTP_RETRY_ALWAYS,         /* the caller knows the request is safe to repeat */
};

struct http_request {
    const char *method;          /* NULL: GET */
    const char *url;
    const char *const *headers;  /* "Name: value", NULL-terminated, may be NULL */
    /* The body, at most one of: */
    const void *body;            /* a buffer of body_len bytes */
    size_t body_len;
    http_read_fn body_read;      /* a stream of body_len bytes (chunked when body_len is 0);
                                  * never retried unless body_rewind is given; a file: see
                                  * http_fd_read */
    int (*body_rewind)(void *ctx, struct merr *err);
    void *body_ctx;
    struct json_t *json;         /* serialised, with Content-Type: application/json */
    enum http_retry retry;
    size_t max_response;         /* cap of a buffered body (0: 1 MiB); past it, MERR_INVALID */
    http_write_fn on_body;       /* stream a 2xx body here instead of buffering it; a
                                  * request that delivered bytes is not retried */
    void *on_body_ctx;
    long deadline_ms;            /* over all attempts and waits (0: none) */
    long attempt_timeout_ms;     /* one attempt (0: none; low-speed limits still apply) */
};

/* A file region as a request body: body_read = http_fd_read, body_rewind = http_fd_rewind,
 * body_ctx = &(struct http_fd_body){ fd, offset, offset }. */
struct http_fd_body {
    int fd;
    off_t start;
    off_t pos;
};
ssize_t http_fd_read(void *ctx, void *buf, size_t len, struct merr *err);
int http_fd_rewind(void *ctx, struct merr *err);

/* Performs rq; resp (cleared first) gets the final status, headers and body. */
MUST_CHECK int http_do(struct http_client *c, const struct http_request *rq,
                       struct http_response *resp, struct merr *err);

/* ---- pure helpers (unit-tested) ---- */

/* The delay before retry number attempt (1 = the first retry): base doubled per attempt,
 * capped at max, then "equal jitter" (half fixed, half from rnd). */
long http_backoff_delay_ms(unsigned attempt, long base_ms, long max_ms, uint64_t rnd);

/* Retry-After: delta-seconds or an HTTP-date relative to now; -1 when absent or bad. */
long http_retry_after_parse(const char *value, time_t now);

/* True for the statuses worth retrying: 429, 500, 502, 503, 504. */
bool http_status_transient(long status);

/* "Name: value" (trailing CR/LF and surrounding blanks dropped) into name/value; false for a
 * line that is not a header (a status line, a blank line). */
bool http_header_split(const char *line, size_t len, char *name, size_t name_cap,
                       char *value, size_t value_cap);

/* "HTTP/1.1 201 Created" → 201; -1 when it is not a status line. */
long http_status_line_parse(const char *line, size_t len);

/* The URL with its userinfo password and secret query values (X-Amz-*, access_token,
 * refresh_token, token, password, signature, sig) replaced by "REDACTED". malloc'd. */
char *http_redact_url(const char *url);

/* A header line for a log: the value of Authorization, Proxy-Authorization, Cookie,
 * Set-Cookie, X-Registry-Auth and X-Amz-Security-Token replaced by "REDACTED". malloc'd. */
char *http_redact_header(const char *line);

/* Location (absolute, host-relative "/v2/...", or relative) against the URL of the request
 * that answered it. malloc'd; NULL with err for a scheme other than http(s). */
MUST_CHECK char *http_resolve_location(const char *base_url, const char *location,
                                       struct merr *err);

#endif
