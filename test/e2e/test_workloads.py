"""Workloads end to end, as root, on the real node: the seed's Deployment built from
examples/hello and run through containerd, self-healing, rolling updates, scaling, exec,
port-forward, back-offs, namespace deletion and a server restart — all driven by kubectl.

Times the issue asks for are printed as `MEASURED ...` lines."""
import base64
import hashlib
import http.client
import json
import os
import pty
import re
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from podium_e2e import (BUSYBOX, KUBECTL, PODIUM, SEED, NodeTestCase, container_status, free_port, http_get,
                        is_ready, pids_under, stop_process, wait_for)


@unittest.skipUnless(os.geteuid() == 0, "the node agent needs root")
class WorkloadsTest(NodeTestCase):
    # --- the seed's Deployment -------------------------------------------------------------
    def test_a_seed_deployment_runs_three_pods_answering(self):
        pods = self.apply_seed()
        ips = [p["status"]["podIP"] for p in pods]
        self.assertEqual(len(set(ips)), 3, ips)
        for p in pods:
            self.assertEqual(p["status"]["phase"], "Running")
            self.assertEqual(http_get("http://%s:8080/" % p["status"]["podIP"]),
                             "Hello World! Running version: v1.0.0\n")
            cs = container_status(p)
            self.assertTrue(cs["containerID"].startswith("containerd://"))
            self.assertIn("running", cs["state"])
            self.assertEqual(cs["restartCount"], 0)
        # The Service's Endpoints and EndpointSlice list the three pods at the target port.
        def endpoints():
            ep = json.loads(self.kubectl("get", "endpoints", "golang-app-service", "-n", "my-apps", "-o", "json").stdout)
            subsets = ep.get("subsets", [])
            return ep if subsets and len(subsets[0].get("addresses", [])) == 3 else None
        ep = wait_for(endpoints, 10, 0.1, "3 endpoint addresses")
        self.assertEqual(sorted(a["ip"] for a in ep["subsets"][0]["addresses"]), sorted(ips))
        self.assertEqual(ep["subsets"][0]["ports"], [{"port": 8080, "protocol": "TCP"}])
        slices = json.loads(self.kubectl("get", "endpointslices", "-n", "my-apps", "-l",
                                         "kubernetes.io/service-name=golang-app-service", "-o", "json").stdout)["items"]
        self.assertEqual(len(slices), 1)
        self.assertEqual(sorted(e["addresses"][0] for e in slices[0]["endpoints"]), sorted(ips))
        self.assertTrue(all(e["conditions"]["ready"] for e in slices[0]["endpoints"]))
        log = self.kubectl("logs", "-n", "my-apps", pods[0]["metadata"]["name"]).stdout
        self.assertIn("Server starting on port 8080...", log)
        events = self.kubectl("get", "events", "-n", "my-apps", "-o", "json").stdout
        for reason in ("Scheduled", "Pulling", "Pulled", "Created", "Started"):
            self.assertIn('"reason": "%s"' % reason, events)

    def test_b_killed_container_restarts(self):
        pods = self.apply_seed()
        pod = pods[0]
        name = pod["metadata"]["name"]
        cid = container_status(pod)["containerID"].split("://")[1]
        pid = self.task_pid(cid)
        self.assertIsNotNone(pid, "no running task for " + cid)
        start = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        def restarted():
            p = self.pod("my-apps", name)
            return p if p and container_status(p).get("restartCount") == 1 and is_ready(p) else None
        p = wait_for(restarted, 10, 0.02, "the container to restart and be Ready")
        elapsed = time.monotonic() - start
        print("MEASURED kill -9 -> restarted and Ready: %.2fs" % elapsed)
        self.assertLess(elapsed, 2.0)
        last = container_status(p)["lastState"]["terminated"]
        self.assertEqual(last["exitCode"], 137)
        self.assertEqual(http_get("http://%s:8080/" % p["status"]["podIP"]), "Hello World! Running version: v1.0.0\n")

    def test_c_deleted_pod_is_replaced(self):
        pods = self.apply_seed()
        victim = pods[0]["metadata"]["name"]
        start = time.monotonic()
        self.kubectl("delete", "pod", "-n", "my-apps", victim, "--wait=false")

        def replaced():
            ready = self.ready_pods("my-apps", "app=golang-app")
            names = [p["metadata"]["name"] for p in ready]
            return victim not in names and len(ready) == 3
        wait_for(replaced, 10, 0.02, "a replacement pod to be Ready")
        elapsed = time.monotonic() - start
        print("MEASURED kubectl delete pod -> replacement Ready: %.2fs" % elapsed)
        self.assertLess(elapsed, 2.0)
        wait_for(lambda: self.pod("my-apps", victim) is None, 40, 0.1, "the deleted pod to go")

    def test_d_rolling_update_undo_and_scale(self):
        self.apply_seed()
        selector = "app=golang-app"
        # A watcher samples readiness throughout the rollout.
        low = [3]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    low[0] = min(low[0], len(self.ready_pods("my-apps", selector)))
                except Exception:
                    pass
                time.sleep(0.02)
        t = threading.Thread(target=watch)
        t.start()
        try:
            self.kubectl("set", "image", "-n", "my-apps", "deployment/golang-app",
                         "golang-app=my-docker-hub/golang-app:v1.1.0")
            self.kubectl("rollout", "status", "-n", "my-apps", "deployment/golang-app", "--timeout=90s", timeout=120)
        finally:
            stop.set()
            t.join()
        # maxUnavailable 25% of 3 rounds down to 0: never fewer than 3 Ready.
        print("MEASURED fewest Ready pods during the rolling update: %d (replicas 3, maxUnavailable 0)" % low[0])
        self.assertGreaterEqual(low[0], 3)
        pods = self.wait_ready_count("my-apps", selector, 3)
        self.assertEqual({p["spec"]["containers"][0]["image"] for p in pods}, {"my-docker-hub/golang-app:v1.1.0"})
        rs = json.loads(self.kubectl("get", "rs", "-n", "my-apps", "-o", "json").stdout)["items"]
        self.assertEqual(len(rs), 2)
        old = [r for r in rs if r["spec"]["template"]["spec"]["containers"][0]["image"].endswith("v1.0.0")][0]
        self.assertEqual(old["spec"]["replicas"], 0)
        history = self.kubectl("rollout", "history", "-n", "my-apps", "deployment/golang-app").stdout
        self.assertIn("1 ", history)
        self.assertIn("2 ", history)

        self.kubectl("rollout", "undo", "-n", "my-apps", "deployment/golang-app")
        self.kubectl("rollout", "status", "-n", "my-apps", "deployment/golang-app", "--timeout=90s", timeout=120)
        pods = self.wait_ready_count("my-apps", selector, 3)
        self.assertEqual({p["spec"]["containers"][0]["image"] for p in pods}, {"my-docker-hub/golang-app:v1.0.0"})
        hash_ = old["metadata"]["labels"]["pod-template-hash"]
        self.assertEqual({p["metadata"]["labels"]["pod-template-hash"] for p in pods}, {hash_})
        rs = json.loads(self.kubectl("get", "rs", "-n", "my-apps", "-o", "json").stdout)["items"]
        self.assertEqual(len(rs), 2, "undo reuses the old ReplicaSet")

        # pause holds a template change back until resume; restart rolls the same template anew.
        self.kubectl("rollout", "pause", "-n", "my-apps", "deployment/golang-app")
        self.kubectl("set", "image", "-n", "my-apps", "deployment/golang-app",
                     "golang-app=my-docker-hub/golang-app:v1.1.0")
        time.sleep(1.5)
        self.assertEqual({p["spec"]["containers"][0]["image"] for p in self.pods("my-apps", selector)},
                         {"my-docker-hub/golang-app:v1.0.0"})
        self.kubectl("rollout", "resume", "-n", "my-apps", "deployment/golang-app")
        self.kubectl("rollout", "status", "-n", "my-apps", "deployment/golang-app", "--timeout=90s", timeout=120)
        pods = self.wait_ready_count("my-apps", selector, 3)
        self.assertEqual({p["spec"]["containers"][0]["image"] for p in pods}, {"my-docker-hub/golang-app:v1.1.0"})
        before = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
        self.kubectl("rollout", "restart", "-n", "my-apps", "deployment/golang-app")
        self.kubectl("rollout", "status", "-n", "my-apps", "deployment/golang-app", "--timeout=90s", timeout=120)
        pods = self.wait_ready_count("my-apps", selector, 3)
        self.assertNotEqual({p["metadata"]["labels"]["pod-template-hash"] for p in pods}, before)

        self.kubectl("scale", "-n", "my-apps", "deployment/golang-app", "--replicas=10")
        self.wait_ready_count("my-apps", selector, 10, 60)
        self.kubectl("scale", "-n", "my-apps", "deployment/golang-app", "--replicas=3")
        pods = self.wait_ready_count("my-apps", selector, 3, 60)
        for p in pods:
            self.assertEqual(http_get("http://%s:8080/" % p["status"]["podIP"]), "Hello World! Running version: v1.0.0\n")
        self.kubectl("apply", "-f", os.path.join(SEED, "deployment.yaml"))  # back to the seed's image
        self.kubectl("rollout", "status", "-n", "my-apps", "deployment/golang-app", "--timeout=90s", timeout=120)

    # --- exec, port-forward, logs ----------------------------------------------------------
    def test_e_exec_port_forward_and_logs(self):
        ns = "exec-test"
        self.create_namespace(ns)
        self.run_busybox(ns, "shell", "sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done")
        wait_for(lambda: (lambda p: p and is_ready(p))(self.pod(ns, "shell")), 30, 0.05, "the shell pod")
        p = self.kubectl("exec", "-v=6", "-n", ns, "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                         check=False)
        self.assertEqual(p.returncode, 3)
        self.assertEqual(p.stdout, "out\n")
        self.assertIn("err", p.stderr)
        self.assertIn("The subprotocol is v5.channel.k8s.io", p.stderr, "exec without stdin uses WebSocket")
        # stdin without a terminal over WebSocket: kubectl ends stdin with v5's close message, which
        # the server carries to the runtime as a half-closed SPDY stream; the exit code comes back.
        p = self.kubectl("exec", "-i", "-v=6", "-n", ns, "shell", "--", "sh", "-c", "tr a-z A-Z; exit 7",
                         input="hello stdin\n", check=False)
        self.assertEqual((p.returncode, p.stdout), (7, "HELLO STDIN\n"), p.stderr)
        self.assertIn("The subprotocol is v5.channel.k8s.io", p.stderr)
        self.assertNotIn("fallback", p.stderr.lower())
        big = "".join("%07d\n" % i for i in range(125000))  # 1 MB
        p = self.kubectl("exec", "-i", "-n", ns, "shell", "--", "sh", "-c", "md5sum; echo done >&2", input=big)
        self.assertEqual(p.stdout.split()[0], hashlib.md5(big.encode()).hexdigest())
        self.assertEqual(p.stderr, "done\n")
        # kubectl's SPDY fallback still works.
        p = self.kubectl("exec", "-i", "-n", ns, "shell", "--", "cat", input="over spdy\n",
                         env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"})
        self.assertEqual(p.stdout, "over spdy\n")
        self.assertEqual(self.kubectl("exec", "-n", ns, "shell", "--", "hostname").stdout.strip(), "shell")
        # With a terminal: kubectl exec -it under a pty.
        out = self.exec_tty(["exec", "-it", "-n", ns, "shell", "--", "sh"], b"echo tty-$((6*7))\nexit\n")
        self.assertIn(b"tty-42", out)
        # Logs: tail, timestamps, follow.
        time.sleep(1)
        tail = self.kubectl("logs", "-n", ns, "shell", "--tail=2").stdout.splitlines()
        self.assertEqual(len(tail), 2)
        self.assertTrue(all(l.startswith("line ") for l in tail))
        stamped = self.kubectl("logs", "-n", ns, "shell", "--tail=1", "--timestamps").stdout
        self.assertRegex(stamped, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line \d+\n$")
        since = self.kubectl("logs", "-n", ns, "shell", "--since=1s").stdout.splitlines()
        self.assertLess(len(since), 10)
        f = self.server.kubectl_popen("logs", "-f", "-n", ns, "shell", "--tail=1")
        try:
            lines = [f.stdout.readline() for _ in range(4)]
            numbers = [int(l.split()[1]) for l in lines]
            self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 4)))
        finally:
            f.kill()
            f.communicate()

        # Port-forward to the seed's app.
        pods = self.apply_seed()
        port = free_port()
        pf = self.server.kubectl_popen("port-forward", "-v=6", "-n", "my-apps", "pod/" + pods[0]["metadata"]["name"],
                                       "%d:8080" % port)
        try:
            body = wait_for(lambda: self.try_get("http://127.0.0.1:%d/" % port), 20, 0.1, "port-forward")
            self.assertEqual(body, "Hello World! Running version: v1.0.0\n")
            for _ in range(5):
                self.assertEqual(http_get("http://127.0.0.1:%d/" % port), "Hello World! Running version: v1.0.0\n")
        finally:
            pf.terminate()
            _, err = pf.communicate()
        self.assertIn("negotiated protocol: portforward.k8s.io", err, "port-forward tunnels over WebSocket")

    def exec_tty(self, args, keys, timeout=20):
        pid, fd = pty.fork()
        if pid == 0:
            env = dict(os.environ, KUBECONFIG=self.server.kubeconfig, HOME=self.server.home)
            os.execvpe(KUBECTL, [KUBECTL] + args, env)
        out = b""
        sent = False
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
                if not sent and (b"#" in out or b"$" in out or time.monotonic() > deadline - timeout + 3):
                    os.write(fd, keys)
                    sent = True
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    pid = 0
                    break
        finally:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
        return out

    # --- failures --------------------------------------------------------------------------
    def test_e3_python_client_exec_with_stdin(self):
        """The official Python client speaks only WebSocket (v4.channel.k8s.io): exec with stdin
        and without a terminal, as its own end-to-end suite does it."""
        from kubernetes import client, config
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL
        ns = "pyexec"
        self.create_namespace(ns)
        self.run_busybox(ns, "shell", "sleep", "3600")
        wait_for(lambda: (lambda p: p and is_ready(p))(self.pod(ns, "shell")), 60, 0.1, "the shell pod")
        api = client.CoreV1Api(config.new_client_from_config(config_file=self.server.kubeconfig))
        resp = stream(api.connect_get_namespaced_pod_exec, "shell", ns, command=["/bin/sh"],
                      stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
        try:
            resp.write_stdin("echo test string 1\n")
            self.assertEqual(resp.readline_stdout(timeout=10), "test string 1")
            resp.write_stdin("echo test string 2 >&2\n")
            self.assertEqual(resp.readline_stderr(timeout=10), "test string 2")
            resp.write_stdin("exit\n")
            status = None
            deadline = time.monotonic() + 10
            while status is None and time.monotonic() < deadline:
                resp.update(timeout=1)
                text = resp.read_channel(ERROR_CHANNEL)
                status = json.loads(text) if text else None
            self.assertEqual(status["status"], "Success", status)
        finally:
            resp.close()
        # Without stdin, the whole output comes back at once.
        out = stream(api.connect_get_namespaced_pod_exec, "shell", ns, command=["sh", "-c", "echo hi; echo err >&2"],
                     stdin=False, stdout=True, stderr=True, tty=False)
        self.assertIn("hi", out)

    def test_e2_attach_reaches_a_running_process(self):
        ns = "attach"
        self.create_namespace(ns)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reader", "namespace": ns},
               "spec": {"restartPolicy": "Never",
                        "containers": [{"name": "c", "image": BUSYBOX, "stdin": True, "stdinOnce": True,
                                        "command": ["sh", "-c", 'while read l; do echo "got $l"; done; echo bye']}]}}
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        wait_for(lambda: is_ready(self.pod(ns, "reader") or {}), 60, 0.2, "the reading pod")
        out = self.kubectl("attach", "-i", "-n", ns, "reader", "-c", "c", input="hello\nworld\n", timeout=60)
        self.assertIn("got hello\ngot world\n", out.stdout)
        # stdinOnce: the end of the attached stdin is the end of the process's.
        wait_for(lambda: (self.pod(ns, "reader") or {}).get("status", {}).get("phase") == "Succeeded", 30, 0.2,
                 "the reader to finish")
        self.assertEqual(self.kubectl("logs", "-n", ns, "reader").stdout, "got hello\ngot world\nbye\n")

    def test_f_crash_loop_readiness_and_missing_image(self):
        ns = "failures"
        self.create_namespace(ns)
        self.kubectl("run", "crash", "-n", ns, "--image", BUSYBOX, "--", "sh", "-c", "echo dying; exit 1")
        self.kubectl("run", "missing", "-n", ns, "--image", "my-docker-hub/does-not-exist:v9")
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unready", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                     "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                                        "periodSeconds": 1}}]}}))

        def waiting(name, reason):
            p = self.pod(ns, name)
            w = container_status(p).get("state", {}).get("waiting", {}) if p else {}
            return w if w.get("reason") == reason else None
        w = wait_for(lambda: waiting("crash", "CrashLoopBackOff"), 30, 0.1, "CrashLoopBackOff")
        self.assertIn("back-off 10s restarting failed container=crash", w["message"])
        # The back-off doubles: the next wait says 20s.
        w = wait_for(lambda: (lambda x: x if x and "back-off 20s" in x["message"] else None)(
            waiting("crash", "CrashLoopBackOff")), 40, 0.2, "a 20s back-off")
        p = self.pod(ns, "crash")
        cs = container_status(p)
        self.assertEqual(cs["restartCount"], 2)
        self.assertEqual(cs["lastState"]["terminated"]["exitCode"], 1)
        self.assertEqual(p["status"]["phase"], "Running")
        self.assertEqual(self.kubectl("logs", "-n", ns, "crash", "--previous").stdout, "dying\n")
        table = self.kubectl("get", "pod", "crash", "-n", ns).stdout
        self.assertIn("CrashLoopBackOff", table)
        events = self.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=crash",
                              "-o", "json").stdout
        self.assertIn("Back-off restarting failed container crash", events)

        w = wait_for(lambda: waiting("missing", "ImagePullBackOff"), 30, 0.1, "ImagePullBackOff")
        self.assertIn("my-docker-hub/does-not-exist:v9", w["message"])
        events = self.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=missing",
                              "-o", "json").stdout
        self.assertIn("Failed to pull image", events)
        self.assertIn("not found", events)

        p = self.pod(ns, "unready")
        self.assertEqual(p["status"]["phase"], "Running")
        self.assertFalse(is_ready(p))
        time.sleep(3)
        p = self.pod(ns, "unready")
        self.assertFalse(is_ready(p))
        self.assertTrue(container_status(p)["started"])
        events = self.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=unready",
                              "-o", "json").stdout
        self.assertIn("Readiness probe failed", events)
        self.assertIn("Unhealthy", events)

    def test_f2_liveness_and_tcp_readiness(self):
        ns = "probes"
        self.create_namespace(ns)
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed", "namespace": ns},
            "spec": {"terminationGracePeriodSeconds": 2, "volumes": [{"name": "tmp", "emptyDir": {}}],
                     "containers": [{
                "name": "c", "image": BUSYBOX, "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "command": ["sh", "-c", "touch /tmp/alive; exec httpd -f -p 8080 -h /tmp"],
                "startupProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1},
                "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]}, "periodSeconds": 1,
                                  "failureThreshold": 2},
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}))
        wait_for(lambda: (lambda p: p and is_ready(p))(self.pod(ns, "probed")), 30, 0.1, "tcp readiness")
        self.kubectl("exec", "-n", ns, "probed", "--", "rm", "/tmp/alive")

        def restarted():
            p = self.pod(ns, "probed")
            return p if p and container_status(p).get("restartCount") == 1 and is_ready(p) else None
        wait_for(restarted, 30, 0.1, "a restart after the liveness probe failed")
        events = self.kubectl("get", "events", "-n", ns, "-o", "json").stdout
        self.assertIn("failed liveness probe, will be restarted", events)
        self.assertIn("Liveness probe failed", events)

    def test_f3_limits_grace_period_and_unschedulable(self):
        ns = "limits"
        self.create_namespace(ns)
        for pod in (
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "limited", "namespace": ns},
                 "spec": {"terminationGracePeriodSeconds": 3,
                          "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                          "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}]}},
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge", "namespace": ns},
                 "spec": {"containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                          "resources": {"requests": {"cpu": "1000"}}}]}}):
            self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        wait_for(lambda: (lambda p: p and is_ready(p))(self.pod(ns, "limited")), 30, 0.1, "the limited pod")
        p = self.pod(ns, "limited")
        self.assertEqual(p["status"]["qosClass"], "Guaranteed")
        # The limits are the container's cgroup limits.
        mem = self.kubectl("exec", "-n", ns, "limited", "--", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout
        self.assertEqual(int(mem), 64 * 1024 * 1024)
        quota = self.kubectl("exec", "-n", ns, "limited", "--", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us").stdout
        self.assertEqual(int(quota), 25000)
        # sleep ignores SIGTERM as PID 1: the pod goes after its 3 s grace period (SIGKILL).
        start = time.monotonic()
        self.kubectl("delete", "pod", "-n", ns, "limited", "--wait=true", timeout=60)
        took = time.monotonic() - start
        print("MEASURED delete of a pod ignoring SIGTERM (grace 3s): %.2fs" % took)
        self.assertGreaterEqual(took, 2.5)
        self.assertLess(took, 10)
        # No node has 1000 CPUs.
        def unschedulable():
            p = self.pod(ns, "huge")
            for c in p.get("status", {}).get("conditions", []):
                if c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable":
                    return c
            return None
        c = wait_for(unschedulable, 20, 0.1, "PodScheduled=False")
        self.assertIn("Insufficient cpu", c["message"])
        events = self.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=huge",
                              "-o", "json").stdout
        self.assertIn("FailedScheduling", events)
        self.assertEqual(self.pod(ns, "huge")["status"]["phase"], "Pending")

    def test_f4_job_runs_to_completion(self):
        ns = "jobs"
        self.create_namespace(ns)
        self.kubectl("create", "job", "once", "-n", ns, "--image", BUSYBOX, "--", "sh", "-c", "echo job-done")
        self.kubectl("wait", "-n", ns, "--for=condition=complete", "job/once", "--timeout=60s", timeout=90)
        pods = self.pods(ns, "job-name=once")
        self.assertEqual(len(pods), 1)
        self.assertEqual(pods[0]["status"]["phase"], "Succeeded")
        term = container_status(pods[0])["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (0, "Completed"))
        self.assertEqual(self.kubectl("logs", "-n", ns, "job/once").stdout, "job-done\n")
        job = json.loads(self.kubectl("get", "job", "once", "-n", ns, "-o", "json").stdout)
        self.assertEqual(job["status"]["succeeded"], 1)

    def test_f5_cronjob_runs_on_its_schedule(self):
        ns = "cron"
        self.create_namespace(ns)
        bad = self.kubectl("create", "cronjob", "bad", "-n", ns, "--image", BUSYBOX, "--schedule", "61 * * * *",
                           "--", "true", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn('spec.schedule: Invalid value: "61 * * * *": minute value 61 is out of range [0-59]',
                      bad.stderr)
        self.kubectl("create", "cronjob", "tick", "-n", ns, "--image", BUSYBOX, "--schedule", "*/1 * * * *",
                     "--", "sh", "-c", "echo tick")
        t0 = time.monotonic()

        def jobs():
            return json.loads(self.kubectl("get", "jobs", "-n", ns, "-o", "json").stdout)["items"]
        wait_for(lambda: jobs(), 75, 0.5, "the CronJob's first Job")
        job = jobs()[0]
        scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        self.assertTrue(scheduled.endswith(":00Z"), scheduled)  # on the minute
        self.assertRegex(job["metadata"]["name"], r"^tick-\d+$")
        self.assertEqual(job["metadata"]["ownerReferences"][0]["kind"], "CronJob")
        print("MEASURED cronjob: first Job %.1f s after create (scheduled %s)" % (time.monotonic() - t0, scheduled))
        name = job["metadata"]["name"]
        self.kubectl("wait", "-n", ns, "--for=condition=complete", "job/" + name, "--timeout=60s", timeout=90)
        self.assertEqual(self.kubectl("logs", "-n", ns, "job/" + name).stdout, "tick\n")

        def status():
            return json.loads(self.kubectl("get", "cronjob", "tick", "-n", ns, "-o", "json").stdout)["status"]
        wait_for(lambda: "lastSuccessfulTime" in status() and "active" not in status(), 30, 0.5,
                 "the CronJob's status")
        self.assertEqual(status()["lastScheduleTime"], scheduled)
        header, row = self.kubectl("get", "cronjob", "tick", "-n", ns).stdout.splitlines()[:2]
        self.assertIn("*/1 * * * *", row)
        last = row[header.index("LAST SCHEDULE"):header.index("AGE")].strip()
        self.assertRegex(last, r"^\d+s$")  # LAST SCHEDULE is shown
        self.kubectl("patch", "cronjob", "tick", "-n", ns, "-p", '{"spec":{"suspend":true}}')

    def test_f6_statefulset_with_volumes(self):
        ns = "sts"
        self.create_namespace(ns)
        manifest = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: sts}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: web, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: sts}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %s
        command: ["sh", "-c", "hostname >> /data/boots; exec sleep 3600"]
        readinessProbe: {exec: {command: ["test", "-s", "/data/boots"]}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
""" % BUSYBOX
        t0 = time.monotonic()
        created = self.kubectl("apply", "-f", "-", input=manifest)
        self.assertNotIn("Warning", created.stderr)  # acted on, not stored only
        pods = self.wait_ready_count(ns, "app=web", 3, 120)
        print("MEASURED statefulset: 3 ordered pods with volumes Ready %.1f s after apply" % (time.monotonic() - t0))
        by_name = {p["metadata"]["name"]: p for p in pods}
        self.assertEqual(sorted(by_name), ["web-0", "web-1", "web-2"])

        def ready_at(p):
            return next(c["lastTransitionTime"] for c in p["status"]["conditions"] if c["type"] == "Ready")
        # OrderedReady: each pod is made only once the one before it is Ready.
        for before, after in (("web-0", "web-1"), ("web-1", "web-2")):
            self.assertLessEqual(ready_at(by_name[before]), by_name[after]["metadata"]["creationTimestamp"])
        self.assertEqual(by_name["web-1"]["spec"]["hostname"], "web-1")
        self.assertEqual(by_name["web-1"]["spec"]["subdomain"], "web")
        claims = json.loads(self.kubectl("get", "pvc", "-n", ns, "-o", "json").stdout)["items"]
        self.assertEqual(sorted(c["metadata"]["name"] for c in claims), ["data-web-0", "data-web-1", "data-web-2"])
        self.assertTrue(all(c["status"]["phase"] == "Bound" for c in claims), claims)
        self.assertTrue(all(c["spec"]["storageClassName"] == "local-path" for c in claims))
        volumes = {c["spec"]["volumeName"] for c in claims}
        self.assertEqual(len(volumes), 3)  # a volume of its own for each
        table = self.kubectl("get", "pvc", "data-web-1", "-n", ns).stdout
        self.assertRegex(table, r"data-web-1\s+Bound\s+pvc-\S+\s+16Mi\s+RWO\s+local-path")
        self.assertIn("local-path (default)", self.kubectl("get", "storageclass").stdout)

        # A file written by web-1 outlives the pod.
        self.kubectl("exec", "-n", ns, "web-1", "--", "sh", "-c", "echo kept > /data/file")
        old_uid = by_name["web-1"]["metadata"]["uid"]
        self.kubectl("delete", "pod", "web-1", "-n", ns)
        wait_for(lambda: (lambda p: p and p["metadata"]["uid"] != old_uid and is_ready(p))(self.pod(ns, "web-1")),
                 60, 0.2, "web-1 made again")
        self.assertEqual(self.kubectl("exec", "-n", ns, "web-1", "--", "cat", "/data/file").stdout, "kept\n")
        self.assertEqual(self.kubectl("exec", "-n", ns, "web-1", "--", "cat", "/data/boots").stdout,
                         "web-1\nweb-1\n")
        self.assertEqual(self.pod(ns, "web-1")["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
                         "data-web-1")

        # Stable DNS: web-0.web resolves to web-0's address, from a pod of the set.
        ip0 = self.pod(ns, "web-0")["status"]["podIP"]
        out = wait_for(lambda: (lambda r: r if ip0 in r else None)(self.kubectl(
            "exec", "-n", ns, "web-2", "--", "nslookup", "web-0.web.sts.svc.cluster.local", check=False).stdout),
            20, 0.5, "web-0.web in cluster DNS")
        self.assertIn("Address: " + ip0, out)

        # Scaling down removes the highest ordinal first; its claim stays (Retain by default).
        self.kubectl("scale", "statefulset", "web", "-n", ns, "--replicas=2")
        wait_for(lambda: self.pod(ns, "web-2") is None, 60, 0.2, "web-2 removed")
        self.assertEqual(sorted(p["metadata"]["name"] for p in self.pods(ns, "app=web")), ["web-0", "web-1"])
        wait_for(lambda: "2/2" in self.kubectl("get", "sts", "web", "-n", ns).stdout, 30, 0.2, "kubectl get sts 2/2")
        self.assertEqual(self.kubectl("get", "pvc", "data-web-2", "-n", ns, "-o",
                                      "jsonpath={.status.phase}").stdout, "Bound")

        # The claim gone, its volume goes with its directory (local-path's reclaim policy Delete).
        pv2 = self.kubectl("get", "pvc", "data-web-2", "-n", ns, "-o", "jsonpath={.spec.volumeName}").stdout
        path = self.kubectl("get", "pv", pv2, "-o", "jsonpath={.spec.hostPath.path}").stdout
        self.assertTrue(os.path.isdir(path), path)
        self.kubectl("delete", "pvc", "data-web-2", "-n", ns)
        wait_for(lambda: self.kubectl("get", "pv", pv2, check=False).returncode != 0, 30, 0.2, "the volume deleted")
        self.assertFalse(os.path.exists(path))

        # A rolling update and kubectl rollout undo (the set's ControllerRevisions); data stays.
        self.kubectl("set", "env", "sts/web", "-n", ns, "VERSION=2")
        self.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=90s", timeout=120)
        env = self.kubectl("get", "pod", "web-1", "-n", ns, "-o", "jsonpath={.spec.containers[0].env}").stdout
        self.assertIn("VERSION", env)
        self.kubectl("rollout", "undo", "sts/web", "-n", ns)
        self.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=90s", timeout=120)
        wait_for(lambda: "VERSION" not in self.kubectl("get", "pod", "web-1", "-n", ns, "-o",
                                                       "jsonpath={.spec.containers[0].env}").stdout,
                 60, 0.2, "web-1 back on the first template")
        out = self.kubectl("rollout", "history", "sts/web", "-n", ns).stdout.split()
        self.assertEqual(out[out.index("CHANGE-CAUSE") + 1::2], ["2", "3"])
        boots = self.kubectl("exec", "-n", ns, "web-1", "--", "cat", "/data/boots").stdout.split()
        self.assertGreaterEqual(len(boots), 4)  # first start, the restart above, update, undo

    def test_f7_replication_controller(self):
        ns = "rc"
        self.create_namespace(ns)
        manifest = """
apiVersion: v1
kind: ReplicationController
metadata: {name: old, namespace: rc}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: old}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: %s, command: ["sleep", "3600"]}]
""" % BUSYBOX
        self.kubectl("apply", "-f", "-", input=manifest)
        rc = json.loads(self.kubectl("get", "rc", "old", "-n", ns, "-o", "json").stdout)
        self.assertEqual(rc["spec"]["selector"], {"app": "old"})  # defaulted from the template
        self.wait_ready_count(ns, "app=old", 2, 60)
        wait_for(lambda: self.kubectl("get", "rc", "old", "-n", ns, "--no-headers").stdout.split()[1:4] ==
                 ["2", "2", "2"], 30, 0.2, "kubectl get rc: 2 2 2")
        self.kubectl("scale", "rc", "old", "-n", ns, "--replicas=1")
        self.wait_ready_count(ns, "app=old", 1, 60)

    def test_f8_api_service_reaches_a_server_in_a_pod(self):
        """API aggregation: an APIService routes /apis/widgets.podium.test/v1 to a Service whose
        pod is a real TLS server (OpenSSL's s_server serving files), verified with caBundle."""
        ns = "aggr"
        self.create_namespace(ns)
        work = tempfile.mkdtemp(prefix="podium-aggr-")
        self.addCleanup(shutil.rmtree, work, True)
        # The image: Debian's openssl binary and the libraries it loads, nothing else.
        root = os.path.join(work, "ctx", "root")
        for path in ("/usr/bin/openssl", "/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libcrypto.so.3",
                     "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            shutil.copy(os.path.realpath(path), root + path)
        with open(os.path.join(work, "ctx", "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY root/ /\n")
        self.image_build("podium/openssl:3", os.path.join(work, "ctx"))

        def openssl(*args):
            subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=work)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
                "-subj", "/CN=aggr-ca")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=api")
        with open(os.path.join(work, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:api.aggr.svc\n")
        openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "tls.crt", "-days", "1", "-extfile", "san.ext")
        self.kubectl("create", "secret", "tls", "api-tls", "-n", ns, "--cert", os.path.join(work, "tls.crt"),
                     "--key", os.path.join(work, "tls.key"))
        resources = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "widgets.podium.test/v1",
                     "resources": [{"name": "widgets", "singularName": "widget", "namespaced": True,
                                    "kind": "Widget", "verbs": ["get", "list"]}]}
        self.kubectl("create", "configmap", "api-docs", "-n", ns, "--from-literal=v1=" + json.dumps(resources))
        with open(os.path.join(work, "ca.crt"), "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        manifest = [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api", "namespace": ns, "labels": {"app": "api"}},
             "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                 "name": "api", "image": "podium/openssl:3", "workingDir": "/srv",
                 "command": ["/usr/bin/openssl", "s_server", "-WWW", "-accept", "8443",
                             "-cert", "/tls/tls.crt", "-key", "/tls/tls.key"],
                 "readinessProbe": {"tcpSocket": {"port": 8443}, "periodSeconds": 1},
                 "volumeMounts": [{"name": "tls", "mountPath": "/tls"}, {"name": "docs", "mountPath": "/srv"}]}],
                 "volumes": [{"name": "tls", "secret": {"secretName": "api-tls"}},
                             {"name": "docs", "configMap": {"name": "api-docs", "items": [
                                 {"key": "v1", "path": "apis/widgets.podium.test/v1"}]}}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns},
             "spec": {"selector": {"app": "api"}, "ports": [{"port": 443, "targetPort": 8443}]}},
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
             "metadata": {"name": "v1.widgets.podium.test"},
             "spec": {"group": "widgets.podium.test", "version": "v1", "caBundle": ca,
                      "service": {"namespace": ns, "name": "api", "port": 443},
                      "groupPriorityMinimum": 1000, "versionPriority": 15}}]
        self.addCleanup(lambda: self.kubectl("delete", "apiservice", "v1.widgets.podium.test", check=False))
        self.kubectl("apply", "-f", "-", input="\n".join(json.dumps(o) for o in manifest))
        wait_for(lambda: (lambda p: p and is_ready(p))(self.pod(ns, "api")), 60, 0.2, "the API's pod")

        def available():
            row = self.kubectl("get", "apiservice", "v1.widgets.podium.test", "--no-headers").stdout.split()
            return row if row[2] == "True" else None
        row = wait_for(available, 30, 0.3, "the APIService Available")
        self.assertEqual(row[1], "aggr/api")
        raw = json.loads(self.kubectl("get", "--raw", "/apis/widgets.podium.test/v1").stdout)
        self.assertEqual(raw, resources)  # the pod's own answer
        self.assertIn("widgets", self.kubectl("api-resources", "--api-group=widgets.podium.test").stdout)
        # The backend gone, the APIService says so and requests get 503.
        self.kubectl("delete", "pod", "api", "-n", ns, "--wait=true")
        wait_for(lambda: "False (MissingEndpoints)" in self.kubectl("get", "apiservice", "v1.widgets.podium.test").stdout,
                 30, 0.3, "the APIService unavailable")
        gone = self.kubectl("get", "--raw", "/apis/widgets.podium.test/v1", check=False)
        self.assertIn("ServiceUnavailable", gone.stderr + gone.stdout)

    def test_f9_kubectl_debug_adds_an_ephemeral_container(self):
        pods = self.apply_seed()
        name = pods[0]["metadata"]["name"]
        out = self.kubectl("debug", name, "-n", "my-apps", "--image", BUSYBOX, "--target=golang-app",
                           "--container=dbg", "--", "ps")
        self.assertIn('Targeting container "golang-app"', out.stdout + out.stderr)

        def finished():
            statuses = self.pod("my-apps", name)["status"].get("ephemeralContainerStatuses") or []
            done = [s for s in statuses if s["name"] == "dbg" and "terminated" in s.get("state", {})]
            return done[0] if done else None
        status = wait_for(finished, 60, 0.2, "the ephemeral container to run")
        self.assertEqual(status["state"]["terminated"]["exitCode"], 0)
        # --target: it sees the app's processes.
        self.assertIn("/hello", self.kubectl("logs", name, "-n", "my-apps", "-c", "dbg").stdout)
        pod = self.pod("my-apps", name)
        self.assertEqual(pod["spec"]["ephemeralContainers"][0]["targetContainerName"], "golang-app")
        self.assertTrue(is_ready(pod))  # the app's readiness is untouched
        # Ephemeral containers are only added: a change to one is refused with the field named.
        changed = self.kubectl("patch", "pod", name, "-n", "my-apps", "--subresource=ephemeralcontainers",
                               "--type=json", "-p",
                               '[{"op":"replace","path":"/spec/ephemeralContainers/0/image","value":"x"}]',
                               check=False)
        self.assertNotEqual(changed.returncode, 0)
        self.assertIn("spec.ephemeralContainers: Forbidden: existing ephemeral containers may not be changed",
                      changed.stderr)

    def test_h_cluster_dns(self):
        self.apply_seed()
        ns = "dns-test"
        self.create_namespace(ns)
        self.run_busybox(ns, "client", "sleep", "3600")
        wait_for(lambda: (lambda p: p and is_ready(p))(self.pod(ns, "client")), 30, 0.1, "the client pod")
        resolv = self.kubectl("exec", "-n", ns, "client", "--", "cat", "/etc/resolv.conf").stdout
        self.assertIn("search dns-test.svc.cluster.local svc.cluster.local cluster.local", resolv)
        self.assertIn("nameserver 10.43.0.10", resolv)
        self.assertIn("options ndots:5", resolv)
        svc = json.loads(self.kubectl("get", "svc", "golang-app-service", "-n", "my-apps", "-o", "json").stdout)
        out = self.kubectl("exec", "-n", ns, "client", "--", "nslookup",
                           "golang-app-service.my-apps.svc.cluster.local").stdout
        self.assertIn("Address: " + svc["spec"]["clusterIP"], out)
        srv = self.kubectl("exec", "-n", ns, "client", "--", "nslookup", "-type=SRV",
                           "golang-app-service.my-apps.svc.cluster.local", check=False).stdout
        self.assertIn("golang-app-service.my-apps.svc.cluster.local", srv)
        self.assertIn(" 80 ", srv)
        missing = self.kubectl("exec", "-n", ns, "client", "--", "nslookup", "nope.my-apps.svc.cluster.local",
                               check=False)
        self.assertIn("NXDOMAIN", missing.stdout + missing.stderr)
        # Pod A records resolve to the address in the name.
        pod_ip = self.pod(ns, "client")["status"]["podIP"]
        out = self.kubectl("exec", "-n", ns, "client", "--", "nslookup",
                           pod_ip.replace(".", "-") + ".dns-test.pod.cluster.local").stdout
        self.assertIn("Address: " + pod_ip, out)
        # A second agent on this node's pod range would hand out the same pod IPs and take over,
        # then delete, the DNS redirect: it is refused, and the cluster DNS keeps answering.
        data = tempfile.mkdtemp(prefix="podium-e2e-agent-")
        try:
            second = subprocess.run(
                [PODIUM, "agent", "--server", "https://127.0.0.1:%d" % self.server.port,
                 "--token", os.path.join(self.server.data_dir, "tls", "admin.token"),
                 "--ca-file", os.path.join(self.server.data_dir, "tls", "ca.crt"),
                 "--data-dir", data, "--node-name", "intruder", "--node-ip", "127.0.0.1",
                 "--port", str(free_port()), "--pod-cidr", "10.42.0.0/24", "--ingress-http-port", "0",
                 "--ingress-https-port", "0", "--registry", self.registry],
                capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(data, ignore_errors=True)
        self.assertEqual(second.returncode, 1, second.stderr)
        self.assertIn("the pod network podium0 is in use by another podium node agent on this machine (pid %d)"
                      % self.server.proc.pid, second.stderr)
        self.assertEqual(self.kubectl("get", "node", "intruder", check=False).returncode, 1)
        out = self.kubectl("exec", "-n", ns, "client", "--", "nslookup",
                           "golang-app-service.my-apps.svc.cluster.local").stdout
        self.assertIn("Address: " + svc["spec"]["clusterIP"], out)

    def test_h2_a_new_pod_inherits_no_flows_of_a_gone_one(self):
        """A gone pod's UDP flows to the cluster DNS stay tracked for up to 120 s, NATed to the DNS
        port of its agent's time. A new pod given its IP must not have its lookups follow them
        to a closed port (wget: bad address, when an agent had restarted in between)."""
        ipam = os.path.join(self.server.data_dir, "node", "containerd", "cni-ipam", "podium", "last_reserved_ip.0")
        try:
            with open(ipam) as f:
                last = f.read().strip().split(".")
        except FileNotFoundError:  # no pod yet: the first address after the gateway's
            last = ["10", "42", "0", "1"]
        ip = ".".join(last[:3] + [str(int(last[3]) + 1)])
        ports = (40000, 40001, 40002)
        for port in ports:  # as a gone pod at `ip` and an agent whose DNS was on port 9 left them
            subprocess.run(["conntrack", "-I", "-p", "udp", "-s", ip, "-d", "10.43.0.10", "--sport", str(port),
                            "--dport", "53", "-r", "10.42.0.1", "-q", ip, "--reply-port-src", "9",
                            "--reply-port-dst", str(port), "--timeout", "120", "-u", "SEEN_REPLY,ASSURED"],
                           check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["conntrack", "-D", "--orig-src", ip], capture_output=True)
        ns = "stale-flows"
        self.create_namespace(ns)
        self.run_busybox(ns, "heir", "sleep", "3600")
        pod = wait_for(lambda: (lambda p: p if p and is_ready(p) else None)(self.pod(ns, "heir")), 30, 0.1, "heir")
        self.assertEqual(pod["status"]["podIP"], ip, "the pod got the address after the last one handed out")
        # A lookup from the pod's network namespace, from one of those source ports.
        netns = next(n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                          text=True).stdout.splitlines()
                     if ip + "/" in subprocess.run(["ip", "-n", n.split()[0], "-4", "-o", "addr"],
                                                   capture_output=True, text=True).stdout)
        query = ("import socket,struct,sys\n"
                 "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('%s',%d));s.settimeout(3)\n"
                 "q=struct.pack('>HHHHHH',0x1234,0x100,1,0,0,0)+b''.join(bytes([len(l)])+l.encode() for l in "
                 "'kubernetes.default.svc.cluster.local'.split('.'))+b'\\0'+struct.pack('>HH',1,1)\n"
                 "s.sendto(q,('10.43.0.10',53))\n"
                 "try:\n r=s.recv(512);print('answers',struct.unpack('>H',r[6:8])[0])\n"
                 "except OSError as e:\n print('error',e)\n" % (ip, ports[0]))
        out = subprocess.run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c", query],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.stdout.strip(), "answers 1", out.stdout + out.stderr)
        self.assertNotIn("sport=%d " % ports[1], subprocess.run(["conntrack", "-L", "--orig-src", ip],
                                                                 capture_output=True, text=True).stdout)

    def test_g_namespace_delete_removes_containers(self):
        ns = "doomed"
        self.kubectl("create", "namespace", ns)
        self.kubectl("create", "deployment", "sleepers", "-n", ns, "--image", BUSYBOX, "--replicas=2", "--",
                     "sleep", "3600")
        pods = self.wait_ready_count(ns, "app=sleepers", 2, 60)
        uids = [p["metadata"]["uid"] for p in pods]
        label = 'labels."io.kubernetes.pod.namespace"==%s' % ns
        self.assertEqual(len(self.ctr("containers", "ls", "-q", label).stdout.split()), 4)  # 2 sandboxes + 2 apps
        self.kubectl("delete", "namespace", ns, "--timeout=90s", timeout=120)
        self.assertNotEqual(self.kubectl("get", "namespace", ns, check=False).returncode, 0)
        wait_for(lambda: not self.ctr("containers", "ls", "-q", label).stdout.split(), 30, 0.2,
                 "the namespace's containers to go")
        for uid in uids:
            self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "node", "pods", uid)))

    # --- a second node ------------------------------------------------------------------------
    def test_y_second_node_joins_with_podium_agent(self):
        data = tempfile.mkdtemp(prefix="podium-e2e-agent-")
        port = free_port()
        log = open(os.path.join(data, "agent.log"), "wb")
        agent = subprocess.Popen(
            [PODIUM, "agent", "--server", "https://127.0.0.1:%d" % self.server.port,
             "--token", os.path.join(self.server.data_dir, "tls", "admin.token"),
             "--ca-file", os.path.join(self.server.data_dir, "tls", "ca.crt"),
             "--data-dir", data, "--node-name", "node2", "--node-ip", "127.0.0.1", "--port", str(port),
             "--pod-cidr", "10.42.1.0/24", "--registry", self.registry, "--ingress-http-port", "0",
             "--ingress-https-port", "0"],
            stdout=log, stderr=subprocess.STDOUT)

        try:
            def node2_ready():
                p = self.kubectl("get", "node", "node2", "-o", "json", check=False)
                return p.returncode == 0 and any(c["type"] == "Ready" and c["status"] == "True"
                                                 for c in json.loads(p.stdout)["status"]["conditions"])
            wait_for(node2_ready, 60, 0.2, "node2 to join")
            ns = "two-nodes"
            self.create_namespace(ns)
            # The scheduler spreads one owner's replicas over the nodes.
            self.kubectl("create", "deployment", "spread", "-n", ns, "--image", BUSYBOX, "--replicas=2", "--",
                         "httpd", "-f", "-p", "8080", "-h", "/etc")
            pods = self.wait_ready_count(ns, "app=spread", 2, 60)
            self.assertIn("node2", [p["spec"]["nodeName"] for p in pods])
            self.assertEqual(len({p["spec"]["nodeName"] for p in pods}), 2)
            remote = [p for p in pods if p["spec"]["nodeName"] == "node2"][0]
            name, ip = remote["metadata"]["name"], remote["status"]["podIP"]
            self.assertTrue(ip.startswith("10.42.1."), ip)
            self.assertEqual(http_get("http://%s:8080/hostname" % ip), name + "\n")
            # Logs, exec and port-forward reach the remote node through the API server.
            self.assertEqual(self.kubectl("exec", "-n", ns, name, "--", "hostname").stdout, name + "\n")
            self.assertEqual(self.kubectl("exec", "-i", "-n", ns, name, "--", "cat", input="via node2\n").stdout,
                             "via node2\n")
            self.kubectl("logs", "-n", ns, name)
            lport = free_port()
            pf = self.server.kubectl_popen("port-forward", "-n", ns, "pod/" + name, "%d:8080" % lport)
            try:
                body = wait_for(lambda: self.try_get("http://127.0.0.1:%d/hostname" % lport), 20, 0.1,
                                "port-forward to node2")
                self.assertEqual(body, name + "\n")
            finally:
                pf.terminate()
                pf.communicate()
            # The kubelet's Summary API on the node's endpoint: a pod burning one core shows as about
            # one core (on a 2-core machine it gets most of one).
            self.kubectl("run", "burn", "-n", ns, "--image", BUSYBOX, "--restart=Never", "--overrides",
                         json.dumps({"spec": {"nodeName": "node2"}}), "--", "sh", "-c", "while :; do :; done")
            wait_for(lambda: is_ready(self.pod(ns, "burn") or {}), 60, 0.2, "the burning pod")
            with open(os.path.join(self.server.data_dir, "tls", "admin.token")) as f:
                token = f.read().strip()
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

            def burn_cores():
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                conn.request("GET", "/stats/summary", headers={"Authorization": "Bearer " + token})
                summary = json.loads(conn.getresponse().read())
                conn.close()
                pod = next((p for p in summary["pods"] if p["podRef"]["name"] == "burn"), None)
                rate = pod and pod["cpu"].get("usageNanoCores")
                return (rate / 1e9, summary) if rate else None
            cores, summary = wait_for(burn_cores, 20, 0.5, "the burning pod's CPU rate")
            print("MEASURED /stats/summary: the burning pod uses %.2f cores; node %.2f cores, %d MiB"
                  % (cores, summary["node"]["cpu"].get("usageNanoCores", 0) / 1e9,
                     summary["node"]["memory"]["workingSetBytes"] >> 20))
            # Each node's /metrics through nodes/proxy (node2's relayed to its agent, the server's own
            # answered in process): pod start-up by stage, counted for the pods each started.
            for n in [i["metadata"]["name"] for i in json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]]:
                text = self.kubectl("get", "--raw", "/api/v1/nodes/%s/proxy/metrics" % n).stdout
                count = re.search(r'podium_pod_start_stage_seconds_count\{stage="total"\} (\d+)', text)
                self.assertTrue(count and int(count.group(1)) >= 1, text[:400])
            self.assertGreater(cores, 0.3)
            self.assertLess(cores, 1.2)
            self.check_daemonset_on_two_nodes(ns)
            self.kubectl("delete", "namespace", ns, "--timeout=60s", timeout=90)
            self.assertEqual(agent.poll(), None, "the agent keeps running")
        finally:
            stop_process(agent, 30)
            log.close()
            left = pids_under(data)
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(data, ignore_errors=True)
            self.kubectl("delete", "node", "node2", "--wait=false", check=False)
        self.assertEqual(left, [], "stopping podium agent stops containerd and its shims")

    def check_daemonset_on_two_nodes(self, ns):
        """A DaemonSet runs one pod on each node; a rolling update replaces them one at a time."""
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
              "spec": {"selector": {"matchLabels": {"app": "agent"}},
                       "template": {"metadata": {"labels": {"app": "agent"}},
                                    "spec": {"terminationGracePeriodSeconds": 1,
                                             "containers": [{"name": "agent", "image": BUSYBOX,
                                                             "command": ["sh", "-c", "sleep 3600"]}]}}}}
        t0 = time.monotonic()
        self.kubectl("apply", "-f", "-", input=json.dumps(ds))

        def status():
            return json.loads(self.kubectl("get", "ds", "agent", "-n", ns, "-o", "json").stdout).get("status", {})

        def counts():
            s = status()
            return [s.get(k, 0) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                          "updatedNumberScheduled", "numberAvailable")]
        wait_for(lambda: counts() == [2, 2, 2, 2, 2], 90, 0.5, "a daemon pod Ready on each node")
        print("MEASURED daemonset: a pod Ready on each of 2 nodes %.1f s after apply" % (time.monotonic() - t0))
        pods = self.pods(ns, "app=agent")
        nodes = [n["metadata"]["name"] for n in json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]]
        self.assertEqual(sorted(p["spec"]["nodeName"] for p in pods), sorted(nodes))
        header, row = self.kubectl("get", "ds", "agent", "-n", ns).stdout.splitlines()[:2]
        self.assertEqual(header.split()[:6], ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"])
        self.assertEqual(row.split()[:6], ["agent", "2", "2", "2", "2", "2"])
        old = {p["metadata"]["labels"]["controller-revision-hash"] for p in pods}
        new = None
        # The rolling update: never both daemons down at once (maxUnavailable 1).
        t0 = time.monotonic()
        self.kubectl("set", "env", "ds/agent", "-n", ns, "VERSION=2")
        least = 2

        def rolled():
            nonlocal least
            s = status()
            least = min(least, s.get("numberAvailable", 0))
            live = [p for p in self.pods(ns, "app=agent") if "deletionTimestamp" not in p["metadata"]]
            return (s.get("updatedNumberScheduled") == 2 and s.get("numberAvailable") == 2 and len(live) == 2
                    and all(p["metadata"]["labels"]["controller-revision-hash"] not in (old or ()) for p in live)
                    and (new is None or all(p["metadata"]["labels"]["controller-revision-hash"] in new
                                            for p in live)))
        wait_for(rolled, 120, 0.2, "the rolling update of the DaemonSet")
        print("MEASURED daemonset: rolling update of 2 nodes %.1f s; fewest available during it: %d"
              % (time.monotonic() - t0, least))
        self.assertGreaterEqual(least, 1)
        # Its templates are ControllerRevisions: kubectl rollout history lists them, and rollout
        # undo brings the first back — here with maxSurge, so no node is ever without its daemon.
        def revisions():
            out = self.kubectl("rollout", "history", "ds/agent", "-n", ns).stdout.split()
            return out[out.index("CHANGE-CAUSE") + 1::2]
        self.assertEqual(revisions(), ["1", "2"])
        self.kubectl("patch", "ds", "agent", "-n", ns, "-p", json.dumps(
            {"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}))
        t0 = time.monotonic()
        self.kubectl("rollout", "undo", "ds/agent", "-n", ns)
        new, old, least = old, None, 2
        wait_for(rolled, 120, 0.2, "the rollback of the DaemonSet")
        print("MEASURED daemonset: rollback with maxSurge 1 on 2 nodes %.1f s; fewest available during it: %d"
              % (time.monotonic() - t0, least))
        self.assertEqual(least, 2)
        live = [p for p in self.pods(ns, "app=agent") if "deletionTimestamp" not in p["metadata"]]
        self.assertEqual({p["metadata"]["labels"]["controller-revision-hash"] for p in live}, new)
        self.assertNotIn("VERSION", json.dumps(live[0]["spec"]["containers"][0]))
        self.assertEqual(revisions(), ["2", "3"])  # the first template came back as the newest
        self.kubectl("delete", "ds", "agent", "-n", ns)

    # --- restart -----------------------------------------------------------------------------
    def test_z_server_restart_brings_pods_back(self):
        pods = self.apply_seed()
        before = sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pods)
        pids = self.server.leftover_pids()
        self.assertTrue(pids, "containerd, shims and the registry run from the data dir")
        self.server.stop()
        alive = self.server.leftover_pids()
        self.assertEqual(alive, [], "stopping podium server stops everything it started: %s" % [
            open("/proc/%d/cmdline" % pid).read().replace("\0", " ") for pid in alive])
        self.server.start()
        wait_for(self.node_ready, 60, 0.2, "the node to be Ready again")
        pods = self.wait_ready_count("my-apps", "app=golang-app", 3, 60)
        after = sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pods)
        self.assertEqual(after, before)
        for p in pods:
            self.assertEqual(http_get("http://%s:8080/" % p["status"]["podIP"]), "Hello World! Running version: v1.0.0\n")
        # One sandbox per pod: nothing duplicated.
        sandboxes = [l for l in self.ctr("containers", "ls").stdout.splitlines()[1:] if "pause" in l]
        running = [l for l in self.ctr("tasks", "ls").stdout.splitlines()[1:] if "RUNNING" in l]
        self.assertEqual(len(running), len(set(l.split()[0] for l in running)))
        self.assertGreaterEqual(len(sandboxes), 3)


if __name__ == "__main__":
    unittest.main()
