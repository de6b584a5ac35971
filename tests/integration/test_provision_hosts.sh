#!/usr/bin/env bash
# Issue 18: machine create -d generic onto hosts whose cgroups are not laid out by systemd:
# nothing mounted at /sys/fs/cgroup (an init that mounts none; the engine mounts what the
# kernel offers, as cgroupfs-mount does) and the v1 hierarchies mounted by hand. Each reaches
# `docker run` through `machine env`, with a memory limit applied in the host's cgroups.
# (cgroup2 only is machine-os: tests/vm/test_machine_os.sh.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/testhost.sh" # last: its EXIT trap runs every cleanup (testhost_on_exit)

M=${MACHINE_BIN:?}
BUILD=${MACHINE_BUILD:?}
DOCKER=/usr/local/bin/docker
export MACHINE_ENGINE_BUNDLE=$BUILD/machine-engine-bundle.tar.gz
[ -r "$MACHINE_ENGINE_BUNDLE" ] || fail "no engine bundle at $MACHINE_ENGINE_BUNDLE (make -C build engine-bundle)"
T=$(mktemp -d /tmp/machine-hosts-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "registry_cleanup 2>/dev/null; rm -rf '$T'"
ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
step() { printf '\n--- %s\n' "$*" >&2; }

TESTHOST_CGROUPS=none testhost_up bare >/dev/null
TESTHOST_CGROUPS=v1 testhost_up byhand >/dev/null
REGISTRY_HOST=$(testhost_gateway bare) registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

assert_eq "$(testhost_exec bare sh -c 'ls /sys/fs/cgroup | wc -l')" 0 "host 'bare' has nothing at /sys/fs/cgroup"
assert_eq "$(testhost_exec byhand findmnt -n -o FSTYPE /sys/fs/cgroup/memory)" cgroup "host 'byhand' has v1 memory mounted by hand"

ipb=$(testhost_ip bare)
step "a kernel without overlayfs is refused by name before anything is installed"
# the host's own mount namespace sees a /proc/filesystems without overlay
testhost_exec bare sh -c 'grep -vw overlay /proc/filesystems > /run/filesystems.fake &&
    mount --bind /run/filesystems.fake /proc/filesystems'
set +e
out=$("$M" create -d generic --generic-ip-address "$ipb" --generic-ssh-key "$T/id" bare 2>&1); rc=$?
set -e
testhost_exec bare umount /proc/filesystems
[ "$rc" -ne 0 ] || fail "create onto a host without overlayfs succeeded"
assert_contains "$out" "has no overlayfs" "the failure names the missing feature"
assert_exit 1 testhost_exec bare test -e /opt/machine-engine
"$M" rm -y -f bare >/dev/null 2>&1 || true

step "an --engine-opt machine-engine does not take is refused before the host is touched"
set +e
out=$("$M" create -d generic --generic-ip-address "$ipb" --generic-ssh-key "$T/id" \
    --engine-opt log-driver=syslog bare 2>&1); rc=$?
set -e
[ "$rc" -ne 0 ] || fail "create with --engine-opt log-driver=syslog succeeded"
assert_contains "$out" "--log-driver=syslog is not supported by machine-engine" "the refusal names the option"
assert_exit 1 testhost_exec bare test -e /opt/machine-engine
"$M" rm -y -f bare >/dev/null 2>&1 || true

step "an engine that exits at start fails create with its own reason, not a timeout"
set +e
out=$("$M" create -d generic --generic-ip-address "$ipb" --generic-ssh-key "$T/id" \
    --engine-opt bip=300.1.1.1/16 bare 2>&1); rc=$?
set -e
[ "$rc" -ne 0 ] || fail "create with a bad --bip succeeded"
assert_contains "$out" "the engine cannot start on 'bare'" "create reports the engine's fatal exit"
assert_contains "$out" "300.1.1.1" "… with the engine's own reason"
"$M" rm -y -f bare >/dev/null 2>&1 || true

for h in bare byhand; do
    step "create -d generic onto '$h'"
    ip=$(testhost_ip "$h")
    out=$("$M" create -d generic --generic-ip-address "$ip" --generic-ssh-key "$T/id" \
        --engine-insecure-registry "$REGISTRY_ADDR" --engine-opt dns=10.213.255.53 \
        --engine-opt dns-search=lab.test "$h" 2>&1) ||
        { testhost_exec "$h" tail -20 /var/log/machine-engine.log >&2 || true; fail "create $h failed: $out"; }
    assert_contains "$out" "Engine is up and running!" "create onto '$h' ends with the engine up"
    (
        eval "$("$M" env "$h")"
        assert_eq "$("$DOCKER" run --rm "$IMG" echo hi)" "hi" "docker run on '$h' through machine env"
        resolv=$("$DOCKER" run --rm "$IMG" cat /etc/resolv.conf)
        assert_contains "$resolv" "nameserver 10.213.255.53" "--engine-opt dns= is the containers' default on '$h'"
        assert_contains "$resolv" "search lab.test" "--engine-opt dns-search= too"
        assert_contains "$("$DOCKER" run --rm --dns 10.213.255.54 "$IMG" cat /etc/resolv.conf)" \
            "nameserver 10.213.255.54" "a container's own --dns wins"
        id=$("$DOCKER" run -d -m 64m "$IMG" sleep 30)
        limit=$(testhost_exec "$h" sh -c "cat /sys/fs/cgroup/memory/machine-engine/$id/memory.limit_in_bytes 2>/dev/null ||
            cat /sys/fs/cgroup/machine-engine/$id/memory.max")
        assert_eq "$limit" 67108864 "docker run -m 64m on '$h' is limited in the host's cgroups"
        "$DOCKER" rm -f "$id" >/dev/null
    )
done
assert_contains "$(testhost_exec bare sh -c "cat /var/log/machine-engine.log*")" "no cgroup filesystem was mounted: mounted" \
    "the engine on 'bare' says what it mounted"
assert_eq "$(testhost_exec bare findmnt -n -o FSTYPE /sys/fs/cgroup)" tmpfs \
    "v1 hierarchies are in use on this kernel, so 'bare' got cgroupfs-mount's tmpfs layout"
assert_eq "$(testhost_exec bare findmnt -n -o FSTYPE /sys/fs/cgroup/memory)" cgroup "… with a memory hierarchy"
"$M" rm -y bare byhand >/dev/null
assert__ok "provisioned hosts without systemd's cgroups"
