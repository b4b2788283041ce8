"""`kubectl drain` with a PodDisruptionBudget (issue 13), with the stock kubectl against the real
binary: cordon, then evictions through pods/eviction that the budget paces (429 while it allows
no disruption), replacements scheduled on the other node, and the drained node left empty. The
two nodes are Node objects whose "agents" are emulated by the test (they mark their pods Ready
and finish the deletion of evicted ones): what moves here is the API's and the controllers' part.
"""

import json
import threading
import time

from podium_e2e import ServerTestCase, wait_for


class DrainTest(ServerTestCase):
    def node(self, name):
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))
        body = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                           "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}}
        self.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(body))

    def pods(self):
        return json.loads(self.kubectl("get", "pods", "-n", "drain", "-o", "json").stdout)["items"]

    def emulate_agents(self, stop, ready_seen):
        """What the nodes' agents would do: run bound pods (Ready) and finish deletions."""
        while not stop.is_set():
            for p in self.pods():
                name, node = p["metadata"]["name"], p["spec"].get("nodeName")
                if not node:
                    continue
                if p["metadata"].get("deletionTimestamp"):
                    self.kubectl("delete", "pod", name, "-n", "drain", "--grace-period=0", "--force",
                                 "--wait=false", check=False)
                    continue
                ready = any(c["type"] == "Ready" and c["status"] == "True"
                            for c in p.get("status", {}).get("conditions", []))
                if not ready:
                    status = {"status": {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}}
                    self.kubectl("patch", "pod", name, "-n", "drain", "--subresource=status", "--type=merge",
                                 "-p", json.dumps(status), check=False)
            ready_seen.append(sum(1 for p in self.pods() if not p["metadata"].get("deletionTimestamp") and any(
                c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))))
            stop.wait(0.2)

    def test_a_drain_moves_the_pods_while_the_budget_keeps_three_ready(self):
        self.node("n1")
        self.kubectl("create", "namespace", "drain")
        # Four replicas on n1 first (n2 does not exist yet).
        self.kubectl("create", "deployment", "web", "-n", "drain", "--image=example/web:1", "--replicas=4")
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "drain"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}}))
        stop, ready_seen = threading.Event(), []
        agents = threading.Thread(target=self.emulate_agents, args=(stop, ready_seen))
        agents.start()
        try:
            wait_for(lambda: sum(1 for p in self.pods() if p["spec"].get("nodeName") == "n1") == 4, 20, 0.1,
                     "four pods on n1")
            pdb = wait_for(lambda: (lambda b: b if b.get("status", {}).get("disruptionsAllowed") == 1 else None)(
                json.loads(self.kubectl("get", "pdb", "web", "-n", "drain", "-o", "json").stdout)), 20, 0.1,
                "the budget to allow one disruption")
            self.assertEqual(pdb["status"]["currentHealthy"], 4)
            self.node("n2")
            ready_seen.clear()
            start = time.monotonic()
            out = self.kubectl("drain", "n1", "--ignore-daemonsets", "--timeout=90s", timeout=120)
            took = time.monotonic() - start
            node = json.loads(self.kubectl("get", "node", "n1", "-o", "json").stdout)
            self.assertTrue(node["spec"].get("unschedulable"))
            on_n1 = [p for p in self.pods() if p["spec"].get("nodeName") == "n1"]
            on_n2 = [p for p in self.pods() if p["spec"].get("nodeName") == "n2"]
            paced = out.stderr.count("Cannot evict pod") + out.stdout.count("Cannot evict pod")
            print("MEASURED kubectl drain of n1 took %.1f s: %d pods moved to n2, %d evictions refused by "
                  "the budget on the way, fewest ready pods seen %d (minAvailable 3)"
                  % (took, len(on_n2), paced, min(ready_seen)))
            self.assertEqual(on_n1, [])
            self.assertEqual(len(on_n2), 4)
            self.assertGreater(paced, 0)
            self.assertGreaterEqual(min(ready_seen), 3)
        finally:
            stop.set()
            agents.join()
