#!/usr/bin/env bash
# Issue "remote engine over mutual TLS": machine create -d generic on a fresh Debian host (a
# minbase rootfs with sshd in its own network namespace, none of the engine's libraries) →
# eval $(machine env h1) → the docker CLI runs containers over TLS, pulling from a registry the
# host reaches. Also: rogue clients and servers refused, address change renews the cert,
# rm + create again, kill -9 during provisioning then `machine provision`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/registry.sh"
source "$here/lib/images.sh"
source "$here/lib/testhost.sh" # last: its EXIT trap runs every cleanup (testhost_on_exit)

M=${MACHINE_BIN:?}
BUILD=${MACHINE_BUILD:?}
DOCKER=/usr/local/bin/docker
export MACHINE_ENGINE_BUNDLE=$BUILD/machine-engine-bundle.tar.gz
[ -r "$MACHINE_ENGINE_BUNDLE" ] || fail "no engine bundle at $MACHINE_ENGINE_BUNDLE (make -C build engine-bundle)"
T=$(mktemp -d /tmp/machine-prov-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "registry_cleanup 2>/dev/null; rm -rf '$T'"

ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
testhost_up h1 >/dev/null
IP1=$(testhost_ip h1)
GW=$(testhost_gateway h1)

# The registry listens where the host can reach it: this machine's side of h1's link.
REGISTRY_HOST=$GW registry_start "$T/registry"
images_build
images_push "$REGISTRY_ADDR"
IMG=$REGISTRY_ADDR/test/img:v1
step() { printf '\n--- %s\n' "$*" >&2; }

step "the host has none of the engine's libraries"
for lib in libcurl libarchive libjansson; do
    testhost_exec h1 sh -c "ls /usr/lib/x86_64-linux-gnu/$lib* 2>/dev/null" && fail "$lib is on the host"
done
assert__ok "no libcurl, libarchive or jansson on the host"

step "create -d generic installs the engine"
start=$(date +%s%N)
out=$("$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" \
    --engine-insecure-registry "$REGISTRY_ADDR" --engine-label lab=one --tls-san h1.test h1 2>&1) ||
    { testhost_exec h1 tail -20 /var/log/machine-engine.log >&2 || true; fail "create failed: $out"; }
echo "create took $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
assert_contains "$out" "Installing the engine" "create prints its steps"
assert_contains "$out" "Engine is up and running!" "create ends with the engine up"
assert_eq "$(testhost_exec h1 hostname)" "h1" "hostname set"
assert_eq "$(testhost_exec h1 stat -c %a /etc/machine-engine/server-key.pem)" "600" "server key 0600 on the host"
echo "$("$M" ls)" | grep -E "^h1 .*Running .*tcp://$IP1:2376 +[0-9]" >/dev/null || fail "ls shows the engine version: $("$M" ls)"
assert_eq "$("$M" version h1)" "$(cat "$(dirname "$MACHINE_ENGINE_BUNDLE")/bundle-build/../machine-engine-bundle.tar.gz" >/dev/null; tar xzf "$MACHINE_ENGINE_BUNDLE" -O machine-engine/VERSION)" "version NAME is the engine's"

step "docker over mutual TLS"
eval "$("$M" env h1)"
assert_eq "$DOCKER_HOST" "tcp://$IP1:2376" "env sets DOCKER_HOST"
"$DOCKER" pull -q "$IMG" >/dev/null || fail "pull over TLS"
assert_eq "$("$DOCKER" run --rm "$IMG" echo hi)" "hi" "docker run over TLS"
assert_eq "$(echo over-tls | "$DOCKER" run --rm -i "$IMG" cat)" "over-tls" "stdin over TLS (close_notify is stdin EOF)"
assert_contains "$("$DOCKER" info --format '{{.Labels}}')" "lab=one" "--engine-label reaches the engine"
tmux kill-server 2>/dev/null || true
tmux new-session -d -s it -x 100 -y 30 "DOCKER_HOST=$DOCKER_HOST DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$DOCKER_CERT_PATH $DOCKER run -it --rm $IMG sh; echo EXIT=\$? > $T/it-exit; sleep 30"
for _ in $(seq 50); do tmux capture-pane -p -t it | grep -q '#' && break; sleep 0.2; done
tmux send-keys -t it 'test -t 0 && echo IS-A-$((6 * 7)); stty size; exit 6' Enter
for _ in $(seq 50); do [ -s "$T/it-exit" ] && break; sleep 0.2; done
screen=$(tmux capture-pane -p -t it)
tmux kill-server 2>/dev/null || true
assert_contains "$screen" "IS-A-42" "docker run -it over TLS has a TTY"; assert_contains "$screen" "30 100" "docker run -it over TLS has the window size"
assert_eq "$(cat "$T/it-exit" 2>/dev/null)" "EXIT=6" "docker run -it over TLS exit status"

step "rogue clients and servers are refused (security cases 1, 2)"
certs=$MACHINE_STORAGE_PATH/machines/h1
# A real TLS client without a certificate (plain HTTP to a TLS port proves nothing).
rc=0; out=$(curl -s --max-time 5 --cacert "$certs/ca.pem" "https://$IP1:2376/_ping") || rc=$?
[ "$out" != "OK" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 7 ] || fail "a TLS client without a certificate was served (curl rc $rc)"
assert__ok "a TLS client without a certificate is refused in the handshake (curl rc $rc)"
out=$(env -u DOCKER_CERT_PATH HOME="$T" "$DOCKER" --tlsverify --tlscacert "$certs/ca.pem" \
    -H "tcp://$IP1:2376" version 2>&1) && fail "docker over TLS without a client certificate was served"
assert_contains "$out" "certificate required" "docker over TLS without a client certificate is refused"
mkdir -p "$T/rogue" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=rogue -keyout "$T/rogue/key.pem" -out "$T/rogue/cert.pem" 2>/dev/null
cp "$certs/ca.pem" "$T/rogue/ca.pem"
assert_exit 1 env DOCKER_CERT_PATH="$T/rogue" "$DOCKER" version
mkdir -p "$T/serveronly" && cp "$certs/ca.pem" "$T/serveronly/ca.pem" &&
    cp "$certs/server.pem" "$T/serveronly/cert.pem" && cp "$certs/server-key.pem" "$T/serveronly/key.pem"
assert_exit 1 env DOCKER_CERT_PATH="$T/serveronly" "$DOCKER" version
# TLS 1.1 (security case 3): the probe is first shown to complete against a server allowing it.
probe_tls11() { # HOST:PORT: the negotiated cipher, "(NONE)" when the handshake failed
    timeout 5 openssl s_client -connect "$1" -tls1_1 -cipher DEFAULT@SECLEVEL=0 \
        -cert "$certs/cert.pem" -key "$certs/key.pem" -CAfile "$certs/ca.pem" </dev/null 2>/dev/null |
        sed -n 's/^New, .*Cipher is //p'
}
sleep 10 | timeout 10 openssl s_server -accept 127.0.0.1:24443 -tls1_1 -cipher DEFAULT@SECLEVEL=0 \
    -cert "$certs/server.pem" -key "$certs/server-key.pem" >/dev/null 2>&1 &
control=$!
for _ in $(seq 50); do ss -Hltn 'sport = :24443' | grep -q . && break; sleep 0.1; done
cipher=$(probe_tls11 127.0.0.1:24443 || true)
kill "$control" 2>/dev/null; wait "$control" 2>/dev/null || true
[ -n "$cipher" ] && [ "$cipher" != "(NONE)" ] || fail "control: the TLS 1.1 probe fails against a server allowing TLS 1.1"
assert__ok "control: the TLS 1.1 probe completes against openssl s_server -tls1_1 ($cipher)"
assert_eq "$(probe_tls11 "$IP1:2376" || true)" "(NONE)" "TLS below 1.2 refused"
cp "$T/rogue/cert.pem" "$T/other-ca.pem"
mkdir -p "$T/wrongca" && cp "$T/other-ca.pem" "$T/wrongca/ca.pem" && cp "$certs/cert.pem" "$certs/key.pem" "$T/wrongca/"
assert_exit 1 env DOCKER_CERT_PATH="$T/wrongca" "$DOCKER" version

step "machine refuses an engine whose certificate is from another CA (security case 2)"
cp "$certs/ca.pem" "$T/ca.pem.good"
cp "$T/other-ca.pem" "$certs/ca.pem"
out=$("$M" env h1 2>&1) && fail "env accepted an engine certificate from another CA"
assert_contains "$out" "TLS verification" "the error says why"
cp "$T/ca.pem.good" "$certs/ca.pem"

step "upgrade keeps images and containers"
"$DOCKER" run -d --name keeper "$IMG" sleep 300 >/dev/null
"$DOCKER" stop -t 0 keeper >/dev/null
"$DOCKER" run -d --name runner "$IMG" sleep 300 >/dev/null
ps_before=$("$DOCKER" ps --format '{{.ID}} {{.Names}} {{.Image}} {{.Command}}')
pid_before=$("$DOCKER" inspect -f '{{.State.Pid}}' runner)
out=$("$M" upgrade h1 2>&1) || fail "upgrade: $out"
assert_contains "$out" "Upgraded 'h1'" "upgrade reports the engine"
assert_contains "$out" "running container(s) keep running while the engine restarts (live-restore)" \
    "upgrade says the running containers keep running"
eval "$("$M" env h1)"
assert_contains "$("$DOCKER" ps -a --format '{{.Names}}')" "keeper" "containers survive an upgrade"
assert_contains "$("$DOCKER" images --format '{{.Repository}}')" "test/img" "images survive an upgrade"
# live-restore: the bundle is swapped and the engine restarted under a running container
assert_eq "$("$DOCKER" ps --format '{{.ID}} {{.Names}} {{.Image}} {{.Command}}')" "$ps_before" "docker ps before and after the upgrade: identical"
assert_eq "$("$DOCKER" inspect -f '{{.State.Status}} {{.State.Pid}}' runner)" "running $pid_before" "the running container kept its process"
assert_eq "$("$DOCKER" exec runner echo after-upgrade)" "after-upgrade" "exec into it after the upgrade"
"$DOCKER" rm -f keeper runner >/dev/null

step "regenerate-certs reissues the server certificate"
before=$(openssl x509 -noout -serial -in "$certs/server.pem")
"$M" regenerate-certs -f h1 >/dev/null || fail "regenerate-certs"
[ "$(openssl x509 -noout -serial -in "$certs/server.pem")" != "$before" ] || fail "server cert not reissued"
assert_eq "$("$DOCKER" run --rm "$IMG" echo regenerated)" "regenerated" "docker works after regenerate-certs"

step "the address changes: machine env renews the certificate"
NEWIP=$(testhost_set_ip h1)
"$M" inspect h1 >/dev/null
# generic hosts are addressed by what the user gave; point it at the new address
sed -i "s/\"IPAddress\": \"$IP1\"/\"IPAddress\": \"$NEWIP\"/" "$MACHINE_STORAGE_PATH/machines/h1/config.json"
out=$("$M" env h1 2>&1 >/dev/null) || fail "env after the address change: $out"
assert_contains "$out" "issuing a new certificate" "env says it renewed the certificate"
eval "$("$M" env h1)"
assert_eq "$("$DOCKER" run --rm "$IMG" echo renewed)" "renewed" "docker works again after renewal"

step "kill -9 during provisioning, then machine provision completes"
"$M" provision h1 >/dev/null 2>&1 &
pid=$!
sleep 1.5
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
"$M" provision h1 >/dev/null || fail "provision after an interrupted provision"
eval "$("$M" env h1)"
assert_eq "$("$DOCKER" run --rm "$IMG" echo again)" "again" "engine works after re-provisioning"

step "rm, then create again on the same host"
"$M" rm -y h1 >/dev/null
"$M" create -d generic --generic-ip-address "$NEWIP" --generic-ssh-key "$T/id" \
    --engine-insecure-registry "$REGISTRY_ADDR" -q h1 >/dev/null || fail "create again"
eval "$("$M" env h1)"
assert_eq "$("$DOCKER" run --rm "$IMG" echo recreated)" "recreated" "docker after rm + create"

step "a sudo user instead of root"
testhost_up h2 >/dev/null
IP2=$(testhost_ip h2)
out=$("$M" create -d generic --generic-ip-address "$IP2" --generic-ssh-user debian \
    --generic-ssh-key "$T/id" --engine-port 12376 -q h2 2>&1) || fail "create as a sudo user: $out"
eval "$("$M" env h2)"
assert_eq "$DOCKER_HOST" "tcp://$IP2:12376" "--engine-port moves the TLS API"
assert_eq "$("$DOCKER" version --format '{{.Server.Os}}')" "linux" "engine installed through sudo answers"

pass
