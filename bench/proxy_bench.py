#!/usr/bin/env python3
"""HTTP proxy benchmark: `podium-proxy` (the node proxy) beside HAProxy and nginx (Debian's) in one run.

One backend (nginx, one worker, a fixed 13-byte answer) on a free loopback port. Each proxy gets
one worker thread, keep-alive to the client and to the backend, and no access log:
  - podium proxy --workers 1, fed a snapshot with a Service whose endpoint is the backend and an
    Ingress routing every host to it (its Istio metrics stay on: they are part of the product);
  - HAProxy 2.6, `nbthread 1`, mode http, http-reuse always;
  - nginx 1.22, `worker_processes 1`, upstream keepalive, proxy_http_version 1.1.
The same wrk load (1 thread, --connections, --duration, keep-alive) runs against the backend
directly and then against each proxy, --rounds times in turn; each one's best round is reported.
With two or more CPUs the proxies run on the last CPU and wrk and the backend on the others, so
a proxy's own core is what bounds it and the runs disturb each other less. Printed for each: requests/s, p50/p99 latency and the
latency added over the direct connection, CPU seconds per 1,000 requests (utime+stime of the
proxy's processes during the run) and RSS after the run; then podium's ratios to HAProxy and nginx.
Everything started is stopped by PID.

    bench/proxy_bench.py [--connections 50] [--duration 10] [--rounds 1]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The node proxy's own binary (what the node agent runs): the data plane alone.
PODIUM = os.path.join(ROOT, "build", "podium-proxy")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


def check_alive(bench):
    for p in bench.procs:
        if p.poll() is not None:
            name = os.path.basename(p.args[0])
            with open(os.path.join(bench.work, name + ".log")) as f:
                sys.exit("%s exited (%s): %s" % (name, p.returncode, f.read()[-2000:]))


def children(pid):
    out = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            for c in f.read().split():
                out += children(int(c))
    except OSError:
        pass
    return out


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                total += int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))
        except (OSError, AttributeError):
            pass
    return total


def millis(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(port, connections, duration):
    out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration, "--latency",
                          "-H", "Host: bench.example.com", "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        raise RuntimeError("wrk saw errors:\n" + out)
    return {"rps": rps, "requests": total, "p50": p50, "p99": p99}


class Bench:
    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, argv, **kw):
        log = open(os.path.join(self.work, os.path.basename(argv[0]) + ".log"), "a")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            for pid in reversed(children(p.pid)):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def nginx_conf(self, name, port, body):
        prefix = os.path.join(self.work, name)
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write("""daemon off;
master_process on;
worker_processes 1;
pid %(p)s/nginx.pid;
error_log %(p)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(p)s/tmp; proxy_temp_path %(p)s/tmp; fastcgi_temp_path %(p)s/tmp;
  uwsgi_temp_path %(p)s/tmp; scgi_temp_path %(p)s/tmp;
  keepalive_requests 1000000;
  %(body)s
  server { listen 127.0.0.1:%(port)d reuseport; %(location)s }
}
""" % {"p": prefix, "port": port, "body": body[0], "location": body[1]})
        return ["nginx", "-c", path, "-p", prefix, "-e", os.path.join(prefix, "error.log")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each; the best is reported")
    args = ap.parse_args()
    for tool in ("wrk", "haproxy", "nginx"):
        if shutil.which(tool) is None:
            sys.exit("%s is not installed (scripts/install-deps.sh installs it)" % tool)
    if not os.access(PODIUM, os.X_OK):
        subprocess.run([os.path.join(ROOT, "scripts", "build.sh")], check=True)

    cpus = sorted(os.sched_getaffinity(0))
    proxy_cpus = {cpus[-1]} if len(cpus) > 1 else set(cpus)
    load_cpus = set(cpus[:-1]) if len(cpus) > 1 else set(cpus)
    os.sched_setaffinity(0, load_cpus)  # inherited by wrk and the backend
    pin = lambda: os.sched_setaffinity(0, proxy_cpus)  # noqa: E731

    work = tempfile.mkdtemp(prefix="podium-proxy-bench-")
    b = Bench(work)
    try:
        backend = free_port()
        b.start("nginx-backend", b.nginx_conf("backend", backend, (
            "", 'location / { return 200 "Hello World!\\n"; }')))
        wait_port(backend)

        ports = {"podium": free_port(), "haproxy": free_port(), "nginx": free_port()}
        snapshot = {
            "services": [{"metadata": {"name": "backend", "namespace": "bench"},
                          "spec": {"clusterIP": "10.43.255.1",
                                   "ports": [{"name": "http", "port": 80, "targetPort": backend}]}}],
            "endpoints": [{"metadata": {"name": "backend", "namespace": "bench"},
                           "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                                        "ports": [{"name": "http", "port": backend}]}]}],
            "ingresses": [{"metadata": {"name": "bench", "namespace": "bench"},
                           "spec": {"defaultBackend": {"service": {"name": "backend",
                                                                   "port": {"number": 80}}}}}],
        }
        podium = b.start("podium", [PODIUM, "--workers", "1", "--no-access-log",
                                    "--address", "127.0.0.1", "--capture-port", "0",
                                    "--metrics-port", "0", "--ingress-http-port",
                                    str(ports["podium"])],
                         stdin=subprocess.PIPE, text=True, preexec_fn=pin)
        podium.stdin.write(json.dumps(snapshot) + "\n")
        podium.stdin.flush()

        cfg = os.path.join(work, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("""global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server s1 127.0.0.1:%d
""" % (ports["haproxy"], backend))
        b.start("haproxy", ["haproxy", "-f", cfg, "-db"], preexec_fn=pin)
        b.start("nginx", b.nginx_conf("nginx", ports["nginx"], (
            "upstream be { server 127.0.0.1:%d; keepalive 64; keepalive_requests 1000000; }" % backend,
            "location / { proxy_pass http://be; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_set_header Host $host; }')), preexec_fn=pin)
        time.sleep(0.2)
        check_alive(b)
        for port in ports.values():
            wait_port(port)
        # The ingress route appears once podium has read the snapshot.
        deadline = time.time() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", ports["podium"]), timeout=2)
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench.example.com\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    s.close()
                    break
                s.close()
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("podium proxy never routed to the backend; see " + work)
            time.sleep(0.1)

        pids = {p.args[0] if isinstance(p.args, list) else p.args: p.pid for p in b.procs}
        owner = {"podium": pids[PODIUM], "haproxy": pids["haproxy"]}
        nginx_pids = [p.pid for p in b.procs if p.args[0] == "nginx"]
        owner["nginx"] = nginx_pids[1]
        results = {}
        wrk(backend, args.connections, 2)  # warm-up
        for rnd in range(args.rounds):
            for name, port in [("direct", backend)] + list(ports.items()):
                procs = children(owner[name]) if name in owner else []
                wrk(port, args.connections, 1)
                before = cpu_seconds(procs)
                r = wrk(port, args.connections, args.duration)
                r["cpu_per_1k"] = (cpu_seconds(procs) - before) / r["requests"] * 1000 if procs else 0
                r["rss_mib"] = rss_kib(procs) / 1024 if procs else 0
                if name not in results or r["rps"] > results[name]["rps"]:
                    results[name] = r
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)

    direct = results["direct"]
    print("proxy_bench: wrk -t1 -c%d -d%ds, HTTP/1.1 keep-alive, one worker each, backend nginx, "
          "best of %d; proxies on CPU %s, wrk and backend on CPU %s" % (
              args.connections, args.duration, args.rounds, ",".join(map(str, sorted(proxy_cpus))),
              ",".join(map(str, sorted(load_cpus)))))
    print("%-8s %10s %9s %9s %11s %11s %12s %9s" % ("", "req/s", "p50 ms", "p99 ms", "+p50 ms",
                                                 "+p99 ms", "CPU s/1k", "RSS MiB"))
    for name in ("direct", "podium", "haproxy", "nginx"):
        r = results[name]
        print("%-8s %10.0f %9.3f %9.3f %11.3f %11.3f %12.4f %9.1f" % (
            name, r["rps"], r["p50"], r["p99"], r["p50"] - direct["p50"], r["p99"] - direct["p99"],
            r["cpu_per_1k"], r["rss_mib"]))
    p = results["podium"]
    for peer in ("haproxy", "nginx"):
        q = results[peer]
        print("podium/%-7s req/s %.2fx  p50 %.2fx  p99 %.2fx  CPU/1k %.2fx  RSS %.2fx" % (
            peer, p["rps"] / q["rps"], p["p50"] / q["p50"], p["p99"] / q["p99"],
            p["cpu_per_1k"] / q["cpu_per_1k"], p["rss_mib"] / q["rss_mib"]))


if __name__ == "__main__":
    main()
