#!/usr/bin/env bash
# Published ports and the embedded DNS server outlive machine-engine (issue 16 item 3): each
# publishing container's ports are served by its own machine-proxy, which runs on through an
# engine kill -9 and restart (new connections answered while the engine is down, established
# ones kept); the DNS sockets stay open in the container's monitor, so a query sent while the
# engine is down is answered once it is back. docker port, ps, stop freeing the port at once,
# kill -9 of a proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
enginetest_netns liverestore_net "$@"
enginetest_setup liverestore_net
enginetest_engine
d pull -q "$IMG" >/dev/null

until_ok() { # N CMD...: N tries 0.1 s apart
    local n=$1 _
    shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
netdir() { echo "$T/e/root/network/containers/$(d inspect -f '{{.Id}}' "$1")"; }
proxy_pid() { jq -r '.Proxy.Pid' "$(netdir "$1")/run.json"; }
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# a line through the connection on fd 5 and its echo back
echo_line() {
    local got=
    printf '%s\n' "$1" >&5 || return 1
    IFS= read -r -t 5 got <&5 || return 1
    [ "$got" = "$1" ]
}
can_bind() { # PORT: a fresh listener on it
    python3 -c 'import socket,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)' "$1"
}
page() { curl -sf --max-time 5 "http://127.0.0.1:$1/"; }

step "published ports are served by a machine-proxy per container"
d run -d --name web -p 18100:80 "$IMG" sh -c 'mkdir -p /www && echo page-from-web > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
d run -d --name echo -p 18101:7 "$IMG" nc -ll -p 7 -e cat >/dev/null
d run -d --name quiet "$IMG" sleep 300 >/dev/null
until_ok 100 page 18100 >/dev/null || fail "the published port never answered"
ppid=$(proxy_pid web)
assert_eq "$(cat /proc/"$ppid"/comm)" "machine-proxy" "web's ports: its machine-proxy"
assert_eq "$(jq -r '.Proxy.Pid' "$(netdir quiet)/run.json")" "0" "no proxy for a container without published ports"
assert_eq "$(awk '/^CapEff:/ { print $2 }' /proc/"$ppid"/status) $(awk '/^CapBnd:/ { print $2 }' /proc/"$ppid"/status) $(awk '/^NoNewPrivs:/ { print $2 }' /proc/"$ppid"/status)" \
    "0000000000000000 0000000000000000 1" "the proxy runs with no capability and no_new_privs"
for fd in /proc/"$ppid"/fd/*; do
    t=$(readlink "$fd")
    case $t in
    /dev/null | pipe:* | socket:* | anon_inode:*) ;;
    *) fail "the proxy holds $t (fd $(basename "$fd"))" ;;
    esac
done
n_fds=$(ls /proc/"$ppid"/fd | wc -l)
[ "$n_fds" -le 7 ] || fail "the proxy holds $n_fds fds: $(ls -l /proc/"$ppid"/fd)"
assert__ok "the proxy holds only its sockets, its hold pipe and /dev/null ($n_fds fds)"
echo "machine-proxy RSS: $(awk '/^VmRSS:/ { print $2, $3 }' /proc/"$ppid"/status) per publishing container" >&2
exec 5<>/dev/tcp/127.0.0.1/18101
until_ok 50 echo_line hello || fail "no echo through the published port"
assert__ok "a connection through the proxy echoes"

d network create appnet >/dev/null
d run -d --name db --network appnet "$IMG" sleep 300 >/dev/null
mkdir -p "$T/gate"
d run -d --name asker --network appnet -v "$T/gate:/g" "$IMG" sh -c \
    'until [ -e /g/go ]; do usleep 20000; done; nslookup db > /g/out 2>&1; echo $? > /g/rc; sleep 300' >/dev/null
db_ip=$(d inspect -f '{{.NetworkSettings.Networks.appnet.IPAddress}}' db)
assert_contains "$(d exec asker nslookup db 2>&1)" "$db_ip" "the embedded DNS answers before"

step "kill -9 of the engine: the ports answer, connections live on, DNS queries wait"
engine_kill9
killed_at=$(now_ms)
assert_eq "$(page 18100)" "page-from-web" "a new connection is answered while the engine is down"
answered_at=$(now_ms)
echo "published port gap across the engine kill: none (answered $((answered_at - killed_at)) ms after the kill, first try)" >&2
echo_line while-down || fail "the established connection broke with the engine"
assert__ok "the established connection still echoes while the engine is down"
[ "$(cat /proc/"$ppid"/comm 2>/dev/null)" = machine-proxy ] || fail "the proxy died with the engine"
touch "$T/gate/go"
asked_at=$(now_ms)
sleep 1
[ ! -e "$T/gate/rc" ] || fail "the DNS query got an answer ($(cat "$T/gate/out")) with no engine to give it"
assert__ok "a DNS query sent while the engine is down waits"

step "the restarted engine finds the proxy and takes the DNS sockets back"
engine_start "$T/e"
until_ok 150 test -s "$T/gate/rc" || fail "the DNS query sent while the engine was down was never answered"
dns_at=$(now_ms)
echo "DNS: the query sent while the engine was down was answered $((dns_at - asked_at)) ms later" >&2
assert_eq "$(cat "$T/gate/rc")" "0" "nslookup succeeded"
assert_contains "$(cat "$T/gate/out")" "$db_ip" "the query sent while the engine was down is answered after the restart"
assert_contains "$(d exec asker nslookup db 2>&1)" "$db_ip" "the embedded DNS answers after"
assert_eq "$(proxy_pid web)" "$ppid" "the same proxy serves web's port"
hold=$(readlink /proc/"$ppid"/fd/3)
ls -l /proc/"$engine_pid"/fd | grep -qF "$hold" || fail "the engine did not take the proxy's hold pipe ($hold) back from the monitor"
assert__ok "the engine holds the adopted proxy's hold pipe again, as for one it started"
echo_line after-restart || fail "the established connection broke across the restart"
assert__ok "the established connection still echoes after the restart"
assert_eq "$(page 18100)" "page-from-web" "new connections after the restart"
assert_eq "$(d port web)" "80/tcp -> 0.0.0.0:18100" "docker port"
assert_eq "$(d ps --filter name=echo --format '{{.Ports}}')" "0.0.0.0:18101->7/tcp" "docker ps PORTS"
grep -q "port proxy.*runs on" "$T/e/engine.log" || fail "the engine did not say it found the proxy"
assert__ok "the engine log says the proxy ran on"

step "docker stop frees the port at once"
exec 5>&-
d stop -t 1 web >/dev/null
gone "$ppid" || fail "web's proxy outlived docker stop"
can_bind 18100 || fail "port 18100 is still taken after docker stop"
assert__ok "its proxy is gone and the port can be bound again"
d start web >/dev/null
until_ok 100 page 18100 >/dev/null || fail "the port did not come back with docker start"
assert_eq "$(page 18100)" "page-from-web" "docker start: the port answers again (a new proxy)"
[ "$(proxy_pid web)" != "$ppid" ] || fail "the old proxy pid after docker start"
assert__ok "a new proxy after docker start"
d run -d --name clash -p 18100:80 "$IMG" true >/dev/null 2>"$T/clash.err" && fail "a taken port was published twice"
assert_contains "$(cat "$T/clash.err")" "port is already allocated" "a taken port fails docker run with dockerd's words"
d rm -f clash >/dev/null 2>&1 || true

step "a container that ends while the engine is down takes its proxy along"
epid=$(proxy_pid echo)
echo_cpid=$(d inspect -f '{{.State.Pid}}' echo)
engine_kill9
kill -9 "$echo_cpid"
until_ok 100 gone "$epid" || fail "the proxy outlived its container with the engine down"
can_bind 18101 || fail "port 18101 stays taken after its container ended"
assert__ok "the container's end ends its proxy: the port is free"
engine_start "$T/e"
assert_eq "$(d inspect -f '{{.State.Status}}' echo)" "exited" "reported exited"

step "a proxy gone while the engine is down: the restarted engine starts a new one"
d run -d --name rnd -p 80 "$IMG" sh -c 'mkdir -p /www && echo page-from-rnd > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
rnd_port=$(d port rnd 80/tcp | head -n 1 | sed 's/.*://')
until_ok 100 page "$rnd_port" >/dev/null || fail "rnd's port never answered"
ppid=$(proxy_pid web)
rpid=$(proxy_pid rnd)
engine_kill9
kill -9 "$ppid" "$rpid"
until_ok 50 gone "$ppid" || fail "the proxy did not die"
engine_start "$T/e"
until_ok 100 page "$rnd_port" >/dev/null || fail "a port the kernel picked did not come back as it was"
assert_eq "$(d port rnd 80/tcp | head -n 1)" "0.0.0.0:$rnd_port" "docker port: the port the kernel picked at start, kept"
d rm -f rnd >/dev/null
until_ok 100 page 18100 >/dev/null || fail "the port did not come back after the restart"
assert_eq "$(page 18100)" "page-from-web" "the port answers again"
[ "$(proxy_pid web)" != "$ppid" ] || fail "the dead proxy is still recorded"
grep -q "port proxy (pid $ppid) is gone" "$T/e/engine.log" || fail "the engine did not say the proxy was gone"
assert__ok "a new proxy, and the engine says why"

step "kill -9 of a proxy: the port stops answering, the engine says so"
ppid=$(proxy_pid web)
kill -9 "$ppid"
until_ok 50 gone "$ppid" || fail "the proxy did not die"
page 18100 >/dev/null && fail "the port still answers without its proxy"
until_ok 50 grep -q "port proxy (pid $ppid) exited" "$T/e/engine.log" || fail "the engine did not report the proxy's end"
assert__ok "the engine logs the proxy's end"
d stop -t 1 web >/dev/null
can_bind 18100 || fail "port 18100 is taken after the stop"
d rm -f web echo quiet db asker >/dev/null
d network rm appnet >/dev/null

step "--live-restore=false: a crashed engine's proxies go with its containers at the next start"
engine_stop
ENGINE_ARGS+=(--live-restore=false)
engine_start "$T/e"
d run -d --name mortal -p 18102:80 "$IMG" httpd -f -p 80 >/dev/null
mpid=$(proxy_pid mortal)
engine_kill9
engine_start "$T/e"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' mortal)" "exited 137" "its container: exited"
gone "$mpid" || fail "its proxy outlived the restart with --live-restore=false"
can_bind 18102 || fail "port 18102 is still taken"
assert__ok "its proxy is gone and its port free"
d rm -f mortal >/dev/null
grep -q "ERROR: AddressSanitizer\|runtime error:" "$T/e/engine.log" && fail "the engine's sanitizers reported an error"

pass "published ports and the embedded DNS server outlive the engine"
