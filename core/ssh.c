#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "netutil.h"
#include "ssh-priv.h"
#include "sshkey.h"

#define CAPTURE_MAX (16u << 20)
#define IO_CHUNK 32768

/* libssh2 needs one process-wide initialisation; pthread_once keeps it race-free. */
static pthread_once_t libssh2_once = PTHREAD_ONCE_INIT;
static void init_libssh2(void)
{
    libssh2_init(0);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ssh_fail(struct ssh_conn *c, struct merr *err, const char *what)
{
    char *msg = NULL;
    int code = libssh2_session_last_error(c->session, &msg, NULL, 0);
    enum merr_code mc = MERR_PROTOCOL;
    if (code == LIBSSH2_ERROR_TIMEOUT)
        mc = MERR_TIMEOUT;
    else if (code == LIBSSH2_ERROR_SOCKET_RECV || code == LIBSSH2_ERROR_SOCKET_SEND ||
             code == LIBSSH2_ERROR_SOCKET_DISCONNECT || code == LIBSSH2_ERROR_SOCKET_TIMEOUT)
        mc = MERR_UNREACHABLE;
    else if (code == LIBSSH2_ERROR_AUTHENTICATION_FAILED || code == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
             code == LIBSSH2_ERROR_FILE)
        mc = MERR_AUTH;
    return merr_set(err, mc, 0, "%s on %s: %s", what, c->where,
                    msg != NULL && msg[0] != '\0' ? msg : "unknown SSH error");
}

int ssh_wait_socket(struct ssh_conn *c, int timeout_ms, struct merr *err)
{
    int dir = libssh2_session_block_directions(c->session);
    struct pollfd p = { .fd = c->fd, .events = 0 };
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
        p.events |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        p.events |= POLLOUT;
    if (p.events == 0)
        p.events = POLLIN;
    int r;
    do {
        r = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return merr_set(err, MERR_TIMEOUT, 0, "SSH connection to %s timed out after %d ms",
                        c->where, timeout_ms);
    if (r < 0)
        return merr_set(err, MERR_IO, errno, "cannot wait for %s", c->where);
    return 0;
}

void ssh_conn_free(struct ssh_conn *c)
{
    if (c == NULL)
        return;
    if (c->session != NULL) {
        libssh2_session_set_blocking(c->session, 1);
        libssh2_session_set_timeout(c->session, 2000);
        libssh2_session_disconnect(c->session, "bye");
        libssh2_session_free(c->session);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->where);
    free(c);
}

/* ---- host keys ---- */

static int knownhost_keybits(int hostkey_type)
{
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
        return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

static char *host_entry_name(const struct ssh_target *t)
{
    if (t->port == 22)
        return xstrdup(t->host);
    return xasprintf("[%s]:%d", t->host, t->port);
}

/* The fingerprint of a stored entry (its key is base64 text in the file). */
static char *entry_fingerprint(const struct libssh2_knownhost *e)
{
    const char *k = e->key;
    /* Entries carry "type base64" or just base64 depending on how they were read. */
    const char *space = strchr(k, ' ');
    if (space != NULL)
        k = space + 1;
    unsigned char *blob = NULL;
    long n = sshkey_unbase64(k, &blob);
    if (n <= 0) {
        free(blob);
        return xstrdup("(unreadable)");
    }
    char *fp = sshkey_fingerprint(blob, (size_t)n);
    free(blob);
    return fp;
}

static int save_known_hosts(LIBSSH2_KNOWNHOSTS *kh, const char *path, struct merr *err)
{
    auto_free char *tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
    if (libssh2_knownhost_writefile(kh, tmp, LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
        unlink(tmp);
        return merr_set(err, MERR_IO, 0, "cannot write '%s'", tmp);
    }
    auto_free char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(tmp, 1u << 20, &text, &len, err);
    unlink(tmp);
    if (rc < 0)
        return -1;
    return fs_write_atomic(path, text, len, 0600, err);
}

static int check_host_key(struct ssh_conn *c, const struct ssh_target *t, struct merr *err)
{
    size_t len = 0;
    int type = 0;
    const char *key = libssh2_session_hostkey(c->session, &len, &type);
    if (key == NULL)
        return ssh_fail(c, err, "no host key");
    auto_free char *offered = sshkey_fingerprint((const unsigned char *)key, len);
    auto_free char *name = host_entry_name(t);
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->session);
    if (kh == NULL)
        return ssh_fail(c, err, "cannot initialise known hosts");
    int rc = -1;
    if (fs_exists(t->known_hosts_path) &&
        libssh2_knownhost_readfile(kh, t->known_hosts_path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
        merr_set(err, MERR_CORRUPT, 0, "cannot read known hosts '%s'", t->known_hosts_path);
        goto out;
    }
    struct libssh2_knownhost *found = NULL;
    int check = libssh2_knownhost_checkp(kh, t->host, t->port, key, len,
                                         LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW,
                                         &found);
    if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        rc = 0;
        goto out;
    }
    /* Any pinned entry for this host that did not match (even of another key type) is a
     * changed key: never silently pin a second one. */
    struct libssh2_knownhost *e = NULL, *prev = NULL;
    while (libssh2_knownhost_get(kh, &e, prev) == 0) {
        if (e->name != NULL && strcmp(e->name, name) == 0) {
            char *stored = entry_fingerprint(e);
            merr_set(err, MERR_HOSTKEY, 0,
                     "the host key of %s has changed: it was %s and is now %s; if the host "
                     "was reinstalled, remove its line from '%s'",
                     name, stored, offered, t->known_hosts_path);
            free(stored);
            goto out;
        }
        prev = e;
    }
    if (check == LIBSSH2_KNOWNHOST_CHECK_FAILURE) {
        merr_set(err, MERR_HOSTKEY, 0, "cannot check the host key of %s", name);
        goto out;
    }
    if (libssh2_knownhost_addc(kh, name, NULL, key, len, NULL, 0,
                               LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                   knownhost_keybits(type),
                               NULL) != 0) {
        ssh_fail(c, err, "cannot record the host key");
        goto out;
    }
    rc = save_known_hosts(kh, t->known_hosts_path, err);
out:
    libssh2_knownhost_free(kh);
    return rc;
}

/* ---- connect ---- */

static void tune_socket(int fd)
{
    int one = 1, idle = 15, intvl = 5, cnt = 4;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int ssh_connect(const struct ssh_target *t, struct ssh_conn **out, struct merr *err)
{
    if (t->key_path == NULL || t->known_hosts_path == NULL || t->user == NULL)
        return merr_set(err, MERR_INVALID, 0, "incomplete SSH target");
    if (sshkey_check_private_perms(t->key_path, err) < 0)
        return -1;
    pthread_once(&libssh2_once, init_libssh2);
    int timeout = t->timeout_ms > 0 ? t->timeout_ms : 30000;
    int fd = net_dial(t->host, t->port, timeout, err);
    if (fd < 0)
        return -1;
    tune_socket(fd);
    struct ssh_conn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    c->timeout_ms = timeout;
    c->where = xasprintf("%s@%s:%d", t->user, t->host, t->port);
    c->session = libssh2_session_init();
    if (c->session == NULL) {
        ssh_conn_free(c);
        return merr_set(err, MERR_NOMEM, 0, "cannot create an SSH session");
    }
    libssh2_session_set_blocking(c->session, 1);
    libssh2_session_set_timeout(c->session, timeout);
    /* libssh2's default host key order is kept: its method_pref filtering of unknown names
     * copies overlapping memory (seen with ASan on 1.10). */
    if (libssh2_session_handshake(c->session, fd) != 0) {
        ssh_fail(c, err, "SSH handshake failed");
        if (err->code == MERR_PROTOCOL)
            err->code = MERR_UNREACHABLE; /* e.g. not an SSH server yet, or it went away */
        ssh_conn_free(c);
        return -1;
    }
    if (check_host_key(c, t, err) < 0) {
        ssh_conn_free(c);
        return -1;
    }
    if (libssh2_userauth_publickey_fromfile_ex(c->session, t->user, (unsigned)strlen(t->user), NULL,
                                               t->key_path, NULL) != 0) {
        ssh_fail(c, err, "SSH authentication failed");
        if (err->code != MERR_TIMEOUT && err->code != MERR_UNREACHABLE)
            err->code = MERR_AUTH;
        ssh_conn_free(c);
        return -1;
    }
    libssh2_keepalive_config(c->session, 1, 15);
    *out = c;
    return 0;
}

int ssh_wait_ready(const struct ssh_target *t, int total_ms, int interval_ms, struct merr *err)
{
    long deadline = now_ms() + total_ms;
    struct ssh_target bounded = *t;
    for (int attempt = 0; attempt < 100000; attempt++) {
        long left = deadline - now_ms();
        if (left <= 0)
            break;
        if (bounded.timeout_ms <= 0 || bounded.timeout_ms > left)
            bounded.timeout_ms = (int)(left > 1000 ? left : 1000);
        struct ssh_conn *c = NULL;
        if (ssh_connect(&bounded, &c, err) == 0) {
            int status = -1;
            char *o = NULL, *e = NULL;
            size_t ol, el;
            int rc = ssh_exec(c, "exit 0", NULL, 0, &o, &ol, &e, &el, &status, err);
            free(o);
            free(e);
            ssh_conn_free(c);
            if (rc == 0 && status == 0)
                return 0;
            if (rc == 0)
                merr_set(err, MERR_REMOTE, 0, "'exit 0' returned %d on %s", status, t->host);
        } else if (err->code == MERR_HOSTKEY || err->code == MERR_PERM || err->code == MERR_AUTH ||
                   err->code == MERR_INVALID || err->code == MERR_CORRUPT) {
            return -1;
        }
        long sleep_ms = deadline - now_ms();
        if (sleep_ms > interval_ms)
            sleep_ms = interval_ms;
        if (sleep_ms > 0) {
            struct timespec ts = { sleep_ms / 1000, (sleep_ms % 1000) * 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    if (err->code == MERR_OK)
        merr_set(err, MERR_TIMEOUT, 0, "SSH on %s:%d did not answer", t->host, t->port);
    return merr_prefix(err, "gave up after %d s", total_ms / 1000);
}

/* ---- exec ---- */

LIBSSH2_CHANNEL *ssh_open_exec(struct ssh_conn *c, const char *cmd, const char *term, int cols,
                               int rows, struct merr *err)
{
    libssh2_session_set_blocking(c->session, 1);
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->session);
    if (ch == NULL) {
        ssh_fail(c, err, "cannot open an SSH channel");
        return NULL;
    }
    if (term != NULL &&
        libssh2_channel_request_pty_ex(ch, term, (unsigned)strlen(term), NULL, 0, cols, rows, 0, 0) != 0) {
        ssh_fail(c, err, "cannot get a PTY");
        libssh2_channel_free(ch);
        return NULL;
    }
    int rc = cmd != NULL ? libssh2_channel_exec(ch, cmd) : libssh2_channel_shell(ch);
    if (rc != 0) {
        ssh_fail(c, err, "cannot start the remote command");
        libssh2_channel_free(ch);
        return NULL;
    }
    return ch;
}

int ssh_channel_status(LIBSSH2_CHANNEL *ch)
{
    char *sig = NULL;
    size_t siglen = 0;
    if (libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL) == 0 && sig != NULL) {
        static const struct {
            const char *name;
            int num;
        } sigs[] = { { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ABRT", SIGABRT },
                     { "KILL", SIGKILL }, { "SEGV", SIGSEGV }, { "PIPE", SIGPIPE }, { "TERM", SIGTERM },
                     { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 } };
        int num = SIGTERM;
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            if (strcmp(sig, sigs[i].name) == 0)
                num = sigs[i].num;
        free(sig);
        return 128 + num;
    }
    return libssh2_channel_get_exit_status(ch);
}

/* Where a stream's bytes go: a capture buffer or a local fd. */
struct sink {
    int fd;
    char *buf;
    size_t len, cap;
};

static int sink_put(struct sink *s, const char *data, size_t n, struct merr *err)
{
    if (s->fd >= 0) {
        while (n > 0) {
            ssize_t w = write(s->fd, data, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return errno == EPIPE ? 0 : merr_set(err, MERR_IO, errno, "cannot write output");
            data += w;
            n -= (size_t)w;
        }
        return 0;
    }
    if (s->len + n > CAPTURE_MAX)
        return merr_set(err, MERR_PROTOCOL, 0, "remote command output exceeds %u bytes", CAPTURE_MAX);
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return merr_set(err, MERR_NOMEM, ENOMEM, "cannot capture output");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return 0;
}

/* The non-blocking pump shared by exec forms: stdin from a buffer or an fd, both outputs. */
struct pump {
    const char *in_data;
    size_t in_len, in_off;
    int in_fd;
    struct sink out, errs;
};

static int pump_channel(struct ssh_conn *c, LIBSSH2_CHANNEL *ch, struct pump *p, struct merr *err)
{
    libssh2_session_set_blocking(c->session, 0);
    bool in_done = p->in_fd < 0 && p->in_data == NULL;
    if (in_done)
        libssh2_channel_send_eof(ch);
    char buf[IO_CHUNK];
    char inbuf[IO_CHUNK];
    size_t inbuf_len = 0, inbuf_off = 0;
    int rc = 0;
    for (;;) {
        bool progress = false;
        for (int stream = 0; stream < 2; stream++) {
            ssize_t n;
            while ((n = libssh2_channel_read_ex(ch, stream, buf, sizeof buf)) > 0) {
                progress = true;
                if (sink_put(stream == 0 ? &p->out : &p->errs, buf, (size_t)n, err) < 0) {
                    rc = -1;
                    goto out;
                }
            }
            if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
                rc = ssh_fail(c, err, "reading remote output failed");
                goto out;
            }
        }
        if (!in_done) {
            if (p->in_data != NULL) {
                if (p->in_off < p->in_len) {
                    ssize_t w = libssh2_channel_write(ch, p->in_data + p->in_off, p->in_len - p->in_off);
                    if (w > 0) {
                        p->in_off += (size_t)w;
                        progress = true;
                    } else if (w < 0 && w != LIBSSH2_ERROR_EAGAIN) {
                        rc = ssh_fail(c, err, "writing remote input failed");
                        goto out;
                    }
                }
                if (p->in_off >= p->in_len) {
                    in_done = true;
                    libssh2_channel_send_eof(ch);
                }
            } else {
                if (inbuf_off == inbuf_len) {
                    struct pollfd pf = { .fd = p->in_fd, .events = POLLIN };
                    if (poll(&pf, 1, 0) > 0) {
                        ssize_t r = read(p->in_fd, inbuf, sizeof inbuf);
                        if (r > 0) {
                            inbuf_len = (size_t)r;
                            inbuf_off = 0;
                        } else if (r == 0 || errno != EINTR) {
                            in_done = true;
                            libssh2_channel_send_eof(ch);
                        }
                        progress = true;
                    }
                }
                if (inbuf_off < inbuf_len) {
                    ssize_t w = libssh2_channel_write(ch, inbuf + inbuf_off, inbuf_len - inbuf_off);
                    if (w > 0) {
                        inbuf_off += (size_t)w;
                        progress = true;
                    } else if (w < 0 && w != LIBSSH2_ERROR_EAGAIN) {
                        rc = ssh_fail(c, err, "writing remote input failed");
                        goto out;
                    }
                }
            }
        }
        if (libssh2_channel_eof(ch))
            break;
        if (!progress) {
            int ignored;
            libssh2_keepalive_send(c->session, &ignored);
            struct pollfd pf[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = -1 } };
            int dir = libssh2_session_block_directions(c->session);
            if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
                pf[0].events |= POLLOUT;
            if (!in_done && p->in_fd >= 0 && inbuf_off == inbuf_len)
                pf[1] = (struct pollfd){ .fd = p->in_fd, .events = POLLIN };
            if (poll(pf, 2, 1000) < 0 && errno != EINTR) {
                rc = merr_set(err, MERR_IO, errno, "cannot wait for %s", c->where);
                goto out;
            }
        }
    }
    libssh2_session_set_blocking(c->session, 1);
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
out:
    libssh2_session_set_blocking(c->session, 1);
    return rc;
}

int ssh_exec(struct ssh_conn *c, const char *cmd, const void *stdin_data, size_t stdin_len,
             char **out, size_t *out_len, char **errout, size_t *errout_len, int *exit_status,
             struct merr *err)
{
    LIBSSH2_CHANNEL *ch = ssh_open_exec(c, cmd, NULL, 0, 0, err);
    if (ch == NULL)
        return -1;
    struct pump p = { .in_data = stdin_data, .in_len = stdin_len, .in_fd = -1 };
    p.out.fd = p.errs.fd = -1;
    int rc = pump_channel(c, ch, &p, err);
    if (rc == 0)
        *exit_status = ssh_channel_status(ch);
    libssh2_channel_free(ch);
    if (rc < 0) {
        free(p.out.buf);
        free(p.errs.buf);
        return -1;
    }
    *out = p.out.buf != NULL ? p.out.buf : xstrdup("");
    *out_len = p.out.len;
    *errout = p.errs.buf != NULL ? p.errs.buf : xstrdup("");
    *errout_len = p.errs.len;
    return 0;
}

int ssh_exec_stream(struct ssh_conn *c, const char *cmd, int in_fd, int out_fd, int err_fd,
                    int *exit_status, struct merr *err)
{
    LIBSSH2_CHANNEL *ch = ssh_open_exec(c, cmd, NULL, 0, 0, err);
    if (ch == NULL)
        return -1;
    struct pump p = { .in_fd = in_fd };
    p.out.fd = out_fd;
    p.errs.fd = err_fd;
    int rc = pump_channel(c, ch, &p, err);
    if (rc == 0)
        *exit_status = ssh_channel_status(ch);
    libssh2_channel_free(ch);
    return rc;
}

/* ---- the system ssh ---- */

char **ssh_external_argv(const struct ssh_target *t, bool tty, char *const *cmd, struct merr *err)
{
    char port[16], timeout[48], kh[4200];
    snprintf(port, sizeof port, "%d", t->port);
    snprintf(timeout, sizeof timeout, "ConnectTimeout=%d",
             t->timeout_ms > 0 ? (t->timeout_ms + 999) / 1000 : 30);
    if (snprintf(kh, sizeof kh, "UserKnownHostsFile=%s", t->known_hosts_path) >= (int)sizeof kh) {
        merr_set(err, MERR_INVALID, 0, "known_hosts path is too long");
        return NULL;
    }
    auto_free char *dest = xasprintf("%s@%s", t->user, t->host);
    const char *fixed[] = { "ssh", "-i", t->key_path, "-p", port, "-o", "IdentitiesOnly=yes",
                            "-o", kh, "-o", "StrictHostKeyChecking=yes", "-o", timeout,
                            "-o", "LogLevel=ERROR", "-o", "GlobalKnownHostsFile=/dev/null" };
    size_t n = sizeof fixed / sizeof fixed[0];
    char **argv = xcalloc(n + 8 + (cmd != NULL ? 64 : 0), sizeof *argv);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        argv[k++] = xstrdup(fixed[i]);
    if (tty)
        argv[k++] = xstrdup("-t");
    argv[k++] = xstrdup(dest);
    size_t ncmd = 0;
    while (cmd != NULL && cmd[ncmd] != NULL)
        ncmd++;
    if (ncmd > 0) {
        char **grown = realloc(argv, (k + ncmd + 2) * sizeof *argv);
        if (grown == NULL)
            abort();
        argv = grown;
        argv[k++] = xstrdup("--");
        for (size_t i = 0; i < ncmd; i++)
            argv[k++] = xstrdup(cmd[i]);
    }
    argv[k] = NULL;
    return argv;
}
