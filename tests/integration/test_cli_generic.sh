#!/usr/bin/env bash
# The machine CLI against real hosts: OpenSSH servers on Debian rootfs copies, each in a network
# namespace this test creates. Covers create -d generic, ssh, scp, ls/inspect/env/config/…,
# host-key pinning, bad input, concurrent creates, interrupted saves and rm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/testhost.sh"

M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
T=$(mktemp -d /tmp/machine-cli-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "rm -rf '$T'"

ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$T/stranger"
export TESTHOST_PUBKEY=$T/id.pub

testhost_up h1
testhost_up h2
IP1=$(testhost_ip h1)
IP2=$(testhost_ip h2)

step() { printf '\n--- %s\n' "$*" >&2; }

step "create -d generic"
out=$("$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" h1 2>&1) ||
    fail "create h1 failed: $out"
assert_contains "$out" "Detecting the operating system" "create prints its steps"
assert_eq "$("$M" inspect -f '{{.OS.ID}} {{.OS.VersionID}} {{.Lifecycle.Status}}' h1)" "debian 12 created" \
    "OS detected from /etc/os-release"
assert_eq "$(stat -c %a "$MACHINE_STORAGE_PATH/machines/h1/config.json")" 600 "config.json is 0600"
assert_eq "$(stat -c %a "$MACHINE_STORAGE_PATH/machines/h1")" 700 "machine dir is 0700"
assert_eq "$(stat -c %a "$MACHINE_STORAGE_PATH/certs/ca-key.pem")" 600 "CA key is 0600"
grep -q "$IP1" "$MACHINE_STORAGE_PATH/machines/h1/known_hosts" || fail "host key not pinned"
"$M" create -d generic --generic-ip-address "$IP2" --generic-ssh-key "$T/id" -q \
    --engine-label lab=demo --engine-label lab-group=web-1 h2 >/dev/null ||
    fail "create h2 failed"

step "ls, status, ip, url, env, config, inspect"
ls_out=$("$M" ls)
assert_contains "$ls_out" "NAME" "ls header"
echo "$ls_out" | grep -E "^h1 +- +generic +Running +tcp://$IP1:2376" >/dev/null || fail "ls row for h1: $ls_out"
assert_eq "$("$M" ls -q | tr '\n' ' ')" "h1 h2 " "ls -q"
assert_eq "$("$M" ls -q --filter name=h2)" "h2" "ls --filter name="
assert_eq "$("$M" ls --filter driver=none -q)" "" "ls --filter driver="
assert_eq "$("$M" ls --filter state=Running --format '{{.Name}}:{{.DriverName}}' | tr '\n' ' ')" \
    "h1:generic h2:generic " "ls --format template"
"$M" ls --format json | head -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["Name"]=="h1" and d["State"]=="Running", d' ||
    fail "ls --format json"
assert_eq "$("$M" status h1)" "Running" "status"
assert_eq "$("$M" ip h1)" "$IP1" "ip"
assert_eq "$("$M" url h1)" "tcp://$IP1:2376" "url"
env_out=$("$M" env h1 --shell bash)
assert_contains "$env_out" "export DOCKER_HOST=\"tcp://$IP1:2376\"" "env DOCKER_HOST"
assert_contains "$env_out" "export DOCKER_CERT_PATH=\"$MACHINE_STORAGE_PATH/machines/h1\"" "env cert path"
assert_contains "$env_out" "# eval \$(machine env --shell bash h1)" "env hint"
assert_contains "$("$M" env --shell fish h1)" "set -gx DOCKER_MACHINE_NAME \"h1\";" "env fish"
assert_contains "$("$M" env --no-proxy h1)" "NO_PROXY=\"$IP1\"" "env --no-proxy"
assert_contains "$("$M" env -u)" "unset DOCKER_HOST" "env --unset"
assert_contains "$("$M" config h1)" "-H=tcp://$IP1:2376" "config"
(eval "$("$M" env h1)"; assert_eq "$("$M" active)" "h1" "active follows DOCKER_HOST")

step "inventory: Ansible (ansible-inventory, ansible over SSH), JSON, ssh-config (system ssh)"
"$M" inventory >"$T/inv.yml" || fail "inventory"
export ANSIBLE_LOCAL_TEMP=$T/ansible-tmp ANSIBLE_REMOTE_TEMP=/tmp ANSIBLE_NOCOLOR=1
HOME=$T ansible-inventory -i "$T/inv.yml" --list >"$T/inv.json" 2>"$T/ansible.err" ||
    fail "ansible-inventory refused the inventory: $(cat "$T/ansible.err")"
/usr/bin/python3 - "$T/inv.json" "$IP1" "$IP2" "$MACHINE_STORAGE_PATH" <<'PY' || fail "ansible-inventory's view of the inventory"
import json, sys
inv = json.load(open(sys.argv[1]))
hv = inv["_meta"]["hostvars"]
assert hv["h1"]["ansible_host"] == sys.argv[2] and hv["h2"]["ansible_host"] == sys.argv[3], hv
assert hv["h1"]["ansible_ssh_private_key_file"].startswith(sys.argv[4] + "/machines/h1/"), hv["h1"]
assert inv["demo"]["hosts"] == ["h2"] and inv["web_1"]["hosts"] == ["h2"], inv
PY
# ansible's own ping module runs with the test hosts' python3, over SSH with the pinned host key
out=$(HOME=$T /usr/bin/ansible -i "$T/inv.yml" all -o -m ping 2>&1) ||
    fail "ansible over SSH with the inventory: $out"
assert_eq "$(grep -c '"ping": *"pong"' <<<"$out")" "2" "ansible -m ping reached both machines"
assert_contains "$out" "h1 | SUCCESS" "ansible names the machine"
assert_eq "$("$M" inventory --lab demo --format json | /usr/bin/python3 -c \
    'import json,sys; print(" ".join(h["Name"]+":"+h["Host"]+":"+",".join(h["Groups"]) for h in json.load(sys.stdin)))')" \
    "h2:$IP2:demo,web_1" "inventory --lab, JSON"
"$M" inventory --format ssh-config h1 >"$T/ssh_config" || fail "inventory --format ssh-config"
assert_eq "$(ssh -F "$T/ssh_config" -o BatchMode=yes -o ConnectTimeout=10 h1 echo pinned-ok)" "pinned-ok" \
    "the system ssh reaches the machine with the include and its pinned known_hosts"
: >"$T/empty_known_hosts"
sed -i "s|UserKnownHostsFile .*|UserKnownHostsFile $T/empty_known_hosts|" "$T/ssh_config"
ssh -F "$T/ssh_config" -o BatchMode=yes -o ConnectTimeout=10 h1 true 2>/dev/null &&
    fail "ssh-config does not pin the host key (StrictHostKeyChecking)"
assert_exit 1 "$M" inventory --format yaml
assert_exit 1 "$M" inventory --lab demo h1

step "ssh: command, exit status, stdin, stderr"
assert_contains "$("$M" ssh h1 -- uname -a)" "Linux" "ssh runs a command"
set +e
"$M" ssh h1 -- 'exit 7'; rc=$?
set -e
assert_eq "$rc" 7 "ssh passes the exit status through"
assert_eq "$(echo piped-data | "$M" ssh h1 -- cat)" "piped-data" "ssh passes stdin"
assert_eq "$("$M" ssh h1 -- 'echo to-stderr >&2' 2>&1 >/dev/null)" "to-stderr" "ssh keeps stderr apart"
# (the host's first address: its engine adds a bridge of its own)
assert_eq "$("$M" --external-ssh ssh h1 -- hostname -I | awk '{print $1}')" "$IP1" "--external-ssh uses the pinned key"

step "ssh: interactive PTY with window size (tmux)"
tmux kill-server 2>/dev/null || true
tmux new-session -d -s pty -x 120 -y 40 "MACHINE_STORAGE_PATH=$MACHINE_STORAGE_PATH $M ssh h1; echo EXIT=\$? > $T/pty-exit; sleep 30"
for _ in $(seq 50); do tmux capture-pane -p -t pty | grep -q '#' && break; sleep 0.2; done
tmux send-keys -t pty 'tty; stty size; exit 5' Enter
for _ in $(seq 50); do [ -s "$T/pty-exit" ] && break; sleep 0.2; done
screen=$(tmux capture-pane -p -t pty)
tmux kill-server 2>/dev/null || true
assert_contains "$screen" "/dev/pts/" "interactive ssh has a PTY"
assert_contains "$screen" "40 120" "PTY has the terminal's window size"
assert_eq "$(cat "$T/pty-exit")" "EXIT=5" "interactive exit status passed through"

step "scp both ways, recursive, machine to machine"
head -c 200000 /dev/urandom > "$T/blob"
mkdir -p "$T/tree/sub" && echo a > "$T/tree/a" && echo b > "$T/tree/sub/b" && chmod 750 "$T/tree/sub"
"$M" scp "$T/blob" h1:/tmp/blob
assert_eq "$("$M" ssh h1 -- sha256sum /tmp/blob | cut -d' ' -f1)" "$(sha256sum < "$T/blob" | cut -d' ' -f1)" "scp upload"
"$M" scp h1:/tmp/blob "$T/blob.back"
cmp -s "$T/blob" "$T/blob.back" || fail "scp download differs"
"$M" scp -r "$T/tree" h1:/tmp/tree
assert_eq "$("$M" ssh h1 -- cat /tmp/tree/sub/b)" "b" "scp -r upload"
assert_eq "$("$M" ssh h1 -- stat -c %a /tmp/tree/sub)" "750" "scp -r keeps modes"
"$M" scp -r h1:/tmp/tree "$T/tree.back"
assert_eq "$(cat "$T/tree.back/sub/b")" "b" "scp -r download"
"$M" scp h1:/tmp/blob h2:/tmp/from-h1
assert_eq "$("$M" ssh h2 -- sha256sum /tmp/from-h1 | cut -d' ' -f1)" "$(sha256sum < "$T/blob" | cut -d' ' -f1)" "scp machine to machine"

step "bad input: one clear line, non-zero exit, nothing lost"
sum_before=$(sha256sum "$MACHINE_STORAGE_PATH/machines/h1/config.json")
assert_exit 1 "$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" h1
assert_eq "$(sha256sum "$MACHINE_STORAGE_PATH/machines/h1/config.json")" "$sum_before" "duplicate create keeps the first"
assert_exit 1 "$M" create -d warp-drive x1
assert_exit 1 "$M" create -d generic x1
assert_exit 1 "$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" 'bad_name'
assert_exit 3 "$M" create -d generic --generic-ip-address 300.1.2.3 --generic-ssh-key "$T/id" x1
cp "$T/id" "$T/loose" && chmod 644 "$T/loose"
assert_exit 3 "$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/loose" x1
errline=$("$M" create -d warp-drive x1 2>&1 >/dev/null || true)
assert_eq "$(printf '%s\n' "$errline" | wc -l)" 1 "bad input gives one line"
assert_contains "$errline" "warp-drive" "the error names the bad value"
assert_eq "$("$M" ls -q | tr '\n' ' ')" "h1 h2 " "failed pre-create checks store nothing"
assert_exit 1 "$M" start h1
assert_contains "$("$M" start h1 2>&1 || true)" "not supported by driver 'generic'" "start is unsupported"
assert_exit 1 "$M" ssh nosuch -- true

step "wrong key: create fails, machine kept as error, rm cleans"
assert_exit 1 "$M" create -d generic --generic-ip-address "$IP2" --generic-ssh-key "$T/stranger" w1
echo "$("$M" ls)" | grep -E "^w1 .*Error" >/dev/null || fail "failed create shows as Error in ls"
assert_contains "$("$M" inspect -f '{{.Lifecycle.Status}}: {{.Lifecycle.Error}}' w1)" "error: " "failure reason stored"
"$M" rm -y w1 >/dev/null
[ ! -e "$MACHINE_STORAGE_PATH/machines/w1" ] || fail "rm left the failed machine"

step "unreachable host fails within the bound"
testhost_up h3
IP3=$(testhost_ip h3)
testhost_stop_network h3
start=$(date +%s)
MACHINE_SSH_WAIT_MS=6000 MACHINE_SSH_TIMEOUT_MS=2000 assert_exit 1 "$M" create -d generic \
    --generic-ip-address "$IP3" --generic-ssh-key "$T/id" u1
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -le 15 ] || fail "unreachable host took ${elapsed}s (bound 6s + one 2s attempt)"
"$M" rm -y u1 >/dev/null

step "host key change is detected and names both fingerprints"
testhost_regen_hostkeys h2
set +e
hk=$("$M" ssh h2 -- true 2>&1); rc=$?
set -e
[ "$rc" -ne 0 ] || fail "changed host key was accepted"
[ "$(grep -o 'SHA256:' <<<"$hk" | wc -l)" -ge 2 ] || fail "host key error must name both fingerprints: $hk"

step "two concurrent creates of one name: exactly one wins"
for i in 1 2; do
    ( set +e; "$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" -q twin \
        >"$T/twin.$i.out" 2>&1; echo $? >"$T/twin.$i.rc" ) &
done
wait
assert_eq "$(sort "$T/twin.1.rc" "$T/twin.2.rc" | tr '\n' ' ')" "0 1 " "exactly one concurrent create succeeds"
assert_contains "$(cat "$T/twin.1.out" "$T/twin.2.out")" "already exists" "the loser says why"
assert_eq "$("$M" inspect -f '{{.Lifecycle.Status}}' twin)" "created" "the winner is complete"

step "kill -9 during create never leaves an unreadable config"
for delay in 0.05 0.1 0.2 0.3 0.5 0.8; do
    "$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" -q k1 >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -e "$MACHINE_STORAGE_PATH/machines/k1" ]; then
        "$M" inspect k1 >/dev/null || fail "config unreadable after kill -9 at ${delay}s"
        "$M" rm -y k1 >/dev/null || fail "rm after kill -9"
    fi
done

step "corrupt store: reported, not a crash; the rest still listed"
"$M" create -d generic --generic-ip-address "$IP1" --generic-ssh-key "$T/id" -q c1 >/dev/null
printf '{"ConfigVersion": 1, "Na' > "$MACHINE_STORAGE_PATH/machines/c1/config.json"
ls_out=$("$M" ls)
echo "$ls_out" | grep -E "^c1 .*Error .*corrupt" >/dev/null || fail "corrupt machine not reported: $ls_out"
echo "$ls_out" | grep -E "^h1 .*Running" >/dev/null || fail "other machines hidden by a corrupt one"
assert_exit 1 "$M" inspect c1
assert_exit 1 "$M" rm -y c1
"$M" rm -f -y c1 >/dev/null
[ ! -e "$MACHINE_STORAGE_PATH/machines/c1" ] || fail "rm -f left the corrupt machine"

step "rm leaves a generic host alone"
"$M" rm -y h1 >/dev/null
[ ! -e "$MACHINE_STORAGE_PATH/machines/h1" ] || fail "rm kept the machine dir"
ssh -i "$T/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
    -o LogLevel=ERROR "root@$IP1" true || fail "the host is gone after rm"

pass
