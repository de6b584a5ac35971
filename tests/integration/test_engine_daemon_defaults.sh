#!/usr/bin/env bash
# Issue 18: dockerd's container defaults the engine takes as daemon options, with the real
# docker CLI: --default-ulimit (a container gets each limit it does not set itself: `ulimit -n`
# inside shows it, its own --ulimit wins for its resource) and --log-opt max-size/max-file
# (json-file rotation of a container without its own options; its own win; inspect shows the
# merged LogConfig as dockerd's does), --log-driver none (containers without their own driver
# keep no log); a bad value of any stops the engine, named.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "skip: needs root (containers)"; exit 77; }
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-defaults-XXXXXX)
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 20 "$T"/e/engine.log >&2 2>/dev/null || true
    [ -z "${engine_pid:-}" ] || "$DOCKER" rm -f $("$DOCKER" ps -aq) >/dev/null 2>&1 || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/exec" 2>/dev/null || true
    registry_cleanup 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }
d() { "$DOCKER" "$@"; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

step "bad values stop the engine, named"
for bad in "--default-ulimit=bogus=1|invalid ulimit type: bogus" \
    "--default-ulimit=nofile=300:200|soft limit must be less than or equal to hard limit" \
    "--log-opt=nosuch=1|unknown log opt 'nosuch'" \
    "--log-driver=none --log-opt=max-size=1k|max-size"; do
    rc=0
    out=$(timeout 30 "$ENGINE" ${bad%%|*} --data-root "$T/x" -H "unix://$T/x.sock" \
        --pidfile "$T/x.pid" --exec-root "$T/xexec" -b none 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "the engine started with ${bad%%|*}"
    assert_contains "$out" "${bad#*|}" "${bad%%|*} refused"
done

ENGINE_ARGS=(-b none --exec-root "$T/exec" --default-ulimit nofile=200:300
    --default-ulimit nproc=90 --log-opt max-file=2 --log-opt max-size=1k)
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock
d pull -q "$IMG" >/dev/null

step "--default-ulimit"
assert_eq "$(d run --rm "$IMG" sh -c 'ulimit -n; ulimit -Hn; ulimit -u' | tr '\n' ' ')" \
    "200 300 90 " "a container without --ulimit gets the defaults"
assert_eq "$(d run --rm --ulimit nofile=100:100 "$IMG" sh -c 'ulimit -n; ulimit -Hn; ulimit -u' | tr '\n' ' ')" \
    "100 100 90 " "its own --ulimit wins for its resource, the other default stays"
run=$(d run -d --ulimit nproc=70:80 "$IMG" sleep 600)
assert_eq "$(d exec "$run" sh -c 'ulimit -n; ulimit -Hn; ulimit -u' | tr '\n' ' ')" \
    "200 300 70 " "docker exec gets the container's limits, defaults included"
d rm -f "$run" >/dev/null

step "--log-opt max-size/max-file"
id=$(d run -d "$IMG" sh -c 'i=0; while [ $i -lt 200 ]; do echo "line-$i-padding-padding-padding"; i=$((i+1)); done')
d wait "$id" >/dev/null
dir=$T/e/root/containers/$id
[ -f "$dir/$id-json.log.1" ] || fail "no rotated log file: $(ls "$dir")"
[ ! -e "$dir/$id-json.log.2" ] || fail "max-file=2 kept a third file"
[ "$(stat -c %s "$dir/$id-json.log")" -le 1024 ] || fail "the log is larger than max-size"
assert_eq "$(d logs "$id" | tail -n 1)" "line-199-padding-padding-padding" "logs ends with the last line"
assert_eq "$(d inspect -f '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}} {{index .HostConfig.LogConfig.Config "max-file"}}' "$id")" \
    "json-file 1k 2" "inspect shows the merged LogConfig"
own=$(d run -d --log-opt max-size=1m "$IMG" sh -c 'i=0; while [ $i -lt 200 ]; do echo "line-$i-padding-padding-padding"; i=$((i+1)); done')
d wait "$own" >/dev/null
[ ! -e "$T/e/root/containers/$own/$own-json.log.1" ] || fail "a container's own max-size did not win"
assert_eq "$(d inspect -f '{{index .HostConfig.LogConfig.Config "max-size"}}' "$own")" 1m "its own max-size is kept"
none=$(d create --log-driver none "$IMG" true)
assert_eq "$(d inspect -f '{{.HostConfig.LogConfig.Type}} {{len .HostConfig.LogConfig.Config}}' "$none")" \
    "none 0" "a container with another log driver gets no json-file options"
engine_stop

step "--log-driver none (docker-machine's engine-options.bats sets it)"
ENGINE_ARGS=(-b none --exec-root "$T/exec" --log-driver none)
engine_start "$T/e"
d run --name nolog "$IMG" echo this should not be logged >/dev/null
assert_eq "$(d inspect -f '{{.HostConfig.LogConfig.Type}}' nolog)" none "a container without a driver gets none"
out=$(d logs nolog 2>&1) && fail "docker logs of a none container succeeded: $out"
assert_contains "$out" "does not support reading" "… and keeps no log"
[ ! -e "$T/e/root/containers/$(d inspect -f '{{.Id}}' nolog)/$(d inspect -f '{{.Id}}' nolog)-json.log" ] ||
    fail "a json-file log was written"
assert_eq "$(d run --rm --log-driver json-file "$IMG" echo own)" own "its own json-file driver is kept"
pass
