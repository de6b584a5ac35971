#!/usr/bin/env bash
# Query parameters (issue 19 point 1, docs/engine-api.md "Query parameters"), with the docker
# CLI 28 and curl on the engine's socket: refused ones answer 400 naming them (and their
# defaults pass), and those made true here have their effect: restart's signal, attach's and
# logs -f's stdout/stderr, logs --details, create's platform, network inspect's scope, image
# list's shared-size, commit's pause.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/routes.sh"
routes_enter_namespaces "$0" "$@"
routes_setup params
d pull -q "$IMG" >/dev/null

step "refused parameters: a 400 naming them; their defaults pass"
d run -d --name ref "$IMG" sleep 300 >/dev/null
out=$(api POST "/v1.45/containers/ref/start?checkpoint-dir=/tmp/cp")
assert_eq "$(tail -n1 <<<"$out")" "400" "start?checkpoint-dir=: 400"
assert_contains "$(head -n1 <<<"$out")" "query parameter 'checkpoint-dir' is not supported by machine-engine" \
    "start?checkpoint-dir=: names it"
out=$(api POST "/v1.45/containers/ref/start?checkpoint=cp1")
assert_eq "$(tail -n1 <<<"$out")" "400" "start?checkpoint=: 400"
assert_eq "$(head -n1 <<<"$out" | jq -r .message)" \
    "query parameter 'checkpoint' is not supported by machine-engine" "start?checkpoint=: the message"
out=$(api POST "/v1.45/build?securityopt=%5B%22seccomp%3Dunconfined%22%5D&t=x" \
    -H 'Content-Type: application/x-tar' --data-binary @/dev/null)
assert_eq "$(tail -n1 <<<"$out")" "400" "build?securityopt=: 400"
assert_contains "$(head -n1 <<<"$out")" "query parameter 'securityopt' is not supported" \
    "build?securityopt=: names it"
assert_eq "$(api DELETE "/v1.45/containers/ref?force=1&link=0" | tail -n1)" "204" \
    "rm with link=0 (its default) is served"
assert_eq "$(d ps -aq --filter name=ref)" "" "and removed the container"

step "restart?signal="
d run -d --name rs "$IMG" sh -c 'trap "echo got-usr1; exit 0" USR1; echo started; while :; do sleep 0.1; done' >/dev/null
for _ in $(seq 50); do d logs rs 2>/dev/null | grep -q started && break; sleep 0.1; done
d restart -s SIGUSR1 -t 30 rs >/dev/null
assert_contains "$(d logs rs)" "got-usr1" "docker restart -s USR1 stops the container with SIGUSR1"
assert_eq "$(d inspect -f '{{.State.Running}} {{.RestartCount}}' rs | cut -d' ' -f1)" "true" \
    "and starts it again"
d rm -f rs >/dev/null

step "attach and logs -f send only the streams asked for"
# (the CLI fails on a frame of a stream it did not attach)
out=$(timeout 60 "$DOCKER" run --rm -a stdout "$IMG" sh -c 'echo to-out; echo to-err >&2' 2>&1) ||
    fail "docker run -a stdout: $out"
assert_eq "$out" "to-out" "docker run -a stdout: stdout only"
err=$(timeout 60 "$DOCKER" run --rm -a stderr "$IMG" sh -c 'echo to-out; echo to-err >&2' 2>&1) ||
    fail "docker run -a stderr: $err"
assert_eq "$err" "to-err" "docker run -a stderr: stderr only"
d run -d --name lf "$IMG" sh -c 'sleep 1; echo live-out; echo live-err >&2; sleep 0.5' >/dev/null
out=$(api GET "/v1.45/containers/lf/logs?follow=1&stdout=1" --output - | tr -d '\0' | tr -c '[:print:]\n' '.')
assert_contains "$out" "live-out" "logs -f stdout=1: the live stdout line"
case "$out" in *live-err*) fail "logs -f stdout=1 sent the live stderr line" ;; esac
assert__ok "logs -f stdout=1: no stderr line"
d rm -f lf >/dev/null

step "logs -f --until a time to come"
d run -d --name tick "$IMG" sh -c 'while :; do echo tick; sleep 0.2; done' >/dev/null
until=$(($(date +%s) + 3))
rc=0; out=$(timeout 60 "$DOCKER" logs -f --until "$until" tick) || rc=$?
assert_eq "$rc" "0" "logs -f --until ends at that time, the container still running"
assert_contains "$out" "tick" "and sent the lines until then"
d rm -f tick >/dev/null

step "logs --details"
d run --name dt "$IMG" sh -c 'printf "one\ntwo\n"' >/dev/null
assert_eq "$(d logs --details dt)" " one"$'\n'" two" \
    "every line starts with the (empty) attribute list and a space"
assert_eq "$(d logs --details --timestamps dt | grep -cE '^[0-9T:.-]+Z  (one|two)$')" "2" \
    "--details --timestamps: the time, the empty attributes, the line"
d run -d --name dtf "$IMG" sh -c 'sleep 1; echo live; sleep 0.3' >/dev/null
assert_eq "$(timeout 20 "$DOCKER" logs -f --details dtf)" " live" "logs -f --details on a live line"
d rm -f dt dtf >/dev/null

step "create?platform="
out=$(api POST "/v1.45/containers/create?platform=linux/arm64" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"Cmd\":[\"true\"]}")
assert_eq "$(tail -n1 <<<"$out")" "404" "an image of another platform: 404"
assert_contains "$(head -n1 <<<"$out")" "does not match the specified platform: wanted linux/arm64" \
    "dockerd's message"
out=$(api POST "/v1.45/containers/create?platform=linux/amd64&name=plat" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"Cmd\":[\"true\"]}")
assert_eq "$(tail -n1 <<<"$out")" "201" "the image's own platform: created"
d rm -f plat >/dev/null

step "network inspect?scope="
assert_eq "$(api GET /v1.45/networks/bridge?scope=local | tail -n1)" "200" "scope=local finds the bridge"
out=$(api GET /v1.45/networks/bridge?scope=swarm)
assert_eq "$(tail -n1 <<<"$out")" "404" "scope=swarm finds no local network"
assert_eq "$(head -n1 <<<"$out" | jq -r .message)" "network bridge not found" "dockerd's message"

step "images?shared-size="
d pull -q "$REGISTRY_ADDR/test/flt:old" >/dev/null
d pull -q "$REGISTRY_ADDR/test/flt:new" >/dev/null
plain=$(api GET /v1.45/images/json | head -n1)
assert_eq "$(jq '[.[].SharedSize] | unique' -c <<<"$plain")" "[-1]" "without shared-size: -1"
shared=$(api GET '/v1.45/images/json?shared-size=1' | head -n1)
old=$(jq -c --arg r "$REGISTRY_ADDR/test/flt:old" '.[] | select(.RepoTags | index($r)) | [.SharedSize, .Size]' <<<"$shared")
assert_eq "$(jq '.[0] > 0 and .[0] <= .[1]' <<<"$old")" "true" \
    "shared-size=1: the variants share their layer ($old)"

step "commit?pause="
d run -d --name cm "$IMG" sleep 300 >/dev/null
since=$(date +%s)
d commit cm params/cm:paused >/dev/null
d commit --pause=false cm params/cm:unpaused >/dev/null
until=$(($(date +%s) + 1))
cid=$(d inspect -f '{{.Id}}' cm) # the commit event names the container by ID only
ev=$(d events --since "$since" --until "$until" --filter "container=$cid" --format '{{.Action}}' | tr '\n' ' ')
assert_eq "$(grep -o 'pause\|unpause\|commit' <<<"${ev// /$'\n'}" | tr '\n' ' ')" "pause commit unpause commit " \
    "the first commit froze the container, the one with --pause=false did not"
assert_eq "$(d inspect -f '{{.State.Running}} {{.State.Paused}}' cm)" "true false" "running and thawed after"
d rm -f cm >/dev/null

step "image delete?noprune="
chain() { # TAG: an untagged parent committed from IMG, and TAG committed on top of it
    d run --name "c1-$1" "$IMG" sh -c 'echo 1 >/f1' >/dev/null
    parent=$(d commit "c1-$1" | cut -d: -f2)
    d run --name "c2-$1" "$parent" sh -c 'echo 2 >/f2' >/dev/null
    d commit "c2-$1" "params/chain:$1" >/dev/null
    d rm "c1-$1" "c2-$1" >/dev/null
    assert_eq "$(d image inspect -f '{{.Parent}}' "params/chain:$1")" "sha256:$parent" \
        "params/chain:$1 descends from an untagged image"
}
chain pruned
d rmi params/chain:pruned >/dev/null
out=$(d image inspect "$parent" 2>&1) && fail "the untagged parent survived docker rmi"
assert_contains "$out" "No such image" "docker rmi removes the untagged parent too"
chain kept
d rmi --no-prune params/chain:kept >/dev/null
assert_eq "$(d image inspect -f '{{.Id}}' "$parent")" "sha256:$parent" "docker rmi --no-prune keeps it"
d image inspect "$IMG" >/dev/null || fail "the tagged base image went too"
assert__ok "the tagged base image stays"

pass
