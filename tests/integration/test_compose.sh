#!/usr/bin/env bash
# Debian's docker-compose 1.29 (the python docker SDK, API 1.41) against machine-engine:
# up -d / ps / logs / down of a web + client project where the client calls the web service by
# its service name on the project network; after down nothing of the project is left (veths,
# bridge, NAT rule, namespace mounts). Like test_engine_network.sh, everything runs in a fresh
# network and mount namespace made here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "skip: needs root (namespaces, bridges)"
    exit 77
fi
if ! command -v docker-compose >/dev/null; then
    echo "skip: docker-compose is not installed (scripts/install-deps installs it)"
    exit 77
fi
if [ -z "${MACHINE_COMPOSE_INNER:-}" ]; then
    exec env MACHINE_COMPOSE_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

ENGINE=${MACHINE_BUILD:?}/engine/machine-engine
[ -x "$ENGINE" ] || fail "no engine binary at $ENGINE"
T=$(mktemp -d /tmp/machine-engine-compose-XXXXXX)
engine_pid=
cleanup() {
    cp "$T/engine.log" /tmp/machine-compose-engine.log 2>/dev/null || true
    [ -n "$engine_pid" ] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
    registry_cleanup 2>/dev/null || true
    engine_leftovers_clean "$T/root" "$T/exec"
    rm -rf "$T"
}
trap cleanup EXIT

ip link set lo up
registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

"$ENGINE" -H "unix://$T/engine.sock" --data-root "$T/root" --exec-root "$T/exec" \
    --pidfile "$T/engine.pid" --log-level debug >>"$T/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 100); do
    curl -sf --unix-socket "$T/engine.sock" http://x/_ping >/dev/null 2>&1 && break
    sleep 0.1
done
export DOCKER_HOST=unix://$T/engine.sock
/usr/local/bin/docker pull -q "$IMG" >/dev/null || fail "pull"

mkdir -p "$T/proj"
cat >"$T/proj/docker-compose.yml" <<YAML
version: "3"
services:
  web:
    image: $IMG
    command: ["sh", "-c", "mkdir -p /w && echo web-page > /w/index.html && exec httpd -f -p 80 -h /w"]
  client:
    image: $IMG
    depends_on: [web]
    command:
      - sh
      - -c
      - |
        for i in \$\$(seq 40); do
          out=\$\$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 web 80 | tail -n 1)
          if [ -n "\$\$out" ]; then echo "client got: \$\$out"; break; fi
          sleep 0.5
        done
        exec sleep 300
YAML
dc() { (cd "$T/proj" && timeout 120 docker-compose -p demo "$@"); }

dc up -d >"$T/up.log" 2>&1 || { cat "$T/up.log"; tail -30 "$T/engine.log"; fail "compose up -d"; }
assert__ok "docker-compose up -d"
ps_out=$(dc ps)
assert_contains "$ps_out" "demo_web_1" "compose ps lists web"
assert_contains "$ps_out" "demo_client_1" "compose ps lists client"
assert_contains "$ps_out" "Up" "compose ps shows them up"
for _ in $(seq 50); do dc logs client 2>/dev/null | grep -q "client got" && break; sleep 0.2; done
assert_contains "$(dc logs client)" "client got: web-page" "the client reached web by its service name"
sub=$(/usr/local/bin/docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' demo_default)
br=$(/usr/local/bin/docker network inspect -f '{{.Id}}' demo_default | cut -c1-11)

dc down >"$T/down.log" 2>&1 || { cat "$T/down.log"; fail "compose down"; }
assert__ok "docker-compose down"
assert_eq "$(/usr/local/bin/docker ps -aq | wc -l)" "0" "no container left"
assert_exit 1 /usr/local/bin/docker network inspect demo_default
[[ "$(ip -o link show)" == *veth* ]] && fail "veth left after down"
[[ "$(ip -o link show)" == *"mbr-$br"* ]] && fail "project bridge left after down"
[[ "$(nft list table ip machine-engine)" == *"$sub"* ]] && fail "NAT rule of $sub left after down"
grep -q "$T/exec/netns" /proc/self/mountinfo && fail "netns mount left after down"
assert__ok "nothing of the project is left: no veth, bridge, rule or mount"
pass
