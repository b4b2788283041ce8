"""Custom resources: the built-in Argo CD and Istio CRDs, the seed's VirtualService applied
unchanged at every served version, and a user's own CRD end to end."""
import json
import os
import unittest

from podium_e2e import TESTDATA, ServerTestCase, wait_for

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer}
              replicas: {type: integer}
              tags: {type: array, items: {type: string}, x-kubernetes-list-type: set}
          status:
            type: object
            properties:
              replicas: {type: integer}
"""


class CustomResourcesTest(ServerTestCase):
    def test_builtin_crds_are_installed(self):
        out = self.kubectl("get", "crd").stdout
        for name in ["applications.argoproj.io", "appprojects.argoproj.io", "virtualservices.networking.istio.io",
                     "destinationrules.networking.istio.io", "gateways.networking.istio.io",
                     "serviceentries.networking.istio.io", "peerauthentications.security.istio.io",
                     "authorizationpolicies.security.istio.io"]:
            self.assertIn(name, out)
        crd = json.loads(self.kubectl("get", "crd", "virtualservices.networking.istio.io", "-o", "json").stdout)
        self.assertEqual(sorted(v["name"] for v in crd["spec"]["versions"]), ["v1", "v1alpha3", "v1beta1"])
        self.assertEqual({c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"], "True")

    def test_seed_virtual_service_unchanged(self):
        self.kubectl("create", "namespace", "mesh")
        out = self.kubectl("apply", "-n", "mesh", "-f", os.path.join(TESTDATA, "seed-virtual-service.yaml")).stdout
        self.assertIn("virtualservice.networking.istio.io/golang-app-route created", out)
        table = self.kubectl("get", "vs", "-n", "mesh").stdout
        self.assertRegex(table, r"NAME\s+GATEWAYS\s+HOSTS\s+AGE")
        self.assertRegex(table, r'golang-app-route\s+\["my-gateway"\]\s+\["golang-app.example.com"\]')
        for version in ["v1alpha3", "v1beta1", "v1"]:
            obj = json.loads(self.kubectl("get", "virtualservices.%s.networking.istio.io" % version, "golang-app-route",
                                          "-n", "mesh", "-o", "json").stdout)
            self.assertEqual(obj["apiVersion"], "networking.istio.io/" + version)
            self.assertEqual(obj["spec"]["http"][0]["route"][1]["weight"], 10)
        again = self.kubectl("apply", "-n", "mesh", "-f", os.path.join(TESTDATA, "seed-virtual-service.yaml")).stdout
        self.assertIn("unchanged", again)
        with open(os.path.join(TESTDATA, "seed-virtual-service.yaml")) as f:
            shifted = f.read().replace("weight: 90", "weight: 80").replace("weight: 10", "weight: 20")
        changed = self.kubectl("apply", "-n", "mesh", "-f", "-", input=shifted).stdout
        self.assertIn("virtualservice.networking.istio.io/golang-app-route configured", changed)
        weights = self.kubectl("get", "vs", "golang-app-route", "-n", "mesh", "-o", "jsonpath={.spec.http[0].route[*].weight}").stdout
        self.assertEqual(weights, "80 20")
        typo = self.kubectl("apply", "-n", "mesh", "-f", "-", check=False, input=(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: typo\n"
            "spec:\n  hostz: [a]\n"))
        self.assertNotEqual(typo.returncode, 0)
        self.assertIn('unknown field "spec.hostz"', typo.stderr)

    def test_argo_application_columns(self):
        self.kubectl("create", "namespace", "argocd", check=False)
        app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": "guestbook", "namespace": "argocd"},
               "spec": {"project": "default",
                        "source": {"repoURL": "https://example.invalid/repo.git", "path": "guestbook", "targetRevision": "HEAD"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}}
        self.kubectl("apply", "-f", "-", input=json.dumps(app))
        out = self.kubectl("get", "applications", "-n", "argocd").stdout
        self.assertRegex(out, r"NAME\s+SYNC STATUS\s+HEALTH STATUS")
        bad = dict(app, spec={"project": "default"})
        bad["metadata"] = {"name": "broken", "namespace": "argocd"}
        p = self.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
        self.assertIn("spec.destination: Required value", p.stderr)

    def test_user_crd_lifecycle(self):
        self.kubectl("apply", "-f", "-", input=WIDGET_CRD)
        wait_for(lambda: "widgets" in self.kubectl("api-resources", "--api-group=example.com").stdout, 10, what="discovery")
        self.kubectl("apply", "-f", "-", input=(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\n"
            "spec:\n  size: 3\n  replicas: 1\n  tags: [a]\n"))
        out = self.kubectl("get", "wd", "-n", "default").stdout
        self.assertRegex(out, r"NAME\s+SIZE\s+AGE")
        self.assertRegex(out, r"w1\s+3\s+\d+s")
        self.kubectl("scale", "widget", "w1", "-n", "default", "--replicas=4")
        w = json.loads(self.kubectl("get", "widget", "w1", "-n", "default", "-o", "json").stdout)
        self.assertEqual(w["spec"]["replicas"], 4)
        self.assertEqual(w["metadata"]["generation"], 2)
        self.kubectl("patch", "widget", "w1", "-n", "default", "--type=merge", "-p", '{"spec":{"size":5}}')
        missing = self.kubectl("apply", "-f", "-", check=False, input=(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\n  namespace: default\nspec:\n  replicas: 1\n"))
        self.assertIn("spec.size: Required value", missing.stderr)
        wrong = self.kubectl("apply", "-f", "-", check=False, input=(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\n  namespace: default\nspec:\n  size: big\n"))
        self.assertIn("spec.size", wrong.stderr)
        ssa = self.kubectl("apply", "--server-side", "-f", "-", input=(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w4\n  namespace: default\nspec:\n  size: 1\n  tags: [x]\n")).stdout
        self.assertIn("serverside-applied", ssa)
        self.kubectl("delete", "crd", "widgets.example.com")
        gone = self.kubectl("get", "widgets.example.com", "-n", "default", check=False)
        self.assertNotEqual(gone.returncode, 0)


if __name__ == "__main__":
    unittest.main()
