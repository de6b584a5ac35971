/* -H addresses and the listening sockets behind them. */
#include "api-priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define DEFAULT_TCP_PORT 2375
#define DEFAULT_TLS_PORT 2376
#define SOCKET_GROUP "docker"
#define SOCKET_MODE 0660

void api_listen_spec_release(struct api_listen_spec *spec)
{
    if (spec == NULL)
        return;
    free(spec->path);
    free(spec->host);
    memset(spec, 0, sizeof *spec);
}

static bool address_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static int parse_unix(const char *addr, const char *path, struct api_listen_spec *out,
                      struct merr *err)
{
    struct sockaddr_un sun;
    if (*path == '\0')
        return merr_set(err, MERR_INVALID, 0, "missing socket path in '%s'", addr);
    if (strlen(path) >= sizeof sun.sun_path)
        return merr_set(err, MERR_INVALID, 0, "socket path '%s' is too long", path);
    out->kind = API_LISTEN_UNIX;
    out->path = strdup(path);
    if (out->path == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    return 0;
}

static int parse_tcp(const char *addr, const char *hostport, bool tls,
                     struct api_listen_spec *out, struct merr *err)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text = NULL;
    size_t host_len;
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return merr_set(err, MERR_INVALID, 0, "invalid address '%s'", addr);
        host_len = (size_t)(close - hostport - 1);
        hostport++;
        port_text = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strrchr(hostport, ':');
        if (colon != NULL && strchr(hostport, ':') != colon)
            return merr_set(err, MERR_INVALID, 0, "IPv6 address in '%s' needs brackets", addr);
        host_len = colon != NULL ? (size_t)(colon - hostport) : strlen(hostport);
        port_text = colon != NULL ? colon + 1 : NULL;
    }
    if (host_len >= sizeof host)
        return merr_set(err, MERR_INVALID, 0, "invalid address '%s'", addr);
    memcpy(host, hostport, host_len);
    host[host_len] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");

    long port = tls ? DEFAULT_TLS_PORT : DEFAULT_TCP_PORT;
    if (port_text != NULL) {
        char *end;
        errno = 0;
        port = strtol(port_text, &end, 10);
        if (*port_text == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
            return merr_set(err, MERR_INVALID, 0, "invalid port in '%s'", addr);
    }
    struct in6_addr scratch;
    if (host[0] != '\0' && inet_pton(AF_INET, host, &scratch) != 1 &&
        inet_pton(AF_INET6, host, &scratch) != 1)
        return merr_set(err, MERR_INVALID, 0, "'%s' is not a numeric IP address in '%s'", host,
                        addr);
    bool loopback = host[0] != '\0' && address_is_loopback(host);
    if (!loopback && !tls)
        return merr_set(err, MERR_PERM, 0,
                        "refusing to listen on '%s' without --tlsverify: the API gives root "
                        "access to anyone who can reach it",
                        addr);
    out->kind = API_LISTEN_TCP;
    out->host = strdup(host);
    out->port = (uint16_t)port;
    out->loopback = loopback;
    out->tls = tls;
    if (out->host == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    return 0;
}

int api_listen_spec_parse(const char *addr, bool tls, struct api_listen_spec *out,
                          struct merr *err)
{
    memset(out, 0, sizeof *out);
    int r;
    if (strncmp(addr, "unix://", 7) == 0)
        r = parse_unix(addr, addr + 7, out, err);
    else if (addr[0] == '/')
        r = parse_unix(addr, addr, out, err);
    else if (strncmp(addr, "tcp://", 6) == 0)
        r = parse_tcp(addr, addr + 6, tls, out, err);
    else if (strncmp(addr, "fd://", 5) == 0)
        r = merr_set(err, MERR_UNSUPPORTED, 0, "socket activation ('%s') is not supported", addr);
    else
        r = merr_set(err, MERR_INVALID, 0, "invalid host address '%s': use unix:///path or "
                                           "tcp://host:port", addr);
    if (r < 0)
        api_listen_spec_release(out);
    return r;
}

/* ---- sockets ------------------------------------------------------------ */

static int socket_in_use(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int auto_close fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
}

static int lookup_socket_group(gid_t *gid)
{
    struct group grp, *found = NULL;
    char buf[4096];
    if (getgrnam_r(SOCKET_GROUP, &grp, buf, sizeof buf, &found) != 0 || found == NULL)
        return -1;
    *gid = found->gr_gid;
    return 0;
}

/* Creates a listening Unix socket at path that is never reachable there with
 * a mode looser than 0660 (security case 4).
 *
 * The socket is bound and put in listening state inside a fresh 0700 directory
 * next to the target, then chowned and chmodded there, and only then renamed
 * onto the target path. No other user can resolve a name inside the 0700
 * directory, so the bind-time mode (0777 & ~umask) is never exposed, and
 * rename() publishes the finished socket atomically. This avoids changing
 * the umask, which is process-wide and would race with other threads. */
int api_listen_unix(const char *path, unsigned publish_delay_ms, int *fd_out, dev_t *dev,
                    ino_t *ino, struct merr *err)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return merr_set(err, MERR_EXISTS, 0, "'%s' exists and is not a socket", path);
        if (socket_in_use(path))
            return merr_set(err, MERR_BUSY, 0, "another daemon is listening on '%s'", path);
    }
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    const char *dir = slash == NULL ? "." : path;
    char tmpdir[PATH_MAX];
    if (snprintf(tmpdir, sizeof tmpdir, "%.*s/.machine-engine-XXXXXX", (int)dir_len, dir) >=
        (int)sizeof tmpdir)
        return merr_set(err, MERR_INVALID, 0, "socket path '%s' is too long", path);
    if (mkdtemp(tmpdir) == NULL) /* mode 0700 */
        return merr_set(err, MERR_IO, errno, "cannot create a directory next to '%s'", path);

    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int auto_close fd = -1;
    int r = -1;
    if (snprintf(sun.sun_path, sizeof sun.sun_path, "%s/s", tmpdir) >= (int)sizeof sun.sun_path) {
        merr_set(err, MERR_INVALID, 0, "socket path '%s' is too long", path);
        goto out_dir;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        merr_set(err, MERR_IO, errno, "cannot create socket");
        goto out_dir;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        merr_set(err, MERR_IO, errno, "cannot bind '%s'", sun.sun_path);
        goto out_dir;
    }
    /* Listening before the mode is set is safe here (nobody else can reach the 0700
     * directory), and it is the window the test hook holds open. */
    if (listen(fd, SOMAXCONN) < 0) {
        merr_set(err, MERR_IO, errno, "cannot listen on '%s'", path);
        goto out_sock;
    }
    if (publish_delay_ms > 0) {
        struct timespec ts = { publish_delay_ms / 1000, (long)(publish_delay_ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    gid_t gid;
    if (lookup_socket_group(&gid) == 0 && chown(sun.sun_path, (uid_t)-1, gid) < 0) {
        merr_set(err, MERR_IO, errno, "cannot give '%s' to group '" SOCKET_GROUP "'", path);
        goto out_sock;
    }
    if (chmod(sun.sun_path, SOCKET_MODE) < 0) {
        merr_set(err, MERR_IO, errno, "cannot set the mode of '%s'", path);
        goto out_sock;
    }
    if (rename(sun.sun_path, path) < 0) {
        merr_set(err, MERR_IO, errno, "cannot move the socket to '%s'", path);
        goto out_sock;
    }
    if (stat(path, &st) < 0) {
        merr_set(err, MERR_IO, errno, "cannot stat '%s'", path);
        goto out_dir;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    *fd_out = steal_fd(&fd);
    r = 0;
    goto out_dir;
out_sock:
    unlink(sun.sun_path);
out_dir:
    rmdir(tmpdir);
    return r;
}

int api_listen_tcp(const struct api_listen_spec *spec, int *fd_out, struct merr *err)
{
    char port[8];
    snprintf(port, sizeof port, "%u", spec->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
    };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(spec->host[0] != '\0' ? spec->host : NULL, port, &hints, &res);
    if (gai != 0)
        return merr_set(err, MERR_INVALID, 0, "cannot resolve '%s': %s", spec->host,
                        gai_strerror(gai));
    int auto_close fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    int r = 0;
    if (fd < 0)
        r = merr_set(err, MERR_IO, errno, "cannot create socket");
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        r = merr_set(err, MERR_IO, errno, "cannot set SO_REUSEADDR");
    else if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        r = merr_set(err, MERR_IO, errno, "cannot bind tcp://%s:%s", spec->host, port);
    else if (listen(fd, SOMAXCONN) < 0)
        r = merr_set(err, MERR_IO, errno, "cannot listen on tcp://%s:%s", spec->host, port);
    freeaddrinfo(res);
    if (r == 0)
        *fd_out = steal_fd(&fd);
    return r;
}
