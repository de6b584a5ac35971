/* What a running container's network is made of (namespace, hostname, each endpoint's
 * addresses and interfaces), kept beside its network record so a restarted engine can take a
 * container that ran on (live-restore) back: run.json, written at start, removed at stop. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "service-priv.h"

#define RUN_FILE "run.json"
#define RUN_MAX (1u << 20)

int svc_run_save(const char *dir, const struct net_ctr *c, struct merr *err)
{
    json_t *eps = json_array();
    for (size_t i = 0; i < c->n_eps; i++) {
        const struct net_ep *e = &c->eps[i];
        char ip[NET_IP_STR] = "", ip6[NET_IP6_STR] = "";
        if (e->ip != 0)
            net_ip_str(e->ip, ip);
        if (!net_ip6_is_zero(&e->ip6))
            net_ip6_str(&e->ip6, ip6);
        json_array_append_new(eps, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "NetworkID",
                                             e->network_id, "IP", ip, "IP6", ip6, "EndpointID",
                                             e->ep_id, "HostIf", e->host_if, "IfName", e->ifname,
                                             "Mac", e->mac));
    }
    json_t *ports = json_array();
    for (size_t i = 0; i < c->n_bound; i++) {
        const struct net_port_bound *b = &c->bound[i];
        json_array_append_new(ports, json_pack("{s:s,s:i,s:s,s:i,s:i}", "Proto",
                                               net_proto_name(b->b.proto), "ContainerPort",
                                               b->b.container_port, "HostIp", b->b.host_ip,
                                               "HostPort", b->b.host_port, "Bound", b->host_port));
    }
    /* the ports as bound, their proxy (pid and start time), the DNS sockets the monitor keeps */
    json_t *j = json_pack("{s:s,s:s,s:o,s:o,s:{s:i,s:I},s:[I,I]}", "Netns",
                          c->netns != NULL ? c->netns : "", "Hostname",
                          c->hostname != NULL ? c->hostname : "", "Endpoints", eps, "Ports", ports,
                          "Proxy", "Pid", (int)c->px.pid, "Start", (json_int_t)c->px.start,
                          "DnsInodes", (json_int_t)c->dns_ino[0], (json_int_t)c->dns_ino[1]);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL)
        return merr_set(err, MERR_NOMEM, 0, "cannot serialise the network of %s", c->id);
    auto_free char *path = path_join(dir, RUN_FILE);
    int rc = fs_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

void svc_run_forget(const char *dir)
{
    auto_free char *path = path_join(dir, RUN_FILE);
    unlink(path);
}

static void load_proxy(const json_t *j, struct net_pxproc *px)
{
    const json_t *p = json_object_get(j, "Proxy");
    json_int_t pid = json_integer_value(json_object_get(p, "Pid"));
    json_int_t start = json_integer_value(json_object_get(p, "Start"));
    *px = (struct net_pxproc){ .pidfd = -1 };
    if (pid > 0 && pid <= INT32_MAX && start > 0) {
        px->pid = (pid_t)pid;
        px->start = (unsigned long long)start;
    }
}

/* The ports as bound at start; false when the file has none (an older engine's). */
static bool load_ports(const json_t *j, struct net_ctr *c)
{
    const json_t *ports = json_object_get(j, "Ports");
    if (!json_is_array(ports))
        return false;
    struct net_port_bound *bound = xcalloc(json_array_size(ports) + 1, sizeof *bound);
    size_t n = 0, i;
    const json_t *it;
    json_array_foreach(ports, i, it) {
        const char *proto = json_string_value(json_object_get(it, "Proto"));
        const char *hip = json_string_value(json_object_get(it, "HostIp"));
        json_int_t cport = json_integer_value(json_object_get(it, "ContainerPort"));
        json_int_t hport = json_integer_value(json_object_get(it, "HostPort"));
        json_int_t got = json_integer_value(json_object_get(it, "Bound"));
        if (proto == NULL || hip == NULL || strlen(hip) >= NET_IP_STR || cport <= 0 ||
            cport > 65535 || hport < 0 || hport > 65535 || got <= 0 || got > 65535) {
            free(bound);
            return false;
        }
        struct net_port_bound *b = &bound[n++];
        b->b.proto = strcmp(proto, "udp") == 0 ? NET_UDP : NET_TCP;
        b->b.container_port = (uint16_t)cport;
        snprintf(b->b.host_ip, sizeof b->b.host_ip, "%s", hip);
        b->b.host_port = (uint16_t)hport;
        b->host_port = (uint16_t)got;
    }
    free(c->bound);
    c->bound = bound;
    c->n_bound = n;
    return true;
}

void svc_run_load_proxy(const char *dir, struct net_pxproc *px)
{
    auto_free char *path = path_join(dir, RUN_FILE);
    auto_free char *text = NULL;
    size_t len = 0;
    struct merr ignored;
    *px = (struct net_pxproc){ .pidfd = -1 };
    if (fs_read_file(path, RUN_MAX, &text, &len, &ignored) < 0)
        return;
    json_t *j = json_loadb(text, len, 0, NULL);
    load_proxy(j, px);
    json_decref(j);
    if (net_pxproc_adopt(px) == 0)
        *px = (struct net_pxproc){ .pidfd = -1 };
}

static void copy_field(char *dst, size_t size, const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, size, "%s", v != NULL ? v : "");
}

int svc_run_load(const char *dir, struct net_ctr *c, struct merr *err)
{
    auto_free char *path = path_join(dir, RUN_FILE);
    auto_free char *text = NULL;
    size_t len = 0;
    if (fs_read_file(path, RUN_MAX, &text, &len, err) < 0)
        return -1;
    json_t *j = json_loadb(text, len, 0, NULL);
    const char *netns = json_string_value(json_object_get(j, "Netns"));
    json_t *eps = json_object_get(j, "Endpoints");
    if (netns == NULL || netns[0] != '/' || json_array_size(eps) != c->n_eps) {
        json_decref(j);
        return merr_set(err, MERR_CORRUPT, 0, "'%s' does not match the container's endpoints",
                        path);
    }
    for (size_t i = 0; i < c->n_eps; i++) {
        struct net_ep *e = &c->eps[i];
        json_t *it = json_array_get(eps, i);
        const char *nid = json_string_value(json_object_get(it, "NetworkID"));
        const char *ip = json_string_value(json_object_get(it, "IP"));
        const char *ip6 = json_string_value(json_object_get(it, "IP6"));
        struct merr ignored;
        if (nid == NULL || strcmp(nid, e->network_id) != 0 || ip == NULL ||
            net_ip_parse(ip, &e->ip, &ignored) < 0) {
            json_decref(j);
            return merr_set(err, MERR_CORRUPT, 0, "'%s': endpoint %zu does not match", path, i);
        }
        if (ip6 == NULL || ip6[0] == '\0' || net_ip6_parse(ip6, &e->ip6, &ignored) < 0)
            memset(&e->ip6, 0, sizeof e->ip6);
        copy_field(e->ep_id, sizeof e->ep_id, it, "EndpointID");
        copy_field(e->host_if, sizeof e->host_if, it, "HostIf");
        copy_field(e->ifname, sizeof e->ifname, it, "IfName");
        copy_field(e->mac, sizeof e->mac, it, "Mac");
    }
    free(c->netns);
    c->netns = xstrdup(netns);
    free(c->hostname);
    c->hostname = xstrdup(json_string_value(json_object_get(j, "Hostname")));
    c->bound_recorded = load_ports(j, c);
    load_proxy(j, &c->px);
    const json_t *ino = json_object_get(j, "DnsInodes");
    for (size_t i = 0; i < 2; i++)
        c->dns_ino[i] = (unsigned long)json_integer_value(json_array_get(ino, i));
    json_decref(j);
    return 0;
}
