#!/usr/bin/env bash
# machine-engine's API layer against the real docker CLIs (28.x at
# /usr/local/bin/docker, Debian's 20.10 at /usr/bin/docker) and curl, over a
# Unix socket in a temporary directory (plus one loopback TCP listener).
# Also: socket mode 0660 with no window for unprivileged connects (security
# case 4), pid file exclusivity, refusal of non-loopback TCP without TLS,
# clean shutdown on SIGTERM.
set -uo pipefail

ENGINE="${MACHINE_BUILD:?MACHINE_BUILD is not set}/engine/machine-engine"
DOCKER=/usr/local/bin/docker
DOCKER_OLD=/usr/bin/docker
[ -x "$ENGINE" ] || { echo "FAIL: $ENGINE is not built"; exit 1; }
[ -x "$DOCKER" ] || { echo "FAIL: $DOCKER is missing"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is missing (scripts/install-deps)"; exit 1; }

TMP=$(mktemp -d /tmp/test_engine_api.XXXXXX)
# Others may traverse the directory: the socket's own mode must be the only gate.
chmod 755 "$TMP"
SOCK=$TMP/e.sock
PIDS=()
export DOCKER_CONFIG=$TMP/docker-config
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_API_VERSION DOCKER_TLS_VERIFY

cleanup() {
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
failed_fast() { [ "$1" -ne 0 ] && [ "$1" -ne 124 ]; } # non-zero, not a timeout
check() { # check <description> <command...>
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# start_engine <socket> <pidfile> [extra flags...]: sets STARTED_PID
start_engine() {
    local sock=$1 pidfile=$2; shift 2
    # --bridge none: this test needs no container networking, so the host's network is untouched
    "$ENGINE" -H "unix://$sock" --data-root "$TMP/root" --pidfile "$pidfile" --bridge none "$@" \
        2>>"$TMP/engine.log" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    for _ in $(seq 1 100); do
        [ -S "$sock" ] && return 0
        kill -0 "$STARTED_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop_engine <pid>: SIGTERM and wait (bounded); returns the exit status
stop_engine() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    wait "$pid"
}

ucurl() { curl -sS --max-time 5 --unix-socket "$SOCK" "$@"; }

VERSION=$("$ENGINE" --version | sed -n 's/^machine-engine version \([^,]*\),.*/\1/p')
[ -n "$VERSION" ] || fail "--version prints 'machine-engine version X, build Y'"

start_engine "$SOCK" "$TMP/engine.pid" -D --label test.label=hello --label zone=it \
    --insecure-registry 127.0.0.1:5000 || { cat "$TMP/engine.log"; echo "FAIL: engine did not start"; exit 1; }
ENGINE_PID=$STARTED_PID

# ---- socket -----------------------------------------------------------------
check "socket mode is 0660" [ "$(stat -c %a "$SOCK")" = 660 ]
if getent group docker >/dev/null; then
    check "socket group is docker" [ "$(stat -c %G "$SOCK")" = docker ]
fi
check "pid file holds the engine's pid" [ "$(cat "$TMP/engine.pid")" = "$ENGINE_PID" ]

# ---- docker CLI 28 --------------------------------------------------------------
out=$(timeout 20 "$DOCKER" -H "unix://$SOCK" version 2>&1); rc=$?
check "docker version exits 0" [ $rc -eq 0 ]
check "docker version shows our server" grep -q "^Server: machine-engine" <<<"$out"
check "docker version shows server version $VERSION" \
    grep -Eq "^  Version: +$VERSION\$" <<<"$out"
check "docker version shows API 1.45 (minimum 1.24)" grep -q "1.45 (minimum version 1.24)" <<<"$out"

out=$(timeout 20 "$DOCKER" -H "unix://$SOCK" info 2>&1); rc=$?
check "docker info exits 0" [ $rc -eq 0 ]
check "docker info shows our labels" grep -q "test.label=hello" <<<"$out"
check "docker info shows the server version" grep -q "Server Version: $VERSION" <<<"$out"
check "docker info lists the insecure registry" grep -q "127.0.0.1:5000" <<<"$out"

out=$(timeout 20 "$DOCKER" -H "unix://$SOCK" ps 2>&1); rc=$?
check "docker ps answers" test "$rc" -eq 0
check "docker ps prints the table" grep -q "^CONTAINER ID" <<<"$out"

# ---- curl ------------------------------------------------------------------------
head=$(ucurl -I http://localhost/_ping | tr -d '\r')
for h in "Api-Version: 1.45" "Ostype: linux" "Docker-Experimental: false" "Builder-Version: 1" \
         "Swarm: inactive" "Cache-Control: no-cache, no-store, must-revalidate" \
         "Pragma: no-cache" "Server: machine-engine/$VERSION (linux)"; do
    check "HEAD /_ping has '$h'" grep -qx "$h" <<<"$head"
done
check "GET /_ping body is OK" [ "$(ucurl http://localhost/_ping)" = OK ]
check "GET /v1.41/_ping body is OK" [ "$(ucurl http://localhost/v1.41/_ping)" = OK ]

out=$(ucurl -w '\n%{http_code} %{content_type}' http://localhost/v9.99/version)
check "/v9.99/version is 400 application/json" [ "$(tail -n1 <<<"$out")" = "400 application/json" ]
check "/v9.99/version message" [ "$(head -n1 <<<"$out")" = \
    '{"message":"client version 9.99 is too new. Maximum supported API version is 1.45"}' ]

out=$(ucurl -w '\n%{http_code} %{content_type}' http://localhost/no/such/path)
check "unknown path is 404 application/json" [ "$(tail -n1 <<<"$out")" = "404 application/json" ]
check "unknown path body" [ "$(head -n1 <<<"$out")" = '{"message":"page not found"}' ]

# ---- Debian's docker 20.10 CLI (API 1.41) ---------------------------------------------
if [ -x "$DOCKER_OLD" ]; then
    out=$(timeout 20 "$DOCKER_OLD" -H "unix://$SOCK" version 2>&1); rc=$?
    check "docker 20.10 version exits 0" [ $rc -eq 0 ]
    check "docker 20.10 shows our server" grep -q "^Server: machine-engine" <<<"$out"
    check "docker 20.10 talked API 1.41" grep -q "GET /v1.41/version -> 200" "$TMP/engine.log"
else
    echo "SKIP: $DOCKER_OLD missing (Debian package docker.io, scripts/install-deps)"
fi

# ---- pid file, TCP policy ------------------------------------------------------------------
timeout 10 "$ENGINE" -H "unix://$TMP/e2.sock" --data-root "$TMP/root2" \
    --pidfile "$TMP/engine.pid" 2>"$TMP/second.log"; rc=$?
check "a second engine with the same pid file refuses to start" failed_fast $rc
check "the second engine says why" grep -q "machine-engine is already running\|pid file" "$TMP/second.log"
check "the second engine created no socket" [ ! -e "$TMP/e2.sock" ]
check "the first engine still serves" [ "$(ucurl http://localhost/_ping)" = OK ]

timeout 10 "$ENGINE" -H tcp://0.0.0.0:23750 --data-root "$TMP/root3" \
    --pidfile "$TMP/e3.pid" 2>"$TMP/tcp.log"; rc=$?
check "non-loopback TCP without --tlsverify is refused at startup" [ $rc -eq 2 ]
check "the refusal names --tlsverify" grep -q -- "--tlsverify" "$TMP/tcp.log"
timeout 10 "$ENGINE" -H tcp://0.0.0.0:23750 --tlsverify --data-root "$TMP/root3" \
    --pidfile "$TMP/e3.pid" 2>"$TMP/tls.log"; rc=$?
check "TCP with --tlsverify fails until TLS exists (never plain text)" failed_fast $rc

tcp_ok=0
for _ in 1 2 3; do
    port=$((20000 + RANDOM % 12000)) # below the ephemeral range
    if start_engine "$TMP/e4.sock" "$TMP/e4.pid" -H "tcp://127.0.0.1:$port"; then
        tcp_pid=$STARTED_PID
        body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/_ping")
        [ "$body" = OK ] && tcp_ok=1
        stop_engine "$tcp_pid"
        break
    fi
done
check "loopback TCP listener serves /_ping" [ $tcp_ok -eq 1 ]

# ---- SIGTERM ------------------------------------------------------------------------------
stop_engine "$ENGINE_PID"; rc=$?
check "SIGTERM: exit status 0" [ $rc -eq 0 ]
check "SIGTERM: socket removed" [ ! -e "$SOCK" ]
check "SIGTERM: pid file removed" [ ! -e "$TMP/engine.pid" ]

# ---- security case 4: no window with a looser mode ----------------------------------------------
# An unprivileged prober hammers every path the socket can be reached at while engines start
# and stop again and again: the final path, and the socket inside the temporary directory it
# is bound in before being renamed into place. The publish delay hook holds each engine right
# after listen(), before the socket gets its mode (the window a bind-listen-chmod
# implementation leaves open); umask 000 makes bind() itself create the socket 0777, the worst
# case. curl exit 7 = could not connect. The prober also records how often it found the
# socket in the window, so the test shows it probed there.
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: socket race test needs root (setpriv to nobody)"
elif ! command -v setpriv >/dev/null; then
    echo "SKIP: socket race test needs setpriv (util-linux)"
else
    RDIR=$TMP/race
    mkdir -p "$RDIR" && chmod 0755 "$RDIR"
    RSOCK=$RDIR/race.sock
    umask 000
    asnobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    (
        for i in $(seq 1 300); do
            for p in "$RSOCK" "$RDIR"/.machine-engine-*/s; do
                [ -S "$p" ] || continue
                [ "$p" != "$RSOCK" ] && echo "in-window" >>"$TMP/probe.hits"
                asnobody curl -s -o /dev/null --max-time 0.5 --unix-socket "$p" http://l/_ping
                rc=$?
                [ $rc -ne 7 ] && echo "connected as nobody to $p on attempt $i (curl rc $rc)"
            done
            sleep 0.01
        done
    ) >"$TMP/probe.out" 2>&1 &
    prober=$!
    starts=0
    while kill -0 "$prober" 2>/dev/null && [ $starts -lt 30 ]; do
        MACHINE_ENGINE_TEST_PUBLISH_DELAY_MS=150 start_engine "$RSOCK" "$TMP/race.pid" || break
        starts=$((starts + 1))
        sleep 0.1
        stop_engine "$STARTED_PID"
    done
    wait "$prober"
    umask 022
    hits=$(wc -l <"$TMP/probe.hits" 2>/dev/null || echo 0)
    check "engine restarted under the prober ($starts times)" [ $starts -ge 3 ]
    check "the prober found the socket inside its window ($hits times)" [ "$hits" -ge 1 ]
    check "nobody never connected to the socket" [ ! -s "$TMP/probe.out" ]
    [ -s "$TMP/probe.out" ] && cat "$TMP/probe.out"

    # Control: the prober does detect a socket it may connect to.
    start_engine "$RSOCK" "$TMP/race.pid"
    chmod 0666 "$RSOCK"
    asnobody curl -s -o /dev/null --max-time 2 --unix-socket "$RSOCK" http://l/_ping; rc=$?
    check "control: nobody connects once the mode is loosened (curl rc $rc)" [ $rc -eq 0 ]
    stop_engine "$STARTED_PID"
fi

if [ $failures -ne 0 ]; then
    echo "---- engine log"
    cat "$TMP/engine.log"
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
