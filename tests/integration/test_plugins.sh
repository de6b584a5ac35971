#!/usr/bin/env bash
# Issue 17, external driver plugins: the example plugin examples/machine-driver-nshost (python3;
# its hosts are network-namespace sshd hosts of this test's testhost run) end to end: create →
# ssh → env → docker run → stop → start → rm; `machine drivers`; `create -d nshost --help`; env
# vars and a secret flag; discovery order and built-in names; misbehaving plugins (exits
# mid-call, never answers, prints non-JSON, another protocol, an undeclared field) each give the
# documented error and leave nothing half-saved.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/images.sh"
source "$here/lib/testhost.sh" # last: its EXIT trap runs every cleanup (testhost_on_exit)

M=${MACHINE_BIN:?}
BUILD=${MACHINE_BUILD:?}
SRC=${MACHINE_SRC:?}
DOCKER=/usr/local/bin/docker
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces for the plugin's hosts)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: the example plugin needs python3"; exit 77; }
command -v busybox >/dev/null || { echo "SKIP: no busybox for the test image"; exit 77; }
export MACHINE_ENGINE_BUNDLE=$BUILD/machine-engine-bundle.tar.gz
[ -r "$MACHINE_ENGINE_BUNDLE" ] || fail "no engine bundle at $MACHINE_ENGINE_BUNDLE (make -C build engine-bundle)"
T=$(mktemp -d /tmp/machine-plugins-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "rm -rf '$T'"
# The plugin's hosts join this test's testhost run, so its clean-up removes them.
export TESTHOST_RUN_DIR TESTHOST_RUN_ID
mkdir -p "$T/bad"
for name in crashy hangy noisy oldproto fieldy generic; do
    install -m 0755 "$here/lib/badplugin.py" "$T/bad/machine-driver-$name"
done
export MACHINE_DRIVER_PATH=$T/bad:$SRC/examples
step() { printf '\n--- %s\n' "$*" >&2; }

step "machine drivers lists built-ins and plugins with versions and descriptions"
out=$("$M" drivers) || fail "machine drivers: $out"
echo "$out" | grep -E '^nshost +plugin +1\.0\.0 +network-namespace sshd hosts' >/dev/null ||
    fail "drivers lists nshost: $out"
echo "$out" | grep -E '^generic +built-in ' >/dev/null || fail "drivers lists generic: $out"
echo "$out" | grep -E '^oldproto +plugin +- +error: .*speaks protocol 2' >/dev/null ||
    fail "drivers shows why oldproto cannot be used: $out"
assert_eq "$(echo "$out" | grep -c '^generic ')" 1 "a plugin named generic is not listed"
mkdir -p "$MACHINE_STORAGE_PATH/drivers"
install -m 0755 "$here/lib/badplugin.py" "$MACHINE_STORAGE_PATH/drivers/machine-driver-storeplug"
assert_contains "$("$M" drivers)" "misbehaves (storeplug)" "plugins in the store's drivers/ are found"
assert_contains "$("$M" create --help)" "nshost       plugin machine-driver-nshost" "create --help lists plugins"

step "create -d nshost --help shows the plugin's flags; built-ins cannot be shadowed"
out=$("$M" create -d nshost --help) || fail "create -d nshost --help: $out"
assert_contains "$out" "--nshost-label" "the plugin's flags"
assert_contains "$out" "NSHOST_LABEL" "with their env vars"
assert_contains "$out" "--nshost-ssh-user" "all of them"
assert_contains "$out" "network-namespace sshd hosts" "and its description"
out=$("$M" create -d generic --help) || fail "create -d generic --help"
assert_contains "$out" "--generic-ip-address" "generic stays the built-in"

step "create -d nshost: env vars and flags apply, the secret stays out of config.json"
images_busybox_root "$T/bb"
export NSHOST_LABEL=from-the-env
out=$("$M" create -d nshost --nshost-token s3cr3t-t0ken p1 2>&1) || fail "create p1: $out"
unset NSHOST_LABEL
assert_contains "$out" "Starting netns host 'nhp1'" "the plugin's progress is shown"
assert_contains "$out" "Engine is up and running!" "provisioned through the plugin"
assert_eq "$("$M" inspect -f '{{.DriverName}} {{.Lifecycle.Status}}' p1)" "nshost created" "saved as created"
assert_eq "$("$M" ssh p1 -- cat /etc/nshost-label)" "from-the-env" "NSHOST_LABEL applied (ssh)"
assert_eq "$("$M" ssh p1 -- cat /etc/nshost-token-length)" "12" "the plugin got the secret (its length)"
cfg=$MACHINE_STORAGE_PATH/machines/p1/config.json
grep -q s3cr3t-t0ken "$cfg" && fail "the secret is in config.json"
grep -q s3cr3t-t0ken "$MACHINE_STORAGE_PATH/credentials/p1.json" ||
    fail "the secret is not in the store's credentials/p1.json"
assert__ok "the secret is in the store's credentials/p1.json only"
assert_contains "$(cat "$cfg")" '"HostName": "nhp1"' "the plugin's own field is saved"
IP=$("$M" ip p1)
assert_eq "$IP" "$(testhost_ip nhp1)" "ip is the host's"
assert_eq "$("$M" status p1)" "Running" "status"
echo "$("$M" ls)" | grep -E "^p1 .*nshost +Running +tcp://$IP:2376" >/dev/null || fail "ls row: $("$M" ls)"

step "env → docker run"
(
    eval "$("$M" env p1)"
    assert_eq "$DOCKER_HOST" "tcp://$IP:2376" "env sets DOCKER_HOST"
    tar -C "$T/bb" -c . | "$DOCKER" import - plug/bb:1 >/dev/null || fail "docker import"
    assert_eq "$("$DOCKER" run --rm plug/bb:1 sh -c 'echo from-$((6 * 7))')" "from-42" "docker run"
)

step "stop → start"
"$M" stop p1 >/dev/null || fail "stop"
assert_eq "$("$M" status p1)" "Stopped" "stopped"
testhost_exec nhp1 ip -o link show eth0 | grep -q '<[^>]*\bUP\b' && fail "the host's link is up"
"$M" start p1 >/dev/null || fail "start"
assert_eq "$("$M" status p1)" "Running" "running again"
assert_eq "$("$M" ssh p1 -- echo back)" "back" "ssh after start"
(
    eval "$("$M" env p1)"
    assert_eq "$("$DOCKER" run --rm plug/bb:1 echo again)" "again" "docker run after start"
)

step "rm removes the host"
"$M" rm -y p1 >/dev/null || fail "rm"
[ -d "$TESTHOST_RUN_DIR/hosts/nhp1" ] && fail "the host is still there"
[ -e "$MACHINE_STORAGE_PATH/machines/p1" ] && fail "the machine is still there"
assert__ok "host and machine gone"

step "a lab file names a plugin driver: machine up and up --destroy"
cat >"$T/lab.yaml" <<'YAML'
name: plug
hosts:
  lp1:
    driver: nshost
    flags: { nshost-label: from-the-lab }
YAML
out=$("$M" up -f "$T/lab.yaml" 2>&1) || fail "up with a plugin driver: $out"
assert_eq "$("$M" ssh lp1 -- cat /etc/nshost-label)" "from-the-lab" "the lab's flag reached the plugin"
out=$("$M" up -f "$T/lab.yaml" --destroy 2>&1) || fail "up --destroy: $out"
[ -e "$MACHINE_STORAGE_PATH/machines/lp1" ] && fail "the lab's machine is still there"
assert__ok "the lab's plugin machine removed"

# A misbehaving plugin's create: exit 1, the documented error, the machine recorded as failed
# without any field from the plugin, and rm cleans it.
bad_create() { # NAME EXPECTED-ERROR
    local name=$1 want=$2 out rc=0
    out=$("$M" create -d "$name" "m-$name" 2>&1) || rc=$?
    assert_eq "$rc" 1 "$name: create fails"
    assert_contains "$out" "$want" "$name: the documented error"
    local cfg=$MACHINE_STORAGE_PATH/machines/m-$name/config.json
    assert_eq "$("$M" inspect -f '{{.Lifecycle.Status}}' "m-$name")" "error" "$name: recorded as failed"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["Driver"]; sys.exit("IPAddress" in d or "Colour" in d)' \
        "$cfg" || fail "$name: a field of the failed call was saved: $(cat "$cfg")"
    assert_contains "$("$M" ls)" "$want" "$name: ls shows why"
    "$M" rm -y "m-$name" >/dev/null || fail "$name: rm"
    [ -e "$MACHINE_STORAGE_PATH/machines/m-$name" ] && fail "$name: rm left the machine"
    assert__ok "$name: nothing half-saved, rm cleans it"
}

step "misbehaving plugins"
bad_create crashy "driver plugin 'crashy' exited with status 3 before answering"
MACHINE_OP_TIMEOUT_MS=4000 bad_create hangy "driver plugin 'hangy' did not answer within"
bad_create noisy "driver plugin 'noisy' wrote a line that is not JSON: 'Hello! Creating"
bad_create fieldy "driver plugin 'fieldy' sent an unknown field 'Colour'"
rc=0; out=$("$M" create -d oldproto m-old 2>&1) || rc=$?
assert_eq "$rc" 1 "oldproto: create fails"
assert_contains "$out" "driver plugin 'oldproto' speaks protocol 2, machine speaks protocol 1" \
    "oldproto: the documented error"
[ -e "$MACHINE_STORAGE_PATH/machines/m-old" ] && fail "oldproto: a machine was saved"
assert__ok "oldproto: nothing saved"
rc=0; out=$("$M" create -d nosuch m-none 2>&1) || rc=$?
assert_eq "$rc" 1 "an unknown driver fails"
assert_contains "$out" "unknown driver 'nosuch'" "an unknown driver is named"
out=$("$M" --debug create -d crashy m-dbg 2>&1) || true
assert_contains "$out" "about to crash" "the plugin's progress before the crash is not lost"
"$M" rm -y m-dbg >/dev/null || fail "rm m-dbg"

pass
