/* What a running container's network is made of (namespace, hostname, each endpoint's
 * addresses and interfaces), kept beside its network record so a restarted engine can take a
 * container that ran on (live-restore) back: run.json, written at start, removed at stop. */
#include <stdio.h>
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
    json_t *j = json_pack("{s:s,s:s,s:o}", "Netns", c->netns != NULL ? c->netns : "", "Hostname",
                          c->hostname != NULL ? c->hostname : "", "Endpoints", eps);
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
    json_decref(j);
    return 0;
}
