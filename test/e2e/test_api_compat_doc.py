"""Keeps docs/api-compatibility.md true: its resource table must match what the server serves,
and every verb it marks *tested* is exercised here on a minimal object of that kind."""
import http.client
import json
import os
import unittest

from podium_e2e import ServerTestCase, wait_for

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "api-compatibility.md")
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]

POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "x"}}
ISTIO_SPEC = {
    "virtualservices": {"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"}}]}]},
    "destinationrules": {"host": "a", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    "gateways": {"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]},
    "serviceentries": {"hosts": ["ext.example.com"], "location": "MESH_EXTERNAL", "resolution": "DNS"},
    "peerauthentications": {"mtls": {"mode": "STRICT"}},
    "authorizationpolicies": {"action": "ALLOW", "rules": [{}]},
    "telemetries": {"tracing": [{"randomSamplingPercentage": 10}]},
}

# A webhook whose rules select nothing the test makes.
WEBHOOK = {"name": "compat.podium.test", "clientConfig": {"url": "https://127.0.0.1:1/"}, "sideEffects": "None",
           "admissionReviewVersions": ["v1"],
           "rules": [{"operations": ["CREATE"], "apiGroups": ["none.example.com"], "apiVersions": ["v1"],
                      "resources": ["nothing"]}]}

# A minimal valid body per resource (kind, apiVersion and name are filled in).
FIXTURES = {
    "namespaces": {},
    "pods": {"spec": POD_SPEC},
    "services": {"spec": {"ports": [{"port": 80}]}},
    "endpoints": {"subsets": [{"addresses": [{"ip": "10.42.0.9"}], "ports": [{"port": 80}]}]},
    "configmaps": {"data": {"a": "b"}},
    "secrets": {"stringData": {"a": "b"}},
    "serviceaccounts": {},
    "events": {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "compat"}, "reason": "Test", "message": "m"},
    "nodes": {},
    "persistentvolumeclaims": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    "persistentvolumes": {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                   "hostPath": {"path": "/tmp/podium-compat-pv"}}},
    "storageclasses": {"provisioner": "example.com/none"},
    "validatingwebhookconfigurations": {"webhooks": [WEBHOOK]},
    "mutatingwebhookconfigurations": {"webhooks": [WEBHOOK]},
    "podtemplates": {"template": TEMPLATE},
    "replicationcontrollers": {"spec": {"selector": {"app": "x"}, "template": TEMPLATE}},
    "deployments": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "replicasets": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "statefulsets": {"spec": {"selector": SELECTOR, "template": TEMPLATE, "serviceName": "x"}},
    "daemonsets": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "controllerrevisions": {"revision": 1, "data": {"spec": {}}},
    "jobs": {"spec": {"template": {"spec": dict(POD_SPEC, restartPolicy="Never")}}},
    "cronjobs": {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": dict(POD_SPEC, restartPolicy="OnFailure")}}}}},
    "endpointslices": {"addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.9"]}], "ports": [{"port": 80}]},
    "ingresses": {"spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                  "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}},
    "ingressclasses": {"spec": {"controller": "podium.dev/ingress"}},
    "networkpolicies": {"spec": {"podSelector": {}}},
    "leases": {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
    "horizontalpodautoscalers": {"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "maxReplicas": 3}},
    "poddisruptionbudgets": {"spec": {"minAvailable": 1, "selector": SELECTOR}},
    "roles": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    "clusterroles": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    "rolebindings": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                     "subjects": [{"kind": "User", "name": "u"}]},
    "clusterrolebindings": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
                            "subjects": [{"kind": "User", "name": "u"}]},
    "customresourcedefinitions": None,  # built per name below
    "applications": {"spec": {"project": "default", "source": {"repoURL": "file:///x", "path": "."},
                              "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}},
    "appprojects": {"spec": {"sourceRepos": ["*"]}},
    "analysistemplates": {"spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://127.0.0.1:1/"}}}]}},
    "clusteranalysistemplates": {"spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://127.0.0.1:1/"}}}]}},
    "analysisruns": {"spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://127.0.0.1:1/"}}}]}},
    "rollouts": {"spec": {"selector": SELECTOR, "template": TEMPLATE,
                          "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}},
    "imagebuilds": {"spec": {"source": {"repoURL": "file:///nowhere", "branch": "main"}, "image": "me/app",
                             "writeBack": {"branch": "deploy", "path": "app.yaml"}}},
}
FIXTURES.update({k: {"spec": v} for k, v in ISTIO_SPEC.items()})


def parse_doc():
    """The resource table's rows, and the aggregated APIs' table as (group, version, resource)."""
    rows, aggregated = [], []
    with open(DOC) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[0].count("/") == 1 and "." in cells[0] and cells[2] != "resource":
                group, version = cells[0].split("/")
                aggregated.append((group, version, cells[2]))
            if len(cells) == 14 and cells[2] and cells[2] != "resource" and not cells[2].startswith("-"):
                gvs = [g.strip() for g in cells[0].split(",")]
                group = gvs[0].split("/")[0] if "/" in gvs[0] else ""
                versions = [g.split("/")[-1] for g in gvs]
                rows.append({"group": group, "versions": versions, "kind": cells[1], "resource": cells[2],
                             "verbs": dict(zip(VERBS, cells[3:11])), "status": cells[11], "scale": cells[12],
                             "notes": cells[13]})
    return rows, aggregated


class ApiCompatDocTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rows, cls.aggregated = parse_doc()
        code, disc = cls.server.request_json("GET", "/apis", headers={
            "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
        code2, core = cls.server.request_json("GET", "/api", headers={
            "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
        cls.served = {}
        for item in core["items"] + disc["items"]:
            for v in item["versions"]:
                for r in v["resources"]:
                    cls.served[(item["metadata"]["name"], v["version"], r["resource"])] = r
        cls.server.request_json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "compat"}})

    def test_doc_matches_discovery(self):
        documented = set()
        for row in self.rows:
            for v in row["versions"]:
                documented.add((row["group"], v, row["resource"]))
        documented.update(self.aggregated)
        self.assertEqual(sorted(set(self.served) - documented), [], "served but not in docs/api-compatibility.md")
        self.assertEqual(sorted(documented - set(self.served)), [], "documented but not served")
        for row in self.rows:
            for v in row["versions"]:
                r = self.served[(row["group"], v, row["resource"])]
                self.assertEqual(r["responseKind"]["kind"], row["kind"])
                subs = {s["subresource"] for s in r.get("subresources", [])}
                self.assertEqual("status" in subs, row["status"] != "n/a", row["resource"])
                self.assertEqual("scale" in subs, row["scale"] != "n/a", row["resource"])
                for verb, state in row["verbs"].items():
                    if state in ("tested", "partial"):
                        self.assertIn(verb, r["verbs"], "%s %s" % (row["resource"], verb))

    def test_aggregated_apis_answer_lists(self):
        for group, version, resource in self.aggregated:
            path = "/apis/%s/%s/" % (group, version)
            if group == "mesh.podium.io":
                path += resource
                kind = "MeshGraph" if resource == "graph" else "TraceList"
            elif group == "metrics.k8s.io":
                path += resource if resource == "nodes" else "namespaces/compat/" + resource
                kind = "NodeMetricsList" if resource == "nodes" else "PodMetricsList"
            else:
                path += "namespaces/compat/%s/*/istio_requests_per_second" % resource
                kind = "MetricValueList"
            code, body = self.server.request_json("GET", path)
            self.assertEqual(code, 200, body)
            self.assertEqual(body["kind"], kind)
            code, body = self.server.request_json("DELETE", path)
            self.assertEqual(code, 405, body)

    def first_watch_event(self, path):
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.server.ssl_context(), timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            return json.loads(resp.readline())
        finally:
            conn.close()

    def base(self, group, version, resource, namespaced):
        prefix = "/api/" + version if group == "" else "/apis/%s/%s" % (group, version)
        return prefix + ("/namespaces/compat/" if namespaced else "/") + resource

    def body(self, row, group, version, name):
        if row["resource"] == "customresourcedefinitions":
            return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": "%ss.compat.example.com" % name},
                    "spec": {"group": "compat.example.com", "scope": "Namespaced",
                             "names": {"plural": name + "s", "kind": name.capitalize()},
                             "versions": [{"name": "v1", "served": True, "storage": True,
                                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}, \
                   "%ss.compat.example.com" % name
        if row["resource"] == "apiservices":  # named <version>.<group>; Local (no service)
            return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": {"name": name + ".compat.example.com"},
                    "spec": {"group": "compat.example.com", "version": name, "groupPriorityMinimum": 1000,
                             "versionPriority": 15}}, name + ".compat.example.com"
        obj = json.loads(json.dumps(FIXTURES[row["resource"]]))
        obj.update({"apiVersion": version if group == "" else group + "/" + version, "kind": row["kind"], "metadata": {"name": name}})
        return obj, name

    def test_tested_verbs_work(self):
        for row in self.rows:
            for version in row["versions"]:
                with self.subTest(resource=row["resource"], version=version):
                    self.exercise(row, row["group"], version)

    def exercise(self, row, group, version):
        served = self.served[(group, version, row["resource"])]
        namespaced = served["scope"] == "Namespaced"
        base = self.base(group, version, row["resource"], namespaced)
        verbs = row["verbs"]
        short = "cx" + version.replace("alpha", "a").replace("beta", "b") + row["resource"][:20].rstrip("s")
        body, name = self.body(row, group, version, short)
        code, headers, raw = self.server.request("POST", base, body, {"Content-Type": "application/json"})
        created = json.loads(raw)
        self.assertEqual(code, 201, created)
        self.assertEqual(created["metadata"]["name"], name)
        # A kind stored but not acted on says so on create (kubectl prints the Warning header).
        warning = headers.get("Warning", "")
        if "stored only" in row["notes"]:
            self.assertIn("%s is stored but not acted on by this server" % row["kind"], warning)
        else:
            self.assertNotIn("not acted on", warning)
        if verbs["get"] == "tested":
            code, got = self.server.request_json("GET", base + "/" + name)
            self.assertEqual(code, 200, got)
            self.assertEqual(got["metadata"]["uid"], created["metadata"]["uid"])
        if verbs["list"] == "tested":
            code, lst = self.server.request_json("GET", base)
            self.assertEqual(code, 200)
            self.assertIn(name, [i["metadata"]["name"] for i in lst["items"]])
        if verbs["watch"] == "tested":
            first = self.first_watch_event(base + "?watch=true&timeoutSeconds=30&fieldSelector=metadata.name%3D" + name)
            self.assertEqual(first["type"], "ADDED")
            self.assertEqual(first["object"]["metadata"]["name"], name)
        if verbs["update"] == "tested":
            # Controllers may write the object between our read and our write (a 409): read
            # again and retry, as client-go's RetryOnConflict does.
            for _ in range(5):
                code, cur = self.server.request_json("GET", base + "/" + name)
                cur["metadata"].setdefault("labels", {})["updated"] = "yes"
                code, upd = self.server.request_json("PUT", base + "/" + name, cur)
                if code != 409:
                    break
            self.assertEqual(code, 200, upd)
            self.assertEqual(upd["metadata"]["labels"]["updated"], "yes")
        if verbs["patch"] == "tested":
            code, p = self.server.request_json("PATCH", base + "/" + name, {"metadata": {"annotations": {"patched": "yes"}}},
                                               "application/merge-patch+json")
            self.assertEqual(code, 200, p)
            self.assertEqual(p["metadata"]["annotations"]["patched"], "yes")
        if row["status"] == "tested":
            code, s = self.server.request_json("GET", base + "/" + name + "/status")
            self.assertEqual(code, 200, s)
            code, s = self.server.request_json("PATCH", base + "/" + name + "/status", {"status": {"observedGeneration": 1}} if row["resource"] not in ("namespaces", "nodes", "pods", "services", "persistentvolumeclaims", "persistentvolumes", "customresourcedefinitions") else {"metadata": {}},
                                               "application/merge-patch+json")
            self.assertEqual(code, 200, s)
        if row["scale"] == "tested":
            code, sc = self.server.request_json("GET", base + "/" + name + "/scale")
            self.assertEqual(code, 200, sc)
            self.assertEqual(sc["kind"], "Scale")
            code, sc = self.server.request_json("PATCH", base + "/" + name + "/scale", {"spec": {"replicas": 2}}, "application/merge-patch+json")
            self.assertEqual(code, 200, sc)
            self.assertEqual(sc["spec"]["replicas"], 2)
        if verbs["delete"] in ("tested", "partial"):
            code, d = self.server.request_json("DELETE", base + "/" + name)
            self.assertEqual(code, 200, d)
            # Namespaces finish deleting once the namespace controller has emptied them.
            wait_for(lambda: self.server.request_json("GET", base + "/" + name)[0] == 404, 15,
                     what="%s/%s to be gone" % (row["resource"], name))
        if verbs["deletecollection"] == "tested":
            body2, name2 = self.body(row, group, version, short + "b")
            body2["metadata"]["labels"] = {"compat": "bulk"}
            code, made = self.server.request_json("POST", base, body2)
            self.assertEqual(code, 201, made)
            code, d = self.server.request_json("DELETE", base + "?labelSelector=compat%3Dbulk")
            self.assertEqual(code, 200, d)
            # Claims and volumes go once the volume controller drops their protection finalizer.
            wait_for(lambda: self.server.request_json("GET", base + "/" + name2)[0] == 404, 15,
                     what="%s/%s to be gone" % (row["resource"], name2))


if __name__ == "__main__":
    unittest.main()
