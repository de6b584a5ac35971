/* Published ports on the engine's side: binding the host's listening sockets (the engine has
 * the privilege, and a taken port fails `docker run` with dockerd's words) and, when
 * machine-proxy is not installed, forwarding them on a thread of the engine with the same loop
 * machine-proxy runs (engine/proxy/pxloop.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "network-priv.h"
#include "proxy/pxloop.h"

#define WAKE_TAG 1
#define EXITS_TAG 2
#define EXITS_MAX 16 /* reported per round; more wait for the next */

/* A machine-proxy process watched for its end (its pidfd is the caller's). */
struct px_watched {
    char owner[65];
    pid_t pid;
    int pidfd;
    struct px_watched *next;
};

struct net_proxy {
    pthread_mutex_t lock;
    const struct mlog *log;
    struct px_loop *loop;
    int wake;
    bool stop;
    pthread_t thread;
    /* machine-proxy processes: an epoll of their pidfds, watched by the loop */
    int exits_ep;
    struct px_watched *watched;
    net_proxy_exit_fn on_exit;
    void *exit_data;
    struct px_watched exited[EXITS_MAX];
    size_t n_exited;
};

static struct px_watched *unlink_watched(struct net_proxy *p, struct px_watched *w)
{
    for (struct px_watched **pp = &p->watched; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            epoll_ctl(p->exits_ep, EPOLL_CTL_DEL, w->pidfd, NULL);
            return w;
        }
    return NULL;
}

static void collect_exits(struct net_proxy *p)
{
    struct epoll_event evs[EXITS_MAX];
    int n = epoll_wait(p->exits_ep, evs, EXITS_MAX, 0);
    for (int i = 0; i < n && p->n_exited < EXITS_MAX; i++) {
        struct px_watched *w = unlink_watched(p, evs[i].data.ptr);
        if (w != NULL)
            p->exited[p->n_exited++] = *w;
        free(w);
    }
}

static void on_watch(void *data, int tag, unsigned events)
{
    struct net_proxy *p = data;
    uint64_t v;
    (void)events;
    if (tag == WAKE_TAG && read(p->wake, &v, sizeof v) < 0)
        mlog_debug(p->log, "port proxy: wake-up read failed");
    else if (tag == EXITS_TAG)
        collect_exits(p);
}

static void *proxy_loop(void *opaque)
{
    struct net_proxy *p = opaque;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        int n = px_loop_wait(p->loop, 1000);
        pthread_mutex_lock(&p->lock);
        px_loop_dispatch(p->loop, n, on_watch, p);
        size_t n_exited = p->n_exited;
        struct px_watched exited[EXITS_MAX];
        memcpy(exited, p->exited, n_exited * sizeof *exited);
        p->n_exited = 0;
        pthread_mutex_unlock(&p->lock);
        /* unlocked: the callback takes the network's lock, whose holders call in here */
        for (size_t i = 0; i < n_exited && p->on_exit != NULL; i++)
            p->on_exit(p->exit_data, exited[i].owner, exited[i].pid);
    }
}

struct net_proxy *net_proxy_new(const struct mlog *log, net_proxy_exit_fn on_exit, void *data,
                                struct merr *err)
{
    struct net_proxy *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->log = log;
    p->on_exit = on_exit;
    p->exit_data = data;
    p->loop = px_loop_new();
    p->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->exits_ep = epoll_create1(EPOLL_CLOEXEC);
    if (p->loop == NULL || p->wake < 0 || p->exits_ep < 0 ||
        px_loop_watch(p->loop, p->wake, WAKE_TAG) < 0 ||
        px_loop_watch(p->loop, p->exits_ep, EXITS_TAG) < 0 ||
        pthread_create(&p->thread, NULL, proxy_loop, p) != 0) {
        merr_set(err, MERR_IO, errno, "cannot start the port proxy");
        px_loop_free(p->loop);
        if (p->wake >= 0)
            close(p->wake);
        if (p->exits_ep >= 0)
            close(p->exits_ep);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void net_proxy_remove_owner(struct net_proxy *p, const char *owner)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    px_loop_remove_owner(p->loop, owner);
    pthread_mutex_unlock(&p->lock);
}

void net_proxy_watch(struct net_proxy *p, const char *owner, pid_t pid, int pidfd)
{
    struct px_watched *w = xcalloc(1, sizeof *w);
    snprintf(w->owner, sizeof w->owner, "%s", owner);
    w->pid = pid;
    w->pidfd = pidfd;
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = w };
    pthread_mutex_lock(&p->lock);
    if (epoll_ctl(p->exits_ep, EPOLL_CTL_ADD, pidfd, &e) == 0) {
        w->next = p->watched;
        p->watched = w;
        w = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (w != NULL)
        mlog_warn(p->log, "cannot watch the port proxy of %s: %s", owner, strerror(errno));
    free(w);
}

void net_proxy_unwatch(struct net_proxy *p, const char *owner)
{
    pthread_mutex_lock(&p->lock);
    struct px_watched *w = p->watched;
    while (w != NULL) {
        struct px_watched *next = w->next;
        if (strcmp(w->owner, owner) == 0)
            free(unlink_watched(p, w));
        w = next;
    }
    pthread_mutex_unlock(&p->lock);
}

int net_proxy_bind(enum net_proto proto, const char *host_ip, uint16_t host_port, int *fd_out,
                   uint16_t *bound, struct merr *err)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(host_port) };
    if (host_ip != NULL && host_ip[0] != '\0' && inet_pton(AF_INET, host_ip, &sa.sin_addr) != 1)
        return merr_set(err, MERR_INVALID, 0, "invalid host IP '%s'", host_ip);
    auto_close int fd = socket(AF_INET, (proto == NET_UDP ? SOCK_DGRAM : SOCK_STREAM) |
                                            SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        (proto == NET_TCP && listen(fd, 128) < 0)) {
        int e = errno;
        char ip[NET_IP_STR];
        net_ip_str(ntohl(sa.sin_addr.s_addr), ip);
        return merr_set(err, e == EADDRINUSE ? MERR_EXISTS : MERR_IO, e,
                        "driver failed programming external connectivity: Bind for %s:%u failed: "
                        "port is already allocated",
                        ip, host_port);
    }
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    *bound = ntohs(sa.sin_port);
    *fd_out = steal_fd(&fd);
    return 0;
}

int net_proxy_add_fd(struct net_proxy *p, const char *owner, enum net_proto proto, int fd,
                     uint32_t target_ip, uint16_t target_port, struct merr *err)
{
    struct sockaddr_in target = { .sin_family = AF_INET, .sin_port = htons(target_port),
                                  .sin_addr.s_addr = htonl(target_ip) };
    pthread_mutex_lock(&p->lock);
    int rc = px_loop_add(p->loop, owner, proto == NET_UDP ? PX_UDP : PX_TCP, fd,
                         (struct sockaddr *)&target, sizeof target);
    pthread_mutex_unlock(&p->lock);
    return rc < 0 ? merr_set(err, MERR_IO, errno, "cannot forward a published port") : 0;
}

void net_proxy_free(struct net_proxy *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    if (write(p->wake, &one, sizeof one) < 0)
        mlog_debug(p->log, "cannot wake the port proxy");
    pthread_join(p->thread, NULL);
    px_loop_free(p->loop);
    close(p->wake);
    while (p->watched != NULL)
        free(unlink_watched(p, p->watched));
    close(p->exits_ep);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
