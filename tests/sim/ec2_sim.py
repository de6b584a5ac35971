#!/usr/bin/env python3
"""A local simulator of the Amazon EC2 Query API, written from the public API reference
(docs.aws.amazon.com/AWSEC2/latest/APIReference/) for the amazonec2 driver's tests.

Every request's Signature Version 4 is checked with this file's own implementation. The
calls: DescribeImages, DescribeVpcs, DescribeSubnets, Describe/Create/DeleteSecurityGroup(s),
AuthorizeSecurityGroupIngress, Import/Delete/DescribeKeyPair(s), RunInstances, DescribeInstances (filters,
MaxResults/NextToken), Start/Stop/Reboot/TerminateInstances, CreateTags,
Request/Describe/CancelSpotInstance(s|Requests). Answers are XML as documented, errors as
<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>.

Each instance is a real host: the simulator asks a broker (a shell loop of the test, which owns
tests/integration/lib/testhost.sh's hosts) through request files in --broker DIR:
"up NAME PUBKEYFILE" (answer "ok IP"), "stop NAME", "start NAME", "down NAME".

Test controls (unsigned, under /_sim/): POST /_sim/throttle?count=N (the next N calls answer
503 RequestLimitExceeded), POST /_sim/stuck?on=1 (new instances stay pending), POST /_sim/terminate?id=I, POST /_sim/others?count=N (terminated
instances of another owner), POST /_sim/quota?left=N (then
InstanceLimitExceeded; empty: no limit), GET /_sim/state
(every resource as JSON), GET /_sim/log (the calls seen, throttled ones marked).

Listens on 127.0.0.1 only; prints its port on stdout.
"""
import argparse
import base64
import datetime
import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
DEBIAN = "136693071363"


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------------ SigV4 (independent) --

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def expected_signature(secret, method, path, query, headers, signed, body, date, scope):
    """headers: lower-case name -> value as received; signed: the SignedHeaders names."""
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    cq = "&".join(urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~")
                  for k, v in pairs)
    ch = "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in signed)
    creq = "\n".join([method, path or "/", cq, ch, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    day, region, service, _ = scope.split("/")
    k = _hmac(("AWS4" + secret).encode(), day)
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part)
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------ state --

class Sim:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.accounts = {}  # access key -> (secret, token, deny)
        for a in args.account:
            parts = a.split(":")
            self.accounts[parts[0]] = (parts[1], parts[2] if len(parts) > 2 and parts[2] else None,
                                       len(parts) > 3 and parts[3] == "deny")
        self.region = args.region
        self.broker = args.broker
        self.throttle = 0
        self.stuck = False
        self.quota = None    # instances RunInstances may still launch (None: no limit)
        self.log = []
        self.seq = 0
        self.images = [
            {"imageId": "ami-0debian11old", "name": "debian-11-amd64-20230601-1000",
             "owner": DEBIAN, "creationDate": "2023-06-01T10:00:00.000Z"},
            {"imageId": "ami-0debian12old", "name": "debian-12-amd64-20240101-1500",
             "owner": DEBIAN, "creationDate": "2024-01-01T15:00:00.000Z"},
            {"imageId": "ami-0debian12new", "name": "debian-12-amd64-20241110-1930",
             "owner": DEBIAN, "creationDate": "2024-11-10T19:30:00.000Z"},
            {"imageId": "ami-0impostor", "name": "debian-12-amd64-29991231-0000",
             "owner": "999999999999", "creationDate": "2999-12-31T00:00:00.000Z"},
        ]
        self.vpcs = [{"vpcId": "vpc-0sim", "isDefault": "true"}]
        self.subnets = [{"subnetId": "subnet-0sima", "vpcId": "vpc-0sim",
                         "availabilityZone": self.region + "a", "defaultForAz": "true"},
                        {"subnetId": "subnet-0simb", "vpcId": "vpc-0sim",
                         "availabilityZone": self.region + "b", "defaultForAz": "true"}]
        self.groups = {}     # id -> {groupId, groupName, vpcId, tags, perms}
        self.keys = {}       # name -> {material, tags}
        self.instances = {}  # id -> {...}
        self.spots = {}      # id -> {...}
        self.tokens = {}     # ClientToken -> instance id

    def new_id(self, prefix):
        self.seq += 1
        return f"{prefix}-{secrets.token_hex(4)}{self.seq:04x}"

    # -- broker --
    def ask(self, line, timeout=120):
        if not self.broker:
            return "ok 127.0.0.1"
        with self.lock:
            self.seq += 1
            n = self.seq
        tmp = os.path.join(self.broker, f".req-{n}")
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.rename(tmp, os.path.join(self.broker, f"req-{n}"))
        rep = os.path.join(self.broker, f"rep-{n}")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if os.path.exists(rep):
                with open(rep) as f:
                    ans = f.read().strip()
                os.unlink(rep)
                return ans
            time.sleep(0.1)
        return "err broker timeout"


def tags_xml(tags):
    return "<tagSet>" + "".join(f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>"
                                for k, v in tags.items()) + "</tagSet>"


def indexed(params, prefix):
    """Values of PREFIX.1, PREFIX.2, ... in order."""
    out, i = [], 1
    while f"{prefix}.{i}" in params:
        out.append(params[f"{prefix}.{i}"])
        i += 1
    return out


def filters(params):
    out, i = {}, 1
    while f"Filter.{i}.Name" in params:
        out[params[f"Filter.{i}.Name"]] = indexed(params, f"Filter.{i}.Value")
        i += 1
    return out


def tag_specs(params, rtype, prefix=""):
    tags, i = {}, 1
    while f"{prefix}TagSpecification.{i}.ResourceType" in params:
        if params[f"{prefix}TagSpecification.{i}.ResourceType"] == rtype:
            j = 1
            while f"{prefix}TagSpecification.{i}.Tag.{j}.Key" in params:
                tags[params[f"{prefix}TagSpecification.{i}.Tag.{j}.Key"]] = \
                    params.get(f"{prefix}TagSpecification.{i}.Tag.{j}.Value", "")
                j += 1
        i += 1
    return tags


def match_tags(obj, flt):
    for name, values in flt.items():
        if name.startswith("tag:") and obj["tags"].get(name[4:]) not in values:
            return False
    return True


# ---------------------------------------------------------------------------- actions --

def act_describe_images(sim, p):
    owners, ids, flt = indexed(p, "Owner"), indexed(p, "ImageId"), filters(p)
    items = []
    for im in sim.images:
        if owners and im["owner"] not in owners:
            continue
        if ids and im["imageId"] not in ids:
            continue
        if "name" in flt and not any(fnmatch.fnmatchcase(im["name"], g) for g in flt["name"]):
            continue
        items.append(im)
    missing = [i for i in ids if i not in [im["imageId"] for im in items]]
    if missing:
        raise ApiError(400, "InvalidAMIID.NotFound", f"The image id '[{missing[0]}]' does not exist")
    return "<imagesSet>" + "".join(
        f"<item><imageId>{im['imageId']}</imageId><imageState>available</imageState>"
        f"<imageOwnerId>{im['owner']}</imageOwnerId><creationDate>{im['creationDate']}"
        f"</creationDate><name>{im['name']}</name><architecture>x86_64</architecture></item>"
        for im in items) + "</imagesSet>"


def act_describe_vpcs(sim, p):
    return "<vpcSet>" + "".join(f"<item><vpcId>{v['vpcId']}</vpcId><isDefault>{v['isDefault']}"
                                f"</isDefault></item>" for v in sim.vpcs) + "</vpcSet>"


def act_describe_subnets(sim, p):
    ids, flt = indexed(p, "SubnetId"), filters(p)
    out = []
    for s in sim.subnets:
        if ids and s["subnetId"] not in ids:
            continue
        if any(k in flt and s[f] not in flt[k] for k, f in
               (("availability-zone", "availabilityZone"), ("vpc-id", "vpcId"),
                ("default-for-az", "defaultForAz"))):
            continue
        out.append(s)
    if ids and not out:
        raise ApiError(400, "InvalidSubnetID.NotFound", f"The subnet ID '{ids[0]}' does not exist")
    return "<subnetSet>" + "".join(
        f"<item><subnetId>{s['subnetId']}</subnetId><state>available</state><vpcId>{s['vpcId']}"
        f"</vpcId><availabilityZone>{s['availabilityZone']}</availabilityZone><defaultForAz>"
        f"{s['defaultForAz']}</defaultForAz></item>" for s in out) + "</subnetSet>"


def act_describe_groups(sim, p):
    ids, flt = indexed(p, "GroupId"), filters(p)
    out = []
    for g in sim.groups.values():
        if ids and g["groupId"] not in ids:
            continue
        if "group-name" in flt and g["groupName"] not in flt["group-name"]:
            continue
        if "vpc-id" in flt and g["vpcId"] not in flt["vpc-id"]:
            continue
        if not match_tags(g, flt):
            continue
        out.append(g)
    return "<securityGroupInfo>" + "".join(
        f"<item><ownerId>123456789012</ownerId><groupId>{g['groupId']}</groupId><groupName>"
        f"{escape(g['groupName'])}</groupName><vpcId>{g['vpcId']}</vpcId><ipPermissions>"
        + "".join(f"<item><ipProtocol>tcp</ipProtocol><fromPort>{a}</fromPort><toPort>{b}</toPort>"
                  f"</item>" for a, b in g["perms"]) + "</ipPermissions>" + tags_xml(g["tags"])
        + "</item>" for g in out) + "</securityGroupInfo>"


def act_create_group(sim, p):
    name, vpc = p.get("GroupName", ""), p.get("VpcId", "vpc-0sim")
    if any(g["groupName"] == name and g["vpcId"] == vpc for g in sim.groups.values()):
        raise ApiError(400, "InvalidGroup.Duplicate",
                       f"The security group '{name}' already exists for VPC '{vpc}'")
    gid = sim.new_id("sg")
    sim.groups[gid] = {"groupId": gid, "groupName": name, "vpcId": vpc, "perms": [],
                       "tags": tag_specs(p, "security-group")}
    return f"<return>true</return><groupId>{gid}</groupId>"


def group_or_404(sim, gid):
    if gid not in sim.groups:
        raise ApiError(400, "InvalidGroup.NotFound", f"The security group '{gid}' does not exist")
    return sim.groups[gid]


def act_authorize(sim, p):
    g = group_or_404(sim, p.get("GroupId", ""))
    i = 1
    while f"IpPermissions.{i}.IpProtocol" in p:
        g["perms"].append((int(p[f"IpPermissions.{i}.FromPort"]), int(p[f"IpPermissions.{i}.ToPort"])))
        i += 1
    return "<return>true</return>"


def act_delete_group(sim, p):
    g = group_or_404(sim, p.get("GroupId", ""))
    for inst in sim.instances.values():
        if g["groupId"] in inst["groups"] and inst["state"] != "terminated":
            raise ApiError(400, "DependencyViolation",
                           f"resource {g['groupId']} has a dependent object")
    del sim.groups[g["groupId"]]
    return "<return>true</return>"


def act_import_key(sim, p):
    name = p.get("KeyName", "")
    if name in sim.keys:
        raise ApiError(400, "InvalidKeyPair.Duplicate", f"The keypair '{name}' already exists.")
    try:
        material = base64.b64decode(p.get("PublicKeyMaterial", ""), validate=True).decode()
    except Exception:
        raise ApiError(400, "InvalidKey.Format", "Key is not in valid OpenSSH public key format")
    if not material.startswith("ssh-"):
        raise ApiError(400, "InvalidKey.Format", "Key is not in valid OpenSSH public key format")
    sim.keys[name] = {"material": material, "tags": tag_specs(p, "key-pair")}
    return (f"<keyName>{escape(name)}</keyName><keyFingerprint>00:00:00:00:00:00:00:00:00:00:00:00:"
            f"00:00:00:00</keyFingerprint><keyPairId>{sim.new_id('key')}</keyPairId>")


def act_describe_keys(sim, p):
    names, flt = indexed(p, "KeyName"), filters(p)
    for n in names:
        if n not in sim.keys:
            raise ApiError(400, "InvalidKeyPair.NotFound", f"The key pair '{n}' does not exist")
    out = [n for n, k in sim.keys.items() if (not names or n in names) and match_tags(k, flt)]
    return "<keySet>" + "".join(f"<item><keyName>{escape(n)}</keyName><keyFingerprint>00:00"
                                f"</keyFingerprint>" + tags_xml(sim.keys[n]["tags"]) + "</item>"
                                for n in out) + "</keySet>"


def act_delete_key(sim, p):
    sim.keys.pop(p.get("KeyName", ""), None)  # EC2 answers true for a missing key too
    return "<return>true</return>"


def launch(sim, spec, prefix, tags):
    """Creates an instance from RunInstances / LaunchSpecification parameters."""
    key = spec.get(prefix + "KeyName")
    if key not in sim.keys:
        raise ApiError(400, "InvalidKeyPair.NotFound", f"The key pair '{key}' does not exist")
    image = spec.get(prefix + "ImageId")
    if image not in [im["imageId"] for im in sim.images]:
        raise ApiError(400, "InvalidAMIID.NotFound", f"The image id '[{image}]' does not exist")
    groups = indexed(spec, prefix + "NetworkInterface.1.SecurityGroupId") or indexed(spec, prefix + "SecurityGroupId")
    for g in groups:
        group_or_404(sim, g)
    if sim.quota is not None:
        if sim.quota <= 0:
            raise ApiError(400, "InstanceLimitExceeded",
                           "You have requested more instances than your current instance limit allows.")
        sim.quota -= 1
    iid = sim.new_id("i")
    inst = {"instanceId": iid, "state": "pending", "ip": None, "host": "ec2" + iid[2:14],
            "public": spec.get(prefix + "NetworkInterface.1.AssociatePublicIpAddress", "true") == "true",
            "key": key, "groups": groups, "tags": dict(tags), "image": image,
            "type": spec.get(prefix + "InstanceType"), "userdata": spec.get(prefix + "UserData"),
            "ebsOptimized": spec.get(prefix + "EbsOptimized", "false"),
            "subnet": spec.get(prefix + "NetworkInterface.1.SubnetId"),
            "rootSize": spec.get(prefix + "BlockDeviceMapping.1.Ebs.VolumeSize")}
    sim.instances[iid] = inst
    if not sim.stuck:
        inst["booting"] = True
        threading.Thread(target=boot, args=(sim, inst), daemon=True).start()
    return inst


def boot(sim, inst):
    keyfile = os.path.join(sim.broker or "/tmp", f"key-{inst['instanceId']}.pub")
    with open(keyfile, "w") as f:
        f.write(sim.keys.get(inst["key"], {"material": ""})["material"] + "\n")
    ans = sim.ask(f"up {inst['host']} {keyfile}")
    late = False
    with sim.lock:
        if ans.startswith("ok ") and inst["state"] == "pending":
            inst["ip"], inst["state"] = ans[3:].strip(), "running"
        elif ans.startswith("ok "):
            late = True  # terminated while it booted
        else:
            inst["state"] = "terminated"
    if late:
        sim.ask(f"down {inst['host']}")
        with sim.lock:
            inst["state"] = "terminated"


def power(sim, inst, action, up):
    """The host's side of a state change already made in the API's view."""
    if action == "stop":
        sim.ask(f"stop {inst['host']}")
        with sim.lock:
            inst["state"] = "stopped"
    elif action == "start":
        sim.ask(f"start {inst['host']}")
        with sim.lock:
            inst["state"] = "running"
    elif action == "terminate":
        if up:
            sim.ask(f"down {inst['host']}")
        with sim.lock:
            inst["state"], inst["ip"] = "terminated", None


def instance_xml(i):
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64,
             "stopped": 80}
    addr = ""
    if i["ip"] and i["state"] not in ("terminated",):
        addr = f"<privateIpAddress>{i['ip']}</privateIpAddress>"
        if i["public"]:
            addr += f"<ipAddress>{i['ip']}</ipAddress>"
    return (f"<item><instanceId>{i['instanceId']}</instanceId><imageId>{i['image']}</imageId>"
            f"<instanceState><code>{codes[i['state']]}</code><name>{i['state']}</name>"
            f"</instanceState><keyName>{escape(i['key'] or '')}</keyName><instanceType>{i['type']}"
            f"</instanceType><subnetId>{i['subnet']}</subnetId>{addr}<ebsOptimized>"
            f"{i['ebsOptimized']}</ebsOptimized><groupSet>"
            + "".join(f"<item><groupId>{g}</groupId></item>" for g in i["groups"])
            + "</groupSet>" + tags_xml(i["tags"]) + "</item>")


def act_run(sim, p):
    token = p.get("ClientToken")
    if token and token in sim.tokens:
        inst = sim.instances[sim.tokens[token]]
    else:
        inst = launch(sim, p, "", tag_specs(p, "instance"))
        if token:
            sim.tokens[token] = inst["instanceId"]
    return (f"<reservationId>r-{inst['instanceId'][2:]}</reservationId><ownerId>123456789012</ownerId>"
            f"<instancesSet>{instance_xml(inst)}</instancesSet>")


def act_describe_instances(sim, p):
    """Pages are cut before the filters apply, so a filtered page may hold fewer items than
    MaxResults, even none, with a nextToken (as the API reference warns)."""
    ids, flt = indexed(p, "InstanceId"), filters(p)
    for i in ids:
        if i not in sim.instances:
            raise ApiError(400, "InvalidInstanceID.NotFound", f"The instance ID '{i}' does not exist")
    every = [i for i in sim.instances.values() if not ids or i["instanceId"] in ids]
    start = int(base64.b64decode(p["NextToken"]).decode()) if p.get("NextToken") else 0
    size = int(p.get("MaxResults", "1000"))
    if ids and "MaxResults" in p:
        raise ApiError(400, "InvalidParameterCombination",
                       "The parameter instancesSet cannot be used with the parameter maxResults")
    if size < 5 or size > 1000:
        raise ApiError(400, "InvalidParameterValue", "MaxResults must be between 5 and 1000")
    page, more = every[start:start + size], start + size < len(every)
    out = [i for i in page if ("instance-state-name" not in flt or
                               i["state"] in flt["instance-state-name"]) and match_tags(i, flt)]
    nxt = f"<nextToken>{base64.b64encode(str(start + size).encode()).decode()}</nextToken>" if more else ""
    return ("<reservationSet>" + "".join(
        f"<item><reservationId>r-{i['instanceId'][2:]}</reservationId><ownerId>123456789012"
        f"</ownerId><groupSet/><instancesSet>{instance_xml(i)}</instancesSet></item>"
        for i in out) + "</reservationSet>" + nxt)


def instances_of(sim, p):
    ids = indexed(p, "InstanceId")
    for i in ids:
        if i not in sim.instances:
            raise ApiError(400, "InvalidInstanceID.NotFound", f"The instance ID '{i}' does not exist")
    return [sim.instances[i] for i in ids]


def state_change(sim, p, action, tag):
    insts = instances_of(sim, p)
    prev = {i["instanceId"]: i["state"] for i in insts}
    for i in insts:
        st, up = i["state"], i["ip"] is not None
        if action == "stop" and st == "running":
            i["state"] = "stopping"
        elif action == "start" and st == "stopped":
            i["state"] = "pending"
        elif action == "terminate" and st not in ("terminated", "shutting-down"):
            i["state"] = "shutting-down"
            if not up and st == "pending":
                if not i.get("booting"):
                    i["state"] = "terminated"  # never booted (stuck): nothing to take down
                continue  # still booting: boot() takes the host down when it is up
        else:
            continue
        threading.Thread(target=power, args=(sim, i, action, up), daemon=True).start()
    return f"<{tag}>" + "".join(
        f"<item><instanceId>{i['instanceId']}</instanceId><previousState><name>"
        f"{prev[i['instanceId']]}</name></previousState><currentState><name>{i['state']}</name>"
        f"</currentState></item>" for i in insts) + f"</{tag}>"


def act_reboot(sim, p):
    instances_of(sim, p)
    return "<return>true</return>"


def act_create_tags(sim, p):
    for rid in indexed(p, "ResourceId"):
        obj = sim.instances.get(rid) or sim.groups.get(rid) or sim.spots.get(rid)
        if obj is None:
            raise ApiError(400, "InvalidID", f"The ID '{rid}' is not valid")
        j = 1
        while f"Tag.{j}.Key" in p:
            obj["tags"][p[f"Tag.{j}.Key"]] = p.get(f"Tag.{j}.Value", "")
            j += 1
    return "<return>true</return>"


def spot_xml(s):
    iid = f"<instanceId>{s['instanceId']}</instanceId>" if s["instanceId"] else ""
    return (f"<item><spotInstanceRequestId>{s['id']}</spotInstanceRequestId><spotPrice>{s['price']}"
            f"</spotPrice><type>one-time</type><state>{s['state']}</state>{iid}"
            + tags_xml(s["tags"]) + "</item>")


def act_request_spot(sim, p):
    sid = sim.new_id("sir")
    s = {"id": sid, "price": p.get("SpotPrice"), "state": "open", "instanceId": None,
         "tags": tag_specs(p, "spot-instances-request")}
    inst = launch(sim, p, "LaunchSpecification.", {})
    s["instanceId"], s["state"] = inst["instanceId"], "active"
    sim.spots[sid] = s
    s_view = dict(s, state="open", instanceId=None)  # as EC2 answers: fulfilled later
    return "<spotInstanceRequestSet>" + spot_xml(s_view) + "</spotInstanceRequestSet>"


def act_describe_spot(sim, p):
    ids, flt = indexed(p, "SpotInstanceRequestId"), filters(p)
    for i in ids:
        if i not in sim.spots:
            raise ApiError(400, "InvalidSpotInstanceRequestID.NotFound",
                           f"The spot instance request ID '{i}' does not exist")
    out = [s for s in sim.spots.values() if (not ids or s["id"] in ids) and match_tags(s, flt)]
    return "<spotInstanceRequestSet>" + "".join(spot_xml(s) for s in out) + "</spotInstanceRequestSet>"


def act_cancel_spot(sim, p):
    out = []
    for i in indexed(p, "SpotInstanceRequestId"):
        if i in sim.spots:
            sim.spots[i]["state"] = "cancelled"
            out.append(i)
    return "<spotInstanceRequestSet>" + "".join(
        f"<item><spotInstanceRequestId>{i}</spotInstanceRequestId><state>cancelled</state></item>"
        for i in out) + "</spotInstanceRequestSet>"


ACTIONS = {
    "DescribeImages": act_describe_images, "DescribeVpcs": act_describe_vpcs,
    "DescribeSubnets": act_describe_subnets, "DescribeSecurityGroups": act_describe_groups,
    "CreateSecurityGroup": act_create_group, "AuthorizeSecurityGroupIngress": act_authorize,
    "DeleteSecurityGroup": act_delete_group, "ImportKeyPair": act_import_key,
    "DeleteKeyPair": act_delete_key, "DescribeKeyPairs": act_describe_keys, "RunInstances": act_run,
    "DescribeInstances": act_describe_instances,
    "StartInstances": lambda s, p: state_change(s, p, "start", "instancesSet"),
    "StopInstances": lambda s, p: state_change(s, p, "stop", "instancesSet"),
    "TerminateInstances": lambda s, p: state_change(s, p, "terminate", "instancesSet"),
    "RebootInstances": act_reboot, "CreateTags": act_create_tags,
    "RequestSpotInstances": act_request_spot, "DescribeSpotInstanceRequests": act_describe_spot,
    "CancelSpotInstanceRequests": act_cancel_spot,
}
MUTATING = {"CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "DeleteSecurityGroup",
            "ImportKeyPair", "DeleteKeyPair", "RunInstances", "StartInstances", "StopInstances",
            "TerminateInstances", "RebootInstances", "CreateTags", "RequestSpotInstances",
            "CancelSpotInstanceRequests"}


# ---------------------------------------------------------------------------- server --

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="text/xml;charset=UTF-8", extra=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, e, extra=None):
        self.reply(e.status, f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
                   f"<Code>{e.code}</Code><Message>{escape(e.message)}</Message></Error></Errors>"
                   f"<RequestID>{secrets.token_hex(8)}</RequestID></Response>", extra=extra)

    def do_GET(self):
        sim = self.sim
        if self.path == "/_sim/state":
            with sim.lock:
                state = {"instances": sim.instances, "groups": sim.groups,
                         "keys": {k: {"tags": v["tags"]} for k, v in sim.keys.items()},
                         "spots": sim.spots}
                self.reply(200, json.dumps(state, default=str), "application/json")
        elif self.path == "/_sim/log":
            with sim.lock:
                self.reply(200, json.dumps(sim.log), "application/json")
        else:
            self.error(ApiError(400, "InvalidAction", "GET is not served"))

    def control(self, url):
        q = dict(urllib.parse.parse_qsl(url.query))
        with self.sim.lock:
            if url.path == "/_sim/throttle":
                self.sim.throttle = int(q.get("count", "0"))
            elif url.path == "/_sim/stuck":
                self.sim.stuck = q.get("on") == "1"
            elif url.path == "/_sim/others":  # terminated instances of someone else: more pages
                for _ in range(int(q.get("count", "0"))):
                    iid = self.sim.new_id("i")
                    self.sim.instances[iid] = {
                        "instanceId": iid, "state": "terminated", "ip": None, "host": None,
                        "public": True, "key": None, "groups": [], "tags": {"Name": "other"},
                        "image": "ami-0debian12new", "type": "t3.micro", "userdata": None,
                        "ebsOptimized": "false", "subnet": "subnet-0sima", "rootSize": "16"}
            elif url.path == "/_sim/quota":
                left = q.get("left", "")
                self.sim.quota = int(left) if left else None
            elif url.path == "/_sim/terminate":  # an instance terminated behind machine's back
                inst = self.sim.instances.get(q.get("id", ""))
                if inst is None:
                    return self.reply(404, "no such instance", "text/plain")
                up = inst["ip"] is not None
                inst["state"] = "shutting-down"
                threading.Thread(target=power, args=(self.sim, inst, "terminate", up),
                                 daemon=True).start()
            else:
                return self.reply(404, "no such control", "text/plain")
        self.reply(200, "ok", "text/plain")

    def authenticate(self, body):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            raise ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
        fields = dict(part.strip().split("=", 1) for part in auth[17:].split(","))
        cred = fields.get("Credential", "").split("/", 1)
        akid, scope = cred[0], cred[1] if len(cred) > 1 else ""
        account = self.sim.accounts.get(akid)
        if account is None:
            raise ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
        signed = fields.get("SignedHeaders", "").split(";")
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "host" not in signed or "x-amz-date" not in signed:
            raise ApiError(403, "SignatureDoesNotMatch", "host and x-amz-date must be signed")
        if account[1] is not None and (headers.get("x-amz-security-token") != account[1]
                                       or "x-amz-security-token" not in signed):
            raise ApiError(401, "AuthFailure", "The security token included in the request is invalid")
        date = headers.get("x-amz-date", "")
        if scope.split("/")[0] != date[:8] or scope.split("/")[1:] != [self.sim.region, "ec2", "aws4_request"]:
            raise ApiError(403, "SignatureDoesNotMatch", f"Credential should be scoped to a valid region, not '{scope}'")
        try:
            skew = abs(datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp() - time.time())
        except ValueError:
            raise ApiError(403, "SignatureDoesNotMatch", "bad X-Amz-Date")
        if skew > 300:
            raise ApiError(401, "RequestExpired", "Request has expired")
        url = urllib.parse.urlsplit(self.path)
        want = expected_signature(account[0], self.command, url.path, url.query, headers, signed,
                                  body, date, scope)
        if not hmac.compare_digest(want, fields.get("Signature", "")):
            raise ApiError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided")
        return account

    def do_POST(self):
        sim = self.sim
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_sim/"):
            return self.control(url)
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        action = params.get("Action", "")
        entry = {"t": time.time(), "action": action}
        if "Force" in params:
            entry["force"] = params["Force"]
        if params.get("NextToken"):
            entry["page"] = True
        with sim.lock:
            sim.log.append(entry)
        try:
            account = self.authenticate(body)
            with sim.lock:
                if sim.throttle > 0:
                    sim.throttle -= 1
                    entry["throttled"] = True
                    raise ApiError(503, "RequestLimitExceeded", "Request limit exceeded.")
            if action not in ACTIONS:
                raise ApiError(400, "InvalidAction", f"The action {action} is not valid for this web service.")
            if account[2] and action in MUTATING:
                raise ApiError(403, "UnauthorizedOperation",
                               "You are not authorized to perform this operation.")
            with sim.lock:
                inner = ACTIONS[action](sim, params)
            name = action + "Response"
            self.reply(200, f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{name} xmlns=\"{NS}\">"
                       f"<requestId>{secrets.token_hex(8)}</requestId>{inner}</{name}>")
        except ApiError as e:
            entry["error"] = e.code
            self.error(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--account", action="append", default=[],
                    help="ACCESS:SECRET[:TOKEN[:deny]] (deny: mutating calls are unauthorized)")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--broker", default=None)
    ap.add_argument("--port-file", default=None)
    args = ap.parse_args()
    Handler.sim = Sim(args)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    print(port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
