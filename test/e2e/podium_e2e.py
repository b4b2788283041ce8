"""Helpers for end-to-end tests: start the real `podium` binary on a free port with its own data
directory, and drive it with the stock kubectl, the Python client, or raw HTTPS requests.

Every process a test starts is stopped by PID when the test ends."""
import http.client
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

PODIUM = os.environ.get("PODIUM_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "podium"))
KUBECTL = shutil.which("kubectl")
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def pids_under(directory):
    """Processes whose command line names a path under `directory` (not this one)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if (directory + "/").encode() in f.read().replace(b"\0", b" "):
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def stop_process(proc, timeout):
    """SIGTERM, then SIGKILL after `timeout` s; True when it stopped by itself."""
    if proc is None or proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


class Capture:
    """tshark writing what crosses `interface` (capture filter `bpf`) to a file while the block
    runs; then `fields` reads it back with TCP `tls_port` decoded as TLS."""

    def __init__(self, interface, bpf, tls_port):
        self.interface, self.bpf, self.tls_port = interface, bpf, tls_port
        self.dir = tempfile.mkdtemp(prefix="podium-pcap-")
        self.pcap = os.path.join(self.dir, "capture.pcap")

    def __enter__(self):
        self.proc = subprocess.Popen(["tshark", "-i", self.interface, "-f", self.bpf, "-w", self.pcap, "-q"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.pcap) and os.path.getsize(self.pcap) > 0, 20, 0.1, "tshark to start")
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)  # the last packets
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def fields(self, display_filter, *names):
        args = ["tshark", "-r", self.pcap, "-d", "tcp.port==%d,tls" % self.tls_port, "-Y", display_filter,
                "-T", "fields"]
        for n in names:
            args += ["-e", n]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return [line.split("\t") for line in out.splitlines() if line.strip()]

    def payloads(self):
        """Every TCP payload byte, in capture order."""
        return b"".join(bytes.fromhex(p[0].replace(":", "")) for p in self.fields("tcp.len > 0", "tcp.payload"))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Etcd:
    """One etcd member on loopback ports, its data in `directory`; stopped by PID."""

    def __init__(self, directory):
        self.dir = directory
        self.client_port, self.peer_port = free_port(), free_port()
        self.proc = None

    @property
    def url(self):
        return "etcd://127.0.0.1:%d" % self.client_port

    def start(self):
        c = "http://127.0.0.1:%d" % self.client_port
        p = "http://127.0.0.1:%d" % self.peer_port
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "e2e", "--data-dir", os.path.join(self.dir, "etcd"),
             "--listen-client-urls", c, "--advertise-client-urls", c, "--listen-peer-urls", p,
             "--initial-advertise-peer-urls", p, "--initial-cluster", "e2e=" + p],
            stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None


class EtcdCluster:
    """Three etcd members on loopback, each stopped by PID."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="podium-e2e-etcd3-")
        self.members = [{"name": "m%d" % i, "client": free_port(), "peer": free_port()} for i in range(3)]
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (m["name"], m["peer"]) for m in self.members)
        self.procs = {}

    @property
    def url(self):
        return "etcd://" + ",".join("127.0.0.1:%d" % m["client"] for m in self.members)

    def endpoints(self):
        return ",".join("http://127.0.0.1:%d" % m["client"] for m in self.members)

    def start(self, name=None):
        for m in self.members:
            if name and m["name"] != name:
                continue
            c, p = "http://127.0.0.1:%d" % m["client"], "http://127.0.0.1:%d" % m["peer"]
            log = open(os.path.join(self.dir, m["name"] + ".log"), "ab")
            self.procs[m["name"]] = (subprocess.Popen(
                ["etcd", "--name", m["name"], "--data-dir", os.path.join(self.dir, m["name"]),
                 "--listen-client-urls", c, "--advertise-client-urls", c, "--listen-peer-urls", p,
                 "--initial-advertise-peer-urls", p, "--initial-cluster", self.initial,
                 "--initial-cluster-state", "new", "--heartbeat-interval", "100",
                 "--election-timeout", "1000"],
                stdout=log, stderr=subprocess.STDOUT), log)
        return self

    def leader(self):
        """The name of the member that leads (from etcdctl endpoint status)."""
        out = subprocess.run(["etcdctl", "--endpoints", self.endpoints(), "endpoint", "status", "-w", "json"],
                             capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"), timeout=10)
        for st in json.loads(out.stdout or "[]"):
            if st["Status"]["header"]["member_id"] == st["Status"]["leader"]:
                port = int(st["Endpoint"].rsplit(":", 1)[1])
                return next(m["name"] for m in self.members if m["client"] == port)
        return None

    def kill(self, name):
        proc, log = self.procs.pop(name)
        proc.kill()
        proc.wait()
        log.close()

    def stop(self):
        for name in list(self.procs):
            self.kill(name)
        shutil.rmtree(self.dir, ignore_errors=True)


# PODIUM_E2E_DATASTORE=etcd runs every server of a test on an etcd of its own instead of SQLite.
DATASTORE = os.environ.get("PODIUM_E2E_DATASTORE", "sqlite")


class Server:
    """One `podium server` process with its own data directory (and, with
    PODIUM_E2E_DATASTORE=etcd, its own etcd)."""

    def __init__(self, data_dir=None, extra_args=(), agent=False):
        self.owned_dir = data_dir is None
        self.agent = agent
        self.registry_port = free_port()
        self.ingress_port = free_port()
        self.ingress_tls_port = free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="podium-e2e-")
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self.home = tempfile.mkdtemp(prefix="podium-e2e-home-")
        # Apart from the data directory: the server's leftover processes are not etcd's.
        self.etcd = Etcd(tempfile.mkdtemp(prefix="podium-e2e-etcd-")).start() if DATASTORE == "etcd" else None
        if self.etcd:
            self.extra_args += ["--datastore", self.etcd.url]

    @property
    def kubeconfig(self):
        return os.path.join(self.data_dir, "kubeconfig.yaml")

    def start(self, port=None):
        self.port = port or self.port or free_port()
        kc = self.kubeconfig
        if os.path.exists(kc):
            os.remove(kc)
        self.log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [PODIUM, "server", "--data-dir", self.data_dir, "--api-port", str(self.port),
             "--registry-port", str(self.registry_port)] +
            (["--ingress-http-port", str(self.ingress_port), "--ingress-https-port", str(self.ingress_tls_port)]
             if self.agent else ["--no-agent"]) + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(kc) or self.proc.poll() is not None, 60, what="kubeconfig")
        if self.proc.poll() is not None:
            raise RuntimeError("podium server exited: " + self.read_log())
        return self

    def read_log(self):
        with open(os.path.join(self.data_dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        stop_process(self.proc, 30)
        self.proc = None
        self._close_log()

    def _close_log(self):
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self._close_log()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def leftover_pids(self):
        """Processes still running from this server's data directory (containerd, shims, registry)."""
        return pids_under(self.data_dir)

    def close(self):
        self.stop()
        if self.etcd:
            self.etcd.stop()
            shutil.rmtree(self.etcd.dir, ignore_errors=True)
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)

    # --- clients ---------------------------------------------------------------------------
    def kubectl(self, *args, input=None, check=True, timeout=60, env=None):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.home, **(env or {}))
        cmd = [KUBECTL, "--cache-dir", os.path.join(self.home, "cache")] + list(args)
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("kubectl %s failed (%d):\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def kubectl_popen(self, *args, env=None):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.home, **(env or {}))
        cmd = [KUBECTL, "--cache-dir", os.path.join(self.home, "cache")] + list(args)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def ssl_context(self, client_cert=True):
        ctx = ssl.create_default_context(cafile=os.path.join(self.data_dir, "tls", "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(os.path.join(self.data_dir, "tls", "admin.crt"), os.path.join(self.data_dir, "tls", "admin.key"))
        return ctx

    def request(self, method, path, body=None, headers=None, client_cert=True, timeout=30):
        """Raw HTTPS request; returns (status, headers, body bytes)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(client_cert), timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def request_json(self, method, path, body=None, content_type="application/json", headers=None):
        h = {"Content-Type": content_type}
        h.update(headers or {})
        status, hdrs, data = self.request(method, path, body, h)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")

    def admin_token(self):
        with open(os.path.join(self.data_dir, "tls", "admin.token")) as f:
            return f.read().strip()


class ServerTestCase(unittest.TestCase):
    """Starts one server for the test class."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PODIUM):
            raise unittest.SkipTest("podium binary not built at " + PODIUM)
        if KUBECTL is None:
            raise unittest.SkipTest("kubectl is not installed")
        cls.server = Server(extra_args=cls.server_args)
        cls.addClassCleanup(cls.server.close)  # also when start() fails (its etcd, if any)
        cls.server.start()

    def kubectl(self, *args, **kw):
        return self.server.kubectl(*args, **kw)


# --- node tests: a server with its agent, as root ---------------------------------------------
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HELLO = os.path.join(ROOT, "examples", "hello")
SEED = os.path.join(HELLO, "manifests")
BUSYBOX = "podium/busybox:1.35"

# The web UI's browser tests: Debian's Chromium driven by playwright-core (ui/test/*.mjs).
UI_SHOTS = os.path.join(ROOT, "build", "ui-screenshots")
UI_AVAILABLE = bool(shutil.which("chromium") and shutil.which("node")
                    and os.path.isdir(os.path.join(ROOT, "ui", "node_modules")))
UI_MISSING = "chromium, node or the UI's npm packages are missing (scripts/build-ui.sh)"


def ui_script(server, script):
    """The command running ui/test/SCRIPT against `server`: its URL, the admin password and the
    screenshot folder."""
    with open(os.path.join(server.data_dir, "tls", "ui-admin.password")) as f:
        password = f.read().strip()
    os.makedirs(UI_SHOTS, exist_ok=True)
    return ["node", os.path.join(ROOT, "ui", "test", script), "https://127.0.0.1:%d" % server.port, password,
            UI_SHOTS]


def recv_all(sock):
    """Everything a socket sends until it closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def make_test_ca(directory):
    """A throwaway CA (DIR/ca.crt, DIR/ca.key); returns the path without its extension."""
    ca = os.path.join(directory, "ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key",
                    "-out", ca + ".crt", "-days", "2", "-subj", "/CN=podium test CA"],
                   check=True, capture_output=True)
    return ca


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def is_ready(pod):
    for c in pod.get("status", {}).get("conditions", []):
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def container_status(pod, name=None):
    for s in pod.get("status", {}).get("containerStatuses", []):
        if name is None or s["name"] == name:
            return s
    return {}


def image_cache_dir():
    """Where NodeTestCase keeps its built registry: named by everything the images come from
    (this build of Podium, the seed's sources, the builder image's script, busybox), in the build
    directory (gone with it), one at a time."""
    h = hashlib.sha256()
    for path in (PODIUM, os.path.join(HELLO, "main.cc"), os.path.join(HELLO, "Dockerfile"),
                 os.path.join(ROOT, "scripts", "cxx-builder-image.sh"), "/bin/busybox"):
        st = os.stat(path)
        h.update(("%s %d %d" % (path, st.st_size, st.st_mtime_ns)).encode())
    return os.path.join(os.path.dirname(os.path.abspath(PODIUM)), "podium-e2e-images-" + h.hexdigest()[:16])


@unittest.skipUnless(os.geteuid() == 0, "the node agent needs root")
class NodeTestCase(unittest.TestCase):
    """A server with its node agent (as root) and the test images built into its registry:
    the seed's app as my-docker-hub/golang-app:v1.0.0, v1.1.0 and v2.0.0, and a busybox shell."""
    server = None
    server_args = ()
    seed_versions = ("v1.0.0", "v1.1.0", "v2.0.0")

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PODIUM) or KUBECTL is None:
            raise unittest.SkipTest("podium binary or kubectl missing")
        cls.server = Server(agent=True, extra_args=list(cls.server_args)).start()
        try:
            wait_for(cls.node_ready, 60, 0.2, "the node to be Ready")
            cls.registry = "127.0.0.1:%d" % cls.server.registry_port
            cls.build_images()
        except Exception as e:
            # The server's log goes with the data directory: keep its end in the failure.
            tail = cls.server.read_log()[-6000:]
            cls.server.close()
            raise AssertionError("%s\n--- end of server.log ---\n%s" % (e, tail)) from e

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            cls.server.close()

    @classmethod
    def node_ready(cls):
        p = cls.server.kubectl("get", "nodes", "-o", "json", check=False)
        if p.returncode != 0:
            return False
        items = json.loads(p.stdout)["items"]
        return items and any(c["type"] == "Ready" and c["status"] == "True"
                          for c in items[0].get("status", {}).get("conditions", []))

    @classmethod
    def image_build(cls, tag, context):
        p = subprocess.run([PODIUM, "image", "build", "-t", tag, "--registry", cls.registry, "--data-dir",
                            cls.server.data_dir, context], capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise AssertionError("podium image build %s failed:\n%s%s" % (tag, p.stdout, p.stderr))

    @classmethod
    def build_images(cls):
        # Built once per build of Podium and these sources, then copied into each class's
        # registry: the images are the same for every class (the registry's files are its state).
        registry_data = os.path.join(cls.server.data_dir, "registry", "data")
        cache = image_cache_dir()
        if os.path.exists(os.path.join(cache, "complete")):
            shutil.copytree(os.path.join(cache, "data"), registry_data, dirs_exist_ok=True)
            if all(cls.registry_has("my-docker-hub/golang-app", v) for v in cls.seed_versions):
                return
        # Every class's versions, so that one cache serves them all.
        cls.build_images_now(sorted(set(NodeTestCase.seed_versions) | set(cls.seed_versions)))
        tmp = cache + ".tmp-%d" % os.getpid()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(registry_data, os.path.join(tmp, "data"))
        open(os.path.join(tmp, "complete"), "w").close()
        for old in glob.glob(os.path.join(os.path.dirname(cache), "podium-e2e-images-*")):
            if not old.startswith(tmp):
                shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, cache)
        except OSError:  # another class made it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def registry_has(cls, repository, tag):
        req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (cls.registry, repository, tag), method="HEAD",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                                        "application/vnd.docker.distribution.manifest.v2+json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    @classmethod
    def build_images_now(cls, versions):
        # The seed's image, from the multi-stage Dockerfile, under the seed's name.
        p = subprocess.run([os.path.join(ROOT, "scripts", "cxx-builder-image.sh"), "--registry", cls.registry,
                            "--data-dir", cls.server.data_dir], capture_output=True, text=True, timeout=1200)
        if p.returncode != 0:
            raise AssertionError("builder image failed:\n" + p.stdout + p.stderr)
        for version in versions:
            cls.image_build("my-docker-hub/golang-app:" + version, HELLO)
        # A shell for exec and the failure cases: Debian's static busybox.
        ctx = tempfile.mkdtemp(prefix="podium-busybox-")
        try:
            shutil.copy("/bin/busybox", os.path.join(ctx, "busybox"))
            with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                f.write('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                        'CMD ["/bin/sh"]\n')
            cls.image_build(BUSYBOX, ctx)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------
    def kubectl(self, *args, **kw):
        return self.server.kubectl(*args, **kw)

    def pods(self, ns, selector=None):
        args = ["get", "pods", "-n", ns, "-o", "json"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.kubectl(*args).stdout)["items"]

    def pod(self, ns, name):
        p = self.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def ready_pods(self, ns, selector):
        return [p for p in self.pods(ns, selector) if is_ready(p) and not p["metadata"].get("deletionTimestamp")]

    def wait_ready_count(self, ns, selector, n, timeout=60):
        return wait_for(lambda: (lambda r: r if len(r) == n and len(self.pods(ns, selector)) == n else None)(
            self.ready_pods(ns, selector)), timeout, 0.05, "%d ready pods (%s)" % (n, selector))

    def ctr(self, *args):
        sock = os.path.join(self.server.data_dir, "node", "containerd", "containerd.sock")
        return subprocess.run(["ctr", "--address", sock, "--namespace", "k8s.io"] + list(args),
                               capture_output=True, text=True, timeout=30)

    def task_pid(self, container_id):
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == container_id and parts[2] == "RUNNING":
                return int(parts[1])
        return None

    def create_namespace(self, ns):
        self.kubectl("create", "namespace", ns)
        self.addCleanup(lambda: self.kubectl("delete", "namespace", ns, "--wait=false", check=False))

    def apply_seed(self):
        self.kubectl("apply", "-f", os.path.join(SEED, "namespace.yaml"), "-f", os.path.join(SEED, "deployment.yaml"))
        return self.wait_ready_count("my-apps", "app=golang-app", 3, 60)

    def run_busybox(self, ns, name, *command, extra=()):
        self.kubectl("run", name, "-n", ns, "--image", BUSYBOX, "--restart=Never", *extra, "--", *command)

    def proxy_get(self, path):
        """GET `path` from the node proxy's admin port (metrics, config)."""
        with open(os.path.join(self.server.data_dir, "node", "proxy", "ports.json")) as f:
            port = json.load(f)["metrics"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        text = conn.getresponse().read().decode()
        conn.close()
        return text

    def metrics(self):
        """The node proxy's Prometheus metrics."""
        return self.proxy_get("/metrics")

    # The node proxy's snapshot field for each kind it is fed.
    PROXY_FIELDS = {"Service": "services", "Endpoints": "endpoints", "Pod": "pods",
                    "VirtualService": "virtualServices", "DestinationRule": "destinationRules",
                    "Gateway": "gateways", "Ingress": "ingresses", "Secret": "secrets",
                    "AuthorizationPolicy": "authorizationPolicies",
                    "PeerAuthentication": "peerAuthentications", "Telemetry": "telemetries"}

    def wait_proxy_serves(self, objects, timeout=20):
        """Waits until the node proxy serves a configuration that includes these objects (as
        kubectl returned them): its GET /config reports, per kind, the resourceVersion every
        change up to which is in."""
        want = {}
        for o in objects:
            field = self.PROXY_FIELDS.get(o.get("kind"))
            if field:
                want[field] = max(want.get(field, 0), int(o["metadata"]["resourceVersion"]))

        def serves():
            versions = json.loads(self.proxy_get("/config")).get("versions", {})
            return all(int(versions.get(f) or 0) >= rv for f, rv in want.items())
        wait_for(serves, timeout, 0.02, "the node proxy to serve %s" % want)

    def apply_to_proxy(self, *args, input=None):
        """kubectl apply ... and wait until the node proxy serves what it applied."""
        out = json.loads(self.kubectl("apply", *args, "-o", "json", input=input).stdout)
        self.wait_proxy_serves(out.get("items", [out]) if out.get("kind") == "List" else [out])
        return out

    def try_get(self, url):
        try:
            return http_get(url, 1.0)
        except Exception:
            return None


