#!/usr/bin/env bash
# The container process lifecycle with the real docker CLI 28 (and Debian's docker-py for the
# races it hits): failed starts under --rm, kill/wait/attach/logs races, exec start and its
# errors, LogConfig (json-file rotation, none, refused drivers), StopSignal/StopTimeout,
# and another engine's network namespaces left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-lifecycle-XXXXXX)
# --bridge none: nothing here needs container networking; the host's network is untouched.
ENGINE_ARGS=(--bridge none --exec-root "$T/exec")
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 40 "$T"/e/engine.log >&2 2>/dev/null || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/exec" || true
    registry_cleanup 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

# A namespace file of another engine sharing the exec root (as two engines left at the default
# --exec-root would): starting this engine must leave it alone.
mkdir -p "$T/exec/netns"
echo other-engine >"$T/exec/netns/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock
SOCK=$T/e/engine.sock
d() { "$DOCKER" "$@"; }
d pull -q "$IMG" >/dev/null

step "another engine's network namespaces are left alone"
[ -e "$T/exec/netns/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ] ||
    fail "the engine deleted a network namespace that is not one of its containers'"
assert__ok "foreign netns kept"

step "run --rm with a start failure: exit 125, message, container removed"
rc=0
out=$(timeout -k 5 60 "$DOCKER" run --rm -u nosuchuser "$IMG" id 2>&1) || rc=$?
assert_eq "$rc" "125" "run --rm -u nosuchuser exits 125 (124: it hung)"
assert_contains "$out" "unable to find user nosuchuser" "the start error is printed"
assert_eq "$(d ps -aq)" "" "the failed --rm container is removed"
d create --name baduser -u nosuchuser "$IMG" id >/dev/null
d start baduser >/dev/null 2>&1 && fail "start with a bad user succeeded"
assert_contains "$(d inspect -f '{{.State.Error}}' baduser)" "unable to find user nosuchuser" \
    "a bad user leaves State.Error"
d rm baduser >/dev/null

step "kill returns once the container is dead"
for i in 1 2 3 4 5; do
    d run -d --name k$i "$IMG" sleep 300 >/dev/null
    curl -sf --max-time 30 --unix-socket "$SOCK" -X POST "http://x/containers/k$i/kill" >/dev/null ||
        fail "kill k$i"
    assert_eq "$(curl -s --unix-socket "$SOCK" "http://x/containers/k$i/json" | jq -r .State.Status)" \
        "exited" "inspect right after kill $i: exited"
done
d rm k1 k2 k3 k4 k5 >/dev/null

step "wait on a restart=always container returns at its exit"
d run -d --name ra --restart always "$IMG" sh -c 'sleep 1; exit 3' >/dev/null
rc=0
out=$(timeout -k 5 60 "$DOCKER" wait ra) || rc=$?
assert_eq "$rc:$out" "0:3" "docker wait on a restart=always container"
d rm -f ra >/dev/null

step "attach?logs=1&stream=0 on an exited container answers at once"
d run --name ex "$IMG" sh -c 'echo hello-attach' >/dev/null
out=$(timeout 30 /usr/bin/python3 - "$SOCK" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(b"POST /containers/ex/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\n"
          b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.replace(b"\0", b"").decode("latin-1"))
EOF
) || fail "attach logs=1 stream=0 did not end: $out"
assert_contains "$out" "hello-attach" "attach logs=1 replays the log"
d rm ex >/dev/null

step "logs --tail counts lines of a multi-line write"
d run --name ml "$IMG" sh -c 'printf "one\ntwo\nthree\n"' >/dev/null
assert_eq "$(d logs --tail 2 ml | tr '\n' ' ')" "two three " "logs --tail 2"
assert_eq "$(d logs --tail 1 ml)" "three" "logs --tail 1"
d rm ml >/dev/null

step "LogConfig: json-file by default, none, rotation, unknown drivers refused"
d create --name lc "$IMG" true >/dev/null
assert_eq "$(d inspect -f '{{.HostConfig.LogConfig.Type}}' lc)" "json-file" "default LogConfig"
d rm lc >/dev/null
d run --name ln --log-driver none "$IMG" echo not-kept >/dev/null
assert_eq "$(d inspect -f '{{.HostConfig.LogConfig.Type}}' ln)" "none" "LogConfig none reported"
out=$(d logs ln 2>&1) && fail "logs of a --log-driver none container succeeded: $out"
assert_contains "$out" "configured logging driver does not support reading" "logs with none"
d rm ln >/dev/null
out=$(d create --log-driver nosuchdriver "$IMG" true 2>&1) && fail "an unknown log driver was accepted"
assert_contains "$out" "no log driver named 'nosuchdriver'" "unknown log driver refused"
out=$(d create --log-driver json-file --log-opt nosuch=1 "$IMG" true 2>&1) && fail "an unknown log opt was accepted"
assert_contains "$out" "unknown log opt 'nosuch'" "unknown log opt refused"
id=$(d run -d --name rot --log-opt max-size=1k --log-opt max-file=3 "$IMG" \
    sh -c 'i=0; while [ $i -lt 200 ]; do echo "line-$i-padding-padding-padding"; i=$((i+1)); done')
d wait rot >/dev/null
dir=$T/e/root/containers/$id
[ -f "$dir/$id-json.log.1" ] && [ -f "$dir/$id-json.log.2" ] || fail "no rotated log files: $(ls "$dir")"
[ ! -e "$dir/$id-json.log.3" ] || fail "max-file=3 kept a fourth file"
for f in "$dir/$id-json.log" "$dir/$id-json.log.1" "$dir/$id-json.log.2"; do
    [ "$(stat -c %s "$f")" -le 1024 ] || fail "$f is larger than max-size"
done
out=$(d logs rot)
assert_eq "$(tail -n 1 <<<"$out")" "line-199-padding-padding-padding" "logs ends with the last line"
n=$(wc -l <<<"$out")
[ "$n" -gt "$(wc -l <"$dir/$id-json.log")" ] ||
    fail "logs did not read the rotated files ($n lines)"
d rm rot >/dev/null

step "StopSignal and StopTimeout"
d run -d --name ss --stop-signal USR1 "$IMG" sh -c 'trap "echo got-usr1; exit 7" USR1; while :; do sleep 0.2; done' >/dev/null
sleep 0.5
d stop ss >/dev/null
assert_eq "$(d inspect -f '{{.State.ExitCode}}' ss)" "7" "stop sends the StopSignal (USR1)"
assert_contains "$(d logs ss)" "got-usr1" "the container saw USR1"
d rm ss >/dev/null
d run -d --name sn --stop-signal 10 "$IMG" sh -c 'trap "exit 9" USR1; while :; do sleep 0.2; done' >/dev/null
sleep 0.5
d stop sn >/dev/null
assert_eq "$(d inspect -f '{{.State.ExitCode}}' sn)" "9" "--stop-signal by number"
d rm sn >/dev/null
d run -d --name st --stop-timeout 1 "$IMG" sh -c 'trap "" TERM; while :; do sleep 0.2; done' >/dev/null
sleep 0.5
d stop st >/dev/null
assert_eq "$(d inspect -f '{{.State.ExitCode}}' st)" "137" "StopTimeout ends in SIGKILL"
assert_eq "$(d inspect -f '{{.Config.StopTimeout}}' st)" "1" "StopTimeout reported"
d rm st >/dev/null

step "exec: errors, User/WorkingDir/Env, and no first output lost (docker-py)"
d run -d --name ex1 "$IMG" sleep 300 >/dev/null
rc=0
out=$(d exec ex1 no-such-binary 2>&1) || rc=$?
assert_eq "$rc" "126" "exec of a missing binary exits 126 (dockerd's exec start)"
assert_contains "$out" 'exec: "no-such-binary": executable file not found in $PATH' "exec error text"
assert_eq "$(d exec -u nobody -w /tmp -e X=ex-env ex1 sh -c 'id -u; pwd; echo $X' | tr '\n' ' ')" \
    "65534 /tmp ex-env " "exec User, WorkingDir, Env"
out=$(timeout 120 /usr/bin/python3 - "$SOCK" <<'EOF'
import sys, docker
c = docker.APIClient(base_url="unix://" + sys.argv[1], version="1.41")
bad = 0
for i in range(40):
    e = c.exec_create("ex1", ["echo", "first-%d" % i])
    out = c.exec_start(e["Id"])
    if out != b"first-%d\n" % i:
        bad += 1
        print("lost: %r" % out)
e = c.exec_create("ex1", ["sh", "-c", "echo out; echo err >&2"])
print("demux=%r" % (c.exec_start(e["Id"], demux=True),))
e = c.exec_create("ex1", ["sh", "-c", "tty"], tty=True)
print("tty=%r" % c.exec_start(e["Id"], tty=True).replace(b"\r", b""))
e = c.exec_create("ex1", ["sh", "-c", "echo s-out; echo s-err >&2"])
print("stream=%r" % sorted(b"".join(c.exec_start(e["Id"], stream=True)).split()))
e = c.exec_create("ex1", ["sh", "-c", "echo $Y $(pwd) $(id -u)"], environment={"Y": "yy"},
                  workdir="/tmp", user="nobody")
print("env=%r" % c.exec_start(e["Id"]))
e = c.exec_create("ex1", ["no-such"])
out = c.exec_start(e["Id"])
print("missing=%d %r" % (c.exec_inspect(e["Id"])["ExitCode"], b"executable file not found" in out))
e = c.exec_create("ex1", ["sh", "-c", "echo detached > /tmp/det"])
c.exec_start(e["Id"], detach=True)
print("bad=%d" % bad)
EOF
) || fail "docker-py exec: $out"
assert_contains "$out" "bad=0" "docker-py exec_start never loses the first output"
assert_contains "$out" "demux=(b'out\\n', b'err\\n')" "docker-py exec demux"
assert_contains "$out" "tty=b'/dev/pts/" "docker-py exec with a tty"
assert_contains "$out" "stream=[b's-err', b's-out']" "docker-py exec_start(stream=True)"
assert_contains "$out" "env=b'yy /tmp 65534\\n'" "docker-py exec environment, workdir, user"
assert_contains "$out" "missing=126 True" "docker-py exec of a missing binary: 126 and the message"
for _ in $(seq 50); do [ "$(d exec ex1 cat /tmp/det 2>/dev/null)" = detached ] && break; sleep 0.1; done
assert_eq "$(d exec ex1 cat /tmp/det)" "detached" "detached exec ran"
id=$(curl -sf --unix-socket "$SOCK" -H 'Content-Type: application/json' -d '{"Cmd":["true"]}' \
    "http://x/containers/ex1/exec" | jq -r .Id)
d stop -t 1 ex1 >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H 'Content-Type: application/json' \
    -d '{"Detach":false,"Tty":false}' "http://x/exec/$id/start")
assert_eq "$code" "409" "exec start on a stopped container: 409 before any upgrade"
d rm -f ex1 >/dev/null

step "--init: our init is PID 1, the command its child; status and signals pass through"
out=$(d run --rm --init "$IMG" ps -o pid,ppid,comm)
assert_contains "$(grep -E '^ *1 ' <<<"$out")" "docker-init" "PID 1 is the init: $out"
assert_contains "$(grep -E ' ps$' <<<"$out")" " 1 ps" "the command is the init's child"
assert_exit 5 d run --rm --init "$IMG" sh -c 'exit 5'
assert_eq "$(d inspect -f '{{.HostConfig.Init}}' "$(d create --init "$IMG" true)")" "true" "HostConfig.Init"
out=$(d run --rm --init "$IMG" sh -c '(sh -c "sleep 0.3 &"); sleep 1; ps -o stat,comm | grep -c "^Z" || true')
assert_eq "$out" "0" "orphans are reaped by the init"
d run -d --init --name it "$IMG" sh -c 'trap "exit 11" TERM; while :; do sleep 0.2; done' >/dev/null
sleep 0.5
d stop it >/dev/null
assert_eq "$(d inspect -f '{{.State.ExitCode}}' it)" "11" "SIGTERM forwarded to the command"
d rm it >/dev/null

step "Healthcheck: starting, healthy, then unhealthy; State.Health, ps, events"
since=$(date +%s)
d run -d --name hc --health-cmd 'test -f /tmp/ok' --health-interval 1s --health-retries 2 \
    --health-timeout 5s "$IMG" sh -c 'touch /tmp/ok; exec sleep 300' >/dev/null
health() { d inspect -f '{{.State.Health.Status}}' hc; }
for _ in $(seq 100); do [ "$(health)" = healthy ] && break; sleep 0.2; done
assert_eq "$(health)" "healthy" "the check turns healthy: $(d inspect -f "{{json .State}}" hc)"
assert_contains "$(d ps --filter name=hc --format '{{.Status}}')" "(healthy)" "ps STATUS (healthy)"
assert_eq "$(d inspect -f '{{(index .State.Health.Log 0).ExitCode}}' hc)" "0" "State.Health.Log"
d exec hc rm /tmp/ok
for _ in $(seq 100); do [ "$(health)" = unhealthy ] && break; sleep 0.2; done
assert_eq "$(health)" "unhealthy" "the check turns unhealthy once the file is gone"
[ "$(d inspect -f '{{.State.Health.FailingStreak}}' hc)" -ge 2 ] || fail "FailingStreak below retries"
assert_contains "$(d ps --filter name=hc --format '{{.Status}}')" "(unhealthy)" "ps STATUS (unhealthy)"
[ "$(d inspect -f '{{len .State.Health.Log}}' hc)" -le 5 ] || fail "more than 5 health log entries"
ev=$(d events --since "$since" --until "$(($(date +%s) + 1))" --filter container=hc --format '{{.Action}}')
assert_contains "$ev" "health_status: healthy" "health_status: healthy event"
assert_contains "$ev" "health_status: unhealthy" "health_status: unhealthy event"
d rm -f hc >/dev/null
d run -d --name hn --health-cmd 'exit 1' --health-interval 1s --no-healthcheck "$IMG" sleep 30 >/dev/null 2>&1 ||
    d run -d --name hn --no-healthcheck "$IMG" sleep 30 >/dev/null
assert_eq "$(d inspect -f '{{.State.Health}}' hn)" "<nil>" "--no-healthcheck: no State.Health"
d rm -f hn >/dev/null
out=$(d create --health-cmd true --health-interval 1us "$IMG" true 2>&1) && fail "a 1us interval was accepted"
assert_contains "$out" "Interval in Healthcheck cannot be less than 1ms" "interval below 1ms refused"

step "TTYs: run -t and exec -t get /dev/pts/N of the container's own devpts; resize"
assert_eq "$(d run --rm -t "$IMG" tty | tr -d '\r')" "/dev/pts/0" "run -t: tty is /dev/pts/0"
assert_eq "$(d run --rm -t "$IMG" sh -c 'stat -c %t:%T /dev/console /dev/pts/0 | uniq | wc -l' | tr -d '\r ')" \
    "1" "/dev/console is the container's pty"
assert_eq "$(script -qec "$DOCKER run --rm -it -u nobody $IMG tty" /dev/null </dev/null | tr -d '\r\0' | sed 's/\^@//g')" \
    "/dev/pts/0" "run -it as a user: /dev/pts/0"
d run -d --name tt -t "$IMG" sleep 300 >/dev/null
assert_contains "$(d exec -t tt tty | tr -d '\r')" "/dev/pts/" "exec -t has a terminal"
out=$(script -qec "stty rows 41 cols 123; $DOCKER exec -it tt stty size" /dev/null </dev/null | tr -d '\r')
assert_contains "$out" "41 123" "exec -it is resized to the client's terminal"
curl -sf --unix-socket "$SOCK" -X POST "http://x/containers/tt/resize?h=33&w=77" >/dev/null || fail "resize"
assert_eq "$(d exec tt stty -F /dev/pts/0 size)" "33 77" "container resize reaches its tty"
d rm -f tt >/dev/null

step "attach: detach keys end the attach, the container goes on"
d run -dit --name at "$IMG" cat >/dev/null
out=$(timeout 60 /usr/bin/python3 - "$SOCK" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(b"POST /containers/at/attach?stdin=1&stdout=1&stderr=1&stream=1&detachKeys=ctrl-x,x "
          b"HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(4096)
s.sendall(b"hello-\x18y-typed\n")
deadline = time.time() + 20
while b"y-typed" not in data and time.time() < deadline:
    data += s.recv(4096)
s.sendall(b"\x18x")
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("echoed" if b"y-typed" in data else "not echoed")
print("closed")
EOF
) || fail "attach with detach keys did not end: $out"
assert_contains "$out" "echoed" "a broken partial sequence is passed on"
assert_contains "$out" "closed" "the detach keys end the attach"
assert_eq "$(d inspect -f '{{.State.Status}}' at)" "running" "the container runs on after a detach"
d rm -f at >/dev/null

step "restart policies at engine start: always even after a manual stop, unless-stopped not"
d run -d --name pa --restart always "$IMG" sleep 300 >/dev/null
d run -d --name pu --restart unless-stopped --health-cmd true --health-interval 1s "$IMG" sleep 300 >/dev/null
d run -d --name pu2 --restart unless-stopped --health-cmd true --health-interval 1s "$IMG" sleep 300 >/dev/null
for _ in $(seq 100); do [ "$(d inspect -f '{{.State.Health.Status}}' pu)" = healthy ] && break; sleep 0.2; done
d stop pa pu >/dev/null
engine_stop
engine_start "$T/e"
assert_eq "$(d inspect -f '{{.State.Status}}' pa)" "running" "always: stopped by hand, restarted by the engine's start"
assert_eq "$(d inspect -f '{{.State.Status}}' pu)" "exited" "unless-stopped: stopped by hand stays stopped"
assert_eq "$(d inspect -f '{{.State.Health.Status}} {{(index .State.Health.Log 0).ExitCode}}' pu)" \
    "healthy 0" "State.Health kept across an engine restart"
assert_eq "$(d inspect -f '{{.State.Status}}' pu2)" "running" "unless-stopped: running before, running again"
for _ in $(seq 100); do [ "$(d inspect -f '{{.State.Health.Status}}' pu2)" = healthy ] && break; sleep 0.2; done
assert_eq "$(d inspect -f '{{.State.Health.Status}}' pu2)" "healthy" "the health check runs again after an engine restart"
grep -q "ERROR: AddressSanitizer\|runtime error:" "$T/e/engine.log" && fail "the engine's sanitizers reported an error"
d rm -f pa pu pu2 >/dev/null

pass "container lifecycle"
