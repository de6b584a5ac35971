#!/usr/bin/env bash
# Boots machine-os under qemu (TCG) for VM tests and benchmarks. Everything runs inside a network
# namespace the caller made (qemu's user network: guest traffic never leaves the namespace; the
# guest's sshd is forwarded to that namespace's loopback).
#     QEMU_NS=ns QEMU_DIR=dir   (console.log, mon, pid live in dir)
#     qemu_boot iso|kernel DATA_IMG CONFIG_IMG SSH_PORT [extra qemu args...]
#     qemu_wait_ready SECONDS    -> prints the guest's seconds to "ssh ready"
#     qemu_powerdown SECONDS     # ACPI power button; fails if qemu is still running after
#     qemu_kill
# MACHINE_OS_DIR holds machine-os.iso, vmlinuz, initrd.img.
qemu_boot() { # iso|kernel DATA CONFIG PORT [args]
    local how=$1 data=$2 config=$3 port=$4
    shift 4
    local boot=()
    if [ "$how" = iso ]; then
        boot=(-cdrom "$MACHINE_OS_DIR/machine-os.iso" -boot d)
    else
        boot=(-kernel "$MACHINE_OS_DIR/vmlinuz" -initrd "$MACHINE_OS_DIR/initrd.img"
            -append "console=ttyS0 quiet panic=5")
    fi
    rm -f "$QEMU_DIR/console.log" "$QEMU_DIR/mon"
    ip netns exec "$QEMU_NS" qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
        "${boot[@]}" \
        -drive "file=$data,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0,serial=machine-data \
        -drive "file=$config,if=none,id=d1,format=raw,readonly=on" \
        -device virtio-blk-pci,drive=d1,serial=machine-config \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 \
        -monitor "unix:$QEMU_DIR/mon,server,nowait" -serial "file:$QEMU_DIR/console.log" \
        -display none -pidfile "$QEMU_DIR/qemu.pid" "$@" </dev/null >"$QEMU_DIR/qemu.log" 2>&1 &
    QEMU_PID=$!
}

qemu_wait_ready() { # SECONDS
    local i
    for i in $(seq $(($1 * 4))); do
        if grep -q "machine-os: ssh ready" "$QEMU_DIR/console.log" 2>/dev/null; then
            sed -n 's/.*ssh ready .* (uptime \([0-9.]*\) s).*/\1/p' "$QEMU_DIR/console.log" | tail -n1
            return 0
        fi
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 0.25
    done
    echo "machine-os did not come up; console:" >&2
    tail -n 30 "$QEMU_DIR/console.log" >&2 2>/dev/null
    return 1
}

qemu_monitor() { # COMMAND
    python3 - "$QEMU_DIR/mon" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
time.sleep(0.2)
try:
    s.recv(65536)
except socket.timeout:
    pass
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.3)
PY
}

qemu_powerdown() { # SECONDS
    qemu_monitor system_powerdown
    local i
    for i in $(seq $(($1 * 4))); do
        kill -0 "$QEMU_PID" 2>/dev/null || { wait "$QEMU_PID" 2>/dev/null; return 0; }
        sleep 0.25
    done
    return 1
}

qemu_kill() {
    [ -n "${QEMU_PID:-}" ] || return 0
    kill -9 "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
}

# A config disk as the kvm driver writes it: a plain tar at byte 0, zero padded.
qemu_config_disk() { # OUT HOSTNAME PUBKEY
    local d
    d=$(mktemp -d)
    echo "$2" >"$d/hostname"
    cp "$3" "$d/authorized_keys"
    tar -cf "$1" -C "$d" hostname authorized_keys
    truncate -s 1M "$1"
    rm -rf "$d"
}
