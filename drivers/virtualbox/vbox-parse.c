/* Pure parsers of VBoxManage's output (the formats of VirtualBox's manual, chapter 8, and of the
 * samples in tests/unit/data/vbox/) and the host-only network choice. No I/O. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "vbox-priv.h"

static void copy_trimmed(const char *p, size_t len, char *out, size_t out_len)
{
    while (len > 0 && isspace((unsigned char)*p)) {
        p++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    if (out_len == 0)
        return;
    if (len >= out_len)
        len = out_len - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

int vbox_parse_version(const char *out, int *major, int *minor, struct merr *err)
{
    for (const char *line = out; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        int a, b;
        if (isdigit((unsigned char)line[0]) && sscanf(line, "%d.%d", &a, &b) == 2) {
            *major = a;
            *minor = b;
            return 0;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return merr_set(err, MERR_PROTOCOL, 0, "cannot read VBoxManage's version from '%.60s'",
                    out != NULL ? out : "");
}

bool vbox_info_value(const char *info, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    for (const char *line = info; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl != NULL ? (size_t)(nl - line) : strlen(line);
        const char *k = line;
        bool quoted = k[0] == '"';
        if (quoted)
            k++;
        if (strncmp(k, key, klen) == 0 && (quoted ? k[klen] == '"' && k[klen + 1] == '='
                                                  : k[klen] == '=')) {
            const char *v = k + klen + (quoted ? 2 : 1);
            size_t vlen = llen - (size_t)(v - line);
            if (vlen > 0 && v[vlen - 1] == '\r')
                vlen--;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            copy_trimmed(v, vlen, out, len);
            return true;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

enum machine_state vbox_state_from_info(const char *info)
{
    char st[32];
    if (!vbox_info_value(info, "VMState", st, sizeof st))
        return MSTATE_ERROR;
    static const struct { const char *name; enum machine_state state; } map[] = {
        { "running", MSTATE_RUNNING },   { "paused", MSTATE_PAUSED },
        { "saved", MSTATE_SAVED },       { "poweroff", MSTATE_STOPPED },
        { "aborted", MSTATE_STOPPED },   { "stopping", MSTATE_STOPPING },
        { "starting", MSTATE_STARTING }, { "restoring", MSTATE_STARTING },
        { "saving", MSTATE_STOPPING },   { "gurumeditation", MSTATE_ERROR },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(st, map[i].name) == 0)
            return map[i].state;
    return MSTATE_ERROR;
}

/* Calls field(opaque, entry index, key, value) for every "Key: value" line; each first_key line
 * starts the next entry (lines before the first are ignored). Returns the number of entries. */
typedef void (*kv_fn)(void *opaque, size_t idx, const char *key, const char *val);
static size_t parse_blocks(const char *out, const char *first_key, kv_fn field, void *opaque)
{
    size_t n = 0;
    for (const char *line = out; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl != NULL ? (size_t)(nl - line) : strlen(line);
        const char *colon = memchr(line, ':', llen);
        if (colon != NULL) {
            char key[64], val[256];
            copy_trimmed(line, (size_t)(colon - line), key, sizeof key);
            copy_trimmed(colon + 1, llen - (size_t)(colon + 1 - line), val, sizeof val);
            if (strcmp(key, first_key) == 0)
                n++;
            if (n > 0)
                field(opaque, n - 1, key, val);
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return n;
}

struct grow {
    void *items;
    size_t size, cap;
    bool oom;
};

static void *grow_at(struct grow *g, size_t idx)
{
    if (idx >= g->cap) {
        size_t cap = idx + 8;
        void *p = realloc(g->items, cap * g->size);
        if (p == NULL) {
            g->oom = true;
            return NULL;
        }
        memset((char *)p + g->cap * g->size, 0, (cap - g->cap) * g->size);
        g->items = p;
        g->cap = cap;
    }
    return (char *)g->items + idx * g->size;
}

#define SET(field_) snprintf(e->field_, sizeof e->field_, "%s", val)

static void hostonly_field(void *opaque, size_t idx, const char *key, const char *val)
{
    struct vbox_hostonlyif *e = grow_at(opaque, idx);
    if (e == NULL)
        return;
    if (strcmp(key, "Name") == 0)
        SET(name);
    else if (strcmp(key, "IPAddress") == 0)
        SET(ip);
    else if (strcmp(key, "NetworkMask") == 0)
        SET(mask);
    else if (strcmp(key, "VBoxNetworkName") == 0)
        SET(netname);
}

/* The blocks of a `list` answer as an array of `size`-byte records filled by field. */
static int parse_list(const char *out, const char *first_key, kv_fn field, size_t size,
                      void **list, size_t *n, struct merr *err)
{
    struct grow g = { .size = size };
    *n = parse_blocks(out, first_key, field, &g);
    if (g.oom) {
        free(g.items);
        return merr_set(err, MERR_NOMEM, 0, "out of memory");
    }
    *list = g.items;
    return 0;
}

int vbox_parse_hostonlyifs(const char *out, struct vbox_hostonlyif **list, size_t *n,
                           struct merr *err)
{
    return parse_list(out, "Name", hostonly_field, sizeof **list, (void **)list, n, err);
}

static void dhcp_field(void *opaque, size_t idx, const char *key, const char *val)
{
    struct vbox_dhcpserver *e = grow_at(opaque, idx);
    if (e == NULL)
        return;
    if (strcmp(key, "NetworkName") == 0)
        SET(netname);
    else if (strcmp(key, "IP") == 0 || strcmp(key, "Dhcpd IP") == 0)
        SET(ip);
    else if (strcmp(key, "NetworkMask") == 0)
        SET(mask);
    else if (strcasecmp(key, "lowerIPAddress") == 0)
        SET(lower);
    else if (strcasecmp(key, "upperIPAddress") == 0)
        SET(upper);
    else if (strcmp(key, "Enabled") == 0)
        e->enabled = strcmp(val, "Yes") == 0;
}

int vbox_parse_dhcpservers(const char *out, struct vbox_dhcpserver **list, size_t *n,
                           struct merr *err)
{
    return parse_list(out, "NetworkName", dhcp_field, sizeof **list, (void **)list, n, err);
}

bool vbox_list_vms_has(const char *out, const char *name)
{
    size_t len = strlen(name);
    for (const char *line = out; line != NULL && *line != '\0';) {
        if (line[0] == '"' && strncmp(line + 1, name, len) == 0 && line[len + 1] == '"')
            return true;
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return false;
}

/* The value after "prefix" on a line that starts with it. */
static bool line_value(const char *out, const char *prefix, char *val, size_t len)
{
    size_t plen = strlen(prefix);
    for (const char *line = out; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (llen > plen && strncmp(line, prefix, plen) == 0) {
            copy_trimmed(line + plen, llen - plen, val, len);
            return val[0] != '\0';
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

bool vbox_guestproperty_value(const char *out, char *val, size_t len)
{
    return line_value(out, "Value:", val, len);
}

bool vbox_lease_ip(const char *out, char *ip, size_t len)
{
    struct in_addr a;
    return line_value(out, "IP Address:", ip, len) && inet_pton(AF_INET, ip, &a) == 1;
}

bool vbox_created_hostonlyif(const char *out, char *name, size_t len)
{
    const char *p = strstr(out, "Interface '");
    if (p == NULL)
        return false;
    p += strlen("Interface '");
    const char *q = strchr(p, '\'');
    if (q == NULL || q == p || strncmp(q, "' was successfully created", 26) != 0)
        return false;
    copy_trimmed(p, (size_t)(q - p), name, len);
    return true;
}

bool vbox_cpuinfo_has_vtx(const char *cpuinfo)
{
    for (const char *line = cpuinfo; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (strncmp(line, "flags", 5) == 0) {
            for (const char *w = line; w < line + llen;) {
                while (w < line + llen && (*w == ' ' || *w == '\t' || *w == ':'))
                    w++;
                const char *e = w;
                while (e < line + llen && *e != ' ' && *e != '\t')
                    e++;
                if ((e - w == 3) && (strncmp(w, "vmx", 3) == 0 || strncmp(w, "svm", 3) == 0))
                    return true;
                w = e;
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

int vbox_parse_cidr(const char *cidr, uint32_t *addr, int *prefix, struct merr *err)
{
    char ip[16];
    int len = -1, used = 0;
    struct in_addr a;
    const char *slash = cidr != NULL ? strchr(cidr, '/') : NULL;
    if (slash == NULL || slash - cidr >= (long)sizeof ip)
        return merr_set(err, MERR_INVALID, 0, "'%s' is not an IPv4 CIDR (a.b.c.d/len)", cidr ? cidr : "");
    memcpy(ip, cidr, (size_t)(slash - cidr));
    ip[slash - cidr] = '\0';
    if (inet_pton(AF_INET, ip, &a) != 1 || sscanf(slash + 1, "%d%n", &len, &used) != 1 ||
        slash[1 + used] != '\0' || len < 1 || len > 30)
        return merr_set(err, MERR_INVALID, 0, "'%s' is not an IPv4 CIDR (a.b.c.d/len)", cidr);
    *addr = ntohl(a.s_addr);
    *prefix = len;
    return 0;
}

void vbox_ip_text(uint32_t addr, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255);
}

static uint32_t mask_of(int prefix)
{
    return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

static bool overlaps(uint32_t a, int pa, uint32_t b, int pb)
{
    uint32_t m = mask_of(pa < pb ? pa : pb);
    return (a & m) == (b & m);
}

int vbox_pick_hostonlyif(const char *cidr, const struct vbox_hostonlyif *ifs, size_t n_ifs,
                         const char *const *host_nets, size_t n_host,
                         const struct vbox_hostonlyif **found, struct merr *err)
{
    uint32_t want;
    int prefix;
    *found = NULL;
    if (vbox_parse_cidr(cidr, &want, &prefix, err) < 0)
        return merr_prefix(err, "--virtualbox-hostonly-cidr");
    if ((want & ~mask_of(prefix)) == 0)
        return merr_set(err, MERR_INVALID, 0,
                        "--virtualbox-hostonly-cidr '%s' names a network, not the host's address "
                        "on it (e.g. 192.168.99.1/24)", cidr);
    for (size_t i = 0; i < n_ifs; i++) {
        struct in_addr a, m;
        if (inet_pton(AF_INET, ifs[i].ip, &a) != 1 || inet_pton(AF_INET, ifs[i].mask, &m) != 1)
            continue;
        uint32_t ip = ntohl(a.s_addr);
        int p = __builtin_popcount(ntohl(m.s_addr));
        if (ip == want && p == prefix) {
            if (*found == NULL)
                *found = &ifs[i];
        } else if (overlaps(ip, p, want, prefix)) {
            return merr_set(err, MERR_INVALID, 0,
                            "host-only CIDR %s overlaps the network of VirtualBox host-only "
                            "interface '%s' (%s/%d)", cidr, ifs[i].name, ifs[i].ip, p);
        }
    }
    for (size_t i = 0; i < n_host; i++) {
        uint32_t net;
        int p;
        struct merr ignored = MERR_INIT;
        if (vbox_parse_cidr(host_nets[i], &net, &p, &ignored) == 0 && overlaps(net, p, want, prefix))
            return merr_set(err, MERR_INVALID, 0,
                            "host-only CIDR %s overlaps the host network %s: choose another "
                            "--virtualbox-hostonly-cidr", cidr, host_nets[i]);
    }
    return 0;
}
