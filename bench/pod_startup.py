#!/usr/bin/python3
"""Pod start-up latency on this machine: create -> Ready for batches of 1, 10 and 50 pods.

Starts `podium server` with its node agent (root needed) on a fresh data directory, creates
each batch at once through the API and timestamps every pod's Ready transition from a watch.
The pods run Podium's pause image (present on the node, as in Kubernetes' density tests, whose
SLO excludes image pulls). Prints p50/p99 per batch beside Kubernetes' published SLO
(p99 <= 5 s for stateless pods) and their ratio. Stops everything it started.

    bench/pod_startup.py [--batches 1,10,50]
"""
import argparse
import collections
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "e2e"))
from podium_e2e import Server, wait_for  # noqa: E402

SLO_P99 = 5.0
STAGES = ("queued", "sandbox", "containers", "ready", "total")


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def watch_ready(server, ns, ready_at, stop):
    """Records the first time each pod is seen Ready (a watch stream over raw HTTPS)."""
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=300)
    conn.request("GET", "/api/v1/namespaces/%s/pods?watch=1" % ns)
    resp = conn.getresponse()
    buf = b""
    while not stop.is_set():
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            pod = ev["object"]
            for c in pod.get("status", {}).get("conditions", []):
                if c["type"] == "Ready" and c["status"] == "True":
                    ready_at.setdefault(pod["metadata"]["name"], time.monotonic())
    conn.close()


def cpu_seconds():
    """CPU time the whole machine spent (user, nice, system, irq, softirq), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / ticks


def process_cpu(server):
    """CPU seconds so far of Podium's long-lived processes, by group: the server (API, controllers,
    the node agent), the node proxy, containerd, and the shims of running containers."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = collections.Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().decode(errors="replace").split("\0")
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        exe, args = os.path.basename(cmd[0]), " ".join(cmd)
        if int(pid) == server.proc.pid:
            group = "server"
        elif server.data_dir not in args:
            continue
        elif exe == "podium-proxy":
            group = "proxy"
        elif exe == "containerd":
            group = "containerd"
        elif exe.startswith("containerd-shim"):
            group = "shims"
        else:
            continue
        out[group] += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return out


GROUPS = ("server", "proxy", "containerd", "shims")


def node_metrics(server):
    """The node's /metrics through nodes/proxy (kubectl get --raw): {"name{labels}": value}."""
    node = json.loads(server.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    text = server.kubectl("get", "--raw", "/api/v1/nodes/%s/proxy/metrics" % node).stdout
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def stage_breakdown(before, after):
    """Per stage: mean and the p99 bucket bound of the starts between two /metrics samples."""
    rows = []
    for stage in STAGES:
        base = 'podium_pod_start_stage_seconds_%s{stage="%s"}'
        count = after.get(base % ("count", stage), 0) - before.get(base % ("count", stage), 0)
        total = after.get(base % ("sum", stage), 0) - before.get(base % ("sum", stage), 0)
        if count <= 0:
            continue
        buckets = sorted((float(k.split('le="')[1].split('"')[0]) if '+Inf' not in k else float("inf"),
                          after[k] - before.get(k, 0)) for k in after
                         if k.startswith('podium_pod_start_stage_seconds_bucket{stage="%s",' % stage))
        p99 = next(le for le, n in buckets if n >= 0.99 * count)
        rows.append((stage, count, total / count, p99))
    return rows


def run_batch(server, image, n, index, on_ready=lambda: None):
    ns = "bench-%d-%d" % (n, index)
    server.request_json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}})
    ready_at, stop = {}, threading.Event()
    t = threading.Thread(target=watch_ready, args=(server, ns, ready_at, stop), daemon=True)
    t.start()
    time.sleep(0.2)
    created_at = {}
    for i in range(n):
        name = "p%d" % i
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"containers": [{"name": "c", "image": image,
                                        "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}],
                        "terminationGracePeriodSeconds": 0}}
        created_at[name] = time.monotonic()
        status, body = server.request_json("POST", "/api/v1/namespaces/%s/pods" % ns, pod)
        assert status == 201, body
    wait_for(lambda: len(ready_at) >= n, 300, 0.05, "%d pods Ready" % n)
    on_ready()
    stop.set()
    lat = [ready_at[k] - created_at[k] for k in created_at]
    server.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=320)
    return lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,10,50")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("pod_startup: the node agent needs root")
    server = Server(agent=True, extra_args=["--log-level", "warn"]).start()
    try:
        wait_for(lambda: "Ready" in server.kubectl("get", "nodes", check=False).stdout, 60, 0.2, "node Ready")
        image = "127.0.0.1:%d/podium/pause:3.10" % server.registry_port
        print("pod start-up latency, create -> Ready (image present on the node; %d CPUs)" % os.cpu_count())
        print("%-6s %9s %9s %9s %14s %12s" % ("pods", "p50 (s)", "p99 (s)", "max (s)", "SLO p99 (s)", "p99 / SLO"))
        # What the idle cluster burns per second, taken out of each batch's CPU.
        c0, t0 = cpu_seconds(), time.monotonic()
        time.sleep(5)
        idle_rate = (cpu_seconds() - c0) / (time.monotonic() - t0)
        breakdowns = []
        for i, n in enumerate(int(x) for x in args.batches.split(",")):
            before, cpu0, procs0, t0 = node_metrics(server), cpu_seconds(), process_cpu(server), time.monotonic()
            spent = {}

            def at_ready():  # CPU from the first create to the last Ready, the pods still running
                spent["machine"] = cpu_seconds() - cpu0 - idle_rate * (time.monotonic() - t0)
                procs = process_cpu(server)
                for g in GROUPS:
                    spent[g] = procs[g] - procs0[g]
            lat = run_batch(server, image, n, i, at_ready)
            breakdowns.append((n, stage_breakdown(before, node_metrics(server)), spent))
            p99 = percentile(lat, 99)
            print("%-6d %9.3f %9.3f %9.3f %14.1f %12.3f" % (n, percentile(lat, 50), p99, max(lat), SLO_P99,
                                                            p99 / SLO_P99), flush=True)
        print("\nby stage, as the node agent saw it (podium_pod_start_stage_seconds on the node's /metrics;"
              " p99 is the bucket bound)")
        print("%-6s %-11s %7s %10s %10s" % ("pods", "stage", "starts", "mean (s)", "p99 <= (s)"))
        for n, rows, _ in breakdowns:
            for stage, count, mean, p99 in rows:
                print("%-6d %-11s %7d %10.3f %10.2f" % (n, stage, count, mean, p99))
        print("\nCPU per pod start, first create to last Ready (CPU-s per pod; idle %.2f CPU-s/s taken out"
              " of the machine's); target <= 0.300" % idle_rate)
        print("%-6s %8s %8s %8s %11s %8s %8s %10s" % ("pods", "machine", "server", "proxy", "containerd", "shims",
                                                 "other", "/ target"))
        for n, _, spent in breakdowns:
            other = spent["machine"] - sum(spent[g] for g in GROUPS)
            print("%-6d %8.3f %8.3f %8.3f %11.3f %8.3f %8.3f %10.2f" % (
                n, spent["machine"] / n, spent["server"] / n, spent["proxy"] / n, spent["containerd"] / n,
                spent["shims"] / n, other / n, spent["machine"] / n / 0.3))
        print("(other: short-lived processes — runc, CNI plugins, nft/conntrack/ip — and the kernel)")
    finally:
        server.close()


if __name__ == "__main__":
    main()
