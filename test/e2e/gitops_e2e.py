"""Helpers for the GitOps end-to-end tests: git repositories made by the test, and Argo CD
Applications driven through kubectl."""

import json
import os
import shutil
import subprocess
import tempfile

from podium_e2e import PODIUM, wait_for

ARGO = "argocd"


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@example.com",
               GIT_COMMITTER_NAME="ci", GIT_COMMITTER_EMAIL="ci@example.com")
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def podium_app(server, *args, check=True, env=None):
    """`podium app ARGS` against `server`."""
    p = subprocess.run([PODIUM, "app", *args, "--data-dir", server.data_dir], capture_output=True,
                       text=True, timeout=120, env=env)
    if check and p.returncode != 0:
        raise AssertionError("podium app %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return p


class WorkRepo:
    """A git working tree on branch `main`; commit() writes files and returns the new commit."""

    def __init__(self, prefix="podium-gitops-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        git(self.dir, "init", "-q", "-b", "main")

    @property
    def url(self):
        return "file://" + self.dir

    def commit(self, message, files=None, remove=()):
        for path, text in (files or {}).items():
            full = os.path.join(self.dir, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        for path in remove:
            os.remove(os.path.join(self.dir, path))
        git(self.dir, "add", "-A")
        git(self.dir, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.dir, "rev-parse", "HEAD")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class ApplicationHelpers:
    """Mixed into a test case with a `server` (podium_e2e.Server) and `kubectl`."""

    def apply(self, obj):
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def application(self, name, url, path="manifests", revision="main", namespace=None, automated=None,
                    sync_options=("CreateNamespace=true",), **spec):
        """Applies an Application (deleted after the test) syncing `url` into namespace `namespace`
        (default: its name)."""
        policy = {"automated": {"prune": True} if automated is None else automated,
                  "syncOptions": list(sync_options)}
        policy.update(spec.pop("sync_policy", {}))
        source = {"repoURL": url, "targetRevision": revision, "path": path}
        if "source_helm" in spec:
            source["helm"] = spec.pop("source_helm")
        body = {"project": "default", "source": source,
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace or name},
                "syncPolicy": policy}
        body.update(spec)
        self.apply({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                    "metadata": {"name": name, "namespace": ARGO}, "spec": body})
        self.addCleanup(lambda: self.kubectl("delete", "application", name, "-n", ARGO, check=False))

    def status(self, name):
        p = self.kubectl("get", "application", name, "-n", ARGO, "-o", "json")
        return json.loads(p.stdout).get("status", {})

    def condition(self, name, text, kind="ComparisonError", timeout=20):
        """Waits for a condition of `kind` containing `text`; returns its message."""
        def find():
            for c in self.status(name).get("conditions", []):
                if c["type"] == kind and text in c["message"]:
                    return c["message"]
            return None
        return wait_for(find, timeout, 0.1, "a %s with %r on %s" % (kind, text, name))

    def synced(self, name, sha, timeout=20):
        wait_for(lambda: (lambda s: s.get("sync", {}).get("status") == "Synced"
                          and s["sync"].get("revision") == sha)(self.status(name)), timeout, 0.1,
                 "%s Synced at %s" % (name, sha[:7]))

    def podium_app(self, *args, check=True, env=None):
        return podium_app(self.server, *args, check=check, env=env)

    def config_map(self, ns, name):
        p = self.kubectl("get", "configmap", name, "-n", ns, "-o", "json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None
