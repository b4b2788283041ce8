"""Node lifecycle with the real binary (issue 13): a node whose Lease stops being renewed turns
Ready=Unknown after --node-monitor-grace-period, is tainted node.kubernetes.io/unreachable, its
pods are deleted when their toleration runs out and replaced, and the taints go when it is back.
The node here is a Node object and a Lease the test renews itself, as an agent would (no
containers run: the multi-host test bed is where pods really move)."""

import datetime
import json
import threading
import time

from podium_e2e import ServerTestCase, wait_for

GRACE = 3  # seconds: --node-monitor-grace-period


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeLifecycleTest(ServerTestCase):
    server_args = ("--node-monitor-grace-period", "%ds" % GRACE)

    def set_ready(self, status):
        body = {"status": {"conditions": [{"type": "Ready", "status": status, "reason": "KubeletReady"}],
                           "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}
        self.kubectl("patch", "node", "ghost", "--subresource=status", "--type=merge", "-p", json.dumps(body))

    def renew(self):
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "ghost", "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 20, "renewTime": now_micro()}}
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(lease))

    def node(self):
        return json.loads(self.kubectl("get", "node", "ghost", "-o", "json").stdout)

    def ready(self):
        for c in self.node()["status"].get("conditions", []):
            if c["type"] == "Ready":
                return c["status"]
        return None

    def taints(self):
        return {(t["key"], t["effect"]) for t in self.node()["spec"].get("taints", [])}

    def pods(self):
        return json.loads(self.kubectl("get", "pods", "-n", "lost", "-o", "json").stdout)["items"]

    def test_a_a_silent_node_is_tainted_its_pods_replaced_and_it_comes_back(self):
        self.kubectl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ghost"}}))
        self.set_ready("True")
        stop = threading.Event()

        def agent():
            while not stop.is_set():
                self.renew()
                stop.wait(1)
        t = threading.Thread(target=agent)
        t.start()
        try:
            self.kubectl("create", "namespace", "lost")
            tolerations = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                            "effect": "NoExecute", "tolerationSeconds": 2}]
            self.kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "lost"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"tolerations": tolerations,
                                               "containers": [{"name": "web", "image": "example/web:1"}]}}}}))
            first = wait_for(lambda: (lambda ps: ps if len(ps) == 2 else None)(
                [p for p in self.pods() if p["spec"].get("nodeName") == "ghost"]), 20, 0.1, "pods bound to ghost")
            self.assertEqual(self.ready(), "True")
        finally:
            stop.set()
            t.join()
        silent = time.monotonic()
        wait_for(lambda: self.ready() == "Unknown", 3 * GRACE, 0.1, "the node to be Ready=Unknown")
        unknown_after = time.monotonic() - silent
        self.assertIn(("node.kubernetes.io/unreachable", "NoExecute"), self.taints())
        self.assertIn(("node.kubernetes.io/unreachable", "NoSchedule"), self.taints())
        first_names = {p["metadata"]["name"] for p in first}
        wait_for(lambda: all(p["metadata"].get("deletionTimestamp") for p in self.pods()
                             if p["metadata"]["name"] in first_names), 10, 0.1, "the pods evicted")
        evicted_after = time.monotonic() - silent
        replacements = wait_for(lambda: (lambda ps: ps if len(ps) == 2 else None)(
            [p for p in self.pods() if p["metadata"]["name"] not in first_names]), 10, 0.1, "replacements")
        # Nowhere to go while the only node is unreachable.
        self.assertTrue(all(not p["spec"].get("nodeName") for p in replacements))
        print("MEASURED node silent -> Ready=Unknown in %.1f s (grace %d s), pods evicted after %.1f s "
              "(toleration 2 s)" % (unknown_after, GRACE, evicted_after))
        self.assertLess(unknown_after, GRACE + 2)
        # Back: it renews and reports Ready; the taints go and the replacements are placed.
        self.renew()
        self.set_ready("True")
        wait_for(lambda: not self.taints(), 10, 0.1, "the taints removed")
        wait_for(lambda: all(p["spec"].get("nodeName") == "ghost" for p in self.pods()
                             if p["metadata"]["name"] not in first_names), 20, 0.1, "the replacements bound")
