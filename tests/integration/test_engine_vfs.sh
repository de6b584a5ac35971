#!/usr/bin/env bash
# Issue 18: the copy-based (vfs) layer store. An engine whose data root is on an overlayfs
# mount (made in this test's own mount namespace) falls back to vfs by itself - docker info
# says "vfs", its log says why - and runs what overlay2 runs: a pull of an image with whiteouts,
# an opaque directory and hard links (the chain applied as plain directories), docker run,
# docker diff, docker commit (the committed image runs with the change), docker build of a
# two-step Dockerfile, docker export, docker cp out of a stopped container, docker save/load,
# and docker rmi freeing the layer directories. The same on a plain data root with
# --storage-driver vfs, and --storage-driver overlay2 on the overlayfs data root refused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "skip: needs root (overlay mounts, containers)"; exit 77; }
# a mount namespace of our own: the overlay data root exists only here
if [ -z "${VFS_TEST_UNSHARED:-}" ]; then
    VFS_TEST_UNSHARED=1 exec unshare -m --propagation private bash "$0" "$@"
fi
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-vfs-XXXXXX)
ENGINE_ARGS=(-b none --exec-root "$T/exec")
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 30 "$engine_dir/engine.log" >&2 2>/dev/null || true
    [ -z "${engine_pid:-}" ] || "$DOCKER" rm -f $("$DOCKER" ps -aq) >/dev/null 2>&1 || true
    engine_stop
    engine_leftovers_clean "$engine_dir/root" "$T/exec" 2>/dev/null || true
    registry_cleanup 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }
d() { "$DOCKER" "$@"; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1

# Everything overlay2 does, on an engine started in DIR (its data root DIR/root).
workload() { # DIR
    local dir=$1 root=$1/root
    export DOCKER_HOST=unix://$dir/engine.sock
    assert_eq "$(d info --format '{{.Driver}}')" vfs "docker info: Storage Driver vfs"

    step "pull: the layer chain as plain directories (whiteouts and the opaque dir applied)"
    d pull -q "$IMG" >/dev/null
    [ -d "$root/image/vfs/sha256" ] && [ -n "$(ls -A "$root/image/vfs/sha256")" ] || fail "no vfs layer directory"
    out=$(d run --rm "$IMG" sh -c 'ls /data; echo --; ls /opq; echo --; cat /data/a-hardlink')
    assert_eq "$out" "a
a-hardlink
a-symlink
b
dangling
hostname-link
pair1
pair2
--
new.txt
--
file a" "the image's files as overlay2 shows them (deleted and hidden files gone)"
    [ -z "$(find "$root/image/vfs/sha256" -type c 2>/dev/null)" ] || fail "a layer holds overlay whiteouts"
    [ -z "$(find "$root/image/vfs/sha256" -name '.wh.*' 2>/dev/null)" ] || fail "a layer kept a .wh. marker"

    step "docker exec and docker cp into a running container"
    run=$(d run -d "$IMG" sleep 600)
    echo copied-in >"$T/in.txt"
    d cp "$T/in.txt" "$run:/data/in.txt"
    assert_eq "$(d exec "$run" sh -c 'cat /data/in.txt; cat /data/b')" "copied-in
file b" "exec sees the copied file and the image's"
    d rm -f "$run" >/dev/null

    step "docker diff of a container's copy against its image"
    cid=$(d create "$IMG" sh -c 'echo new >/data/new.txt && rm /data/b && mkdir -p /newdir/sub && rm -r /opq')
    assert_eq "$(d diff "$cid")" "" "a container that never ran changed nothing"
    d start -a "$cid" >/dev/null
    assert_eq "$(d diff "$cid")" "C /data
D /data/b
A /data/new.txt
A /newdir
A /newdir/sub
D /opq" "docker diff lists A/C/D (mount targets left out)"
    assert_eq "$(d inspect -f '{{.GraphDriver.Name}} {{.GraphDriver.Data}}' "$cid")" "vfs map[]" "container inspect: GraphDriver vfs"
    assert_eq "$(d image inspect -f '{{.GraphDriver.Name}}' "$IMG")" vfs "image inspect: GraphDriver vfs"
    [ -d "$root/containers/$cid/upper/bin" ] || fail "the container's rootfs is not a directory of its own"

    step "docker cp out of the stopped container, docker export"
    d cp "$cid:/data/new.txt" "$T/cp.txt"
    assert_eq "$(cat "$T/cp.txt")" new "docker cp reads the stopped container's file"
    d export "$cid" >"$T/export.tar"
    tar -tf "$T/export.tar" >"$T/export.list" # not piped into grep -q: tar's SIGPIPE fails pipefail
    grep -qx 'data/new.txt' "$T/export.list" || fail "export lacks data/new.txt"
    ! grep -qx 'data/b' "$T/export.list" || fail "export has the deleted data/b"

    step "docker commit: the image runs with the change"
    d commit "$cid" test/vfs:committed >/dev/null
    out=$(d run --rm test/vfs:committed sh -c 'cat /data/new.txt; test -e /data/b || echo no-b; test -e /opq || echo no-opq; ls -d /newdir/sub')
    assert_eq "$out" "new
no-b
no-opq
/newdir/sub" "the committed image has the container's changes"

    step "docker build of a two-step Dockerfile"
    mkdir -p "$dir/ctx"
    echo "from the context" >"$dir/ctx/ctx.txt"
    printf 'FROM %s\nRUN echo built >/built.txt && rm /data/a-symlink\nCOPY ctx.txt /ctx.txt\n' "$IMG" >"$dir/ctx/Dockerfile"
    out=$(DOCKER_BUILDKIT=0 d build -t test/vfs:built "$dir/ctx" 2>&1) || fail "docker build: $out"
    out=$(d run --rm test/vfs:built sh -c 'cat /built.txt /ctx.txt; test -e /data/a-symlink || echo no-link')
    assert_eq "$out" "built
from the context
no-link" "the built image has both steps' results"

    step "docker save / load of the committed image"
    d save -o "$T/saved.tar" test/vfs:committed
    d rmi test/vfs:committed >/dev/null
    d load -i "$T/saved.tar" >/dev/null
    assert_eq "$(d run --rm test/vfs:committed cat /data/new.txt)" new "the loaded image runs"

    step "docker rmi frees the layer directories"
    d rm -f $(d ps -aq) >/dev/null
    d rmi test/vfs:committed test/vfs:built "$IMG" >/dev/null
    left=$(d images -aq)
    [ -z "$left" ] || d rmi $left >/dev/null # the build's step images
    assert_eq "$(d images -aq | wc -l)" 0 "no image left"
    assert_eq "$(find "$root/image/vfs/sha256" -mindepth 1 -maxdepth 1 | wc -l)" 0 "no layer directory left"
    unset DOCKER_HOST
}

step "a data root on overlayfs: vfs by itself"
mkdir -p "$T/ovl/lower" "$T/ovl/upper" "$T/ovl/work" "$T/ovl/merged"
mount -t overlay overlay -o "lowerdir=$T/ovl/lower,upperdir=$T/ovl/upper,workdir=$T/ovl/work" "$T/ovl/merged"
engine_start "$T/ovl/merged/e"
assert_contains "$(cat "$T/ovl/merged/e/engine.log")" "storage driver vfs: the data root" "the engine log says why vfs"
workload "$T/ovl/merged/e"
engine_stop
engine_leftovers_clean "$T/ovl/merged/e/root" "$T/exec" 2>/dev/null || true

step "--storage-driver overlay2 on the overlayfs data root is refused"
ENGINE_ARGS=(-b none --exec-root "$T/exec2" --storage-driver overlay2)
rc=0
timeout 30 "$ENGINE" -H "unix://$T/ovl/merged/o2.sock" --data-root "$T/ovl/merged/o2" \
    --pidfile "$T/o2.pid" "${ENGINE_ARGS[@]}" >"$T/o2.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the engine started with overlay2 on overlayfs"
assert_contains "$(cat "$T/o2.log")" "cannot hold overlay layers" "… naming why"

step "--storage-driver vfs on a plain data root"
ENGINE_ARGS=(-b none --exec-root "$T/exec" --storage-driver vfs)
engine_start "$T/plain"
assert_contains "$(cat "$T/plain/engine.log")" "storage driver vfs (--storage-driver)" "the engine log names the option"
workload "$T/plain"
[ ! -e "$T/plain/root/image/layers/sha256" ] || [ -z "$(ls -A "$T/plain/root/image/layers/sha256")" ] ||
    fail "a vfs engine wrote overlay layers"
pass
