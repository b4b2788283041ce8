"""Watch semantics over HTTP: bookmarks, sendInitialEvents, resuming from a revision, 410 when
the revision has left the history, and kubectl get -w across a selector."""
import http.client
import json
import time
import unittest

from podium_e2e import ServerTestCase

CM = "/api/v1/namespaces/default/configmaps"


class WatchTest(ServerTestCase):
    server_args = ("--watch-bookmark-interval", "1", "--watch-history", "50")

    def stream(self, path, lines, timeout=10):
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.server.ssl_context(), timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            if resp.status != 200:
                return resp.status, [json.loads(resp.read())]
            out = [json.loads(resp.readline()) for _ in range(lines)]
            return resp.status, out
        finally:
            conn.close()

    def create(self, name, labels=None):
        code, obj = self.server.request_json("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                                          "metadata": {"name": name, "labels": labels or {}}})
        self.assertEqual(code, 201, obj)
        return obj

    def test_bookmarks_when_idle(self):
        obj = self.create("bm")
        rv = int(obj["metadata"]["resourceVersion"])
        start = time.monotonic()
        code, events = self.stream(CM + "?watch=1&allowWatchBookmarks=true&resourceVersion=%d" % rv, 1)
        self.assertEqual(code, 200)
        self.assertEqual(events[0]["type"], "BOOKMARK")
        self.assertGreaterEqual(int(events[0]["object"]["metadata"]["resourceVersion"]), rv)
        self.assertLess(time.monotonic() - start, 5)

    def test_send_initial_events_ends_with_bookmark(self):
        self.create("init-a", {"set": "init"})
        self.create("init-b", {"set": "init"})
        code, events = self.stream(CM + "?watch=1&labelSelector=set%3Dinit&sendInitialEvents=true"
                                   "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", 3)
        self.assertEqual([e["type"] for e in events], ["ADDED", "ADDED", "BOOKMARK"])
        self.assertEqual(events[2]["object"]["metadata"]["annotations"], {"k8s.io/initial-events-end": "true"})

    def test_resume_and_expire(self):
        first = self.create("resume-0")
        rv = first["metadata"]["resourceVersion"]
        self.create("resume-1")
        code, events = self.stream(CM + "?watch=1&resourceVersion=" + rv, 1)
        self.assertEqual(code, 200)
        self.assertEqual((events[0]["type"], events[0]["object"]["metadata"]["name"]), ("ADDED", "resume-1"))
        for i in range(60):  # push the old revision out of the 50-event history
            self.create("filler-%d" % i)
        code, body = self.stream(CM + "?watch=1&resourceVersion=" + rv, 1)
        self.assertEqual(code, 410)
        self.assertEqual(body[0]["reason"], "Expired")
        self.assertIn("too old resource version", body[0]["message"])

    def test_kubectl_watch_sees_label_transitions(self):
        self.create("flip", {"color": "red"})
        w = self.server.kubectl_popen("get", "cm", "-n", "default", "-l", "color=blue", "-w", "--output-watch-events")
        try:
            time.sleep(1)
            self.kubectl("label", "cm", "flip", "-n", "default", "color=blue", "--overwrite")
            line = w.stdout.readline()
            if line.startswith("EVENT"):
                line = w.stdout.readline()
            self.assertRegex(line, r"ADDED\s+flip")
            self.kubectl("label", "cm", "flip", "-n", "default", "color=green", "--overwrite")
            line = w.stdout.readline()
            self.assertRegex(line, r"DELETED\s+flip")
        finally:
            w.kill()
            w.communicate()


if __name__ == "__main__":
    unittest.main()
