#!/usr/bin/env bash
# make install (PREFIX, DESTDIR) from this build: machine, the engine bundle and machine-os where
# the installed machine finds them, and the completions and man page generated from machine's
# own command table (each command of `machine help` is in all three).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/assert.sh"

SRC=${MACHINE_SRC:?} B=${MACHINE_BUILD:?}
for f in machine-engine-bundle.tar.gz machine-os/machine-os.iso; do
    [ -f "$B/$f" ] || { echo "skip: $B/$f is not built"; exit 77; }
done
T=$(mktemp -d /tmp/machine-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
R=$T/root
unset MACHINE_ENGINE_BUNDLE
export MACHINE_STORAGE_PATH=$T/store

make -s -C "$SRC" install INSTALL_BUILD="$B" DESTDIR="$R" PREFIX=/usr >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; fail "make install"; }
for f in bin/machine lib/machine/machine-engine-bundle.tar.gz lib/machine/machine-os.iso \
    share/bash-completion/completions/machine share/zsh/vendor-completions/_machine \
    share/man/man1/machine.1; do
    [ -f "$R/usr/$f" ] || fail "not installed: /usr/$f"
done
assert__ok "everything under DESTDIR/PREFIX"
cmp -s "$B/machine-engine-bundle.tar.gz" "$R/usr/lib/machine/machine-engine-bundle.tar.gz" ||
    fail "installed bundle differs"
[ -x "$R/usr/bin/machine" ] || fail "installed machine is not executable"

IM=$R/usr/bin/machine
assert_contains "$("$IM" -D version)" \
    "engine bundle: $R/usr/bin/../lib/machine/machine-engine-bundle.tar.gz" \
    "the installed machine finds the installed bundle"

cmds=$("$IM" help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 {print $1}')
[ "$(wc -l <<<"$cmds")" -gt 15 ] || fail "cannot list commands: $cmds"
man1=$R/usr/share/man/man1/machine.1
zshc=$R/usr/share/zsh/vendor-completions/_machine
sed 's/\\-/-/g' "$man1" >"$T/man.txt"
for c in $cmds; do
    grep -q "^\.SS \"$c " "$T/man.txt" || fail "machine.1 lacks '$c'"
    grep -q "^        '$c:" "$zshc" || fail "_machine lacks '$c'"
done
assert__ok "man page and zsh completion list every command"
[ -z "$(groff -man -ww -z "$man1" 2>&1)" ] || fail "groff warns: $(groff -man -ww -z "$man1" 2>&1)"
assert__ok "machine.1 renders without warnings"
if command -v zsh >/dev/null; then
    zsh -n "$zshc" || fail "_machine: zsh syntax"
    assert__ok "_machine parses"
fi

# bash completion, as bash calls it
complete_words() { # WORDS... (the last is the word being completed)
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    _machine
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
source "$R/usr/share/bash-completion/completions/machine"
"$IM" create -d none --url none alpha >/dev/null
"$IM" -s "$T/other" create -d none --url none beta >/dev/null
assert_eq "$(complete_words machine cre)" "create " "bash: commands"
assert_eq "$(complete_words machine create -d "")" "amazonec2 container digitalocean generic kvm none virtualbox " \
    "bash: drivers after -d"
assert_eq "$(complete_words machine ls --fi)" "--filter " "bash: a command's options"
assert_eq "$(complete_words machine create --generic-ssh-k)" "--generic-ssh-key " "bash: driver flags"
assert_eq "$(complete_words machine rm "")" "alpha " "bash: machine names"
assert_eq "$(complete_words machine -s "$T/other" ip "")" "beta " "bash: machine names of -s PATH"
assert_eq "$(complete_words machine env --shell f)" "fish " "bash: shells"
pass
