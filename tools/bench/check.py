#!/usr/bin/env python3
"""Checks a downloaded directory against the hub's tree listing (JSON from the tree API).

Usage: check.py TREE_JSON DIR  -> prints "ok" or "bad: <first problems>" (always exit 0).
LFS files: sha256 of the content = lfs.oid; regular files: git blob sha1 = oid; sizes too.
"""
import hashlib
import json
import os
import sys

tree = json.load(open(sys.argv[1]))
root = sys.argv[2]
bad = []
for e in tree:
    if e.get("type") != "file":
        continue
    p = os.path.join(root, e["path"])
    try:
        with open(p, "rb") as f:
            if "lfs" in e:
                h = hashlib.sha256()
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
                want = e["lfs"]["oid"]
            else:
                data = f.read()
                h = hashlib.sha1(b"blob %d\0" % len(data))
                h.update(data)
                want = e["oid"]
        if h.hexdigest() != want:
            bad.append(e["path"] + " (wrong content)")
    except OSError as err:
        bad.append(e["path"] + " (" + err.strerror + ")")
print("ok" if not bad else "bad: " + ", ".join(bad[:3]) + (" ..." if len(bad) > 3 else ""))
