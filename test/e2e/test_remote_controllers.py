"""The control loops run unchanged against a remote API server: `podium server --no-controllers`
serves the API, and `podium controllers` (another process, over HTTPS with the admin token and
the cluster CA) runs the controllers, the scheduler and GitOps against it, as
kube-controller-manager and kube-scheduler run beside kube-apiserver. It is given two server
URLs, the first of which nothing answers: every request moves on to the second."""

import json
import os
import shutil
import subprocess
import tempfile

from gitops_e2e import ARGO, ApplicationHelpers, WorkRepo
from podium_e2e import PODIUM, ServerTestCase, free_port, wait_for


class RemoteControllersTest(ApplicationHelpers, ServerTestCase):
    server_args = ("--no-controllers",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tls = os.path.join(cls.server.data_dir, "tls")
        cls.controllers_dir = tempfile.mkdtemp(prefix="podium-e2e-controllers-")
        cls.addClassCleanup(shutil.rmtree, cls.controllers_dir, True)
        cls.controllers_log = open(os.path.join(cls.controllers_dir, "controllers.log"), "wb")
        cls.controllers = subprocess.Popen(
            [PODIUM, "controllers", "--server",
             "https://127.0.0.1:%d,https://127.0.0.1:%d" % (free_port(), cls.server.port),
             "--token", os.path.join(tls, "admin.token"), "--ca-file", os.path.join(tls, "ca.crt"),
             "--data-dir", cls.controllers_dir, "--gitops-poll-interval", "500"],
            stdout=cls.controllers_log, stderr=subprocess.STDOUT)
        cls.server.kubectl("create", "namespace", ARGO)

    @classmethod
    def tearDownClass(cls):
        cls.controllers.terminate()
        try:
            cls.controllers.wait(30)
        except subprocess.TimeoutExpired:
            cls.controllers.kill()
            cls.controllers.wait()
        cls.controllers_log.close()
        super().tearDownClass()

    def get(self, *args):
        p = self.kubectl("get", *args, "-o", "json", "--show-managed-fields", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def test_a_the_server_alone_runs_no_controllers(self):
        self.assertIn("runs no controllers, scheduler or GitOps", self.server.read_log())
        self.assertIsNone(self.controllers.poll(), "podium controllers exited")

    def test_b_deployment_to_bound_pods_through_the_remote_loops(self):
        self.kubectl("create", "namespace", "remote")
        # A Ready node for the remote scheduler to bind to (no agent runs here).
        self.kubectl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-r"}}))
        status = {"status": {"conditions": [{"type": "Ready", "status": "True"}],
                             "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}
        self.kubectl("patch", "node", "node-r", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        self.kubectl("create", "deployment", "web", "-n", "remote", "--image=example/web:1", "--replicas=2")
        rs = wait_for(lambda: (self.get("replicasets", "-n", "remote") or {}).get("items"), 20,
                      0.1, "the remote deployment controller's ReplicaSet")
        self.assertEqual(rs[0]["metadata"]["ownerReferences"][0]["name"], "web")
        pods = wait_for(lambda: [p for p in self.get("pods", "-n", "remote")["items"]
                                 if p["spec"].get("nodeName") == "node-r"] or None,
                        20, 0.1, "pods bound by the remote scheduler")
        self.assertEqual(len(wait_for(lambda: (lambda ps: ps if len(ps) == 2 else None)(
            [p for p in self.get("pods", "-n", "remote")["items"] if p["spec"].get("nodeName")]), 20, 0.1,
            "both pods bound")), 2)
        self.assertEqual(pods[0]["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet")
        # The remote manager wrote as itself.
        managers = {m["manager"] for m in rs[0]["metadata"].get("managedFields", [])}
        self.assertIn("podium-controller-manager", managers)
        # Cascading delete through the remote garbage collector.
        self.kubectl("delete", "deployment", "web", "-n", "remote", "--cascade=background")
        wait_for(lambda: not self.get("replicasets", "-n", "remote")["items"], 20, 0.1,
                 "the ReplicaSet collected")
        # Bound pods wait for their node to stop them (none runs here): they are being deleted.
        wait_for(lambda: all(p["metadata"].get("deletionTimestamp")
                             for p in self.get("pods", "-n", "remote")["items"]), 20, 0.1,
                 "the pods collected")

    def test_c_an_application_syncs_through_the_remote_gitops(self):
        repo = WorkRepo()
        self.addCleanup(repo.close)
        sha = repo.commit("config", {"manifests/cm.yaml": json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
             "data": {"colour": "blue"}}) + "\n"})
        self.application("remote-app", repo.url)
        self.synced("remote-app", sha)
        cm = self.get("configmap", "settings", "-n", "remote-app")
        self.assertEqual(cm["data"], {"colour": "blue"})
        managers = {m["manager"] for m in cm["metadata"].get("managedFields", [])}
        self.assertIn("argocd-controller", managers)
        sha2 = repo.commit("config", {"manifests/cm.yaml": json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
             "data": {"colour": "green"}}) + "\n"})
        self.synced("remote-app", sha2)
        self.assertEqual(self.config_map("remote-app", "settings")["data"], {"colour": "green"})


if __name__ == "__main__":
    import unittest
    unittest.main()
