#!/usr/bin/env bash
# Acceptance of docker build on machine-engine with the real clients: the docker CLI 28 with its
# defaults (no buildx plugin: the classic builder) and with DOCKER_BUILDKIT=0 builds a
# multi-stage C build (gcc in a stage whose base image is the host's gcc toolchain, imported
# by the test; the static binary copied into a busybox stage and run there), and docker-compose 1.29 builds a
# service's image from a `build:` section and `up -d` runs it with the built content.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/enginetest.sh"
enginetest_netns baccept "$@"
enginetest_setup baccept
enginetest_engine
d pull -q "$BASE" >/dev/null

# The compile stage's base image: the host's gcc 12 toolchain (driver, cc1, as, ld, libc.a,
# libgcc and the libraries they load; about 57 MB), made offline and imported.
gcc_image() { # ROOT
    local r=$1 g=/usr/lib/gcc/x86_64-linux-gnu/12 f l
    mkdir -p "$r"/{usr/bin,bin,lib64,lib/x86_64-linux-gnu,usr/lib/x86_64-linux-gnu,usr/include,tmp} "$r$g"
    chmod 1777 "$r/tmp"
    cp /usr/bin/x86_64-linux-gnu-gcc-12 "$r/usr/bin/gcc"
    cp /usr/bin/x86_64-linux-gnu-as "$r/usr/bin/as"
    cp /usr/bin/x86_64-linux-gnu-ld.bfd "$r/usr/bin/ld"
    for f in cc1 collect2 lto-wrapper liblto_plugin.so crtbeginT.o crtbegin.o crtend.o libgcc.a libgcc_eh.a; do
        cp "$g/$f" "$r$g/"
    done
    for f in crt1.o crti.o crtn.o libc.a; do cp "/usr/lib/x86_64-linux-gnu/$f" "$r/usr/lib/x86_64-linux-gnu/"; done
    for l in $(for f in "$r/usr/bin/gcc" "$r/usr/bin/as" "$r/usr/bin/ld" "$g/cc1" "$g/collect2"; do
        ldd "$f" | awk '$3 ~ /^\// { print $3 }'; done | sort -u); do
        cp -L "$l" "$r/lib/x86_64-linux-gnu/"
    done
    cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
    cp "$(command -v busybox)" "$r/bin/busybox"
    ln -s busybox "$r/bin/sh"
    : >"$r/usr/include/stdc-predef.h" # the only header cc1 looks for by itself
}
[ -x /usr/lib/gcc/x86_64-linux-gnu/12/cc1 ] && [ -f /usr/lib/x86_64-linux-gnu/libc.a ] ||
    { echo "SKIP: the host has no gcc 12 with a static libc (apt-get install gcc libc6-dev)"; exit 77; }
gcc_image "$T/gccroot"
tar -C "$T/gccroot" -c . | d import -c 'ENV PATH=/usr/bin:/bin' - test/gcc:12 >/dev/null ||
    fail "docker import of the gcc toolchain"

C=$T/cbuild
mkdir -p "$C"
cat >"$C/hello.c" <<'EOF'
long write(int fd, const void *buf, unsigned long n);
int main(void) { write(1, "hello from the compile stage\n", 29); return 0; }
EOF
cat >"$C/Dockerfile" <<EOF
FROM test/gcc:12 AS build
WORKDIR /src
COPY hello.c ./
RUN busybox mkdir -p /out && gcc -static -O2 -o /out/hello hello.c && /out/hello

FROM $BASE
COPY --from=build /out/hello /usr/local/bin/hello
CMD ["/usr/local/bin/hello"]
EOF

step "a multi-stage build with DOCKER_BUILDKIT=0: the artefact of the compile stage runs in the busybox stage"
out=$(DOCKER_BUILDKIT=0 d build -t test/hello:legacy "$C" 2>&1) || fail "DOCKER_BUILDKIT=0 build: $out"
assert_contains "$out" "hello from the compile stage" "the compile stage ran its artefact"
assert_eq "$(d run --rm test/hello:legacy)" "hello from the compile stage" "the copied artefact runs in the final stage"
assert_eq "$(d run --rm test/hello:legacy sh -c 'test -e /src || test -e /usr/bin/gcc || echo clean')" "clean" "nothing of the compile stage but the artefact"

step "the same with the CLI's defaults (no buildx plugin: the classic builder)"
if "$DOCKER" buildx version >/dev/null 2>&1; then
    echo "skip: buildx is installed, the CLI's default is BuildKit" >&2
else
    out=$(env -u DOCKER_BUILDKIT "$DOCKER" build -t test/hello:default "$C" 2>&1) || fail "default build: $out"
    assert_contains "$out" "Successfully tagged test/hello:default" "the default CLI build goes through the classic builder"
    assert_eq "$(d run --rm test/hello:default)" "hello from the compile stage" "and its image runs"
fi

step "docker-compose 1.29: build: then up -d runs the built image"
if ! command -v docker-compose >/dev/null; then
    echo "skip: docker-compose is not installed" >&2
else
    P=$T/compose
    mkdir -p "$P/app"
    echo "composed content" >"$P/app/content"
    printf 'ARG BASE\nFROM ${BASE}\nARG WHO\nCOPY content /content\nRUN echo "built for $WHO" >/who\nCMD ["sh", "-c", "cat /content /who"]\n' >"$P/app/Dockerfile"
    cat >"$P/docker-compose.yml" <<EOF
version: "3.7"
services:
  web:
    build:
      context: ./app
      args:
        BASE: $BASE
        WHO: compose
    image: test/composed:up
EOF
    out=$(cd "$P" && COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -p accept up -d 2>&1) || fail "docker-compose up -d: $out"
    assert_contains "$out" "Successfully tagged test/composed:up" "compose built the service's image"
    cid=$(cd "$P" && docker-compose -p accept ps -q web)
    [ -n "$cid" ] || fail "no container for the service"
    for _ in $(seq 100); do
        [ "$(d inspect -f '{{.State.Status}}' "$cid")" = exited ] && break
        sleep 0.1
    done
    assert_eq "$(d logs "$cid")" "composed content
built for compose" "the service ran the built image's content and build arg"
    (cd "$P" && docker-compose -p accept down >/dev/null 2>&1) || true
fi

pass
