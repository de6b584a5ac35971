#!/usr/bin/env bash
# machine up / down from a lab file against real hosts (OpenSSH servers in network namespaces
# this test creates, through the generic driver): dependency order, setup files and commands,
# labels for ls and inventory, a second `up` that changes nothing, a changed setup that
# re-provisions, a failing host reported while the others come up, and `up --destroy`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/testhost.sh"

M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
T=$(mktemp -d /tmp/machine-lab-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "rm -rf '$T'"
step() { printf '\n--- %s\n' "$*" >&2; }

ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
testhost_up h1
testhost_up h2
IP1=$(testhost_ip h1)
IP2=$(testhost_ip h2)
mkdir -p "$T/lab/site"
echo "hello from the lab" >"$T/lab/site/index.html"

write_lab() { # RUN_COMMAND_OF_WEB
    cat >"$T/lab/lab.yaml" <<YAML
name: class
defaults:
  driver: generic
  flags: { generic-ssh-key: $T/id }
  labels: { course: c1 }
hosts:
  web:
    depends_on: db
    flags: { generic-ip-address: $IP1 }
    setup:
      files: [ { src: site, dest: /srv/site } ]
      run: [ "$1" ]
  db:
    flags: { generic-ip-address: $IP2 }
    setup:
      run: [ "echo db-ready > /srv-db-marker" ]
YAML
}

step "bad lab files fail before anything is touched"
write_lab "true"
sed 's/driver: generic/driver: nosuch/' "$T/lab/lab.yaml" >"$T/lab/bad.yaml"
out=$("$M" up -f "$T/lab/bad.yaml" 2>&1) && fail "a lab with an unknown driver came up"
assert_contains "$out" "unknown driver 'nosuch'" "unknown driver named"
sed 's/generic-ip-address: /generic-ip-adress: /' "$T/lab/lab.yaml" >"$T/lab/bad.yaml"
out=$("$M" up -f "$T/lab/bad.yaml" 2>&1) && fail "a lab with a misspelt flag came up"
assert_contains "$out" "'generic-ip-adress' is not a flag of driver 'generic'" "unknown flag named"
assert_eq "$("$M" ls -q)" "" "nothing was created by a bad lab file"

step "up: both hosts, db first (web depends on it), setup done"
write_lab "cat /srv/site/index.html > /srv-web-marker && cat /srv-db-marker >> /srv-web-marker || true"
out=$("$M" up -f "$T/lab/lab.yaml" --parallel 2 2>&1) || fail "machine up: $out"
echo "$out" | tail -5 >&2
assert_contains "$out" "web                  create" "web planned as create"
db_done=$(grep -n "db  *done" <<<"$out" | head -1 | cut -d: -f1)
web_start=$(grep -n "web  *create" <<<"$out" | head -1 | cut -d: -f1)
[ -n "$db_done" ] && [ -n "$web_start" ] && [ "$db_done" -lt "$web_start" ] ||
    fail "web started before db was done: $out"
assert_eq "$(testhost_exec h1 cat /srv/site/index.html)" "hello from the lab" "setup.files copied a directory"
assert_eq "$(testhost_exec h2 cat /srv-db-marker)" "db-ready" "setup.run ran on db"
assert_eq "$("$M" ls -q --filter label=lab=class | tr '\n' ' ')" "db web " "ls --filter label=lab=NAME"
assert_eq "$("$M" ls -q --filter label=course=c1 | wc -l)" "2" "lab labels on the machines"
assert_eq "$("$M" inventory --lab class --format json | /usr/bin/python3 -c \
    'import json,sys; print(" ".join(sorted(h["Name"]+":"+",".join(h["Groups"]) for h in json.load(sys.stdin))))')" \
    "db:class,db web:class,web" "inventory groups from the lab"
created=$(stat -c %Y "$MACHINE_STORAGE_PATH/machines/web/server.pem")

step "up again: nothing changes"
out=$("$M" up -f "$T/lab/lab.yaml" 2>&1) || fail "second machine up: $out"
assert_eq "$(grep -c ' keep ' <<<"$out")" "2" "both hosts kept"
assert_eq "$(stat -c %Y "$MACHINE_STORAGE_PATH/machines/web/server.pem")" "$created" "web not re-provisioned"

step "a changed setup re-provisions that host only"
write_lab "echo second > /srv-web-marker"
out=$("$M" up -f "$T/lab/lab.yaml" 2>&1) || fail "machine up after a change: $out"
assert_contains "$out" "web                  reprovision" "web re-provisioned"
assert_contains "$out" "db                   keep" "db kept"
assert_eq "$(testhost_exec h1 cat /srv-web-marker)" "second" "the new setup ran"

step "a failing host is reported; the others are not held back"
write_lab "exit 7"
sed -i 's/    depends_on: db//' "$T/lab/lab.yaml"
out=$("$M" up -f "$T/lab/lab.yaml" 2>&1) && fail "a failing setup did not fail machine up: $out"
assert_contains "$out" "1 of 2 hosts of lab 'class' failed" "the failure counted"
grep -E "^web +reprovision +failed .*setup.run 'exit 7'" <<<"$out" >/dev/null ||
    fail "the summary names the failing command: $out"
grep -E "^db +keep +ok" <<<"$out" >/dev/null || fail "db still fine: $out"

step "down stops, up --destroy removes the lab's machines and nothing else"
"$M" create -d none --url tcp://192.0.2.1:2376 other >/dev/null || fail "create of a machine outside the lab"
out=$("$M" up -f "$T/lab/lab.yaml" --destroy 2>&1) || fail "up --destroy: $out"
assert_eq "$("$M" ls -q)" "other" "only the lab's machines removed"
[ ! -e "$MACHINE_STORAGE_PATH/machines/web" ] || fail "web's store entry left"
pass
