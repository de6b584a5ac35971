#!/usr/bin/python3
"""A registry token server for tests, on 127.0.0.1: GET /token?service=S&scope=repository:NAME:ACTIONS
with HTTP Basic USER:PASSWORD answers {"token": JWT} granting the scope, signed RS256 with KEY
and carrying CERT in x5c (docker-registry's `auth: token:` checks it against its rootcertbundle);
other credentials, or none, get 401. Signing goes through the openssl command (no third-party
modules). Writes the port it listens on to PORTFILE; ends when OWNER_PID is gone.

    token_server.py KEY CERT ISSUER USER PASSWORD PORTFILE OWNER_PID
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

KEY, CERT, ISSUER, USER, PASSWORD, PORTFILE, OWNER = sys.argv[1:8]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der():
    pem = open(CERT).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())  # x5c: standard base64 of the DER


def token(service, scopes):
    now = int(time.time())
    access = []
    for s in scopes:
        parts = s.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            access.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
    header = {"alg": "RS256", "typ": "JWT", "x5c": [cert_der()]}
    claims = {"iss": ISSUER, "sub": USER, "aud": service, "exp": now + 300, "nbf": now - 10,
              "iat": now, "jti": b64url(os.urandom(12)), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing_input,
                         capture_output=True, check=True, timeout=30).stdout
    return signing_input.decode() + "." + b64url(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if url.path != "/token" or self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="tokens"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"token": token(q.get("service", [""])[0], q.get("scope", []))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def watch_owner(server):
    while True:
        try:
            os.kill(int(OWNER), 0)
        except OSError:
            server.shutdown()
            return
        time.sleep(1)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
threading.Thread(target=watch_owner, args=(server,), daemon=True).start()
server.serve_forever()
