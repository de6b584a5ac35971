/* Internals of the virtualbox driver shared with its unit tests: the pure parsers of VBoxManage's
 * output (vbox-parse.c), the argv builders (vbox-argv.c) and the verbs' seams (vbox.c). */
#ifndef MACHINE_VBOX_PRIV_H
#define MACHINE_VBOX_PRIV_H

#ifndef MACHINE_VBOX_PRIV
#error "vbox-priv.h is internal to drivers/virtualbox/ and its tests (they define MACHINE_VBOX_PRIV)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "machine.h"

struct merr;
struct driver_ctx;

#define VBOX_MIN_MAJOR 5
#define VBOX_STORAGECTL "SATA"
#define VBOX_DATA_SERIAL "machine-data"
#define VBOX_CONFIG_SERIAL "machine-config"

/* ---- parsers (vbox-parse.c), pure ------------------------------------------- */

/* `VBoxManage --version`: "7.0.14r161095" (a warning line may come first). */
int vbox_parse_version(const char *out, int *major, int *minor, struct merr *err) MUST_CHECK;

/* `showvminfo NAME --machinereadable`: the value of key (quotes removed); false when absent.
 * Keys may be quoted themselves ("SATA-0-0"="..."). */
bool vbox_info_value(const char *info, const char *key, char *out, size_t len);
/* VMState of the same output to a machine state (MSTATE_ERROR when unknown or absent). */
enum machine_state vbox_state_from_info(const char *info);

struct vbox_hostonlyif {
    char name[64];
    char ip[16];
    char mask[16];
    char netname[128]; /* VBoxNetworkName: HostInterfaceNetworking-NAME */
};
/* `list hostonlyifs`: blocks of "Key: value" lines separated by blank lines. *list is
 * malloc'd (free it); *n entries. */
int vbox_parse_hostonlyifs(const char *out, struct vbox_hostonlyif **list, size_t *n,
                           struct merr *err) MUST_CHECK;

struct vbox_dhcpserver {
    char netname[128];
    char ip[16];
    char mask[16];
    char lower[16];
    char upper[16];
    bool enabled;
};
/* `list dhcpservers` (5.x-6.0's "IP:"/"lowerIPAddress:" and 6.1+'s "Dhcpd IP:"/"LowerIPAddress:"). */
int vbox_parse_dhcpservers(const char *out, struct vbox_dhcpserver **list, size_t *n,
                           struct merr *err) MUST_CHECK;

/* `list vms`: lines `"NAME" {uuid}`; whether name is among them. */
bool vbox_list_vms_has(const char *out, const char *name);

/* `guestproperty get VM PROP`: "Value: X" -> X; false for "No value set!". */
bool vbox_guestproperty_value(const char *out, char *val, size_t len);
/* `dhcpserver findlease`: the "IP Address:" line's value; false when none. */
bool vbox_lease_ip(const char *out, char *ip, size_t len);
/* `hostonlyif create`: "Interface 'vboxnet0' was successfully created" -> vboxnet0. */
bool vbox_created_hostonlyif(const char *out, char *name, size_t len);

/* /proc/cpuinfo text: whether a CPU flag line names vmx (VT-x) or svm (AMD-V). */
bool vbox_cpuinfo_has_vtx(const char *cpuinfo);

/* "a.b.c.d/len" -> host address and prefix; MERR_INVALID when malformed. */
int vbox_parse_cidr(const char *cidr, uint32_t *addr, int *prefix, struct merr *err) MUST_CHECK;
/* Dotted quads of a host-order address. */
void vbox_ip_text(uint32_t addr, char out[16]);

/* The host-only interface to use for cidr (the host's address on it, e.g. 192.168.99.1/24):
 * *found is the interface with that address and mask, or NULL when one is to be made. Another
 * host-only interface or host network (host_nets: "a.b.c.d/len", the host-only interfaces
 * left out) overlapping cidr is MERR_INVALID, as docker-machine refused it. */
int vbox_pick_hostonlyif(const char *cidr, const struct vbox_hostonlyif *ifs, size_t n_ifs,
                         const char *const *host_nets, size_t n_host,
                         const struct vbox_hostonlyif **found, struct merr *err) MUST_CHECK;

/* ---- argv builders (vbox-argv.c), pure ----------------------------------------- */

struct vbox_vm_spec {
    const char *name;
    const char *basefolder;     /* the machine's store directory */
    long cpus, memory_mib;
    bool host_dns_resolver, dns_proxy;
    const char *nat_nictype, *hostonly_nictype, *hostonly_promisc;
    const char *hostonly_if;    /* vboxnetN */
    int ssh_port;               /* the NAT forward on 127.0.0.1 */
    const char *iso, *disk, *config_disk;
};
/* The calls that build the VM after createvm, in order; a NULL-terminated array of argvs
 * (argv[0] "VBoxManage"); free with vbox_steps_free. */
char ***vbox_build_steps(const struct vbox_vm_spec *s);
void vbox_steps_free(char ***steps);
/* DHCP on the host-only network of cidr's interface (server .100, leases .101-.254, as
 * docker-machine). */
char **vbox_argv_dhcpserver_add(const char *netname, uint32_t net, int prefix);

/* ---- verbs' seams (vbox.c) ------------------------------------------------------ */

/* precreate with the /proc/cpuinfo text given (the unit tests' VT-x seam). */
int vbox_precreate_with(const struct driver_ctx *ctx, struct machine *m, const char *cpuinfo,
                        struct merr *err) MUST_CHECK;
/* create with the host networks given (NULL: this host's, from getifaddrs). */
int vbox_create_with(const struct driver_ctx *ctx, struct machine *m, const char *const *host_nets,
                     size_t n_host, struct merr *err) MUST_CHECK;

#endif
