"""Argo Rollouts' canary end to end, as root with the node agent: the seed's app as a Rollout
(argoproj.io/v1alpha1, its manifest in Argo Rollouts' own shape) whose steps move the seed's
VirtualService weights between the DestinationRule's v1 (stable) and v2 (canary) subsets;
counted through the gateway at each step; promote, abort (traffic back at once), retry, full
promotion, all through `podium rollout`; and an analysis step on the mesh's own success rate
that promotes a good version, aborts one answering 500 (retried once its cause is fixed), and
will not pass a canary nobody sends traffic to. Last, the seed's whole loop: a commit on
`development` built by an ImageBuild (buildah, the cluster registry), its tag committed on
`argo-dev`, synced by the Application, and the canary analysed and promoted — or aborted, with
the Application showing it Degraded."""

import collections
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from podium_e2e import BUSYBOX, HELLO, PODIUM, SEED, NodeTestCase, wait_for


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
# A version that answers every request with 500 until its database is ready (busybox httpd
# running a CGI for "/"; $DB comes from a ConfigMap and is read when the container starts).
BROKEN = (r"""code='500 Internal Server Error'; [ "$DB" = ready ] && code='200 OK'; mkdir -p /www/cgi-bin && """
          r"""printf '#!/bin/sh\nprintf "Status: %s\\r\\n\\r\\nversion with-db\\n"\n' "$code" """
          r"""> /www/cgi-bin/index.cgi && chmod +x /www/cgi-bin/index.cgi && exec httpd -f -p 8080 -h /www""")


class Load:
    """Requests through the gateway from two threads until stopped, each answer timestamped."""

    def __init__(self, port, threads=2, pause=0.01):
        self.port, self.pause, self.answers, self.stop = port, pause, [], threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]
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
            if self.pause:
                time.sleep(self.pause)
        conn.close()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()

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

            # A version answering 500 (its database is down): the analysis aborts it, traffic
            # goes back to stable.
            self.kubectl("create", "configmap", "canary-db", "-n", NS, "--from-literal=state=down")
            broken = {"spec": {"template": {"spec": {"containers": [
                {"name": "golang-app", "image": BUSYBOX, "command": ["sh", "-c", BROKEN],
                 "ports": [{"containerPort": 8080}],
                 "env": [{"name": "DB", "valueFrom": {"configMapKeyRef": {"name": "canary-db", "key": "state"}}}]}]}}}}
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

        # The cause fixed (the database is up), the same update retried: its canary comes back
        # from the first step, passes its analysis and is promoted (argo-rollouts #3120).
        self.kubectl("patch", "configmap", "canary-db", "-n", NS, "-p", '{"data": {"state": "ready"}}')
        load = Load(self.server.ingress_port)
        try:
            t2 = time.monotonic()
            self.rollout("retry")
            st = self.wait_phase("Healthy", timeout=90)
            print("MEASURED rollout: retried after the fix, promoted %.1f s after `podium rollout retry`"
                  % (time.monotonic() - t2))
        finally:
            load.close()
        self.assertEqual(st["stableRS"], st["currentPodHash"])
        wait_for(lambda: self.versions(50) == collections.Counter({"with-db": 50}), 10, 0.1, "all on the fixed version")

    # --- the whole loop: a push to `development` to a promoted canary ---------------------------
    def git(self, *args):
        env = dict(os.environ, GIT_AUTHOR_NAME="dev", GIT_AUTHOR_EMAIL="dev@example.com",
                   GIT_COMMITTER_NAME="dev", GIT_COMMITTER_EMAIL="dev@example.com")
        p = subprocess.run(["git", *args], cwd=self.work, env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "git %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout.strip()

    def commit_version(self, message, old, new):
        """Edits main.cc on development (`old` -> `new`), commits and pushes; the new commit."""
        path = os.path.join(self.work, "main.cc")
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))
        self.git("commit", "-q", "-am", message)
        self.git("push", "-q", "origin", "development")
        return self.git("rev-parse", "HEAD")

    def imagebuild(self):
        return json.loads(self.kubectl("get", "imagebuild", "golang-app", "-n", "argocd", "-o", "json").stdout)

    def build_of(self, commit, phases=("Succeeded", "Failed")):
        def done():
            for b in self.imagebuild().get("status", {}).get("builds", []):
                if b["commit"] == commit and b["phase"] in phases:
                    return b
            return None
        return wait_for(done, 600, 0.1, "the build of %s" % commit[:7])

    def app(self):
        return json.loads(self.kubectl("get", "application", "golang-app", "-n", "argocd", "-o", "json").stdout)

    def from_example(self, name, repo):
        with open(os.path.join(HELLO, "delivery", name)) as f:
            return f.read().replace("https://github.com/your-user/golang-app.git", "file://" + repo)

    def test_d_the_whole_loop_from_a_push_to_a_promoted_canary(self):
        # The objects the tests above made by hand give way to the Application's.
        self.kubectl("delete", "rollout,analysistemplate,analysisrun,virtualservice,destinationrule,gateway,"
                     "service,configmap", "--all", "-n", NS, "--wait=true", timeout=120)
        root = tempfile.mkdtemp(prefix="podium-loop-")
        self.addCleanup(shutil.rmtree, root, True)
        origin, self.work = os.path.join(root, "golang-app.git"), os.path.join(root, "work")
        os.makedirs(self.work)
        # The seed's repository, as a git host keeps it: the source on `development`, the
        # manifests on `argo-dev`.
        subprocess.run(["git", "init", "-q", "--bare", "-b", "development", origin], check=True)
        self.git("init", "-q", "-b", "development")
        self.git("remote", "add", "origin", origin)
        for f in ("main.cc", "Dockerfile"):
            shutil.copy(os.path.join(HELLO, f), self.work)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "golang-app source")
        self.git("push", "-q", "origin", "development")
        self.git("checkout", "-q", "--orphan", "argo-dev")
        self.git("rm", "-q", "-rf", ".")
        os.makedirs(os.path.join(self.work, "manifests"))
        for f in ("rollout.yaml", "routing.yaml", "analysis.yaml"):
            shutil.copy(os.path.join(HELLO, "delivery", f), os.path.join(self.work, "manifests"))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "golang-app manifests")
        self.git("push", "-q", "origin", "argo-dev")
        self.git("checkout", "-q", "development")

        def argo_dev():
            return subprocess.run(["git", "--git-dir", origin, "rev-parse", "argo-dev"], capture_output=True,
                                  text=True, check=True).stdout.strip()

        def argo_dev_diff(a, b):
            return subprocess.run(["git", "--git-dir", origin, "diff", "-U0", a, b], capture_output=True,
                                  text=True, check=True).stdout

        # The ImageBuild builds development's head and commits its tag; then the Application
        # deploys it.
        self.kubectl("create", "namespace", "argocd", check=False)
        self.kubectl("apply", "-f", "-", input=self.from_example("image-build.yaml", origin))
        first = self.build_of(self.git("rev-parse", "HEAD"))
        self.assertEqual(first["phase"], "Succeeded", first)
        print("MEASURED loop: first build (%s) %.1f s, buildah %.1f s" % (first["tag"], first["durationSeconds"],
                                                                           first["buildSeconds"]))
        self.kubectl("apply", "-f", "-", input=self.from_example("application.yaml", origin))
        wait_for(lambda: self.app().get("status", {}).get("health", {}).get("status") == "Healthy", 180, 0.2,
                 "the Application Healthy")
        self.wait_phase("Healthy")
        wait_for(lambda: self.versions(20) == collections.Counter({"1.0.0": 20}), 30, 0.2, "1.0.0 through the gateway")

        # A new version committed on development: built, bumped, synced, analysed, promoted.
        load = Load(self.server.ingress_port, threads=4, pause=0)
        steps = {}
        try:
            before = argo_dev()
            t0 = time.monotonic()
            commit = self.commit_version("version 2.0.0", '"1.0.0"', '"2.0.0"')

            def watch():
                st = self.status()
                if "built" not in steps:
                    b = self.imagebuild()["status"].get("builds", [{}])[0]
                    if b.get("commit") == commit and b.get("phase") == "Succeeded":
                        steps["built"] = time.monotonic()
                        steps["build"] = b
                if "synced" not in steps and "build" in steps and \
                        self.app()["status"]["sync"].get("revision") == steps["build"]["writeBackCommit"]:
                    steps["synced"] = time.monotonic()
                if "10%" not in steps and st.get("currentStepIndex") == 1 and st.get("phase") != "Healthy":
                    steps["10%"] = time.monotonic()
                if "50%" not in steps and "10%" in steps and (st.get("currentStepIndex") or 0) >= 2:
                    steps["50%"] = time.monotonic()
                if "10%" in steps and st.get("phase") == "Healthy":
                    steps["promoted"] = time.monotonic()
                    return True
                return False
            wait_for(watch, 600, 0.05, "v2.0.0 promoted")
        finally:
            load.close()
        b = steps["build"]
        self.assertEqual(b["tag"], commit[:7])
        # The deploy branch moved by one commit that changes only the image line.
        diff = argo_dev_diff(before, argo_dev())
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        self.assertEqual(changed, ["-        image: my-docker-hub/golang-app:%s # This tag is updated by the ImageBuild"
                                   % first["tag"],
                                   "+        image: my-docker-hub/golang-app:%s # This tag is updated by the ImageBuild"
                                   % commit[:7]], diff)
        self.assertEqual(subprocess.run(["git", "--git-dir", origin, "rev-parse", "argo-dev^"], capture_output=True,
                                        text=True).stdout.strip(), before)
        tags = json.loads(subprocess.run(["curl", "-s", "http://%s/v2/my-docker-hub/golang-app/tags/list" % self.registry],
                                         capture_output=True, text=True).stdout)["tags"]
        self.assertIn(commit[:7], tags)
        # 10 % ± 3 on the new version while the canary step held (1,000 answers).
        window = [a for a in load.answers if steps["10%"] + 0.3 <= a[0] < steps["50%"] - 0.1][:1000]
        share = sum(1 for a in window if a[2] == "2.0.0") / max(len(window), 1)
        print("MEASURED loop timeline (s after the push): build done and bump committed %.1f (buildah %.1f), "
              "synced %.1f, 10%% serving %.1f, promoted %.1f; loop without the build %.1f s; canary share %.1f%% "
              "of %d answers" % (steps["built"] - t0, b["buildSeconds"], steps["synced"] - t0, steps["10%"] - t0,
                                 steps["promoted"] - t0, steps["promoted"] - t0 - b["buildSeconds"],
                                 100 * share, len(window)))
        self.assertGreaterEqual(len(window), 1000)
        self.assertLessEqual(abs(share - 0.10), 0.03)
        self.assertEqual(sum(1 for a in load.answers if a[1] != 200), 0)
        wait_for(lambda: self.versions(50) == collections.Counter({"2.0.0": 50}), 10, 0.1, "all on 2.0.0")

        # A commit that does not build: its build fails naming the step; while it builds, two
        # more pushes come — only the newest of them is built, after it.
        before = argo_dev()
        bad = self.commit_version("half a change", "int main(", "int main( {")
        wait_for(lambda: self.imagebuild()["status"]["builds"][0]["commit"] == bad, 30, 0.05, "the bad commit building")
        skipped = self.commit_version("version 3.0.0", '"2.0.0"', '"3.0.0"')
        self.git("revert", "--no-edit", "HEAD~1")  # fixes the build, keeps 3.0.0
        self.git("push", "-q", "origin", "development")
        newest = self.git("rev-parse", "HEAD")
        failed = self.build_of(bad)
        self.assertEqual(failed["phase"], "Failed")
        print("MEASURED loop: a commit that does not build failed at %r: %s" % (failed["step"], failed["message"]))
        self.assertIn("RUN g++", failed["step"])
        self.assertIn("error", failed["log"])
        self.assertEqual(argo_dev(), before)
        built = self.build_of(newest)
        self.assertEqual(built["phase"], "Succeeded", built)
        commits = [x["commit"] for x in self.imagebuild()["status"]["builds"]]
        self.assertNotIn(skipped, commits)
        self.assertLessEqual(failed["finishedAt"], built["startedAt"])

        # 3.0.0 under traffic, then a version answering 500: aborted by its analysis, all
        # traffic back on stable; the Application shows the Rollout Degraded.
        load = Load(self.server.ingress_port)
        try:
            self.wait_phase("Healthy", timeout=120)
            wait_for(lambda: self.versions(50) == collections.Counter({"3.0.0": 50}), 10, 0.1, "all on 3.0.0")
            broken = self.commit_version("answer 500", "HTTP/1.1 200 OK", "HTTP/1.1 500 Internal Server Error")
            self.build_of(broken)
            t1 = time.monotonic()
            st = self.wait_phase("Degraded", timeout=180)
            decided = time.monotonic()
            health = wait_for(lambda: self.app()["status"]["health"]["status"] == "Degraded" and self.app()["status"],
                              10, 0.1, "the Application Degraded")
            time.sleep(1.5)
        finally:
            load.close()
        print("MEASURED loop: the 500 version aborted by its analysis (%s); the Application: %s" %
              (st["message"], health["health"]))
        self.assertIn("RolloutAborted", st["message"])
        last_failure = max(a[0] for a in load.answers if a[1] >= 500)
        during = [a for a in load.answers if t1 <= a[0] < decided]
        failed = sum(1 for a in during if a[1] >= 500)
        print("MEASURED loop: while the 500 canary served, %d of %d answers failed (%.1f%%); the last failure "
              "%.2f s after the abort was seen" % (failed, len(during), 100.0 * failed / max(len(during), 1),
                                                   last_failure - decided))
        self.assertLess(last_failure - decided, 1.0)
        self.assertLessEqual(failed / max(len(during), 1), 0.13)

        # The fix is a revert on development: built, and the new canary promoted.
        self.git("revert", "--no-edit", "HEAD")
        self.git("push", "-q", "origin", "development")
        load = Load(self.server.ingress_port)
        try:
            self.build_of(self.git("rev-parse", "HEAD"))
            self.wait_phase("Healthy", timeout=180)
        finally:
            load.close()
        wait_for(lambda: self.app()["status"]["health"]["status"] == "Healthy", 30, 0.1, "the Application Healthy")
        wait_for(lambda: self.versions(50) == collections.Counter({"3.0.0": 50}), 10, 0.1, "all on 3.0.0 again")
