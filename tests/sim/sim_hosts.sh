#!/usr/bin/env bash
# The hosts behind a cloud API simulator: each server the simulator makes is a real host, a
# Debian rootfs with sshd in its own network namespace (tests/integration/lib/testhost.sh).
# The simulator runs this script as a child and speaks one line per command on its stdin,
# one answer line per command on its stdout ("ok [VALUE]" or "err MESSAGE"):
#   up NAME PUBKEYFILE    a new host authorising the keys in PUBKEYFILE; answers its IP
#   netdown NAME          its link down (a powered-off server: connects time out)
#   netup NAME            its link back up
#   down NAME             the host removed
# When stdin ends (the simulator exited or was killed) the EXIT trap of testhost.sh removes
# every host this script made.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec 3>&1 1>&2
source "$here/../integration/lib/testhost.sh"

reply() { printf '%s\n' "$*" >&3; }

while IFS=' ' read -r -t 3600 cmd name arg; do
    case "$cmd" in
    up)
        if ip=$(TESTHOST_PUBKEY=$arg testhost_up "$name"); then reply "ok $ip"; else reply "err cannot start host $name"; fi
        ;;
    netdown) if testhost_stop_network "$name"; then reply ok; else reply "err netdown $name"; fi ;;
    netup) if testhost_start_network "$name"; then reply ok; else reply "err netup $name"; fi ;;
    down) if testhost_down "$name"; then reply ok; else reply "err down $name"; fi ;;
    *) reply "err unknown command '$cmd'" ;;
    esac
done
