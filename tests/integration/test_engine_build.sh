#!/usr/bin/env bash
# docker build with the classic builder (DOCKER_BUILDKIT=0, the docker CLI 28) against
# machine-engine: a multi-stage Dockerfile (build args, WORKDIR, COPY from the context and
# COPY --from a stage, ENV, LABEL, CMD) whose image runs with the built content, dockerd's
# messages, .dockerignore, --target, a rebuild that is all cache and a change that is not, a
# failing RUN with its exit code, and a context that cannot reach outside itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-build-XXXXXX)
ENGINE_ARGS=(--bridge none)
cleanup() {
    local rc=$?
    [ "$rc" = 0 ] || tail -n 30 "$T"/e/engine.log >&2 2>/dev/null || true
    [ -z "${engine_pid:-}" ] || "$DOCKER" rm -f $("$DOCKER" ps -aq) >/dev/null 2>&1 || true
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/e/exec" 2>/dev/null || true
    registry_stop "$T/registry" 2>/dev/null || true
    registry_stop "$T/authreg" 2>/dev/null || true
    { grep -o "$T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
BASE=$REGISTRY_ADDR/test/img:v1
engine_start "$T/e"
export DOCKER_HOST=unix://$T/e/engine.sock DOCKER_BUILDKIT=0
d() { "$DOCKER" "$@"; }
d pull -q "$BASE" >/dev/null

C=$T/ctx
mkdir -p "$C/src"
echo "content a" >"$C/src/a.txt"
echo "top" >"$C/top.txt"
echo "do not send" >"$C/secret.txt"
echo "log" >"$C/x.log"
printf 'secret.txt\n*.log\n' >"$C/.dockerignore"
cat >"$C/Dockerfile" <<'EOF'
# syntax=docker/dockerfile:1
ARG BASE
FROM ${BASE} AS build
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from build" >/out/msg && echo built-it
WORKDIR /work
COPY src/ ./src/
COPY . /ctx/
RUN test ! -e /ctx/secret.txt && test ! -e /ctx/x.log && test -e /ctx/top.txt && \
    cat src/a.txt >/out/copied

FROM ${BASE}
LABEL org.test.built=yes
ENV APP=/app
COPY --from=build /out /app/
COPY top.txt $APP/
CMD ["sh", "-c", "cat /app/msg /app/copied /app/top.txt; pwd"]
EOF

step "a multi-stage build: dockerd's messages, and the image runs with the built content"
out=$(d build -t test/built:v1 -t test/built:other --build-arg BASE="$BASE" --build-arg GREETING=hi "$C" 2>&1) ||
    fail "docker build: $out"
printf '%s\n' "$out" | sed 's/^/    /' >&2
assert_contains "$out" "Step 1/14 : ARG BASE" "steps are numbered over the whole Dockerfile"
assert_contains "$out" "Step 2/14 : FROM \${BASE} AS build" "the step text is the instruction as written"
assert_contains "$out" " ---> Running in " "steps run in containers"
assert_contains "$out" "built-it" "a RUN step's output is streamed"
assert_contains "$out" "Removing intermediate container" "intermediate containers are removed"
assert_contains "$out" "Successfully built " "the build ends as dockerd's does"
assert_contains "$out" "Successfully tagged test/built:v1" "first tag"
assert_contains "$out" "Successfully tagged test/built:other" "second tag"
id=$(d image inspect -f '{{.Id}}' test/built:v1)
assert_contains "$out" "Successfully built ${id:7:12}" "the built ID is the tagged image's"
assert_eq "$(d run --rm test/built:v1)" "hi from build
content a
top
/" "the image runs with the content of both stages and the build arg"
assert_eq "$(d image inspect -f '{{index .Config.Labels "org.test.built"}} {{index .Config.Env 1}}' test/built:v1)" \
    "yes APP=/app" "LABEL and ENV are in the image config"
[ -z "$(d ps -aq)" ] || fail "containers are left after the build: $(d ps -a)"
assert__ok "no container is left behind"
assert_contains "$(d history --no-trunc --format '{{.CreatedBy}}' test/built:v1)" \
    '/bin/sh -c #(nop)  CMD ["sh" "-c" "cat /app/msg /app/copied /app/top.txt; pwd"]' "history names the steps as dockerd does"

step "a rebuild is all cache; a changed file rebuilds from its COPY"
out=$(d build -t test/built:v1 --build-arg BASE="$BASE" --build-arg GREETING=hi "$C" 2>&1) || fail "rebuild: $out"
assert_eq "$(printf '%s\n' "$out" | grep -c ' ---> Using cache')" "11" "every step after FROM comes from the cache"
assert_eq "$(d image inspect -f '{{.Id}}' test/built:v1)" "$id" "the same image"
echo "top changed" >"$C/top.txt"
out=$(d build -t test/built:v2 --build-arg BASE="$BASE" --build-arg GREETING=hi "$C" 2>&1) || fail "build after a change: $out"
# the build stage's COPY . /ctx/ sees top.txt too: it and the RUN after it rebuild; the second
# stage's LABEL, ENV and COPY --from (the same files again) come from the cache, COPY top.txt not
assert_eq "$(printf '%s\n' "$out" | grep -c ' ---> Using cache')" "7" "only the steps the change does not reach are cached"
assert_contains "$out" "Step 13/14 : COPY top.txt \$APP/
 ---> Running in" "the changed file's COPY runs again"
assert_eq "$(d run --rm test/built:v2 cat /app/top.txt)" "top changed" "the change is in the new image"
out=$(d build -t test/built:bye --build-arg BASE="$BASE" --build-arg GREETING=bye "$C" 2>&1) ||
    fail "build with another arg: $out"
assert_contains "$out" 'Step 4/14 : RUN mkdir -p /out && echo "$GREETING from build" >/out/msg && echo built-it
 ---> Running in' "a RUN that sees a changed build arg is not served from the cache"
assert_eq "$(d run --rm test/built:bye cat /app/msg)" "bye from build" "the new value is in the image"

step "--isolation: default (the only value on Linux) builds, another is refused by name"
out=$(d build -q --isolation default --build-arg BASE="$BASE" --build-arg GREETING=hi "$C" 2>"$T/iso.err") ||
    fail "build --isolation default: $(cat "$T/iso.err")"
assert_eq "$out" "$(d image inspect -f '{{.Id}}' test/built:v2)" "--isolation default builds (from the cache)"
rc=0
out=$(d build -q --isolation hyperv --build-arg BASE="$BASE" "$C" 2>&1) || rc=$?
assert_eq "$rc" "1" "--isolation hyperv fails"
assert_contains "$out" "isolation hyperv is not supported by machine-engine" "--isolation hyperv is refused by name"

step "the CLI's default without the buildx plugin falls back to the classic builder; -q prints the ID"
if "$DOCKER" buildx version >/dev/null 2>&1; then
    echo "skip: buildx is installed, the CLI's default is BuildKit" >&2
else
    out=$(env -u DOCKER_BUILDKIT "$DOCKER" build -q --build-arg BASE="$BASE" --build-arg GREETING=hi "$C" 2>/dev/null) ||
        fail "docker build without DOCKER_BUILDKIT=0"
    assert_eq "$out" "$(d image inspect -f '{{.Id}}' test/built:v2)" "-q prints the image ID (all from the cache)"
fi

step "docker-compose 1.29 build: (docker-py's POST /build)"
if command -v docker-compose >/dev/null; then
    mkdir -p "$T/compose"
    printf 'version: "3.7"\nservices:\n  app:\n    image: test/composed:v1\n    build:\n      context: %s\n      args:\n        BASE: %s\n        GREETING: compose\n' \
        "$C" "$BASE" >"$T/compose/docker-compose.yml"
    out=$(cd "$T/compose" && COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -p buildtest build 2>&1) ||
        fail "docker-compose build: $out"
    assert_contains "$out" "Successfully tagged test/composed:v1" "docker-compose shows the classic builder's messages"
    assert_eq "$(d run --rm test/composed:v1 cat /app/msg)" "compose from build" "the composed image has its build arg"
else
    echo "skip: docker-compose is not installed" >&2
fi

step "--target stops at a stage; unused build args are reported"
out=$(d build -t test/built:stage --target build --build-arg BASE="$BASE" --build-arg UNUSED=1 "$C" 2>&1) ||
    fail "build --target: $out"
assert_contains "$out" "Step 1/8 : ARG BASE" "only the steps up to the target count"
assert_contains "$out" "[Warning] One or more build-args [UNUSED] were not consumed" "unused build args"
assert_eq "$(d run --rm test/built:stage sh -c 'cat /out/msg; pwd; test -e /app || echo no-app')" \
    "hello from build
/work
no-app" "the target stage's image"

step "a failing RUN: its exit code and dockerd's message"
F=$T/fail
mkdir -p "$F"
printf 'FROM %s\nRUN echo before && exit 3\nRUN echo never\n' "$BASE" >"$F/Dockerfile"
rc=0
out=$(d build "$F" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a failing RUN built"
assert_contains "$out" "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3" \
    "the failing command and its exit code"
case "$out" in *"echo never"*) fail "the step after the failure ran" ;; esac
assert__ok "nothing runs after the failure"

step "FROM scratch: only what is copied in, no parent's layers or history; cached on rebuild"
S=$T/scratch
mkdir -p "$S"
echo "from scratch" >"$S/m"
printf 'ARG BASE\nFROM ${BASE} AS tools\nFROM scratch\nCOPY --from=tools /bin/busybox /bin/busybox\nCOPY m /m\nENV PATH=/bin\nCMD ["/bin/busybox", "cat", "/m"]\n' >"$S/Dockerfile"
out=$(d build -t test/scratch --build-arg BASE="$BASE" "$S" 2>&1) || fail "FROM scratch build: $out"
assert_eq "$(d run --rm test/scratch)" "from scratch" "the scratch image runs the copied busybox"
assert_eq "$(d image inspect -f '{{len .RootFS.Layers}}' test/scratch)" "2" "two layers: the two COPY steps"
assert_eq "$(d history -q test/scratch | wc -l)" "4" "four history rows, none from a base image"
out=$(d build -t test/scratch --build-arg BASE="$BASE" "$S" 2>&1) || fail "FROM scratch rebuild: $out"
assert_eq "$(printf '%s\n' "$out" | grep -c ' ---> Using cache')" "4" "a scratch stage is cached too"

step "COPY --chown by id and by name (the image's /etc/passwd and /etc/group), --chmod"
O=$T/own
mkdir -p "$O"
echo x >"$O/f"
chmod 644 "$O/f"
printf 'FROM %s\nCOPY --chown=nobody:nogroup f /a/\nCOPY --chown=7 --chmod=600 f /b\n' "$BASE" >"$O/Dockerfile"
out=$(d build -t test/own "$O" 2>&1) || fail "build with --chown: $out"
assert_eq "$(d run --rm test/own stat -c '%u:%g %a' /a/f /b)" "65534:65534 644
7:7 600" "owners and modes of the copied files"
printf 'FROM %s\nCOPY --chown=nosuchuser f /a/\n' "$BASE" >"$O/Dockerfile"
out=$(d build "$O" 2>&1) && fail "--chown with an unknown user built"
assert_contains "$out" "nosuchuser" "an unknown --chown user is an error"

step "the context cannot reach outside itself"
X=$T/escape
mkdir -p "$X"
echo "host secret" >"$T/host-secret"
ln -s "$T/host-secret" "$X/link"
printf 'FROM %s\nCOPY ../host-secret /x\n' "$BASE" >"$X/Dockerfile"
out=$(d build "$X" 2>&1) && fail "COPY ../ built"
assert_contains "$out" "forbidden path outside the build context" "COPY ../x is refused"
printf 'FROM %s\nCOPY link /x\n' "$BASE" >"$X/Dockerfile"
out=$(d build -t test/escape "$X" 2>&1) && fail "COPY of a symlink to a host file built: $(d run --rm test/escape cat /x)"
assert_contains "$out" "file not found in build context" "a symlink out of the context resolves inside it"

step "FROM an image of a registry with auth: the CLI's credentials travel in X-Registry-Config"
python3 -c "import crypt; print('builder:' + crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))" >"$T/htpasswd"
ANON_ADDR=$REGISTRY_ADDR
REGISTRY_HTPASSWD=$T/htpasswd registry_start "$T/authreg"
AUTH_ADDR=$REGISTRY_ADDR
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --dest-creds builder:s3cret \
    "docker://$ANON_ADDR/test/img:v1" "docker://$AUTH_ADDR/private/base:v1" || fail "skopeo copy to the auth registry"
P=$T/private
mkdir -p "$P" "$T/dcfg"
printf 'FROM %s/private/base:v1\nRUN echo from-private\n' "$AUTH_ADDR" >"$P/Dockerfile"
out=$(d build "$P" 2>&1) && fail "an image of a registry with auth was pulled without credentials"
assert__ok "without credentials the FROM pull is refused"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$AUTH_ADDR" "$(printf builder:s3cret | base64)" >"$T/dcfg/config.json"
out=$(DOCKER_CONFIG=$T/dcfg "$DOCKER" build -t test/private "$P" 2>&1) || fail "build with credentials: $out"
assert_contains "$out" "from-private" "with the CLI's credentials the base image is pulled and the build runs"

step "Dockerfile problems are reported like dockerd's"
printf 'FROM %s\nFOO bar\n' "$BASE" >"$F/Dockerfile"
out=$(d build "$F" 2>&1) && fail "an unknown instruction built"
assert_contains "$out" "unknown instruction: FOO" "unknown instruction"
printf 'FROM %s\nRUN <<EOF\necho hi\nEOF\n' "$BASE" >"$F/Dockerfile"
out=$(d build "$F" 2>&1) && fail "a heredoc built"
assert_contains "$out" "heredocs" "heredocs are refused clearly"
# a build that fails before any output is an HTTP error, not a 200 stream (dockerd; docker-py's
# test_443 expects an APIError for an empty Dockerfile)
: >"$T/empty/Dockerfile" 2>/dev/null || { mkdir -p "$T/empty"; : >"$T/empty/Dockerfile"; }
tar -C "$T/empty" -cf "$T/empty.tar" Dockerfile
resp=$(curl -s --max-time 60 -w '\n%{http_code}' --unix-socket "$T/e/engine.sock" \
    -H 'Content-Type: application/x-tar' --data-binary @"$T/empty.tar" 'http://x/v1.41/build?t=a/b/c')
assert_eq "$(tail -n1 <<<"$resp")" "400" "an empty Dockerfile is a 400"
assert_contains "$(head -n -1 <<<"$resp")" "cannot be empty" "with dockerd's message"

pass
