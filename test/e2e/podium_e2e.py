"""Helpers for end-to-end tests: start the real `podium` binary on a free port with its own data
directory, and drive it with the stock kubectl, the Python client, or raw HTTPS requests.

Every process a test starts is stopped by PID when the test ends."""
import http.client
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


class Server:
    """One `podium server` process with its own data directory."""

    def __init__(self, data_dir=None, extra_args=(), agent=False):
        self.owned_dir = data_dir is None
        self.agent = agent
        self.registry_port = free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="podium-e2e-")
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self.home = tempfile.mkdtemp(prefix="podium-e2e-home-")

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
             "--registry-port", str(self.registry_port)] + ([] if self.agent else ["--no-agent"]) + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(kc) or self.proc.poll() is not None, 60, what="kubeconfig")
        if self.proc.poll() is not None:
            raise RuntimeError("podium server exited: " + self.read_log())
        return self

    def read_log(self):
        with open(os.path.join(self.data_dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.data_dir + "/" in cmd:
                pids.append(int(entry))
        return pids

    def close(self):
        self.stop()
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)

    # --- clients ---------------------------------------------------------------------------
    def kubectl(self, *args, input=None, check=True, timeout=60):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.home)
        cmd = [KUBECTL, "--cache-dir", os.path.join(self.home, "cache")] + list(args)
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("kubectl %s failed (%d):\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def kubectl_popen(self, *args):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.home)
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
        cls.server = Server(extra_args=cls.server_args).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def kubectl(self, *args, **kw):
        return self.server.kubectl(*args, **kw)
