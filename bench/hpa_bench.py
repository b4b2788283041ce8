#!/usr/bin/env python3
"""Autoscaling reaction times, beside what Kubernetes' documented defaults allow.

Runs the load-step tests of test/e2e/test_autoscaling.py (the seed's app behind the gateway with
an HPA on istio_requests_per_second, a step from 0 to 90 requests/s with hey; a CPU HPA on a
CGI that burns CPU, a step to 40 requests/s) ROUNDS times and collects:
  - the first scale-up after the load step (the Deployment's spec.replicas going up),
  - all new pods Ready after the step (request-rate HPA: 1 -> 5 pods).
Kubernetes with its defaults reacts only when both its loops have seen the step: the HPA
controller evaluates every 15 s (--horizontal-pod-autoscaler-sync-period) on metrics-server's
numbers, scraped every 60 s by default (--metric-resolution; 15 s is the kubelet's floor), so
the first scale-up comes 0-75 s after a step with the defaults (37.5 s on average) and 0-30 s
with the fastest metrics-server setting (15 s on average); pod start-up comes on top.

    bench/hpa_bench.py [--rounds N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
K8S_DEFAULT_MEAN = (15.0 + 60.0) / 2  # sync period + metrics-server resolution, on average
K8S_FASTEST_MEAN = (15.0 + 15.0) / 2


def one_round():
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        env = dict(os.environ, PODIUM_BIN=os.path.join(ROOT, "build", "podium"), PYTHONDONTWRITEBYTECODE="1",
                   PODIUM_AUTOSCALING_REPORT=report.name)
        tests = ["test_autoscaling.AutoscalingTest.test_b_request_rate_scales_the_seed_app",
                 "test_autoscaling.AutoscalingTest.test_c_cpu_utilization_scales_a_burning_endpoint"]
        p = subprocess.run(["/usr/bin/python3", "-m", "unittest", "-v"] + tests,
                           cwd=os.path.join(ROOT, "test", "e2e"), capture_output=True, text=True, env=env,
                           timeout=900)
        if p.returncode != 0:
            sys.exit("test_autoscaling failed:\n" + (p.stdout + p.stderr)[-3000:])
        with open(report.name) as f:
            return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    rounds = [one_round() for _ in range(ap.parse_args().rounds)]
    rows = (("request rate: load step -> first scale-up (s)", [r["request_rate"]["first_scale_up_s"] for r in rounds]),
            ("request rate: load step -> 5 pods Ready (s)", [r["request_rate"]["all_ready_s"] for r in rounds]),
            ("CPU: load step -> first scale-up (s)", [r["cpu"]["first_scale_up_s"] for r in rounds]))
    print("%-46s %16s %14s %14s %9s %9s" % ("event", "Podium (min-max)", "K8s default", "K8s fastest",
                                             "ratio", "ratio"))
    for name, values in rows:
        median = statistics.median(values)
        print("%-46s %7.2f-%-8.2f %14.1f %14.1f %8.3fx %8.3fx" % (
            name, min(values), max(values), K8S_DEFAULT_MEAN, K8S_FASTEST_MEAN,
            median / K8S_DEFAULT_MEAN, median / K8S_FASTEST_MEAN))
    print("(Kubernetes' columns: the mean wait for its HPA and metrics-server loops to see a step,"
          " before any pod starts)")


if __name__ == "__main__":
    main()
