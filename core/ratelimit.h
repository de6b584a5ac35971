/* One request-rate limiter per API account and endpoint, shared by every `machine` process
 * (a lab creates many machines at once, each its own process or thread): a token bucket whose
 * state is a small file in the store's lock directory (<root>/locks/rate-<sha256 of scope>),
 * updated under flock. The scope is hashed so no credential ever appears in a file name.
 *
 * Plug it into an HTTP client (util/http.h) through http_client_opts.before_attempt =
 * ratelimit_before_attempt, before_attempt_ctx = the limiter: every attempt, retries included,
 * then takes a token first. */
#ifndef MACHINE_RATELIMIT_H
#define MACHINE_RATELIMIT_H

#include "cleanup.h"

struct merr;
struct store;
struct ratelimit;

/* scope: e.g. "digitalocean https://api.digitalocean.com <token>" (hashed, never stored);
 * per_sec: sustained rate; burst: bucket size (>= 1); max_wait_ms: longest wait for a token
 * before MERR_TIMEOUT (0: 60 s). */
struct ratelimit *ratelimit_open(const struct store *s, const char *scope, double per_sec,
                                 double burst, long max_wait_ms, struct merr *err) MUST_CHECK;
void ratelimit_free(struct ratelimit *rl);
DEFINE_CLEANUP(struct ratelimit, ratelimit_free)
#define auto_ratelimit __attribute__((cleanup(cleanup_ratelimit_freep)))

/* Waits (bounded) until a token is free and takes it. */
int ratelimit_take(struct ratelimit *rl, struct merr *err) MUST_CHECK;

/* http_client_opts.before_attempt: ctx is a struct ratelimit *. */
int ratelimit_before_attempt(void *ctx, struct merr *err);

/* Pure: the bucket after `elapsed_s` more seconds and one take. tokens is updated; returns 0
 * when a token was taken, else the seconds to wait before one is free (> 0). */
double ratelimit_bucket_take(double *tokens, double elapsed_s, double per_sec, double burst);

#endif
