#!/usr/bin/env bash
# docker save / docker load against machine-engine with the real docker CLI: images move between
# engines with no registry, archives from other tools load (skopeo's docker-archive and
# oci-archive), a 110 MB image streams through (request bodies are not buffered), and damaged or
# hostile archives fail with nothing stored and nothing written outside the data root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-saveload-XXXXXX)
ENGINE_ARGS=()
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 20 "$T"/*/engine.log >&2 2>/dev/null
    engine_stop
    registry_cleanup 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1
engine_start "$T/a"
export DOCKER_HOST=unix://$T/a/engine.sock
d() { "$DOCKER" "$@"; }

step "save: an OCI layout plus docker's manifest.json, readable by other tools"
d pull -q "$IMG" >/dev/null
d pull -q "$REGISTRY_ADDR/test/img-v2s2:v1" >/dev/null
d save -o "$T/two.tar" "$IMG" "$REGISTRY_ADDR/test/img-v2s2:v1" || fail "docker save"
names=$(tar -tf "$T/two.tar")
for f in oci-layout index.json manifest.json; do
    assert_contains "$names" "$f" "save writes $f"
done
assert_eq "$(tar -xOf "$T/two.tar" manifest.json | jq -r '.[].RepoTags[]' | sort | tr '\n' ' ')" \
    "$(printf '%s\n' "$IMG" "$REGISTRY_ADDR/test/img-v2s2:v1" | sort | tr '\n' ' ')" "manifest.json names both tags"
skopeo inspect --raw "docker-archive:$T/two.tar:$IMG" >/dev/null || fail "skopeo cannot read our archive as docker-archive"
assert__ok "skopeo reads the archive (docker-archive)"
d save "$IMG" >"$T/one.tar" || fail "docker save to stdout"
assert_exit 1 d save -o "$T/none.tar" "$REGISTRY_ADDR/test/nope:v1"

step "load into another engine (no registry): tags, ids and contents survive"
id=$(d image inspect -f '{{.Id}}' "$IMG")
tree='find /bin /data /opq /root /tmp /etc/passwd /etc/group | sort | while read -r f; do stat -c "%n %a %h %s" "$f"; done'
tree_a=$(d run --rm "$IMG" sh -c "$tree")
engine_stop
engine_start "$T/b"
export DOCKER_HOST=unix://$T/b/engine.sock
out=$(d load -i "$T/two.tar" 2>&1) || fail "docker load: $out"
assert_contains "$out" "Loaded image: $IMG" "load reports the tag"
assert_contains "$out" "Loaded image: $REGISTRY_ADDR/test/img-v2s2:v1" "load reports the second tag"
assert_eq "$(d image inspect -f '{{.Id}}' "$IMG")" "$id" "the image ID is kept"
assert_eq "$(d run --rm "$IMG" sh -c "$tree")" "$tree_a" "the loaded image's files (whiteouts, opaque dirs, links) are the original's"
d save -o "$T/again.tar" "$IMG" || fail "save of a loaded image"
d rmi "$IMG" "$REGISTRY_ADDR/test/img-v2s2:v1" >/dev/null
out=$(d load <"$T/again.tar" 2>&1) || fail "load from stdin: $out"
assert_contains "$out" "Loaded image: $IMG" "a loaded image saves and loads again"

step "archives from other tools: skopeo docker-archive (legacy layout) and oci-archive (index of two platforms)"
skopeo copy -q --src-tls-verify=false "docker://$REGISTRY_ADDR/test/img:v1" \
    "docker-archive:$T/sk.tar:foreign/zimg:v1" || fail "skopeo docker-archive"
out=$(d load -i "$T/sk.tar" 2>&1) || fail "load of skopeo's docker-archive: $out"
assert_contains "$out" "Loaded image: foreign/zimg:v1" "skopeo's docker-archive loads"
assert_eq "$(d run --rm foreign/zimg:v1 cat /data/b)" "file b" "and runs"
skopeo copy -q --all --src-tls-verify=false "docker://$REGISTRY_ADDR/test/multi:v1" \
    "oci-archive:$T/multi.tar:ocitest/multi:v1" || fail "skopeo oci-archive"
out=$(d load -i "$T/multi.tar" 2>&1) || fail "load of an OCI archive with a platform index: $out"
assert_contains "$out" "Loaded image: ocitest/multi:v1" "an OCI layout (index.json only) loads"
assert_eq "$(d image inspect -f '{{.Architecture}}' ocitest/multi:v1)" "amd64" "the host's platform is picked from the index"

step "a 110 MB image streams through save and load"
images_big_push "$REGISTRY_ADDR"
BIG=$REGISTRY_ADDR/bench/big:v1
d pull -q "$BIG" >/dev/null
d save -o "$T/big.tar" "$BIG"
d rmi "$BIG" >/dev/null
rss_before=$(awk '/^VmHWM/{print $2}' /proc/$engine_pid/status)
d load -q -i "$T/big.tar" >/dev/null || fail "load of the big image"
rss_after=$(awk '/^VmHWM/{print $2}' /proc/$engine_pid/status)
assert_eq "$(d run --rm "$BIG" wc -c /data/blob | awk '{print $1}')" "110000000" "the loaded big image is whole"
[ $((rss_after - rss_before)) -lt 65536 ] || fail "loading 110 MB grew the engine's peak RSS by $((rss_after - rss_before)) KiB: the body is buffered"
assert__ok "the engine's peak RSS grew by $((rss_after - rss_before)) KiB while loading 110 MB"
d rmi "$BIG" >/dev/null
rm -f "$T/big.tar"

step "damaged and hostile archives: clear errors, nothing stored, nothing written outside"
d rmi foreign/zimg:v1 >/dev/null
sentinel=$T/escaped-by-load
python3 - "$T/sk.tar" "$T/bad-diffid.tar" "$T/one.tar" "$T/bad-blob.tar" "$sentinel" <<'PY'
import io, sys, tarfile
src, bad_diffid, one, bad_blob, sentinel = sys.argv[1:]
def copy(src, dst, change):
    with tarfile.open(src) as t, tarfile.open(dst, "w") as o:
        members = t.getmembers()
        layers = [m for m in members if m.isfile() and m.name.endswith(".tar")] or \
                 [m for m in members if m.isfile() and m.name.startswith("blobs/") and m.size > 1024]
        for m in members:
            data = t.extractfile(m).read() if m.isfile() else None
            data = change(m, data, layers, t)
            if data is not None:
                m.size = len(data)
            o.addfile(m, io.BytesIO(data) if data is not None else None)
        evil = tarfile.TarInfo("../../../../../../.." + sentinel)
        evil.size = 4
        o.addfile(evil, io.BytesIO(b"bad\n"))
# legacy layout: the first layer replaced by another valid layer -> DiffID mismatch
copy(src, bad_diffid, lambda m, d, layers, t: t.extractfile(layers[1]).read() if m.name == layers[0].name else d)
# OCI layout: one byte of a blob changed -> it no longer matches its name
def flip(m, d, layers, t):
    if m.name == layers[0].name:
        d = bytearray(d); d[len(d) // 2] ^= 0xff; return bytes(d)
    return d
copy(one, bad_blob, flip)
PY
out=$(d load -i "$T/bad-diffid.tar" 2>&1) && fail "a layer that does not match its DiffID was loaded: $out"
assert_contains "$out" "the config says" "DiffID mismatch reported"
assert_exit 1 d image inspect foreign/zimg:v1
d rmi "$IMG" >/dev/null
out=$(d load -i "$T/bad-blob.tar" 2>&1) && fail "a blob that does not match its digest was loaded: $out"
assert_contains "$out" "does not match its digest" "blob digest mismatch reported"
assert_exit 1 d image inspect "$IMG"
[ ! -e "$sentinel" ] || fail "a ../ entry of a loaded archive was written outside"
assert__ok "../ entries are never written anywhere"
printf 'not a tar at all\n' >"$T/junk"
out=$(d load -i "$T/junk" 2>&1) && fail "junk was loaded"
assert_contains "$out" "not a tar archive" "junk input refused"
# dockerd answers a failed load with a 200 JSON stream whose last message is the error (docker-py
# raises ImageLoadError from it, not from the status)
resp=$(curl -s --max-time 30 -w '\n%{http_code}' --unix-socket "$T/b/engine.sock" \
    -H 'Content-Type: application/x-tar' --data-binary @"$T/junk" 'http://x/v1.41/images/load?quiet=0')
assert_eq "$(tail -n1 <<<"$resp")" "200" "a failed load is a 200 stream, as dockerd"
assert_contains "$(head -n -1 <<<"$resp")" '"errorDetail":{"message":' "the error is the stream's message"
assert_eq "$(ls -A "$T/b/root/image/tmp" | wc -l)" "0" "failed loads leave no temp files"
pass
