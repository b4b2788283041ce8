"""Argo Rollouts' canary end to end, as root with the node agent: the seed's app as a Rollout
(argoproj.io/v1alpha1, its manifest in Argo Rollouts' own shape) whose steps move the seed's
VirtualService weights between the DestinationRule's v1 (stable) and v2 (canary) subsets;
counted through the gateway at each step; promote, abort (traffic back at once), retry, full
promotion, all through `podium rollout`; and an analysis step on the mesh's own success rate
that promotes a good version, aborts one answering 500, and will not pass a canary nobody
sends traffic to."""

# The analysis Flagger builds in, written as an Argo Rollouts template with Podium's built-in
# mesh provider: the canary ReplicaSet's success rate over the last second, three times, once
# the proxies have its weight (initialDelay).
TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
    "metadata": {"name": "success-rate", "namespace": "my-apps"},
    "spec": {"args": [{"name": "canary-hash"}],
             "metrics": [{"name": "success-rate", "initialDelay": "2s", "interval": "1s", "count": 3,
                          "failureLimit": 1,
                          "successCondition": "result >= 0.95",
                          "provider": {"plugin": {"podium.dev/mesh": {
                              "metric": "success-rate", "workload": "golang-app-{{args.canary-hash}}"}}}}]}}
ANALYSIS_STEPS = [{"setWeight": 10},
                  {"analysis": {"templates": [{"templateName": "success-rate"}],
                                "args": [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}},
                  {"setWeight": 50}, {"pause": {"duration": "1s"}}]
# A version that answers every request with 500 (busybox httpd running a CGI for "/").
BROKEN = (r"""mkdir -p /www/cgi-bin && printf '#!/bin/sh\nprintf "Status: 500 Internal Server Error\\r\\n"""
          r"""\\r\\nbroken\\n"\n' > /www/cgi-bin/index.cgi && chmod +x /www/cgi-bin/index.cgi && """
          r"""exec httpd -f -p 8080 -h /www""")


class Load:
    """Requests through the gateway from two threads until stopped, each answer timestamped."""

    def __init__(self, port):
        self.port, self.answers, self.stop = port, [], threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(2)]
        for t in self.threads:
            t.start()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": HOST})
                r = conn.getresponse()
                body = r.read().decode(errors="replace").strip()
                self.answers.append((time.monotonic(), r.status, body.rsplit(" ", 1)[-1]))
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            time.sleep(0.01)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()
import collections
import http.client
import json
import os
import subprocess
import threading
import time

from podium_e2e import BUSYBOX, PODIUM, SEED, NodeTestCase, wait_for

NS = "my-apps"
HOST = "golang-app.example.com"
CANARY = os.path.join(SEED, "canary")

ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "golang-app", "namespace": NS},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "golang-app"}},
        "template": {"metadata": {"labels": {"app": "golang-app"}},
                     "spec": {"containers": [{"name": "golang-app", "image": "my-docker-hub/golang-app:v1.0.0",
                                              "ports": [{"containerPort": 8080}],
                                              "env": [{"name": "APP_VERSION", "value": "v1.0.0"}]}]}},
        "strategy": {"canary": {
            "scaleDownDelaySeconds": 2,
            "trafficRouting": {"istio": {
                "virtualService": {"name": "golang-app-route"},
                "destinationRule": {"name": "golang-app", "canarySubsetName": "v2", "stableSubsetName": "v1"}}},
            "steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "2s"}}]}}}}


class RolloutTest(NodeTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            k = cls.server.kubectl
            k("apply", "-f", os.path.join(SEED, "namespace.yaml"))
            # The seed's Service, Gateway and VirtualService; its DestinationRule's subsets
            # without labels: the Rollout gives each the pod-template hash it serves.
            with open(os.path.join(SEED, "deployment.yaml")) as f:
                service = f.read().split("---")[1]
            k("apply", "-f", "-", input=service)
            k("apply", "-f", os.path.join(CANARY, "gateway.yaml"))
            k("apply", "-n", NS, "-f", os.path.join(SEED, "virtual-service.yaml"))
            dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                  "metadata": {"name": "golang-app", "namespace": NS},
                  "spec": {"host": "golang-app-service", "subsets": [{"name": "v1"}, {"name": "v2"}]}}
            k("apply", "-f", "-", input=json.dumps(dr))
            k("apply", "-f", "-", input=json.dumps(ROLLOUT))
        except Exception:
            cls.server.close()
            raise

    def rollout(self, *args):
        p = subprocess.run([PODIUM, "rollout", *args, "golang-app", "-n", NS, "--data-dir", self.server.data_dir],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def status(self):
        return json.loads(self.kubectl("get", "rollout", "golang-app", "-n", NS, "-o", "json").stdout).get("status", {})

    def wait_phase(self, phase, step=None, timeout=90):
        def there():
            s = self.status()
            return s.get("phase") == phase and (step is None or s.get("currentStepIndex") == step) and s
        try:
            return wait_for(there, timeout, 0.1, "the rollout %s at step %s" % (phase, step))
        except AssertionError as e:
            state = self.kubectl("get", "rs,pods,analysisruns", "-n", NS, "-o", "wide", check=False).stdout
            raise AssertionError("%s; now %s\n%s" % (e, self.status(), state)) from None

    def versions(self, n):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.ingress_port, timeout=10)
        counts = collections.Counter()
        try:
            for _ in range(n):
                conn.request("GET", "/", headers={"Host": HOST})
                r = conn.getresponse()
                body = r.read().decode()
                counts[body.strip().rsplit(" ", 1)[-1] if r.status == 200 else r.status] += 1
        finally:
            conn.close()
        return counts

    def set_version(self, version):
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "golang-app", "image": "my-docker-hub/golang-app:" + version,
             "ports": [{"containerPort": 8080}], "env": [{"name": "APP_VERSION", "value": version}]}]}}}}
        self.kubectl("patch", "rollout", "golang-app", "-n", NS, "--type", "merge", "-p", json.dumps(patch))

    def test_a_canary_steps_promote_abort_retry(self):
        st = self.wait_phase("Healthy")
        stable = st["stableRS"]
        wait_for(lambda: self.versions(20) == collections.Counter({"v1.0.0": 20}), 30, 0.2, "v1 through the gateway")
        self.assertIn("Healthy", self.rollout("get"))
        # Argo CD's view of it (kubectl's printer columns, Argo Rollouts' CRD).
        table = self.kubectl("get", "rollout", "-n", NS).stdout
        self.assertTrue(table.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"],
                        table)

        # A new version: 10 % of the traffic, then paused.
        t0 = time.monotonic()
        self.set_version("v2.0.0")
        st = self.wait_phase("Paused", 1)
        at10 = time.monotonic() - t0
        counts = self.versions(1000)
        print("MEASURED rollout: v2.0.0 serving 10%% %.2f s after the template changed; 1000 requests: %s"
              % (at10, dict(counts)))
        self.assertEqual(counts["v1.0.0"] + counts["v2.0.0"], 1000)
        self.assertLessEqual(abs(counts["v2.0.0"] / 1000 - 0.10), 0.03)
        vs = json.loads(self.kubectl("get", "virtualservice", "golang-app-route", "-n", NS, "-o", "json").stdout)
        self.assertEqual([d["weight"] for d in vs["spec"]["http"][0]["route"]], [90, 10])
        out = self.rollout("get")
        self.assertIn("SetWeight:     10", out)
        self.assertIn("canary", out)

        # Promoted past the pause: 50 %, a timed pause, then stable.
        self.rollout("promote")
        self.wait_phase("Paused", 3)
        counts = self.versions(400)
        self.assertLessEqual(abs(counts["v2.0.0"] / 400 - 0.5), 0.1, counts)
        st = self.wait_phase("Healthy")
        self.assertNotEqual(st["stableRS"], stable)
        wait_for(lambda: self.versions(50) == collections.Counter({"v2.0.0": 50}), 10, 0.1, "all traffic on v2")
        print("MEASURED rollout: v2.0.0 fully promoted %.1f s after the template changed" % (time.monotonic() - t0))

        # Another version, aborted at 10 %: every request back on stable at once.
        self.set_version("v1.1.0")
        self.wait_phase("Paused", 1)
        self.assertGreater(self.versions(300)["v1.1.0"], 0)
        t1 = time.monotonic()
        self.rollout("abort")
        st = self.wait_phase("Degraded")
        self.assertEqual(st["message"], "RolloutAborted: Rollout aborted update to revision 3")

        def stable_only():
            return self.versions(100)["v1.1.0"] == 0
        wait_for(stable_only, 5, 0, "all traffic back on stable")
        back = time.monotonic() - t1
        print("MEASURED rollout: abort -> all traffic on stable %.2f s after `podium rollout abort`" % back)
        self.assertLess(back, 2.0)
        self.assertEqual(self.versions(500), collections.Counter({"v2.0.0": 500}))

        # Retry: the same update from its first step; then promoted fully.
        self.rollout("retry")
        self.wait_phase("Paused", 1)
        self.assertGreater(self.versions(300)["v1.1.0"], 0)
        self.rollout("promote", "--full")
        self.wait_phase("Healthy")
        wait_for(lambda: self.versions(50) == collections.Counter({"v1.1.0": 50}), 10, 0.1, "all traffic on v1.1.0")
        # And undo: back to the previous revision's template, through the same steps.
        self.rollout("undo")
        self.wait_phase("Paused", 1)
        self.rollout("promote", "--full")
        self.wait_phase("Healthy")
        wait_for(lambda: self.versions(50) == collections.Counter({"v2.0.0": 50}), 10, 0.1, "all traffic on v2 again")

    def test_b_what_it_cannot_do_is_refused(self):
        bad = json.loads(json.dumps(ROLLOUT))
        bad["metadata"]["name"] = "with-experiment"
        bad["spec"]["selector"]["matchLabels"]["app"] = "other"
        bad["spec"]["template"]["metadata"]["labels"]["app"] = "other"
        bad["spec"]["strategy"]["canary"]["steps"] = [{"experiment": {"templates": [{"name": "baseline"}]}}]
        self.kubectl("apply", "-f", "-", input=json.dumps(bad))
        self.addCleanup(self.kubectl, "delete", "rollout", "with-experiment", "-n", NS, check=False)

        def refused():
            s = json.loads(self.kubectl("get", "rollout", "with-experiment", "-n", NS, "-o", "json").stdout).get("status", {})
            return s.get("phase") == "Degraded" and s
        st = wait_for(refused, 20, 0.1, "the rollout refused")
        self.assertIn("steps[0].experiment is not supported", st["message"])

    def set_steps(self, steps):
        self.kubectl("patch", "rollout", "golang-app", "-n", NS, "--type", "merge",
                     "-p", json.dumps({"spec": {"strategy": {"canary": {"steps": steps}}}}))

    def test_c_analysis_promotes_the_good_aborts_the_bad_and_needs_traffic(self):
        self.wait_phase("Healthy")
        self.kubectl("apply", "-f", "-", input=json.dumps(TEMPLATE))
        self.set_steps(ANALYSIS_STEPS)
        self.addCleanup(self.set_steps, ROLLOUT["spec"]["strategy"]["canary"]["steps"])

        # No traffic: the analysis cannot judge the canary, and says so; nothing is promoted.
        self.set_version("v1.1.0")
        st = self.wait_phase("Paused", 1, timeout=60)
        print("MEASURED rollout without traffic: %s" % st["message"])
        self.assertIn("InconclusiveAnalysisRun", st["message"])
        self.assertIn("no requests reached", st["message"])
        self.assertNotEqual(st["stableRS"], st["currentPodHash"])
        self.rollout("promote")  # a person decides
        self.wait_phase("Healthy")

        load = Load(self.server.ingress_port)
        try:
            # A good version under traffic: analysed, then promoted by itself.
            t0 = time.monotonic()
            self.set_version("v2.0.0")
            st = self.wait_phase("Healthy", timeout=90)
            promoted = time.monotonic() - t0
            runs = json.loads(self.kubectl("get", "analysisruns", "-n", NS, "-o", "json").stdout)["items"]
            passed = [r for r in runs if r["metadata"]["labels"]["rollouts-pod-template-hash"] == st["stableRS"]]
            self.assertEqual(passed[-1]["status"]["phase"], "Successful", passed[-1]["status"])
            values = [m["value"] for m in passed[-1]["status"]["metricResults"][0]["measurements"]]
            print("MEASURED rollout with analysis: v2.0.0 promoted %.1f s after the template changed; "
                  "success rates measured %s" % (promoted, values))
            wait_for(lambda: self.versions(50) == collections.Counter({"v2.0.0": 50}), 10, 0.1, "all on v2")

            # A version answering 500: the analysis aborts it, traffic goes back to stable.
            broken = {"spec": {"template": {"spec": {"containers": [
                {"name": "golang-app", "image": BUSYBOX, "command": ["sh", "-c", BROKEN],
                 "ports": [{"containerPort": 8080}]}]}}}}
            t1 = time.monotonic()
            self.kubectl("patch", "rollout", "golang-app", "-n", NS, "--type", "merge", "-p", json.dumps(broken))
            st = self.wait_phase("Degraded", timeout=90)
            decided = time.monotonic()
            time.sleep(2)
        finally:
            load.close()
        print("MEASURED rollout: the broken version aborted %.1f s after it was set: %s" % (decided - t1, st["message"]))
        self.assertIn("RolloutAborted", st["message"])
        self.assertIn("assessed Failed", st["message"])
        during = [a for a in load.answers if t1 <= a[0] < decided]
        after = [a for a in load.answers if a[0] >= decided + 1]
        failed = sum(1 for a in during if a[1] >= 500)
        print("MEASURED rollout: while the broken canary served, %d of %d answers failed (%.1f%%); "
              "after the abort (+1 s), %d of %d" % (failed, len(during), 100.0 * failed / max(len(during), 1),
                                                    sum(1 for a in after if a[1] >= 500), len(after)))
        last_failure = max((a[0] for a in load.answers if a[1] >= 500), default=t1)
        print("MEASURED rollout: the last failed answer came %.2f s after the abort was seen" % (last_failure - decided))
        self.assertLess(last_failure - decided, 1.0)
        self.assertLessEqual(failed / max(len(during), 1), 0.13)
        self.assertEqual([a for a in after if a[1] != 200], [])
        self.assertGreater(len(after), 20)
