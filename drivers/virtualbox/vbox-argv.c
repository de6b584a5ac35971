/* The VBoxManage calls that build a machine's VM, as argv vectors (pure; compared with golden
 * files by tests/unit/test_vbox.c). The sequence follows docker-machine's virtualbox driver:
 * modifyvm for the hardware, nic1 NAT with an SSH forward, the SATA controller with the boot ISO
 * and the disks, nic2 host-only. machine-os finds its disks by serial, so the data and config
 * disks get their AHCI port's SerialNumber (VBoxInternal extradata). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "strv.h"
#include "vbox-priv.h"

static char **argv_of(const char *first, ...)
{
    char **v = strv_push(NULL, "VBoxManage");
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
        v = strv_push(v, s);
    va_end(ap);
    return v;
}

static const char *on_off(bool b)
{
    return b ? "on" : "off";
}

static char **attach(const char *vm, const char *port, const char *type, const char *medium)
{
    return argv_of("storageattach", vm, "--storagectl", VBOX_STORAGECTL, "--port", port,
                   "--device", "0", "--type", type, "--medium", medium, NULL);
}

static char **serial(const char *vm, const char *port, const char *value)
{
    auto_free char *key = xasprintf("VBoxInternal/Devices/ahci/0/Config/Port%s/SerialNumber", port);
    return argv_of("setextradata", vm, key, value, NULL);
}

char ***vbox_build_steps(const struct vbox_vm_spec *s)
{
    char cpus[24], mem[24];
    snprintf(cpus, sizeof cpus, "%ld", s->cpus);
    snprintf(mem, sizeof mem, "%ld", s->memory_mib);
    auto_free char *pf = xasprintf("ssh,tcp,127.0.0.1,%d,,22", s->ssh_port);
    char **steps[] = {
        argv_of("modifyvm", s->name, "--firmware", "bios", "--bioslogofadein", "off",
                "--bioslogofadeout", "off", "--bioslogodisplaytime", "0", "--biosbootmenu",
                "disabled", "--ostype", "Linux26_64", "--cpus", cpus, "--memory", mem, "--acpi",
                "on", "--ioapic", "on", "--rtcuseutc", "on", "--natdnshostresolver1",
                on_off(s->host_dns_resolver), "--natdnsproxy1", on_off(s->dns_proxy),
                "--cpuhotplug", "off", "--pae", "on", "--hpet", "on", "--hwvirtex", "on",
                "--nestedpaging", "on", "--largepages", "on", "--vtxvpid", "on", "--accelerate3d",
                "off", "--boot1", "dvd", "--longmode", "on", NULL),
        argv_of("modifyvm", s->name, "--nic1", "nat", "--nictype1", s->nat_nictype,
                "--cableconnected1", "on", NULL),
        argv_of("modifyvm", s->name, "--natpf1", pf, NULL),
        argv_of("storagectl", s->name, "--name", VBOX_STORAGECTL, "--add", "sata", "--hostiocache",
                "on", NULL),
        attach(s->name, "0", "dvddrive", s->iso),
        attach(s->name, "1", "hdd", s->disk),
        attach(s->name, "2", "hdd", s->config_disk),
        serial(s->name, "1", VBOX_DATA_SERIAL),
        serial(s->name, "2", VBOX_CONFIG_SERIAL),
        argv_of("modifyvm", s->name, "--nic2", "hostonly", "--nictype2", s->hostonly_nictype,
                "--nicpromisc2", s->hostonly_promisc, "--hostonlyadapter2", s->hostonly_if,
                "--cableconnected2", "on", NULL),
    };
    size_t n = sizeof steps / sizeof steps[0];
    char ***out = xcalloc(n + 1, sizeof *out);
    memcpy(out, steps, sizeof steps);
    return out;
}

void vbox_steps_free(char ***steps)
{
    for (size_t i = 0; steps != NULL && steps[i] != NULL; i++)
        strv_free(steps[i]);
    free(steps);
}

char **vbox_argv_dhcpserver_add(const char *netname, uint32_t net, int prefix)
{
    uint32_t mask = prefix <= 0 ? 0 : ~((1u << (32 - prefix)) - 1);
    uint32_t base = net & mask;
    char ip[16], nm[16], lo[16], hi[16];
    vbox_ip_text(base | 100, ip);
    vbox_ip_text(mask, nm);
    vbox_ip_text(base | 101, lo);
    vbox_ip_text(base | 254, hi);
    return argv_of("dhcpserver", "add", "--netname", netname, "--ip", ip, "--netmask", nm,
                   "--lowerip", lo, "--upperip", hi, "--enable", NULL);
}
