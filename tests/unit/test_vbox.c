/* The virtualbox driver: its parsers fed real VBoxManage output (tests/unit/data/vbox/), and its
 * verbs' VBoxManage argv sequences against golden files (tests/unit/golden/vbox-*.txt) through a
 * scripted stand-in for the command runner, including the failure paths and the rollback. */
#define MACHINE_VBOX_PRIV
#include "test_helpers.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "driver.h"
#include "log.h"
#include "machine.h"
#include "registry.h"
#include "store.h"
#include "strv.h"
#include "virtualbox/vbox-priv.h"

#ifndef MACHINE_TEST_DIR
#error "MACHINE_TEST_DIR names tests/"
#endif

/* the scripted answers below are tables whose trailing fields are mostly left out */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static char *sample(const char *name)
{
    auto_free char *path = xasprintf("%s/unit/data/vbox/%s", MACHINE_TEST_DIR, name);
    char *text = NULL;
    size_t len = 0;
    struct merr err = MERR_INIT;
    assert_int_equal(fs_read_file(path, 1 << 20, &text, &len, &err), 0);
    return text;
}

/* ---- parsers --------------------------------------------------------------------- */

static void test_version(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    int major = 0, minor = 0;
    auto_free char *v5 = sample("version-5.0.txt"), *v4 = sample("version-4.3.txt"),
                   *v7 = sample("version-7.0-warning.txt");
    assert_int_equal(vbox_parse_version(v5, &major, &minor, &err), 0);
    assert_int_equal(major * 100 + minor, 500);
    assert_int_equal(vbox_parse_version(v4, &major, &minor, &err), 0);
    assert_int_equal(major * 100 + minor, 403);
    assert_int_equal(vbox_parse_version(v7, &major, &minor, &err), 0);
    assert_int_equal(major * 100 + minor, 700);
    assert_int_equal(vbox_parse_version("VBoxManage: error: oops\n", &major, &minor, &err), -1);
    assert_int_equal(err.code, MERR_PROTOCOL);
}

static void test_showvminfo(void **state)
{
    (void)state;
    auto_free char *run = sample("showvminfo-running.txt"), *off = sample("showvminfo-poweroff.txt");
    char v[256];
    assert_true(vbox_info_value(run, "macaddress2", v, sizeof v));
    assert_string_equal(v, "004488AABBCC");
    assert_true(vbox_info_value(run, "memory", v, sizeof v));
    assert_string_equal(v, "2048");
    assert_true(vbox_info_value(run, "SATA-1-0", v, sizeof v));
    assert_string_equal(v, "/Volumes/Data/Users/jb/.docker/machine/machines/default/disk.vmdk");
    assert_true(vbox_info_value(run, "Forwarding(0)", v, sizeof v));
    assert_string_equal(v, "ssh,tcp,127.0.0.1,54146,,22");
    assert_true(vbox_info_value(run, "hostonlyadapter2", v, sizeof v));
    assert_string_equal(v, "vboxnet1");
    assert_false(vbox_info_value(run, "macaddress3", v, sizeof v));
    assert_false(vbox_info_value(run, "macaddress", v, sizeof v)); /* no prefix matches */
    assert_int_equal(vbox_state_from_info(run), MSTATE_RUNNING);
    assert_int_equal(vbox_state_from_info(off), MSTATE_STOPPED);
    assert_int_equal(vbox_state_from_info("VMState=\"paused\"\n"), MSTATE_PAUSED);
    assert_int_equal(vbox_state_from_info("VMState=\"saved\"\n"), MSTATE_SAVED);
    assert_int_equal(vbox_state_from_info("VMState=\"aborted\"\n"), MSTATE_STOPPED);
    assert_int_equal(vbox_state_from_info("VMState=\"whatever\"\n"), MSTATE_ERROR);
    assert_int_equal(vbox_state_from_info("VMState=\n"), MSTATE_ERROR);
    assert_int_equal(vbox_state_from_info(""), MSTATE_ERROR);
}

static void test_hostonlyifs(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    auto_free char *two = sample("hostonlyifs-two.txt"), *win = sample("hostonlyifs-windows.txt");
    auto_free struct vbox_hostonlyif *ifs = NULL;
    size_t n = 0;
    assert_int_equal(vbox_parse_hostonlyifs(two, &ifs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ifs[0].name, "vboxnet0");
    assert_string_equal(ifs[0].ip, "192.168.99.1");
    assert_string_equal(ifs[0].mask, "255.255.255.0");
    assert_string_equal(ifs[1].name, "vboxnet1");
    assert_string_equal(ifs[1].ip, "169.254.37.187");
    assert_string_equal(ifs[1].netname, "HostInterfaceNetworking-vboxnet1");
    auto_free struct vbox_hostonlyif *wifs = NULL;
    assert_int_equal(vbox_parse_hostonlyifs(win, &wifs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(wifs[1].name, "VirtualBox Host-Only Ethernet Adapter #2");
    assert_string_equal(wifs[1].ip, "192.168.99.1");
    auto_free struct vbox_hostonlyif *none = NULL;
    assert_int_equal(vbox_parse_hostonlyifs("", &none, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_dhcpservers(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    auto_free char *old = sample("dhcpservers-5.txt"), *new = sample("dhcpservers-7.txt");
    auto_free struct vbox_dhcpserver *a = NULL, *b = NULL;
    size_t n = 0;
    assert_int_equal(vbox_parse_dhcpservers(old, &a, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(a[0].netname, "HostInterfaceNetworking-vboxnet0");
    assert_string_equal(a[0].ip, "192.168.99.6");
    assert_string_equal(a[0].lower, "192.168.99.100");
    assert_true(a[0].enabled);
    assert_false(a[1].enabled);
    assert_int_equal(vbox_parse_dhcpservers(new, &b, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(b[0].ip, "192.168.56.100");
    assert_string_equal(b[0].upper, "192.168.56.254");
    assert_string_equal(b[0].mask, "255.255.255.0");
    assert_true(b[0].enabled);
    assert_string_equal(b[1].netname, "NatNetwork");
    assert_false(b[1].enabled);
}

static void test_small_outputs(void **state)
{
    (void)state;
    auto_free char *vms = sample("list-vms.txt"), *lease = sample("findlease.txt");
    auto_free char *set = sample("guestproperty-set.txt"), *unset = sample("guestproperty-unset.txt");
    assert_true(vbox_list_vms_has(vms, "default"));
    assert_true(vbox_list_vms_has(vms, "dev box"));
    assert_false(vbox_list_vms_has(vms, "dev"));
    assert_false(vbox_list_vms_has("", "default"));
    char v[64];
    assert_true(vbox_guestproperty_value(set, v, sizeof v));
    assert_string_equal(v, "192.168.99.100");
    assert_false(vbox_guestproperty_value(unset, v, sizeof v));
    assert_true(vbox_lease_ip(lease, v, sizeof v));
    assert_string_equal(v, "192.168.99.101");
    assert_false(vbox_lease_ip("VBoxManage: error: Could not find a lease\n", v, sizeof v));
    assert_true(vbox_created_hostonlyif("0%...10%...100%\nInterface 'vboxnet3' was successfully created\n",
                                        v, sizeof v));
    assert_string_equal(v, "vboxnet3");
    assert_false(vbox_created_hostonlyif("0%...\n", v, sizeof v));
    assert_true(vbox_cpuinfo_has_vtx("processor\t: 0\nflags\t\t: fpu vme de pse vmx ssse3\n"));
    assert_true(vbox_cpuinfo_has_vtx("flags\t\t: fpu svm\n"));
    assert_false(vbox_cpuinfo_has_vtx("flags\t\t: fpu vme vmxx svmx hypervisor\n"));
}

static void test_pick_hostonlyif(void **state)
{
    (void)state;
    struct merr err = MERR_INIT;
    auto_free char *two = sample("hostonlyifs-two.txt");
    auto_free struct vbox_hostonlyif *ifs = NULL;
    size_t n = 0;
    const struct vbox_hostonlyif *found = NULL;
    assert_int_equal(vbox_parse_hostonlyifs(two, &ifs, &n, &err), 0);
    const char *host[] = { "10.0.2.15/24", "172.17.0.1/16" };
    assert_int_equal(vbox_pick_hostonlyif("192.168.99.1/24", ifs, n, host, 2, &found, &err), 0);
    assert_non_null(found);
    assert_string_equal(found->name, "vboxnet0");
    assert_int_equal(vbox_pick_hostonlyif("192.168.100.1/24", ifs, n, host, 2, &found, &err), 0);
    assert_null(found); /* to be made */
    /* overlaps vboxnet0's 192.168.99.0/24 with another address */
    assert_int_equal(vbox_pick_hostonlyif("192.168.99.2/24", ifs, n, host, 2, &found, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    err = (struct merr)MERR_INIT;
    assert_int_equal(vbox_pick_hostonlyif("192.168.0.1/16", ifs, n, host, 2, &found, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    err = (struct merr)MERR_INIT;
    /* a host network */
    assert_int_equal(vbox_pick_hostonlyif("172.17.5.1/24", ifs, n, host, 2, &found, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    err = (struct merr)MERR_INIT;
    /* a network address, not the host's address on it; malformed */
    assert_int_equal(vbox_pick_hostonlyif("192.168.100.0/24", ifs, n, host, 2, &found, &err), -1);
    assert_int_equal(vbox_pick_hostonlyif("192.168.100.1", ifs, n, host, 2, &found, &err), -1);
    assert_int_equal(vbox_pick_hostonlyif("300.1.1.1/24", ifs, n, host, 2, &found, &err), -1);
}

static void test_dhcp_argv(void **state)
{
    (void)state;
    char **v = vbox_argv_dhcpserver_add("HostInterfaceNetworking-vboxnet0", 0xc0a86301u, 24);
    auto_free char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    for (size_t i = 0; v[i] != NULL; i++)
        fprintf(f, "%s%s", i ? " " : "", v[i]);
    fclose(f);
    assert_string_equal(line, "VBoxManage dhcpserver add --netname HostInterfaceNetworking-vboxnet0 "
                              "--ip 192.168.99.100 --netmask 255.255.255.0 --lowerip 192.168.99.101 "
                              "--upperip 192.168.99.254 --enable");
    strv_free(v);
}

/* ---- verbs against a scripted VBoxManage ------------------------------------------ */

/* The first rule whose prefix starts the call's words answers it (times > 0: only that often);
 * no rule: exit 0, no output. status -1: VBoxManage cannot be executed. */
struct rule {
    const char *prefix;
    int status;
    const char *out;
    const char *err;
    int times;
    int used;
};

struct fake {
    struct abuf log;
    struct rule *rules;
    const char *root; /* replaced by $STORE in the log */
};

static int fake_run(void *opaque, const struct cmd_spec *spec, struct cmd_result *res,
                    struct merr *err)
{
    struct fake *f = opaque;
    auto_free char *line = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&line, &len);
    for (size_t i = 1; spec->argv[i] != NULL; i++) {
        const char *a = spec->argv[i];
        size_t rl = strlen(f->root);
        const char *at = strstr(a, f->root);
        if (at != NULL)
            fprintf(mf, "%s%.*s$STORE%s", i > 1 ? " " : "", (int)(at - a), a, at + rl);
        else
            fprintf(mf, "%s%s", i > 1 ? " " : "", a);
    }
    fclose(mf);
    struct merr ignored = MERR_INIT;
    assert_int_equal(abuf_printf(&f->log, &ignored, "VBoxManage %s\n", line), 0);
    for (struct rule *r = f->rules; r != NULL && r->prefix != NULL; r++) {
        if (strncmp(line, r->prefix, strlen(r->prefix)) != 0 || (r->times > 0 && r->used >= r->times))
            continue;
        r->used++;
        if (r->status < 0)
            return merr_set(err, MERR_NOT_FOUND, ENOENT, "cannot execute '%s'", spec->argv[0]);
        res->status = r->status;
        if (r->out != NULL)
            assert_int_equal(abuf_append(&res->out, r->out, strlen(r->out), &ignored), 0);
        if (r->err != NULL)
            assert_int_equal(abuf_append(&res->err, r->err, strlen(r->err), &ignored), 0);
        return 0;
    }
    res->status = 0;
    return 0;
}

struct fx {
    char *root;
    struct store store;
    struct mlog log;
    struct fake fake;
    struct cmd_runner runner;
    struct driver_ctx ctx;
    struct machine *m;
};

static const char *const host_nets[] = { "10.0.2.15/24" };

static struct fx *fx_new(struct rule *rules)
{
    struct fx *f = calloc(1, sizeof *f);
    f->root = test_tmpdir();
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(f->root, &f->store, &err), 0);
    f->log = (struct mlog){ .level = MLOG_ERROR, .out = stderr };
    f->fake = (struct fake){ .rules = rules, .root = f->root };
    f->runner = (struct cmd_runner){ .run = fake_run, .opaque = &f->fake };
    f->ctx = (struct driver_ctx){ .log = &f->log, .store = &f->store, .timeout_ms = 5000,
                                  .stop_grace_ms = 3000, .command = &f->runner,
                                  .ssh_public_key = "ssh-ed25519 AAAAC3Nza vb1\n" };
    f->m = machine_new("vb1", "virtualbox");
    assert_int_equal(driver_apply_flags(&driver_virtualbox, f->m, NULL, NULL, &err), 0);
    machine_driver_set_str(f->m, "VBoxManage", "/opt/VirtualBox/VBoxManage");
    auto_free char *dir = store_machine_dir(&f->store, "vb1");
    assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
    auto_free char *iso = path_join(f->root, "boot.iso");
    assert_int_equal(fs_write_atomic(iso, "ISO", 3, 0644, &err), 0);
    machine_driver_set_str(f->m, "Image", iso);
    return f;
}

static void fx_free(struct fx *f)
{
    machine_free(f->m);
    abuf_release(&f->fake.log);
    store_release(&f->store);
    test_tmpdir_remove(f->root);
    free(f);
}

static void fx_mark(struct fx *f, const char *what)
{
    struct merr ignored = MERR_INIT;
    assert_int_equal(abuf_printf(&f->fake.log, &ignored, "# %s\n", what), 0);
}

/* The log with the NAT port (free, so different every run) as $PORT. */
static void assert_log(struct fx *f, const char *golden)
{
    char port[16];
    snprintf(port, sizeof port, ",%lld,", machine_driver_int(f->m, "NATSSHPort", 0));
    auto_free char *text = xstrdup(f->fake.log.data != NULL ? f->fake.log.data : "");
    char *p = strstr(text, port);
    auto_free char *out = p != NULL ? xasprintf("%.*s,$PORT,%s", (int)(p - text), text, p + strlen(port))
                                    : xstrdup(text);
    test_assert_golden(golden, out);
}

#define INFO_RUNNING "VMState=\"running\"\nmacaddress2=\"0800274F6A1D\"\n"
#define INFO_OFF "VMState=\"poweroff\"\nmacaddress2=\"0800274F6A1D\"\n"
#define NOT_FOUND_ERR "VBoxManage: error: Could not find a registered machine named 'vb1'\n"

static void test_create(void **state)
{
    (void)state;
    struct rule rules[] = {
        { "--version", 0, "7.0.14r161095\n" },
        { "list vms", 0, "\"default\" {9b89bf91-1395-4f35-8534-065efe39d7f0}\n" },
        { "list hostonlyifs", 0, "" },
        { "hostonlyif create", 0, "0%...100%\nInterface 'vboxnet0' was successfully created\n" },
        { "list dhcpservers", 0, "" },
        { "guestproperty get", 0, "No value set!\n" },
        { "showvminfo", 0, INFO_RUNNING },
        { "dhcpserver findlease", 1, "", "VBoxManage: error: Could not find a lease\n", 1 },
        { "dhcpserver findlease", 0, "IP Address:  192.168.99.101\nMAC Address: 08:00:27:4f:6a:1d\n" },
        { 0 },
    };
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    assert_int_equal(vbox_precreate_with(&f->ctx, f->m, "flags\t: fpu vmx\n", &err), 0);
    fx_mark(f, "create");
    assert_int_equal(vbox_create_with(&f->ctx, f->m, host_nets, 1, &err), 0);
    assert_string_equal(machine_driver_str(f->m, DKEY_IP), "192.168.99.101");
    assert_string_equal(machine_driver_str(f->m, "HostOnlyAdapter"), "vboxnet0");
    assert_int_equal(machine_driver_int(f->m, DKEY_SSH_PORT, 0), 22);
    /* the config disk went through convertfromraw; its raw copy is gone */
    auto_free char *raw = store_machine_file(&f->store, "vb1", "config.img");
    assert_false(fs_exists(raw));
    assert_log(f, "vbox-create.txt");
    fx_free(f);
}

static void test_power(void **state)
{
    (void)state;
    struct rule rules[] = {
        /* start: off; then the lease */
        { "showvminfo", 0, INFO_OFF, NULL, 1 },
        { "guestproperty get", 0, "Value: 192.168.99.101\n" },
        /* stop: running, still running after the button, then off */
        { "showvminfo", 0, INFO_RUNNING, NULL, 2 },
        { "showvminfo", 0, INFO_OFF, NULL, 1 },
        /* kill: running */
        { "showvminfo", 0, INFO_RUNNING, NULL, 1 },
        /* kill again: already off, nothing to do */
        { "showvminfo", 0, INFO_OFF, NULL, 1 },
        { 0 },
    };
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    fx_mark(f, "start");
    assert_int_equal(driver_start(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    fx_mark(f, "stop");
    assert_int_equal(driver_stop(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    fx_mark(f, "kill");
    assert_int_equal(driver_kill(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    fx_mark(f, "kill (stopped)");
    assert_int_equal(driver_kill(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    assert_log(f, "vbox-power.txt");
    fx_free(f);
}

static void test_stop_falls_back_to_poweroff(void **state)
{
    (void)state;
    struct rule rules[] = {
        { "showvminfo", 0, INFO_RUNNING },
        { "controlvm vb1 poweroff", 0, "" },
        { 0 },
    };
    struct fx *f = fx_new(rules);
    f->ctx.stop_grace_ms = 300; /* the guest ignores the button */
    struct merr err = MERR_INIT;
    assert_int_equal(driver_stop(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    const char *log = f->fake.log.data;
    assert_non_null(strstr(log, "VBoxManage controlvm vb1 acpipowerbutton\n"));
    assert_non_null(strstr(log, "VBoxManage controlvm vb1 poweroff\n"));
    assert_true(strstr(log, "acpipowerbutton") < strstr(log, "poweroff"));
    fx_free(f);
}

static void touch_media(struct fx *f)
{
    struct merr err = MERR_INIT;
    static const char *const files[] = { "disk.vmdk", "config.vmdk", "machine-os.iso" };
    for (size_t i = 0; i < 3; i++) {
        auto_free char *p = store_machine_file(&f->store, "vb1", files[i]);
        assert_int_equal(fs_write_atomic(p, "x", 1, 0600, &err), 0);
    }
}

static void test_rm(void **state)
{
    (void)state;
    struct rule rules[] = {
        { "showvminfo vb1", 0, INFO_RUNNING "hostonlyadapter2=\"vboxnet0\"\n" },
        { "list vms", 0, "\"vb1\" {7163bae0-5075-49fc-b3a7-b2831c06aa40}\n"
                         "\"other\" {9b89bf91-1395-4f35-8534-065efe39d7f0}\n" },
        { "showvminfo other", 0, "VMState=\"poweroff\"\nhostonlyadapter2=\"vboxnet7\"\n" },
        { 0 },
    };
    struct fx *f = fx_new(rules);
    machine_driver_set_str(f->m, "HostOnlyAdapter", "vboxnet0");
    machine_driver_set_int(f->m, "HostOnlyAdapterCreated", 1);
    touch_media(f);
    struct merr err = MERR_INIT;
    /* unregistervm --delete removes the disks in VirtualBox; here the stand-in leaves them, so
     * closemedium --delete is asked too */
    assert_int_equal(driver_remove(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    auto_free char *iso = store_machine_file(&f->store, "vb1", "machine-os.iso");
    assert_false(fs_exists(iso));
    fx_mark(f, "rm of a VM VirtualBox no longer knows");
    struct rule gone[] = { { "showvminfo", 1, "", NOT_FOUND_ERR }, { 0 } };
    f->fake.rules = gone;
    machine_driver_set_int(f->m, "HostOnlyAdapterCreated", 0);
    assert_int_equal(driver_remove(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    assert_log(f, "vbox-rm.txt");
    fx_free(f);
}

static void test_upgrade(void **state)
{
    (void)state;
    auto_free char *beside = NULL;
    static const char *const rel[] = { "../machine-os/machine-os.iso", NULL };
    beside = fs_find_beside_exe(rel);
    if (beside == NULL) {
        fprintf(stderr, "skipped: upgrade boots the built machine-os.iso, not built here\n");
        skip();
    }
    struct rule rules[] = {
        { "showvminfo", 0, INFO_RUNNING, NULL, 1 },
        { "showvminfo", 0, INFO_OFF, NULL, 2 },
        { "guestproperty get", 0, "Value: 192.168.99.101\n" },
        { 0 },
    };
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    assert_int_equal(driver_upgrade(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    assert_string_equal(machine_driver_str(f->m, "Image"), beside);
    assert_log(f, "vbox-upgrade.txt");
    fx_free(f);
}

/* While another machine process holds <store>/locks/virtualbox.lock, create changes nothing in
 * VirtualBox: it waits for the lock and, past its bound, fails busy without a call. */
static void test_lock_serialises(void **state)
{
    (void)state;
    struct rule rules[] = { { 0 } };
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    auto_free char *dir = path_join(f->root, "locks");
    assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
    auto_free char *path = path_join(dir, "virtualbox.lock");
    int held = fs_lock(path, 1000, &err);
    assert_true(held >= 0);
    f->ctx.timeout_ms = 50; /* the lock wait is bounded by six calls' worth: 300 ms */
    assert_int_equal(vbox_create_with(&f->ctx, f->m, host_nets, 1, &err), -1);
    assert_int_equal(err.code, MERR_BUSY);
    assert_null(f->fake.log.data != NULL && f->fake.log.data[0] != '\0' ? f->fake.log.data : NULL);
    err = (struct merr)MERR_INIT;
    assert_int_equal(driver_remove(&driver_virtualbox, &f->ctx, f->m, &err), -1);
    assert_int_equal(err.code, MERR_BUSY);
    fs_unlock(held);
    fx_free(f);
}

/* ---- failure paths --------------------------------------------------------------- */

static void expect_precreate(struct rule *rules, const char *cpuinfo, enum merr_code code,
                             const char *golden)
{
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    assert_int_equal(vbox_precreate_with(&f->ctx, f->m, cpuinfo, &err), -1);
    assert_int_equal(err.code, code);
    assert_log(f, golden);
    fx_free(f);
}

static void test_precreate_failures(void **state)
{
    (void)state;
    const char *vtx = "flags\t: fpu vmx\n";
    struct rule missing[] = { { "--version", -1 }, { 0 } };
    expect_precreate(missing, vtx, MERR_NOT_FOUND, "vbox-fail-missing.txt");
    struct rule old[] = { { "--version", 0, "4.3.30r101610\n" }, { 0 } };
    expect_precreate(old, vtx, MERR_UNSUPPORTED, "vbox-fail-too-old.txt");
    struct rule ok[] = { { "--version", 0, "5.0.4r102546\n" },
                         { "list vms", 0, "\"vb1\" {7163bae0-5075-49fc-b3a7-b2831c06aa40}\n" },
                         { 0 } };
    expect_precreate(ok, "flags\t: fpu hypervisor\n", MERR_UNSUPPORTED, "vbox-fail-no-vtx.txt");
    ok[0].used = ok[1].used = 0;
    expect_precreate(ok, vtx, MERR_EXISTS, "vbox-fail-name-taken.txt");
}

static void test_no_vtx_check_flag(void **state)
{
    (void)state;
    struct rule rules[] = { { "--version", 0, "7.0.14r161095\n" }, { "list vms", 0, "" }, { 0 } };
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    json_object_set_new(f->m->driver, "NoVTXCheck", json_true());
    assert_int_equal(vbox_precreate_with(&f->ctx, f->m, "flags\t: fpu\n", &err), 0);
    /* a share folder cannot be mounted by machine-os: refused, not dropped */
    machine_driver_set_str(f->m, "ShareFolder", "/home:/hosthome");
    assert_int_equal(vbox_precreate_with(&f->ctx, f->m, "flags\t: fpu\n", &err), -1);
    assert_int_equal(err.code, MERR_UNSUPPORTED);
    fx_free(f);
}

/* create fails (CIDR overlap; a call half way), then lifecycle's remove: the rollback argv. */
static void expect_create_rollback(struct rule *rules, enum merr_code code, const char *golden,
                                   bool media)
{
    struct fx *f = fx_new(rules);
    struct merr err = MERR_INIT;
    fx_mark(f, "create");
    assert_int_equal(vbox_create_with(&f->ctx, f->m, host_nets, 1, &err), -1);
    assert_int_equal(err.code, code);
    if (media)
        touch_media(f);
    fx_mark(f, "remove (lifecycle's undo)");
    assert_int_equal(driver_remove(&driver_virtualbox, &f->ctx, f->m, &err), 0);
    assert_log(f, golden);
    fx_free(f);
}

static void test_create_failures(void **state)
{
    (void)state;
    struct rule overlap[] = {
        { "list hostonlyifs", 0, "Name:            vboxnet0\nIPAddress:       192.168.99.1\n"
                                 "NetworkMask:     255.255.0.0\n" },
        { "showvminfo", 1, "", NOT_FOUND_ERR },
        { 0 },
    };
    expect_create_rollback(overlap, MERR_INVALID, "vbox-fail-cidr-overlap.txt", false);
    struct rule half[] = {
        { "list hostonlyifs", 0, "Name:            vboxnet0\nIPAddress:       192.168.99.1\n"
                                 "NetworkMask:     255.255.255.0\n"
                                 "VBoxNetworkName: HostInterfaceNetworking-vboxnet0\n" },
        { "list dhcpservers", 0, "NetworkName:    HostInterfaceNetworking-vboxnet0\n"
                                 "Enabled:        Yes\n" },
        { "storageattach vb1 --storagectl SATA --port 1", 1, "",
          "VBoxManage: error: Could not find file for the medium\n" },
        { "showvminfo", 0, INFO_OFF },
        { 0 },
    };
    expect_create_rollback(half, MERR_REMOTE, "vbox-fail-half-way.txt", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_showvminfo),
        cmocka_unit_test(test_hostonlyifs),
        cmocka_unit_test(test_dhcpservers),
        cmocka_unit_test(test_small_outputs),
        cmocka_unit_test(test_pick_hostonlyif),
        cmocka_unit_test(test_dhcp_argv),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_power),
        cmocka_unit_test(test_stop_falls_back_to_poweroff),
        cmocka_unit_test(test_rm),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_lock_serialises),
        cmocka_unit_test(test_precreate_failures),
        cmocka_unit_test(test_no_vtx_check_flag),
        cmocka_unit_test(test_create_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
