#!/usr/bin/env python3
"""A driver plugin that misbehaves, for test_plugins.sh. Installed as machine-driver-NAME; the
name says how: `flags` and `remove` answer properly (protocol 1), `create` misbehaves.

  crashy    writes a progress line, then exits with status 3 without answering
  hangy     never answers (sleeps; machine's time bound must end it)
  noisy     prints a line that is not JSON
  oldproto  speaks protocol 2 in every handshake
  fieldy    answers create with a field it never declared ("Colour")
  generic   tries to shadow the built-in generic driver (must never run)
"""
import json
import os
import sys
import time

NAME = os.path.basename(sys.argv[0])[len("machine-driver-"):]


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    if NAME == "generic":
        sys.stderr.write("the generic plugin ran: a built-in was shadowed\n")
        sys.exit(9)
    send({"protocol": 2 if NAME == "oldproto" else 1, "name": NAME, "version": "0.0.1",
          "description": "misbehaves (%s)" % NAME, "capabilities": ["create", "remove", "state"]})
    req = json.loads(sys.stdin.readline())
    verb = req["verb"]
    if verb == "flags":
        send({"result": {"flags": [{"name": NAME + "-size", "key": "Size", "type": "int",
                                    "default": "1", "help": "how big"}]}})
    elif verb == "remove":
        send({"result": {"fields": {}}})
    elif verb == "state":
        send({"result": {"state": "Stopped"}})
    elif NAME == "crashy":
        send({"progress": "about to crash"})
        os._exit(3)
    elif NAME == "hangy":
        for _ in range(600):  # bounded: ten minutes at most
            time.sleep(1)
    elif NAME == "noisy":
        print("Hello! Creating your machine now...")
        send({"result": {"fields": {"IPAddress": "10.213.255.1"}}})
    else:
        send({"result": {"fields": {"IPAddress": "10.213.255.1", "Colour": "red"}}})


if __name__ == "__main__":
    main()
