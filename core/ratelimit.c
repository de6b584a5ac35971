/* A token bucket shared across processes through a flock'd state file (ratelimit.h). */
#include "ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "store.h"

#define RATELIMIT_DEFAULT_WAIT_MS 60000
#define RATELIMIT_MAX_PAUSE_MS 2000

struct ratelimit {
    char *path;
    double per_sec;
    double burst;
    long max_wait_ms;
};

double ratelimit_bucket_take(double *tokens, double elapsed_s, double per_sec, double burst)
{
    if (elapsed_s < 0)
        elapsed_s = 0;
    double t = *tokens + elapsed_s * per_sec;
    if (t > burst)
        t = burst;
    if (t >= 1.0) {
        *tokens = t - 1.0;
        return 0;
    }
    *tokens = t;
    return (1.0 - t) / per_sec;
}

struct ratelimit *ratelimit_open(const struct store *s, const char *scope, double per_sec,
                                 double burst, long max_wait_ms, struct merr *err)
{
    if (!(per_sec > 0) || burst < 1) {
        merr_set(err, MERR_INVALID, 0, "rate limit needs a positive rate and a burst of at least 1");
        return NULL;
    }
    auto_free char *dir = path_join(s->root, "locks");
    if (fs_mkdir_p(dir, 0700, err) < 0)
        return NULL;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)scope, strlen(scope), md);
    char hex[2 * 16 + 1];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (rl == NULL) {
        merr_set(err, MERR_NOMEM, ENOMEM, "out of memory");
        return NULL;
    }
    rl->path = xasprintf("%s/rate-%s", dir, hex);
    rl->per_sec = per_sec;
    rl->burst = burst;
    rl->max_wait_ms = max_wait_ms > 0 ? max_wait_ms : RATELIMIT_DEFAULT_WAIT_MS;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    free(rl->path);
    free(rl);
}

/* One look at the shared bucket under its lock: 0 with a token taken, else the ms to wait. */
static long try_take(struct ratelimit *rl, struct merr *err)
{
    auto_close int fd = open(rl->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open the rate limit file '%s'", rl->path);
    if (flock(fd, LOCK_EX) < 0)
        return merr_set(err, MERR_IO, errno, "cannot lock '%s'", rl->path);
    char buf[128] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    double tokens = rl->burst;
    long long last = 0;
    long long now = clock_now_ms();
    /* A missing, garbled or pre-reboot state starts with a full bucket. */
    if (n <= 0 || sscanf(buf, "%lf %lld", &tokens, &last) != 2 || last > now || tokens < 0)
        tokens = rl->burst, last = now;
    double wait_s = ratelimit_bucket_take(&tokens, (double)(now - last) / 1000.0, rl->per_sec,
                                          rl->burst);
    int len = snprintf(buf, sizeof buf, "%.6f %lld\n", tokens, now);
    if (pwrite(fd, buf, (size_t)len, 0) != len || ftruncate(fd, len) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", rl->path);
    long ms = (long)(wait_s * 1000.0 + 0.999);
    return wait_s > 0 && ms < 1 ? 1 : ms;
}

int ratelimit_take(struct ratelimit *rl, struct merr *err)
{
    long long deadline = clock_now_ms() + rl->max_wait_ms;
    for (unsigned round = 0; round < 100000; round++) {
        long wait = try_take(rl, err);
        if (wait <= 0)
            return (int)wait;
        long long left = deadline - clock_now_ms();
        if (left <= 0)
            break;
        if (wait > RATELIMIT_MAX_PAUSE_MS)
            wait = RATELIMIT_MAX_PAUSE_MS;
        clock_sleep_ms(wait < left ? wait : left);
    }
    return merr_set(err, MERR_TIMEOUT, 0, "the API rate limit left no request free within %ld s",
                    rl->max_wait_ms / 1000);
}

int ratelimit_before_attempt(void *ctx, struct merr *err)
{
    return ratelimit_take(ctx, err);
}
