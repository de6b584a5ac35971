#!/usr/bin/env bash
# `machine create -d kvm` end to end against a real libvirtd started by this test inside its
# own mount and network namespaces (tests/vm/lib-libvirt.sh): TCG guests booting machine-os;
# ssh; `eval $(machine env k1)` + docker run of an image pulled from a registry the guest reaches
# inside the namespace; stop/start (certificate renewed when the address changes); upgrade keeps
# the data disk; rm leaves no domain, volume, network or file; a create that fails half way
# removes what it made.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib-libvirt.sh"
libvirt_enter "$0" "$@"
set -euo pipefail
source "$here/../integration/lib/assert.sh"
source "$here/../integration/lib/registry.sh"
source "$here/../integration/lib/images.sh"

M=${MACHINE_BIN:?}
DOCKER=/usr/local/bin/docker
[ -s "${MACHINE_BUILD:?}/machine-os/machine-os.iso" ] || fail "machine-os is not built (cmake --build build --target machine-os)"
T=$(mktemp -d /tmp/test-kvm-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
cleanup() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        virsh list --all >&2 2>/dev/null
        for c in /var/log/libvirt/qemu/*.log; do [ -f "$c" ] && tail -n 5 "$c" >&2; done
    fi
    for n in $(virsh list --name 2>/dev/null); do virsh destroy "$n" >/dev/null 2>&1; done
    registry_cleanup 2>/dev/null || true
    libvirt_stop
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }
d() { timeout 180 "$DOCKER" "$@"; }

libvirt_start
images_build >/dev/null

step "create -d kvm (no -d: kvm is the default when libvirt answers)"
t0=$(date +%s)
out=$("$M" create --kvm-memory 768 --engine-insecure-registry 192.168.0.0/16 k1 2>&1) ||
    { echo "$out"; fail "machine create -d kvm k1"; }
echo "$out" | tail -n 4
assert_contains "$out" "with driver 'kvm'" "kvm is the default driver"
assert__ok "create took $(($(date +%s) - t0)) s (TCG)"
assert_eq "$("$M" ls --format '{{.Name}} {{.DriverName}} {{.State}}' 2>/dev/null || "$M" ls -q)" "k1 kvm Running" "ls shows it running"
type=$(virsh dumpxml k1 | sed -n "s/^<domain type='\([a-z]*\)'.*/\1/p")
assert_eq "$type" "qemu" "auto picked TCG: KVM cannot run a guest on this machine"
assert_contains "$(virsh net-dumpxml machine)" "<forward mode='nat'" "a private NAT network 'machine' was made"
ip1=$("$M" ip k1)
assert_contains "$(virsh net-dhcp-leases machine)" "$ip1" "the address comes from libvirt's DHCP lease"

step "ssh and the engine over TLS"
assert_contains "$("$M" ssh k1 -- uname -a)" "Linux k1" "machine ssh k1 -- uname -a"
assert_eq "$("$M" ssh k1 -- cat /proc/self/cgroup)" "0::/" "machine-os runs cgroup v2"
gw=$(virsh net-dumpxml machine | sed -n "s/.*<ip address='\([0-9.]*\)'.*/\1/p" | head -n1)
REGISTRY_HOST=$gw registry_start "$T/registry" >/dev/null
images_push "$REGISTRY_ADDR" >/dev/null
eval "$("$M" env k1)"
assert_eq "$DOCKER_HOST" "tcp://$ip1:2376" "env points DOCKER_HOST at the VM"
assert_eq "$(d run --rm "$REGISTRY_ADDR/test/img:v1" echo hi)" "hi" "docker run --rm IMG echo hi on the VM"
d run -d --name keeper "$REGISTRY_ADDR/test/img:v1" sleep 1000 >/dev/null

step "stop, start: the data disk persists, the certificate follows the address"
"$M" stop k1 >/dev/null
assert_eq "$("$M" status k1)" "Stopped" "stopped (ACPI shutdown)"
virsh net-update machine delete ip-dhcp-host "<host ip='$ip1'/>" --live >/dev/null 2>&1 || true
out=$("$M" start k1 2>&1) || { echo "$out"; fail "machine start k1"; }
ip2=$("$M" ip k1)
if [ "$ip2" != "$ip1" ]; then
    assert_contains "$out" "issuing a new certificate" "a new address got a new certificate"
fi
eval "$("$M" env k1)"
assert_contains "$(d ps -a --format '{{.Names}} {{.Status}}')" "keeper Exited" "the container survived the reboot (data disk)"
assert_eq "$(d run --rm "$REGISTRY_ADDR/test/img:v1" echo again)" "again" "docker works after start"

step "upgrade boots the current image and keeps the data"
out=$("$M" upgrade k1 2>&1) || { echo "$out"; fail "machine upgrade k1"; }
assert_contains "$out" "Booting the current machine-os image" "upgrade swaps the boot image"
eval "$("$M" env k1)"
assert_contains "$(d ps -a --format '{{.Names}}')" "keeper" "the data disk survived the upgrade"

step "rm leaves nothing"
"$M" rm -y k1 >/dev/null
assert_eq "$(virsh list --all --name | grep -c . || true)" "0" "no domain left"
assert_eq "$(virsh vol-list machine 2>/dev/null | grep -c 'k1-' || true)" "0" "no volume left"
assert_exit 1 virsh net-info machine
assert_eq "$(ls -A "$MACHINE_STORAGE_PATH/machines")" "" "no machine directory left"

step "a create that fails half way removes what it made"
# 256 vCPUs pass the driver's checks but not the 'pc' machine type: libvirt refuses the VM after the
# network and the volumes were made.
out=$("$M" create -d kvm --kvm-cpu-count 256 --kvm-memory 256 k2 2>&1) &&
    fail "a VM that cannot start was reported created: $out"
assert_contains "$out" "cannot define the VM" "create fails once its network and volumes exist: $(echo "$out" | tail -n1)"
assert_eq "$(virsh list --all --name | grep -c . || true)" "0" "its domain is gone"
assert_eq "$(virsh vol-list machine 2>/dev/null | grep -c 'k2-' || true)" "0" "its volumes are gone"
assert_exit 1 virsh net-info machine
ls_out=$("$M" ls 2>&1 || true)
echo "$ls_out" | grep -E "^k2 .*Error" >/dev/null || fail "the failed create is not listed as Error: $ls_out"
assert__ok "the failed create stays listed as Error until rm"
assert_exit 0 "$M" rm -y k2
assert_eq "$(ls -A "$MACHINE_STORAGE_PATH/machines")" "" "rm removes the failed machine"
pass
