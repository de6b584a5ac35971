/* Monotonic time, deadlines and bounded polling. Everything here reads CLOCK_MONOTONIC: wall-clock
 * jumps never shorten or stretch a wait. */
#ifndef MACHINE_CLOCK_H
#define MACHINE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct merr;

int64_t clock_now_ms(void);
int64_t clock_now_ns(void);
/* Milliseconds since a clock_now_ms() reading. */
int64_t clock_since_ms(int64_t start_ms);

/* A deadline is a clock_now_ms() reading in the future. */
int64_t clock_deadline_ms(int64_t in_ms);
/* What is left of a deadline, never below 0. */
int64_t clock_left_ms(int64_t deadline);
bool clock_expired(int64_t deadline);

/* The absolute CLOCK_MONOTONIC time in_ms from now, for pthread_cond_timedwait on a condition
 * made with pthread_condattr_setclock(CLOCK_MONOTONIC). */
struct timespec clock_deadline_ts(int64_t in_ms);
/* An absolute CLOCK_MONOTONIC time as a timespec. */
struct timespec clock_ts_at_ns(int64_t ns);
bool clock_ts_passed(const struct timespec *t);

/* Sleeps ms (EINTR resumes the remaining time). */
void clock_sleep_ms(int64_t ms);

/* Bounded polling: probe is called until it says done, fails, or the budget runs out. Both the
 * time and the number of attempts are bounded; the pause starts at first_pause_ms and doubles
 * up to max_pause_ms (equal values: a fixed pause), never sleeping past the deadline. */
struct clock_poll {
    int64_t timeout_ms;   /* total budget */
    int64_t first_pause_ms;
    int64_t max_pause_ms;
    int max_attempts;     /* 0: 100000 */
};

/* Returns 1 when done, 0 to try again, < 0 to stop with err filled. attempt counts from 0. */
typedef int (*clock_probe_fn)(void *opaque, int attempt, struct merr *err);

/* 0 when the probe said done; -1 when it failed (its err), or when the budget ran out: then err
 * is the probe's last error if it left one, else MERR_TIMEOUT. */
int clock_poll_until(const struct clock_poll *p, clock_probe_fn probe, void *opaque,
                     struct merr *err) __attribute__((warn_unused_result));

#endif
