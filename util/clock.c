#include "clock.h"

#include <errno.h>

#include "error.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

int64_t clock_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * NS_PER_S + t.tv_nsec;
}

int64_t clock_now_ms(void)
{
    return clock_now_ns() / NS_PER_MS;
}

int64_t clock_since_ms(int64_t start_ms)
{
    return clock_now_ms() - start_ms;
}

int64_t clock_deadline_ms(int64_t in_ms)
{
    return clock_now_ms() + (in_ms > 0 ? in_ms : 0);
}

int64_t clock_left_ms(int64_t deadline)
{
    int64_t left = deadline - clock_now_ms();
    return left > 0 ? left : 0;
}

bool clock_expired(int64_t deadline)
{
    return clock_now_ms() >= deadline;
}

struct timespec clock_ts_at_ns(int64_t ns)
{
    return (struct timespec){ .tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S) };
}

struct timespec clock_deadline_ts(int64_t in_ms)
{
    return clock_ts_at_ns(clock_now_ns() + (in_ms > 0 ? in_ms : 0) * NS_PER_MS);
}

bool clock_ts_passed(const struct timespec *t)
{
    return clock_now_ns() >= (int64_t)t->tv_sec * NS_PER_S + t->tv_nsec;
}

void clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = clock_ts_at_ns(ms * NS_PER_MS), rem;
    while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
        ts = rem;
}

int clock_poll_until(const struct clock_poll *p, clock_probe_fn probe, void *opaque,
                     struct merr *err)
{
    int64_t deadline = clock_deadline_ms(p->timeout_ms);
    int max_attempts = p->max_attempts > 0 ? p->max_attempts : 100000;
    int64_t pause = p->first_pause_ms > 0 ? p->first_pause_ms : 1;
    for (int attempt = 0; attempt < max_attempts; attempt++) {
        merr_clear(err);
        int r = probe(opaque, attempt, err);
        if (r > 0)
            return 0;
        if (r < 0)
            return -1;
        int64_t left = clock_left_ms(deadline);
        if (left <= 0 || attempt + 1 == max_attempts)
            break;
        clock_sleep_ms(pause < left ? pause : left);
        if (pause < p->max_pause_ms)
            pause = pause * 2 < p->max_pause_ms ? pause * 2 : p->max_pause_ms;
    }
    if (err == NULL || err->code != MERR_OK)
        return -1;
    return merr_set(err, MERR_TIMEOUT, 0, "timed out after %lld ms", (long long)p->timeout_ms);
}
