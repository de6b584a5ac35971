#!/usr/bin/env python3
"""A DigitalOcean API v2 simulator for machine's tests, written from the public API reference
(https://docs.digitalocean.com/reference/api/api-reference/): account, account keys, droplets,
droplet actions and actions, "links.pages" pagination, the RateLimit-* headers and the error
body {"id": ..., "message": ...}.

Every droplet is a real host: tests/sim/sim_hosts.sh brings up a Debian rootfs with sshd in a
network namespace (tests/integration/lib/testhost.sh) authorising the droplet's SSH keys, so a
client can SSH to the droplet's public IPv4. power_off/shutdown take its link down, power_on
brings it back, DELETE removes the host.

Listens on 127.0.0.1 only. Test controls (no token needed):
  GET  /_sim/state   everything the simulator holds, and counters
  POST /_sim/config  {"throttle": N, "throttle_method": "POST", "retry_after": S,
                      "quota": bool, "never_active": bool, "exhausted": N}
                     (exhausted: the next N answers say RateLimit-Remaining 0 until the
                     next second)
Run: do_sim.py --token TOKEN --port-file FILE [--max-per-page N] [--seed-keys N]
     [--seed-droplets N]; it writes its port to FILE once it listens.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


class Hosts:
    """The sim_hosts.sh child: one command line in, one answer line out, one at a time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(["bash", os.path.join(HERE, "sim_hosts.sh")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(self, *words):
        with self.lock:
            self.proc.stdin.write(" ".join(words) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().strip()
        if not line.startswith("ok"):
            raise RuntimeError(line or "the hosts helper exited")
        return line[3:]


class Sim:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()  # answers made under it take it again
        self.hosts = Hosts()
        self.keydir = tempfile.mkdtemp(prefix="do-sim-keys-")
        self.next_id = {"droplet": 3164444, "key": 512189, "action": 36804636}
        self.droplets = {}
        self.keys = {}
        self.actions = {}
        self.config = {"throttle": 0, "throttle_method": None, "retry_after": 1,
                       "quota": False, "never_active": False, "exhausted": 0}
        self.counters = {"requests": 0, "throttled": 0, "unauthorized": 0}
        self.requests = []  # (method, path, status): never a header
        self.bodies = []    # droplet create bodies as received
        for i in range(args.seed_keys):
            self.add_key("someone-else-%d" % i, "ssh-ed25519 %s seed%d" % (
                base64.b64encode(b"seed-key-%d" % i).decode(), i))
        for i in range(args.seed_droplets):
            d = self.new_droplet({"name": "other-%d" % i, "region": "ams3", "size": "s-1vcpu-1gb",
                                  "image": "debian-12-x64", "tags": ["other"]})
            d["status"] = "active"

    def new_id(self, kind):
        self.next_id[kind] += 1
        return self.next_id[kind]

    def add_key(self, name, public_key):
        parts = public_key.split()
        blob = base64.b64decode(parts[1])
        fp = ":".join("%02x" % b for b in hashlib.md5(blob).digest())
        k = {"id": self.new_id("key"), "fingerprint": fp, "public_key": public_key, "name": name}
        self.keys[k["id"]] = k
        return k

    def find_key(self, ref):
        for k in self.keys.values():
            if str(k["id"]) == str(ref) or k["fingerprint"] == ref:
                return k
        return None

    def new_droplet(self, body):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        d = {"id": self.new_id("droplet"), "name": body["name"], "memory": 1024, "vcpus": 1,
             "disk": 25, "locked": False, "status": "new", "kernel": None, "created_at": now,
             "features": [f for f in ("backups", "ipv6", "monitoring", "private_networking")
                          if body.get(f)],
             "backup_ids": [], "next_backup_window": None, "snapshot_ids": [],
             "image": {"slug": body["image"], "distribution": "Debian"}, "volume_ids": [],
             "size": {"slug": body["size"]}, "size_slug": body["size"],
             "networks": {"v4": [], "v6": []},
             "region": {"slug": body["region"], "name": body["region"]},
             "tags": list(body.get("tags") or []), "vpc_uuid": "sim-vpc"}
        self.droplets[d["id"]] = d
        return d

    def new_action(self, droplet, kind):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        a = {"id": self.new_id("action"), "status": "in-progress", "type": kind,
             "started_at": now, "completed_at": None, "resource_id": droplet["id"],
             "resource_type": "droplet", "region_slug": droplet["region"]["slug"]}
        self.actions[a["id"]] = a
        return a

    # -- the real hosts (outside the state lock: they take seconds) --

    def host_name(self, droplet_id):
        return "do%d" % droplet_id

    def boot(self, droplet_id, pubkeys):
        path = os.path.join(self.keydir, "%d.pub" % droplet_id)
        with open(path, "w") as f:
            f.write("".join(k.strip() + "\n" for k in pubkeys))
        try:
            ip = self.hosts.call("up", self.host_name(droplet_id), path)
        except RuntimeError as e:
            sys.stderr.write("do_sim: %s\n" % e)
            return
        with self.lock:
            d = self.droplets.get(droplet_id)
            if d is None:  # deleted while it booted
                threading.Thread(target=self.hosts.call,
                                 args=("down", self.host_name(droplet_id))).start()
                return
            d["networks"]["v4"] = [
                {"ip_address": ip, "netmask": "255.255.255.252", "gateway": "", "type": "public"}]
            d["status"] = "active"

    def run_action(self, droplet_id, action_id, kind):
        name = self.host_name(droplet_id)
        steps = {"power_off": ["netdown"], "shutdown": ["netdown"], "power_on": ["netup"],
                 "reboot": ["netdown", "netup"], "power_cycle": ["netdown", "netup"]}[kind]
        status = "completed"
        try:
            for s in steps:
                self.hosts.call(s, name)
        except RuntimeError as e:
            sys.stderr.write("do_sim: %s\n" % e)
            status = "errored"
        with self.lock:
            a = self.actions[action_id]
            a["status"] = status
            a["completed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            d = self.droplets.get(droplet_id)
            if d is not None and status == "completed":
                d["status"] = "off" if kind in ("power_off", "shutdown") else "active"
                d["locked"] = False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None  # set in main

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        now = int(time.time())
        with self.sim.lock:
            remaining = max(0, 5000 - self.sim.counters["requests"])
            reset = now + 3600
            if self.sim.config["exhausted"] > 0 and not self.path.startswith("/_sim"):
                self.sim.config["exhausted"] -= 1
                remaining, reset = 0, now + 1
        self.send_header("RateLimit-Limit", "5000")
        self.send_header("RateLimit-Remaining", str(remaining))
        self.send_header("RateLimit-Reset", str(reset))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.sim.lock:
            self.sim.requests.append((self.command, self.path, status))

    def error(self, status, ident, message, headers=None):
        self.answer(status, {"id": ident, "message": message}, headers)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if not raw:
            return {}
        return json.loads(raw)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [p for p in url.path.split("/") if p]
        try:
            body = self.read_json() if method == "POST" else {}
        except ValueError:
            return self.error(400, "bad_request", "unparsable JSON")
        if parts[:1] == ["_sim"]:
            return self.control(method, parts[1:], body)
        sim = self.sim
        with sim.lock:
            sim.counters["requests"] += 1
            c = sim.config
            if c["throttle"] > 0 and c["throttle_method"] in (None, method):
                c["throttle"] -= 1
                sim.counters["throttled"] += 1
                throttled = True
            else:
                throttled = False
        if self.headers.get("Authorization") != "Bearer " + sim.args.token:
            with sim.lock:
                sim.counters["unauthorized"] += 1
            return self.error(401, "unauthorized", "Unable to authenticate you")
        if throttled:
            return self.error(429, "too_many_requests", "API Rate limit exceeded.",
                              {"Retry-After": str(sim.config["retry_after"])})
        if parts[:1] != ["v2"]:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        handler = {
            ("GET", "account"): self.get_account,
            ("GET", "account", "keys"): self.list_keys,
            ("POST", "account", "keys"): self.create_key,
            ("DELETE", "account", "keys", "*"): self.delete_key,
            ("GET", "account", "keys", "*"): self.get_key,
            ("GET", "droplets"): self.list_droplets,
            ("POST", "droplets"): self.create_droplet,
            ("GET", "droplets", "*"): self.get_droplet,
            ("DELETE", "droplets", "*"): self.delete_droplet,
            ("POST", "droplets", "*", "actions"): self.droplet_action,
            ("GET", "droplets", "*", "actions", "*"): self.get_action,
            ("GET", "actions", "*"): self.get_action,
        }
        shape = tuple([method] + [p if i == 0 or not p.isdigit() and ":" not in p else "*"
                                  for i, p in enumerate(parts[1:])])
        fn = handler.get(shape)
        if fn is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        args = [p for i, p in enumerate(parts[1:]) if i > 0 and (p.isdigit() or ":" in p)]
        return fn(query, body, *args)

    def control(self, method, parts, body):
        sim = self.sim
        if method == "GET" and parts == ["state"]:
            with sim.lock:
                state = {"droplets": list(sim.droplets.values()), "keys": list(sim.keys.values()),
                         "actions": list(sim.actions.values()), "config": sim.config,
                         "counters": sim.counters, "requests": sim.requests,
                         "create_bodies": sim.bodies}
            return self.answer(200, state)
        if method == "POST" and parts == ["config"]:
            with sim.lock:
                sim.config.update(body)
            return self.answer(200, sim.config)
        return self.error(404, "not_found", "no such control")

    def page(self, query, items, member):
        """One page of items with DigitalOcean's links.pages and meta.total."""
        per = min(int(query.get("per_page", 20)), 200, self.sim.args.max_per_page)
        per = max(per, 1)
        page = max(int(query.get("page", 1)), 1)
        last = max((len(items) + per - 1) // per, 1)
        base = "http://%s%s" % (self.headers.get("Host"), urllib.parse.urlsplit(self.path).path)

        def link(n):
            q = dict(query, page=str(n), per_page=str(per))
            return base + "?" + urllib.parse.urlencode(q)

        pages = {}
        if page > 1:
            pages.update(first=link(1), prev=link(page - 1))
        if page < last:
            pages.update(next=link(page + 1), last=link(last))
        return {member: items[(page - 1) * per:page * per], "links": {"pages": pages},
                "meta": {"total": len(items)}}

    def get_account(self, query, body):
        self.answer(200, {"account": {"droplet_limit": 25, "floating_ip_limit": 5,
                                      "email": "sim@example.com", "uuid": "sim-account",
                                      "email_verified": True, "status": "active",
                                      "status_message": ""}})

    def list_keys(self, query, body):
        with self.sim.lock:
            keys = sorted(self.sim.keys.values(), key=lambda k: k["id"])
        self.answer(200, self.page(query, keys, "ssh_keys"))

    def create_key(self, query, body):
        name, pub = body.get("name"), body.get("public_key", "")
        parts = pub.split()
        try:
            ok = len(parts) >= 2 and base64.b64decode(parts[1], validate=True)
        except ValueError:
            ok = False
        if not name or not ok:
            return self.error(422, "unprocessable_entity", "Key invalid, key should be of the form "
                              "ssh-rsa AAAA... or ssh-ed25519 AAAA...")
        with self.sim.lock:
            if any(k["public_key"].split()[:2] == parts[:2] for k in self.sim.keys.values()):
                return self.error(422, "unprocessable_entity", "SSH Key is already in use on your account")
            k = self.sim.add_key(name, pub)
        self.answer(201, {"ssh_key": k})

    def get_key(self, query, body, ref):
        with self.sim.lock:
            k = self.sim.find_key(ref)
        if k is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        self.answer(200, {"ssh_key": k})

    def delete_key(self, query, body, ref):
        with self.sim.lock:
            k = self.sim.find_key(ref)
            if k is not None:
                del self.sim.keys[k["id"]]
        if k is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        self.answer(204)

    def list_droplets(self, query, body):
        with self.sim.lock:
            ds = sorted(self.sim.droplets.values(), key=lambda d: d["id"])
        if "tag_name" in query:
            ds = [d for d in ds if query["tag_name"] in d["tags"]]
        self.answer(200, self.page(query, ds, "droplets"))

    def create_droplet(self, query, body):
        sim = self.sim
        for f in ("name", "region", "size", "image"):
            if not body.get(f):
                return self.error(422, "unprocessable_entity", "%s is required" % f)
        if len(body.get("user_data") or "") > 64 * 1024:
            return self.error(422, "unprocessable_entity", "user_data is limited to 64 KiB")
        with sim.lock:
            if sim.config["quota"]:
                return self.error(422, "unprocessable_entity",
                                  "creating this/these droplet(s) will exceed your droplet limit")
            pubkeys = []
            for ref in body.get("ssh_keys") or []:
                k = sim.find_key(ref)
                if k is None:
                    return self.error(422, "unprocessable_entity",
                                      "ssh_keys: %s is not a key of this account" % ref)
                pubkeys.append(k["public_key"])
            sim.bodies.append(body)
            d = sim.new_droplet(body)
            a = sim.new_action(d, "create")
            never = sim.config["never_active"]
        if not never:
            threading.Thread(target=sim.boot, args=(d["id"], pubkeys), daemon=True).start()
        self.answer(202, {"droplet": d, "links": {"actions": [
            {"id": a["id"], "rel": "create",
             "href": "http://%s/v2/actions/%d" % (self.headers.get("Host"), a["id"])}]}})

    def get_droplet(self, query, body, ident):
        with self.sim.lock:
            d = self.sim.droplets.get(int(ident))
            d = json.loads(json.dumps(d)) if d is not None else None
        if d is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        self.answer(200, {"droplet": d})

    def delete_droplet(self, query, body, ident):
        with self.sim.lock:
            d = self.sim.droplets.pop(int(ident), None)
        if d is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        if d["networks"]["v4"]:
            threading.Thread(target=self.sim.hosts.call,
                             args=("down", self.sim.host_name(d["id"])), daemon=True).start()
        self.answer(204)

    def droplet_action(self, query, body, ident):
        kind = body.get("type")
        if kind not in ("power_off", "shutdown", "power_on", "reboot", "power_cycle"):
            return self.error(422, "unprocessable_entity", "invalid action type '%s'" % kind)
        with self.sim.lock:
            d = self.sim.droplets.get(int(ident))
            if d is None:
                return self.error(404, "not_found",
                                  "The resource you were accessing could not be found.")
            if d["status"] == "new" or d["locked"]:
                return self.error(422, "unprocessable_entity",
                                  "Droplet is currently locked by another action")
            d["locked"] = True
            a = self.sim.new_action(d, kind)
        threading.Thread(target=self.sim.run_action, args=(d["id"], a["id"], kind),
                         daemon=True).start()
        self.answer(201, {"action": a})

    def get_action(self, query, body, *ids):
        with self.sim.lock:
            a = self.sim.actions.get(int(ids[-1]))
            a = dict(a) if a is not None else None
        if a is None:
            return self.error(404, "not_found", "The resource you were accessing could not be found.")
        self.answer(200, {"action": a})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--token", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--max-per-page", type=int, default=200)
    p.add_argument("--seed-keys", type=int, default=0)
    p.add_argument("--seed-droplets", type=int, default=0)
    args = p.parse_args()
    Handler.sim = Sim(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    with open(args.port_file + ".hosts-pid", "w") as f:
        f.write("%d\n" % Handler.sim.hosts.proc.pid)
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    finally:
        Handler.sim.hosts.proc.stdin.close()


if __name__ == "__main__":
    main()
