#!/usr/bin/env bash
# Storage with the real docker CLI against machine-engine: bind mounts (rw/ro), named and
# anonymous volumes (copy-up from the image, survive rm, rm -v, in-use refusal), tmpfs, docker cp
# both ways (running and stopped containers, stdin tar) and its symlink safety (security case 18),
# docker stats --no-stream, docker events, and no mount left behind after rm or an engine kill -9.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-storage-XXXXXX)
ENGINE_ARGS=()
evpid=
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 30 "$T"/e/engine.log >&2 2>/dev/null || true
    [ -z "$evpid" ] || kill "$evpid" 2>/dev/null || true
    engine_stop
    registry_cleanup 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }
mounts_under() { grep -c " $1" /proc/self/mountinfo || true; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock
d() { "$DOCKER" "$@"; }
d pull -q "$IMG" >/dev/null

step "bind mounts: -v rw and ro, --mount, a missing source"
mkdir -p "$T/host"
echo from-host >"$T/host/in.txt"
assert_eq "$(d run --rm -v "$T/host:/mnt" "$IMG" cat /mnt/in.txt)" "from-host" "bind: host file visible"
d run --rm -v "$T/host:/mnt" "$IMG" sh -c 'echo from-ctr >/mnt/out.txt'
assert_eq "$(cat "$T/host/out.txt")" "from-ctr" "bind rw: container writes reach the host"
assert_exit 1 d run --rm -v "$T/host:/mnt:ro" "$IMG" sh -c 'echo x >/mnt/ro.txt'
[ ! -e "$T/host/ro.txt" ] || fail "ro bind: the write reached the host"
assert_eq "$(d run --rm --mount "type=bind,source=$T/host,target=/m,readonly" "$IMG" cat /m/in.txt)" \
    "from-host" "--mount type=bind"
out=$(d run --rm --mount "type=bind,source=$T/nope,target=/m" "$IMG" true 2>&1) && fail "--mount with a missing source ran"
assert_contains "$out" "bind source path does not exist" "--mount bind: missing source is an error"
d run --rm -v "$T/created:/m" "$IMG" true
[ -d "$T/created" ] || fail "-v creates a missing host directory"
out=$(d run --rm -v "bad name:/m" "$IMG" true 2>&1) && fail "invalid volume name accepted"
assert_exit 125 d run --rm -v "$T/host:relative" "$IMG" true

step "image symlinks cannot send a mount outside the rootfs"
# /data/a-symlink -> a inside the image; an absolute escape attempt through /proc/1/root
assert_eq "$(d run --rm -v "$T/host:/data/a-symlink/../../esc" "$IMG" cat /esc/in.txt)" "from-host" \
    "destination with .. stays in the rootfs"
[ ! -e /esc ] || fail "a mount destination escaped to the host"

# A symlink the container put in its own filesystem (here with docker cp) points at /tmp; the
# next start mounts below it: the target must be made inside the rootfs, not in the host's /tmp.
inner=$(basename "$T")-inner
d create --name esc -v "$T/host:/link/$inner" "$IMG" cat "/link/$inner/in.txt" >/dev/null
mkdir -p "$T/linktar"
ln -s /tmp "$T/linktar/link"
tar -C "$T/linktar" -cf - link | d cp - esc:/
assert_eq "$(d start -a esc)" "from-host" "bind below a container symlink works"
[ ! -e "/tmp/$inner" ] || fail "a mount target was created on the host through a container symlink"
d rm esc >/dev/null

step "named volumes: copy-up, survive rm, seen by the next container"
assert_eq "$(d run --rm -v vol1:/data "$IMG" cat /data/a)" "file a" "copy-up of the image's /data"
assert_eq "$(d run --rm -v vol1:/data "$IMG" sh -c 'ls /data/deleteme 2>/dev/null || echo gone')" "gone" \
    "copy-up honours whiteouts"
d run --name w1 -v vol1:/data "$IMG" sh -c 'echo persisted >/data/new.txt'
d rm w1 >/dev/null
assert_eq "$(d run --rm -v vol1:/data "$IMG" cat /data/new.txt)" "persisted" "volume survives rm"
assert_contains "$(d volume ls --format '{{.Name}} {{.Driver}}')" "vol1 local" "volume ls"
mp=$(d volume inspect -f '{{.Mountpoint}}' vol1)
assert_eq "$mp" "$T/e/root/volumes/vol1/_data" "volume inspect Mountpoint"
assert_eq "$(cat "$mp/new.txt")" "persisted" "data is under the Mountpoint"
d volume create --label team=storage vol2 >/dev/null
assert_eq "$(d volume inspect -f '{{.Labels.team}}' vol2)" "storage" "volume labels"
assert_eq "$(d volume ls -q --filter label=team=storage)" "vol2" "volume ls --filter label"
d create --name holder -v vol2:/v "$IMG" true >/dev/null
out=$(d volume rm vol2 2>&1) && fail "an in-use volume was removed"
assert_contains "$out" "volume is in use" "volume rm refuses an in-use volume"
d rm holder >/dev/null
d volume rm vol2 >/dev/null || fail "volume rm after the container went"
assert_exit 1 d volume inspect vol2
d volume create pruneme >/dev/null
d run --rm -v keepme:/k "$IMG" true
d create --name anonholder -v /held -v vol1:/data "$IMG" true >/dev/null
d volume prune -f >/dev/null
assert_exit 0 d volume inspect pruneme # named volumes stay unless --all (API >= 1.42)
d volume prune -af >/dev/null
assert_exit 1 d volume inspect pruneme
assert_exit 1 d volume inspect keepme
held=$(d inspect -f '{{range .Mounts}}{{if eq .Destination "/held"}}{{.Name}}{{end}}{{end}}' anonholder)
d volume inspect "$held" >/dev/null || fail "prune removed an anonymous volume in use"
d rm -v anonholder >/dev/null
d volume inspect vol1 >/dev/null || fail "rm -v removed a named volume"
assert_contains "$(d inspect -f '{{json .Mounts}}' "$(d create -v vol1:/data "$IMG" true)")" '"Name":"vol1"' \
    "inspect Mounts names the volume"
d container prune -f >/dev/null 2>&1 || d rm "$(d ps -aq)" >/dev/null

step "anonymous volumes: -v /path, removed by rm -v and by --rm"
cid=$(d create -v /anon "$IMG" true)
anon=$(d inspect -f '{{range .Mounts}}{{.Name}}{{end}}' "$cid")
[ ${#anon} = 64 ] || fail "anonymous volume has a generated name (got '$anon')"
d volume inspect "$anon" >/dev/null || fail "anonymous volume exists"
d rm -v "$cid" >/dev/null
assert_exit 1 d volume inspect "$anon"
before=$(d volume ls -q | wc -l)
d run --rm -v /anon2 "$IMG" true
assert_eq "$(d volume ls -q | wc -l)" "$before" "run --rm removes its anonymous volume"

step "tmpfs: --tmpfs and --mount type=tmpfs"
assert_contains "$(d run --rm --tmpfs /scratch:size=1m "$IMG" grep ' /scratch ' /proc/mounts)" "tmpfs" "--tmpfs mounted"
assert_contains "$(d run --rm --tmpfs /scratch "$IMG" grep ' /scratch ' /proc/mounts)" "noexec" "--tmpfs is noexec by default"
assert_contains "$(d run --rm --mount type=tmpfs,target=/t,tmpfs-size=2m "$IMG" grep ' /t ' /proc/mounts)" \
    "size=2048k" "--mount type=tmpfs with a size"

step "docker cp: out and in, files and directories, running and stopped"
d run -d --name cp1 -v vol1:/vol "$IMG" sleep 300 >/dev/null
# (not /etc/hostname: like docker, the engine gives every container its own)
d cp cp1:/data/b "$T/b.out"
assert_eq "$(cat "$T/b.out")" "file b" "cp a file out of a running container"
d cp cp1:/data "$T/dataout"
assert_eq "$(cat "$T/dataout/a")" "file a" "cp a directory out"
[ -L "$T/dataout/a-symlink" ] || fail "cp keeps symlinks as symlinks"
echo into >"$T/into.txt"
d cp "$T/into.txt" cp1:/tmp/
assert_eq "$(d exec cp1 cat /tmp/into.txt)" "into" "cp a file into a running container"
d cp "$T/into.txt" cp1:/tmp/renamed.txt
assert_eq "$(d exec cp1 cat /tmp/renamed.txt)" "into" "cp into a new name"
mkdir -p "$T/tree/sub"
echo deep >"$T/tree/sub/f"
d cp "$T/tree" cp1:/tmp/
assert_eq "$(d exec cp1 cat /tmp/tree/sub/f)" "deep" "cp a directory in"
d cp "$T/into.txt" cp1:/vol/
assert_eq "$(cat "$mp/into.txt")" "into" "cp into a path in a volume lands in the volume"
assert_eq "$(d exec cp1 stat -c %u /tmp/into.txt)" "0" "copied files are owned by root"
tar -C "$T/tree" -cf - sub | d cp - cp1:/tmp/
assert_eq "$(d exec cp1 cat /tmp/sub/f)" "deep" "cp - (a tar on stdin)"
d cp cp1:/tmp/sub - | tar -tf - >"$T/list"
assert_contains "$(cat "$T/list")" "sub/f" "cp to - writes a tar"
out=$(d cp cp1:/no/such "$T/x" 2>&1) && fail "cp of a missing path succeeded"
assert_contains "$out" "Could not find the file /no/such" "cp: missing path"
d stop -t 1 cp1 >/dev/null
d cp "$T/into.txt" cp1:/tmp/stopped.txt
d cp cp1:/tmp/stopped.txt "$T/stopped.out"
assert_eq "$(cat "$T/stopped.out")" "into" "cp into and out of a stopped container"
d cp cp1:/vol/new.txt "$T/volfile.out"
assert_eq "$(cat "$T/volfile.out")" "persisted" "cp from a volume of a stopped container"
d start cp1 >/dev/null
assert_eq "$(d exec cp1 cat /tmp/stopped.txt)" "into" "a file copied while stopped is there after start"
assert_eq "$(mounts_under "$T/e/root/containers/$(d inspect -f '{{.Id}}' cp1)/rootfs")" "1" \
    "a stopped container's cp leaves no mount (only the running rootfs)"

step "docker cp symlink safety (security case 18)"
echo host-secret >"$T/shadow"
chmod 600 "$T/shadow"
d exec cp1 sh -c "ln -s $T/shadow /tmp/evil; ln -s / /tmp/rootlink; mkdir -p /tmp/d"
d cp cp1:/tmp/evil "$T/evil.out"
[ -L "$T/evil.out" ] || fail "cp out of a symlink gives the symlink"
out=$(d cp cp1:/tmp/rootlink$T/shadow "$T/leak.out" 2>&1) || true
[ ! -e "$T/leak.out" ] || ! grep -q host-secret "$T/leak.out" || fail "cp out through a symlink read a host file"
echo overwritten >"$T/payload"
mkdir -p "$T/src"
echo overwritten >"$T/src/shadow"
# followed naively, /tmp/rootlink (-> /) would lead from the container's root to the host's
d cp "$T/src/shadow" "cp1:/tmp/rootlink$T/" 2>/dev/null || true
assert_eq "$(cat "$T/shadow")" "host-secret" "cp in through a symlink to / does not write the host"
d cp "$T/payload" cp1:/tmp/evil 2>/dev/null || true
assert_eq "$(cat "$T/shadow")" "host-secret" "cp onto a symlink to a host path does not write the host"
# A racer swaps /tmp/d between a directory and a symlink to the host's directory of the file.
d exec -d cp1 sh -c "mkdir -p /tmp/real; i=0; while [ \$i -lt 4000 ]; do
    rm -rf /tmp/d; ln -s $T /tmp/d; rm -f /tmp/d; mkdir /tmp/d; i=\$((i+1)); done"
for _ in $(seq 30); do
    d cp "$T/payload" cp1:/tmp/d/shadow 2>/dev/null || true
    d cp cp1:/tmp/d/shadow "$T/race.out" 2>/dev/null || true
    if [ -e "$T/race.out" ] && grep -q host-secret "$T/race.out"; then fail "racing cp read the host file"; fi
    rm -f "$T/race.out"
done
assert_eq "$(cat "$T/shadow")" "host-secret" "racing cp never wrote the host file"

step "docker stats --no-stream"
d run -d --name st -m 64m "$IMG" sleep 300 >/dev/null
out=$(d stats --no-stream --format '{{.Name}} {{.MemUsage}}' st)
assert_contains "$out" "st " "stats shows the container"
assert_contains "$out" "/ 64MiB" "stats shows the memory limit"
d rm -f st >/dev/null

step "docker events"
since=$(date +%s)
d run --rm --name ev "$IMG" true
sleep 1
out=$(d events --since "$since" --until "$(($(date +%s) + 1))" --filter container=ev --format '{{.Action}}')
for a in create start die destroy; do assert_contains "$out" "$a" "events: $a"; done
d events --filter type=container --format '{{.Action}} {{.Actor.Attributes.name}}' >"$T/live" 2>&1 &
evpid=$!
sleep 0.5
d run --rm --name live "$IMG" true
for _ in $(seq 50); do grep -q "destroy live" "$T/live" && break; sleep 0.1; done
kill "$evpid" 2>/dev/null || true
wait "$evpid" 2>/dev/null || true
evpid=
assert_contains "$(cat "$T/live")" "start live" "live events stream"
assert_contains "$(d events --since 1m --until 0s --filter type=volume --format '{{.Action}}')" "create" \
    "volume events"

step "docker 20.10 CLI (API 1.41)"
old() { /usr/bin/docker -H "$DOCKER_HOST" "$@"; }
old volume create oldcli >/dev/null
assert_contains "$(old volume ls -q)" "oldcli" "20.10 volume ls"
old cp "$T/into.txt" cp1:/tmp/old.txt
assert_eq "$(old cp cp1:/tmp/old.txt -  | tar -xOf -)" "into" "20.10 cp in and out"
old volume rm oldcli >/dev/null

step "cleanup: rm leaves no mounts, kill -9 + restart leaves no stale mounts"
d rm -f cp1 >/dev/null
d container prune -f >/dev/null 2>&1 || true
assert_eq "$(mounts_under "$T/e/root")" "0" "no mounts under the data root after rm"
d run -d --name k1 -v vol1:/data --tmpfs /t "$IMG" sleep 300 >/dev/null
engine_kill9
engine_start "$T/e"
# live-restore (the default): k1 outlived the engine and is re-adopted, its mounts with it
assert_contains "$(d ps --format '{{.Names}} {{.Status}}')" "k1 Up" "k1 re-adopted after the crash"
out=$(d volume rm vol1 2>&1) && fail "vol1 in use by k1 was removed after restart"
assert_contains "$out" "volume is in use" "volume references rebuilt after restart"
d rm -f k1 >/dev/null
assert_eq "$(mounts_under "$T/e/root")" "0" "no stale mounts after kill -9, restart and rm"
d volume rm vol1 >/dev/null
pass
