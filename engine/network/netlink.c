/* Links, addresses and routes through rtnetlink (libmnl: messages built here, one request and
 * its ACK at a time), network namespaces held by bind mounts, and sysctls. Work inside a
 * namespace happens on a short-lived thread that setns()es into it, so the engine's other
 * threads never change namespace. The kernel's errors are turned into struct merr here and
 * nowhere else. */
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
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "error.h"
#include "fsutil.h"
#include "network-priv.h"

#define RTNL_TIMEOUT_S 5

struct rtnl {
    struct mnl_socket *nl;
    unsigned seq;
    unsigned portid;
    char buf[8192]; /* one request, then the answers */
};

static int rtnl_open(struct rtnl *r, struct merr *err)
{
    r->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (r->nl == NULL)
        return merr_set(err, MERR_IO, errno, "cannot open a netlink socket");
    struct timeval tv = { .tv_sec = RTNL_TIMEOUT_S };
    setsockopt(mnl_socket_get_fd(r->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(r->nl);
        r->nl = NULL;
        return merr_set(err, MERR_IO, e, "cannot bind a netlink socket");
    }
    r->portid = mnl_socket_get_portid(r->nl);
    r->seq = 0;
    return 0;
}

static void rtnl_cleanup(struct rtnl **r)
{
    if (*r == NULL)
        return;
    if ((*r)->nl != NULL)
        mnl_socket_close((*r)->nl);
    free(*r);
}
#define auto_rtnl __attribute__((cleanup(rtnl_cleanup)))

static struct rtnl *rtnl_new(struct merr *err)
{
    struct rtnl *r = xcalloc(1, sizeof *r);
    if (rtnl_open(r, err) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

/* A request in r->buf of type with flags, its fixed header (hdr_len bytes) zeroed. */
static struct nlmsghdr *rtnl_msg(struct rtnl *r, uint16_t type, uint16_t flags, size_t hdr_len)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(r->buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    nlh->nlmsg_seq = ++r->seq;
    mnl_nlmsg_put_extra_header(nlh, hdr_len);
    return nlh;
}

/* Sends nlh and waits for its ACK: 0, or -errno as the kernel answered. */
static int rtnl_talk(struct rtnl *r, struct nlmsghdr *nlh)
{
    unsigned seq = nlh->nlmsg_seq;
    if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (int i = 0; i < 64; i++) { /* an ACK comes alone; the bound is a guard */
        ssize_t n = mnl_socket_recvfrom(r->nl, r->buf, sizeof r->buf);
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        int ret = mnl_cb_run(r->buf, (size_t)n, seq, r->portid, NULL, NULL);
        if (ret < 0)
            return -errno;
        if (ret == MNL_CB_STOP)
            return 0;
    }
    return -EPROTO;
}

static int nl_fail(struct merr *err, int neg_errno, const char *what, const char *subject)
{
    return merr_set(err, neg_errno == -EEXIST ? MERR_EXISTS : MERR_IO, -neg_errno,
                    "cannot %s '%s'", what, subject);
}

static int ifindex_of(const char *name, int *out, struct merr *err)
{
    unsigned i = if_nametoindex(name);
    if (i == 0)
        return merr_set(err, MERR_NOT_FOUND, errno, "cannot find link '%s'", name);
    *out = (int)i;
    return 0;
}

static int link_up(struct rtnl *r, const char *name, struct merr *err)
{
    int ifindex = 0;
    if (ifindex_of(name, &ifindex, err) < 0)
        return -1;
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
    struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    int rc = rtnl_talk(r, nlh);
    return rc < 0 ? nl_fail(err, rc, "bring up", name) : 0;
}

static int addr_add(struct rtnl *r, const char *ifname, uint32_t ip, unsigned prefix,
                    struct merr *err)
{
    int ifindex = 0;
    if (ifindex_of(ifname, &ifindex, err) < 0)
        return -1;
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                                    sizeof(struct ifaddrmsg));
    struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)ifindex;
    uint32_t be = htonl(ip);
    mnl_attr_put_u32(nlh, IFA_LOCAL, be);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, be);
    int rc = rtnl_talk(r, nlh);
    if (rc < 0 && rc != -EEXIST)
        return nl_fail(err, rc, "add an address to", ifname);
    return 0;
}

/* An IPv6 address, without duplicate address detection (it would leave the address tentative,
 * unusable, for a second or more after the container starts). */
static int addr6_add(struct rtnl *r, const char *ifname, const struct net_ip6 *ip, unsigned prefix,
                     struct merr *err)
{
    int ifindex = 0;
    if (ifindex_of(ifname, &ifindex, err) < 0)
        return -1;
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                                    sizeof(struct ifaddrmsg));
    struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    ifa->ifa_family = AF_INET6;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_flags = IFA_F_NODAD;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)ifindex;
    mnl_attr_put(nlh, IFA_LOCAL, 16, ip->b);
    mnl_attr_put(nlh, IFA_ADDRESS, 16, ip->b);
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
    int rc = rtnl_talk(r, nlh);
    if (rc < 0 && rc != -EEXIST)
        return nl_fail(err, rc, "add an IPv6 address to", ifname);
    return 0;
}

/* IPv6 on ifname in the current namespace (the kernel may have it off by default). */
static int ipv6_enable(const char *ifname, struct merr *err)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
    if (access("/proc/sys/net/ipv6", F_OK) < 0)
        return merr_set(err, MERR_UNSUPPORTED, 0, "IPv6 is not available in this kernel");
    return nl_sysctl_write(path, "0", err);
}

int nl_bridge_addr6(const char *name, const struct net_ip6 *gw, unsigned prefix, struct merr *err)
{
    auto_rtnl struct rtnl *r = rtnl_new(err);
    if (r == NULL || ipv6_enable(name, err) < 0)
        return -1;
    return addr6_add(r, name, gw, prefix, err);
}

bool nl_link_exists(const char *name)
{
    return if_nametoindex(name) != 0;
}

int nl_bridge_ensure(const char *name, uint32_t gw, unsigned prefix, struct merr *err)
{
    auto_rtnl struct rtnl *r = rtnl_new(err);
    if (r == NULL)
        return -1;
    if (!nl_link_exists(name)) {
        struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                                        sizeof(struct ifinfomsg));
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
        mnl_attr_nest_end(nlh, info);
        int rc = rtnl_talk(r, nlh);
        if (rc < 0 && rc != -EEXIST)
            return nl_fail(err, rc, "create bridge", name);
    }
    if (addr_add(r, name, gw, prefix, err) < 0 || link_up(r, name, err) < 0)
        return -1;
    return 0;
}

int nl_link_delete(const char *name, struct merr *err)
{
    int ifindex = (int)if_nametoindex(name);
    if (ifindex == 0)
        return 0;
    auto_rtnl struct rtnl *r = rtnl_new(err);
    if (r == NULL)
        return -1;
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
    struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    ifi->ifi_index = ifindex;
    int rc = rtnl_talk(r, nlh);
    if (rc < 0 && rc != -ENODEV)
        return nl_fail(err, rc, "delete link", name);
    return 0;
}

/* ---- work inside a namespace ---- */

struct ns_job {
    const char *netns_path; /* NULL: a new namespace */
    int (*fn)(struct ns_job *job, struct merr *err);
    const char *ifname;
    uint32_t ip, gw;
    unsigned prefix;
    const struct nl_ep_addrs *addrs;
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
    auto_rtnl struct rtnl *r = rtnl_new(err);
    return r != NULL ? link_up(r, "lo", err) : -1;
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

/* The default route (IPv4 or IPv6) through gw (4 or 16 bytes) on ifname. */
static int default_route_add(struct rtnl *r, const char *ifname, int family, const void *gw,
                             struct merr *err)
{
    int ifindex = 0;
    if (ifindex_of(ifname, &ifindex, err) < 0)
        return -1;
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWROUTE, NLM_F_CREATE, sizeof(struct rtmsg));
    struct rtmsg *rt = mnl_nlmsg_get_payload(nlh);
    rt->rtm_family = (unsigned char)family;
    rt->rtm_dst_len = 0; /* the default route */
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    mnl_attr_put(nlh, RTA_GATEWAY, family == AF_INET6 ? 16 : 4, gw);
    mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
    int rc = rtnl_talk(r, nlh);
    if (rc < 0 && rc != -EEXIST)
        return nl_fail(err, rc, "add the default route via", ifname);
    return 0;
}

/* LinkLocalIPs: IPv4 ones as /16, IPv6 ones as /64 (dockerd's masks). */
static int link_local_add(struct rtnl *r, const char *ifname, char *const *ips, struct merr *err)
{
    for (size_t i = 0; ips != NULL && ips[i] != NULL; i++) {
        uint32_t ip4;
        struct net_ip6 ip6;
        struct merr ignored;
        if (net_ip_parse(ips[i], &ip4, &ignored) == 0) {
            if (addr_add(r, ifname, ip4, 16, err) < 0)
                return -1;
        } else if (net_ip6_parse(ips[i], &ip6, err) < 0 || ipv6_enable(ifname, err) < 0 ||
                   addr6_add(r, ifname, &ip6, 64, err) < 0) {
            return -1;
        }
    }
    return 0;
}

static int job_configure(struct ns_job *job, struct merr *err)
{
    const struct nl_ep_addrs *a = job->addrs;
    auto_rtnl struct rtnl *r = rtnl_new(err);
    if (r == NULL || link_up(r, "lo", err) < 0 ||
        addr_add(r, job->ifname, a->ip, a->prefix, err) < 0)
        return -1;
    if (a->ip6 != NULL && (ipv6_enable(job->ifname, err) < 0 ||
                           addr6_add(r, job->ifname, a->ip6, a->prefix6, err) < 0))
        return -1;
    if (link_local_add(r, job->ifname, a->link_local, err) < 0 || link_up(r, job->ifname, err) < 0)
        return -1;
    uint32_t gw = htonl(a->gw);
    if (a->gw != 0 && default_route_add(r, job->ifname, AF_INET, &gw, err) < 0)
        return -1;
    if (a->ip6 != NULL && a->gw6 != NULL &&
        default_route_add(r, job->ifname, AF_INET6, a->gw6->b, err) < 0)
        return -1;
    return 0;
}

/* A veth pair: host_if here, ifname (with mac) in the namespace behind nsfd. */
static int veth_create(struct rtnl *r, const char *host_if, const char *ifname, int nsfd,
                       const char *mac, unsigned mtu, struct merr *err)
{
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                                    sizeof(struct ifinfomsg));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, host_if);
    if (mtu != 0)
        mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    /* the peer's attributes follow an ifinfomsg of its own */
    mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)nsfd);
    if (mtu != 0)
        mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
    unsigned char b[6];
    if (mac != NULL && sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &b[0], &b[1], &b[2], &b[3],
                              &b[4], &b[5]) == 6)
        mnl_attr_put(nlh, IFLA_ADDRESS, sizeof b, b);
    mnl_attr_nest_end(nlh, peer);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    int rc = rtnl_talk(r, nlh);
    return rc < 0 ? nl_fail(err, rc, "create veth", host_if) : 0;
}

static int enslave(struct rtnl *r, const char *bridge, const char *host_if, struct merr *err)
{
    int br = 0, host = 0;
    if (ifindex_of(bridge, &br, err) < 0 || ifindex_of(host_if, &host, err) < 0)
        return -1;
    struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
    struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    ifi->ifi_index = host;
    mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)br);
    int rc = rtnl_talk(r, nlh);
    return rc < 0 ? nl_fail(err, rc, "attach to the bridge", host_if) : 0;
}

int nl_veth_attach(const char *bridge, const char *host_if, const char *netns_path,
                   const char *ifname, const struct nl_ep_addrs *addrs, const char *mac,
                   unsigned mtu, struct merr *err)
{
    auto_rtnl struct rtnl *r = rtnl_new(err);
    if (r == NULL)
        return -1;
    int nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        return merr_set(err, MERR_IO, errno, "cannot open '%s'", netns_path);
    int rc = veth_create(r, host_if, ifname, nsfd, mac, mtu, err);
    close(nsfd);
    if (rc < 0)
        return -1;
    struct ns_job job = { .netns_path = netns_path, .fn = job_configure, .ifname = ifname,
                          .addrs = addrs };
    if (enslave(r, bridge, host_if, err) < 0 || link_up(r, host_if, err) < 0 ||
        run_in_netns(&job, err) < 0) {
        struct merr ignored;
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
