/* Containers on networks: their records, start (namespace, veths, ports, files) and stop,
 * connect/disconnect, and the /etc/hosts files kept in sync between containers that share
 * a network. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "service-priv.h"

#define RECORD_MAX (1u << 20)

/* ---- records ---- */

static void ep_release(struct net_ep *e)
{
    free(e->network_id);
    strv_free(e->aliases);
    strv_free(e->link_local);
    strv_free(e->links);
    json_decref(e->driver_opts);
}

static void ctr_free(struct net_ctr *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_eps; i++)
        ep_release(&c->eps[i]);
    free(c->eps);
    free(c->name);
    free(c->mode);
    json_decref(c->port_bindings);
    json_decref(c->exposed);
    free(c->hostname);
    free(c->netns);
    free(c->bound);
    net_pxproc_release(&c->px); /* the engine goes; a running container's proxy stays */
    for (size_t i = 0; i < 2; i++)
        if (c->dns_adopted[i] >= 0)
            close(c->dns_adopted[i]);
    if (c->hold_w >= 0)
        close(c->hold_w);
    strv_free(c->dns.servers);
    strv_free(c->dns.search);
    strv_free(c->dns.options);
    strv_free(c->extra_hosts);
    free(c);
}

static struct net_ctr *ctr_alloc(void)
{
    struct net_ctr *c = xcalloc(1, sizeof *c);
    c->px.pidfd = c->hold_w = -1;
    c->dns_adopted[0] = c->dns_adopted[1] = -1;
    return c;
}

static struct net_ctr *ctr_find(struct net_service *s, const char *id)
{
    for (struct net_ctr *c = s->ctrs; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static char *ctr_dir(struct net_service *s, const char *id)
{
    return path_join(s->ctrs_dir, id);
}

static json_t *strv_to_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static char **json_to_strv(const json_t *a)
{
    char **v = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(a, i, it)
        if (json_is_string(it))
            v = strv_push(v, json_string_value(it));
    return v;
}

static int ctr_persist(struct net_service *s, const struct net_ctr *c, struct merr *err)
{
    json_t *eps = json_array();
    for (size_t i = 0; i < c->n_eps; i++) {
        const struct net_ep *e = &c->eps[i];
        char ip[NET_IP_STR] = "", ip6[NET_IP6_STR] = "";
        if (e->want_ip != 0)
            net_ip_str(e->want_ip, ip);
        if (!net_ip6_is_zero(&e->want_ip6))
            net_ip6_str(&e->want_ip6, ip6);
        json_array_append_new(eps, json_pack("{s:s,s:o,s:s,s:s,s:o,s:o,s:s,s:O?}", "NetworkID",
                                             e->network_id, "Aliases", strv_to_json(e->aliases),
                                             "IPv4Address", ip, "IPv6Address", ip6, "LinkLocalIPs",
                                             strv_to_json(e->link_local), "Links",
                                             strv_to_json(e->links), "MacAddress", e->want_mac,
                                             "DriverOpts", e->driver_opts));
    }
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:O?,s:b,s:O,s:o,s:o,s:o}", "Id", c->id, "Name",
                          c->name, "Mode", c->mode, "Endpoints", eps, "PortBindings",
                          c->port_bindings, "PublishAllPorts", c->publish_all, "ExposedPorts",
                          c->exposed, "Dns", strv_to_json(c->dns.servers), "DnsSearch",
                          strv_to_json(c->dns.search), "DnsOptions", strv_to_json(c->dns.options));
    json_object_set_new(j, "ExtraHosts", strv_to_json(c->extra_hosts));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    auto_free char *dir = ctr_dir(s, c->id);
    auto_free char *path = path_join(dir, "record.json");
    int rc = fs_mkdir_p(dir, 0700, err) < 0 ? -1 : fs_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

static struct net_ctr *ctr_from_json(const json_t *j)
{
    const char *id = json_string_value(json_object_get(j, "Id"));
    const char *name = json_string_value(json_object_get(j, "Name"));
    const char *mode = json_string_value(json_object_get(j, "Mode"));
    if (id == NULL || strlen(id) != 64 || name == NULL || mode == NULL)
        return NULL;
    struct net_ctr *c = ctr_alloc();
    snprintf(c->id, sizeof c->id, "%s", id);
    c->name = xstrdup(name);
    c->mode = xstrdup(mode);
    json_t *eps = json_object_get(j, "Endpoints");
    c->eps = xcalloc(json_array_size(eps) + 1, sizeof *c->eps);
    size_t i;
    json_t *it;
    json_array_foreach(eps, i, it) {
        const char *nid = json_string_value(json_object_get(it, "NetworkID"));
        if (nid == NULL)
            continue;
        struct net_ep *e = &c->eps[c->n_eps++];
        e->network_id = xstrdup(nid);
        e->aliases = json_to_strv(json_object_get(it, "Aliases"));
        const char *ip = json_string_value(json_object_get(it, "IPv4Address"));
        const char *ip6 = json_string_value(json_object_get(it, "IPv6Address"));
        const char *mac = json_string_value(json_object_get(it, "MacAddress"));
        struct merr ignored;
        if (ip != NULL && ip[0] != '\0' && net_ip_parse(ip, &e->want_ip, &ignored) < 0)
            e->want_ip = 0;
        if (ip6 != NULL && ip6[0] != '\0' && net_ip6_parse(ip6, &e->want_ip6, &ignored) < 0)
            memset(&e->want_ip6, 0, sizeof e->want_ip6);
        if (mac != NULL && mac[0] != '\0' && net_mac_parse(mac, e->want_mac, &ignored) < 0)
            e->want_mac[0] = '\0';
        e->link_local = json_to_strv(json_object_get(it, "LinkLocalIPs"));
        e->links = json_to_strv(json_object_get(it, "Links"));
        json_t *dopts = json_object_get(it, "DriverOpts");
        e->driver_opts = json_is_object(dopts) ? json_incref(dopts) : NULL;
    }
    json_t *pb = json_object_get(j, "PortBindings");
    c->port_bindings = json_is_object(pb) ? json_incref(pb) : NULL;
    c->publish_all = json_is_true(json_object_get(j, "PublishAllPorts"));
    json_t *ex = json_object_get(j, "ExposedPorts");
    c->exposed = json_is_object(ex) ? json_incref(ex) : json_object();
    c->dns.servers = json_to_strv(json_object_get(j, "Dns"));
    c->dns.search = json_to_strv(json_object_get(j, "DnsSearch"));
    c->dns.options = json_to_strv(json_object_get(j, "DnsOptions"));
    c->extra_hosts = json_to_strv(json_object_get(j, "ExtraHosts"));
    return c;
}

int svc_load_containers(struct net_service *s, struct merr *err)
{
    auto_closedir DIR *d = opendir(s->ctrs_dir);
    if (d == NULL)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", s->ctrs_dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 64)
            continue;
        auto_free char *dir = ctr_dir(s, de->d_name);
        auto_free char *path = path_join(dir, "record.json");
        auto_free char *text = NULL;
        struct merr lerr = MERR_INIT;
        if (fs_read_file(path, RECORD_MAX, &text, NULL, &lerr) < 0)
            continue;
        json_t *j = json_loads(text, 0, NULL);
        struct net_ctr *c = j != NULL ? ctr_from_json(j) : NULL;
        json_decref(j);
        if (c == NULL) {
            mlog_warn(s->log, "ignoring network record '%s'", path);
            continue;
        }
        c->next = s->ctrs;
        s->ctrs = c;
    }
    return 0;
}

void svc_free_containers(struct net_service *s)
{
    while (s->ctrs != NULL) {
        struct net_ctr *c = s->ctrs;
        s->ctrs = c->next;
        ctr_free(c);
    }
}

/* ---- create ---- */

static bool mode_is_special(const char *mode)
{
    return strcmp(mode, "none") == 0 || strcmp(mode, "host") == 0 ||
           strncmp(mode, "container:", 10) == 0;
}

/* Whether the network's IPAM was given a subnet of that family (dockerd lets a container
 * choose its address only then). */
static bool asked_subnet(const struct net_network *n, bool v6)
{
    size_t i;
    json_t *c;
    json_array_foreach(n->ipam_config, i, c) {
        const char *sub = json_string_value(json_object_get(c, "Subnet"));
        if (sub != NULL && sub[0] != '\0' && (strchr(sub, ':') != NULL) == v6)
            return true;
    }
    return false;
}

/* The addresses an endpoint asks for, checked as dockerd checks them. */
static int ep_addresses(struct net_service *s, const struct net_network *n, const json_t *ep_cfg,
                        struct net_ep *e, struct merr *err)
{
    struct net_ep_ipam ipam;
    if (net_ep_ipam_parse(json_object_get(ep_cfg, "IPAMConfig"), &ipam, err) < 0)
        return -1;
    bool fixed = ipam.ip4 != 0 || !net_ip6_is_zero(&ipam.ip6);
    int rc = 0;
    if (fixed && (n->builtin || n == svc_default_network(s)))
        rc = merr_set(err, MERR_INVALID, 0,
                      "user specified IP address is supported on user defined networks only");
    else if ((ipam.ip4 != 0 && !asked_subnet(n, false)) ||
             (!net_ip6_is_zero(&ipam.ip6) && !asked_subnet(n, true)))
        rc = merr_set(err, MERR_INVALID, 0, "user specified IP address is supported only when "
                                            "connecting to networks with user configured subnets");
    if (rc < 0) {
        net_ep_ipam_release(&ipam);
        return -1;
    }
    e->want_ip = ipam.ip4;
    e->want_ip6 = ipam.ip6;
    e->link_local = ipam.link_local;
    return 0;
}

/* A new endpoint of c on n from its EndpointSettings (NULL: none); mac and links are the
 * container-wide ones (Config.MacAddress, HostConfig.Links) for its first network. */
static int add_ep(struct net_service *s, struct net_ctr *c, const struct net_network *n,
                  const json_t *ep_cfg, const char *mac, const json_t *links, struct merr *err)
{
    struct net_ep e = { .network_id = xstrdup(n->id) };
    e.aliases = json_to_strv(json_object_get(ep_cfg, "Aliases"));
    const char *ep_mac = json_string_value(json_object_get(ep_cfg, "MacAddress"));
    if (ep_mac != NULL && ep_mac[0] != '\0')
        mac = ep_mac;
    const json_t *ep_links = json_object_get(ep_cfg, "Links");
    if (json_array_size(ep_links) > 0)
        links = ep_links;
    const json_t *dopts = json_object_get(ep_cfg, "DriverOpts");
    bool on_default = n->builtin || n == svc_default_network(s);
    int rc = ep_addresses(s, n, ep_cfg, &e, err);
    if (rc == 0 && mac != NULL && mac[0] != '\0')
        rc = net_mac_parse(mac, e.want_mac, err);
    if (rc == 0 && json_array_size(ep_links) > 0 && on_default)
        rc = merr_set(err, MERR_INVALID, 0, "links in the endpoint settings of the default bridge "
                                            "are not supported by machine-engine (use HostConfig.Links)");
    size_t i;
    json_t *it;
    json_array_foreach(on_default ? NULL : links, i, it) {
        char *name = NULL, *alias = NULL;
        if (rc == 0 && (rc = net_link_parse(json_string_value(it), &name, &alias, err)) == 0)
            e.links = strv_push(e.links, json_string_value(it));
        free(name);
        free(alias);
    }
    if (rc == 0 && dopts != NULL && !json_is_null(dopts) && !json_is_object(dopts))
        rc = merr_set(err, MERR_INVALID, 0, "invalid DriverOpts: expected an object");
    if (rc < 0) {
        ep_release(&e);
        return -1;
    }
    e.driver_opts = json_object_size(dopts) > 0 ? json_deep_copy(dopts) : NULL;
    struct net_ep *g = realloc(c->eps, (c->n_eps + 1) * sizeof *g);
    if (g == NULL)
        abort();
    c->eps = g;
    c->eps[c->n_eps++] = e;
    return 0;
}

static void merge_exposed(json_t *into, const json_t *from)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v) {
        struct net_port p;
        struct merr ignored;
        if (net_port_parse(k, &p, &ignored) < 0)
            continue;
        auto_free char *key = xasprintf("%u/%s", p.port, net_proto_name(p.proto));
        json_object_set_new(into, key, json_object());
    }
}

static int extra_hosts_check(char *const *specs, struct merr *err)
{
    for (size_t i = 0; specs != NULL && specs[i] != NULL; i++) {
        char *name = NULL, *ip = NULL;
        if (net_extra_host_parse(specs[i], &name, &ip, err) < 0)
            return -1;
        free(name);
        free(ip);
    }
    return 0;
}

/* --dns takes addresses; search domains and options are single words (they become lines of
 * resolv.conf). */
static int dns_settings_check(const struct net_dns_settings *d, struct merr *err)
{
    for (size_t i = 0; d->servers != NULL && d->servers[i] != NULL; i++) {
        unsigned char buf[16];
        if (inet_pton(AF_INET, d->servers[i], buf) != 1 && inet_pton(AF_INET6, d->servers[i], buf) != 1)
            return merr_set(err, MERR_INVALID, 0, "%s is not an ip address", d->servers[i]);
    }
    char **lists[] = { d->search, d->options };
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; lists[k] != NULL && lists[k][i] != NULL; i++)
            if (lists[k][i][0] == '\0' || strpbrk(lists[k][i], " \t\r\n#;") != NULL)
                return merr_set(err, MERR_INVALID, 0, "invalid DNS %s '%s'",
                                k == 0 ? "search domain" : "option", lists[k][i]);
    return 0;
}

/* The endpoint settings of a create request whose network mode is network n: n's (keyed by
 * its name, ID or the mode as written), then the other networks of EndpointsConfig (API 1.44+).
 * Config.MacAddress and HostConfig.Links go to the first (dockerd ignores HostConfig.Links on
 * a user network; the CLI sends them as the endpoint's Links too). */
static int add_eps(struct net_service *s, struct net_ctr *c, struct net_network *n,
                   const json_t *body, struct merr *err)
{
    const json_t *eps = json_object_get(json_object_get(body, "NetworkingConfig"), "EndpointsConfig");
    const json_t *first = json_object_get(eps, n->name);
    if (first == NULL)
        first = json_object_get(eps, n->id);
    if (first == NULL)
        first = json_object_get(eps, c->mode);
    if (first == NULL && n == svc_default_network(s))
        first = json_object_get(eps, "bridge");
    const char *mac = json_string_value(json_object_get(body, "MacAddress"));
    const json_t *links = json_object_get(json_object_get(body, "HostConfig"), "Links");
    if (add_ep(s, c, n, first, mac, links, err) < 0)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)eps, k, v) {
        if (v == first)
            continue;
        struct net_network *extra = svc_network_find(s, k, err);
        if (extra == NULL)
            return -1;
        if (extra == n || strcmp(extra->driver, "bridge") != 0)
            continue;
        if (add_ep(s, c, extra, v, NULL, NULL, err) < 0)
            return -1;
    }
    return 0;
}

/* Addresses cannot be set on a container without interfaces of its own (none, host,
 * container:): refused as dockerd does. */
static bool special_mode_check(const json_t *body, struct merr *err)
{
    const char *mac = json_string_value(json_object_get(body, "MacAddress"));
    const json_t *eps = json_object_get(json_object_get(body, "NetworkingConfig"), "EndpointsConfig");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)eps, k, v) {
        const char *ep_mac = json_string_value(json_object_get(v, "MacAddress"));
        if (ep_mac != NULL && ep_mac[0] != '\0')
            mac = ep_mac;
        const json_t *ipam = json_object_get(v, "IPAMConfig");
        const char *ip4 = json_string_value(json_object_get(ipam, "IPv4Address"));
        const char *ip6 = json_string_value(json_object_get(ipam, "IPv6Address"));
        if ((ip4 != NULL && ip4[0] != '\0') || (ip6 != NULL && ip6[0] != '\0')) {
            merr_set(err, MERR_INVALID, 0,
                     "user specified IP address is supported on user defined networks only");
            return false;
        }
    }
    if (mac != NULL && mac[0] != '\0') {
        merr_set(err, MERR_INVALID, 0, "conflicting options: mac-address and the network mode");
        return false;
    }
    return true;
}

int net_ctr_create(struct net_service *s, const char *id, const char *name, const json_t *body,
                   const json_t *image_config, struct merr *err)
{
    const json_t *hc = json_object_get(body, "HostConfig");
    const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
    if (mode == NULL || mode[0] == '\0')
        mode = "default";
    struct net_ctr *c = ctr_alloc();
    snprintf(c->id, sizeof c->id, "%s", id);
    c->name = xstrdup(name);
    c->mode = xstrdup(mode);
    c->exposed = json_object();
    merge_exposed(c->exposed, json_object_get(image_config, "ExposedPorts"));
    merge_exposed(c->exposed, json_object_get(body, "ExposedPorts"));
    merge_exposed(c->exposed, json_object_get(hc, "PortBindings"));
    json_t *pb = json_object_get(hc, "PortBindings");
    c->port_bindings = json_is_object(pb) ? json_deep_copy(pb) : NULL;
    c->publish_all = json_is_true(json_object_get(hc, "PublishAllPorts"));
    c->dns.servers = json_to_strv(json_object_get(hc, "Dns"));
    c->dns.search = json_to_strv(json_object_get(hc, "DnsSearch"));
    c->dns.options = json_to_strv(json_object_get(hc, "DnsOptions"));
    /* the engine's --dns* where the container has none of its own (dockerd's daemon defaults) */
    if ((c->dns.servers == NULL || c->dns.servers[0] == NULL) && s->default_dns != NULL) {
        strv_free(c->dns.servers);
        c->dns.servers = strv_dup(s->default_dns);
    }
    if ((c->dns.search == NULL || c->dns.search[0] == NULL) && s->default_dns_search != NULL) {
        strv_free(c->dns.search);
        c->dns.search = strv_dup(s->default_dns_search);
    }
    if ((c->dns.options == NULL || c->dns.options[0] == NULL) && s->default_dns_options != NULL) {
        strv_free(c->dns.options);
        c->dns.options = strv_dup(s->default_dns_options);
    }
    c->extra_hosts = json_to_strv(json_object_get(hc, "ExtraHosts"));
    struct net_port_binding *b = NULL;
    size_t nb = 0;
    pthread_mutex_lock(&s->lock);
    int rc = -1;
    if (net_port_bindings_parse(c->port_bindings, c->exposed, c->publish_all, &b, &nb, err) < 0 ||
        dns_settings_check(&c->dns, err) < 0 || extra_hosts_check(c->extra_hosts, err) < 0)
        goto out;
    if (!mode_is_special(mode)) {
        bool dflt = strcmp(mode, "default") == 0 || strcmp(mode, "bridge") == 0;
        struct net_network *n = dflt ? svc_default_network(s) : svc_network_find(s, mode, err);
        if (n == NULL && dflt && strcmp(mode, "default") == 0) {
            free(c->mode); /* --bridge none: the default network is 'none' */
            c->mode = xstrdup("none");
        } else if (n == NULL) {
            if (dflt)
                merr_set(err, MERR_NOT_FOUND, 0, "network %s not found", mode);
            goto out;
        }
        if (n == NULL) {
            /* no default bridge */
        } else if (strcmp(n->driver, "host") == 0 || strcmp(n->driver, "null") == 0) {
            free(c->mode);
            c->mode = xstrdup(strcmp(n->driver, "host") == 0 ? "host" : "none");
        } else if (add_eps(s, c, n, body, err) < 0) {
            goto out;
        }
    }
    if (mode_is_special(c->mode) && !special_mode_check(body, err))
        goto out;
    if (ctr_persist(s, c, err) < 0)
        goto out;
    c->next = s->ctrs;
    s->ctrs = c;
    c = NULL;
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    free(b);
    ctr_free(c);
    return rc;
}

void net_ctr_remove(struct net_service *s, const char *id)
{
    net_ctr_stop(s, id);
    pthread_mutex_lock(&s->lock);
    for (struct net_ctr **pp = &s->ctrs; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) != 0)
            continue;
        struct net_ctr *c = *pp;
        *pp = c->next;
        ctr_free(c);
        break;
    }
    auto_free char *dir = ctr_dir(s, id);
    struct merr e = MERR_INIT;
    if (fs_remove_tree(dir, &e) < 0)
        mlog_warn(s->log, "%s", e.msg);
    pthread_mutex_unlock(&s->lock);
}

/* ---- hosts files ---- */

static const struct net_ep *ep_on(const struct net_ctr *c, const char *network_id)
{
    for (size_t i = 0; i < c->n_eps; i++)
        if (strcmp(c->eps[i].network_id, network_id) == 0)
            return &c->eps[i];
    return NULL;
}

/* The container's own line, then every running container sharing a user network. */
static int write_hosts(struct net_service *s, const struct net_ctr *c, struct merr *err)
{
    size_t cap = 8, n = 0;
    struct net_host_entry *ents = xcalloc(cap, sizeof *ents);
    char ***names = xcalloc(cap, sizeof *names);
    if (c->n_eps > 0 && c->eps[0].ip != 0) {
        names[n] = strv_push(NULL, c->hostname);
        ents[n] = (struct net_host_entry){ c->eps[0].ip, (const char *const *)names[n] };
        n++;
    }
    const struct net_network *dflt = svc_default_network(s);
    for (size_t i = 0; i < c->n_eps; i++) {
        if (dflt != NULL && strcmp(c->eps[i].network_id, dflt->id) == 0)
            continue; /* like docker: no names on the default bridge */
        for (const struct net_ctr *o = s->ctrs; o != NULL; o = o->next) {
            const struct net_ep *e = o->running && o != c ? ep_on(o, c->eps[i].network_id) : NULL;
            if (e == NULL || e->ip == 0)
                continue;
            if (n + 1 >= cap) {
                cap *= 2;
                ents = realloc(ents, cap * sizeof *ents);
                names = realloc(names, cap * sizeof *names);
                if (ents == NULL || names == NULL)
                    abort();
            }
            char **v = strv_push(NULL, o->name);
            for (size_t k = 0; e->aliases != NULL && e->aliases[k] != NULL; k++)
                v = strv_push(v, e->aliases[k]);
            char short_id[13];
            snprintf(short_id, sizeof short_id, "%.12s", o->id);
            v = strv_push(v, short_id);
            names[n] = v;
            ents[n] = (struct net_host_entry){ e->ip, (const char *const *)v };
            n++;
        }
    }
    auto_free char *base = net_hosts_text(ents, n);
    for (size_t i = 0; i < n; i++)
        strv_free(names[i]);
    free(names);
    free(ents);
    /* --add-host; host-gateway is the host's address on the default bridge, like dockerd's */
    struct merr ignored;
    const struct net_network *gwnet = dflt != NULL ? dflt
                                      : c->n_eps > 0 ? svc_network_find(s, c->eps[0].network_id, &ignored)
                                                     : NULL;
    auto_free char *extra = net_extra_hosts_text(c->extra_hosts, gwnet != NULL ? gwnet->gateway : 0);
    auto_free char *text = xasprintf("%s%s", base, extra);
    /* rewritten in place: the container's bind mount pins this inode */
    auto_free char *dir = ctr_dir(s, c->id);
    auto_free char *path = path_join(dir, "hosts");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return merr_set(err, MERR_IO, errno, "cannot write '%s'", path);
    int r = fs_write_all(fd, text, strlen(text));
    int e = errno;
    close(fd);
    return r < 0 ? merr_set(err, MERR_IO, e, "cannot write '%s'", path) : 0;
}

/* After c joined or left: every running container sharing one of its networks. */
static void sync_hosts(struct net_service *s, const struct net_ctr *c, const char *extra_network)
{
    for (struct net_ctr *o = s->ctrs; o != NULL; o = o->next) {
        if (!o->running)
            continue;
        bool shares = o == c || (extra_network != NULL && ep_on(o, extra_network) != NULL);
        for (size_t i = 0; i < c->n_eps && !shares; i++)
            shares = ep_on(o, c->eps[i].network_id) != NULL;
        struct merr e = MERR_INIT;
        if (shares && o->n_eps > 0 && write_hosts(s, o, &e) < 0)
            mlog_warn(s->log, "%s", e.msg);
    }
}

/* ---- start / stop ---- */

static void mac_of(uint32_t ip, char out[18])
{
    snprintf(out, 18, "02:42:%02x:%02x:%02x:%02x", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
             ip & 255);
}

#define AUX_MAX 64 /* AuxiliaryAddresses counted per network */

/* The addresses in use on n: running endpoints, then the auxiliary ones. */
static size_t used_on(struct net_service *s, const struct net_network *n, bool v6, void **out)
{
    size_t cap = 16 + AUX_MAX, k = 0, size = v6 ? sizeof(struct net_ip6) : sizeof(uint32_t);
    unsigned char *used = xcalloc(cap, size);
    for (const struct net_ctr *o = s->ctrs; o != NULL; o = o->next) {
        const struct net_ep *e = o->running ? ep_on(o, n->id) : NULL;
        if (e == NULL || e->ip == 0 || (v6 && net_ip6_is_zero(&e->ip6)))
            continue;
        if (k + AUX_MAX == cap) {
            cap *= 2;
            used = realloc(used, cap * size);
            if (used == NULL)
                abort();
        }
        memcpy(used + k * size, v6 ? (const void *)&e->ip6 : (const void *)&e->ip, size);
        k++;
    }
    k += v6 ? net_ipam_aux_v6(n->ipam_config, (struct net_ip6 *)(void *)(used + k * size), AUX_MAX)
            : net_ipam_aux_v4(n->ipam_config, (uint32_t *)(void *)(used + k * size), AUX_MAX);
    *out = used;
    return k;
}

static int pick_ip(struct net_service *s, const struct net_network *n, const struct net_ep *want,
                   uint32_t *out, struct merr *err)
{
    void *mem = NULL;
    size_t k = used_on(s, n, false, &mem);
    uint32_t *used = mem;
    int rc = 0;
    if (want->want_ip != 0) {
        bool taken = want->want_ip == n->gateway || !net_subnet_contains(&n->subnet, want->want_ip);
        for (size_t i = 0; i < k && !taken; i++)
            taken = used[i] == want->want_ip;
        char ip[NET_IP_STR];
        net_ip_str(want->want_ip, ip);
        rc = taken ? merr_set(err, MERR_EXISTS, 0, "address %s is not available on network %s", ip,
                              n->name)
                   : 0;
        *out = want->want_ip;
    } else {
        rc = net_ipam_pick_range(&n->subnet, n->range.prefix != 0 ? &n->range : NULL, n->gateway,
                                 used, k, out, err);
    }
    free(used);
    return rc;
}

static int pick_ip6(struct net_service *s, const struct net_network *n, const struct net_ep *want,
                    struct net_ip6 *out, struct merr *err)
{
    void *mem = NULL;
    size_t k = used_on(s, n, true, &mem);
    struct net_ip6 *used = mem;
    int rc = 0;
    if (!net_ip6_is_zero(&want->want_ip6)) {
        bool taken = net_ip6_equal(&want->want_ip6, &n->gateway6) ||
                     !net_subnet6_contains(&n->subnet6, &want->want_ip6);
        for (size_t i = 0; i < k && !taken; i++)
            taken = net_ip6_equal(&used[i], &want->want_ip6);
        char ip[NET_IP6_STR];
        net_ip6_str(&want->want_ip6, ip);
        rc = taken ? merr_set(err, MERR_EXISTS, 0, "address %s is not available on network %s", ip,
                              n->name)
                   : 0;
        *out = want->want_ip6;
    } else {
        rc = net_ipam6_pick(&n->subnet6, n->range6.prefix != 0 ? &n->range6 : NULL, &n->gateway6,
                            used, k, out, err);
    }
    free(used);
    return rc;
}

/* Plugs endpoint e (index idx) of a running container into its network. */
static int ep_attach(struct net_service *s, struct net_ctr *c, struct net_ep *e, size_t idx,
                     struct merr *err)
{
    struct net_network *n = svc_network_find(s, e->network_id, err);
    if (n == NULL)
        return -1;
    memset(&e->ip6, 0, sizeof e->ip6);
    /* IPv6 for every endpoint with EnableIPv6; else only for one that asked an address of the
     * network's IPv6 subnet (dockerd 20.10 recorded such an ask and gave no address) */
    bool v6 = n->has6 && (n->ipv6 || !net_ip6_is_zero(&e->want_ip6));
    if (svc_bridge_up(n, err) < 0 || pick_ip(s, n, e, &e->ip, err) < 0 ||
        (v6 && pick_ip6(s, n, e, &e->ip6, err) < 0)) {
        e->ip = 0;
        return -1;
    }
    char hex[9];
    svc_random_hex(hex, 4);
    snprintf(e->host_if, sizeof e->host_if, "veth%.7s", hex);
    snprintf(e->ifname, sizeof e->ifname, "eth%zu", idx);
    if (e->want_mac[0] != '\0')
        memcpy(e->mac, e->want_mac, sizeof e->mac);
    else
        mac_of(e->ip, e->mac);
    svc_random_hex(e->ep_id, 32);
    struct nl_ep_addrs a = { .ip = e->ip, .prefix = n->subnet.prefix, .gw = idx == 0 ? n->gateway : 0,
                             .ip6 = v6 ? &e->ip6 : NULL, .prefix6 = n->subnet6.prefix,
                             .gw6 = idx == 0 ? &n->gateway6 : NULL, .link_local = e->link_local };
    if (nl_veth_attach(n->bridge, e->host_if, c->netns, e->ifname, &a, e->mac,
                       n == svc_default_network(s) ? s->default_mtu : 0, err) < 0) {
        e->ip = 0;
        memset(&e->ip6, 0, sizeof e->ip6);
        e->host_if[0] = '\0';
        return merr_prefix(err, "network %s", n->name);
    }
    return 0;
}

static void ep_detach(struct net_service *s, struct net_ep *e)
{
    struct merr err = MERR_INIT;
    if (e->host_if[0] != '\0' && nl_link_delete(e->host_if, &err) < 0)
        mlog_warn(s->log, "%s", err.msg);
    e->ip = 0;
    memset(&e->ip6, 0, sizeof e->ip6);
    e->host_if[0] = '\0';
    e->ep_id[0] = '\0';
}

static void stop_locked(struct net_service *s, struct net_ctr *c)
{
    auto_free char *dir = ctr_dir(s, c->id);
    if (c->px.pidfd < 0) /* a proxy the previous engine left for a run it did not adopt */
        svc_run_load_proxy(dir, &c->px);
    svc_ports_stop(s, c);
    net_dns_remove_owner(s->dns, c->id);
    for (size_t i = 0; i < 2; i++)
        if (c->dns_adopted[i] >= 0)
            close(c->dns_adopted[i]);
    c->dns_adopted[0] = c->dns_adopted[1] = -1;
    for (size_t i = 0; i < c->n_eps; i++)
        ep_detach(s, &c->eps[i]);
    if (c->netns != NULL) {
        struct merr err = MERR_INIT;
        if (nl_netns_remove(c->netns, &err) < 0)
            mlog_warn(s->log, "%s", err.msg);
    }
    svc_run_forget(dir);
    free(c->netns);
    c->netns = NULL;
    free(c->bound);
    c->bound = NULL;
    c->n_bound = 0;
    c->bound_recorded = false;
    c->dns_ino[0] = c->dns_ino[1] = 0;
    bool was = c->running;
    c->running = false;
    if (was)
        sync_hosts(s, c, NULL);
}

void net_ctr_stop(struct net_service *s, const char *id)
{
    pthread_mutex_lock(&s->lock);
    struct net_ctr *c = ctr_find(s, id);
    if (c != NULL)
        stop_locked(s, c);
    pthread_mutex_unlock(&s->lock);
}

void net_ctr_run_release(struct net_ctr_run *r)
{
    free(r->netns_path);
    free(r->hosts);
    free(r->resolv);
    free(r->hostname);
    for (size_t i = 0; i < NET_HOLD_FDS; i++)
        if (r->hold[i] > 2)
            close(r->hold[i]);
    memset(r, 0, sizeof *r);
}

static int write_files(struct net_service *s, struct net_ctr *c, bool dns, struct net_ctr_run *out,
                       struct merr *err)
{
    auto_free char *dir = ctr_dir(s, c->id);
    if (fs_mkdir_p(dir, 0700, err) < 0)
        return -1;
    out->hosts = path_join(dir, "hosts");
    out->resolv = path_join(dir, "resolv.conf");
    out->hostname = path_join(dir, "hostname");
    auto_free char *host_resolv = NULL;
    struct merr ignored;
    if (fs_read_file("/etc/resolv.conf", 65536, &host_resolv, NULL, &ignored) < 0)
        host_resolv = NULL;
    auto_free char *resolv = net_resolv_text(host_resolv, dns, &c->dns);
    auto_free char *hostname = xasprintf("%s\n", c->hostname);
    if (fs_write_atomic(out->resolv, resolv, strlen(resolv), 0644, err) < 0 ||
        fs_write_atomic(out->hostname, hostname, strlen(hostname), 0644, err) < 0)
        return -1;
    return 0;
}

/* Like dockerd: containers on a user-defined network use the embedded DNS server. */
static bool on_user_network(struct net_service *s, const struct net_ctr *c)
{
    const struct net_network *dflt = svc_default_network(s);
    for (size_t i = 0; i < c->n_eps; i++)
        if (dflt == NULL || strcmp(c->eps[i].network_id, dflt->id) != 0)
            return true;
    return false;
}

static bool name_is(const struct net_ctr *o, const struct net_ep *e, const char *name)
{
    if (strcasecmp(o->name, name) == 0 || strcasecmp(o->id, name) == 0 ||
        (strlen(name) == 12 && strncasecmp(o->id, name, 12) == 0))
        return true;
    for (size_t k = 0; e->aliases != NULL && e->aliases[k] != NULL; k++)
        if (strcasecmp(e->aliases[k], name) == 0)
            return true;
    return false;
}

/* The container a link of endpoint e calls alias ("upstream" of "upstream:bar" for "bar"),
 * malloc'd, or NULL. */
static char *link_target(const struct net_ep *e, const char *alias)
{
    for (size_t k = 0; e->links != NULL && e->links[k] != NULL; k++) {
        char *name = NULL, *a = NULL;
        struct merr ignored;
        if (net_link_parse(e->links[k], &name, &a, &ignored) < 0)
            continue;
        bool hit = strcasecmp(a, alias) == 0;
        free(a);
        if (hit)
            return name;
        free(name);
    }
    return NULL;
}

/* Addresses found for a DNS question: IPv4 ones, or with v6 the IPv6 ones. */
struct dns_found {
    bool v6;
    void *ips; /* uint32_t[] or struct net_ip6[] */
    size_t cap, n;
};

static void found_add(struct dns_found *f, const struct net_ep *e)
{
    if (f->v6 ? net_ip6_is_zero(&e->ip6) : e->ip == 0)
        return;
    struct net_ip6 *ips6 = f->ips;
    uint32_t *ips4 = f->ips;
    for (size_t k = 0; k < f->n; k++)
        if (f->v6 ? net_ip6_equal(&ips6[k], &e->ip6) : ips4[k] == e->ip)
            return;
    if (f->n == f->cap)
        return;
    if (f->v6)
        ips6[f->n++] = e->ip6;
    else
        ips4[f->n++] = e->ip;
}

/* Adds the addresses of containers called name on c's user networks (only on network
 * only_net when given) to f. Whether any matched. */
static bool lookup_on(struct net_service *s, const struct net_ctr *c, const char *name,
                      const char *only_net, struct dns_found *f)
{
    const struct net_network *dflt = svc_default_network(s);
    bool found = false;
    for (size_t i = 0; i < c->n_eps; i++) {
        const char *nid = c->eps[i].network_id;
        if ((dflt != NULL && strcmp(nid, dflt->id) == 0) || (only_net != NULL && strcmp(nid, only_net) != 0))
            continue; /* like docker: no names on the default bridge */
        /* a link's alias names its container for c alone (dockerd's endpoint-scoped alias) */
        auto_free char *target = link_target(&c->eps[i], name);
        for (const struct net_ctr *o = s->ctrs; o != NULL; o = o->next) {
            const struct net_ep *e = o->running ? ep_on(o, nid) : NULL;
            if (e == NULL || e->ip == 0 ||
                !(name_is(o, e, name) || (target != NULL && name_is(o, e, target))))
                continue;
            found = true;
            found_add(f, e);
        }
    }
    return found;
}

/* name without the suffix ".<suffix>" into out, or false. */
static bool strip_suffix(const char *name, const char *suffix, char *out, size_t size)
{
    size_t nl = strlen(name), sl = strlen(suffix);
    if (sl == 0 || nl <= sl + 1 || nl - sl - 1 >= size || name[nl - sl - 1] != '.' ||
        strcasecmp(name + nl - sl, suffix) != 0)
        return false;
    memcpy(out, name, nl - sl - 1);
    out[nl - sl - 1] = '\0';
    return true;
}

static int dns_lookup(struct net_service *s, const char *owner, const char *name,
                      struct dns_found *f)
{
    pthread_mutex_lock(&s->lock);
    const struct net_ctr *c = ctr_find(s, owner);
    bool found = false;
    if (c != NULL && c->running) {
        found = lookup_on(s, c, name, NULL, f);
        char base[NET_DNS_NAME_MAX];
        /* "web.appnet": web on network appnet */
        for (size_t i = 0; i < c->n_eps && !found; i++) {
            struct merr ignored;
            const struct net_network *net = svc_network_find(s, c->eps[i].network_id, &ignored);
            if (net != NULL && strip_suffix(name, net->name, base, sizeof base))
                found = lookup_on(s, c, base, net->id, f);
        }
        /* "web.corp.example" when a resolver appended the host's search domain */
        for (size_t i = 0; s->dns_search != NULL && s->dns_search[i] != NULL && !found; i++)
            if (strip_suffix(name, s->dns_search[i], base, sizeof base))
                found = lookup_on(s, c, base, NULL, f);
    }
    pthread_mutex_unlock(&s->lock);
    return found ? (int)f->n : -1;
}

int svc_dns_lookup(void *data, const char *owner, const char *name, uint32_t *ips, size_t cap)
{
    struct dns_found f = { .v6 = false, .ips = ips, .cap = cap };
    return dns_lookup(data, owner, name, &f);
}

int svc_dns_lookup6(void *data, const char *owner, const char *name, struct net_ip6 *ips, size_t cap)
{
    struct dns_found f = { .v6 = true, .ips = ips, .cap = cap };
    return dns_lookup(data, owner, name, &f);
}

int net_ctr_start(struct net_service *s, const char *id, const char *hostname,
                  struct net_ctr_run *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    struct net_ctr *c = ctr_find(s, id);
    int rc = 0;
    if (c == NULL || mode_is_special(c->mode) || c->n_eps == 0)
        goto out;
    stop_locked(s, c); /* leftovers of a run that was not wound up */
    free(c->hostname);
    c->hostname = xstrdup(hostname);
    c->netns = path_join(s->netns_dir, c->id);
    rc = -1;
    struct merr stale = MERR_INIT;
    if (nl_netns_remove(c->netns, &stale) < 0) /* a previous engine's, not re-adopted */
        mlog_warn(s->log, "%s", stale.msg);
    if (nl_netns_create(c->netns, err) < 0) {
        free(c->netns);
        c->netns = NULL;
        goto out;
    }
    c->running = true; /* from here on stop_locked undoes everything */
    for (size_t i = 0; i < c->n_eps; i++)
        if (ep_attach(s, c, &c->eps[i], i, err) < 0)
            goto undo;
    bool dns = on_user_network(s, c);
    if ((dns && svc_dns_attach(s, c, &out->hold[1], err) < 0) ||
        svc_ports_publish(s, c, true, err) < 0 || write_files(s, c, dns, out, err) < 0)
        goto undo;
    if (c->hold_w >= 0) /* the monitor keeps the proxy's hold pipe open, the engine too */
        out->hold[0] = fcntl(c->hold_w, F_DUPFD_CLOEXEC, 3);
    sync_hosts(s, c, NULL);
    out->netns_path = xstrdup(c->netns);
    {
        auto_free char *dir = ctr_dir(s, c->id);
        struct merr serr = MERR_INIT;
        if (svc_run_save(dir, c, &serr) < 0) /* only live-restore needs it */
            mlog_warn(s->log, "%s", serr.msg);
    }
    rc = 0;
    goto out;
undo:
    stop_locked(s, c);
    net_ctr_run_release(out);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int net_ctr_adopt(struct net_service *s, const char *id, pid_t holder, int holder_fd,
                  struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct net_ctr *c = ctr_find(s, id);
    int rc = 0;
    if (c == NULL || mode_is_special(c->mode) || c->n_eps == 0)
        goto out;
    char *dir = ctr_dir(s, c->id);
    rc = svc_run_load(dir, c, err);
    free(dir);
    if (rc < 0)
        goto out;
    c->running = true;
    /* the proxy ran on; the DNS sockets waited in the monitor (queries queued in them) */
    if ((on_user_network(s, c) && svc_dns_adopt(s, c, holder, holder_fd, err) < 0) ||
        svc_ports_adopt(s, c, holder, holder_fd, err) < 0) {
        rc = -1;
        goto out;
    }
    sync_hosts(s, c, NULL);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- describe ---- */

/* EndpointSettings.IPAMConfig as asked (null when nothing was). */
static json_t *ep_ipam_json(const struct net_ep *e)
{
    if (e->want_ip == 0 && net_ip6_is_zero(&e->want_ip6) && e->link_local == NULL)
        return json_null();
    json_t *o = json_object();
    if (e->want_ip != 0) {
        char ip[NET_IP_STR];
        net_ip_str(e->want_ip, ip);
        json_object_set_new(o, "IPv4Address", json_string(ip));
    }
    if (!net_ip6_is_zero(&e->want_ip6)) {
        char ip6[NET_IP6_STR];
        net_ip6_str(&e->want_ip6, ip6);
        json_object_set_new(o, "IPv6Address", json_string(ip6));
    }
    if (e->link_local != NULL)
        json_object_set_new(o, "LinkLocalIPs", strv_to_json(e->link_local));
    return o;
}

static json_t *ep_json(struct net_service *s, const struct net_ctr *c, const struct net_ep *e)
{
    struct merr ignored;
    struct net_network *n = svc_network_find(s, e->network_id, &ignored);
    char ip[NET_IP_STR] = "", gw[NET_IP_STR] = "", ip6[NET_IP6_STR] = "", gw6[NET_IP6_STR] = "";
    if (e->ip != 0 && n != NULL) {
        net_ip_str(e->ip, ip);
        net_ip_str(n->gateway, gw);
    }
    bool has6 = e->ip != 0 && n != NULL && n->has6 && !net_ip6_is_zero(&e->ip6);
    if (has6) {
        net_ip6_str(&e->ip6, ip6);
        net_ip6_str(&n->gateway6, gw6);
    }
    json_t *aliases = e->aliases != NULL ? strv_to_json(e->aliases) : json_null();
    json_t *links = e->links != NULL ? strv_to_json(e->links) : json_null();
    return json_pack("{s:o,s:o,s:o,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s,s:O?}", "IPAMConfig",
                     ep_ipam_json(e), "Links", links, "Aliases", aliases, "NetworkID",
                     e->network_id, "EndpointID", e->ep_id, "Gateway", gw, "IPAddress", ip,
                     "IPPrefixLen", ip[0] != '\0' ? (int)n->subnet.prefix : 0, "IPv6Gateway", gw6,
                     "GlobalIPv6Address", ip6, "GlobalIPv6PrefixLen",
                     has6 ? (int)n->subnet6.prefix : 0, "MacAddress",
                     e->ip != 0 ? e->mac : e->want_mac, "DriverOpts", e->driver_opts);
}

static const char *ep_network_name(struct net_service *s, const struct net_ep *e)
{
    struct merr ignored;
    struct net_network *n = svc_network_find(s, e->network_id, &ignored);
    return n != NULL ? n->name : e->network_id;
}

void net_ctr_describe(struct net_service *s, const char *id, json_t *obj, bool ps)
{
    pthread_mutex_lock(&s->lock);
    struct net_ctr *c = ctr_find(s, id);
    if (c == NULL) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    json_t *nets = json_object();
    for (size_t i = 0; i < c->n_eps; i++)
        json_object_set_new(nets, ep_network_name(s, &c->eps[i]), ep_json(s, c, &c->eps[i]));
    if (c->n_eps == 0 && (strcmp(c->mode, "none") == 0 || strcmp(c->mode, "host") == 0)) {
        struct merr ignored;
        struct net_network *n = svc_network_find(s, c->mode, &ignored);
        struct net_ep fake = { .network_id = n != NULL ? n->id : (char *)"" };
        json_object_set_new(nets, c->mode, ep_json(s, c, &fake));
    }
    json_t *ns = json_object_get(obj, "NetworkSettings");
    if (!json_is_object(ns)) {
        ns = json_object();
        json_object_set_new(obj, "NetworkSettings", ns);
    }
    json_object_set_new(ns, "Networks", nets);
    if (ps) {
        json_object_set_new(obj, "Ports", net_ports_ps_json(c->bound, c->n_bound, c->exposed));
    } else {
        const struct net_ep *first = c->n_eps > 0 ? &c->eps[0] : NULL;
        struct merr ignored;
        struct net_network *n = first != NULL ? svc_network_find(s, first->network_id, &ignored) : NULL;
        bool on_default = n != NULL && n->builtin;
        char ip[NET_IP_STR] = "", gw[NET_IP_STR] = "", ip6[NET_IP6_STR] = "", gw6[NET_IP6_STR] = "";
        if (on_default && first->ip != 0) {
            net_ip_str(first->ip, ip);
            net_ip_str(n->gateway, gw);
            if (n->has6 && !net_ip6_is_zero(&first->ip6)) {
                net_ip6_str(&first->ip6, ip6);
                net_ip6_str(&n->gateway6, gw6);
            }
        }
        json_object_set_new(ns, "Ports", c->running ? net_ports_settings_json(c->bound, c->n_bound, c->exposed)
                                                    : json_object());
        json_object_set_new(ns, "SandboxKey", json_string(c->netns != NULL ? c->netns : ""));
        json_object_set_new(ns, "SandboxID", json_string(c->netns != NULL ? c->id : ""));
        json_object_set_new(ns, "HairpinMode", json_false());
        json_object_set_new(ns, "LinkLocalIPv6Address", json_string(""));
        json_object_set_new(ns, "LinkLocalIPv6PrefixLen", json_integer(0));
        json_object_set_new(ns, "IPAddress", json_string(ip));
        json_object_set_new(ns, "Gateway", json_string(gw));
        json_object_set_new(ns, "IPPrefixLen", json_integer(ip[0] != '\0' ? (int)n->subnet.prefix : 0));
        json_object_set_new(ns, "MacAddress", json_string(ip[0] != '\0' ? first->mac : ""));
        json_object_set_new(ns, "EndpointID", json_string(ip[0] != '\0' ? first->ep_id : ""));
        json_object_set_new(ns, "GlobalIPv6Address", json_string(ip6));
        json_object_set_new(ns, "GlobalIPv6PrefixLen", json_integer(ip6[0] != '\0' ? (int)n->subnet6.prefix : 0));
        json_object_set_new(ns, "IPv6Gateway", json_string(gw6));
        json_object_set_new(ns, "Bridge", json_string(""));
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- helpers for service.c ---- */

json_t *svc_network_containers_json(struct net_service *s, const struct net_network *n)
{
    json_t *o = json_object();
    for (const struct net_ctr *c = s->ctrs; c != NULL; c = c->next) {
        const struct net_ep *e = c->running ? ep_on(c, n->id) : NULL;
        if (e == NULL || e->ip == 0)
            continue;
        char ip[NET_IP_STR], ip6[NET_IP6_STR] = "";
        net_ip_str(e->ip, ip);
        auto_free char *cidr = xasprintf("%s/%u", ip, n->subnet.prefix);
        auto_free char *cidr6 = NULL;
        if (n->has6 && !net_ip6_is_zero(&e->ip6)) {
            net_ip6_str(&e->ip6, ip6);
            cidr6 = xasprintf("%s/%u", ip6, n->subnet6.prefix);
        }
        json_object_set_new(o, c->id, json_pack("{s:s,s:s,s:s,s:s,s:s}", "Name", c->name,
                                                "EndpointID", e->ep_id, "MacAddress", e->mac,
                                                "IPv4Address", cidr, "IPv6Address",
                                                cidr6 != NULL ? cidr6 : ""));
    }
    return o;
}

bool svc_network_in_use(struct net_service *s, const struct net_network *n)
{
    for (const struct net_ctr *c = s->ctrs; c != NULL; c = c->next)
        if (c->running && ep_on(c, n->id) != NULL)
            return true;
    return false;
}

bool svc_network_referenced(struct net_service *s, const struct net_network *n)
{
    for (const struct net_ctr *c = s->ctrs; c != NULL; c = c->next)
        if (ep_on(c, n->id) != NULL)
            return true;
    return false;
}

static void drop_ep(struct net_ctr *c, size_t i)
{
    ep_release(&c->eps[i]);
    memmove(&c->eps[i], &c->eps[i + 1], (c->n_eps - i - 1) * sizeof *c->eps);
    c->n_eps--;
}

void svc_forget_network(struct net_service *s, const struct net_network *n)
{
    for (struct net_ctr *c = s->ctrs; c != NULL; c = c->next)
        for (size_t i = 0; i < c->n_eps; i++)
            if (strcmp(c->eps[i].network_id, n->id) == 0) {
                drop_ep(c, i);
                struct merr e = MERR_INIT;
                if (ctr_persist(s, c, &e) < 0)
                    mlog_warn(s->log, "%s", e.msg);
                break;
            }
}

/* ---- connect / disconnect ---- */

int net_connect(struct net_service *s, const char *ref, const json_t *body, struct merr *err)
{
    const char *cref = json_string_value(json_object_get(body, "Container"));
    char id[65];
    if (cref == NULL || s->ctr_lookup(s->ctr_data, cref, id, err) < 0)
        return cref == NULL ? merr_set(err, MERR_INVALID, 0, "no container given") : -1;
    pthread_mutex_lock(&s->lock);
    int rc = -1;
    struct net_network *n = svc_network_find(s, ref, err);
    struct net_ctr *c = ctr_find(s, id);
    if (n == NULL)
        goto out;
    if (c == NULL) {
        merr_set(err, MERR_NOT_FOUND, 0, "No such container: %s", cref);
        goto out;
    }
    if (strcmp(n->driver, "bridge") != 0 || mode_is_special(c->mode)) {
        merr_set(err, MERR_PERM, 0, "container cannot be disconnected from host network or "
                                    "connected to host network");
        goto out;
    }
    if (ep_on(c, n->id) != NULL) {
        merr_set(err, MERR_PERM, 0, "endpoint with name %s already exists in network %s", c->name,
                 n->name);
        goto out;
    }
    if (add_ep(s, c, n, json_object_get(body, "EndpointConfig"), NULL, NULL, err) < 0)
        goto out;
    if (c->running && c->netns != NULL) {
        if (ep_attach(s, c, &c->eps[c->n_eps - 1], c->n_eps - 1, err) < 0) {
            drop_ep(c, c->n_eps - 1);
            goto out;
        }
        struct merr derr = MERR_INIT; /* names resolve through 127.0.0.11 from now on */
        if (!net_dns_has(s->dns, c->id) && on_user_network(s, c) &&
            svc_dns_attach(s, c, NULL, &derr) < 0)
            mlog_warn(s->log, "%s", derr.msg);
        sync_hosts(s, c, NULL);
    }
    rc = ctr_persist(s, c, err);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int net_disconnect(struct net_service *s, const char *ref, const json_t *body, struct merr *err)
{
    const char *cref = json_string_value(json_object_get(body, "Container"));
    char id[65];
    if (cref == NULL || s->ctr_lookup(s->ctr_data, cref, id, err) < 0)
        return cref == NULL ? merr_set(err, MERR_INVALID, 0, "no container given") : -1;
    pthread_mutex_lock(&s->lock);
    int rc = -1;
    auto_free char *nid = NULL; /* before the first goto: cleanup must never see garbage */
    struct net_network *n = svc_network_find(s, ref, err);
    struct net_ctr *c = ctr_find(s, id);
    if (n == NULL)
        goto out;
    size_t i = 0;
    while (c != NULL && i < c->n_eps && strcmp(c->eps[i].network_id, n->id) != 0)
        i++;
    if (c == NULL || i == c->n_eps) {
        merr_set(err, MERR_PERM, 0, "container %s is not connected to network %s", cref, n->name);
        goto out;
    }
    ep_detach(s, &c->eps[i]);
    nid = xstrdup(n->id);
    drop_ep(c, i);
    if (c->running)
        sync_hosts(s, c, nid);
    rc = ctr_persist(s, c, err);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int net_ctr_rename(struct net_service *s, const char *id, const char *name, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct net_ctr *c = ctr_find(s, id);
    int rc = 0;
    if (c != NULL) {
        free(c->name);
        c->name = xstrdup(name); /* the embedded DNS answers names as they are now */
        rc = ctr_persist(s, c, err);
        if (c->running)
            sync_hosts(s, c, NULL);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}
