/* IPv6 addresses, subnets and address allocation (EnableIPv6 networks, fixed IPv6Address). Pure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "network-priv.h"

void net_ip6_str(const struct net_ip6 *ip, char out[NET_IP6_STR])
{
    if (inet_ntop(AF_INET6, ip->b, out, NET_IP6_STR) == NULL)
        out[0] = '\0';
}

int net_ip6_parse(const char *s, struct net_ip6 *out, struct merr *err)
{
    if (s == NULL || inet_pton(AF_INET6, s, out->b) != 1)
        return merr_set(err, MERR_INVALID, 0, "invalid IPv6 address '%s'", s != NULL ? s : "");
    return 0;
}

bool net_ip6_is_zero(const struct net_ip6 *ip)
{
    static const struct net_ip6 zero;
    return memcmp(ip->b, zero.b, 16) == 0;
}

bool net_ip6_equal(const struct net_ip6 *a, const struct net_ip6 *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

/* a with every bit from prefix on cleared (set: set). */
static void apply_prefix(struct net_ip6 *a, unsigned prefix, bool set)
{
    for (unsigned bit = prefix; bit < 128; bit++) {
        uint8_t m = (uint8_t)(0x80u >> (bit % 8));
        if (set)
            a->b[bit / 8] |= m;
        else
            a->b[bit / 8] &= (uint8_t)~m;
    }
}

int net_cidr6_parse(const char *s, struct net_subnet6 *out, struct net_ip6 *host, struct merr *err)
{
    const char *slash = s != NULL ? strchr(s, '/') : NULL;
    if (slash == NULL || slash - s >= NET_IP6_STR)
        return merr_set(err, MERR_INVALID, 0, "invalid CIDR address '%s'", s != NULL ? s : "");
    char ip[NET_IP6_STR];
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    char *end = NULL;
    long prefix = strtol(slash + 1, &end, 10);
    struct net_ip6 a;
    /* down to /126: a gateway and one address at least */
    if (slash[1] == '\0' || *end != '\0' || prefix < 1 || prefix > 126 ||
        net_ip6_parse(ip, &a, err) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid CIDR address '%s'", s);
    if (host != NULL)
        *host = a;
    /* host bits are dropped, as dockerd's IPAM does (2001:db8::1/64 is 2001:db8::/64) */
    apply_prefix(&a, (unsigned)prefix, false);
    out->addr = a;
    out->prefix = (unsigned)prefix;
    return 0;
}

void net_subnet6_str(const struct net_subnet6 *s, char *out, size_t size)
{
    char ip[NET_IP6_STR];
    net_ip6_str(&s->addr, ip);
    snprintf(out, size, "%s/%u", ip, s->prefix);
}

bool net_subnet6_contains(const struct net_subnet6 *s, const struct net_ip6 *ip)
{
    struct net_ip6 a = *ip;
    apply_prefix(&a, s->prefix, false);
    return net_ip6_equal(&a, &s->addr);
}

bool net_subnet6_overlaps(const struct net_subnet6 *a, const struct net_subnet6 *b)
{
    return a->prefix <= b->prefix ? net_subnet6_contains(a, &b->addr)
                                  : net_subnet6_contains(b, &a->addr);
}

/* ip + 1; false when it wraps. */
static bool ip6_next(struct net_ip6 *ip)
{
    for (int i = 15; i >= 0; i--)
        if (++ip->b[i] != 0)
            return true;
    return false;
}

int net_ipam6_pick(const struct net_subnet6 *s, const struct net_subnet6 *range,
                   const struct net_ip6 *gateway, const struct net_ip6 *used, size_t n_used,
                   struct net_ip6 *out, struct merr *err)
{
    if (range == NULL)
        range = s;
    struct net_ip6 ip = range->addr;
    /* one candidate more than the taken ones (the gateway, the subnet's zero address and the
     * used ones) is free unless the range ends first */
    for (size_t tries = 0; tries < n_used + 3; tries++) {
        bool taken = net_ip6_equal(&ip, &s->addr) || (gateway != NULL && net_ip6_equal(&ip, gateway));
        for (size_t k = 0; k < n_used && !taken; k++)
            taken = net_ip6_equal(&ip, &used[k]);
        if (!taken) {
            *out = ip;
            return 0;
        }
        if (!ip6_next(&ip) || !net_subnet6_contains(range, &ip))
            break;
    }
    char sub[64];
    net_subnet6_str(range, sub, sizeof sub);
    return merr_set(err, MERR_EXISTS, 0, "no available IPv6 addresses on network subnet '%s'", sub);
}
