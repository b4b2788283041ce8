"""Malformed and hostile input gets a Kubernetes Status with the right code and a message that
names the problem; the server keeps running and keeps what it had accepted."""
import json
import os
import socket
import ssl
import unittest

from podium_e2e import ServerTestCase

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


class BadInputTest(ServerTestCase):
    def status(self, method, path, body, content_type="application/json", headers=None):
        code, obj = self.server.request_json(method, path, body, content_type, headers)
        if isinstance(obj, dict) and obj.get("kind") == "Status":
            self.assertEqual(obj["code"], code)
            self.assertEqual(obj["status"], "Failure")
        return code, obj

    def setUp(self):
        # An object accepted before the bad input must survive it.
        code, _ = self.server.request_json("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"a": "1"}})
        self.assertIn(code, (201, 409))

    def tearDown(self):
        code, obj = self.server.request_json("GET", CM + "/keep")
        self.assertEqual(code, 200)
        self.assertEqual(obj["data"], {"a": "1"})
        self.assertTrue(self.server.alive())

    def test_malformed_json(self):
        code, obj = self.status("POST", CM, '{"apiVersion":"v1","kind":')
        self.assertEqual(code, 400)
        self.assertEqual(obj["reason"], "BadRequest")
        self.assertIn("parse error", obj["message"])

    def test_malformed_yaml(self):
        code, obj = self.status("POST", CM, "apiVersion: v1\nkind: [ConfigMap\n", "application/yaml")
        self.assertEqual(code, 400)
        self.assertIn("line", obj["message"])

    def test_deeply_nested_json(self):
        code, obj = self.status("POST", CM, "[" * 100000 + "]" * 100000)
        self.assertEqual(code, 400)

    def test_unknown_field_strict(self):
        code, obj = self.status("POST", CM + "?fieldValidation=Strict",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {}})
        self.assertEqual(code, 400)
        self.assertEqual(obj["message"], 'strict decoding error: unknown field "spec"')

    def test_duplicate_field_strict(self):
        code, obj = self.status("POST", CM + "?fieldValidation=Strict",
                                '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":{},"data":{}}')
        self.assertEqual(code, 400)
        self.assertIn('duplicate field "data"', obj["message"])

    def test_unknown_field_warn_is_a_warning(self):
        code, hdrs, body = self.server.request("POST", CM + "?fieldValidation=Warn",
                                               json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "warned"}, "bogus": 1}),
                                               {"Content-Type": "application/json"})
        self.assertEqual(code, 201)
        self.assertIn('unknown field \\"bogus\\"', hdrs.get("Warning", ""))
        self.server.request("DELETE", CM + "/warned")

    def test_invalid_name_and_labels(self):
        code, obj = self.status("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "Not_Valid", "labels": {"ok": "bad value!"}}})
        self.assertEqual(code, 422)
        self.assertEqual(obj["reason"], "Invalid")
        fields = {c["field"] for c in obj["details"]["causes"]}
        self.assertEqual(fields, {"metadata.name", "metadata.labels"})
        self.assertIn('ConfigMap "Not_Valid" is invalid', obj["message"])

    def test_missing_required_fields(self):
        code, obj = self.status("POST", DEPLOY, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                                                 "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}})
        self.assertEqual(code, 422)
        fields = [c["field"] for c in obj["details"]["causes"]]
        self.assertIn("spec.selector", fields)
        self.assertIn("spec.template.spec.containers[0].image", fields)
        code, obj = self.status("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
        self.assertEqual(code, 422)
        self.assertIn("metadata.name: Required value", obj["message"])

    def test_wrong_types(self):
        code, obj = self.status("POST", DEPLOY, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                                                 "spec": {"replicas": "three"}})
        self.assertEqual(code, 400)
        self.assertIn("spec.replicas", obj["message"])
        code, obj = self.status("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": "oops"})
        self.assertEqual(code, 400)

    def test_wrong_kind(self):
        code, obj = self.status("POST", CM, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
        self.assertEqual(code, 400)
        self.assertIn("does not match the expected API version", obj["message"])
        code, obj = self.status("POST", CM, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
        self.assertEqual(code, 400)
        self.assertIn("kind", obj["message"])

    def test_unknown_resource_and_kind(self):
        code, obj = self.status("GET", "/api/v1/namespaces/default/widgets", None)
        self.assertEqual(code, 404)
        code, obj = self.status("GET", "/apis/nope.example.com/v1/things", None)
        self.assertEqual(code, 404)

    def test_unsupported_media_types(self):
        code, obj = self.status("POST", CM, "hello", "text/plain")
        self.assertEqual(code, 415)
        code, obj = self.status("PATCH", CM + "/keep", "{}", "application/x-unknown")
        self.assertEqual(code, 415)
        code, obj = self.status("PATCH", "/apis/networking.istio.io/v1/namespaces/default/virtualservices/x", "{}",
                                "application/strategic-merge-patch+json")
        self.assertIn(code, (404, 415))

    def test_bad_protobuf(self):
        for body in [b"", b"k8s\x00", b"k8s\x00\x0a\xff\xff", b"garbage", os.urandom(512)]:
            code, obj = self.status("POST", CM, body, "application/vnd.kubernetes.protobuf")
            self.assertEqual(code, 400, body)

    def test_bad_patches(self):
        code, obj = self.status("PATCH", CM + "/keep", "[{]", "application/json-patch+json")
        self.assertEqual(code, 400)
        code, obj = self.status("PATCH", CM + "/keep", '[{"op":"remove","path":"/nope/deeper"}]', "application/json-patch+json")
        self.assertEqual(code, 422)
        code, obj = self.status("PATCH", CM + "/keep", '{"data":', "application/merge-patch+json")
        self.assertEqual(code, 400)
        code, obj = self.status("PATCH", CM + "/keep", "{}: [", "application/apply-patch+yaml")
        self.assertEqual(code, 400)
        code, obj = self.status("PATCH", CM + "/keep?fieldManager=x", '{"apiVersion":"v1","kind":"Secret"}', "application/apply-patch+yaml")
        self.assertEqual(code, 400)

    def test_bad_query_parameters(self):
        self.assertEqual(self.status("GET", CM + "?labelSelector=a%20in%20(", None)[0], 400)
        self.assertEqual(self.status("GET", CM + "?fieldSelector=spec.nope%3Dx", None)[0], 400)
        self.assertEqual(self.status("GET", CM + "?watch=true&resourceVersion=abc", None)[0], 400)
        self.assertEqual(self.status("POST", CM + "?dryRun=Some", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})[0], 400)
        self.assertEqual(self.status("POST", CM + "?fieldValidation=Loose", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})[0], 400)

    def test_too_old_resource_version_is_410_or_resumes(self):
        code, obj = self.status("GET", CM + "?watch=true&resourceVersion=999999999&timeoutSeconds=1", None)
        self.assertEqual(code, 504)

    def test_unauthenticated_and_wrong_token(self):
        code, hdrs, body = self.server.request("GET", "/api/v1/namespaces", client_cert=False)
        self.assertEqual(code, 401)
        self.assertEqual(json.loads(body)["reason"], "Unauthorized")
        code, _, _ = self.server.request("GET", "/api/v1/namespaces", client_cert=False,
                                         headers={"Authorization": "Bearer wrong"})
        self.assertEqual(code, 401)
        code, _, _ = self.server.request("GET", "/api/v1/namespaces", client_cert=False,
                                         headers={"Authorization": "Bearer " + self.server.admin_token()})
        self.assertEqual(code, 200)
        code, _, body = self.server.request("GET", "/readyz", client_cert=False)
        self.assertEqual((code, body), (200, b"ok"))

    def raw(self, payload):
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data_dir, "tls", "ca.crt"))
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                tls.sendall(payload)
                data = b""
                try:
                    while True:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except (ssl.SSLError, ConnectionResetError, socket.timeout):
                    pass
                return data

    def test_malformed_http(self):
        self.assertTrue(self.raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400"))
        self.assertTrue(self.raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n").startswith(b"HTTP/1.1 400"))
        self.assertTrue(self.raw(b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").startswith(b"HTTP/1.1 400"))
        big = b"POST " + CM.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n"
        self.assertTrue(self.raw(big).startswith(b"HTTP/1.1 413"))
        # Plain HTTP on the TLS port, and a connection that just closes.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
            s.sendall(b"GET /version HTTP/1.1\r\n\r\n")
            s.recv(100)
        socket.create_connection(("127.0.0.1", self.server.port), timeout=5).close()


if __name__ == "__main__":
    unittest.main()
