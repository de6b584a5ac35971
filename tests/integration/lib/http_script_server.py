#!/usr/bin/env python3
"""A scripted HTTP server on 127.0.0.1 for the util/http client test (itest_http.c).

    http_script_server.py PORTFILE   # binds a free port, writes it to PORTFILE, serves until killed

Paths (the count of requests per path is kept; GET /count/<path> answers it):
  /flaky          503 (Retry-After: 1) twice, then 200 "ok"
  /always-503     503
  /post-503       503 (POST)
  /retry-long     429 with Retry-After: 3600
  /big            2 MiB of 'x'
  /slow           200 after 3 s
  /echo           PUT: 201, body "<len> <sha256>", Location: /up/next, Docker-Content-Digest
  /json           POST: the JSON body back with "seen": true
  /ping           200 "pong"
  /conns          how many client connections (source ports) the server has seen
"""
import hashlib
import http.server
import json
import sys
import threading
import time

counts = {}
ports = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def handle_any(self):
        path = self.path.split("?")[0]
        with lock:
            ports.add(self.client_address[1])
        if path == "/conns":
            with lock:
                n = len(ports)
            return self.reply(200, str(n).encode())
        if path == "/ping":
            self.body()
            return self.reply(200, b"pong")
        if path.startswith("/count/"):
            with lock:
                n = counts.get("/" + path[len("/count/"):], 0)
            return self.reply(200, str(n).encode())
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
        data = self.body()
        if path == "/flaky":
            if n <= 2:
                return self.reply(503, b"busy", [("Retry-After", "1")] if n == 1 else [])
            return self.reply(200, b"ok")
        if path in ("/always-503", "/post-503"):
            return self.reply(503, b"busy")
        if path == "/retry-long":
            return self.reply(429, b"slow down", [("Retry-After", "3600")])
        if path == "/big":
            return self.reply(200, b"x" * (2 << 20))
        if path == "/slow":
            time.sleep(3)
            return self.reply(200, b"late")
        if path == "/echo":
            digest = hashlib.sha256(data).hexdigest()
            return self.reply(201, ("%d %s" % (len(data), digest)).encode(),
                              [("Location", "/up/next"), ("Docker-Content-Digest", "sha256:" + digest)])
        if path == "/json":
            doc = json.loads(data)
            doc["seen"] = True
            return self.reply(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        return self.reply(404, b"no such path")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
