/* The texts of the container's /etc/hosts and /etc/resolv.conf. Pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static bool loopback_nameserver(const char *line)
{
    const char *p = line + strlen("nameserver");
    while (*p == ' ' || *p == '\t')
        p++;
    return strncmp(p, "127.", 4) == 0 || strncmp(p, "::1", 3) == 0;
}

char *net_resolv_text(const char *host_resolv, const char *dns_server)
{
    struct sbuf b = { 0 };
    sb_add(&b, "");
    if (dns_server != NULL) {
        sb_add(&b, "nameserver ");
        sb_add(&b, dns_server);
        /* like dockerd's embedded DNS: "web" is asked as it is before any search domain */
        sb_add(&b, "\noptions ndots:0\n");
    }
    const char *p = host_resolv != NULL ? host_resolv : "";
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, len);
        if (line == NULL)
            abort();
        bool ns = strncmp(line, "nameserver", 10) == 0 && (line[10] == ' ' || line[10] == '\t');
        bool keep = ns ? dns_server == NULL && !loopback_nameserver(line)
                       : strncmp(line, "search", 6) == 0 || strncmp(line, "options", 7) == 0;
        if (keep) {
            sb_add(&b, line);
            sb_add(&b, "\n");
        }
        free(line);
        p += len + (nl != NULL);
    }
    return b.s;
}
