/* Interactive sessions on the caller's terminal: a PTY sized like the local
 * terminal, raw mode while the session runs, SIGWINCH forwarded as a window
 * change. Without a terminal on stdin this is a plain streamed command. */
#include "ssh-priv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "error.h"

#define DEFAULT_TERM "xterm"

/* Everything changed in the process for the session, undone in one place. */
struct tty_session {
    int tty_fd;
    struct termios saved;
    bool raw;
    sigset_t saved_mask;
    bool mask_changed;
    int winch_fd;
};

static void tty_session_restore(struct tty_session *t)
{
    if (t->raw)
        (void)tcsetattr(t->tty_fd, TCSADRAIN, &t->saved);
    t->raw = false;
    if (t->winch_fd >= 0)
        close(t->winch_fd);
    t->winch_fd = -1;
    if (t->mask_changed)
        (void)pthread_sigmask(SIG_SETMASK, &t->saved_mask, NULL);
    t->mask_changed = false;
}

/* SIGWINCH arrives on a signalfd, so no handler or global state is needed. */
static int tty_session_watch_winch(struct tty_session *t, struct merr *err)
{
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    int r = pthread_sigmask(SIG_BLOCK, &winch, &t->saved_mask);
    if (r != 0)
        return merr_set(err, MERR_IO, r, "cannot block SIGWINCH");
    t->mask_changed = true;
    t->winch_fd = signalfd(-1, &winch, SFD_NONBLOCK | SFD_CLOEXEC);
    if (t->winch_fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create signalfd");
    return 0;
}

static int tty_session_make_raw(struct tty_session *t, struct merr *err)
{
    struct termios raw = t->saved;
    cfmakeraw(&raw);
    if (tcsetattr(t->tty_fd, TCSADRAIN, &raw) < 0)
        return merr_set(err, MERR_IO, errno, "cannot put the terminal in raw mode");
    t->raw = true;
    return 0;
}

static int request_pty(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, int tty_fd, struct merr *err)
{
    const char *term = getenv("TERM");
    if (term == NULL || term[0] == '\0')
        term = DEFAULT_TERM;
    struct winsize ws = { .ws_row = 24, .ws_col = 80 };
    if (ioctl(tty_fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0) {
        ws.ws_row = 24;
        ws.ws_col = 80;
    }
    int rc = libssh2_channel_request_pty_ex(ch, term, (unsigned)strlen(term), NULL, 0, ws.ws_col,
                                            ws.ws_row, ws.ws_xpixel, ws.ws_ypixel);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot get a terminal on '%s'", c->host);
    return 0;
}

static int run_with_pty(struct ssh_conn *c, const char *cmd, int *exit_status, struct merr *err)
{
    struct tty_session t = { .tty_fd = STDIN_FILENO, .winch_fd = -1 };
    if (tcgetattr(t.tty_fd, &t.saved) < 0)
        return merr_set(err, MERR_IO, errno, "cannot read terminal settings");

    LIBSSH2_CHANNEL *ch = NULL;
    if (ssh_channel_open(c, &ch, err) < 0)
        return -1;
    int ret = -1;
    if (request_pty(c, ch, t.tty_fd, err) < 0 || ssh_channel_start(c, ch, cmd, err) < 0 ||
        tty_session_watch_winch(&t, err) < 0 || tty_session_make_raw(&t, err) < 0)
        goto out;
    struct ssh_pump p = {
        .in_fd = STDIN_FILENO,
        .out = { .fd = STDOUT_FILENO },
        .err = { .fd = STDERR_FILENO },
        .winch_fd = t.winch_fd,
        .tty_fd = t.tty_fd,
    };
    if (ssh_pump_run(c, ch, &p, err) < 0)
        goto out;
    tty_session_restore(&t);
    ret = ssh_channel_finish(c, ch, exit_status, err);
    ch = NULL;
out:
    tty_session_restore(&t);
    if (ch != NULL)
        ssh_channel_abort(c, ch);
    return ret;
}

int ssh_interactive(struct ssh_conn *c, const char *cmd, int *exit_status, struct merr *err)
{
    if (c == NULL)
        return merr_set(err, MERR_INVALID, 0, "invalid ssh_interactive arguments");
    if (!isatty(STDIN_FILENO))
        return ssh_run_stream(c, cmd, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, exit_status,
                              err);
    return run_with_pty(c, cmd, exit_status, err);
}
