"""The official Python client (Debian's python3-kubernetes) lists, creates, patches, deletes and
watches Deployments against `podium server`."""
import threading
import time
import unittest

from podium_e2e import ServerTestCase

try:
    from kubernetes import client, config, watch
except ImportError:  # pragma: no cover - the test command installs python3-kubernetes
    client = None


def deployment(name, replicas):
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels={"suite": "python"}),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": name}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.25")]))))


class PythonClientTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        if client is None:
            raise unittest.SkipTest("python3-kubernetes is not installed")
        super().setUpClass()
        cls.api_client = config.new_client_from_config(config_file=cls.server.kubeconfig)
        cls.apps = client.AppsV1Api(cls.api_client)
        cls.core = client.CoreV1Api(cls.api_client)
        cls.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))

    @classmethod
    def tearDownClass(cls):
        cls.api_client.close()
        super().tearDownClass()

    def test_create_list_patch_delete_watch(self):
        events = []
        started = threading.Event()

        def watcher():
            w = watch.Watch()
            started.set()
            for ev in w.stream(self.apps.list_namespaced_deployment, "py", timeout_seconds=20):
                events.append((ev["type"], ev["object"].metadata.name, ev["object"].spec.replicas))
                if ev["type"] == "DELETED":
                    w.stop()

        t = threading.Thread(target=watcher, daemon=True)
        t.start()
        started.wait()
        time.sleep(0.3)

        created = self.apps.create_namespaced_deployment("py", deployment("pyweb", 2))
        self.assertEqual(created.metadata.name, "pyweb")
        self.assertEqual(created.spec.strategy.type, "RollingUpdate")
        self.assertEqual(created.metadata.generation, 1)

        listed = self.apps.list_namespaced_deployment("py", label_selector="suite=python")
        self.assertEqual([d.metadata.name for d in listed.items], ["pyweb"])
        self.assertTrue(listed.metadata.resource_version)

        patched = self.apps.patch_namespaced_deployment("pyweb", "py", {"spec": {"replicas": 4}})
        self.assertEqual(patched.spec.replicas, 4)
        self.assertEqual(patched.metadata.generation, 2)

        scale = self.apps.read_namespaced_deployment_scale("pyweb", "py")
        self.assertEqual(scale.spec.replicas, 4)

        # Read-modify-write, retried on 409 as the controllers also write this object.
        for _ in range(10):
            read = self.apps.read_namespaced_deployment("pyweb", "py")
            read.spec.replicas = 3
            try:
                replaced = self.apps.replace_namespaced_deployment("pyweb", "py", read)
                break
            except client.exceptions.ApiException as e:
                self.assertEqual(e.status, 409)
        self.assertEqual(replaced.spec.replicas, 3)

        self.apps.delete_namespaced_deployment("pyweb", "py")
        t.join(20)
        self.assertFalse(t.is_alive(), "watch did not see the deletion")
        kinds = [e[0] for e in events]
        self.assertEqual(kinds[0], "ADDED")
        self.assertEqual(kinds[-1], "DELETED")
        self.assertEqual(set(kinds[1:-1]), {"MODIFIED"})
        # The spec changes arrive in order (the controller's status writes come in between).
        replicas = [e[2] for e in events]
        deduped = [r for i, r in enumerate(replicas) if i == 0 or r != replicas[i - 1]]
        self.assertEqual(deduped, [2, 4, 3])

        with self.assertRaises(client.exceptions.ApiException) as ctx:
            self.apps.read_namespaced_deployment("pyweb", "py")
        self.assertEqual(ctx.exception.status, 404)

    def test_conflict_is_409(self):
        self.apps.create_namespaced_deployment("py", deployment("conflict", 1))
        d = self.apps.read_namespaced_deployment("conflict", "py")
        self.apps.patch_namespaced_deployment("conflict", "py", {"metadata": {"labels": {"touched": "yes"}}})
        d.spec.replicas = 5  # still carries the old resourceVersion
        with self.assertRaises(client.exceptions.ApiException) as ctx:
            self.apps.replace_namespaced_deployment("conflict", "py", d)
        self.assertEqual(ctx.exception.status, 409)
        self.apps.delete_namespaced_deployment("conflict", "py")

    def test_a_daemonset_reads_back_with_its_status(self):
        # The client's model requires the DaemonSet status' counts once a status is there.
        ds = client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name="pyagent"),
            spec=client.V1DaemonSetSpec(
                selector=client.V1LabelSelector(match_labels={"app": "pyagent"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "pyagent"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="a", image="busybox")]))))
        self.apps.create_namespaced_daemon_set("py", ds)
        deadline = time.monotonic() + 20
        while True:
            got = self.apps.read_namespaced_daemon_set("pyagent", "py")
            if got.status is not None and got.status.observed_generation == 1:
                break
            self.assertLess(time.monotonic(), deadline, "the DaemonSet's status was not written")
            time.sleep(0.1)
        nodes = len(self.core.list_node().items)
        self.assertEqual(got.status.desired_number_scheduled, nodes)
        self.assertEqual(got.status.number_misscheduled, 0)
        self.assertIsNotNone(got.status.current_number_scheduled)
        self.assertIsNotNone(got.status.number_ready)
        listed = self.apps.list_namespaced_daemon_set("py")
        self.assertEqual([d.metadata.name for d in listed.items], ["pyagent"])
        self.apps.delete_namespaced_daemon_set("pyagent", "py")


if __name__ == "__main__":
    unittest.main()
