/* machine-monitor: the parent of one container's first process, so the container outlives the
 * engine (docs/engine-lifecycle.md, "The monitor").
 *
 * The engine forks a copy of itself that clones the container and then execs this program, so
 * the container is our child from its first instruction on. We are its subreaper, own its
 * output (written to its json-file log here, so logs keep flowing while the engine is down),
 * hand the output on to the engine over <dir>/monitor.sock, and write its exit status and
 * FinishedAt atomically to <dir>/monitor.state. Small on purpose: no allocation in the loop,
 * no library beyond libc.
 *
 * fds from the engine: 3 the output (the pty master with --tty, else stdout's read end),
 * 4 stderr's read end (not with --tty), 5 a hold on stdin's write end (--stdin), 6 the
 * listening socket, 7-9 held for the network (MON_FD_HOLD: kept open, never read); everything
 * else is closed before the exec. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "privdrop.h"
#include "monproto.h"

#define FD_OUT 3
#define FD_ERR 4
#define FD_STDIN 5
#define FD_LISTEN 6
#define CHUNK 32768
#define DRAIN_MS 2000
#define DRAIN_IDLE_MS 200
#define CLIENT_SEND_TIMEOUT_S 2

struct monitor {
    const char *dir;
    pid_t pid;
    bool tty;
    int out, err, stdin_hold, listen, client, sigfd;
    /* json-file log; -1 for the none driver */
    const char *log_path;
    int log;
    int64_t log_size, max_size;
    int max_file;
    bool exited;
    int exit_code;
    int64_t exited_at_ms, finished_ns;
    char boot_id[40];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* tmp file, fsync, rename, fsync of the directory: a reader sees the old or the new state. */
static int write_atomic(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text, len) < 0 || fsync(fd) < 0 ? -1 : 0;
    if (close(fd) < 0 || rc < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static void read_boot_id(struct monitor *m)
{
    char buf[64];
    int fd = open(MON_BOOT_ID_FILE, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0 || mon_boot_id_parse(buf, (size_t)n, m->boot_id) < 0)
        m->boot_id[0] = '\0';
}

static void write_state(struct monitor *m)
{
    struct mon_state st = { .monitor_pid = getpid(), .pid = m->pid,
                            .status = m->exited ? MON_EXITED : MON_RUNNING,
                            .exit_code = m->exit_code, .finished_ns = m->finished_ns };
    memcpy(st.boot_id, m->boot_id, sizeof st.boot_id);
    char text[256];
    int n = mon_state_format(&st, text, sizeof text);
    if (n < 0 || write_atomic(m->dir, MON_STATE_FILE, text, (size_t)n) < 0)
        fprintf(stderr, "machine-monitor: cannot write the state of %d: %s\n", (int)m->pid,
                strerror(errno));
}

/* docker's names: <path>.1 the newest rotated file ... .<max_file-1> the oldest. */
static void log_rotate(struct monitor *m)
{
    char from[4200], to[4200];
    close(m->log);
    for (int i = m->max_file - 1; i >= 2; i--) {
        snprintf(from, sizeof from, "%s.%d", m->log_path, i - 1);
        snprintf(to, sizeof to, "%s.%d", m->log_path, i);
        rename(from, to);
    }
    if (m->max_file >= 2) {
        snprintf(to, sizeof to, "%s.1", m->log_path);
        rename(m->log_path, to);
    } else if (truncate(m->log_path, 0) < 0 && errno != ENOENT) {
        /* the next write appends to the old file: better than losing the output */
    }
    m->log = open(m->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    m->log_size = 0;
}

static void log_record(struct monitor *m, int stream, const char *data, size_t len, int64_t ns)
{
    static char line[MON_LOGLINE_MAX(CHUNK)];
    long n = mon_logline_format(stream, data, len, ns, line, sizeof line);
    if (n < 0)
        return;
    if (m->max_size > 0 && m->log_size > 0 && m->log_size + n > m->max_size)
        log_rotate(m);
    if (m->log >= 0 && write_all(m->log, line, (size_t)n) == 0)
        m->log_size += n;
}

static void drop_client(struct monitor *m)
{
    if (m->client >= 0)
        close(m->client);
    m->client = -1;
}

static void send_frame(struct monitor *m, enum mon_frame_type type, int stream, const void *data,
                       size_t len, int64_t ns)
{
    if (m->client < 0)
        return;
    unsigned char hdr[MON_FRAME_HDR];
    mon_frame_pack(&(struct mon_frame){ .type = type, .stream = stream, .len = (uint32_t)len,
                                        .ns = ns },
                   hdr);
    if (write_all(m->client, hdr, sizeof hdr) < 0 ||
        (len > 0 && write_all(m->client, data, len) < 0))
        drop_client(m); /* the engine reconnects and reads the rest from the log */
}

/* One line per record, as dockerd's json-file (logs --tail counts lines); the engine gets the
 * chunk with the time its records got. */
static void on_output(struct monitor *m, int *fd, int stream)
{
    static char buf[CHUNK];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) { /* EOF, or EIO from a pty whose slave side is gone */
        close(*fd);
        *fd = -1;
        return;
    }
    int64_t ns = now_ns();
    for (size_t at = 0; m->log >= 0 && at < (size_t)n;) {
        const char *nl = memchr(buf + at, '\n', (size_t)n - at);
        size_t len = nl != NULL ? (size_t)(nl - (buf + at)) + 1 : (size_t)n - at;
        log_record(m, stream, buf + at, len, ns);
        at += len;
    }
    send_frame(m, MON_FRAME_OUTPUT, stream, buf, (size_t)n, ns);
}

static void on_accept(struct monitor *m)
{
    int fd = accept4(m->listen, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    /* One engine at a time: a new connection is a restarted engine. */
    drop_client(m);
    struct timeval tv = { .tv_sec = CLIENT_SEND_TIMEOUT_S };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    m->client = fd;
}

/* Input, end of input and resizes from the engine. */
static void on_client(struct monitor *m)
{
    static char buf[MON_FRAME_MAX];
    unsigned char hdr[MON_FRAME_HDR];
    struct mon_frame f;
    struct merr err;
    if (!mon_read_exact(m->client, hdr, sizeof hdr) || mon_frame_unpack(hdr, &f, &err) < 0 ||
        !mon_read_exact(m->client, buf, f.len)) {
        drop_client(m);
        return;
    }
    int in = m->tty ? m->out : m->stdin_hold;
    if (f.type == MON_FRAME_INPUT && in >= 0 && write_all(in, buf, f.len) < 0) {
        /* the container closed its input: nothing to deliver to */
    } else if (f.type == MON_FRAME_CLOSE_STDIN && m->stdin_hold >= 0) {
        close(m->stdin_hold);
        m->stdin_hold = -1;
    } else if (f.type == MON_FRAME_RESIZE && m->tty && m->out >= 0 && f.len == 4) {
        const unsigned char *u = (const unsigned char *)buf;
        struct winsize ws = { .ws_row = (unsigned short)(u[0] << 8 | u[1]),
                              .ws_col = (unsigned short)(u[2] << 8 | u[3]) };
        ioctl(m->out, TIOCSWINSZ, &ws);
    }
}

/* Reaps every child (we are the subreaper of the container's orphans); notes the first
 * process's status. */
static void on_sigchld(struct monitor *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof si) > 0)
        ;
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p != m->pid || m->exited)
            continue;
        m->exited = true;
        m->exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                             : 255;
        m->exited_at_ms = mono_ms();
        m->finished_ns = now_ns();
    }
}

static void loop(struct monitor *m)
{
    for (;;) {
        struct pollfd p[5];
        int n = 0;
        int *fds[5];
        if (m->out >= 0)
            p[n] = (struct pollfd){ .fd = m->out, .events = POLLIN }, fds[n++] = &m->out;
        if (m->err >= 0)
            p[n] = (struct pollfd){ .fd = m->err, .events = POLLIN }, fds[n++] = &m->err;
        p[n] = (struct pollfd){ .fd = m->listen, .events = POLLIN }, fds[n++] = &m->listen;
        if (m->client >= 0)
            p[n] = (struct pollfd){ .fd = m->client, .events = POLLIN }, fds[n++] = &m->client;
        p[n] = (struct pollfd){ .fd = m->sigfd, .events = POLLIN }, fds[n++] = &m->sigfd;
        bool outputs = m->out >= 0 || m->err >= 0;
        if (m->exited && (!outputs || mono_ms() - m->exited_at_ms > DRAIN_MS))
            return;
        int r = poll(p, (nfds_t)n, m->exited ? 100 : -1);
        if (r < 0 && errno != EINTR)
            return;
        if (r == 0 && m->exited && mono_ms() - m->exited_at_ms > DRAIN_IDLE_MS)
            return; /* its namespace is gone; a bounded drain of what is left */
        for (int i = 0; r > 0 && i < n; i++) {
            if (p[i].revents == 0)
                continue;
            if (fds[i] == &m->out)
                on_output(m, &m->out, 1);
            else if (fds[i] == &m->err)
                on_output(m, &m->err, 2);
            else if (fds[i] == &m->listen)
                on_accept(m);
            else if (fds[i] == &m->client && m->client >= 0)
                on_client(m);
            else if (fds[i] == &m->sigfd)
                on_sigchld(m);
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: machine-monitor --dir DIR --pid PID [--tty] [--stdin] "
                    "[--log PATH [--max-size N] [--max-file N]]\n"
                    "(started by machine-engine only)\n");
    return 2;
}

static bool parse_args(int argc, char **argv, struct monitor *m)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },      { "pid", required_argument, NULL, 'p' },
        { "tty", no_argument, NULL, 't' },            { "stdin", no_argument, NULL, 'i' },
        { "log", required_argument, NULL, 'l' },      { "max-size", required_argument, NULL, 's' },
        { "max-file", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 },
    };
    bool in = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': m->dir = optarg; break;
        case 'p': m->pid = (pid_t)atoi(optarg); break;
        case 't': m->tty = true; break;
        case 'i': in = true; break;
        case 'l': m->log_path = optarg; break;
        case 's': m->max_size = strtoll(optarg, NULL, 10); break;
        case 'f': m->max_file = atoi(optarg); break;
        default: return false;
        }
    }
    m->stdin_hold = in ? FD_STDIN : -1;
    return m->dir != NULL && m->pid > 0 && optind == argc;
}

int main(int argc, char **argv)
{
    struct monitor m = { .out = FD_OUT, .err = FD_ERR, .listen = FD_LISTEN, .client = -1,
                         .log = -1, .max_file = 1 };
    if (!parse_args(argc, argv, &m))
        return usage();
    if (m.tty)
        m.err = -1;
    /* Only what the engine handed us (it closed the rest): a late audit all the same. */
    close_range(MON_FD_HOLD_LAST + 1, ~0U, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    m.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m.sigfd < 0)
        return 1;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* kept from the engine's fork: again, cheaply */
    priv_drop_all();
    for (int fd = FD_OUT; fd <= MON_FD_HOLD_LAST; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (m.log_path != NULL) {
        m.log = open(m.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        struct stat st;
        m.log_size = m.log >= 0 && fstat(m.log, &st) == 0 ? st.st_size : 0;
    }
    read_boot_id(&m);
    write_state(&m);
    /* the engine connected before we ran: its connection first, then the output */
    struct pollfd first = { .fd = m.listen, .events = POLLIN };
    if (poll(&first, 1, 0) > 0)
        on_accept(&m);
    on_sigchld(&m); /* it may have died before our signalfd existed */
    loop(&m);
    /* the container's exit status once it is gone, even when output is still held open */
    while (!m.exited) {
        struct pollfd p = { .fd = m.sigfd, .events = POLLIN };
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            break;
        on_sigchld(&m);
    }
    write_state(&m);
    char text[256];
    struct mon_state st = { .monitor_pid = getpid(), .pid = m.pid, .status = MON_EXITED,
                            .exit_code = m.exit_code, .finished_ns = m.finished_ns };
    memcpy(st.boot_id, m.boot_id, sizeof st.boot_id);
    int n = mon_state_format(&st, text, sizeof text);
    send_frame(&m, MON_FRAME_EXIT, 0, text, n > 0 ? (size_t)n : 0, st.finished_ns);
    return 0;
}
