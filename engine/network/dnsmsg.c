/* DNS messages of the embedded DNS server: the question of a query (names decoded by glibc's
 * dn_expand, which bounds pointers and loops), replies with A records, and the nameservers of a
 * resolv.conf. Pure. */
#include <arpa/nameser.h>
#include <ctype.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "network-priv.h"

#define HDR_LEN 12
#define TTL_S 600

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int net_dns_query_parse(const uint8_t *msg, size_t len, struct net_dns_query *q, struct merr *err)
{
    memset(q, 0, sizeof *q);
    if (len < HDR_LEN)
        return merr_set(err, MERR_INVALID, 0, "dns message of %zu bytes is too short", len);
    if (len > NET_DNS_MAX_MSG)
        return merr_set(err, MERR_INVALID, 0, "dns message of %zu bytes is too long", len);
    q->id = get16(msg);
    uint16_t flags = get16(msg + 2);
    q->rd = (flags & 0x0100) != 0;
    q->opcode = (flags >> 11) & 0xf;
    if (flags & 0x8000)
        return merr_set(err, MERR_INVALID, 0, "dns message is a response");
    if (q->opcode != 0)
        return merr_set(err, MERR_UNSUPPORTED, 0, "dns opcode %u is not supported", q->opcode);
    if (get16(msg + 4) != 1 || get16(msg + 6) != 0 || get16(msg + 8) != 0)
        return merr_set(err, MERR_INVALID, 0, "dns query must ask exactly one question");
    char name[NET_DNS_NAME_MAX];
    int n = dn_expand(msg, msg + len, msg + HDR_LEN, name, sizeof name);
    if (n < 0 || (size_t)HDR_LEN + (size_t)n + 4 > len)
        return merr_set(err, MERR_INVALID, 0, "dns question is malformed");
    const uint8_t *p = msg + HDR_LEN + n;
    q->qtype = get16(p);
    q->qclass = get16(p + 2);
    q->question_end = (size_t)(p + 4 - msg);
    size_t k = 0;
    for (; name[k] != '\0'; k++)
        q->name[k] = (char)tolower((unsigned char)name[k]);
    q->name[k] = '\0';
    return 0;
}

/* The reply to query: rcode and n records of type with rdlen bytes each from rdata (as many
 * as fit in 512 bytes). */
static size_t reply_records(const uint8_t *query, const struct net_dns_query *q, int rcode,
                            uint16_t type, size_t rdlen, const uint8_t *rdata, size_t n,
                            uint8_t *out, size_t cap)
{
    size_t qlen = q->question_end - HDR_LEN, rr = 12 + rdlen;
    if (cap < q->question_end || q->question_end > NET_DNS_UDP_MAX)
        return 0;
    /* a plain UDP reply stays within 512 bytes: fewer records rather than a truncated one */
    while (n > 0 && q->question_end + rr * n > NET_DNS_UDP_MAX)
        n--;
    if (q->question_end + rr * n > cap)
        return 0;
    put16(out, q->id);
    uint16_t flags = 0x8000 /* QR */ | 0x0080 /* RA */ | (uint16_t)(rcode & 0xf);
    if (q->rd)
        flags |= 0x0100;
    if (rcode == ns_r_noerror || rcode == ns_r_nxdomain)
        flags |= 0x0400; /* AA: container names are ours */
    put16(out + 2, flags);
    put16(out + 4, 1);
    put16(out + 6, (uint16_t)n);
    put16(out + 8, 0);
    put16(out + 10, 0);
    memcpy(out + HDR_LEN, query + HDR_LEN, qlen);
    uint8_t *p = out + q->question_end;
    for (size_t i = 0; i < n; i++) {
        put16(p, 0xc000 | HDR_LEN); /* the name: a pointer to the question's */
        put16(p + 2, type);
        put16(p + 4, ns_c_in);
        put16(p + 6, 0);
        put16(p + 8, TTL_S);
        put16(p + 10, (uint16_t)rdlen);
        memcpy(p + 12, rdata + i * rdlen, rdlen);
        p += rr;
    }
    return (size_t)(p - out);
}

size_t net_dns_reply_build(const uint8_t *query, const struct net_dns_query *q, int rcode,
                           const uint32_t *ips, size_t n_ips, uint8_t *out, size_t cap)
{
    bool a = q->qclass == ns_c_in && (q->qtype == ns_t_a || q->qtype == ns_t_any);
    size_t n = a ? n_ips : 0;
    if (n > NET_DNS_UDP_MAX / 16)
        n = NET_DNS_UDP_MAX / 16;
    uint8_t rdata[NET_DNS_UDP_MAX / 16 * 4];
    for (size_t i = 0; i < n; i++) {
        rdata[4 * i] = (uint8_t)(ips[i] >> 24);
        rdata[4 * i + 1] = (uint8_t)(ips[i] >> 16);
        rdata[4 * i + 2] = (uint8_t)(ips[i] >> 8);
        rdata[4 * i + 3] = (uint8_t)ips[i];
    }
    return reply_records(query, q, rcode, ns_t_a, 4, rdata, n, out, cap);
}

size_t net_dns_reply6_build(const uint8_t *query, const struct net_dns_query *q, int rcode,
                            const struct net_ip6 *ips, size_t n_ips, uint8_t *out, size_t cap)
{
    bool aaaa = q->qclass == ns_c_in && q->qtype == ns_t_aaaa;
    return reply_records(query, q, rcode, ns_t_aaaa, 16, (const uint8_t *)ips, aaaa ? n_ips : 0,
                         out, cap);
}

size_t net_dns_error_build(const uint8_t *query, size_t len, int rcode, uint8_t *out, size_t cap)
{
    if (len < HDR_LEN || cap < HDR_LEN)
        return 0;
    memset(out, 0, HDR_LEN);
    memcpy(out, query, 2);
    out[2] = (uint8_t)(0x80 | (query[2] & 0x79)); /* QR, the opcode and RD as asked */
    out[3] = (uint8_t)(0x80 | (rcode & 0xf));
    return HDR_LEN;
}

size_t net_resolv_nameservers(const char *text, uint32_t *out, size_t cap)
{
    size_t n = 0;
    const char *p = text != NULL ? text : "";
    while (*p != '\0' && n < cap) {
        size_t len = strcspn(p, "\n");
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p += len + (p[len] == '\n');
        char addr[64];
        if (sscanf(line, "nameserver %63s", addr) != 1)
            continue;
        uint32_t ip;
        struct merr ignored;
        if (net_ip_parse(addr, &ip, &ignored) == 0 && ip != 0)
            out[n++] = ip;
    }
    return n;
}

char **net_resolv_search(const char *text)
{
    char **v = NULL;
    const char *p = text != NULL ? text : "";
    while (*p != '\0') {
        size_t len = strcspn(p, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p += len + (p[len] == '\n');
        char *save = NULL;
        char *word = strtok_r(line, " \t\r", &save);
        /* the last search or domain line wins, as in resolv.conf(5) */
        if (word == NULL || (strcmp(word, "search") != 0 && strcmp(word, "domain") != 0))
            continue;
        strv_free(v);
        v = NULL;
        while ((word = strtok_r(NULL, " \t\r", &save)) != NULL) {
            for (char *c = word; *c != '\0'; c++)
                *c = (char)tolower((unsigned char)*c);
            size_t wl = strlen(word);
            if (wl > 0 && word[wl - 1] == '.')
                word[wl - 1] = '\0';
            if (word[0] != '\0')
                v = strv_push(v, word);
        }
    }
    return v;
}
