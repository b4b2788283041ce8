#!/usr/bin/env python3
"""Failover times of several servers on one etcd, beside Kubernetes' documented defaults.

Runs test/e2e/test_ha.py (a 3-member etcd on loopback, two `podium server`s, real kubectl)
ROUNDS times and collects what it measures:
  - controller failover: kill -9 of the server holding the controllers' Lease, until a scale-up
    issued through the other is carried out (lease duration 2 s in the test);
  - etcd leader killed under a steady write load: the longest gap between acknowledged writes,
    and the acknowledged writes missing afterwards.
Kubernetes' figures for the same events with its defaults: kube-controller-manager's
--leader-elect-lease-duration 15 s (a standby takes over within it, plus a 2 s retry period);
etcd's --election-timeout 1000 ms, with requests failing for up to its 5 s request timeout.

    bench/failover_bench.py [--rounds N]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
K8S_CONTROLLER_TAKEOVER = 15.0 + 2.0  # lease duration + retry period, seconds
K8S_ETCD_ELECTION = 1.0  # election timeout, seconds (a floor: requests wait for the new leader)


def one_round():
    env = dict(os.environ, PODIUM_BIN=os.path.join(ROOT, "build", "podium"), PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run(["/usr/bin/python3", "-m", "unittest", "-v", "test_ha"], cwd=os.path.join(ROOT, "test", "e2e"),
                       capture_output=True, text=True, env=env, timeout=600)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        sys.exit("test_ha failed:\n" + out[-3000:])
    takeover = float(re.search(r"scale-up carried out ([\d.]+) s after", out).group(1))
    m = re.search(r"longest gap between acknowledged writes ([\d.]+) s, (\d+) acknowledged writes missing", out)
    return takeover, float(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    rounds = [one_round() for _ in range(ap.parse_args().rounds)]
    takeovers, gaps, lost = zip(*rounds)
    print("%-48s %18s %18s %8s" % ("event", "Podium (min-max)", "Kubernetes default", "ratio"))
    for name, values, k8s in (("controller Lease holder killed -> scale-up done (s)", takeovers,
                               K8S_CONTROLLER_TAKEOVER),
                              ("etcd leader killed -> writes accepted again (s)", gaps, K8S_ETCD_ELECTION)):
        print("%-48s %8.2f-%-9.2f %18.1f %7.2fx" % (name, min(values), max(values), k8s,
                                                   statistics.median(values) / k8s))
    print("acknowledged writes lost after the etcd leader's kill: %s" % list(lost))


if __name__ == "__main__":
    main()
