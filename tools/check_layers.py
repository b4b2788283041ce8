#!/usr/bin/env python3
"""Checks that every #include in Podium's sources keeps the order of its parts.

The parts depend one way (docs/architecture.md):

    cli -> parts (controllers, scheduler, node, proxy, gitops, mesh, dns, metrics) -> client -> api
        -> store -> common

A source file of part P (src/P/..., include/podium/P/...) may include
  - its own part's headers: "podium/P/x.h", or a private header in src/P/ by a plain name
    ("x.h", "sub/x.h") that resolves inside src/P/;
  - the public headers (include/podium/Q/...) of the parts RULES[P] names. A rule "api:types"
    allows only the API's value types (API_TYPES), not its machinery (storage, server, ...);
  - system and library headers (<...>) and the generated files in GENERATED.
Anything else fails: a quoted include reaching into another part's folder ("../Q/x.h",
"Q/x.h"), or a public header of a part outside the rules.

Unit tests (test/P/...) may include any public header and the private headers of src/P/.

Usage: check_layers.py [--root DIR] [--without P:Q ...] [--self-test]
  --without P:Q  checks as if the rule letting P include Q were removed (to see the check fail)
"""

import argparse
import os
import re
import sys
import tempfile

# What each part may include besides itself. Order matters only for reading.
RULES = {
    "common": [],
    "store": ["common"],
    "api": ["store", "common"],
    # The client may also reach the API's storage: the in-process client (local_client.cc) is
    # how the server's own loops enter the API. No part above it may.
    "client": ["api:client", "common"],
    "mesh": ["client", "api:types", "common"],
    "dns": ["client", "api:types", "common"],
    "proxy": ["mesh", "common"],
    "controllers": ["client", "mesh", "api:types", "common"],
    "scheduler": ["client", "api:types", "common"],
    "gitops": ["client", "api:types", "common"],
    "metrics": ["client", "api:types", "common"],
    "node": ["client", "dns", "mesh", "api:types", "common"],
    "cli": ["api", "client", "controllers", "scheduler", "node", "proxy", "gitops", "mesh",
            "dns", "metrics", "store", "common"],
    "main": ["cli", "proxy", "common"],
    "pause": [],
}

# The API's value types: what a client and the parts above it exchange with the API. Its
# machinery (storage, server, cacher, registry, schema) is for the api part and the command
# that wires the process.
API_TYPES = {"status.h", "selectors.h", "quantity.h", "http.h", "tls.h", "node_connector.h",
             "patch_type.h", "names.h", "aggregated.h"}

API_CLIENT = API_TYPES | {"storage.h"}

# Files the build generates (protoc's output for the node's CRI client).
GENERATED = {"cri.pb.h", "cri.grpc.pb.h", "etcd.pb.h", "etcd.grpc.pb.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE_EXT = (".h", ".cc", ".c")


def part_of(rel):
    """The part a path (relative to the root) belongs to, and its kind: src, include, test."""
    p = rel.split(os.sep)
    if p[0] == "src" and len(p) >= 2:
        if len(p) == 2:
            return ("main" if p[1] == "main.cc" else None), "src"
        return p[1], "src"
    if p[0] == "include" and len(p) >= 3 and p[1] == "podium":
        return p[2], "include"
    if p[0] == "test" and len(p) >= 3 and p[1] not in ("e2e", "testdata"):
        return p[1], "test"
    return None, None


def allowed(rules, part, target_part, header):
    if target_part == part:
        return True
    for r in rules.get(part, []):
        name, _, scope = r.partition(":")
        if name != target_part:
            continue
        if scope == "types":
            return header in API_TYPES
        if scope == "client":
            return header in API_CLIENT
        return True
    return False


def check(root, rules):
    problems = []
    for top in ("src", "include", "test"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                part, kind = part_of(rel)
                if part is None:
                    continue
                if kind != "test" and part not in rules:
                    problems.append(f"{rel}: part '{part}' has no rule in check_layers.py")
                    continue
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for m in INCLUDE.finditer(text):
                    inc = m.group(1)
                    line = text.count("\n", 0, m.start()) + 1
                    why = judge(root, rules, rel, part, kind, inc)
                    if why:
                        problems.append(f"{rel}:{line}: #include \"{inc}\": {why}")
    return problems


def judge(root, rules, rel, part, kind, inc):
    if inc.startswith("podium/"):
        bits = inc.split("/")
        if len(bits) < 3:
            return "not a part's public header"
        target, header = bits[1], "/".join(bits[2:])
        if kind == "test":
            return None
        if not os.path.exists(os.path.join(root, "include", inc)):
            return "no such public header"
        if allowed(rules, part, target, header):
            return None
        return f"part '{part}' may not use part '{target}'" + (
            f" (of the API only its value types: {', '.join(sorted(API_TYPES))})"
            if target == "api" and any(r.startswith("api") for r in rules.get(part, [])) else "")
    if os.path.basename(inc) in GENERATED:
        return None
    own = os.path.join(root, "src", part) if part != "main" else os.path.join(root, "src")
    here = os.path.dirname(os.path.join(root, rel))
    candidates = [os.path.normpath(os.path.join(here, inc))]
    if kind == "test":
        # A test sees its own folder, the shared fakes (test/support/) and src/<part>/.
        for base in (here, os.path.join(root, "test")):
            c = os.path.normpath(os.path.join(base, inc))
            if os.path.exists(c) and (c.startswith(os.path.join(root, "test", part) + os.sep) or
                                      c.startswith(os.path.join(root, "test", "support") + os.sep)):
                return None
        candidates.append(os.path.normpath(os.path.join(root, "src", inc)))
        if os.path.exists(candidates[-1]) and not candidates[-1].startswith(own + os.sep):
            return f"a test of '{part}' may use only src/{part}/'s private headers"
    for c in candidates:
        if os.path.exists(c):
            if c.startswith(own + os.sep) and (part != "main" or os.path.dirname(c) == own):
                return None
            if part == "main" and c.startswith(os.path.join(root, "src", "cli") + os.sep):
                return "main may use the cli only through podium/cli/ headers"
            return "reaches into another part's private folder (give it a public header in " \
                   "include/podium/<part>/ instead)"
    return "not found in the part's own folder"


def self_test():
    """The check fails on each kind of crossing and passes the allowed ones."""
    cases = [
        ("src/client/a.cc", '#include "podium/api/status.h"', True),
        ("src/client/a.cc", '#include "podium/api/storage.h"', True),
        ("src/gitops/a.cc", '#include "podium/api/storage.h"', False),
        ("src/gitops/a.cc", '#include "podium/api/status.h"', True),
        ("src/client/a.cc", '#include "../api/patch.h"', False),
        ("src/controllers/a.cc", '#include "proxy/routes.h"', False),
        ("src/controllers/a.cc", '#include "util.h"', True),
        ("src/proxy/a.cc", '#include "podium/dns/message.h"', False),
        ("src/api/a.cc", '#include "podium/mesh/ca.h"', False),
        ("src/store/a.cc", '#include "podium/api/status.h"', False),
        ("test/controllers/a_test.cc", '#include "controllers/util.h"', True),
        ("test/controllers/a_test.cc", '#include "node/agent_impl.h"', False),
    ]
    failures = 0
    for path, line, ok in cases:
        with tempfile.TemporaryDirectory() as root:
            for f in ["include/podium/api/status.h", "include/podium/api/storage.h",
                      "include/podium/dns/message.h", "include/podium/mesh/ca.h",
                      "src/api/patch.h", "src/proxy/routes.h", "src/controllers/util.h",
                      "src/node/agent_impl.h", "src/gitops/x.h"]:
                os.makedirs(os.path.dirname(os.path.join(root, f)), exist_ok=True)
                open(os.path.join(root, f), "w").close()
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as fh:
                fh.write(line + "\n")
            problems = check(root, RULES)
            if (not problems) != ok:
                failures += 1
                print(f"self-test: {path}: {line}: expected {'pass' if ok else 'failure'}, "
                      f"got {problems or 'pass'}")
    return failures == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--without", action="append", default=[])
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test and not self_test():
        return 1
    rules = {k: list(v) for k, v in RULES.items()}
    for w in a.without:
        part, _, target = w.partition(":")
        rules[part] = [r for r in rules.get(part, []) if r.split(":")[0] != target]
    problems = check(os.path.abspath(a.root), rules)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) cross the order of parts")
        return 1
    print("check_layers: every include keeps the order of parts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
