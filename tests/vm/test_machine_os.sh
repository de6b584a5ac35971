#!/usr/bin/env bash
# machine-os under qemu (TCG) in a network namespace this test makes: boots from the ISO with a
# fresh data disk and the driver's config disk (hostname, SSH key), formats and mounts the data
# disk for the engine, has cgroup v2 only, answers SSH as root with the injected key; the bundled
# engine runs containers there with cgroup v2 limits (memory -> 137/OOMKilled, pids, cpu) driven
# by the real docker CLI through an SSH-forwarded socket; the ACPI power button stops it cleanly;
# a second boot (kernel + initrd) keeps the data, the host key and does not reformat.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib/assert.sh"
source "$here/../integration/lib/images.sh"
source "$here/lib-qemu.sh"

MACHINE_OS_DIR=${MACHINE_BUILD:?}/machine-os
for f in machine-os.iso vmlinuz initrd.img; do
    [ -s "$MACHINE_OS_DIR/$f" ] || fail "no $MACHINE_OS_DIR/$f (cmake --build build --target machine-os)"
done
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 is missing (scripts/install-deps)"
DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/test-machine-os-XXXXXX)
QEMU_DIR=$T
QEMU_NS=mos-$$
fwd_pid=
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || { echo "--- console" >&2; tail -n 40 "$T/console.log" >&2 2>/dev/null; }
    [ -n "$fwd_pid" ] && kill "$fwd_pid" 2>/dev/null
    qemu_kill
    ip netns del "$QEMU_NS" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

ip netns add "$QEMU_NS"
ip netns exec "$QEMU_NS" ip link set lo up
ssh-keygen -q -t ed25519 -N '' -f "$T/key"
qemu_config_disk "$T/config.img" vmtest "$T/key.pub"
truncate -s 4G "$T/data.img"
PORT=2222
S() { # guest command as root over SSH; the host key is pinned on first contact
    ip netns exec "$QEMU_NS" timeout 60 ssh -i "$T/key" -p "$PORT" -o BatchMode=yes -o LogLevel=ERROR \
        -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking="${STRICT:-accept-new}" \
        root@127.0.0.1 "$@"
}

step "first boot from the ISO (isolinux) with a blank data disk"
qemu_boot iso "$T/data.img" "$T/config.img" "$PORT"
up=$(qemu_wait_ready 240) || fail "machine-os did not boot from the ISO"
assert__ok "booted from the ISO: ssh ready at guest uptime ${up} s"
assert_contains "$(cat "$T/console.log")" "formatting the data disk" "a blank data disk is formatted"
assert_eq "$(S hostname)" "vmtest" "the hostname comes from the config disk"
assert_eq "$(S 'grep ^ID= /etc/os-release')" "ID=machine-os" "os-release says machine-os"
assert_eq "$(S 'cat /proc/self/cgroup')" "0::/" "cgroup v2 only"
ctrls=$(S 'cat /sys/fs/cgroup/cgroup.subtree_control')
for c in cpu memory pids; do assert_contains "$ctrls" "$c" "the $c controller is delegated"; done
assert_eq "$(S "awk '\$2 == \"/var/lib/machine-engine\" {print \$3}' /proc/mounts")" "ext4" \
    "the engine's data lives on the data disk"
assert_contains "$(S '/opt/machine-engine/bin/machine-engine --version')" "machine-engine" "the bundled engine runs"
assert_eq "$(S 'cat /opt/machine-engine/.bundle-sha256')" "$(sha256sum "$MACHINE_BUILD/machine-engine-bundle.tar.gz" | cut -d' ' -f1)" \
    "the image carries this build's bundle (provisioning skips the upload)"
S 'for t in uname tar sha256sum mkdir cut hostname grep; do command -v $t >/dev/null || echo "missing $t"; done' >"$T/missing"
assert_eq "$(cat "$T/missing")" "" "the provisioner's tools are there"
S 'echo persisted >/var/lib/machine-engine/marker'

step "the engine on pure cgroup v2, driven by the docker CLI over an SSH-forwarded socket"
images_build >/dev/null
skopeo copy -q "oci:$IMAGES_LAYOUT:v1" "docker-archive:$T/img.tar:test/img:v1"
S 'setsid /opt/machine-engine/bin/machine-engine -H unix:///run/e.sock --data-root /var/lib/machine-engine </dev/null >/run/e.log 2>&1 &
   i=0; while [ ! -S /run/e.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -S /run/e.sock ]'
ip netns exec "$QEMU_NS" ssh -i "$T/key" -p "$PORT" -o BatchMode=yes -o LogLevel=ERROR -N \
    -o UserKnownHostsFile="$T/known_hosts" -o StreamLocalBindUnlink=yes -o ExitOnForwardFailure=yes \
    -L "$T/e.sock:/run/e.sock" root@127.0.0.1 &
fwd_pid=$!
for _ in $(seq 50); do [ -S "$T/e.sock" ] && break; sleep 0.1; done
export DOCKER_HOST=unix://$T/e.sock
d() { timeout 120 "$DOCKER" "$@"; }
assert_eq "$(d info --format '{{.CgroupVersion}}')" "2" "docker info reports cgroup v2"
assert_contains "$(d load -i "$T/img.tar")" "Loaded image: test/img:v1" "docker load into the guest's engine"
assert_eq "$(d run --rm test/img:v1 echo hi)" "hi" "docker run on cgroup v2"
# device access on v2 is the engine's eBPF device program: docker's default list plus rules
probe='mknod /tmp/l b 7 0 && dd if=/tmp/l of=/dev/null count=0 2>&1; true'
assert_contains "$(d run --rm test/img:v1 sh -c "$probe")" "Operation not permitted" \
    "v2: a device outside docker's default list is denied"
out=$(d run --rm --device-cgroup-rule 'b 7:* r' test/img:v1 sh -c "$probe")
case "$out" in *"Operation not permitted"*) fail "v2: --device-cgroup-rule did not allow the device: $out" ;; esac
assert__ok "v2: --device-cgroup-rule 'b 7:* r' allows it"
assert_eq "$(d run --rm --device /dev/null:/dev/xnull test/img:v1 sh -c 'echo x >/dev/xnull && echo ok')" "ok" \
    "v2: --device node usable"
assert_eq "$(d run --rm -t test/img:v1 sh -c 'echo x >/dev/tty && echo ok' | tr -d '\r' | tail -1)" "ok" \
    "v2: the default list keeps ttys usable"
assert_eq "$(d run --rm --cpuset-cpus 0 --memory-reservation 32m test/img:v1 sh -c 'grep Cpus_allowed_list /proc/self/status | cut -f2; cat /sys/fs/cgroup/memory.low' | tr '\n' ' ')" \
    "0 33554432 " "v2: --cpuset-cpus and --memory-reservation (memory.low)"
d run --name oom --memory 32m test/img:v1 sh -c 'dd if=/dev/zero bs=64M count=1 of=/dev/null' >/dev/null 2>&1 || true
assert_eq "$(d inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' oom)" "true 137" "--memory 32m: OOM kill -> 137, OOMKilled (v2)"
d rm oom >/dev/null
cid=$(d run -d --pids-limit 32 --cpus 0.5 --memory 64m test/img:v1 sh -c '(for i in $(seq 100); do sleep 30 & done) 2>/dev/null; exec sleep 30')
sleep 2
cg=/sys/fs/cgroup/machine-engine/$cid
pids=$(S "cat $cg/pids.current")
[ "$pids" -le 32 ] && [ "$pids" -ge 20 ] || fail "pids limit not enforced on v2: $pids processes"
assert__ok "--pids-limit 32 holds a fork loop at $pids processes (v2)"
assert_eq "$(S "cat $cg/cpu.max")" "50000 100000" "--cpus 0.5 -> cpu.max (v2)"
assert_eq "$(S "cat $cg/memory.max")" "$((64 * 1024 * 1024))" "--memory 64m -> memory.max (v2)"
d rm -f "$cid" >/dev/null
S "[ ! -d $cg ]" || fail "the container's cgroup was left behind"
assert__ok "rm removes the container's cgroup"
kill "$fwd_pid" 2>/dev/null; fwd_pid=
unset DOCKER_HOST

step "the ACPI power button stops it cleanly"
hostkey=$(S 'cat /mnt/data/ssh/ssh_host_ed25519_key.pub')
qemu_powerdown 60 || fail "machine-os did not power off within 60 s of the ACPI power button"
assert__ok "powered off by the ACPI button"

step "second boot (kernel + initrd): data and host key kept, no reformat"
qemu_boot kernel "$T/data.img" "$T/config.img" "$PORT"
up=$(qemu_wait_ready 240) || fail "machine-os did not boot again"
assert__ok "booted again: ssh ready at guest uptime ${up} s"
STRICT=yes
assert_eq "$(S 'cat /var/lib/machine-engine/marker')" "persisted" "the data disk kept its data"
assert_eq "$(S 'cat /mnt/data/ssh/ssh_host_ed25519_key.pub')" "$hostkey" "the host key survived (pinned known_hosts accepted it)"
case $(cat "$T/console.log") in *"formatting the data disk"*) fail "the data disk was formatted again" ;; esac
assert__ok "the data disk was not reformatted"
qemu_powerdown 60 || fail "no clean poweroff on the second boot"
pass
