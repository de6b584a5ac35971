#!/usr/bin/env bash
# Containers, execs and volumes where docker-py 5.0.3's tests found the engine unlike dockerd
# (issue 19), with the docker CLI 28, each checked inside the container or in the API answer:
# an exec's ulimits, oom score, groups and environment; Env entries without '='; the words of
# removing a running container; LogConfig max-file alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
enginetest_netns pygaps "$@"
enginetest_setup pygaps
enginetest_engine
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

out=$(d exec -w /no/such/dir lim pwd 2>&1) && fail "exec in a missing WorkingDir ran"
assert_contains "$out" 'chdir to cwd ("/no/such/dir") set in config.json failed: no such file or directory' \
    "exec in a missing WorkingDir: runc's words, as dockerd"
assert_eq "$(d exec -w /tmp lim pwd)" "/tmp" "exec -w of an existing directory"

step "an exec's environment"
d run -d --name envc -e A=1 -e B=2 "$IMG" sleep 300 >/dev/null
out=$(env -u B "$DOCKER" exec -e C=3 -e B envc env)
assert_contains "$out" "HOSTNAME=$(d inspect -f '{{.Config.Hostname}}' envc)" "exec: HOSTNAME, as dockerd"
assert_contains "$out" "HOME=/root" "exec: HOME from the user's passwd entry"
assert_contains "$out" "A=1" "exec: the container's Env"
assert_contains "$out" "C=3" "exec: its own Env"
case "$out" in *B=*) fail "exec -e B (no '=') left B set: $out" ;; esac
assert__ok "exec: a bare B in the exec's Env unsets the container's B"

step "exec: detach keys (docker-py's detachKeys in the create body, the CLI's config file)"
d run -d --name dk -i "$IMG" cat >/dev/null
xid=$(api POST /containers/dk/exec -H 'Content-Type: application/json' -d \
    '{"AttachStdin":true,"AttachStdout":true,"Tty":true,"detachKeys":"ctrl-x","Cmd":["sh","-c","echo $$ >/tmp/apipid; exec cat"]}' |
    head -n1 | jq -r .Id)
out=$(timeout 60 /usr/bin/python3 - "$T/e/engine.sock" "$xid" <<'EOF2'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
body = b'{"Detach":false,"Tty":true}'
s.sendall(b"POST /exec/%s/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (sys.argv[2].encode(), len(body), body))
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(4096)
s.sendall(b"typed-\x10\x11-on\n") # the default keys do not count once others are set
deadline = time.time() + 20
while b"-on" not in data and time.time() < deadline:
    data += s.recv(4096)
s.sendall(b"\x18")
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("echoed" if b"typed-" in data else "not echoed")
print("closed")
EOF2
) || fail "exec with detach keys did not end: $out"
assert_contains "$out" "echoed" "exec: input before the keys reaches the process"
assert_contains "$out" "closed" "exec: ctrl-x (detachKeys of the create body) ends the stream"
assert_eq "$(api GET "/exec/$xid/json" | head -n1 | jq -r '"\(.Running) \(.DetachKeys)"')" "true ctrl-x" \
    "the exec runs on after the detach; inspect shows its DetachKeys"
assert_eq "$(d exec dk sh -c 'kill -0 "$(cat /tmp/apipid)" && echo alive')" "alive" "the detached exec's process is alive"
# docker exec -it through a pty: the default ctrl-p,ctrl-q, then detachKeys from the config file
cli_detach() { # KEYS-BYTES PIDFILE
    timeout 60 /usr/bin/python3 - "$DOCKER" "$1" "$2" <<'EOF2'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "exec", "-it", "dk", "sh", "-c", "echo $$ >%s; exec cat" % sys.argv[3]])
out = b""
def read_until(pred, secs):
    global out
    end = time.time() + secs
    while not pred() and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            out += chunk
os.write(fd, b"typed\n")
read_until(lambda: out.count(b"typed") >= 2, 20) # the tty's echo and cat's copy
os.write(fd, bytes.fromhex(sys.argv[2]))
read_until(lambda: False, 20)
_, status = os.waitpid(pid, 0)
print("exit", os.waitstatus_to_exitcode(status), out[-200:])
EOF2
}
# the CLI finds the keys itself ("read escape sequence") and closes its side of the stream
out=$(cli_detach 1011 /tmp/clipid) || fail "docker exec -it did not detach: $out"
assert_contains "$out" "read escape sequence" "docker exec -it: ctrl-p,ctrl-q detaches"
assert_eq "$(d exec dk sh -c 'kill -0 "$(cat /tmp/clipid)" && echo alive')" "alive" "its process is alive after the detach"
mkdir -p "$T/dockercfg"
echo '{"detachKeys":"ctrl-x"}' >"$T/dockercfg/config.json"
out=$(DOCKER_CONFIG=$T/dockercfg cli_detach 18 /tmp/clipid2) || fail "docker exec -it (config detachKeys) did not detach: $out"
assert_contains "$out" "read escape sequence" "docker exec -it: the config file's detachKeys ctrl-x detaches"
assert_eq "$(d exec dk sh -c 'kill -0 "$(cat /tmp/clipid2)" && echo alive')" "alive" "its process is alive after the detach"
out=$(api POST /containers/dk/exec -H 'Content-Type: application/json' -d '{"Cmd":["true"],"DetachKeys":"ctrl-1"}')
assert_contains "$out" "Invalid detach keys (ctrl-1) provided" "invalid exec detach keys are refused at create"
d rm -f dk >/dev/null

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

step "CpuRealtimePeriod / CpuRealtimeRuntime"
out=$(api POST /containers/create -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"Cmd\":[\"true\"],\"HostConfig\":{\"CPURealtimePeriod\":100000,\"CPURealtimeRuntime\":1000}}")
rtparent=/sys/fs/cgroup/cpu/machine-engine
if [ -e /sys/fs/cgroup/cpu/cpu.rt_runtime_us ] && [ -e "$rtparent/cpu.rt_runtime_us" ]; then
    # docker-py's spelling (CPURealtime*, taken in any case as dockerd) is honoured
    [ "$(tail -n1 <<<"$out")" = 201 ] || fail "create with CPURealtime*: $out"
    rid=$(head -n1 <<<"$out" | jq -r .Id)
    assert_eq "$(d inspect -f '{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}' "$rid")" \
        "100000 1000" "inspect: CpuRealtimePeriod and CpuRealtimeRuntime"
    # the engines' parent cgroup starts with no real-time budget (0, as the engine makes it); a
    # run of this test that died half-way may have left one: start from 0, end at 0
    enginetest_on_exit "echo 0 >'$rtparent/cpu.rt_runtime_us' 2>/dev/null"
    echo 0 >"$rtparent/cpu.rt_runtime_us"
    out=$(d start "$rid" 2>&1) && fail "a start with no real-time budget in the parent cgroup succeeded"
    assert_contains "$out" "cpu.rt_runtime_us" "without a budget in the engine's cgroup the start fails (as dockerd without --cpu-rt-runtime)"
    # give the engines' parent cgroup a little real-time time for this one start, then take it back
    echo 20000 >"$rtparent/cpu.rt_runtime_us"
    id=$(d run -d --cpu-rt-period 100000 --cpu-rt-runtime 1000 "$IMG" sleep 300)
    got="$(cat "$rtparent/$id/cpu.rt_period_us") $(cat "$rtparent/$id/cpu.rt_runtime_us")"
    d rm -f "$id" "$rid" >/dev/null
    echo 0 >"$rtparent/cpu.rt_runtime_us" || true
    assert_eq "$got" "100000 1000" "--cpu-rt-period/--cpu-rt-runtime: the container's cpu.rt_period_us and cpu.rt_runtime_us"
else
    assert_contains "$out" "kernel does not support CPU real-time scheduler" "no real-time group scheduling: dockerd's refusal"
fi
out=$(d create --cpu-rt-period 1000 --cpu-rt-runtime 2000 "$IMG" true 2>&1) && fail "runtime > period accepted"
assert_contains "$out" "cpu real-time runtime cannot be higher than cpu real-time period" "runtime above period: dockerd's words"
id=$(api POST /containers/create -H 'Content-Type: application/json' -d "{\"Image\":\"$IMG\",\"Runtime\":\"runc\",\"Cmd\":[\"true\"]}" | head -n1 | jq -r .Id)
assert_eq "$(d inspect -f '{{.HostConfig.Runtime}}' "$id")" "runc" "Runtime at the top level (docker-py's place) is taken"

step "--mount volume-label: the labels of the volume it creates"
id=$(d create --mount type=volume,source=lbl,target=/m,volume-label=com.example=yes "$IMG" true)
assert_eq "$(d volume inspect -f '{{index .Labels "com.example"}}' lbl)" "yes" "VolumeOptions.Labels reach the new volume"
assert_eq "$(d inspect -f '{{range .Mounts}}{{.Name}} {{.RW}}{{end}}' "$id")" "lbl true" "the container mounts it read-write"

step "docker commit pauses a running container while its layer is read (pause=1, the default)"
cmid=$(d run -d --name cm "$IMG" sh -c 'echo x >/made; sleep 300')
since=$(date +%s)
d commit cm pygaps/cm:1 >/dev/null
d commit --pause=false cm pygaps/cm:2 >/dev/null
ev=$(d events --since "$since" --until "$(($(date +%s) + 1))" --filter "container=$cmid" --format '{{.Action}}' | grep -E '^(pause|unpause|commit)$' | tr '\n' ' ')
assert_eq "$ev" "pause commit unpause commit " "events: pause, commit, unpause for the default; only commit with --pause=false"
assert_eq "$(d inspect -f '{{.State.Status}}' cm)" "running" "the container runs on after the commit"
assert_eq "$(d run --rm pygaps/cm:1 cat /made)" "x" "the committed image has the container's file"
d rm -f cm >/dev/null

step "docker cp into a volume of a container that never ran"
echo "copied before the first start" >"$T/f.txt"
id=$(d create -v /vol1 "$IMG" cat /vol1/f.txt)
d cp "$T/f.txt" "$id:/vol1/" || fail "docker cp into /vol1 of a created container"
assert_eq "$(d start -a "$id")" "copied before the first start" "the file is in the volume at the start"
id=$(d create -v namedvol:/mnt/deep/v "$IMG" cat /mnt/deep/v/f.txt)
d cp "$T/f.txt" "$id:/mnt/deep/v/" || fail "docker cp into a named volume's nested path of a created container"
assert_eq "$(d run --rm -v namedvol:/v "$IMG" cat /v/f.txt)" "copied before the first start" "the file is in the named volume"

pass
