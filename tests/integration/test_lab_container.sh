#!/usr/bin/env bash
# `-d container` lab hosts: an engine in this test's network namespace holds the machines
# (system containers made by drivers/container from machine-host.tar, provisioned over SSH like
# any host); a lab file with LABCTR_HOSTS (default 6) of them and 2 `-d generic` hosts (OpenSSH
# servers in network namespaces) comes up in parallel; docker run works on each through
# `machine env`; the Ansible inventory reaches all; a second `up` keeps everything; `up --destroy`
# leaves no container, volume, network, store entry or lock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (namespaces, an engine, containers)"; exit 77; }
[ -s "${MACHINE_BUILD:?}/machine-os/machine-host.tar" ] ||
    { echo "skip: no machine-host.tar (the Release engine bundle and machine-os are not built)"; exit 77; }
if [ -z "${MACHINE_LABCTR_INNER:-}" ]; then
    exec env MACHINE_LABCTR_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
ip link set lo up
source "$here/lib/assert.sh"
source "$here/lib/testhost.sh"
source "$here/lib/engine.sh"
source "$here/lib/images.sh"

M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
N=${LABCTR_HOSTS:-6}
T=$(mktemp -d /tmp/machine-labctr-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=60000
step() { printf '\n--- %s\n' "$*" >&2; }
cleanup() {
    [ -z "${engine_pid:-}" ] || curl -s --max-time 30 --unix-socket "$T/e/engine.sock" \
        "http://x/containers/json?all=1" | /usr/bin/python3 -c \
        'import json,sys; print("\n".join(c["Id"] for c in json.load(sys.stdin)))' 2>/dev/null |
        while read -r id; do
            curl -s --max-time 60 -X DELETE --unix-socket "$T/e/engine.sock" \
                "http://x/containers/$id?force=1&v=1" >/dev/null
        done
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/e/exec" 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
testhost_on_exit cleanup

ENGINE_ARGS=(--exec-root "$T/e/exec")
engine_start "$T/e"
SOCK=$T/e/engine.sock
api() { curl -sf --max-time 60 --unix-socket "$SOCK" "http://x$1"; }
count() { /usr/bin/python3 -c "import json,sys; v=json.load(sys.stdin); v=v.get('$1', v) if isinstance(v, dict) else v; print(len(v or []))"; }

ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
testhost_up g1 >/dev/null
testhost_up g2 >/dev/null
images_busybox_root "$T/bb"
tar -C "$T/bb" -cf "$T/bb.tar" .

cat >"$T/lab.yaml" <<YAML
name: ctrlab
hosts:
  node-{1..$N}:
    driver: container
    flags: { container-engine-url: "unix://$SOCK", container-memory: 512 }
  gen-1:
    driver: generic
    flags: { generic-ip-address: $(testhost_ip g1), generic-ssh-key: $T/id }
  gen-2:
    driver: generic
    flags: { generic-ip-address: $(testhost_ip g2), generic-ssh-key: $T/id }
YAML
hosts=$(for i in $(seq "$N"); do echo "node-$i"; done; echo gen-1; echo gen-2)
total=$((N + 2))

step "up: $N container hosts and 2 generic hosts, in parallel"
out=$("$M" up -f "$T/lab.yaml" --parallel 4 2>&1) || fail "machine up: $out"
echo "$out" | tail -n $((total + 3)) >&2
assert_eq "$(grep -cE '^(node|gen)-[0-9]+ +create +ok' <<<"$out")" "$total" "every host created"
assert_eq "$(api "/containers/json?filters=%7B%22label%22%3A%5B%22machine.container%22%5D%7D" | count x)" \
    "$N" "one running container per container host"
assert_eq "$(api /volumes | count Volumes)" "$N" "one volume per container host"
api /networks/machine-lab >/dev/null || fail "the lab network was created"
mem=$(api /containers/node-1/json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["HostConfig"]["Memory"])')
assert_eq "$mem" "536870912" "--container-memory on the container"

step "docker run on each host through machine env"
for h in $hosts; do
    (
        eval "$("$M" env "$h")"
        docker import "$T/bb.tar" bb:1 >/dev/null || fail "docker import on $h"
        got=$(docker run --rm -m 64m bb:1 sh -c 'echo "inside on $(cat /proc/sys/kernel/hostname)";
            cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max') ||
            fail "docker run on $h"
        assert_contains "$got" "inside on " "a container ran on $h"
        assert_contains "$got" "67108864" "the memory limit applies inside a container on $h"
        assert_contains "$(docker info --format '{{.Name}}')" "$h" "the engine of $h answers as $h"
    ) || exit 1
done

step "inventory for Ansible; ansible -m ping and real modules on every host"
"$M" inventory --lab ctrlab --format ansible >"$T/inv.yml" || fail "inventory"
export ANSIBLE_LOCAL_TEMP=$T/ansible-tmp ANSIBLE_REMOTE_TEMP=/tmp ANSIBLE_NOCOLOR=1
HOME=$T ansible-inventory -i "$T/inv.yml" --list >"$T/inv.json" 2>"$T/ansible.err" ||
    fail "ansible-inventory refused the inventory: $(cat "$T/ansible.err")"
assert_eq "$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["_meta"]["hostvars"]))' \
    "$T/inv.json")" "$total" "ansible-inventory lists every host"
# host keys stay checked: the inventory pins each machine's known_hosts
unset ANSIBLE_HOST_KEY_CHECKING
# ping runs ansible's python module on each host: machine-host's python3, the testhosts' Debian one
out=$(HOME=$T /usr/bin/ansible -i "$T/inv.yml" all -f 8 -o -m ping 2>&1) || fail "ansible -m ping: $out"
for h in $hosts; do
    grep "^$h | SUCCESS => " <<<"$out" | grep -q '"ping": *"pong"' || fail "ansible -m ping on $h: $out"
done
assert_eq "$(grep -c '"ping": *"pong"' <<<"$out")" "$total" "every host answered pong to ansible -m ping"
grep -q 'discovered Python interpreter' <<<"$out" && fail "an interpreter discovery warning: $out"
out=$(HOME=$T /usr/bin/ansible -i "$T/inv.yml" all -f 8 -o -m command -a 'cat /etc/hostname' 2>&1) ||
    fail "ansible -m command: $out"
for h in $hosts; do
    grep -qx "$h | CHANGED | rc=0 | (stdout) $h" <<<"$out" || fail "ansible -m command on $h: $out"
done
assert_eq "$(grep -c ' | CHANGED | rc=0' <<<"$out")" "$total" "ansible -m command ran on every host"
echo "copied by ansible" >"$T/payload"
out=$(HOME=$T /usr/bin/ansible -i "$T/inv.yml" all -f 8 -m copy -a "src=$T/payload dest=/root/payload mode=0600" 2>&1) ||
    fail "ansible -m copy: $out"
for h in node-1 gen-1; do
    assert_eq "$("$M" ssh "$h" -- cat /root/payload)" "copied by ansible" "ansible -m copy wrote the file on $h"
done

step "up again: nothing changes"
out=$("$M" up -f "$T/lab.yaml" --parallel 4 2>&1) || fail "second up: $out"
assert_eq "$(grep -cE ' keep +ok' <<<"$out")" "$total" "every host kept"

step "stop and start keep the address and the engine"
"$M" stop node-1 >/dev/null || fail "stop node-1"
assert_eq "$("$M" status node-1)" "Stopped" "node-1 stopped"
"$M" start node-1 >/dev/null || fail "start node-1"
(eval "$("$M" env node-1)"; docker run --rm bb:1 echo after-restart) | grep -q after-restart ||
    fail "docker run on node-1 after stop/start"

step "up --destroy leaves nothing on the engine or in the store"
out=$("$M" up -f "$T/lab.yaml" --destroy 2>&1) || fail "up --destroy: $out"
assert_eq "$(api '/containers/json?all=1' | count x)" "0" "no container left"
assert_eq "$(api /volumes | count Volumes)" "0" "no volume left"
api /networks/machine-lab >/dev/null 2>&1 && fail "the lab network is left"
assert_eq "$("$M" ls -q)" "" "no machine left in the store"
assert_eq "$(find "$MACHINE_STORAGE_PATH/locks" -type f -newer "$T/lab.yaml" -name '*.lock' \
    ! -name 'container-*' 2>/dev/null | wc -l)" "0" "no machine lock left"
pass
