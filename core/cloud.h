/* What every cloud driver shares on top of util/http: a client bound to one API endpoint and
 * account whose every attempt takes a token from the shared rate limiter (core/ratelimit.h);
 * throttled answers retried with backoff whatever the method (the API did not act on them);
 * API errors mapped onto merr codes in one place; a bounded pagination loop that knows nothing
 * of JSON or XML. A driver brings the wire format (request building, answer parsing, its
 * error-code extraction); a third cloud is one small file on top of this. */
#ifndef MACHINE_CLOUD_H
#define MACHINE_CLOUD_H

#include <stdbool.h>
#include <time.h>

#include "cleanup.h"
#include "error.h"

struct driver_ctx;
struct http_request;
struct http_response;

struct cloud_client_opts {
    const char *service;  /* "digitalocean": names the API in errors and the limiter's scope */
    const char *endpoint; /* base URL; an http:// one is allowed (simulators) */
    const char *account;  /* token or access key id: only hashed into the limiter's scope */
    double per_sec;       /* shared request rate (0: 5/s) */
    double burst;         /* bucket size (0: 10) */
    unsigned max_throttled; /* throttled answers retried per request (0: 8) */
    long backoff_max_ms;  /* cap of one pause, Retry-After included (0: 30 s) */
    /* The API's own quota headers (DigitalOcean: "RateLimit-Remaining", "RateLimit-Reset" in
     * Unix seconds), or NULL: an answer saying none is left makes the next request wait for
     * the reset (capped by backoff_max_ms and the deadline). */
    const char *quota_remaining_header;
    const char *quota_reset_header;
};

struct cloud_client;

/* A client from the driver's toolkit (driver_http_client) with the limiter plugged in. */
struct cloud_client *cloud_client_new(const struct driver_ctx *ctx,
                                      const struct cloud_client_opts *opts,
                                      struct merr *err) MUST_CHECK;
void cloud_client_free(struct cloud_client *cc);
DEFINE_CLEANUP(struct cloud_client, cloud_client_free)
#define auto_cloud_client __attribute__((cleanup(cleanup_cloud_client_freep)))

const char *cloud_client_endpoint(const struct cloud_client *cc);

/* The API's own error code of an answer (EC2's <Code>, DigitalOcean's "id"), malloc'd, or
 * NULL when the body names none. */
typedef char *(*cloud_error_code_fn)(const struct http_response *resp);

/* Performs rq (deadline_ms filled from the ctx when 0) and retries it, even a POST, while the
 * answer is throttled (cloud_throttled on the status and the code api_code extracts), pausing
 * as Retry-After says or with capped exponential backoff, bounded in count and by the deadline.
 * Like http_do, any final status is a successful exchange: the caller judges it (cloud_error). */
int cloud_do(struct cloud_client *cc, const struct http_request *rq, struct http_response *resp,
             cloud_error_code_fn api_code, struct merr *err) MUST_CHECK;

/* Fills err from a failed answer: the merr code from cloud_error_code, the message
 * "SERVICE: STATUS CODE: MESSAGE" (message: the API's words, NULL: none); returns -1. */
int cloud_error(struct merr *err, const char *service, long status, const char *api_code,
                const char *message);

/* ---- pure (unit-tested) ---- */

/* A throttled answer: 429, 503, or an API code meaning "slow down" (RequestLimitExceeded,
 * Throttling, ThrottlingException, too_many_requests, ...). */
bool cloud_throttled(long status, const char *api_code);

/* How long to wait before the next request when an answer said remaining (a count) with the
 * quota refilled at reset (Unix seconds): 0 while some are left or the reset has passed, else
 * the ms until it, at most cap_ms. Absent or malformed values: 0. */
long cloud_quota_wait_ms(const char *remaining, const char *reset, time_t now, long cap_ms);

/* The merr code of a failed answer: 401 and auth codes → MERR_AUTH, 403 and
 * UnauthorizedOperation → MERR_PERM, 404 and *.NotFound/not_found → MERR_NOT_FOUND, 409 and
 * *.Duplicate/AlreadyExists → MERR_EXISTS, 400/422 → MERR_INVALID, throttled → MERR_BUSY,
 * 5xx → MERR_REMOTE, else MERR_PROTOCOL. */
enum merr_code cloud_error_code(long status, const char *api_code);

/* ---- pagination ---- */

/* Fetches and consumes one page. cursor is NULL for the first page, else what the previous
 * page set in *next (DigitalOcean: the links.pages.next URL; EC2: the NextToken). Sets *next
 * (malloc'd) to the next cursor, or leaves it NULL on the last page. */
typedef int (*cloud_page_fn)(void *opaque, const char *cursor, char **next, struct merr *err);

/* Calls page until a page has no next cursor; at most max_pages pages (0: 100), a cursor
 * repeating the previous one is MERR_PROTOCOL (a loop). */
int cloud_paginate(cloud_page_fn page, void *opaque, unsigned max_pages,
                   struct merr *err) MUST_CHECK;

#endif
