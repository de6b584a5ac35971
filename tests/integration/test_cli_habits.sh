#!/usr/bin/env bash
# What docker-machine users type, against the `none` driver and hand-made store entries (no
# daemon, no network beyond a refused loopback port): global options with separate values,
# machine with no arguments, rm -f / prompts, the none driver's URLs, default machine, ls
# --format table / --filter swarm, --swarm refused, inspect templates, env -u NAME, url/config
# of an unreachable generic host.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"

M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
T=$(mktemp -d /tmp/machine-cli-habits-XXXXXX)
trap 'rm -rf "$T"' EXIT
unset MACHINE_STORAGE_PATH DOCKER_HOST
export HOME=$T/home
mkdir -p "$HOME"

step() { printf '\n--- %s\n' "$*" >&2; }

step "global options take their value as the next argument"
"$M" -s "$T/s1" create -d none --url tcp://127.0.0.1:1 a1 >/dev/null || fail "-s PATH create"
[ -f "$T/s1/machines/a1/config.json" ] || fail "-s PATH: the machine is not in that store"
assert_eq "$("$M" -s "$T/s1" ls -q)" "a1" "-s PATH ls"
assert_eq "$("$M" --storage-path "$T/s1" ls -q)" "a1" "--storage-path PATH ls"
assert_eq "$("$M" --storage-path="$T/s1" ls -q)" "a1" "--storage-path=PATH ls"
assert_eq "$("$M" -s="$T/s1" ls -q)" "a1" "-s=PATH ls"
assert_eq "$("$M" -D -s "$T/s1" ls -q --filter name=a1)" "a1" "-D then -s PATH, command options after"
[ ! -e "$HOME/.machine" ] || fail "the default store was used instead of -s"
export MACHINE_STORAGE_PATH=$T/store

step "machine with no arguments"
out=$("$M") || fail "machine with no arguments exits $?"
assert_contains "$out" "Usage:" "machine with no arguments prints the usage"

step "the none driver stores any URL"
"$M" create -d none --url none n1 >/dev/null || fail "--url none"
"$M" create -d none --url unix:///var/run/docker.sock n2 >/dev/null || fail "--url unix://"
assert_eq "$("$M" url n1)" "none" "url of --url none"
assert_eq "$("$M" url n2)" "unix:///var/run/docker.sock" "url of --url unix://"
assert_exit 1 "$M" create -d none n3
"$M" create -d none --url "" n3 >/dev/null 2>&1 && fail "an empty --url was accepted"
assert_contains "$("$M" create -d none --url none 'x_y' 2>&1 || true)" \
    "Error creating machine: Invalid hostname specified" "invalid name in docker-machine's words"
out=$("$M" create -d none --url none a b 2>&1) && fail "extra argument accepted"
assert_eq "$out" "Invalid command line. Found extra arguments [b]" "extra argument"

out=$("$M" create -d none --url none n1 2>&1) && fail "a second create of n1 succeeded"
assert_eq "$out" 'Docker machine "n1" already exists' "create of an existing name: at once, docker-machine's words"
assert_contains "$("$M" inspect nosuch 2>&1 || true)" 'Docker machine "nosuch" does not exist' \
    "a missing machine in docker-machine's words"

step "rm: -f implies -y, a declined prompt is no error"
out=$(echo n | "$M" rm n1) || fail "declined rm exits $?"
[ -f "$MACHINE_STORAGE_PATH/machines/n1/config.json" ] || fail "declined rm removed n1"
out=$(echo n | "$M" rm -f n1) || fail "rm -f exits $?"
assert_contains "$out" "Successfully removed n1" "rm -f does not prompt"
[ ! -e "$MACHINE_STORAGE_PATH/machines/n1" ] || fail "rm -f left n1"
out=$(echo y | "$M" rm n2) || fail "confirmed rm exits $?"
[ ! -e "$MACHINE_STORAGE_PATH/machines/n2" ] || fail "confirmed rm left n2"
out=$("$M" rm -y nosuch 2>&1) && fail "rm of a missing machine succeeded"
assert_contains "$out" 'Error removing host "nosuch": Host does not exist: "nosuch"' "rm of a missing machine"
"$M" rm -f nosuch >/dev/null 2>&1 || fail "rm -f of a missing machine fails"

step "a command with no name uses 'default'"
out=$("$M" inspect 2>&1) && fail "inspect with no default machine succeeded"
assert_contains "$out" 'No machine name(s) specified and no "default" machine exists.' "no default machine"
"$M" create -d none --url tcp://127.0.0.1:1 default >/dev/null
assert_eq "$("$M" inspect -f '{{.Name}}')" "default" "inspect uses 'default'"
assert_eq "$("$M" url)" "tcp://127.0.0.1:1" "url uses 'default'"

step "ls --format table, --filter swarm, --swarm refused"
"$M" create -d none --url tcp://127.0.0.1:1 --engine-label app=1 l1 >/dev/null
out=$("$M" ls --format 'table {{.Name}}\t{{.DriverName}}' --filter name=l1)
assert_eq "$(sed -n 1p <<<"$out")" "NAME   DRIVER" "table header"
assert_eq "$(sed -n 2p <<<"$out")" "l1     none" "table row aligned under the header"
assert_eq "$("$M" ls --format '{{.Name}}' --filter label=app=1)" "l1" "format without table: no header"
assert_eq "$("$M" ls -q --filter swarm=l1)" "" "swarm filter matches nothing"
assert_eq "$("$M" ls | head -1 | tr -s ' ')" "NAME ACTIVE DRIVER STATE URL SWARM DOCKER ERRORS" \
    "default columns are docker-machine's"
out=$("$M" create -d none --url tcp://127.0.0.1:1 --swarm --swarm-master s1 2>&1) && fail "--swarm accepted"
assert_contains "$out" "'--swarm' is not supported" "--swarm refused by name"
[ ! -e "$MACHINE_STORAGE_PATH/machines/s1" ] || fail "--swarm create left a machine"

step "inspect templates"
assert_eq "$("$M" inspect -f '{{.Driver.MachineName}}' l1)" "l1" "Driver.MachineName"
assert_eq "$("$M" inspect -f '{{.Driver.StorePath}}' l1)" "$MACHINE_STORAGE_PATH" "Driver.StorePath"
assert_eq "$("$M" inspect -f '{{.HostOptions.AuthOptions.CertDir}}' l1)" "$MACHINE_STORAGE_PATH/certs" \
    "AuthOptions.CertDir"
assert_eq "$("$M" inspect -f '{{.HostOptions.AuthOptions.StorePath}}' l1)" \
    "$MACHINE_STORAGE_PATH/machines/l1" "AuthOptions.StorePath"
assert_eq "$("$M" inspect -f '{{prettyjson .Driver}}' l1 | jq -r .IPAddress)" "127.0.0.1" "prettyjson is JSON"
[ "$("$M" inspect -f '{{prettyjson .Driver}}' l1 | wc -l)" -gt 1 ] || fail "prettyjson is indented"
assert_eq "$("$M" inspect -f '{{json .}}' l1 | jq -r .Driver.URL)" "tcp://127.0.0.1:1" "json ."

step "env -u NAME is refused"
out=$("$M" env -u l1 2>&1) && fail "env -u NAME accepted"
assert_contains "$out" "Expected no machine name when the -u flag is present" "env -u NAME"
assert_contains "$("$M" env -u)" "unset DOCKER_HOST" "env -u"

step "url and config of a generic host that does not answer"
mkdir -m 700 "$MACHINE_STORAGE_PATH/machines/g1"
jq '.Name = "g1" | .DriverName = "generic" |
    .Driver = {IPAddress: "127.0.0.1", SSHPort: 1, SSHUser: "root", EnginePort: 2376}' \
    "$MACHINE_STORAGE_PATH/machines/l1/config.json" >"$MACHINE_STORAGE_PATH/machines/g1/config.json"
chmod 600 "$MACHINE_STORAGE_PATH/machines/g1/config.json"
out=$("$M" url g1 2>&1) && fail "url of an unreachable host succeeded: $out"
assert_contains "$out" "Host is not running" "url: Host is not running"
out=$("$M" config g1 2>&1) && fail "config of an unreachable host succeeded: $out"
assert_contains "$out" "Host is not running" "config: Host is not running"
out=$("$M" env g1 2>&1) && fail "env of an unreachable host succeeded: $out"
assert_contains "$out" "Host is not running" "env: Host is not running"
out=$("$M" version g1 2>&1) && fail "version of an unreachable host succeeded: $out"
assert_contains "$out" "Host is not running" "version NAME: Host is not running"

step "rm --lab removes the lab's machines and nothing else"
L=$T/labrm
mkdir -p "$L"
printf 'name: rmlab\nhosts:\n  n-{1..2}:\n    driver: none\n    flags: { url: "tcp://127.0.0.1:1" }\n' >"$L/lab.yaml"
"$M" -s "$L/store" up -f "$L/lab.yaml" >/dev/null || fail "up of a none lab"
"$M" -s "$L/store" create -d none --url none outside >/dev/null || fail "create outside"
out=$("$M" -s "$L/store" rm -y --lab rmlab) || fail "rm --lab: $out"
assert_contains "$out" "Successfully removed n-2" "rm --lab removes the lab's machines"
assert_eq "$("$M" -s "$L/store" ls -q)" "outside" "only the machine outside the lab is left"
out=$("$M" -s "$L/store" rm -y --lab rmlab 2>&1) && fail "rm --lab of an empty lab succeeded"
assert_contains "$out" "no machine belongs to lab 'rmlab'" "rm --lab of a lab with no machine"

pass
