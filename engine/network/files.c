/* The texts of the container's /etc/hosts and /etc/resolv.conf. Pure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "network-priv.h"

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *text)
{
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        char *g = realloc(b->s, b->cap);
        if (g == NULL)
            abort();
        b->s = g;
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

char *net_hosts_text(const struct net_host_entry *entries, size_t n)
{
    struct sbuf b = { 0 };
    sb_add(&b, "127.0.0.1\tlocalhost\n"
               "::1\tlocalhost ip6-localhost ip6-loopback\n"
               "fe00::0\tip6-localnet\n"
               "ff00::0\tip6-mcastprefix\n"
               "ff02::1\tip6-allnodes\n"
               "ff02::2\tip6-allrouters\n");
    for (size_t i = 0; i < n; i++) {
        if (entries[i].names == NULL || entries[i].names[0] == NULL)
            continue;
        char ip[NET_IP_STR];
        net_ip_str(entries[i].ip, ip);
        sb_add(&b, ip);
        for (size_t k = 0; entries[i].names[k] != NULL; k++) {
            /* a name that could break the file's syntax is left out */
            if (strpbrk(entries[i].names[k], " \t\n#") != NULL || entries[i].names[k][0] == '\0')
                continue;
            sb_add(&b, k == 0 ? "\t" : " ");
            sb_add(&b, entries[i].names[k]);
        }
        sb_add(&b, "\n");
    }
    return b.s;
}

static bool loopback_nameserver(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

static void add_lines(struct sbuf *b, const char *key, char *const *v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        sb_add(b, key);
        sb_add(b, " ");
        sb_add(b, v[i]);
        sb_add(b, "\n");
    }
}

char *net_resolv_text(const char *host_resolv, bool embedded, const struct net_dns_settings *user)
{
    struct sbuf b = { 0 };
    sb_add(&b, "");
    bool own_servers = user != NULL && user->servers != NULL && user->servers[0] != NULL;
    bool own_search = user != NULL && user->search != NULL && user->search[0] != NULL;
    bool own_options = user != NULL && user->options != NULL && user->options[0] != NULL;
    if (embedded) {
        /* like dockerd's: "web" is asked as it is before any search domain */
        sb_add(&b, "nameserver " NET_DNS_ADDR "\noptions ndots:0\n");
    } else if (own_servers) {
        add_lines(&b, "nameserver", user->servers);
    }
    size_t n_servers = 0;
    const char *p = host_resolv != NULL ? host_resolv : "";
    while (*p != '\0') {
        size_t len = strcspn(p, "\n");
        char *line = strndup(p, len);
        if (line == NULL)
            abort();
        p += len + (p[len] == '\n');
        char addr[64] = "";
        bool ns = sscanf(line, "nameserver %63s", addr) == 1;
        bool search = strncmp(line, "search", 6) == 0 || strncmp(line, "domain", 6) == 0;
        bool options = strncmp(line, "options", 7) == 0;
        /* a loopback resolver of the host cannot work from inside */
        bool keep = ns ? !embedded && !own_servers && !loopback_nameserver(addr)
                       : (search && !own_search) || (options && !own_options);
        if (keep) {
            sb_add(&b, line);
            sb_add(&b, "\n");
            n_servers += ns;
        }
        free(line);
    }
    if (!embedded && !own_servers && n_servers == 0) /* dockerd's fallback */
        sb_add(&b, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    if (own_search)
        add_lines(&b, "search", user->search);
    if (own_options)
        add_lines(&b, "options", user->options);
    return b.s;
}

int net_extra_host_parse(const char *spec, char **name, char **ip, struct merr *err)
{
    /* the name never holds ':' or '=', the address may (IPv6): split at the first one */
    size_t k = strcspn(spec, ":=");
    const char *addr = spec + k + 1;
    unsigned char buf[16];
    bool name_ok = k > 0 && k < 256 && spec[k] != '\0';
    for (size_t i = 0; name_ok && i < k; i++)
        name_ok = strchr(" \t\r\n#", spec[i]) == NULL;
    if (!name_ok)
        return merr_set(err, MERR_INVALID, 0, "invalid extra host '%s': want NAME:IP", spec);
    if (addr[0] == '[' && addr[strlen(addr) - 1] == ']') { /* docker 28 writes [::1] too */
        char inner[64];
        snprintf(inner, sizeof inner, "%.*s", (int)strlen(addr) - 2, addr + 1);
        if (inet_pton(AF_INET6, inner, buf) != 1)
            return merr_set(err, MERR_INVALID, 0, "invalid IP address in add-host: '%s'", addr);
        *ip = xstrdup(inner);
    } else if (strcmp(addr, "host-gateway") == 0 || inet_pton(AF_INET, addr, buf) == 1 ||
               inet_pton(AF_INET6, addr, buf) == 1) {
        *ip = xstrdup(addr);
    } else {
        return merr_set(err, MERR_INVALID, 0, "invalid IP address in add-host: '%s'", addr);
    }
    *name = strndup(spec, k);
    if (*name == NULL)
        abort();
    return 0;
}

char *net_extra_hosts_text(char *const *specs, uint32_t gateway)
{
    struct sbuf b = { 0 };
    sb_add(&b, "");
    for (size_t i = 0; specs != NULL && specs[i] != NULL; i++) {
        char *name = NULL, *ip = NULL;
        struct merr ignored;
        if (net_extra_host_parse(specs[i], &name, &ip, &ignored) < 0)
            continue;
        char gw[NET_IP_STR];
        net_ip_str(gateway, gw);
        sb_add(&b, strcmp(ip, "host-gateway") == 0 ? gw : ip);
        sb_add(&b, "\t");
        sb_add(&b, name);
        sb_add(&b, "\n");
        free(name);
        free(ip);
    }
    return b.s;
}
