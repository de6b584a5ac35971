/* The userland port proxy (docker-proxy's job, inside the engine): one epoll thread forwards
 * the host's published ports to containers. TCP: each accepted connection gets a non-blocking
 * connection to the container and two bounded buffers. UDP: one socket connected to the
 * container per client address, dropped after an idle timeout. It works for loopback clients
 * and for other machines alike, with no firewall rule at all; stopping a container closes
 * its listeners, which frees the ports at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "network-priv.h"

#define PX_BUF 65536
#define PX_MAX_CONNS 1024   /* per listener */
#define PX_UDP_IDLE_S 30
#define PX_MAX_EVENTS 64

enum px_kind { PX_LISTENER, PX_CONN_SIDE, PX_UDP_FLOW, PX_WAKE };

struct px_item;

/* One direction's buffer: bytes read from 'from' waiting to be written to the other side. */
struct px_buf {
    char data[PX_BUF];
    size_t len;
    bool eof;
};

struct px_conn {
    struct px_side {
        enum px_kind kind; /* PX_CONN_SIDE: first, so epoll data points here */
        struct px_conn *conn;
        int fd;
        bool connecting;
    } a, b; /* a: the client, b: the container */
    struct px_buf a2b, b2a;
    struct px_item *owner;
    bool dead;
    struct px_conn *next;
};

struct px_flow {
    enum px_kind kind; /* PX_UDP_FLOW */
    struct px_item *owner;
    int fd; /* connected to the container */
    struct sockaddr_storage client;
    socklen_t client_len;
    time_t last;
    bool dead;
    struct px_flow *next;
};

struct px_item { /* a listener */
    enum px_kind kind; /* PX_LISTENER */
    char *owner;
    enum net_proto proto;
    int fd;
    struct sockaddr_in target;
    size_t n_conns;
    struct px_conn *conns;
    struct px_flow *flows;
    bool dead;
    struct px_item *next;
};

struct net_proxy {
    pthread_mutex_t lock;
    const struct mlog *log;
    int ep, wake;
    bool stop;
    pthread_t thread;
    struct px_item *items;
    /* removed objects, freed by the loop between two epoll_wait calls */
    struct px_item *dead_items;
    struct px_conn *dead_conns;
    struct px_flow *dead_flows;
};

static void conn_kill(struct net_proxy *p, struct px_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    close(c->a.fd);
    close(c->b.fd);
    struct px_conn **pp = &c->owner->conns;
    while (*pp != NULL && *pp != c)
        pp = &(*pp)->next;
    if (*pp == c)
        *pp = c->next;
    c->owner->n_conns--;
    c->next = p->dead_conns;
    p->dead_conns = c;
}

static void flow_kill(struct net_proxy *p, struct px_flow *f)
{
    if (f->dead)
        return;
    f->dead = true;
    close(f->fd);
    struct px_flow **pp = &f->owner->flows;
    while (*pp != NULL && *pp != f)
        pp = &(*pp)->next;
    if (*pp == f)
        *pp = f->next;
    f->next = p->dead_flows;
    p->dead_flows = f;
}

static void side_events(struct net_proxy *p, struct px_side *s, struct px_buf *in, struct px_buf *out)
{
    /* read while our inbound buffer has room; write while the outbound one has data */
    uint32_t ev = 0;
    if (s->connecting)
        ev = EPOLLOUT;
    else {
        if (!in->eof && in->len < PX_BUF)
            ev |= EPOLLIN;
        if (out->len > 0)
            ev |= EPOLLOUT;
    }
    struct epoll_event e = { .events = ev, .data.ptr = s };
    epoll_ctl(p->ep, EPOLL_CTL_MOD, s->fd, &e);
}

static void conn_rearm(struct net_proxy *p, struct px_conn *c)
{
    side_events(p, &c->a, &c->a2b, &c->b2a);
    side_events(p, &c->b, &c->b2a, &c->a2b);
}

/* Moves bytes: read from s into in, write out to s. Returns false when the connection ends. */
static bool side_io(struct px_side *s, struct px_buf *in, struct px_buf *out, struct px_side *other)
{
    if (s->connecting) {
        int e = 0;
        socklen_t l = sizeof e;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e != 0)
            return false;
        s->connecting = false;
    }
    if (!in->eof && in->len < PX_BUF) {
        ssize_t n = read(s->fd, in->data + in->len, PX_BUF - in->len);
        if (n > 0)
            in->len += (size_t)n;
        else if (n == 0)
            in->eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            return false;
    }
    if (out->len > 0) {
        ssize_t n = write(s->fd, out->data, out->len);
        if (n > 0) {
            memmove(out->data, out->data + n, out->len - (size_t)n);
            out->len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return false;
        }
    }
    if (out->eof && out->len == 0)
        shutdown(s->fd, SHUT_WR);
    (void)other;
    return true;
}

static void conn_event(struct net_proxy *p, struct px_side *s, uint32_t revents)
{
    struct px_conn *c = s->conn;
    if (c->dead)
        return;
    bool ok = s == &c->a ? side_io(&c->a, &c->a2b, &c->b2a, &c->b)
                         : side_io(&c->b, &c->b2a, &c->a2b, &c->a);
    /* the other side may now write what was just read */
    if (ok && !c->b.connecting)
        ok = s == &c->a ? side_io(&c->b, &c->b2a, &c->a2b, &c->a)
                        : side_io(&c->a, &c->a2b, &c->b2a, &c->b);
    bool done = c->a2b.eof && c->b2a.eof && c->a2b.len == 0 && c->b2a.len == 0;
    /* an error or a full hang-up is reported at every wait: nothing more can move */
    if (!ok || done || (revents & (EPOLLERR | EPOLLHUP))) {
        conn_kill(p, c);
        return;
    }
    conn_rearm(p, c);
}

static void accept_tcp(struct net_proxy *p, struct px_item *it)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(it->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (it->n_conns >= PX_MAX_CONNS) {
            close(fd);
            continue;
        }
        int up = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (up < 0) {
            close(fd);
            continue;
        }
        int r = connect(up, (struct sockaddr *)&it->target, sizeof it->target);
        if (r < 0 && errno != EINPROGRESS) {
            close(fd);
            close(up);
            continue;
        }
        struct px_conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            close(up);
            return;
        }
        c->a = (struct px_side){ PX_CONN_SIDE, c, fd, false };
        c->b = (struct px_side){ PX_CONN_SIDE, c, up, r < 0 };
        c->owner = it;
        c->next = it->conns;
        it->conns = c;
        it->n_conns++;
        struct epoll_event ea = { .events = EPOLLIN, .data.ptr = &c->a };
        struct epoll_event eb = { .events = EPOLLOUT, .data.ptr = &c->b };
        epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ea);
        epoll_ctl(p->ep, EPOLL_CTL_ADD, up, &eb);
        conn_rearm(p, c);
    }
}

static void udp_from_client(struct net_proxy *p, struct px_item *it)
{
    char buf[PX_BUF];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(it->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        struct px_flow *f = it->flows;
        size_t count = 0;
        for (; f != NULL; f = f->next, count++)
            if (f->client_len == fl && memcmp(&f->client, &from, fl) == 0)
                break;
        if (f == NULL) {
            if (count >= PX_MAX_CONNS)
                continue;
            int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&it->target, sizeof it->target) < 0) {
                if (fd >= 0)
                    close(fd);
                continue;
            }
            f = calloc(1, sizeof *f);
            if (f == NULL) {
                close(fd);
                return;
            }
            f->kind = PX_UDP_FLOW;
            f->owner = it;
            f->fd = fd;
            f->client = from;
            f->client_len = fl;
            f->next = it->flows;
            it->flows = f;
            struct epoll_event e = { .events = EPOLLIN, .data.ptr = f };
            epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e);
        }
        f->last = time(NULL);
        if (send(f->fd, buf, (size_t)n, 0) < 0 && errno != EAGAIN)
            flow_kill(p, f);
    }
}

static void udp_from_container(struct net_proxy *p, struct px_flow *f)
{
    char buf[PX_BUF];
    for (int i = 0; i < 64 && !f->dead; i++) {
        ssize_t n = recv(f->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                flow_kill(p, f);
            return;
        }
        f->last = time(NULL);
        sendto(f->owner->fd, buf, (size_t)n, 0, (struct sockaddr *)&f->client, f->client_len);
    }
}

static void sweep_udp(struct net_proxy *p)
{
    time_t now = time(NULL);
    for (struct px_item *it = p->items; it != NULL; it = it->next) {
        struct px_flow *f = it->flows;
        while (f != NULL) {
            struct px_flow *next = f->next;
            if (now - f->last > PX_UDP_IDLE_S)
                flow_kill(p, f);
            f = next;
        }
    }
}

static void free_dead(struct net_proxy *p)
{
    while (p->dead_conns != NULL) {
        struct px_conn *c = p->dead_conns;
        p->dead_conns = c->next;
        free(c);
    }
    while (p->dead_flows != NULL) {
        struct px_flow *f = p->dead_flows;
        p->dead_flows = f->next;
        free(f);
    }
    while (p->dead_items != NULL) {
        struct px_item *it = p->dead_items;
        p->dead_items = it->next;
        free(it->owner);
        free(it);
    }
}

static void *proxy_loop(void *opaque)
{
    struct net_proxy *p = opaque;
    struct epoll_event evs[PX_MAX_EVENTS];
    for (;;) {
        pthread_mutex_lock(&p->lock);
        free_dead(p);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        int n = epoll_wait(p->ep, evs, PX_MAX_EVENTS, 1000);
        pthread_mutex_lock(&p->lock);
        for (int i = 0; i < n; i++) {
            enum px_kind kind = *(enum px_kind *)evs[i].data.ptr;
            if (kind == PX_WAKE) {
                uint64_t v;
                if (read(p->wake, &v, sizeof v) < 0)
                    continue;
            } else if (kind == PX_LISTENER) {
                struct px_item *it = evs[i].data.ptr;
                if (it->dead)
                    continue;
                if (it->proto == NET_TCP)
                    accept_tcp(p, it);
                else
                    udp_from_client(p, it);
            } else if (kind == PX_CONN_SIDE) {
                conn_event(p, evs[i].data.ptr, evs[i].events);
            } else if (kind == PX_UDP_FLOW) {
                struct px_flow *f = evs[i].data.ptr;
                if (!f->dead)
                    udp_from_container(p, f);
            }
        }
        sweep_udp(p);
        pthread_mutex_unlock(&p->lock);
    }
}

static const enum px_kind wake_kind = PX_WAKE;

struct net_proxy *net_proxy_new(const struct mlog *log, struct merr *err)
{
    struct net_proxy *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->log = log;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = (void *)&wake_kind };
    if (p->ep < 0 || p->wake < 0 || epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake, &e) < 0 ||
        pthread_create(&p->thread, NULL, proxy_loop, p) != 0) {
        merr_set(err, MERR_IO, errno, "cannot start the port proxy");
        if (p->ep >= 0)
            close(p->ep);
        if (p->wake >= 0)
            close(p->wake);
        free(p);
        return NULL;
    }
    return p;
}

static void item_kill(struct net_proxy *p, struct px_item *it)
{
    while (it->conns != NULL)
        conn_kill(p, it->conns);
    while (it->flows != NULL)
        flow_kill(p, it->flows);
    it->dead = true;
    close(it->fd);
}

void net_proxy_remove_owner(struct net_proxy *p, const char *owner)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    struct px_item **pp = &p->items;
    while (*pp != NULL) {
        struct px_item *it = *pp;
        if (strcmp(it->owner, owner) != 0) {
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        item_kill(p, it);
        it->next = p->dead_items;
        p->dead_items = it;
    }
    pthread_mutex_unlock(&p->lock);
}

int net_proxy_add(struct net_proxy *p, const char *owner, enum net_proto proto, const char *host_ip,
                  uint16_t host_port, uint32_t target_ip, uint16_t target_port, uint16_t *bound,
                  struct merr *err)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(host_port) };
    if (host_ip != NULL && host_ip[0] != '\0' && inet_pton(AF_INET, host_ip, &sa.sin_addr) != 1)
        return merr_set(err, MERR_INVALID, 0, "invalid host IP '%s'", host_ip);
    int fd = socket(AF_INET, (proto == NET_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
                                 SOCK_CLOEXEC, 0);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        (proto == NET_TCP && listen(fd, 128) < 0)) {
        int e = errno;
        close(fd);
        char ip[NET_IP_STR];
        net_ip_str(ntohl(sa.sin_addr.s_addr), ip);
        return merr_set(err, e == EADDRINUSE ? MERR_EXISTS : MERR_IO, e,
                        "driver failed programming external connectivity: Bind for %s:%u failed: "
                        "port is already allocated",
                        ip, host_port);
    }
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    struct px_item *it = xcalloc(1, sizeof *it);
    it->kind = PX_LISTENER;
    it->owner = xstrdup(owner);
    it->proto = proto;
    it->fd = fd;
    it->target = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(target_port),
                                       .sin_addr.s_addr = htonl(target_ip) };
    pthread_mutex_lock(&p->lock);
    it->next = p->items;
    p->items = it;
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = it };
    epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e);
    pthread_mutex_unlock(&p->lock);
    *bound = ntohs(sa.sin_port);
    return 0;
}

void net_proxy_free(struct net_proxy *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    while (p->items != NULL) {
        struct px_item *it = p->items;
        p->items = it->next;
        item_kill(p, it);
        it->next = p->dead_items;
        p->dead_items = it;
    }
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    if (write(p->wake, &one, sizeof one) < 0)
        mlog_debug(p->log, "cannot wake the port proxy");
    pthread_join(p->thread, NULL);
    free_dead(p);
    close(p->ep);
    close(p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
