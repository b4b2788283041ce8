"""GitOps end to end (issue 6), with the real binary as root and real git repositories made by the
test: Argo CD Applications unchanged, the seed's two-branch flow, drift and self-heal, pruning, no
false OutOfSync, and bad commits that change nothing."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from podium_e2e import SEED, NodeTestCase, wait_for

APP_NS = "argocd"
NS = "my-apps"


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@example.com",
               GIT_COMMITTER_NAME="ci", GIT_COMMITTER_EMAIL="ci@example.com")
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


class GitOpsTest(NodeTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.repo = tempfile.mkdtemp(prefix="podium-gitops-repo-")
            # The seed's two branches: `development` has the source, `argo-dev` the manifests.
            git(cls.repo, "init", "-q", "-b", "development")
            with open(os.path.join(cls.repo, "main.go"), "w") as f:
                f.write("package main\n")
            git(cls.repo, "add", ".")
            git(cls.repo, "commit", "-q", "-m", "the app")
            git(cls.repo, "checkout", "-q", "--orphan", "argo-dev")
            git(cls.repo, "rm", "-q", "-rf", ".")
            os.makedirs(os.path.join(cls.repo, "manifests"))
            for f in ("namespace.yaml", "deployment.yaml"):
                shutil.copy(os.path.join(SEED, f), os.path.join(cls.repo, "manifests", f))
            git(cls.repo, "add", ".")
            git(cls.repo, "commit", "-q", "-m", "manifests")
            cls.server.kubectl("create", "namespace", APP_NS)
            cls.server.kubectl("apply", "-f", "-", input=json.dumps(cls.application()))
        except Exception:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.repo, ignore_errors=True)

    @classmethod
    def application(cls, **automated):
        policy = {"prune": True, "selfHeal": True}
        policy.update(automated)
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "golang-app", "namespace": APP_NS},
                "spec": {"project": "default",
                         "source": {"repoURL": "file://" + cls.repo, "targetRevision": "argo-dev",
                                    "path": "manifests"},
                         "destination": {"server": "https://kubernetes.default.svc", "namespace": NS},
                         "syncPolicy": {"automated": policy, "syncOptions": ["CreateNamespace=true"]}}}

    # --- helpers ---------------------------------------------------------------------------
    def app(self):
        return json.loads(self.kubectl("get", "application", "golang-app", "-n", APP_NS, "-o", "json").stdout)

    def status(self):
        return self.app().get("status", {})

    def deployment(self):
        p = self.kubectl("get", "deployment", "golang-app", "-n", NS, "-o", "json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def image(self):
        d = self.deployment()
        return d and d["spec"]["template"]["spec"]["containers"][0]["image"]

    def commit(self, message, edit):
        edit()
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", message)
        return git(self.repo, "rev-parse", "HEAD")

    def set_image(self, tag):
        path = os.path.join(self.repo, "manifests", "deployment.yaml")

        def edit():
            with open(path) as f:
                text = f.read()
            for old in ("v1.0.0", "v1.1.0"):
                text = text.replace(old, tag)
            with open(path, "w") as f:
                f.write(text)
        return edit

    def write(self, name, text):
        def edit():
            with open(os.path.join(self.repo, "manifests", name), "w") as f:
                f.write(text)
        return edit

    def remove(self, name):
        return lambda: os.remove(os.path.join(self.repo, "manifests", name))

    def synced_at(self, sha, timeout=30):
        """Seconds until the app reports Synced at `sha`."""
        t0 = time.monotonic()
        wait_for(lambda: (lambda s: s.get("sync", {}).get("status") == "Synced"
                          and s["sync"].get("revision") == sha)(self.status()), timeout, 0.05,
                 "Synced at " + sha[:7])
        return time.monotonic() - t0

    def healthy(self, timeout=120):
        wait_for(lambda: self.status().get("health", {}).get("status") == "Healthy", timeout, 0.2, "Healthy")

    def patch_app(self, patch):
        self.kubectl("patch", "application", "golang-app", "-n", APP_NS, "--type", "merge", "-p", json.dumps(patch))

    # --- the tests --------------------------------------------------------------------------
    def test_a_two_branch_flow_commit_and_revert(self):
        head = git(self.repo, "rev-parse", "HEAD")
        self.synced_at(head, 60)
        self.healthy()
        s = self.status()
        self.assertEqual(s["sync"]["comparedTo"]["source"]["targetRevision"], "argo-dev")
        kinds = sorted((r["kind"], r["status"]) for r in s["resources"])
        self.assertEqual(kinds, [("Deployment", "Synced"), ("Namespace", "Synced"), ("Service", "Synced")])
        self.assertEqual(s["operationState"]["phase"], "Succeeded")
        self.assertEqual(s["history"][-1]["revision"], head)
        # CI changes the image tag on argo-dev: applied, Synced, Healthy again.
        sha = self.commit("v1.1.0", self.set_image("v1.1.0"))
        took = self.synced_at(sha)
        self.assertEqual(self.image(), "my-docker-hub/golang-app:v1.1.0")
        self.healthy()
        rolled = self.status()
        # git revert rolls the pods back the same way.
        git(self.repo, "revert", "--no-edit", "HEAD")
        back = git(self.repo, "rev-parse", "HEAD")
        took_back = self.synced_at(back)
        self.assertEqual(self.image(), "my-docker-hub/golang-app:v1.0.0")
        self.healthy()
        print("MEASURED commit to Synced by polling: %.2f s; git revert to Synced: %.2f s" % (took, took_back))
        self.assertLess(took, 5)
        self.assertLess(took_back, 5)
        self.assertEqual([h["revision"] for h in self.status()["history"]][-3:], [head, sha, back])
        self.assertTrue(rolled["health"]["status"] == "Healthy")

    def test_b_drift_is_reverted_with_self_heal_and_shown_without(self):
        self.healthy()
        self.kubectl("scale", "deployment", "golang-app", "-n", NS, "--replicas=1")
        t0 = time.monotonic()
        wait_for(lambda: self.deployment()["spec"]["replicas"] == 3, 10, 0.05, "self-heal")
        healed = time.monotonic() - t0
        print("MEASURED kubectl scale reverted by self-heal in %.2f s" % healed)
        self.assertLess(healed, 5)
        self.patch_app({"spec": {"syncPolicy": {"automated": {"selfHeal": False}}}})
        self.addCleanup(self.patch_app, {"spec": {"syncPolicy": {"automated": {"selfHeal": True}}}})
        time.sleep(1)
        self.kubectl("scale", "deployment", "golang-app", "-n", NS, "--replicas=1")
        wait_for(lambda: self.status().get("sync", {}).get("status") == "OutOfSync", 10, 0.1, "OutOfSync")
        time.sleep(4)  # more polls: nothing reverts it
        self.assertEqual(self.deployment()["spec"]["replicas"], 1)
        dep = [r for r in self.status()["resources"] if r["kind"] == "Deployment"][0]
        self.assertEqual(dep["status"], "OutOfSync")
        self.patch_app({"spec": {"syncPolicy": {"automated": {"selfHeal": True}}}})
        wait_for(lambda: self.deployment()["spec"]["replicas"] == 3, 10, 0.1, "self-heal again")

    def test_c_prune_only_when_asked(self):
        cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  a: b\n"
        sha = self.commit("add cm", self.write("cm.yaml", cm % "extra"))
        self.synced_at(sha)
        self.assertEqual(self.kubectl("get", "configmap", "extra", "-n", NS, check=False).returncode, 0)
        sha = self.commit("remove cm", self.remove("cm.yaml"))
        self.synced_at(sha)
        self.assertNotEqual(self.kubectl("get", "configmap", "extra", "-n", NS, check=False).returncode, 0)
        # prune off: the object stays, and the app says it needs pruning.
        self.patch_app({"spec": {"syncPolicy": {"automated": {"prune": False}}}})
        self.addCleanup(self.patch_app, {"spec": {"syncPolicy": {"automated": {"prune": True}}}})
        sha = self.commit("add cm2", self.write("cm2.yaml", cm % "kept"))
        self.synced_at(sha)
        sha = self.commit("remove cm2", self.remove("cm2.yaml"))
        wait_for(lambda: self.status()["sync"].get("revision") == sha and
                 self.status()["sync"]["status"] == "OutOfSync", 10, 0.1, "OutOfSync for pruning")
        time.sleep(4)
        self.assertEqual(self.kubectl("get", "configmap", "kept", "-n", NS, check=False).returncode, 0)
        extra = [r for r in self.status()["resources"] if r["name"] == "kept"][0]
        self.assertTrue(extra["requiresPruning"])
        self.patch_app({"spec": {"syncPolicy": {"automated": {"prune": True}}}})
        wait_for(lambda: self.kubectl("get", "configmap", "kept", "-n", NS, check=False).returncode != 0,
                 10, 0.1, "the prune")
        self.synced_at(sha)

    def test_d_stays_synced_over_twenty_refreshes(self):
        self.synced_at(git(self.repo, "rev-parse", "HEAD"))
        seen = []
        for i in range(20):
            before = self.status().get("reconciledAt")
            self.kubectl("annotate", "application", "golang-app", "-n", APP_NS,
                         "argocd.argoproj.io/refresh=normal", "--overwrite")
            wait_for(lambda: "argocd.argoproj.io/refresh" not in
                     self.app()["metadata"].get("annotations", {}), 10, 0.05, "refresh %d" % i)
            s = self.status()
            seen.append(s["sync"]["status"])
            self.assertIsNotNone(s.get("reconciledAt"))
            del before
        print("MEASURED 20 refreshes after a sync: %s" % dict((x, seen.count(x)) for x in set(seen)))
        self.assertEqual(seen, ["Synced"] * 20)

    def test_e_bad_commits_change_nothing_and_say_why(self):
        self.synced_at(git(self.repo, "rev-parse", "HEAD"))
        image = self.image()
        cases = [("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n", "manifests/bad.yaml"),
                 ("unknown.yaml", "apiVersion: example.com/v1\nkind: FooBar\nmetadata:\n  name: x\n", "FooBar")]
        for name, text, expect in cases:
            # The bad file comes with an image change: none of the commit may be applied.
            self.commit("bad " + name, lambda: (self.set_image("v1.1.0")(), self.write(name, text)()))

            def condition(want=expect):
                for c in self.status().get("conditions", []):
                    if c["type"] == "ComparisonError" and want in c["message"]:
                        return c["message"]
                return None
            message = wait_for(condition, 10, 0.1, "a condition naming " + expect)
            self.assertIn(name, message)
            self.assertEqual(self.status()["sync"]["status"], "Unknown")
            time.sleep(1)
            self.assertEqual(self.image(), image)
            sha = self.commit("fix", lambda: (self.set_image("v1.0.0")(), self.remove(name)()))
            self.synced_at(sha)
            self.assertNotIn("conditions", self.status())
        # An unreachable repository: a condition, and recovery when it comes back.
        moved = self.repo + ".away"
        os.rename(self.repo, moved)
        try:
            wait_for(lambda: any("repository not accessible" in c["message"]
                                 for c in self.status().get("conditions", [])), 10, 0.1, "unreachable")
        finally:
            os.rename(moved, self.repo)
        wait_for(lambda: "conditions" not in self.status(), 10, 0.1, "recovery")
        self.assertEqual(self.status()["sync"]["status"], "Synced")


if __name__ == "__main__":
    unittest.main()
