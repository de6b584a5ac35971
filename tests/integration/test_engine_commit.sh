#!/usr/bin/env bash
# Images made on the engine with the real docker CLI: docker diff (A/C/D, a deleted lower file,
# nothing for a fresh container), docker commit of a stopped and of a running container (with
# --change, -m, -a; the image runs with the change), docker history (the commit on top, the
# parent's ID below it, <missing> further down), docker export (the merged filesystem) and
# docker import (a tar becomes an image that runs, with --change and -m).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-commit-XXXXXX)
ENGINE_ARGS=(--bridge none)
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 30 "$T"/e/engine.log >&2 2>/dev/null || true
    [ -z "${engine_pid:-}" ] || "$DOCKER" rm -f $("$DOCKER" ps -aq) >/dev/null 2>&1 || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/e/exec" 2>/dev/null || true
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
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock
d() { "$DOCKER" "$@"; }
d pull -q "$IMG" >/dev/null
parent_id=$(d image inspect -f '{{.Id}}' "$IMG")

step "docker diff: additions, changes and deletions (a file of a lower layer)"
fresh=$(d create "$IMG" true)
out=$(d diff "$fresh") || fail "docker diff of a new container"
assert_eq "$out" "" "a container that changed nothing has no changes"
d start -a "$fresh" >/dev/null
out=$(d diff "$fresh") || fail "docker diff of an exited container"
assert_eq "$out" "" "running it creates no change of its own (mount targets are left out)"
script='echo new >/data/new.txt && echo changed >>/data/a && rm /data/b && mkdir -p /newdir/sub'
cid=$(d create "$IMG" sh -c "$script && touch /newdir/sub/f && rm -r /opq")
d start -a "$cid"
expected="C /data
C /data/a
D /data/b
A /data/new.txt
A /newdir
A /newdir/sub
A /newdir/sub/f
D /opq"
assert_eq "$(d diff "$cid")" "$expected" "docker diff lists A/C/D like dockerd"
assert_exit 1 d diff no-such-container

step "docker commit: the new image has the parent's layers plus the change, and the changes"
out=$(d commit -m "added new.txt" -a "Tester <t@example.com>" \
    -c 'CMD ["cat", "/data/new.txt"]' -c 'ENV FOO=bar' -c 'LABEL made=commit' -c 'EXPOSE 8080' \
    -c 'WORKDIR /data' -c 'USER nobody' -c 'STOPSIGNAL SIGINT' -c 'VOLUME /vol' \
    "$cid" test/committed:v1) || fail "docker commit: $out"
assert_contains "$out" "sha256:" "commit prints the new image ID"
new_id=$(d image inspect -f '{{.Id}}' test/committed:v1)
assert_eq "$out" "$new_id" "the printed ID is the image's"
assert_eq "$(d run --rm test/committed:v1)" "new" "the committed image runs its new CMD on the new file"
assert_eq "$(d run --rm --user root test/committed:v1 sh -c 'echo $FOO; pwd; id -u; cat a; test -e b || echo b-gone; test -e /opq || echo opq-gone')" \
    "bar
/data
0
file a
changed
b-gone
opq-gone" "the committed image has the container's changes and the config changes"
assert_eq "$(d run --rm test/committed:v1 id -u)" "65534" "USER from --change"
assert_eq "$(d image inspect -f '{{.Parent}} {{.Author}} {{.Comment}} {{index .Config.Labels "made"}} {{.Config.StopSignal}}' test/committed:v1)" \
    "$parent_id Tester <t@example.com> added new.txt commit SIGINT" "parent, author, comment, label, stop signal"
# API < 1.45 (docker-py 5's 1.41): the container the image was committed from, as dockerd says
full_cid=$(d inspect -f '{{.Id}}' "$cid")
old_api=$(curl -s --max-time 30 --unix-socket "$T/e/engine.sock" http://x/v1.41/images/test/committed:v1/json)
assert_eq "$(jq -r .Container <<<"$old_api")" "$full_cid" "API 1.41: Container is the committed container"
assert_eq "$(jq -r '.ContainerConfig.Cmd | length' <<<"$old_api")" "2" "API 1.41: ContainerConfig is its config"
new_api=$(curl -s --max-time 30 --unix-socket "$T/e/engine.sock" http://x/v1.45/images/test/committed:v1/json)
assert_eq "$(jq -r 'has("Container") or has("ContainerConfig")' <<<"$new_api")" "false" \
    "API 1.45: neither field, as moby dropped them"
assert_eq "$(d image inspect -f '{{json .Config.ExposedPorts}} {{json .Config.Volumes}}' test/committed:v1)" \
    '{"8080/tcp":{}} {"/vol":{}}' "EXPOSE and VOLUME from --change"
n_parent=$(d image inspect -f '{{len .RootFS.Layers}}' "$IMG")
assert_eq "$(d image inspect -f '{{len .RootFS.Layers}}' test/committed:v1)" "$((n_parent + 1))" \
    "one layer more than the parent"
out=$(d commit -c 'RUN echo no' "$cid" 2>&1) && fail "a RUN change was accepted"
assert_contains "$out" "is not a valid change command" "an invalid change is refused as dockerd does"

step "docker commit of a running container (pause is the default) and of an unchanged one"
run=$(d run -d --name live-ctr --label team=blue "$IMG" sh -c 'echo live >/live.txt; sleep 300')
for _ in $(seq 50); do d exec "$run" test -e /live.txt 2>/dev/null && break; sleep 0.1; done
since=$(date +%s)
live_id=$(d commit "$run" test/live:v1)
# the commit event carries the container's name, image and labels, as dockerd's container
# events do: docker events --filter container=NAME finds it
ev=$(d events --since "$since" --until "$(($(date +%s) + 1))" --filter container=live-ctr \
    --filter event=commit --format '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}} {{index .Actor.Attributes "team"}} {{.Actor.Attributes.imageID}}')
assert_eq "$ev" "commit live-ctr $IMG blue $live_id" "the commit event names the container"
assert_eq "$(d run --rm test/live:v1 cat /live.txt)" "live" "a running container's change is committed"
assert_eq "$(d inspect -f '{{.State.Running}}' "$run")" "true" "and it keeps running"
d rm -f "$run" >/dev/null
same=$(d commit "$fresh")
assert_eq "$(d image inspect -f '{{len .RootFS.Layers}}' "$same")" "$n_parent" \
    "an unchanged container adds no layer (an empty-layer history entry)"

step "docker history: the commit on top with its size, the parent below, <missing> further down"
hist=$(d history --no-trunc --format '{{.ID}}|{{.CreatedBy}}|{{.Comment}}|{{.Size}}' test/committed:v1)
top=$(printf '%s\n' "$hist" | sed -n 1p)
assert_contains "$top" "$new_id|sh -c echo new >/data/new.txt" "the top row is the commit, created by the container's command"
assert_contains "$top" "|added new.txt|" "with the commit message"
case "${top##*|}" in 0B | "") fail "the commit row has no size: $top" ;; esac
assert__ok "the commit row has the layer's size (${top##*|})"
assert_eq "$(printf '%s\n' "$hist" | sed -n 2p | cut -d'|' -f1)" "$parent_id" "the row below is the parent image"
rows=$(printf '%s\n' "$hist" | wc -l)
parent_rows=$(d history -q --no-trunc "$IMG" | wc -l)
assert_eq "$rows" "$((parent_rows + 1))" "one row more than the parent's history"
if [ "$parent_rows" -gt 1 ]; then
    assert_eq "$(printf '%s\n' "$hist" | sed -n 3p | cut -d'|' -f1)" "<missing>" "older steps are <missing>"
fi
assert_exit 1 d history no/such:image

step "docker export: the container's merged filesystem as a tar"
d export -o "$T/export.tar" "$cid" || fail "docker export"
names=$(tar -tf "$T/export.tar")
for f in bin/busybox data/new.txt data/a newdir/sub/f etc/passwd; do
    printf '%s\n' "$names" | grep -qx "$f" || fail "export lacks $f"
done
assert__ok "export has the image's and the container's files"
printf '%s\n' "$names" | grep -qx 'data/b' && fail "export has the deleted /data/b"
printf '%s\n' "$names" | grep -q '^opq' && fail "export has the deleted /opq"
assert__ok "deleted files are not exported"
assert_eq "$(tar -xOf "$T/export.tar" data/a)" "file a
changed" "exported file content"

step "docker import: the exported tar becomes an image that runs"
out=$(d import -m "from export" -c 'CMD ["/bin/sh", "-c", "cat /data/new.txt"]' -c 'ENV IMPORTED=1' \
    "$T/export.tar" test/imported:v1) || fail "docker import: $out"
assert_contains "$out" "sha256:" "import prints the image ID"
assert_eq "$(d run --rm test/imported:v1)" "new" "the imported image runs its CMD"
assert_eq "$(d run --rm test/imported:v1 sh -c 'echo $IMPORTED')" "1" "ENV from --change"
assert_eq "$(d image inspect -f '{{len .RootFS.Layers}} {{.Comment}}' test/imported:v1)" "1 from export" \
    "one layer, the message as comment"
assert_eq "$(d history --format '{{.Comment}}' test/imported:v1)" "from export" "import's history entry"
gzip -c "$T/export.tar" >"$T/export.tar.gz"
imported=$(d import - <"$T/export.tar.gz") || fail "import of a gzip tar from stdin"
assert_eq "$(d run --rm "$imported" cat /data/new.txt)" "new" "a gzip tar from stdin imports"
out=$(d import http://127.0.0.1:1/x.tar 2>&1) && fail "import from a URL was accepted"
assert_contains "$out" "not supported by machine-engine" "import from a URL is refused clearly"

pass
