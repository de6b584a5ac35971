/* Internals shared by service.c (networks) and endpoint.c (containers on them). */
#ifndef MACHINE_ENGINE_NETWORK_SERVICE_PRIV_H
#define MACHINE_ENGINE_NETWORK_SERVICE_PRIV_H

#ifndef MACHINE_NETWORK_PRIV
#error "service-priv.h is internal to engine/network/ and its tests (they define MACHINE_NETWORK_PRIV)"
#endif

#include <pthread.h>

#include "network-priv.h"
#include "network.h"
#include "proxy/pxspec.h"

struct net_network {
    char id[65];
    char *name;
    char *driver; /* "bridge", "host", "null" */
    char *bridge; /* bridge networks: the interface */
    struct net_subnet subnet;
    uint32_t gateway;
    struct net_subnet range; /* IPAM IPRange; prefix 0: the whole subnet */
    bool ipv6;               /* EnableIPv6: every endpoint gets an address of subnet6 too */
    bool has6;               /* an IPv6 subnet (without EnableIPv6 only for IPv6Address asks) */
    struct net_subnet6 subnet6, range6; /* range6.prefix 0: the whole subnet6 */
    struct net_ip6 gateway6;
    bool internal, attachable, builtin;
    json_t *labels, *options;
    json_t *ipam_config;  /* IPAM.Config as the create request gave it (array) */
    json_t *ipam_options; /* IPAM.Options (object or null) */
    int64_t created_ns;
};

/* A container's machine-proxy (pxproc.c): pid and start time name it for good. */
struct net_pxproc {
    pid_t pid;
    unsigned long long start; /* /proc/PID/stat field 22 */
    int pidfd;                /* -1: none (or not found yet) */
};

/* A container on one network. */
struct net_ep {
    char *network_id;
    char **aliases;      /* NULL-terminated, may be NULL */
    uint32_t want_ip;    /* IPAMConfig.IPv4Address, 0: any */
    struct net_ip6 want_ip6;  /* IPAMConfig.IPv6Address, zero: any */
    char **link_local;   /* IPAMConfig.LinkLocalIPs */
    char **links;        /* Links: "name:alias", names resolved for this container only */
    char want_mac[18];   /* MacAddress (or Config.MacAddress), "": derived from the address */
    json_t *driver_opts; /* DriverOpts as given (reported; the bridge driver reads none) */
    /* while running */
    uint32_t ip;
    struct net_ip6 ip6;
    char ep_id[65];
    char host_if[16], ifname[16], mac[18];
};

struct net_ctr {
    char id[65];
    char *name;
    char *mode; /* HostConfig.NetworkMode */
    struct net_ep *eps;
    size_t n_eps;
    json_t *port_bindings; /* as sent */
    bool publish_all;
    json_t *exposed; /* {"80/tcp":{}} */
    struct net_dns_settings dns; /* HostConfig.Dns, DnsSearch, DnsOptions */
    char **extra_hosts;          /* HostConfig.ExtraHosts */
    /* while running */
    bool running;
    char *hostname;
    char *netns;
    struct net_port_bound *bound;
    size_t n_bound;
    bool bound_recorded; /* bound came from run.json (an adopted run) */
    struct net_pxproc px; /* its machine-proxy */
    int hold_w;           /* the engine's end of the proxy's hold pipe, -1: none */
    unsigned long dns_ino[2]; /* the embedded DNS sockets (udp, tcp), as recorded for adoption */
    int dns_adopted[2];       /* taken back, served once recovery is done; -1: none */
    struct net_ctr *next;
};

struct net_service {
    pthread_mutex_t lock;
    const struct mlog *log;
    char *root, *networks_dir, *ctrs_dir, *netns_dir;
    struct net_subnet pool;
    unsigned pool_size;
    struct net_network **nets;
    size_t n_nets;
    struct net_ctr *ctrs;
    struct net_fw *fw;
    struct net_proxy *proxy; /* the in-engine fallback */
    char *proxy_bin;         /* machine-proxy, NULL: not installed */
    struct net_dns *dns;
    char **dns_search; /* the host's search domains, stripped from names asked */
    /* the engine's --dns, --dns-search, --dns-opt for containers without their own */
    char **default_dns, **default_dns_search, **default_dns_options;
    unsigned default_mtu; /* --mtu: the default bridge's endpoints (0: the kernel's 1500) */
    int (*ctr_lookup)(void *data, const char *ref, char id[65], struct merr *err);
    void *ctr_data;
};

int64_t svc_now_ns(void);
void svc_random_hex(char *out, size_t nbytes);
struct net_network *svc_network_find(struct net_service *s, const char *ref, struct merr *err);
struct net_network *svc_default_network(struct net_service *s);
int svc_network_persist(struct net_service *s, const struct net_network *n, struct merr *err) MUST_CHECK;
int svc_firewall_sync(struct net_service *s, struct merr *err) MUST_CHECK;
/* The network's bridge with its gateway addresses, up. */
int svc_bridge_up(const struct net_network *n, struct merr *err) MUST_CHECK;

/* endpoint.c */
int svc_load_containers(struct net_service *s, struct merr *err) MUST_CHECK;
void svc_free_containers(struct net_service *s);
/* runstate.c: a running container's network in <dir>/run.json, for live-restore */
int svc_run_save(const char *dir, const struct net_ctr *c, struct merr *err) MUST_CHECK;
int svc_run_load(const char *dir, struct net_ctr *c, struct merr *err) MUST_CHECK;
void svc_run_forget(const char *dir);
/* The proxy record of <dir>/run.json alone (stop of a container the engine did not adopt). */
void svc_run_load_proxy(const char *dir, struct net_pxproc *px);
/* pxproc.c: machine-proxy processes */
char *net_pxproc_find(void);
/* Starts path with hold (the read end of the hold pipe, -1: none) as fd 3 and the listeners'
 * fds after it; records pid, start time and a pidfd in out. */
int net_pxproc_spawn(const char *path, int hold, const struct px_listener *ls, size_t n,
                     struct net_pxproc *out, struct merr *err) MUST_CHECK;
/* px->pid and px->start as recorded: 1 and a pidfd when that process still runs, else 0. */
int net_pxproc_adopt(struct net_pxproc *px);
bool net_pxproc_alive(const struct net_pxproc *px);
/* Kills it and waits (bounded) until it is gone, so its ports are free. */
void net_pxproc_stop(struct net_pxproc *px);
/* Forgets it (the engine goes, the proxy stays). */
void net_pxproc_release(struct net_pxproc *px);
/* ctrlive.c: the parts of a running container's network that outlive the engine */
int svc_ports_publish(struct net_service *s, struct net_ctr *c, bool hold, struct merr *err) MUST_CHECK;
void svc_ports_stop(struct net_service *s, struct net_ctr *c);
/* net_proxy_exit_fn: a machine-proxy ended while its container runs (takes the lock). */
void svc_proxy_exited(void *data, const char *owner, pid_t pid);
/* The proxy recorded in run.json when it runs on (the hold pipe's write end taken back from
 * holder's fd holder_fd), else the ports bound and a new proxy started. */
int svc_ports_adopt(struct net_service *s, struct net_ctr *c, pid_t holder, int holder_fd,
                    struct merr *err) MUST_CHECK;
/* The embedded DNS sockets of c, served; dups of them into held[0] (udp) and held[1] (tcp)
 * when held is given (for the container's monitor to keep). */
int svc_dns_attach(struct net_service *s, struct net_ctr *c, int held[2], struct merr *err) MUST_CHECK;
/* Takes the DNS sockets back from holder (fds holder_fd, holder_fd + 1) when they are the
 * ones recorded, else binds new ones; they are served by svc_dns_serve_adopted. */
int svc_dns_adopt(struct net_service *s, struct net_ctr *c, pid_t holder, int holder_fd,
                  struct merr *err) MUST_CHECK;
void svc_dns_serve_adopted(struct net_service *s);
/* Containers running on n, for network inspect. */
json_t *svc_network_containers_json(struct net_service *s, const struct net_network *n);
bool svc_network_in_use(struct net_service *s, const struct net_network *n); /* running endpoints */
bool svc_network_referenced(struct net_service *s, const struct net_network *n); /* any endpoint */
/* net_dns_lookup_fn: names on owner's user networks (takes the lock). */
int svc_dns_lookup(void *data, const char *owner, const char *name, uint32_t *ips, size_t cap);
/* The same for AAAA questions: the IPv6 addresses. */
int svc_dns_lookup6(void *data, const char *owner, const char *name, struct net_ip6 *ips, size_t cap);
/* Drops n from stopped containers' records. */
void svc_forget_network(struct net_service *s, const struct net_network *n);

#endif
