#!/usr/bin/env bash
# docker system df, container/image/volume/network prune and docker system prune [-a] [--volumes]
# with the docker CLI 28 against machine-engine (issue 19 point 3): what goes and what stays,
# filters as dockerd, the space reclaimed, the events.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/routes.sh"
routes_enter_namespaces "$0" "$@"
routes_setup prune
R=$REGISTRY_ADDR
t0=$(date +%s)
for t in old mid new; do d pull -q "$R/test/flt:$t" >/dev/null; done
d pull -q "$IMG" >/dev/null
sk=(skopeo --insecure-policy copy -q --dest-tls-verify=false)
"${sk[@]}" --preserve-digests "oci:$T/layout:dang" "docker://$R/test/flt:moving"
d pull -q "$R/test/flt:moving" >/dev/null
dang=$(d inspect -f '{{.Id}}' "$R/test/flt:moving")
"${sk[@]}" --preserve-digests "oci:$T/layout:new" "docker://$R/test/flt:moving"
d pull -q "$R/test/flt:moving" >/dev/null

step "system df"
d run --name big "$IMG" sh -c 'dd if=/dev/zero of=/big bs=1k count=2048 2>/dev/null'
d volume create dfvol >/dev/null
d run --rm -v dfvol:/v "$IMG" sh -c 'dd if=/dev/zero of=/v/f bs=1k count=1024 2>/dev/null'
df=$(api GET /v1.45/system/df | head -n1)
assert_eq "$(jq -r '.Containers[] | select(.Names[0]=="/big") | .SizeRw' <<<"$df")" "2097152" \
    "system df: a container's SizeRw is its writable layer"
assert_eq "$(jq -r '.Volumes[] | select(.Name=="dfvol") | "\(.UsageData.Size) \(.UsageData.RefCount)"' <<<"$df")" \
    "1048576 0" "system df: a volume's size and reference count"
assert_eq "$(jq -r '.BuildCache | length' <<<"$df")" "0" "system df: no build cache"
[ "$(jq -r .LayersSize <<<"$df")" -gt 0 ] || fail "system df: LayersSize"
assert_eq "$(jq -r --arg i "$(d inspect -f '{{.Id}}' "$IMG")" '.Images[] | select(.Id==$i) | .Containers' <<<"$df")" \
    "1" "system df: containers per image"
out=$(d system df)
assert_contains "$out" "Images" "docker system df prints its table"
assert_contains "$(d system df -v)" "dfvol" "docker system df -v lists volumes"
assert_contains "$(d ps -a -s --format '{{.Names}} {{.Size}}')" "big 2.1MB" "ps -s shows SizeRw"
assert_eq "$(d inspect -s -f '{{.SizeRw}}' big)" "2097152" "inspect --size: SizeRw"
[ "$(d inspect -s -f '{{.SizeRootFs}}' big)" -gt 2097152 ] || fail "inspect --size: SizeRootFs"
assert__ok "inspect --size: SizeRootFs counts the image"

step "container prune: stopped ones only, label and until filters"
d create --name keep --label keep=yes "$IMG" true >/dev/null
d create --name gone1 "$IMG" true >/dev/null
d run -d --name runner "$IMG" sleep 300 >/dev/null
out=$(d container prune -f --filter label!=keep=yes)
assert_contains "$out" "Total reclaimed space: 2.097MB" "container prune reports the space reclaimed"
assert_eq "$(d ps -a --format '{{.Names}}' | sort | tr '\n' ' ')" "keep runner " \
    "container prune removed the stopped ones, kept the running one and the label!= match"
out=$(d container prune -f --filter until=2000-01-01T00:00:00Z)
assert_eq "$(d ps -a --format '{{.Names}}' | sort | tr '\n' ' ')" "keep runner " "until= before their creation keeps them"
out=$(d container prune -f --filter label=keep=yes)
assert_eq "$(d ps -a --format '{{.Names}}' | sort | tr '\n' ' ')" "runner " "label= selects"
out=$(d container prune -f --filter nosuch=1 2>&1) && fail "an unknown prune filter was accepted"
assert_contains "$out" "invalid filter 'nosuch'" "an unknown prune filter is refused"

step "image prune: dangling by default, -a for every unused image, label, until"
out=$(d image prune -f)
assert_contains "$out" "$dang" "image prune deletes the dangling image"
assert_exit 1 d image inspect "$dang" >/dev/null 2>&1
assert_eq "$(d images -q "$R/test/flt:old")" "$(d images -q "$R/test/flt:old")" "tagged images stay"
[ -n "$(d images -q "$R/test/flt:old")" ] || fail "image prune deleted a tagged image"
out=$(d image prune -a -f --filter label=tier=old)
assert_contains "$out" "untagged: $R/test/flt:old" "image prune -a --filter label= untags"
assert_eq "$(d images -q "$R/test/flt:old")" "" "the labelled image is gone"
[ -n "$(d images -q "$R/test/flt:mid")" ] || fail "image prune -a --filter label= deleted another image"
d image prune -a -f --filter until=2021-06-01T00:00:00Z >/dev/null
assert_eq "$(d images -q "$R/test/flt:mid")" "" "until= removes images created before it"
[ -n "$(d images -q "$R/test/flt:new")" ] || fail "until= removed a newer image"
assert__ok "until= keeps images created after it"

step "system prune -a --volumes"
d network create prunenet >/dev/null
d volume create prunevol >/dev/null
d create --name stopped -v /anon "$IMG" true >/dev/null
anon=$(d inspect -f '{{range .Mounts}}{{.Name}}{{end}}' stopped)
out=$(d system prune -a -f --volumes 2>&1) || fail "system prune failed: $out"
assert_contains "$out" "Total reclaimed space" "system prune runs to its end"
assert_eq "$(d ps -a --format '{{.Names}}')" "runner" "system prune: stopped containers gone"
assert_exit 1 d network inspect prunenet
# API >= 1.42: volume prune takes anonymous volumes only (named ones need --filter all=true)
assert_exit 1 d volume inspect "$anon"
assert_exit 0 d volume inspect -f '{{.Name}}' prunevol
assert_eq "$(d images --format '{{.Repository}}:{{.Tag}}')" "$IMG" "system prune -a keeps only the image in use"
api POST /v1.45/images/prune >/dev/null

step "prune events"
ev=$(d events --since "$t0" --until "$(date +%s)" --filter event=prune --format '{{.Type}}' | sort -u | tr '\n' ' ')
assert_contains "$ev" "container" "container prune event"
assert_contains "$ev" "image" "image prune event"
d rm -f runner >/dev/null
pass
