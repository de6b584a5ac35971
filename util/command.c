#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"

extern char **environ;

struct child {
    pid_t pid;
    int in, out, err; /* our ends of the pipes, -1 when closed */
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void exec_child(const struct cmd_spec *spec, int in, int out, int err)
{
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (dup2(in >= 0 ? in : null, 0) < 0 || dup2(out >= 0 ? out : null, 1) < 0 ||
        dup2(err >= 0 ? err : null, 2) < 0)
        _exit(126);
    char *const *envp = spec->envp != NULL ? spec->envp : environ;
    if (spec->path != NULL)
        execve(spec->path, spec->argv, envp);
    else
        execvpe(spec->argv[0], spec->argv, envp);
    _exit(127);
}

static int spawn(const struct cmd_spec *spec, struct child *c, struct merr *err)
{
    int p_in[2] = { -1, -1 }, p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 };
    if ((spec->in != NULL && pipe2(p_in, O_CLOEXEC) < 0) || pipe2(p_out, O_CLOEXEC) < 0 ||
        pipe2(p_err, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&p_in[i]);
            close_fd(&p_out[i]);
            close_fd(&p_err[i]);
        }
        return merr_set(err, MERR_IO, e, "cannot create a pipe for '%s'", spec->argv[0]);
    }
    pid_t pid = fork();
    if (pid == 0)
        exec_child(spec, p_in[0], p_out[1], p_err[1]);
    int e = errno;
    close_fd(&p_in[0]);
    close_fd(&p_out[1]);
    close_fd(&p_err[1]);
    *c = (struct child){ .pid = pid, .in = p_in[1], .out = p_out[0], .err = p_err[0] };
    if (pid < 0) {
        close_fd(&c->in);
        close_fd(&c->out);
        close_fd(&c->err);
        return merr_set(err, MERR_IO, e, "cannot start '%s'", spec->argv[0]);
    }
    setpgid(pid, pid); /* also here: whichever runs first, the group exists before a kill */
    if (c->in >= 0)
        fcntl(c->in, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Reads what fd has into b (up to max; beyond, read and dropped). */
static void drain(int *fd, struct abuf *b, size_t max, struct cmd_result *res)
{
    char chunk[16384];
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    size_t keep = b->len < max ? max - b->len : 0;
    if ((size_t)n > keep)
        res->truncated = true;
    struct merr ignored = MERR_INIT;
    if (keep > 0 && abuf_append(b, chunk, (size_t)n < keep ? (size_t)n : keep, &ignored) < 0)
        res->truncated = true;
}

/* Writes what the pipe takes; SIGPIPE is held back so a program that stops reading ends its
 * stdin with EPIPE instead of killing us. */
static void feed(struct child *c, const struct cmd_spec *spec, size_t *off)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(c->in, (const char *)spec->in + *off, spec->in_len - *off);
    int e = errno;
    if (n < 0 && e == EPIPE) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    if (n > 0)
        *off += (size_t)n;
    if ((n < 0 && errno != EINTR && errno != EAGAIN) || *off >= spec->in_len)
        close_fd(&c->in); /* all written, or the program stopped reading (EPIPE) */
}

/* Pumps stdin/stdout/stderr until both outputs close, the deadline passes or stop_on shows. */
static void pump(struct child *c, const struct cmd_spec *spec, struct cmd_result *res,
                 int64_t deadline)
{
    size_t off = 0;
    if (c->in >= 0 && spec->in_len == 0)
        close_fd(&c->in);
    while (c->out >= 0 || c->err >= 0) {
        struct pollfd p[3] = { { .fd = c->out, .events = POLLIN },
                               { .fd = c->err, .events = POLLIN },
                               { .fd = c->in, .events = POLLOUT } };
        int wait = spec->timeout_ms > 0 ? (int)clock_left_ms(deadline) : -1;
        if (spec->timeout_ms > 0 && wait == 0) {
            res->timed_out = true;
            return;
        }
        int r = poll(p, 3, wait);
        if (r < 0 && errno != EINTR)
            return;
        if (r <= 0)
            continue;
        if (p[0].revents != 0)
            drain(&c->out, &res->out, spec->out_max, res);
        if (p[1].revents != 0)
            drain(&c->err, &res->err, spec->err_max, res);
        if (p[2].revents != 0)
            feed(c, spec, &off);
        if (spec->stop_on != NULL && res->out.data != NULL &&
            strstr(res->out.data, spec->stop_on) != NULL) {
            res->stopped = true;
            return;
        }
    }
}

/* Reaps the child; past the deadline (or when told to) the process group is killed first. */
static void reap(struct child *c, const struct cmd_spec *spec, struct cmd_result *res,
                 int64_t deadline)
{
    int st = 0;
    for (;;) {
        if (res->timed_out || res->stopped)
            kill(-c->pid, SIGKILL);
        pid_t r = waitpid(c->pid, &st, res->timed_out || res->stopped ? 0 : WNOHANG);
        if (r == c->pid)
            break;
        if (r < 0 && errno != EINTR)
            return;
        if (r == 0 && spec->timeout_ms > 0 && clock_expired(deadline))
            res->timed_out = true;
        else if (r == 0)
            clock_sleep_ms(5);
    }
    if (res->timed_out || res->stopped)
        kill(-c->pid, SIGKILL); /* what the group left behind */
    res->signaled = WIFSIGNALED(st);
    res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cmd_run_real(void *opaque, const struct cmd_spec *spec, struct cmd_result *res,
                 struct merr *err)
{
    struct child c;
    if (spawn(spec, &c, err) < 0)
        return -1;
    int64_t deadline = clock_deadline_ms(spec->timeout_ms);
    pump(&c, spec, res, deadline);
    close_fd(&c.in);
    close_fd(&c.out);
    close_fd(&c.err);
    reap(&c, spec, res, deadline);
    return 0;
}

static int judge(const struct cmd_spec *spec, const struct cmd_result *res, struct merr *err)
{
    const char *name = spec->argv[0];
    if (res->stopped)
        return 0;
    if (res->timed_out)
        return merr_set(err, MERR_TIMEOUT, 0, "'%s' did not finish within %d ms", name,
                        spec->timeout_ms);
    if (res->status == 127 && !res->signaled)
        return merr_set(err, MERR_NOT_FOUND, 0, "cannot execute '%s'", name);
    if (res->status == 0)
        return 0;
    const char *text = res->err.data != NULL ? res->err.data : "";
    int line = (int)strcspn(text, "\n");
    if (res->signaled)
        return merr_set(err, MERR_REMOTE, 0, "'%s' was killed by signal %d%s%.*s", name,
                        res->status - 128, line > 0 ? ": " : "", line, text);
    return merr_set(err, MERR_REMOTE, 0, "'%s' exited with status %d%s%.*s", name, res->status,
                    line > 0 ? ": " : "", line, text);
}

int cmd_run(const struct cmd_runner *runner, const struct cmd_spec *spec, struct cmd_result *res,
            struct merr *err)
{
    memset(res, 0, sizeof *res);
    res->out.max = spec->out_max;
    res->err.max = spec->err_max;
    if (spec->argv == NULL || spec->argv[0] == NULL)
        return merr_set(err, MERR_INVALID, 0, "no program to run");
    int r = runner != NULL && runner->run != NULL
                ? runner->run(runner->opaque, spec, res, err)
                : cmd_run_real(NULL, spec, res, err);
    if (r < 0)
        return -1;
    struct merr ignored = MERR_INIT;
    if ((res->out.data == NULL && abuf_append(&res->out, "", 0, &ignored) < 0) ||
        (res->err.data == NULL && abuf_append(&res->err, "", 0, &ignored) < 0))
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot run '%s'", spec->argv[0]);
    return judge(spec, res, err);
}

void cmd_result_release(struct cmd_result *res)
{
    abuf_release(&res->out);
    abuf_release(&res->err);
}

static int record(void *opaque, const struct cmd_spec *spec, struct cmd_result *res,
                  struct merr *err)
{
    struct cmd_recorder *rec = opaque;
    for (char *const *a = spec->argv; *a != NULL; a++)
        if (abuf_printf(&rec->log, err, "%s%s", a == spec->argv ? "" : " ", *a) < 0)
            return -1;
    if (abuf_append(&rec->log, "\n", 1, err) < 0)
        return -1;
    res->status = rec->status;
    if (rec->out != NULL && spec->out_max > 0) {
        size_t n = strlen(rec->out);
        if (abuf_append(&res->out, rec->out, n < spec->out_max ? n : spec->out_max, err) < 0)
            return -1;
    }
    return 0;
}

struct cmd_runner cmd_recorder_runner(struct cmd_recorder *rec)
{
    return (struct cmd_runner){ .run = record, .opaque = rec };
}
