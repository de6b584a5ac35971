/* The EC2 Query API client: credentials, SigV4 per attempt, the shared rate limiter,
 * throttling retried with capped backoff, error answers onto merr codes. */
#include "ec2-priv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awsprofile.h"
#include "clock.h"
#include "cloud.h"
#include "driver.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "machine.h"
#include "ratelimit.h"
#include "registry.h"
#include "secrets.h"
#include "sigv4.h"

#define EC2_MAX_THROTTLED 8

/* core/cloud.c's throttled answers, plus EC2's own "try again" codes of a 5xx. */
bool ec2_throttled(long status, const char *code)
{
    if (cloud_throttled(status, code))
        return true;
    return status >= 500 && (code == NULL || strcmp(code, "InternalError") == 0 ||
                             strcmp(code, "Unavailable") == 0 ||
                             strcmp(code, "ServiceUnavailable") == 0);
}

/* Saved keys, else the recorded profile (re-read now), else the environment. */
static int credentials(struct ec2 *e, const struct machine *m, struct merr *err)
{
    const struct driver *d = &driver_amazonec2;
    const char *profile = machine_driver_str(m, "Profile");
    if (machine_secret(m, "AccessKey") == NULL && profile != NULL && profile[0] != '\0') {
        struct aws_profile p = { 0 };
        if (aws_profile_load(profile, &p, err) < 0) {
            aws_profile_clear(&p);
            return merr_prefix(err, "machine %s (--amazonec2-profile)", m->name);
        }
        e->access_key = steal_pointer(&p.access_key);
        e->secret_key = steal_pointer(&p.secret_key);
        e->session_token = steal_pointer(&p.session_token);
        aws_profile_clear(&p);
        return 0;
    }
    const char *ak = driver_secret(d, m, "AccessKey", err);
    if (ak == NULL)
        return merr_set(err, MERR_INVALID, 0,
                        "machine '%s' has no AWS credentials: pass --amazonec2-access-key and "
                        "--amazonec2-secret-key (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or "
                        "--amazonec2-profile (AWS_PROFILE)", m->name);
    const char *sk = driver_secret(d, m, "SecretKey", err);
    if (sk == NULL)
        return -1;
    struct merr ignore = MERR_INIT;
    const char *tok = driver_secret(d, m, "SessionToken", &ignore);
    e->access_key = xstrdup(ak);
    e->secret_key = xstrdup(sk);
    e->session_token = tok != NULL && tok[0] != '\0' ? xstrdup(tok) : NULL;
    return 0;
}

/* url → host[:port] and path (scheme http or https only). */
static int endpoint(struct ec2 *e, const char *url, struct merr *err)
{
    const char *rest = NULL;
    if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/')
        return merr_set(err, MERR_INVALID, 0, "invalid --amazonec2-endpoint '%s'", url);
    const char *slash = strchr(rest, '/');
    e->host = slash != NULL ? strndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
    if (e->host == NULL)
        abort();
    e->path = xstrdup(slash != NULL ? slash : "/");
    e->url = slash != NULL ? xstrdup(url) : xasprintf("%s/", url);
    return 0;
}

int ec2_open(struct ec2 *e, const struct driver_ctx *ctx, const struct machine *m,
             struct merr *err)
{
    *e = (struct ec2){ .ctx = ctx };
    const char *region = machine_driver_str(m, "Region");
    e->region = xstrdup(region != NULL && region[0] != '\0' ? region : "us-east-1");
    const char *ep = machine_driver_str(m, "Endpoint");
    auto_free char *def = xasprintf("https://ec2.%s.amazonaws.com/", e->region);
    if (endpoint(e, ep != NULL && ep[0] != '\0' ? ep : def, err) < 0 ||
        credentials(e, m, err) < 0) {
        ec2_close(e);
        return -1;
    }
    if (ctx->store != NULL) { /* the limiter's state lives in the store's lock directory */
        auto_free char *scope = xasprintf("ec2 %s %s", e->url, e->access_key);
        e->rl = ratelimit_open(ctx->store, scope, 5, 10, 0, err);
        if (e->rl == NULL) {
            ec2_close(e);
            return -1;
        }
    }
    struct http_client_opts o = {
        .allow_http = strncmp(e->url, "http://", 7) == 0,
        .max_attempts = 1, /* ec2_call re-signs each attempt itself */
        .before_attempt = e->rl != NULL ? ratelimit_before_attempt : NULL,
        .before_attempt_ctx = e->rl,
    };
    e->http = driver_http_client(ctx, &o, err);
    if (e->http == NULL) {
        ec2_close(e);
        return -1;
    }
    return 0;
}

void ec2_close(struct ec2 *e)
{
    http_client_free(e->http);
    ratelimit_free(e->rl);
    free(e->url);
    free(e->host);
    free(e->path);
    free(e->region);
    free(e->access_key);
    if (e->secret_key != NULL)
        explicit_bzero(e->secret_key, strlen(e->secret_key));
    free(e->secret_key);
    free(e->session_token);
    free(e->last_code);
    *e = (struct ec2){ 0 };
}

/* One signed POST of body. */
static int attempt(struct ec2 *e, const char *body, struct http_response *resp, struct merr *err)
{
    char date[17];
    sigv4_amz_date(time(NULL), date);
    auto_free char *h_host = xasprintf("Host: %s", e->host);
    auto_free char *h_date = xasprintf("X-Amz-Date: %s", date);
    auto_free char *h_tok =
        e->session_token != NULL ? xasprintf("X-Amz-Security-Token: %s", e->session_token) : NULL;
    const char *signed_h[] = { h_host, h_date,
                               "Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                               h_tok, NULL };
    struct sigv4_request sr = { .method = "POST", .path = e->path, .headers = signed_h,
                                .payload = body, .payload_len = strlen(body) };
    struct sigv4_key key = { .access_key = e->access_key, .secret_key = e->secret_key,
                             .region = e->region, .service = "ec2" };
    auto_free char *auth = sigv4_authorization(&sr, &key, err);
    if (auth == NULL)
        return -1;
    auto_free char *h_auth = xasprintf("Authorization: %s", auth);
    const char *headers[] = { signed_h[0], signed_h[1], signed_h[2], h_auth, h_tok, NULL };
    struct http_request rq = {
        .method = "POST", .url = e->url, .headers = headers, .body = body,
        .body_len = strlen(body), .retry = HTTP_RETRY_NEVER,
        .deadline_ms = driver_http_deadline(e->ctx),
        .attempt_timeout_ms = e->ctx->timeout_ms > 0 ? e->ctx->timeout_ms : 60000,
        .max_response = 8u << 20,
    };
    return http_do(e->http, &rq, resp, err);
}

/* The pause before trying a throttled call again: Retry-After, else capped backoff. */
static long throttle_pause_ms(const struct http_response *resp, unsigned n)
{
    const char *ra = http_response_header(resp, "Retry-After");
    long s = ra != NULL ? http_retry_after_parse(ra, time(NULL)) : -1;
    if (s >= 0)
        return s * 1000 < 20000 ? s * 1000 : 20000;
    return http_backoff_delay_ms(n, 300, 10000, (uint64_t)clock_now_ns());
}

int ec2_call(struct ec2 *e, const char *action, const char *const *params, char **body,
             size_t *len, struct merr *err)
{
    auto_free char *q = ec2_query(action, params);
    free(e->last_code);
    e->last_code = NULL;
    for (unsigned n = 1;; n++) {
        struct http_response resp = { 0 };
        if (attempt(e, q, &resp, err) < 0) {
            http_response_clear(&resp);
            return merr_prefix(err, "ec2 %s", action);
        }
        if (resp.status >= 200 && resp.status < 300) {
            *body = resp.body != NULL ? steal_pointer(&resp.body) : xstrdup("");
            if (len != NULL)
                *len = strlen(*body);
            http_response_clear(&resp);
            return 0;
        }
        auto_free char *code = NULL, *msg = NULL;
        ec2_parse_error(resp.body, resp.body != NULL ? resp.len : 0, &code, &msg);
        bool again = ec2_throttled(resp.status, code) && n < EC2_MAX_THROTTLED;
        long pause = again ? throttle_pause_ms(&resp, n) : 0;
        if (again && e->ctx->deadline_ms > 0 && clock_now_ms() + pause >= e->ctx->deadline_ms)
            again = false;
        if (again) {
            e->throttled++;
            mlog_debug(e->ctx->log, "ec2 %s: %ld %s, again in %ld ms", action, resp.status,
                       code != NULL ? code : "", pause);
            http_response_clear(&resp);
            clock_sleep_ms(pause);
            continue;
        }
        e->last_code = code != NULL ? xstrdup(code) : NULL;
        auto_free char *service = xasprintf("ec2 %s", action);
        cloud_error(err, service, resp.status, code, msg);
        http_response_clear(&resp);
        return -1;
    }
}
