"""Zero trust in the mesh, end to end with the real binary as root (issue 5): workload identities
from the mesh CA, mutual TLS between node proxies (seen on the wire with tshark), PeerAuthentication,
AuthorizationPolicies enforced where the traffic arrives, bad certificates refused and counted, and
certificates rotating under load.

The cluster runs with 60-second workload certificates, renewed at half their life."""

import collections
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from podium_e2e import BUSYBOX, PODIUM, Capture, NodeTestCase, ServerTestCase, is_ready, recv_all, wait_for
import test_mesh  # noqa: E402 - its MeshTest is not imported by name, or unittest would run it here

NS = "my-apps"
BRIDGE = "podium0"
APP_PORT = 8080


def spiffe(ns, sa, domain="cluster.local"):
    return "spiffe://%s/ns/%s/sa/%s" % (domain, ns, sa)


class ZeroTrustTest(NodeTestCase):
    server_args = ("--workload-cert-ttl", "60")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            test_mesh.MeshTest.deploy_canary.__func__(cls)
            k = cls.server.kubectl
            k("create", "serviceaccount", "frontend", "-n", NS)
            pods = [("frontend", "frontend", {}), ("other", "default", {}),
                    ("outsider", "default", {"istio.io/dataplane-mode": "none"})]
            for name, sa, labels in pods:
                k("run", name, "-n", NS, "--image", BUSYBOX, "--restart=Never",
                  "--overrides", json.dumps({"apiVersion": "v1", "metadata": {"labels": labels},
                                             "spec": {"serviceAccountName": sa}}),
                  "--", "sleep", "3600")
            for name, _, _ in pods:
                wait_for(lambda n=name: (lambda p: p and is_ready(p))(cls.get_pod(n)), 60, 0.2, name)
        except Exception:
            cls.server.close()
            raise

    @classmethod
    def get_pod(cls, name):
        p = cls.server.kubectl("get", "pod", name, "-n", NS, "-o", "json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    # --- helpers ---------------------------------------------------------------------------
    def app_pod_ip(self):
        return self.pods(NS, "app=golang-app,version=v1")[0]["status"]["podIP"]

    def counter(self, name, **labels):
        total = 0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{"):
                continue
            if all('%s="%s"' % kv in line for kv in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def call_from(self, pod, url="http://golang-app-service/", method="GET"):
        """The status a busybox pod's wget sees (or the error text)."""
        args = ["exec", "-n", NS, pod, "--", "wget", "-S", "-q", "-O-"]
        if method == "POST":
            args.append("--post-data=x")
        p = self.kubectl(*args, url, check=False)
        m = re.search(r"HTTP/1.1 (\d+)", p.stderr + p.stdout)
        return int(m.group(1)) if m else p.stderr.strip()

    def plain_get(self, ip, port=APP_PORT):
        """A plaintext request from the node (outside the mesh) straight to a pod: status or error."""
        try:
            c = http.client.HTTPConnection(ip, port, timeout=5)
            c.request("GET", "/")
            status = c.getresponse().status
            c.close()
            return status
        except (OSError, http.client.HTTPException) as e:
            return type(e).__name__

    def apply(self, *docs):
        self.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))

    def peer_auth(self, name, mode, selector=None, ports=None):
        spec = {"mtls": {"mode": mode}}
        if selector:
            spec["selector"] = {"matchLabels": selector}
        if ports:
            spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
        doc = {"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
               "metadata": {"name": name, "namespace": NS}, "spec": spec}
        self.apply(doc)
        self.addCleanup(lambda: self.kubectl("delete", "peerauthentication", name, "-n", NS,
                                             "--ignore-not-found", check=False))

    # Certificates the test makes itself, signed by the mesh's root (its key is in the data dir).
    def mesh_root(self):
        d = os.path.join(self.server.data_dir, "tls", "mesh")
        with open(os.path.join(d, "root-cert.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(d, "root-key.pem"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        return cert, key

    def make_cert(self, uri, issuer=None, not_after=None, not_before=None):
        """A workload certificate (PEM files in a temp dir) for `uri`; self-signed without `issuer`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test")])
        issuer_cert, issuer_key = issuer if issuer else (None, key)
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(issuer_cert.subject if issuer_cert else subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(not_before or now - datetime.timedelta(minutes=5))
             .not_valid_after(not_after or now + datetime.timedelta(hours=1))
             .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), False))
        cert = b.sign(issuer_key, hashes.SHA256())
        d = tempfile.mkdtemp(prefix="podium-zt-")
        self.addCleanup(shutil.rmtree, d, True)
        paths = (os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        with open(paths[0], "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(paths[1], "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return paths

    def mesh_client(self, ip, cert=None, root=True):
        """A TLS 1.3 connection speaking the mesh's ALPN to a pod, as a peer proxy would."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["istio"])
        if cert:
            ctx.load_cert_chain(*cert)
        s = socket.create_connection((ip, APP_PORT), timeout=5)
        return ctx.wrap_socket(s)

    def mesh_get(self, ip, cert, method="GET", path="/"):
        """An HTTP/1.1 request through a mesh connection: the status, or the error's name."""
        try:
            s = self.mesh_client(ip, cert)
            s.sendall(("%s %s HTTP/1.1\r\nHost: golang-app-service\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n" % (method, path)).encode())
            data = recv_all(s)
            s.close()
            m = re.match(rb"HTTP/1.1 (\d+)", data)
            return int(m.group(1)) if m else "no answer"
        except (OSError, ssl.SSLError) as e:
            return type(e).__name__

    # --- the tests --------------------------------------------------------------------------
    def test_a_the_pod_network_carries_only_tls13(self):
        # A client with an identity of its own: its proxy has no pooled connection yet, so the
        # capture sees handshakes as well as traffic.
        self.kubectl("create", "serviceaccount", "capture", "-n", NS)
        self.kubectl("run", "capture", "-n", NS, "--image", BUSYBOX, "--restart=Never", "--overrides",
                     json.dumps({"apiVersion": "v1", "spec": {"serviceAccountName": "capture"}}), "--", "sleep", "3600")
        self.addCleanup(lambda: self.kubectl("delete", "pod", "capture", "-n", NS, "--wait=false", check=False))
        wait_for(lambda: (lambda p: p and is_ready(p))(self.get_pod("capture")), 60, 0.2, "the capture pod")
        cap = Capture(BRIDGE, "tcp", APP_PORT)
        self.addCleanup(cap.close)
        with cap:
            for _ in range(10):
                self.assertEqual(self.call_from("capture"), 200)
            self.assertEqual(self.call_from("capture", "http://golang-app-service.my-apps.svc.cluster.local/"),
                             200)
            self.assertEqual(self.call_from("other"), 200)
        fields = cap.fields
        payloads = cap.payloads()
        self.assertGreater(len(payloads), 1000)
        # No plaintext HTTP anywhere on the pod network: not the request, not the answer.
        for plain in (b"GET /", b"HTTP/1.1", b"Hello World", b"golang-app-service"):
            self.assertNotIn(plain, payloads)
        self.assertEqual(fields("http", "frame.number"), [])
        # Every handshake is TLS 1.3 (0x0304) and offers the mesh's ALPN.
        hellos = fields("tls.handshake.type == 1", "tls.handshake.extensions_alpn_str")
        self.assertTrue(hellos)
        self.assertTrue(all("istio" in h[0] for h in hellos), hellos)
        servers = fields("tls.handshake.type == 2", "tls.handshake.extensions.supported_version")
        self.assertTrue(servers)
        self.assertTrue(all(s[0] == "0x0304" for s in servers), servers)
        # TLS 1.3 hides the content type: application data travels as opaque type 23.
        records = fields("tls.record", "tls.record.opaque_type")
        self.assertTrue(any("23" in r[0] for r in records if r))
        print("MEASURED capture on %s: %d TLS 1.3 handshakes, %d payload bytes, no plaintext HTTP"
              % (BRIDGE, len(servers), len(payloads)))
        # TLS 1.3 encrypts certificates on the wire; the one the app's pod presents, read as a
        # peer reads it, names its service account (B's SPIFFE ID).
        out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (self.app_pod_ip(), APP_PORT),
                              "-alpn", "istio", "-tls1_3"], input="", capture_output=True, text=True,
                             timeout=20).stdout
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S).group(0)
        cert = x509.load_pem_x509_certificate(pem.encode())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(sans.get_values_for_type(x509.UniformResourceIdentifier), [spiffe(NS, "default")])
        left = cert.not_valid_after - datetime.datetime.utcnow()  # naive UTC in this cryptography
        self.assertLessEqual(left.total_seconds(), 61)  # a 60-second certificate
        # And metrics say so.
        self.assertIn('connection_security_policy="mutual_tls"', self.metrics())

    def test_b_strict_and_permissive(self):
        ip = self.app_pod_ip()
        # PERMISSIVE, Istio's default: plaintext from outside the mesh gets through.
        self.assertEqual(self.plain_get(ip), 200)
        self.assertEqual(self.call_from("outsider", "http://%s:%d/" % (ip, APP_PORT)), 200)
        self.peer_auth("strict", "STRICT")
        wait_for(lambda: self.plain_get(ip) != 200, 10, 0.2, "STRICT to apply")
        refused = self.counter("podium_mtls_rejected_total", reason="plaintext")
        self.assertNotEqual(self.plain_get(ip), 200)
        self.assertNotEqual(self.call_from("outsider", "http://%s:%d/" % (ip, APP_PORT)), 200)
        self.assertGreater(self.counter("podium_mtls_rejected_total", reason="plaintext"), refused)
        # Mesh traffic goes on: from a pod, and through the ingress gateway.
        self.assertEqual(self.call_from("other"), 200)
        c = http.client.HTTPConnection("127.0.0.1", self.server.ingress_port, timeout=10)
        c.request("GET", "/", headers={"Host": test_mesh.HOST})
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        # A workload's port-level setting overrides its namespace's.
        self.peer_auth("app-port", "STRICT", {"app": "golang-app"}, {APP_PORT: "PERMISSIVE"})
        wait_for(lambda: self.plain_get(ip) == 200, 10, 0.2, "the port-level PERMISSIVE")
        self.kubectl("delete", "peerauthentication", "app-port", "-n", NS)
        wait_for(lambda: self.plain_get(ip) != 200, 10, 0.2, "STRICT again")
        # PERMISSIVE for the namespace: plaintext is let through again, mesh traffic too.
        self.peer_auth("strict", "PERMISSIVE")
        wait_for(lambda: self.plain_get(ip) == 200, 10, 0.2, "PERMISSIVE to apply")
        self.assertEqual(self.call_from("other"), 200)

    def test_c_authorization_on_certificate_identities(self):
        ip = self.app_pod_ip()
        root = self.mesh_root()
        frontend = self.make_cert(spiffe(NS, "frontend"), root)
        other = self.make_cert(spiffe(NS, "other"), root)
        self.assertEqual(self.mesh_get(ip, other), 200)
        self.apply({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                    "metadata": {"name": "only-frontend", "namespace": NS},
                    "spec": {"selector": {"matchLabels": {"app": "golang-app"}}, "action": "ALLOW",
                             "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/my-apps/sa/frontend"]}}]}]}})
        self.addCleanup(lambda: self.kubectl("delete", "authorizationpolicy", "only-frontend", "no-admin-post",
                                             "-n", NS, "--ignore-not-found", check=False))
        wait_for(lambda: self.call_from("other") == 403, 10, 0.2, "the ALLOW policy")
        self.assertEqual(self.call_from("frontend"), 200)
        # At the destination, on what the certificate proves: another identity and a plaintext
        # client get Envoy's 403, the frontend's certificate gets through.
        self.assertEqual(self.mesh_get(ip, other), 403)
        self.assertEqual(self.plain_get(ip), 403)
        self.assertEqual(self.mesh_get(ip, frontend), 200)
        # The access log names the proven identities: the pod's inbound line has the certificate's.
        def log_has(pattern):
            with open(os.path.join(self.server.data_dir, "node", "proxy", "proxy.log")) as f:
                return re.search(pattern, f.read())
        wait_for(lambda: log_has(r'"spiffe://cluster.local/ns/my-apps/sa/frontend" '), 5, 0.2, "the access log")
        with open(os.path.join(self.server.data_dir, "node", "proxy", "proxy.log")) as f:
            log = f.read()
        self.assertRegex(log, r'inbound\|8080\|\| "spiffe://cluster.local/ns/my-apps/sa/frontend" '
                              r'"spiffe://cluster.local/ns/my-apps/sa/default" mutual_tls')
        self.assertRegex(log, r'outbound\|80\|[^|]*\|golang-app-service.my-apps.svc.cluster.local '
                              r'"spiffe://cluster.local/ns/my-apps/sa/frontend" '
                              r'"spiffe://cluster.local/ns/my-apps/sa/default" mutual_tls')
        # A DENY on POST /admin overrides the ALLOW, at both ends.
        self.apply({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                    "metadata": {"name": "no-admin-post", "namespace": NS},
                    "spec": {"selector": {"matchLabels": {"app": "golang-app"}}, "action": "DENY",
                             "rules": [{"to": [{"operation": {"methods": ["POST"], "paths": ["/admin"]}}]}]}})
        wait_for(lambda: self.call_from("frontend", "http://golang-app-service/admin", "POST") == 403, 10, 0.2,
                 "the DENY policy")
        self.assertEqual(self.mesh_get(ip, frontend, "POST", "/admin"), 403)
        self.assertEqual(self.mesh_get(ip, frontend, "GET", "/admin"), 200)
        self.assertEqual(self.call_from("frontend", "http://golang-app-service/admin"), 200)

    def test_d_bad_certificates_are_refused_and_counted(self):
        ip = self.app_pod_ip()
        root = self.mesh_root()
        now = datetime.datetime.now(datetime.timezone.utc)
        cases = {
            "untrusted": self.make_cert(spiffe(NS, "frontend")),  # self-signed
            "expired": self.make_cert(spiffe(NS, "frontend"), root, not_after=now - datetime.timedelta(minutes=1),
                                      not_before=now - datetime.timedelta(hours=1)),
            "trust_domain": self.make_cert(spiffe(NS, "frontend", "evil.example"), root),
            "no_certificate": None,
        }
        before = {r: self.counter("podium_mtls_rejected_total", side="server", reason=r)
                  for r in list(cases) + ["handshake"]}
        for reason, cert in cases.items():
            for _ in range(3):
                self.assertNotEqual(self.mesh_get(ip, cert), 200, reason)
        # Malformed: a ClientHello offering the mesh's ALPN, then garbage.
        hello = self.client_hello()
        for junk in (b"\x16\x03\x03\x00\x05hello", b"\x15\x03\x03\x00\x02\x02\x28", os.urandom(3000)):
            s = socket.create_connection((ip, APP_PORT), timeout=5)
            s.sendall(hello + junk)
            try:
                s.recv(65536)
            except OSError:
                pass
            s.close()
        for reason in list(cases) + ["handshake"]:
            got = wait_for(lambda r=reason: self.counter("podium_mtls_rejected_total", side="server", reason=r)
                           >= before[r] + 3 or None, 5, 0.1, reason + " counted")
            self.assertTrue(got)
        print("MEASURED refused mesh handshakes: %s" % {
            r: self.counter("podium_mtls_rejected_total", side="server", reason=r)
            for r in list(cases) + ["handshake"]})
        # The proxy lives on, and a good certificate still works.
        self.assertEqual(self.mesh_get(ip, self.make_cert(spiffe(NS, "other"), root)), 200)
        self.assertEqual(self.call_from("other"), 200)

    def test_f_the_ca_signs_only_for_workloads_on_the_asking_node(self):
        """The CA's subresource through the real API and kubectl: node-bound, CSR-only, clear errors."""
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
               .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
        node = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
        path = "/api/v1/namespaces/my-apps/serviceaccounts/frontend/certificate"

        def post(spec):
            body = os.path.join(tempfile.mkdtemp(prefix="podium-zt-"), "req.json")
            self.addCleanup(shutil.rmtree, os.path.dirname(body), True)
            with open(body, "w") as f:
                json.dump({"apiVersion": "mesh.podium.io/v1", "kind": "WorkloadCertificateRequest",
                           "spec": spec}, f)
            return self.kubectl("create", "--raw", path, "-f", body, check=False)
        ok = post({"nodeName": node, "request": csr, "expirationSeconds": 600})
        self.assertEqual(ok.returncode, 0, ok.stderr)
        chain = json.loads(ok.stdout)["status"]["certificateChain"]
        cert = x509.load_pem_x509_certificate(chain.encode())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(sans.get_values_for_type(x509.UniformResourceIdentifier), [spiffe(NS, "frontend")])
        self.assertEqual(cert.public_key().public_numbers(), key.public_key().public_numbers())
        other_node = post({"nodeName": "someone-else", "request": csr})
        self.assertNotEqual(other_node.returncode, 0)
        self.assertIn("Forbidden", other_node.stderr)
        bad = post({"nodeName": node, "request": "not a CSR"})
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("spec.request", bad.stderr)

    def client_hello(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["istio"])
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return outgoing.read()

    def test_e_certificates_rotate_under_load(self):
        # Three renewals (at half of 60 s) in the suite; the long soak is the same test with
        # PODIUM_ROTATION_SECONDS=300 or more.
        seconds = int(os.environ.get("PODIUM_ROTATION_SECONDS", "95"))
        ip = self.app_pod_ip()
        stop = threading.Event()
        results = collections.Counter()
        lock = threading.Lock()

        def ingress_load(new_connections):
            c = None
            while not stop.is_set():
                try:
                    if c is None:
                        c = http.client.HTTPConnection("127.0.0.1", self.server.ingress_port, timeout=10)
                    c.request("GET", "/", headers={"Host": test_mesh.HOST})
                    r = c.getresponse()
                    r.read()
                    status = r.status
                    if new_connections:
                        c.close()
                        c = None
                except (OSError, http.client.HTTPException) as e:
                    status = type(e).__name__
                    c = None
                with lock:
                    results[status] += 1
                time.sleep(0.01)

        def serial():
            out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (ip, APP_PORT), "-alpn", "istio"],
                                 input="", capture_output=True, text=True, timeout=20).stdout
            m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
            return x509.load_pem_x509_certificate(m.group(0).encode()).serial_number if m else None
        handshakes = self.counter("podium_mtls_handshakes_total")
        rejected = self.counter("podium_mtls_rejected_total", side="client")
        threads = [threading.Thread(target=ingress_load, args=(n,)) for n in (False, False, True)]
        for t in threads:
            t.start()
        # Pods call the Service the whole time too, each request on a new connection. A failed name
        # lookup ("bad address") never reached the mesh: it is counted apart, and each failure
        # prints when it happened and what wget said.
        pod_load = subprocess.Popen(
            ["kubectl", "--kubeconfig", self.server.kubeconfig, "exec", "-n", NS, "other", "--", "sh", "-c",
             "end=$(( $(date +%%s) + %d )); n=0; f=0; d=0; while [ $(date +%%s) -lt $end ]; do "
             "if ! out=$(wget -q -O /dev/null http://golang-app-service/ 2>&1); then "
             "case \"$out\" in *'bad address'*) d=$((d+1));; *) f=$((f+1));; esac; "
             "echo \"failed at $(date +%%s): $out\" >&2; fi; "
             "n=$((n+1)); done; "
             "echo $n $f $d" % seconds], stdout=subprocess.PIPE, text=True)
        serials = set()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                s = serial()
                if s:
                    serials.add(s)
                time.sleep(min(10, max(0, deadline - time.monotonic())))
        finally:
            stop.set()
            for t in threads:
                t.join()
            out = pod_load.communicate(timeout=60)[0].split()
        pod_total, pod_failed, lookups_failed = int(out[0]), int(out[1]), int(out[2])
        total = sum(results.values())
        failed = {k: v for k, v in results.items() if k != 200}
        new_handshakes = self.counter("podium_mtls_handshakes_total") - handshakes
        print("MEASURED rotation over %d s with 60 s certificates: %d certificates served by the app's pod, "
              "%d ingress requests (failures %s), %d pod requests (%d failed, %d name lookups failed), "
              "%d mesh handshakes"
              % (seconds, len(serials), total, failed, pod_total, pod_failed, lookups_failed, new_handshakes))
        self.assertEqual(failed, {})
        self.assertEqual(pod_failed, 0)
        self.assertEqual(lookups_failed, 0)
        self.assertGreater(pod_total, 100)
        self.assertGreaterEqual(len(serials), seconds // 30 - 1)  # renewed at half of 60 s
        self.assertEqual(self.counter("podium_mtls_rejected_total", side="client"), rejected)

    def test_g_destination_rule_tls_disable_sends_plaintext(self):
        """A DestinationRule's tls.mode DISABLE: the sending proxy skips mutual TLS to that host
        (as Istio's client proxy does); PERMISSIVE takes the plaintext, STRICT refuses it, and
        ISTIO_MUTUAL brings mutual TLS back."""
        def tls(mode):
            dr = json.loads(self.kubectl(
                "patch", "destinationrule", "golang-app", "-n", NS, "--type", "merge", "-o", "json", "-p",
                json.dumps({"spec": {"trafficPolicy": {"tls": {"mode": mode} if mode else None}}})).stdout)
            self.wait_proxy_serves([dr])
        self.addCleanup(tls, None)

        def requests(policy):
            return self.counter("istio_requests_total", destination_service_name="golang-app-service",
                                connection_security_policy=policy)
        tls("DISABLE")
        mtls, plain = requests("mutual_tls"), requests("none")
        for _ in range(3):
            self.assertEqual(self.call_from("other"), 200)
        self.assertEqual(requests("mutual_tls"), mtls)
        self.assertGreaterEqual(requests("none"), plain + 3)
        self.peer_auth("strict-dr", "STRICT")
        refused = self.counter("podium_mtls_rejected_total", reason="plaintext")
        wait_for(lambda: self.call_from("other") != 200, 10, 0.2, "STRICT to refuse the plaintext")
        self.assertGreater(self.counter("podium_mtls_rejected_total", reason="plaintext"), refused)
        tls("ISTIO_MUTUAL")
        wait_for(lambda: self.call_from("other") == 200, 10, 0.2, "ISTIO_MUTUAL under STRICT")
        print("MEASURED DestinationRule tls DISABLE: %d plaintext requests, then refused under STRICT, "
              "then mutual TLS again" % (requests("none") - plain))
        self.assertGreater(requests("mutual_tls"), mtls)


class NodeCredentialsTest(ServerTestCase):
    """A node's own credentials (`podium credentials node NAME`, a system:node:NAME client
    certificate): the CA then signs only for pods bound to that node, whatever the request says."""

    def credentials(self, node):
        out = os.path.join(self.server.data_dir, "nodes-out")
        p = subprocess.run([PODIUM, "credentials", "node", node, "--data-dir", self.server.data_dir,
                            "--out", out], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return os.path.join(out, node + ".crt"), os.path.join(out, node + ".key")

    def post_as(self, creds, spec):
        ctx = ssl.create_default_context(cafile=os.path.join(self.server.data_dir, "tls", "ca.crt"))
        ctx.load_cert_chain(*creds)
        c = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=ctx, timeout=30)
        try:
            c.request("POST", "/api/v1/namespaces/mesh-id/serviceaccounts/web/certificate",
                      body=json.dumps({"apiVersion": "mesh.podium.io/v1", "kind": "WorkloadCertificateRequest",
                                       "spec": spec}), headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            c.close()

    def test_a_a_node_gets_identities_of_its_own_pods_only(self):
        node_a, node_b = self.credentials("node-a"), self.credentials("node-b")
        with open(node_a[1]) as f:
            self.assertIn("PRIVATE KEY", f.read())
        self.assertEqual(os.stat(node_a[1]).st_mode & 0o777, 0o600)
        cert = x509.load_pem_x509_certificate(open(node_a[0], "rb").read())
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "system:node:node-a")
        self.kubectl("create", "namespace", "mesh-id")
        self.kubectl("create", "serviceaccount", "web", "-n", "mesh-id")
        # A pod of the service account bound to node-a (no agent here: it stays Pending there).
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "mesh-id"},
            "spec": {"nodeName": "node-a", "serviceAccountName": "web",
                     "containers": [{"name": "web", "image": "web:1"}]}}))
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
               .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
        status, body = self.post_as(node_a, {"nodeName": "node-a", "request": csr})
        self.assertEqual(status, 201, body)
        chain = x509.load_pem_x509_certificate(body["status"]["certificateChain"].encode())
        sans = chain.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(sans.get_values_for_type(x509.UniformResourceIdentifier),
                         ["spiffe://cluster.local/ns/mesh-id/sa/web"])
        # node-b cannot ask in node-a's name, nor for a pod it does not run.
        status, body = self.post_as(node_b, {"nodeName": "node-a", "request": csr})
        print("MEASURED node-b asking as node-a: %d %s" % (status, body.get("message")))
        self.assertEqual((status, body["reason"]), (403, "Forbidden"))
        self.assertIn('node "node-b" cannot request certificates for node "node-a"', body["message"])
        status, body = self.post_as(node_b, {"nodeName": "node-b", "request": csr})
        self.assertEqual(status, 403)
        self.assertIn("no pod of service account mesh-id/web runs on node", body["message"])
        # The same credentials drive the other remote clients (here `podium app`).
        p = subprocess.run([PODIUM, "app", "list", "--server", "https://127.0.0.1:%d" % self.server.port,
                            "--client-cert", node_a[0], "--client-key", node_a[1],
                            "--ca-file", os.path.join(self.server.data_dir, "tls", "ca.crt")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("NAME"), p.stdout)
        bad = subprocess.run([PODIUM, "credentials", "node", "Not_A_Node", "--data-dir", self.server.data_dir],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("not a valid node name", bad.stderr)


if __name__ == "__main__":
    unittest.main()
