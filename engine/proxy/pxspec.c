/* machine-proxy's arguments and the /proc/PID/stat field the engine checks it by (pure). */
#include "pxspec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static bool parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
    if (len == 0 || len > 10)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max || (len > 1 && s[0] == '0'))
        return false;
    *out = v;
    return true;
}

static int parse_target(const char *addr, size_t alen, const char *port, struct px_listener *out)
{
    unsigned long p;
    if (!parse_uint(port, strlen(port), 65535, &p) || p == 0)
        return -1;
    char ip[INET6_ADDRSTRLEN];
    memset(&out->target, 0, sizeof out->target);
    if (alen >= 2 && addr[0] == '[' && addr[alen - 1] == ']') {
        if (alen - 2 >= sizeof ip)
            return -1;
        memcpy(ip, addr + 1, alen - 2);
        ip[alen - 2] = '\0';
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&out->target;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, ip, &sa->sin6_addr) != 1)
            return -1;
        out->target_len = sizeof *sa;
        return 0;
    }
    if (alen >= sizeof ip)
        return -1;
    memcpy(ip, addr, alen);
    ip[alen] = '\0';
    struct sockaddr_in *sa = (struct sockaddr_in *)&out->target;
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)p);
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
        return -1;
    out->target_len = sizeof *sa;
    return 0;
}

int px_listener_parse(const char *s, struct px_listener *out, struct merr *err)
{
    const char *c1 = strchr(s, ':');
    const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    const char *c3 = c2 != NULL ? strrchr(c2 + 1, ':') : NULL;
    unsigned long fd;
    if (c3 == NULL || !parse_uint(s, (size_t)(c1 - s), 1048576, &fd) || fd < 3)
        return merr_set(err, MERR_INVALID, 0, "invalid listener '%s' (FD:PROTO:ADDR:PORT)", s);
    size_t plen = (size_t)(c2 - c1 - 1);
    if (plen == 3 && memcmp(c1 + 1, "tcp", 3) == 0)
        out->proto = PX_TCP;
    else if (plen == 3 && memcmp(c1 + 1, "udp", 3) == 0)
        out->proto = PX_UDP;
    else
        return merr_set(err, MERR_INVALID, 0, "invalid protocol in '%s' (tcp or udp)", s);
    if (parse_target(c2 + 1, (size_t)(c3 - c2 - 1), c3 + 1, out) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid target address in '%s'", s);
    out->fd = (int)fd;
    return 0;
}

int px_listener_format(const struct px_listener *l, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    bool v6 = l->target.ss_family == AF_INET6;
    if (v6) {
        const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)&l->target;
        inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof ip);
        port = ntohs(sa->sin6_port);
    } else {
        const struct sockaddr_in *sa = (const struct sockaddr_in *)&l->target;
        inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
        port = ntohs(sa->sin_port);
    }
    int n = snprintf(buf, size, v6 ? "%d:%s:[%s]:%u" : "%d:%s:%s:%u", l->fd,
                     l->proto == PX_UDP ? "udp" : "tcp", ip, port);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

void px_args_release(struct px_args *a)
{
    free(a->listeners);
    a->listeners = NULL;
    a->n = 0;
}

int px_args_parse(int argc, char *const *argv, struct px_args *out, struct merr *err)
{
    *out = (struct px_args){ .hold = -1 };
    if (argc < 2)
        return merr_set(err, MERR_INVALID, 0, "no listener given");
    out->listeners = calloc((size_t)argc, sizeof *out->listeners);
    if (out->listeners == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    for (int i = 1; i < argc; i++) {
        unsigned long fd;
        if (strcmp(argv[i], "--hold") == 0) {
            if (i + 1 == argc || !parse_uint(argv[i + 1], strlen(argv[i + 1]), 1048576, &fd) ||
                fd < 3) {
                px_args_release(out);
                return merr_set(err, MERR_INVALID, 0, "--hold needs a file descriptor");
            }
            out->hold = (int)fd;
            i++;
            continue;
        }
        if (px_listener_parse(argv[i], &out->listeners[out->n], err) < 0) {
            px_args_release(out);
            return -1;
        }
        out->n++;
    }
    for (size_t i = 0; i < out->n; i++)
        for (size_t j = 0; j <= i; j++)
            if ((j < i && out->listeners[j].fd == out->listeners[i].fd) ||
                out->listeners[i].fd == out->hold) {
                int fd = out->listeners[i].fd;
                px_args_release(out);
                return merr_set(err, MERR_INVALID, 0, "file descriptor %d given twice", fd);
            }
    if (out->n == 0) {
        px_args_release(out);
        return merr_set(err, MERR_INVALID, 0, "no listener given");
    }
    return 0;
}

unsigned long long px_stat_starttime(const char *text, size_t len)
{
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, the last ')' ends it */
    const char *end = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ')')
            end = text + i;
    if (end == NULL)
        return 0;
    const char *p = end + 1, *stop = text + len;
    /* field 3 (state) follows; the start time is field 22 */
    for (int field = 2; field < 22; field++) {
        while (p < stop && *p == ' ')
            p++;
        if (field == 21)
            break;
        while (p < stop && *p != ' ')
            p++;
    }
    unsigned long long v = 0;
    bool digits = false;
    for (; p < stop && *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned long long)(*p - '0');
        digits = true;
    }
    return digits && (p == stop || *p == ' ' || *p == '\n') ? v : 0;
}
