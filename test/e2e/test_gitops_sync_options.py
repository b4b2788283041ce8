"""Argo CD's sync settings (issue 6) with the real binary and git repositories made by the test:
ignoreDifferences (JSON pointers, jq paths, managed-fields managers) with and without
RespectIgnoreDifferences, Replace, Prune=false, FailOnSharedResource, Validate=false, and the
retry of failed automated syncs with back-off."""

import json
import os
import shutil
import time

from gitops_e2e import ARGO, ApplicationHelpers, WorkRepo
from podium_e2e import ServerTestCase, wait_for


def config_map_yaml(name, data, namespace=None, annotations=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}) + "\n"


class SyncOptionsTest(ApplicationHelpers, ServerTestCase):
    server_args = ("--gitops-poll-interval", "500")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server.kubectl("create", "namespace", ARGO)

    def repo(self):
        r = WorkRepo()
        self.addCleanup(r.close)
        return r

    def phase(self, name):
        return self.status(name).get("operationState", {}).get("phase")

    def patch_cm(self, ns, name, data):
        self.kubectl("patch", "configmap", name, "-n", ns, "--type", "merge", "-p", json.dumps({"data": data}))

    def test_a_ignore_differences_with_respect(self):
        repo = self.repo()
        sha = repo.commit("tuned", {"manifests/tuned.json": config_map_yaml("tuned", {"replicas": "3", "image": "v1"}),
                                    "manifests/owned.json": config_map_yaml("owned", {"x": "1", "y": "1"})})
        self.application("ignore", repo.url, automated={"prune": True, "selfHeal": True},
                         sync_options=("CreateNamespace=true", "RespectIgnoreDifferences=true"),
                         ignoreDifferences=[
                             {"kind": "ConfigMap", "name": "tuned", "jsonPointers": ["/data/replicas"]},
                             {"kind": "ConfigMap", "name": "tuned",
                              "jqPathExpressions": [".metadata.labels[\"team\"]"]},
                             {"kind": "ConfigMap", "name": "owned", "managedFieldsManagers": ["kubectl-patch"]}])
        self.synced("ignore", sha)
        # Drift in ignored fields: no OutOfSync, no self-heal.
        self.patch_cm("ignore", "tuned", {"replicas": "7"})
        self.patch_cm("ignore", "owned", {"x": "changed"})
        self.kubectl("label", "configmap", "tuned", "-n", "ignore", "team=blue")
        time.sleep(2)  # four refreshes
        self.assertEqual(self.status("ignore")["sync"]["status"], "Synced")
        self.assertEqual(self.config_map("ignore", "tuned")["data"]["replicas"], "7")
        self.assertEqual(self.config_map("ignore", "owned")["data"]["x"], "changed")
        # Drift elsewhere is healed, and the ignored field keeps its live value
        # (RespectIgnoreDifferences) ...
        self.patch_cm("ignore", "tuned", {"image": "v9"})
        wait_for(lambda: self.config_map("ignore", "tuned")["data"]["image"] == "v1", 10, 0.1, "self-heal")
        self.assertEqual(self.config_map("ignore", "tuned")["data"]["replicas"], "7")
        # ... as it does through a new commit.
        sha = repo.commit("v2", {"manifests/tuned.json": config_map_yaml("tuned", {"replicas": "3", "image": "v2"})})
        self.synced("ignore", sha)
        self.assertEqual(self.config_map("ignore", "tuned")["data"], {"replicas": "7", "image": "v2"})
        # A rule that does not parse is the app's condition, naming the field.
        self.kubectl("patch", "application", "ignore", "-n", ARGO, "--type", "merge", "-p", json.dumps(
            {"spec": {"ignoreDifferences": [{"kind": "ConfigMap", "jqPathExpressions": [".data | length"]}]}}))
        message = self.condition("ignore", "spec.ignoreDifferences[0].jqPathExpressions[0]", "InvalidSpecError")
        print("MEASURED bad rule: " + message)

    def test_b_without_respect_a_sync_writes_git_values(self):
        repo = self.repo()
        sha = repo.commit("one", {"manifests/cm.json": config_map_yaml("plain", {"replicas": "3", "image": "v1"})})
        self.application("ignore-plain", repo.url,
                         ignoreDifferences=[{"kind": "ConfigMap", "jsonPointers": ["/data/replicas"]}])
        self.synced("ignore-plain", sha)
        self.patch_cm("ignore-plain", "plain", {"replicas": "9"})
        time.sleep(1.5)
        self.assertEqual(self.status("ignore-plain")["sync"]["status"], "Synced")
        sha = repo.commit("two", {"manifests/cm.json": config_map_yaml("plain", {"replicas": "3", "image": "v2"})})
        self.synced("ignore-plain", sha)
        self.assertEqual(self.config_map("ignore-plain", "plain")["data"], {"replicas": "3", "image": "v2"})

    def test_c_replace_and_prune_false(self):
        repo = self.repo()
        sha = repo.commit("three", {
            "manifests/replaced.json": config_map_yaml("replaced", {"a": "1"}),
            "manifests/kept.json": config_map_yaml("kept", {"a": "1"},
                                                   annotations={"argocd.argoproj.io/sync-options": "Prune=false"}),
            "manifests/gone.json": config_map_yaml("gone", {"a": "1"})})
        self.application("options", repo.url, sync_options=("CreateNamespace=true", "Replace=true"))
        self.synced("options", sha)
        managed = json.loads(self.kubectl("get", "configmap", "replaced", "-n", "options", "-o", "json",
                                          "--show-managed-fields").stdout)["metadata"].get("managedFields", [])
        self.assertTrue(managed, "no managedFields")
        # Replace=true: written with PUT (an Update), never a server-side Apply.
        self.assertNotIn("Apply", [m.get("operation") for m in managed], managed)
        sha = repo.commit("drop two", remove=("manifests/kept.json", "manifests/gone.json"))
        self.synced("options", sha)
        self.assertIsNone(self.config_map("options", "gone"))
        self.assertIsNotNone(self.config_map("options", "kept"))
        results = {r["name"]: r for r in self.status("options")["operationState"]["syncResult"]["resources"]}
        self.assertEqual(results["gone"]["status"], "Pruned")
        self.assertEqual(results["kept"]["status"], "PruneSkipped")
        self.assertIn("Prune=false", results["kept"]["message"])

    def test_d_fail_on_shared_resource(self):
        repo = self.repo()
        sha = repo.commit("shared", {"manifests/cm.json": config_map_yaml("shared", {"a": "1"}, namespace="shared")})
        self.application("owner", repo.url, namespace="shared")
        self.synced("owner", sha)
        self.application("intruder", repo.url, namespace="shared",
                         sync_options=("FailOnSharedResource=true",), sync_policy={"retry": {"limit": 0}})
        wait_for(lambda: self.phase("intruder") == "Failed", 20, 0.1, "the intruder's sync to fail")
        message = self.status("intruder")["operationState"]["message"]
        print("MEASURED shared resource: " + message)
        self.assertIn("is part of application owner", message)
        self.condition("intruder", "Failed last sync attempt", "SyncError")

    def test_e_validate_false_applies_what_strict_checks_refuse(self):
        repo = self.repo()
        text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loose\ndata:\n  a: '1'\nextra: field\n"
        sha = repo.commit("loose", {"manifests/cm.yaml": text})
        self.application("strict", repo.url)
        self.condition("strict", "extra")
        self.assertIsNone(self.config_map("strict", "loose"))
        self.application("loose", repo.url, sync_options=("CreateNamespace=true", "Validate=false"))
        self.synced("loose", sha)
        self.assertEqual(self.config_map("loose", "loose")["data"], {"a": "1"})

    def test_f_failed_syncs_are_retried_with_back_off(self):
        repo = self.repo()
        sha = repo.commit("late", {"manifests/cm.json": config_map_yaml("late", {"a": "1"}, namespace="late-ns")})
        # The object's namespace does not exist (and is not the one CreateNamespace makes).
        self.application("retried", repo.url, namespace="retried",
                         sync_policy={"retry": {"limit": 4, "backoff": {"duration": "1s", "factor": 2}}})
        wait_for(lambda: self.status("retried").get("operationState", {}).get("retryCount", 0) >= 1, 20, 0.1,
                 "a retry")
        op = self.status("retried")["operationState"]
        print("MEASURED retrying: phase %s, retryCount %s, %s" % (op["phase"], op["retryCount"], op["message"]))
        self.assertEqual(op["phase"], "Running")
        self.assertIn("Retrying attempt #", op["message"])
        self.kubectl("create", "namespace", "late-ns")
        t0 = time.monotonic()
        wait_for(lambda: self.phase("retried") == "Succeeded", 30, 0.1, "a retry to succeed")
        print("MEASURED namespace created -> retried sync Succeeded in %.1f s" % (time.monotonic() - t0))
        self.synced("retried", sha)
        self.assertIsNotNone(self.config_map("late-ns", "late"))
        # With the retries spent: Failed, a SyncError condition, and no more attempts.
        repo2 = self.repo()
        sha2 = repo2.commit("never", {"manifests/cm.json": config_map_yaml("x", {"a": "1"}, namespace="never-ns")})
        self.application("given-up", repo2.url, namespace="given-up",
                         sync_policy={"retry": {"limit": 1, "backoff": {"duration": "1s"}}})
        wait_for(lambda: (lambda s: s.get("operationState", {}).get("phase") == "Failed"
                          and s["operationState"].get("retryCount") == 1
                          and s["operationState"]["syncResult"]["revision"] == sha2)(self.status("given-up")),
                 30, 0.1, "the retries to be spent")
        finished = self.status("given-up")["operationState"]["finishedAt"]
        self.condition("given-up", "Failed last sync attempt to " + sha2, "SyncError")
        time.sleep(2)
        self.assertEqual(self.status("given-up")["operationState"]["finishedAt"], finished)

    def test_g_the_app_cli_creates_diffs_syncs_and_deletes(self):
        repo = self.repo()
        sha = repo.commit("cli", {
            "manifests/a.json": config_map_yaml("a", {"x": "1"}),
            "manifests/b.json": config_map_yaml("b", {"y": "1"}, annotations={"argocd.argoproj.io/sync-wave": "1"})})
        out = self.podium_app("create", "cli-app", "--repo", repo.url, "--path", "manifests", "--revision", "main",
                              "--dest-namespace", "cli-app", "--sync-option", "CreateNamespace=true",
                              "--sync-option", "PruneLast=true").stdout
        self.assertIn("application 'cli-app' created", out)
        self.addCleanup(lambda: self.kubectl("delete", "application", "cli-app", "-n", ARGO, check=False))
        app = json.loads(self.kubectl("get", "application", "cli-app", "-n", ARGO, "-o", "json").stdout)
        self.assertEqual(app["spec"]["syncPolicy"]["syncOptions"], ["CreateNamespace=true", "PruneLast=true"])
        self.assertNotIn("automated", app["spec"]["syncPolicy"])
        wait_for(lambda: self.status("cli-app").get("sync", {}).get("status") == "OutOfSync", 20, 0.1, "OutOfSync")
        again = self.podium_app("create", "cli-app", "--repo", repo.url, "--dest-namespace", "cli-app", check=False)
        self.assertEqual(again.returncode, 1)
        self.assertIn("already exists", again.stderr)
        # diff: nothing live yet, so each resource is all additions; exit 1 when something differs.
        d = self.podium_app("diff", "cli-app", check=False)
        self.assertEqual(d.returncode, 1, d.stderr)
        self.assertIn("===== /ConfigMap cli-app/a ======", d.stdout)
        self.assertIn("+  x: \"1\"", d.stdout)
        # sync shows each resource as it goes, waves in order, then the result.
        s = self.podium_app("sync", "cli-app")
        print("MEASURED podium app sync output:\n" + s.stdout)
        lines = s.stdout.splitlines()
        rows = [l for l in lines if " ConfigMap " in l]
        self.assertEqual([r.split()[3:5] for r in rows], [["a", "Synced"], ["b", "Synced"]], s.stdout)
        self.assertIn("Phase:         Succeeded", s.stdout)
        self.synced("cli-app", sha)
        self.assertEqual(self.podium_app("diff", "cli-app").stdout.strip(), "")
        # Drift shows as live against git.
        self.patch_cm("cli-app", "a", {"x": "changed"})
        d = self.podium_app("diff", "cli-app", check=False)
        self.assertEqual(d.returncode, 1)
        self.assertIn("-  x: changed", d.stdout)
        self.assertIn("+  x: \"1\"", d.stdout)
        # -f FILE and --upsert.
        path = os.path.join(repo.dir, "app.yaml")
        with open(path, "w") as f:
            f.write("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cli-file\nspec:\n"
                    "  project: default\n  source:\n    repoURL: %s\n    path: manifests\n    targetRevision: main\n"
                    "  destination:\n    server: https://kubernetes.default.svc\n    namespace: cli-file\n"
                    "  syncPolicy:\n    automated: {}\n    syncOptions: [CreateNamespace=true]\n" % repo.url)
        self.podium_app("create", "-f", path)
        self.synced("cli-file", sha)
        self.podium_app("create", "cli-file", "--repo", repo.url, "--path", "manifests", "--revision", "main",
                        "--dest-namespace", "cli-file", "--sync-policy", "automated", "--self-heal", "--upsert")
        self.assertTrue(json.loads(self.kubectl("get", "application", "cli-file", "-n", ARGO, "-o", "json").stdout)
                        ["spec"]["syncPolicy"]["automated"]["selfHeal"])
        # delete cascades by default (Argo CD's finalizer); --cascade=false leaves the resources.
        self.podium_app("delete", "cli-app", "--wait", "--timeout", "30")
        self.assertIsNone(self.config_map("cli-app", "a"))
        self.assertIsNone(self.config_map("cli-app", "b"))
        self.podium_app("delete", "cli-file", "--cascade=false", "--wait", "--timeout", "30")
        self.assertIsNotNone(self.config_map("cli-file", "a"))
        self.assertNotEqual(self.podium_app("diff", "cli-file", check=False).returncode, 0)

    def test_h_helm_charts(self):
        """A chart renders through `helm template` when helm is installed (Debian 12 does not
        package it); without it the app says so and nothing is applied."""
        repo = self.repo()
        sha = repo.commit("chart", {
            "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
            "chart/values.yaml": "greeting: hello\ncolor: red\n",
            "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
                                       "data:\n  greeting: {{ .Values.greeting | quote }}\n"
                                       "  color: {{ .Values.color | quote }}\n"})
        self.application("helm-app", repo.url, path="chart",
                         source_helm={"releaseName": "demo", "parameters": [{"name": "color", "value": "blue"}]})
        if shutil.which("helm") is None:
            message = self.condition("helm-app", "helm is not installed")
            print("MEASURED without helm: " + message)
            self.assertIn("chart/Chart.yaml", message)
            self.assertIsNone(self.config_map("helm-app", "demo-cm"))
            return
        self.synced("helm-app", sha)
        self.assertEqual(self.status("helm-app")["sourceType"], "Helm")
        self.assertEqual(self.config_map("helm-app", "demo-cm")["data"], {"greeting": "hello", "color": "blue"})


if __name__ == "__main__":
    import unittest
    unittest.main()
