#!/usr/bin/env bash
# docker build on machine-engine, the rest of the classic builder: the build cache in
# docker system df (-v) and GET /system/df, docker builder prune (filters, keep-storage) and
# docker system prune clearing it with the intermediate images only the cache held, docker
# images hiding those unless -a; RUN steps with --memory/--cpu-*/--shm-size/--add-host, stderr
# in red as dockerd streams it, --cache-from; build args: proxy values usable but not in the
# history, declared ones sorted, ENV winning; COPY --from with globs; a context whose files are
# named .wh.* and a hostile context tar; docker commit --pause freezing the container.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
enginetest_netns bcache "$@"
enginetest_setup bcache
enginetest_engine
export DOCKER_BUILDKIT=0
api() { curl -sS --max-time 60 --unix-socket "$T/e/engine.sock" "$@"; }
d pull -q "$BASE" >/dev/null
cache_count() { api http://x/v1.45/system/df | jq '.BuildCache | length'; }

step "the build cache in docker system df and GET /system/df"
C=$T/c
mkdir -p "$C"
echo one >"$C/f"
printf 'FROM %s\nCOPY f /f\nRUN echo cached-step >/r && head -c 300000 /dev/zero >/big\nCMD ["cat", "/r"]\n' "$BASE" >"$C/Dockerfile"
d build -q -t test/c:1 "$C" >/dev/null || fail "first build"
df=$(api http://x/v1.45/system/df)
assert_eq "$(jq '.BuildCache | length' <<<"$df")" "3" "one cache entry per step after FROM"
assert_eq "$(jq -r '.BuildCache[] | select(.Description | contains("echo cached-step")) | "\(.Type) \(.Size >= 300000) \(.InUse) \(.Shared) \(.UsageCount)"' <<<"$df")" \
    "regular true false true 0" "the RUN entry: its step, the size its layer adds, not in use, shared (the CMD step is built on it), not yet reused"
jq -e '.BuildCache[0] | (.ID | length == 64) and (.CreatedAt | test("^20[0-9-]+T")) and (.LastUsedAt | test("^20"))' <<<"$df" >/dev/null ||
    fail "entries have an ID and RFC 3339 times: $(jq -c '.BuildCache[0]' <<<"$df")"
assert__ok "entries have an ID and RFC 3339 times"
d build -q -t test/c:1 "$C" >/dev/null || fail "rebuild"
assert_eq "$(api http://x/v1.45/system/df | jq -r '.BuildCache[] | select(.Description | contains("echo cached-step")) | .UsageCount')" \
    "1" "a cache hit counts as a use"
assert_contains "$(d system df --format '{{.Type}} {{.TotalCount}}')" "Build Cache 3" "docker system df counts the entries"
assert_contains "$(d system df -v)" "Build cache usage:" "docker system df -v lists them"
assert_eq "$(d system df -v --format '{{len .BuildCache}}')" "3" "docker system df -v has the three entries"

step "docker images hides the build's intermediate images unless -a"
all=$(d images -aq | wc -l)
top=$(d images -q | wc -l)
assert_eq "$top" "2" "docker images: the base and the built image"
[ "$all" -gt "$top" ] || fail "docker images -a shows no intermediate image ($all)"
assert__ok "docker images -a shows the intermediate images ($all)"

step "docker builder prune: filters and keep-storage keep entries; the prune clears the cache and the images only it held"
out=$(d builder prune -f --filter until=24h 2>&1) || fail "builder prune --filter until=24h: $out"
assert_eq "$(cache_count)" "3" "until=24h keeps the entries used just now"
out=$(d builder prune -af --keep-storage 100MB 2>&1) || fail "builder prune --keep-storage: $out"
assert_eq "$(cache_count)" "3" "--keep-storage above the cache's size keeps it"
out=$(d builder prune -f 2>&1) || fail "builder prune: $out"
assert_contains "$out" "Total reclaimed space" "docker builder prune answers"
assert_eq "$(cache_count)" "3" "without -a nothing goes: the entries' images are the tagged image's parents"
out=$(d builder prune -af 2>&1) || fail "builder prune -a: $out"
assert_eq "$(cache_count)" "2" "with -a the tagged image's own entry goes"
assert_eq "$(d run --rm test/c:1)" "cached-step" "the tagged image stays and runs"
d rmi --no-prune test/c:1 >/dev/null # keep its parents: they are what the cache holds
[ "$(d images -aq | wc -l)" -gt 1 ] || fail "the untagged parents went with docker rmi already"
res=$(api -X POST 'http://x/v1.45/build/prune')
assert_eq "$(jq '.CachesDeleted | length' <<<"$res")" "2" "POST /build/prune: the entries whose images only the cache holds now"
[ "$(jq '.SpaceReclaimed' <<<"$res")" -ge 300000 ] || fail "SpaceReclaimed: $res"
assert__ok "the space of the removed images is reported ($(jq '.SpaceReclaimed' <<<"$res"))"
assert_eq "$(d images -aq | wc -l)" "1" "the intermediate images are gone, the base image stays"
assert_eq "$(cache_count)" "0" "the cache is empty"
out=$(d build -t test/c:1 "$C" 2>&1) || fail "build after the prune: $out"
case "$out" in *"Using cache"*) fail "a step came from a pruned cache" ;; esac
assert__ok "a build after the prune runs every step"

step "docker system prune clears the build cache too"
d rmi --no-prune test/c:1 >/dev/null
out=$(d system prune -f 2>&1) || fail "system prune: $out"
assert_contains "$out" "Deleted build cache objects:" "docker system prune lists the build cache it removed"
assert_eq "$(cache_count)" "0" "nothing left in the cache"

step "RUN steps get the build's resources: --memory, --cpu-quota/--cpu-period, --shm-size, --add-host"
R=$T/res
mkdir -p "$R"
cat >"$R/Dockerfile" <<EOF
FROM $BASE
RUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null >/mem || cat /sys/fs/cgroup/memory.max >/mem; \
    df -k /dev/shm | tail -n 1 | awk '{print \$2}' >/shm; grep build.test /etc/hosts >/hosts; \
    cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null >/cpu || cut -d' ' -f1 /sys/fs/cgroup/cpu.max >/cpu
EOF
out=$(d build -t test/res --memory 64m --cpu-quota 50000 --cpu-period 100000 --shm-size 96m \
    --add-host build.test:10.1.2.3 "$R" 2>&1) || fail "build with resources: $out"
assert_eq "$(d run --rm test/res cat /mem /shm /cpu)" "67108864
98304
50000" "the RUN step ran with the memory limit, /dev/shm size and CPU quota asked for"
assert_contains "$(d run --rm test/res cat /hosts)" "10.1.2.3" "--add-host reached the RUN step's /etc/hosts"
out=$(d build --no-cache --memory 1k "$R" 2>&1) && fail "a 1 KiB memory limit built"
assert_contains "$out" "emory" "an impossible memory limit is refused like a container's"
out=$(d build --no-cache --cgroup-parent x "$R" 2>&1) && fail "--cgroup-parent built"
assert_contains "$out" "query parameter 'cgroupparent' is not supported by machine-engine" "--cgroup-parent is refused by name"

step "a RUN step's stderr is streamed in red, as dockerd's"
E=$T/err
mkdir -p "$E"
printf 'FROM %s\nRUN echo to-stderr >&2\n' "$BASE" >"$E/Dockerfile"
out=$(d build --no-cache "$E" 2>&1) || fail "build with stderr: $out"
assert_contains "$out" $'\e[91mto-stderr\n\e[0m' "stderr between ESC[91m and ESC[0m"

step "--cache-from: only the named images' steps serve as cache"
K=$T/cf
mkdir -p "$K"
printf 'FROM %s\nENV FOO=bar\nRUN touch /baz\n' "$BASE" >"$K/Dockerfile"
d build -q -t test/cf:1 "$K" >/dev/null || fail "first --cache-from build"
out=$(d build --cache-from nosuchimage "$K" 2>&1) || fail "build --cache-from nosuchimage: $out"
case "$out" in *"Using cache"*) fail "--cache-from of a missing image used the local cache" ;; esac
assert__ok "--cache-from a missing image: no step from the cache"
out=$(d build --cache-from test/cf:1 "$K" 2>&1) || fail "build --cache-from test/cf:1: $out"
assert_eq "$(grep -c ' ---> Using cache' <<<"$out")" "2" "--cache-from the built image: every step from the cache"

step "build args: a proxy value is usable but not baked into the history; declared args sorted; ENV wins"
A=$T/args
mkdir -p "$A"
printf 'FROM %s\nARG B_ARG\nARG A_ARG=a1\nARG SHADOW=arg\nENV SHADOW=env\nRUN echo "$HTTP_PROXY" >/proxy && echo "$B_ARG $A_ARG $SHADOW" >/args\n' "$BASE" >"$A/Dockerfile"
out=$(d build -t test/args --build-arg HTTP_PROXY=http://user:pw@proxy.test:3128 --build-arg B_ARG=b2 "$A" 2>&1) ||
    fail "build with args: $out"
case "$out" in *"not consumed"*) fail "a proxy arg was reported unused: $out" ;; esac
assert__ok "a proxy arg is not reported as unused"
assert_eq "$(d run --rm test/args cat /proxy /args)" "http://user:pw@proxy.test:3128
b2 a1 env" "the RUN step saw the proxy, the args and ENV over ARG"
hist=$(d history --no-trunc --format '{{.CreatedBy}}' test/args)
case "$hist" in *user:pw*) fail "the proxy credentials are in the history: $hist" ;; esac
assert__ok "the proxy value is not in the image's history"
assert_contains "$hist" '|2 A_ARG=a1 B_ARG=b2 /bin/sh -c echo' "declared args in the RUN history, sorted, the one ENV set left out"
d image inspect -f '{{json .Config.Env}}' test/args | grep -q proxy && fail "the proxy is in the image's Env"
assert__ok "the proxy is not in the image's Env"

step "COPY --from with globs"
G=$T/glob
mkdir -p "$G"
cat >"$G/Dockerfile" <<EOF
FROM $BASE AS gen
RUN mkdir -p /out/sub && echo a >/out/a.txt && echo b >/out/b.txt && echo c >/out/c.log && echo s >/out/sub/s.txt
FROM $BASE
COPY --from=gen /out/*.txt /got/
COPY --from=gen /out/s*/*.txt /deep/
EOF
out=$(d build -t test/glob "$G" 2>&1) || fail "COPY --from with globs: $out"
assert_eq "$(d run --rm test/glob sh -c 'ls /got /deep')" "/deep:
s.txt

/got:
a.txt
b.txt" "only the matching files of the other stage are copied"

step "context files named .wh.* are ordinary files, not whiteouts"
W=$T/wh
mkdir -p "$W/d"
echo kept >"$W/.wh.keep"
echo inside >"$W/d/.wh..wh..opq"
printf 'FROM %s\nCOPY .wh.keep /x\nCOPY d/.wh..wh..opq /y\n' "$BASE" >"$W/Dockerfile"
out=$(d build -t test/wh "$W" 2>&1) || fail "build with .wh.* files: $out"
assert_eq "$(d run --rm test/wh cat /x /y)" "kept
inside" "the .wh.* files of the context were copied"

step "a hostile context tar is handled like a hostile layer"
python3 - "$T/evil.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    d = b"FROM scratch\n"
    i = tarfile.TarInfo("Dockerfile"); i.size = len(d); t.addfile(i, io.BytesIO(d))
    i = tarfile.TarInfo("../../../../../../tmp/machine-bcache-escape"); i.size = 4
    t.addfile(i, io.BytesIO(b"evil"))
EOF
res=$(api -X POST -H 'Content-Type: application/x-tar' --data-binary @"$T/evil.tar" 'http://x/v1.45/build')
assert_contains "$res" "build context" "a context tar with ../ names is refused"
[ ! -e /tmp/machine-bcache-escape ] || fail "the context tar wrote outside"
python3 - "$T/evil2.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    d = b"FROM scratch\n"
    i = tarfile.TarInfo("Dockerfile"); i.size = len(d); t.addfile(i, io.BytesIO(d))
    i = tarfile.TarInfo("root"); i.type = tarfile.SYMTYPE; i.linkname = "/"; t.addfile(i)
    i = tarfile.TarInfo("root/tmp/machine-bcache-escape2"); i.size = 4; t.addfile(i, io.BytesIO(b"evil"))
EOF
api -X POST -H 'Content-Type: application/x-tar' --data-binary @"$T/evil2.tar" 'http://x/v1.45/build' >/dev/null || true
[ ! -e /tmp/machine-bcache-escape2 ] || fail "a write through a symlink to / landed on the host"
assert__ok "a write through a symlink to / stays inside the context"

step "docker commit pauses a running container while its layer is read (--pause=false does not)"
d run -d --name busy "$BASE" sleep 300 >/dev/null
t0=$(date +%s)
d commit busy test/busy:1 >/dev/null
d commit --pause=false busy test/busy:2 >/dev/null
d commit busy test/busy:3 >/dev/null
t1=$(($(date +%s) + 1))
ev=$(d events --since "$t0" --until "$t1" --filter container=busy --format '{{.Action}}' | grep -E '^(pause|unpause)$' | tr '\n' ' ')
assert_eq "$ev" "pause unpause pause unpause " "the two default commits pause and unpause, the one with --pause=false does not"
assert_eq "$(d inspect -f '{{.State.Status}}' busy)" "running" "the container runs again after the commit"
d rm -f busy >/dev/null

pass
