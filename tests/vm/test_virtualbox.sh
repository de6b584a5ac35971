#!/usr/bin/env bash
# `machine create -d virtualbox` end to end against tests/helpers/VBoxManage, the stand-in for
# VirtualBox (none can be installed here): it keeps its VMs, media, host-only interfaces and DHCP
# servers in a directory and boots machine-os under qemu TCG with the memory, CPUs, SATA disks
# (found by their AHCI serials), NAT forward and host-only NIC the driver asked for. The whole test
# runs in a network namespace of its own (the host-only interface is a bridge made there).
# create (the image from --virtualbox-boot2docker-url over http on the namespace's loopback)
# -> ssh (host-only address; the NAT forward on 127.0.0.1 answers SSH too) -> env + docker
# run of an image loaded from the test caches -> stop -> start (the data disk kept) -> upgrade ->
# rm leaves nothing in the stand-in's state, no interface, no process.
set -euo pipefail
if [ -z "${VBOX_TEST_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "skipped: needs root for a network namespace"; exit 77; }
    exec unshare --net env VBOX_TEST_NETNS=1 bash "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib/assert.sh"
source "$here/../integration/lib/images.sh"

M=${MACHINE_BIN:?}
DOCKER=/usr/local/bin/docker
VBM=$here/../helpers/VBoxManage
ISO=${MACHINE_BUILD:?}/machine-os/machine-os.iso
[ -s "$ISO" ] || fail "machine-os is not built (cmake --build build --target machine-os)"
for t in qemu-system-x86_64 dnsmasq skopeo; do
    command -v "$t" >/dev/null || fail "$t is missing (scripts/install-deps)"
done
T=$(mktemp -d /tmp/test-virtualbox-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store VBOX_STANDIN_DIR=$T/vbox VBOX_STANDIN_LOG=$T/vbox-calls.log
ip link set lo up
cleanup() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        for c in "$T"/vbox/run/*/console.log; do [ -f "$c" ] && { echo "--- $c" >&2; tail -n 30 "$c" >&2; }; done
        tail -n 40 "$T/vbox-calls.log" >&2 2>/dev/null
    fi
    # everything the stand-in started lives in this namespace's processes: qemu and dnsmasq
    for p in $(pgrep -f "$T/" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }
d() { timeout 180 "$DOCKER" "$@"; }
vbm() { "$VBM" "$@"; }

images_build >/dev/null
skopeo copy -q "oci:$IMAGES_LAYOUT:v1" "docker-archive:$T/img.tar:test/img:v1" >/dev/null
# the boot image over http from this namespace's loopback (--virtualbox-boot2docker-url)
mkdir "$T/www" && ln -s "$ISO" "$T/www/machine-os.iso"
python3 -c '
import functools, http.server, os, socketserver, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
s = socketserver.TCPServer(("127.0.0.1", 0), h)
open(sys.argv[2] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()' "$T/www" "$T/http.port" 2>"$T/http.log" &
for _ in $(seq 100); do [ -s "$T/http.port" ] && break; sleep 0.1; done
[ -s "$T/http.port" ] || fail "the loopback http server did not start"

step "create -d virtualbox through the stand-in VBoxManage"
t0=$(date +%s)
out=$("$M" create -d virtualbox --virtualbox-vboxmanage "$VBM" --virtualbox-no-vtx-check \
    --virtualbox-memory 768 --virtualbox-boot2docker-url "http://127.0.0.1:$(cat "$T/http.port")/machine-os.iso" \
    vb1 2>&1) ||
    { echo "$out"; fail "machine create -d virtualbox vb1"; }
echo "$out" | tail -n 3
assert__ok "create took $(($(date +%s) - t0)) s (TCG)"
assert_eq "$("$M" ls --format '{{.Name}} {{.DriverName}} {{.State}}')" "vb1 virtualbox Running" "ls shows it running"
assert_contains "$(cat "$T/http.log")" '"GET /machine-os.iso HTTP/1.1" 200' "the boot2docker URL was downloaded"
cmp -s "$MACHINE_STORAGE_PATH"/cache/*-machine-os.iso "$ISO" || fail "the store's cache does not hold the image"
assert__ok "the download is kept in the store's cache"
assert_contains "$(vbm list vms)" '"vb1" {' "VirtualBox (the stand-in) has the VM registered"
info=$(vbm showvminfo vb1 --machinereadable)
assert_contains "$info" 'VMState="running"' "showvminfo: running"
assert_contains "$info" 'memory=768' "the VM has --virtualbox-memory"
assert_contains "$(tr '\n' ' ' <"$T/vbox/run/vb1/qemu.argv")" "-m 768 -smp 1" "qemu runs with that memory and CPU count"
assert_contains "$(vbm list hostonlyifs)" "IPAddress:       192.168.99.1" "host-only interface on the default CIDR"
assert_contains "$(vbm list dhcpservers)" "HostInterfaceNetworking-vboxnet0" "with its DHCP server"
ip1=$("$M" ip vb1)
case "$ip1" in 192.168.99.1[0-9][0-9] | 192.168.99.2[0-5][0-9]) assert__ok "address $ip1 from the host-only DHCP range" ;;
*) fail "address '$ip1' is not in the host-only DHCP range" ;; esac

step "ssh; the NAT forward"
assert_contains "$("$M" ssh vb1 -- uname -a)" "Linux vb1" "machine ssh vb1 -- uname -a (hostname from the config disk)"
assert_contains "$("$M" ssh vb1 -- cat /proc/mounts)" "/mnt/data ext4" "the data disk (SATA, serial machine-data) is mounted"
port=$(sed -n 's/.*"NATSSHPort": *\([0-9]*\).*/\1/p' "$MACHINE_STORAGE_PATH/machines/vb1/config.json")
assert_contains "$(vbm showvminfo vb1 --machinereadable)" "Forwarding(0)=\"ssh,tcp,127.0.0.1,$port,,22\"" "natpf1 rule on a free local port"
banner=$(timeout 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; head -c 7 <&3") || true
assert_eq "$banner" "SSH-2.0" "the NAT forward on 127.0.0.1:$port reaches the guest's sshd"

step "env + docker run"
eval "$("$M" env vb1)"
assert_eq "$DOCKER_HOST" "tcp://$ip1:2376" "env points DOCKER_HOST at the host-only address"
d load -i "$T/img.tar" >/dev/null
assert_eq "$(d run --rm test/img:v1 echo hi)" "hi" "docker run --rm IMG echo hi on the VM"
d run -d --name keeper test/img:v1 sleep 1000 >/dev/null

step "stop, start: the data disk persists"
"$M" stop vb1 >/dev/null
assert_eq "$("$M" status vb1)" "Stopped" "stopped (ACPI power button)"
assert_contains "$(vbm showvminfo vb1 --machinereadable)" 'VMState="poweroff"' "showvminfo: poweroff"
grep -q "controlvm vb1 acpipowerbutton" "$T/vbox-calls.log" || fail "stop did not press the power button"
assert__ok "stop pressed the ACPI power button"
out=$("$M" start vb1 2>&1) || { echo "$out"; fail "machine start vb1"; }
eval "$("$M" env vb1)"
assert_contains "$(d ps -a --format '{{.Names}} {{.Status}}')" "keeper Exited" "the container survived the reboot (data disk)"

step "upgrade boots the current image and keeps the data"
out=$("$M" upgrade vb1 2>&1) || { echo "$out"; fail "machine upgrade vb1"; }
eval "$("$M" env vb1)"
assert_contains "$(d ps -a --format '{{.Names}}')" "keeper" "the data disk survived the upgrade"
assert_eq "$(d run --rm test/img:v1 echo again)" "again" "docker works after the upgrade"

step "rm leaves nothing"
"$M" rm -y vb1 >/dev/null
assert_eq "$(vbm list vms)" "" "no VM left"
assert_eq "$(vbm list hostonlyifs)" "" "the host-only interface made for it is gone"
assert_eq "$(vbm list dhcpservers)" "" "its DHCP server is gone"
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["media"]))' "$T/vbox/state.json")" "0" "no registered medium left"
assert_exit 1 ip link show vboxnet0
assert_eq "$(pgrep -f "$T/vbox" | grep -c . || true)" "0" "no qemu or dnsmasq left"
assert_eq "$(ls -A "$MACHINE_STORAGE_PATH/machines")" "" "no machine directory left"

step "a create that fails half way removes what it made"
out=$(VBOX_STANDIN_FAIL=storageattach "$M" create -d virtualbox --virtualbox-vboxmanage "$VBM" \
    --virtualbox-no-vtx-check --virtualbox-hostonly-cidr 192.168.77.1/24 --virtualbox-image "file://$ISO" \
    vb2 2>&1) &&
    fail "a VM whose disks cannot be attached was reported created: $out"
assert_contains "$out" "VBoxManage storageattach" "create fails at storageattach: $(echo "$out" | tail -n1)"
grep -q "^createvm .*--name vb2" "$T/vbox-calls.log" || fail "the failure came before createvm"
assert_eq "$(vbm list vms)" "" "its VM is unregistered"
assert_eq "$(vbm list hostonlyifs)" "" "the host-only interface made for it is gone"
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["media"]))' "$T/vbox/state.json")" "0" "its media are closed"
assert_eq "$(ls "$MACHINE_STORAGE_PATH/machines/vb2" 2>/dev/null | grep -c -E 'vmdk|iso' || true)" "0" "its disk files are deleted"
ls_out=$("$M" ls 2>&1 || true)
echo "$ls_out" | grep -E "^vb2 .*Error" >/dev/null || fail "the failed create is not listed as Error: $ls_out"
assert__ok "the failed create stays listed as Error until rm"
assert_exit 0 "$M" rm -y vb2
pass
