/* Whether this host can reach a VM on a libvirt network, decided before anything is dialed:
 * a libvirtd in another network namespace or on another host (qemu+ssh://) has its NAT
 * networks there, and their addresses would go out through this host's default route. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kvm/kvm-priv.h"

#define RTF_UP_FLAG 0x0001
#define RTF_REJECT_FLAG 0x0200

/* "a.b.c.d" (a /32) or "a.b.c.d/len", host order. */
static int parse_target(const char *s, uint32_t *addr, unsigned *len)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    *len = 32;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        long l = strtol(slash + 1, &end, 10);
        if (*end != '\0' || l < 0 || l > 32)
            return -1;
        *len = (unsigned)l;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -1;
    *addr = ntohl(a.s_addr);
    return 0;
}

bool kvm_route_reaches(const char *proc_net_route, const char *target, char *iface, size_t iface_len)
{
    uint32_t addr;
    unsigned len;
    if (parse_target(target, &addr, &len) < 0)
        return false;
    /* "Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT", addresses in
     * hex as the kernel stores them (network order read as a native int) */
    for (const char *p = proc_net_route; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        char name[32];
        unsigned dest, gw, flags, refcnt, use, metric, mask;
        if (sscanf(p, "%31s %x %x %x %u %u %u %x", name, &dest, &gw, &flags, &refcnt, &use,
                   &metric, &mask) == 8) {
            uint32_t d = ntohl(dest), m = ntohl(mask);
            unsigned mlen = (unsigned)__builtin_popcount(m);
            /* the default route is what leads elsewhere; rejecting routes reach nothing */
            if (m != 0 && (flags & RTF_UP_FLAG) && !(flags & RTF_REJECT_FLAG) && mlen <= len &&
                (addr & m) == (d & m)) {
                if (iface != NULL)
                    snprintf(iface, iface_len, "%s", name);
                return true;
            }
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

int kvm_check_reachable(const struct kvm_reach *r, struct merr *err)
{
    for (size_t i = 0; r->bridge != NULL && r->bridge[0] != '\0' && i < r->n_ifaces; i++)
        if (strcmp(r->ifaces[i], r->bridge) == 0)
            return 0;
    if (r->target != NULL && kvm_route_reaches(r->routes, r->target, NULL, 0))
        return 0;
    const char *bridge = r->bridge != NULL && r->bridge[0] != '\0' ? r->bridge : "(none)";
    return merr_set(err, MERR_UNREACHABLE, 0,
                    "the libvirt network '%s' is not on this host: its bridge '%s' is not a local "
                    "interface and no local route reaches %s (only the default route would, "
                    "which leads elsewhere: libvirtd runs in another network namespace or on "
                    "another host); run machine where libvirtd runs, or use a bridged or routed "
                    "--kvm-network that this host reaches",
                    r->network, bridge, r->target != NULL ? r->target : "its addresses");
}
