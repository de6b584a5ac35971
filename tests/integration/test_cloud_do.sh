#!/usr/bin/env bash
# Issue 13, DigitalOcean: machine create -d digitalocean against tests/sim/do_sim.py (API v2
# from the public reference, on 127.0.0.1), whose droplets are real hosts (sshd in network
# namespaces): create → eval $(machine env) → docker run → stop/start/restart → rm. Failure
# paths: a bad token (nothing made), the droplet quota, a droplet that never becomes active, a
# storm of 429s (backoff seen, create succeeds), kill -9 of machine mid-create then rm (nothing
# left in the simulator). The token never reaches config.json, inspect or --debug output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/images.sh"
source "$here/lib/testhost.sh" # last: its EXIT trap runs every cleanup (testhost_on_exit)

if [ "$(id -u)" != 0 ]; then
    echo "skip: needs root (the simulator's droplets are hosts in network namespaces)"
    exit 77
fi
M=${MACHINE_BIN:?}
BUILD=${MACHINE_BUILD:?}
DOCKER=/usr/local/bin/docker
export MACHINE_ENGINE_BUNDLE=$BUILD/machine-engine-bundle.tar.gz
[ -r "$MACHINE_ENGINE_BUNDLE" ] || fail "no engine bundle at $MACHINE_ENGINE_BUNDLE (make -C build engine-bundle)"
T=$(mktemp -d /tmp/machine-do-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=30000
TOKEN=dop_v1_sim0123456789abcdefSECRET
SIM_PID=""
step() { printf '\n--- %s\n' "$*" >&2; }

sim_stop() {
    [ -n "$SIM_PID" ] || return 0
    local hp i
    hp=$(cat "$T/port.hosts-pid" 2>/dev/null || true)
    kill "$SIM_PID" 2>/dev/null
    wait "$SIM_PID" 2>/dev/null
    # the hosts helper removes its hosts when its input ends
    for ((i = 0; i < 600; i++)); do
        [ -n "$hp" ] && [ -d "/proc/$hp" ] || break
        sleep 0.1
    done
    SIM_PID=""
}
testhost_on_exit "sim_stop; rm -rf '$T'"

images_build
skopeo copy -q "oci:$IMAGES_LAYOUT:v1" "docker-archive:$T/img.tar:test/img:v1" ||
    fail "cannot make the image archive"
IMG=test/img:v1

python3 "$MACHINE_SRC/tests/sim/do_sim.py" --token "$TOKEN" --port-file "$T/port" \
    --max-per-page 2 --seed-keys 3 --seed-droplets 3 2>"$T/sim.log" &
SIM_PID=$!
for ((i = 0; i < 100; i++)); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "the simulator did not start: $(cat "$T/sim.log")"
API=http://127.0.0.1:$(cat "$T/port")
sim() { curl -sf --max-time 10 "$API/_sim/$1" "${@:2}"; }
sim_config() { sim config -X POST -d "$1" >/dev/null || fail "simulator config $1"; }
# jq over the simulator's state
simq() { sim state | jq -r "$1"; }
DO=(-d digitalocean --digitalocean-api-url "$API")

step "bad token: a clear error, nothing made, nothing listed"
out=$("$M" create "${DO[@]}" --digitalocean-access-token wrong-token bad1 2>&1) && fail "create with a bad token succeeded"
assert_contains "$out" "Unable to authenticate you" "the API's words reach the user"
assert_eq "$("$M" ls -q)" "" "nothing listed"
assert_eq "$(simq '[.droplets[], .keys[]] | length')" "6" "nothing made in the cloud (3 seed droplets, 3 seed keys)"

step "create through a storm of 429s on every POST (backoff, then success)"
printf '#cloud-config\nruncmd: [echo from-userdata]\n' >"$T/userdata"
sim_config '{"throttle": 3, "throttle_method": "POST", "retry_after": 1}'
out=$("$M" --debug create "${DO[@]}" --digitalocean-access-token "$TOKEN" \
    --digitalocean-tags web,lab:one --digitalocean-backups --digitalocean-ipv6 \
    --digitalocean-monitoring --digitalocean-private-networking \
    --digitalocean-userdata "$T/userdata" --digitalocean-region ams3 c1 2>&1) ||
    fail "create c1 failed: $(tail -30 <<<"$out")"
printf '%s\n' "$out" >"$T/create-debug.log"
assert_eq "$(simq .counters.throttled)" "3" "the simulator answered three 429s"
assert_contains "$out" "digitalocean: throttled (429 too_many_requests), retry 1 in 1000 ms" \
    "the client waited as Retry-After said"
assert_contains "$out" "retry 3 in 1000 ms" "and retried each throttled POST"
case "$out" in *"$TOKEN"*) fail "--debug output shows the token" ;; esac
assert__ok "--debug output never shows the token"
sim_config '{"throttle": 0}'

step "the droplet as requested"
body=$(simq '.create_bodies[-1]')
owner=$(jq -r '.tags[-1]' <<<"$body")
assert_contains "$owner" "machine-c1-" "the droplet carries the machine's owner tag"
assert_eq "$(jq -c '[.name, .region, .size, .image, .backups, .ipv6, .monitoring, .private_networking, .tags[0:2]]' <<<"$body")" \
    '["c1","ams3","s-1vcpu-1gb","debian-12-x64",true,true,true,true,["web","lab:one"]]' "flags reach the request"
assert_eq "$(jq -r .user_data <<<"$body")" "$(cat "$T/userdata")" "user data sent"
key_id=$(jq -r '.ssh_keys[0]' <<<"$body")
assert_eq "$(simq ".keys[] | select(.id == $key_id) | .name")" "$owner" "the machine's key was uploaded under the owner tag"
assert_eq "$(simq ".keys[] | select(.id == $key_id) | .public_key")" "$(cat "$MACHINE_STORAGE_PATH/machines/c1/id_ssh.pub" | tr -d '\n')" \
    "the uploaded key is the machine's"

step "the token is a secret"
cfg=$MACHINE_STORAGE_PATH/machines/c1
cred=$MACHINE_STORAGE_PATH/credentials/c1.json
grep -q "$TOKEN" "$cfg/config.json" && fail "config.json holds the token"
assert__ok "config.json does not hold the token"
assert_eq "$(stat -c %a "$cred")" 600 "the credentials file is 0600"
assert_eq "$(stat -c %a "${cred%/*}")" 700 "the credentials directory is 0700"
grep -q "$TOKEN" "$cred" || fail "the credentials file lacks the token"
grep -rq "$TOKEN" "$cfg" && fail "the machine's directory holds the token"
assert__ok "the machine's directory (what users copy and export) does not hold the token"
case "$("$M" inspect c1)" in *"$TOKEN"*) fail "inspect shows the token" ;; esac
assert__ok "inspect does not show the token"
assert_eq "$(grep -rl "$TOKEN" "$MACHINE_STORAGE_PATH")" "$cred" "no other file of the store holds the token"
ls "$MACHINE_STORAGE_PATH"/locks/rate-* >/dev/null 2>&1 || fail "no shared rate limiter state in the store's lock directory"
assert__ok "the requests went through the shared rate limiter"

step "docker on the droplet"
assert_eq "$("$M" status c1)" "Running" "state from the droplet status"
ip=$("$M" ip c1)
assert_eq "$ip" "$(simq '.droplets[] | select(.name == "c1") | .networks.v4[0].ip_address')" "the droplet's public IPv4"
(
    eval "$("$M" env c1)"
    "$DOCKER" load -i "$T/img.tar" >/dev/null || fail "docker load"
    assert_eq "$("$DOCKER" run --rm "$IMG" echo hi)" "hi" "docker run on the droplet"
)

step "stop, start, restart through droplet actions"
sim_config '{"exhausted": 1}'
out=$("$M" --debug stop c1 2>&1) || fail "stop: $(tail -20 <<<"$out")"
assert_contains "$out" "digitalocean: request quota used up, waiting" \
    "an answer with RateLimit-Remaining 0 makes the next request wait for RateLimit-Reset"
assert_eq "$("$M" status c1)" "Stopped" "stopped after stop"
assert_eq "$(simq '.droplets[] | select(.name == "c1") | .status')" "off" "the droplet is off"
assert_eq "$(simq '[.actions[] | select(.type == "shutdown" and .status == "completed")] | length')" "1" "shutdown action completed"
timeout 5 bash -c "exec 3<>/dev/tcp/$ip/22" 2>/dev/null && fail "the droplet still answers SSH when off"
assert__ok "SSH is gone while off"
"$M" start c1 || fail "start"
assert_eq "$("$M" status c1)" "Running" "running after start"
(eval "$("$M" env c1)"; assert_eq "$("$DOCKER" run --rm "$IMG" echo again)" "again" "docker after start")
"$M" restart c1 || fail "restart"
assert_eq "$(simq '[.actions[] | select(.type == "reboot" and .status == "completed")] | length')" "1" "reboot action completed"

step "credentials gone: a clear error naming what to set"
mv "$cred" "$T/creds.saved"
out=$("$M" stop c1 2>&1) && fail "stop without credentials succeeded"
assert_contains "$out" "DIGITALOCEAN_ACCESS_TOKEN" "the error names the variable"
assert_eq "$(DIGITALOCEAN_ACCESS_TOKEN=$TOKEN "$M" status c1)" "Running" "the environment's token is read now"
mv "$T/creds.saved" "$cred"

step "an account key by fingerprint: nothing uploaded, the user's key kept by rm"
ssh-keygen -q -t ed25519 -N '' -C user-key -f "$T/userkey"
fp=$(jq -n --arg k "$(cat "$T/userkey.pub")" '{name: "user key", public_key: $k}' |
    curl -sf --max-time 10 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data-binary @- "$API/v2/account/keys" | jq -r .ssh_key.fingerprint)
[ -n "$fp" ] && [ "$fp" != null ] || fail "cannot add the user's key to the simulator"
assert_exit 3 "$M" create "${DO[@]}" --digitalocean-access-token "$TOKEN" --digitalocean-ssh-key-fingerprint "$fp" f0
keys_before=$(simq '.keys | length')
out=$("$M" create "${DO[@]}" --digitalocean-access-token "$TOKEN" --digitalocean-ssh-key-fingerprint "$fp" \
    --digitalocean-ssh-key-path "$T/userkey" f1 2>&1) || fail "create f1 failed: $(tail -20 <<<"$out")"
assert_eq "$(simq '.keys | length')" "$keys_before" "no key uploaded"
assert_eq "$(simq '.create_bodies[-1].ssh_keys[0]')" "$fp" "the droplet gets the account's key by fingerprint"
assert_eq "$("$M" ssh f1 -- echo via-user-key)" "via-user-key" "SSH with the user's key"
"$M" rm -y f1 || fail "rm f1"
assert_eq "$(simq "[.keys[] | select(.fingerprint == \"$fp\")] | length")" "1" "rm keeps the user's key"
assert_eq "$(simq '[.droplets[] | select(.name == "f1")] | length')" "0" "rm deletes f1's droplet"

step "quota exceeded: the key made is deleted, the machine listed with its error"
sim_config '{"quota": true}'
out=$("$M" create "${DO[@]}" --digitalocean-access-token "$TOKEN" q1 2>&1) && fail "create over quota succeeded"
assert_contains "$out" "exceed your droplet limit" "the quota error reaches the user"
assert_eq "$("$M" inspect -f '{{.Lifecycle.Status}}' q1)" "error" "q1 stays listed as failed"
assert_eq "$(simq '[.keys[] | select(.name | startswith("machine-q1-"))] | length')" "0" "q1's key deleted"
"$M" rm -y q1 || fail "rm q1"
sim_config '{"quota": false}'

step "never active: bounded wait, droplet and key deleted, rm says they are gone"
sim_config '{"never_active": true}'
out=$(MACHINE_OP_TIMEOUT_MS=6000 "$M" create "${DO[@]}" --digitalocean-access-token "$TOKEN" n1 2>&1) &&
    fail "create of a never active droplet succeeded"
assert_contains "$out" "active with a public IPv4 did not happen within" "the wait is bounded and named"
assert_eq "$(simq '[.droplets[] | select(.name == "n1")] | length')" "0" "n1's droplet deleted"
assert_eq "$(simq '[.keys[] | select(.name | startswith("machine-n1-"))] | length')" "0" "n1's key deleted"
out=$("$M" rm -y n1 2>&1) || fail "rm n1: $out"
assert_contains "$out" "is already gone" "rm of a droplet already gone succeeds and says so"

step "kill -9 of machine mid-create, then rm: nothing left"
"$M" create "${DO[@]}" --digitalocean-access-token "$TOKEN" k1 >"$T/k1.log" 2>&1 &
kpid=$!
for ((i = 0; i < 300; i++)); do
    [ "$(simq '[.droplets[] | select(.name == "k1")] | length')" = 1 ] && break
    sleep 0.1
done
assert_eq "$(simq '[.droplets[] | select(.name == "k1")] | length')" "1" "k1's droplet exists mid-create"
kill -9 "$kpid"
wait "$kpid" 2>/dev/null || true
sim_config '{"never_active": false}'
out=$("$M" rm -y k1 2>&1) || fail "rm k1: $out"
assert_eq "$(simq '[.droplets[] | select(.name == "k1")] | length')" "0" "k1's droplet deleted (found by its tag)"
assert_eq "$(simq '[.keys[] | select(.name | startswith("machine-k1-"))] | length')" "0" "k1's key deleted (found by name across pages)"

step "rm deletes the droplet, its host and the key"
"$M" rm -y c1 || fail "rm c1"
assert_eq "$(simq '[.droplets[] | select(.name == "c1")] | length')" "0" "c1's droplet deleted"
assert_eq "$(simq "[.keys[] | select(.id == $key_id)] | length")" "0" "c1's key deleted"
assert_eq "$(simq '[.droplets[], .keys[]] | length')" "7" "only what was there before is left (and the user's key)"
assert_eq "$("$M" ls -q)" "" "nothing listed"
[ -e "$cred" ] && fail "rm left the credentials file"
assert__ok "rm removed the credentials file"
assert_eq "$(simq .counters.unauthorized)" "1" "only the bad-token create was refused"

pass
