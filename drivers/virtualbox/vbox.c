/* `virtualbox`: a VirtualBox VM booting machine-os, driven through VBoxManage (docker-machine's
 * best known driver, with its flags and defaults). Every call goes through the context's command
 * runner (a timeout, stderr in errors, the unit tests' recorder); the calls that change
 * VirtualBox's configuration (createvm, modifyvm, storage, host-only interfaces, DHCP servers,
 * unregistervm) run under one lock per store, <store>/locks/virtualbox.lock, so concurrent
 * `machine` processes never run them at once (docker-machine #479, #3119). A create that fails
 * half way is undone by lifecycle through vbox_remove. Tested against tests/helpers/VBoxManage
 * (a stand-in booting machine-os under qemu), never a real VirtualBox here. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "command.h"
#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "machine-os-config.h"
#include "registry.h"
#include "store.h"
#include "strv.h"
#include "vbox-priv.h"

#define K_MEMORY "Memory"
#define K_CPUS "CPU"
#define K_DISK "DiskSize"
#define K_IMAGE "Image"
#define K_B2D "Boot2DockerURL"
#define K_CIDR "HostOnlyCIDR"
#define K_HO_NICTYPE "HostOnlyNicType"
#define K_HO_PROMISC "HostOnlyPromiscMode"
#define K_NAT_NICTYPE "NatNicType"
#define K_NO_SHARE "NoShare"
#define K_SHARE "ShareFolder"
#define K_NO_DNS_PROXY "NoDNSProxy"
#define K_HOST_DNS "HostDNSResolver"
#define K_UI "UIType"
#define K_NO_VTX "NoVTXCheck"
#define K_VBM "VBoxManage"
#define K_HO_IF "HostOnlyAdapter"
#define K_NAT_PORT "NATSSHPort"
#define IMAGE_NAME MACHINE_OS_IMAGE_NAME

static const char *const nictypes[] = { "Am79C970A", "Am79C973", "82540EM", "82543GC",
                                        "82545EM", "virtio", NULL };

static const struct driver_flag vbox_flags[] = {
    { .name = "virtualbox-memory", .env = "VIRTUALBOX_MEMORY_SIZE", .def = "1024", .key = K_MEMORY,
      .help = "memory of the VM in MiB", .type = DFLAG_INT, .min = 256, .max = 1048576 },
    { .name = "virtualbox-cpu-count", .env = "VIRTUALBOX_CPU_COUNT", .def = "1", .key = K_CPUS,
      .help = "number of virtual CPUs", .type = DFLAG_INT, .min = 1, .max = 64 },
    { .name = "virtualbox-disk-size", .env = "VIRTUALBOX_DISK_SIZE", .def = "20000", .key = K_DISK,
      .help = "size of the data disk in MB", .type = DFLAG_INT, .min = 1024,
      .max = 64LL * 1024 * 1024 },
    { .name = "virtualbox-image", .env = "VIRTUALBOX_IMAGE", .key = K_IMAGE,
      .help = "boot ISO: a path, file:// or http(s):// URL (default: the machine-os.iso built "
              "with machine)",
      .type = DFLAG_STRING },
    { .name = "virtualbox-boot2docker-url", .env = "VIRTUALBOX_BOOT2DOCKER_URL", .key = K_B2D,
      .help = "docker-machine's name for --virtualbox-image", .type = DFLAG_STRING },
    { .name = "virtualbox-hostonly-cidr", .env = "VIRTUALBOX_HOSTONLY_CIDR",
      .def = "192.168.99.1/24", .key = K_CIDR,
      .help = "the host's address on the host-only network", .type = DFLAG_STRING },
    { .name = "virtualbox-hostonly-nictype", .env = "VIRTUALBOX_HOSTONLY_NIC_TYPE",
      .def = "82540EM", .key = K_HO_NICTYPE, .help = "host-only NIC type", .type = DFLAG_STRING,
      .choices = nictypes },
    { .name = "virtualbox-hostonly-nicpromisc", .env = "VIRTUALBOX_HOSTONLY_NIC_PROMISC",
      .def = "deny", .key = K_HO_PROMISC, .help = "host-only NIC promiscuous mode",
      .type = DFLAG_STRING, .choices = (const char *const[]){ "deny", "allow-vms", "allow-all", NULL } },
    { .name = "virtualbox-nat-nictype", .env = "VIRTUALBOX_NAT_NICTYPE", .def = "82540EM",
      .key = K_NAT_NICTYPE, .help = "NAT NIC type", .type = DFLAG_STRING, .choices = nictypes },
    { .name = "virtualbox-no-share", .env = "VIRTUALBOX_NO_SHARE", .key = K_NO_SHARE,
      .help = "no shared folder (machine-os never mounts one: always the case)", .type = DFLAG_BOOL },
    { .name = "virtualbox-share-folder", .env = "VIRTUALBOX_SHARE_FOLDER", .key = K_SHARE,
      .help = "a shared folder (refused: machine-os has no VirtualBox shared-folder driver)",
      .type = DFLAG_STRING },
    { .name = "virtualbox-no-dns-proxy", .env = "VIRTUALBOX_NO_DNS_PROXY", .key = K_NO_DNS_PROXY,
      .help = "no DNS proxy on the NAT network", .type = DFLAG_BOOL },
    { .name = "virtualbox-host-dns-resolver", .env = "VIRTUALBOX_HOST_DNS_RESOLVER",
      .key = K_HOST_DNS, .help = "the NAT network resolves names through the host's resolver",
      .type = DFLAG_BOOL },
    { .name = "virtualbox-ui-type", .env = "VIRTUALBOX_UI_TYPE", .def = "headless", .key = K_UI,
      .help = "startvm's --type", .type = DFLAG_STRING,
      .choices = (const char *const[]){ "headless", "gui", "sdl", "separate", NULL } },
    { .name = "virtualbox-no-vtx-check", .env = "VIRTUALBOX_NO_VTX_CHECK", .key = K_NO_VTX,
      .help = "create even when the CPU shows no VT-x/AMD-V", .type = DFLAG_BOOL },
    { .name = "virtualbox-vboxmanage", .env = "VIRTUALBOX_VBOXMANAGE", .key = K_VBM,
      .help = "the VBoxManage program (default: $VBOX_MSI_INSTALL_PATH, $VBOX_INSTALL_PATH, PATH)",
      .type = DFLAG_STRING },
    { 0 },
};

static bool drv_bool(const struct machine *m, const char *key)
{
    return json_is_true(json_object_get(m->driver, key));
}

/* ---- running VBoxManage ------------------------------------------------------- */

/* Queries get the context's call bound; changes get six of them (a disk, a VM start), both
 * within the operation's deadline. */
static int call_timeout(const struct driver_ctx *ctx, bool slow)
{
    int t = ctx->timeout_ms > 0 ? ctx->timeout_ms : 10000;
    if (slow)
        t *= 6;
    if (ctx->deadline_ms > 0) {
        long long left = ctx->deadline_ms - clock_now_ms();
        if (left < t)
            t = left > 1 ? (int)left : 1;
    }
    return t;
}

/* Runs VBoxManage argv[1..] (argv[0] is "VBoxManage"); *out gets stdout when out is given. */
static int vbm_run(const struct driver_ctx *ctx, const struct machine *m, char *const *argv,
                   bool slow, char **out, struct merr *err)
{
    const char *path = machine_driver_str(m, K_VBM);
    struct cmd_spec spec = {
        .path = path != NULL && path[0] != '\0' ? path : NULL,
        .argv = argv,
        .timeout_ms = call_timeout(ctx, slow),
        .out_max = 1 << 20,
        .err_max = 16 << 10,
    };
    struct cmd_result res = { 0 };
    mlog_debug(ctx->log, "virtualbox: VBoxManage %s %s", argv[1], argv[2] != NULL ? argv[2] : "");
    int rc = cmd_run(ctx->command, &spec, &res, err);
    if (rc < 0 && err->code == MERR_NOT_FOUND)
        merr_set(err, MERR_NOT_FOUND, 0,
                 "VBoxManage not found ('%s'): install VirtualBox %d.0 or later, or pass "
                 "--virtualbox-vboxmanage",
                 spec.path != NULL ? spec.path : "VBoxManage in PATH", VBOX_MIN_MAJOR);
    else if (rc < 0)
        merr_prefix(err, "VBoxManage %s", argv[1]);
    if (rc == 0 && out != NULL) {
        *out = res.out.data != NULL ? res.out.data : xstrdup("");
        res.out.data = NULL;
    }
    cmd_result_release(&res);
    return rc;
}

static char **argv_v(const char *first, va_list ap)
{
    char **v = strv_push(NULL, "VBoxManage");
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
        v = strv_push(v, s);
    return v;
}

/* vbm(ctx, m, slow, &out or NULL, err, "showvminfo", name, ..., NULL) */
static int vbm(const struct driver_ctx *ctx, const struct machine *m, bool slow, char **out,
               struct merr *err, const char *first, ...) __attribute__((sentinel));
static int vbm(const struct driver_ctx *ctx, const struct machine *m, bool slow, char **out,
               struct merr *err, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    char **argv = argv_v(first, ap);
    va_end(ap);
    int rc = vbm_run(ctx, m, argv, slow, out, err);
    strv_free(argv);
    return rc;
}

/* The one lock around VirtualBox configuration changes. */
static int vbox_lock(const struct driver_ctx *ctx, struct merr *err)
{
    auto_free char *dir = path_join(ctx->store->root, "locks");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return merr_set(err, MERR_IO, errno, "cannot create '%s'", dir);
    auto_free char *path = path_join(dir, "virtualbox.lock");
    return fs_lock(path, call_timeout(ctx, true), err);
}

/* ---- state ----------------------------------------------------------------------- */

/* showvminfo's text, or NULL with *gone set when VirtualBox does not know the VM. */
static char *vm_info(const struct driver_ctx *ctx, const struct machine *m, bool *gone,
                     struct merr *err)
{
    char *out = NULL;
    struct merr e = MERR_INIT;
    *gone = false;
    if (vbm(ctx, m, false, &out, &e, "showvminfo", m->name, "--machinereadable", NULL) == 0)
        return out;
    if (e.code == MERR_REMOTE && (strstr(e.msg, "Could not find a registered machine") != NULL ||
                                  strstr(e.msg, "VBOX_E_OBJECT_NOT_FOUND") != NULL)) {
        *gone = true;
        merr_set(err, MERR_NOT_FOUND, 0, "the VM '%s' does not exist in VirtualBox", m->name);
        return NULL;
    }
    *err = e;
    return NULL;
}

static int vbox_get_state(const struct driver_ctx *ctx, const struct machine *m,
                          enum machine_state *state, struct merr *err)
{
    bool gone;
    auto_free char *info = vm_info(ctx, m, &gone, err);
    if (info == NULL && !gone)
        return -1;
    *state = info != NULL ? vbox_state_from_info(info) : MSTATE_ERROR;
    return 0;
}

/* ---- addresses ------------------------------------------------------------------- */

struct ip_poll {
    const struct driver_ctx *ctx;
    struct machine *m;
};

/* The lease of the host-only network's DHCP server for nic2's MAC: 1 found, 0 not yet, -1. */
static int lease_ip(struct ip_poll *p, char *ip, size_t cap, struct merr *err)
{
    char mac[32] = "", mac_colon[40];
    bool gone;
    auto_free char *info = vm_info(p->ctx, p->m, &gone, err);
    if (info == NULL)
        return -1;
    enum machine_state st = vbox_state_from_info(info);
    if (st != MSTATE_RUNNING && st != MSTATE_STARTING)
        return merr_set(err, MERR_REMOTE, 0, "the VM '%s' stopped while booting", p->m->name);
    if (!vbox_info_value(info, "macaddress2", mac, sizeof mac) || strlen(mac) != 12)
        return 0;
    snprintf(mac_colon, sizeof mac_colon, "%.2s:%.2s:%.2s:%.2s:%.2s:%.2s", mac, mac + 2, mac + 4,
             mac + 6, mac + 8, mac + 10);
    const char *ifname = machine_driver_str(p->m, K_HO_IF);
    auto_free char *iface = xasprintf("--interface=%s", ifname != NULL ? ifname : "");
    auto_free char *macarg = xasprintf("--mac-address=%s", mac_colon);
    auto_free char *lease = NULL;
    struct merr quiet = MERR_INIT;
    if (vbm(p->ctx, p->m, false, &lease, &quiet, "dhcpserver", "findlease", iface, macarg, NULL) < 0 ||
        !vbox_lease_ip(lease, ip, cap))
        return 0;
    return 1;
}

/* The host-only NIC's address: the guest property (with Guest Additions), else the lease of the
 * host-only network's DHCP server for nic2's MAC. */
static int poll_ip(void *opaque, struct merr *err)
{
    struct ip_poll *p = opaque;
    char ip[64] = "";
    auto_free char *prop = NULL;
    struct merr quiet = MERR_INIT;
    if (vbm(p->ctx, p->m, false, &prop, &quiet, "guestproperty", "get", p->m->name,
            "/VirtualBox/GuestInfo/Net/1/V4/IP", NULL) < 0 ||
        !vbox_guestproperty_value(prop, ip, sizeof ip)) {
        int r = lease_ip(p, ip, sizeof ip, err);
        if (r <= 0)
            return r;
    }
    machine_driver_set_str(p->m, DKEY_IP, ip);
    return 1;
}

static int wait_ip(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    struct ip_poll p = { ctx, m };
    if (driver_wait_until(ctx, 0, "an address on the host-only network", poll_ip, &p, err) < 0)
        return merr_prefix(err, "'%s'", m->name);
    return 0;
}

static char *vbox_get_ip(const struct driver_ctx *ctx, const struct machine *m, struct merr *err)
{
    (void)ctx;
    const char *saved = machine_driver_str(m, DKEY_IP);
    if (saved != NULL && saved[0] != '\0')
        return xstrdup(saved);
    merr_set(err, MERR_NOT_FOUND, 0, "the VM '%s' has no address (is it running?)", m->name);
    return NULL;
}

/* ---- the boot image -------------------------------------------------------------- */

static int download_write(void *opaque, const struct http_response *resp, const void *buf,
                          size_t len, struct merr *err)
{
    (void)resp;
    if (fs_write_all(*(int *)opaque, buf, len) < 0)
        return merr_set(err, MERR_IO, errno, "cannot write the downloaded image");
    return 0;
}

/* An http(s) image, downloaded once into <store>/cache/ (as docker-machine's cache of
 * boot2docker.iso): the file name is the URL's last component after a hash of the whole URL. */
static char *download_image(const struct driver_ctx *ctx, const char *url, struct merr *err)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = url; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    const char *base = strrchr(url, '/');
    char name[80];
    size_t n = 0;
    for (const char *p = base != NULL ? base + 1 : url; *p != '\0' && *p != '?' && n < 60; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '-' || *p == '_')
            name[n++] = *p;
    name[n] = '\0';
    auto_free char *dir = path_join(ctx->store->root, "cache");
    auto_free char *file = xasprintf("%016llx-%s", (unsigned long long)h, n > 0 ? name : "image.iso");
    char *path = path_join(dir, file);
    if (access(path, R_OK) == 0)
        return path;
    auto_free char *part = xasprintf("%s.part", path);
    auto_close int fd = -1;
    auto_http_client struct http_client *client = NULL;
    struct http_response resp = { 0 };
    if (fs_mkdir_p(dir, 0700, err) < 0)
        goto fail;
    fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        merr_set(err, MERR_IO, errno, "cannot create '%s'", part);
        goto fail;
    }
    /* the user named this URL: plain http when it says so (docker-machine took it too) */
    struct http_client_opts opts = { .allow_http = strncmp(url, "http://", 7) == 0,
                                     .follow_redirects = true };
    client = driver_http_client(ctx, &opts, err);
    struct http_request rq = { .url = url, .on_body = download_write, .on_body_ctx = &fd,
                               .deadline_ms = driver_http_deadline(ctx) };
    if (client == NULL || http_do(client, &rq, &resp, err) < 0)
        goto fail;
    if (resp.status != 200) {
        merr_set(err, MERR_REMOTE, 0, "downloading '%s': HTTP status %ld", url, resp.status);
        goto fail;
    }
    if (fsync(fd) < 0 || rename(part, path) < 0) {
        merr_set(err, MERR_IO, errno, "cannot keep the downloaded image '%s'", path);
        goto fail;
    }
    http_response_clear(&resp);
    return path;
fail:
    http_response_clear(&resp);
    unlink(part);
    free(path);
    return NULL;
}

/* --virtualbox-image (or its docker-machine name --virtualbox-boot2docker-url): a path, a
 * file:// URL or an http(s) URL (downloaded into the store's cache); else machine-os.iso of this
 * build or installation. */
static char *find_image(const struct driver_ctx *ctx, const struct machine *m, struct merr *err)
{
    const char *img = machine_driver_str(m, K_IMAGE), *b2d = machine_driver_str(m, K_B2D);
    if (img != NULL && img[0] != '\0' && b2d != NULL && b2d[0] != '\0' && strcmp(img, b2d) != 0) {
        merr_set(err, MERR_INVALID, 0,
                 "--virtualbox-image and --virtualbox-boot2docker-url name different images");
        return NULL;
    }
    const char *flag = img != NULL && img[0] != '\0' ? img : b2d;
    if (flag != NULL && flag[0] != '\0') {
        if (strncmp(flag, "file://", 7) == 0)
            flag += 7;
        else if (strncmp(flag, "http://", 7) == 0 || strncmp(flag, "https://", 8) == 0)
            return download_image(ctx, flag, err);
        else if (strstr(flag, "://") != NULL) {
            merr_set(err, MERR_UNSUPPORTED, 0,
                     "the boot image '%s' is neither a path nor a file, http or https URL", flag);
            return NULL;
        }
        if (access(flag, R_OK) == 0)
            return xstrdup(flag);
        merr_set(err, MERR_INVALID, errno, "cannot read the boot image '%s'", flag);
        return NULL;
    }
    return machine_os_default_image("--virtualbox-image", err);
}

/* ---- create -------------------------------------------------------------------------- */

/* --virtualbox-vboxmanage, else VBoxManage in $VBOX_MSI_INSTALL_PATH or $VBOX_INSTALL_PATH
 * (VirtualBox's installers set them), else "" (PATH). */
static void resolve_vboxmanage(struct machine *m)
{
    const char *flag = machine_driver_str(m, K_VBM);
    if (flag != NULL && flag[0] != '\0')
        return;
    static const char *const envs[] = { "VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH" };
    for (size_t i = 0; i < 2; i++) {
        const char *dir = getenv(envs[i]);
        if (dir == NULL || dir[0] == '\0')
            continue;
        auto_free char *p = path_join(dir, "VBoxManage");
        if (access(p, X_OK) == 0) {
            machine_driver_set_str(m, K_VBM, p);
            return;
        }
    }
    machine_driver_set_str(m, K_VBM, "");
}

int vbox_precreate_with(const struct driver_ctx *ctx, struct machine *m, const char *cpuinfo,
                        struct merr *err)
{
    const char *share = machine_driver_str(m, K_SHARE);
    if (share != NULL && share[0] != '\0')
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "--virtualbox-share-folder is not supported by machine-os (it has no "
                        "VirtualBox shared-folder driver)");
    resolve_vboxmanage(m);
    auto_free char *version = NULL;
    int major = 0, minor = 0;
    if (vbm(ctx, m, false, &version, err, "--version", NULL) < 0 ||
        vbox_parse_version(version, &major, &minor, err) < 0)
        return -1;
    if (major < VBOX_MIN_MAJOR)
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "VirtualBox %d.%d is too old: the virtualbox driver needs %d.0 or later",
                        major, minor, VBOX_MIN_MAJOR);
    if (!drv_bool(m, K_NO_VTX) && !vbox_cpuinfo_has_vtx(cpuinfo != NULL ? cpuinfo : ""))
        return merr_set(err, MERR_UNSUPPORTED, 0,
                        "this computer doesn't have VT-X/AMD-v enabled: enabling it in the BIOS "
                        "is mandatory (--virtualbox-no-vtx-check creates anyway)");
    uint32_t addr;
    int prefix;
    if (vbox_parse_cidr(machine_driver_str(m, K_CIDR), &addr, &prefix, err) < 0)
        return merr_prefix(err, "--virtualbox-hostonly-cidr");
    if (prefix > 24)
        return merr_set(err, MERR_INVALID, 0, "--virtualbox-hostonly-cidr: /%d leaves no room "
                        "for the DHCP range .101-.254 (use /24 or wider)", prefix);
    auto_free char *image = find_image(ctx, m, err);
    if (image == NULL)
        return -1;
    machine_driver_set_str(m, K_IMAGE, image);
    auto_free char *vms = NULL;
    if (vbm(ctx, m, false, &vms, err, "list", "vms", NULL) < 0)
        return -1;
    if (vbox_list_vms_has(vms, m->name))
        return merr_set(err, MERR_EXISTS, 0, "a VirtualBox VM named '%s' already exists", m->name);
    return 0;
}

static int vbox_precreate_check(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    auto_free char *cpuinfo = NULL;
    size_t n = 0;
    struct merr ignored = MERR_INIT;
    if (fs_read_file("/proc/cpuinfo", 4 << 20, &cpuinfo, &n, &ignored) < 0)
        cpuinfo = NULL;
    return vbox_precreate_with(ctx, m, cpuinfo, err);
}

/* This host's IPv4 networks ("a.b.c.d/len"), leaving out the host-only interfaces. */
static char **host_networks(const struct vbox_hostonlyif *ifs, size_t n_ifs)
{
    struct ifaddrs *all = NULL;
    char **nets = strv_push(NULL, NULL);
    if (getifaddrs(&all) < 0)
        return nets;
    for (struct ifaddrs *a = all; a != NULL; a = a->ifa_next) {
        if (a->ifa_addr == NULL || a->ifa_netmask == NULL || a->ifa_addr->sa_family != AF_INET ||
            (a->ifa_flags & IFF_LOOPBACK))
            continue;
        bool hostonly = false;
        for (size_t i = 0; i < n_ifs; i++)
            hostonly = hostonly || strcmp(ifs[i].name, a->ifa_name) == 0;
        if (hostonly)
            continue;
        uint32_t ip = ntohl(((struct sockaddr_in *)a->ifa_addr)->sin_addr.s_addr);
        uint32_t mask = ntohl(((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr);
        char text[16];
        vbox_ip_text(ip, text);
        auto_free char *net = xasprintf("%s/%d", text, __builtin_popcount(mask));
        nets = strv_push(nets, net);
    }
    freeifaddrs(all);
    return nets;
}

/* The host-only interface for the machine's CIDR (made, with its IP, when none has it) and its
 * DHCP server. Runs under the lock. */
static int ensure_hostonly(const struct driver_ctx *ctx, struct machine *m,
                           const char *const *host_nets, size_t n_host, struct merr *err)
{
    const char *cidr = machine_driver_str(m, K_CIDR);
    auto_free char *list = NULL, *dhcps = NULL, *created = NULL;
    auto_free struct vbox_hostonlyif *ifs = NULL;
    auto_free struct vbox_dhcpserver *servers = NULL;
    size_t n_ifs = 0, n_servers = 0;
    if (vbm(ctx, m, false, &list, err, "list", "hostonlyifs", NULL) < 0 ||
        vbox_parse_hostonlyifs(list, &ifs, &n_ifs, err) < 0)
        return -1;
    char **own_nets = NULL;
    if (host_nets == NULL) {
        own_nets = host_networks(ifs, n_ifs);
        host_nets = (const char *const *)own_nets;
        n_host = strv_len(own_nets);
    }
    const struct vbox_hostonlyif *found = NULL;
    int rc = vbox_pick_hostonlyif(cidr, ifs, n_ifs, host_nets, n_host, &found, err);
    strv_free(own_nets);
    if (rc < 0)
        return -1;
    uint32_t addr;
    int prefix;
    char ifname[64], ip[16], mask[16];
    if (vbox_parse_cidr(cidr, &addr, &prefix, err) < 0)
        return -1;
    if (found != NULL) {
        snprintf(ifname, sizeof ifname, "%s", found->name);
    } else {
        if (vbm(ctx, m, true, &created, err, "hostonlyif", "create", NULL) < 0)
            return -1;
        if (!vbox_created_hostonlyif(created, ifname, sizeof ifname))
            return merr_set(err, MERR_PROTOCOL, 0, "VBoxManage hostonlyif create: no interface "
                            "name in '%.80s'", created);
        vbox_ip_text(addr, ip);
        vbox_ip_text(prefix == 0 ? 0 : ~((1u << (32 - prefix)) - 1), mask);
        if (vbm(ctx, m, true, NULL, err, "hostonlyif", "ipconfig", ifname, "--ip", ip,
                "--netmask", mask, NULL) < 0)
            return -1;
        machine_driver_set_int(m, "HostOnlyAdapterCreated", 1);
    }
    machine_driver_set_str(m, K_HO_IF, ifname);
    auto_free char *netname = xasprintf("HostInterfaceNetworking-%s", ifname);
    if (vbm(ctx, m, false, &dhcps, err, "list", "dhcpservers", NULL) < 0 ||
        vbox_parse_dhcpservers(dhcps, &servers, &n_servers, err) < 0)
        return -1;
    for (size_t i = 0; i < n_servers; i++)
        if (strcmp(servers[i].netname, netname) == 0)
            return servers[i].enabled ? 0
                                      : vbm(ctx, m, true, NULL, err, "dhcpserver", "modify",
                                            "--netname", netname, "--enable", NULL);
    char **add = vbox_argv_dhcpserver_add(netname, addr, prefix);
    rc = vbm_run(ctx, m, add, true, NULL, err);
    strv_free(add);
    return rc;
}

/* A free TCP port on 127.0.0.1 for the NAT SSH forward. */
static int free_local_port(struct merr *err)
{
    auto_close int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return merr_set(err, MERR_IO, errno, "cannot find a free local port");
    return ntohs(a.sin_port);
}

/* The media in the machine's directory: the boot ISO (a copy), the data disk and the config
 * disk (machine-os's tar, converted to VMDK). */
static int make_media(const struct driver_ctx *ctx, struct machine *m, const char *dir,
                      struct merr *err)
{
    auto_free char *iso = path_join(dir, IMAGE_NAME), *disk = path_join(dir, "disk.vmdk");
    auto_free char *raw = path_join(dir, "config.img"), *cfg = path_join(dir, "config.vmdk");
    auto_free char *cfg_data = NULL;
    size_t cfg_len = 0;
    char size[24];
    snprintf(size, sizeof size, "%lld", machine_driver_int(m, K_DISK, 20000));
    if (fs_copy_file(machine_driver_str(m, K_IMAGE), iso, 0644, err) < 0 ||
        machine_os_config_disk(m->name, ctx->ssh_public_key, &cfg_data, &cfg_len, err) < 0 ||
        fs_write_atomic(raw, cfg_data, cfg_len, 0600, err) < 0)
        return -1;
    if (vbm(ctx, m, true, NULL, err, "convertfromraw", raw, cfg, "--format", "VMDK", NULL) < 0 ||
        vbm(ctx, m, true, NULL, err, "createmedium", "disk", "--filename", disk, "--size", size,
            "--format", "VMDK", NULL) < 0)
        return -1;
    unlink(raw);
    return 0;
}

/* createvm and the build steps (vbox_build_steps); under the lock. */
static int build_vm(const struct driver_ctx *ctx, struct machine *m, const char *dir,
                    struct merr *err)
{
    auto_free char *iso = path_join(dir, IMAGE_NAME), *disk = path_join(dir, "disk.vmdk");
    auto_free char *cfg = path_join(dir, "config.vmdk");
    if (vbm(ctx, m, true, NULL, err, "createvm", "--basefolder", dir, "--name", m->name,
            "--register", NULL) < 0)
        return -1;
    struct vbox_vm_spec spec = {
        .name = m->name,
        .basefolder = dir,
        .cpus = (long)machine_driver_int(m, K_CPUS, 1),
        .memory_mib = (long)machine_driver_int(m, K_MEMORY, 1024),
        .host_dns_resolver = drv_bool(m, K_HOST_DNS),
        .dns_proxy = !drv_bool(m, K_NO_DNS_PROXY),
        .nat_nictype = machine_driver_str(m, K_NAT_NICTYPE),
        .hostonly_nictype = machine_driver_str(m, K_HO_NICTYPE),
        .hostonly_promisc = machine_driver_str(m, K_HO_PROMISC),
        .hostonly_if = machine_driver_str(m, K_HO_IF),
        .ssh_port = (int)machine_driver_int(m, K_NAT_PORT, 0),
        .iso = iso,
        .disk = disk,
        .config_disk = cfg,
    };
    if (spec.nat_nictype == NULL || spec.hostonly_nictype == NULL || spec.hostonly_promisc == NULL)
        return merr_set(err, MERR_INVALID, 0, "machine '%s' lacks its NIC settings", m->name);
    char ***steps = vbox_build_steps(&spec);
    int rc = 0;
    for (size_t i = 0; rc == 0 && steps[i] != NULL; i++)
        rc = vbm_run(ctx, m, steps[i], true, NULL, err);
    vbox_steps_free(steps);
    return rc;
}

int vbox_create_with(const struct driver_ctx *ctx, struct machine *m, const char *const *host_nets,
                     size_t n_host, struct merr *err)
{
    if (ctx->ssh_public_key == NULL)
        return merr_set(err, MERR_INVALID, 0, "no SSH public key for machine '%s'", m->name);
    machine_driver_set_str(m, DKEY_SSH_USER, "root");
    machine_driver_set_int(m, DKEY_SSH_PORT, 22);
    machine_driver_set_int(m, DKEY_ENGINE_PORT, MACHINE_DEFAULT_ENGINE_PORT);
    m->engine.port = MACHINE_DEFAULT_ENGINE_PORT;
    int port = free_local_port(err);
    if (port < 0)
        return -1;
    machine_driver_set_int(m, K_NAT_PORT, port);
    auto_free char *dir = store_machine_dir(ctx->store, m->name);
    /* From here a failure just returns: lifecycle calls vbox_remove. */
    int lock = vbox_lock(ctx, err);
    if (lock < 0)
        return -1;
    int rc = ensure_hostonly(ctx, m, host_nets, n_host, err);
    if (rc == 0)
        rc = make_media(ctx, m, dir, err);
    if (rc == 0)
        rc = build_vm(ctx, m, dir, err);
    fs_unlock(lock);
    if (rc < 0)
        return -1;
    const char *ui = machine_driver_str(m, K_UI);
    if (vbm(ctx, m, true, NULL, err, "startvm", m->name, "--type", ui != NULL ? ui : "headless",
            NULL) < 0)
        return -1;
    return wait_ip(ctx, m, err);
}

static int vbox_create(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return vbox_create_with(ctx, m, NULL, 0, err);
}

/* ---- power ----------------------------------------------------------------------- */

static int vbox_start(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    enum machine_state st;
    if (vbox_get_state(ctx, m, &st, err) < 0)
        return -1;
    const char *ui = machine_driver_str(m, K_UI);
    int rc = 0;
    if (st == MSTATE_PAUSED)
        rc = vbm(ctx, m, true, NULL, err, "controlvm", m->name, "resume", NULL);
    else if (st != MSTATE_RUNNING && st != MSTATE_STARTING)
        rc = vbm(ctx, m, true, NULL, err, "startvm", m->name, "--type",
                 ui != NULL && ui[0] != '\0' ? ui : "headless", NULL);
    return rc < 0 ? -1 : wait_ip(ctx, m, err);
}

struct off_poll {
    const struct driver_ctx *ctx;
    const struct machine *m;
};

static int poll_off(void *opaque, struct merr *err)
{
    struct off_poll *p = opaque;
    enum machine_state st;
    if (vbox_get_state(p->ctx, p->m, &st, err) < 0)
        return -1;
    return st == MSTATE_STOPPED || st == MSTATE_ERROR ? 1 : 0;
}

/* The ACPI power button for the stop grace, then a power-off. */
static int stop_vm(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    enum machine_state st;
    if (vbox_get_state(ctx, m, &st, err) < 0)
        return -1;
    if (st == MSTATE_STOPPED || st == MSTATE_SAVED || st == MSTATE_ERROR)
        return 0;
    struct merr slow = MERR_INIT;
    struct off_poll p = { ctx, m };
    if (st == MSTATE_PAUSED &&
        vbm(ctx, m, true, NULL, err, "controlvm", m->name, "resume", NULL) < 0)
        return -1;
    if (vbm(ctx, m, true, NULL, &slow, "controlvm", m->name, "acpipowerbutton", NULL) == 0 &&
        driver_wait_until(ctx, ctx->stop_grace_ms, "a clean shutdown", poll_off, &p, &slow) == 0)
        return 0;
    mlog_debug(ctx->log, "virtualbox: %s; powering off", slow.msg);
    return vbm(ctx, m, true, NULL, err, "controlvm", m->name, "poweroff", NULL);
}

static int vbox_stop(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return stop_vm(ctx, m, err);
}

static int vbox_restart(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    return stop_vm(ctx, m, err) < 0 ? -1 : vbox_start(ctx, m, err);
}

static int vbox_kill(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    enum machine_state st;
    if (vbox_get_state(ctx, m, &st, err) < 0)
        return -1;
    if (st != MSTATE_RUNNING && st != MSTATE_PAUSED && st != MSTATE_STARTING &&
        st != MSTATE_STOPPING)
        return 0;
    return vbm(ctx, m, true, NULL, err, "controlvm", m->name, "poweroff", NULL);
}

/* ---- remove ---------------------------------------------------------------------- */

/* The host-only interface this machine made, with its DHCP server, once no other VM uses it. */
static void release_hostonly(const struct driver_ctx *ctx, const struct machine *m)
{
    const char *ifname = machine_driver_str(m, K_HO_IF);
    if (ifname == NULL || ifname[0] == '\0' || machine_driver_int(m, "HostOnlyAdapterCreated", 0) == 0)
        return;
    struct merr quiet = MERR_INIT;
    auto_free char *vms = NULL;
    if (vbm(ctx, m, false, &vms, &quiet, "list", "vms", NULL) < 0)
        return;
    for (const char *line = vms; line != NULL && *line == '"';) {
        const char *end = strchr(line + 1, '"');
        if (end == NULL)
            return;
        auto_free char *name = xasprintf("%.*s", (int)(end - line - 1), line + 1);
        auto_free char *info = NULL;
        char adapter[64];
        if (strcmp(name, m->name) != 0 &&
            (vbm(ctx, m, false, &info, &quiet, "showvminfo", name, "--machinereadable", NULL) < 0 ||
             (vbox_info_value(info, "hostonlyadapter2", adapter, sizeof adapter) &&
              strcmp(adapter, ifname) == 0)))
            return; /* in use, or we cannot tell */
        line = strchr(end, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    auto_free char *netname = xasprintf("HostInterfaceNetworking-%s", ifname);
    (void)vbm(ctx, m, true, NULL, &quiet, "dhcpserver", "remove", "--netname", netname, NULL);
    (void)vbm(ctx, m, true, NULL, &quiet, "hostonlyif", "remove", ifname, NULL);
}

/* Everything of the machine's: the VM with its disks, media a half-made create registered, the
 * host-only interface when it was made for this machine and nobody else uses it. */
static int vbox_remove(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    bool gone;
    auto_free char *info = vm_info(ctx, m, &gone, err);
    if (info == NULL && !gone)
        return -1;
    enum machine_state st = info != NULL ? vbox_state_from_info(info) : MSTATE_NONE;
    if ((st == MSTATE_RUNNING || st == MSTATE_PAUSED || st == MSTATE_STARTING ||
         st == MSTATE_STOPPING) &&
        vbm(ctx, m, true, NULL, err, "controlvm", m->name, "poweroff", NULL) < 0)
        return -1;
    int lock = vbox_lock(ctx, err);
    if (lock < 0)
        return -1;
    int rc = 0;
    if (info != NULL)
        rc = vbm(ctx, m, true, NULL, err, "unregistervm", m->name, "--delete", NULL);
    auto_free char *dir = store_machine_dir(ctx->store, m->name);
    static const char *const disks[] = { "disk.vmdk", "config.vmdk" };
    struct merr quiet = MERR_INIT;
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        auto_free char *p = path_join(dir, disks[i]);
        if (access(p, F_OK) == 0) { /* a medium a half-made create registered, or left */
            (void)vbm(ctx, m, true, NULL, &quiet, "closemedium", "disk", p, "--delete", NULL);
            unlink(p);
        }
    }
    auto_free char *iso = path_join(dir, IMAGE_NAME);
    if (rc == 0 && access(iso, F_OK) == 0) {
        (void)vbm(ctx, m, true, NULL, &quiet, "closemedium", "dvd", iso, NULL);
        unlink(iso);
    }
    if (rc == 0)
        release_hostonly(ctx, m);
    fs_unlock(lock);
    return rc;
}

/* `machine upgrade`: the current machine-os image replaces the VM's ISO; the data disk stays. */
static int vbox_upgrade(const struct driver_ctx *ctx, struct machine *m, struct merr *err)
{
    machine_driver_set_str(m, K_IMAGE, "");
    machine_driver_set_str(m, K_B2D, "");
    auto_free char *image = find_image(ctx, m, err);
    if (image == NULL)
        return -1;
    machine_driver_set_str(m, K_IMAGE, image);
    if (stop_vm(ctx, m, err) < 0)
        return -1;
    auto_free char *dir = store_machine_dir(ctx->store, m->name);
    auto_free char *iso = path_join(dir, IMAGE_NAME);
    if (fs_copy_file(image, iso, 0644, err) < 0)
        return -1;
    return vbox_start(ctx, m, err);
}

static bool vbox_usable(const struct driver_ctx *ctx)
{
    (void)ctx;
    static const char *const envs[] = { "VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH" };
    for (size_t i = 0; i < 2; i++) {
        const char *dir = getenv(envs[i]);
        auto_free char *p = dir != NULL && dir[0] != '\0' ? path_join(dir, "VBoxManage") : NULL;
        if (p != NULL && access(p, X_OK) == 0)
            return true;
    }
    const char *path = getenv("PATH");
    auto_free char *copy = xstrdup(path != NULL ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        auto_free char *p = path_join(d, "VBoxManage");
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

const struct driver driver_virtualbox = {
    .name = "virtualbox",
    .description = "a VirtualBox VM booting machine-os, through VBoxManage",
    .flags = vbox_flags,
    .uses_ssh = true,
    .usable = vbox_usable,
    .precreate_check = vbox_precreate_check,
    .create = vbox_create,
    .remove = vbox_remove,
    .start = vbox_start,
    .stop = vbox_stop,
    .restart = vbox_restart,
    .kill = vbox_kill,
    .upgrade = vbox_upgrade,
    .get_state = vbox_get_state,
    .get_ip = vbox_get_ip,
};
