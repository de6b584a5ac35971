/* `kvm`: a libvirt/KVM (or TCG) virtual machine booting machine-os. Everything goes through the
 * libvirt C API, so remote URIs work: the boot ISO, the data disk and the config disk are
 * volumes of a `machine` dir pool (uploaded with streams), the network is a libvirt network
 * (a private NAT `machine` network on a free subnet unless --kvm-network names one), and the
 * address comes from libvirt (DHCP leases, then ARP). A create that fails half way is removed by
 * lifecycle through kvm_remove. The disks and config format are machine-os's (docs/machine-os.md). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "kvm-priv.h"
#include "machine-os-config.h"
#include "registry.h"
#include "store.h"

#define K_URI "URI"
#define K_MEMORY "Memory"
#define K_CPUS "CPU"
#define K_DISK "DiskSize"
#define K_NETWORK "Network"
#define K_NET_OURS "NetworkCreated"
#define K_TYPE "DomainType"
#define K_IMAGE "Image"
#define CONSOLE_LOG_DIR "/var/log/libvirt/qemu"

static const struct driver_flag kvm_flags[] = {
    { .name = "kvm-uri", .env = "KVM_URI", .def = KVM_DEFAULT_URI, .key = K_URI,
      .help = "libvirt connection URI", .type = DFLAG_STRING },
    { .name = "kvm-memory", .env = "KVM_MEMORY", .def = "1024", .key = K_MEMORY,
      .help = "memory of the VM in MiB", .type = DFLAG_INT, .min = 256, .max = 1048576 },
    { .name = "kvm-cpu-count", .env = "KVM_CPU_COUNT", .def = "1", .key = K_CPUS,
      .help = "number of virtual CPUs", .type = DFLAG_INT, .min = 1, .max = 256 },
    { .name = "kvm-disk-size", .env = "KVM_DISK_SIZE", .def = "20000", .key = K_DISK,
      .help = "size of the data disk in MiB (allocated as it fills)", .type = DFLAG_INT,
      .min = 1024, .max = 64LL * 1024 * 1024 },
    { .name = "kvm-network", .env = "KVM_NETWORK", .key = K_NETWORK,
      .help = "libvirt network (default: a private NAT network 'machine' on a free subnet)",
      .type = DFLAG_STRING },
    { .name = "kvm-domain-type", .env = "KVM_DOMAIN_TYPE", .def = "auto", .key = K_TYPE,
      .help = "auto, kvm or qemu (auto: kvm when it really runs a guest here, else TCG)",
      .type = DFLAG_STRING, .choices = (const char *const[]){ "auto", "kvm", "qemu", NULL } },
    { .name = "kvm-image", .env = "KVM_IMAGE", .key = K_IMAGE,
      .help = "boot image (default: the machine-os.iso built with machine)", .type = DFLAG_STRING },
    { 0 },
};

/* ---- libvirt plumbing ---------------------------------------------------- */

static void quiet_errors(void *data, virErrorPtr e)
{
    (void)data;
    (void)e; /* errors are reported through merr, not printed by libvirt */
}

static int virt_fail(struct merr *err, enum merr_code code, const char *what)
{
    const char *msg = virGetLastErrorMessage();
    return merr_set(err, code, 0, "%s: %s", what, msg != NULL ? msg : "unknown libvirt error");
}

DEFINE_CLEANUP(virConnect, virConnectClose)
DEFINE_CLEANUP(virDomain, virDomainFree)
DEFINE_CLEANUP(virNetwork, virNetworkFree)
DEFINE_CLEANUP(virStoragePool, virStoragePoolFree)
DEFINE_CLEANUP(virStorageVol, virStorageVolFree)
DEFINE_CLEANUP(virStream, virStreamFree)
#define auto_conn __attribute__((cleanup(cleanup_virConnectClosep)))
#define auto_dom __attribute__((cleanup(cleanup_virDomainFreep)))
#define auto_net __attribute__((cleanup(cleanup_virNetworkFreep)))
#define auto_pool __attribute__((cleanup(cleanup_virStoragePoolFreep)))
#define auto_vol __attribute__((cleanup(cleanup_virStorageVolFreep)))
#define auto_stream __attribute__((cleanup(cleanup_virStreamFreep)))

static const char *uri_of(const struct machine *m)
{
    const char *u = machine_driver_str(m, K_URI);
    return u != NULL && u[0] != '\0' ? u : KVM_DEFAULT_URI;
}

static virConnectPtr kvm_connect(const char *uri, struct merr *err)
{
    virSetErrorFunc(NULL, quiet_errors);
    virConnectPtr c = virConnectOpen(uri);
    if (c == NULL) {
        virt_fail(err, MERR_UNREACHABLE, "cannot connect to libvirt");
        merr_prefix(err, "'%s'", uri);
    }
    return c;
}

static char *vol_name(const struct machine *m, const char *suffix)
{
    return xasprintf("%s-%s", m->name, suffix);
}

/* ---- the boot image ------------------------------------------------------ */

/* --kvm-image, else machine-os.iso of this build (build/machine-os/) or installation. */
static char *find_image(const struct machine *m, struct merr *err)
{
    const char *flag = machine_driver_str(m, K_IMAGE);
    if (flag != NULL && flag[0] != '\0') {
        if (access(flag, R_OK) == 0)
            return xstrdup(flag);
        merr_set(err, MERR_INVALID, errno, "cannot read --kvm-image '%s'", flag);
        return NULL;
    }
    return machine_os_default_image("--kvm-image", err);
}

/* ---- storage ------------------------------------------------------------- */

static virStoragePoolPtr ensure_pool(virConnectPtr c, struct merr *err)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c, KVM_POOL_NAME);
    if (p == NULL) {
        auto_free char *xml = kvm_pool_xml(KVM_POOL_NAME, KVM_POOL_DIR);
        p = virStoragePoolDefineXML(c, xml, 0);
        if (p == NULL) {
            virt_fail(err, MERR_IO, "cannot define the storage pool '" KVM_POOL_NAME "'");
            return NULL;
        }
        if (virStoragePoolBuild(p, 0) < 0 && virStoragePoolCreate(p, 0) < 0) {
            virt_fail(err, MERR_IO, "cannot build the storage pool '" KVM_POOL_NAME "'");
            virStoragePoolFree(p);
            return NULL;
        }
        virStoragePoolSetAutostart(p, 1);
    }
    int active = virStoragePoolIsActive(p);
    /* a defined pool whose directory went away is built again */
    if (active == 0 && virStoragePoolCreate(p, 0) < 0 &&
        (virStoragePoolBuild(p, 0) < 0 || virStoragePoolCreate(p, 0) < 0)) {
        virt_fail(err, MERR_IO, "cannot start the storage pool '" KVM_POOL_NAME "'");
        virStoragePoolFree(p);
        return NULL;
    }
    virStoragePoolRefresh(p, 0);
    return p;
}

static int stream_upload(virConnectPtr c, virStorageVolPtr v, const char *data, size_t len,
                         int fd, struct merr *err)
{
    auto_stream virStreamPtr st = virStreamNew(c, 0);
    if (st == NULL || virStorageVolUpload(v, st, 0, len, 0) < 0)
        return virt_fail(err, MERR_IO, "cannot upload a volume");
    char buf[256 * 1024];
    for (size_t off = 0; off < len;) {
        size_t want = len - off < sizeof buf ? len - off : sizeof buf;
        const char *p = data != NULL ? data + off : buf;
        if (data == NULL) {
            ssize_t r = read(fd, buf, want);
            if (r <= 0) {
                virStreamAbort(st);
                return merr_set(err, MERR_IO, r < 0 ? errno : EIO, "cannot read the boot image");
            }
            want = (size_t)r;
        }
        for (size_t done = 0; done < want;) {
            int w = virStreamSend(st, p + done, want - done);
            if (w < 0) {
                virStreamAbort(st);
                return virt_fail(err, MERR_IO, "cannot upload a volume");
            }
            done += (size_t)w;
        }
        off += want;
    }
    if (virStreamFinish(st) < 0)
        return virt_fail(err, MERR_IO, "cannot finish a volume upload");
    return 0;
}

/* A raw volume in the pool (replacing nothing: MERR_EXISTS if it is there), filled with data
 * or the file at path when given. */
static virStorageVolPtr make_volume(virConnectPtr c, virStoragePoolPtr pool, const char *name,
                                    uint64_t capacity, const char *data, size_t len,
                                    const char *path, struct merr *err)
{
    virStorageVolPtr old = virStorageVolLookupByName(pool, name);
    if (old != NULL) {
        virStorageVolFree(old);
        merr_set(err, MERR_EXISTS, 0, "volume '%s' already exists in pool '" KVM_POOL_NAME "'", name);
        return NULL;
    }
    auto_free char *xml = kvm_volume_xml(name, capacity);
    virStorageVolPtr v = virStorageVolCreateXML(pool, xml, 0);
    if (v == NULL) {
        virt_fail(err, MERR_IO, "cannot create a volume");
        merr_prefix(err, "'%s'", name);
        return NULL;
    }
    int rc = 0;
    if (data != NULL) {
        rc = stream_upload(c, v, data, len, -1, err);
    } else if (path != NULL) {
        auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        rc = fd < 0 ? merr_set(err, MERR_IO, errno, "cannot open '%s'", path)
                    : stream_upload(c, v, NULL, len, fd, err);
    }
    if (rc < 0) {
        virStorageVolDelete(v, 0);
        virStorageVolFree(v);
        return NULL;
    }
    return v;
}

static void delete_volume(virStoragePoolPtr pool, const char *name)
{
    auto_vol virStorageVolPtr v = virStorageVolLookupByName(pool, name);
    if (v != NULL)
        virStorageVolDelete(v, 0);
}

/* ---- network ------------------------------------------------------------- */

/* Every IPv4 subnet of the libvirt networks on c and of this host's routes (for a local URI). */
static int used_subnets(virConnectPtr c, bool local, char ***list, size_t *n, struct merr *err)
{
    virNetworkPtr *nets = NULL;
    int count = virConnectListAllNetworks(c, &nets, 0);
    if (count < 0)
        return virt_fail(err, MERR_IO, "cannot list libvirt networks");
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char *xml = virNetworkGetXMLDesc(nets[i], 0);
        if (rc == 0 && xml != NULL)
            rc = kvm_network_xml_subnets(xml, list, n, err);
        free(xml);
        virNetworkFree(nets[i]);
    }
    free(nets);
    if (rc < 0 || !local)
        return rc;
    /* /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric Mask (hex, little end) */
    auto_fclose FILE *f = fopen("/proc/net/route", "re");
    char line[256];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char ifc[32];
        unsigned dst, gw, flags, refc, use, metric, mask;
        if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifc, &dst, &gw, &flags, &refc, &use, &metric,
                   &mask) != 8 || mask == 0)
            continue;
        char **grown = realloc(*list, (*n + 1) * sizeof *grown);
        if (grown == NULL)
            return merr_set(err, MERR_NOMEM, 0, "out of memory");
        *list = grown;
        grown[(*n)++] = xasprintf("%u.%u.%u.%u/%d", dst & 255, (dst >> 8) & 255, (dst >> 16) & 255,
                                  dst >> 24, __builtin_popcount(mask));
    }
    return 0;
}

static bool uri_is_local(const char *uri)
{
    return strncmp(uri, "qemu:///", 8) == 0 || strncmp(uri, "test:///", 8) == 0;
}

/* The machine's network, created when it is our default one and missing. *created says so. */
static virNetworkPtr ensure_network(virConnectPtr c, const char *uri, const char *name,
                                    bool may_create, bool *created, struct merr *err)
{
    *created = false;
    virNetworkPtr net = virNetworkLookupByName(c, name);
    if (net == NULL && !may_create) {
        virt_fail(err, MERR_NOT_FOUND, "no such libvirt network");
        merr_prefix(err, "--kvm-network '%s'", name);
        return NULL;
    }
    if (net == NULL) {
        char **used = NULL;
        size_t n_used = 0;
        char prefix[16];
        int rc = used_subnets(c, uri_is_local(uri), &used, &n_used, err);
        if (rc == 0)
            rc = kvm_pick_subnet((const char *const *)used, n_used, prefix, err);
        for (size_t i = 0; i < n_used; i++)
            free(used[i]);
        free(used);
        if (rc < 0)
            return NULL;
        auto_free char *xml = kvm_network_xml(name, prefix);
        net = virNetworkDefineXML(c, xml);
        if (net == NULL) {
            virt_fail(err, MERR_IO, "cannot define the libvirt network");
            return NULL;
        }
        *created = true;
        virNetworkSetAutostart(net, 1);
    }
    if (virNetworkIsActive(net) == 0 && virNetworkCreate(net) < 0) {
        virt_fail(err, MERR_IO, "cannot start the libvirt network");
        merr_prefix(err, "'%s'", name);
        if (*created)
            virNetworkUndefine(net);
        virNetworkFree(net);
        return NULL;
    }
    return net;
}

/* Number of domains on c other than except whose XML names the network. */
static int network_users(virConnectPtr c, const char *network, const char *except)
{
    virDomainPtr *doms = NULL;
    int count = virConnectListAllDomains(c, &doms, 0);
    if (count < 0)
        return -1;
    auto_free char *needle = xasprintf("<source network='%s'", network);
    int users = 0;
    for (int i = 0; i < count; i++) {
        const char *name = virDomainGetName(doms[i]);
        char *xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
        if (xml != NULL && strstr(xml, needle) != NULL && (name == NULL || strcmp(name, except) != 0))
            users++;
        free(xml);
        virDomainFree(doms[i]);
    }
    free(doms);
    return users;
}

static void release_network(virConnectPtr c, const struct machine *m)
{
    const char *name = machine_driver_str(m, K_NETWORK);
    if (name == NULL || machine_driver_int(m, K_NET_OURS, 0) == 0)
        return;
    if (network_users(c, name, m->name) != 0)
        return; /* someone else still uses it (or we cannot tell) */
    auto_net virNetworkPtr net = virNetworkLookupByName(c, name);
    if (net == NULL)
        return;
    if (virNetworkIsActive(net) == 1)
        virNetworkDestroy(net);
    virNetworkUndefine(net);
}

/* ---- addresses ------------------------------------------------------------ */

/* The guest's IPv4 address from its DHCP lease, else the host's ARP table. */
static char *domain_ip(virDomainPtr dom)
{
    static const unsigned sources[] = { VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
                                        VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP };
    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        virDomainInterfacePtr *ifaces = NULL;
        int n = virDomainInterfaceAddresses(dom, &ifaces, sources[s], 0);
        char *found = NULL;
        for (int i = 0; i < n; i++) {
            for (unsigned j = 0; found == NULL && j < ifaces[i]->naddrs; j++)
                if (ifaces[i]->addrs[j].type == VIR_IP_ADDR_TYPE_IPV4)
                    found = xstrdup(ifaces[i]->addrs[j].addr);
            virDomainInterfaceFree(ifaces[i]);
        }
        free(ifaces);
        if (found != NULL)
            return found;
    }
    return NULL;
}

struct ip_poll {
    virDomainPtr dom;
    struct machine *m;
};

static int poll_ip(void *opaque, struct merr *err)
{
    struct ip_poll *p = opaque;
    char *ip = domain_ip(p->dom);
    if (ip != NULL) {
        machine_driver_set_str(p->m, DKEY_IP, ip);
        free(ip);
        return 1;
    }
    int st, reason;
    if (virDomainGetState(p->dom, &st, &reason, 0) == 0 && st != VIR_DOMAIN_RUNNING &&
        st != VIR_DOMAIN_BLOCKED)
        return merr_set(err, MERR_REMOTE, 0, "the VM '%s' stopped while booting", p->m->name);
    return 0;
}

/* Until the booting VM has an address, within the operation's deadline. */
static int wait_ip(const struct driver_ctx *ctx, virDomainPtr dom, struct machine *m,
                   struct merr *err)
{
    struct ip_poll p = { dom, m };
    if (driver_wait_until(ctx, 0, "an address for the VM", poll_ip, &p, err) < 0)
        return merr_prefix(err, "'%s'", m->name);
    return 0;
}

/* ---- driver verbs ---------------------------------------------------------- */

static int kvm_precreate_check(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    (void)ctx; /* the flags' ranges and choices are checked by core (driver_check_flags) */
    auto_free char *image = find_image(m, err);
    if (image == NULL)
        return -1;
    machine_driver_set_str(m, K_IMAGE, image);
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    if (c == NULL)
        return -1;
    const char *net = machine_driver_str(m, K_NETWORK);
    if (net != NULL && net[0] != '\0') {
        auto_net virNetworkPtr n = virNetworkLookupByName(c, net);
        if (n == NULL)
            return merr_set(err, MERR_INVALID, 0, "--kvm-network '%s': no such libvirt network", net);
    }
    auto_dom virDomainPtr old = virDomainLookupByName(c, m->name);
    if (old != NULL)
        return merr_set(err, MERR_EXISTS, 0, "a libvirt domain named '%s' already exists", m->name);
    return 0;
}

/* The probe's answer is kept in the store until the host reboots (boot_id): it costs a few
 * seconds where KVM does not work. */
static bool probe_cached(const struct driver_ctx *ctx, const char *kernel)
{
    auto_free char *boot_id = NULL;
    size_t n = 0;
    struct merr ignored = MERR_INIT;
    if (fs_read_file("/proc/sys/kernel/random/boot_id", 128, &boot_id, &n, &ignored) < 0)
        return kvm_probe_runs_guest(kernel, 4000);
    boot_id[strcspn(boot_id, "\n")] = '\0';
    auto_free char *path = path_join(ctx->store->root, "kvm-probe");
    auto_free char *cached = NULL;
    if (fs_read_file(path, 256, &cached, &n, &ignored) == 0) {
        char id[128], verdict[16];
        if (sscanf(cached, "%127s %15s", id, verdict) == 2 && strcmp(id, boot_id) == 0)
            return strcmp(verdict, "kvm") == 0;
    }
    bool ok = kvm_probe_runs_guest(kernel, 4000);
    auto_free char *text = xasprintf("%s %s\n", boot_id, ok ? "kvm" : "qemu");
    if (fs_write_atomic(path, text, strlen(text), 0644, &ignored) < 0) {
        /* only a cache */
    }
    return ok;
}

static const char *resolve_type(const struct driver_ctx *ctx, const struct machine *m,
                                virConnectPtr c)
{
    const char *type = machine_driver_str(m, K_TYPE);
    if (type != NULL && strcmp(type, "auto") != 0)
        return type;
    if (!uri_is_local(uri_of(m))) {
        char *caps = virConnectGetDomainCapabilities(c, NULL, NULL, NULL, "kvm", 0);
        bool kvm = caps != NULL;
        free(caps);
        return kvm ? "kvm" : "qemu";
    }
    /* the kernel next to the image (build/machine-os/vmlinuz) */
    const char *image = machine_driver_str(m, K_IMAGE);
    auto_free char *kernel = NULL;
    const char *slash = image != NULL ? strrchr(image, '/') : NULL;
    if (slash != NULL)
        kernel = xasprintf("%.*s/vmlinuz", (int)(slash - image), image);
    return probe_cached(ctx, kernel) ? "kvm" : "qemu";
}

const char *kvm_settle_domain_type(struct machine *m, const char *resolved)
{
    /* resolved may be the stored string itself (an explicit kvm or qemu): replacing the value
     * frees it, so the answer is read back from the machine, never kept from before. */
    machine_driver_set_str(m, K_TYPE, resolved);
    return machine_driver_str(m, K_TYPE);
}

/* Refuses a network this host cannot reach (kvm_check_reachable) before anything is dialed:
 * target is the VM's address, or NULL for the network's own subnet (a network without one,
 * such as a host bridge, is judged once the VM has an address). */
static int check_network_reach(virNetworkPtr net, const char *netname, const char *target,
                               struct merr *err)
{
    /* libvirt's mock hypervisor (test:///default): its networks exist nowhere and nothing of
     * its VMs is ever dialed, so there is nothing to judge (its unit tests go past this). */
    virConnectPtr conn = virNetworkGetConnect(net);
    auto_free char *uri = conn != NULL ? virConnectGetURI(conn) : NULL;
    if (uri != NULL && strncmp(uri, "test://", 7) == 0)
        return 0;
    auto_free char *xml = virNetworkGetXMLDesc(net, 0);
    if (xml == NULL)
        return 0; /* nothing to judge by; the SSH wait stays bounded */
    char bridge[64];
    kvm_network_xml_bridge(xml, bridge, sizeof bridge);
    char **subnets = NULL;
    size_t n_subnets = 0;
    int rc = 0;
    if (target == NULL && kvm_network_xml_subnets(xml, &subnets, &n_subnets, err) < 0)
        rc = -1;
    if (target == NULL && n_subnets > 0)
        target = subnets[0];
    auto_free char *routes = NULL;
    struct merr ignored = MERR_INIT;
    struct if_nameindex *ifs = if_nameindex();
    size_t n_ifs = 0;
    while (ifs != NULL && ifs[n_ifs].if_name != NULL)
        n_ifs++;
    auto_free const char **names = xcalloc(n_ifs + 1, sizeof *names);
    for (size_t i = 0; i < n_ifs; i++)
        names[i] = ifs[i].if_name;
    if (rc == 0 && target != NULL &&
        fs_read_file("/proc/net/route", 1 << 20, &routes, NULL, &ignored) == 0) {
        struct kvm_reach r = { .network = netname, .bridge = bridge, .ifaces = names,
                               .n_ifaces = n_ifs, .routes = routes, .target = target };
        rc = kvm_check_reachable(&r, err);
    }
    if (ifs != NULL)
        if_freenameindex(ifs);
    for (size_t i = 0; i < n_subnets; i++)
        free(subnets[i]);
    free(subnets);
    return rc;
}

/* Everything of the machine's that exists: its domain, its volumes, the network when it was
 * ours and is unused. A create that failed half way leaves a part of these. */
static void remove_all(virConnectPtr c, const struct machine *m)
{
    auto_dom virDomainPtr d = virDomainLookupByName(c, m->name);
    if (d != NULL) {
        if (virDomainIsActive(d) == 1)
            virDomainDestroy(d);
        virDomainUndefine(d);
    }
    auto_pool virStoragePoolPtr pool = virStoragePoolLookupByName(c, KVM_POOL_NAME);
    const char *suffixes[] = { "boot.iso", "data.img", "config.img" };
    for (size_t i = 0; pool != NULL && i < 3; i++) {
        auto_free char *v = vol_name(m, suffixes[i]);
        delete_volume(pool, v);
    }
    release_network(c, m);
}

static int kvm_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    if (c == NULL)
        return -1;
    /* SSH: root on machine-os with the machine's key (made by lifecycle), via the config disk. */
    if (ctx->ssh_public_key == NULL)
        return merr_set(err, MERR_INVALID, 0, "no SSH public key for machine '%s'", m->name);
    machine_driver_set_str(m, DKEY_SSH_USER, "root");
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);
    machine_driver_set_int(m, DKEY_ENGINE_PORT, MACHINE_DEFAULT_ENGINE_PORT);
    m->engine.port = MACHINE_DEFAULT_ENGINE_PORT;

    const char *type = kvm_settle_domain_type(m, resolve_type(ctx, m, c));
    mlog_debug(ctx->log, "kvm: domain type %s", type);
    const char *netname = machine_driver_str(m, K_NETWORK);
    bool ours = netname == NULL || netname[0] == '\0';
    if (ours)
        machine_driver_set_str(m, K_NETWORK, KVM_NETWORK_NAME);
    netname = machine_driver_str(m, K_NETWORK);
    bool created = false;
    auto_net virNetworkPtr net = ensure_network(c, uri_of(m), netname, ours, &created, err);
    if (net == NULL)
        return -1;
    machine_driver_set_int(m, K_NET_OURS, ours);
    mlog_debug(ctx->log, "kvm: network '%s' ready%s", netname, created ? " (created)" : "");
    /* From here on a failure just returns: lifecycle calls kvm_remove, which removes what
     * carries the machine's name (and the network when it was ours and nobody else uses it). */
    if (check_network_reach(net, netname, NULL, err) < 0)
        return -1;

    /* Everything with a cleanup is declared before the first goto. */
    int rc = -1;
    auto_vol virStorageVolPtr iso = NULL, data = NULL, cfgv = NULL;
    auto_dom virDomainPtr dom = NULL;
    auto_free char *iso_path = NULL, *data_path = NULL, *cfg_path = NULL, *xml = NULL;
    auto_free char *console_log = NULL, *cfg = NULL;
    auto_free char *iso_name = vol_name(m, "boot.iso"), *data_name = vol_name(m, "data.img"),
                   *cfg_name = vol_name(m, "config.img");
    size_t cfg_len = 0;
    const char *image = machine_driver_str(m, K_IMAGE);
    struct stat st;
    auto_pool virStoragePoolPtr pool = ensure_pool(c, err);
    if (pool == NULL || kvm_config_disk(m->name, ctx->ssh_public_key, &cfg, &cfg_len, err) < 0)
        goto out;
    if (image == NULL || stat(image, &st) < 0) {
        merr_set(err, MERR_NOT_FOUND, errno, "cannot read the boot image '%s'", image ? image : "");
        goto out;
    }
    iso = make_volume(c, pool, iso_name, (uint64_t)st.st_size, NULL, (size_t)st.st_size, image, err);
    if (iso != NULL)
        data = make_volume(c, pool, data_name, (uint64_t)machine_driver_int(m, K_DISK, 20000) << 20,
                           NULL, 0, NULL, err);
    if (data != NULL)
        cfgv = make_volume(c, pool, cfg_name, cfg_len, cfg, cfg_len, NULL, err);
    if (cfgv == NULL)
        goto out;
    mlog_debug(ctx->log, "kvm: volumes ready");
    iso_path = virStorageVolGetPath(iso);
    data_path = virStorageVolGetPath(data);
    cfg_path = virStorageVolGetPath(cfgv);
    struct kvm_domain_spec spec = {
        .name = m->name,
        .type = type,
        .memory_mib = (unsigned)machine_driver_int(m, K_MEMORY, 1024),
        .cpus = (unsigned)machine_driver_int(m, K_CPUS, 1),
        .iso_path = iso_path,
        .data_path = data_path,
        .config_path = cfg_path,
        .network = netname,
    };
    /* The console goes to libvirt's log directory too, when it is this host's. */
    if (uri_is_local(uri_of(m)) && access(CONSOLE_LOG_DIR, W_OK) == 0)
        spec.console_log = console_log = xasprintf(CONSOLE_LOG_DIR "/%s-console.log", m->name);
    xml = iso_path && data_path && cfg_path ? kvm_domain_xml(&spec) : NULL;
    if (xml == NULL) {
        virt_fail(err, MERR_IO, "cannot find the volumes' paths");
        goto out;
    }
    dom = virDomainDefineXML(c, xml);
    if (dom == NULL) {
        virt_fail(err, MERR_IO, "cannot define the VM");
        goto out;
    }
    mlog_debug(ctx->log, "kvm: domain defined, starting");
    if (virDomainCreate(dom) < 0) {
        virt_fail(err, MERR_IO, "cannot start the VM");
        goto out;
    }
    mlog_debug(ctx->log, "kvm: started, waiting for an address");
    rc = wait_ip(ctx, dom, m, err);
    if (rc == 0)
        rc = check_network_reach(net, netname, machine_driver_str(m, DKEY_IP), err);
out:
    return rc;
}

static virDomainPtr lookup(virConnectPtr c, const struct machine *m, struct merr *err)
{
    virDomainPtr d = virDomainLookupByName(c, m->name);
    if (d == NULL)
        merr_set(err, MERR_NOT_FOUND, 0, "the VM '%s' does not exist in libvirt", m->name);
    return d;
}

static int kvm_get_state(const struct driver_ctx *ctx, const struct machine *m,
                         enum machine_state *state, struct merr *err)
{
    (void)ctx;
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    if (c == NULL)
        return -1;
    auto_dom virDomainPtr d = virDomainLookupByName(c, m->name);
    int st, reason;
    if (d == NULL || virDomainGetState(d, &st, &reason, 0) < 0) {
        *state = MSTATE_ERROR;
        return 0;
    }
    *state = kvm_state_from_libvirt(st);
    return 0;
}

static char *kvm_get_ip(const struct driver_ctx *ctx, const struct machine *m, struct merr *err)
{
    (void)ctx;
    struct merr quiet = MERR_INIT;
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), &quiet);
    auto_dom virDomainPtr d = c != NULL ? virDomainLookupByName(c, m->name) : NULL;
    char *ip = d != NULL ? domain_ip(d) : NULL;
    if (ip != NULL)
        return ip;
    const char *saved = machine_driver_str(m, DKEY_IP);
    if (saved != NULL && saved[0] != '\0')
        return xstrdup(saved);
    merr_set(err, MERR_NOT_FOUND, 0, "the VM '%s' has no address (is it running?)", m->name);
    return NULL;
}

static int kvm_start(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    auto_dom virDomainPtr d = c != NULL ? lookup(c, m, err) : NULL;
    if (d == NULL)
        return -1;
    if (virDomainIsActive(d) != 1 && virDomainCreate(d) < 0)
        return virt_fail(err, MERR_IO, "cannot start the VM");
    return wait_ip(ctx, d, m, err);
}

static int poll_inactive(void *opaque, struct merr *err)
{
    (void)err;
    return virDomainIsActive(opaque) == 0 ? 1 : 0;
}

/* ACPI shutdown for the context's stop grace; then power off. */
static int stop_domain(const struct driver_ctx *ctx, virDomainPtr d, struct merr *err)
{
    if (virDomainIsActive(d) != 1)
        return 0;
    struct merr slow = MERR_INIT;
    if (virDomainShutdown(d) == 0 &&
        driver_wait_until(ctx, ctx->stop_grace_ms, "a clean shutdown", poll_inactive, d, &slow) == 0)
        return 0;
    mlog_debug(ctx->log, "kvm: %s; powering off", slow.msg[0] != '\0' ? slow.msg : "no ACPI shutdown");
    if (virDomainDestroy(d) < 0 && virDomainIsActive(d) == 1)
        return virt_fail(err, MERR_IO, "cannot stop the VM");
    return 0;
}

static int kvm_stop(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    auto_dom virDomainPtr d = c != NULL ? lookup(c, m, err) : NULL;
    return d == NULL ? -1 : stop_domain(ctx, d, err);
}

static int kvm_restart(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    if (kvm_stop(ctx, m, err) < 0)
        return -1;
    return kvm_start(ctx, m, err);
}

static int kvm_kill(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    (void)ctx;
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    auto_dom virDomainPtr d = c != NULL ? lookup(c, m, err) : NULL;
    if (d == NULL)
        return -1;
    if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0)
        return virt_fail(err, MERR_IO, "cannot kill the VM");
    return 0;
}

static int kvm_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    if (c == NULL)
        return -1;
    (void)ctx;
    remove_all(c, m);
    auto_dom virDomainPtr left = virDomainLookupByName(c, m->name);
    if (left != NULL)
        return virt_fail(err, MERR_IO, "cannot remove the VM");
    return 0;
}

/* `machine upgrade`: the machine boots the current image; the data disk stays. */
static int kvm_upgrade(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    machine_driver_set_str(m, K_IMAGE, "");
    auto_free char *image = find_image(m, err);
    if (image == NULL)
        return -1;
    machine_driver_set_str(m, K_IMAGE, image);
    auto_conn virConnectPtr c = kvm_connect(uri_of(m), err);
    auto_dom virDomainPtr d = c != NULL ? lookup(c, m, err) : NULL;
    auto_pool virStoragePoolPtr pool = d != NULL ? ensure_pool(c, err) : NULL;
    if (pool == NULL || stop_domain(ctx, d, err) < 0)
        return -1;
    auto_free char *iso_name = vol_name(m, "boot.iso");
    struct stat st;
    if (stat(image, &st) < 0)
        return merr_set(err, MERR_NOT_FOUND, errno, "cannot read the boot image '%s'", image);
    auto_vol virStorageVolPtr iso = virStorageVolLookupByName(pool, iso_name);
    if (iso == NULL)
        return virt_fail(err, MERR_NOT_FOUND, "the VM's boot volume is gone");
    if (virStorageVolResize(iso, (unsigned long long)st.st_size, 0) < 0 &&
        virStorageVolResize(iso, (unsigned long long)st.st_size, VIR_STORAGE_VOL_RESIZE_SHRINK) < 0)
        return virt_fail(err, MERR_IO, "cannot resize the boot volume");
    auto_close int fd = open(image, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || stream_upload(c, iso, NULL, (size_t)st.st_size, fd, err) < 0)
        return err->code != MERR_OK ? -1 : merr_set(err, MERR_IO, errno, "cannot open '%s'", image);
    return kvm_start(ctx, m, err);
}

static bool kvm_usable(const struct driver_ctx *ctx)
{
    (void)ctx;
    const char *uri = getenv("KVM_URI");
    struct merr err = MERR_INIT;
    virConnectPtr c = kvm_connect(uri != NULL && uri[0] != '\0' ? uri : KVM_DEFAULT_URI, &err);
    if (c == NULL)
        return false;
    virConnectClose(c);
    return true;
}

const struct driver driver_kvm = {
    .name = "kvm",
    .description = "a libvirt/KVM virtual machine booting machine-os (TCG where KVM cannot run)",
    .flags = kvm_flags,
    .uses_ssh = true,
    .usable = kvm_usable,
    .precreate_check = kvm_precreate_check,
    .create = kvm_create,
    .remove = kvm_remove,
    .start = kvm_start,
    .stop = kvm_stop,
    .restart = kvm_restart,
    .kill = kvm_kill,
    .upgrade = kvm_upgrade,
    .get_state = kvm_get_state,
    .get_ip = kvm_get_ip,
};
