"""Several hosts on one machine (issue 13). Three network namespaces joined by a bridge are three
"hosts", each with its own address, its own `podium agent` (its own containerd, pod range, pod
bridge, nftables and node proxy); one `podium server` listens on the bridge's address with a
3-member etcd on loopback. The server allocates each node's pod range; each agent routes the
other nodes' ranges to them (host-gw). Checks: the seed's Deployment spreads over the three
nodes; a pod on one host reaches a pod on another by pod IP, ClusterIP and DNS name, with only
TLS on the wire between hosts; cutting a host's link turns its node NotReady, its pods are
replaced elsewhere, a client of the gateway barely notices, and when the link comes back the
stale pods are killed.

Only addresses inside the namespaces this test creates are used; no default route, no NAT.
Everything it starts it stops by PID, and it deletes the namespaces and the bridge."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import yaml

from podium_e2e import (BUSYBOX, KUBECTL, PODIUM, SEED, Capture, EtcdCluster, NodeTestCase, Server, is_ready,
                        pids_under, stop_process, wait_for)

BRIDGE = "pdtb0"
GATEWAY_IP = "10.99.0.1"
HOSTS = ("pdh1", "pdh2", "pdh3")
INGRESS = 8080  # each host's ingress port (each in its own namespace)
GRACE = 3  # seconds: --node-monitor-grace-period
NS = "my-apps"
HOST = "golang-app.example.com"


def run(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60)


class Host:
    """A network namespace with a veth on the test bridge and a `podium agent` inside."""

    def __init__(self, index):
        self.name = HOSTS[index]
        self.ip = "10.99.0.%d" % (11 + index)
        self.link = "pdv%d" % (index + 1)  # the bridge's side of the host's cable
        self.data = tempfile.mkdtemp(prefix="podium-e2e-%s-" % self.name)
        self.proc = None
        self.log = None

    def create(self):
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        run("ip", "link", "set", self.link, "master", BRIDGE, "up")
        run("ip", "-n", self.name, "addr", "add", self.ip + "/24", "dev", "eth0")
        run("ip", "-n", self.name, "link", "set", "eth0", "up")
        run("ip", "-n", self.name, "link", "set", "lo", "up")

    def start_agent(self, server, registry):
        self.log = open(os.path.join(self.data, "agent.log"), "ab")
        # nsenter, not `ip netns exec`: the latter remounts /sys, which hides the cgroups.
        self.proc = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + self.name, PODIUM, "agent",
             "--server", "https://%s:%d" % (GATEWAY_IP, server.port),
             "--token", os.path.join(server.data_dir, "tls", "admin.token"),
             "--ca-file", os.path.join(server.data_dir, "tls", "ca.crt"),
             "--data-dir", self.data, "--node-name", self.name, "--node-ip", self.ip,
             "--registry", registry, "--ingress-http-port", str(INGRESS), "--ingress-https-port", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def ctr(self, *args):
        sock = os.path.join(self.data, "node", "containerd", "containerd.sock")
        return run("ctr", "--address", sock, "--namespace", "k8s.io", *args, check=False)

    def read_log(self):
        with open(os.path.join(self.data, "agent.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop_agent(self):
        if not stop_process(self.proc, 60):
            print("%s: the agent did not stop in 60 s; its log ends:\n%s" % (self.name, self.read_log()[-3000:]))
        if self.log:
            self.log.close()
            self.log = None
        left = pids_under(self.data)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return left

    def remove(self):
        self.stop_agent()
        run("ip", "netns", "del", self.name, check=False)
        run("ip", "link", "del", self.link, check=False)
        shutil.rmtree(self.data, ignore_errors=True)


def remove_pod_netns_left(before):
    """Pod network namespaces the agents did not remove (only those made since `before`)."""
    left = sorted(set(os.listdir("/run/netns")) - before - set(HOSTS)) if os.path.isdir("/run/netns") else []
    for name in left:
        run("ip", "netns", "del", name, check=False)
    if left:
        print("removed %d pod network namespaces the agents left: %s" % (len(left), left))


def remove_test_network():
    for i, name in enumerate(HOSTS):
        run("ip", "netns", "del", name, check=False)
        run("ip", "link", "del", "pdv%d" % (i + 1), check=False)
    run("ip", "link", "del", BRIDGE, check=False)


class GatewayLoad:
    """Clients calling the seed's Service through one host's gateway, counting the answers."""

    def __init__(self, ip, workers=4):
        self.ip, self.workers = ip, workers
        self.ok = self.failed = 0
        self.errors = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(workers)]

    def loop(self):
        conn = None
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.ip, INGRESS, timeout=10)
                conn.request("GET", "/", headers={"Host": HOST})
                resp = conn.getresponse()
                resp.read()
                good, what = resp.status == 200, "status %d" % resp.status
            except (OSError, http.client.HTTPException) as e:
                good, what = False, type(e).__name__
                conn.close()
                conn = None
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors[what] = self.errors.get(what, 0) + 1
            time.sleep(0.01)
        if conn:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(30)


@unittest.skipUnless(os.geteuid() == 0, "the node agents need root")
class MultiHostTest(NodeTestCase):
    seed_versions = ("v1.0.0",)

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PODIUM) or KUBECTL is None or not shutil.which("etcd"):
            raise unittest.SkipTest("needs the podium binary, kubectl and etcd")
        remove_test_network()  # a run killed before its clean-up
        cls.addClassCleanup(remove_test_network)
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", GATEWAY_IP + "/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        cls.hosts = [Host(i) for i in range(len(HOSTS))]
        netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        cls.addClassCleanup(remove_pod_netns_left, netns_before)
        for h in cls.hosts:
            cls.addClassCleanup(h.remove)
            h.create()
        cls.etcd = EtcdCluster()
        cls.addClassCleanup(cls.etcd.stop)
        cls.etcd.start()
        cls.server = Server(extra_args=["--datastore", cls.etcd.url, "--address", GATEWAY_IP,
                                        "--registry-address", GATEWAY_IP,
                                        "--node-monitor-grace-period", "%ds" % GRACE])
        cls.addClassCleanup(cls.server.close)
        cls.server.start()
        cls.registry = "%s:%d" % (GATEWAY_IP, cls.server.registry_port)
        cls.build_images()
        for h in cls.hosts:
            cls.addClassCleanup(h.stop_agent)  # before the server stops
            h.start_agent(cls.server, cls.registry)
        try:
            wait_for(lambda: len(cls.ready_nodes()) == len(HOSTS), 120, 0.5, "three Ready nodes")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, "\n".join("--- %s ---\n%s" % (h.name, h.read_log()[-3000:])
                                                           for h in cls.hosts))) from e
        if os.environ.get("PODIUM_E2E_HOLD"):  # debugging: keep the bed up
            print("KUBECONFIG=%s" % cls.server.kubeconfig, flush=True)
            time.sleep(float(os.environ["PODIUM_E2E_HOLD"]))

    @classmethod
    def tearDownClass(cls):
        pass  # the class clean-ups stop everything, in reverse order

    @classmethod
    def nodes(cls):
        return json.loads(cls.server.kubectl("get", "nodes", "-o", "json").stdout)["items"]

    @classmethod
    def ready_nodes(cls):
        return [n["metadata"]["name"] for n in cls.nodes()
                if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))]

    def node_ready_status(self, name):
        node = json.loads(self.kubectl("get", "node", name, "-o", "json").stdout)
        return next((c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"), "")

    def live_pods(self, selector):
        return [p for p in self.pods(NS, selector) if not p["metadata"].get("deletionTimestamp")]

    def exec_in(self, pod, *command):
        return self.kubectl("exec", "-n", NS, pod, "--", *command, check=False)

    # --- the pod network across hosts -------------------------------------------------------
    def test_a_each_node_gets_a_range_and_the_seed_spreads_over_three(self):
        ranges = {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in self.nodes()}
        self.assertEqual(sorted(ranges), sorted(HOSTS))
        self.assertEqual(len(set(ranges.values())), 3, ranges)
        self.assertTrue(all(r and r.startswith("10.42.") and r.endswith("/24") for r in ranges.values()), ranges)
        # Each host routes the others' ranges to them, by the kernel's own table.
        for h in self.hosts:
            routes = run("ip", "-n", h.name, "-4", "route", "show", "proto", "80").stdout
            for other in self.hosts:
                if other is not h:
                    self.assertIn("%s via %s" % (ranges[other.name], other.ip), routes)
        self.kubectl("apply", "-f", os.path.join(SEED, "namespace.yaml"), "-f", os.path.join(SEED, "deployment.yaml"))
        # Tests set the unreachable toleration short (Kubernetes' default is 300 s).
        tolerations = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": 2}]
        self.kubectl("patch", "deployment", "golang-app", "-n", NS, "-p",
                     json.dumps({"spec": {"replicas": 6, "template": {"spec": {"tolerations": tolerations}}}}))
        self.kubectl("rollout", "status", "deployment/golang-app", "-n", NS, "--timeout=180s", timeout=200)
        pods = self.wait_ready_count(NS, "app=golang-app", 6, 60)
        per_node = {}
        for p in pods:
            per_node.setdefault(p["spec"]["nodeName"], []).append(p["status"]["podIP"])
        print("MEASURED seed pods per node: %s" % {n: len(ips) for n, ips in sorted(per_node.items())})
        self.assertEqual(sorted(per_node), sorted(HOSTS))
        self.assertEqual(sorted(len(ips) for ips in per_node.values()), [2, 2, 2])
        for node, ips in per_node.items():
            prefix = ranges[node].rsplit(".", 1)[0] + "."
            self.assertTrue(all(ip.startswith(prefix) for ip in ips), (node, ips))
        # The metrics server reads every host's agent over HTTPS: kubectl top sees all three.
        def top():
            p = self.kubectl("top", "pods", "-n", NS, "--no-headers", check=False)
            rows = [line.split() for line in p.stdout.splitlines()] if p.returncode == 0 else []
            return rows if len(rows) == 6 else None
        rows = wait_for(top, 20, 0.5, "kubectl top for the six pods")
        self.assertTrue(all(re.fullmatch(r"\d+m", r[1]) and r[2].endswith("Mi") for r in rows), rows)
        nodes = self.kubectl("top", "nodes", "--no-headers").stdout
        self.assertEqual(sorted(line.split()[0] for line in nodes.splitlines()), sorted(HOSTS))

    def test_b_a_pod_on_one_host_reaches_a_pod_on_another_with_only_tls_between(self):
        first, last = HOSTS[0], HOSTS[-1]
        for name, node, command in (("client", first, ["sleep", "3600"]),
                                    ("far", last, ["httpd", "-f", "-p", "8080", "-h", "/etc"])):
            self.kubectl("run", name, "-n", NS, "--image", BUSYBOX, "--restart=Never", "--labels", "app=" + name,
                         "--overrides", json.dumps({"spec": {"nodeSelector": {"kubernetes.io/hostname": node}}}),
                         "--", *command)
        self.kubectl("expose", "pod", "far", "-n", NS, "--port", "80", "--target-port", "8080")
        wait_for(lambda: all(is_ready(self.pod(NS, n) or {}) for n in ("client", "far")), 60, 0.2, "client and far")
        far = self.pod(NS, "far")
        self.assertEqual(far["spec"]["nodeName"], last)
        cluster_ip = json.loads(self.kubectl("get", "service", "far", "-n", NS, "-o", "json").stdout)["spec"]["clusterIP"]
        # By pod IP, across the hosts' link (plaintext: no Service, so no mesh on the way out).
        out = self.exec_in("client", "wget", "-q", "-O-", "http://%s:8080/hostname" % far["status"]["podIP"])
        self.assertEqual(out.stdout, "far\n", out.stderr)

        cap = Capture(BRIDGE, "tcp and net 10.42.0.0/16", 8080)
        self.addCleanup(cap.close)
        with cap:
            # By ClusterIP and by DNS name: through the node proxies, mutual TLS between the hosts.
            for url in ("http://%s/hostname" % cluster_ip, "http://far.%s.svc.cluster.local/hostname" % NS,
                        "http://far/hostname"):
                out = wait_for(lambda: (lambda p: p if p.returncode == 0 else None)(
                    self.exec_in("client", "wget", "-q", "-O-", url)), 20, 0.5, url)
                self.assertEqual(out.stdout, "far\n", url)
        fields = cap.fields
        payloads = cap.payloads()
        self.assertGreater(len(payloads), 500)
        for plain in (b"GET /", b"HTTP/1.1", b"far\n"):
            self.assertNotIn(plain, payloads)
        hellos = fields("tls.handshake.type == 1", "tls.handshake.extensions_alpn_str")
        self.assertTrue(hellos)
        self.assertTrue(all("istio" in h[0] for h in hellos), hellos)
        print("MEASURED between hosts on %s: %d TLS handshakes offering istio, %d payload bytes, no plaintext"
              % (BRIDGE, len(hellos), len(payloads)))
        for name in ("client", "far"):
            self.kubectl("delete", "pod", name, "-n", NS, "--wait=false")
        self.kubectl("delete", "service", "far", "-n", NS)

    # --- losing a host --------------------------------------------------------------------
    def route_through_the_gateway(self):
        """The seed's Gateway, a VirtualService with Istio's retry policy and a DestinationRule
        that gives up on a silent endpoint quickly and ejects it."""
        objects = [
            {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
             "metadata": {"name": "my-gateway", "namespace": NS},
             "spec": {"selector": {"istio": "ingressgateway"},
                      "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]}},
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "golang-app-route", "namespace": NS},
             "spec": {"hosts": [HOST], "gateways": ["my-gateway"],
                      "http": [{"route": [{"destination": {"host": "golang-app-service"}}],
                                "retries": {"attempts": 3, "perTryTimeout": "1s",
                                            "retryOn": "connect-failure,reset,gateway-error"}}]}},
            {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
             "metadata": {"name": "golang-app", "namespace": NS},
             "spec": {"host": "golang-app-service",
                      "trafficPolicy": {"connectionPool": {"tcp": {"connectTimeout": "500ms"}},
                                        "outlierDetection": {"consecutiveGatewayErrors": 1, "interval": "1s",
                                                             "baseEjectionTime": "30s",
                                                             "maxEjectionPercent": 50}}}}]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

        def answers():
            c = http.client.HTTPConnection(self.hosts[0].ip, INGRESS, timeout=5)
            try:
                c.request("GET", "/", headers={"Host": HOST})
                return c.getresponse().status == 200
            except OSError:
                return False
            finally:
                c.close()
        wait_for(answers, 30, 0.2, "the gateway on %s" % self.hosts[0].name)

    def test_c_a_cut_host_goes_not_ready_its_pods_move_and_the_gateway_keeps_answering(self):
        self.route_through_the_gateway()
        lost = self.hosts[-1]
        before = {p["metadata"]["name"] for p in self.live_pods("app=golang-app") if p["spec"]["nodeName"] == lost.name}
        self.assertEqual(len(before), 2)
        with GatewayLoad(self.hosts[0].ip) as load:
            time.sleep(2)
            cut = time.monotonic()
            run("ip", "link", "set", lost.link, "down")
            wait_for(lambda: self.node_ready_status(lost.name) == "Unknown", GRACE + 20, 0.1,
                     "%s to turn Ready=Unknown" % lost.name)
            not_ready = time.monotonic() - cut

            def replaced():
                pods = [p for p in self.live_pods("app=golang-app") if is_ready(p)]
                return len(pods) == 6 and all(p["spec"]["nodeName"] != lost.name for p in pods)
            wait_for(replaced, 60, 0.2, "six ready pods off %s" % lost.name)
            moved = time.monotonic() - cut
            time.sleep(3)
        total = load.ok + load.failed
        print("MEASURED cut %s: NotReady after %.1f s (grace %d s), pods replaced after %.1f s; gateway %d requests, "
              "%d failed (%.2f%%) %s" % (lost.name, not_ready, GRACE, moved, total, load.failed,
                                        100.0 * load.failed / max(total, 1), load.errors))
        self.assertLess(not_ready, GRACE + 5)
        self.assertGreater(total, 200)
        self.assertLess(load.failed, total / 100.0, load.errors)

        # The link comes back: the node is Ready again and its stale pods are killed, not revived.
        run("ip", "link", "set", lost.link, "up")
        wait_for(lambda: self.node_ready_status(lost.name) == "True", 60, 0.2, "%s back" % lost.name)
        wait_for(lambda: not before & {p["metadata"]["name"] for p in self.pods(NS, "app=golang-app")}, 60, 0.2,
                 "the stale pods to go")
        uids = {p["metadata"]["uid"] for p in self.live_pods("app=golang-app")}
        self.assertEqual(len(uids), 6)

        def stale_containers():
            out = lost.ctr("containers", "ls", "-q", 'labels."io.kubernetes.pod.namespace"==' + NS).stdout.split()
            return not out
        wait_for(stale_containers, 60, 0.5, "the stale containers on %s to go" % lost.name)


    # --- an agent killed -------------------------------------------------------------------
    def test_d_an_agent_killed_with_9_leaves_nothing_its_next_start_cannot_reap(self):
        host = self.hosts[1]

        def here():
            return [p for p in self.live_pods("app=golang-app") if p["spec"]["nodeName"] == host.name]

        def veths():  # pod cables on the host's pod bridge
            out = run("ip", "-n", host.name, "-o", "link", "show", "type", "veth").stdout
            return sum(1 for line in out.splitlines() if "master podium" in line)

        def pod_netns():
            return sorted(n for n in os.listdir("/run/netns") if n.startswith("cni-"))
        before = here()
        self.assertTrue(before)
        self.assertEqual(veths(), len(before))
        netns_before = pod_netns()
        os.kill(host.proc.pid, signal.SIGKILL)
        host.proc.wait()
        # containerd goes with it (its parent-death signal); the pods' shims and containers stay,
        # as a kubelet's do.
        host.log.close()
        host.start_agent(self.server, self.registry)
        wait_for(lambda: self.node_ready_status(host.name) == "True", 60, 0.2, "%s back" % host.name)
        self.wait_ready_count(NS, "app=golang-app", 6, 90)
        after = here()
        self.assertEqual(sorted(p["metadata"]["uid"] for p in after), sorted(p["metadata"]["uid"] for p in before))
        wait_for(lambda: veths() == len(after), 30, 0.5, "one pod cable per pod on %s" % host.name)
        self.assertEqual(pod_netns(), netns_before)
        sandboxes = host.ctr("containers", "ls", "-q", 'labels."io.cri-containerd.kind"==sandbox').stdout.split()
        print("MEASURED after kill -9 of %s's agent and a restart: %d pods, %d sandboxes, %d pod cables, "
              "%d pod network namespaces (before: %d)" % (host.name, len(after), len(sandboxes), veths(),
                                                         len(pod_netns()), len(netns_before)))
        self.assertEqual(len(sandboxes), len(after))


if __name__ == "__main__":
    unittest.main(verbosity=2)
