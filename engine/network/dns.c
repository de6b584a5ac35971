/* The embedded DNS server (dockerd's 127.0.0.11): containers on user-defined networks get
 * "nameserver 127.0.0.11"; a UDP socket bound there inside each such container's namespace is
 * served by one epoll thread here, and a TCP socket beside it (for answers too big for a
 * datagram) by a short-lived thread per connection, bounded in number, queries and time. Names of containers (names, aliases, IDs) on the asking
 * container's networks are answered from the lookup function; every other question is
 * forwarded to the host's nameservers from the engine's own namespace (so a loopback resolver
 * of the host works too) and the answer relayed back as is.
 *
 * Locking: the thread reads a datagram under the lock, answers the lookup without it (the
 * lookup takes the network service's lock, which is held while sockets are added or
 * removed), then sends under the lock again if the socket is still there. Removed objects
 * are freed by the thread itself between two waits. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "network-priv.h"

#define DNS_MAX_EVENTS 32
#define DNS_MAX_FORWARDS 256    /* queries in flight to upstreams, all containers */
#define DNS_BURST 16            /* datagrams read per wake-up from one socket */
#define DNS_UPSTREAM_WAIT_MS 2000 /* then the next upstream, then nothing: the client retries */
#define DNS_MAX_IPS 32
#define DNS_TCP_WORKERS 16      /* connections served at once, all containers */
#define DNS_TCP_QUERIES 64      /* queries per connection */
#define DNS_TCP_IO_S 10         /* a client or an upstream silent this long is dropped */
#define DNS_TCP_CONNECT_MS 2000
#define DNS_TCP_MAX_REPLY 65535

enum dns_kind { DNS_LISTENER, DNS_FORWARD, DNS_WAKE };

struct dns_listener {
    enum dns_kind kind; /* DNS_LISTENER: first, so epoll data points here */
    char owner[65];
    int fd;
    bool tcp;
    uint32_t upstreams[3]; /* the container's own (--dns), else the configured ones */
    size_t n_upstreams;
    bool dead;
    struct dns_listener *next;
};

struct dns_forward {
    enum dns_kind kind; /* DNS_FORWARD */
    struct dns_listener *from;
    int fd; /* connected to the upstream */
    struct sockaddr_in client;
    uint16_t id;
    size_t attempt;
    uint8_t query[NET_DNS_MAX_MSG];
    size_t len;
    struct timespec deadline;
    bool dead;
    struct dns_forward *next;
};

/* A TCP connection, served by its own thread. */
struct dns_worker {
    struct net_dns *d;
    char owner[65];
    uint32_t upstreams[3];
    size_t n_upstreams;
    int fd;    /* the client */
    int up_fd; /* the upstream being asked, or -1 */
    struct dns_worker *next;
};

struct net_dns {
    pthread_mutex_t lock;
    pthread_cond_t workers_done;
    struct dns_worker *workers;
    size_t n_workers;
    struct net_dns_config cfg;
    int ep, wake;
    bool stop;
    pthread_t thread;
    struct dns_listener *listeners, *dead_listeners;
    struct dns_forward *forwards, *dead_forwards;
    size_t n_forwards;
};

static const enum dns_kind wake_kind = DNS_WAKE;

static void forward_kill(struct net_dns *d, struct dns_forward *f)
{
    if (f->dead)
        return;
    f->dead = true;
    close(f->fd);
    struct dns_forward **pp = &d->forwards;
    while (*pp != NULL && *pp != f)
        pp = &(*pp)->next;
    if (*pp == f)
        *pp = f->next;
    d->n_forwards--;
    f->next = d->dead_forwards;
    d->dead_forwards = f;
}

static void listener_kill(struct net_dns *d, struct dns_listener *l)
{
    for (struct dns_forward *f = d->forwards, *next; f != NULL; f = next) {
        next = f->next;
        if (f->from == l)
            forward_kill(d, f);
    }
    l->dead = true;
    close(l->fd);
    struct dns_listener **pp = &d->listeners;
    while (*pp != NULL && *pp != l)
        pp = &(*pp)->next;
    if (*pp == l)
        *pp = l->next;
    l->next = d->dead_listeners;
    d->dead_listeners = l;
}

static void free_dead(struct net_dns *d)
{
    while (d->dead_forwards != NULL) {
        struct dns_forward *f = d->dead_forwards;
        d->dead_forwards = f->next;
        free(f);
    }
    while (d->dead_listeners != NULL) {
        struct dns_listener *l = d->dead_listeners;
        d->dead_listeners = l->next;
        free(l);
    }
}

/* Sends f's query to its current upstream on a fresh connected socket. Locked. */
static int forward_send(struct net_dns *d, struct dns_forward *f)
{
    if (f->fd >= 0) {
        epoll_ctl(d->ep, EPOLL_CTL_DEL, f->fd, NULL);
        close(f->fd);
    }
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0)
        return -1;
    uint16_t port = d->cfg.upstream_port != 0 ? d->cfg.upstream_port : NS_DEFAULTPORT;
    struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(f->from->upstreams[f->attempt]) };
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = f };
    if (connect(f->fd, (struct sockaddr *)&up, sizeof up) < 0 ||
        send(f->fd, f->query, f->len, 0) < 0 || epoll_ctl(d->ep, EPOLL_CTL_ADD, f->fd, &e) < 0)
        return -1;
    f->deadline = clock_deadline_ts(DNS_UPSTREAM_WAIT_MS);
    return 0;
}

static void reply(struct dns_listener *l, const struct sockaddr_in *client, const uint8_t *msg,
                  size_t len)
{
    if (!l->dead && len > 0)
        (void)sendto(l->fd, msg, len, MSG_DONTWAIT, (const struct sockaddr *)client, sizeof *client);
}

/* Locked. Forwards, or answers SERVFAIL when no upstream can take it. */
static void forward(struct net_dns *d, struct dns_listener *l, const struct sockaddr_in *client,
                    const uint8_t *msg, size_t len)
{
    if (l->n_upstreams > 0 && d->n_forwards < DNS_MAX_FORWARDS) {
        struct dns_forward *f = xcalloc(1, sizeof *f);
        f->kind = DNS_FORWARD;
        f->from = l;
        f->fd = -1;
        f->client = *client;
        f->id = (uint16_t)(msg[0] << 8 | msg[1]);
        memcpy(f->query, msg, len);
        f->len = len;
        f->next = d->forwards;
        d->forwards = f;
        d->n_forwards++;
        if (forward_send(d, f) == 0)
            return;
        forward_kill(d, f);
    }
    uint8_t out[NET_DNS_UDP_MAX];
    reply(l, client, out, net_dns_error_build(msg, len, ns_r_servfail, out, sizeof out));
}

enum dns_verdict { DNS_DROP, DNS_ANSWER, DNS_FORWARD_IT };

/* What to do with query msg from owner's container: an answer built into out, a forward, or
 * nothing (an answer is never answered). Unlocked: the lookup takes the service's lock. */
static enum dns_verdict decide(struct net_dns *d, const char *owner, const uint8_t *msg,
                               size_t len, uint8_t out[NET_DNS_UDP_MAX], size_t *out_len)
{
    struct net_dns_query q;
    struct merr err = MERR_INIT;
    int r = net_dns_query_parse(msg, len, &q, &err);
    *out_len = 0;
    if (r < 0 && err.code == MERR_UNSUPPORTED) {
        *out_len = net_dns_error_build(msg, len, ns_r_notimpl, out, NET_DNS_UDP_MAX);
    } else if (r < 0) {
        if (len >= 3 && (msg[2] & 0x80))
            return DNS_DROP;
        *out_len = net_dns_error_build(msg, len, ns_r_formerr, out, NET_DNS_UDP_MAX);
    } else {
        uint32_t ips[DNS_MAX_IPS];
        struct net_ip6 ips6[DNS_MAX_IPS];
        bool v6 = q.qtype == ns_t_aaaa && d->cfg.lookup6 != NULL;
        int n = q.qclass != ns_c_in || q.name[0] == '\0' ? -1
                : v6 ? d->cfg.lookup6(d->cfg.data, owner, q.name, ips6, DNS_MAX_IPS)
                     : d->cfg.lookup(d->cfg.data, owner, q.name, ips, DNS_MAX_IPS);
        if (n < 0)
            return DNS_FORWARD_IT;
        /* a container's name: A records, AAAA ones when it has IPv6 (else none, but the name
         * exists) */
        *out_len = v6 ? net_dns_reply6_build(msg, &q, ns_r_noerror, ips6, (size_t)n, out, NET_DNS_UDP_MAX)
                      : net_dns_reply_build(msg, &q, ns_r_noerror, ips, (size_t)n, out, NET_DNS_UDP_MAX);
    }
    return *out_len > 0 ? DNS_ANSWER : DNS_DROP;
}

/* Called unlocked (l stays allocated: only this thread frees it); takes the lock itself. */
static void serve_one(struct net_dns *d, struct dns_listener *l, const uint8_t *msg, size_t len,
                      const struct sockaddr_in *client, const char *owner)
{
    uint8_t out[NET_DNS_UDP_MAX];
    size_t out_len;
    enum dns_verdict v = decide(d, owner, msg, len, out, &out_len);
    pthread_mutex_lock(&d->lock);
    if (v == DNS_FORWARD_IT && !l->dead)
        forward(d, l, client, msg, len);
    else if (v == DNS_ANSWER)
        reply(l, client, out, out_len);
    pthread_mutex_unlock(&d->lock);
}

/* ---- TCP ---- */

static int read_full(int fd, uint8_t *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* EOF, error, or SO_RCVTIMEO */
        got += (size_t)n;
    }
    return 0;
}

static int write_framed(int fd, const uint8_t *msg, size_t len)
{
    uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
    return fs_write_all(fd, hdr, 2) < 0 || fs_write_all(fd, msg, len) < 0 ? -1 : 0;
}

static void io_timeouts(int fd)
{
    struct timeval tv = { .tv_sec = DNS_TCP_IO_S };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A blocking TCP connection to upstream i (bounded connect), published in w->up_fd so that
 * removal can shut it down. */
static int upstream_connect(struct dns_worker *w, size_t i)
{
    struct net_dns *d = w->d;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    uint16_t port = d->cfg.upstream_port != 0 ? d->cfg.upstream_port : NS_DEFAULTPORT;
    struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(w->upstreams[i]) };
    int r = connect(fd, (struct sockaddr *)&up, sizeof up);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int e = 0;
        socklen_t el = sizeof e;
        r = poll(&p, 1, DNS_TCP_CONNECT_MS) == 1 &&
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0
                ? 0
                : -1;
    }
    if (r < 0 || fcntl(fd, F_SETFL, 0) < 0) {
        close(fd);
        return -1;
    }
    io_timeouts(fd);
    pthread_mutex_lock(&d->lock);
    w->up_fd = fd;
    pthread_mutex_unlock(&d->lock);
    return fd;
}

static void upstream_close(struct dns_worker *w)
{
    pthread_mutex_lock(&w->d->lock);
    int fd = w->up_fd;
    w->up_fd = -1;
    pthread_mutex_unlock(&w->d->lock);
    if (fd >= 0)
        close(fd);
}

/* The upstreams' answer to msg over TCP, relayed as is; SERVFAIL when none gives one. */
static int tcp_forward(struct dns_worker *w, const uint8_t *msg, size_t len)
{
    uint8_t *ans = NULL;
    size_t alen = 0;
    for (size_t i = 0; i < w->n_upstreams && ans == NULL; i++) {
        int fd = upstream_connect(w, i);
        uint8_t hdr[2];
        if (fd >= 0 && write_framed(fd, msg, len) == 0 && read_full(fd, hdr, 2) == 0) {
            alen = (size_t)(hdr[0] << 8 | hdr[1]);
            ans = alen >= 12 ? xcalloc(1, alen) : NULL;
            if (ans != NULL && (read_full(fd, ans, alen) < 0 || memcmp(ans, msg, 2) != 0)) {
                free(ans);
                ans = NULL;
            }
        }
        upstream_close(w);
    }
    int rc;
    if (ans != NULL) {
        rc = write_framed(w->fd, ans, alen);
        free(ans);
    } else {
        uint8_t out[NET_DNS_UDP_MAX];
        size_t n = net_dns_error_build(msg, len, ns_r_servfail, out, sizeof out);
        rc = n > 0 ? write_framed(w->fd, out, n) : -1;
    }
    return rc;
}

static void *tcp_worker(void *opaque)
{
    struct dns_worker *w = opaque;
    struct net_dns *d = w->d;
    io_timeouts(w->fd);
    uint8_t *msg = xcalloc(1, NET_DNS_MAX_MSG);
    for (int i = 0; i < DNS_TCP_QUERIES; i++) {
        uint8_t hdr[2];
        if (read_full(w->fd, hdr, 2) < 0)
            break;
        size_t len = (size_t)(hdr[0] << 8 | hdr[1]);
        if (len < 12 || len > NET_DNS_MAX_MSG || read_full(w->fd, msg, len) < 0)
            break;
        uint8_t out[NET_DNS_UDP_MAX];
        size_t out_len;
        enum dns_verdict v = decide(d, w->owner, msg, len, out, &out_len);
        int r = v == DNS_ANSWER       ? write_framed(w->fd, out, out_len)
                : v == DNS_FORWARD_IT ? tcp_forward(w, msg, len)
                                      : -1;
        if (r < 0)
            break;
    }
    free(msg);
    pthread_mutex_lock(&d->lock);
    for (struct dns_worker **pp = &d->workers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    close(w->fd);
    d->n_workers--;
    pthread_cond_broadcast(&d->workers_done);
    pthread_mutex_unlock(&d->lock);
    free(w);
    return NULL;
}

/* Locked. A connection on l gets a thread, if there is room. */
static void tcp_accept(struct net_dns *d, struct dns_listener *l)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (d->stop || d->n_workers >= DNS_TCP_WORKERS) {
        close(fd);
        return;
    }
    struct dns_worker *w = xcalloc(1, sizeof *w);
    w->d = d;
    memcpy(w->owner, l->owner, sizeof w->owner);
    memcpy(w->upstreams, l->upstreams, sizeof w->upstreams);
    w->n_upstreams = l->n_upstreams;
    w->fd = fd;
    w->up_fd = -1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, tcp_worker, w) != 0) {
        close(fd);
        free(w);
    } else {
        w->next = d->workers;
        d->workers = w;
        d->n_workers++;
    }
    pthread_attr_destroy(&attr);
}

/* Locked. Wakes owner's (or, with NULL, every) worker out of its reads. */
static void workers_shutdown(struct net_dns *d, const char *owner)
{
    for (struct dns_worker *w = d->workers; w != NULL; w = w->next) {
        if (owner != NULL && strcmp(w->owner, owner) != 0)
            continue;
        shutdown(w->fd, SHUT_RDWR);
        if (w->up_fd >= 0)
            shutdown(w->up_fd, SHUT_RDWR);
    }
}

static void from_container(struct net_dns *d, struct dns_listener *l)
{
    for (int i = 0; i < DNS_BURST; i++) {
        uint8_t msg[NET_DNS_MAX_MSG];
        struct sockaddr_in client;
        socklen_t cl = sizeof client;
        char owner[65];
        pthread_mutex_lock(&d->lock);
        ssize_t n = l->dead ? -1
                            : recvfrom(l->fd, msg, sizeof msg, MSG_DONTWAIT | MSG_TRUNC,
                                       (struct sockaddr *)&client, &cl);
        memcpy(owner, l->owner, sizeof owner);
        pthread_mutex_unlock(&d->lock);
        if (n < 0)
            return;
        if ((size_t)n > sizeof msg || cl != sizeof client || client.sin_family != AF_INET)
            continue; /* truncated or not IPv4: dropped */
        serve_one(d, l, msg, (size_t)n, &client, owner);
    }
}

/* Locked. */
static void from_upstream(struct net_dns *d, struct dns_forward *f)
{
    uint8_t msg[NET_DNS_MAX_MSG];
    ssize_t n = recv(f->fd, msg, sizeof msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* only the answer to this query; a refused port (ICMP) ends this upstream's turn */
    if (n >= 12 && (size_t)n <= sizeof msg && (msg[0] << 8 | msg[1]) == f->id && (msg[2] & 0x80)) {
        reply(f->from, &f->client, msg, (size_t)n);
        forward_kill(d, f);
    } else if (n < 0) {
        f->deadline = clock_deadline_ts(0);
    }
}

/* Locked. Queries whose upstream did not answer in time go to the next one, or are dropped. */
static void sweep(struct net_dns *d)
{
    for (struct dns_forward *f = d->forwards, *next; f != NULL; f = next) {
        next = f->next;
        if (!clock_ts_passed(&f->deadline))
            continue;
        if (++f->attempt < f->from->n_upstreams && forward_send(d, f) == 0)
            continue;
        forward_kill(d, f);
    }
}

static void *dns_loop(void *opaque)
{
    struct net_dns *d = opaque;
    struct epoll_event evs[DNS_MAX_EVENTS];
    for (;;) {
        pthread_mutex_lock(&d->lock);
        free_dead(d);
        bool stop = d->stop;
        int wait_ms = d->forwards != NULL ? 200 : 5000;
        pthread_mutex_unlock(&d->lock);
        if (stop)
            return NULL;
        int n = epoll_wait(d->ep, evs, DNS_MAX_EVENTS, wait_ms);
        for (int i = 0; i < n; i++) {
            enum dns_kind kind = *(enum dns_kind *)evs[i].data.ptr;
            if (kind == DNS_WAKE) {
                uint64_t v;
                if (read(d->wake, &v, sizeof v) < 0)
                    continue;
            } else if (kind == DNS_LISTENER) {
                struct dns_listener *l = evs[i].data.ptr;
                if (l->tcp) {
                    pthread_mutex_lock(&d->lock);
                    if (!l->dead)
                        tcp_accept(d, l);
                    pthread_mutex_unlock(&d->lock);
                } else {
                    from_container(d, l);
                }
            } else if (kind == DNS_FORWARD) {
                pthread_mutex_lock(&d->lock);
                struct dns_forward *f = evs[i].data.ptr;
                if (!f->dead)
                    from_upstream(d, f);
                pthread_mutex_unlock(&d->lock);
            }
        }
        pthread_mutex_lock(&d->lock);
        sweep(d);
        pthread_mutex_unlock(&d->lock);
    }
}

struct net_dns *net_dns_new(const struct net_dns_config *cfg, struct merr *err)
{
    struct net_dns *d = xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->workers_done, NULL);
    d->cfg = *cfg;
    if (d->cfg.n_upstreams > sizeof d->cfg.upstreams / sizeof d->cfg.upstreams[0])
        d->cfg.n_upstreams = sizeof d->cfg.upstreams / sizeof d->cfg.upstreams[0];
    d->ep = epoll_create1(EPOLL_CLOEXEC);
    d->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = (void *)&wake_kind };
    if (d->ep < 0 || d->wake < 0 || epoll_ctl(d->ep, EPOLL_CTL_ADD, d->wake, &e) < 0 ||
        pthread_create(&d->thread, NULL, dns_loop, d) != 0) {
        merr_set(err, MERR_IO, errno, "cannot start the embedded DNS server");
        if (d->ep >= 0)
            close(d->ep);
        if (d->wake >= 0)
            close(d->wake);
        pthread_cond_destroy(&d->workers_done);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

/* Locked. */
static int listen_on(struct net_dns *d, const char *owner, int fd, bool tcp,
                     const uint32_t *upstreams, size_t n_upstreams, struct merr *err)
{
    struct dns_listener *l = xcalloc(1, sizeof *l);
    l->kind = DNS_LISTENER;
    snprintf(l->owner, sizeof l->owner, "%s", owner);
    l->fd = fd;
    l->tcp = tcp;
    if (n_upstreams == 0) {
        upstreams = d->cfg.upstreams;
        n_upstreams = d->cfg.n_upstreams;
    }
    l->n_upstreams = n_upstreams < 3 ? n_upstreams : 3;
    memcpy(l->upstreams, upstreams, l->n_upstreams * sizeof *upstreams);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = l };
    if (epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
        int er = errno;
        close(fd);
        free(l);
        return merr_set(err, MERR_IO, er, "cannot watch the DNS socket");
    }
    l->next = d->listeners;
    d->listeners = l;
    return 0;
}

int net_dns_add(struct net_dns *d, const char *owner, int udp_fd, int tcp_fd,
                const uint32_t *upstreams, size_t n_upstreams, struct merr *err)
{
    pthread_mutex_lock(&d->lock);
    int rc = listen_on(d, owner, udp_fd, false, upstreams, n_upstreams, err);
    if (tcp_fd >= 0 && rc < 0)
        close(tcp_fd);
    else if (tcp_fd >= 0)
        rc = listen_on(d, owner, tcp_fd, true, upstreams, n_upstreams, err);
    pthread_mutex_unlock(&d->lock);
    if (rc < 0)
        net_dns_remove_owner(d, owner);
    return rc;
}

bool net_dns_has(struct net_dns *d, const char *owner)
{
    pthread_mutex_lock(&d->lock);
    bool found = false;
    for (struct dns_listener *l = d->listeners; l != NULL && !found; l = l->next)
        found = strcmp(l->owner, owner) == 0;
    pthread_mutex_unlock(&d->lock);
    return found;
}

void net_dns_remove_owner(struct net_dns *d, const char *owner)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    for (struct dns_listener *l = d->listeners, *next; l != NULL; l = next) {
        next = l->next;
        if (strcmp(l->owner, owner) == 0)
            listener_kill(d, l);
    }
    workers_shutdown(d, owner);
    pthread_mutex_unlock(&d->lock);
}

void net_dns_free(struct net_dns *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    while (d->listeners != NULL)
        listener_kill(d, d->listeners);
    pthread_mutex_unlock(&d->lock);
    uint64_t one = 1;
    if (write(d->wake, &one, sizeof one) < 0)
        mlog_debug(d->cfg.log, "cannot wake the DNS server");
    pthread_join(d->thread, NULL);
    /* connection threads end at once on their shut-down sockets; waiting stays bounded by
     * their I/O timeouts */
    pthread_mutex_lock(&d->lock);
    workers_shutdown(d, NULL);
    while (d->n_workers > 0)
        pthread_cond_wait(&d->workers_done, &d->lock);
    pthread_mutex_unlock(&d->lock);
    free_dead(d);
    close(d->ep);
    close(d->wake);
    pthread_cond_destroy(&d->workers_done);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
