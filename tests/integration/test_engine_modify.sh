#!/usr/bin/env bash
# docker pause/unpause, rename, update, kill -s, and the swarm/plugin routes of a non-swarm
# dockerd, with the docker CLI 28 against machine-engine (issue 19 points 3 and 5): the effect
# in the container's cgroup, in inspect and in the events.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/routes.sh"
routes_enter_namespaces "$0" "$@"
routes_setup modify
d pull -q "$IMG" >/dev/null
t0=$(date +%s)

# A file of a container's cgroup: the v1 hierarchy of CONTROLLER, else the cgroup2 directory.
cg_file() { # ID CONTROLLER FILE-V1 FILE-V2
    local v1=/sys/fs/cgroup/$2/machine-engine/$1/$3 v2=/sys/fs/cgroup/machine-engine/$1/$4
    if [ -e "$v1" ]; then cat "$v1"; else cat "$v2"; fi
}
freezer_state() { # ID
    local v1=/sys/fs/cgroup/freezer/machine-engine/$1/freezer.state
    if [ -e "$v1" ]; then cat "$v1"; else grep -q 'frozen 1' "/sys/fs/cgroup/machine-engine/$1/cgroup.events" && echo FROZEN || echo THAWED; fi
}

step "pause / unpause"
id=$(d run -d --name p1 "$IMG" sh -c 'i=0; while true; do i=$((i+1)); echo $i >/tmp/n; sleep 0.1; done')
d pause p1 >/dev/null
assert_eq "$(freezer_state "$id")" "FROZEN" "pause freezes the container's cgroup"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.Paused}} {{.State.Running}}' p1)" "paused true true" \
    "inspect: State.Status paused, Paused and Running true"
assert_contains "$(d ps --format '{{.Names}} {{.Status}}')" "p1 Up" "ps lists a paused container"
assert_contains "$(d ps --filter status=paused --format '{{.Names}} {{.Status}}')" "(Paused)" "ps: (Paused), status=paused"
[ "$(api GET '/v1.45/containers/p1/stats?stream=false&one-shot=true' | head -n1 | jq -r .memory_stats.usage)" -gt 0 ] ||
    fail "stats of a paused container"
assert__ok "stats of a paused container report its cgroup, as dockerd"
out=$(d exec p1 true 2>&1) && fail "exec into a paused container ran"
assert_contains "$out" "is paused, unpause the container before exec" "exec on a paused container is refused"
out=$(d pause p1 2>&1) && fail "pause of a paused container succeeded"
assert_contains "$out" "is already paused" "pause twice: dockerd's conflict"
d unpause p1 >/dev/null
assert_eq "$(freezer_state "$id")" "THAWED" "unpause thaws it"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.Paused}}' p1)" "running false" "running again"
assert_eq "$(d exec p1 sh -c 'test -s /tmp/n && echo alive')" "alive" "exec works after unpause"
out=$(d unpause p1 2>&1) && fail "unpause of a running container succeeded"
assert_contains "$out" "is not paused" "unpause of a running container is refused"
d pause p1 >/dev/null
d stop -t 1 p1 >/dev/null
assert_eq "$(d inspect -f '{{.State.Status}}' p1)" "exited" "stop ends a paused container"
out=$(d pause p1 2>&1) && fail "pause of a stopped container succeeded"
assert_contains "$out" "is not running" "pause of a stopped container is refused"
d start p1 >/dev/null
d pause p1 >/dev/null
d kill p1 >/dev/null
assert_eq "$(d wait p1)" "137" "kill ends a paused container"
d rm p1 >/dev/null
d run -d --name p2 "$IMG" sleep 300 >/dev/null
d pause p2 >/dev/null
d rm -f p2 >/dev/null
assert_exit 1 d inspect p2 2>/dev/null

step "rename"
rid=$(d run -d --name r1 "$IMG" sleep 300)
d create --name r2 "$IMG" true >/dev/null
d rename r1 renamed
assert_eq "$(d inspect -f '{{.Name}}' "$rid")" "/renamed" "rename changes the name"
assert_exit 1 d inspect r1 2>/dev/null
assert_eq "$(d ps --format '{{.Names}}' --filter id="$rid")" "renamed" "ps shows the new name"
out=$(d rename renamed r2 2>&1) && fail "rename onto a used name succeeded"
assert_contains "$out" 'The container name "/r2" is already in use' "rename onto a used name: conflict"
out=$(d rename renamed renamed 2>&1) && fail "rename to the same name succeeded"
assert_contains "$out" "Renaming a container with the same name as its current name" "rename to itself"
out=$(d rename renamed 'bad name' 2>&1) && fail "rename to an invalid name succeeded"
assert_contains "$out" "Invalid container name" "rename to an invalid name"

d network create rnet >/dev/null
d run -d --name dnsa --network rnet "$IMG" sleep 300 >/dev/null
d run -d --name dnsb --network rnet "$IMG" sleep 300 >/dev/null
a_ip=$(d inspect -f '{{.NetworkSettings.Networks.rnet.IPAddress}}' dnsa)
d rename dnsa dnsa2
assert_contains "$(d exec dnsb nslookup dnsa2 2>&1 || true)" "Address: $a_ip" "the embedded DNS answers the new name"
assert_contains "$(d exec dnsb cat /etc/hosts)" "dnsa2" "other containers' /etc/hosts have the new name"
d rm -f dnsa2 dnsb >/dev/null

step "update: limits applied live to the cgroup, restart policy"
d update --memory 64m --memory-swap 128m renamed >/dev/null
assert_eq "$(cg_file "$rid" memory memory.limit_in_bytes memory.max)" "67108864" "update --memory reaches the cgroup"
assert_eq "$(d inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}' renamed)" "67108864 134217728" \
    "inspect shows the new memory limits"
d update --pids-limit 50 renamed >/dev/null
assert_eq "$(cg_file "$rid" pids pids.max pids.max)" "50" "update --pids-limit reaches the cgroup"
d update --cpus 0.5 renamed >/dev/null
quota=
for f in /sys/fs/cgroup/cpu/machine-engine/"$rid"/cpu.cfs_quota_us \
    /sys/fs/cgroup/cpu,cpuacct/machine-engine/"$rid"/cpu.cfs_quota_us; do
    [ -e "$f" ] && quota=$(cat "$f") && break
done
[ -n "$quota" ] || quota=$(cut -d' ' -f1 "/sys/fs/cgroup/machine-engine/$rid/cpu.max")
assert_eq "$quota" "50000" "update --cpus reaches the CFS quota"
d update --restart always renamed >/dev/null
assert_eq "$(d inspect -f '{{.HostConfig.RestartPolicy.Name}}' renamed)" "always" "update --restart"
d kill renamed >/dev/null # by hand: the policy leaves it stopped, as dockerd
d start renamed >/dev/null
d exec renamed kill 1
for _ in $(seq 100); do [ "$(d inspect -f '{{.RestartCount}}' renamed)" -ge 1 ] && break; sleep 0.1; done
assert_eq "$(d inspect -f '{{.State.Status}}' renamed)" "running" "the updated restart policy restarts it"
assert_eq "$(cg_file "$rid" memory memory.limit_in_bytes memory.max)" "67108864" "updated limits survive a restart"
out=$(d update --blkio-weight 300 renamed 2>&1) && fail "update of an unsupported field succeeded"
assert_contains "$out" "BlkioWeight is not supported by machine-engine" "update refuses what it cannot change"
out=$(d update --memory 1m renamed 2>&1) && fail "update below the minimum memory succeeded"
assert_contains "$out" "Minimum memory limit allowed is 6MB" "update validates like create"
d update --memory 32m r2 >/dev/null
assert_eq "$(d inspect -f '{{.HostConfig.Memory}}' r2)" "33554432" "update of a stopped container is kept"
d start r2 >/dev/null; d wait r2 >/dev/null
d rm -f renamed r2 >/dev/null

step "kill -s by name and number"
d run -d --name k1 "$IMG" sh -c 'trap "echo got-usr1; exit 7" USR1; while true; do sleep 0.1; done' >/dev/null
sleep 0.5
d kill -s USR1 k1 >/dev/null
assert_eq "$(d wait k1)" "7" "kill -s USR1 reaches the trap"
assert_contains "$(d logs k1)" "got-usr1" "the container saw SIGUSR1"
for s in SIGKILL KILL 9; do
    d start k1 >/dev/null
    d kill -s "$s" k1 >/dev/null
    assert_eq "$(d wait k1)" "137" "kill -s $s"
done
out=$(d kill -s NOSUCH k1 2>&1) && fail "kill -s NOSUCH succeeded"
d run -d --name topped "$IMG" sleep 300 >/dev/null
d top topped >/dev/null
d rm -f topped >/dev/null
d rm k1 >/dev/null

step "events for pause, unpause, rename, update"
ev=$(d events --since "$t0" --until "$(date +%s)" --filter type=container --format '{{.Action}}' | sort -u | tr '\n' ' ')
for a in pause unpause rename update kill destroy top; do assert_contains "$ev" "$a" "event $a"; done
assert_contains "$(d events --since "$t0" --until "$(date +%s)" --filter event=rename --format '{{.Actor.Attributes.oldName}}')" \
    "/r1" "rename event carries oldName"

step "swarm, services, plugins as a non-swarm dockerd"
out=$(api GET /v1.45/swarm)
assert_eq "$(tail -n1 <<<"$out")" "503" "GET /swarm: 503"
assert_contains "$out" 'This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\"' "GET /swarm: dockerd's message"
for p in services tasks nodes secrets configs; do
    assert_eq "$(api GET "/v1.45/$p" | tail -n1)" "503" "GET /$p: 503"
done
out=$(d swarm leave --force 2>&1) && fail "swarm leave succeeded"
assert_contains "$out" "This node is not part of a swarm" "docker swarm leave"
out=$(d service ls 2>&1) && fail "service ls succeeded"
assert_contains "$out" "This node is not a swarm manager" "docker service ls"
assert_eq "$(api GET /v1.45/plugins | head -n1)" "[]" "GET /plugins: []"
assert_eq "$(d plugin ls -q)" "" "docker plugin ls"
out=$(d plugin inspect nosuch 2>&1) && fail "plugin inspect succeeded"
assert_contains "$out" 'plugin "nosuch" not found' "docker plugin inspect"
assert_contains "$(d info --format '{{.Swarm.LocalNodeState}}')" "inactive" "docker info"
pass
