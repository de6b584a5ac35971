/* SSH client on libssh2: TCP connect, handshake, host key pinning, publickey
 * authentication, readiness wait, and the argv for the system ssh. Commands run
 * in ssh-exec.c, SFTP in ssh-sftp.c, interactive sessions in ssh-shell.c.
 *
 * The session stays in libssh2's blocking mode with libssh2_session_set_timeout,
 * so every protocol step (handshake, auth, channel requests, SFTP) is bounded.
 * Only the data pump of a running command (ssh-exec.c) switches to non-blocking
 * mode, with its own liveness check. */
#include "ssh-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "error.h"

#define DEFAULT_TIMEOUT_MS 10000
#define KNOWN_HOSTS_MAX (1024 * 1024)
#define KNOWN_HOSTS_LINE_MAX 16384

/* Host key algorithms we accept, best first. libssh2 1.10 cannot verify
 * rsa-sha2-256/512 host key signatures (only the SHA-1 "ssh-rsa" one, which
 * OpenSSH >= 8.8 no longer offers), so RSA comes last; ssh-dss is never used. */
static const char HOSTKEY_ALGS[] =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa";

static int effective_timeout(int timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* libssh2's own recv, plus liveness bookkeeping for the pump. */
static LIBSSH2_RECV_FUNC(conn_recv)
{
    struct ssh_conn *c = *abstract;
    ssize_t r = recv(socket, buffer, length, flags);
    if (r > 0) {
        c->last_rx_ms = clock_now_ms();
    } else if (r == 0) {
        c->rx_closed = true;
    } else {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -EAGAIN;
        if (errno != EINTR)
            c->rx_closed = true;
        return -errno;
    }
    return r;
}

static const char *sftp_status_name(unsigned long status)
{
    switch (status) {
    case LIBSSH2_FX_EOF: return "end of file";
    case LIBSSH2_FX_NO_SUCH_FILE: return "no such file";
    case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied";
    case LIBSSH2_FX_FAILURE: return "failure";
    case LIBSSH2_FX_NO_SUCH_PATH: return "no such path";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS: return "file already exists";
    case LIBSSH2_FX_WRITE_PROTECT: return "write protected";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: return "no space left on device";
    case LIBSSH2_FX_QUOTA_EXCEEDED: return "quota exceeded";
    case LIBSSH2_FX_NOT_A_DIRECTORY: return "not a directory";
    case LIBSSH2_FX_DIR_NOT_EMPTY: return "directory not empty";
    default: return "error";
    }
}

static enum merr_code sftp_status_code(unsigned long status)
{
    switch (status) {
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
        return MERR_NOT_FOUND;
    case LIBSSH2_FX_PERMISSION_DENIED:
    case LIBSSH2_FX_WRITE_PROTECT:
        return MERR_PERM;
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return MERR_EXISTS;
    default:
        return MERR_REMOTE;
    }
}

static enum merr_code libssh2_code(int rc)
{
    switch (rc) {
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
        return MERR_TIMEOUT;
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
        return MERR_UNREACHABLE;
    case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
    case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
        return MERR_AUTH;
    case LIBSSH2_ERROR_ALLOC:
        return MERR_NOMEM;
    case LIBSSH2_ERROR_FILE:
        return MERR_CRYPTO;
    case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
    case LIBSSH2_ERROR_CHANNEL_FAILURE:
        return MERR_REMOTE;
    default:
        return MERR_PROTOCOL;
    }
}

int ssh_fail(struct ssh_conn *c, int rc, struct merr *err, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);

    char *msg = NULL;
    if (c != NULL && c->session != NULL)
        libssh2_session_last_error(c->session, &msg, NULL, 0);
    if (msg == NULL || msg[0] == '\0')
        msg = "unknown libssh2 error";

    if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && c != NULL && c->sftp != NULL) {
        unsigned long st = libssh2_sftp_last_error(c->sftp);
        return merr_set(err, sftp_status_code(st), 0, "%s: %s", what, sftp_status_name(st));
    }
    if (c != NULL && c->rx_closed && libssh2_code(rc) == MERR_PROTOCOL)
        return merr_set(err, MERR_UNREACHABLE, 0, "%s: connection closed by '%s'", what, c->host);
    return merr_set(err, libssh2_code(rc), 0, "%s: %s", what, msg);
}

/* ---- TCP ---------------------------------------------------------------- */

static enum merr_code connect_errno_code(int e)
{
    return e == ETIMEDOUT ? MERR_TIMEOUT : MERR_UNREACHABLE;
}

/* Tries each address in turn within one overall deadline. */
static int tcp_connect(const char *host, int port, int timeout_ms, int *out, struct merr *err)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0)
        return merr_set(err, MERR_UNREACHABLE, 0, "cannot resolve '%s': %s", host,
                        gai_strerror(rc));

    int64_t deadline = clock_now_ms() + timeout_ms;
    int last_errno = ECONNREFUSED;
    bool timed_out = false;
    for (struct addrinfo *ai = res; ai != NULL && !timed_out; ai = ai->ai_next) {
        auto_close int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                last_errno = errno;
                continue;
            }
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            int n;
            do {
                int64_t left = deadline - clock_now_ms();
                n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            } while (n < 0 && errno == EINTR);
            if (n == 0) {
                timed_out = true;
                continue;
            }
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                soerr = errno;
            if (soerr != 0) {
                last_errno = soerr;
                continue;
            }
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        freeaddrinfo(res);
        *out = steal_fd(&fd);
        return 0;
    }
    freeaddrinfo(res);
    if (timed_out)
        return merr_set(err, MERR_TIMEOUT, 0, "cannot connect to '%s' port %d: timed out after %d ms",
                        host, port, timeout_ms);
    return merr_set(err, connect_errno_code(last_errno), last_errno,
                    "cannot connect to '%s' port %d", host, port);
}

/* ---- known_hosts pinning -------------------------------------------------- */

/* How the host appears in known_hosts: "host" for port 22, else "[host]:port". */
static char *known_hosts_label(const char *host, int port)
{
    char *label = NULL;
    int r = port == 22 ? asprintf(&label, "%s", host) : asprintf(&label, "[%s]:%d", host, port);
    return r < 0 ? NULL : label;
}

static int knownhost_key_type(int hostkey_type)
{
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return 0;
    }
}

static const char *knownhost_alg_name(int key_type)
{
    switch (key_type) {
    case LIBSSH2_KNOWNHOST_KEY_SSHRSA: return "ssh-rsa";
    case LIBSSH2_KNOWNHOST_KEY_ECDSA_256: return "ecdsa-sha2-nistp256";
    case LIBSSH2_KNOWNHOST_KEY_ECDSA_384: return "ecdsa-sha2-nistp384";
    case LIBSSH2_KNOWNHOST_KEY_ECDSA_521: return "ecdsa-sha2-nistp521";
    case LIBSSH2_KNOWNHOST_KEY_ED25519: return "ssh-ed25519";
    default: return NULL;
    }
}

struct known_hosts {
    LIBSSH2_KNOWNHOSTS *kh;
    char *raw; /* the file as read, so that recording a key keeps every other line */
    size_t raw_len;
};

static void known_hosts_release(struct known_hosts *k)
{
    if (k->kh != NULL)
        libssh2_knownhost_free(k->kh);
    free(k->raw);
    k->kh = NULL;
    k->raw = NULL;
}

static int read_small_file(const char *path, size_t max, char **data, size_t *len,
                           struct merr *err)
{
    auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, errno == ENOENT ? MERR_NOT_FOUND : MERR_IO, errno,
                        "cannot open '%s'", path);
    size_t cap = 4096, n = 0;
    auto_free char *buf = malloc(cap);
    if (buf == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
    for (;;) {
        if (n + 1 == cap) {
            if (cap > max)
                return merr_set(err, MERR_CORRUPT, 0, "'%s' is larger than %zu bytes", path, max);
            char *p = realloc(buf, cap * 2);
            if (p == NULL)
                return merr_set(err, MERR_NOMEM, ENOMEM, "cannot read '%s'", path);
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return merr_set(err, MERR_IO, errno, "cannot read '%s'", path);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    *data = steal_pointer(&buf);
    return 0;
}

/* Loads path (a missing file is an empty list) into a libssh2 collection. */
static int known_hosts_load(LIBSSH2_SESSION *s, const char *path, struct known_hosts *k,
                            struct merr *err)
{
    k->kh = libssh2_knownhost_init(s);
    if (k->kh == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot allocate known hosts");
    struct merr rerr = MERR_INIT;
    if (read_small_file(path, KNOWN_HOSTS_MAX, &k->raw, &k->raw_len, &rerr) < 0) {
        if (rerr.code == MERR_NOT_FOUND)
            return 0;
        *err = rerr;
        return -1;
    }
    if (strlen(k->raw) != k->raw_len)
        return merr_set(err, MERR_CORRUPT, 0, "known hosts file '%s' contains NUL bytes", path);
    unsigned lineno = 0;
    for (char *line = k->raw; *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        lineno++;
        /* libssh2 1.10 treats the last byte it is given as the line terminator:
         * hand it the '\n' (or the final NUL) too, or it cuts the key short. */
        if (libssh2_knownhost_readline(k->kh, line, len + 1, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0)
            return merr_set(err, MERR_CORRUPT, 0, "cannot parse known hosts file '%s' line %u",
                            path, lineno);
        line += len + (nl != NULL);
    }
    return 0;
}

/* Type of a plain entry pinned for label, or 0: used to ask the server for that
 * key type first, the way OpenSSH orders its host key algorithms. */
static int known_hosts_pinned_type(struct known_hosts *k, const char *label,
                                   struct libssh2_knownhost **entry)
{
    struct libssh2_knownhost *prev = NULL, *cur;
    while (libssh2_knownhost_get(k->kh, &cur, prev) == 0) {
        if ((cur->typemask & LIBSSH2_KNOWNHOST_TYPE_MASK) == LIBSSH2_KNOWNHOST_TYPE_PLAIN &&
            cur->name != NULL && strcmp(cur->name, label) == 0) {
            if (entry != NULL)
                *entry = cur;
            return cur->typemask & LIBSSH2_KNOWNHOST_KEY_MASK;
        }
        prev = cur;
    }
    return 0;
}

static int set_hostkey_preference(struct ssh_conn *c, int pinned_type, struct merr *err)
{
    const char *first = knownhost_alg_name(pinned_type);
    char prefs[sizeof HOSTKEY_ALGS + 64];
    if (first != NULL)
        snprintf(prefs, sizeof prefs, "%s,%s", first, HOSTKEY_ALGS);
    else
        snprintf(prefs, sizeof prefs, "%s", HOSTKEY_ALGS);
    int rc = libssh2_session_method_pref(c->session, LIBSSH2_METHOD_HOSTKEY, prefs);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot set host key algorithms");
    return 0;
}

static int record_host_key(struct ssh_conn *c, struct known_hosts *k, const char *path,
                           const char *label, const char *key, size_t keylen, int key_type,
                           struct merr *err)
{
    struct libssh2_knownhost *entry = NULL;
    int rc = libssh2_knownhost_addc(k->kh, label, NULL, key, keylen, NULL, 0,
                                    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                        key_type,
                                    &entry);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot record host key of '%s'", label);
    auto_free char *line = malloc(KNOWN_HOSTS_LINE_MAX);
    if (line == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record host key of '%s'", label);
    size_t linelen = 0;
    rc = libssh2_knownhost_writeline(k->kh, entry, line, KNOWN_HOSTS_LINE_MAX, &linelen,
                                     LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    if (rc < 0)
        return ssh_fail(c, rc, err, "cannot format host key of '%s'", label);

    bool need_nl = k->raw_len > 0 && k->raw[k->raw_len - 1] != '\n';
    size_t total = k->raw_len + need_nl + linelen;
    auto_free char *content = malloc(total + 1);
    if (content == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot record host key of '%s'", label);
    if (k->raw_len > 0)
        memcpy(content, k->raw, k->raw_len);
    if (need_nl)
        content[k->raw_len] = '\n';
    memcpy(content + k->raw_len + need_nl, line, linelen);
    content[total] = '\0';
    if (ssh_write_file_atomic(path, content, total, 0600, err) < 0)
        return merr_prefix(err, "cannot record host key of '%s'", label);
    return 0;
}

/* Accepts the server's key if it is pinned, pins it on first contact, and
 * refuses anything else: a different key of the same type or a key of another
 * type than the pinned one (a server must not escape the pin by offering a
 * different algorithm). */
static int verify_host_key(struct ssh_conn *c, struct known_hosts *k, const char *path,
                           const char *label, struct merr *err)
{
    size_t keylen = 0;
    int hostkey_type = 0;
    const char *key = libssh2_session_hostkey(c->session, &keylen, &hostkey_type);
    if (key == NULL || keylen == 0)
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "no host key from '%s'", label);
    if (sshkey_fingerprint_sha256(key, keylen, c->host_fingerprint, err) < 0)
        return -1;
    int key_type = knownhost_key_type(hostkey_type);
    if (key_type == 0)
        return merr_set(err, MERR_PROTOCOL, 0, "unsupported host key type %d from '%s'",
                        hostkey_type, label);

    /* Key type 0 compares against entries of every type: any entry for the
     * label that is not this exact key is a mismatch. */
    struct libssh2_knownhost *found = NULL;
    int r = libssh2_knownhost_check(k->kh, label, key, keylen,
                                    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW,
                                    &found);
    switch (r) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        return 0;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        return record_host_key(c, k, path, label, key, keylen, key_type, err);
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH: {
        char pinned[SSHKEY_FINGERPRINT_MAX] = "(unreadable)";
        struct merr ignored = MERR_INIT;
        if (found != NULL && found->key != NULL &&
            sshkey_fingerprint_base64(found->key, pinned, &ignored) < 0)
            snprintf(pinned, sizeof pinned, "(unreadable)");
        return merr_set(err, MERR_HOSTKEY, 0,
                        "host key for '%s' has changed: pinned %s, server offered %s; if the "
                        "machine was re-created, remove its entry from '%s'",
                        label, pinned, c->host_fingerprint, path);
    }
    default:
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "cannot check host key of '%s'", label);
    }
}

int ssh_pinned_fingerprint(const struct ssh_target *t, char *out, size_t outsz, struct merr *err)
{
    if (t == NULL || t->host == NULL || t->known_hosts_path == NULL)
        return merr_set(err, MERR_INVALID, 0, "incomplete ssh target");
    LIBSSH2_SESSION *s = libssh2_session_init();
    if (s == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create ssh session");
    struct known_hosts k = { 0 };
    auto_free char *label = known_hosts_label(t->host, t->port);
    int ret = -1;
    struct libssh2_knownhost *entry = NULL;
    char fp[SSHKEY_FINGERPRINT_MAX];
    if (label == NULL)
        merr_set(err, MERR_NOMEM, ENOMEM, "cannot read known hosts");
    else if (known_hosts_load(s, t->known_hosts_path, &k, err) < 0)
        ;
    else if (known_hosts_pinned_type(&k, label, &entry) == 0 || entry->key == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "no host key pinned for '%s' in '%s'", label,
                 t->known_hosts_path);
    else if (sshkey_fingerprint_base64(entry->key, fp, err) == 0) {
        snprintf(out, outsz, "%s", fp);
        ret = 0;
    }
    known_hosts_release(&k);
    libssh2_session_free(s);
    return ret;
}

/* ---- connect -------------------------------------------------------------- */

void ssh_conn_free(struct ssh_conn *c)
{
    if (c == NULL)
        return;
    if (c->session != NULL) {
        /* Bounded by the session timeout; a dead peer cannot hold us here. */
        libssh2_session_set_blocking(c->session, 1);
        if (c->sftp != NULL)
            libssh2_sftp_shutdown(c->sftp);
        if (!c->rx_closed)
            libssh2_session_disconnect(c->session, "bye");
        libssh2_session_free(c->session);
    }
    if (c->sock >= 0)
        close(c->sock);
    free(c->host);
    free(c);
}

const char *ssh_conn_host_fingerprint(const struct ssh_conn *c)
{
    return c->host_fingerprint;
}

static int authenticate(struct ssh_conn *c, const struct ssh_target *t, const char *key,
                        size_t keylen, struct merr *err)
{
    size_t ulen = strlen(t->user);
    char *methods = libssh2_userauth_list(c->session, t->user, (unsigned)ulen);
    if (methods == NULL) {
        if (libssh2_userauth_authenticated(c->session))
            return 0; /* the server accepted "none" */
        return ssh_fail(c, libssh2_session_last_errno(c->session), err,
                        "cannot list authentication methods of '%s'", c->host);
    }
    if (strstr(methods, "publickey") == NULL)
        return merr_set(err, MERR_AUTH, 0, "'%s' does not accept public keys (offers: %s)",
                        c->host, methods);
    int rc = libssh2_userauth_publickey_frommemory(c->session, t->user, ulen, NULL, 0, key,
                                                   keylen, NULL);
    if (rc == LIBSSH2_ERROR_FILE)
        return ssh_fail(c, rc, err, "cannot use private key '%s'", t->key_path);
    if (rc < 0)
        return ssh_fail(c, rc, err, "authentication as '%s' on '%s' with key '%s' failed",
                        t->user, c->host, t->key_path);
    return 0;
}

static int validate_target(const struct ssh_target *t, struct merr *err)
{
    if (t == NULL || t->host == NULL || t->host[0] == '\0' || t->user == NULL ||
        t->user[0] == '\0' || t->key_path == NULL || t->known_hosts_path == NULL)
        return merr_set(err, MERR_INVALID, 0, "incomplete ssh target");
    if (t->port <= 0 || t->port > 65535)
        return merr_set(err, MERR_INVALID, 0, "invalid ssh port %d", t->port);
    return 0;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL)
        OPENSSL_cleanse(p, len);
    free(p);
}

static int connect_session(struct ssh_conn *c, const struct ssh_target *t, const char *key,
                           size_t keylen, struct merr *err)
{
    auto_free char *label = known_hosts_label(t->host, t->port);
    if (label == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot connect to '%s'", t->host);

    c->session = libssh2_session_init_ex(NULL, NULL, NULL, c);
    if (c->session == NULL)
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot create ssh session");
    libssh2_session_callback_set(c->session, LIBSSH2_CALLBACK_RECV, (void *)conn_recv);
    libssh2_session_set_blocking(c->session, 1);
    libssh2_session_set_timeout(c->session, c->timeout_ms);

    /* Local work first: nothing goes on the wire before the pin is readable. */
    struct known_hosts k = { 0 };
    int ret = -1;
    if (known_hosts_load(c->session, t->known_hosts_path, &k, err) < 0)
        goto out;
    if (set_hostkey_preference(c, known_hosts_pinned_type(&k, label, NULL), err) < 0)
        goto out;

    if (tcp_connect(t->host, t->port, c->timeout_ms, &c->sock, err) < 0)
        goto out;
    c->last_rx_ms = clock_now_ms();
    int rc = libssh2_session_handshake(c->session, c->sock);
    if (rc < 0) {
        ssh_fail(c, rc, err, "ssh handshake with '%s' failed", label);
        goto out;
    }
    if (verify_host_key(c, &k, t->known_hosts_path, label, err) < 0)
        goto out;
    if (authenticate(c, t, key, keylen, err) < 0)
        goto out;

    /* Keepalives let the pump notice a dead server while a command runs. */
    int interval = c->timeout_ms / 3000;
    libssh2_keepalive_config(c->session, 1, (unsigned)(interval < 2 ? 2 : interval));
    ret = 0;
out:
    known_hosts_release(&k);
    return ret;
}

int ssh_connect(const struct ssh_target *t, struct ssh_conn **out, struct merr *err)
{
    if (validate_target(t, err) < 0)
        return -1;
    /* Reads the key with the permission check before any network traffic. */
    char *key = NULL;
    size_t keylen = 0;
    if (sshkey_read_private(t->key_path, &key, &keylen, err) < 0)
        return -1;

    struct ssh_conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->host = strdup(t->host)) == NULL) {
        free(c);
        wipe_free(key, keylen);
        return merr_set(err, MERR_NOMEM, ENOMEM, "cannot connect to '%s'", t->host);
    }
    c->sock = -1;
    c->port = t->port;
    c->timeout_ms = effective_timeout(t->timeout_ms);

    int r = connect_session(c, t, key, keylen, err);
    wipe_free(key, keylen);
    if (r < 0) {
        ssh_conn_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int ssh_wait_ready(const struct ssh_target *t, int total_ms, int interval_ms, struct merr *err)
{
    if (validate_target(t, err) < 0)
        return -1;
    if (interval_ms < 10)
        interval_ms = 10;
    int64_t start = clock_now_ms(), deadline = start + (total_ms > 0 ? total_ms : 0);
    struct merr last = MERR_INIT;
    int attempts = 0;
    for (;;) {
        attempts++;
        int64_t left = deadline - clock_now_ms();
        struct ssh_target bounded = *t;
        int per_op = effective_timeout(t->timeout_ms);
        bounded.timeout_ms = left < per_op ? (left > 100 ? (int)left : 100) : per_op;

        merr_clear(&last);
        auto_ssh_conn struct ssh_conn *c = NULL;
        int status = -1;
        if (ssh_connect(&bounded, &c, &last) == 0 &&
            ssh_exec(c, "exit 0", NULL, 0, NULL, NULL, NULL, NULL, &status, &last) == 0) {
            if (status == 0)
                return 0;
            merr_set(&last, MERR_REMOTE, 0, "'exit 0' returned %d", status);
        }
        if (last.code == MERR_HOSTKEY || last.code == MERR_PERM || last.code == MERR_INVALID ||
            last.code == MERR_NOT_FOUND || last.code == MERR_CORRUPT) {
            *err = last;
            return -1;
        }
        left = deadline - clock_now_ms();
        if (left <= 0)
            break;
        clock_sleep_ms(interval_ms < left ? interval_ms : left);
    }
    return merr_set(err, MERR_TIMEOUT, 0, "ssh on '%s' port %d not ready after %lld ms (%d attempts): %s",
                    t->host, t->port, (long long)(clock_now_ms() - start), attempts, last.msg);
}

/* ---- system ssh ------------------------------------------------------------------ */

static bool safe_word(const char *s)
{
    return s != NULL && s[0] != '\0' && s[0] != '-' && strpbrk(s, "@ \t\r\n") == NULL;
}

char **ssh_external_argv(const struct ssh_target *t, bool tty, char *const *cmd, struct merr *err)
{
    if (t == NULL || !safe_word(t->host) || !safe_word(t->user) || t->key_path == NULL ||
        t->known_hosts_path == NULL || strchr(t->known_hosts_path, '"') != NULL) {
        merr_set(err, MERR_INVALID, 0, "invalid ssh target for the system ssh client");
        return NULL;
    }
    if (t->port <= 0 || t->port > 65535) {
        merr_set(err, MERR_INVALID, 0, "invalid ssh port %d", t->port);
        return NULL;
    }
    size_t ncmd = 0;
    while (cmd != NULL && cmd[ncmd] != NULL)
        ncmd++;

    int timeout_s = (effective_timeout(t->timeout_ms) + 999) / 1000;
    /* ssh splits UserKnownHostsFile on whitespace unless the value is quoted. */
    bool quote = strpbrk(t->known_hosts_path, " \t") != NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", t->port);

    auto_strv char **argv = calloc(22 + ncmd, sizeof *argv);
    if (argv == NULL)
        goto nomem;
    size_t n = 0;
    const char *fixed[] = { "ssh", "-i", t->key_path, "-p", port, "-o", "IdentitiesOnly=yes",
                            "-o" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if ((argv[n++] = strdup(fixed[i])) == NULL)
            goto nomem;
    if (asprintf(&argv[n++], quote ? "UserKnownHostsFile=\"%s\"" : "UserKnownHostsFile=%s",
                 t->known_hosts_path) < 0) {
        argv[--n] = NULL;
        goto nomem;
    }
    const char *opts[] = { "-o", "StrictHostKeyChecking=yes", "-o" };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if ((argv[n++] = strdup(opts[i])) == NULL)
            goto nomem;
    if (asprintf(&argv[n++], "ConnectTimeout=%d", timeout_s) < 0) {
        argv[--n] = NULL;
        goto nomem;
    }
    if ((argv[n++] = strdup("-o")) == NULL || (argv[n++] = strdup("LogLevel=ERROR")) == NULL)
        goto nomem;
    if (asprintf(&argv[n++], "%s@%s", t->user, t->host) < 0) {
        argv[--n] = NULL;
        goto nomem;
    }
    if (tty && (argv[n++] = strdup("-t")) == NULL)
        goto nomem;
    if (ncmd > 0 && (argv[n++] = strdup("--")) == NULL)
        goto nomem;
    for (size_t i = 0; i < ncmd; i++)
        if ((argv[n++] = strdup(cmd[i])) == NULL)
            goto nomem;
    return steal_pointer(&argv);
nomem:
    merr_set(err, MERR_NOMEM, ENOMEM, "cannot build ssh command line");
    return NULL;
}
