/* Links, addresses and routes through netlink (libnl-route-3), network namespaces held by bind
 * mounts, and sysctls. Work inside a namespace happens on a short-lived thread that setns()es
 * into it, so the engine's other threads never change namespace. libnl's error codes are
 * turned into struct merr here and nowhere else. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "error.h"
#include "fsutil.h"
#include "network-priv.h"

static int nl_fail(struct merr *err, int nlerr, const char *what, const char *subject)
{
    return merr_set(err, nlerr == -NLE_EXIST ? MERR_EXISTS : MERR_IO, 0, "cannot %s '%s': %s", what,
                    subject, nl_geterror(nlerr));
}

static struct nl_sock *nl_open(struct merr *err)
{
    struct nl_sock *s = nl_socket_alloc();
    if (s == NULL) {
        merr_set(err, MERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    int r = nl_connect(s, NETLINK_ROUTE);
    if (r < 0) {
        nl_socket_free(s);
        nl_fail(err, r, "open", "netlink");
        return NULL;
    }
    return s;
}

static void nl_sock_cleanup(struct nl_sock **s)
{
    if (*s != NULL)
        nl_socket_free(*s);
}
#define auto_nl __attribute__((cleanup(nl_sock_cleanup)))

static struct nl_addr *ipv4_addr(uint32_t ip, unsigned prefix)
{
    uint32_t be = htonl(ip);
    struct nl_addr *a = nl_addr_build(AF_INET, &be, 4);
    if (a != NULL)
        nl_addr_set_prefixlen(a, (int)prefix);
    return a;
}

static int link_up(struct nl_sock *s, const char *name, struct merr *err)
{
    struct rtnl_link *link = NULL;
    int r = rtnl_link_get_kernel(s, 0, name, &link);
    if (r < 0)
        return nl_fail(err, r, "find link", name);
    struct rtnl_link *change = rtnl_link_alloc();
    rtnl_link_set_flags(change, IFF_UP);
    r = rtnl_link_change(s, link, change, 0);
    rtnl_link_put(change);
    rtnl_link_put(link);
    return r < 0 ? nl_fail(err, r, "bring up", name) : 0;
}

static int addr_add(struct nl_sock *s, const char *ifname, uint32_t ip, unsigned prefix,
                    struct merr *err)
{
    int ifindex;
    struct rtnl_link *link = NULL;
    int r = rtnl_link_get_kernel(s, 0, ifname, &link);
    if (r < 0)
        return nl_fail(err, r, "find link", ifname);
    ifindex = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local = ipv4_addr(ip, prefix);
    rtnl_addr_set_ifindex(a, ifindex);
    rtnl_addr_set_local(a, local);
    r = rtnl_addr_add(s, a, 0);
    nl_addr_put(local);
    rtnl_addr_put(a);
    if (r < 0 && r != -NLE_EXIST)
        return nl_fail(err, r, "add an address to", ifname);
    return 0;
}

bool nl_link_exists(const char *name)
{
    return if_nametoindex(name) != 0;
}

int nl_bridge_ensure(const char *name, uint32_t gw, unsigned prefix, struct merr *err)
{
    auto_nl struct nl_sock *s = nl_open(err);
    if (s == NULL)
        return -1;
    if (!nl_link_exists(name)) {
        struct rtnl_link *br = rtnl_link_bridge_alloc();
        rtnl_link_set_name(br, name);
        int r = rtnl_link_add(s, br, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(br);
        if (r < 0 && r != -NLE_EXIST)
            return nl_fail(err, r, "create bridge", name);
    }
    if (addr_add(s, name, gw, prefix, err) < 0 || link_up(s, name, err) < 0)
        return -1;
    return 0;
}

int nl_link_delete(const char *name, struct merr *err)
{
    if (!nl_link_exists(name))
        return 0;
    auto_nl struct nl_sock *s = nl_open(err);
    if (s == NULL)
        return -1;
    struct rtnl_link *link = rtnl_link_alloc();
    rtnl_link_set_name(link, name);
    int r = rtnl_link_delete(s, link);
    rtnl_link_put(link);
    if (r < 0 && r != -NLE_NODEV && r != -NLE_OBJ_NOTFOUND)
        return nl_fail(err, r, "delete link", name);
    return 0;
}

/* ---- work inside a namespace ---- */

struct ns_job {
    const char *netns_path; /* NULL: a new namespace */
    int (*fn)(struct ns_job *job, struct merr *err);
    const char *ifname;
    uint32_t ip, gw;
    unsigned prefix;
    const char *bind_to; /* new namespace: its bind mount */
    int type; /* nl_netns_bind: SOCK_DGRAM or SOCK_STREAM (listening) */
    uint16_t port;
    int fd;
    struct merr err;
    int rc;
};

static void *ns_thread(void *opaque)
{
    struct ns_job *job = opaque;
    if (job->netns_path != NULL) {
        int fd = open(job->netns_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            job->rc = merr_set(&job->err, MERR_IO, errno, "cannot open '%s'", job->netns_path);
            return NULL;
        }
        int r = setns(fd, CLONE_NEWNET);
        close(fd);
        if (r < 0) {
            job->rc = merr_set(&job->err, MERR_IO, errno, "cannot enter '%s'", job->netns_path);
            return NULL;
        }
    } else if (unshare(CLONE_NEWNET) < 0) {
        job->rc = merr_set(&job->err, MERR_IO, errno, "cannot create a network namespace");
        return NULL;
    }
    job->rc = job->fn(job, &job->err);
    return NULL;
}

static int run_in_netns(struct ns_job *job, struct merr *err)
{
    pthread_t t;
    job->err = (struct merr)MERR_INIT;
    job->rc = 0;
    if (pthread_create(&t, NULL, ns_thread, job) != 0)
        return merr_set(err, MERR_IO, errno, "cannot start a thread");
    pthread_join(t, NULL);
    if (job->rc < 0) {
        *err = job->err;
        return -1;
    }
    return 0;
}

static int job_bind_new(struct ns_job *job, struct merr *err)
{
    if (mount("/proc/thread-self/ns/net", job->bind_to, NULL, MS_BIND, NULL) < 0)
        return merr_set(err, MERR_IO, errno, "cannot bind the network namespace on '%s'",
                        job->bind_to);
    auto_nl struct nl_sock *s = nl_open(err);
    return s != NULL ? link_up(s, "lo", err) : -1;
}

int nl_netns_create(const char *path, struct merr *err)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", path);
    close(fd);
    struct ns_job job = { .fn = job_bind_new, .bind_to = path };
    if (run_in_netns(&job, err) < 0) {
        struct merr ignored;
        if (nl_netns_remove(path, &ignored) < 0)
            return -1;
        return -1;
    }
    return 0;
}

int nl_netns_remove(const char *path, struct merr *err)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot unmount '%s'", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", path);
    return 0;
}

static int job_configure(struct ns_job *job, struct merr *err)
{
    auto_nl struct nl_sock *s = nl_open(err);
    if (s == NULL || link_up(s, "lo", err) < 0 ||
        addr_add(s, job->ifname, job->ip, job->prefix, err) < 0 || link_up(s, job->ifname, err) < 0)
        return -1;
    if (job->gw == 0)
        return 0;
    struct rtnl_route *route = rtnl_route_alloc();
    struct nl_addr *dst = ipv4_addr(0, 0);
    struct nl_addr *gw = ipv4_addr(job->gw, 32);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    rtnl_route_set_family(route, AF_INET);
    rtnl_route_set_dst(route, dst);
    rtnl_route_set_table(route, RT_TABLE_MAIN);
    rtnl_route_set_protocol(route, RTPROT_BOOT);
    rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
    rtnl_route_set_type(route, RTN_UNICAST);
    rtnl_route_nh_set_gateway(nh, gw);
    rtnl_route_nh_set_ifindex(nh, (int)if_nametoindex(job->ifname));
    rtnl_route_add_nexthop(route, nh);
    int r = rtnl_route_add(s, route, NLM_F_CREATE);
    nl_addr_put(dst);
    nl_addr_put(gw);
    rtnl_route_put(route);
    if (r < 0 && r != -NLE_EXIST)
        return nl_fail(err, r, "add the default route via", job->ifname);
    return 0;
}

int nl_veth_attach(const char *bridge, const char *host_if, const char *netns_path,
                   const char *ifname, uint32_t ip, unsigned prefix, uint32_t gw, const char *mac,
                   struct merr *err)
{
    auto_nl struct nl_sock *s = nl_open(err);
    if (s == NULL)
        return -1;
    int nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", netns_path);
    struct rtnl_link *veth = rtnl_link_veth_alloc();
    struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
    rtnl_link_set_name(veth, host_if);
    rtnl_link_set_name(peer, ifname);
    rtnl_link_set_ns_fd(peer, nsfd);
    if (mac != NULL) {
        unsigned char b[6];
        if (sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &b[0], &b[1], &b[2], &b[3], &b[4],
                   &b[5]) == 6) {
            struct nl_addr *a = nl_addr_build(AF_LLC, b, 6);
            rtnl_link_set_addr(peer, a);
            nl_addr_put(a);
        }
    }
    int r = rtnl_link_add(s, veth, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(peer);
    rtnl_link_veth_release(veth);
    close(nsfd);
    if (r < 0)
        return nl_fail(err, r, "create veth", host_if);
    struct rtnl_link *br = NULL, *host = NULL;
    r = rtnl_link_get_kernel(s, 0, bridge, &br);
    if (r == 0)
        r = rtnl_link_get_kernel(s, 0, host_if, &host);
    if (r == 0)
        r = rtnl_link_enslave(s, br, host);
    if (br != NULL)
        rtnl_link_put(br);
    if (host != NULL)
        rtnl_link_put(host);
    struct merr ignored;
    if (r < 0) {
        nl_fail(err, r, "attach to the bridge", host_if);
        if (nl_link_delete(host_if, &ignored) < 0)
            return -1;
        return -1;
    }
    struct ns_job job = { .netns_path = netns_path, .fn = job_configure, .ifname = ifname,
                          .ip = ip, .prefix = prefix, .gw = gw };
    if (link_up(s, host_if, err) < 0 || run_in_netns(&job, err) < 0) {
        if (nl_link_delete(host_if, &ignored) < 0)
            return -1;
        return -1;
    }
    return 0;
}

static int job_delete_link(struct ns_job *job, struct merr *err)
{
    return nl_link_delete(job->ifname, err);
}

int nl_netns_link_delete(const char *netns_path, const char *ifname, struct merr *err)
{
    struct ns_job job = { .netns_path = netns_path, .fn = job_delete_link, .ifname = ifname };
    return run_in_netns(&job, err);
}

static int job_bind(struct ns_job *job, struct merr *err)
{
    int fd = socket(AF_INET, job->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot create a socket");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(job->port),
                             .sin_addr.s_addr = htonl(job->ip) };
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        (job->type == SOCK_STREAM && listen(fd, 16) < 0)) {
        int e = errno;
        close(fd);
        char ip[NET_IP_STR];
        net_ip_str(job->ip, ip);
        return merr_set(err, MERR_IO, e, "cannot bind %s:%u", ip, job->port);
    }
    job->fd = fd;
    return 0;
}

int nl_netns_bind(const char *netns_path, int type, uint32_t ip, uint16_t port, int *fd,
                  struct merr *err)
{
    struct ns_job job = { .netns_path = netns_path, .fn = job_bind, .type = type, .ip = ip,
                          .port = port, .fd = -1 };
    if (run_in_netns(&job, err) < 0)
        return -1;
    *fd = job.fd;
    return 0;
}

int nl_sysctl_write(const char *path, const char *value, struct merr *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", path);
    int r = fs_write_all(fd, value, strlen(value));
    int e = errno;
    close(fd);
    return r < 0 ? merr_set(err, MERR_IO, e, "cannot write '%s'", path) : 0;
}
