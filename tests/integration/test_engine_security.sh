#!/usr/bin/env bash
# Security cases against machine-engine with real clients (issue 20), in a network and mount
# namespace of its own (every connection stays on this namespace's loopback):
#  - the API stays available under a flood of silent TLS connections and of half-sent requests
#    on the Unix socket (deadlines, per-source limit, room for new clients);
#  - case 1 with a real TLS client against the engine's own TLS setup (no cert, other CA, no
#    clientAuth), case 3 with a TLS 1.1 probe first shown able to succeed;
#  - case 20 raced with docker exec; docker load with an escaping manifest.json symlink;
#    PidsLimit, Hostname, docker cp hardlinks and exec -w /proc/self/fd/N refused clearly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (network namespace, containers)"
    exit 77
fi
if [ -z "${MACHINE_SEC_INNER:-}" ]; then
    exec env MACHINE_SEC_INNER=1 unshare --net --mount --propagation private bash "$0" "$@"
fi
ip link set lo up
source "$here/lib/assert.sh"
source "$here/lib/images.sh"
source "$here/lib/engine.sh"

DOCKER=/usr/local/bin/docker
FLOOD="python3 $here/lib/flood.py"
T=$(mktemp -d /tmp/machine-security-XXXXXX)
PORT=23760
flood_pid=
cleanup() {
    local rc=$?
    [ -n "$flood_pid" ] && kill "$flood_pid" 2>/dev/null
    [ "$rc" = 0 ] || tail -n 30 "$T/e/engine.log" >&2 2>/dev/null
    engine_stop
    engine_leftovers_clean "$T/e/root" "$T/e/exec"
    rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n--- %s\n' "$*" >&2; }

# ---- certificates: a CA, the engine's server cert, a client, and rogue clients -----------------
C=$T/certs
mkdir -p "$C"
mkcert() { # NAME CA-PREFIX EXT (extendedKeyUsage, SAN...)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$C/$1-key.pem" -out "$C/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$C/$1.ext"
    openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2-key.pem" -CAcreateserial \
        -days 2 -extfile "$C/$1.ext" -out "$C/$1.pem" 2>/dev/null
}
for ca in ca otherca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$ca" \
        -keyout "$C/$ca-key.pem" -out "$C/$ca.pem" 2>/dev/null
done
mkcert server ca "$(printf 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1')"
mkcert client ca "extendedKeyUsage=clientAuth"
mkcert rogue otherca "extendedKeyUsage=clientAuth"
mkcert noclientauth ca "extendedKeyUsage=serverAuth"

images_build
skopeo copy -q "oci:$IMAGES_LAYOUT:v1" "docker-archive:$T/img.tar:test/img:v1" >/dev/null ||
    fail "skopeo: cannot write the test image archive"

ENGINE_ARGS=(--bridge none --exec-root "$T/e/exec" -H "tcp://127.0.0.1:$PORT" --tlsverify
    --tlscacert "$C/ca.pem" --tlscert "$C/server.pem" --tlskey "$C/server-key.pem")
engine_start "$T/e"
SOCK=$T/e/engine.sock
URL=https://127.0.0.1:$PORT
tls_ping() { # [curl args...]: the body of /_ping over mutual TLS, bounded to 1 s
    curl -s --max-time 1 --cacert "$C/ca.pem" --cert "$C/client.pem" --key "$C/client-key.pem" "$@" "$URL/_ping"
}
assert_eq "$(tls_ping)" "OK" "a client with our certificate gets /_ping over mutual TLS"

step "case 1: the engine's TLS refuses real TLS clients without a valid client certificate"
rc=0; out=$(curl -s --max-time 5 --cacert "$C/ca.pem" "$URL/_ping") || rc=$?
echo "  no cert: curl rc $rc, '$out'"
[ "$out" != "OK" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 7 ] || fail "a TLS client without a certificate was served (rc $rc)"
assert__ok "TLS client without a certificate: the handshake fails (curl rc $rc)"
rc=0; out=$(curl -s --max-time 5 --cacert "$C/ca.pem" --cert "$C/rogue.pem" --key "$C/rogue-key.pem" "$URL/_ping") || rc=$?
[ "$out" != "OK" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 7 ] || fail "a client certificate from another CA was accepted (rc $rc)"
assert__ok "client certificate from another CA refused (curl rc $rc)"
rc=0; out=$(curl -s --max-time 5 --cacert "$C/ca.pem" --cert "$C/noclientauth.pem" --key "$C/noclientauth-key.pem" "$URL/_ping") || rc=$?
[ "$out" != "OK" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 7 ] || fail "a certificate without clientAuth was accepted (rc $rc)"
assert__ok "certificate without clientAuth refused (curl rc $rc)"
out=$(HOME=$T "$DOCKER" --tlsverify --tlscacert "$C/ca.pem" -H "tcp://127.0.0.1:$PORT" version 2>&1) &&
    fail "the docker CLI without a client certificate was served: $out"
assert_contains "$out" "certificate required" "the docker CLI over TLS without a client certificate is refused" 

step "case 3: TLS 1.1 is refused (the probe is first shown to succeed against a server allowing it)"
probe_tls11() { # PORT: prints the negotiated cipher, "(NONE)" when the handshake failed
    timeout 5 openssl s_client -connect "127.0.0.1:$1" -tls1_1 -cipher DEFAULT@SECLEVEL=0 \
        -cert "$C/client.pem" -key "$C/client-key.pem" -CAfile "$C/ca.pem" </dev/null 2>/dev/null |
        sed -n 's/^New, .*Cipher is //p'
}
sleep 10 | timeout 10 openssl s_server -accept 127.0.0.1:24443 -tls1_1 -cipher DEFAULT@SECLEVEL=0 \
    -cert "$C/server.pem" -key "$C/server-key.pem" >/dev/null 2>&1 &
control=$!
for _ in $(seq 50); do ss -Hltn 'sport = :24443' | grep -q . && break; sleep 0.1; done
cipher=$(probe_tls11 24443 || true)
kill "$control" 2>/dev/null; wait "$control" 2>/dev/null || true
[ -n "$cipher" ] && [ "$cipher" != "(NONE)" ] || fail "control: the TLS 1.1 probe fails even against a server that allows TLS 1.1 ('$cipher')"
assert__ok "control: the TLS 1.1 probe completes against openssl s_server -tls1_1 ($cipher)"
assert_eq "$(probe_tls11 "$PORT" || true)" "(NONE)" "the engine refuses TLS 1.1"

step "availability: 1030 silent connections (no ClientHello) held on the TLS port"
flood_start() { # TARGET COUNT MODE
    coproc FLOODP { $FLOOD "$1" "$2" "$3" 60; }
    flood_pid=$FLOODP_PID
    local line
    read -r -t 60 line <&"${FLOODP[0]}" || fail "the flood did not get its connections open"
    echo "  flood: $line"
}
flood_end() { # sets flood_closed: how many of its connections the engine had closed
    local line= out=${FLOODP[0]}
    eval "exec ${FLOODP[1]}>&-" # stdin EOF: the flood ends
    read -r -t 10 line <&"$out" || true
    wait "$flood_pid" 2>/dev/null || true
    flood_pid=
    flood_closed=${line#closed }
}
# From five loopback sources (under the per-source limit each): the total limit is reached.
flood_start "tcp:127.0.0.1:$PORT@127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6" 1030 silent
assert_eq "$(tls_ping)" "OK" "a mutual-TLS client gets /_ping within 1 s while 1030 silent connections are held"
mkdir -p "$C/dockercli" && cp "$C/ca.pem" "$C/dockercli/ca.pem" &&
    cp "$C/client.pem" "$C/dockercli/cert.pem" && cp "$C/client-key.pem" "$C/dockercli/key.pem"
assert_eq "$(DOCKER_HOST="tcp://127.0.0.1:$PORT" DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$C/dockercli" \
    timeout 10 "$DOCKER" version --format '{{.Server.Os}}')" "linux" "the docker CLI over mutual TLS too"
flood_end
n=$flood_closed
[ "$n" -ge 6 ] || fail "only $n flood connections were closed: the engine held more than its limit"
assert__ok "the engine closed $n of the waiting connections (the oldest, and those past the handshake deadline)"

# One source alone: the per-source limit keeps it from taking every slot.
flood_start "tcp:127.0.0.1:$PORT@127.0.0.2" 1030 silent
assert_eq "$(tls_ping --interface 127.0.0.2)" "OK" "a client from the flooding address itself still gets in"
assert_eq "$(tls_ping)" "OK" "and one from another address"
flood_end

step "availability: 1030 half-sent request heads held on the Unix socket"
flood_start "unix:$SOCK" 1030 half
assert_eq "$(curl -s --max-time 1 --unix-socket "$SOCK" http://x/_ping)" "OK" \
    "/_ping over the Unix socket within 1 s while 1030 half-sent requests are held"
flood_end

step "deadlines: the handshake, a request head and an idle keep-alive connection"
# Short deadlines so the test need not wait for the defaults (10 s, 30 s, 120 s); the floods
# above ran with the defaults, so only the limits kept the engine available there.
engine_stop
export MACHINE_ENGINE_API_HANDSHAKE_TIMEOUT_MS=1500 MACHINE_ENGINE_API_HEADER_TIMEOUT_MS=1500
export MACHINE_ENGINE_API_IDLE_TIMEOUT_MS=1500
engine_start "$T/e"
deadline_closes() { # TARGET MODE: exit 0 when the engine closed a lone connection within 6 s
    local r
    r=$($FLOOD "$1" 1 "$2" 6 < <(sleep 8) | tail -1)
    [ "$r" = "closed 1" ]
}
deadline_closes "tcp:127.0.0.1:$PORT" silent || fail "a silent TLS connection was kept past the handshake deadline"
assert__ok "a connection that never sends a ClientHello is closed (MACHINE_ENGINE_API_HANDSHAKE_TIMEOUT_MS)"
deadline_closes "unix:$SOCK" half || fail "a half-sent request was kept past the head deadline"
assert__ok "a request head that never ends is closed (MACHINE_ENGINE_API_HEADER_TIMEOUT_MS)"
python3 - "$SOCK" <<'PY' || fail "an idle keep-alive connection was kept open"
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(6); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
reply = s.recv(4096)
assert b"200 OK" in reply, reply
end = time.monotonic() + 6
while time.monotonic() < end:  # what is left of the reply, then EOF
    if s.recv(4096) == b"":
        sys.exit(0)
sys.exit(1)
PY
assert__ok "an idle keep-alive connection is closed after its reply (MACHINE_ENGINE_API_IDLE_TIMEOUT_MS)"
engine_stop
unset MACHINE_ENGINE_API_HANDSHAKE_TIMEOUT_MS MACHINE_ENGINE_API_HEADER_TIMEOUT_MS MACHINE_ENGINE_API_IDLE_TIMEOUT_MS
engine_start "$T/e"

export DOCKER_HOST=unix://$SOCK
d() { "$DOCKER" "$@"; }
d load -q -i "$T/img.tar" >/dev/null || fail "docker load of the test image"
IMG=test/img:v1
api() { # METHOD PATH [JSON]: prints "STATUS BODY"
    curl -s --max-time 30 --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' \
        ${3:+-d "$3"} -w ' %{http_code}' "http://x/v1.45$2"
}

step "docker load: a manifest.json symlink that leaves the archive is refused"
mkdir -p "$T/evil" && ln -s ../../../../etc/passwd "$T/evil/manifest.json"
tar -C "$T/evil" -cf "$T/evil.tar" manifest.json
rm -f "/(null)"
out=$(d load -i "$T/evil.tar" 2>&1) && fail "an archive whose manifest.json points outside loaded: $out"
assert_contains "$out" "outside the archive" "the error names the escaping symlink"
[ ! -e "/(null)" ] && [ ! -e "$T/(null)" ] || fail "the engine opened a file named '(null)'"
assert__ok "no '(null)' file was looked up or created"

step "PidsLimit and Hostname are validated like dockerd"
out=$(api POST /containers/create "{\"Image\":\"$IMG\",\"HostConfig\":{\"PidsLimit\":-5}}")
assert_eq "${out##* }" "400" "PidsLimit -5 is refused with 400"
assert_contains "$out" "PIDs limit" "the error names the PIDs limit"
id=$(d create --pids-limit -1 "$IMG" true) || fail "PidsLimit -1 (unlimited) refused"
assert__ok "PidsLimit -1 means unlimited"
d rm "$id" >/dev/null
out=$(api POST /containers/create "{\"Image\":\"$IMG\",\"Hostname\":\"web\\nevil\"}")
assert_eq "${out##* }" "400" "a hostname with a newline is refused with 400"
assert_contains "$out" "invalid hostname format" "dockerd's wording"
out=$(d run --rm --hostname -bad "$IMG" true 2>&1) && fail "hostname '-bad' accepted"
assert_contains "$out" "invalid hostname format" "a label starting with a dash is refused"
assert_eq "$(d run --rm --hostname web-1.example "$IMG" hostname)" "web-1.example" "a valid hostname is set"

step "docker cp: a hardlink to a host path is refused with 400"
# the test image has no /etc/shadow; the host has one
d create --name cpbox "$IMG" sleep 300 >/dev/null
mkdir -p "$T/cpsrc"
python3 - "$T/hl.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    link = tarfile.TarInfo("stolen"); link.type = tarfile.LNKTYPE; link.linkname = "/etc/shadow"
    t.addfile(link)
PY
d start cpbox >/dev/null
out=$(curl -s --max-time 30 --unix-socket "$SOCK" -X PUT -H 'Content-Type: application/x-tar' \
    --data-binary "@$T/hl.tar" -w ' %{http_code}' "http://x/v1.45/containers/cpbox/archive?path=/")
assert_eq "${out##* }" "400" "a hardlink to /etc/shadow (a host path, not in the image) answers 400"
assert_contains "$out" "hardlink" "the error says which entry"
assert_eq "$(d exec cpbox sh -c 'test -e /stolen && echo there || echo absent')" "absent" "nothing was linked"

step "docker exec -w /proc/self/fd/N fails with a clear error"
out=$(d exec -w /proc/self/fd/3 cpbox true 2>&1) && fail "exec in /proc/self/fd/3 succeeded"
assert_contains "$out" 'chdir to cwd ("/proc/self/fd/3")' "the error names the working directory (runc's words): $out"
out=$(d exec -w /proc/self/fd/7 cpbox true 2>&1) && fail "exec in /proc/self/fd/7 succeeded"
assert_contains "$out" 'chdir to cwd ("/proc/self/fd/7")' "also for an fd that is not open"
assert_eq "$(d exec -w /data cpbox pwd)" "/data" "a normal working directory still works"

step "case 20: a container scanning /proc/*/exe while docker exec starts processes never sees the engine"
d exec -d cpbox sh -c 'end=$(( $(date +%s) + 60 )); while [ $(date +%s) -lt $end ] && [ ! -e /tmp/stop ]; do
    for e in /proc/[0-9]*/exe; do readlink "$e"; done 2>/dev/null | grep -v "^/bin/busybox$" >>/tmp/seen; done; touch /tmp/done'
for i in $(seq 40); do d exec cpbox true || fail "exec $i failed"; done
d exec cpbox touch /tmp/stop
for _ in $(seq 100); do d exec cpbox test -e /tmp/done && break; sleep 0.1; done
seen=$(d exec cpbox cat /tmp/seen)
assert_eq "$seen" "" "no process other than the image's busybox was ever visible through /proc/*/exe"
d rm -f cpbox >/dev/null

pass
