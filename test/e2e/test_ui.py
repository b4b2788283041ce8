"""The web UI in a real browser: Debian's Chromium driven by playwright-core (ui/test/browser.mjs)
against `podium server`: the generated admin password, a refused wrong one, the API closed
without a session and open with it, the applications list kept live by a watch (server-sent
events), 2,000 Applications rendered and one row updated alone, filters, search, tiles, logout.
Screenshots go to build/ui-screenshots/."""
import json
import os
import subprocess
import unittest

from podium_e2e import UI_AVAILABLE, UI_MISSING, UI_SHOTS, ServerTestCase, ui_script


@unittest.skipUnless(UI_AVAILABLE, UI_MISSING)
class UiTest(ServerTestCase):
    # The applications are the test's own (no controller rewrites their status).
    server_args = ("--no-controllers",)

    def test_the_applications_page_in_chromium(self):
        self.kubectl("create", "namespace", "argocd")
        p = subprocess.run(ui_script(self.server, "browser.mjs"), capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        print("MEASURED UI: %s" % json.dumps(seen))
        self.assertEqual(seen["apiWithoutSession"], 401)
        self.assertEqual(seen["wrongPasswordMessage"], "Invalid username or password")
        self.assertEqual(seen["cookie"], {"httpOnly": True, "secure": True, "sameSite": "Strict"})
        self.assertEqual(seen["apiWithSession"], 200)
        self.assertEqual(seen["list"]["count"], "2001 of 2001 applications")
        self.assertLess(seen["list"]["listRenderMs"], 1000)
        self.assertLess(seen["list"]["rows"], 200)  # virtualised: the rows in view, not 2,001
        self.assertEqual(seen["rowWrites"], 1)
        self.assertIn("OutOfSync", seen["changedRowText"])
        self.assertIn("Degraded", seen["changedRowText"])
        self.assertEqual(seen["filteredCount"], "1 of 2001 applications")
        self.assertEqual(seen["searchCount"], "100 of 2001 applications")
        self.assertEqual(seen["tiles"], 100)
        self.assertTrue({"argocd", "default", "kube-system"} <= set(seen["namespaces"]), seen["namespaces"])
        self.assertEqual(seen["apiAfterLogout"], 401)
        for shot in ("login.png", "applications-table.png", "applications-tiles.png", "cluster.png"):
            self.assertGreater(os.path.getsize(os.path.join(UI_SHOTS, shot)), 5000)


if __name__ == "__main__":
    unittest.main()
