/* Container networking of machine-engine: the default bridge network and user-defined bridge
 * networks (a Linux bridge each, IPAM from a subnet, the host as gateway, outbound NAT through
 * nftables or iptables), one network namespace and one veth pair per container and network,
 * published ports through a userland proxy, and the container's /etc/hosts, /etc/resolv.conf
 * and /etc/hostname (hosts files are kept in sync, so containers on a network reach each other
 * by name and alias). Containers on user-defined networks also get an embedded DNS server at
 * 127.0.0.11 (UDP and TCP) that answers those names and forwards others to the host's
 * nameservers.
 *
 * State: networks and per-container network settings in <data-root>/network/ (JSON, atomic
 * writes); namespaces bind-mounted under <exec-root>/netns/. At startup every namespace left
 * by a previous engine is removed and the firewall table rebuilt (the container manager stops
 * every container a dead engine left running). Thread-safe. */
#ifndef MACHINE_ENGINE_NETWORK_H
#define MACHINE_ENGINE_NETWORK_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cleanup.h"

struct merr;
struct mlog;
struct net_service;

#define NET_DEFAULT_BRIDGE "machine0"
#define NET_DEFAULT_BIP "172.18.0.1/16"
#define NET_DEFAULT_POOL "base=172.19.0.0/16,size=24"

struct net_service_config {
    const char *data_root;
    const char *exec_root;
    const char *bridge;       /* NULL: NET_DEFAULT_BRIDGE */
    const char *bip;          /* NULL: NET_DEFAULT_BIP */
    const char *default_pool; /* NULL: NET_DEFAULT_POOL */
    /* The engine's --dns, --dns-search, --dns-opt: what a container without its own gets. */
    struct {
        char *const *servers, *const *search, *const *options;
    } dns;
    unsigned mtu; /* --mtu of the default bridge's endpoints (0: the kernel's) */
    const struct mlog *log;
    /* Resolves a container name or ID prefix to its full ID (docker network connect). */
    int (*ctr_lookup)(void *data, const char *ref, char id[65], struct merr *err);
    void *ctr_data;
};

int net_service_new(const struct net_service_config *cfg, struct net_service **out,
                    struct merr *err) MUST_CHECK;
/* Closes the published ports; namespaces and rules stay for the next engine to reconcile. */
void net_service_free(struct net_service *s);
/* "nftables", "iptables" or "none". */
const char *net_service_firewall(const struct net_service *s);

/* ---- container hooks (called by the container manager) ---- */

/* Validates and records the network part of a create request (HostConfig.NetworkMode,
 * PortBindings, PublishAllPorts, Config.ExposedPorts, NetworkingConfig.EndpointsConfig) merged
 * with the image's ExposedPorts. MERR_NOT_FOUND "network X not found". */
int net_ctr_create(struct net_service *s, const char *id, const char *name, const json_t *body,
                   const json_t *image_config, struct merr *err) MUST_CHECK;
/* docker rename: the container's name in DNS answers and /etc/hosts files from now on. */
int net_ctr_rename(struct net_service *s, const char *id, const char *name,
                   struct merr *err) MUST_CHECK;

#define NET_HOLD_FDS 3
/* What a starting container gets: a namespace to join (NULL: the runtime's own choice by
 * mode) and files to bind-mount over /etc/hosts, /etc/resolv.conf and /etc/hostname. */
struct net_ctr_run {
    char *netns_path;
    char *hosts, *resolv, *hostname;
    /* fds for the container's monitor to keep open (valid when > 2, else none): the write end
     * of the port proxy's hold pipe, the embedded DNS server's udp and tcp sockets */
    int hold[NET_HOLD_FDS];
};
void net_ctr_run_release(struct net_ctr_run *r);
/* Builds the namespace, veths, addresses, routes, published ports and files. On failure
 * nothing is left. MERR_EXISTS when a host port is taken. */
int net_ctr_start(struct net_service *s, const char *id, const char *hostname,
                  struct net_ctr_run *out, struct merr *err) MUST_CHECK;
/* Undoes start (idempotent). */
void net_ctr_stop(struct net_service *s, const char *id);
/* A container that ran on while the engine was down (live-restore): its namespace and
 * endpoints as recorded at start, its port proxy found again (or started anew), its DNS
 * sockets taken back from holder (its monitor, with the start's hold fds from holder_fd on;
 * 0: none) and its names served again. */
int net_ctr_adopt(struct net_service *s, const char *id, pid_t holder, int holder_fd,
                  struct merr *err) MUST_CHECK;
/* After the containers were recovered: the re-adopted ones' DNS sockets served (the queries
 * waiting in them answered), and the namespaces a previous engine left for containers of
 * this one that are not running now removed. */
void net_service_remove_stale(struct net_service *s);
void net_ctr_remove(struct net_service *s, const char *id);
/* Fills NetworkSettings (and, for ps, Ports) of a rendered container. */
void net_ctr_describe(struct net_service *s, const char *id, json_t *obj, bool ps);

/* ---- the /networks API ---- */

json_t *net_list(struct net_service *s, struct merr *err) MUST_CHECK;
json_t *net_inspect(struct net_service *s, const char *ref, struct merr *err) MUST_CHECK;
/* POST /networks/create body. MERR_EXISTS for a taken name (with CheckDuplicate; without it,
 * *warning says the name is taken twice now, else NULL), MERR_INVALID for bad IPAM. */
int net_create(struct net_service *s, const json_t *body, char **id, char **warning,
               struct merr *err) MUST_CHECK;
/* MERR_PERM for a pre-defined network, MERR_EXISTS while containers run on it. */
int net_remove(struct net_service *s, const char *ref, struct merr *err) MUST_CHECK;
int net_connect(struct net_service *s, const char *ref, const json_t *body, struct merr *err) MUST_CHECK;
int net_disconnect(struct net_service *s, const char *ref, const json_t *body,
                   struct merr *err) MUST_CHECK;
/* Removes unused user networks that match accepts (NULL: all; created time, labels); returns
 * the array of removed names. */
typedef bool (*net_prune_match_fn)(void *data, int64_t created_ns, const json_t *labels);
json_t *net_prune(struct net_service *s, net_prune_match_fn match, void *data,
                  struct merr *err) MUST_CHECK;

#endif
