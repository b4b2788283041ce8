"""Every write acknowledged to a client survives kill -9 of the server: a burst of concurrent
writes is cut short by SIGKILL, the server restarts from its data directory, and every object
whose create returned 201 is there with the data it was written with."""
import json
import threading
import unittest

from podium_e2e import PODIUM, Server, wait_for
import os


class DurabilityTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(PODIUM):
            raise unittest.SkipTest("podium binary not built")
        self.server = Server().start()

    def tearDown(self):
        self.server.close()

    def test_acknowledged_writes_survive_kill9(self):
        acked = {}
        lock = threading.Lock()
        stop = threading.Event()

        def writer(w):
            i = 0
            while not stop.is_set():
                name = "w%d-%d" % (w, i)
                try:
                    code, obj = self.server.request_json(
                        "POST", "/api/v1/namespaces/default/configmaps",
                        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"value": name * 3}})
                except Exception:
                    return  # the server died mid-request: not acknowledged
                if code == 201:
                    with lock:
                        acked[name] = obj["metadata"]["resourceVersion"]
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 300, 60, what="300 acknowledged writes")
        self.server.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreaterEqual(len(acked), 300)

        self.server.start(port=self.server.port)
        code, lst = self.server.request_json("GET", "/api/v1/namespaces/default/configmaps")
        self.assertEqual(code, 200)
        present = {i["metadata"]["name"]: i for i in lst["items"]}
        missing = sorted(set(acked) - set(present))
        self.assertEqual(missing, [], "acknowledged writes lost after kill -9")
        for name in acked:
            self.assertEqual(present[name]["data"]["value"], name * 3)
        # Revisions keep increasing after the restart.
        code, obj = self.server.request_json("POST", "/api/v1/namespaces/default/configmaps",
                                             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}})
        self.assertEqual(code, 201)
        self.assertGreater(int(obj["metadata"]["resourceVersion"]), max(int(v) for v in acked.values()))

    def test_watch_resumes_across_restart(self):
        code, obj = self.server.request_json("POST", "/api/v1/namespaces/default/configmaps",
                                             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r1"}})
        rv = obj["metadata"]["resourceVersion"]
        self.server.request_json("POST", "/api/v1/namespaces/default/configmaps",
                                 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r2"}})
        self.server.stop()
        self.server.start(port=self.server.port)
        code, hdrs, body = self.server.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=%s&timeoutSeconds=1" % rv)
        self.assertEqual(code, 200)
        events = [json.loads(l) for l in body.decode().splitlines() if l]
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events], [("ADDED", "r2")])


if __name__ == "__main__":
    unittest.main()
