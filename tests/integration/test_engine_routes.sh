#!/usr/bin/env bash
# Routes scripts read, with the docker CLI 28 (and curl where the CLI hides the answer) against
# machine-engine: logs --tail/--timestamps/--since/--until (issue 21 item 4), top -o, stats in
# dockerd's shape, inspect fields (.HostConfig.*, .GraphDriver, .NetworkSettings.Networks,
# .Mounts), GET /distribution/{name}/json and docker search.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/routes.sh"
routes_enter_namespaces "$0" "$@"
routes_setup routes
R=$REGISTRY_ADDR
d pull -q "$IMG" >/dev/null

step "logs: one write of three lines, --tail counts lines, --timestamps stamps each"
d run --name ml "$IMG" sh -c 'printf "one\ntwo\nthree\n"; sleep 0.2; echo four; sleep 0.2; echo five' >/dev/null
assert_eq "$(d logs --tail 2 ml | tr '\n' ' ')" "four five " "--tail 2: the last two lines"
assert_eq "$(d logs --tail 4 ml | tr '\n' ' ')" "two three four five " "--tail 4 cuts into a multi-line write"
assert_eq "$(d logs --tail 0 ml)" "" "--tail 0"
stamped=$(d logs --timestamps ml)
assert_eq "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (one|two|three|four|five)$' <<<"$stamped")" "5" \
    "--timestamps stamps every line, those of one write too"
t2=$(sed -n 4p <<<"$stamped" | cut -d' ' -f1) # the time of "four"
t1=$(sed -n 1p <<<"$stamped" | cut -d' ' -f1)
assert_eq "$(d logs --since "$t2" ml | tr '\n' ' ')" "four five " "--since a record's time includes it"
assert_eq "$(d logs --until "$t1" ml | tr '\n' ' ')" "one two three " "--until a record's time"
assert_eq "$(d logs --tail 1 --timestamps ml | cut -d' ' -f2)" "five" "--tail with --timestamps"
d run -d --name follow "$IMG" sh -c 'sleep 1; printf "x\ny\n"; sleep 0.3' >/dev/null
assert_eq "$(timeout 20 "$DOCKER" logs -f --timestamps follow | grep -cE '^[0-9T:.-]+Z (x|y)$')" "2" \
    "logs -f --timestamps stamps every line of a live write"
d run -d --name lived "$IMG" sh -c 'echo early; exec sleep 300' >/dev/null
for _ in $(seq 50); do d logs lived 2>/dev/null | grep -q early && break; sleep 0.1; done
t_early=$(d logs --timestamps lived | cut -d' ' -f1)
rc=0; out=$(timeout 20 "$DOCKER" logs -f --until "$t_early" lived) || rc=$?
assert_eq "$rc $out" "0 early" "logs -f with an until in the past does not follow"
d rm -f ml follow lived >/dev/null

step "top -o (ps_args)"
d run -d --name tp "$IMG" sh -c 'sleep 301 & exec sleep 300' >/dev/null
top=$(d top tp -o pid,comm)
assert_eq "$(head -n1 <<<"$top" | tr -s ' ')" "PID COMMAND" "top -o: the columns asked for"
assert_eq "$(tail -n +2 <<<"$top" | awk '{print $2}' | sort | tr '\n' ' ')" "sleep sleep " \
    "top -o: the container's processes only"
assert_contains "$(d top tp aux)" "sleep 301" "top with BSD ps options"
out=$(d top tp -o pid,user=PID 2>&1) && fail "a renamed PID column was accepted"
assert_contains "$out" 'specifying "pid,user=PID" is not allowed' "top: dockerd's argument check"

step "stats in dockerd's shape"
d run -d --name st --memory 64m "$IMG" sh -c 'dd if=/dev/zero of=/tmp/f bs=1k count=512 2>/dev/null; exec sleep 300' >/dev/null
sleep 0.5
s=$(api GET /v1.45/containers/st/stats?stream=false | head -n1)
assert_eq "$(jq -r '.memory_stats.limit' <<<"$s")" "67108864" "memory_stats.limit"
assert_eq "$(jq -r '.memory_stats.stats | has("inactive_file")' <<<"$s")" "true" "memory_stats.stats is memory.stat"
assert_eq "$(jq -r '.blkio_stats | has("io_service_bytes_recursive") and has("sectors_recursive")' <<<"$s")" "true" \
    "blkio_stats keys"
assert_eq "$(jq -r '.cpu_stats.cpu_usage | has("usage_in_usermode") and has("usage_in_kernelmode")' <<<"$s")" "true" \
    "cpu_usage keys"
[ "$(jq -r '.precpu_stats.system_cpu_usage' <<<"$s")" -gt 0 ] || fail "stream=false carries precpu_stats"
assert__ok "stream=false carries precpu_stats"
assert_eq "$(jq -r '.networks.eth0 | has("rx_bytes") and has("tx_dropped")' <<<"$s")" "true" "networks.eth0"
[ "$(jq -r '.pids_stats.current' <<<"$s")" -ge 1 ] || fail "pids_stats.current"
assert_eq "$(jq -r '.name' <<<"$s")" "/st" "name"
assert_contains "$(d stats --no-stream --format '{{.Name}} {{.MemUsage}}' st)" "st " "docker stats --no-stream"
assert_contains "$(d stats --no-stream --format '{{.MemUsage}}' st)" "/ 64MiB" "docker stats shows the limit"

step "inspect: HostConfig defaults, GraphDriver, Networks, Mounts"
api POST "/v1.45/containers/create?name=sparse" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"Cmd\":[\"true\"]}" >/dev/null
assert_eq "$(d inspect -f '{{.HostConfig.Memory}} {{.HostConfig.ShmSize}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Privileged}}' sparse)" \
    "0 67108864 no false" ".HostConfig fields a sparse create left out"
assert_eq "$(d inspect -f '{{.HostConfig.LogConfig.Type}}' sparse)" "json-file" ".HostConfig.LogConfig.Type"
upper=$(d inspect -f '{{.GraphDriver.Data.UpperDir}}' st)
d exec st sh -c 'echo marker >/marker'
assert_eq "$(cat "$upper/marker")" "marker" ".GraphDriver.Data.UpperDir is the container's upper layer"
assert_contains "$(d inspect -f '{{.GraphDriver.Data.LowerDir}}' st)" "/" ".GraphDriver.Data.LowerDir"
ip=$(d inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' st)
assert_eq "$(d exec st ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)" "$ip" \
    ".NetworkSettings.Networks.bridge.IPAddress is the container's address"
d run -d --name mt -v mvol:/data "$IMG" sleep 300 >/dev/null
assert_eq "$(d inspect -f '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}' mt)" "volume mvol /data" ".Mounts"
d rm -f tp st sparse mt >/dev/null

step "distribution and search"
out=$(api GET "/v1.45/distribution/$R/test/multi:v1/json")
assert_eq "$(tail -n1 <<<"$out")" "200" "distribution of an index: 200"
body=$(head -n1 <<<"$out")
want=$(skopeo inspect --tls-verify=false --raw "docker://$R/test/multi:v1" | sha256sum | cut -c1-64)
assert_eq "$(jq -r .Descriptor.digest <<<"$body")" "sha256:$want" "Descriptor.digest is the registry's"
assert_eq "$(jq -r '[.Platforms[] | "\(.os)/\(.architecture)"] | sort | join(" ")' <<<"$body")" \
    "linux/amd64 linux/arm64 unknown/unknown" "Platforms of the index"
body=$(api GET "/v1.45/distribution/$R/test/img:v1/json" | head -n1)
assert_eq "$(jq -c .Platforms <<<"$body")" '[{"architecture":"amd64","os":"linux"}]' "Platforms of one manifest"
assert_eq "$(api GET "/v1.45/distribution/$R/test/nosuch:v1/json" | tail -n1)" "404" "distribution of an unknown image"
out=$(d search busybox 2>&1) && fail "docker search succeeded"
assert_contains "$out" "not supported by machine-engine" "docker search is refused clearly"
pass
