#!/usr/bin/env bash
# Proves tests/integration/lib/testhost.sh: real sshd hosts in network namespaces,
# reached over veth pairs, and nothing left behind afterwards.
# Needs root, debootstrap, ssh, ssh-keyscan (scripts/install-deps).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/assert.sh
. "$here/lib/assert.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: needs root (network namespaces, overlay mounts)"
    exit 77
fi
for tool in debootstrap ssh ssh-keygen ssh-keyscan ip nsenter unshare flock; do
    if ! command -v "$tool" >/dev/null; then
        echo "skipped: '$tool' is missing, run scripts/install-deps"
        exit 77
    fi
done

# shellcheck source=lib/testhost.sh
. "$here/lib/testhost.sh"

work=$(mktemp -d)
testhost_on_exit rm -rf "$work"
ssh-keygen -q -t ed25519 -N '' -C testhost -f "$work/key" || fail "ssh-keygen"
export TESTHOST_PUBKEY="$work/key.pub"

ssh_opts=(-i "$work/key" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5
    -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=accept-new -o LogLevel=ERROR)
host_ssh() { timeout 30 ssh "${ssh_opts[@]}" "$@"; }

# Exit 124 from `timeout` means the TCP connect hung (no RST, no ICMP): a timeout.
connect_status() {
    local rc=0
    timeout "$2" bash -c 'exec 3<>"/dev/tcp/$0/22"' "$1" 2>/dev/null || rc=$?
    echo "$rc"
}

elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { print e - s }'; }

# Rootfs: cold build only when the cache is empty; report what it cost.
start=$(date +%s.%N)
rootfs=$(testhost_rootfs) || fail "testhost_rootfs"
printf 'timing: testhost_rootfs %.1f s\n' "$(elapsed "$start")"
assert_eq "$(chroot "$rootfs" sh -c '. /etc/os-release; echo $VERSION_CODENAME')" bookworm "rootfs is bookworm"
keys=$(find "$rootfs/etc/ssh" -name 'ssh_host_*' | wc -l)
assert_eq "$keys" 0 "cached rootfs carries no host keys"
banned=$(chroot "$rootfs" dpkg-query -W -f='${Package}\n' | grep -E '^(libcurl|libarchive|libjansson)' || true)
assert_eq "$banned" "" "rootfs has no libcurl, libarchive, jansson"

# Two hosts.
start=$(date +%s.%N)
testhost_up A >/dev/null || fail "testhost_up A"
printf 'timing: testhost_up (rootfs cached) %.2f s\n' "$(elapsed "$start")"
ip_b=$(testhost_up B) || fail "testhost_up B"
ip_a=$TESTHOST_IP_A
assert_eq "$(testhost_ip A)" "$ip_a" "testhost_ip matches TESTHOST_IP_A"
assert_eq "$(testhost_ip B)" "$ip_b" "testhost_ip B matches the address testhost_up printed"
[ "$ip_a" != "$ip_b" ] || fail "hosts have distinct addresses"
assert_contains "$ip_a" "10.213." "host address is inside 10.213.0.0/16"

# SSH as root shows bookworm.
osr=$(host_ssh "root@$ip_a" cat /etc/os-release) || fail "ssh root@A"
assert_contains "$osr" "VERSION_CODENAME=bookworm" "ssh root@A: /etc/os-release is bookworm"
osr=$(host_ssh "root@$ip_b" cat /etc/os-release) || fail "ssh root@B"
assert_contains "$osr" "VERSION_CODENAME=bookworm" "ssh root@B: /etc/os-release is bookworm"

# The debian user has passwordless sudo.
assert_exit 0 host_ssh "debian@$ip_a" sudo -n true
assert_eq "$(host_ssh "debian@$ip_a" sudo -n id -u)" 0 "debian: sudo -n id -u is 0"

# PTYs work.
tty_out=$(host_ssh -tt "root@$ip_a" tty </dev/null | tr -d '\r') || fail "ssh -tt tty"
[[ "$tty_out" =~ ^/dev/pts/[0-9]+$ ]] || fail "ssh -tt tty prints /dev/pts/N, got '$tty_out'"
assert__ok "ssh -tt allocates a pty ($tty_out)"

# testhost_exec runs inside the host: its netns, its hostname, its own pid 1.
assert_eq "$(testhost_exec A hostname)" A "testhost_exec sees the host's hostname"
assert_contains "$(testhost_exec B ip -4 -o addr show eth0)" "$ip_b/30" "testhost_exec B is in B's netns"
assert_contains "$(testhost_exec A cat /proc/1/cmdline | tr '\0' ' ')" "/bin/bash" "the host has its own pid 1"
real_hostname=$(hostname)
testhost_exec A hostname renamed-by-test || fail "hostname inside A"
assert_eq "$(hostname)" "$real_hostname" "a hostname change inside a host stays inside"
assert_eq "$(host_ssh "root@$ip_a" hostname)" renamed-by-test "the host sees its new hostname"

# New host keys.
scan() { ssh-keyscan -T 5 -t ed25519 "$1" 2>/dev/null | awk '{ print $3 }'; }
before=$(scan "$ip_a")
[ -n "$before" ] || fail "ssh-keyscan A before"
testhost_regen_hostkeys A || fail "testhost_regen_hostkeys A"
after=$(scan "$ip_a")
[ -n "$after" ] || fail "ssh-keyscan A after"
[ "$before" != "$after" ] || fail "host key of A changed"
assert__ok "testhost_regen_hostkeys changes the host key"
assert_exit 255 host_ssh -o StrictHostKeyChecking=yes "root@$ip_a" true
assert_eq "$(scan "$ip_b")" "$(ssh-keygen -F "$ip_b" -f "$work/known_hosts" | awk '!/^#/ { print $3 }')" \
    "host B keeps its key"

# Move A to a new address.
new_a=$(testhost_set_ip A) || fail "testhost_set_ip A"
[ "$new_a" != "$ip_a" ] || fail "set_ip gives a new address"
assert_eq "$(testhost_ip A)" "$new_a" "testhost_ip follows the move"
osr=$(host_ssh -o StrictHostKeyChecking=no "root@$new_a" cat /etc/os-release) || fail "ssh to the new address"
assert_contains "$osr" bookworm "the new address answers"
assert_eq "$(connect_status "$ip_a" 5)" 1 "the old address is unreachable (refused locally, never routed out)"

# A stopped network makes connects time out rather than fail fast.
testhost_stop_network B || fail "testhost_stop_network B"
t0=$SECONDS
assert_eq "$(connect_status "$ip_b" 3)" 124 "connect to a stopped host times out"
[ $((SECONDS - t0)) -le 5 ] || fail "the timeout is bounded"
assert_exit 255 host_ssh -o ConnectTimeout=2 "root@$ip_b" true
testhost_start_network B || fail "testhost_start_network B"
assert_exit 0 host_ssh "root@$ip_b" true

# A test that fails with hosts up leaves nothing behind (the EXIT trap).
child_out=$(TESTHOST_PUBKEY='' bash -c '
    set -e
    . "$1/lib/testhost.sh"
    testhost_up C >/dev/null
    echo "$TESTHOST_RUN_ID"
    false' _ "$here" 2>/dev/null)
child_rc=$?
assert_eq "$child_rc" 1 "failing child test exits 1"
[ -n "$child_out" ] || fail "the child test brought a host up"
assert_eq "$(ip netns list | grep -c -- "-$child_out\b")" 0 "failing test: no netns left"
assert_eq "$(ip -o link | grep -c "mt${child_out}h")" 0 "failing test: no veth left"
assert_eq "$(grep -c "mt-testhost-$child_out" /proc/mounts)" 0 "failing test: no mounts left"

# A test killed outright is reaped by the next test that loads the library.
killed_out=$(bash -c '
    . "$1/lib/testhost.sh"
    testhost_up K >/dev/null
    echo "$TESTHOST_RUN_ID $TESTHOST_RUN_DIR"
    kill -KILL $$' _ "$here" 2>/dev/null)
read -r killed_id killed_dir <<<"$killed_out"
[ -n "${killed_dir:-}" ] || fail "the killed child test brought a host up"
assert_eq "$(ip netns list | grep -c -- "-$killed_id\b")" 1 "killed test left its netns"
bash -c '. "$1/lib/testhost.sh"' _ "$here" 2>/dev/null
assert_eq "$(ip netns list | grep -c -- "-$killed_id\b")" 0 "stale netns reaped"
assert_eq "$(grep -c "$killed_dir" /proc/mounts)" 0 "stale mounts reaped"
[ ! -e "$killed_dir" ] || fail "stale run dir reaped"

# Our own cleanup leaves nothing.
run_id=$TESTHOST_RUN_ID
run_dir=$TESTHOST_RUN_DIR
testhost_cleanup_all
assert_eq "$(ip netns list | grep -c -- "-$run_id\b")" 0 "cleanup: no netns left"
assert_eq "$(ip -o link | grep -c "mt${run_id}h")" 0 "cleanup: no veth left"
assert_eq "$(grep -c "$run_dir" /proc/mounts)" 0 "cleanup: no mounts left"
assert_eq "$(ip -4 route | grep -c "mt${run_id}h")" 0 "cleanup: no routes left"
[ ! -e "$run_dir" ] || fail "cleanup: run dir removed"
assert__ok "cleanup removed '$run_dir'"
if ! ls /run/machine-tests/runs/* >/dev/null 2>&1; then
    assert_eq "$(ip -4 route show 10.213.0.0/16 | wc -l)" 0 "cleanup: guard route gone with the last run"
fi
pass
