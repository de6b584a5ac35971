/* Running commands: session channels and the data pump that moves stdin,
 * stdout and stderr between a channel and local memory or descriptors.
 *
 * The pump switches the session to non-blocking mode and drives it from a poll
 * loop: a command may legitimately run longer than the per-operation timeout,
 * so instead of a deadline the server is probed with keepalives and declared
 * dead when it stays silent for the timeout. */
#include "ssh-priv.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"

#define PUMP_CHUNK 32768

/* ---- channels --------------------------------------------------------------- */

int ssh_channel_open(struct ssh_conn *c, LIBSSH2_CHANNEL **out, struct merr *err)
{
    libssh2_session_set_blocking(c->session, 1);
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->session);
    if (ch == NULL)
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "cannot open a channel to '%s'", c->host);
    *out = ch;
    return 0;
}

int ssh_channel_start(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, const char *cmd, struct merr *err)
{
    int rc = cmd != NULL ? libssh2_channel_exec(ch, cmd) : libssh2_channel_shell(ch);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot start %s on '%s'", cmd != NULL ? "command" : "shell",
                        c->host);
    return 0;
}

void ssh_channel_abort(struct ssh_conn *c, LIBSSH2_CHANNEL *ch)
{
    if (ch == NULL)
        return;
    libssh2_session_set_blocking(c->session, 1);
    libssh2_channel_free(ch);
}

static int signal_number(const char *name, size_t len)
{
    static const struct {
        const char *name;
        int num;
    } signals[] = {
        { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },
        { "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS },   { "FPE", SIGFPE },
        { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
        { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "XCPU", SIGXCPU },
        { "XFSZ", SIGXFSZ }, { "SYS", SIGSYS },
    };
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (strlen(signals[i].name) == len && memcmp(signals[i].name, name, len) == 0)
            return signals[i].num;
    return 127; /* unknown name: still report "killed by a signal" (255) */
}

int ssh_channel_finish(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, int *exit_status,
                       struct merr *err)
{
    libssh2_session_set_blocking(c->session, 1);
    int rc = libssh2_channel_close(ch);
    if (rc == 0)
        rc = libssh2_channel_wait_closed(ch);
    if (rc < 0) {
        ssh_fail(c, rc, err, "cannot close channel to '%s'", c->host);
        libssh2_channel_free(ch);
        return -1;
    }
    char *signame = NULL;
    size_t signame_len = 0;
    int status = libssh2_channel_get_exit_status(ch);
    if (libssh2_channel_get_exit_signal(ch, &signame, &signame_len, NULL, NULL, NULL, NULL) == 0 &&
        signame != NULL) {
        status = 128 + signal_number(signame, signame_len);
        libssh2_free(c->session, signame);
    }
    libssh2_channel_free(ch);
    if (exit_status != NULL)
        *exit_status = status;
    return 0;
}

/* ---- the data pump ------------------------------------------------------------ */

static int write_fd_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            (void)poll(&pfd, 1, 1000);
            continue;
        }
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sink_put(struct ssh_sink *s, const char *data, size_t n, const char *what,
                    struct merr *err)
{
    if (s->capture) {
        if (s->len + n > SSH_EXEC_CAPTURE_MAX)
            return merr_set(err, MERR_PROTOCOL, 0, "remote command %s exceeds %u bytes", what,
                            SSH_EXEC_CAPTURE_MAX);
        if (s->len + n + 1 > s->alloc) {
            size_t alloc = s->alloc ? s->alloc : 4096;
            while (alloc < s->len + n + 1)
                alloc *= 2;
            char *p = realloc(s->data, alloc);
            if (p == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot store remote command %s", what);
            s->data = p;
            s->alloc = alloc;
        }
        memcpy(s->data + s->len, data, n);
        s->len += n;
        s->data[s->len] = '\0';
        return 0;
    }
    if (s->fd >= 0 && write_fd_all(s->fd, data, n) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write remote command %s", what);
    return 0;
}

/* Drains one stream until libssh2 would block. Returns the bytes moved (and
 * sets *ended when libssh2 reports the end of the stream), or -1 on error. */
static ssize_t drain_stream(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, int stream,
                            struct ssh_sink *sink, char *buf, bool *ended, struct merr *err)
{
    ssize_t total = 0;
    *ended = false;
    for (int i = 0; i < 64; i++) { /* bounded so that stdin and the other stream get turns */
        ssize_t r = libssh2_channel_read_ex(ch, stream, buf, PUMP_CHUNK);
        if (r == LIBSSH2_ERROR_EAGAIN)
            return total;
        if (r < 0)
            return ssh_fail(c, (int)r, err, "cannot read from '%s'", c->host);
        if (r == 0) {
            *ended = true;
            return total;
        }
        if (sink_put(sink, buf, (size_t)r, stream ? "stderr" : "stdout", err) < 0)
            return -1;
        total += r;
    }
    return total;
}

struct pump_state {
    size_t in_off;           /* progress through p->in_data */
    char inbuf[PUMP_CHUNK];  /* pending chunk read from p->in_fd */
    size_t inbuf_off, inbuf_len;
    bool in_readable;        /* poll said in_fd has data or EOF */
    bool in_done, eof_sent, resize_pending;
};

/* Sends what stdin has ready; EOF once it is exhausted. */
static int pump_stdin(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, struct ssh_pump *p,
                      struct pump_state *st, bool *progress, struct merr *err)
{
    if (!st->in_done && p->in_fd >= 0 && st->inbuf_off == st->inbuf_len && st->in_readable) {
        ssize_t r = read(p->in_fd, st->inbuf, sizeof st->inbuf);
        st->in_readable = false;
        if (r < 0 && errno != EINTR && errno != EAGAIN)
            return merr_set(err, MERR_IO, errno, "cannot read local input");
        if (r == 0)
            st->in_done = true;
        if (r > 0) {
            st->inbuf_off = 0;
            st->inbuf_len = (size_t)r;
        }
    }
    const char *data = NULL;
    size_t avail = 0;
    if (p->in_fd >= 0) {
        data = st->inbuf + st->inbuf_off;
        avail = st->inbuf_len - st->inbuf_off;
    } else if (!st->in_done) {
        data = (const char *)p->in_data + st->in_off;
        avail = p->in_len - st->in_off;
        if (avail == 0)
            st->in_done = true;
    }
    if (avail > 0) {
        ssize_t w = libssh2_channel_write(ch, data, avail < PUMP_CHUNK ? avail : PUMP_CHUNK);
        if (w > 0) {
            *progress = true;
            if (p->in_fd >= 0)
                st->inbuf_off += (size_t)w;
            else if ((st->in_off += (size_t)w) == p->in_len)
                st->in_done = true;
        } else if (w != LIBSSH2_ERROR_EAGAIN) {
            if (!libssh2_channel_eof(ch) && w != LIBSSH2_ERROR_CHANNEL_CLOSED &&
                w != LIBSSH2_ERROR_CHANNEL_EOF_SENT)
                return ssh_fail(c, (int)w, err, "cannot send input to '%s'", c->host);
            /* The command went away without reading all its input: drop the rest. */
            st->in_done = true;
            st->inbuf_off = st->inbuf_len = 0;
            st->eof_sent = true;
        }
    }
    if (st->in_done && !st->eof_sent && (p->in_fd < 0 || st->inbuf_off == st->inbuf_len)) {
        int r = libssh2_channel_send_eof(ch);
        if (r == 0)
            st->eof_sent = true;
        else if (r != LIBSSH2_ERROR_EAGAIN)
            st->eof_sent = true; /* channel already closing: nothing to signal */
    }
    return 0;
}

static void pump_resize(LIBSSH2_CHANNEL *ch, struct ssh_pump *p, struct pump_state *st)
{
    struct signalfd_siginfo si;
    if (p->winch_fd >= 0)
        while (read(p->winch_fd, &si, sizeof si) == (ssize_t)sizeof si)
            st->resize_pending = true;
    if (!st->resize_pending)
        return;
    struct winsize ws;
    if (ioctl(p->tty_fd, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0 || ws.ws_row == 0) {
        st->resize_pending = false;
        return;
    }
    int r = libssh2_channel_request_pty_size(ch, ws.ws_col, ws.ws_row);
    if (r != LIBSSH2_ERROR_EAGAIN)
        st->resize_pending = false; /* a refused resize is not worth ending the session */
}

static int pump_wait(struct ssh_conn *c, struct ssh_pump *p, struct pump_state *st,
                     int64_t silent_limit_ms, struct merr *err)
{
    struct pollfd pfd[3];
    int n = 0, in_idx = -1;
    int dir = libssh2_session_block_directions(c->session);
    pfd[n++] = (struct pollfd){ .fd = c->sock, .events = (short)(POLLIN |
               ((dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) ? POLLOUT : 0)) };
    if (p->in_fd >= 0 && !st->in_done && st->inbuf_off == st->inbuf_len) {
        in_idx = n;
        pfd[n++] = (struct pollfd){ .fd = p->in_fd, .events = POLLIN };
    }
    if (p->winch_fd >= 0)
        pfd[n++] = (struct pollfd){ .fd = p->winch_fd, .events = POLLIN };

    /* Only between packets: libssh2 cannot interleave a keepalive with a
     * partially sent packet. */
    int keepalive_next = 0;
    if (!(dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
        int kr = libssh2_keepalive_send(c->session, &keepalive_next);
        if (kr < 0 && kr != LIBSSH2_ERROR_EAGAIN)
            return ssh_fail(c, kr, err, "cannot send keepalive to '%s'", c->host);
    }
    int64_t silent_left = c->last_rx_ms + silent_limit_ms - clock_now_ms();
    if (silent_left <= 0)
        return merr_set(err, MERR_TIMEOUT, 0, "no response from '%s' for %lld ms", c->host,
                        (long long)silent_limit_ms);
    int64_t wait = keepalive_next > 0 ? (int64_t)keepalive_next * 1000 : 1000;
    if (wait > silent_left)
        wait = silent_left;
    int r = poll(pfd, (nfds_t)n, (int)wait);
    if (r < 0 && errno != EINTR)
        return merr_set(err, MERR_IO, errno, "cannot poll");
    if (r > 0 && in_idx >= 0 && (pfd[in_idx].revents & (POLLIN | POLLHUP | POLLERR)))
        st->in_readable = true;
    return 0;
}

static int pump_loop(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, struct ssh_pump *p,
                     struct pump_state *st, char *buf, struct merr *err)
{
    int ka = c->timeout_ms / 3000 < 2 ? 2 : c->timeout_ms / 3000;
    int64_t silent_limit = c->timeout_ms > 2 * ka * 1000 + 1000 ? c->timeout_ms
                                                                 : 2 * ka * 1000 + 1000;
    c->last_rx_ms = clock_now_ms();
    st->in_readable = false; /* only poll() may say so: a read must never block */
    st->in_done = p->in_fd < 0 && p->in_len == 0;
    int idle_spins = 0;
    for (;;) {
        bool progress = false, out_ended = false, err_ended = false;
        if (pump_stdin(c, ch, p, st, &progress, err) < 0)
            return -1;
        ssize_t r = drain_stream(c, ch, 0, &p->out, buf, &out_ended, err);
        if (r < 0)
            return -1;
        progress |= r > 0;
        r = drain_stream(c, ch, SSH_EXTENDED_DATA_STDERR, &p->err, buf, &err_ended, err);
        if (r < 0)
            return -1;
        progress |= r > 0;
        if (out_ended && err_ended) {
            if (libssh2_channel_eof(ch))
                return 0;
            if (c->rx_closed)
                return merr_set(err, MERR_UNREACHABLE, 0, "connection to '%s' lost", c->host);
            return 0; /* closed without EOF */
        }
        pump_resize(ch, p, st);
        if (progress) {
            idle_spins = 0;
            continue;
        }
        /* Reading one stream can queue packets of the other inside libssh2,
         * where poll() cannot see them. (libssh2_poll_channel_read is no help:
         * it fails once a short packet such as a keepalive reply is queued.) */
        unsigned long queued = 0;
        libssh2_channel_window_read_ex(ch, &queued, NULL);
        if (queued > 0 && ++idle_spins < 3)
            continue;
        idle_spins = 0;
        if (c->rx_closed)
            return merr_set(err, MERR_UNREACHABLE, 0, "connection to '%s' lost", c->host);
        if (pump_wait(c, p, st, silent_limit, err) < 0)
            return -1;
    }
}

int ssh_pump_run(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, struct ssh_pump *p, struct merr *err)
{
    auto_free struct pump_state *st = calloc(1, sizeof *st);
    auto_free char *buf = malloc(PUMP_CHUNK);
    if (st == NULL || buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot run remote command");
    libssh2_session_set_blocking(c->session, 0);
    int r = pump_loop(c, ch, p, st, buf, err);
    libssh2_session_set_blocking(c->session, 1);
    return r;
}

/* ---- exec ------------------------------------------------------------------------ */

static int run_pumped(struct ssh_conn *c, const char *cmd, struct ssh_pump *p, int *exit_status,
                      struct merr *err)
{
    LIBSSH2_CHANNEL *ch = NULL;
    if (ssh_channel_open(c, &ch, err) < 0)
        return -1;
    if (ssh_channel_start(c, ch, cmd, err) < 0 || ssh_pump_run(c, ch, p, err) < 0) {
        ssh_channel_abort(c, ch);
        return -1;
    }
    return ssh_channel_finish(c, ch, exit_status, err);
}

int ssh_exec(struct ssh_conn *c, const char *cmd, const void *stdin_data, size_t stdin_len,
             char **out, size_t *out_len, char **errout, size_t *errout_len, int *exit_status,
             struct merr *err)
{
    if (c == NULL || cmd == NULL || (stdin_data == NULL && stdin_len > 0))
        return merr_set(err, MERR_INVALID, 0, "invalid ssh_exec arguments");
    struct ssh_pump p = {
        .in_data = stdin_data, .in_len = stdin_len, .in_fd = -1,
        .out = { .fd = -1, .capture = out != NULL },
        .err = { .fd = -1, .capture = errout != NULL },
        .winch_fd = -1, .tty_fd = -1,
    };
    int status = -1;
    int r = run_pumped(c, cmd, &p, &status, err);
    if (r < 0) {
        free(p.out.data);
        free(p.err.data);
        return -1;
    }
    if (out != NULL) {
        *out = p.out.data != NULL ? p.out.data : strdup("");
        if (out_len != NULL)
            *out_len = p.out.len;
    }
    if (errout != NULL) {
        *errout = p.err.data != NULL ? p.err.data : strdup("");
        if (errout_len != NULL)
            *errout_len = p.err.len;
    }
    if ((out != NULL && *out == NULL) || (errout != NULL && *errout == NULL)) {
        if (out != NULL) {
            free(*out);
            *out = NULL;
        }
        if (errout != NULL) {
            free(*errout);
            *errout = NULL;
        }
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot store remote command output");
    }
    if (exit_status != NULL)
        *exit_status = status;
    return 0;
}

int ssh_run_stream(struct ssh_conn *c, const char *cmd, int in_fd, int out_fd, int err_fd,
                   int *exit_status, struct merr *err)
{
    struct ssh_pump p = {
        .in_fd = in_fd,
        .out = { .fd = out_fd },
        .err = { .fd = err_fd },
        .winch_fd = -1, .tty_fd = -1,
    };
    return run_pumped(c, cmd, &p, exit_status, err);
}

int ssh_exec_stream(struct ssh_conn *c, const char *cmd, int in_fd, int out_fd, int err_fd,
                    int *exit_status, struct merr *err)
{
    if (c == NULL || cmd == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid ssh_exec_stream arguments");
    return ssh_run_stream(c, cmd, in_fd, out_fd, err_fd, exit_status, err);
}
