#!/usr/bin/env bash
# Issue 18: an engine whose data root cannot hold overlay layers (it is itself on an overlay
# mount, as on a host that is a container) says so at start - in its log and in docker info's
# warnings - instead of failing at the first pull with "cannot create whiteout". An engine on
# a plain filesystem has no such warning.
# That engine then uses the vfs store (test_engine_vfs.sh runs images on it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/engine.sh"

[ "$(id -u)" = 0 ] || { echo "skip: needs root (overlay mounts)"; exit 77; }
DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-dataroot-XXXXXX)
ENGINE_ARGS=(-b none --exec-root "$T/exec")
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 20 "$T"/ovl/merged/e/engine.log >&2 2>/dev/null || true
    engine_stop
    umount "$T/ovl/merged" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/ovl/lower" "$T/ovl/upper" "$T/ovl/work" "$T/ovl/merged"
mount -t overlay overlay -o "lowerdir=$T/ovl/lower,upperdir=$T/ovl/upper,workdir=$T/ovl/work" "$T/ovl/merged"

engine_start "$T/ovl/merged/e"
warnings=$(DOCKER_HOST=unix://$T/ovl/merged/e/engine.sock "$DOCKER" info --format '{{json .Warnings}}')
assert_contains "$warnings" "cannot hold overlay layers" "docker info warns about an overlay data root"
assert_contains "$warnings" "whiteout" "… naming what failed"
assert_contains "$warnings" "vfs storage driver" "… and the driver used instead"
assert_contains "$(cat "$T/ovl/merged/e/engine.log")" "cannot hold overlay layers" "the engine log says so at start"
assert_eq "$(find "$T/ovl/merged/e/root" -maxdepth 1 -name '.overlay-probe-*' | wc -l)" 0 "the probe leaves nothing behind"
engine_stop

engine_start "$T/plain"
warnings=$(DOCKER_HOST=unix://$T/plain/engine.sock "$DOCKER" info --format '{{json .Warnings}}')
case "$warnings" in *"overlay layers"*) fail "a plain data root got the overlay warning: $warnings" ;; esac
assert__ok "a data root on $(findmnt -n -o FSTYPE -T "$T") has no overlay warning"
