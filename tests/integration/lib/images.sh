#!/usr/bin/env bash
# Test images built OFFLINE with umoci (OCI layouts) and pushed with skopeo to a
# loopback registry (lib/registry.sh). The base filesystem is busybox-static.
# Built layouts are cached under ${MACHINE_TEST_CACHE:-/var/cache/machine-tests}.
#
# Sourced:
#     . "$MACHINE_SRC/tests/integration/lib/images.sh"
#     images_build                 # sets IMAGES_LAYOUT (cached OCI layout)
#     images_push 127.0.0.1:PORT   # pushes the set below
# As a command:  images.sh build | images.sh push ADDR
#
# Layout tags and what gets pushed (repository:tag on the registry):
#   base   one layer: busybox + applet symlinks, /etc/{passwd,group,hostname},
#          /data/{a, hardlink to a, symlink to a, deleteme, old/x}, /opq/old.txt
#   v1     base + layer 2 (deletes /data/deleteme and /data/old: whiteouts; adds
#          /data/b, a hardlink pair, a dangling and a relative symlink)
#          + layer 3 (raw tar: /opq made opaque with .wh..wh..opq, /opq/new.txt)
#   multi  OCI index: v1 (linux/amd64), the same layers with an arm64 config
#          (linux/arm64/v8), and an attestation manifest (unknown/unknown)
#     test/img:v1        OCI manifest (gzip layers)
#     test/img-v2s2:v1   Docker schema2 (skopeo --format v2s2)
#     test/img-zstd:v1   OCI manifest with zstd layers
#     test/multi:v1      the index (skopeo copy --all)
#     test/bad:diffid    config names a wrong DiffID for layer 1
#     test/bad:count     config lists 2 DiffIDs for 3 layers

IMAGES_VERSION=5 # bump when the images change: the cache key
IMAGES_CACHE=${MACHINE_TEST_CACHE:-/var/cache/machine-tests}/images-v$IMAGES_VERSION

images_need() {
    local t
    for t in umoci skopeo jq busybox tar sha256sum; do
        command -v "$t" >/dev/null || { echo "images.sh: '$t' not installed" >&2; return 1; }
    done
}

images_busybox_root() { # DIR: a minimal busybox filesystem
    local root=$1 bb
    bb=$(command -v busybox)
    mkdir -p "$root"/{bin,etc,tmp,data/old,opq,root}
    cp "$bb" "$root/bin/busybox"
    local applet
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    echo machine-test >"$root/etc/hostname"
    echo "file a" >"$root/data/a"
    ln "$root/data/a" "$root/data/a-hardlink"
    ln -s a "$root/data/a-symlink"
    echo "to be deleted" >"$root/data/deleteme"
    echo "old dir content" >"$root/data/old/x"
    echo "hidden by the opaque dir" >"$root/opq/old.txt"
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
}

# Writes a blob into the layout from stdin; prints its digest.
images_put_blob() { # LAYOUT
    local tmp hex
    tmp=$(mktemp "$1/blobs/sha256/.tmp.XXXXXX")
    cat >"$tmp"
    hex=$(sha256sum "$tmp" | cut -c1-64)
    mv "$tmp" "$1/blobs/sha256/$hex"
    echo "sha256:$hex"
}

images_blob() { # LAYOUT DIGEST
    cat "$1/blobs/sha256/${2#sha256:}"
}

images_tag_digest() { # LAYOUT TAG
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}

# Tags a copy of manifest M whose config went through the jq filter.
images_bad_variant() { # LAYOUT MANIFEST TAG JQ-FILTER
    local L=$1 m=$2 tag=$3 filter=$4 cfg newcfg size man msize
    cfg=$(images_blob "$L" "$m" | jq -r .config.digest)
    newcfg=$(images_blob "$L" "$cfg" | jq -c "$filter" | images_put_blob "$L")
    size=$(images_blob "$L" "$newcfg" | wc -c)
    man=$(images_blob "$L" "$m" | jq -c --arg d "$newcfg" --argjson s "$size" \
        '.config.digest = $d | .config.size = $s | del(.annotations)' | images_put_blob "$L")
    msize=$(images_blob "$L" "$man" | wc -c)
    jq -c --arg d "$man" --argjson s "$msize" --arg t "$tag" \
        '.manifests += [{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$d, size:$s,
                         annotations:{"org.opencontainers.image.ref.name":$t}}]' \
        "$L/index.json" >"$L/index.json.new"
    mv "$L/index.json.new" "$L/index.json"
}

images_build_layout() { # LAYOUT WORKDIR
    local L=$1 W=$2
    umoci init --layout "$L"
    umoci new --image "$L:base"
    umoci config --image "$L:base" --os linux --architecture amd64 \
        --config.cmd /bin/sh --config.env PATH=/bin --config.workingdir / \
        --config.label org.machine.test=1 --author machine-tests
    umoci unpack --image "$L:base" "$W/b1" >/dev/null
    images_busybox_root "$W/b1/rootfs"
    umoci repack --image "$L:base" "$W/b1"
    rm -rf "$W/b1"

    umoci unpack --image "$L:base" "$W/b2" >/dev/null
    local r=$W/b2/rootfs
    rm "$r/data/deleteme"
    rm -r "$r/data/old"
    echo "file b" >"$r/data/b"
    echo "pair" >"$r/data/pair1"
    ln "$r/data/pair1" "$r/data/pair2"
    ln -s /nonexistent "$r/data/dangling"
    ln -s ../etc/hostname "$r/data/hostname-link"
    umoci repack --image "$L:v1" "$W/b2"
    rm -rf "$W/b2"

    # Layer 3 by hand: umoci never writes opaque markers itself.
    mkdir -p "$W/l3/opq"
    echo "new in opaque dir" >"$W/l3/opq/new.txt"
    : >"$W/l3/opq/.wh..wh..opq"
    tar -C "$W/l3" --owner=0 --group=0 --numeric-owner --sort=name -cf "$W/l3.tar" opq
    umoci raw add-layer --image "$L:v1" "$W/l3.tar"
    rm -rf "$W/l3" "$W/l3.tar"
    umoci gc --layout "$L"

    # The multi-platform index.
    local m1 m1_size cfg cfg_arm cfg_arm_size man_arm man_arm_size att_cfg att_layer att att_size idx
    m1=$(images_tag_digest "$L" v1)
    m1_size=$(images_blob "$L" "$m1" | wc -c)
    cfg=$(images_blob "$L" "$m1" | jq -r .config.digest)
    cfg_arm=$(images_blob "$L" "$cfg" | jq -c '.architecture = "arm64" | .variant = "v8"' | images_put_blob "$L")
    cfg_arm_size=$(images_blob "$L" "$cfg_arm" | wc -c)
    man_arm=$(images_blob "$L" "$m1" | jq -c --arg d "$cfg_arm" --argjson s "$cfg_arm_size" \
        '.config.digest = $d | .config.size = $s | del(.annotations)' | images_put_blob "$L")
    man_arm_size=$(images_blob "$L" "$man_arm" | wc -c)
    att_cfg=$(printf '{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' | images_put_blob "$L")
    att_layer=$(printf '{"_type":"https://in-toto.io/Statement/v0.1","subject":[]}' | images_put_blob "$L")
    att=$(jq -cn --arg c "$att_cfg" --argjson cs "$(images_blob "$L" "$att_cfg" | wc -c)" \
        --arg l "$att_layer" --argjson ls "$(images_blob "$L" "$att_layer" | wc -c)" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
          layers:[{mediaType:"application/vnd.in-toto+json", digest:$l, size:$ls,
                   annotations:{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v0.2"}}]}' |
        images_put_blob "$L")
    att_size=$(images_blob "$L" "$att" | wc -c)
    idx=$(jq -cn --arg att "$att" --argjson atts "$att_size" --arg m1 "$m1" --argjson m1s "$m1_size" \
        --arg ma "$man_arm" --argjson mas "$man_arm_size" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json", manifests:[
           {mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$att, size:$atts,
            platform:{architecture:"unknown", os:"unknown"},
            annotations:{"vnd.docker.reference.digest":$m1, "vnd.docker.reference.type":"attestation-manifest"}},
           {mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$m1, size:$m1s,
            platform:{architecture:"amd64", os:"linux"}},
           {mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$ma, size:$mas,
            platform:{architecture:"arm64", os:"linux", variant:"v8"}}]}' | images_put_blob "$L")
    local idx_size
    idx_size=$(images_blob "$L" "$idx" | wc -c)
    jq -c --arg d "$idx" --argjson s "$idx_size" \
        '.manifests += [{mediaType:"application/vnd.oci.image.index.v1+json", digest:$d, size:$s,
                         annotations:{"org.opencontainers.image.ref.name":"multi"}}]' \
        "$L/index.json" >"$L/index.json.new"
    mv "$L/index.json.new" "$L/index.json"

    # Broken on purpose (case 10): a config whose diff_ids name another layer, and
    # one that lists fewer diff_ids than the manifest has layers.
    images_bad_variant "$L" "$m1" bad-diffid \
        '.rootfs.diff_ids[1] = "sha256:0000000000000000000000000000000000000000000000000000000000000000"'
    images_bad_variant "$L" "$m1" bad-count 'del(.rootfs.diff_ids[2])'

    # The same image with zstd layers, in its own layout (pushed with --preserve-digests
    # so skopeo cannot substitute the gzip blobs the registry already has).
    skopeo --insecure-policy copy -q --dest-compress --dest-compress-format zstd \
        "oci:$L:v1" "oci:$W/layout-zstd:v1"
}

images_build() {
    images_need || return 1
    IMAGES_LAYOUT=$IMAGES_CACHE/layout
    [ -f "$IMAGES_CACHE/.complete" ] && return 0
    mkdir -p "$(dirname "$IMAGES_CACHE")"
    local work
    work=$(mktemp -d "$(dirname "$IMAGES_CACHE")/.build.XXXXXX")
    if ! (set -e; images_build_layout "$work/layout" "$work" >"$work/build.log" 2>&1); then
        echo "images.sh: building the test images failed:" >&2
        cat "$work/build.log" >&2
        rm -rf "$work"
        return 1
    fi
    rm -f "$work/build.log"
    touch "$work/.complete"
    rm -rf "$IMAGES_CACHE"
    mv "$work" "$IMAGES_CACHE" # atomic: a half-built cache is never used
    # drop layouts of older versions of this script
    local old
    for old in "$(dirname "$IMAGES_CACHE")"/images-v*; do
        [ "$old" = "$IMAGES_CACHE" ] || rm -rf "$old"
    done
}

images_push() { # ADDR
    local addr=$1 L=$IMAGES_CACHE/layout
    local sk=(skopeo --insecure-policy copy -q --dest-tls-verify=false)
    "${sk[@]}" "oci:$L:v1" "docker://$addr/test/img:v1" &&
        "${sk[@]}" --format v2s2 "oci:$L:v1" "docker://$addr/test/img-v2s2:v1" &&
        "${sk[@]}" --preserve-digests "oci:$IMAGES_CACHE/layout-zstd:v1" "docker://$addr/test/img-zstd:v1" &&
        "${sk[@]}" --all "oci:$L:multi" "docker://$addr/test/multi:v1" &&
        "${sk[@]}" --preserve-digests "oci:$L:bad-diffid" "docker://$addr/test/bad:diffid" &&
        "${sk[@]}" --preserve-digests "oci:$L:bad-count" "docker://$addr/test/bad:count"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
    build) images_build && echo "$IMAGES_LAYOUT" ;;
    push) images_build && images_push "$2" ;;
    *)
        echo "usage: $0 build | push ADDR" >&2
        exit 2
        ;;
    esac
fi

# A >=100 MB image (busybox + 110 MB of incompressible data in its own layer), cached; pushed
# as bench/big:v1. Used by the crash-during-pull test and bench/engine-vs-dockerd.
images_big_push() { # ADDR
    local layout=${MACHINE_TEST_CACHE:-/var/cache/machine-tests}/big-v1 w
    if [ ! -d "$layout" ]; then
        w=$(mktemp -d)
        umoci init --layout "$w/l" && umoci new --image "$w/l:big"
        umoci config --image "$w/l:big" --os linux --architecture amd64 --config.cmd /bin/sh \
            --config.env PATH=/bin
        umoci unpack --image "$w/l:big" "$w/b" >/dev/null
        images_busybox_root "$w/b/rootfs"
        head -c 110000000 /dev/urandom >"$w/b/rootfs/data/blob"
        umoci repack --image "$w/l:big" "$w/b" && umoci gc --layout "$w/l"
        mkdir -p "$(dirname "$layout")"
        mv "$w/l" "$layout.tmp.$$" && mv -T "$layout.tmp.$$" "$layout" 2>/dev/null || rm -rf "$layout.tmp.$$"
        rm -rf "$w"
    fi
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout:big" "docker://$1/bench/big:v1"
}

# An image whose last layer tries to escape the rootfs (security cases 12, 13): a `../` path and a
# hardlink to a host file. Pushed as test/evil:v1; SENTINEL is the host path it aims at.
images_evil_push() { # ADDR SENTINEL
    local addr=$1 sentinel=$2 w
    w=$(mktemp -d)
    cp -a "$IMAGES_LAYOUT" "$w/l"
    python3 - "$w/evil.tar" "$sentinel" <<'PY'
import io, sys, tarfile
out, sentinel = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    data = b"escaped\n"
    ti = tarfile.TarInfo("../../../../../../.." + sentinel)
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
    hl = tarfile.TarInfo("data/shadow-link")
    hl.type = tarfile.LNKTYPE
    hl.linkname = "../../../../../../../etc/shadow"
    t.addfile(hl)
PY
    umoci raw add-layer --image "$w/l:v1" --tag evil "$w/evil.tar"
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$w/l:evil" "docker://$addr/test/evil:v1"
    rm -rf "$w"
}
