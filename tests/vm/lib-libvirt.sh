#!/usr/bin/env bash
# A private libvirtd for VM tests and benchmarks: the calling script re-execs itself in new
# mount and network namespaces (libvirt_enter "$0" "$@" as its first line), where libvirt's
# state, sockets and logs live on tmpfs and its networks and guests exist only in that network
# namespace. Everything the test runs after that (the machine CLI, the docker CLI, a registry)
# runs inside too.
#     libvirt_enter "$0" "$@"     # re-exec; returns inside the namespaces
#     libvirt_start               # virtlogd + libvirtd, bounded wait for the socket
#     libvirt_stop
libvirt_enter() {
    if [ "${MACHINE_IN_LIBVIRT_NS:-}" != 1 ]; then
        export MACHINE_IN_LIBVIRT_NS=1
        exec unshare --mount --net --propagation private --fork -- bash "$@"
    fi
    ip link set lo up
    local d
    for d in /run/libvirt /var/lib/libvirt /var/log/libvirt; do
        mkdir -p "$d"
        mount -t tmpfs -o mode=0755 tmpfs "$d"
    done
    # libvirt's cache of qemu's capabilities survives between runs (probing takes a minute)
    local cache=${MACHINE_TEST_CACHE:-/var/cache/machine-tests}/libvirt-cache
    mkdir -p "$cache" /var/cache/libvirt
    mount --bind "$cache" /var/cache/libvirt
    mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq /var/log/libvirt/qemu
    # a private copy of the configuration: no autostarted default network here
    local etc=/var/lib/libvirt/.etc # on the private tmpfs: gone with the namespace
    mkdir -p "$etc"
    cp -a /etc/libvirt/. "$etc/"
    # nothing defined on this host leaks in: no pools, networks or domains, no autostart
    rm -f "$etc"/qemu/networks/autostart/*.xml "$etc"/storage/autostart/*.xml "$etc"/storage/*.xml \
        "$etc"/qemu/*.xml
    find "$etc/qemu/networks" -maxdepth 1 -name '*.xml' ! -name default.xml -delete 2>/dev/null || true
    mount --bind "$etc" /etc/libvirt
}

libvirt_start() {
    command -v libvirtd >/dev/null || { echo "libvirtd is missing (scripts/install-deps)" >&2; return 1; }
    # pid files on the private tmpfs: a libvirtd of the host (or of another test) keeps its own
    virtlogd -d -p /run/libvirt/virtlogd.pid
    # libvirtd gets its own view where /dev/kvm is /dev/null: on machines whose KVM cannot run a
    # guest (shared/reference/environment.md) its capability probe would hang on KVM for a
    # minute at the first define. The machine CLI still sees the real /dev/kvm, so its own probe
    # (drivers/kvm/kvm-probe.c) is what decides between kvm and TCG.
    if [ -e /dev/kvm ]; then
        unshare --mount --propagation private -- \
            sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd -d -p /run/libvirt/libvirtd.pid'
    else
        libvirtd -d -p /run/libvirt/libvirtd.pid
    fi
    local _
    for _ in $(seq 150); do
        if [ -S /run/libvirt/libvirt-sock ] && virsh -c qemu:///system version >/dev/null 2>&1; then
            # qemu's capabilities are probed now (cached), not inside the first create
            virsh -c qemu:///system domcapabilities --virttype qemu >/dev/null 2>&1 || true
            return 0
        fi
        sleep 0.2
    done
    echo "libvirtd did not start" >&2
    return 1
}

libvirt_stop() { # only the daemons and guests of this network namespace
    local p me
    me=$(readlink /proc/self/ns/net)
    for p in $(pidof libvirtd virtlogd dnsmasq qemu-system-x86_64 2>/dev/null); do
        [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$me" ] && kill "$p" 2>/dev/null
    done
    return 0
}
