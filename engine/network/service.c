/* The network service: networks (built-in and user-defined), their bridges and NAT rules, and
 * persistence. Container endpoints live in endpoint.c. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "strv.h"
#include "service-priv.h"

#define RECORD_MAX (1u << 20)

int64_t svc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void svc_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[32];
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    if (getrandom(buf, nbytes, 0) != (ssize_t)nbytes)
        abort();
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
}

static void network_free(struct net_network *n)
{
    if (n == NULL)
        return;
    free(n->name);
    free(n->driver);
    free(n->bridge);
    json_decref(n->labels);
    json_decref(n->options);
    json_decref(n->ipam_config);
    json_decref(n->ipam_options);
    free(n);
}

static json_t *network_to_json(const struct net_network *n)
{
    char sub[32], gw[NET_IP_STR];
    net_subnet_str(&n->subnet, sub, sizeof sub);
    net_ip_str(n->gateway, gw);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:b,s:b,s:b,s:O,s:O,s:I}", "Id", n->id, "Name",
                          n->name, "Driver", n->driver, "Bridge", n->bridge, "Subnet", sub,
                          "Gateway", gw, "Internal", n->internal, "Attachable", n->attachable,
                          "Builtin", n->builtin, "Labels", n->labels, "Options", n->options,
                          "Created", (json_int_t)n->created_ns);
    if (n->range.prefix != 0) {
        net_subnet_str(&n->range, sub, sizeof sub);
        json_object_set_new(j, "IPRange", json_string(sub));
    }
    json_object_set_new(j, "EnableIPv6", json_boolean(n->ipv6));
    if (n->has6) {
        char sub6[64], gw6[NET_IP6_STR];
        net_subnet6_str(&n->subnet6, sub6, sizeof sub6);
        net_ip6_str(&n->gateway6, gw6);
        json_object_set_new(j, "Subnet6", json_string(sub6));
        json_object_set_new(j, "Gateway6", json_string(gw6));
        if (n->range6.prefix != 0) {
            net_subnet6_str(&n->range6, sub6, sizeof sub6);
            json_object_set_new(j, "IPRange6", json_string(sub6));
        }
    }
    if (n->ipam_config != NULL)
        json_object_set(j, "IPAMConfig", n->ipam_config);
    if (n->ipam_options != NULL)
        json_object_set(j, "IPAMOptions", n->ipam_options);
    return j;
}

/* The IPv6 part of a stored record; false when it is damaged. */
static bool network_v6_from_json(struct net_network *n, const json_t *j)
{
    const char *sub6 = json_string_value(json_object_get(j, "Subnet6"));
    const char *gw6 = json_string_value(json_object_get(j, "Gateway6"));
    const char *r6 = json_string_value(json_object_get(j, "IPRange6"));
    const char *r4 = json_string_value(json_object_get(j, "IPRange"));
    struct merr ignored;
    if (r4 != NULL && net_cidr_parse(r4, &n->range, NULL, &ignored) < 0)
        return false;
    n->ipv6 = json_is_true(json_object_get(j, "EnableIPv6"));
    if (sub6 == NULL)
        return !n->ipv6;
    n->has6 = true;
    return net_cidr6_parse(sub6, &n->subnet6, NULL, &ignored) == 0 && gw6 != NULL &&
           net_ip6_parse(gw6, &n->gateway6, &ignored) == 0 &&
           (r6 == NULL || net_cidr6_parse(r6, &n->range6, NULL, &ignored) == 0);
}

static struct net_network *network_from_json(const json_t *j, struct merr *err)
{
    const char *id = json_string_value(json_object_get(j, "Id"));
    const char *name = json_string_value(json_object_get(j, "Name"));
    const char *driver = json_string_value(json_object_get(j, "Driver"));
    if (id == NULL || strlen(id) != 64 || name == NULL || driver == NULL) {
        merr_set(err, MERR_CORRUPT, 0, "network record without Id, Name or Driver");
        return NULL;
    }
    struct net_network *n = xcalloc(1, sizeof *n);
    snprintf(n->id, sizeof n->id, "%s", id);
    n->name = xstrdup(name);
    n->driver = xstrdup(driver);
    const char *br = json_string_value(json_object_get(j, "Bridge"));
    n->bridge = br != NULL ? xstrdup(br) : NULL;
    const char *sub = json_string_value(json_object_get(j, "Subnet"));
    const char *gw = json_string_value(json_object_get(j, "Gateway"));
    if (strcmp(driver, "bridge") == 0 &&
        (net_cidr_parse(sub, &n->subnet, NULL, err) < 0 || net_ip_parse(gw, &n->gateway, err) < 0)) {
        network_free(n);
        return NULL;
    }
    n->internal = json_is_true(json_object_get(j, "Internal"));
    n->attachable = json_is_true(json_object_get(j, "Attachable"));
    n->builtin = json_is_true(json_object_get(j, "Builtin"));
    n->labels = json_incref(json_object_get(j, "Labels"));
    if (!json_is_object(n->labels)) {
        json_decref(n->labels);
        n->labels = json_object();
    }
    n->options = json_incref(json_object_get(j, "Options"));
    if (!json_is_object(n->options)) {
        json_decref(n->options);
        n->options = json_object();
    }
    n->created_ns = json_integer_value(json_object_get(j, "Created"));
    json_t *ic = json_object_get(j, "IPAMConfig");
    n->ipam_config = json_is_array(ic) ? json_incref(ic) : NULL;
    if (n->ipam_config == NULL && !n->builtin && strcmp(driver, "bridge") == 0)
        /* a record from before IPAMConfig was kept: its subnet counts as asked (fixed
         * addresses keep working on it; inspect shows the same) */
        n->ipam_config = json_pack("[{s:s,s:s}]", "Subnet", sub, "Gateway", gw);
    json_t *io = json_object_get(j, "IPAMOptions");
    n->ipam_options = json_is_object(io) ? json_incref(io) : NULL;
    if (!network_v6_from_json(n, j)) {
        merr_set(err, MERR_CORRUPT, 0, "network record %s with a damaged IPv6 or IPRange part", id);
        network_free(n);
        return NULL;
    }
    return n;
}

int svc_network_persist(struct net_service *s, const struct net_network *n, struct merr *err)
{
    json_t *j = network_to_json(n);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    auto_free char *file = xasprintf("%s.json", n->id);
    auto_free char *path = path_join(s->networks_dir, file);
    int rc = fs_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

static void add_network(struct net_service *s, struct net_network *n)
{
    struct net_network **g = realloc(s->nets, (s->n_nets + 1) * sizeof *g);
    if (g == NULL)
        abort();
    s->nets = g;
    s->nets[s->n_nets++] = n;
}

/* As dockerd's FindNetwork: a full ID, else a name matching one network, else an ID prefix
 * matching one. */
struct net_network *svc_network_find(struct net_service *s, const char *ref, struct merr *err)
{
    struct net_network *by_name = NULL, *by_prefix = NULL;
    size_t n_name = 0, n_prefix = 0, len = strlen(ref);
    for (size_t i = 0; i < s->n_nets; i++) {
        if (strcmp(s->nets[i]->id, ref) == 0)
            return s->nets[i];
        if (strcmp(s->nets[i]->name, ref) == 0) {
            by_name = s->nets[i];
            n_name++;
        }
        if (len > 0 && strncmp(s->nets[i]->id, ref, len) == 0) {
            by_prefix = s->nets[i];
            n_prefix++;
        }
    }
    if (n_name == 1)
        return by_name;
    if (n_name > 1) {
        merr_set(err, MERR_INVALID, 0, "network %s is ambiguous (%zu matches found on name)", ref, n_name);
        return NULL;
    }
    if (n_prefix == 1)
        return by_prefix;
    if (n_prefix > 1)
        merr_set(err, MERR_INVALID, 0, "network %s is ambiguous (%zu matches found based on ID prefix)",
                 ref, n_prefix);
    else
        merr_set(err, MERR_NOT_FOUND, 0, "network %s not found", ref);
    return NULL;
}

struct net_network *svc_default_network(struct net_service *s)
{
    for (size_t i = 0; i < s->n_nets; i++)
        if (s->nets[i]->builtin && strcmp(s->nets[i]->driver, "bridge") == 0)
            return s->nets[i];
    return NULL;
}

/* NAT rules for every bridge network, as one transaction. */
int svc_firewall_sync(struct net_service *s, struct merr *err)
{
    struct net_fw_net *fw = xcalloc(s->n_nets + 1, sizeof *fw);
    char (*subs)[32] = xcalloc(s->n_nets + 1, sizeof *subs);
    size_t n = 0;
    for (size_t i = 0; i < s->n_nets; i++) {
        const struct net_network *net = s->nets[i];
        if (strcmp(net->driver, "bridge") != 0)
            continue;
        net_subnet_str(&net->subnet, subs[n], sizeof subs[n]);
        fw[n] = (struct net_fw_net){ .bridge = net->bridge, .subnet = subs[n], .internal = net->internal };
        n++;
    }
    int rc = net_fw_apply(s->fw, fw, n, err);
    free(fw);
    free(subs);
    return rc;
}

static struct net_network *builtin(struct net_service *s, const char *name, const char *driver)
{
    for (size_t i = 0; i < s->n_nets; i++)
        if (s->nets[i]->builtin && strcmp(s->nets[i]->name, name) == 0)
            return s->nets[i];
    struct net_network *n = xcalloc(1, sizeof *n);
    svc_random_hex(n->id, 32);
    n->name = xstrdup(name);
    n->driver = xstrdup(driver);
    n->builtin = true;
    n->labels = json_object();
    n->options = json_object();
    n->created_ns = svc_now_ns();
    add_network(s, n);
    return n;
}

/* The built-in networks: bridge (from --bridge / --bip), host, none. */
static int ensure_builtins(struct net_service *s, const struct net_service_config *cfg,
                           struct merr *err)
{
    if (cfg->bridge != NULL && strcmp(cfg->bridge, "none") == 0) {
        /* dockerd's --bridge=none: no default bridge; the default network is 'none' */
        for (size_t i = 0; i < s->n_nets; i++)
            if (s->nets[i]->builtin && strcmp(s->nets[i]->driver, "bridge") == 0) {
                auto_free char *file = xasprintf("%s.json", s->nets[i]->id);
                auto_free char *path = path_join(s->networks_dir, file);
                unlink(path);
                network_free(s->nets[i]);
                s->nets[i] = s->nets[--s->n_nets];
                break;
            }
        return svc_network_persist(s, builtin(s, "host", "host"), err) < 0 ||
                       svc_network_persist(s, builtin(s, "none", "null"), err) < 0
                   ? -1
                   : 0;
    }
    struct net_subnet sub;
    uint32_t gw;
    if (net_cidr_parse(cfg->bip != NULL ? cfg->bip : NET_DEFAULT_BIP, &sub, &gw, err) < 0)
        return merr_prefix(err, "invalid --bip");
    if (gw == sub.addr)
        gw = sub.addr + 1;
    struct net_network *br = builtin(s, "bridge", "bridge");
    free(br->bridge);
    br->bridge = xstrdup(cfg->bridge != NULL ? cfg->bridge : NET_DEFAULT_BRIDGE);
    br->subnet = sub;
    br->gateway = gw;
    json_object_set_new(br->options, "com.docker.network.bridge.name", json_string(br->bridge));
    json_object_set_new(br->options, "com.docker.network.bridge.default_bridge", json_string("true"));
    struct net_network *nets[] = { br, builtin(s, "host", "host"), builtin(s, "none", "null") };
    for (size_t i = 0; i < 3; i++)
        if (svc_network_persist(s, nets[i], err) < 0)
            return -1;
    return 0;
}

static int load_networks(struct net_service *s, struct merr *err)
{
    auto_closedir DIR *d = opendir(s->networks_dir);
    if (d == NULL)
        return merr_set(err, MERR_IO, errno, "cannot read '%s'", s->networks_dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len != 69 || strcmp(de->d_name + 64, ".json") != 0)
            continue;
        auto_free char *path = path_join(s->networks_dir, de->d_name);
        auto_free char *text = NULL;
        struct merr lerr = MERR_INIT;
        json_t *j = NULL;
        struct net_network *n = NULL;
        if (fs_read_file(path, RECORD_MAX, &text, NULL, &lerr) == 0 &&
            (j = json_loads(text, 0, NULL)) != NULL)
            n = network_from_json(j, &lerr);
        json_decref(j);
        if (n == NULL) {
            mlog_warn(s->log, "ignoring network record '%s': %s", path, lerr.msg);
            continue;
        }
        add_network(s, n);
    }
    return 0;
}

static bool running_container(const struct net_service *s, const char *id)
{
    for (const struct net_ctr *c = s->ctrs; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c->running;
    return false;
}

static bool known_container(const struct net_service *s, const char *id)
{
    for (const struct net_ctr *c = s->ctrs; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return true;
    return false;
}

/* Leftovers of a previous run of this engine: the namespaces of its own containers (their veths
 * go with them). Another engine sharing the exec root (a second engine left at the default
 * --exec-root) owns the others: they are left alone. */
void net_service_remove_stale(struct net_service *s)
{
    pthread_mutex_lock(&s->lock);
    svc_dns_serve_adopted(s); /* every container is back: names of all of them resolve */
    auto_closedir DIR *d = opendir(s->netns_dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (!known_container(s, de->d_name) || running_container(s, de->d_name)) {
            mlog_debug(s->log, "leaving network namespace %s alone: not a container of this engine",
                       de->d_name);
            continue;
        }
        auto_free char *path = path_join(s->netns_dir, de->d_name);
        struct merr e = MERR_INIT;
        if (nl_netns_remove(path, &e) < 0)
            mlog_warn(s->log, "%s", e.msg);
        else
            mlog_info(s->log, "removed the network namespace of container %s", de->d_name);
    }
    pthread_mutex_unlock(&s->lock);
}

int svc_bridge_up(const struct net_network *n, struct merr *err)
{
    if (nl_bridge_ensure(n->bridge, n->gateway, n->subnet.prefix, err) < 0 ||
        (n->has6 && nl_bridge_addr6(n->bridge, &n->gateway6, n->subnet6.prefix, err) < 0))
        return merr_prefix(err, "network %s", n->name);
    return 0;
}

static int bridges_up(struct net_service *s, struct merr *err)
{
    for (size_t i = 0; i < s->n_nets; i++)
        if (strcmp(s->nets[i]->driver, "bridge") == 0 && svc_bridge_up(s->nets[i], err) < 0)
            return -1;
    return 0;
}

/* The embedded DNS server, forwarding to the host's nameservers as they are now. */
static struct net_dns *dns_start(struct net_service *s, struct merr *err)
{
    struct net_dns_config cfg = { .log = s->log, .lookup = svc_dns_lookup,
                                  .lookup6 = svc_dns_lookup6, .data = s };
    auto_free char *resolv = NULL;
    struct merr ignored;
    if (fs_read_file("/etc/resolv.conf", 65536, &resolv, NULL, &ignored) == 0) {
        cfg.n_upstreams = net_resolv_nameservers(resolv, cfg.upstreams, 3);
        s->dns_search = net_resolv_search(resolv);
    }
    return net_dns_new(&cfg, err);
}

int net_service_new(const struct net_service_config *cfg, struct net_service **out,
                    struct merr *err)
{
    struct net_service *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->log = cfg->log;
    s->default_dns = strv_dup(cfg->dns.servers);
    s->default_mtu = cfg->mtu;
    s->default_dns_search = strv_dup(cfg->dns.search);
    s->default_dns_options = strv_dup(cfg->dns.options);
    s->ctr_lookup = cfg->ctr_lookup;
    s->ctr_data = cfg->ctr_data;
    s->root = path_join(cfg->data_root, "network");
    s->networks_dir = path_join(s->root, "networks");
    s->ctrs_dir = path_join(s->root, "containers");
    s->netns_dir = path_join(cfg->exec_root, "netns");
    if (net_pool_parse(cfg->default_pool != NULL ? cfg->default_pool : NET_DEFAULT_POOL, &s->pool,
                       &s->pool_size, err) < 0) {
        merr_prefix(err, "invalid --default-address-pool");
        goto fail;
    }
    if (fs_mkdir_p(s->networks_dir, 0700, err) < 0 || fs_mkdir_p(s->ctrs_dir, 0700, err) < 0 ||
        fs_mkdir_p(s->netns_dir, 0700, err) < 0 || load_networks(s, err) < 0 ||
        ensure_builtins(s, cfg, err) < 0 || svc_load_containers(s, err) < 0)
        goto fail;
    s->fw = net_fw_new(s->log);
    s->proxy = net_proxy_new(s->log, svc_proxy_exited, s, err);
    s->proxy_bin = net_pxproc_find();
    if (s->proxy_bin == NULL)
        mlog_warn(s->log, "machine-proxy not found beside the engine: published ports are "
                          "served by the engine and go with it");
    if (s->proxy == NULL || (s->dns = dns_start(s, err)) == NULL)
        goto fail;
    struct merr fwerr = MERR_INIT;
    /* Not fatal: containers on a network whose bridge is missing fail to start, with the reason. */
    if (bridges_up(s, &fwerr) < 0)
        mlog_warn(s->log, "%s", fwerr.msg);
    fwerr = (struct merr)MERR_INIT;
    if (svc_firewall_sync(s, &fwerr) < 0)
        mlog_warn(s->log, "outbound NAT is unavailable: %s", fwerr.msg);
    if (nl_sysctl_write("/proc/sys/net/ipv4/ip_forward", "1", &fwerr) < 0)
        mlog_warn(s->log, "%s", fwerr.msg);
    struct net_network *dflt = svc_default_network(s);
    mlog_info(s->log, "networking: default bridge %s, firewall %s",
              dflt != NULL ? dflt->bridge : "none", net_fw_name(s->fw));
    *out = s;
    return 0;
fail:
    net_service_free(s);
    return -1;
}

void net_service_free(struct net_service *s)
{
    if (s == NULL)
        return;
    net_dns_free(s->dns);
    net_proxy_free(s->proxy);
    free(s->proxy_bin);
    net_fw_free(s->fw);
    for (size_t i = 0; i < s->n_nets; i++)
        network_free(s->nets[i]);
    free(s->nets);
    svc_free_containers(s);
    strv_free(s->dns_search);
    strv_free(s->default_dns);
    strv_free(s->default_dns_search);
    strv_free(s->default_dns_options);
    free(s->root);
    free(s->networks_dir);
    free(s->ctrs_dir);
    free(s->netns_dir);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *net_service_firewall(const struct net_service *s)
{
    return net_fw_name(s->fw);
}

/* ---- the /networks API ---- */

/* IPAM.Config as dockerd reports it: the entries as asked (only the fields given); the
 * allocated IPv4 subnet and gateway when no IPv4 entry was asked, likewise for IPv6. */
static json_t *ipam_config_json(const struct net_network *n)
{
    json_t *out = json_array();
    if (strcmp(n->driver, "bridge") != 0)
        return out;
    bool asked4 = false, asked6 = false;
    size_t i;
    json_t *c;
    json_array_foreach(n->ipam_config, i, c) {
        const char *sub = json_string_value(json_object_get(c, "Subnet"));
        if (sub == NULL || sub[0] == '\0')
            continue;
        bool v6 = strchr(sub, ':') != NULL;
        *(v6 ? &asked6 : &asked4) = true;
        json_t *e = json_object();
        static const char *const keys[] = { "Subnet", "IPRange", "Gateway", NULL };
        for (size_t k = 0; keys[k] != NULL; k++) {
            const char *v = json_string_value(json_object_get(c, keys[k]));
            if (v != NULL && v[0] != '\0')
                json_object_set_new(e, keys[k], json_string(v));
        }
        json_t *aux = json_object_get(c, "AuxiliaryAddresses");
        if (json_object_size(aux) > 0)
            json_object_set(e, "AuxiliaryAddresses", aux);
        json_array_append_new(out, e);
    }
    char sub[64], gw[NET_IP6_STR];
    if (!asked4) {
        net_subnet_str(&n->subnet, sub, sizeof sub);
        net_ip_str(n->gateway, gw);
        json_array_insert_new(out, 0, json_pack("{s:s,s:s}", "Subnet", sub, "Gateway", gw));
    }
    if (!asked6 && n->ipv6) {
        net_subnet6_str(&n->subnet6, sub, sizeof sub);
        net_ip6_str(&n->gateway6, gw);
        json_array_append_new(out, json_pack("{s:s,s:s}", "Subnet", sub, "Gateway", gw));
    }
    return out;
}

static json_t *network_api_json(struct net_service *s, const struct net_network *n, bool verbose)
{
    auto_free char *created = NULL;
    {
        time_t secs = (time_t)(n->created_ns / 1000000000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char base[32];
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        created = xasprintf("%s.%09lldZ", base, (long long)(n->created_ns % 1000000000));
    }
    json_t *containers = verbose ? svc_network_containers_json(s, n) : json_object();
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:{s:s,s:O?,s:o},s:b,s:b,s:b,s:{s:s},s:b,s:o,s:O,s:O}",
                     "Name", n->name, "Id", n->id, "Created", created, "Scope", "local", "Driver",
                     n->driver, "EnableIPv6", n->ipv6, "IPAM", "Driver", "default", "Options",
                     n->ipam_options, "Config", ipam_config_json(n), "Internal", n->internal,
                     "Attachable", n->attachable, "Ingress", 0, "ConfigFrom", "Network", "",
                     "ConfigOnly", 0, "Containers", containers, "Options", n->options, "Labels",
                     n->labels);
}

json_t *net_list(struct net_service *s, struct merr *err)
{
    json_t *a = json_array();
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_nets; i++)
        json_array_append_new(a, network_api_json(s, s->nets[i], false));
    pthread_mutex_unlock(&s->lock);
    return a;
}

json_t *net_inspect(struct net_service *s, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct net_network *n = svc_network_find(s, ref, err);
    json_t *j = n != NULL ? network_api_json(s, n, true) : NULL;
    pthread_mutex_unlock(&s->lock);
    return j;
}

/* As dockerd: any name that is not blank ("test 01" is fine), but not a predefined one.
 * Control characters and very long names are refused (they end up in messages and logs). */
static int valid_name(const char *name, struct merr *err)
{
    bool blank = true;
    for (const char *p = name != NULL ? name : ""; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f || p - name > 200)
            return merr_set(err, MERR_INVALID, 0, "invalid network name '%s'", name);
        blank = blank && (*p == ' ' || *p == '\t');
    }
    if (blank)
        return merr_set(err, MERR_INVALID, 0, "invalid name: %s", name != NULL ? name : "");
    if (strcmp(name, "bridge") == 0 || strcmp(name, "host") == 0 || strcmp(name, "none") == 0 ||
        strcmp(name, "default") == 0 || strncmp(name, "container:", 10) == 0)
        return merr_set(err, MERR_PERM, 0, "operation is not permitted on predefined %s network ", name);
    return 0;
}

/* The subnets of a create request (IPAM.Config, else the pool), checked against the other
 * bridge networks. */
static int choose_subnets(struct net_service *s, const json_t *body, struct net_network *n,
                          struct merr *err)
{
    struct net_ipam_request req;
    if (net_ipam_request_parse(json_object_get(body, "IPAM"), &req, err) < 0)
        return -1;
    bool v6 = json_is_true(json_object_get(body, "EnableIPv6"));
    if (v6 && !req.has_v6)
        return merr_set(err, MERR_INVALID, 0,
                        "could not find an available, non-overlapping IPv6 address pool among the "
                        "defaults to assign to the network (give an IPv6 subnet with --subnet)");
    struct net_subnet *taken = xcalloc(s->n_nets + 1, sizeof *taken);
    size_t n_taken = 0;
    int rc = 0;
    for (size_t i = 0; i < s->n_nets; i++) {
        const struct net_network *o = s->nets[i];
        if (strcmp(o->driver, "bridge") != 0)
            continue;
        taken[n_taken++] = o->subnet;
        if (req.has_v6 && o->has6 && net_subnet6_overlaps(&req.subnet6, &o->subnet6))
            rc = merr_set(err, MERR_EXISTS, 0, "Pool overlaps with other one on this address space");
    }
    if (rc == 0 && req.has_v4) {
        n->subnet = req.subnet;
        for (size_t i = 0; rc == 0 && i < n_taken; i++)
            if (net_subnet_overlaps(&req.subnet, &taken[i]))
                rc = merr_set(err, MERR_EXISTS, 0, "Pool overlaps with other one on this address space");
    } else if (rc == 0) {
        rc = net_pool_pick(&s->pool, s->pool_size, taken, n_taken, &n->subnet, err);
    }
    free(taken);
    if (rc < 0)
        return -1;
    n->gateway = req.gateway != 0 ? req.gateway : n->subnet.addr + 1;
    n->range = req.range;
    n->ipv6 = v6;
    if (req.has_v6) {
        n->has6 = true;
        n->subnet6 = req.subnet6;
        n->range6 = req.range6;
        n->gateway6 = req.subnet6.addr;
        n->gateway6.b[15] |= 1;
        if (!net_ip6_is_zero(&req.gateway6))
            n->gateway6 = req.gateway6;
    }
    const json_t *ipam = json_object_get(body, "IPAM");
    const json_t *cfg = json_object_get(ipam, "Config");
    n->ipam_config = json_is_array(cfg) ? json_deep_copy(cfg) : json_array();
    const json_t *opts = json_object_get(ipam, "Options");
    n->ipam_options = json_is_object(opts) ? json_deep_copy(opts) : NULL;
    return 0;
}

/* What a create request asks that this engine cannot do, worded as dockerd where it refuses
 * it too (dockerd without swarm). */
static int create_request_check(const json_t *body, struct merr *err)
{
    const char *driver = json_string_value(json_object_get(body, "Driver"));
    if (driver != NULL && (strcmp(driver, "host") == 0 || strcmp(driver, "null") == 0))
        return merr_set(err, MERR_PERM, 0, "only one instance of \"%s\" network is allowed", driver);
    if (driver != NULL && driver[0] != '\0' && strcmp(driver, "bridge") != 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "plugin \"%s\" not found", driver);
    if (json_is_true(json_object_get(body, "Ingress")))
        return merr_set(err, MERR_PERM, 0, "Ingress network can only be global scope network");
    const char *scope = json_string_value(json_object_get(body, "Scope"));
    if (scope != NULL && scope[0] != '\0' && strcmp(scope, "local") != 0)
        return merr_set(err, MERR_INVALID, 0, "network scope %s is not supported by machine-engine", scope);
    if (json_is_true(json_object_get(body, "ConfigOnly")))
        return merr_set(err, MERR_INVALID, 0, "ConfigOnly networks are not supported by machine-engine");
    const json_t *from = json_object_get(body, "ConfigFrom");
    const char *from_net = json_string_value(json_object_get(from, "Network"));
    if (from_net != NULL && from_net[0] != '\0')
        return merr_set(err, MERR_INVALID, 0, "ConfigFrom is not supported by machine-engine");
    return 0;
}

int net_create(struct net_service *s, const json_t *body, char **id, char **warning,
               struct merr *err)
{
    const char *name = json_string_value(json_object_get(body, "Name"));
    if (valid_name(name, err) < 0 || create_request_check(body, err) < 0)
        return -1;
    pthread_mutex_lock(&s->lock);
    struct net_network *n = NULL;
    int rc = -1;
    *warning = NULL;
    for (size_t i = 0; i < s->n_nets && *warning == NULL; i++)
        if (strcmp(s->nets[i]->name, name) == 0) {
            /* dockerd: a duplicate name only with CheckDuplicate false, and a warning */
            if (json_is_true(json_object_get(body, "CheckDuplicate"))) {
                merr_set(err, MERR_EXISTS, 0, "network with name %s already exists", name);
                goto out;
            }
            *warning = xasprintf("Network with name %s (id : %s) already exists", name, s->nets[i]->id);
        }
    n = xcalloc(1, sizeof *n);
    if (choose_subnets(s, body, n, err) < 0)
        goto out;
    svc_random_hex(n->id, 32);
    n->name = xstrdup(name);
    n->driver = xstrdup("bridge");
    n->bridge = xasprintf("mbr-%.11s", n->id);
    n->internal = json_is_true(json_object_get(body, "Internal"));
    n->attachable = json_is_true(json_object_get(body, "Attachable"));
    json_t *labels = json_object_get(body, "Labels");
    json_t *options = json_object_get(body, "Options");
    n->labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    n->options = json_is_object(options) ? json_deep_copy(options) : json_object();
    n->created_ns = svc_now_ns();
    if (svc_bridge_up(n, err) < 0 || svc_network_persist(s, n, err) < 0) {
        struct merr ignored;
        if (nl_link_delete(n->bridge, &ignored) < 0)
            mlog_warn(s->log, "%s", ignored.msg);
        goto out;
    }
    add_network(s, n);
    struct merr fwerr = MERR_INIT;
    if (svc_firewall_sync(s, &fwerr) < 0)
        mlog_warn(s->log, "%s", fwerr.msg);
    *id = xstrdup(n->id);
    n = NULL;
    rc = 0;
out:
    if (n != NULL)
        network_free(n);
    if (rc < 0) {
        free(*warning);
        *warning = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int remove_locked(struct net_service *s, struct net_network *n, struct merr *err)
{
    if (n->builtin)
        return merr_set(err, MERR_PERM, 0, "%s is a pre-defined network and cannot be removed",
                        n->name);
    if (svc_network_in_use(s, n))
        return merr_set(err, MERR_EXISTS, 0,
                        "error while removing network: network %s id %s has active endpoints",
                        n->name, n->id);
    svc_forget_network(s, n);
    if (nl_link_delete(n->bridge, err) < 0)
        return -1;
    auto_free char *file = xasprintf("%s.json", n->id);
    auto_free char *path = path_join(s->networks_dir, file);
    if (unlink(path) < 0 && errno != ENOENT)
        return merr_set(err, MERR_IO, errno, "cannot remove '%s'", path);
    for (size_t i = 0; i < s->n_nets; i++)
        if (s->nets[i] == n) {
            memmove(&s->nets[i], &s->nets[i + 1], (s->n_nets - i - 1) * sizeof *s->nets);
            s->n_nets--;
            break;
        }
    network_free(n);
    struct merr fwerr = MERR_INIT;
    if (svc_firewall_sync(s, &fwerr) < 0)
        mlog_warn(s->log, "%s", fwerr.msg);
    return 0;
}

int net_remove(struct net_service *s, const char *ref, struct merr *err)
{
    pthread_mutex_lock(&s->lock);
    struct net_network *n = svc_network_find(s, ref, err);
    int rc = n != NULL ? remove_locked(s, n, err) : -1;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

json_t *net_prune(struct net_service *s, net_prune_match_fn match, void *data, struct merr *err)
{
    json_t *gone = json_array();
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_nets;) {
        struct net_network *n = s->nets[i];
        if (n->builtin || svc_network_referenced(s, n) ||
            (match != NULL && !match(data, n->created_ns, n->labels))) {
            i++;
            continue;
        }
        auto_free char *name = xstrdup(n->name);
        struct merr e = MERR_INIT;
        if (remove_locked(s, n, &e) < 0) {
            mlog_warn(s->log, "prune: %s", e.msg);
            i++;
            continue;
        }
        json_array_append_new(gone, json_string(name));
    }
    pthread_mutex_unlock(&s->lock);
    return gone;
}
