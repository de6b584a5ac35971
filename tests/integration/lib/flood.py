#!/usr/bin/env python3
"""Opens COUNT connections to an API socket and holds them: silent (no TLS ClientHello, no
request) or with half a request head sent. Bounded in count and time: at most 2048
connections, held at most HOLD seconds (or until stdin closes). Prints "ready N" once every
connection is open (N = how many the server accepted the TCP/Unix connect for), then, when
it ends, "closed M" (how many the server had closed meanwhile).

    flood.py tcp:127.0.0.1:PORT[@SRC1,SRC2,...] COUNT silent|half HOLD
    flood.py unix:/path/engine.sock COUNT silent|half HOLD
Sources (loopback addresses) are used in turn for TCP connections."""
import resource
import select
import socket
import sys
import time

MAX_COUNT = 2048
MAX_HOLD = 120
HALF = b"GET /_ping HTTP/1.1\r\nHost: flood\r\nX-Slow: "


def connect(target, i):
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(target[5:])
        return s
    spec = target[4:]
    sources = None
    if "@" in spec:
        spec, src = spec.split("@", 1)
        sources = src.split(",")
    host, port = spec.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    if sources:
        s.bind((sources[i % len(sources)], 0))
    s.connect((host, int(port)))
    return s


def main():
    target, count, mode, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    count = min(count, MAX_COUNT)
    hold = min(hold, MAX_HOLD)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))
    socks = []
    for i in range(count):
        try:
            s = connect(target, i)
        except OSError as e:
            print("connect %d failed: %s" % (i, e), file=sys.stderr)
            continue
        if mode == "half":
            s.sendall(HALF)
        socks.append(s)
    print("ready %d" % len(socks), flush=True)
    end = time.monotonic() + hold
    while time.monotonic() < end:
        r, _, _ = select.select([sys.stdin], [], [], min(0.2, max(0.0, end - time.monotonic())))
        if r and not sys.stdin.readline():
            break
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(4096) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print("closed %d" % closed, flush=True)


if __name__ == "__main__":
    main()
