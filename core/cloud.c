/* The shared cloud client (cloud.h): rate limiter, throttling retries, error mapping, pages. */
#include "cloud.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "driver.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"

#define CLOUD_DEFAULT_RATE 5.0
#define CLOUD_DEFAULT_BURST 10.0
#define CLOUD_DEFAULT_THROTTLED 8
#define CLOUD_DEFAULT_BACKOFF_MAX_MS 30000
#define CLOUD_BACKOFF_BASE_MS 500
#define CLOUD_DEFAULT_PAGES 100

struct cloud_client {
    struct http_client *http;
    struct ratelimit *rl;
    const struct mlog *log;
    const struct driver_ctx *ctx;
    char *service;
    char *endpoint;
    unsigned max_throttled;
    long backoff_max_ms;
    char *remaining_header, *reset_header;
    int64_t quota_wait_until; /* clock_now_ms() before which no request goes out (0: none) */
};

void cloud_client_free(struct cloud_client *cc)
{
    if (cc == NULL)
        return;
    http_client_free(cc->http);
    ratelimit_free(cc->rl);
    free(cc->service);
    free(cc->endpoint);
    free(cc->remaining_header);
    free(cc->reset_header);
    free(cc);
}

struct cloud_client *cloud_client_new(const struct driver_ctx *ctx,
                                      const struct cloud_client_opts *opts, struct merr *err)
{
    auto_cloud_client struct cloud_client *cc = calloc(1, sizeof *cc);
    if (cc == NULL) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    cc->ctx = ctx;
    cc->log = ctx->log;
    cc->service = xstrdup(opts->service != NULL ? opts->service : "cloud");
    cc->endpoint = xstrdup(opts->endpoint != NULL ? opts->endpoint : "");
    if (opts->quota_remaining_header != NULL && opts->quota_reset_header != NULL) {
        cc->remaining_header = xstrdup(opts->quota_remaining_header);
        cc->reset_header = xstrdup(opts->quota_reset_header);
    }
    cc->max_throttled = opts->max_throttled > 0 ? opts->max_throttled : CLOUD_DEFAULT_THROTTLED;
    cc->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms
                                                  : CLOUD_DEFAULT_BACKOFF_MAX_MS;
    struct http_client_opts ho = {
        .allow_http = strncmp(cc->endpoint, "http://", 7) == 0,
        .tls12_min = true,
        .backoff_max_ms = cc->backoff_max_ms,
    };
    if (ctx->store != NULL) {
        auto_free char *scope = xasprintf("%s %s %s", cc->service, cc->endpoint,
                                          opts->account != NULL ? opts->account : "");
        cc->rl = ratelimit_open(ctx->store, scope,
                                opts->per_sec > 0 ? opts->per_sec : CLOUD_DEFAULT_RATE,
                                opts->burst > 0 ? opts->burst : CLOUD_DEFAULT_BURST, 0, err);
        if (cc->rl == NULL)
            return NULL;
        ho.before_attempt = ratelimit_before_attempt;
        ho.before_attempt_ctx = cc->rl;
    }
    cc->http = driver_http_client(ctx, &ho, err);
    if (cc->http == NULL)
        return NULL;
    return steal_pointer(&cc);
}

const char *cloud_client_endpoint(const struct cloud_client *cc)
{
    return cc->endpoint;
}

long cloud_quota_wait_ms(const char *remaining, const char *reset, time_t now, long cap_ms)
{
    if (remaining == NULL || reset == NULL)
        return 0;
    char *end = NULL;
    long long left = strtoll(remaining, &end, 10);
    if (end == remaining || *end != '\0' || left != 0)
        return 0;
    long long at = strtoll(reset, &end, 10);
    if (end == reset || *end != '\0' || at <= (long long)now)
        return 0;
    long long ms = (at - (long long)now) * 1000;
    return ms > cap_ms ? cap_ms : (long)ms;
}

static bool code_has(const char *code, const char *needle)
{
    return code != NULL && strcasestr(code, needle) != NULL;
}

bool cloud_throttled(long status, const char *api_code)
{
    if (status == 429 || status == 503)
        return true;
    return code_has(api_code, "Throttl") || code_has(api_code, "RequestLimitExceeded") ||
           code_has(api_code, "too_many_requests") || code_has(api_code, "RateLimit");
}

enum merr_code cloud_error_code(long status, const char *api_code)
{
    if (cloud_throttled(status, api_code))
        return MERR_BUSY;
    if (code_has(api_code, "UnauthorizedOperation") || code_has(api_code, "forbidden"))
        return MERR_PERM;
    if (status == 401 || code_has(api_code, "AuthFailure") || code_has(api_code, "unauthorized") ||
        code_has(api_code, "InvalidClientTokenId") || code_has(api_code, "SignatureDoesNotMatch"))
        return MERR_AUTH;
    if (status == 403)
        return MERR_PERM;
    if (status == 404 || code_has(api_code, "NotFound") || code_has(api_code, "not_found"))
        return MERR_NOT_FOUND;
    if (status == 409 || code_has(api_code, "Duplicate") || code_has(api_code, "AlreadyExists"))
        return MERR_EXISTS;
    if (status == 400 || status == 422)
        return MERR_INVALID;
    if (status >= 500 && status <= 599)
        return MERR_REMOTE;
    return MERR_PROTOCOL;
}

int cloud_error(struct merr *err, const char *service, long status, const char *api_code,
                const char *message)
{
    return merr_set(err, cloud_error_code(status, api_code), 0, "%s: %ld%s%s%s%s", service,
                    status, api_code != NULL ? " " : "", api_code != NULL ? api_code : "",
                    message != NULL && message[0] != '\0' ? ": " : "",
                    message != NULL ? message : "");
}

/* The pause before throttled retry n (1 = first): Retry-After when given, else backoff. */
static long throttle_pause_ms(const struct cloud_client *cc, const struct http_response *resp,
                              unsigned n)
{
    long ra = http_retry_after_parse(http_response_header(resp, "Retry-After"), time(NULL));
    if (ra >= 0) {
        long ms = ra * 1000;
        return ms > cc->backoff_max_ms ? cc->backoff_max_ms : ms;
    }
    uint64_t rnd = (uint64_t)clock_now_ns() * 0x9e3779b97f4a7c15ULL;
    return http_backoff_delay_ms(n, CLOUD_BACKOFF_BASE_MS, cc->backoff_max_ms, rnd);
}

/* Remembers an answer's "no requests left until T". */
static void note_quota(struct cloud_client *cc, const struct http_response *resp)
{
    if (cc->remaining_header == NULL)
        return;
    long ms = cloud_quota_wait_ms(http_response_header(resp, cc->remaining_header),
                                  http_response_header(resp, cc->reset_header), time(NULL),
                                  cc->backoff_max_ms);
    cc->quota_wait_until = ms > 0 ? clock_now_ms() + ms : 0;
}

/* Waits for the API's quota to refill when the last answer said it was used up. */
static int quota_pause(struct cloud_client *cc, int64_t deadline, struct merr *err)
{
    if (cc->quota_wait_until == 0)
        return 0;
    int64_t ms = cc->quota_wait_until - clock_now_ms();
    cc->quota_wait_until = 0;
    if (ms <= 0)
        return 0;
    if (deadline != 0 && clock_left_ms(deadline) <= ms)
        return merr_set(err, MERR_BUSY, 0, "the API's request quota is used up for %lld s more",
                        (long long)(ms + 999) / 1000);
    mlog_debug(cc->log, "%s: request quota used up, waiting %lld ms for it to refill",
               cc->service, (long long)ms);
    clock_sleep_ms(ms);
    return 0;
}

int cloud_do(struct cloud_client *cc, const struct http_request *rq, struct http_response *resp,
             cloud_error_code_fn api_code, struct merr *err)
{
    struct http_request r = *rq;
    if (r.deadline_ms == 0)
        r.deadline_ms = driver_http_deadline(cc->ctx);
    int64_t deadline = r.deadline_ms > 0 ? clock_deadline_ms(r.deadline_ms) : 0;
    for (unsigned n = 1;; n++) {
        if (deadline != 0)
            r.deadline_ms = clock_left_ms(deadline) > 1 ? (long)clock_left_ms(deadline) : 1;
        if (quota_pause(cc, deadline, err) < 0 || http_do(cc->http, &r, resp, err) < 0)
            return merr_prefix(err, "%s", cc->service);
        note_quota(cc, resp);
        auto_free char *code = api_code != NULL ? api_code(resp) : NULL;
        if (!cloud_throttled(resp->status, code) || n > cc->max_throttled)
            return 0;
        long pause = throttle_pause_ms(cc, resp, n);
        if (deadline != 0 && clock_left_ms(deadline) <= pause)
            return 0; /* no time for another try: the throttled answer is the answer */
        mlog_debug(cc->log, "%s: throttled (%ld%s%s), retry %u in %ld ms", cc->service,
                   resp->status, code != NULL ? " " : "", code != NULL ? code : "", n, pause);
        http_response_clear(resp);
        clock_sleep_ms(pause);
    }
}

int cloud_paginate(cloud_page_fn page, void *opaque, unsigned max_pages, struct merr *err)
{
    if (max_pages == 0)
        max_pages = CLOUD_DEFAULT_PAGES;
    auto_free char *cursor = NULL;
    for (unsigned i = 0; i < max_pages; i++) {
        char *next = NULL;
        if (page(opaque, cursor, &next, err) < 0) {
            free(next);
            return -1;
        }
        if (next == NULL)
            return 0;
        if (cursor != NULL && strcmp(cursor, next) == 0) {
            free(next);
            return merr_set(err, MERR_PROTOCOL, 0, "the API answered the same page twice");
        }
        free(cursor);
        cursor = next;
    }
    return merr_set(err, MERR_PROTOCOL, 0, "more than %u pages in one listing", max_pages);
}
