#!/usr/bin/env bash
# The self-contained engine bundle (target engine-bundle, scripts/make-bundle) runs on a host
# with none of the engine's libraries: it is unpacked into an EMPTY chroot whose only other
# file is a static busybox (for the wrapper's /bin/sh), where --version and --help work, the
# daemon serves the API, pulls from a loopback registry and runs a container. Also: every
# file is in SHA256SUMS, the tarball is reproducible and small, and the bundled ELF is a
# stripped non-sanitizer build. Needs root (chroot, mounts in a private namespace).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (chroot and mounts)"
    exit 77
fi
SRC=${MACHINE_SRC:?}
BUILD=${MACHINE_BUILD:?}
BUNDLE=$BUILD/machine-engine-bundle.tar.gz
BUSYBOX=/bin/busybox
DOCKER=/usr/local/bin/docker
MAX_BUNDLE_BYTES=$((12 * 1024 * 1024))
for t in chroot unshare sha256sum readelf curl; do
    command -v "$t" >/dev/null || fail "'$t' is missing (scripts/install-deps)"
done
[ -x "$DOCKER" ] || fail "no docker CLI at $DOCKER"
# The wrapper needs a shell, and the chroot must hold no libc: only a static busybox will do.
if [ ! -x "$BUSYBOX" ] || readelf -d "$BUSYBOX" 2>/dev/null | grep -q NEEDED; then
    fail "$BUSYBOX is missing or not static (busybox-static, scripts/install-deps)"
fi

T=$(mktemp -d /tmp/test_engine_bundle.XXXXXX)
R=$T/root
ns_pid=
cleanup() {
    set +e
    # The engine is PID 1 of its namespace: killing unshare's child (--kill-child) ends it,
    # its containers and its mounts.
    if [ -n "$ns_pid" ]; then
        kill -TERM "$ns_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$ns_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ns_pid" 2>/dev/null
        wait "$ns_pid" 2>/dev/null
    fi
    registry_cleanup 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

# --- the bundle: built (or found up to date) by the target; reproducible
cmake --build "$BUILD" --target engine-bundle >"$T/build.log" 2>&1 ||
    { cat "$T/build.log"; fail "cmake --build --target engine-bundle"; }
assert_exit 0 test -s "$BUNDLE"
size=$(stat -c %s "$BUNDLE")
echo "bundle: $BUNDLE, $size bytes"
[ "$size" -lt "$MAX_BUNDLE_BYTES" ] ||
    fail "the bundle is $size bytes, over $MAX_BUNDLE_BYTES: did a library drag in a large dependency?"
assert__ok "the bundle is under $((MAX_BUNDLE_BYTES / 1024 / 1024)) MiB"

"$SRC/scripts/make-bundle" "$SRC" "$BUILD/bundle-build" "$T/a.tar.gz" >/dev/null
"$SRC/scripts/make-bundle" "$SRC" "$BUILD/bundle-build" "$T/b.tar.gz" >/dev/null
assert_exit 0 cmp -s "$T/a.tar.gz" "$T/b.tar.gz"
assert_eq "$(od -An -tx1 -j4 -N4 "$BUNDLE" | tr -d ' ')" "00000000" "gzip header carries no mtime (gzip -n)"
listing=$(tar -tzvf "$BUNDLE")
assert_eq "$(awk '$2 != "0/0"' <<<"$listing")" "" "every entry is owned by 0:0"
assert_eq "$(awk '$4 != "1970-01-01"' <<<"$listing")" "" "every entry has the fixed mtime"
names=$(tar -tzf "$BUNDLE")
assert_eq "$names" "$(LC_ALL=C sort <<<"$names")" "entries are in sorted order"

# --- layout, checksums, the bundled ELF
mkdir -p "$R/bin"
tar -xzf "$BUNDLE" -C "$R"
E=$R/machine-engine
for f in bin/machine-engine libexec/machine-engine lib/ld-linux-x86-64.so.2 lib/libc.so.6 \
    lib/libcurl.so.4 lib/libjansson.so.4 VERSION SHA256SUMS; do
    [ -f "$E/$f" ] || fail "the bundle has no machine-engine/$f"
done
assert__ok "layout: bin/ wrapper, libexec/ ELF, lib/ with the loader, VERSION, SHA256SUMS"
assert_exit 0 sh -c "cd '$E' && sha256sum -c --quiet SHA256SUMS"
assert_eq "$(cd "$E" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort)" \
    "$(awk '{print $2}' "$E/SHA256SUMS")" "SHA256SUMS lists every file"
cp "$E/VERSION" "$T/VERSION.orig"
echo tampered >>"$E/VERSION"
assert_exit 1 sh -c "cd '$E' && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1"
cp "$T/VERSION.orig" "$E/VERSION"
grep -q MACHINE_ENGINE_API_IDLE_TIMEOUT_MS "$E/libexec/machine-engine" ||
    fail "the check below looks for strings in the wrong file"
grep -q MACHINE_ENGINE_TEST_ "$E/libexec/machine-engine" &&
    fail "the Release engine still reads a test-only variable (MACHINE_ENGINE_TEST_*)"
assert__ok "no test-only hook in the Release engine (MACHINE_ENGINE_TEST_* compiled out)"
dyn=$(readelf -d "$E/libexec/machine-engine")
assert_eq "$(grep -c 'libasan\|libubsan' <<<"$dyn" || true)" "0" "the bundled engine is not a sanitizer build"
assert_eq "$(readelf -S "$E/libexec/machine-engine" | grep -c '\.symtab' || true)" "0" \
    "the bundled engine is stripped"
# Every library the engine and its libraries need is in lib/ (no host fallback needed).
for f in "$E"/libexec/machine-engine "$E"/lib/*.so*; do
    readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
done | sort -u >"$T/needed"
while read -r lib; do
    [ -f "$E/lib/$lib" ] || fail "'$lib' is needed but not in the bundle"
done <"$T/needed"
assert__ok "every NEEDED library ($(wc -l <"$T/needed")) is in lib/"

# --- the empty chroot: busybox is its only file outside the bundle
cp "$BUSYBOX" "$R/bin/busybox"
chroot "$R" /bin/busybox --install -s /bin
assert_eq "$(find "$R" -path "$E/lib" -prune -o \( -name '*.so' -o -name '*.so.*' \) -print)" "" \
    "no shared object outside machine-engine/lib"
assert_eq "$(find "$R" -path "$E/lib" -prune -o \( -name 'libcurl*' -o -name 'libarchive*' \
    -o -name 'libjansson*' -o -name 'ld-linux*' \) -print)" "" \
    "no libcurl, libarchive, libjansson or loader outside machine-engine/lib"
# Control: the raw ELF cannot start here (no /lib64/ld-linux-x86-64.so.2), so what follows
# works only through the bundle's loader.
assert_exit 127 chroot "$R" /machine-engine/libexec/machine-engine --version 2>/dev/null

version=$(cat "$E/VERSION")
out=$(chroot "$R" /machine-engine/bin/machine-engine --version)
assert_contains "$out" "machine-engine version $version, build " "--version in the chroot"
assert_eq "$(sed -n 's/^machine-engine version \([^,]*\),.*/\1/p' <<<"$("$BUILD/engine/machine-engine" --version)")" \
    "$version" "VERSION matches the engine built from this tree"
out=$(chroot "$R" /machine-engine/bin/machine-engine --help)
assert_contains "$out" "Usage: machine-engine" "--help in the chroot"
ln -s /machine-engine/bin/machine-engine "$R/bin/machine-engine"
assert_contains "$(chroot "$R" /bin/machine-engine --version)" "$version" "the wrapper works through a symlink"

# --- the daemon from the chroot: API, pull from a loopback registry, a container
registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
mkdir -p "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/data" "$R/tmp"
# A private mount namespace (unshare's default propagation) and PID namespace: /proc, /sys
# (cgroups) and /dev exist only for the engine, and vanish with it. The root is made a mount
# point, as on a real host (the runtime makes / a slave mount).
# shellcheck disable=SC2016 # $1 is the inner shell's
unshare --mount --pid --fork --kill-child=SIGTERM sh -c '
    R=$1
    mount --bind "$R" "$R" && mount -t proc proc "$R/proc" && mount --rbind /sys "$R/sys" &&
    mount --rbind /dev "$R/dev" &&
    exec chroot "$R" /machine-engine/bin/machine-engine -H unix:///run/engine.sock \
        --data-root /data --pidfile /run/engine.pid --bridge none' sh "$R" >"$T/engine.log" 2>&1 &
ns_pid=$!
SOCK=$R/run/engine.sock
for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && curl -sf --max-time 2 --unix-socket "$SOCK" http://x/_ping >/dev/null && break
    kill -0 "$ns_pid" 2>/dev/null || break
    sleep 0.1
done
curl -sf --max-time 2 --unix-socket "$SOCK" http://x/_ping >/dev/null ||
    { cat "$T/engine.log"; fail "the bundled engine did not start in the chroot"; }
assert__ok "the bundled engine serves /_ping from the chroot"
assert_contains "$(curl -sf --max-time 5 --unix-socket "$SOCK" http://x/version)" "\"Version\":\"$version\"" \
    "GET /version"
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$T/docker-config
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY
IMG=$REGISTRY_ADDR/test/img:v1
timeout 120 "$DOCKER" pull -q "$IMG" >/dev/null 2>"$T/pull.err" ||
    { cat "$T/pull.err" "$T/engine.log"; fail "pull through the bundled engine"; }
assert__ok "pull (libcurl, libarchive, zlib) through the bundled engine"
timeout 120 "$DOCKER" pull -q "$REGISTRY_ADDR/test/img-zstd:v1" >/dev/null ||
    fail "pull of zstd layers through the bundled engine"
assert__ok "pull of zstd layers (libzstd)"
assert_eq "$(timeout 60 "$DOCKER" run --rm "$IMG" echo hi 2>&1)" "hi" \
    "a container runs under the bundled engine (seccomp, capabilities, cgroups)"
assert_exit 3 timeout 60 "$DOCKER" run --rm "$IMG" sh -c 'exit 3'
assert_eq "$(timeout 60 "$DOCKER" run --rm --init "$IMG" ps -o pid,comm | awk '$1 == 1 {print $2}')" \
    "docker-init" "--init finds the bundled machine-init (libexec/, beside the engine)"

pass
