#!/usr/bin/env bash
# machine-engine networking driven by the real docker CLI: the default bridge, published ports
# (from loopback and from "another machine"), user networks with names and aliases, outbound
# NAT, the embedded DNS server (names, aliases, forwarding to the host's nameserver), UDP
# ports, --network none/host/container:, cleanup, and reconciliation after kill -9.
#
# The engine creates bridges, veths and NAT rules, so the whole test (engine included) runs in
# a fresh network and mount namespace made here; "another machine" is a second namespace
# ("peer") joined to ours by a veth: 10.99.0.1 (ours) <-> 10.99.0.2 (peer). No traffic leaves
# these namespaces.
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

ENGINE=${MACHINE_BUILD:?}/engine/machine-engine
DOCKER=/usr/local/bin/docker
[ -x "$ENGINE" ] || fail "no engine binary at $ENGINE"
T=$(mktemp -d /tmp/machine-engine-net-XXXXXX)
engine_pid=
peer_pid=
dns_pid=
dns2_pid=
cleanup() {
    cp "$T/engine.log" /tmp/machine-nettest-engine.log 2>/dev/null || true
    [ -n "$engine_pid" ] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null
    [ -n "$dns2_pid" ] && kill "$dns2_pid" 2>/dev/null
    registry_cleanup 2>/dev/null || true
    engine_leftovers_clean "$T/root" "$T/exec"
    ip netns del peer 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

ip link set lo up
# "another machine": a namespace behind a veth
mkdir -p /run/netns
mount -t tmpfs tmpfs /run/netns
ip netns add peer
ip link add vpeer0 type veth peer name vpeer1
ip link set vpeer1 netns peer
ip addr add 10.99.0.1/24 dev vpeer0
ip link set vpeer0 up
ip netns exec peer ip addr add 10.99.0.2/24 dev vpeer1
ip netns exec peer ip link set vpeer1 up
ip netns exec peer ip link set lo up
# the peer can answer container addresses directly (as a router on the LAN would): without
# this, traffic that escaped without NAT would die for want of a way back, and the
# "internal network" check below could not fail
ip netns exec peer ip route add 172.16.0.0/12 via 10.99.0.1

# the host's nameserver is a dnsmasq on "another machine" (this mount namespace's own
# /etc/resolv.conf says so): the embedded DNS server forwards what it does not know there
ip netns exec peer dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --listen-address=10.99.0.2 --bind-interfaces --user=root --pid-file= \
    --address=/outside.test/10.99.0.77 &
dns_pid=$!
# a second nameserver there, for --dns
ip netns exec peer ip addr add 10.99.0.3/24 dev vpeer1
ip netns exec peer dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --listen-address=10.99.0.3 --bind-interfaces --user=root --pid-file= \
    --address=/outside.test/10.99.0.88 &
dns2_pid=$!
printf 'nameserver 10.99.0.2\nsearch corp.test\n' >"$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

start_engine() {
    rm -f "$T/engine.sock"
    "$ENGINE" -H "unix://$T/engine.sock" --data-root "$T/root" --exec-root "$T/exec" \
        --pidfile "$T/engine.pid" --bip 172.18.0.1/16 --log-level debug >>"$T/engine.log" 2>&1 &
    engine_pid=$!
    for _ in $(seq 100); do
        [ -S "$T/engine.sock" ] && curl -sf --unix-socket "$T/engine.sock" http://x/_ping >/dev/null && return 0
        sleep 0.1
    done
    cat "$T/engine.log" >&2
    fail "engine did not start"
}
# a host whose firewall drops forwarded traffic (dockerd sets this policy): the engine lets its
# own bridges' traffic through, so every NAT check below runs under it
iptables -w -P FORWARD DROP
start_engine
export DOCKER_HOST=unix://$T/engine.sock
d() { "$DOCKER" "$@"; }
# bounded polling: CMD until it succeeds, at most 10 s
wait_for() { for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
# An HTTP GET inside a container: the image's static busybox wget needs glibc's NSS modules
# (it crashes without them), nc resolves names from /etc/hosts by itself. Prints the body's
# last line. Arguments: HOST PORT.
HTTP_GET='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5 "$1" "$2" | tail -n 1'
veths() { ip -o link show type veth | grep -c ' veth' || true; }

d pull -q "$IMG" >/dev/null || fail "pull"
assert_eq "$(d info --format '{{json .Warnings}}' | grep -c "behaves like 'none'" || true)" "0" "info no longer says the default network is 'none'"
assert_contains "$(d network ls --format '{{.Name}} {{.Driver}}')" "bridge bridge" "network ls shows the default bridge"
ip link show machine0 >/dev/null || fail "the default bridge machine0 exists"
assert__ok "bridge machine0 exists"
[[ "$(nft list table ip machine-engine)" == *172.18.0.0/16* ]] || fail "masquerade rule for the default subnet"
assert__ok "NAT rule for 172.18.0.0/16 in table ip machine-engine"
assert_eq "$(iptables -w -S FORWARD | grep -c -- '-j MACHINE-ENGINE-FWD' || true)" "1" "FORWARD policy DROP: the engine's accept chain is jumped to"

step "published port: httpd on the default bridge"
d run -d --name web -p 18080:80 "$IMG" sh -c 'mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
wait_for curl -sf --max-time 2 http://127.0.0.1:18080/ || { tail -20 "$T/engine.log"; fail "port 18080 never answered"; }
assert_eq "$(curl -sf --max-time 5 http://127.0.0.1:18080/)" "hello-from-web" "curl 127.0.0.1:18080 gets the page"
assert_eq "$(ip netns exec peer curl -sf --max-time 5 http://10.99.0.1:18080/)" "hello-from-web" "another machine reaches the published port"
assert_contains "$(d port web)" "80/tcp -> 0.0.0.0:18080" "docker port"
assert_contains "$(d ps --format '{{.Names}} {{.Ports}}')" "web 0.0.0.0:18080->80/tcp" "ps PORTS column"
ip=$(d inspect -f '{{.NetworkSettings.IPAddress}}' web)
case "$ip" in 172.18.*) assert__ok "container address $ip from the default subnet" ;; *) fail "bad address '$ip'" ;; esac
assert_eq "$(d inspect -f '{{.NetworkSettings.Gateway}}' web)" "172.18.0.1" "the host is the gateway"
assert_eq "$(curl -sf --max-time 5 "http://$ip:80/")" "hello-from-web" "the host reaches the container's address"
assert_eq "$(d exec web cat /etc/hostname)" "$(d inspect -f '{{.Config.Hostname}}' web)" "/etc/hostname"
assert_contains "$(d exec web cat /etc/hosts)" "$ip" "/etc/hosts names the container"
resolv=$(d exec web cat /etc/resolv.conf)
assert_contains "$resolv" "nameserver 10.99.0.2" "default bridge: the host's nameservers in resolv.conf"
[[ "$resolv" == *127.0.0.11* ]] && fail "default bridge container uses the embedded DNS"
assert__ok "default bridge: no embedded DNS (like docker)"
hosts=$(d run --rm --add-host db.example:10.99.0.9 --add-host host.docker.internal:host-gateway "$IMG" cat /etc/hosts)
assert_contains "$hosts" "$(printf '10.99.0.9\tdb.example')" "--add-host NAME:IP lands in /etc/hosts"
assert_contains "$hosts" "$(printf '172.18.0.1\thost.docker.internal')" "--add-host host-gateway is the host's bridge address"
# the docker CLI checks --add-host itself: the engine's own check, through the API
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/engine.sock" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"HostConfig\":{\"ExtraHosts\":[\"db:not-an-ip\"]}}" http://x/containers/create)
assert_eq "$code" "400" "the engine refuses an extra host whose address is not one"
resolv=$(d run --rm --dns 10.99.0.3 --dns-search corp.example --dns-option timeout:1 "$IMG" cat /etc/resolv.conf)
assert_eq "$resolv" "$(printf 'nameserver 10.99.0.3\nsearch corp.example\noptions timeout:1')" "--dns, --dns-search, --dns-option make resolv.conf"
assert_contains "$(d run --rm --dns 10.99.0.3 "$IMG" nslookup outside.test 2>&1 || true)" "Address: 10.99.0.88" "default bridge: --dns is the container's nameserver"
assert_exit 125 d run --rm -p 18080:80 "$IMG" true 2>/dev/null
d run -d --name pall -P --expose 7000 "$IMG" httpd -f -p 7000 >/dev/null
hp=$(d port pall 7000/tcp | head -1 | sed 's/.*://')
[ -n "$hp" ] && [ "$hp" -gt 0 ] || fail "-P published 7000 on a host port"
assert__ok "-P published 7000/tcp on host port $hp"
d rm -f pall >/dev/null

step "published UDP port"
cc -static -O2 -o "$T/udp-echo" "${MACHINE_SRC:?}/tests/helpers/udp-echo.c" || fail "cannot build udp-echo"
# HOST PORT: sends "ping" from a connected UDP socket (bash's /dev/udp), prints the answer
# (one datagram: dd reads it whole, where read(1) would read a byte and drop the rest)
udp_ask() { timeout 5 bash -c 'exec 3<>"/dev/udp/$1/$2" && echo ping >&3 && timeout 2 dd bs=2048 count=1 <&3 2>/dev/null' - "$@"; }
d run -d --name udp -p 15353:5353/udp "$IMG" sleep 300 >/dev/null
d cp "$T/udp-echo" udp:/udp-echo
d exec -d udp /udp-echo 5353
wait_for udp_ask 127.0.0.1 15353 || fail "udp port 15353 never answered"
assert_eq "$(udp_ask 127.0.0.1 15353)" "echo:ping" "a datagram to 127.0.0.1:15353/udp is answered by the container"
assert_eq "$(ip netns exec peer bash -c "$(declare -f udp_ask); udp_ask 10.99.0.1 15353")" "echo:ping" "another machine reaches the published UDP port"
assert_contains "$(d port udp)" "5353/udp -> 0.0.0.0:15353" "docker port shows the UDP port"
assert_contains "$(d ps --format '{{.Names}} {{.Ports}}')" "udp 0.0.0.0:15353->5353/udp" "ps PORTS column shows the UDP port"
d rm -f udp >/dev/null
[[ "$(ss -Hlun 'sport = :15353')" == "" ]] || fail "udp port 15353 still bound after rm"
assert__ok "UDP port freed by rm"

step "outbound NAT to another machine"
mkdir -p "$T/peerwww" && echo from-peer >"$T/peerwww/index.html"
ip netns exec peer busybox httpd -f -p 10.99.0.2:8081 -h "$T/peerwww" &
peer_pid=$!
wait_for ip netns exec peer curl -sf --max-time 1 http://10.99.0.2:8081/
assert_eq "$(d run --rm "$IMG" sh -c "$HTTP_GET" - 10.99.0.2 8081)" "from-peer" "container reaches 10.99.0.2 through NAT"

step "stop frees the port and the veth"
d stop -t 1 web >/dev/null
assert_exit 7 curl -s --max-time 2 http://127.0.0.1:18080/
assert_eq "$(veths)" "0" "no veth left after stop"
[ -z "$(ls -A "$T/exec/netns")" ] || fail "netns mount left after stop"
grep -q "$T/exec/netns" /proc/self/mountinfo && fail "netns still mounted"
assert__ok "no netns left after stop"
d start web >/dev/null
wait_for curl -sf --max-time 2 http://127.0.0.1:18080/ || fail "port after restart"
assert__ok "the port comes back with start"
d rm -f web >/dev/null

step "user network: names and aliases"
d network create appnet >/dev/null
assert_contains "$(d network ls --format '{{.Name}}')" "appnet" "network ls"
sub=$(d network inspect -f '{{(index .IPAM.Config 0).Subnet}}' appnet)
assert_contains "$sub" "172.19." "subnet from the default address pool"
d run -d --name srv --network appnet --network-alias db "$IMG" sh -c 'mkdir -p /w && echo srv-page > /w/index.html && exec httpd -f -p 80 -h /w' >/dev/null
d run -d --name cli --network appnet "$IMG" sleep 300 >/dev/null
assert_eq "$(d exec cli sh -c "$HTTP_GET" - srv 80)" "srv-page" "reach by name"
assert_eq "$(d exec cli sh -c "$HTTP_GET" - db 80)" "srv-page" "reach by alias"
assert_contains "$(d network inspect -f '{{range .Containers}}{{.Name}} {{end}}' appnet)" "srv" "network inspect lists containers"
assert_contains "$(d exec cli cat /etc/resolv.conf)" "nameserver 127.0.0.11" "user network: resolv.conf names the embedded DNS server"
srv_ip=$(d inspect -f '{{(index .NetworkSettings.Networks "appnet").IPAddress}}' srv)
# busybox's nslookup asks the nameserver only (never /etc/hosts)
assert_contains "$(d exec cli nslookup srv 2>&1 || true)" "Address: $srv_ip" "embedded DNS answers a container name"
assert_contains "$(d exec cli nslookup DB 2>&1 || true)" "Address: $srv_ip" "embedded DNS answers an alias (any case)"
assert_contains "$(d exec cli nslookup "$(d inspect -f '{{.Id}}' srv | cut -c1-12)" 2>&1 || true)" "Address: $srv_ip" "embedded DNS answers a short ID"
assert_contains "$(d exec cli nslookup srv.appnet 2>&1 || true)" "Address: $srv_ip" "embedded DNS answers NAME.NETWORK"
assert_contains "$(d exec cli nslookup outside.test 2>&1 || true)" "Address: 10.99.0.77" "other names are forwarded to the host's nameserver"
assert_contains "$(d run --rm --network appnet --dns 10.99.0.3 "$IMG" nslookup outside.test 2>&1 || true)" "Address: 10.99.0.88" "user network: --dns servers are where the embedded DNS forwards"
# DNS over TCP (what resolvers fall back to for big answers): a framed A query for "srv"
srv_hex=$(printf '%02x' ${srv_ip//./ })
tcp_answer=$(printf '\x00\x15\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03srv\x00\x00\x01\x00\x01' |
    d exec -i cli timeout 3 nc 127.0.0.11 53 | od -An -tx1 -v | tr -d ' \n' || true)
assert_contains "$tcp_answer" "1234" "DNS over TCP: the answer carries the query's ID"
assert_contains "$tcp_answer" "$srv_hex" "DNS over TCP answers a container name"
d run -d --name late "$IMG" sleep 300 >/dev/null
d network connect appnet late
assert_eq "$(d exec late sh -c "$HTTP_GET" - srv 80)" "srv-page" "network connect of a running container"
assert_contains "$(d exec cli cat /etc/hosts)" "late" "hosts kept in sync on connect"
d network disconnect appnet late
assert_exit 1 d exec cli grep -q late /etc/hosts
out=$(d network rm appnet 2>&1) && fail "network rm with running containers succeeded"
assert__ok "network rm refused while containers run: $out"
step "isolation between networks, internal networks"
# a GET with a 2 s connect timeout: prints nothing when the address cannot be reached
GET2='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 "$1" "$2" | tail -n 1'
d network create othernet >/dev/null
assert_eq "$(d run --rm --network othernet "$IMG" sh -c "$GET2" - "$srv_ip" 80 || true)" "" "a container on another network cannot reach srv's address"
d run -d --name both --network othernet "$IMG" sleep 300 >/dev/null
d network connect appnet both
assert_eq "$(d exec both sh -c "$HTTP_GET" - srv 80)" "srv-page" "a container on both networks reaches srv"
[[ "$(nft list table ip machine-engine)" == *"chain forward"* ]] || fail "no forward chain with two networks"
assert__ok "nft forward chain keeps the networks apart"
d network create --internal intnet >/dev/null
d run -d --name inside --network intnet "$IMG" sh -c 'mkdir -p /w && echo inside-page > /w/index.html && exec httpd -f -p 80 -h /w' >/dev/null
assert_eq "$(d run --rm --network intnet "$IMG" sh -c "$HTTP_GET" - inside 80)" "inside-page" "internal network: its containers reach each other"
assert_eq "$(d run --rm --network intnet "$IMG" sh -c "$GET2" - 10.99.0.2 8081 || true)" "" "internal network: no way out to another machine"
assert_eq "$(d run --rm --network othernet "$IMG" sh -c "$HTTP_GET" - 10.99.0.2 8081)" "from-peer" "an ordinary network still reaches it"
# the host's policy back to ACCEPT: the next firewall sync removes the accept chain, and the
# nftables rules alone keep the networks apart
iptables -w -P FORWARD ACCEPT
d network create syncnet >/dev/null # any network change syncs the firewall
d network rm syncnet >/dev/null
[[ "$(iptables -w -S)" == *MACHINE-ENGINE-FWD* ]] && fail "accept chain left under policy ACCEPT"
assert__ok "FORWARD policy ACCEPT: no iptables chain of ours"
assert_eq "$(d run --rm --network othernet "$IMG" sh -c "$GET2" - "$srv_ip" 80 || true)" "" "nftables alone: a container on another network cannot reach srv's address"
assert_eq "$(d run --rm --network intnet "$IMG" sh -c "$GET2" - 10.99.0.2 8081 || true)" "" "nftables alone: an internal network has no way out"
assert_eq "$(d run --rm --network othernet "$IMG" sh -c "$GET2" - "$(d inspect -f '{{(index .NetworkSettings.Networks "intnet").IPAddress}}' inside)" 80 || true)" "" "nftables alone: nothing gets into an internal network"
d rm -f inside >/dev/null
d network rm intnet >/dev/null
iptables -w -P FORWARD DROP
d rm -f both >/dev/null
d network rm othernet >/dev/null

d rm -f srv >/dev/null
[[ "$(d exec cli nslookup srv 2>&1 || true)" == *"$srv_ip"* ]] && fail "a removed container's name still resolves"
assert__ok "a removed container's name no longer resolves"
d rm -f cli late >/dev/null
d network rm appnet >/dev/null
assert_exit 1 d network inspect appnet
[[ "$(ip -o link show)" == *mbr-* ]] && fail "bridge left after network rm"
[[ "$(nft list table ip machine-engine)" == *"$sub"* ]] && fail "NAT rule left after network rm"
[[ "$(nft list table ip machine-engine)" == *"chain forward"* ]] && fail "forward chain left with only the default network"
assert__ok "network rm leaves no bridge and no rule"

step "--network none, host, container:"
assert_eq "$(d run --rm --network none "$IMG" sh -c 'ls /sys/class/net | tr "\n" " "')" "lo " "none: only lo"
assert_contains "$(d run --rm --network host "$IMG" ls /sys/class/net)" "vpeer0" "host: the host's interfaces"
d run -d --name base "$IMG" sleep 300 >/dev/null
bip=$(d inspect -f '{{.NetworkSettings.IPAddress}}' base)
assert_contains "$(d run --rm --network container:base "$IMG" ip -o -4 addr show eth0)" "$bip" "container: shares the other's namespace"
d rm -f base >/dev/null

step "engine kill -9 and restart reconcile"
d run -d --name survivor -p 18081:80 "$IMG" sleep 300 >/dev/null
survivor_ip=$(d inspect -f '{{.NetworkSettings.IPAddress}}' survivor)
kill -9 "$engine_pid"; wait "$engine_pid" 2>/dev/null || true
start_engine
# live-restore (the default): the survivor runs on with its network (test_engine_liverestore)
assert_eq "$(veths)" "1" "its veth, and only its, after the restart"
assert_eq "$(iptables -w -S FORWARD | grep -c -- '-j MACHINE-ENGINE-FWD' || true)" "1" "one jump to the accept chain after the restart"
assert_eq "$(ls -A "$T/exec/netns")" "$(d inspect -f '{{.Id}}' survivor)" "its netns, and only its, after the restart"
assert_eq "$(d inspect -f '{{.State.Status}} {{.NetworkSettings.IPAddress}}' survivor)" "running $survivor_ip" "re-adopted with its address"
assert_eq "$(d port survivor)" "80/tcp -> 0.0.0.0:18081" "its ports published again after the restart"
d restart -t 1 survivor >/dev/null
assert_eq "$(d port survivor)" "80/tcp -> 0.0.0.0:18081" "ports rebuilt on a start after the restart"
d rm -f survivor >/dev/null
[ -z "$(ls -A "$T/exec/netns")" ] || fail "netns left after rm"
assert__ok "no netns after rm"
assert_eq "$(veths)" "0" "no veth after rm"
grep -q "$T/exec" /proc/self/mountinfo && fail "mounts left"
assert__ok "no mounts left"

pass
