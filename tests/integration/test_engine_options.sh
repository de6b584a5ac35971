#!/usr/bin/env bash
# Container create options with the real docker CLI 28 against machine-engine, each checked
# inside the container: refused fields name themselves, --ulimit, --shm-size, --security-opt
# (no-new-privileges, seccomp unconfined and profile, apparmor/label), --privileged,
# --cap-add/--cap-drop ALL, groups (-u, --group-add), --oom-score-adj, --oom-kill-disable,
# --memory-reservation, --cpuset-cpus, --sysctl, --tmpfs options, --read-only, --cgroupns,
# --ipc, --pid, --uts, --domainname, --device, --device-cgroup-rule (issues 19 and 21).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (namespaces, cgroups, mounts)"; exit 77; }
# The engine builds a bridge and NAT rules: run in a network and mount namespace of our own.
if [ -z "${MACHINE_OPTS_INNER:-}" ]; then
    exec env MACHINE_OPTS_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
ip link set lo up
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-opts-XXXXXX)
ENGINE_ARGS=(--exec-root "$T/e/exec") # its own: other engines clean up a shared one
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 30 "$T"/e/engine.log >&2 2>/dev/null || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/e/exec" 2>/dev/null || true
    registry_cleanup 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    [ -z "${KEEP:-}" ] && rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock
d() { "$DOCKER" "$@"; }
d pull -q "$IMG" >/dev/null
run() { d run --rm "$@"; }
# run_fails MESSAGE ARGS...: docker run exits 125 and prints MESSAGE
run_fails() {
    local want=$1 out rc=0
    shift
    out=$(d run --rm "$@" 2>&1) || rc=$?
    [ "$rc" = 125 ] || fail "docker run $* exited $rc, not 125: $out"
    assert_contains "$out" "$want" "refused: $*"
}
status_field() { run "$@" grep "^$FIELD:" /proc/self/status | awk '{print $2}'; }

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGV=2; else CGV=1; fi

step "fields the engine cannot carry out are refused by name"
run_fails "HostConfig.CgroupParent is not supported by machine-engine" --cgroup-parent x "$IMG" true
run_fails "unknown or invalid runtime name: kata" --runtime kata "$IMG" true # dockerd's words
assert_eq "$(run --runtime runc "$IMG" echo ok)" "ok" "--runtime runc is the default"
run_fails "HostConfig.StorageOpt is not supported by machine-engine" --storage-opt size=1G "$IMG" true
out=$(curl -s --unix-socket "$T/e/engine.sock" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"HostConfig\":{\"memory\":10000000}}" http://x/v1.45/containers/create)
assert_eq "$(d inspect -f '{{.HostConfig.Memory}}' "$(jq -r .Id <<<"$out")")" "10000000" \
    "a field in another case is taken as dockerd's decoder does, not dropped"
out=$(curl -s --unix-socket "$T/e/engine.sock" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"HostConfig\":{\"memory\":10000000,\"Memory\":20000000}}" http://x/v1.45/containers/create)
assert_contains "$out" "write Memory" "both spellings at once are refused"
out=$(curl -s --unix-socket "$T/e/engine.sock" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"HostConfig\":{\"FutureLimit\":1}}" http://x/v1.45/containers/create)
assert_contains "$out" "unknown field HostConfig.FutureLimit is not supported by machine-engine" \
    "an unknown field set to a value is refused"

run_fails "VolumeOptions.DriverConfig is not supported by machine-engine" \
    --mount type=volume,src=labelled,dst=/m,volume-driver=x "$IMG" true
run_fails "bind propagation rshared is not supported by machine-engine" \
    --mount type=bind,src=/tmp,dst=/m,bind-propagation=rshared "$IMG" true

step "--volumes-from"
mkdir -p "$T/bind"
d create --name vdonor -v vfvol:/data -v "$T/bind:/b" -v /anon "$IMG" true >/dev/null
d run --rm -v vfvol:/data "$IMG" sh -c 'echo from-donor >/data/f'
assert_eq "$(run --volumes-from vdonor "$IMG" sh -c 'cat /data/f; echo x >/b/w && echo bind-rw; test -d /anon && echo anon' | tr '\n' ' ')" \
    "from-donor bind-rw anon " "--volumes-from: named, bind and anonymous mounts"
assert_exit 1 run --volumes-from vdonor:ro "$IMG" sh -c 'echo y >/data/g'
out=$(d create --volumes-from nosuch "$IMG" true 2>&1) && fail "--volumes-from of a missing container was accepted"
assert_contains "$out" "No such container: nosuch" "--volumes-from a missing container"
d rm -v vdonor >/dev/null

step "--link on the default bridge"
d run -d --name linked -e SECRET=s3 --expose 8080 "$IMG" sleep 300 >/dev/null
ip=$(d inspect -f '{{.NetworkSettings.IPAddress}}' linked)
[ -n "$ip" ] || fail "the linked container has no address on the default bridge"
out=$(d run --rm --name linker --link linked:db "$IMG" sh -c \
    'echo "$DB_NAME $DB_PORT $DB_PORT_8080_TCP_ADDR $DB_ENV_SECRET"; grep -w db /etc/hosts; ping -c1 -W5 db >/dev/null && echo reachable')
assert_eq "$(echo "$out" | sed -n 1p)" "/linker/db tcp://$ip:8080 $ip s3" "--link: docker's link variables"
assert_contains "$out" "$ip	db linked" "--link: /etc/hosts names the alias and the container"
assert_contains "$out" "reachable" "--link: the alias answers"
run_fails "could not get container for nosuch" --link nosuch:x "$IMG" true
d network create linknet >/dev/null
assert_eq "$(run --network linknet --link linked:db "$IMG" sh -c 'echo "[$DB_NAME]"')" "[]" \
    "--link on a user network: no legacy variables (an alias of its DNS: test_engine_netaddr.sh)"
d network rm linknet >/dev/null
d rm -f linked >/dev/null

step "ulimits, /dev/shm, OOM score"
assert_eq "$(run --ulimit nofile=100:100 "$IMG" sh -c 'ulimit -n; ulimit -Hn' | tr '\n' ' ')" \
    "100 100 " "--ulimit nofile=100:100"
assert_eq "$(run --ulimit nproc=50:60 "$IMG" sh -c 'ulimit -u; ulimit -Hu' | tr '\n' ' ')" \
    "50 60 " "--ulimit nproc=50:60"
run_fails "invalid ulimit type: bogus" --ulimit bogus=1 "$IMG" true
assert_eq "$(run --shm-size 8m "$IMG" df -k /dev/shm | awk 'NR==2{print $2}')" "8192" \
    "--shm-size 8m: /dev/shm is 8 MiB"
assert_eq "$(run "$IMG" df -k /dev/shm | awk 'NR==2{print $2}')" "65536" "default /dev/shm is 64 MiB"
assert_eq "$(run --oom-score-adj 500 "$IMG" cat /proc/self/oom_score_adj)" "500" "--oom-score-adj 500"

[ -e /proc/timer_list ] || fail "no /proc/timer_list on this host to check masking with"
assert_eq "$(run "$IMG" sh -c 'test "$(head -c 10 /proc/timer_list | wc -c)" = 10 && echo unmasked || echo masked')" \
    "masked" "/proc/timer_list is masked by default"

step "security options"
FIELD=NoNewPrivs
assert_eq "$(status_field "$IMG")" "0" "no_new_privs off by default"
assert_eq "$(status_field --security-opt no-new-privileges "$IMG")" "1" "--security-opt no-new-privileges"
assert_eq "$(status_field --security-opt no-new-privileges:true "$IMG")" "1" "no-new-privileges:true"
d run -d --name nnp --security-opt no-new-privileges --security-opt seccomp=unconfined "$IMG" sleep 300 >/dev/null
assert_eq "$(d exec nnp grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | awk '{print $2}' | tr '\n' ' ')" "1 0 " \
    "docker exec keeps the container's no-new-privileges and seccomp choice"
d rm -f nnp >/dev/null
FIELD=Seccomp
assert_eq "$(status_field "$IMG")" "2" "default seccomp profile"
assert_eq "$(status_field --security-opt seccomp=unconfined "$IMG")" "0" "seccomp=unconfined"
cat >"$T/profile.json" <<'EOF'
{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}
EOF
assert_eq "$(status_field --security-opt seccomp="$T/profile.json" "$IMG")" "2" "seccomp=PROFILE loads a filter"
out=$(run --security-opt seccomp="$T/profile.json" "$IMG" sh -c 'mkdir /x 2>&1; echo rc=$?')
assert_contains "$out" "Operation not permitted" "seccomp=PROFILE: the profile's rule applies"
assert_eq "$(run --security-opt seccomp="$T/profile.json" "$IMG" sh -c 'touch /y && echo ok')" "ok" \
    "seccomp=PROFILE: its default action applies"
assert_eq "$(run --security-opt apparmor=unconfined --security-opt label=disable "$IMG" echo ok)" "ok" \
    "apparmor=unconfined and label=disable are accepted (no profile, no label applied)"
run_fails "is not supported by machine-engine" --security-opt apparmor=docker-default "$IMG" true
run_fails "is not supported by machine-engine" --security-opt label=type:svirt_t "$IMG" true
run_fails "invalid --security-opt 2" --security-opt bogus=1 "$IMG" true
assert_eq "$(run --security-opt systempaths=unconfined "$IMG" sh -c 'test "$(head -c 10 /proc/timer_list | wc -c)" = 10 && echo unmasked || echo masked')" \
    "unmasked" "systempaths=unconfined: /proc/kcore is not masked"

step "privileged, capabilities"
FIELD=CapEff
all=$(status_field --privileged "$IMG")
assert_eq "$(printf '%d' "0x$all" | awk '{print ($1 > 1099511627775) ? "all" : "few"}')" "all" "--privileged: every capability"
assert_eq "$(status_field --cap-add ALL "$IMG")" "$all" "--cap-add ALL = every capability"
assert_eq "$(status_field --cap-drop ALL "$IMG")" "0000000000000000" "--cap-drop ALL: none"
assert_eq "$(status_field --cap-drop ALL --cap-add CHOWN "$IMG")" "0000000000000001" "--cap-drop ALL --cap-add CHOWN"
run_fails 'invalid CapAdd: unknown capability: "CAP_FOO"' --cap-add CAP_FOO "$IMG" true
FIELD=Seccomp
assert_eq "$(status_field --privileged "$IMG")" "0" "--privileged: no seccomp"
hostdev=$(for n in kmsg loop-control fuse net/tun; do [ -c /dev/$n ] && echo $n && break; done || true)
if [ -n "$hostdev" ]; then
    assert_eq "$(run --privileged "$IMG" sh -c "test -c /dev/$hostdev && echo yes")" "yes" "--privileged: host device /dev/$hostdev"
    assert_eq "$(run "$IMG" sh -c "test -e /dev/$hostdev && echo yes || echo no")" "no" "not privileged: no /dev/$hostdev"
else
    echo "skip: the host has none of kmsg, loop-control, fuse, net/tun to look for"
fi
assert_eq "$(run --privileged "$IMG" sh -c 'test "$(head -c 10 /proc/timer_list | wc -c)" = 10 && echo unmasked || echo masked')" \
    "unmasked" "--privileged: no masked paths"

step "users and groups"
assert_eq "$(run -u nobody "$IMG" id -G)" "65534" "-u nobody: its primary group among its groups, as dockerd"
assert_eq "$(run -u nobody --group-add 1234 --group-add root "$IMG" id -G | tr ' ' '\n' | sort -n | tr '\n' ' ')" \
    "0 1234 65534 " "--group-add by id and name"
run_fails "Unable to find group nosuchgroup" --group-add nosuchgroup "$IMG" true
# the user's groups come from the container's /etc/group (here changed with docker cp)
printf 'root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\nwheel:x:10:root,nobody\n' >"$T/group"
d create --name grp -u nobody --group-add 7 "$IMG" sh -c 'id -G' >/dev/null
d cp "$T/group" grp:/etc/group
assert_eq "$(d start -a grp | tr ' ' '\n' | sort -n | tr '\n' ' ')" "7 10 50 65534 " \
    "-u nobody: its /etc/group groups, its primary group and --group-add"
d rm grp >/dev/null

step "memory and cpu extras"
if [ "$CGV" = 1 ]; then
    assert_eq "$(run --memory-reservation 64m "$IMG" cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes)" \
        "67108864" "--memory-reservation (v1 soft limit)"
    assert_eq "$(run -m 64m --oom-kill-disable "$IMG" sh -c 'grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control')" \
        "oom_kill_disable 1" "--oom-kill-disable (v1)"
else
    assert_eq "$(run --memory-reservation 64m "$IMG" cat /sys/fs/cgroup/memory.low)" "67108864" \
        "--memory-reservation (v2 memory.low)"
    run_fails "OomKillDisable is not supported by machine-engine" -m 64m --oom-kill-disable "$IMG" true
fi
assert_eq "$(run --cpuset-cpus 0 "$IMG" grep Cpus_allowed_list /proc/self/status | awk '{print $2}')" "0" \
    "--cpuset-cpus 0"
assert_eq "$(run --cpuset-mems 0 "$IMG" grep Mems_allowed_list /proc/self/status | awk '{print $2}')" "0" \
    "--cpuset-mems 0"
if [ "$CGV" = 1 ] && [ -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ]; then
    assert_eq "$(run -m 32m --memory-swap 64m "$IMG" cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes)" \
        "67108864" "--memory-swap 64m (v1 memory+swap)"
elif [ "$CGV" = 2 ] && [ -e /sys/fs/cgroup/memory.swap.max ]; then
    assert_eq "$(run -m 32m --memory-swap 64m "$IMG" cat /sys/fs/cgroup/memory.swap.max)" "33554432" \
        "--memory-swap 64m (v2 swap on top of memory)"
else
    echo "skip: no swap accounting on this host (memory.memsw / memory.swap.max)"
fi
run_fails "Requested CPUs are not available" --cpuset-cpus 4000 "$IMG" true
# a weight needs the BFQ (or CFQ) I/O scheduler: set where there is one, refused where not
if out=$(run --blkio-weight 300 "$IMG" sh -c 'cat /sys/fs/cgroup/blkio/blkio.weight /sys/fs/cgroup/blkio/blkio.bfq.weight /sys/fs/cgroup/io.bfq.weight /sys/fs/cgroup/io.weight 2>/dev/null' 2>&1); then
    # io.weight has its own scale (1..10000): 300 of blkio's 10..1000 is 2930 there
    case "$out" in *300* | *2930*) assert__ok "--blkio-weight 300 where the scheduler has weights" ;;
    *) fail "--blkio-weight 300: the cgroup says $out" ;; esac
else
    assert_contains "$out" "BlkioWeight is not supported by machine-engine on this host" \
        "--blkio-weight is refused where no I/O scheduler has weights"
fi

step "sysctls"
assert_eq "$(run --sysctl kernel.shmmax=1234567 "$IMG" cat /proc/sys/kernel/shmmax)" "1234567" "--sysctl kernel.shmmax"
assert_eq "$(run --sysctl net.ipv4.ip_unprivileged_port_start=80 "$IMG" cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" \
    "80" "--sysctl net.* in the container's network namespace"
[ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" != 80 ] || echo "note: the host already had 80"
# the CLI refuses this one itself: ask the API directly
out=$(curl -s --unix-socket "$T/e/engine.sock" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"HostConfig\":{\"Sysctls\":{\"kernel.panic\":\"1\"}}}" \
    http://x/v1.45/containers/create)
assert_contains "$out" "is not in a separate kernel namespace" "a host-wide sysctl is refused"
run_fails "not allowed in host network namespace" --network host --sysctl net.ipv4.ip_forward=1 "$IMG" true
run_fails "not allowed in the hosts ipc namespace" --ipc host --sysctl kernel.shmmax=1 "$IMG" true

step "tmpfs options, read-only rootfs"
assert_eq "$(run --tmpfs /t:size=1m,mode=700 "$IMG" sh -c 'df -k /t | awk "NR==2{print \$2}"; stat -c %a /t' | tr '\n' ' ')" \
    "1024 700 " "--tmpfs size and mode"
assert_exit 1 run --read-only "$IMG" touch /x
assert_eq "$(run --read-only "$IMG" sh -c 'touch /dev/shm/x && echo ok')" "ok" "--read-only keeps /dev/shm writable"

step "namespaces: cgroup, uts, ipc, pid"
assert_eq "$(run --cgroupns private "$IMG" sh -c 'cut -d: -f3 /proc/self/cgroup | sort -u')" "/" "--cgroupns private"
assert_contains "$(run --cgroupns host "$IMG" cat /proc/self/cgroup)" "machine-engine" "--cgroupns host"
assert_eq "$(run --uts host "$IMG" hostname)" "$(hostname)" "--uts host"
assert_eq "$(run --domainname example.org "$IMG" cat /proc/sys/kernel/domainname)" "example.org" "--domainname"
host_ipc=$(readlink /proc/self/ns/ipc)
host_pid=$(readlink /proc/self/ns/pid)
assert_eq "$(run --ipc host "$IMG" readlink /proc/self/ns/ipc)" "$host_ipc" "--ipc host"
[ "$(run "$IMG" readlink /proc/self/ns/ipc)" != "$host_ipc" ] || fail "default IPC is the host's"
assert_eq "$(run --pid host "$IMG" readlink /proc/self/ns/pid)" "$host_pid" "--pid host"
assert_eq "$(run --pid host "$IMG" sh -c 'test -d /proc/1 && echo $$' | awk '{print ($1 > 1) ? "host" : "own"}')" \
    "host" "--pid host: the shell is not pid 1"
d run -d --name donor --ipc shareable "$IMG" sh -c 'echo shared >/dev/shm/f; exec sleep 300' >/dev/null
for _ in $(seq 50); do d exec donor test -f /dev/shm/f 2>/dev/null && break; sleep 0.1; done
donor_ipc=$(d exec donor readlink /proc/self/ns/ipc)
donor_pid=$(d exec donor readlink /proc/self/ns/pid)
assert_eq "$(run --ipc container:donor "$IMG" sh -c 'readlink /proc/self/ns/ipc; cat /dev/shm/f' | tr '\n' ' ')" \
    "$donor_ipc shared " "--ipc container:NAME shares the namespace and /dev/shm"
assert_eq "$(run --pid container:donor "$IMG" readlink /proc/self/ns/pid)" "$donor_pid" "--pid container:NAME"
assert_contains "$(run --pid container:donor "$IMG" ps)" "sleep 300" "--pid container:NAME sees its processes"
d run -d --name private "$IMG" sleep 300 >/dev/null
run_fails "non-shareable IPC" --ipc container:private "$IMG" true
d rm -f donor private >/dev/null
assert_eq "$(run --ipc none "$IMG" sh -c 'grep -c " /dev/shm " /proc/self/mountinfo || true')" "0" "--ipc none: no /dev/shm"

step "devices"
assert_eq "$(run --device /dev/null:/dev/xnull "$IMG" sh -c 'test -c /dev/xnull && echo hi >/dev/xnull && stat -c %t:%T /dev/xnull')" \
    "1:3" "--device /dev/null:/dev/xnull creates a usable node"
# at create, as dockerd (the CLI turns "no such file or directory" into 127)
out=$(d create --device /nonexistent "$IMG" true 2>&1) && fail "create with a missing device succeeded"
assert_contains "$out" "error gathering device information" "--device of a missing node is refused at create"
# v1 devices controller or (v2, and hybrid's cgroup2 side) the engine's eBPF device program
probe='mknod /tmp/l b 7 0 && dd if=/tmp/l of=/dev/null count=0 2>&1; true'
assert_contains "$(run "$IMG" sh -c "$probe")" "Operation not permitted" "b 7:0 is denied by default"
out=$(run --device-cgroup-rule 'b 7:* r' "$IMG" sh -c "$probe")
case "$out" in *"Operation not permitted"*) fail "--device-cgroup-rule 'b 7:* r' did not allow the device: $out" ;; esac
assert__ok "--device-cgroup-rule 'b 7:* r' allows it"
assert_eq "$(grep -c 'devices program of' "$T/e/engine.log" || true)" "0" "the device program loaded for every container"
out=$(curl -s --unix-socket "$T/e/engine.sock" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"HostConfig\":{\"DeviceCgroupRules\":[\"x 1\"]}}" \
    http://x/v1.45/containers/create)
assert_contains "$out" "invalid device cgroup rule format" "a malformed device cgroup rule is refused"

pass
