# shellcheck shell=bash
# testhost.sh - throwaway Linux "hosts" for integration tests.
#
# A host is a network namespace created by the test, holding a real OpenSSH sshd
# that runs chrooted in an overlay copy of a cached Debian bookworm minbase rootfs,
# in its own mount, pid, uts and ipc namespaces. The root namespace reaches it
# over a veth pair whose /30 lies in 10.213.0.0/16.
#
#   testhost_rootfs              print the cached pristine rootfs (built once)
#   testhost_up NAME             create and start host NAME, print its IP
#   testhost_ip NAME             print the current IP of NAME
#   testhost_exec NAME CMD...    run CMD inside the host (no SSH)
#   testhost_regen_hostkeys NAME new host keys, sshd restarted
#   testhost_set_ip NAME         move NAME to a new /30, print the new IP
#   testhost_stop_network NAME   take the host's link down: connects time out
#   testhost_start_network NAME  bring it back
#   testhost_down NAME           stop and remove NAME
#   testhost_cleanup_all         remove every host of this test (EXIT trap)
#
# Network safety: while any test uses this library, the root namespace carries an
# "unreachable 10.213.0.0/16" route, so an address of a host that was moved or
# removed fails locally (EHOSTUNREACH) and is never sent out of the machine.
#
# Environment:
#   MACHINE_TEST_CACHE     rootfs cache (default /var/cache/machine-tests)
#   TESTHOST_PUBKEY        public key file authorised for root and debian
#   TESTHOST_UP_TIMEOUT    seconds to wait for sshd (default 20)
#   TESTHOST_EXEC_TIMEOUT  bound on testhost_exec commands (default 300)
#   TESTHOST_KEEP=1        leave hosts running at exit (debugging)
#   TESTHOST_JOIN=1        join the run of the test that exported TESTHOST_RUN_ID and
#                          TESTHOST_RUN_DIR (a helper it runs); its hosts are left to that test
#   TESTHOST_CGROUPS       bind (default: this machine's hierarchies), none (nothing
#                          mounted at /sys/fs/cgroup) or v1 (v1 hierarchies mounted by hand)
#
# The library installs testhost_cleanup_all as the EXIT trap; a test that needs
# its own exit work registers it with testhost_on_exit CMD instead of `trap`.
# All functions log to stderr, are `set -u` safe and bounded in time.

if [ -n "${TESTHOST_LIB_LOADED:-}" ]; then
    return 0
fi
TESTHOST_LIB_LOADED=1

TESTHOST_SUBNET_PREFIX=10.213
TESTHOST_GUARD_ROUTE=10.213.0.0/16
# Bump when the image recipe changes: a cached rootfs with another stamp is rebuilt. Each
# version has its own directory, so trees of another version (other checkouts testing at the
# same time) keep theirs. 2: python3 (ansible's modules run on the hosts).
TESTHOST_ROOTFS_VERSION=2
TESTHOST_STATE_ROOT=/run/machine-tests
TESTHOST_LOCK="$TESTHOST_STATE_ROOT/net.lock"
if [ "${TESTHOST_JOIN:-0}" = 1 ]; then
    # A helper process of a test (the nshost driver plugin) works in the test's run, which it
    # inherits (exported TESTHOST_RUN_ID and TESTHOST_RUN_DIR), and leaves its hosts to it.
    TESTHOST_RUN_ID=${TESTHOST_RUN_ID:?TESTHOST_JOIN=1 needs TESTHOST_RUN_ID}
    TESTHOST_RUN_DIR=${TESTHOST_RUN_DIR:?TESTHOST_JOIN=1 needs TESTHOST_RUN_DIR}
    TESTHOST_KEEP=1
else
    TESTHOST_RUN_ID=""
    TESTHOST_RUN_DIR=""
fi
TESTHOST_EXIT_HOOKS=()

testhost__log() { printf 'testhost: %s\n' "$*" >&2; }
testhost__err() { printf 'testhost: error: %s\n' "$*" >&2; return 1; }

testhost__cache_dir() { printf '%s\n' "${MACHINE_TEST_CACHE:-/var/cache/machine-tests}"; }

# ---------------------------------------------------------------- rootfs --

# First http(s) archive URI of the system's Debian sources (deb822 or one-line).
testhost__mirror() {
    local f uri=""
    f=/etc/apt/sources.list.d/debian.sources
    if [ -r "$f" ]; then
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    if [ -z "$uri" ]; then
        testhost__err "no Debian mirror in '/etc/apt/sources.list.d/debian.sources' or '/etc/apt/sources.list'"
        return 1
    fi
    printf '%s\n' "$uri"
}

# Unmounts every mount at or below DIR, deepest first (a killed debootstrap
# leaves proc and sys mounted in its target).
testhost__umount_under() {
    local dir=$1 m
    findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r |
        while read -r m; do
            umount "$m" 2>/dev/null || umount --lazy "$m"
        done
}

# Everything the image needs beyond debootstrap, run on a fresh tree.
testhost__rootfs_finish() {
    local root=$1
    rm -f "$root"/etc/ssh/ssh_host_*
    chroot "$root" /usr/sbin/useradd --create-home --shell /bin/bash --groups sudo debian || return 1
    chroot "$root" /usr/bin/passwd --lock debian >/dev/null || return 1
    printf 'debian ALL=(ALL) NOPASSWD:ALL\n' >"$root/etc/sudoers.d/90-debian"
    chmod 0440 "$root/etc/sudoers.d/90-debian"
    install -d -m 0700 "$root/root/.ssh"
    install -d -m 0700 -o 1000 -g 1000 "$root/home/debian/.ssh"
    # Reverse DNS of the client would only add a wait; nothing resolves here.
    printf 'UseDNS no\n' >"$root/etc/ssh/sshd_config.d/10-testhost.conf"
    chroot "$root" /usr/bin/apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
    printf '%s\n' "$TESTHOST_ROOTFS_VERSION" >"$root/.testhost-rootfs-version"
}

testhost__rootfs_ok() {
    local root=$1
    [ -x "$root/usr/sbin/sshd" ] &&
        [ "$(cat "$root/.testhost-rootfs-version" 2>/dev/null)" = "$TESTHOST_ROOTFS_VERSION" ]
}

# Builds the rootfs into a temp dir and renames it into place. Caller holds the lock.
testhost__rootfs_build() {
    local cache=$1 final=$2 mirror tmp start rc
    mirror=$(testhost__mirror) || return 1
    tmp=$(mktemp -d "$cache/.rootfs-build.XXXXXX") || return 1
    start=$(date +%s)
    testhost__log "building bookworm minbase rootfs from '$mirror' (one time, ~1 min)"
    timeout --kill-after=10 900 debootstrap --variant=minbase \
        --include=openssh-server,iproute2,procps,sudo,python3 \
        bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
        testhost__log "debootstrap failed (exit $rc), last lines of '$cache/debootstrap.log':"
        tail -n 15 "$cache/debootstrap.log" >&2
        testhost__umount_under "$tmp"
        rm -rf --one-file-system "$tmp"
        return 1
    fi
    if ! testhost__rootfs_finish "$tmp"; then
        rm -rf --one-file-system "$tmp"
        testhost__err "cannot finish rootfs in '$tmp'"
        return 1
    fi
    if [ -e "$final" ]; then
        rm -rf --one-file-system "$final.old"
        mv "$final" "$final.old" && rm -rf --one-file-system "$final.old"
    fi
    mv "$tmp" "$final" || return 1
    testhost__log "rootfs built in $(($(date +%s) - start)) s: '$final'"
}

testhost_rootfs() {
    local cache final d
    cache=$(testhost__cache_dir)
    final="$cache/rootfs-bookworm-v$TESTHOST_ROOTFS_VERSION"
    if testhost__rootfs_ok "$final"; then
        printf '%s\n' "$final"
        return 0
    fi
    mkdir -p "$cache" || return 1
    (
        if ! flock -w 1200 9; then
            testhost__err "timed out waiting for the rootfs lock '$cache/rootfs.lock'"
            exit 1
        fi
        # Leftovers of a killed build: never used, only removed.
        for d in "$cache"/.rootfs-build.*; do
            [ -d "$d" ] || continue
            testhost__umount_under "$d"
            rm -rf --one-file-system "$d"
        done
        testhost__rootfs_ok "$final" && exit 0
        testhost__rootfs_build "$cache" "$final"
    ) 9>"$cache/rootfs.lock" || return 1
    printf '%s\n' "$final"
}

# ------------------------------------------------------------- run state --

# A run is one test process: a registry entry under $TESTHOST_STATE_ROOT/runs
# (found by later runs to reap it if its owner was killed) and a temp dir with
# one directory per host holding small state files and the overlay.
testhost__owner_alive() {
    local entry=$1 pid start
    read -r pid start <"$entry/owner" 2>/dev/null || return 1
    [ -d "/proc/$pid" ] || return 1
    [ "$(awk '{ print $22 }' "/proc/$pid/stat" 2>/dev/null)" = "$start" ]
}

testhost__run_init() {
    [ -n "$TESTHOST_RUN_DIR" ] && return 0
    local id tries=0 tmpbase
    mkdir -p "$TESTHOST_STATE_ROOT/runs" || return 1
    tmpbase=${TMPDIR:-/tmp}
    while :; do
        id=$(printf '%05x' $(((RANDOM << 8 ^ RANDOM ^ $$) & 0xfffff)))
        mkdir "$TESTHOST_STATE_ROOT/runs/$id" 2>/dev/null && break
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { testhost__err "cannot allocate a run id"; return 1; }
    done
    TESTHOST_RUN_ID=$id
    TESTHOST_RUN_DIR=$(mktemp -d "$tmpbase/mt-testhost-$id.XXXXXX") || return 1
    echo "$$ $(awk '{ print $22 }' /proc/$$/stat)" >"$TESTHOST_STATE_ROOT/runs/$id/owner"
    printf '%s\n' "$TESTHOST_RUN_DIR" >"$TESTHOST_STATE_ROOT/runs/$id/dir"
    mkdir -p "$TESTHOST_RUN_DIR/hosts"
}

testhost__hostdir() {
    local name=$1
    if [ -z "$TESTHOST_RUN_DIR" ] || [ ! -d "$TESTHOST_RUN_DIR/hosts/$name" ]; then
        testhost__err "no host '$name'"
        return 1
    fi
    printf '%s\n' "$TESTHOST_RUN_DIR/hosts/$name"
}

testhost__get() { cat "$1/$2" 2>/dev/null; }

# Runs "$@" under the network lock (subnet choice, guard route).
testhost__locked() {
    mkdir -p "$TESTHOST_STATE_ROOT" || return 1
    (
        flock -w 60 9 || { testhost__err "timed out waiting for '$TESTHOST_LOCK'"; exit 1; }
        "$@"
    ) 9>"$TESTHOST_LOCK"
}

# --------------------------------------------------------------- network --

testhost__guard_add() {
    ip -4 route show "$TESTHOST_GUARD_ROUTE" | grep -q unreachable && return 0
    ip -4 route add unreachable "$TESTHOST_GUARD_ROUTE"
}

# Prints "A B" of a free /30 10.213.A.B..B+3: no address of the root namespace
# lies in it. Caller holds the lock and assigns the address before releasing it.
testhost__pick_subnet() {
    local used a b i n
    used=$(ip -4 -o addr show | awk '{ split($4, p, "/"); print p[1] }' | grep "^$TESTHOST_SUBNET_PREFIX\." || true)
    n=$((RANDOM % 16384))
    for ((i = 0; i < 16384; i++)); do
        a=$(((n + i) % 16384 / 64))
        b=$(((n + i) % 64 * 4))
        if ! grep -qE "^$TESTHOST_SUBNET_PREFIX\.$a\.($b|$((b + 1))|$((b + 2))|$((b + 3)))\$" <<<"$used"; then
            printf '%s %s\n' "$a" "$b"
            return 0
        fi
    done
    testhost__err "no free /30 left in $TESTHOST_GUARD_ROUTE"
}

# Puts the host on a fresh /30 (first or new address). Runs under the lock.
testhost__assign_subnet() {
    local dir=$1 ns veth a b rootip ip mac
    ns=$(testhost__get "$dir" netns)
    veth=$(testhost__get "$dir" veth)
    testhost__guard_add || return 1
    read -r a b < <(testhost__pick_subnet) || return 1
    [ -n "${a:-}" ] || return 1
    rootip="$TESTHOST_SUBNET_PREFIX.$a.$((b + 1))"
    ip="$TESTHOST_SUBNET_PREFIX.$a.$((b + 2))"
    ip -4 addr flush dev "$veth" &&
        ip addr add "$rootip/30" dev "$veth" &&
        ip -n "$ns" -4 addr flush dev eth0 &&
        ip -n "$ns" addr add "$ip/30" dev eth0 || return 1
    # A link that is down cannot carry a route; testhost_start_network adds it.
    testhost__link_up "$ns" && { ip -n "$ns" route replace default via "$rootip" || return 1; }
    # A permanent neighbour entry: with the host's link down, SYNs are dropped
    # silently (a real timeout) instead of failing fast on ARP.
    mac=$(ip -n "$ns" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
    ip neigh replace "$ip" lladdr "$mac" dev "$veth" nud permanent || return 1
    printf '%s\n' "$rootip" >"$dir/rootip"
    printf '%s\n' "$ip" >"$dir/ip"
}

testhost__link_up() { ip -n "$1" -o link show eth0 | grep -q '<[^>]*\bUP\b'; }

testhost__net_create() {
    local dir=$1 ns veth
    ns=$(testhost__get "$dir" netns)
    veth=$(testhost__get "$dir" veth)
    ip netns add "$ns" || return 1
    ip link add "$veth" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$ns" link set lo up &&
        ip -n "$ns" link set eth0 up &&
        ip link set "$veth" up || return 1
    testhost__assign_subnet "$dir"
}

# Removes the guard route once no live run is left. Runs under the lock.
testhost__guard_release() {
    local entry
    for entry in "$TESTHOST_STATE_ROOT"/runs/*; do
        [ -d "$entry" ] || continue
        [ "$entry" = "$TESTHOST_STATE_ROOT/runs/$TESTHOST_RUN_ID" ] && continue
        testhost__owner_alive "$entry" && return 0
    done
    if ip -4 route show "$TESTHOST_GUARD_ROUTE" | grep -q unreachable; then
        ip -4 route del unreachable "$TESTHOST_GUARD_ROUTE"
    fi
    return 0
}

# ------------------------------------------------------------- processes --

# The host's pid 1: sets up the private mounts, then chroots into a shell that
# only reaps orphans. Everything mounted here dies with the host's mount namespace.
testhost__init_script() {
    cat <<'EOF'
set -e
root=$1 name=$2 data=$3 cgroups=$4
mount --make-rprivate /
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
# A container host: this machine's cgroup hierarchies (or, TESTHOST_CGROUPS, none: a fresh
# sysfs's empty /sys/fs/cgroup, as under an init that mounts none; v1: the v1 hierarchies
# mounted by hand, one per controller, as cgroupfs-mount does), and a data directory on a real
# filesystem for the engine (overlayfs cannot use the host's own overlay root as upper).
case "$cgroups" in
none) ;;
v1)
    mount -t tmpfs -o nosuid,nodev,noexec,mode=0755 cgroup "$root/sys/fs/cgroup"
    while read -r ctl hier count enabled; do
        case "$ctl" in '#'*) continue ;; esac
        [ "$enabled" = 1 ] || continue
        mkdir -p "$root/sys/fs/cgroup/$ctl"
        mount -t cgroup -o nosuid,nodev,noexec,"$ctl" cgroup "$root/sys/fs/cgroup/$ctl" ||
            rmdir "$root/sys/fs/cgroup/$ctl"
    done </proc/cgroups
    ;;
*) mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup" ;;
esac
mkdir -p "$root/var/lib/machine-engine"
mount --bind "$data" "$root/var/lib/machine-engine"
mount -t tmpfs -o nosuid,mode=0755,size=64m tmpfs "$root/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    set -- $n
    mknod -m 0666 "$root/dev/$1" c "$2" "$3"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$root/run"
mkdir -p -m 0755 "$root/run/sshd" "$root/run/lock"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/tmp"
hostname "$name"
exec chroot "$root" /bin/bash -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait $! || true; done'
EOF
}

testhost__init_pid() {
    local dir=$1 upid child
    upid=$(testhost__get "$dir" unshare.pid) || return 1
    child=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null) || return 1
    child=${child%% *}
    [ -n "$child" ] || return 1
    printf '%s\n' "$child"
}

# Enters every namespace of the host and its chroot. No timeout: internal use.
testhost__enter() {
    local dir=$1 pid
    shift
    pid=$(testhost__get "$dir" init.pid) || { testhost__err "host in '$dir' is not running"; return 1; }
    nsenter --target "$pid" --net --mount --pid --uts --ipc --root --wd -- \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 "$@"
}

# True when sshd at IP sends its banner within 2 s.
testhost__ssh_answers() {
    local ip=$1
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/22" && head -c 4 <&3' "$ip" 2>/dev/null | grep -q '^SSH-'
}

testhost__wait_ssh() {
    local dir=$1 ip deadline
    ip=$(testhost__get "$dir" ip)
    deadline=$((SECONDS + ${TESTHOST_UP_TIMEOUT:-20}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        testhost__ssh_answers "$ip" && return 0
        sleep 0.2
    done
    testhost__log "sshd log of '$dir':"
    tail -n 20 "$dir/root/var/log/sshd.log" >&2 2>/dev/null
    testhost__err "sshd at $ip did not answer within ${TESTHOST_UP_TIMEOUT:-20} s"
}

testhost__start_sshd() {
    local dir=$1
    testhost__enter "$dir" timeout 60 ssh-keygen -A >/dev/null || return 1
    testhost__enter "$dir" timeout 20 /usr/sbin/sshd -E /var/log/sshd.log >&2 || return 1
    testhost__wait_ssh "$dir"
}

testhost__stop_sshd() {
    local dir=$1 i
    testhost__enter "$dir" sh -c '
        pid=$(cat /run/sshd.pid 2>/dev/null) || exit 0
        kill "$pid" 2>/dev/null || exit 0
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null
        rm -f /run/sshd.pid
        exit 0'
}

# ------------------------------------------------------------ public API --

testhost__varname() { printf 'TESTHOST_IP_%s\n' "$(printf '%s' "$1" | tr -c 'A-Za-z0-9_' '_')"; }

testhost_ip() {
    local dir
    dir=$(testhost__hostdir "$1") || return 1
    testhost__get "$dir" ip
}

# The root-namespace side of NAME's link: where NAME reaches services of this machine (a
# registry the test binds there, for example).
testhost_gateway() {
    local dir
    dir=$(testhost__hostdir "$1") || return 1
    testhost__get "$dir" rootip
}

testhost_up() {
    local name=${1:-} lower dir ns veth idx ip upid i pubkey
    case "$name" in
    '' | *[!A-Za-z0-9_]*) testhost__err "host name '$name' must be [A-Za-z0-9_]+"; return 1 ;;
    esac
    [ "${#name}" -le 32 ] || { testhost__err "host name '$name' is too long"; return 1; }
    lower=$(testhost_rootfs) || return 1
    [ -n "$TESTHOST_RUN_DIR" ] || { testhost__err "testhost library not initialised"; return 1; }
    dir="$TESTHOST_RUN_DIR/hosts/$name"
    mkdir "$dir" 2>/dev/null || { testhost__err "host '$name' already exists"; return 1; }
    idx=$(($(cat "$TESTHOST_RUN_DIR/counter" 2>/dev/null || echo 0) + 1))
    printf '%s\n' "$idx" >"$TESTHOST_RUN_DIR/counter"
    ns="mt-$name-$TESTHOST_RUN_ID"
    veth="mt${TESTHOST_RUN_ID}h$idx"
    printf '%s\n' "$ns" >"$dir/netns"
    printf '%s\n' "$veth" >"$dir/veth"

    mkdir -p "$dir/upper" "$dir/work" "$dir/root" "$dir/engine-data"
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/root" ||
        { testhost__err "cannot mount overlay for '$name'"; testhost_down "$name"; return 1; }
    touch "$dir/mounted"

    # Per-host files, written through the overlay.
    printf '%s\n' "$name" >"$dir/root/etc/hostname"
    printf '127.0.1.1\t%s\n' "$name" >>"$dir/root/etc/hosts"
    pubkey=${TESTHOST_PUBKEY:-}
    if [ -n "$pubkey" ]; then
        [ -r "$pubkey" ] || { testhost__err "cannot read TESTHOST_PUBKEY '$pubkey'"; testhost_down "$name"; return 1; }
        if ! install -m 0600 "$pubkey" "$dir/root/root/.ssh/authorized_keys" ||
            ! install -m 0600 -o 1000 -g 1000 "$pubkey" "$dir/root/home/debian/.ssh/authorized_keys"; then
            testhost_down "$name"
            return 1
        fi
    fi

    if ! testhost__locked testhost__net_create "$dir"; then
        testhost__err "cannot create the network of '$name'"
        testhost_down "$name"
        return 1
    fi
    ip=$(testhost__get "$dir" ip)

    # setsid: no terminal signals; --kill-child: the host dies with its unshare.
    setsid nsenter --net="/run/netns/$ns" \
        unshare --mount --pid --uts --ipc --fork --kill-child --propagation private \
        bash -c "$(testhost__init_script)" testhost-init "$dir/root" "$name" "$dir/engine-data" \
        "${TESTHOST_CGROUPS:-bind}" \
        </dev/null >"$dir/init.log" 2>&1 &
    upid=$!
    disown "$upid" 2>/dev/null || true
    printf '%s\n' "$upid" >"$dir/unshare.pid"
    # The init is ready once it is the chrooted shell (its root is the overlay).
    for ((i = 0; i < 100; i++)); do
        if pid=$(testhost__init_pid "$dir") &&
            [ "$(readlink "/proc/$pid/root")" = "$dir/root" ]; then
            printf '%s\n' "$pid" >"$dir/init.pid"
            break
        fi
        kill -0 "$upid" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -s "$dir/init.pid" ]; then
        cat "$dir/init.log" >&2
        testhost__err "host '$name' did not start"
        testhost_down "$name"
        return 1
    fi
    if ! testhost__start_sshd "$dir"; then
        testhost_down "$name"
        return 1
    fi
    export "$(testhost__varname "$name")=$ip"
    testhost__log "host '$name' up at $ip (netns $ns)"
    printf '%s\n' "$ip"
}

testhost_exec() {
    local name=${1:-} dir
    dir=$(testhost__hostdir "$name") || return 1
    shift
    [ "$#" -gt 0 ] || { testhost__err "testhost_exec: no command"; return 1; }
    testhost__enter "$dir" timeout --kill-after=5 "${TESTHOST_EXEC_TIMEOUT:-300}" "$@"
}

testhost_regen_hostkeys() {
    local dir
    dir=$(testhost__hostdir "${1:-}") || return 1
    testhost__stop_sshd "$dir" || return 1
    rm -f "$dir"/root/etc/ssh/ssh_host_*
    testhost__start_sshd "$dir" || return 1
    testhost__log "host '$1' has new host keys"
}

testhost_set_ip() {
    local name=${1:-} dir ip
    dir=$(testhost__hostdir "$name") || return 1
    testhost__locked testhost__assign_subnet "$dir" || { testhost__err "cannot move host '$name'"; return 1; }
    ip=$(testhost__get "$dir" ip)
    export "$(testhost__varname "$name")=$ip"
    testhost__log "host '$name' moved to $ip"
    printf '%s\n' "$ip"
}

testhost_stop_network() {
    local dir ns
    dir=$(testhost__hostdir "${1:-}") || return 1
    ns=$(testhost__get "$dir" netns)
    ip -n "$ns" link set eth0 down || return 1
    testhost__log "host '$1' network down"
}

testhost_start_network() {
    local dir ns
    dir=$(testhost__hostdir "${1:-}") || return 1
    ns=$(testhost__get "$dir" netns)
    ip -n "$ns" link set eth0 up &&
        ip -n "$ns" route replace default via "$(testhost__get "$dir" rootip)" || return 1
    testhost__log "host '$1' network up"
}

# Stops every process of the host, then removes its network, mounts and files.
# Works from the state files alone, so it also reaps hosts of killed runs.
testhost__down_dir() {
    local dir=$1 upid pid ns veth i
    upid=$(testhost__get "$dir" unshare.pid)
    pid=$(testhost__get "$dir" init.pid)
    # SIGKILL of a pid namespace's init kills everything inside it.
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$dir/root" ]; then
        kill -KILL "$pid" 2>/dev/null
    fi
    if [ -n "$upid" ] && [ -d "/proc/$upid" ] &&
        tr '\0' ' ' <"/proc/$upid/cmdline" 2>/dev/null | grep -q "$dir/root"; then
        kill -KILL "$upid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do
            [ -d "/proc/$upid" ] || break
            sleep 0.1
        done
    fi
    ns=$(testhost__get "$dir" netns)
    veth=$(testhost__get "$dir" veth)
    if [ -n "$veth" ] && ip link show "$veth" >/dev/null 2>&1; then
        ip link del "$veth"
    fi
    if [ -n "$ns" ] && [ -e "/run/netns/$ns" ]; then
        ip netns del "$ns"
    fi
    testhost__umount_under "$dir"
    rm -rf --one-file-system "$dir"
}

testhost_down() {
    local name=${1:-} dir
    dir=$(testhost__hostdir "$name") || return 1
    testhost__down_dir "$dir"
    unset "$(testhost__varname "$name")"
    testhost__log "host '$name' removed"
}

testhost__reap_run() {
    local entry=$1 rundir hostdir
    rundir=$(cat "$entry/dir" 2>/dev/null)
    if [ -n "$rundir" ] && [ -d "$rundir/hosts" ]; then
        for hostdir in "$rundir"/hosts/*; do
            [ -d "$hostdir" ] && testhost__down_dir "$hostdir"
        done
        rm -rf --one-file-system "$rundir"
    fi
    rm -rf "$entry"
}

# Removes what runs killed before their EXIT trap left behind.
testhost__reap_stale() {
    local entry
    for entry in "$TESTHOST_STATE_ROOT"/runs/*; do
        [ -d "$entry" ] || continue
        [ -s "$entry/owner" ] || continue
        testhost__owner_alive "$entry" && continue
        testhost__log "removing hosts of a dead test run '${entry##*/}'"
        testhost__reap_run "$entry"
    done
}

testhost_cleanup_all() {
    [ -n "$TESTHOST_RUN_DIR" ] || return 0
    if [ "${TESTHOST_KEEP:-0}" = 1 ]; then
        testhost__log "TESTHOST_KEEP=1: leaving hosts in '$TESTHOST_RUN_DIR'"
        return 0
    fi
    testhost__reap_run "$TESTHOST_STATE_ROOT/runs/$TESTHOST_RUN_ID"
    testhost__locked testhost__guard_release
    TESTHOST_RUN_DIR=""
    TESTHOST_RUN_ID=""
}

testhost_on_exit() { TESTHOST_EXIT_HOOKS+=("$*"); }

testhost__on_exit() {
    local rc=$? hook
    set +e
    for hook in ${TESTHOST_EXIT_HOOKS[@]+"${TESTHOST_EXIT_HOOKS[@]}"}; do
        eval "$hook"
    done
    testhost_cleanup_all
    exit "$rc"
}

trap testhost__on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
testhost__locked testhost__reap_stale || true
# In the test's own shell, so that hosts made in $(...) subshells share the run.
testhost__run_init || testhost__err "cannot initialise the test run state"
