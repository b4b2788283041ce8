"""GitOps from remote repositories (issue 6): Argo CD's repository Secrets and ConfigMaps unchanged,
against real servers on loopback made by the test: git's smart HTTP protocol with basic
authentication, the same over TLS with a private CA, and OpenSSH with a key and known hosts.
Without the right credentials, CA or host key the Application says why and nothing is applied."""

import os
import shutil
import subprocess
import tempfile
import unittest

from git_servers import GitHttpServer, Sshd, have_sshd, server_cert, user_key
from gitops_e2e import ARGO, ApplicationHelpers, WorkRepo
from podium_e2e import ServerTestCase, make_test_ca


class RemoteRepositoryTest(ApplicationHelpers, ServerTestCase):
    server_args = ("--gitops-poll-interval", "500")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="podium-gitops-remote-")
        # A repository with one ConfigMap, served bare as app.git.
        work = WorkRepo()
        cls.sha = work.commit("a config map", {"manifests/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                                    "  name: from-git\ndata:\n  fetched: 'yes'\n"})
        cls.root = os.path.join(cls.tmp, "srv")
        os.makedirs(cls.root)
        subprocess.run(["git", "clone", "-q", "--bare", work.dir, os.path.join(cls.root, "app.git")], check=True)
        work.close()
        cls.server.kubectl("create", "namespace", ARGO)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    # --- helpers ---------------------------------------------------------------------------
    def repo_secret(self, name, **fields):
        self.apply({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": ARGO,
                                 "labels": {"argocd.argoproj.io/secret-type": fields.pop("secret_type", "repository")}},
                    "stringData": fields})
        self.addCleanup(lambda: self.kubectl("delete", "secret", name, "-n", ARGO, check=False))

    def argo_config_map(self, name, data):
        self.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ARGO},
                    "data": data})
        self.addCleanup(lambda: self.kubectl("delete", "configmap", name, "-n", ARGO, check=False))

    def fetched(self, name):
        self.synced(name, self.sha)
        self.assertNotIn("conditions", self.status(name))
        self.assertEqual(self.config_map(name, "from-git")["data"], {"fetched": "yes"})

    def nothing_applied(self, name):
        self.assertNotEqual(self.kubectl("get", "configmap", "from-git", "-n", name, check=False).returncode, 0)

    # --- the tests --------------------------------------------------------------------------
    def test_a_http_with_basic_authentication(self):
        srv = GitHttpServer(self.root, "ci", "pa55word")
        self.addCleanup(srv.close)
        url = "http://127.0.0.1:%d/app.git" % srv.port
        self.application("repo-http", url)
        message = self.condition("repo-http", "repository not accessible")
        print("MEASURED no credentials: " + message)
        self.assertIn("authentication", message)
        self.nothing_applied("repo-http")
        # A wrong password is refused too; then Argo CD's repository Secret with the right one.
        self.repo_secret("repo-http", url=url, username="ci", password="wrong")
        self.kubectl("annotate", "application", "repo-http", "-n", ARGO, "argocd.argoproj.io/refresh=normal")
        self.condition("repo-http", "authentication")
        self.nothing_applied("repo-http")
        self.repo_secret("repo-http", url=url, username="ci", password="pa55word")
        self.fetched("repo-http")
        self.assertTrue(any(s == 200 and "git-upload-pack" in p for _, p, s in srv.requests), srv.requests)

    def test_b_https_with_a_private_ca_and_a_credential_template(self):
        ca = make_test_ca(self.tmp)
        srv = GitHttpServer(self.root, "ci", "t0ken", tls=server_cert(ca, self.tmp))
        self.addCleanup(srv.close)
        url = "https://127.0.0.1:%d/app.git" % srv.port
        # Credentials for every repository under the server (repo-creds), the CA not yet trusted.
        self.repo_secret("creds-template", secret_type="repo-creds", url="https://127.0.0.1:%d/" % srv.port,
                         username="ci", password="t0ken")
        self.application("repo-https", url)
        message = self.condition("repo-https", "x509")
        print("MEASURED untrusted server certificate: " + message)
        self.nothing_applied("repo-https")
        with open(ca + ".crt") as f:
            self.argo_config_map("argocd-tls-certs-cm", {"127.0.0.1": f.read()})
        self.fetched("repo-https")

    def test_c_https_marked_insecure(self):
        ca = make_test_ca(os.path.join(self.tmp))
        srv = GitHttpServer(self.root, "ci", "t0ken", tls=server_cert(ca, self.tmp, "insecure"))
        self.addCleanup(srv.close)
        url = "https://127.0.0.1:%d/app.git" % srv.port
        self.repo_secret("repo-insecure", url=url, username="ci", password="t0ken", insecure="true")
        self.application("repo-insecure", url)
        self.fetched("repo-insecure")

    @unittest.skipUnless(have_sshd(), "openssh-server is not installed")
    def test_d_ssh_with_a_key_and_known_hosts(self):
        d = tempfile.mkdtemp(prefix="sshd-", dir=self.tmp)
        private, public = user_key(d)
        sshd = Sshd(d, public)
        self.addCleanup(sshd.close)
        url = "ssh://root@127.0.0.1:%d%s" % (sshd.port, os.path.join(self.root, "app.git"))
        self.repo_secret("repo-ssh", url=url, sshPrivateKey=private)
        self.application("repo-ssh", url)
        message = self.condition("repo-ssh", "knownhosts: key is unknown")
        print("MEASURED unknown host key: " + message)
        self.nothing_applied("repo-ssh")
        # OpenSSH's hashed form of the host's name (ssh-keygen -H), as many known_hosts files have.
        known = os.path.join(d, "known_hosts")
        with open(known, "w") as f:
            f.write(sshd.known_hosts_line() + "\n")
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", known], check=True, capture_output=True)
        with open(known) as f:
            hashed = f.read()
        self.assertTrue(hashed.startswith("|1|"), hashed)
        self.argo_config_map("argocd-ssh-known-hosts-cm", {"ssh_known_hosts": "# hashed\n" + hashed})
        self.fetched("repo-ssh")
        self.assertIn("Accepted publickey for root", sshd.read_log())


if __name__ == "__main__":
    unittest.main()
