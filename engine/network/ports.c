/* Published ports: docker's PortBindings / ExposedPorts JSON in, bindings out, and the two
 * JSON shapes the API reports them in. Pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "network-priv.h"

const char *net_proto_name(enum net_proto p)
{
    return p == NET_UDP ? "udp" : "tcp";
}

static int parse_u16(const char *s, size_t len, uint16_t *out)
{
    if (len == 0 || len > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int net_port_parse(const char *s, struct net_port *out, struct merr *err)
{
    const char *slash = strchr(s, '/');
    size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    out->proto = NET_TCP;
    if (slash != NULL) {
        if (strcmp(slash + 1, "udp") == 0)
            out->proto = NET_UDP;
        else if (strcmp(slash + 1, "tcp") != 0)
            return merr_set(err, MERR_INVALID, 0, "invalid proto '%s'", slash + 1);
    }
    if (parse_u16(s, len, &out->port) < 0 || out->port == 0)
        return merr_set(err, MERR_INVALID, 0, "invalid containerPort: %s", s);
    return 0;
}

static void push(struct net_port_binding **v, size_t *n, const struct net_port_binding *b)
{
    struct net_port_binding *g = realloc(*v, (*n + 1) * sizeof *g);
    if (g == NULL)
        abort();
    g[(*n)++] = *b;
    *v = g;
}

/* HostPort: "", "8080", or a range "8000-8010" (the first port is used). */
static int parse_host_port(const char *s, uint16_t *out, struct merr *err)
{
    *out = 0;
    if (s == NULL || s[0] == '\0')
        return 0;
    const char *dash = strchr(s, '-');
    size_t len = dash != NULL ? (size_t)(dash - s) : strlen(s);
    if (parse_u16(s, len, out) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid hostPort: %s", s);
    return 0;
}

int net_port_bindings_parse(const json_t *port_bindings, const json_t *exposed, bool publish_all,
                            struct net_port_binding **out, size_t *n, struct merr *err)
{
    *out = NULL;
    *n = 0;
    struct net_port_binding *v = NULL;
    size_t count = 0;
    const char *key;
    json_t *list;
    if (port_bindings != NULL && !json_is_null(port_bindings) && !json_is_object(port_bindings))
        return merr_set(err, MERR_INVALID, 0, "PortBindings must be an object");
    json_object_foreach((json_t *)port_bindings, key, list) {
        struct net_port p;
        if (net_port_parse(key, &p, err) < 0)
            goto fail;
        if (json_is_null(list))
            continue;
        if (!json_is_array(list)) {
            merr_set(err, MERR_INVALID, 0, "PortBindings of '%s' must be an array", key);
            goto fail;
        }
        size_t i;
        json_t *it;
        json_array_foreach(list, i, it) {
            struct net_port_binding b = { .proto = p.proto, .container_port = p.port };
            const char *ip = json_string_value(json_object_get(it, "HostIp"));
            if (ip != NULL && ip[0] != '\0') {
                uint32_t parsed;
                if (net_ip_parse(ip, &parsed, err) < 0)
                    goto fail;
                snprintf(b.host_ip, sizeof b.host_ip, "%s", ip);
            }
            if (parse_host_port(json_string_value(json_object_get(it, "HostPort")), &b.host_port,
                                err) < 0)
                goto fail;
            push(&v, &count, &b);
        }
    }
    json_t *unused;
    json_object_foreach((json_t *)exposed, key, unused) {
        if (!publish_all)
            break;
        struct net_port p;
        if (net_port_parse(key, &p, err) < 0)
            goto fail;
        bool bound = false;
        for (size_t i = 0; i < count && !bound; i++)
            bound = v[i].proto == p.proto && v[i].container_port == p.port;
        if (!bound) {
            struct net_port_binding b = { .proto = p.proto, .container_port = p.port };
            push(&v, &count, &b);
        }
    }
    *out = v;
    *n = count;
    return 0;
fail:
    free(v);
    return -1;
}

static char *port_key(enum net_proto proto, uint16_t port)
{
    return xasprintf("%u/%s", port, net_proto_name(proto));
}

json_t *net_ports_settings_json(const struct net_port_bound *bound, size_t n, const json_t *exposed)
{
    json_t *o = json_object();
    const char *key;
    json_t *unused;
    json_object_foreach((json_t *)exposed, key, unused) {
        struct net_port p;
        struct merr ignored;
        if (net_port_parse(key, &p, &ignored) == 0) {
            auto_free char *k = port_key(p.proto, p.port);
            json_object_set_new(o, k, json_null());
        }
    }
    for (size_t i = 0; i < n; i++) {
        auto_free char *k = port_key(bound[i].b.proto, bound[i].b.container_port);
        json_t *list = json_object_get(o, k);
        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(o, k, list);
        }
        char hp[8];
        snprintf(hp, sizeof hp, "%u", bound[i].host_port);
        const char *ip = bound[i].b.host_ip[0] != '\0' ? bound[i].b.host_ip : "0.0.0.0";
        json_array_append_new(list, json_pack("{s:s,s:s}", "HostIp", ip, "HostPort", hp));
    }
    return o;
}

json_t *net_ports_ps_json(const struct net_port_bound *bound, size_t n, const json_t *exposed)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *ip = bound[i].b.host_ip[0] != '\0' ? bound[i].b.host_ip : "0.0.0.0";
        json_array_append_new(a, json_pack("{s:s,s:i,s:i,s:s}", "IP", ip, "PrivatePort",
                                           bound[i].b.container_port, "PublicPort",
                                           bound[i].host_port, "Type",
                                           net_proto_name(bound[i].b.proto)));
    }
    const char *key;
    json_t *unused;
    json_object_foreach((json_t *)exposed, key, unused) {
        struct net_port p;
        struct merr ignored;
        if (net_port_parse(key, &p, &ignored) < 0)
            continue;
        bool published = false;
        for (size_t i = 0; i < n && !published; i++)
            published = bound[i].b.proto == p.proto && bound[i].b.container_port == p.port;
        if (!published)
            json_array_append_new(a, json_pack("{s:i,s:s}", "PrivatePort", p.port, "Type",
                                               net_proto_name(p.proto)));
    }
    return a;
}
