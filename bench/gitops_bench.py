#!/usr/bin/python3
"""GitOps latency and cost, beside Argo CD's documented defaults, in one run.

Starts `podium server --no-agent` (the control plane with its GitOps controller) on a fresh data
directory and a git repository made here, then measures:
  - first sync of an Application with --objects ConfigMaps (Application created -> Synced);
  - a refresh of that unchanged app (the `argocd.argoproj.io/refresh` annotation set -> taken off
    with the app still Synced), --refreshes times, over one kept-alive connection with one watch
    on the app held open (as the UI and informers do: no TLS handshake inside a measurement);
  - commit -> Synced for a one-object change, --commits times, by polling (default 3 s interval)
    and after a push webhook.
Argo CD's documented defaults are printed beside: `timeout.reconciliation` 120 s plus up to 60 s of
jitter (so a commit waits 120-180 s for a poll, 150 s on average), and webhooks refreshing at once.
Everything started is stopped by PID.

    bench/gitops_bench.py [--objects 1000] [--refreshes 10] [--commits 5]
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "e2e"))
from podium_e2e import Server, wait_for  # noqa: E402
from test_gitops import git  # noqa: E402

ARGO_POLL_S, ARGO_JITTER_S = 120, 60


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--refreshes", type=int, default=10)
    ap.add_argument("--commits", type=int, default=5)
    a = ap.parse_args()
    repo = tempfile.mkdtemp(prefix="podium-gitops-bench-")
    server = Server(extra_args=os.environ.get("BENCH_SERVER_ARGS", "").split()).start()
    try:
        k = server.kubectl
        git(repo, "init", "-q", "-b", "main")
        os.makedirs(os.path.join(repo, "app"))
        with open(os.path.join(repo, "app", "objects.yaml"), "w") as f:
            for i in range(a.objects):
                f.write("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n  n: \"%d\"\n" % (i, i))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "objects")
        sha = git(repo, "rev-parse", "HEAD")
        k("create", "namespace", "argocd")
        app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": "big", "namespace": "argocd"},
               "spec": {"project": "default",
                        "source": {"repoURL": "file://" + repo, "targetRevision": "main", "path": "app"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "big"},
                        "syncPolicy": {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"]}}}

        def status():
            return json.loads(k("get", "application", "big", "-n", "argocd", "-o", "json").stdout).get("status", {})

        def synced_at(revision, timeout=300):
            wait_for(lambda: (lambda s: s.get("sync", {}).get("status") == "Synced"
                              and s["sync"].get("revision") == revision)(status()), timeout, 0.02, "Synced")
        t0 = time.monotonic()
        k("apply", "-f", "-", input=json.dumps(app))
        synced_at(sha)
        first = time.monotonic() - t0
        assert len(status()["resources"]) == a.objects
        refreshes, controller = [], []
        app_path = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/big"
        patch = json.dumps({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
        # As a UI or an informer does: one connection for writes, kept alive, and one watch on the
        # app held open across the refreshes (no TLS handshake inside a measurement).
        rv = json.loads(k("get", "application", "big", "-n", "argocd", "-o", "json").stdout)["metadata"]["resourceVersion"]
        writer = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=60)
        watcher = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=60)
        watcher.request("GET", "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications?watch=1&"
                        "fieldSelector=metadata.name%3Dbig&resourceVersion=" + rv)
        stream = watcher.getresponse()
        for _ in range(a.refreshes):
            # Set the annotation, then follow the watch until the controller has taken it off.
            t0 = time.monotonic()
            writer.request("PATCH", app_path, body=patch, headers={"Content-Type": "application/merge-patch+json"})
            reply = writer.getresponse()
            reply.read()
            assert reply.status == 200, reply.status
            stored = time.monotonic()
            while True:
                # The time is taken when the event arrives; it is parsed after (a 260 KB JSON
                # costs Python a few ms, on the same two cores as the server).
                line = stream.readline()
                if b'"argocd.argoproj.io/refresh":"' not in line:
                    break
            refreshes.append(time.monotonic() - t0)
            controller.append(time.monotonic() - stored)
            event = json.loads(line)
            assert "argocd.argoproj.io/refresh" not in event["object"]["metadata"].get("annotations", {})
            assert event["object"]["status"]["sync"]["status"] == "Synced"
        watcher.close()
        # What one write of that Application costs the API (its status lists 1,000 resources):
        # a label set and taken off again, straight over HTTPS.
        writes = []
        for i in range(a.refreshes):
            t0 = time.monotonic()
            label = json.dumps({"metadata": {"labels": {"bench": str(i) if i % 2 == 0 else None}}})
            writer.request("PATCH", app_path, body=label, headers={"Content-Type": "application/merge-patch+json"})
            reply = writer.getresponse()
            reply.read()
            writes.append(time.monotonic() - t0)
            assert reply.status == 200, reply.status
        writer.close()
        polled, hooked = [], []
        path = os.path.join(repo, "app", "objects.yaml")
        for i in range(2 * a.commits):
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace('n: "0"\n', 'n: "0x"\n') if i % 2 == 0 else text.replace('n: "0x"\n', 'n: "0"\n'))
            git(repo, "commit", "-q", "-am", "change %d" % i)
            head = git(repo, "rev-parse", "HEAD")
            t0 = time.monotonic()
            if i >= a.commits:
                body = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": "file://" + repo}})
                subprocess.run(["curl", "-sk", "-o", "/dev/null", "-X", "POST", "-H", "X-GitHub-Event: push",
                                "--data", body, "https://127.0.0.1:%d/api/webhook" % server.port], check=True)
            synced_at(head)
            (hooked if i >= a.commits else polled).append(time.monotonic() - t0)
        ms = lambda xs: "p50 %.0f ms, max %.0f ms" % (statistics.median(xs) * 1000, max(xs) * 1000)
        print("objects %d (ConfigMaps in one file), one Application (one of the controller's 4 workers)" % a.objects)
        print("first sync (Application created -> Synced): %.2f s" % first)
        print("refresh of the unchanged app: %s over %d refreshes (the annotation's PATCH included); "
              "from the annotation stored to the refresh written: %s" % (ms(refreshes), len(refreshes), ms(controller)))
        print("one API write of that Application (a label, over HTTPS): %s" % ms(writes))
        print("commit -> Synced by polling: %s; Argo CD's default poll: %d-%d s (mean %d s) -> %.0fx faster"
              % (ms(polled), ARGO_POLL_S, ARGO_POLL_S + ARGO_JITTER_S, ARGO_POLL_S + ARGO_JITTER_S // 2,
                 (ARGO_POLL_S + ARGO_JITTER_S / 2) / statistics.median(polled)))
        print("commit -> Synced after a push webhook: %s" % ms(hooked))
    finally:
        server.close()
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
