#!/usr/bin/env bash
# docker login and docker push (the docker CLI 28) against machine-engine and a docker-registry
# with htpasswd auth on loopback: a bad password and a push without login refused with dockerd's
# words, a pulled image pushed (Pushed lines, the digest line, the manifest the registry keeps
# has that digest, skopeo agrees, the manifest is the one pulled, OCI or schema2; --max-concurrent-uploads honoured), a second push finding every layer, --all-tags, a push to
# another repository mounting the layers, an image built here with a 12 MB layer (chunked
# upload) pushed, removed and run again from the registry; no secret in the engine's debug log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
ENGINE_ARGS=(--bridge none --max-concurrent-uploads=2)
enginetest_setup push
enginetest_on_exit 'registry_stop "$T/authreg"; registry_stop "$T/registry"'
BASE_V2S2=$REGISTRY_ADDR/test/img-v2s2:v1
src_digest=$(skopeo inspect --tls-verify=false "docker://$BASE" | jq -r .Digest)
src_v2s2_digest=$(skopeo inspect --tls-verify=false "docker://$BASE_V2S2" | jq -r .Digest)
# bcrypt cost 4: the registry checks the password on every request
python3 -c "import crypt; print('pusher:' + crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))" >"$T/htpasswd"
REGISTRY_HTPASSWD=$T/htpasswd registry_start "$T/authreg"
R=$REGISTRY_ADDR
enginetest_engine
mkdir -p "$T/dcfg"
export DOCKER_CONFIG=$T/dcfg DOCKER_BUILDKIT=0
d pull -q "$BASE" >/dev/null

step "docker login: a bad password is refused with dockerd's message"
out=$(echo wrong | d login -u pusher --password-stdin "$R" 2>&1) && fail "login with a bad password succeeded: $out"
assert_contains "$out" "login attempt to http://$R/v2/ failed with status: 401 Unauthorized" "bad password"

step "docker push without login"
d tag "$BASE" "$R/x/y:1"
out=$(d push "$R/x/y:1" 2>&1) && fail "push without credentials succeeded: $out"
assert_contains "$out" "no basic auth credentials" "push without login"

step "docker login with the right password"
out=$(echo s3cret | d login -u pusher --password-stdin "$R" 2>&1) || fail "login: $out"
assert_contains "$out" "Login Succeeded" "login"

step "docker push of a pulled image"
out=$(d push "$R/x/y:1" 2>&1) || fail "push: $out"
echo "$out" >&2
assert_contains "$out" "The push refers to repository [$R/x/y]" "push header"
assert_contains "$out" "Pushed" "layers pushed"
digest=$(echo "$out" | sed -n 's/^1: digest: \(sha256:[0-9a-f]\{64\}\) size: [0-9]*$/\1/p')
[ -n "$digest" ] || fail "no '1: digest: ... size: N' line in: $out"
pushed=$(echo "$out" | grep -c ": Pushed$")
[ "$pushed" = 3 ] || fail "expected 3 layers Pushed, saw $pushed"
# --max-concurrent-uploads=2: of 3 layers the third waits
[ "$(echo "$out" | grep -c ": Waiting$")" = 1 ] || fail "expected 1 layer Waiting (2 uploads at once): $out"
[ "$digest" = "$src_digest" ] || fail "the pushed manifest ($digest) is not the one pulled ($src_digest)"
got=$(curl -sf -u pusher:s3cret -H "Accept: application/vnd.oci.image.manifest.v1+json" \
    -H "Accept: application/vnd.docker.distribution.manifest.v2+json" \
    "http://$R/v2/x/y/manifests/1" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$digest" ] || fail "the registry's manifest hashes to sha256:$got, the push said $digest"
sk=$(skopeo inspect --tls-verify=false --creds pusher:s3cret "docker://$R/x/y:1") || fail "skopeo inspect"
[ "$(echo "$sk" | jq -r .Digest)" = "$digest" ] || fail "skopeo sees $(echo "$sk" | jq -r .Digest)"
assert_eq "$(echo "$sk" | jq -r '.Layers | length')" 3 "skopeo sees the 3 layers"
d image inspect -f '{{json .RepoDigests}}' "$R/x/y:1" | grep -q "$R/x/y@$digest" || fail "no RepoDigest after the push"

step "a second push finds every layer"
out=$(d push "$R/x/y:1" 2>&1) || fail "second push: $out"
[ "$(echo "$out" | grep -c ": Layer already exists$")" = 3 ] || fail "second push: $out"
echo "$out" | grep -q ": Pushed$" && fail "second push uploaded again: $out"
assert_contains "$out" "1: digest: $digest" "the same digest"

step "push --all-tags"
d tag "$BASE" "$R/x/y:2"
out=$(d push --all-tags "$R/x/y" 2>&1) || fail "push --all-tags: $out"
assert_contains "$out" "1: digest: $digest" "tag 1"
assert_contains "$out" "2: digest: $digest" "tag 2"

step "a push to another repository of the registry mounts the layers"
d tag "$BASE" "$R/x/z:1"
out=$(d push "$R/x/z:1" 2>&1) || fail "push x/z: $out"
[ "$(echo "$out" | grep -c ": Mounted from x/y$")" = 3 ] || fail "expected 3 mounts: $out"
[ -d "$REGISTRY_STORAGE/docker/registry/v2/repositories/x/z/_layers" ] || fail "no layers in x/z"

step "a Docker schema2 image goes back as it came"
d pull -q "$BASE_V2S2" >/dev/null
d tag "$BASE_V2S2" "$R/x/v2s2:1"
out=$(d push "$R/x/v2s2:1" 2>&1) || fail "push v2s2: $out"
assert_contains "$out" "1: digest: $src_v2s2_digest" "the schema2 manifest byte for byte"
[ "$(skopeo inspect --tls-verify=false --creds pusher:s3cret --raw "docker://$R/x/v2s2:1" | jq -r .mediaType)" = \
    application/vnd.docker.distribution.manifest.v2+json ] || fail "not a schema2 manifest in the registry"

step "an unknown tag"
out=$(d push "$R/x/nope:1" 2>&1) && fail "pushed an image that does not exist"
assert_contains "$out" "An image does not exist locally with the tag: $R/x/nope" "unknown image"

step "an image built here, with a 12 MB layer (chunked upload), pushed, removed, run from the registry"
mkdir -p "$T/ctx"
printf 'FROM %s\nRUN head -c 12000000 /dev/urandom >/big && echo built-here >/msg\n' "$BASE" >"$T/ctx/Dockerfile"
d build -q -t "$R/x/big:1" "$T/ctx" >/dev/null || fail "build"
patches_before=$(grep -c "PATCH http" "$T/e/engine.log" || true)
out=$(d push "$R/x/big:1" 2>&1) || fail "push of the built image: $out"
assert_contains "$out" "Pushed" "the new layer pushed"
[ "$(echo "$out" | grep -c ": Mounted from x/")" = 3 ] || fail "the base layers were not mounted from another repository: $out"
bdigest=$(echo "$out" | sed -n 's/^1: digest: \(sha256:[0-9a-f]\{64\}\) size: [0-9]*$/\1/p')
patches=$(( $(grep -c "PATCH http" "$T/e/engine.log" || true) - patches_before ))
[ "$patches" -ge 2 ] || fail "expected the 12 MB layer in chunks, saw $patches PATCH requests"
sk=$(skopeo inspect --tls-verify=false --creds pusher:s3cret "docker://$R/x/big:1") || fail "skopeo inspect big"
[ "$(echo "$sk" | jq -r .Digest)" = "$bdigest" ] || fail "skopeo sees $(echo "$sk" | jq -r .Digest), the push said $bdigest"
d rmi "$R/x/big:1" >/dev/null
d image inspect "$R/x/big:1" >/dev/null 2>&1 && fail "the image is still there"
out=$(d run --rm "$R/x/big:1" sh -c 'cat /msg; wc -c </big') || fail "run from the registry: $out"
assert_contains "$out" "built-here" "the pulled-back image runs with its content"
assert_contains "$out" "12000000" "the 12 MB layer came back whole"

step "docker-py (python3-docker): login and push through its API calls"
if /usr/bin/python3 -c 'import docker' 2>/dev/null; then
    d tag "$BASE" "$R/x/py:1"
    /usr/bin/python3 - "$T/e/engine.sock" "$R" <<'PY' || fail "docker-py login/push"
import sys, docker
c = docker.APIClient(base_url="unix://" + sys.argv[1])
reg = sys.argv[2]
try:
    c.login(username="pusher", password="nope", registry=reg, reauth=True)
    sys.exit("bad password accepted")
except docker.errors.APIError as e:
    assert e.status_code == 401, e
r = c.login(username="pusher", password="s3cret", registry=reg, reauth=True)
assert r["Status"] == "Login Succeeded", r
lines = list(c.push(reg + "/x/py", tag="1", stream=True, decode=True))
errors = [l for l in lines if "error" in l]
assert not errors, errors
aux = [l["aux"] for l in lines if "aux" in l]
assert aux and aux[0]["Tag"] == "1" and aux[0]["Digest"].startswith("sha256:"), lines
PY
    skopeo inspect --tls-verify=false --creds pusher:s3cret "docker://$R/x/py:1" >/dev/null || fail "x/py:1 not in the registry"
    echo "ok - docker-py login and push" >&2
else
    echo "skip - python3-docker is not installed" >&2
fi

step "no credential in the engine's debug log"
grep -q "http\[[0-9]*\] PUT" "$T/e/engine.log" || fail "the debug log shows no request (test broken)"
grep -q "s3cret" "$T/e/engine.log" && fail "the password is in the engine log"
grep -q "$(printf pusher:s3cret | base64)" "$T/e/engine.log" && fail "the Basic credentials are in the engine log"
pass
