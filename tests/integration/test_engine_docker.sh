#!/usr/bin/env bash
# machine-engine driven by the real docker CLI (28.x, and Debian's 20.10) over its Unix socket,
# pulling from a real docker-registry on loopback with test images built offline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The engine builds a bridge and NAT rules for the default network: run the whole test in a
# network (and mount) namespace of its own so the host's network is never touched.
if [ -z "${MACHINE_ENGINE_DOCKER_INNER:-}" ] && [ "$(id -u)" -eq 0 ]; then
    exec env MACHINE_ENGINE_DOCKER_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
[ -n "${MACHINE_ENGINE_DOCKER_INNER:-}" ] && ip link set lo up
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"

ENGINE=${MACHINE_BUILD:?}/engine/machine-engine
DOCKER=/usr/local/bin/docker
[ -x "$ENGINE" ] || fail "no engine binary at $ENGINE"
T=$(mktemp -d /tmp/machine-engine-docker-XXXXXX)
engine_pid=
cleanup() {
    [ -n "$engine_pid" ] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
    registry_cleanup 2>/dev/null || true
    # containers the test left behind are killed with the engine's cgroups
    umount -R "$T"/root/containers/*/rootfs 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

start_engine() {
    rm -f "$T/engine.sock" # a killed engine leaves its socket behind
    "$ENGINE" -H "unix://$T/engine.sock" --data-root "$T/root" --exec-root "$T/exec" --pidfile "$T/engine.pid" \
        --log-level debug >>"$T/engine.log" 2>&1 &
    engine_pid=$!
    for _ in $(seq 100); do
        [ -S "$T/engine.sock" ] && curl -sf --unix-socket "$T/engine.sock" http://x/_ping >/dev/null && return 0
        sleep 0.1
    done
    cat "$T/engine.log" >&2
    fail "engine did not start"
}
start_engine
export DOCKER_HOST=unix://$T/engine.sock
d() { "$DOCKER" "$@"; }

step() { printf '\n--- %s\n' "$*" >&2; }

step "pull"
out=$(d pull "$IMG" 2>&1) || { cat "$T/engine.log" >&2; fail "pull failed: $out"; }
assert_contains "$out" "Pull complete" "pull progress"
assert_contains "$out" "Digest: sha256:" "pull digest line"
assert_contains "$out" "Status: Downloaded newer image for $IMG" "pull status line"
assert_contains "$(d pull "$IMG" 2>&1)" "Image is up to date" "second pull is a no-op"
assert_contains "$(d images --format '{{.Repository}}:{{.Tag}}')" "$IMG" "images lists the pulled image"
d pull "$REGISTRY_ADDR/test/img-v2s2:v1" >/dev/null || fail "pull of a Docker schema2 image"
d pull "$REGISTRY_ADDR/test/multi:v1" >/dev/null || fail "pull of a two-platform OCI index"

step "run: output and exit codes"
assert_eq "$(d run --rm "$IMG" echo hi)" "hi" "run --rm echo"
assert_exit 0 d run --rm "$IMG" true
assert_exit 1 d run --rm "$IMG" false
assert_exit 3 d run --rm "$IMG" sh -c 'exit 3'
assert_exit 127 d run --rm "$IMG" no-such-command
assert_eq "$(d run --rm "$IMG" cat /data/b 2>/dev/null || echo missing)" "$(d run --rm "$IMG" cat /data/b)" "layer files visible"
assert_eq "$(d run --rm "$IMG" sh -c 'ls /data/deleteme 2>/dev/null || echo gone')" "gone" "whiteouts hide deleted files"
assert_eq "$(d run --rm "$IMG" ls /opq | tr '\n' ' ')" "new.txt " "opaque directories hide lower content"
assert_eq "$(d run --rm -e FOO=bar "$IMG" sh -c 'echo $FOO')" "bar" "env passed"
assert_eq "$(d run --rm -w /data "$IMG" pwd)" "/data" "workdir"
assert_eq "$(d run --rm -u nobody "$IMG" id -u)" "65534" "user by name from the image's passwd"
assert_eq "$(echo piped | d run --rm -i "$IMG" cat)" "piped" "stdin with -i"
assert_eq "$(/usr/bin/docker -H "$DOCKER_HOST" run --rm "$IMG" echo old-cli)" "old-cli" "docker 20.10 CLI"

step "detached containers: ps, logs, exec, stop, kill, rm"
id=$(d run -d --name web "$IMG" sh -c 'echo started; echo err >&2; exec sleep 300')
for _ in $(seq 50); do d logs web 2>/dev/null | grep -q started && break; sleep 0.1; done
assert_contains "$(d ps --format '{{.Names}} {{.Status}}')" "web Up" "ps shows the running container"
assert_eq "$(d logs web 2>/dev/null)" "started" "logs stdout"
assert_eq "$(d logs web 2>&1 >/dev/null)" "err" "logs stderr"
assert_eq "$(d exec web echo inside)" "inside" "exec"
assert_exit 4 d exec web sh -c 'exit 4'
assert_eq "$(d exec web hostname)" "${id:0:12}" "hostname is the short ID"
assert_eq "$(d inspect -f '{{.State.Running}} {{.Name}}' web)" "true /web" "inspect"
assert_contains "$(d top web)" "sleep 300" "top"
start=$(date +%s)
d stop -t 1 web >/dev/null
[ $(( $(date +%s) - start )) -le 5 ] || fail "stop -t 1 took too long"
assert_eq "$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' web)" "exited 137" "stop kills after the timeout"
assert_exit 1 d rm "$IMG" 2>/dev/null
d start web >/dev/null
assert_eq "$(d inspect -f '{{.State.Status}}' web)" "running" "restart of a stopped container"
d kill web >/dev/null
assert_eq "$(d wait web)" "137" "wait returns the exit code"
d rm web >/dev/null
assert_exit 1 d inspect web

step "resource limits"
assert_exit 137 d run --rm --memory 32m "$IMG" sh -c 'dd if=/dev/zero bs=64M count=1 of=/dev/null'
d run --name oom --memory 32m "$IMG" sh -c 'dd if=/dev/zero bs=64M count=1 of=/dev/null' || true
assert_eq "$(d inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' oom)" "true 137" "OOMKilled reported"
d rm oom >/dev/null
bomb=$(d run -d --pids-limit 32 "$IMG" sh -c '(for i in $(seq 100); do sleep 30 & done) 2>/dev/null; exec sleep 30')
sleep 2
pids=$(cat "/sys/fs/cgroup/pids/machine-engine/$bomb/pids.current" 2>/dev/null ||
       cat "/sys/fs/cgroup/machine-engine/$bomb/pids.current")
[ "$pids" -le 32 ] && [ "$pids" -ge 20 ] || fail "pids limit not enforced: $pids processes"
assert__ok "fork loop held at $pids processes by --pids-limit 32"
d rm -f "$bomb" >/dev/null

step "interactive run -it and exec -it (tmux)"
tmux kill-server 2>/dev/null || true
tmux new-session -d -s it -x 100 -y 30 "DOCKER_HOST=$DOCKER_HOST $DOCKER run -it --rm $IMG sh; echo EXIT=\$? > $T/it-exit; sleep 30"
for _ in $(seq 50); do tmux capture-pane -p -t it | grep -q '#' && break; sleep 0.2; done
tmux send-keys -t it 'test -t 0 && echo IS-A-$((6 * 7)); stty size; exit 6' Enter
for _ in $(seq 50); do [ -s "$T/it-exit" ] && break; sleep 0.2; done
screen=$(tmux capture-pane -p -t it)
tmux kill-server 2>/dev/null || true
assert_contains "$screen" "IS-A-42" "run -it has a TTY"
assert_contains "$screen" "30 100" "run -it has the terminal's size"
assert_eq "$(cat "$T/it-exit" 2>/dev/null)" "EXIT=6" "run -it exit status"

step "logs -f follows, exec -it has a TTY"
d run -d --name ticker "$IMG" sh -c 'for i in 1 2 3; do echo tick$i; sleep 1; done' >/dev/null
assert_eq "$(timeout 20 "$DOCKER" logs -f ticker | tr '\n' ' ')" "tick1 tick2 tick3 " "logs -f follows until exit"
d rm ticker >/dev/null
d run -d --name shell "$IMG" sleep 300 >/dev/null
tmux new-session -d -s ex -x 90 -y 20 "DOCKER_HOST=$DOCKER_HOST $DOCKER exec -it shell sh; echo EXIT=\$? > $T/ex-exit; sleep 30"
for _ in $(seq 50); do tmux capture-pane -p -t ex | grep -q '#' && break; sleep 0.2; done
tmux send-keys -t ex 'test -t 0 && echo IS-A-$((6 * 7)); stty size; exit 9' Enter
for _ in $(seq 50); do [ -s "$T/ex-exit" ] && break; sleep 0.2; done
screen=$(tmux capture-pane -p -t ex)
tmux kill-server 2>/dev/null || true
assert_contains "$screen" "IS-A-42" "exec -it has a TTY"
assert_contains "$screen" "20 90" "exec -it has the terminal's size"
assert_eq "$(cat "$T/ex-exit" 2>/dev/null)" "EXIT=9" "exec -it exit status"
d rm -f shell >/dev/null

step "rmi, version, info"
assert_contains "$(d version --format '{{.Server.Version}}')" "." "version"
assert_contains "$(d info --format '{{.OSType}}')" "linux" "info"
d rmi "$REGISTRY_ADDR/test/img-v2s2:v1" >/dev/null
assert_exit 1 d image inspect "$REGISTRY_ADDR/test/img-v2s2:v1"

step "a malicious layer fails the pull and writes nothing outside the data root"
sentinel=/tmp/machine-evil-$$-$RANDOM
images_evil_push "$REGISTRY_ADDR" "$sentinel"
out=$(d pull "$REGISTRY_ADDR/test/evil:v1" 2>&1) && fail "the malicious image was pulled: $out"
[ ! -e "$sentinel" ] || { rm -f "$sentinel"; fail "a layer wrote outside the rootfs"; }
assert__ok "escaping layer refused: $(printf '%s' "$out" | tail -1)"
assert_exit 1 d image inspect "$REGISTRY_ADDR/test/evil:v1"

step "kill -9 of the engine during a 110 MB pull, then a re-pull succeeds"
images_big_push "$REGISTRY_ADDR"
BIG=$REGISTRY_ADDR/bench/big:v1
d pull -q "$BIG" >/dev/null 2>&1 &
pull_pid=$!
for _ in $(seq 100); do [ -n "$(ls -A "$T/root/image/tmp" 2>/dev/null)" ] && break; sleep 0.05; done
kill -9 "$engine_pid"; wait "$engine_pid" 2>/dev/null || true
wait "$pull_pid" 2>/dev/null || true
start_engine
assert_eq "$(ls -A "$T/root/image/tmp" | wc -l)" "0" "temp files of the interrupted pull are collected"
d pull -q "$BIG" >/dev/null || fail "re-pull after the crash"
assert_eq "$(d run --rm "$BIG" wc -c /data/blob | awk '{print $1}')" "110000000" "the re-pulled image is whole"
d rmi "$BIG" >/dev/null

step "engine restart: the truth in ps, nothing leaked"
d run -d --name survivor "$IMG" sleep 300 >/dev/null
survivor_pid=$(d inspect -f '{{.State.Pid}}' survivor)
kill -9 "$engine_pid"; wait "$engine_pid" 2>/dev/null || true
start_engine
# live-restore (the default): re-adopted; the rest is test_engine_liverestore's
assert_contains "$(d ps -a --format '{{.Names}} {{.Status}}')" "survivor Up" "a container of a dead engine runs on"
assert_eq "$(d inspect -f '{{.State.Pid}}' survivor)" "$survivor_pid" "the same process"
d rm -f survivor >/dev/null
grep -q "$T/root/containers" /proc/self/mountinfo && fail "mounts leaked after engine restart"

pass
