/* Interactive sessions: a PTY with the local terminal's type and size, raw mode while it runs. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "ssh-priv.h"

/* Moves bytes until the channel closes; SIGWINCH arrives on a signalfd (no handler, no global). */
static int relay(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, int winch_fd, struct merr *err)
{
    libssh2_session_set_blocking(c->session, 0);
    char buf[16384];
    bool in_open = true;
    int rc = 0;
    for (;;) {
        bool progress = false;
        for (int stream = 0; stream < 2; stream++) {
            ssize_t n;
            while ((n = libssh2_channel_read_ex(ch, stream, buf, sizeof buf)) > 0) {
                progress = true;
                if (fs_write_all(stream == 0 ? STDOUT_FILENO : STDERR_FILENO, buf, (size_t)n) < 0) {
                    rc = merr_set(err, MERR_IO, errno, "cannot write to the terminal");
                    goto out;
                }
            }
            if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
                rc = ssh_fail(c, err, "the session broke");
                goto out;
            }
        }
        if (libssh2_channel_eof(ch))
            break;
        struct pollfd p[3] = {
            { .fd = c->fd, .events = POLLIN },
            { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
            { .fd = winch_fd, .events = POLLIN },
        };
        if (libssh2_session_block_directions(c->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            p[0].events |= POLLOUT;
        if (!progress && poll(p, 3, 15000) == 0) {
            int ignored;
            libssh2_keepalive_send(c->session, &ignored);
            continue;
        }
        if (p[2].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(winch_fd, &si, sizeof si) > 0) {
                struct winsize ws;
                if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                    while (libssh2_channel_request_pty_size(ch, ws.ws_col, ws.ws_row) ==
                           LIBSSH2_ERROR_EAGAIN)
                        ssh_wait_socket(c, 1000, err);
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
            if (r <= 0) {
                in_open = false;
                while (libssh2_channel_send_eof(ch) == LIBSSH2_ERROR_EAGAIN)
                    ssh_wait_socket(c, 1000, err);
            } else {
                const char *q = buf;
                while (r > 0) {
                    ssize_t w = libssh2_channel_write(ch, q, (size_t)r);
                    if (w == LIBSSH2_ERROR_EAGAIN) {
                        if (ssh_wait_socket(c, c->timeout_ms, err) < 0) {
                            rc = -1;
                            goto out;
                        }
                        continue;
                    }
                    if (w < 0) {
                        rc = ssh_fail(c, err, "the session broke");
                        goto out;
                    }
                    q += w;
                    r -= w;
                }
            }
        }
    }
out:
    libssh2_session_set_blocking(c->session, 1);
    if (rc == 0) {
        libssh2_channel_close(ch);
        libssh2_channel_wait_closed(ch);
    }
    return rc;
}

int ssh_interactive(struct ssh_conn *c, const char *cmd, int *exit_status, struct merr *err)
{
    if (!isatty(STDIN_FILENO)) {
        /* No terminal: no PTY, plain streams (what `ssh host cmd < file` does). */
        return ssh_exec_stream(c, cmd != NULL ? cmd : "exec \"${SHELL:-/bin/sh}\" -l", STDIN_FILENO,
                               STDOUT_FILENO, STDERR_FILENO, exit_status, err);
    }
    struct winsize ws = { .ws_row = 24, .ws_col = 80 };
    ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
    const char *term = getenv("TERM");
    LIBSSH2_CHANNEL *ch = ssh_open_exec(c, cmd, term != NULL && term[0] != '\0' ? term : "xterm",
                                        ws.ws_col, ws.ws_row, err);
    if (ch == NULL)
        return -1;
    sigset_t winch, old;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, &old);
    int wfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
    struct termios saved, raw;
    bool have_termios = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (have_termios) {
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSADRAIN, &raw);
    }
    int rc = relay(c, ch, wfd, err);
    if (have_termios)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
    if (wfd >= 0)
        close(wfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        *exit_status = ssh_channel_status(ch);
    libssh2_channel_free(ch);
    return rc;
}
