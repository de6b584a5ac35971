#!/usr/bin/env bash
# machine mount (sshfs over the machine's SFTP server), scp -d (rsync over machine's ssh) and
# ssh options before the command (machine ssh NAME -L ...), against a real sshd in a network
# namespace (tests/integration/lib/testhost.sh); host key pinned by machine's known_hosts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (network namespaces, FUSE mounts)"; exit 77; }
for t in sshfs rsync fusermount ssh; do
    command -v "$t" >/dev/null || { echo "FAIL: '$t' is not installed (scripts/install-deps installs it)"; exit 1; }
done
[ -c /dev/fuse ] || { echo "skip: no /dev/fuse"; exit 77; }
source "$here/lib/testhost.sh"

M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
T=$(mktemp -d /tmp/machine-sshtools-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
testhost_on_exit "fusermount -u '$T/mnt' 2>/dev/null; rm -rf '$T'"
ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
testhost_up s1 >/dev/null
IP=$(testhost_ip s1)
step() { printf '\n--- %s\n' "$*" >&2; }

# A generic machine as create leaves it, without installing an engine (not needed here).
"$M" create -d none --url none seed >/dev/null
mkdir -m 700 "$MACHINE_STORAGE_PATH/machines/s1"
install -m 600 "$T/id" "$MACHINE_STORAGE_PATH/machines/s1/id_ssh"
jq --arg ip "$IP" --arg key "$MACHINE_STORAGE_PATH/machines/s1/id_ssh" \
    '.Name = "s1" | .DriverName = "generic" |
     .Driver = {IPAddress: $ip, SSHPort: 22, SSHUser: "root", SSHKeyPath: $key}' \
    "$MACHINE_STORAGE_PATH/machines/seed/config.json" >"$MACHINE_STORAGE_PATH/machines/s1/config.json"
chmod 600 "$MACHINE_STORAGE_PATH/machines/s1/config.json"
assert_eq "$("$M" ssh s1 -- cat /etc/hostname)" "s1" "native ssh pins the host key"

step "ssh options before the command go to the system ssh"
assert_eq "$("$M" ssh s1 -o ConnectionAttempts=1 -- cat /etc/hostname)" "s1" "-o before --"
# -L with -N: a forward from a local port to the host's sshd, polled (bounded) until it answers
port=$((20000 + RANDOM % 12000)) # below the ephemeral range
"$M" ssh s1 -N -L "127.0.0.1:$port:127.0.0.1:22" -o ExitOnForwardFailure=yes &
fwd=$!
testhost_on_exit "kill $fwd 2>/dev/null"
banner=""
for _ in $(seq 100); do
    banner=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 7 <&3" 2>/dev/null) && break
    kill -0 "$fwd" 2>/dev/null || break
    sleep 0.2
done
kill "$fwd" 2>/dev/null || true
wait "$fwd" 2>/dev/null || true
assert_eq "$banner" "SSH-2.0" "-L forwarded a local port to the machine"
assert_eq "$("$M" ssh s1 -o ConnectionAttempts=1 -t -t cat /etc/hostname | tr -d '\r')" "s1" \
    "options then a command without --"

step "machine mount NAME:PATH MOUNTPOINT"
testhost_exec s1 sh -c 'mkdir -p /srv/share && echo from-host >/srv/share/f.txt'
mkdir -p "$T/mnt"
"$M" mount s1:/srv/share "$T/mnt" || fail "mount"
assert_eq "$(cat "$T/mnt/f.txt")" "from-host" "the machine's file is readable through the mount"
echo from-client >"$T/mnt/g.txt"
assert_eq "$(testhost_exec s1 cat /srv/share/g.txt)" "from-client" "a file written here lands on the machine"
grep -q " $T/mnt fuse.sshfs " /proc/mounts || fail "not an sshfs mount"
"$M" mount -u s1:/srv/share "$T/mnt" || fail "mount -u"
grep -q " $T/mnt " /proc/mounts && fail "still mounted after -u"
assert__ok "mount -u unmounts"
out=$("$M" mount s1:/srv/share 2>&1) && fail "mount without a mount point accepted"

step "scp -d: rsync on both ends, else a clear error"
mkdir -p "$T/src/sub" && echo one >"$T/src/sub/a" && echo two >"$T/src/b"
out=$("$M" scp -r -d "$T/src/" s1:/srv/copy 2>&1) && fail "scp -d without rsync on the host succeeded"
assert_contains "$out" "needs rsync on machine 's1'" "no rsync on the machine: clear error"
# rsync onto the host (same Debian release): the binary and the libraries its rootfs lacks
root=$TESTHOST_RUN_DIR/hosts/s1/root
cp /usr/bin/rsync "$root/usr/bin/rsync"
for lib in $(ldd /usr/bin/rsync | awk '/=> \//{print $3}'); do
    [ -e "$root$lib" ] || cp "$lib" "$root$lib"
done
"$M" scp -r -d -q "$T/src/" s1:/srv/copy || fail "scp -d up"
assert_eq "$(testhost_exec s1 cat /srv/copy/sub/a /srv/copy/b | tr '\n' ' ')" "one two " "scp -d copied the tree"
testhost_exec s1 sh -c 'echo changed >/srv/copy/b'
"$M" scp -r -d -q s1:/srv/copy/ "$T/back" || fail "scp -d down"
assert_eq "$(cat "$T/back/b" "$T/back/sub/a" | tr '\n' ' ')" "changed one " "scp -d copied back"
pass
