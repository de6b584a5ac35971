#!/usr/bin/env bash
# setup.images from a registry that asks for credentials (docker-registry with htpasswd on this
# computer's loopback): with no credentials the lab fails naming the registry and `docker login`,
# with wrong ones naming the refused user, and nothing is left (the run's machines rolled back,
# no image cache); with the credentials `docker login` wrote into $DOCKER_CONFIG/config.json,
# and then through a credential helper (credsStore), the image is on every host; a registry
# with a token server (lib/token_server.py) gets a Bearer token for the credentials. The
# password never shows in the output, --debug output or the store.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"
source "$here/lib/testhost.sh"
source "$here/lib/images.sh"

command -v htpasswd >/dev/null || { echo "skip: no htpasswd (apache2-utils, scripts/install-deps)"; exit 77; }
command -v docker-registry >/dev/null || { echo "skip: no docker-registry (scripts/install-deps)"; exit 77; }
M=${MACHINE_BIN:?MACHINE_BIN must point at the machine binary}
DOCKER=/usr/local/bin/docker
T=$(mktemp -d /tmp/machine-labcreds-XXXXXX)
export MACHINE_STORAGE_PATH=$T/store
export MACHINE_SSH_WAIT_MS=20000
testhost_on_exit "rm -rf '$T'"
step() { printf '\n--- %s\n' "$*" >&2; }
PW='s3cret-pw-4711'
B64=$(printf 'alice:%s' "$PW" | base64)

ssh-keygen -q -t ed25519 -N '' -C machine-test -f "$T/id"
export TESTHOST_PUBKEY=$T/id.pub
testhost_up cr1 >/dev/null
testhost_up cr2 >/dev/null
images_build || fail "the test images (cache)"

htpasswd -Bbn alice "$PW" >"$T/htpasswd"
REG=$(REGISTRY_HTPASSWD=$T/htpasswd bash "$here/lib/registry.sh" start "$T/reg" $$) || fail "registry"
testhost_on_exit "bash '$here/lib/registry.sh' stop '$T/reg'"
skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-creds "alice:$PW" \
    "oci:$IMAGES_LAYOUT:v1" "docker://$REG/private/img:v1" || fail "push with credentials"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$REG/v2/private/img/manifests/v1")
assert_eq "$code" "401" "the registry asks for credentials"

cat >"$T/lab.yaml" <<YAML
name: creds
defaults:
  driver: generic
  flags: { generic-ssh-key: $T/id }
  setup: { images: [ "$REG/private/img:v1" ] }
hosts:
  c1: { flags: { generic-ip-address: $(testhost_ip cr1) } }
  c2: { flags: { generic-ip-address: $(testhost_ip cr2) } }
YAML

# nothing_left: no machine, no image archive and no pull directory in the cache
nothing_left() {
    assert_eq "$("$M" ls -q)" "" "$1: the run's machines were removed"
    assert_eq "$(find "$MACHINE_STORAGE_PATH/cache/images" -mindepth 1 ! -name '*.lock' 2>/dev/null | wc -l)" "0" \
        "$1: nothing in the image cache"
}
no_secret() { # TEXT WHAT
    case "$1" in *"$PW"* | *"$B64"*) fail "the password shows in $2" ;; esac
}

step "no credentials: refused naming the registry and docker login; nothing left"
export DOCKER_CONFIG=$T/docker
mkdir -p "$DOCKER_CONFIG"
out=$("$M" up -f "$T/lab.yaml" --parallel 2 --abort-on-failure 2>&1) && fail "a pull without credentials worked: $out"
assert_contains "$out" "registry '$REG' asks for credentials (HTTP 401): run 'docker login $REG'" \
    "the error names the registry and docker login"
nothing_left "no credentials"

step "wrong credentials: refused naming the user and the file, the password shown nowhere"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG" "$(printf 'alice:wrong-%s' "$PW" | base64 -w0)" \
    >"$DOCKER_CONFIG/config.json"
out=$("$M" --debug up -f "$T/lab.yaml" --parallel 2 --abort-on-failure 2>&1) && fail "wrong credentials worked: $out"
assert_contains "$out" "registry '$REG' refused the credentials of 'alice' from '$DOCKER_CONFIG/config.json' (HTTP 401)" \
    "the error names the refused user and where the credentials came from"
case "$out" in *"wrong-$PW"* | *"$(printf 'alice:wrong-%s' "$PW" | base64 -w0)"*) fail "the wrong password shows: $out" ;; esac
nothing_left "wrong credentials"

step "docker login's credentials: the image is pulled once and loaded on every host"
rm -f "$DOCKER_CONFIG/config.json"
# no daemon to ask (DOCKER_HOST names nothing): the docker CLI logs in to the registry itself
printf '%s\n' "$PW" | DOCKER_HOST=unix://$T/no-daemon.sock timeout 60 "$DOCKER" login -u alice \
    --password-stdin "$REG" >/dev/null 2>&1 || fail "docker login"
assert_contains "$(cat "$DOCKER_CONFIG/config.json")" "\"$REG\"" "docker login wrote its config"
out=$("$M" --debug up -f "$T/lab.yaml" --parallel 2 2>&1) || fail "up with docker login's credentials: $out"
assert_contains "$out" "setup: pulling $REG/private/img:v1" "the pull is a step"
no_secret "$out" "machine up --debug"
for h in c1 c2; do
    (
        eval "$("$M" env "$h")"
        assert_contains "$("$DOCKER" image inspect -f '{{json .RepoTags}}' "$REG/private/img:v1")" \
            "\"$REG/private/img:v1\"" "the image is on $h (the host's engine may hold the same image under other tags)"
    ) || fail "the pulled image on $h"
done
[ -z "$(grep -r -a -l -e "$PW" -e "$B64" "$MACHINE_STORAGE_PATH" || true)" ] || fail "the password is in the store"
"$M" up -f "$T/lab.yaml" --destroy >/dev/null 2>&1 || fail "destroy"
rm -rf "$MACHINE_STORAGE_PATH/cache/images"

step "a credential helper (credsStore): docker-credential-NAME get, the registry on stdin"
mkdir -p "$T/bin"
cat >"$T/bin/docker-credential-machinetest" <<SH
#!/bin/sh
[ "\$1" = get ] || exit 2
read -r server
printf '%s\n' "\$server" >>"$T/helper.log"
if [ "\$server" = "$REG" ]; then
    printf '{"ServerURL":"%s","Username":"alice","Secret":"%s"}\n' "\$server" "$PW"
else
    echo "credentials not found in native keychain"; exit 1
fi
SH
chmod +x "$T/bin/docker-credential-machinetest"
printf '{"auths":{"%s":{}},"credsStore":"machinetest"}\n' "$REG" >"$DOCKER_CONFIG/config.json"
out=$(PATH=$T/bin:$PATH "$M" up -f "$T/lab.yaml" --parallel 2 2>&1) || fail "up with a credential helper: $out"
assert_eq "$(sort -u "$T/helper.log")" "$REG" "the helper was asked for the registry"
no_secret "$out" "machine up's output"
(
    eval "$("$M" env c2)"
    assert_contains "$("$DOCKER" image inspect -f '{{json .RepoTags}}' "$REG/private/img:v1")" \
        "\"$REG/private/img:v1\"" "the image is on c2 (the host's engine may hold the same image under other tags)"
) || fail "the image through the helper"
"$M" up -f "$T/lab.yaml" --destroy >/dev/null 2>&1 || fail "destroy"

step "a registry with a token server (Bearer): the credentials buy a token; wrong ones are refused"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tok.key" -out "$T/tok.crt" -days 2 \
    -subj /CN=machine-test-tokens 2>/dev/null || fail "token signing key"
/usr/bin/python3 "$here/lib/token_server.py" "$T/tok.key" "$T/tok.crt" machine-test-issuer alice "$PW" \
    "$T/tok.port" $$ >"$T/tok.log" 2>&1 &
tok_pid=$!
testhost_on_exit "kill $tok_pid 2>/dev/null || true"
for _ in $(seq 100); do [ -s "$T/tok.port" ] && break; sleep 0.1; done
[ -s "$T/tok.port" ] || fail "the token server did not start: $(cat "$T/tok.log")"
TREG=$(REGISTRY_TOKEN_REALM=http://127.0.0.1:$(cat "$T/tok.port")/token REGISTRY_TOKEN_SERVICE=machine-test \
    REGISTRY_TOKEN_ISSUER=machine-test-issuer REGISTRY_TOKEN_CERTS=$T/tok.crt \
    bash "$here/lib/registry.sh" start "$T/treg" $$) || fail "token registry"
testhost_on_exit "bash '$here/lib/registry.sh' stop '$T/treg'"
skopeo --insecure-policy copy -q --dest-tls-verify=false --dest-creds "alice:$PW" \
    "oci:$IMAGES_LAYOUT:v1" "docker://$TREG/private/tok:v1" || fail "push through the token server"
assert_contains "$(curl -s -D - -o /dev/null --max-time 10 "http://$TREG/v2/private/tok/manifests/v1")" \
    "Bearer realm=" "the registry asks for a bearer token"
cat >"$T/tok.yaml" <<YAML
name: tok
hosts:
  t1:
    driver: generic
    flags: { generic-ssh-key: $T/id, generic-ip-address: $(testhost_ip cr1) }
    setup: { images: [ "$TREG/private/tok:v1" ] }
YAML
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$TREG" "$(printf 'alice:wrong-%s' "$PW" | base64 -w0)" \
    >"$DOCKER_CONFIG/config.json"
out=$("$M" up -f "$T/tok.yaml" --abort-on-failure 2>&1) && fail "a token for wrong credentials: $out"
assert_contains "$out" "registry '$TREG' refused the credentials of 'alice' from '$DOCKER_CONFIG/config.json' (HTTP 401)" \
    "the token server's refusal names the user"
assert_eq "$("$M" ls -q)" "" "nothing left after the refused token"
printf '{"auths":{"http://%s/v2/":{"auth":"%s"}}}\n' "$TREG" "$B64" >"$DOCKER_CONFIG/config.json"
out=$("$M" up -f "$T/tok.yaml" 2>&1) || fail "up through the token server: $out"
no_secret "$out" "machine up's output"
(
    eval "$("$M" env t1)"
    assert_contains "$("$DOCKER" image inspect -f '{{json .RepoTags}}' "$TREG/private/tok:v1")" \
        "\"$TREG/private/tok:v1\"" "the image pulled with a bearer token is on t1 (the host's engine may hold the same image under other tags)"
) || fail "the image through the token server"
"$M" up -f "$T/tok.yaml" --destroy >/dev/null 2>&1 || fail "destroy"
pass
