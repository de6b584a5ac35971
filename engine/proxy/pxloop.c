/* The userland port proxy's forwarding loop (pxloop.h). TCP: each accepted connection gets a
 * non-blocking connection to the container and two bounded buffers. UDP: one socket connected
 * to the container per client address, dropped after an idle timeout. It works for loopback
 * clients and for other machines alike, with no firewall rule at all; closing a listener frees
 * its port at once. */
#include "pxloop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum px_kind { PX_LISTENER, PX_CONN_SIDE, PX_UDP_FLOW, PX_WATCH };

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
    enum px_proto proto;
    int fd;
    struct sockaddr_storage target;
    socklen_t target_len;
    size_t n_conns;
    struct px_conn *conns;
    struct px_flow *flows;
    bool dead;
    struct px_item *next;
};

struct px_watch {
    enum px_kind kind; /* PX_WATCH */
    int fd, tag;
};

struct px_loop {
    int ep;
    struct px_item *items;
    struct px_watch watches[PX_MAX_WATCHES];
    size_t n_watches;
    struct epoll_event evs[PX_MAX_EVENTS];
    /* removed objects, freed at the end of a dispatch */
    struct px_item *dead_items;
    struct px_conn *dead_conns;
    struct px_flow *dead_flows;
};

static void conn_kill(struct px_loop *p, struct px_conn *c)
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

static void flow_kill(struct px_loop *p, struct px_flow *f)
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

static void side_events(struct px_loop *p, struct px_side *s, struct px_buf *in, struct px_buf *out)
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

static void conn_rearm(struct px_loop *p, struct px_conn *c)
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

static void conn_event(struct px_loop *p, struct px_side *s, uint32_t revents)
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

static void accept_tcp(struct px_loop *p, struct px_item *it)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(it->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (it->n_conns >= PX_MAX_CONNS) {
            close(fd);
            continue;
        }
        int up = socket(it->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (up < 0) {
            close(fd);
            continue;
        }
        int r = connect(up, (struct sockaddr *)&it->target, it->target_len);
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

static void udp_from_client(struct px_loop *p, struct px_item *it)
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
            int fd = socket(it->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&it->target, it->target_len) < 0) {
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

static void udp_from_container(struct px_loop *p, struct px_flow *f)
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

static void sweep_udp(struct px_loop *p)
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

static void free_dead(struct px_loop *p)
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


struct px_loop *px_loop_new(void)
{
    struct px_loop *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    if (p->ep < 0) {
        int e = errno;
        free(p);
        errno = e;
        return NULL;
    }
    return p;
}

static void item_kill(struct px_loop *p, struct px_item *it)
{
    while (it->conns != NULL)
        conn_kill(p, it->conns);
    while (it->flows != NULL)
        flow_kill(p, it->flows);
    it->dead = true;
    close(it->fd);
}

void px_loop_remove_owner(struct px_loop *p, const char *owner)
{
    struct px_item **pp = &p->items;
    while (*pp != NULL) {
        struct px_item *it = *pp;
        if (owner != NULL && (it->owner == NULL || strcmp(it->owner, owner) != 0)) {
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        item_kill(p, it);
        it->next = p->dead_items;
        p->dead_items = it;
    }
}

void px_loop_free(struct px_loop *p)
{
    if (p == NULL)
        return;
    px_loop_remove_owner(p, NULL);
    free_dead(p);
    close(p->ep);
    free(p);
}

int px_loop_add(struct px_loop *p, const char *owner, enum px_proto proto, int fd,
                const struct sockaddr *target, socklen_t target_len)
{
    struct px_item *it = calloc(1, sizeof *it);
    if (it == NULL || target_len > sizeof it->target ||
        (owner != NULL && (it->owner = strdup(owner)) == NULL)) {
        free(it);
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    it->kind = PX_LISTENER;
    it->proto = proto;
    it->fd = fd;
    memcpy(&it->target, target, target_len);
    it->target_len = target_len;
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = it };
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
        int err = errno;
        close(fd);
        free(it->owner);
        free(it);
        errno = err;
        return -1;
    }
    it->next = p->items;
    p->items = it;
    return 0;
}

int px_loop_watch(struct px_loop *p, int fd, int tag)
{
    if (p->n_watches == PX_MAX_WATCHES) {
        errno = ENOSPC;
        return -1;
    }
    struct px_watch *w = &p->watches[p->n_watches];
    *w = (struct px_watch){ .kind = PX_WATCH, .fd = fd, .tag = tag };
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = w };
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) < 0)
        return -1;
    p->n_watches++;
    return 0;
}

int px_loop_wait(struct px_loop *p, int timeout_ms)
{
    int n = epoll_wait(p->ep, p->evs, PX_MAX_EVENTS, timeout_ms);
    return n < 0 ? 0 : n;
}

void px_loop_dispatch(struct px_loop *p, int n, px_watch_fn on_watch, void *data)
{
    for (int i = 0; i < n; i++) {
        enum px_kind kind = *(enum px_kind *)p->evs[i].data.ptr;
        if (kind == PX_WATCH) {
            const struct px_watch *w = p->evs[i].data.ptr;
            if (on_watch != NULL)
                on_watch(data, w->tag, p->evs[i].events);
        } else if (kind == PX_LISTENER) {
            struct px_item *it = p->evs[i].data.ptr;
            if (it->dead)
                continue;
            if (it->proto == PX_TCP)
                accept_tcp(p, it);
            else
                udp_from_client(p, it);
        } else if (kind == PX_CONN_SIDE) {
            conn_event(p, p->evs[i].data.ptr, p->evs[i].events);
        } else if (kind == PX_UDP_FLOW) {
            struct px_flow *f = p->evs[i].data.ptr;
            if (!f->dead)
                udp_from_container(p, f);
        }
    }
    sweep_udp(p);
    free_dead(p);
}
