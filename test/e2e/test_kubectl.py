"""The stock kubectl (v1.32) against `podium server`: every command the API issue lists."""
import json
import os
import time
import unittest

from podium_e2e import TESTDATA, ServerTestCase

SEED = os.path.join(TESTDATA, "seed-deployment.yaml")


class KubectlTest(ServerTestCase):
    def setUp(self):
        ns = self.kubectl("get", "namespace", "my-apps", check=False)
        if ns.returncode != 0:
            self.kubectl("create", "namespace", "my-apps")

    def apply_seed(self):
        return self.kubectl("apply", "-f", SEED)

    def test_01_version_reports_1_32(self):
        out = self.kubectl("version", "-o", "json").stdout
        v = json.loads(out)
        self.assertEqual(v["serverVersion"]["major"], "1")
        self.assertEqual(v["serverVersion"]["minor"], "32")
        self.assertTrue(v["serverVersion"]["gitVersion"].startswith("v1.32."))

    def test_02_api_resources(self):
        out = self.kubectl("api-resources").stdout
        for line in ["deployments", "deploy", "apps/v1", "virtualservices", "networking.istio.io/v1",
                     "applications", "argoproj.io/v1alpha1", "customresourcedefinitions", "horizontalpodautoscalers",
                     "endpointslices", "leases", "ingressclasses", "peerauthentications", "authorizationpolicies"]:
            self.assertIn(line, out)
        wide = self.kubectl("api-resources", "-o", "wide").stdout
        self.assertIn("create,delete,deletecollection,get,list,patch,update,watch", wide)

    def test_03_create_namespace_uses_protobuf(self):
        out = self.kubectl("create", "namespace", "proto-ns").stdout
        self.assertIn("namespace/proto-ns created", out)
        ns = json.loads(self.kubectl("get", "ns", "proto-ns", "-o", "json").stdout)
        self.assertEqual(ns["status"]["phase"], "Active")
        self.assertEqual(ns["spec"]["finalizers"], ["kubernetes"])
        self.assertEqual(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "proto-ns")

    def test_04_apply_seed_unchanged_then_configured(self):
        out = self.apply_seed().stdout
        self.assertRegex(out, r"deployment.apps/golang-app (created|unchanged|configured)")
        self.assertRegex(out, r"service/golang-app-service (created|unchanged|configured)")
        again = self.apply_seed().stdout
        self.assertIn("deployment.apps/golang-app unchanged", again)
        self.assertIn("service/golang-app-service unchanged", again)
        with open(SEED) as f:
            edited = f.read().replace("replicas: 3", "replicas: 4")
        changed = self.kubectl("apply", "-f", "-", input=edited).stdout
        self.assertIn("deployment.apps/golang-app configured", changed)
        self.assertIn("service/golang-app-service unchanged", changed)
        d = json.loads(self.kubectl("get", "deploy", "golang-app", "-n", "my-apps", "-o", "json").stdout)
        self.assertEqual(d["spec"]["replicas"], 4)
        self.assertEqual(d["metadata"]["generation"], 2)
        self.apply_seed()

    def test_05_server_side_apply_conflict(self):
        self.apply_seed()
        self.kubectl("scale", "deploy", "golang-app", "-n", "my-apps", "--replicas=7")
        p = self.kubectl("apply", "--server-side", "-f", SEED, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Apply failed with 1 conflict: conflict with", p.stderr)
        self.assertIn(".spec.replicas", p.stderr)
        self.assertIn("--force-conflicts", p.stderr)
        ok = self.kubectl("apply", "--server-side", "--force-conflicts", "-f", SEED).stdout
        self.assertIn("deployment.apps/golang-app serverside-applied", ok)
        d = json.loads(self.kubectl("get", "deploy", "golang-app", "-n", "my-apps", "-o", "json", "--show-managed-fields").stdout)
        self.assertEqual(d["spec"]["replicas"], 3)
        managers = {(m["manager"], m["operation"]) for m in d["metadata"]["managedFields"]}
        self.assertIn(("kubectl", "Apply"), managers)
        again = self.kubectl("apply", "--server-side", "-f", SEED).stdout
        self.assertIn("serverside-applied", again)

    def test_06_get_output_formats(self):
        self.apply_seed()
        out = self.kubectl("get", "deploy,svc", "-n", "my-apps").stdout
        self.assertRegex(out, r"NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE")
        self.assertRegex(out, r"deployment.apps/golang-app\s+\d/3\s+\d\s+\d\s+\d+s")
        self.assertRegex(out, r"NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE")
        self.assertRegex(out, r"service/golang-app-service\s+ClusterIP\s+10\.43\.\d+\.\d+\s+<none>\s+80/TCP")
        wide = self.kubectl("get", "deploy,svc", "-n", "my-apps", "-o", "wide").stdout
        self.assertRegex(wide, r"CONTAINERS\s+IMAGES\s+SELECTOR")
        self.assertIn("my-docker-hub/golang-app:v1.0.0", wide)
        self.assertIn("app=golang-app", wide)
        y = self.kubectl("get", "deploy", "golang-app", "-n", "my-apps", "-o", "yaml").stdout
        self.assertIn("kind: Deployment", y)
        self.assertIn("progressDeadlineSeconds: 600", y)
        self.assertNotIn("managedFields", y)
        j = json.loads(self.kubectl("get", "deploy,svc", "-n", "my-apps", "-o", "json").stdout)
        self.assertEqual(j["kind"], "List")
        self.assertEqual({i["kind"] for i in j["items"]}, {"Deployment", "Service"})
        all_ns = self.kubectl("get", "svc", "-A").stdout
        self.assertRegex(all_ns, r"NAMESPACE\s+NAME")
        self.assertRegex(all_ns, r"default\s+kubernetes\s+ClusterIP\s+10\.43\.0\.1")
        self.assertRegex(all_ns, r"my-apps\s+golang-app-service")
        self.kubectl("label", "deploy", "golang-app", "-n", "my-apps", "tier=web", "--overwrite")
        labels = self.kubectl("get", "deploy", "-n", "my-apps", "--show-labels").stdout
        self.assertIn("tier=web", labels)

    def test_07_sort_by(self):
        for name in ["zeta", "alpha", "mid"]:
            self.kubectl("create", "configmap", "sort-" + name, "-n", "my-apps", "--from-literal=k=" + name, check=False)
        out = self.kubectl("get", "cm", "-n", "my-apps", "--sort-by=.metadata.name", "-o", "name").stdout.split()
        names = [n for n in out if n.startswith("configmap/sort-")]
        self.assertEqual(names, ["configmap/sort-alpha", "configmap/sort-mid", "configmap/sort-zeta"])
        table = self.kubectl("get", "cm", "-n", "my-apps", "--sort-by=.data.k").stdout
        self.assertLess(table.index("sort-alpha"), table.index("sort-zeta"))
        by_time = self.kubectl("get", "svc", "-A", "--sort-by=.metadata.creationTimestamp").stdout
        self.assertLess(by_time.index("kubernetes"), by_time.index("golang-app-service") if "golang-app-service" in by_time else len(by_time))

    def test_08_get_watch_prints_changes(self):
        self.apply_seed()
        w = self.server.kubectl_popen("get", "deploy", "golang-app", "-n", "my-apps", "-w")
        try:
            first = w.stdout.readline()
            self.assertIn("NAME", first)
            self.assertIn("golang-app", w.stdout.readline())
            start = time.monotonic()
            self.kubectl("scale", "deploy", "golang-app", "-n", "my-apps", "--replicas=5")
            line = w.stdout.readline()
            self.assertRegex(line, r"golang-app\s+0/5")
            self.assertLess(time.monotonic() - start, 5)
        finally:
            w.kill()
            w.communicate()
        self.apply_seed()

    def test_09_scale_label_annotate(self):
        self.apply_seed()
        self.assertIn("scaled", self.kubectl("scale", "deploy/golang-app", "-n", "my-apps", "--replicas=2").stdout)
        self.assertIn("labeled", self.kubectl("label", "deploy", "golang-app", "-n", "my-apps", "team=a", "--overwrite").stdout)
        self.assertIn("annotated", self.kubectl("annotate", "deploy", "golang-app", "-n", "my-apps", "note=hi", "--overwrite").stdout)
        d = json.loads(self.kubectl("get", "deploy", "golang-app", "-n", "my-apps", "-o", "json").stdout)
        self.assertEqual(d["spec"]["replicas"], 2)
        self.assertEqual(d["metadata"]["labels"]["team"], "a")
        self.assertEqual(d["metadata"]["annotations"]["note"], "hi")
        self.kubectl("label", "deploy", "golang-app", "-n", "my-apps", "team-")
        d = json.loads(self.kubectl("get", "deploy", "golang-app", "-n", "my-apps", "-o", "json").stdout)
        self.assertNotIn("team", d["metadata"].get("labels", {}))
        self.apply_seed()

    def test_10_patch_all_types(self):
        self.apply_seed()
        ns = ["-n", "my-apps"]
        self.kubectl("patch", "deploy", "golang-app", *ns, "-p",
                     '{"spec":{"template":{"spec":{"containers":[{"name":"golang-app","image":"my-docker-hub/golang-app:v2.0.0"}]}}}}')
        self.kubectl("patch", "deploy", "golang-app", *ns, "--type=merge", "-p", '{"spec":{"minReadySeconds":5}}')
        self.kubectl("patch", "deploy", "golang-app", *ns, "--type=json", "-p",
                     '[{"op":"replace","path":"/spec/replicas","value":2},{"op":"add","path":"/metadata/labels","value":{"p":"json"}}]')
        d = json.loads(self.kubectl("get", "deploy", "golang-app", *ns, "-o", "json").stdout)
        c = d["spec"]["template"]["spec"]["containers"]
        self.assertEqual(len(c), 1)
        self.assertEqual(c[0]["image"], "my-docker-hub/golang-app:v2.0.0")
        self.assertEqual(c[0]["env"], [{"name": "APP_VERSION", "value": "v1.0.0"}])
        self.assertEqual(d["spec"]["minReadySeconds"], 5)
        self.assertEqual(d["spec"]["replicas"], 2)
        self.assertEqual(d["metadata"]["labels"], {"p": "json"})
        failed = self.kubectl("patch", "deploy", "golang-app", *ns, "--type=json", "-p",
                              '[{"op":"test","path":"/spec/replicas","value":99}]', check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.kubectl("patch", "deploy", "golang-app", *ns, "--type=json", "-p",
                     '[{"op":"remove","path":"/spec/minReadySeconds"}]')
        self.apply_seed()

    def test_11_replace(self):
        self.apply_seed()
        obj = json.loads(self.kubectl("get", "svc", "golang-app-service", "-n", "my-apps", "-o", "json").stdout)
        obj["metadata"].setdefault("labels", {})["replaced"] = "yes"
        out = self.kubectl("replace", "-f", "-", input=json.dumps(obj)).stdout
        self.assertIn("service/golang-app-service replaced", out)
        obj["metadata"]["labels"]["replaced"] = "stale"
        stale = self.kubectl("replace", "-f", "-", input=json.dumps(obj), check=False)
        self.assertNotEqual(stale.returncode, 0)
        self.assertIn("the object has been modified", stale.stderr)

    def test_12_describe(self):
        self.apply_seed()
        out = self.kubectl("describe", "deploy", "golang-app", "-n", "my-apps").stdout
        self.assertRegex(out, r"Name:\s+golang-app")
        self.assertRegex(out, r"Replicas:\s+3 desired")
        self.assertRegex(out, r"RollingUpdateStrategy:\s+25% max unavailable, 25% max surge")
        self.assertRegex(out, r"APP_VERSION:\s+v1.0.0")
        svc = self.kubectl("describe", "svc", "golang-app-service", "-n", "my-apps").stdout
        self.assertRegex(svc, r"Port:\s+<unset>\s+80/TCP")
        self.assertRegex(svc, r"Session Affinity:\s+None")

    def test_13_create_generators(self):
        ns = ["-n", "my-apps"]
        self.assertIn("configmap/gen-cm created", self.kubectl("create", "configmap", "gen-cm", *ns, "--from-literal=a=b").stdout)
        self.assertIn("secret/gen-secret created", self.kubectl("create", "secret", "generic", "gen-secret", *ns, "--from-literal=k=v").stdout)
        self.assertIn("deployment.apps/gen-dep created", self.kubectl("create", "deployment", "gen-dep", *ns, "--image=nginx:1.25", "--replicas=2", "--port=80").stdout)
        self.assertIn("job.batch/gen-job created", self.kubectl("create", "job", "gen-job", *ns, "--image=busybox").stdout)
        self.assertIn("service/gen-svc created", self.kubectl("create", "service", "clusterip", "gen-svc", *ns, "--tcp=80:8080").stdout)
        s = json.loads(self.kubectl("get", "secret", "gen-secret", *ns, "-o", "json").stdout)
        self.assertEqual(s["data"]["k"], "dg==")
        self.assertEqual(s["type"], "Opaque")
        d = json.loads(self.kubectl("get", "deploy", "gen-dep", *ns, "-o", "json").stdout)
        self.assertEqual(d["spec"]["replicas"], 2)
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 80)
        svc = json.loads(self.kubectl("get", "svc", "gen-svc", *ns, "-o", "json").stdout)
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], 8080)
        for kind, name in [("cm", "gen-cm"), ("secret", "gen-secret"), ("deploy", "gen-dep"), ("job", "gen-job"), ("svc", "gen-svc")]:
            self.kubectl("delete", kind, name, *ns)

    def test_14_get_all(self):
        self.apply_seed()
        out = self.kubectl("get", "all", "-n", "my-apps").stdout
        self.assertIn("service/golang-app-service", out)
        self.assertIn("deployment.apps/golang-app", out)

    def test_15_delete_returns_once_gone(self):
        self.kubectl("create", "configmap", "doomed", "-n", "my-apps")
        out = self.kubectl("delete", "configmap", "doomed", "-n", "my-apps").stdout
        self.assertIn('configmap "doomed" deleted', out)
        gone = self.kubectl("get", "configmap", "doomed", "-n", "my-apps", check=False)
        self.assertIn('configmaps "doomed" not found', gone.stderr)
        self.apply_seed()
        out = self.kubectl("delete", "-f", SEED).stdout
        self.assertIn('deployment.apps "golang-app" deleted', out)
        self.assertIn('service "golang-app-service" deleted', out)
        self.assertIn("No resources found", self.kubectl("get", "deploy,svc", "-n", "my-apps").stderr)
        self.apply_seed()

    def test_16_errors_read_like_kubernetes(self):
        p = self.kubectl("get", "deploy", "nope", "-n", "my-apps", check=False)
        self.assertIn('Error from server (NotFound): deployments.apps "nope" not found', p.stderr)
        bad = self.kubectl("create", "configmap", "Bad_Name", "-n", "my-apps", check=False)
        self.assertIn("Invalid", bad.stderr)
        self.assertIn("metadata.name", bad.stderr)
        unknown = self.kubectl("apply", "-f", "-", check=False, input=(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: my-apps\ndta:\n  a: b\n"))
        self.assertIn('unknown field "dta"', unknown.stderr)

    def test_17_explain_uses_openapi(self):
        out = self.kubectl("explain", "deployment.spec.replicas").stdout
        self.assertIn("replicas", out)
        self.assertIn("<integer>", out)


if __name__ == "__main__":
    unittest.main()
