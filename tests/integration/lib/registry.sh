#!/usr/bin/env bash
# A real docker-registry (Debian's docker-registry 2.8) on 127.0.0.1:<free port>,
# anonymous (no `auth:` section), storage in a directory of the caller's.
#
# Sourced by shell tests:
#     . "$MACHINE_SRC/tests/integration/lib/registry.sh"
#     registry_start "$tmp/registry"      # sets REGISTRY_ADDR, REGISTRY_STORAGE
#     trap registry_cleanup EXIT           # (registry_start installs this trap too)
# Run as a command (for C tests), the registry stops when OWNER_PID exits:
#     registry.sh start STATEDIR OWNER_PID   # writes STATEDIR/addr, prints it
#     registry.sh stop STATEDIR
# Optional: REGISTRY_HTPASSWD=FILE enables Basic auth with that htpasswd file;
# REGISTRY_TOKEN_REALM=URL (with REGISTRY_TOKEN_SERVICE, REGISTRY_TOKEN_ISSUER and
# REGISTRY_TOKEN_CERTS, a PEM bundle) enables Bearer token auth (lib/token_server.py).

REGISTRY_BIN=${REGISTRY_BIN:-docker-registry}

registry_write_config() { # STATEDIR PORT
    local dir=$1 port=$2
    {
        echo "version: 0.1"
        echo "log:"
        echo "  level: warn"
        echo "  accesslog:"
        echo "    disabled: true"
        echo "storage:"
        echo "  filesystem:"
        echo "    rootdirectory: $dir/storage"
        echo "  delete:"
        echo "    enabled: true"
        echo "  maintenance:"
        echo "    uploadpurging:"
        echo "      enabled: false"
        echo "http:"
        echo "  addr: ${REGISTRY_HOST:-127.0.0.1}:$port"
        if [ -n "${REGISTRY_HTPASSWD:-}" ]; then
            echo "auth:"
            echo "  htpasswd:"
            echo "    realm: machine-test"
            echo "    path: $REGISTRY_HTPASSWD"
        elif [ -n "${REGISTRY_TOKEN_REALM:-}" ]; then
            echo "auth:"
            echo "  token:"
            echo "    realm: $REGISTRY_TOKEN_REALM"
            echo "    service: $REGISTRY_TOKEN_SERVICE"
            echo "    issuer: $REGISTRY_TOKEN_ISSUER"
            echo "    rootcertbundle: $REGISTRY_TOKEN_CERTS"
        fi
    } >"$dir/config.yml"
}

# True once something accepts connections on 127.0.0.1:PORT.
registry_port_open() {
    (exec 3<>"/dev/tcp/${REGISTRY_HOST:-127.0.0.1}/$1") 2>/dev/null
}

registry_start() { # STATEDIR [OWNER_PID]
    local dir=$1 owner=${2:-}
    command -v "$REGISTRY_BIN" >/dev/null || { echo "registry.sh: $REGISTRY_BIN not installed" >&2; return 1; }
    mkdir -p "$dir/storage"
    local try port pid
    for try in 1 2 3 4 5 6 7 8 9 10; do
        # Below the kernel's ephemeral range (32768-60999 by default), so an
        # outgoing connection's local port cannot take it between check and bind.
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        registry_port_open "$port" && continue
        registry_write_config "$dir" "$port"
        setsid "$REGISTRY_BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
        pid=$!
        local i
        for i in $(seq 1 100); do # 10 s
            registry_port_open "$port" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && registry_port_open "$port"; then
            echo "$pid" >"$dir/registry.pid"
            echo "${REGISTRY_HOST:-127.0.0.1}:$port" >"$dir/addr"
            REGISTRY_ADDR=${REGISTRY_HOST:-127.0.0.1}:$port
            REGISTRY_STORAGE=$dir/storage
            REGISTRY_DIR=$dir
            if [ -n "$owner" ]; then
                # Stop the registry when its owner goes, however it goes.
                setsid bash -c 'while kill -0 '"$owner"' 2>/dev/null && kill -0 '"$pid"' 2>/dev/null; do sleep 1; done; kill '"$pid"' 2>/dev/null' \
                    >/dev/null 2>&1 </dev/null &
            fi
            return 0
        fi
        # The registry may have died already (port taken); under `set -e` a
        # failing kill or wait must not end the retry loop.
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        cp "$dir/registry.log" "$dir/registry.log.$try" 2>/dev/null || true
    done
    echo "registry.sh: cannot start $REGISTRY_BIN (see $dir/registry.log)" >&2
    cat "$dir/registry.log" >&2 2>/dev/null
    return 1
}

registry_stop() { # [STATEDIR]
    local dir=${1:-${REGISTRY_DIR:-}}
    [ -n "$dir" ] && [ -f "$dir/registry.pid" ] || return 0
    local pid i
    pid=$(cat "$dir/registry.pid")
    kill "$pid" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    rm -f "$dir/registry.pid"
}

registry_cleanup() {
    registry_stop "${REGISTRY_DIR:-}"
}

# Path of a blob's data file in the registry storage (for tampering tests).
registry_blob_path() { # DIGEST [STORAGE]
    local hex=${1#sha256:} storage=${2:-$REGISTRY_STORAGE}
    echo "$storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
    start)
        registry_start "$2" "${3:-$PPID}"
        echo "$REGISTRY_ADDR"
        ;;
    stop) registry_stop "$2" ;;
    blob-path) registry_blob_path "$2" "$3" ;;
    *)
        echo "usage: $0 start STATEDIR [OWNER_PID] | stop STATEDIR | blob-path DIGEST STORAGE" >&2
        exit 2
        ;;
    esac
else
    trap registry_cleanup EXIT
fi
