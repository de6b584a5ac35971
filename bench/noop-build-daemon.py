#!/usr/bin/env python3
"""A daemon that answers /_ping and reads a POST /build body to its end, then answers a
built image at once: docker build against it is the docker CLI's own time (its start,
the context tar it makes and sends), the floor under any daemon's warm build.
    bench/noop-build-daemon.py SOCKET"""
import os
import socket
import sys
import threading

ANSWER = (b'{"aux":{"ID":"sha256:' + b"a" * 64 + b'"}}\n'
          b'{"stream":"sha256:' + b"a" * 64 + b'\\n"}\n')


def serve(conn):
    f = conn.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            return
        headers = {}
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if not line.startswith(b"POST"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nOstype: linux\r\n"
                         b"Content-Length: 0\r\n\r\n")
            continue
        if headers.get("transfer-encoding") == "chunked":
            while True:
                n = int(f.readline().strip(), 16)
                f.read(n + 2)
                if n == 0:
                    break
        else:
            f.read(int(headers.get("content-length", "0")))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(ANSWER) + ANSWER +
                     b"\r\n0\r\n\r\n")


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
