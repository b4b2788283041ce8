"""Admission webhooks: a validating webhook refuses a labelled ConfigMap with its message and a
mutating one adds a label, both real HTTPS servers (this test's, on loopback, with a CA of its
own given as caBundle); failurePolicy decides what an unreachable webhook means."""
import base64
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from podium_e2e import ServerTestCase


def make_certs(directory):
    """A CA and a serving certificate for 127.0.0.1 signed by it (openssl's CLI)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=directory)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "1", "-subj", "/CN=webhook-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "tls.crt", "-days", "1", "-extfile", "san.ext")
    with open(os.path.join(directory, "ca.crt"), "rb") as f:
        return base64.b64encode(f.read()).decode()


class Webhooks(http.server.BaseHTTPRequestHandler):
    reviews = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Webhooks.reviews.append((self.path, review))
        req = review["request"]
        labels = ((req["object"] or {}).get("metadata") or {}).get("labels") or {}
        resp = {"uid": req["uid"], "allowed": True}
        if self.path == "/protect":  # DELETE: the object is the old one
            resp.update(allowed=False, status={"message": "%s is protected" % req["oldObject"]["metadata"]["name"]})
        elif self.path == "/noexec":  # CONNECT: the object is PodExecOptions
            resp.update(allowed=False, status={"code": 403, "message": "no exec into %s (%s)" % (
                req["name"], " ".join(req["object"]["command"]))})
        elif self.path == "/validate" and labels.get("reject") == "yes":
            resp.update(allowed=False, status={"code": 403, "message": "configmaps labelled reject=yes are not allowed"})
        elif self.path == "/mutate":
            patch = ([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}] if labels else
                     [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
            resp.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode(),
                        warnings=["mutated by the test's webhook"])
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def webhook(name, url, ca, failure="Fail", resources=("configmaps",), operations=("CREATE", "UPDATE")):
    return {"name": name, "clientConfig": {"url": url, "caBundle": ca},
            "rules": [{"operations": list(operations), "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": list(resources)}],
            "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
            "failurePolicy": failure, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5}


class AdmissionWebhookTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="podium-webhook-")
        cls.ca = make_certs(cls.dir)
        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhooks)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(cls.dir, "tls.crt"), os.path.join(cls.dir, "tls.key"))
        cls.httpd.socket = ctx.wrap_socket(cls.httpd.socket, server_side=True)
        cls.thread = threading.Thread(target=cls.httpd.serve_forever, daemon=True)
        cls.thread.start()
        cls.base = "https://127.0.0.1:%d" % cls.httpd.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.httpd.server_close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    def apply(self, obj, check=True):
        return self.kubectl("apply", "-f", "-", input=json.dumps(obj), check=check)

    def configmap(self, name, labels, ns="hooked"):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
                "data": {"a": "b"}}

    def test_validating_and_mutating_webhooks(self):
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hooked", "labels": {"webhooks": "on"}}})
        self.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": "deny-labelled"},
                    "webhooks": [webhook("deny.podium.test", self.base + "/validate", self.ca)]})
        self.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "add-label"},
                    "webhooks": [webhook("label.podium.test", self.base + "/mutate", self.ca)]})
        got = json.loads(self.kubectl("get", "validatingwebhookconfiguration", "deny-labelled", "-o", "json").stdout)
        self.assertEqual(got["webhooks"][0]["matchPolicy"], "Equivalent")  # defaulted

        refused = self.apply(self.configmap("bad", {"reject": "yes"}), check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn('admission webhook "deny.podium.test" denied the request: '
                      'configmaps labelled reject=yes are not allowed', refused.stderr)
        self.assertNotEqual(self.kubectl("get", "configmap", "bad", "-n", "hooked", check=False).returncode, 0)

        made = self.apply(self.configmap("good", {"app": "x"}))
        self.assertIn("mutated by the test's webhook", made.stderr)  # the webhook's warning
        cm = json.loads(self.kubectl("get", "configmap", "good", "-n", "hooked", "-o", "json").stdout)
        self.assertEqual(cm["metadata"]["labels"], {"app": "x", "mutated": "yes"})
        # The validating webhook saw the mutated object; the review is Kubernetes' shape.
        path, review = [r for r in Webhooks.reviews if r[0] == "/validate"][-1]
        req = review["request"]
        self.assertEqual(review["apiVersion"], "admission.k8s.io/v1")
        self.assertEqual(req["operation"], "CREATE")
        self.assertEqual(req["resource"], {"group": "", "version": "v1", "resource": "configmaps"})
        self.assertEqual(req["namespace"], "hooked")
        self.assertEqual(req["object"]["metadata"]["labels"]["mutated"], "yes")
        # An update is sent with its old object.
        self.kubectl("label", "configmap", "good", "-n", "hooked", "tier=web")
        path, review = Webhooks.reviews[-1]
        self.assertEqual(review["request"]["operation"], "UPDATE")
        self.assertEqual(review["request"]["oldObject"]["metadata"]["labels"].get("tier"), None)
        # Namespaces the selector leaves out are not sent.
        before = len(Webhooks.reviews)
        self.apply(self.configmap("elsewhere", {"reject": "yes"}, ns="default"))
        self.assertEqual(len(Webhooks.reviews), before)

    def test_delete_and_connect_reviewed(self):
        """A validating webhook keeps labelled ConfigMaps from being deleted; a mutating one refuses
        kubectl exec into a pod (CONNECT pods/exec), before any node is asked."""
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hooked3", "labels": {"webhooks": "on"}}})
        protect = webhook("protect.podium.test", self.base + "/protect", self.ca, operations=["DELETE"])
        protect["objectSelector"] = {"matchLabels": {"protected": "yes"}}
        self.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": "protect"}, "webhooks": [protect]})
        self.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "noexec"},
                    "webhooks": [webhook("noexec.podium.test", self.base + "/noexec", self.ca,
                                         resources=["pods/exec"], operations=["CONNECT"])]})
        self.apply(self.configmap("keep", {"protected": "yes"}, ns="hooked3"))
        self.apply(self.configmap("scrap", {"protected": "no"}, ns="hooked3"))
        refused = self.kubectl("delete", "configmap", "keep", "-n", "hooked3", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn('admission webhook "protect.podium.test" denied the request: keep is protected', refused.stderr)
        self.kubectl("get", "configmap", "keep", "-n", "hooked3")  # still there
        self.kubectl("delete", "configmap", "scrap", "-n", "hooked3")  # not selected: deleted
        path, review = [r for r in Webhooks.reviews if r[0] == "/protect"][-1]
        self.assertEqual(review["request"]["operation"], "DELETE")
        self.assertIsNone(review["request"]["object"])
        self.assertEqual(review["request"]["options"]["kind"], "DeleteOptions")

        self.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "hooked3"},
                    "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "busybox"}]}})
        refused = self.kubectl("exec", "-n", "hooked3", "p", "--", "cat", "/etc/hostname", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("no exec into p (cat /etc/hostname)", refused.stderr)
        path, review = Webhooks.reviews[-1]
        self.assertEqual((path, review["request"]["operation"], review["request"]["subResource"]),
                         ("/noexec", "CONNECT", "exec"))
        self.assertEqual(review["request"]["object"]["kind"], "PodExecOptions")
        self.kubectl("delete", "mutatingwebhookconfiguration", "noexec")
        self.kubectl("delete", "validatingwebhookconfiguration", "protect")
        self.kubectl("delete", "configmap", "keep", "-n", "hooked3")

    def test_failure_policy_of_an_unreachable_webhook(self):
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hooked2", "labels": {"webhooks": "on"}}})
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            dead = "https://127.0.0.1:%d/validate" % s.getsockname()[1]
        self.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": "dead"},
                    "webhooks": [webhook("dead.podium.test", dead, self.ca, "Fail", ["secrets"]),
                                 webhook("ignored.podium.test", dead, self.ca, "Ignore", ["services"])]})
        failed = self.kubectl("create", "secret", "generic", "s", "-n", "hooked2", "--from-literal=a=b", check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn('Internal error occurred: failed calling webhook "dead.podium.test"', failed.stderr)
        self.kubectl("create", "service", "clusterip", "svc", "-n", "hooked2", "--tcp=80:80")  # Ignore: allowed
        self.kubectl("delete", "validatingwebhookconfiguration", "dead")
        self.kubectl("create", "secret", "generic", "s", "-n", "hooked2", "--from-literal=a=b")
        # A configuration the server could not act on is refused, not accepted and ignored.
        bad = webhook("cel.podium.test", dead, self.ca)
        bad["matchConditions"] = [{"name": "x", "expression": "true"}]
        refused = self.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                              "metadata": {"name": "cel"}, "webhooks": [bad]}, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("webhooks[0].matchConditions: Forbidden", refused.stderr)


if __name__ == "__main__":
    unittest.main()
