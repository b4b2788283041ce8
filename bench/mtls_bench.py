#!/usr/bin/python3
"""The cost of the mesh's mutual TLS, measured in one run on a one-machine cluster.

Starts `podium server` with its node agent (root needed) on a fresh data directory and deploys the
seed's app (my-apps/golang-app, v1 and v2) behind its Gateway. Then, in alternating rounds:
  - mTLS on (the default, PERMISSIVE): the ingress reaches the app's pods over mesh TLS 1.3,
    terminated inside each pod by its listener;
  - mTLS off: a PeerAuthentication with mode DISABLE for my-apps, so the same path is plaintext;
  - direct: wrk to one pod's address (plaintext, through the pod's inbound capture), the baseline
    for the latency each path adds.
  - HAProxy (Debian's, one thread, keep-alive both ways) in front of the same pods, weighted 9:1
    between v1 and v2 as the seed's VirtualService splits them: the peer of the ingress gateway.
Each is the same wrk load (1 thread, --connections keep-alive connections, --duration); the best
round of each is reported: requests/s, p50 and p99, the latency added over the direct path, and
the on/off and gateway/HAProxy ratios. Then the same paths at a constant --rate (requests due at
fixed times over 16 connections, latency counted from when each was due: build/bench/rate_load),
where the latency the mesh adds is read, beside Istio's published figure for ztunnel. Then full mesh handshakes per second: --clients processes each open new TLS 1.3
connections (ALPN istio, a workload certificate signed by the mesh's root) to a pod for --duration,
as a peer proxy would, and the proxy's own handshake counter is read before and after.
Everything started is stopped by PID.

    bench/mtls_bench.py [--connections 32] [--duration 10] [--rounds 2] [--clients 2] [--rate 1000]
"""
import argparse
import multiprocessing
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "e2e"))
import podium_e2e  # noqa: E402
import test_mesh  # noqa: E402
import test_zero_trust  # noqa: E402


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proxy_pid(data_dir):
    out = subprocess.run(["pgrep", "-f", "podium-proxy .*%s/" % data_dir], capture_output=True, text=True).stdout
    return int(out.split()[0])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wrk(url, host, connections, duration, pid=None):
    args = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency", url]
    if host:
        args[1:1] = ["-H", "Host: " + host]
    cpu = cpu_seconds(pid) if pid else 0
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu if pid else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))

    def pct(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)\b" % p, out)
        v = float(m.group(1))
        return v / 1000.0 if m.group(2) == "us" else v * 1000.0 if m.group(2) == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "cpu_us": cpu * 1e6 / done if pid else 0,
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def handshakes(args):
    ip, port, cert, key, seconds = args
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["istio"])
    ctx.load_cert_chain(cert, key)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        s = ctx.wrap_socket(socket.create_connection((ip, port), timeout=5))
        s.close()
        done += 1
    return done


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE_LOAD = os.path.join(ROOT, "build", "bench", "rate_load")


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024.0


def rate_load(addr, host, rate, duration, pid):
    args = [RATE_LOAD, addr, str(rate), str(duration), "16"] + ([host] if host else [])
    cpu = cpu_seconds(pid)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    r = {k: float(v) for k, v in re.findall(r"(p50|p90|p99|errors|requests) ([\d.]+)", out)}
    r["vcpu_per_1k"] = (cpu_seconds(pid) - cpu) / duration / (rate / 1000.0)
    r["rss_mib"] = rss_mib(pid)
    return r


def start_haproxy(work, port, servers):
    cfg = os.path.join(work, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend web
    bind 127.0.0.1:%d
    default_backend pods
backend pods
    balance roundrobin
%s
""" % (port, "\n".join("    server s%d %s:8080 weight %d" % (i, ip, w) for i, (ip, w) in enumerate(servers))))
    p = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("haproxy did not start")


class Bench(test_zero_trust.ZeroTrustTest):
    def runTest(self):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--rate", type=int, default=1000)
    a = ap.parse_args()
    Bench.server_args = ()  # day-long certificates: rotation is not what is measured here
    Bench.setUpClass()
    b = Bench()
    work = tempfile.mkdtemp(prefix="mtls-bench-")
    haproxy = None
    try:
        ingress = "http://127.0.0.1:%d/" % Bench.server.ingress_port
        pod_ip = b.app_pod_ip()
        pid = proxy_pid(Bench.server.data_dir)
        direct = "http://%s:8080/" % pod_ip
        servers = [(p["status"]["podIP"], 9 if p["metadata"]["labels"].get("version") == "v1" else 1)
                   for p in b.pods(test_zero_trust.NS, "app=golang-app")]
        hport = podium_e2e.free_port()
        haproxy = start_haproxy(work, hport, servers)
        disable = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                   "metadata": {"name": "bench-off", "namespace": "my-apps"},
                   "spec": {"mtls": {"mode": "DISABLE"}}}
        best = {}

        def keep(name, r):
            if name not in best or r["rps"] > best[name]["rps"]:
                best[name] = r
        for _ in range(a.rounds):
            for mode in ("on", "off"):
                if mode == "off":
                    b.apply(disable)
                else:
                    b.kubectl("delete", "peerauthentication", "bench-off", "-n", "my-apps", "--ignore-not-found")
                time.sleep(2)
                before = b.counter("istio_requests_total", connection_security_policy="mutual_tls")
                r = wrk(ingress, test_mesh.HOST, a.connections, a.duration, pid)
                mutual = b.counter("istio_requests_total", connection_security_policy="mutual_tls") - before
                # The mode really was what it says: every request (or none) went over mesh TLS.
                assert (mutual > 0.9 * r["rps"] * a.duration) if mode == "on" else mutual == 0, (mode, mutual)
                keep("mTLS " + mode, r)
            keep("direct", wrk(direct, None, a.connections, a.duration, pid))
            keep("HAProxy", wrk("http://127.0.0.1:%d/" % hport, test_mesh.HOST, a.connections, a.duration))
        # At a constant rate: what each path adds to a request, not what it can carry.
        rated = {}
        b.kubectl("delete", "peerauthentication", "bench-off", "-n", "my-apps", "--ignore-not-found")
        time.sleep(2)
        rated["mTLS on"] = rate_load("127.0.0.1:%d" % Bench.server.ingress_port, test_mesh.HOST, a.rate, a.duration, pid)
        b.apply(disable)
        time.sleep(2)
        rated["mTLS off"] = rate_load("127.0.0.1:%d" % Bench.server.ingress_port, test_mesh.HOST, a.rate, a.duration, pid)
        rated["direct"] = rate_load("%s:8080" % pod_ip, None, a.rate, a.duration, pid)
        rated["HAProxy"] = rate_load("127.0.0.1:%d" % hport, test_mesh.HOST, a.rate, a.duration, pid)
        b.kubectl("delete", "peerauthentication", "bench-off", "-n", "my-apps", "--ignore-not-found")
        print("connections %d, duration %d s, best of %d rounds" % (a.connections, a.duration, a.rounds))
        print("%-10s %12s %9s %9s %13s %13s %14s %s" % ("path", "requests/s", "p50 ms", "p99 ms", "added p50 ms",
                                                         "added p99 ms", "proxy CPU us/req", "errors"))
        base = best["direct"]
        for name in ("direct", "mTLS off", "mTLS on", "HAProxy"):
            r = best[name]
            print("%-10s %12.0f %9.3f %9.3f %13.3f %13.3f %14.1f %s" % (
                name, r["rps"], r["p50"], r["p99"], r["p50"] - base["p50"], r["p99"] - base["p99"], r["cpu_us"],
                "non-2xx %d %s" % (r["non2xx"], r["socket_errors"])))
        on, off = best["mTLS on"], best["mTLS off"]
        added_on = (on["p50"] - base["p50"], on["p99"] - base["p99"])
        added_off = (off["p50"] - base["p50"], off["p99"] - base["p99"])
        print("ratio mTLS on/off: throughput %.2fx, p50 %.2fx, p99 %.2fx; added latency on/off: p50 %.3f/%.3f ms, "
              "p99 %.3f/%.3f ms" % (on["rps"] / off["rps"], on["p50"] / off["p50"], on["p99"] / off["p99"],
                                    added_on[0], added_off[0], added_on[1], added_off[1]))
        print("proxy CPU per request (both hops, all of podium-proxy): mTLS on %.1f us, off %.1f us: on/off %.2fx" % (
            on["cpu_us"], off["cpu_us"], on["cpu_us"] / off["cpu_us"]))
        print("ratio gateway (mTLS on) / HAProxy: throughput %.2fx; gateway (mTLS off) / HAProxy: %.2fx" % (
            on["rps"] / best["HAProxy"]["rps"], off["rps"] / best["HAProxy"]["rps"]))
        print("at a constant %d requests/s over 16 connections (latency from each request's due time):" % a.rate)
        print("%-10s %9s %9s %9s %13s %16s %s" % ("path", "p50 ms", "p90 ms", "p99 ms", "added p99 ms",
                                                 "proxy vCPU/1k/s", "requests/errors"))
        for name in ("direct", "mTLS off", "mTLS on", "HAProxy"):
            r = rated[name]
            print("%-10s %9.3f %9.3f %9.3f %13.3f %16.3f %d/%d" % (
                name, r["p50"], r["p90"], r["p99"], r["p99"] - rated["direct"]["p99"],
                r["vcpu_per_1k"] if name != "HAProxy" else 0, r["requests"], r["errors"]))
        r = rated["mTLS on"]
        print("podium-proxy per 1,000 req/s with mTLS (the gateway and the pod's inbound hop): %.3f vCPU, RSS %.1f MiB "
              "(whole process); Istio publishes 0.06 vCPU and 12 MB per ztunnel per 1,000 req/s" % (
                  r["vcpu_per_1k"], r["rss_mib"]))
        print("added p99 by mesh TLS (on - off) %.3f ms; by the gateway and mesh TLS (on - direct) %.3f ms; "
              "Istio publishes +0.20 ms p99 for the two ztunnels at 1,000 req/s" % (
                  rated["mTLS on"]["p99"] - rated["mTLS off"]["p99"], rated["mTLS on"]["p99"] - rated["direct"]["p99"]))
        # Handshakes: new mesh connections, each a full TLS 1.3 handshake with client certificates.
        cert = b.make_cert(test_zero_trust.spiffe("my-apps", "bench"), b.mesh_root())
        served = b.counter("podium_mtls_handshakes_total", side="server")
        t0 = time.monotonic()
        with multiprocessing.Pool(a.clients) as pool:
            counts = pool.map(handshakes, [(pod_ip, 8080, cert[0], cert[1], a.duration)] * a.clients)
        elapsed = time.monotonic() - t0
        served = b.counter("podium_mtls_handshakes_total", side="server") - served
        print("mesh handshakes: %d clients made %d in %.1f s = %.0f/s; the proxy counted %d server "
              "handshakes = %.0f/s" % (a.clients, sum(counts), elapsed, sum(counts) / elapsed, served,
                                       served / elapsed))
    finally:
        if haproxy:
            haproxy.kill()
            haproxy.wait()
        b.doCleanups()
        Bench.tearDownClass()


if __name__ == "__main__":
    main()
