#!/usr/bin/env bash
# machine up's run control and machine export/import, against OpenSSH servers in network
# namespaces this test creates (generic driver): --abort-on-failure rolls back what the run
# created and keeps what it kept; SIGINT to the process group stops the run with every host
# created, marked failed or not started; the progress is redrawn in place on a terminal; a
# machine exported, removed and imported (also under another name) is reachable over SSH again;
# archives with entries escaping the machine directory are refused with nothing left behind;
# setup.images docker-archive tars are loaded onto a host through its engine API (no registry).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/testhost.sh"
source "$here/lib/images.sh"

M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
T=$(mktemp -d /tmp/machine-labmore-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "rm -rf '$T'"
step() { printf '\n--- %s\n' "$*" >&2; }

ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
testhost_up lm1
testhost_up lm2
testhost_up lm3
IP1=$(testhost_ip lm1)
IP2=$(testhost_ip lm2)
IP3=$(testhost_ip lm3)

status_of() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Lifecycle"]["Status"])' \
    "$MACHINE_STORAGE_PATH/machines/$1/config.json"; }

# lab NAME HOST:IP:RUN... (hosts in file order; --parallel 1 keeps that order)
lab() {
    local name=$1
    shift
    {
        printf 'name: %s\ndefaults:\n  driver: generic\n  flags: { generic-ssh-key: %s }\nhosts:\n' "$name" "$T/id"
        for h in "$@"; do
            IFS=: read -r host ip run <<<"$h"
            printf '  %s:\n    flags: { generic-ip-address: %s }\n    setup: { run: [ "%s" ] }\n' \
                "$host" "$ip" "$run"
        done
    } >"$T/$name.yaml"
}

step "--abort-on-failure: the run's new machines are removed, a kept one stays"
lab ab "a:$IP1:true"
out=$("$M" up -f "$T/ab.yaml" 2>&1) || fail "first up: $out"
lab ab "a:$IP1:true" "c:$IP3:true" "b:$IP2:exit 3"
out=$("$M" up -f "$T/ab.yaml" --parallel 1 --abort-on-failure 2>&1) && fail "a failing lab succeeded: $out"
echo "$out" | tail -6 >&2
grep -E "^a +keep +ok" <<<"$out" >/dev/null || fail "a kept: $out"
grep -E "^c +create +removed .*rolled back" <<<"$out" >/dev/null || fail "c rolled back: $out"
grep -E "^b +create +removed +[0-9.]+s +setup.run 'exit 3'" <<<"$out" >/dev/null || fail "b failed and removed: $out"
assert_eq "$("$M" ls -q | tr '\n' ' ')" "a " "only the kept machine is left"
[ ! -e "$MACHINE_STORAGE_PATH/machines/c" ] || fail "c's store entry left"
"$M" up -f "$T/ab.yaml" --destroy >/dev/null 2>&1 || fail "destroy"

step "SIGINT: the running host finishes its step, the next one is not started"
lab int "x:$IP1:touch /x-started && sleep 3" "y:$IP2:true"
testhost_exec lm1 rm -f /x-started
setsid "$M" up -f "$T/int.yaml" --parallel 1 >"$T/int.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    testhost_exec lm1 test -e /x-started 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
testhost_exec lm1 test -e /x-started || fail "x's setup never started: $(cat "$T/int.out")"
kill -INT -- "-$pid"
rc=0
wait "$pid" || rc=$?
out=$(cat "$T/int.out")
echo "$out" | tail -5 >&2
assert_eq "$rc" "130" "machine up interrupted exits 130"
assert_contains "$out" "Interrupted" "the interruption is said"
grep -E "^y +- +skipped .*not started: interrupted" <<<"$out" >/dev/null || fail "y not started: $out"
[ ! -e "$MACHINE_STORAGE_PATH/machines/y" ] || fail "y has a store entry"
st=$(status_of x)
[ "$st" = created ] || [ "$st" = error ] || fail "x is '$st', neither created nor failed"

step "SIGINT twice: the running host is recorded as failed at once"
lab int2 "z:$IP3:touch /z-started && sleep 60"
testhost_exec lm3 rm -f /z-started
setsid "$M" up -f "$T/int2.yaml" >"$T/int2.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    testhost_exec lm3 test -e /z-started 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
testhost_exec lm3 test -e /z-started || fail "z's setup never started: $(cat "$T/int2.out")"
kill -INT -- "-$pid"
for _ in $(seq 1 50); do grep -q Interrupted "$T/int2.out" && break; sleep 0.1; done
kill -INT -- "-$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -ne 0 ] || fail "twice interrupted machine up exited 0"
assert_eq "$(status_of z)" "error" "z marked failed"
assert_contains "$(cat "$MACHINE_STORAGE_PATH/machines/z/config.json")" "interrupted" "with why"

step "on a terminal the progress is redrawn in place"
"$M" up -f "$T/int.yaml" --destroy >/dev/null 2>&1 || fail "destroy"
"$M" up -f "$T/int2.yaml" --destroy >/dev/null 2>&1 || fail "destroy"
lab tty "x:$IP1:true"
"$M" up -f "$T/tty.yaml" >/dev/null 2>&1 || fail "up of the tty lab"
out=$(script -qec "$M up -f $T/tty.yaml" /dev/null 2>&1) || fail "up on a pty: $out"
esc=$'\033'
assert_contains "$out" "${esc}[2K" "lines cleared"
assert_contains "$out" "${esc}[1A" "the cursor goes back over the frame"
grep -E "^x +keep +ok" <<<"$(tr -d '\r' <<<"$out")" >/dev/null || fail "the summary on a pty: $out"
"$M" up -f "$T/tty.yaml" --destroy >/dev/null 2>&1 || fail "destroy"

step "setup.images: a docker-archive tar loaded through the host's engine, no registry"
images_build || fail "the test images (cache)"
mkdir -p "$T/imgs"
skopeo copy -q "oci:$IMAGES_LAYOUT:v1" "docker-archive:$T/imgs/img.tar:test/img:v1" || fail "docker-archive"
printf 'name: im\nhosts:\n  i:\n    driver: generic\n    flags: { generic-ssh-key: %s, generic-ip-address: %s }\n    setup: { images: [ %s ] }\n' \
    "$T/id" "$IP1" "nosuch.tar" >"$T/imgs/lab.yaml"
out=$("$M" up -f "$T/imgs/lab.yaml" 2>&1) && fail "a missing archive was taken: $out"
assert_contains "$out" "lab.yaml:3: hosts.i.setup.images: '$T/imgs/nosuch.tar': no such file" "a missing archive refused"
assert_eq "$("$M" ls -q --filter label=lab=im)" "" "nothing made for a refused lab"
sed -i 's/nosuch.tar/img.tar/' "$T/imgs/lab.yaml"
out=$("$M" up -f "$T/imgs/lab.yaml" 2>&1) || fail "up with images: $out"
assert_contains "$out" "setup: loading img.tar" "the load is a step"
(
    eval "$("$M" env i)"
    assert_contains "$(/usr/local/bin/docker image inspect -f '{{json .RepoTags}}' test/img:v1)" '"test/img:v1"' "the image is on the host"
    assert_eq "$(/usr/local/bin/docker run --rm test/img:v1 echo from-the-tar)" "from-the-tar" "it runs"
) || fail "the loaded image"
"$M" up -f "$T/imgs/lab.yaml" --destroy >/dev/null 2>&1 || fail "destroy"

# The registry listens on this computer's loopback: the hosts (their own network namespaces)
# cannot reach it, so the image can only have come through their engine's API.
step "setup.images: a reference pulled once on this computer (loopback registry), loaded on two hosts"
REG=$(bash "$here/lib/registry.sh" start "$T/reg" $$) || fail "registry"
testhost_on_exit "bash '$here/lib/registry.sh' stop '$T/reg'"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$IMAGES_LAYOUT:multi" \
    "docker://$REG/test/multi:v1" --all || fail "push"
cat >"$T/imgs/pull.yaml" <<YAML
name: pull
defaults:
  driver: generic
  flags: { generic-ssh-key: $T/id }
  setup: { images: [ "$REG/test/multi:v1" ] }
hosts:
  p1: { flags: { generic-ip-address: $IP1 } }
  p2: { flags: { generic-ip-address: $IP3 } }
YAML
out=$("$M" up -f "$T/imgs/pull.yaml" --parallel 2 2>&1) || fail "up with a reference: $out"
assert_contains "$out" "setup: pulling $REG/test/multi:v1" "the pull is a step"
assert_eq "$(ls "$MACHINE_STORAGE_PATH/cache/images" | grep -c '\.tar$')" "1" "one pull for both hosts"
for h in p1 p2; do
    (
        eval "$("$M" env $h)"
        assert_eq "$(/usr/local/bin/docker run --rm "$REG/test/multi:v1" echo pulled-here)" "pulled-here" "$h runs the image"
    ) || fail "the pulled image on $h"
done
"$M" up -f "$T/imgs/pull.yaml" --destroy >/dev/null 2>&1 || fail "destroy"

step "export, rm, import: the machine is reachable again"
lab ex "e:$IP2:true"
"$M" up -f "$T/ex.yaml" >/dev/null 2>&1 || fail "up of e"
"$M" export e >"$T/e.tar" || fail "export"
tar tf "$T/e.tar" | grep -qx id_ssh || fail "the key exported: $(tar tf "$T/e.tar")"
! tar tf "$T/e.tar" | grep -q credentials || fail "credentials exported"
"$M" rm -f e >/dev/null
"$M" import "$T/e.tar" | grep -q "Imported e" || fail "import"
assert_eq "$("$M" ssh e cat /etc/hostname)" "$(testhost_exec lm2 cat /etc/hostname)" "ssh to the imported machine"
"$M" import "$T/e.tar" >/dev/null 2>&1 && fail "an existing name imported again"
"$M" import --name e2 "$T/e.tar" >/dev/null || fail "import --name"
assert_eq "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Driver"]["SSHKeyPath"])' \
    "$MACHINE_STORAGE_PATH/machines/e2/config.json")" "$MACHINE_STORAGE_PATH/machines/e2/id_ssh" "key path moved"
assert_eq "$("$M" ssh e2 echo ok)" "ok" "ssh to the renamed machine"

step "archives with escaping entries are refused, nothing is left"
before=$(ls -A "$MACHINE_STORAGE_PATH/machines" | sort | tr '\n' ' ')
/usr/bin/python3 - "$T" <<'PY'
import io, sys, tarfile
t = sys.argv[1]
def mk(name, entries):
    with tarfile.open(f"{t}/{name}.tar", "w") as tf:
        for n, kind in entries:
            ti = tarfile.TarInfo(n)
            if kind == "file":
                data = b"{}"
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/shadow"; tf.addfile(ti)
            elif kind == "dev":
                ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3; tf.addfile(ti)
mk("dotdot", [("config.json", "file"), ("../../escaped", "file")])
mk("abs", [("config.json", "file"), ("/tmp/escaped-abs", "file")])
mk("sym", [("config.json", "file"), ("id_ssh", "sym")])
mk("dev", [("config.json", "file"), ("known_hosts", "dev")])
mk("sub", [("config.json", "file"), ("x/known_hosts", "file")])
PY
for b in dotdot abs sym dev sub; do
    out=$("$M" import --name bad "$T/$b.tar" 2>&1) && fail "$b.tar imported: $out"
    assert_contains "$out" "archive entry" "$b.tar refused naming the entry"
done
assert_eq "$(ls -A "$MACHINE_STORAGE_PATH/machines" | sort | tr '\n' ' ')" "$before" "nothing left in the store"
[ ! -e "$MACHINE_STORAGE_PATH/escaped" ] && [ ! -e /tmp/escaped-abs ] || fail "an entry escaped"
pass
