/* Fuzz target for the embedded DNS server's parsers (security case 30): the bytes of a query
 * as a container sends them (parsed, answered, the answer read back by glibc), and the same
 * bytes as the host's resolv.conf. */
#define MACHINE_NETWORK_PRIV
#include <arpa/nameser.h>
#include <resolv.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "machine.h"
#include "network/network-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct net_dns_query q;
    struct merr err = MERR_INIT;
    uint8_t out[NET_DNS_UDP_MAX];
    if (net_dns_query_parse(data, size, &q, &err) == 0) {
        static const uint32_t ips[] = { 0xac130002u, 0xac130003u };
        size_t n = net_dns_reply_build(data, &q, ns_r_noerror, ips, 2, out, sizeof out);
        if (n > 0) {
            ns_msg m; /* what we send must parse */
            if (ns_initparse(out, (int)n, &m) != 0)
                abort();
        }
    }
    (void)net_dns_error_build(data, size, ns_r_formerr, out, sizeof out);
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    uint32_t ns[3];
    (void)net_resolv_nameservers(text, ns, 3);
    strv_free(net_resolv_search(text));
    free(text);
    return 0;
}
