/* The IPAM part of a network create request (POST /networks/create IPAM.Config): one IPv4 and
 * one IPv6 entry at most, each with Subnet, IPRange, Gateway and AuxiliaryAddresses, checked
 * against each other as dockerd's default IPAM does. Pure. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "network-priv.h"

static const char *str_field(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int parse_v4(const json_t *c, struct net_ipam_request *out, struct merr *err)
{
    const char *sub = str_field(c, "Subnet"), *range = str_field(c, "IPRange");
    const char *gw = str_field(c, "Gateway");
    if (sub == NULL && (range != NULL || gw != NULL))
        return merr_set(err, MERR_INVALID, 0, "an IPRange or Gateway needs a Subnet");
    if (sub == NULL)
        return 0;
    out->has_v4 = true;
    if (net_cidr_parse(sub, &out->subnet, NULL, err) < 0)
        return -1;
    if (range != NULL) {
        if (net_cidr_parse(range, &out->range, NULL, err) < 0)
            return -1;
        if (out->range.prefix < out->subnet.prefix ||
            !net_subnet_contains(&out->subnet, out->range.addr))
            return merr_set(err, MERR_INVALID, 0, "IP range %s is not in subnet %s", range, sub);
    }
    if (gw != NULL) {
        if (net_ip_parse(gw, &out->gateway, err) < 0)
            return merr_set(err, MERR_INVALID, 0, "invalid gateway address %s in Ipam configuration", gw);
        if (!net_subnet_contains(&out->subnet, out->gateway) || out->gateway == out->subnet.addr)
            return merr_set(err, MERR_INVALID, 0, "gateway %s is not in subnet %s", gw, sub);
    }
    return 0;
}

static int parse_v6(const json_t *c, struct net_ipam_request *out, struct merr *err)
{
    const char *sub = str_field(c, "Subnet"), *range = str_field(c, "IPRange");
    const char *gw = str_field(c, "Gateway");
    out->has_v6 = true;
    if (net_cidr6_parse(sub, &out->subnet6, NULL, err) < 0)
        return -1;
    if (range != NULL) {
        if (net_cidr6_parse(range, &out->range6, NULL, err) < 0)
            return -1;
        if (out->range6.prefix < out->subnet6.prefix ||
            !net_subnet6_contains(&out->subnet6, &out->range6.addr))
            return merr_set(err, MERR_INVALID, 0, "IP range %s is not in subnet %s", range, sub);
    }
    if (gw != NULL) {
        if (net_ip6_parse(gw, &out->gateway6, err) < 0)
            return merr_set(err, MERR_INVALID, 0, "invalid gateway address %s in Ipam configuration", gw);
        if (!net_subnet6_contains(&out->subnet6, &out->gateway6) ||
            net_ip6_equal(&out->gateway6, &out->subnet6.addr))
            return merr_set(err, MERR_INVALID, 0, "gateway %s is not in subnet %s", gw, sub);
    }
    return 0;
}

/* Auxiliary addresses are reserved: each must lie in its entry's subnet. */
static int check_aux(const json_t *c, const struct net_ipam_request *r, bool v6, struct merr *err)
{
    const json_t *aux = json_object_get(c, "AuxiliaryAddresses");
    if (aux != NULL && !json_is_null(aux) && !json_is_object(aux))
        return merr_set(err, MERR_INVALID, 0, "invalid AuxiliaryAddresses: expected an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)aux, k, v) {
        const char *s = json_string_value(v);
        uint32_t ip4;
        struct net_ip6 ip6;
        struct merr ignored;
        bool in = v6 ? net_ip6_parse(s, &ip6, &ignored) == 0 && net_subnet6_contains(&r->subnet6, &ip6)
                     : net_ip_parse(s, &ip4, &ignored) == 0 && net_subnet_contains(&r->subnet, ip4);
        if (!in)
            return merr_set(err, MERR_INVALID, 0, "auxiliary address %s=%s is not in the subnet",
                            k, s != NULL ? s : "");
    }
    return 0;
}

int net_ipam_request_parse(const json_t *ipam, struct net_ipam_request *out, struct merr *err)
{
    memset(out, 0, sizeof *out);
    if (ipam == NULL || json_is_null(ipam))
        return 0;
    if (!json_is_object(ipam))
        return merr_set(err, MERR_INVALID, 0, "invalid IPAM: expected an object");
    const char *driver = str_field(ipam, "Driver");
    if (driver != NULL && strcmp(driver, "default") != 0)
        return merr_set(err, MERR_NOT_FOUND, 0, "plugin \"%s\" not found", driver);
    const json_t *cfg = json_object_get(ipam, "Config");
    if (cfg != NULL && !json_is_null(cfg) && !json_is_array(cfg))
        return merr_set(err, MERR_INVALID, 0, "invalid IPAM.Config: expected an array");
    size_t i;
    json_t *c;
    json_array_foreach(cfg, i, c) {
        const char *sub = str_field(c, "Subnet");
        bool v6 = sub != NULL && strchr(sub, ':') != NULL;
        if (v6 ? out->has_v6 : out->has_v4)
            return merr_set(err, MERR_INVALID, 0,
                            "more than one IPv%d subnet in a network is not supported by machine-engine",
                            v6 ? 6 : 4);
        if ((v6 ? parse_v6(c, out, err) : parse_v4(c, out, err)) < 0 ||
            check_aux(c, out, v6, err) < 0)
            return -1;
    }
    return 0;
}

size_t net_ipam_aux_v4(const json_t *config, uint32_t *out, size_t cap)
{
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(config, i, c) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(c, "AuxiliaryAddresses"), k, v) {
            struct merr ignored;
            if (n < cap && net_ip_parse(json_string_value(v), &out[n], &ignored) == 0)
                n++;
        }
    }
    return n;
}

size_t net_ipam_aux_v6(const json_t *config, struct net_ip6 *out, size_t cap)
{
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(config, i, c) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(c, "AuxiliaryAddresses"), k, v) {
            struct merr ignored;
            const char *s = json_string_value(v);
            if (n < cap && s != NULL && strchr(s, ':') != NULL && net_ip6_parse(s, &out[n], &ignored) == 0)
                n++;
        }
    }
    return n;
}
