#!/usr/bin/env bash
# ADD on machine-engine's classic builder, with dockerd's rules: a URL (a loopback HTTP server
# made here) is downloaded under its path's file name (mode 0600, mtime from Last-Modified) and
# never unpacked; a local tar archive (plain, gzip, bzip2, xz) is unpacked at the destination
# with its owners, a file that is not an archive is copied; a hostile archive never reaches the
# host; POST /build?remote= takes a tarball URL (or a Dockerfile) as the context, git refused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
ENGINE_ARGS=(--bridge none)
http_pid=
enginetest_setup badd
enginetest_on_exit '[ -z "$http_pid" ] || { kill "$http_pid" 2>/dev/null; wait "$http_pid" 2>/dev/null; }'
enginetest_engine
export DOCKER_BUILDKIT=0
api() { curl -sS --max-time 120 --unix-socket "$T/e/engine.sock" "$@"; }
d pull -q "$BASE" >/dev/null

# a loopback HTTP server on a free port (python's, which sends Last-Modified from the mtime)
W=$T/www
mkdir -p "$W/files"
python3 - "$W" "$T/http.port" >"$T/http.log" 2>&1 <<'EOF' &
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
open(sys.argv[2] + ".tmp", "w").write(str(s.server_port))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
EOF
http_pid=$!
for _ in $(seq 100); do [ -s "$T/http.port" ] && break; sleep 0.1; done
[ -s "$T/http.port" ] || fail "the loopback HTTP server did not start: $(cat "$T/http.log")"
URL=http://127.0.0.1:$(cat "$T/http.port")

step "ADD <url>: the file named by the URL's path, mode 0600, mtime from Last-Modified, never unpacked"
echo "downloaded" >"$W/files/hello.txt"
touch -d '2001-02-03 04:05:06 UTC' "$W/files/hello.txt"
mkdir -p "$T/arch/in" && echo inner >"$T/arch/in/x"
tar -C "$T/arch" -czf "$W/files/pack.tar.gz" in
C=$T/ctx
mkdir -p "$C"
cat >"$C/Dockerfile" <<EOF
FROM $BASE
ADD $URL/files/hello.txt /dl/
ADD $URL/files/hello.txt?x=1 /named
ADD $URL/files/pack.tar.gz /remote/
EOF
out=$(d build -t test/addurl "$C" 2>&1) || fail "ADD of URLs: $out"
assert_eq "$(d run --rm test/addurl stat -c '%n %a %u:%g %Y' /dl/hello.txt /named)" \
    "/dl/hello.txt 600 0:0 981173106
/named 600 0:0 981173106" "the downloads: name from the URL (or the destination), 0600, root, Last-Modified"
assert_eq "$(d run --rm test/addurl cat /dl/hello.txt)" "downloaded" "the downloaded content"
assert_eq "$(d run --rm test/addurl sh -c 'test -f /remote/pack.tar.gz && ! test -e /remote/in && echo file')" \
    "file" "a remote archive is kept as the file it is"
out=$(d build "$C" 2>&1) || fail "rebuild with URLs: $out"
assert_eq "$(grep -c ' ---> Using cache' <<<"$out")" "3" "the same downloads hit the cache"
printf 'FROM %s\nADD %s/files/nosuch /x\n' "$BASE" "$URL" >"$C/Dockerfile"
out=$(d build "$C" 2>&1) && fail "ADD of a missing URL built"
assert_contains "$out" "404" "a download that answers 404 fails the build with the status"
printf 'FROM %s\nADD git@example.invalid:x/y.git /x\n' "$BASE" >"$C/Dockerfile"
out=$(d build "$C" 2>&1) && fail "ADD of a git URL built"
assert_contains "$out" "not supported by machine-engine" "ADD of a git repository is refused by name"

step "ADD of a local archive (tar, gzip, bzip2, xz) unpacks it with its owners; other files are copied"
L=$T/local
mkdir -p "$L/src/sub"
echo packed >"$L/src/sub/f"
tar -C "$L/src" --owner=7 --group=8 -cf "$L/a.tar" sub
gzip -c "$L/a.tar" >"$L/a.tar.gz"
bzip2 -c "$L/a.tar" >"$L/a.tar.bz2"
xz -c "$L/a.tar" >"$L/a.tar.xz"
echo "just text" >"$L/notes.txt"
echo "not a tar" | gzip -c >"$L/text.gz"
cat >"$L/Dockerfile" <<EOF
FROM $BASE
ADD a.tar /t/plain/
ADD a.tar.gz /t/gzip
ADD a.tar.bz2 /t/bzip2/
ADD a.tar.xz /t/xz/
ADD notes.txt text.gz /t/files/
EOF
out=$(d build -t test/addlocal "$L" 2>&1) || fail "ADD of local archives: $out"
assert_eq "$(d run --rm test/addlocal sh -c 'for k in plain gzip bzip2 xz; do stat -c "%n %u:%g" /t/$k/sub/f; cat /t/$k/sub/f; done')" \
    "/t/plain/sub/f 7:8
packed
/t/gzip/sub/f 7:8
packed
/t/bzip2/sub/f 7:8
packed
/t/xz/sub/f 7:8
packed" "each archive is unpacked at its destination with the owners it names"
assert_eq "$(d run --rm test/addlocal sh -c 'cat /t/files/notes.txt; gunzip -c /t/files/text.gz')" "just text
not a tar" "a text file and a compressed non-tar are copied as files"

step "a hostile archive for ADD is handled like a hostile layer"
python3 - "$L/evil.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    i = tarfile.TarInfo("../../../../../../tmp/machine-badd-escape"); i.size = 4
    t.addfile(i, io.BytesIO(b"evil"))
EOF
python3 - "$L/evil2.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    i = tarfile.TarInfo("root"); i.type = tarfile.SYMTYPE; i.linkname = "/"; t.addfile(i)
    i = tarfile.TarInfo("root/tmp/machine-badd-escape2"); i.size = 4; t.addfile(i, io.BytesIO(b"evil"))
EOF
printf 'FROM %s\nADD evil.tar /e/\n' "$BASE" >"$L/Dockerfile"
out=$(d build "$L" 2>&1) && fail "an archive with ../ names was unpacked"
assert_contains "$out" "ADD's archive" "an archive climbing out of its directory is refused"
[ ! -e /tmp/machine-badd-escape ] || fail "the archive wrote outside"
printf 'FROM %s\nADD evil2.tar /e/\n' "$BASE" >"$L/Dockerfile"
d build -t test/evil2 "$L" >/dev/null 2>&1 || true
[ ! -e /tmp/machine-badd-escape2 ] || fail "a write through a symlink to / landed on the host"
assert__ok "a write through a symlink to / stays inside"

step "POST /build?remote=: a tarball URL or a Dockerfile URL is the context; git is refused"
R=$T/remote
mkdir -p "$R"
echo "from the remote context" >"$R/msg"
printf 'FROM %s\nCOPY msg /msg\nCMD ["cat", "/msg"]\n' "$BASE" >"$R/Dockerfile"
tar -C "$R" -czf "$W/ctx.tar.gz" .
res=$(api -X POST "http://x/v1.45/build?t=test/remote&remote=$(jq -rn --arg u "$URL/ctx.tar.gz" '$u|@uri')")
assert_contains "$res" "Successfully tagged test/remote" "a remote tarball builds"
assert_eq "$(d run --rm test/remote)" "from the remote context" "the image has the remote context's file"
printf 'FROM %s\nRUN echo only-a-dockerfile >/m\n' "$BASE" >"$W/Dockerfile.txt"
res=$(api -X POST "http://x/v1.45/build?t=test/remote2&remote=$(jq -rn --arg u "$URL/Dockerfile.txt" '$u|@uri')")
assert_contains "$res" "only-a-dockerfile" "a remote Dockerfile alone builds"
code=$(api -o "$T/git.out" -w '%{http_code}' -X POST "http://x/v1.45/build?remote=git://127.0.0.1/x.git")
assert_eq "$code" "400" "a git context is refused with 400"
assert_contains "$(cat "$T/git.out")" "not supported by machine-engine" "and says so"

pass
