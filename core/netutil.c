#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"

bool net_is_ip(const char *text)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return text != NULL &&
           (inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1);
}

static int dial_addr(const struct addrinfo *ai, int timeout_ms, int *out_errno)
{
    auto_close int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                               ai->ai_protocol);
    if (fd < 0) {
        *out_errno = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        *out_errno = errno;
        return -1;
    }
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        *out_errno = ETIMEDOUT;
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
        *out_errno = soerr != 0 ? soerr : errno;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        *out_errno = errno;
        return -1;
    }
    return steal_fd(&fd);
}

int net_dial(const char *host, int port, int timeout_ms, struct merr *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    /* Only literal addresses are resolved without DNS; names go through the resolver. */
    if (net_is_ip(host))
        hints.ai_flags = AI_NUMERICHOST;
    int gai = getaddrinfo(host, portbuf, &hints, &res);
    if (gai != 0)
        return merr_set(err, MERR_UNREACHABLE, 0, "cannot resolve '%s': %s", host, gai_strerror(gai));
    int64_t deadline = clock_deadline_ms(timeout_ms);
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int64_t left = clock_left_ms(deadline);
        if (left <= 0) {
            last_errno = ETIMEDOUT;
            break;
        }
        int fd = dial_addr(ai, (int)left, &last_errno);
        if (fd >= 0) {
            freeaddrinfo(res);
            return fd;
        }
    }
    freeaddrinfo(res);
    if (last_errno == ETIMEDOUT)
        return merr_set(err, MERR_TIMEOUT, 0, "cannot connect to '%s' port %d: timed out after %d ms",
                        host, port, timeout_ms);
    return merr_set(err, MERR_UNREACHABLE, last_errno, "cannot connect to '%s' port %d", host, port);
}

int net_parse_tcp_url(const char *url, char **host, int *port, struct merr *err)
{
    const char *p = url;
    if (strncmp(p, "tcp://", 6) != 0)
        return merr_set(err, MERR_INVALID, 0, "invalid URL '%s': must start with tcp://", url);
    p += 6;
    const char *hs, *he, *colon;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (he == NULL)
            return merr_set(err, MERR_INVALID, 0, "invalid URL '%s': unterminated '['", url);
        colon = he[1] == ':' ? he + 1 : NULL;
        if (he[1] != ':' && he[1] != '\0' && he[1] != '/')
            return merr_set(err, MERR_INVALID, 0, "invalid URL '%s'", url);
    } else {
        hs = p;
        colon = strchr(p, ':');
        he = colon != NULL ? colon : p + strcspn(p, "/");
    }
    if (he == hs)
        return merr_set(err, MERR_INVALID, 0, "invalid URL '%s': no host", url);
    long v = 2376;
    if (colon != NULL) {
        char *end = NULL;
        errno = 0;
        v = strtol(colon + 1, &end, 10);
        if (errno != 0 || end == colon + 1 || (*end != '\0' && *end != '/') || v <= 0 || v > 65535)
            return merr_set(err, MERR_INVALID, 0, "invalid URL '%s': bad port", url);
    }
    *host = strndup(hs, (size_t)(he - hs));
    if (*host == NULL)
        abort();
    *port = (int)v;
    return 0;
}
