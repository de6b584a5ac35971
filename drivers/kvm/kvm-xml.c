/* Pure pieces of the kvm driver: libvirt XML documents, the choice of a free subnet, state
 * mapping and the config disk. Unit-tested against golden files. */
#include <arpa/inet.h>
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "kvm-priv.h"
#include "machine-os-config.h"

/* XML-escaped copy (text and attribute values). */
static char *esc(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : (*p == '\'' || *p == '"') ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (const char *p = s; *p; p++) {
        const char *r = *p == '&'    ? "&amp;"
                        : *p == '<'  ? "&lt;"
                        : *p == '>'  ? "&gt;"
                        : *p == '\'' ? "&apos;"
                        : *p == '"'  ? "&quot;"
                                     : NULL;
        if (r != NULL) {
            strcpy(o, r);
            o += strlen(r);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

char *kvm_domain_xml(const struct kvm_domain_spec *s)
{
    auto_free char *name = esc(s->name), *type = esc(s->type), *iso = esc(s->iso_path),
                   *data = esc(s->data_path), *cfg = esc(s->config_path), *net = esc(s->network);
    if (!name || !type || !iso || !data || !cfg || !net)
        return NULL;
    auto_free char *log = s->console_log != NULL ? esc(s->console_log) : NULL;
    auto_free char *log_el =
        log != NULL ? xasprintf("      <log file='%s' append='off'/>\n", log) : NULL;
    return xasprintf(
        "<domain type='%s'>\n"
        "  <name>%s</name>\n"
        "  <memory unit='MiB'>%u</memory>\n"
        "  <vcpu>%u</vcpu>\n"
        "  <os>\n"
        "    <type arch='x86_64' machine='pc'>hvm</type>\n"
        "    <boot dev='cdrom'/>\n"
        "  </os>\n"
        "  <features><acpi/><apic/></features>\n"
        "  <cpu mode='%s'/>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='%s'/>\n"
        "      <target dev='hdc' bus='ide'/>\n"
        "      <readonly/>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='%s'/>\n"
        "      <target dev='vda' bus='virtio'/>\n"
        "      <serial>machine-data</serial>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='%s'/>\n"
        "      <target dev='vdb' bus='virtio'/>\n"
        "      <serial>machine-config</serial>\n"
        "      <readonly/>\n"
        "    </disk>\n"
        "    <interface type='network'>\n"
        "      <source network='%s'/>\n"
        "      <model type='virtio'/>\n"
        "    </interface>\n"
        "    <serial type='pty'>\n"
        "%s"
        "      <target port='0'/>\n"
        "    </serial>\n"
        "    <console type='pty'><target type='serial' port='0'/></console>\n"
        "    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n"
        "  </devices>\n"
        "</domain>\n",
        type, name, s->memory_mib, s->cpus,
        strcmp(s->type, "kvm") == 0 ? "host-passthrough" : "host-model", iso, data, cfg, net,
        log_el != NULL ? log_el : "");
}

char *kvm_network_xml(const char *name, const char *prefix)
{
    auto_free char *n = esc(name), *p = esc(prefix);
    if (n == NULL || p == NULL)
        return NULL;
    return xasprintf("<network>\n"
                     "  <name>%s</name>\n"
                     "  <forward mode='nat'/>\n"
                     "  <ip address='%s.1' netmask='255.255.255.0'>\n"
                     "    <dhcp>\n"
                     "      <range start='%s.2' end='%s.254'/>\n"
                     "    </dhcp>\n"
                     "  </ip>\n"
                     "</network>\n",
                     n, p, p, p);
}

char *kvm_volume_xml(const char *name, uint64_t capacity)
{
    auto_free char *n = esc(name);
    if (n == NULL)
        return NULL;
    return xasprintf("<volume>\n"
                     "  <name>%s</name>\n"
                     "  <capacity unit='bytes'>%llu</capacity>\n"
                     "  <allocation unit='bytes'>0</allocation>\n"
                     "  <target><format type='raw'/></target>\n"
                     "</volume>\n",
                     n, (unsigned long long)capacity);
}

char *kvm_pool_xml(const char *name, const char *path)
{
    auto_free char *n = esc(name), *p = esc(path);
    if (n == NULL || p == NULL)
        return NULL;
    return xasprintf("<pool type='dir'>\n"
                     "  <name>%s</name>\n"
                     "  <target><path>%s</path></target>\n"
                     "</pool>\n",
                     n, p);
}

/* "a.b.c.d/len" → network and mask (host order). */
static bool parse_cidr(const char *s, uint32_t *net, uint32_t *mask)
{
    char ip[32];
    unsigned len;
    if (sscanf(s, "%31[0-9.]/%u", ip, &len) != 2 || len > 32)
        return false;
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return false;
    *mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
    *net = ntohl(a.s_addr) & *mask;
    return true;
}

int kvm_pick_subnet(const char *const *used, size_t n_used, char out[16], struct merr *err)
{
    for (unsigned n = 42; n < 255; n++) {
        uint32_t cand = (192u << 24) | (168u << 16) | (n << 8), cmask = 0xffffff00u;
        bool clash = false;
        for (size_t i = 0; i < n_used && !clash; i++) {
            uint32_t net, mask;
            if (!parse_cidr(used[i], &net, &mask))
                continue;
            uint32_t m = mask < cmask ? mask : cmask; /* the wider of the two */
            clash = (net & m) == (cand & m);
        }
        if (!clash) {
            snprintf(out, 16, "192.168.%u", n);
            return 0;
        }
    }
    return merr_set(err, MERR_NOT_FOUND, 0, "no free 192.168.N.0/24 subnet for the machine network");
}

/* The value of attr in the tag starting at tag (up to its '>'), or "" */
static void attr_of(const char *tag, const char *attr, char *out, size_t len)
{
    out[0] = '\0';
    const char *end = strchr(tag, '>');
    char key[32];
    snprintf(key, sizeof key, " %s=", attr);
    const char *p = strstr(tag, key);
    if (p == NULL || (end != NULL && p > end))
        return;
    p += strlen(key);
    char q = *p;
    if (q != '\'' && q != '"')
        return;
    const char *close = strchr(p + 1, q);
    if (close == NULL || (size_t)(close - p - 1) >= len)
        return;
    memcpy(out, p + 1, (size_t)(close - p - 1));
    out[close - p - 1] = '\0';
}

int kvm_network_xml_subnets(const char *xml, char ***list, size_t *n, struct merr *err)
{
    for (const char *p = strstr(xml, "<ip "); p != NULL; p = strstr(p + 1, "<ip ")) {
        char addr[64], netmask[64], prefix[8], family[16];
        attr_of(p, "address", addr, sizeof addr);
        attr_of(p, "netmask", netmask, sizeof netmask);
        attr_of(p, "prefix", prefix, sizeof prefix);
        attr_of(p, "family", family, sizeof family);
        if (addr[0] == '\0' || (family[0] != '\0' && strcmp(family, "ipv4") != 0) || strchr(addr, ':'))
            continue;
        unsigned len = 24;
        struct in_addr m;
        if (prefix[0] != '\0') {
            len = (unsigned)atoi(prefix);
        } else if (netmask[0] != '\0' && inet_pton(AF_INET, netmask, &m) == 1) {
            len = (unsigned)__builtin_popcount(ntohl(m.s_addr));
        }
        char **grown = realloc(*list, (*n + 1) * sizeof *grown);
        if (grown == NULL)
            return merr_set(err, MERR_NOMEM, 0, "out of memory");
        *list = grown;
        grown[(*n)++] = xasprintf("%s/%u", addr, len);
    }
    return 0;
}

enum machine_state kvm_state_from_libvirt(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
        return MSTATE_RUNNING;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
        return MSTATE_PAUSED;
    case VIR_DOMAIN_SHUTDOWN:
        return MSTATE_STOPPING;
    case VIR_DOMAIN_SHUTOFF:
        return MSTATE_STOPPED;
    default: /* crashed, no state */
        return MSTATE_ERROR;
    }
}

int kvm_config_disk(const char *hostname, const char *authorized_keys, char **out, size_t *len,
                    struct merr *err)
{
    return machine_os_config_disk(hostname, authorized_keys, out, len, err);
}

void kvm_network_xml_bridge(const char *xml, char *out, size_t len)
{
    out[0] = '\0';
    const char *p = strstr(xml, "<bridge ");
    if (p != NULL)
        attr_of(p, "name", out, len);
}
