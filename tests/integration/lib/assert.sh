# shellcheck shell=bash
# assert.sh - minimal assertions for shell integration tests.
#
#   fail MSG                      report a failure and stop the test (exit 1)
#   assert_eq ACTUAL EXPECTED MSG
#   assert_contains HAYSTACK NEEDLE MSG
#   assert_exit CODE CMD...       run CMD, expect exit status CODE
#   pass                          print "N passed, 0 failed" and exit 0
#
# The first failing assertion stops the test, so a summary line always reads
# either "N passed, 0 failed" (from pass) or "N passed, 1 failed" (from fail).
# Every assertion prints "ok - MSG" or "FAIL - MSG" on stdout.

if [ -n "${ASSERT_LIB_LOADED:-}" ]; then
    return 0
fi
ASSERT_LIB_LOADED=1
ASSERT_PASSED=0

assert__ok() {
    ASSERT_PASSED=$((ASSERT_PASSED + 1))
    printf 'ok - %s\n' "$1"
}

fail() {
    printf 'FAIL - %s\n' "${1:-failed}"
    printf '%d passed, 1 failed\n' "$ASSERT_PASSED"
    exit 1
}

assert_eq() {
    local actual=$1 expected=$2 msg=${3:-values are equal}
    if [ "$actual" != "$expected" ]; then
        printf '  expected: %s\n  actual:   %s\n' "$expected" "$actual"
        fail "$msg"
    fi
    assert__ok "$msg"
}

assert_contains() {
    local haystack=$1 needle=$2 msg=${3:-"text contains '$2'"}
    case "$haystack" in
    *"$needle"*) assert__ok "$msg" ;;
    *)
        printf '  missing: %s\n  in:      %s\n' "$needle" "$haystack"
        fail "$msg"
        ;;
    esac
}

# assert_exit CODE CMD...: runs CMD (stdout and stderr kept) and checks its status.
assert_exit() {
    local expected=$1 rc=0
    shift
    "$@" || rc=$?
    if [ "$rc" != "$expected" ]; then
        printf '  expected exit %s, got %s: %s\n' "$expected" "$rc" "$*"
        fail "exit status of: $*"
    fi
    assert__ok "exit $expected: $*"
}

pass() {
    printf '%d passed, 0 failed\n' "$ASSERT_PASSED"
    exit 0
}
