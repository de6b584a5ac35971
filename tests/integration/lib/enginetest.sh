# shellcheck shell=bash
# enginetest.sh - the set-up every engine integration test shares: its own network and mount
# namespaces, a scratch directory, a loopback registry holding the test image, one engine, the
# docker CLI pointed at it, and a cleanup that leaves nothing behind.
#
#   enginetest_netns TAG        re-run the calling script in new network and mount namespaces
#                               (once; TAG names the guard variable); brings lo up
#   enginetest_setup TAG        T (scratch dir), DOCKER, step(), d(); the EXIT trap; a registry
#                               with the test image pushed (IMG=BASE=its reference)
#   enginetest_on_exit CMD      more cleanup, run before the engine is stopped
#   enginetest_engine [ARGS]    engine_start "$T/e" with ENGINE_ARGS plus ARGS and its own exec
#                               root; DOCKER_HOST set
#
# Sources assert.sh, registry.sh, images.sh and engine.sh. Needs root (skips with 77 otherwise).

enginetest__here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

enginetest_netns() {
    local var="MACHINE_${1^^}_INNER"
    [ "$(id -u)" -eq 0 ] || { echo "skip: needs root (namespaces, cgroups, mounts)"; exit 77; }
    if [ -z "${!var:-}" ]; then
        exec env "$var=1" unshare --net --mount --propagation private bash "$0" "$@"
    fi
    ip link set lo up
}

ENGINETEST_EXIT_HOOKS=()
enginetest_on_exit() { ENGINETEST_EXIT_HOOKS+=("$1"); }

enginetest__cleanup() {
    local rc=$? h
    [ "$rc" = 0 ] || tail -n 30 "$T"/e/engine.log >&2 2>/dev/null || true
    for h in "${ENGINETEST_EXIT_HOOKS[@]}"; do eval "$h" || true; done
    [ -z "${engine_pid:-}" ] || "$DOCKER" rm -f $("$DOCKER" ps -aq) >/dev/null 2>&1 || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/e/exec" 2>/dev/null || true
    registry_cleanup 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}

enginetest_setup() {
    [ "$(id -u)" -eq 0 ] || { echo "skip: needs root (the engine runs containers)"; exit 77; }
    source "$enginetest__here/assert.sh"
    source "$enginetest__here/registry.sh"
    source "$enginetest__here/images.sh"
    source "$enginetest__here/engine.sh"
    DOCKER=/usr/local/bin/docker
    T=$(mktemp -d "/tmp/machine-$1-XXXXXX")
    ENGINE_ARGS=(${ENGINE_ARGS[@]+"${ENGINE_ARGS[@]}"})
    trap enginetest__cleanup EXIT
    registry_start "$T/registry"
    images_build
    images_push "$REGISTRY_ADDR"
    IMG=$REGISTRY_ADDR/test/img:v1
    BASE=$IMG
}

step() { printf '\n--- %s\n' "$*" >&2; }
d() { "$DOCKER" "$@"; }

enginetest_engine() {
    ENGINE_ARGS=(${ENGINE_ARGS[@]+"${ENGINE_ARGS[@]}"} --exec-root "$T/e/exec" "$@")
    engine_start "$T/e"
    export DOCKER_HOST=unix://$T/e/engine.sock
}
