/* IPv4 addresses, subnets and address allocation. Pure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "network-priv.h"

void net_ip_str(uint32_t ip, char out[NET_IP_STR])
{
    snprintf(out, NET_IP_STR, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

int net_ip_parse(const char *s, uint32_t *out, struct merr *err)
{
    struct in_addr a;
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return merr_set(err, MERR_INVALID, 0, "invalid IPv4 address '%s'", s != NULL ? s : "");
    *out = ntohl(a.s_addr);
    return 0;
}

uint32_t net_subnet_mask(unsigned prefix)
{
    return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int net_cidr_parse(const char *s, struct net_subnet *out, uint32_t *host, struct merr *err)
{
    const char *slash = s != NULL ? strchr(s, '/') : NULL;
    if (slash == NULL || slash - s >= NET_IP_STR)
        return merr_set(err, MERR_INVALID, 0, "invalid CIDR address '%s'", s != NULL ? s : "");
    char ip[NET_IP_STR];
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    char *end = NULL;
    long prefix = strtol(slash + 1, &end, 10);
    uint32_t addr = 0;
    if (slash[1] == '\0' || *end != '\0' || prefix < 1 || prefix > 30 ||
        net_ip_parse(ip, &addr, err) < 0)
        return merr_set(err, MERR_INVALID, 0, "invalid CIDR address '%s'", s);
    uint32_t mask = net_subnet_mask((unsigned)prefix);
    if (host == NULL && (addr & ~mask) != 0)
        return merr_set(err, MERR_INVALID, 0, "invalid subnet '%s': host bits are set", s);
    if (host != NULL)
        *host = addr;
    out->addr = addr & mask;
    out->prefix = (unsigned)prefix;
    return 0;
}

void net_subnet_str(const struct net_subnet *s, char *out, size_t size)
{
    char ip[NET_IP_STR];
    net_ip_str(s->addr, ip);
    snprintf(out, size, "%s/%u", ip, s->prefix);
}

bool net_subnet_contains(const struct net_subnet *s, uint32_t ip)
{
    return (ip & net_subnet_mask(s->prefix)) == s->addr;
}

bool net_subnet_overlaps(const struct net_subnet *a, const struct net_subnet *b)
{
    unsigned p = a->prefix < b->prefix ? a->prefix : b->prefix;
    uint32_t m = net_subnet_mask(p);
    return (a->addr & m) == (b->addr & m);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int net_ipam_pick_range(const struct net_subnet *s, const struct net_subnet *range, uint32_t gateway,
                        const uint32_t *used, size_t n_used, uint32_t *out, struct merr *err)
{
    if (range == NULL)
        range = s;
    uint32_t *sorted = calloc(n_used + 1, sizeof *sorted);
    if (sorted == NULL)
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    if (n_used > 0)
        memcpy(sorted, used, n_used * sizeof *sorted);
    qsort(sorted, n_used, sizeof *sorted, cmp_u32);
    uint32_t broadcast = s->addr | ~net_subnet_mask(s->prefix);
    uint32_t last = range->addr | ~net_subnet_mask(range->prefix);
    size_t k = 0;
    for (uint64_t ip = range->addr; ip <= last; ip++) {
        while (k < n_used && sorted[k] < ip)
            k++;
        if (ip == s->addr || ip == broadcast || ip == gateway || (k < n_used && sorted[k] == ip))
            continue;
        free(sorted);
        *out = (uint32_t)ip;
        return 0;
    }
    free(sorted);
    char sub[32];
    net_subnet_str(range, sub, sizeof sub);
    return merr_set(err, MERR_EXISTS, 0, "no available IPv4 addresses on network subnet '%s'", sub);
}

int net_ipam_pick(const struct net_subnet *s, uint32_t gateway, const uint32_t *used, size_t n_used,
                  uint32_t *out, struct merr *err)
{
    return net_ipam_pick_range(s, NULL, gateway, used, n_used, out, err);
}

int net_pool_pick(const struct net_subnet *pool, unsigned size, const struct net_subnet *taken,
                  size_t n_taken, struct net_subnet *out, struct merr *err)
{
    if (size < pool->prefix || size > 30)
        return merr_set(err, MERR_INVALID, 0, "invalid address pool size %u", size);
    uint64_t count = 1ull << (size - pool->prefix);
    uint32_t step = 1u << (32 - size);
    for (uint64_t i = 0; i < count; i++) {
        struct net_subnet cand = { pool->addr + (uint32_t)i * step, size };
        bool free_ = true;
        for (size_t k = 0; k < n_taken && free_; k++)
            free_ = !net_subnet_overlaps(&cand, &taken[k]);
        if (free_) {
            *out = cand;
            return 0;
        }
    }
    return merr_set(err, MERR_EXISTS, 0,
                    "all predefined address pools have been fully subnetted");
}

int net_pool_parse(const char *s, struct net_subnet *base, unsigned *size, struct merr *err)
{
    char buf[128];
    if (s == NULL || snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf)
        return merr_set(err, MERR_INVALID, 0, "invalid address pool '%s'", s != NULL ? s : "");
    bool have_base = false;
    *size = 0;
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
        if (strncmp(kv, "base=", 5) == 0) {
            if (net_cidr_parse(kv + 5, base, NULL, err) < 0)
                return -1;
            have_base = true;
        } else if (strncmp(kv, "size=", 5) == 0) {
            char *end = NULL;
            long v = strtol(kv + 5, &end, 10);
            if (kv[5] == '\0' || *end != '\0' || v < 1 || v > 30)
                return merr_set(err, MERR_INVALID, 0, "invalid address pool size in '%s'", s);
            *size = (unsigned)v;
        } else {
            return merr_set(err, MERR_INVALID, 0, "invalid address pool '%s': unknown field", s);
        }
    }
    if (!have_base || *size == 0 || *size < base->prefix)
        return merr_set(err, MERR_INVALID, 0,
                        "invalid address pool '%s': want base=CIDR,size=N with N >= the base prefix", s);
    return 0;
}
