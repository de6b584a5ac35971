/* Health checks: while a container with a Healthcheck runs, a thread runs its test as an exec
 * in the container every interval (StartInterval during the start period), records State.Health
 * and emits "health_status: X" events, as dockerd's health monitor does. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "manager-priv.h"

struct health_args {
    struct ctr_manager *m;
    struct ctr_entry *e;
    uint64_t seq; /* the run this thread watches */
};

static bool run_over_locked(const struct health_args *a)
{
    return a->e->removed || a->e->rt == NULL || a->e->exit_seq != a->seq;
}

/* Reads the probe's output (capped) until it closes both streams or the deadline passes. */
static bool read_output(struct ctr_exec_io *io, int64_t deadline, char *out, size_t *len)
{
    for (;;) {
        if (io->stdout_fd < 0 && io->stderr_fd < 0)
            return true;
        int64_t left = deadline - clock_now_ns();
        if (left <= 0)
            return false;
        struct pollfd p[2] = { { .fd = io->stdout_fd, .events = POLLIN },
                               { .fd = io->stderr_fd, .events = POLLIN } };
        int r = poll(p, 2, (int)(left / 1000000 + 1));
        if (r < 0 && errno != EINTR)
            return true;
        for (int i = 0; r > 0 && i < 2; i++) {
            int *fd = i == 0 ? &io->stdout_fd : &io->stderr_fd;
            if (p[i].revents == 0 || *fd < 0)
                continue;
            char buf[4096];
            ssize_t n = read(*fd, buf, sizeof buf);
            if (n <= 0 && !(n < 0 && errno == EINTR)) {
                close(*fd);
                *fd = -1;
                continue;
            }
            size_t room = CTR_HEALTH_OUTPUT_MAX - *len;
            size_t take = n > 0 ? ((size_t)n < room ? (size_t)n : room) : 0;
            memcpy(out + *len, buf, take);
            *len += take;
        }
    }
}

static void close_io(struct ctr_exec_io *io)
{
    int fds[] = { io->stdin_fd, io->stdout_fd, io->stderr_fd, io->pidfd };
    for (size_t i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* One probe: exit code (-1 on timeout, as dockerd) and output. */
static int probe(struct ctr_manager *m, const char *id, const struct ctr_health_config *cfg,
                 char *output)
{
    json_t *cmd = json_array();
    for (size_t i = 0; cfg->argv[i] != NULL; i++)
        json_array_append_new(cmd, json_string(cfg->argv[i]));
    json_t *body = json_pack("{s:o,s:b,s:b}", "Cmd", cmd, "AttachStdout", 1, "AttachStderr", 1);
    auto_free char *xid = NULL;
    struct merr err = MERR_INIT;
    int rc = ctr_exec_create(m, id, body, &xid, &err);
    json_decref(body);
    if (rc < 0) {
        snprintf(output, CTR_HEALTH_OUTPUT_MAX, "%s", err.msg);
        return -1;
    }
    struct ctr_exec_io io;
    int code = -1;
    if (ctr_exec_start(m, xid, &io, &err) < 0) {
        snprintf(output, CTR_HEALTH_OUTPUT_MAX, "%s", err.msg);
        json_t *j = ctr_exec_inspect(m, xid, &err);
        code = j != NULL && json_is_integer(json_object_get(j, "ExitCode"))
                   ? (int)json_integer_value(json_object_get(j, "ExitCode"))
                   : -1;
        json_decref(j);
        ctr_exec_forget(m, xid);
        return code;
    }
    size_t len = 0;
    bool done = read_output(&io, clock_now_ns() + cfg->timeout_ns, output, &len);
    output[len] = '\0';
    if (!done && io.pidfd >= 0)
        syscall(SYS_pidfd_send_signal, io.pidfd, SIGKILL, NULL, 0);
    if (ctr_exec_finish(m, xid, &err) == 0) {
        json_t *j = ctr_exec_inspect(m, xid, &err);
        if (j != NULL && json_is_integer(json_object_get(j, "ExitCode")))
            code = (int)json_integer_value(json_object_get(j, "ExitCode"));
        json_decref(j);
    }
    if (!done) {
        snprintf(output, CTR_HEALTH_OUTPUT_MAX, "Health check exceeded timeout (%llds)",
                 (long long)(cfg->timeout_ns / 1000000000LL));
        code = -1;
    }
    close_io(&io);
    ctr_exec_forget(m, xid);
    return code;
}

static void *health_thread(void *opaque)
{
    struct health_args *a = opaque;
    struct ctr_manager *m = a->m;
    struct ctr_entry *e = a->e;
    pthread_mutex_lock(&m->lock);
    const struct ctr_health_config *cfg = &e->c->plan.health;
    int64_t started = clock_now_ns();
    char id[CTR_ID_LEN + 1];
    memcpy(id, e->c->id, sizeof id);
    auto_free char *output = xcalloc(CTR_HEALTH_OUTPUT_MAX + 1, 1);
    while (!run_over_locked(a)) {
        bool in_start = clock_now_ns() - started < cfg->start_period_ns;
        int64_t wait = in_start && e->c->state.health.status == CTR_HEALTH_STARTING
                           ? cfg->start_interval_ns
                           : cfg->interval_ns;
        struct timespec until = clock_ts_at_ns(clock_now_ns() + wait);
        while (!run_over_locked(a) &&
               pthread_cond_timedwait(&m->changed, &m->lock, &until) != ETIMEDOUT)
            ;
        if (run_over_locked(a))
            break;
        pthread_mutex_unlock(&m->lock);
        auto_free char *start = fmt_rfc3339_nano(mgr_now_ns());
        int code = probe(m, id, cfg, output);
        auto_free char *end = fmt_rfc3339_nano(mgr_now_ns());
        pthread_mutex_lock(&m->lock);
        if (run_over_locked(a))
            break;
        in_start = clock_now_ns() - started < cfg->start_period_ns;
        struct ctr_health_state *h = &e->c->state.health;
        if (ctr_health_apply(h, cfg, in_start, code, start, end, output)) {
            auto_free char *action = xasprintf("health_status: %s",
                                               ctr_health_status_name(h->status));
            mgr_emit(m, e->c, action, NULL);
        }
        pthread_cond_broadcast(&m->changed);
    }
    mgr_entry_unref_locked(m, e);
    m->health_threads--;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    free(a);
    return NULL;
}

void health_start_locked(struct ctr_manager *m, struct ctr_entry *e)
{
    if (e->c->plan.health.kind == CTR_HEALTH_NONE || e->rt == NULL)
        return;
    e->c->state.health.status = CTR_HEALTH_STARTING;
    e->c->state.health.failing_streak = 0;
    struct health_args *a = xcalloc(1, sizeof *a);
    a->m = m;
    a->e = e;
    a->seq = e->exit_seq;
    e->refs++;
    m->health_threads++;
    pthread_t t;
    if (pthread_create(&t, NULL, health_thread, a) != 0) {
        mlog_warn(m->log, "cannot start the health check of %s", e->c->id);
        e->refs--;
        m->health_threads--;
        free(a);
        return;
    }
    pthread_detach(t);
}
