/* The settings a container asks for on one network (EndpointSettings of a create or connect
 * request): IPAMConfig addresses, MAC address and links. Pure. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "network-priv.h"

int net_mac_parse(const char *s, char out[18], struct merr *err)
{
    unsigned b[6];
    int used = 0;
    if (s == NULL || strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &used) != 6 ||
        used != 17)
        return merr_set(err, MERR_INVALID, 0, "invalid MAC address '%s'", s != NULL ? s : "");
    for (size_t i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
            return merr_set(err, MERR_INVALID, 0, "invalid MAC address '%s'", s);
    /* the kernel refuses a group address on an interface */
    if (b[0] & 1)
        return merr_set(err, MERR_INVALID, 0, "invalid MAC address '%s': a multicast address", s);
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    return 0;
}

int net_link_parse(const char *spec, char **name, char **alias, struct merr *err)
{
    const char *n = spec != NULL && spec[0] == '/' ? spec + 1 : spec;
    const char *colon = n != NULL ? strchr(n, ':') : NULL;
    size_t nlen = n == NULL ? 0 : colon != NULL ? (size_t)(colon - n) : strlen(n);
    const char *a = colon != NULL ? colon + 1 : n;
    const char *slash = colon != NULL ? strrchr(a, '/') : NULL; /* "/db:/web/alias" as inspect shows */
    if (slash != NULL)
        a = slash + 1;
    size_t alen = a == NULL ? 0 : colon != NULL ? strlen(a) : nlen;
    if (nlen == 0 || alen == 0 || memchr(n, '/', nlen) != NULL || nlen > 255 || alen > 255)
        return merr_set(err, MERR_INVALID, 0, "invalid link '%s'", spec != NULL ? spec : "");
    for (size_t i = 0; i < alen; i++)
        if (!isalnum((unsigned char)a[i]) && a[i] != '_' && a[i] != '.' && a[i] != '-')
            return merr_set(err, MERR_INVALID, 0, "invalid link alias '%.*s'", (int)alen, a);
    *name = xasprintf("%.*s", (int)nlen, n);
    *alias = xasprintf("%.*s", (int)alen, a);
    return 0;
}

void net_ep_ipam_release(struct net_ep_ipam *r)
{
    strv_free(r->link_local);
    memset(r, 0, sizeof *r);
}

static const char *nonempty(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int net_ep_ipam_parse(const json_t *cfg, struct net_ep_ipam *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    if (cfg == NULL || json_is_null(cfg))
        return 0;
    if (!json_is_object(cfg))
        return merr_set(err, MERR_INVALID, 0, "invalid IPAMConfig: expected an object");
    const char *v4 = nonempty(cfg, "IPv4Address"), *v6 = nonempty(cfg, "IPv6Address");
    struct merr ignored;
    if (v4 != NULL && net_ip_parse(v4, &out->ip4, &ignored) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid IPv4 address: %s", v4);
    if (v6 != NULL && (strchr(v6, ':') == NULL || net_ip6_parse(v6, &out->ip6, &ignored) < 0))
        return merr_set(err, MERR_INVALID, 0, "invalid IPv6 address: %s", v6);
    const json_t *ll = json_object_get(cfg, "LinkLocalIPs");
    size_t i;
    json_t *it;
    json_array_foreach(ll, i, it) {
        const char *s = json_string_value(it);
        uint32_t ip4;
        struct net_ip6 ip6;
        bool ok = s != NULL && (net_ip_parse(s, &ip4, &ignored) == 0 ||
                                (strchr(s, ':') != NULL && net_ip6_parse(s, &ip6, &ignored) == 0));
        if (!ok) {
            net_ep_ipam_release(out);
            return merr_set(err, MERR_INVALID, 0, "invalid link-local IP address: %s", s != NULL ? s : "");
        }
        out->link_local = strv_push(out->link_local, s);
    }
    return 0;
}
