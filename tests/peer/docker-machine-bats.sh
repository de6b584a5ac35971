#!/usr/bin/env bash
# A peer's test suite: docker-machine's own bats integration tests run against `machine` through
# a wrapper named `docker-machine`, as docker-machine's run-bats.sh runs them (DRIVER=none).
# Prints the pass count of each file and in all, and the tests that fail.
#
#   tests/peer/docker-machine-bats.sh BUILD_DIR [BATS_FILE_NAME...]
#   tests/peer/docker-machine-bats.sh BUILD_DIR --core [BATS_FILE_NAME...]   (root)
#
# --core runs the `core/` files of docker/machine's HEAD with DRIVER=generic against a throwaway
# Debian host in a network namespace (tests/integration/lib/testhost.sh) that has no route out:
# the busybox image the tests run is built offline and loaded before; swarm-options (classic
# Swarm, refused) and crashreport (Bugsnag) are left out; engine-options and certs-extra-san run
# last, as their second machine re-provisions the same host.
#
# The suite is not committed here: it is read from a clone of docker/machine ($DOCKER_MACHINE_SRC:
# a checkout or a git directory; default: the clone the session tools keep under /work/.mirror).
# The `cli/` tests (the ones that need no VM: the `none` driver) were replaced by Go tests in
# docker/machine commit 5d95524b; they are taken from its parent, the last commit that has them.
# Without a clone the script says so and exits 77 (skip). Failures left, and why, are listed in
# docs/docker-machine-compat.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: docker-machine-bats.sh BUILD_DIR [BATS_FILE_NAME...]}" && pwd)
shift
core=0
if [ "${1:-}" = --core ]; then
    core=1
    shift
fi
only=("$@")

CLI_COMMIT=5d95524b^ # "Write CLI integration tests with Go" removed test/integration/cli
src=${DOCKER_MACHINE_SRC:-/work/.mirror/docker+machine/repo}
if git --git-dir="$src" rev-parse -q --verify "$CLI_COMMIT^{commit}" >/dev/null 2>&1; then
    gitc=(git --git-dir="$src")
elif git -C "$src" rev-parse -q --verify "$CLI_COMMIT^{commit}" >/dev/null 2>&1; then
    gitc=(git -C "$src")
else
    echo "skip: no docker/machine clone with commit ${CLI_COMMIT%^} at '$src' (set DOCKER_MACHINE_SRC to a clone of docker/machine)"
    exit 77
fi
command -v bats >/dev/null || { echo "FAIL: 'bats' is not installed (scripts/install-deps installs it)"; exit 1; }
MACHINE=$build/cli/machine
[ -x "$MACHINE" ] || { echo "FAIL: no machine binary at $MACHINE"; exit 1; }

T=$(mktemp -d /tmp/machine-peer-dmbats-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
mkdir -p "$T/src" "$T/bin"
if [ "$core" = 1 ]; then
    "${gitc[@]}" archive HEAD test/integration | tar -x -C "$T/src"
else
    "${gitc[@]}" archive "$CLI_COMMIT" test/integration | tar -x -C "$T/src"
fi

# The wrapper run-bats.sh calls: $MACHINE_ROOT/bin/docker-machine.
cat >"$T/bin/docker-machine" <<EOF
#!/bin/sh
exec "$MACHINE" "\$@"
EOF
chmod +x "$T/bin/docker-machine"

export DRIVER=none
files=("$T/src/test/integration/cli/"*.bats)
if [ "$core" = 1 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "skip: --core needs root (network namespaces)"; exit 77; }
    command -v docker >/dev/null || { echo "FAIL: no docker CLI"; exit 1; }
    trap - EXIT
    source "$here/../integration/lib/testhost.sh"
    testhost_on_exit "[ -n '${KEEP:-}' ] || rm -rf '$T'"
    ssh-keygen -q -t ed25519 -N '' -C machine-bats -f "$T/id"
    export TESTHOST_PUBKEY=$T/id.pub
    testhost_up dmbats >/dev/null
    export DRIVER=generic GENERIC_IP_ADDRESS GENERIC_SSH_KEY=$T/id MACHINE_SSH_WAIT_MS=30000
    GENERIC_IP_ADDRESS=$(testhost_ip dmbats)
    # The host reaches this computer only: no default route, so nothing on it can dial out.
    ip -n "$(testhost__get "$(testhost__hostdir dmbats)" netns)" route del default
    c=$T/src/test/integration/core
    files=("$c/core-commands.bats" "$c/env_shell.bats" "$c/inspect_format.bats" "$c/scp.bats"
        "$c/ssh-backends.bats" "$c/regenerate-certs.bats" "$c/engine-options.bats"
        "$c/certs-extra-san.bats")
fi
export BASE_TEST_DIR=$T/src/test/integration
export MACHINE_ROOT=$T
export MACHINE_BIN_NAME=docker-machine
export MACHINE_STORAGE_PATH=$T/store
export BATS_LOG=$T/bats.log
export SHARED_NAME="bats-$DRIVER-test-shared-$$"
export PATH=$T/bin:$PATH
machine() { "$MACHINE_ROOT/bin/$MACHINE_BIN_NAME" "$@"; }
export -f machine
: >"$BATS_LOG"
if [ "$core" = 1 ]; then
    # The shared machine, made before the suite so that the busybox its tests run is there
    # already (built offline: lib/images.sh's busybox base image, loaded as busybox:latest).
    machine create -d generic "$SHARED_NAME" >"$T/create.log" 2>&1 ||
        { cat "$T/create.log"; echo "FAIL: cannot create the shared machine"; exit 1; }
    source "$here/../integration/lib/images.sh"
    images_build >/dev/null
    skopeo copy -q "oci:$IMAGES_LAYOUT:base" "docker-archive:$T/busybox.tar:busybox:latest"
    # shellcheck disable=SC2046
    docker $(machine config "$SHARED_NAME") load -q -i "$T/busybox.tar" >/dev/null
fi

total_pass=0 total_fail=0 total_skip=0
failed=()
dir=$([ "$core" = 1 ] && echo core || echo cli)
for f in "${files[@]}"; do
    name=$(basename "$f" .bats)
    if [ "${#only[@]}" -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then
        continue
    fi
    [ "$core" = 1 ] || rm -rf "$MACHINE_STORAGE_PATH" # core: the shared machine stays
    # bounded: a hung command must not hang the run
    tap=$(cd "$T" && timeout 600 bats --tap "$f" 2>&1) || true
    pass=$(grep -E '^ok ' <<<"$tap" | grep -vc '# skip' || true)
    skip=$(grep -E '^ok .*# skip' -c <<<"$tap" || true)
    fail=$(grep -Ec '^not ok ' <<<"$tap" || true)
    printf '  %s/%-16s %2d passed, %2d failed, %2d skipped\n' "$dir" "$name.bats" "$pass" "$fail" "$skip"
    while IFS= read -r l; do failed+=("$dir/$name: ${l#not ok [0-9]* }"); done < <(grep -E '^not ok ' <<<"$tap" || true)
    total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail)) total_skip=$((total_skip + skip))
    for m in $(machine ls -q 2>/dev/null); do
        [ "$m" = "$SHARED_NAME" ] || machine rm -f "$m" >/dev/null 2>&1 || true
    done
done
echo "docker-machine bats suite ($dir/, driver $DRIVER): $total_pass of $((total_pass + total_fail + total_skip)) passed, $total_fail failed, $total_skip skipped by the suite itself"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failing:"
    printf '  %s\n' "${failed[@]}"
fi
[ -z "${KEEP:-}" ] || echo "kept: $T (bats log: $BATS_LOG)"
