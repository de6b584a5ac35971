/* The kvm driver: its XML against golden files (tests/unit/golden/kvm-*.xml), the subnet choice,
 * libvirt network XML parsing, state mapping and the config disk; and its verbs against libvirt's
 * test:///default driver (a process-wide fake hypervisor with a running domain "test" and a
 * network "default"). */
#define MACHINE_KVM_PRIV
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "driver.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "kvm/kvm-priv.h"
#include "machine.h"
#include "registry.h"
#include "store.h"
#include "test_helpers.h"

#ifndef MACHINE_TEST_DIR
#error "MACHINE_TEST_DIR names tests/"
#endif

#define assert_golden test_assert_golden

static void test_domain_xml_golden(void **state)
{
    (void)state;
    struct kvm_domain_spec s = {
        .name = "lab1",
        .type = "qemu",
        .memory_mib = 1024,
        .cpus = 2,
        .iso_path = "/var/lib/libvirt/images/machine/lab1-boot.iso",
        .data_path = "/var/lib/libvirt/images/machine/lab1-data.img",
        .config_path = "/var/lib/libvirt/images/machine/lab1-config.img",
        .network = "machine",
        .console_log = "/var/log/libvirt/qemu/lab1-console.log",
    };
    auto_free char *xml = kvm_domain_xml(&s);
    assert_golden("kvm-domain.xml", xml);
    /* kvm: host CPU passed through; no console log element without a log file */
    s.type = "kvm";
    s.console_log = NULL;
    auto_free char *kvm = kvm_domain_xml(&s);
    assert_golden("kvm-domain-kvm.xml", kvm);
    /* every value is escaped */
    s.network = "a&b'<c>\"";
    auto_free char *esc = kvm_domain_xml(&s);
    assert_non_null(strstr(esc, "<source network='a&amp;b&apos;&lt;c&gt;&quot;'/>"));
}

/* `--kvm-domain-type VALUE` as create applies it (driver flags, then the type create settles
 * on), rendered into the domain XML: an explicit value reaches <domain type=...> (it was lost:
 * the stored string was freed while create still used it). */
static char *const *type_lookup(void *opaque, const char *flag)
{
    return strcmp(flag, "kvm-domain-type") == 0 ? (char *const *)opaque : NULL;
}

static void test_domain_type_flag_reaches_xml(void **state)
{
    (void)state;
    const char *values[] = { "kvm", "qemu", "auto" };
    const char *golden[] = { "kvm-domain-kvm.xml", "kvm-domain-qemu.xml", "kvm-domain-kvm.xml" };
    for (size_t i = 0; i < 3; i++) {
        auto_machine struct machine *m = machine_new("lab1", "kvm");
        char *given[] = { (char *)values[i], NULL };
        struct merr err = MERR_INIT;
        assert_int_equal(driver_apply_flags(&driver_kvm, m, type_lookup, given, &err), 0);
        machine_driver_set_int(m, "CPU", 2);
        /* explicit values are used as stored; auto's verdict here is kvm */
        const char *stored = machine_driver_str(m, "DomainType");
        const char *type = kvm_settle_domain_type(m, strcmp(stored, "auto") == 0 ? "kvm" : stored);
        struct kvm_domain_spec s = {
            .name = m->name,
            .type = type,
            .memory_mib = (unsigned)machine_driver_int(m, "Memory", 0),
            .cpus = (unsigned)machine_driver_int(m, "CPU", 0),
            .iso_path = "/var/lib/libvirt/images/machine/lab1-boot.iso",
            .data_path = "/var/lib/libvirt/images/machine/lab1-data.img",
            .config_path = "/var/lib/libvirt/images/machine/lab1-config.img",
            .network = "machine",
        };
        auto_free char *xml = kvm_domain_xml(&s);
        assert_golden(golden[i], xml);
        assert_string_equal(machine_driver_str(m, "DomainType"), i == 1 ? "qemu" : "kvm");
    }
}

/* Whether this host reaches a libvirt network (issue 18): a captured /proc/net/route (default
 * route via eth0, two connected networks, an unreachable guard route) and interface lists. */
static const char routes_sample[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "machine0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "*\t0000D50A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    "virbr1\t002BA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

static void test_network_reachability(void **state)
{
    (void)state;
    char iface[32];
    assert_true(kvm_route_reaches(routes_sample, "192.0.2.77", iface, sizeof iface));
    assert_string_equal(iface, "eth0");
    assert_true(kvm_route_reaches(routes_sample, "172.18.5.0/24", iface, sizeof iface));
    assert_string_equal(iface, "machine0");
    assert_true(kvm_route_reaches(routes_sample, "192.168.43.10", iface, sizeof iface));
    assert_string_equal(iface, "virbr1");
    /* only the default route: elsewhere */
    assert_false(kvm_route_reaches(routes_sample, "192.168.42.0/24", NULL, 0));
    assert_false(kvm_route_reaches(routes_sample, "192.168.42.17", NULL, 0));
    /* a subnet wider than the route is not covered; an unreachable route reaches nothing */
    assert_false(kvm_route_reaches(routes_sample, "172.18.0.0/15", NULL, 0));
    assert_false(kvm_route_reaches(routes_sample, "10.213.4.2", NULL, 0));
    assert_false(kvm_route_reaches(routes_sample, "not-an-ip", NULL, 0));

    const char *const ifaces[] = { "lo", "eth0", "machine0", "virbr1" };
    struct merr err = MERR_INIT;
    /* libvirtd here: its bridge is ours */
    struct kvm_reach local = { .network = "machine", .bridge = "virbr1", .ifaces = ifaces,
                               .n_ifaces = 4, .routes = routes_sample, .target = "192.168.43.0/24" };
    assert_int_equal(kvm_check_reachable(&local, &err), 0);
    /* libvirtd elsewhere: a bridge we do not have, and only the default route to its subnet */
    struct kvm_reach remote = { .network = "machine", .bridge = "virbr0", .ifaces = ifaces,
                                .n_ifaces = 4, .routes = routes_sample, .target = "192.168.42.0/24" };
    assert_int_equal(kvm_check_reachable(&remote, &err), -1);
    assert_int_equal(err.code, MERR_UNREACHABLE);
    assert_non_null(strstr(err.msg, "'machine'"));
    assert_non_null(strstr(err.msg, "'virbr0'"));
    assert_non_null(strstr(err.msg, "run machine where libvirtd runs"));
    assert_non_null(strstr(err.msg, "--kvm-network"));
    /* a bridged network elsewhere whose VM address this host routes to: fine */
    struct kvm_reach bridged = { .network = "lan", .bridge = "br0", .ifaces = ifaces,
                                 .n_ifaces = 4, .routes = routes_sample, .target = "192.0.2.50" };
    assert_int_equal(kvm_check_reachable(&bridged, &err), 0);
    bridged.target = "198.51.100.9";
    assert_int_equal(kvm_check_reachable(&bridged, &err), -1);
}

static void test_network_xml_bridge(void **state)
{
    (void)state;
    char b[64];
    kvm_network_xml_bridge("<network><name>machine</name><bridge name='virbr3' stp='on' "
                           "delay='0'/><ip address='192.168.42.1'/></network>", b, sizeof b);
    assert_string_equal(b, "virbr3");
    kvm_network_xml_bridge("<network><name>x</name></network>", b, sizeof b);
    assert_string_equal(b, "");
}

static void test_network_volume_pool_xml_golden(void **state)
{
    (void)state;
    auto_free char *net = kvm_network_xml("machine", "192.168.42");
    assert_golden("kvm-network.xml", net);
    auto_free char *vol = kvm_volume_xml("lab1-data.img", 20000ull << 20);
    assert_golden("kvm-volume.xml", vol);
    auto_free char *pool = kvm_pool_xml("machine", "/var/lib/libvirt/images/machine");
    assert_golden("kvm-pool.xml", pool);
}

static void test_pick_subnet(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    char out[16];
    assert_int_equal(kvm_pick_subnet(NULL, 0, out, &err), 0);
    assert_string_equal(out, "192.168.42");
    const char *a[] = { "192.168.122.1/24", "192.168.42.1/24", "10.0.0.0/8", "garbage" };
    assert_int_equal(kvm_pick_subnet(a, 4, out, &err), 0);
    assert_string_equal(out, "192.168.43");
    const char *b[] = { "192.168.42.128/25", "192.168.43.7/32" }; /* partial overlaps count */
    assert_int_equal(kvm_pick_subnet(b, 2, out, &err), 0);
    assert_string_equal(out, "192.168.44");
    const char *c[] = { "192.168.0.0/16" }; /* a wider route covers them all */
    assert_int_equal(kvm_pick_subnet(c, 1, out, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
}

static void test_network_xml_subnets(void **state)
{
    (void)state;
    const char *xml = "<network>\n  <name>default</name>\n"
                      "  <ip address='192.168.122.1' netmask='255.255.255.0'>\n"
                      "    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>\n"
                      "  </ip>\n"
                      "  <ip family='ipv6' address='2001:db8::1' prefix='64'/>\n"
                      "  <ip address=\"10.9.0.1\" prefix=\"16\"/>\n"
                      "</network>\n";
    char **list = NULL;
    size_t n = 0;
    struct merr err = MERR_INIT;
    assert_int_equal(kvm_network_xml_subnets(xml, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0], "192.168.122.1/24");
    assert_string_equal(list[1], "10.9.0.1/16");
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void test_state_mapping(void **state)
{
    (void)state;
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_RUNNING), MSTATE_RUNNING);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_BLOCKED), MSTATE_RUNNING);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_PAUSED), MSTATE_PAUSED);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_PMSUSPENDED), MSTATE_PAUSED);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_SHUTDOWN), MSTATE_STOPPING);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_SHUTOFF), MSTATE_STOPPED);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_CRASHED), MSTATE_ERROR);
    assert_int_equal(kvm_state_from_libvirt(VIR_DOMAIN_NOSTATE), MSTATE_ERROR);
}

/* What machine-os reads at boot: a plain tar from byte 0 of a 1 MiB disk. */
static void test_config_disk(void **state)
{
    (void)state;
    char *disk = NULL;
    size_t len = 0;
    struct merr err = MERR_INIT;
    const char *key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx lab1\n";
    assert_int_equal(kvm_config_disk("lab1", key, &disk, &len, &err), 0);
    assert_int_equal(len, KVM_CONFIG_DISK_BYTES);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, disk, len), ARCHIVE_OK);
    struct archive_entry *e;
    char buf[256];
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "hostname");
    ssize_t n = archive_read_data(a, buf, sizeof buf);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "lab1\n", 5);
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "authorized_keys");
    n = archive_read_data(a, buf, sizeof buf);
    assert_int_equal(n, (ssize_t)strlen(key));
    assert_memory_equal(buf, key, strlen(key));
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
    free(disk);
    /* a config that does not fit is refused, not truncated */
    auto_free char *huge = malloc(KVM_CONFIG_DISK_BYTES + 1);
    memset(huge, 'k', KVM_CONFIG_DISK_BYTES);
    huge[KVM_CONFIG_DISK_BYTES] = '\0';
    assert_int_equal(kvm_config_disk("lab1", huge, &disk, &len, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

/* ---- the verbs against test:///default ---------------------------------- */

struct fx {
    virConnectPtr keep; /* test:///default keeps its state only while a connection is open */
    char *root;
    struct store store;
    struct driver_ctx ctx;
    struct mlog log;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->keep = virConnectOpen("test:///default");
    assert_non_null(f->keep);
    f->root = test_tmpdir();
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(f->root, &f->store, &err), 0);
    f->log = (struct mlog){ .level = MLOG_ERROR, .out = stderr };
    f->ctx = (struct driver_ctx){ .log = &f->log, .store = &f->store, .timeout_ms = 5000 };
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    store_release(&f->store);
    test_tmpdir_remove(f->root);
    virConnectClose(f->keep);
    free(f);
    return 0;
}

static struct machine *test_machine(const char *name)
{
    struct machine *m = machine_new(name, "kvm");
    machine_driver_set_str(m, "URI", "test:///default");
    machine_driver_set_str(m, "DomainType", "qemu");
    machine_driver_set_int(m, "Memory", 512);
    machine_driver_set_int(m, "CPU", 1);
    machine_driver_set_int(m, "DiskSize", 2048);
    return m;
}

/* The fake hypervisor's running domain "test": state, stop (ACPI), start, kill. */
static void test_verbs_on_test_driver(void **state)
{
    struct fx *f = *state;
    auto_machine struct machine *m = test_machine("test");
    struct merr err = MERR_INIT;
    enum machine_state st;
    assert_int_equal(driver_get_state(&driver_kvm, &f->ctx, m, &st, &err), 0);
    assert_int_equal(st, MSTATE_RUNNING);
    assert_int_equal(driver_stop(&driver_kvm, &f->ctx, m, &err), 0);
    assert_int_equal(driver_get_state(&driver_kvm, &f->ctx, m, &st, &err), 0);
    assert_int_equal(st, MSTATE_STOPPED);
    assert_int_equal(driver_kill(&driver_kvm, &f->ctx, m, &err), 0); /* already off: fine */
    auto_machine struct machine *gone = test_machine("no-such-vm");
    assert_int_equal(driver_get_state(&driver_kvm, &f->ctx, gone, &st, &err), 0);
    assert_int_equal(st, MSTATE_ERROR);
    assert_int_equal(driver_stop(&driver_kvm, &f->ctx, gone, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
}

static void test_precreate_checks(void **state)
{
    struct fx *f = *state;
    auto_free char *image = xasprintf("%s/machine-os.iso", f->root);
    struct merr err = MERR_INIT;
    assert_int_equal(fs_write_atomic(image, "iso", 3, 0644, &err), 0);
    auto_machine struct machine *m = test_machine("lab1");
    machine_driver_set_str(m, "Image", image);
    assert_int_equal(driver_precreate_check(&driver_kvm, &f->ctx, m, &err), 0);
    machine_driver_set_str(m, "Network", "no-such-net");
    assert_int_equal(driver_precreate_check(&driver_kvm, &f->ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    machine_driver_set_str(m, "Network", "default"); /* the test driver's network */
    assert_int_equal(driver_precreate_check(&driver_kvm, &f->ctx, m, &err), 0);
    auto_machine struct machine *dup = test_machine("test"); /* a domain of that name exists */
    machine_driver_set_str(dup, "Image", image);
    assert_int_equal(driver_precreate_check(&driver_kvm, &f->ctx, dup, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    /* ranges and choices are the flag table's, checked by core for every driver */
    machine_driver_set_int(m, "Memory", 16);
    assert_int_equal(driver_check_flags(&driver_kvm, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    machine_driver_set_int(m, "Memory", 512);
    machine_driver_set_str(m, "DomainType", "xen");
    assert_int_equal(driver_check_flags(&driver_kvm, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    machine_driver_set_str(m, "DomainType", "qemu");
    assert_int_equal(driver_check_flags(&driver_kvm, m, &err), 0);
    machine_driver_set_str(m, "Image", "/nonexistent/machine-os.iso");
    assert_int_equal(driver_precreate_check(&driver_kvm, &f->ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

/* A create that fails half way leaves its pieces to kvm_remove (lifecycle calls it), which
 * removes every domain, volume and network of the machine's. */
static void test_failed_create_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    auto_free char *image = xasprintf("%s/machine-os.iso", f->root);
    assert_int_equal(fs_write_atomic(image, "not really an iso", 17, 0644, &err), 0);
    auto_machine struct machine *m = test_machine("lab2");
    machine_driver_set_str(m, "Image", image);
    auto_free char *dir = store_machine_dir(&f->store, "lab2");
    assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
    /* test:///default has no virStorageVolUpload: the create fails after it made the network
     * and the volumes, the case this test is about. */
    f->ctx.ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPt7 lab2\n";
    assert_int_equal(driver_create(&driver_kvm, &f->ctx, m, &err), -1);
    assert_int_equal(err.code, MERR_IO);
    virConnectPtr c = virConnectOpen("test:///default");
    virNetworkPtr made = virNetworkLookupByName(c, "machine");
    assert_non_null(made); /* the driver undid nothing itself */
    virNetworkFree(made);
    assert_int_equal(driver_remove(&driver_kvm, &f->ctx, m, &err), 0);
    assert_non_null(c);
    virDomainPtr d = virDomainLookupByName(c, "lab2");
    assert_null(d);
    virNetworkPtr n = virNetworkLookupByName(c, "machine");
    assert_null(n); /* made for this machine only, so gone with it */
    virStoragePoolPtr p = virStoragePoolLookupByName(c, KVM_POOL_NAME);
    if (p != NULL) {
        virStorageVolPtr v = virStorageVolLookupByName(p, "lab2-data.img");
        assert_null(v);
        virStoragePoolFree(p);
    }
    virConnectClose(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_xml_golden),
        cmocka_unit_test(test_domain_type_flag_reaches_xml),
        cmocka_unit_test(test_network_volume_pool_xml_golden),
        cmocka_unit_test(test_network_reachability),
        cmocka_unit_test(test_network_xml_bridge),
        cmocka_unit_test(test_pick_subnet),
        cmocka_unit_test(test_network_xml_subnets),
        cmocka_unit_test(test_state_mapping),
        cmocka_unit_test(test_config_disk),
        cmocka_unit_test_setup_teardown(test_verbs_on_test_driver, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_precreate_checks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_failed_create_leaves_nothing, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
