# shellcheck shell=bash
# Shared set-up of the route and filter tests: the test re-runs itself in its own network and
# mount namespaces (the engine makes a bridge and NAT rules), starts a loopback registry with the
# test images plus variants made here (other creation times and labels), and an engine.
#     source "$here/lib/routes.sh"
#     routes_setup NAME        # T, IMG, REGISTRY_ADDR, DOCKER_HOST, d(), api()
# Variants of the one-layer base image, pushed as test/flt:old (2020, tier=old),
# test/flt:mid (2021, tier=mid color=blue; also test/other:mid), test/flt:new (2022, tier=new)
# and test/flt:dang (2019, tier=dang).
here=${here:?}
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
d() { "$DOCKER" "$@"; }
# curl on the engine's socket: api METHOD PATH [curl args...]; prints the body, then the status.
api() {
    local m=$1 p=$2
    shift 2
    curl -s --max-time 60 --unix-socket "$engine_dir/engine.sock" -X "$m" -w '\n%{http_code}' "$@" "http://x$p"
}
step() { printf '\n--- %s\n' "$*" >&2; }

routes_variant() { # LAYOUT TAG CREATED LABELS-JSON
    local L=$1 m
    m=$(images_tag_digest "$L" base)
    images_bad_variant "$L" "$m" "$2" ".created = \"$3\" | .config.Labels = $4"
}

routes_cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 40 "$T/e/engine.log" >&2 2>/dev/null || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/exec"
    registry_cleanup 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    rm -rf "$T"
}

routes_setup() { # NAME
    T=$(mktemp -d "/tmp/machine-$1-XXXXXX")
    trap routes_cleanup EXIT
    ip link set lo up
    registry_start "$T/registry"
    images_build
    images_push "$REGISTRY_ADDR"
    IMG=$REGISTRY_ADDR/test/img:v1
    local L=$T/layout sk=(skopeo --insecure-policy copy -q --dest-tls-verify=false)
    cp -a "$IMAGES_CACHE/layout" "$L"
    routes_variant "$L" old 2020-01-01T00:00:00Z '{"tier":"old"}'
    routes_variant "$L" mid 2021-01-01T00:00:00Z '{"tier":"mid","color":"blue"}'
    routes_variant "$L" new 2022-01-01T00:00:00Z '{"tier":"new"}'
    routes_variant "$L" dang 2019-01-01T00:00:00Z '{"tier":"dang"}'
    local t
    for t in old mid new dang; do
        "${sk[@]}" --preserve-digests "oci:$L:$t" "docker://$REGISTRY_ADDR/test/flt:$t"
    done
    "${sk[@]}" --preserve-digests "oci:$L:mid" "docker://$REGISTRY_ADDR/test/other:mid"
    ENGINE_ARGS=(--exec-root "$T/exec")
    engine_start "$T/e"
    export DOCKER_HOST=unix://$T/e/engine.sock
}

# Re-runs the calling test in its own network and mount namespaces (as root).
routes_enter_namespaces() { # "$0" "$@"
    [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (namespaces, cgroups)"; exit 77; }
    if [ -z "${MACHINE_ROUTES_INNER:-}" ]; then
        exec env MACHINE_ROUTES_INNER=1 unshare --net --mount --propagation private bash "$@"
    fi
}
