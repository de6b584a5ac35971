#!/usr/bin/env bash
# machine create -d amazonec2 against tests/sim/ec2_sim.py (the EC2 Query API from its public
# reference, SigV4 checked on every call) whose instances are real hosts: fresh Debian rootfs
# copies with sshd in network namespaces, made by this test through a broker loop. End to end
# (create, env, docker run, stop, start, rm), credentials from an AWS profile and as secret
# flags (never in config.json, inspect or --debug), bad and unauthorized credentials, a
# throttling storm retried with backoff, spot and private-address-only instances, an instance
# that never runs (bounded wait, everything deleted), kill -9 mid-create then rm, and rm of an
# instance already gone. Traffic: loopback (the simulator) and the test's own netns hosts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/images.sh"
source "$here/lib/testhost.sh" # last: its EXIT trap runs every cleanup (testhost_on_exit)

M=${MACHINE_BIN:?}
BUILD=${MACHINE_BUILD:?}
SRC=${MACHINE_SRC:?}
DOCKER=/usr/local/bin/docker
export MACHINE_ENGINE_BUNDLE=$BUILD/machine-engine-bundle.tar.gz
[ -r "$MACHINE_ENGINE_BUNDLE" ] || fail "no engine bundle at $MACHINE_ENGINE_BUNDLE"
command -v skopeo >/dev/null || { echo "skip: skopeo not installed (test image)"; exit 77; }
PY=/usr/bin/python3 # Debian's: the simulator and the checks use its standard library only
T=$(mktemp -d /tmp/machine-ec2-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=30000
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION
export AWS_SHARED_CREDENTIALS_FILE=$T/aws/credentials AWS_CONFIG_FILE=$T/aws/config
SIM_PID=""
testhost_on_exit 'touch "$T/broker/stop"; [ -z "$SIM_PID" ] || kill "$SIM_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"'
step() { printf '\n--- %s\n' "$*" >&2; }

# The broker: the simulator asks for hosts through request files; this shell's subshell owns
# them (testhost.sh state is this run's), so the EXIT trap removes every one.
mkdir -p "$T/broker" "$T/aws"
broker() {
    local dir=$1 f n cmd name arg out i
    for ((i = 0; i < 12000; i++)); do # at most 20 min
        [ -e "$dir/stop" ] && return 0
        kill -0 "$$" 2>/dev/null || return 0
        for f in "$dir"/req-*; do
            [ -e "$f" ] || continue
            n=${f##*/req-}
            read -r cmd name arg <"$f" || true
            rm -f "$f"
            out=""
            case $cmd in
            up) out=$(TESTHOST_PUBKEY=$arg testhost_up "$name" 2>>"$dir/log") && out="ok $out" || out="err up" ;;
            stop) testhost_stop_network "$name" 2>>"$dir/log" && out=ok || out="err stop" ;;
            start) testhost_start_network "$name" 2>>"$dir/log" && out=ok || out="err start" ;;
            down) testhost_down "$name" 2>>"$dir/log" && out=ok || out="err down" ;;
            *) out="err unknown" ;;
            esac
            printf '%s\n' "$out" >"$dir/.rep-$n" && mv "$dir/.rep-$n" "$dir/rep-$n"
        done
        sleep 0.1
    done
}
broker "$T/broker" &

# the simulator's own SigV4 against AWS's published get-vanilla example first
(cd "$SRC/tests/sim" && "$PY" -c 'import ec2_sim as s
assert s.expected_signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "GET", "/", "",
    {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}, ["host", "x-amz-date"],
    b"", "20150830T123600Z", "20150830/us-east-1/service/aws4_request") == \
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"') ||
    fail "the simulator's SigV4 check disagrees with AWS's example"
"$PY" "$SRC/tests/sim/ec2_sim.py" --broker "$T/broker" --port-file "$T/port" \
    --account AKIDSIMPROFILE:profile-secret-0001 \
    --account AKIDSIMFLAGS:flags-secret-0002:session-token-0003 \
    --account AKIDSIMDENY:deny-secret-0004::deny >/dev/null 2>"$T/sim.log" &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "the simulator did not start: $(cat "$T/sim.log")"
EP=http://127.0.0.1:$(cat "$T/port")
sim_state() { curl -sf --max-time 10 "$EP/_sim/state"; }
sim_ctl() { curl -sf --max-time 10 -X POST "$EP/_sim/$1" >/dev/null; }
# live resources in the simulator: "instances keys groups open-spot-requests"
sim_live() {
    sim_state | "$PY" -c 'import json,sys; s=json.load(sys.stdin)
print(sum(1 for i in s["instances"].values() if i["state"] != "terminated"), len(s["keys"]),
      len(s["groups"]), sum(1 for r in s["spots"].values() if r["state"] in ("open", "active")))'
}
# waits (bounded) until the simulator has nothing live; the last answer is checked by the caller
sim_settle() { for _ in $(seq 150); do [ "$(sim_live)" = "0 0 0 0" ] && break; sleep 0.2; done; sim_live; }
C=(-d amazonec2 --amazonec2-endpoint "$EP" --amazonec2-ssh-user root)

images_build
skopeo copy -q "oci:$IMAGES_LAYOUT:v1" "docker-archive:$T/img.tar:test/img:v1" >/dev/null ||
    fail "cannot export the test image"

step "bad credentials: a clear error, nothing created, nothing saved"
rc=0; out=$("$M" create "${C[@]}" --amazonec2-access-key AKIDSIMFLAGS --amazonec2-secret-key wrong \
    --amazonec2-session-token session-token-0003 bad1 2>&1) || rc=$?
assert_eq "$rc" 3 "a refused signature fails the pre-create check (exit 3)"
assert_contains "$out" "SignatureDoesNotMatch" "the error names EC2's code"
rc=0; out=$("$M" create "${C[@]}" --amazonec2-access-key AKIDNOBODY --amazonec2-secret-key x bad2 2>&1) || rc=$?
assert_eq "$rc" 3 "an unknown access key fails the pre-create check"
assert_contains "$out" "AuthFailure" "an unknown key is EC2's AuthFailure"
rc=0; out=$("$M" create "${C[@]}" bad3 2>&1) || rc=$?
assert_contains "$out" "has no AWS credentials: pass --amazonec2-access-key and --amazonec2-secret-key (AWS_ACCESS_KEY_ID" \
    "no credentials at all: the error names what to set"
assert_eq "$("$M" ls -q)" "" "no machine saved"
assert_eq "$(sim_live)" "0 0 0 0" "nothing made in the simulator"

step "unauthorized account: the failed machine stays listed, its pieces are deleted"
rc=0; out=$("$M" create "${C[@]}" --amazonec2-access-key AKIDSIMDENY --amazonec2-secret-key deny-secret-0004 \
    deny1 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "create with an unauthorized account succeeded"
assert_contains "$out" "UnauthorizedOperation" "the error names UnauthorizedOperation"
assert_contains "$("$M" ls)" "deny1" "the failed machine is listed"
assert_exit 0 "$M" rm -y deny1
assert_eq "$(sim_live)" "0 0 0 0" "nothing left in the simulator"

step "create from an AWS profile through a throttling storm; docker run; stop; start; rm"
cat >"$T/aws/credentials" <<CRED
[simprof]
aws_access_key_id = AKIDSIMPROFILE
aws_secret_access_key = profile-secret-0001
CRED
printf '#cloud-config\n# machine test\n' >"$T/userdata"
sim_ctl "throttle?count=6"
out=$("$M" --debug create "${C[@]}" --amazonec2-profile simprof --amazonec2-tags team,web,env,test \
    --amazonec2-use-ebs-optimized-instance --amazonec2-userdata "$T/userdata" c1 2>&1) ||
    { tail -40 <<<"$out"; cat "$T/broker/log" >&2 || true; fail "create c1 failed"; }
assert_eq "$(grep -c 'RequestLimitExceeded, again in' <<<"$out")" 6 \
    "six throttled answers, each retried after a backoff pause"
assert_eq "$(curl -sf "$EP/_sim/log" | "$PY" -c 'import json,sys; l=json.load(sys.stdin); print(sum(1 for e in l if e.get("throttled")))')" \
    6 "the simulator answered six RequestLimitExceeded"
assert_contains "$(cat "$MACHINE_STORAGE_PATH/machines/c1/config.json")" '"Profile": "simprof"' \
    "only the profile's name is recorded"
grep -q "profile-secret-0001" "$MACHINE_STORAGE_PATH/machines/c1/config.json" && fail "the profile's key in config.json"
[ ! -e "$MACHINE_STORAGE_PATH/credentials/c1.json" ] || fail "a profile machine has a credentials file"
sim_state >"$T/state.json"
"$PY" - "$T/state.json" <<'PY' || fail "the instance as launched"
import base64, json, sys
s = json.load(open(sys.argv[1]))
(i,) = [i for i in s["instances"].values() if i["tags"].get("Name") == "c1"]
assert i["state"] == "running" and i["image"] == "ami-0debian12new", i  # newest Debian 12 of Debian's account
assert i["tags"]["team"] == "web" and i["tags"]["env"] == "test", i["tags"]
assert i["ebsOptimized"] == "true" and i["rootSize"] == "16", i
assert base64.b64decode(i["userdata"]).startswith(b"#cloud-config"), i["userdata"]
(g,) = s["groups"].values()
assert g["groupName"] == "docker-machine" and sorted(g["perms"]) == [[22, 22], [2376, 2376]], g
assert len(s["keys"]) == 1
PY
assert__ok "Debian 12 image, tags, EBS optimisation, user data, group with 22 and 2376, key imported"
IP=$("$M" ip c1)
(
    eval "$("$M" env c1)"
    assert_eq "$DOCKER_HOST" "tcp://$IP:2376" "env points at the instance"
    "$DOCKER" load -q -i "$T/img.tar" >/dev/null || fail "docker load"
    assert_eq "$("$DOCKER" run --rm test/img:v1 echo hi)" "hi" "docker run on the EC2 machine"
)
assert_exit 0 "$M" stop c1
assert_eq "$("$M" status c1)" "Stopped" "stopped through StopInstances"
assert_exit 0 "$M" start c1
assert_eq "$("$M" status c1)" "Running" "running again through StartInstances"
(eval "$("$M" env c1)"; assert_eq "$("$DOCKER" run --rm test/img:v1 echo again)" "again" "docker after start")
assert_exit 0 "$M" restart c1
assert_contains "$(curl -sf "$EP/_sim/log")" '"action": "RebootInstances"' "restart is RebootInstances"
assert_exit 0 "$M" kill c1
assert_eq "$("$M" status c1)" "Stopped" "kill stops the instance"
assert_contains "$(curl -sf "$EP/_sim/log")" '"action": "StopInstances", "force": "true"' \
    "kill is a forced StopInstances"
assert_exit 0 "$M" start c1
# a rotated key in the profile is read on the next call
sed -i 's/AKIDSIMPROFILE/AKIDROTATED/' "$T/aws/credentials"
rc=0; out=$("$M" stop c1 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "stop with a rotated (unknown) key succeeded"
assert_contains "$out" "AuthFailure" "the profile is re-read on every call"
sed -i 's/AKIDROTATED/AKIDSIMPROFILE/' "$T/aws/credentials"
out=$("$M" rm -y c1 2>&1) || fail "rm c1: $out"
assert_eq "$(sim_settle)" "0 0 0 0" "rm terminated the instance and deleted the key and the group"

step "secret flags, session token, spot, private address only; rm of an instance already gone"
out=$("$M" --debug create "${C[@]}" --amazonec2-access-key AKIDSIMFLAGS --amazonec2-secret-key flags-secret-0002 \
    --amazonec2-session-token session-token-0003 --amazonec2-request-spot-instance --amazonec2-spot-price 0.12 \
    --amazonec2-private-address-only --amazonec2-security-group c2-group c2 2>&1) ||
    { tail -40 <<<"$out"; fail "create c2 failed"; }
for s in flags-secret-0002 session-token-0003; do
    grep -q "$s" <<<"$out" && fail "--debug printed a secret"
    grep -q "$s" "$MACHINE_STORAGE_PATH/machines/c2/config.json" && fail "a secret in config.json"
    "$M" inspect c2 | grep -q "$s" && fail "inspect printed a secret"
    grep -q "$s" "$MACHINE_STORAGE_PATH/credentials/c2.json" || fail "the secret is not in the credentials file"
done
assert_eq "$(stat -c %a "$MACHINE_STORAGE_PATH/credentials/c2.json")" 600 "the credentials file is 0600"
assert__ok "secrets kept out of config.json, inspect and --debug"
sim_state >"$T/state.json"
"$PY" - "$T/state.json" "$("$M" ip c2)" <<'PY' || fail "spot, private address"
import json, sys
s = json.load(open(sys.argv[1]))
(r,) = s["spots"].values()
assert r["price"] == "0.12" and r["state"] == "active", r
i = s["instances"][r["instanceId"]]
assert i["tags"].get("Name") == "c2" and not i["public"] and i["ip"] == sys.argv[2], i
PY
assert__ok "a spot request at the given price; the machine is reached on its private address"
assert_eq "$("$M" ssh c2 -- hostname -I | awk '{print $1}')" "$("$M" ip c2)" "ssh to the private address"
id=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["Driver"]["InstanceId"])' \
    "$MACHINE_STORAGE_PATH/machines/c2/config.json")
sim_ctl "terminate?id=$id"
gone() { sim_state | "$PY" -c 'import json,sys; sys.exit(json.load(sys.stdin)["instances"][sys.argv[1]]["state"] != "terminated")' "$id"; }
for _ in $(seq 100); do gone && break; sleep 0.2; done
gone || fail "the simulator did not terminate $id"
out=$("$M" rm -y c2 2>&1) || fail "rm of a machine whose instance is gone: $out"
assert_contains "$out" "already gone" "rm says the instance was already gone"
assert_eq "$(sim_settle)" "0 0 0 0" "the key, the group and the spot request are deleted too"

step "quota exceeded: a clear error, the key and the group deleted"
sim_ctl "quota?left=0"
rc=0; out=$("$M" create "${C[@]}" --amazonec2-profile simprof q1 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "create over the instance quota succeeded"
assert_contains "$out" "InstanceLimitExceeded" "the error names InstanceLimitExceeded"
assert_eq "$(sim_settle)" "0 0 0 0" "nothing left after the refused launch"
assert_exit 0 "$M" rm -y q1
sim_ctl "quota?left="

step "an instance that never runs: bounded wait, everything deleted, the machine listed with its error"
sim_ctl "stuck?on=1"
rc=0; out=$(MACHINE_OP_TIMEOUT_MS=6000 "$M" create "${C[@]}" --amazonec2-profile simprof c3 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "create of a never-running instance succeeded"
assert_contains "$out" "did not happen within" "the wait is bounded and says what did not happen"
assert_contains "$("$M" ls)" "c3" "the failed machine stays listed"
assert_eq "$(sim_settle)" "0 0 0 0" "the failed create deleted its instance, key and group"
assert_exit 0 "$M" rm -y c3

step "kill -9 of machine mid-create, then rm leaves nothing"
"$M" create "${C[@]}" --amazonec2-profile simprof c4 >"$T/c4.out" 2>&1 &
cpid=$!
for _ in $(seq 100); do
    sim_state | grep -q '"Name": "c4"' && break
    sleep 0.1
done
sim_state | grep -q '"Name": "c4"' || fail "c4's instance never launched"
kill -9 "$cpid"; wait "$cpid" 2>/dev/null || true
assert_eq "$(sim_live | cut -d' ' -f1-3)" "1 1 1" "the killed create left an instance, a key and a group"
sim_ctl "stuck?on=0"
sim_ctl "others?count=12" # rm must read every page (pages are cut before the filters)
sim_pages() { curl -sf "$EP/_sim/log" | "$PY" -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin) if e.get("page")))'; }
pages_before=$(sim_pages)
out=$("$M" rm -y c4 2>&1) || fail "rm after kill -9: $out"
pages=$(( $(sim_pages) - pages_before ))
[ "$pages" -ge 2 ] || fail "rm read $pages further DescribeInstances pages"
assert__ok "rm followed NextToken through $((pages + 1)) pages"
assert_eq "$(sim_settle)" "0 0 0 0" "rm found them by the owner tag and deleted them"
assert_eq "$("$M" ls -q)" "" "no machine left"

pass
