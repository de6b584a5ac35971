#!/usr/bin/env bash
# docker images / docker ps filters against machine-engine with the docker CLI 28, as dockerd
# applies them (issue 21 item 1): a name or a filter that matches nothing lists nothing (so
# `docker rmi $(docker images -q foo)` deletes nothing), unknown filters and bad values are
# refused with dockerd's wording.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/routes.sh"
routes_enter_namespaces "$0" "$@"
routes_setup filters
R=$REGISTRY_ADDR

step "images: pull the variants; make one image dangling"
for t in old mid new; do d pull -q "$R/test/flt:$t" >/dev/null; done
d pull -q "$R/test/other:mid" >/dev/null
d pull -q "$IMG" >/dev/null
sk=(skopeo --insecure-policy copy -q --dest-tls-verify=false)
"${sk[@]}" --preserve-digests "oci:$T/layout:dang" "docker://$R/test/flt:moving"
d pull -q "$R/test/flt:moving" >/dev/null
dang=$(d inspect -f '{{.Id}}' "$R/test/flt:moving")
"${sk[@]}" --preserve-digests "oci:$T/layout:new" "docker://$R/test/flt:moving"
d pull -q "$R/test/flt:moving" >/dev/null
old=$(d inspect -f '{{.Id}}' "$R/test/flt:old")
mid=$(d inspect -f '{{.Id}}' "$R/test/flt:mid")
new=$(d inspect -f '{{.Id}}' "$R/test/flt:new")
short() { local x=${1#sha256:}; echo "${x:0:12}"; }

step "images NAME, -q"
assert_eq "$(d images -q "$R/test/flt:old")" "$(short "$old")" "images -q REPO:TAG lists that image only"
assert_eq "$(d images -q nosuchimage)" "" "images -q of an unknown name lists nothing"
assert_eq "$(d images -q "$R/test/nosuch")" "" "images -q of an unknown repository lists nothing"
# the untagged image keeps its repo@digest reference, so it shows with the repository, as in dockerd
assert_eq "$(d images --format '{{.Tag}}' "$R/test/flt" | sort | tr '\n' ' ')" "<none> mid moving new old " \
    "images REPO lists the repository's images only"
assert_eq "$(d images --format '{{.Repository}}:{{.Tag}}' "$R/test/other")" "$R/test/other:mid" \
    "a reference filter narrows RepoTags to the matching ones"

step "reference= globs as dockerd (path.Match on familiar and full names)"
assert_eq "$(d images --filter "reference=*/test/fl?:n*" --format '{{.Tag}}' | sort | tr '\n' ' ')" \
    "new " "? and * globs"
assert_eq "$(d images --filter 'reference=test/*' -q)" "" "* does not cross a /"
assert_eq "$(d images --filter "reference=*/test/flt:[m-n]*" --format '{{.Tag}}' | sort | tr '\n' ' ')" \
    "mid moving new " "character classes"
out=$(d images --filter 'reference=[' 2>&1) && fail "a malformed pattern was accepted"
assert_contains "$out" "syntax error in pattern" "a malformed pattern is refused"

step "dangling="
assert_eq "$(d images -q --filter dangling=true)" "$(short "$dang")" "dangling=true lists the untagged image"
assert_eq "$(d images --filter dangling=true --format '{{.Tag}}')" "<none>" "a dangling image has no tag"
# dockerd leaves out of dangling=false only images without any reference; this one keeps its
# repo@digest, so it is listed there too (as dockerd does)
assert_contains "$(d images -q --filter dangling=false)" "$(short "$old")" "dangling=false lists tagged images"
out=$(d images --filter dangling=maybe 2>&1) && fail "dangling=maybe accepted"
assert_contains "$out" "invalid filter 'dangling=[maybe]'" "dangling takes a boolean"

step "label="
assert_eq "$(d images -q --filter label=tier=mid | sort -u)" "$(short "$mid")" "label=key=value"
assert_eq "$(d images -q --filter label=color | sort -u)" "$(short "$mid")" "label=key"
assert_eq "$(d images -q --filter label=tier=old --filter label=color)" "" "several labels must all match"
assert_eq "$(d images -q --filter label=nosuch)" "" "an unknown label matches nothing"

step "before= since= until="
assert_eq "$(d images -q --filter before="$R/test/flt:mid" --filter 'reference=*/test/flt:*' | sort -u | tr '\n' ' ')" \
    "$(short "$old") " "before=IMAGE: created strictly before"
assert_eq "$(d images --filter since="$R/test/flt:old" --filter 'reference=*/test/flt:*' --format '{{.Tag}}' | sort | tr '\n' ' ')" \
    "mid moving new " "since=IMAGE: created strictly after"
assert_eq "$(d images -q --filter until=2021-06-01T00:00:00Z --filter 'reference=*/test/*' | sort -u | tr '\n' ' ')" \
    "$(printf "%s\n" "$(short "$dang")" "$(short "$old")" "$(short "$mid")" | sort | tr "\n" " ")" "until=TIMESTAMP (the untagged 2019 image too)"
out=$(d images --filter before=nosuch:tag 2>&1) && fail "before= an unknown image accepted"
assert_contains "$out" "No such image" "before= an unknown image"
out=$(d images --filter foo=bar 2>&1) && fail "an unknown image filter was accepted"
assert_contains "$out" "invalid filter 'foo'" "an unknown image filter is refused"

step "ps: containers to filter"
d volume create vol1 >/dev/null
d create --name c0 "$R/test/flt:new" true >/dev/null
d run --name c1 "$R/test/flt:old" sh -c 'exit 3' || true
d run -d --name c2 --label role=web -v vol1:/data -p 18080:80 "$R/test/other:mid" sleep 300 >/dev/null
d run -d --name c3 --label role=db "$IMG" sleep 300 >/dev/null
c1=$(d inspect -f '{{.Id}}' c1)
names() { d ps "$@" --format '{{.Names}}' | tr '\n' ' '; }

step "ps: ancestor (name, tag, ID, same image under another name)"
assert_eq "$(names -a --filter ancestor="$R/test/flt:old")" "c1 " "ancestor=REPO:TAG"
assert_eq "$(names -a --filter ancestor="$(short "$old")")" "c1 " "ancestor=short ID"
assert_eq "$(names -a --filter ancestor="$old")" "c1 " "ancestor=full ID"
assert_eq "$(names -a --filter ancestor="$R/test/flt:mid")" "c2 " "ancestor matches by image, not by the name used"
assert_eq "$(names -a --filter ancestor=nosuchimage)" "" "ancestor of an unknown image lists nothing"
assert_eq "$(names -a --filter ancestor="$R/test/flt:old" --filter ancestor="$IMG")" "c3 c1 " "several ancestors"

step "ps: before, since, -l, -n, exited, status"
assert_eq "$(names -a --filter before=c2)" "c1 c0 " "before=NAME"
assert_eq "$(names -a --filter since=c1)" "c3 c2 " "since=NAME"
assert_eq "$(names --filter since=c0)" "c3 c2 " "since without -a lists running ones only"
assert_eq "$(names -l)" "c3 " "ps -l is the latest container"
assert_eq "$(names -n 2)" "c3 c2 " "ps -n 2 lists the two latest, stopped or not"
assert_eq "$(names -a --filter exited=3)" "c1 " "exited=3"
assert_eq "$(names -a --filter exited=0)" "" "exited=0: never-started containers do not count"
assert_eq "$(names --filter status=exited)" "c1 " "status=exited implies -a"
assert_eq "$(names --filter status=created)" "c0 " "status=created"
out=$(d ps --filter exited=x 2>&1) && fail "exited=x accepted"
assert_contains "$out" "invalid filter 'exited=x'" "exited takes a number"
out=$(d ps --filter status=bogus 2>&1) && fail "status=bogus accepted"
assert_contains "$out" "invalid filter 'status=bogus'" "status is checked"
out=$(d ps --filter health=bogus 2>&1) && fail "health=bogus accepted"
assert_contains "$out" "invalid filter 'health=bogus'" "health is checked"

step "ps: name, id, label, health, volume, network, publish, expose, is-task"
assert_eq "$(names -a --filter name='^c[12]$')" "c2 c1 " "name= is a regular expression"
assert_eq "$(names -a --filter id="${c1:0:8}")" "c1 " "id= prefix"
assert_eq "$(names -a --filter label=role)" "c3 c2 " "label=key"
assert_eq "$(names -a --filter label=role=db)" "c3 " "label=key=value"
assert_eq "$(names --filter health=none)" "c3 c2 " "health=none: containers without a healthcheck"
assert_eq "$(names -a --filter health=healthy)" "" "health=healthy"
assert_eq "$(names -a --filter volume=vol1)" "c2 " "volume=NAME"
assert_eq "$(names -a --filter volume=/data)" "c2 " "volume=DESTINATION"
assert_eq "$(names --filter network=bridge)" "c3 c2 " "network=NAME"
assert_eq "$(names --filter network=none)" "" "network= another network"
assert_eq "$(names --filter publish=18080)" "c2 " "publish=PORT"
assert_eq "$(names --filter publish=18000-18100/tcp)" "c2 " "publish=RANGE/PROTO"
assert_eq "$(names --filter publish=18080/udp)" "" "publish= another protocol"
assert_eq "$(names --filter expose=80)" "c2 " "expose=PORT"
assert_eq "$(names -a --filter is-task=true)" "" "is-task=true: no swarm tasks here"
assert_eq "$(names --filter is-task=false)" "c3 c2 " "is-task=false"
out=$(d ps --filter publish=1:2 2>&1) && fail "publish with ':' accepted"
assert_contains "$out" "should not contain ':'" "publish= refuses host:container"
out=$(d ps --filter nosuch=1 2>&1) && fail "an unknown ps filter was accepted"
assert_contains "$out" "invalid filter 'nosuch'" "an unknown ps filter is refused"

step "volume ls filters"
d volume create vol2 >/dev/null
d volume create xvol1y >/dev/null
assert_eq "$(d volume ls -q --filter name='^vol[0-9]$' | sort | tr '\n' ' ')" "vol1 vol2 " "volume ls name= is a regular expression"
assert_eq "$(d volume ls -q --filter dangling=true | sort | tr '\n' ' ')" "vol2 xvol1y " "volume ls dangling=true"
out=$(d volume ls --filter dangling=maybe 2>&1) && fail "volume ls dangling=maybe accepted"
assert_contains "$out" "invalid filter 'dangling=[maybe]'" "volume ls: dangling takes a boolean"

step "network ls --filter dangling"
d network create usednet >/dev/null
d network create freenet >/dev/null
d run -d --name c4 --network usednet "$IMG" sleep 300 >/dev/null
assert_eq "$(d network ls --filter dangling=true --format '{{.Name}}')" "freenet" \
    "dangling=true: user networks no container uses"
assert_eq "$(d network ls --filter dangling=false --format '{{.Name}}' | sort | tr '\n' ' ')" \
    "bridge host none usednet " "dangling=false: the others"
out=$(d network ls --filter dangling=maybe 2>&1) && fail "network ls dangling=maybe accepted"
assert_contains "$out" "invalid filter 'dangling=[maybe]'" "network ls: dangling takes a boolean"

d rm -f c0 c1 c2 c3 c4 >/dev/null
pass
