#!/usr/bin/env bash
# Addresses and names a container asks for, with the real docker CLI 28 against machine-engine,
# each checked inside the container (issue 19, docker-py's network tests): IPv6 networks
# (--ipv6, v6 subnets, ip -6 addr, the v6 default route, ping6 between containers, AAAA answers
# of the embedded DNS), fixed
# addresses (--ip, --ip6, refused on the default bridge and on networks without a subnet),
# --ip-range/--gateway/--aux-address, --link-local-ip, --mac-address, --link on a user network
# (an alias only the linking container resolves, through the embedded DNS), docker rm --link,
# network names with spaces, duplicate names (CheckDuplicate), the network create errors
# dockerd words (host/null driver, ingress), and network prune filters.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
[ -d /proc/sys/net/ipv6 ] || { echo "skip: the kernel has no IPv6"; exit 77; }
enginetest_netns netaddr "$@"
enginetest_setup netaddr
enginetest_engine
d pull -q "$IMG" >/dev/null
run() { d run --rm "$@"; }
# fails MESSAGE CMD...: CMD exits non-zero and prints MESSAGE
fails() {
    local want=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "$* succeeded: $out"
    assert_contains "$out" "$want" "refused: $*"
}
api() { # METHOD PATH [BODY]: the HTTP status, the body in $T/api.out
    curl -s -o "$T/api.out" -w '%{http_code}' --unix-socket "$T/e/engine.sock" -X "$1" \
        -H 'Content-Type: application/json' ${3:+-d "$3"} "http://x$2"
}

step "IPv6: an --ipv6 network gives containers an IPv6 address and route"
d network create --ipv6 --subnet 172.30.0.0/24 --subnet fd00:30::/64 v6net >/dev/null
assert_eq "$(d network inspect -f '{{.EnableIPv6}}' v6net)" "true" "network inspect: EnableIPv6"
assert_contains "$(d network inspect -f '{{json .IPAM.Config}}' v6net)" '{"Subnet":"fd00:30::/64"}' "network inspect: the IPv6 subnet"
addr6=$(run --network v6net "$IMG" ip -6 addr show dev eth0)
assert_contains "$addr6" "inet6 fd00:30::2/64 scope global" "the container has fd00:30::2/64 (the gateway is ::1)"
assert_contains "$(run --network v6net "$IMG" ip -6 route)" "default via fd00:30::1 dev eth0" "IPv6 default route through the bridge"
d run -d --name v6a --network v6net --ip6 fd00:30::77 "$IMG" sleep 300 >/dev/null
assert_eq "$(d inspect -f '{{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}' v6a)" "fd00:30::77" "inspect: GlobalIPv6Address is the asked --ip6"
assert_eq "$(d inspect -f '{{.NetworkSettings.Networks.v6net.IPAMConfig.IPv6Address}}' v6a)" "fd00:30::77" "inspect: IPAMConfig.IPv6Address"
assert_eq "$(d inspect -f '{{.NetworkSettings.Networks.v6net.IPv6Gateway}}' v6a)" "fd00:30::1" "inspect: IPv6Gateway"
assert_contains "$(d network inspect -f '{{json .Containers}}' v6net)" '"IPv6Address":"fd00:30::77/64"' "network inspect lists the container's IPv6 address"
assert_contains "$(run --network v6net "$IMG" ping6 -c 1 -W 5 fd00:30::77)" "1 packets received" "one container reaches another over IPv6"
assert_contains "$(run --network v6net "$IMG" nslookup -type=aaaa v6a 127.0.0.11)" "fd00:30::77" "the embedded DNS answers AAAA with the container's IPv6 address"

step "fixed IPv4 addresses, IP ranges, auxiliary addresses"
d network create --subnet 172.31.0.0/24 fixnet >/dev/null
assert_contains "$(run --network fixnet --ip 172.31.0.77 "$IMG" ip -4 addr show dev eth0)" "inet 172.31.0.77/24" "--ip gives the container that address"
fails "user specified IP address is supported on user defined networks only" d run --rm --ip 172.18.0.77 "$IMG" true
fails "user specified IP address is supported on user defined networks only" d run --rm --network none --ip 172.18.0.77 "$IMG" true
d network create nosubnet >/dev/null
fails "user specified IP address is supported only when connecting to networks with user configured subnets" \
    d run --rm --network nosubnet --ip 172.19.0.77 "$IMG" true
fails "user specified IP address is supported only when connecting to networks with user configured subnets" \
    d run --rm --network fixnet --ip6 fd00:31::7 "$IMG" true
d network create --subnet 172.28.0.0/16 --ip-range 172.28.5.0/24 --gateway 172.28.5.254 \
    --aux-address a=172.28.5.0 --aux-address b=172.28.5.1 rnet >/dev/null
assert_eq "$(d network inspect -f '{{json .IPAM.Config}}' rnet)" \
    '[{"Subnet":"172.28.0.0/16","IPRange":"172.28.5.0/24","Gateway":"172.28.5.254","AuxiliaryAddresses":{"a":"172.28.5.0","b":"172.28.5.1"}}]' \
    "network inspect: IPAM.Config as asked"
out=$(run --network rnet "$IMG" sh -c 'ip -4 addr show dev eth0; ip route')
assert_contains "$out" "inet 172.28.5.2/16" "the address comes from the IP range, past the auxiliary ones"
assert_contains "$out" "default via 172.28.5.254" "the asked gateway is the default route"
d run -d --name fixed --network fixnet "$IMG" sleep 300 >/dev/null
d network connect --ip 172.28.5.99 rnet fixed
assert_contains "$(d exec fixed ip -4 addr show dev eth1)" "inet 172.28.5.99/16" "docker network connect --ip"
assert_eq "$(d inspect -f '{{.NetworkSettings.Networks.rnet.IPAMConfig.IPv4Address}}' fixed)" "172.28.5.99" "inspect: IPAMConfig.IPv4Address after connect"

step "link-local addresses and MAC addresses"
assert_contains "$(run --link-local-ip 169.254.8.8 "$IMG" ip -4 addr show dev eth0)" "inet 169.254.8.8/16" "--link-local-ip on the default bridge"
assert_eq "$(run --mac-address 02:42:ac:11:00:0a "$IMG" cat /sys/class/net/eth0/address)" "02:42:ac:11:00:0a" "--mac-address on the default bridge"
assert_eq "$(run --network fixnet --mac-address 02:42:AC:11:00:0B "$IMG" cat /sys/class/net/eth0/address)" "02:42:ac:11:00:0b" "--mac-address on a user network"
d run -d --name mac --mac-address 02:42:ac:11:00:0c "$IMG" sleep 300 >/dev/null
assert_eq "$(d inspect -f '{{.NetworkSettings.MacAddress}}' mac)" "02:42:ac:11:00:0c" "inspect: NetworkSettings.MacAddress"
fails "invalid MAC address" d run --rm --network fixnet --mac-address 01:00:5e:00:00:01 "$IMG" true
fails "conflicting options: mac-address and the network mode" d run --rm --network host --mac-address 02:42:ac:11:00:0d "$IMG" true

step "--link on a user network: an alias for the linking container alone"
d run -d --name upstream --network fixnet "$IMG" sleep 300 >/dev/null
up_ip=$(d inspect -f '{{.NetworkSettings.Networks.fixnet.IPAddress}}' upstream)
d run -d --name linker --network fixnet --link upstream:bar "$IMG" sleep 300 >/dev/null
assert_eq "$(d inspect -f '{{json .NetworkSettings.Networks.fixnet.Links}}' linker)" '["upstream:bar"]' "inspect: the endpoint's Links"
assert_contains "$(d exec linker nslookup bar 127.0.0.11)" "$up_ip" "the linking container resolves the alias bar"
out=$(d run --rm --network fixnet "$IMG" nslookup bar 127.0.0.11 2>&1 || true)
[[ "$out" == *"$up_ip"* ]] && fail "a container without the link resolved bar: $out"
assert__ok "another container does not resolve bar"
d network connect --alias foo v6net upstream
assert_contains "$(d exec v6a nslookup foo 127.0.0.11)" "$(d inspect -f '{{.NetworkSettings.Networks.v6net.IPAddress}}' upstream)" "docker network connect --alias: the alias resolves"

step "docker rm --link"
d run -d --name parent0 "$IMG" sleep 300 >/dev/null
d create --name child --link parent0:mylink "$IMG" true >/dev/null
assert_contains "$(d inspect -f '{{json .HostConfig.Links}}' child)" "mylink" "the child has the link"
d rm --link child/mylink >/dev/null
[[ "$(d inspect -f '{{json .HostConfig.Links}}' child)" == *mylink* ]] && fail "docker rm --link left the link"
assert__ok "docker rm --link removed the link"
assert_eq "$(d ps -a --filter name=parent0 --format '{{.Names}}')" "parent0" "the linked container is still there"
fails "No such container" d rm --link child/nolink

step "network names and create errors as dockerd words them"
d network create "test 01" >/dev/null
assert_eq "$(d network inspect -f '{{.Name}}' "test 01")" "test 01" "a name with a space"
d network rm "test 01" >/dev/null
fails "already exists" d network create fixnet
# docker-py 5 sends CheckDuplicate false (API 1.41): a second network of that name, and a warning
code=$(api POST /v1.41/networks/create '{"Name":"dup","CheckDuplicate":false}')
code2=$(api POST /v1.41/networks/create '{"Name":"dup","CheckDuplicate":false}')
assert_eq "$code/$code2" "201/201" "CheckDuplicate false: the name twice"
assert_contains "$(cat "$T/api.out")" "Network with name dup (id : " "the second create warns"
fails "network dup is ambiguous (2 matches found on name)" d network inspect dup
assert_eq "$(api GET '/networks/fixnet?scope=local')/$(api GET '/networks/fixnet?scope=swarm')" "200/404" \
    "inspect ?scope=: the network is local, no swarm one"
fails 'only one instance of "host" network is allowed' d network create -d host h2
fails 'only one instance of "null" network is allowed' d network create -d null n2
fails "Ingress network can only be global scope network" d network create --ingress ing
fails "operation is not permitted on predefined bridge network" d network create bridge
fails "could not find an available, non-overlapping IPv6 address pool" d network create --ipv6 nov6

step "network prune filters"
d network create --label keep=yes pk1 >/dev/null
d network create pk2 >/dev/null
d network prune -f --filter until=1h >/dev/null
assert_contains "$(d network ls --format '{{.Name}}')" "pk2" "prune --filter until=1h leaves a network made just now"
out=$(d network prune -f --filter 'label!=keep=yes')
assert_contains "$out" "pk2" "prune --filter label!=keep=yes removes pk2"
names=$(d network ls --format '{{.Name}}')
assert_contains "$names" "pk1" "the labelled network stays"
[[ "$names" == *pk2* ]] && fail "pk2 is still there"
assert__ok "pk2 is gone"
fails "invalid filter" d network prune -f --filter nosuch=1

step "after an engine restart: networks and asked addresses kept"
fixnet_rec=$T/e/root/network/networks/$(d network inspect -f '{{.Id}}' fixnet).json
engine_stop
# a record written before IPAMConfig was kept: its subnet still takes fixed addresses
jq -c 'del(.IPAMConfig)' "$fixnet_rec" >"$T/rec" && cat "$T/rec" >"$fixnet_rec"
engine_start "$T/e"
assert_contains "$(run --network fixnet --ip 172.31.0.88 "$IMG" ip -4 addr show dev eth0)" "inet 172.31.0.88/24" "--ip on a network recorded before IPAMConfig was kept"
assert_eq "$(d network inspect -f '{{.EnableIPv6}}' v6net)" "true" "EnableIPv6 kept"
d start v6a mac >/dev/null
assert_contains "$(d exec v6a ip -6 addr show dev eth0)" "inet6 fd00:30::77/64" "the asked IPv6 address again"
assert_eq "$(d exec mac cat /sys/class/net/eth0/address)" "02:42:ac:11:00:0c" "the asked MAC address again"
d start linker upstream >/dev/null
assert_contains "$(d exec linker nslookup bar 127.0.0.11)" "$(d inspect -f '{{.NetworkSettings.Networks.fixnet.IPAddress}}' upstream)" "the link's alias again"

pass
