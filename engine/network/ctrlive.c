/* What of a running container's network outlives the engine (live-restore): its published
 * ports, served by its own machine-proxy process, and its embedded DNS sockets, a copy of
 * which its monitor keeps open, so queries sent while the engine is down wait in them and are
 * answered by the next engine, which takes them back (pidfd_getfd) on re-adoption. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "service-priv.h"

static unsigned long inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Hands the bound sockets to a new machine-proxy (hold: with a hold pipe whose write end
 * c->hold_w the engine keeps and gives the container's monitor). */
static int start_proxy(struct net_service *s, struct net_ctr *c, struct px_listener *ls, size_t n,
                       bool hold, struct merr *err)
{
    int pipefd[2] = { -1, -1 };
    if (hold && pipe2(pipefd, O_CLOEXEC) < 0)
        return merr_set(err, MERR_IO, errno, "cannot make the port proxy's pipe");
    int rc = net_pxproc_spawn(s->proxy_bin, pipefd[0], ls, n, &c->px, err);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (rc < 0) {
        if (pipefd[1] >= 0)
            close(pipefd[1]);
        return -1;
    }
    c->hold_w = pipefd[1];
    net_proxy_watch(s->proxy, c->id, c->px.pid, c->px.pidfd);
    return 0;
}

/* kill -9 of a proxy, or its crash: said in the log; the ports stay unanswered until the
 * container is restarted (as dockerd with a dead docker-proxy). */
void svc_proxy_exited(void *data, const char *owner, pid_t pid)
{
    struct net_service *s = data;
    pthread_mutex_lock(&s->lock);
    for (struct net_ctr *c = s->ctrs; c != NULL; c = c->next) {
        if (strcmp(c->id, owner) != 0 || c->px.pid != pid || c->px.pidfd < 0)
            continue;
        siginfo_t si = { 0 };
        char how[64] = "";
        if (waitid((idtype_t)P_PIDFD, (id_t)c->px.pidfd, &si, WEXITED | WNOHANG) == 0 &&
            si.si_pid == pid)
            snprintf(how, sizeof how, si.si_code == CLD_EXITED ? " with status %d" : " (signal %d)",
                     si.si_status);
        mlog_warn(s->log, "container %s: its port proxy (pid %d) exited%s: its published ports "
                          "no longer answer until it is restarted",
                  c->id, (int)pid, how);
        net_pxproc_release(&c->px);
    }
    pthread_mutex_unlock(&s->lock);
}

int svc_ports_publish(struct net_service *s, struct net_ctr *c, bool hold, struct merr *err)
{
    struct net_port_binding *b = NULL;
    size_t nb = 0;
    if (c->bound_recorded) { /* re-adopted: the ports it had, "any free port" ones included */
        b = xcalloc(c->n_bound + 1, sizeof *b);
        for (; nb < c->n_bound; nb++) {
            b[nb] = c->bound[nb].b;
            b[nb].host_port = c->bound[nb].host_port;
        }
    } else if (net_port_bindings_parse(c->port_bindings, c->exposed, c->publish_all, &b, &nb,
                                       err) < 0) {
        return -1;
    }
    struct net_port_bound *old = c->bound_recorded ? c->bound : NULL;
    if (old == NULL)
        free(c->bound);
    c->bound = xcalloc(nb + 1, sizeof *c->bound);
    c->n_bound = 0;
    struct px_listener *ls = xcalloc(nb + 1, sizeof *ls);
    int rc = 0;
    for (size_t i = 0; i < nb && rc == 0; i++) {
        uint16_t got = 0;
        int fd = -1;
        rc = net_proxy_bind(b[i].proto, b[i].host_ip, b[i].host_port, &fd, &got, err);
        if (rc < 0)
            break;
        struct sockaddr_in *t = (struct sockaddr_in *)&ls[i].target;
        *t = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(b[i].container_port),
                                   .sin_addr.s_addr = htonl(c->eps[0].ip) };
        ls[i].fd = fd;
        ls[i].proto = b[i].proto == NET_UDP ? PX_UDP : PX_TCP;
        ls[i].target_len = sizeof *t;
        /* recorded ones keep the binding as asked (host port 0: any free one) */
        c->bound[c->n_bound++] = (struct net_port_bound){ old != NULL ? old[i].b : b[i], got };
    }
    free(b);
    free(old);
    size_t n = c->n_bound;
    if (rc == 0 && n > 0 && s->proxy_bin != NULL) {
        rc = start_proxy(s, c, ls, n, hold, err);
    } else if (rc == 0) { /* machine-proxy is not installed: the engine's own thread */
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = net_proxy_add_fd(s->proxy, c->id, c->bound[i].b.proto, ls[i].fd, c->eps[0].ip,
                                  c->bound[i].b.container_port, err);
            ls[i].fd = -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (ls[i].fd >= 0)
            close(ls[i].fd);
    free(ls);
    return rc;
}

void svc_ports_stop(struct net_service *s, struct net_ctr *c)
{
    net_proxy_remove_owner(s->proxy, c->id);
    net_proxy_unwatch(s->proxy, c->id);
    net_pxproc_stop(&c->px);
    if (c->hold_w >= 0)
        close(c->hold_w);
    c->hold_w = -1;
}

/* The write end of the adopted proxy's hold pipe, from the monitor (holder's fd holder_fd)
 * when it is the pipe the proxy's fd 3 reads: the engine holds it again, so the proxy ends at
 * the engine's stop, as one it started (not on its own first, reported as lost). */
static void take_hold_back(struct net_ctr *c, pid_t holder, int holder_fd)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/fd/3", (int)c->px.pid);
    ssize_t n = readlink(path, link, sizeof link - 1);
    int pidfd = holder > 0 && n > 0 ? pidfd_open(holder, 0) : -1;
    int fd = pidfd >= 0 ? (int)pidfd_getfd(pidfd, holder_fd, 0) : -1;
    if (pidfd >= 0)
        close(pidfd);
    if (fd < 0)
        return;
    link[n] = '\0';
    char want[64];
    snprintf(want, sizeof want, "pipe:[%lu]", inode_of(fd));
    if (strcmp(link, want) == 0 && c->hold_w < 0)
        c->hold_w = fd;
    else
        close(fd);
}

int svc_ports_adopt(struct net_service *s, struct net_ctr *c, pid_t holder, int holder_fd,
                    struct merr *err)
{
    if (c->bound_recorded && net_pxproc_adopt(&c->px) == 1) {
        mlog_info(s->log, "container %s: its port proxy (pid %d) runs on", c->id, (int)c->px.pid);
        take_hold_back(c, holder, holder_fd);
        net_proxy_watch(s->proxy, c->id, c->px.pid, c->px.pidfd);
        return 0;
    }
    if (c->bound_recorded && c->px.pid > 0)
        mlog_warn(s->log, "container %s: its port proxy (pid %d) is gone: its ports are "
                          "published again",
                  c->id, (int)c->px.pid);
    c->px = (struct net_pxproc){ .pidfd = -1 };
    /* without a hold pipe (the monitor cannot be given one now): stopped with the container */
    if (svc_ports_publish(s, c, false, err) < 0)
        return -1;
    auto_free char *dir = path_join(s->ctrs_dir, c->id);
    struct merr serr = MERR_INIT;
    if (svc_run_save(dir, c, &serr) < 0)
        mlog_warn(s->log, "%s", serr.msg);
    return 0;
}

/* ---- the embedded DNS server's sockets ---- */

/* Serves udp and tcp (taken over) for c, with its --dns servers as upstreams. */
static int dns_serve(struct net_service *s, const struct net_ctr *c, int udp, int tcp,
                     struct merr *err)
{
    uint32_t ups[3];
    size_t n_ups = 0;
    for (size_t i = 0; c->dns.servers != NULL && c->dns.servers[i] != NULL && n_ups < 3; i++) {
        struct merr ignored;
        if (net_ip_parse(c->dns.servers[i], &ups[n_ups], &ignored) == 0)
            n_ups++;
    }
    if (net_dns_add(s->dns, c->id, udp, tcp, ups, n_ups, err) < 0)
        return merr_prefix(err, "embedded DNS");
    return 0;
}

static int dns_bind(const struct net_ctr *c, int *udp, int *tcp, struct merr *err)
{
    uint32_t addr;
    if (net_ip_parse(NET_DNS_ADDR, &addr, err) < 0 ||
        nl_netns_bind(c->netns, SOCK_DGRAM, addr, 53, udp, err) < 0)
        return merr_prefix(err, "embedded DNS");
    if (nl_netns_bind(c->netns, SOCK_STREAM, addr, 53, tcp, err) < 0) {
        close(*udp);
        *udp = -1;
        return merr_prefix(err, "embedded DNS");
    }
    return 0;
}

int svc_dns_attach(struct net_service *s, struct net_ctr *c, int held[2], struct merr *err)
{
    int udp = -1, tcp = -1;
    if (dns_bind(c, &udp, &tcp, err) < 0)
        return -1;
    if (held != NULL) {
        held[0] = fcntl(udp, F_DUPFD_CLOEXEC, 3);
        held[1] = fcntl(tcp, F_DUPFD_CLOEXEC, 3);
        c->dns_ino[0] = inode_of(udp);
        c->dns_ino[1] = inode_of(tcp);
    }
    return dns_serve(s, c, udp, tcp, err);
}

/* The holder's fd number fd when it is the socket recorded as ino, else -1. */
static int take_back(int pidfd, int fd, unsigned long ino)
{
    int got = ino != 0 ? (int)pidfd_getfd(pidfd, fd, 0) : -1;
    if (got >= 0 && inode_of(got) != ino) {
        close(got);
        got = -1;
    }
    return got;
}

int svc_dns_adopt(struct net_service *s, struct net_ctr *c, pid_t holder, int holder_fd,
                  struct merr *err)
{
    int pidfd = holder > 0 && c->dns_ino[0] != 0 ? pidfd_open(holder, 0) : -1;
    int udp = pidfd >= 0 ? take_back(pidfd, holder_fd + 1, c->dns_ino[0]) : -1;
    int tcp = pidfd >= 0 ? take_back(pidfd, holder_fd + 2, c->dns_ino[1]) : -1;
    int e = errno;
    if (pidfd >= 0)
        close(pidfd);
    if (udp < 0 || tcp < 0) {
        close_all((int[]){ udp, tcp }, 2);
        if (c->dns_ino[0] != 0)
            mlog_warn(s->log, "container %s: its DNS sockets could not be taken back from its "
                              "monitor (%s): bound anew",
                      c->id, strerror(e));
        udp = tcp = -1;
        if (dns_bind(c, &udp, &tcp, err) < 0)
            return -1;
    }
    /* served once every container is back (svc_dns_serve_adopted): a name asked now must not
     * miss a container adopted after this one */
    c->dns_adopted[0] = udp;
    c->dns_adopted[1] = tcp;
    return 0;
}

void svc_dns_serve_adopted(struct net_service *s)
{
    for (struct net_ctr *c = s->ctrs; c != NULL; c = c->next) {
        if (c->dns_adopted[0] < 0)
            continue;
        struct merr err = MERR_INIT;
        if (dns_serve(s, c, c->dns_adopted[0], c->dns_adopted[1], &err) < 0)
            mlog_warn(s->log, "container %s: %s", c->id, err.msg);
        c->dns_adopted[0] = c->dns_adopted[1] = -1;
    }
}
