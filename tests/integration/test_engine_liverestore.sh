#!/usr/bin/env bash
# Containers outlive machine-engine (issue 16): each runs under its machine-monitor, which writes
# its log and records its exit while the engine is down; a restarted engine re-adopts the
# running ones (same IDs and PIDs, logs without a gap, exec, stop, published ports again) and
# reports the real exit code of those that ended meanwhile. kill -9 of a monitor: the container
# dies, is reported exited with the reason, and leaves nothing behind. --live-restore=false:
# containers stop with the engine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
enginetest_netns liverestore "$@"
enginetest_setup liverestore
enginetest_engine
d pull -q "$IMG" >/dev/null

# bounded polling: N tries 0.1 s apart until the command succeeds
until_ok() {
    local n=$1 _
    shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}
ppid_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status"; }
comm_of() { cat "/proc/$1/comm"; }
log_size() { stat -c %s "$1"; }
log_grew() { [ "$(log_size "$1")" -gt "$2" ]; }
is_status() { [ "$("$DOCKER" inspect -f '{{.State.Status}}' "$1")" = "$2" ]; }
# gone, or a zombie its new parent has not reaped yet
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
state_exited() { grep -q '^status=exited$' "$1" 2>/dev/null; }

step "containers run under their machine-monitor, not the engine"
mkdir -p "$T/gate"
d run -d --name counter "$IMG" sh -c 'i=0; while :; do echo "tick $i"; i=$((i+1)); usleep 100000; done' >/dev/null
d run -d --name web -p 18090:80 "$IMG" sh -c 'mkdir -p /www && echo page-from-web > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
d run -d -i --name reader "$IMG" sh -c 'while read -r l; do echo "got: $l"; done' >/dev/null
d run -d --name later -v "$T/gate:/gate" "$IMG" sh -c 'until [ -e /gate/go ]; do usleep 50000; done; exit 7' >/dev/null
d network create appnet >/dev/null
d run -d --name db --network appnet --network-alias database "$IMG" sleep 300 >/dev/null
d run -d --name app --network appnet "$IMG" sleep 300 >/dev/null
db_ip=$(d inspect -f '{{.NetworkSettings.Networks.appnet.IPAddress}}' db)
assert_contains "$(d exec app nslookup database 2>&1)" "$db_ip" "the embedded DNS answers on a user network"
until_ok 100 curl -sf --max-time 2 http://127.0.0.1:18090/ >/dev/null || fail "the published port never answered"
before=$(d inspect -f '{{.Id}} {{.State.Pid}}' counter web later)
cpid=$(d inspect -f '{{.State.Pid}}' counter)
mpid=$(ppid_of "$cpid")
assert_eq "$(comm_of "$mpid")" "machine-monitor" "the counter's parent is its monitor"
[ "$mpid" != "$engine_pid" ] || fail "the engine is the container's parent"
[ "$(ppid_of "$mpid")" != "$engine_pid" ] || fail "the monitor is the engine's child"
assert__ok "the monitor is nobody's child in the engine"
for fd in /proc/"$mpid"/fd/*; do
    t=$(readlink "$fd")
    case $t in
    /dev/null | pipe:* | socket:* | /dev/pts/* | /dev/ptmx | anon_inode:* | "$T"/e/root/containers/*) ;;
    *) fail "the monitor holds $t (fd $(basename "$fd"))" ;;
    esac
done
n_fds=$(ls /proc/"$mpid"/fd | wc -l)
[ "$n_fds" -le 13 ] || fail "the monitor holds $n_fds fds: $(ls -l /proc/"$mpid"/fd)"
assert__ok "the monitor holds only its own fds ($n_fds)"
dir=$T/e/root/containers/$(d inspect -f '{{.Id}}' counter)
assert_eq "$(stat -c %a "$dir")" "700" "the container's state directory is 0700"
assert_eq "$(awk '/^CapEff:/ { print $2 }' /proc/"$mpid"/status) $(awk '/^CapBnd:/ { print $2 }' /proc/"$mpid"/status) $(awk '/^NoNewPrivs:/ { print $2 }' /proc/"$mpid"/status)" \
    "0000000000000000 0000000000000000 1" "the monitor runs with no capability and no_new_privs"
assert_eq "$(sed -n 's/^status=//p' "$dir/monitor.state")" "running" "the monitor's state file"
logpath=$(d inspect -f '{{.LogPath}}' counter)
ip=$(d inspect -f '{{.NetworkSettings.IPAddress}}' web)
until_ok 50 grep -q 'tick 3' "$logpath" || fail "no ticks in the log"
ticks_before=$(d logs counter | wc -l)

step "kill -9 of the engine: the containers run on, the log grows"
killed_at=$(date +%s%N)
engine_kill9
size=$(log_size "$logpath")
until_ok 50 log_grew "$logpath" "$size" || fail "the log stopped growing with the engine gone"
assert__ok "the counter's log grows while the engine is down"
assert_eq "$(curl -sf --max-time 5 "http://$ip:80/")" "page-from-web" "the web container answers on its address while the engine is down"
kill -0 "$cpid" 2>/dev/null || fail "the counter died with the engine"
touch "$T/gate/go"
until_ok 100 state_exited "$T/e/root/containers/$(awk 'NR==3 { print $1 }' <<<"$before")/monitor.state" ||
    fail "the container that ended while the engine was down has no exit recorded"
assert__ok "an exit while the engine is down is recorded by its monitor"

step "the restarted engine re-adopts them"
restart_at=$(date +%s)
engine_start "$T/e"
until_ok 100 curl -sf --max-time 2 http://127.0.0.1:18090/ >/dev/null || fail "the published port did not come back"
answered_at=$(date +%s%N)
echo "published port answered $(((answered_at - killed_at) / 1000000)) ms after the engine kill (its machine-proxy runs on; test_engine_liverestore_net checks it while the engine is down)" >&2
assert_eq "$(curl -sf --max-time 5 http://127.0.0.1:18090/)" "page-from-web" "the published port answers again"
assert_eq "$(d inspect -f '{{.Id}} {{.State.Pid}}' counter web)" "$(head -n 2 <<<"$before")" "same IDs and PIDs"
assert_eq "$(d ps --format '{{.Names}}' | sort | tr '\n' ' ')" "app counter db reader web " "docker ps: all running"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' later)" "exited 7" "the real exit code of the one that ended meanwhile"
finished=$(date -d "$(d inspect -f '{{.State.FinishedAt}}' later)" +%s)
[ "$finished" -le "$restart_at" ] || fail "FinishedAt ($finished) is the engine's restart, not the exit"
assert__ok "FinishedAt is when it ended"
logs=$(d logs counter)
n=$(wc -l <<<"$logs")
[ "$n" -gt "$ticks_before" ] || fail "no new log lines ($n, $ticks_before before)"
awk '{ if ($2 != NR - 1) { print "gap at line " NR ": " $0; exit 1 } }' <<<"$logs" || fail "docker logs has a gap"
assert__ok "docker logs: $n consecutive ticks, none lost across the restart"
assert_eq "$(d exec counter echo exec-ok)" "exec-ok" "docker exec on a re-adopted container"
echo after-restart | timeout -s KILL 5 "$DOCKER" attach --sig-proxy=false reader >"$T/attach.out" 2>&1 || true
has_line() { d logs reader | grep -q "got: after-restart"; }
until_ok 50 has_line || fail "input sent through docker attach never reached the re-adopted container"
assert_contains "$(cat "$T/attach.out")" "got: after-restart" "docker attach -i: input in, output out on a re-adopted container"
d rm -f reader >/dev/null
assert_eq "$(timeout 10 "$DOCKER" logs -f --tail 0 counter | head -n 3 | wc -l)" "3" "docker logs -f follows a re-adopted container"
assert_eq "$(timeout 10 "$DOCKER" attach --no-stdin counter | head -n 3 | grep -c '^tick ')" "3" "docker attach to a re-adopted container gets its output"
assert_eq "$(d exec web sh -c 'wget -qO- http://127.0.0.1:80/')" "page-from-web" "the re-adopted web container serves"
assert_contains "$(d exec app nslookup database 2>&1)" "$db_ip" "DNS names served again after the restart"
assert_contains "$(d exec app nslookup db 2>&1)" "$db_ip" "container names too"
d rm -f app db >/dev/null
d network rm appnet >/dev/null

step "docker stop on a re-adopted container"
d stop -t 1 counter >/dev/null
assert_eq "$(d inspect -f '{{.State.Status}}' counter)" "exited" "stopped"
gone "$cpid" || fail "the counter's process survived docker stop"
until_ok 50 gone "$mpid" || fail "the counter's monitor is still there"
assert__ok "its process and its monitor are gone"
d rm -f counter later >/dev/null

step "kill -9 of a monitor: the container dies, exited with the reason, nothing left"
d run -d --name victim -p 18091:80 "$IMG" httpd -f -p 80 >/dev/null
id=$(d inspect -f '{{.Id}}' victim)
vpid=$(d inspect -f '{{.State.Pid}}' victim)
vmon=$(ppid_of "$vpid")
assert_eq "$(comm_of "$vmon")" "machine-monitor" "the victim's monitor"
veths_before=$(ip -o link show type veth | wc -l)
kill -9 "$vmon"
until_ok 100 is_status victim exited || fail "the victim is not reported exited"
assert_eq "$(d inspect -f '{{.State.ExitCode}}' victim)" "137" "killed: 137"
assert_contains "$(d inspect -f '{{.State.Error}}' victim)" "monitor exited unexpectedly" "State.Error says why"
until_ok 50 gone "$vpid" || fail "the victim's process outlived its monitor"
grep -q "$id/rootfs" /proc/self/mountinfo && fail "its rootfs is still mounted"
for cg in /sys/fs/cgroup/machine-engine/"$id" /sys/fs/cgroup/pids/machine-engine/"$id"; do
    [ -e "$cg" ] && fail "its cgroup $cg is left"
done
[ -e "$T/e/exec/netns/$id" ] && fail "its network namespace is left"
assert_eq "$(ip -o link show type veth | wc -l)" "$((veths_before - 1))" "its veth is gone"
curl -sf --max-time 2 http://127.0.0.1:18091/ >/dev/null && fail "its published port still answers"
assert__ok "no mount, cgroup, namespace, veth or port left"
d rm -f victim >/dev/null

step "host reboot: restart policies start them again, stopped-by-user ones stay stopped"
d run -d --name always --restart always "$IMG" sleep 300 >/dev/null
d run -d --name unless --restart unless-stopped "$IMG" sleep 300 >/dev/null
d run -d --name unless-stopped-by-hand --restart unless-stopped "$IMG" sleep 300 >/dev/null
d run -d --name plain "$IMG" sleep 300 >/dev/null
d stop -t 1 unless-stopped-by-hand >/dev/null
old_pids=$(d inspect -f '{{.State.Pid}}' always unless)
ids=$(d inspect -f '{{.Id}}' always unless plain)
engine_kill9
# what a reboot does to them: monitors and containers gone, the state files of another boot
for id in $ids; do
    f=$T/e/root/containers/$id/monitor.state
    grep -q '^status=running$' "$f" || fail "$id: no running state before the reboot"
    kill -9 "$(sed -n 's/^monitor_pid=//p' "$f")"
    until_ok 50 gone "$(sed -n 's/^pid=//p' "$f")" || fail "$id outlived its monitor"
    sed -i 's/^boot_id=.*/boot_id=00000000-0000-4000-8000-000000000000/' "$f"
done
engine_start "$T/e"
assert_eq "$(d inspect -f '{{.State.Status}}' always unless unless-stopped-by-hand | tr '\n' ' ')" \
    "running running exited " "always and unless-stopped start again; one stopped by hand stays stopped"
[ "$(d inspect -f '{{.State.Pid}}' always unless)" != "$old_pids" ] || fail "the same processes after a reboot"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' plain)" "exited 255" "no policy: exited 255, as dockerd after a reboot"
assert_contains "$(d inspect -f '{{.State.Error}}' plain)" "host restarted" "with the reason"
d rm -f always unless unless-stopped-by-hand plain >/dev/null

step "--live-restore=false: containers stop with the engine"
d rm -f web >/dev/null
engine_stop
ENGINE_ARGS+=(--live-restore=false)
engine_start "$T/e"
d run -d --name mortal "$IMG" sleep 300 >/dev/null
mortal=$(d inspect -f '{{.State.Pid}}' mortal)
engine_stop
until_ok 50 gone "$mortal" || fail "the container outlived an engine run with --live-restore=false"
engine_start "$T/e"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' mortal)" "exited 137" "reported exited after the restart"
d run -d --name crashed "$IMG" sleep 300 >/dev/null
crashed=$(d inspect -f '{{.State.Pid}}' crashed)
engine_kill9
engine_start "$T/e"
gone "$crashed" || fail "a container of a crashed engine ran on with --live-restore=false"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' crashed)" "exited 137" "a crashed engine's container: exited"
assert_contains "$(d inspect -f '{{.State.Error}}' crashed)" "engine stopped" "with the reason"
grep -q "$(d inspect -f '{{.Id}}' crashed)/rootfs" /proc/self/mountinfo && fail "its rootfs is still mounted"
d rm -f mortal crashed >/dev/null
grep -q "ERROR: AddressSanitizer\|runtime error:" "$T/e/engine.log" && fail "the engine's sanitizers reported an error"

pass "containers outlive the engine"
