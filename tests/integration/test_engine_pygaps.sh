#!/usr/bin/env bash
# Containers, execs and volumes where docker-py 5.0.3's tests found the engine unlike dockerd
# (issue 19), with the docker CLI 28, each checked inside the container or in the API answer:
# an exec's ulimits, oom score, groups and environment; Env entries without '='; the words of
# removing a running container; LogConfig max-file alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (namespaces, cgroups, mounts)"; exit 77; }
# The engine builds a bridge and NAT rules: run in a network and mount namespace of our own.
if [ -z "${MACHINE_PYGAPS_INNER:-}" ]; then
    exec env MACHINE_PYGAPS_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
ip link set lo up
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-pygaps-XXXXXX)
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
# curl on the engine's socket: api METHOD PATH [curl args...]; prints the body, then the status.
api() {
    local m=$1 p=$2
    shift 2
    curl -s --max-time 60 --unix-socket "$T/e/engine.sock" -X "$m" -w '\n%{http_code}' "$@" "http://x$p"
}
d pull -q "$IMG" >/dev/null

step "an exec gets the container's ulimits, oom score adjustment and GroupAdd"
id=$(d run -d --name lim --ulimit nofile=123:456 --oom-score-adj 321 --group-add 1234 "$IMG" sleep 300)
assert_eq "$(d exec lim sh -c 'echo $(ulimit -n) $(ulimit -Hn)')" "123 456" "exec: ulimit -n / -Hn of --ulimit nofile=123:456"
assert_eq "$(d exec lim cat /proc/self/oom_score_adj)" "321" "exec: oom_score_adj of --oom-score-adj"
assert_contains " $(d exec lim id -G) " " 1234 " "exec: the --group-add group"
assert_contains " $(d exec -u nobody lim id -G) " " 1234 " "exec -u nobody: GroupAdd too (dockerd's getUser)"

step "an exec's environment"
d run -d --name envc -e A=1 -e B=2 "$IMG" sleep 300 >/dev/null
out=$(env -u B "$DOCKER" exec -e C=3 -e B envc env)
assert_contains "$out" "HOSTNAME=$(d inspect -f '{{.Config.Hostname}}' envc)" "exec: HOSTNAME, as dockerd"
assert_contains "$out" "HOME=/root" "exec: HOME from the user's passwd entry"
assert_contains "$out" "A=1" "exec: the container's Env"
assert_contains "$out" "C=3" "exec: its own Env"
case "$out" in *B=*) fail "exec -e B (no '=') left B set: $out" ;; esac
assert__ok "exec: a bare B in the exec's Env unsets the container's B"

step "Env entries without '='"
id=$(env -u HOSTNAME -u FOO "$DOCKER" create -e FOO -e HOSTNAME -e BLANK= "$IMG" env)
assert_eq "$(d inspect -f '{{json .Config.Env}}' "$id" | jq -c '[.[] | select(test("^(FOO|HOSTNAME|BLANK)"))] | sort')" \
    '["BLANK=","FOO","HOSTNAME"]' "Config.Env keeps FOO and HOSTNAME without '=' (dockerd)"
d start -a "$id" >"$T/env.out"
grep -q '^BLANK=$' "$T/env.out" || fail "BLANK= is set and empty: $(cat "$T/env.out")"
! grep -q '^FOO' "$T/env.out" || fail "FOO without '=' is unset: $(cat "$T/env.out")"
! grep -q '^HOSTNAME' "$T/env.out" || fail "a bare HOSTNAME unsets the engine's default: $(cat "$T/env.out")"
assert__ok "the process: BLANK empty, FOO and HOSTNAME unset"

step "removing a running container"
out=$(d rm lim 2>&1) && fail "rm of a running container succeeded"
assert_contains "$out" "You cannot remove a running container $(d inspect -f '{{.Id}}' lim). Stop the container before attempting removal or force remove" \
    "rm: dockerd 20.10's words (docker-py's tests)"
d pause lim >/dev/null
out=$(d rm lim 2>&1) && fail "rm of a paused container succeeded"
assert_contains "$out" "You cannot remove a paused container" "rm of a paused container"
d rm -f lim >/dev/null

step "LogConfig: max-file without max-size"
id=$(d run -d --log-opt max-file=100 "$IMG" true)
assert_eq "$(d inspect -f '{{json .HostConfig.LogConfig}}' "$id")" '{"Type":"json-file","Config":{"max-file":"100"}}' \
    "max-file alone is accepted and reported, as dockerd"

step "HostConfig.Runtime"
id=$(d create --runtime runc "$IMG" true)
assert_eq "$(d inspect -f '{{.HostConfig.Runtime}}' "$id")" "runc" "--runtime runc is the engine's own runtime"
id=$(d create "$IMG" true)
assert_eq "$(d inspect -f '{{.HostConfig.Runtime}}' "$id")" "runc" "inspect reports runc by default, as dockerd"
out=$(d create --runtime kata "$IMG" true 2>&1) && fail "--runtime kata was accepted"
assert_contains "$out" "unknown or invalid runtime name: kata" "another runtime: dockerd's words"

step "HostConfig.VolumeDriver"
id=$(d create --volume-driver foo "$IMG" true)
assert_eq "$(d inspect -f '{{.HostConfig.VolumeDriver}}' "$id")" "foo" "a driver with no volume to make is kept (docker-py's test_create_with_volume_driver)"
out=$(d create --volume-driver foo -v /data "$IMG" true 2>&1) && fail "a volume with driver foo was made"
assert_contains "$out" 'error looking up volume plugin foo: plugin "foo" not found' "a volume to make with driver foo: dockerd's words"
id=$(d create --volume-driver local -v /data "$IMG" true)
assert_eq "$(d inspect -f '{{range .Mounts}}{{.Driver}}{{end}}' "$id")" "local" "--volume-driver local makes a local volume"

step "docker cp into a volume of a container that never ran"
echo "copied before the first start" >"$T/f.txt"
id=$(d create -v /vol1 "$IMG" cat /vol1/f.txt)
d cp "$T/f.txt" "$id:/vol1/" || fail "docker cp into /vol1 of a created container"
assert_eq "$(d start -a "$id")" "copied before the first start" "the file is in the volume at the start"
mkdir -p "$T/bindsrc"
id=$(d create -v "$T/bindsrc:/mnt/deep/b" "$IMG" true)
d cp "$T/f.txt" "$id:/mnt/deep/b/" || fail "docker cp into a bind of a created container"
assert_eq "$(cat "$T/bindsrc/f.txt")" "copied before the first start" "docker cp lands in the bind's source"

pass
