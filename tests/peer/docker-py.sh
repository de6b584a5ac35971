#!/usr/bin/env bash
# A peer's test suite: the integration tests of docker-py 5.0.3 (the version Debian ships as
# python3-docker) against Debian's dockerd 20.10 and machine-engine, side by side, in one run.
# Prints both pass counts and the tests that pass on dockerd but not on the engine.
#
#   tests/peer/docker-py.sh BUILD_DIR [PYTEST_ARGS...]     (root; make peer runs it)
#
# docker-py's tests are not committed here: they are read from a clone of docker/docker-py
# ($DOCKER_PY_SRC: a checkout or a git directory; default: the clone the session tools keep under
# /work/.mirror) at tag 5.0.3. Without one the script says so and exits 77 (skip).
# Offline: the images the suite names (alpine:3.10, alpine, busybox, hello-world) are one
# busybox-static image with every applet, built here and `docker load`ed into both daemons;
# tests that pull from Docker Hub fail on both sides alike. Swarm, service, node, secret, config
# and plugin tests are left out (neither daemon is a swarm manager; no plugins).
# Everything runs in a private network and mount namespace made here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src_top=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: docker-py.sh BUILD_DIR [PYTEST_ARGS...]}" && pwd)
shift
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (namespaces, dockerd)"; exit 77; }

PY=/usr/bin/python3 # Debian's python, where python3-docker 5.0.3 and pytest live
TAG=5.0.3
src=${DOCKER_PY_SRC:-/work/.mirror/docker+docker-py/repo}
if ! git --git-dir="$src" rev-parse -q --verify "refs/tags/$TAG^{commit}" >/dev/null 2>&1 &&
    ! git -C "$src" rev-parse -q --verify "refs/tags/$TAG^{commit}" >/dev/null 2>&1; then
    echo "skip: no docker-py clone with tag $TAG at '$src' (set DOCKER_PY_SRC to a clone of docker/docker-py)"
    exit 77
fi
for t in dockerd containerd busybox jq sha256sum; do
    command -v "$t" >/dev/null || { echo "FAIL: '$t' is not installed (scripts/install-deps installs it)"; exit 1; }
done
"$PY" -c 'import docker, pytest, pytest_timeout, paramiko' 2>/dev/null ||
    { echo "FAIL: $PY lacks docker/pytest/pytest-timeout/paramiko (scripts/install-deps installs them)"; exit 1; }
ENGINE=$build/engine/machine-engine
[ -x "$ENGINE" ] || { echo "FAIL: no engine at $ENGINE"; exit 1; }

if [ -z "${MACHINE_PEER_INNER:-}" ]; then
    exec env MACHINE_PEER_INNER=1 unshare --net --mount --propagation private bash "$0" "$build" "$@"
fi
ip link set lo up

T=$(mktemp -d /tmp/machine-peer-dockerpy-XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    source "$src_top/tests/integration/lib/engine.sh" 2>/dev/null &&
        engine_leftovers_clean "$T/engine" "$T/engine-exec" || true
    umount -R "$T"/docker/* 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# ---- docker-py's tests at the tag ----------------------------------------------------------
mkdir -p "$T/docker-py"
if git --git-dir="$src" rev-parse -q --verify "refs/tags/$TAG" >/dev/null 2>&1; then
    git --git-dir="$src" archive "$TAG" tests | tar -x -C "$T/docker-py"
else
    git -C "$src" archive "$TAG" tests | tar -x -C "$T/docker-py"
fi

# ---- one busybox image under every name the suite uses -------------------------------------
mkdir -p "$T/img/root"/{bin,etc,tmp,root}
r=$T/img/root
cp "$(command -v busybox)" "$r/bin/busybox"
for a in $("$r/bin/busybox" --list-full); do
    [ -e "$r/$a" ] || { mkdir -p "$r/$(dirname "$a")"; ln -s /bin/busybox "$r/$a"; }
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
chmod 1777 "$r/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$r" -cf "$T/img/layer.tar" .
diff_id=$(sha256sum <"$T/img/layer.tar" | cut -d' ' -f1)
mkdir -p "$T/img/arch/$diff_id"
mv "$T/img/layer.tar" "$T/img/arch/$diff_id/layer.tar"
jq -cn --arg d "sha256:$diff_id" '{architecture: "amd64", os: "linux",
    created: "2020-01-01T00:00:00Z",
    config: {Cmd: ["/bin/sh"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    rootfs: {type: "layers", diff_ids: [$d]},
    history: [{created: "2020-01-01T00:00:00Z", created_by: "busybox-static, every applet"}]}' \
    >"$T/img/config.json"
cfg=$(sha256sum <"$T/img/config.json" | cut -d' ' -f1)
mv "$T/img/config.json" "$T/img/arch/$cfg.json"
jq -cn --arg c "$cfg.json" --arg l "$diff_id/layer.tar" '[{Config: $c, Layers: [$l],
    RepoTags: ["alpine:3.10", "alpine:latest", "busybox:latest", "hello-world:latest"]}]' \
    >"$T/img/arch/manifest.json"
tar -C "$T/img/arch" -cf "$T/img/image.tar" .

# ---- the two daemons -----------------------------------------------------------------------
wait_ping() { # SOCK PID
    local _
    for _ in $(seq 300); do
        curl -sf --max-time 2 --unix-socket "$1" http://x/_ping >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
containerd --root "$T/containerd" --state "$T/containerd-state" --address "$T/containerd.sock" \
    >"$T/containerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -S "$T/containerd.sock" ] && break; sleep 0.05; done
dockerd --containerd "$T/containerd.sock" --data-root "$T/docker" --exec-root "$T/docker-exec" \
    -H "unix://$T/docker.sock" --pidfile "$T/docker.pid" >"$T/dockerd.log" 2>&1 &
dpid=$!; pids+=($dpid)
"$ENGINE" -H "unix://$T/engine.sock" --data-root "$T/engine" --exec-root "$T/engine-exec" \
    --pidfile "$T/engine.pid" >"$T/engine.log" 2>&1 &
epid=$!; pids+=($epid)
wait_ping "$T/docker.sock" "$dpid" || { tail -20 "$T/dockerd.log"; echo "FAIL: dockerd did not start"; exit 1; }
wait_ping "$T/engine.sock" "$epid" || { tail -20 "$T/engine.log"; echo "FAIL: the engine did not start"; exit 1; }
for s in docker engine; do
    DOCKER_HOST=unix://$T/$s.sock /usr/local/bin/docker load -i "$T/img/image.tar" >/dev/null ||
        { echo "FAIL: docker load into $s"; exit 1; }
done

# ---- the suite, once per daemon ------------------------------------------------------------
deselect=(--ignore=tests/integration/api_swarm_test.py --ignore=tests/integration/api_service_test.py
    --ignore=tests/integration/api_secret_test.py --ignore=tests/integration/api_config_test.py
    --ignore=tests/integration/api_plugin_test.py --ignore=tests/integration/models_swarm_test.py
    --ignore=tests/integration/models_services_test.py --ignore=tests/integration/models_nodes_test.py)
run_suite() { # NAME [PYTEST_ARGS...]
    local name=$1
    shift
    # a home of its own per run: docker-py's context tests leave contexts under ~/.docker. Without
    # a config.json there docker-py 5.0.3 puts them in ./contexts (the shared test tree), so the
    # second daemon's run would find the first one's "test" context
    mkdir -p "$T/home-$name/.docker"
    echo '{}' >"$T/home-$name/.docker/config.json"
    # both daemons get the same requests: API 1.41, docker-py 5.0.3's default and what Debian's
    # dockerd 20.10 speaks (left to negotiate, docker-py would talk 1.45 to the engine, where
    # moby changed answers the suite was written against: volume prune, image inspect)
    (cd "$T/docker-py" && HOME=$T/home-$name DOCKER_HOST=unix://$T/$name.sock PYTHONPATH=$here \
        DOCKER_TEST_API_VERSION=${DOCKER_TEST_API_VERSION:-1.41} timeout 2400 \
        "$PY" -m pytest -q -p no:cacheprovider -p peer_warnings \
        -W ignore::DeprecationWarning --timeout 60 -o junit_family=xunit1 \
        --junitxml "$T/$name.xml" "${deselect[@]}" "$@" tests/integration >"$T/$name.out" 2>&1) || true
    "$PY" - "$T/$name.xml" >"$T/$name.passed" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).getroot().iter('testcase'):
    if not any(c.tag in ('failure', 'error', 'skipped') for c in tc):
        print(tc.get('classname') + '::' + tc.get('name'))
PYEOF
    sort -o "$T/$name.passed" "$T/$name.passed"
}
run_suite docker "$@"
run_suite engine "$@"

nd=$(wc -l <"$T/docker.passed")
ne=$(wc -l <"$T/engine.passed")
echo "docker-py $TAG integration tests (swarm/service/node/secret/config/plugin left out):"
echo "  Debian's dockerd $(dockerd --version | sed 's/^Docker version //; s/,.*//'): $nd passed"
echo "  machine-engine: $ne passed"
missing=$(comm -23 "$T/docker.passed" "$T/engine.passed")
if [ -n "$missing" ]; then
    echo "passing on dockerd, not on machine-engine ($(printf '%s\n' "$missing" | wc -l)):"
    printf '  %s\n' $missing
    [ -n "${PEER_OUT:-}" ] && cp "$T/engine.out" "$T/docker.out" "$T/engine.log" "$PEER_OUT"/ 2>/dev/null
    exit 1
fi
echo "machine-engine passes every test that dockerd passes"
