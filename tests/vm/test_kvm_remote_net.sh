#!/usr/bin/env bash
# Issue 18: `machine create -d kvm` against a libvirtd whose networks live in another network
# namespace (as with a qemu+ssh:// URI, where the NAT network is on the other host). libvirtd
# runs in this test's namespaces (tests/vm/lib-libvirt.sh); machine runs in a network namespace
# of its own, reaching libvirtd's socket through the shared filesystem. create must see at once
# that the network's bridge is not a local interface, fail naming the network, the bridge and
# the ways out, and leave nothing behind - never dial the VM's private address.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib-libvirt.sh"
libvirt_enter "$0" "$@"
set -euo pipefail
source "$here/../integration/lib/assert.sh"

M=${MACHINE_BIN:?}
[ -s "${MACHINE_BUILD:?}/machine-os/machine-os.iso" ] || fail "machine-os is not built (cmake --build build --target machine-os)"
T=$(mktemp -d /tmp/test-kvm-remote-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
cleanup() {
    for n in $(virsh list --name 2>/dev/null); do virsh destroy "$n" >/dev/null 2>&1; done
    libvirt_stop
    rm -rf "$T"
}
trap cleanup EXIT

libvirt_start
# The other side of the "remote" libvirtd: a network namespace with only loopback.
set +e
out=$(timeout 100 unshare --net -- sh -c 'ip link set lo up; exec "$@"' sh \
    "$M" create -d kvm --kvm-domain-type qemu --kvm-memory 512 r1 2>&1)
rc=$?
set -e
echo "$out" | tail -n 3 >&2
[ "$rc" -ne 0 ] || fail "create succeeded against libvirt networks this host cannot reach"
[ "$rc" -ne 124 ] || fail "create waited (timeout) instead of failing at once"
assert_contains "$out" "the libvirt network 'machine' is not on this host" "the failure names the network"
assert_contains "$out" "its bridge 'virbr" "… and its bridge"
assert_contains "$out" "run machine where libvirtd runs" "… and one way out"
assert_contains "$out" "routed --kvm-network that this host reaches" "… and the other"
assert_not_contains() { case "$1" in *"$2"*) fail "$3: '$2' in output" ;; *) assert__ok "$3" ;; esac; }
assert_not_contains "$out" "banner" "no SSH dial was attempted"
assert_eq "$(virsh list --all --name | grep -c r1 || true)" 0 "no domain is left"
assert_eq "$(virsh net-list --all --name | grep -cx machine || true)" 0 "the network made for it is removed"
"$M" rm -y -f r1 >/dev/null 2>&1 || true

# Where libvirtd runs, the same create gets past that check (its bridge is local): the
# rest of create -d kvm is tests/vm/test_kvm.sh.
assert__ok "kvm create against another namespace's libvirt network fails at once"
