/* Internals of the kvm driver shared with its unit tests: the pure XML builders and choices
 * (kvm-xml.c), the KVM probe (kvm-probe.c) and the libvirt steps (kvm.c). */
#ifndef MACHINE_KVM_PRIV_H
#define MACHINE_KVM_PRIV_H

#ifndef MACHINE_KVM_PRIV
#error "kvm-priv.h is internal to drivers/kvm/ and its tests (they define MACHINE_KVM_PRIV)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "machine.h"

struct merr;

#define KVM_DEFAULT_URI "qemu:///system"
#define KVM_POOL_NAME "machine"
#define KVM_POOL_DIR "/var/lib/libvirt/images/machine"
#define KVM_NETWORK_NAME "machine"
#define KVM_CONFIG_DISK_BYTES (1u << 20) /* MACHINE_OS_CONFIG_DISK_BYTES */

/* ---- pure (kvm-xml.c) ---------------------------------------------------- */

struct kvm_domain_spec {
    const char *name;
    const char *type;        /* "kvm" or "qemu" */
    unsigned memory_mib;
    unsigned cpus;
    const char *iso_path;    /* the boot ISO (a volume's path) */
    const char *data_path;   /* raw data disk, virtio serial machine-data */
    const char *config_path; /* raw config disk, virtio serial machine-config, read-only */
    const char *network;     /* libvirt network name */
    const char *console_log; /* the serial console copied to this file (virtlogd), or NULL */
};
/* Every value is XML-escaped. NULL when out of memory. */
char *kvm_domain_xml(const struct kvm_domain_spec *s);
/* A NAT network with DHCP over prefix.2-prefix.254 on prefix.1/24 ("192.168.42"). */
char *kvm_network_xml(const char *name, const char *prefix);
/* A raw volume of capacity bytes, allocated sparsely. */
char *kvm_volume_xml(const char *name, uint64_t capacity);
/* A dir storage pool at path. */
char *kvm_pool_xml(const char *name, const char *path);

/* The first 192.168.N.0/24 (N from 42 up) that overlaps none of the used IPv4 networks
 * ("a.b.c.d/len" strings). MERR_NOT_FOUND when all are taken. out gets "192.168.N". */
int kvm_pick_subnet(const char *const *used, size_t n_used, char out[16], struct merr *err) MUST_CHECK;
/* The "a.b.c.d/len" of every <ip address=... netmask=...|prefix=...> in a network's XML,
 * appended to *list (malloc'd strings). */
int kvm_network_xml_subnets(const char *xml, char ***list, size_t *n, struct merr *err) MUST_CHECK;

/* The name in a network XML's <bridge name=...> ("" when none). */
void kvm_network_xml_bridge(const char *xml, char *out, size_t len);

/* ---- reachability (kvm-reach.c), pure ---------------------------------------- */

/* Whether a non-default, usable route of a /proc/net/route buffer covers target ("a.b.c.d" or
 * "a.b.c.d/len"); iface gets the route's interface. Rejecting (unreachable) routes and the
 * default route do not count. */
bool kvm_route_reaches(const char *proc_net_route, const char *target, char *iface, size_t iface_len);
struct kvm_reach {
    const char *network;      /* libvirt network name */
    const char *bridge;       /* its bridge ("" or NULL: none) */
    const char *const *ifaces; /* this host's interface names */
    size_t n_ifaces;
    const char *routes;       /* /proc/net/route */
    const char *target;       /* the VM's address or the network's subnet, or NULL */
};
/* 0 when the bridge is a local interface or a local route (not the default one) reaches the
 * target; else MERR_UNREACHABLE naming the network, the bridge and the ways out. */
int kvm_check_reachable(const struct kvm_reach *r, struct merr *err) MUST_CHECK;

/* virDomainState values (as ints, so this stays pure) to machine states. */
enum machine_state kvm_state_from_libvirt(int state);

/* The config disk: machine_os_config_disk (drivers/machine-os-config.h). */
int kvm_config_disk(const char *hostname, const char *authorized_keys, char **out, size_t *len,
                    struct merr *err) MUST_CHECK;

/* ---- the libvirt steps (kvm.c) ------------------------------------------- */

/* Stores resolved (an explicit --kvm-domain-type value, which may be the stored string itself,
 * or auto's verdict) as the machine's DomainType and returns the stored value: what create
 * puts in the domain XML. */
const char *kvm_settle_domain_type(struct machine *m, const char *resolved);

/* ---- KVM probe (kvm-probe.c) --------------------------------------------- */

/* The probe's qemu command line (pure; free with strv_free). */
char **kvm_probe_argv(const char *kernel);
/* Runs the probe through runner (NULL: the real one): true when the kernel printed its first
 * console line within timeout_ms. */
struct cmd_runner;
bool kvm_probe_run(const struct cmd_runner *runner, const char *kernel, int timeout_ms);
/* kvm_probe_run for real, when the kernel and /dev/kvm are there at all. */
bool kvm_probe_runs_guest(const char *kernel, int timeout_ms);

#endif
