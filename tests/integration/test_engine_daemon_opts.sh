#!/usr/bin/env bash
# Issue 18: dockerd's daemon options the engine honours, with the real docker CLI: --mtu (the
# default bridge's containers; user networks keep 1500, as with dockerd), --dns/--dns-search/
# --dns-opt (containers without their own), --max-concurrent-downloads; and an option the engine
# does not take stops it at start with dockerd-style wording. Runs in its own network namespace.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "skip: needs root (namespaces, bridges)"
    exit 77
fi
if [ -z "${MACHINE_NETTEST_INNER:-}" ]; then
    exec env MACHINE_NETTEST_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-daemon-opts-XXXXXX)
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 20 "$T"/e/engine.log >&2 2>/dev/null || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/exec" 2>/dev/null || true
    registry_cleanup 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
ip link set lo up

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

set +e
out=$("$ENGINE" --log-driver=syslog --data-root "$T/x" -H "unix://$T/x.sock" --pidfile "$T/x.pid" 2>&1)
rc=$?
set -e
assert_eq "$rc" 2 "an option the engine does not take stops it"
assert_contains "$out" "--log-driver=syslog is not supported by machine-engine" "… saying which"

ENGINE_ARGS=(--exec-root "$T/exec" --mtu 1400 --dns 10.99.7.53 --dns-search corp.test
    --dns-opt ndots:3 --max-concurrent-downloads 6 --insecure-registry "$REGISTRY_ADDR")
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock
"$DOCKER" pull -q "$IMG" >/dev/null
assert_eq "$("$DOCKER" run --rm "$IMG" cat /sys/class/net/eth0/mtu)" 1400 "--mtu reaches the default bridge's containers"
"$DOCKER" network create optsnet >/dev/null
assert_eq "$("$DOCKER" run --rm --network optsnet "$IMG" cat /sys/class/net/eth0/mtu)" 1500 "user networks keep 1500 (dockerd)"
"$DOCKER" network rm optsnet >/dev/null
resolv=$("$DOCKER" run --rm "$IMG" cat /etc/resolv.conf)
assert_contains "$resolv" "nameserver 10.99.7.53" "--dns is the containers' default"
assert_contains "$resolv" "search corp.test" "--dns-search too"
assert_contains "$resolv" "options ndots:3" "--dns-opt too"
own=$("$DOCKER" run --rm --dns 10.99.7.54 --dns-search own.test "$IMG" cat /etc/resolv.conf)
assert_contains "$own" "nameserver 10.99.7.54" "a container's own --dns wins"
assert_contains "$own" "search own.test" "… and its own --dns-search"
case "$own" in *10.99.7.53*) fail "the engine's --dns leaked into a container with its own: $own" ;; esac
assert__ok "engine daemon options"
