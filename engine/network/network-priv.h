/* Internals of the network module shared by its files and its unit tests: addresses and IPAM,
 * port specs, the texts of /etc/hosts and resolv.conf, firewall rule texts, netlink and netns
 * helpers, the port proxy. The pure parts take buffers and touch nothing. */
#ifndef MACHINE_ENGINE_NETWORK_PRIV_H
#define MACHINE_ENGINE_NETWORK_PRIV_H

#ifndef MACHINE_NETWORK_PRIV
#error "network-priv.h is internal to engine/network/ and its tests (they define MACHINE_NETWORK_PRIV)"
#endif

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;
struct mlog;

/* ---- addresses and IPAM (ipam.c, pure) ---- */

/* IPv4 addresses are kept in host byte order. */
struct net_subnet {
    uint32_t addr; /* the network address (host bits clear) */
    unsigned prefix;
};

#define NET_IP_STR 16
void net_ip_str(uint32_t ip, char out[NET_IP_STR]);
int net_ip_parse(const char *s, uint32_t *out, struct merr *err) MUST_CHECK;
/* "172.18.0.0/16". With keep_host (for --bip 172.18.0.1/16) *host receives the address as
 * written; otherwise host bits must be clear. MERR_INVALID on anything else. */
int net_cidr_parse(const char *s, struct net_subnet *out, uint32_t *host, struct merr *err) MUST_CHECK;
/* "172.18.0.0/16" into out (at least 20 bytes). */
void net_subnet_str(const struct net_subnet *s, char *out, size_t size);
uint32_t net_subnet_mask(unsigned prefix);
bool net_subnet_contains(const struct net_subnet *s, uint32_t ip);
bool net_subnet_overlaps(const struct net_subnet *a, const struct net_subnet *b);
/* The lowest usable address of s that is neither the gateway nor in used (network and
 * broadcast addresses excluded). MERR_EXISTS when the subnet is full. */
int net_ipam_pick(const struct net_subnet *s, uint32_t gateway, const uint32_t *used, size_t n_used,
                  uint32_t *out, struct merr *err) MUST_CHECK;
/* A /size subnet of pool that overlaps none of taken. MERR_EXISTS when the pool is exhausted. */
int net_pool_pick(const struct net_subnet *pool, unsigned size, const struct net_subnet *taken,
                  size_t n_taken, struct net_subnet *out, struct merr *err) MUST_CHECK;
/* dockerd's --default-address-pool "base=172.80.0.0/16,size=24". */
int net_pool_parse(const char *s, struct net_subnet *base, unsigned *size, struct merr *err) MUST_CHECK;

/* The lowest usable address of range (a part of s; NULL: all of s) that is neither s's
 * network or broadcast address, nor the gateway, nor in used (docker's IPRange). */
int net_ipam_pick_range(const struct net_subnet *s, const struct net_subnet *range, uint32_t gateway,
                        const uint32_t *used, size_t n_used, uint32_t *out, struct merr *err) MUST_CHECK;

/* ---- IPv6 (ipam6.c, pure) ---- */

struct net_ip6 {
    uint8_t b[16]; /* network byte order */
};
struct net_subnet6 {
    struct net_ip6 addr; /* host bits clear */
    unsigned prefix;
};
#define NET_IP6_STR 46
void net_ip6_str(const struct net_ip6 *ip, char out[NET_IP6_STR]);
int net_ip6_parse(const char *s, struct net_ip6 *out, struct merr *err) MUST_CHECK;
bool net_ip6_is_zero(const struct net_ip6 *ip);
bool net_ip6_equal(const struct net_ip6 *a, const struct net_ip6 *b);
/* "2001:db8::/64" (/1 to /126). Host bits are dropped as dockerd's IPAM does; with host,
 * *host receives the address as written. MERR_INVALID otherwise. */
int net_cidr6_parse(const char *s, struct net_subnet6 *out, struct net_ip6 *host,
                    struct merr *err) MUST_CHECK;
/* "2001:db8::/64" into out (at least 64 bytes). */
void net_subnet6_str(const struct net_subnet6 *s, char *out, size_t size);
bool net_subnet6_contains(const struct net_subnet6 *s, const struct net_ip6 *ip);
bool net_subnet6_overlaps(const struct net_subnet6 *a, const struct net_subnet6 *b);
/* The lowest address of range (within s; NULL: s) that is neither s's zero address, nor the
 * gateway (may be NULL), nor in used. MERR_EXISTS when none is left. */
int net_ipam6_pick(const struct net_subnet6 *s, const struct net_subnet6 *range,
                   const struct net_ip6 *gateway, const struct net_ip6 *used, size_t n_used,
                   struct net_ip6 *out, struct merr *err) MUST_CHECK;

/* ---- the IPAM of a network create request (ipamcfg.c, pure) ---- */

struct net_ipam_request {
    bool has_v4; /* an IPv4 Subnet was given (else the pool gives one) */
    struct net_subnet subnet, range; /* range.prefix 0: no IPRange */
    uint32_t gateway;                /* 0: not given */
    bool has_v6;
    struct net_subnet6 subnet6, range6;
    struct net_ip6 gateway6; /* zero: not given */
};
/* The IPAM object of POST /networks/create: driver "default", at most one IPv4 and one IPv6
 * entry of Config, IPRange, Gateway and AuxiliaryAddresses inside their Subnet. MERR_INVALID,
 * MERR_NOT_FOUND for another IPAM driver (dockerd's missing plugin). */
int net_ipam_request_parse(const json_t *ipam, struct net_ipam_request *out, struct merr *err) MUST_CHECK;
/* The AuxiliaryAddresses of a stored IPAM.Config array (reserved: never handed out). */
size_t net_ipam_aux_v4(const json_t *config, uint32_t *out, size_t cap);
size_t net_ipam_aux_v6(const json_t *config, struct net_ip6 *out, size_t cap);

/* ---- a container's settings on one network (epcfg.c, pure) ---- */

/* "02:42:AC:11:00:0a" into out, lower case. MERR_INVALID for anything else or a multicast one. */
int net_mac_parse(const char *s, char out[18], struct merr *err) MUST_CHECK;
/* A link "name:alias" or "name" (the alias is the name; a leading '/' is dropped, and
 * "/name:/me/alias" as inspect shows it is "name:alias"); *name and *alias are malloc'd. */
int net_link_parse(const char *spec, char **name, char **alias, struct merr *err) MUST_CHECK;
/* EndpointSettings.IPAMConfig. */
struct net_ep_ipam {
    uint32_t ip4;       /* IPv4Address, 0: none */
    struct net_ip6 ip6; /* IPv6Address, zero: none */
    char **link_local;  /* LinkLocalIPs, NULL-terminated or NULL */
};
int net_ep_ipam_parse(const json_t *cfg, struct net_ep_ipam *out, struct merr *err) MUST_CHECK;
void net_ep_ipam_release(struct net_ep_ipam *r);

/* ---- published ports (ports.c, pure) ---- */

enum net_proto { NET_TCP, NET_UDP };
const char *net_proto_name(enum net_proto p);

struct net_port {
    enum net_proto proto;
    uint16_t port;
};
/* "80", "80/tcp", "53/udp". */
int net_port_parse(const char *s, struct net_port *out, struct merr *err) MUST_CHECK;

struct net_port_binding {
    enum net_proto proto;
    uint16_t container_port;
    char host_ip[NET_IP_STR]; /* "" = every address */
    uint16_t host_port;       /* 0 = any free port (-P, or -p 80) */
};

/* HostConfig.PortBindings ({"80/tcp":[{"HostIp":"","HostPort":"8080"}]}), plus with publish_all
 * every port of exposed (the union of Config.ExposedPorts and the image's) without a binding.
 * Any of the JSON arguments may be NULL. *out is malloc'd. */
int net_port_bindings_parse(const json_t *port_bindings, const json_t *exposed, bool publish_all,
                            struct net_port_binding **out, size_t *n, struct merr *err) MUST_CHECK;

/* A binding after start: the host port the proxy got. */
struct net_port_bound {
    struct net_port_binding b;
    uint16_t host_port;
};
/* NetworkSettings.Ports: {"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"18080"}], "443/tcp":null}. */
json_t *net_ports_settings_json(const struct net_port_bound *bound, size_t n, const json_t *exposed);
/* The Ports array of GET /containers/json. */
json_t *net_ports_ps_json(const struct net_port_bound *bound, size_t n, const json_t *exposed);

/* ---- files the container sees (files.c, pure) ---- */

struct net_host_entry {
    uint32_t ip;
    const char *const *names; /* NULL-terminated: name, aliases, short ID */
};
/* /etc/hosts: localhost lines, then one line per entry (the container's own first). */
char *net_hosts_text(const struct net_host_entry *entries, size_t n);
/* --add-host "NAME:IP" (or NAME=IP; IP may be IPv6, [IPv6], or host-gateway). *name and *ip
 * are malloc'd. MERR_INVALID otherwise. */
int net_extra_host_parse(const char *spec, char **name, char **ip, struct merr *err) MUST_CHECK;
/* /etc/hosts lines "IP\tNAME" of valid specs; host-gateway becomes gateway. */
char *net_extra_hosts_text(char *const *specs, uint32_t gateway);
/* What a container asked for: --dns, --dns-search, --dns-option (each NULL-terminated or
 * NULL: the host's). */
struct net_dns_settings {
    char **servers, **search, **options;
};
/* A container's resolv.conf. embedded: the embedded DNS server and "options ndots:0" (the
 * asked servers become that server's upstreams); otherwise the asked servers, else the
 * host's without loopback ones (they cannot work from inside), else 8.8.8.8 and 8.8.4.4 as
 * dockerd does. Asked search domains and options replace the host's. */
char *net_resolv_text(const char *host_resolv, bool embedded, const struct net_dns_settings *user);

/* ---- DNS messages (dnsmsg.c, pure) ---- */

#define NET_DNS_NAME_MAX 1025 /* a decoded name and its NUL */
#define NET_DNS_MAX_MSG 4096  /* the largest query accepted */
#define NET_DNS_UDP_MAX 512   /* the largest reply built */

struct net_dns_query {
    uint16_t id;
    bool rd;
    unsigned opcode;
    char name[NET_DNS_NAME_MAX]; /* lower case, no trailing dot; "" for the root */
    uint16_t qtype, qclass;
    size_t question_end; /* offset just past the question */
};
/* A query with one question. MERR_INVALID for anything malformed (or a response),
 * MERR_UNSUPPORTED for an opcode other than QUERY (q->id and q->opcode are set then). */
int net_dns_query_parse(const uint8_t *msg, size_t len, struct net_dns_query *q,
                        struct merr *err) MUST_CHECK;
/* The reply to query (parsed into q): rcode, and for an A (or ANY) question in class IN an
 * A record per address, as many as fit in 512 bytes. Returns its length, 0 if cap is short. */
size_t net_dns_reply_build(const uint8_t *query, const struct net_dns_query *q, int rcode,
                           const uint32_t *ips, size_t n_ips, uint8_t *out, size_t cap);
/* The same for an AAAA question: an AAAA record per address (none for other questions). */
size_t net_dns_reply6_build(const uint8_t *query, const struct net_dns_query *q, int rcode,
                            const struct net_ip6 *ips, size_t n_ips, uint8_t *out, size_t cap);
/* A bare header answering an unparsable query (FORMERR, NOTIMP). 0 when len < 12. */
size_t net_dns_error_build(const uint8_t *query, size_t len, int rcode, uint8_t *out, size_t cap);
/* The IPv4 "nameserver" addresses of a resolv.conf text, at most cap. */
size_t net_resolv_nameservers(const char *text, uint32_t *out, size_t cap);
/* The domains of its "search" (or "domain") lines, lower case, NULL-terminated; NULL: none. */
char **net_resolv_search(const char *text);

/* ---- the embedded DNS server (dns.c) ---- */

#define NET_DNS_ADDR "127.0.0.11"

/* Addresses of name as seen by the container owner (n, at most cap), or -1 when unknown. */
typedef int (*net_dns_lookup_fn)(void *data, const char *owner, const char *name, uint32_t *ips,
                                 size_t cap);
struct net_dns_config {
    const struct mlog *log;
    net_dns_lookup_fn lookup;
    /* IPv6 addresses of name for AAAA questions (n, or -1 when unknown); NULL: A ones only */
    int (*lookup6)(void *data, const char *owner, const char *name, struct net_ip6 *ips, size_t cap);
    void *data;
    /* where names the lookup does not know are forwarded (in the engine's namespace) */
    uint32_t upstreams[3];
    uint16_t upstream_port; /* 0: 53 */
    size_t n_upstreams;
};
struct net_dns;
struct net_dns *net_dns_new(const struct net_dns_config *cfg, struct merr *err) MUST_CHECK;
void net_dns_free(struct net_dns *d);
/* Serves queries for owner arriving on the bound UDP socket udp_fd and the listening TCP
 * socket tcp_fd (-1: none); both are taken over, even on failure. Unknown names go to
 * upstreams (n_upstreams of them, at most 3; none: the configured ones). */
int net_dns_add(struct net_dns *d, const char *owner, int udp_fd, int tcp_fd,
                const uint32_t *upstreams, size_t n_upstreams, struct merr *err) MUST_CHECK;
bool net_dns_has(struct net_dns *d, const char *owner);
/* Closes owner's sockets and drops its queries in flight. */
void net_dns_remove_owner(struct net_dns *d, const char *owner);

/* ---- firewall (firewall.c) ---- */

struct net_fw_net {
    const char *bridge; /* interface name */
    const char *subnet; /* "172.18.0.0/16" */
    bool internal;      /* no NAT to the outside */
};

#define NET_FW_TABLE "machine-engine"
#define NET_FW_CHAIN "MACHINE-ENGINE"
/* One nft transaction that replaces our table: masquerade rules for nets, and a forward chain
 * that keeps networks apart and internal networks in (pure). */
char *net_fw_nft_script(const struct net_fw_net *nets, size_t n);
/* The iptables commands (argv vectors, NULL-terminated list) that set up / tear down the same
 * (pure). Setup commands whose failure is fine (chain exists) are marked by a leading "?". */
char ***net_fw_iptables_setup(const struct net_fw_net *nets, size_t n);
char ***net_fw_iptables_teardown(void);
#define NET_FW_FWD_CHAIN "MACHINE-ENGINE-FWD"
/* The filter chain jumped to from the top of FORWARD: isolation and internal-network drops,
 * then accepts for what our bridges send and the replies to it (pure). */
char ***net_fw_iptables_forward_setup(const struct net_fw_net *nets, size_t n);
char ***net_fw_iptables_forward_teardown(void);
/* Over `iptables -S FORWARD`: whether the policy is DROP; *ours: whether our jump is there. */
bool net_fw_forward_blocked(const char *rules, bool *ours);
void net_argvv_free(char ***v);

struct net_fw;
/* Chooses nftables (libnftables) when the kernel answers, else iptables when installed, else a
 * backend that does nothing (NAT unavailable, reported by net_fw_name). */
struct net_fw *net_fw_new(const struct mlog *log);
/* The iptables backend running its commands through runner (tests: a recorder). */
struct cmd_runner;
struct net_fw *net_fw_new_iptables(const struct mlog *log, const struct cmd_runner *runner);
const char *net_fw_name(const struct net_fw *fw);
int net_fw_apply(struct net_fw *fw, const struct net_fw_net *nets, size_t n, struct merr *err) MUST_CHECK;
int net_fw_clear(struct net_fw *fw, struct merr *err) MUST_CHECK;
void net_fw_free(struct net_fw *fw);

/* ---- netlink and namespaces (netlink.c) ---- */

/* Creates (or finds) bridge name with gw/prefix on it, up. */
int nl_bridge_ensure(const char *name, uint32_t gw, unsigned prefix, struct merr *err) MUST_CHECK;
/* Removes a link in the current namespace; a missing one is fine. */
int nl_link_delete(const char *name, struct merr *err) MUST_CHECK;
bool nl_link_exists(const char *name);
/* IPv6 gateway address on a bridge (IPv6 turned on for it). */
int nl_bridge_addr6(const char *name, const struct net_ip6 *gw, unsigned prefix,
                    struct merr *err) MUST_CHECK;
/* The addresses of a container's interface. */
struct nl_ep_addrs {
    uint32_t ip, gw; /* gw 0: no default route through this interface */
    unsigned prefix;
    const struct net_ip6 *ip6, *gw6; /* NULL: no IPv6 address / no IPv6 default route */
    unsigned prefix6;
    char *const *link_local; /* LinkLocalIPs (IPv4 as /16, IPv6 as /64), may be NULL */
};
/* veth host_if <-> ifname inside the namespace at netns_path: the host end enslaved to bridge
 * and up, the other renamed ifname with addrs, up, with their default routes. lo up. */
int nl_veth_attach(const char *bridge, const char *host_if, const char *netns_path,
                   const char *ifname, const struct nl_ep_addrs *addrs, const char *mac,
                   unsigned mtu /* 0: the kernel's */, struct merr *err) MUST_CHECK;
/* A non-blocking socket of type (SOCK_DGRAM, or SOCK_STREAM listening) bound to ip:port
 * inside the namespace at netns_path (it stays there). */
int nl_netns_bind(const char *netns_path, int type, uint32_t ip, uint16_t port, int *fd,
                  struct merr *err) MUST_CHECK;
/* Deletes ifname inside the namespace (docker network disconnect of a running container). */
int nl_netns_link_delete(const char *netns_path, const char *ifname, struct merr *err) MUST_CHECK;
/* A new network namespace held by a bind mount on path (created). */
int nl_netns_create(const char *path, struct merr *err) MUST_CHECK;
/* Unmounts and unlinks; a missing one is fine. */
int nl_netns_remove(const char *path, struct merr *err) MUST_CHECK;
int nl_sysctl_write(const char *path, const char *value, struct merr *err) MUST_CHECK;

/* ---- userland port proxy (proxy.c: binding, and the in-engine fallback) ---- */

/* A listening (tcp) or bound (udp) non-blocking socket on host_ip:host_port (0: the kernel
 * picks; *bound gets the port). MERR_EXISTS with dockerd's words when the port is taken. */
int net_proxy_bind(enum net_proto proto, const char *host_ip, uint16_t host_port, int *fd,
                   uint16_t *bound, struct merr *err) MUST_CHECK;
/* The forwarding thread used when machine-proxy is not installed; it also watches the
 * machine-proxy processes and calls on_exit (without its lock) when one ends. */
struct net_proxy;
typedef void (*net_proxy_exit_fn)(void *data, const char *owner, pid_t pid);
struct net_proxy *net_proxy_new(const struct mlog *log, net_proxy_exit_fn on_exit, void *data,
                                struct merr *err) MUST_CHECK;
/* Reports the end of owner's machine-proxy (pidfd stays the caller's: unwatch before closing). */
void net_proxy_watch(struct net_proxy *p, const char *owner, pid_t pid, int pidfd);
void net_proxy_unwatch(struct net_proxy *p, const char *owner);
void net_proxy_free(struct net_proxy *p);
/* Forwards each connection (tcp) or datagram flow (udp) arriving on fd (taken over, even on
 * failure) to target_ip:target_port. owner groups listeners for removal. */
int net_proxy_add_fd(struct net_proxy *p, const char *owner, enum net_proto proto, int fd,
                     uint32_t target_ip, uint16_t target_port, struct merr *err) MUST_CHECK;
/* Closes owner's listeners and connections. */
void net_proxy_remove_owner(struct net_proxy *p, const char *owner);

#endif
