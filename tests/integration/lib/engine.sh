#!/usr/bin/env bash
# Runs machine-engine for a test on a private socket and data root under a directory.
#     . "$here/lib/engine.sh"
#     engine_start DIR         # DIR/engine.sock, DIR/root, DIR/engine.log; sets engine_pid
#     engine_kill9             # crash it (the next engine_start restarts on the same state)
#     engine_stop              # SIGTERM and wait (bounded)
# Extra daemon flags: ENGINE_ARGS=(...) before engine_start.
ENGINE=${MACHINE_BUILD:?MACHINE_BUILD is not set}/engine/machine-engine
engine_pid=
engine_dir=

engine_start() { # DIR
    engine_dir=$1
    [ -x "$ENGINE" ] || { echo "FAIL: no engine binary at $ENGINE" >&2; return 1; }
    mkdir -p "$engine_dir"
    rm -f "$engine_dir/engine.sock" # a killed engine leaves its socket behind
    "$ENGINE" -H "unix://$engine_dir/engine.sock" --data-root "$engine_dir/root" \
        --pidfile "$engine_dir/engine.pid" --log-level debug "${ENGINE_ARGS[@]}" \
        >>"$engine_dir/engine.log" 2>&1 &
    engine_pid=$!
    local _
    for _ in $(seq 100); do
        [ -S "$engine_dir/engine.sock" ] &&
            curl -sf --max-time 2 --unix-socket "$engine_dir/engine.sock" http://x/_ping >/dev/null && return 0
        kill -0 "$engine_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$engine_dir/engine.log" >&2
    echo "FAIL: the engine did not start" >&2
    return 1
}

engine_kill9() {
    [ -n "$engine_pid" ] || return 0
    kill -9 "$engine_pid" 2>/dev/null || true
    wait "$engine_pid" 2>/dev/null || true
    engine_pid=
}

engine_stop() {
    [ -n "$engine_pid" ] || return 0
    kill -TERM "$engine_pid" 2>/dev/null || true
    local _
    for _ in $(seq 100); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$engine_pid" 2>/dev/null || true
    wait "$engine_pid" 2>/dev/null || true
    engine_pid=
}

# After a failed run: kill the containers an engine left (through their cgroups, ours only) and
# undo their rootfs and network namespace mounts.
engine_leftovers_clean() { # DATA_ROOT EXEC_ROOT
    local dir cg
    for dir in "$1"/containers/*/; do
        [ -d "$dir" ] || continue
        for cg in /sys/fs/cgroup/pids/machine-engine /sys/fs/cgroup/machine-engine; do
            [ -f "$cg/$(basename "$dir")/cgroup.procs" ] && xargs -r kill -9 <"$cg/$(basename "$dir")/cgroup.procs" 2>/dev/null
        done
    done
    umount -R "$1"/containers/*/rootfs 2>/dev/null || true
    local f
    for f in "$2"/netns/*; do [ -e "$f" ] && umount "$f" 2>/dev/null; done
    return 0
}
