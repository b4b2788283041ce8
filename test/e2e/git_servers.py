"""Real git servers on loopback for the GitOps tests: git's smart HTTP protocol (git http-backend
behind basic authentication, plain or TLS) and OpenSSH's sshd with a key. Each is started by a
test and stopped by it."""

import base64
import os
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cert(ca, directory, name="server"):
    """A certificate for 127.0.0.1 signed by the CA `ca` (a path without extension, from
    make_test_ca); returns (cert path, key path)."""
    key, csr, crt = (os.path.join(directory, name + ext) for ext in (".key", ".csr", ".crt"))
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca + ".crt", "-CAkey", ca + ".key",
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
                   check=True, capture_output=True)
    return crt, key


class GitHttpServer:
    """`git http-backend` for the repositories under `root`, behind basic authentication
    (`user`, `password`), over TLS when given (cert, key)."""

    def __init__(self, root, user, password, tls=None):
        self.root, self.user, self.password = root, user, password
        self.requests = []  # (method, path, status)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.backend()

            def do_POST(self):
                self.backend()

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def reply(self, status, headers, body):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.requests.append((self.command, self.path, status))

            def backend(self):
                body = self.body()
                want = "Basic " + base64.b64encode(("%s:%s" % (outer.user, outer.password)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.reply(401, [("WWW-Authenticate", 'Basic realm="git"')], b"")
                    return
                path, _, query = self.path.partition("?")
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": outer.root,
                       "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": outer.user, "REMOTE_ADDR": "127.0.0.1"}
                if self.headers.get("Git-Protocol"):
                    env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                head, _, out = p.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode(errors="replace").split("\r\n"):
                    k, _, v = line.partition(":")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.reply(status, headers, out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Sshd:
    """OpenSSH's sshd on a loopback port, letting in the holder of `authorized_key` (a public key
    line); its host key is `host_key` (a known_hosts line for it: known_hosts_line())."""

    SSHD = "/usr/sbin/sshd"

    def __init__(self, directory, authorized_key):
        self.dir = directory
        self.port = free_port()
        self.host_key = os.path.join(directory, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key], check=True)
        with open(os.path.join(directory, "authorized_keys"), "w") as f:
            f.write(authorized_key.strip() + "\n")
        config = os.path.join(directory, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port, "ListenAddress 127.0.0.1", "HostKey " + self.host_key,
                "AuthorizedKeysFile " + os.path.join(directory, "authorized_keys"),
                "PidFile " + os.path.join(directory, "sshd.pid"), "UsePAM no", "StrictModes no",
                "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "LogLevel VERBOSE", ""]))
        os.makedirs("/run/sshd", exist_ok=True)  # its privilege separation directory
        self.log = open(os.path.join(directory, "sshd.log"), "wb")
        self.proc = subprocess.Popen([self.SSHD, "-D", "-e", "-f", config], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                threading.Event().wait(0.05)
        self.close()
        raise RuntimeError("sshd did not start: " + self.read_log())

    def read_log(self):
        with open(os.path.join(self.dir, "sshd.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def known_hosts_line(self):
        with open(self.host_key + ".pub") as f:
            key_type, key = f.read().split()[:2]
        return "[127.0.0.1]:%d %s %s" % (self.port, key_type, key)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def user_key(directory):
    """An ed25519 key pair for a client: (private key text, public key line)."""
    path = os.path.join(directory, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    with open(path) as f, open(path + ".pub") as g:
        return f.read(), g.read().strip()


def have_sshd():
    return os.path.exists(Sshd.SSHD) and shutil.which("ssh-keygen") is not None
