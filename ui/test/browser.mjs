// Drives Podium's web UI in Debian's Chromium (playwright-core, no downloaded browsers) and
// prints what it saw as one JSON object; test/e2e/test_ui.py starts the server and judges it.
//   node ui/test/browser.mjs BASE_URL PASSWORD SCREENSHOT_DIR
import { chromium } from "playwright-core";

const [base, password, shots] = process.argv.slice(2);
const APPS = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications";
const app = (name, ns = "argocd") => ({
  apiVersion: "argoproj.io/v1alpha1", kind: "Application",
  metadata: { name, namespace: ns },
  spec: { project: "default", source: { repoURL: "https://git.example.com/" + name + ".git", path: ".", targetRevision: "HEAD" },
          destination: { server: "https://kubernetes.default.svc", namespace: "default" } },
});

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const out = {};
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  out.failedRequests = [];
  page.on("requestfailed", (r) => out.failedRequests.length < 5 &&
                                  out.failedRequests.push(r.method() + " " + r.url() + ": " + r.failure()?.errorText));
  const status = (path) => page.evaluate(async (p) => (await fetch(p)).status, path);
  await page.goto(base + "/ui/");
  await page.waitForSelector("#password");
  out.apiWithoutSession = await status(APPS);
  await page.fill("#password", "not-the-password");
  await page.click("#login");
  await page.waitForFunction(() => document.querySelector("#login-error")?.textContent.length > 0);
  out.wrongPasswordMessage = await page.textContent("#login-error");
  await page.screenshot({ path: shots + "/login.png" });

  await page.fill("#password", password);
  await page.click("#login");
  await page.waitForSelector("#apps");
  const cookie = (await context.cookies()).find((c) => c.name === "podium_session");
  out.cookie = cookie && { httpOnly: cookie.httpOnly, secure: cookie.secure, sameSite: cookie.sameSite };
  out.apiWithSession = await status(APPS);

  // One created through the API shows up without a reload.
  let t0 = Date.now();
  await page.evaluate(async ([path, body]) => {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(await r.text());
  }, [APPS, app("live-one")]);
  await page.waitForSelector('[data-app="argocd/live-one"]');
  out.createdAppearsMs = Date.now() - t0;

  // 2,000 Applications through the API, then the page loaded afresh.
  await page.evaluate(async ([path, n, make]) => {
    const mk = new Function("return " + make)();
    for (let i = 0; i < n; i += 10)
      await Promise.all(Array.from({ length: Math.min(10, n - i) }, async (_, j) => {
        const body = JSON.stringify(mk("bulk-" + String(i + j).padStart(4, "0")));
        // Chrome drops requests in flight when the machine's interfaces change (other tests'
        // pod networks): send again; one that did arrive answers 409 the second time.
        for (let attempt = 0; ; attempt++) {
          const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body })
            .catch((e) => { if (attempt >= 4) throw e; return null; });
          if (r && (r.ok || r.status === 409)) return;
          if (r) throw new Error("create " + r.status);
        }
      }));
  }, [APPS, 2000, app.toString()]);
  await page.reload();
  await page.waitForSelector('[data-app="argocd/bulk-0000"]');
  await page.waitForFunction(() => window.podiumMetrics.listRenderMs !== undefined);
  out.list = await page.evaluate(() => ({ ...window.podiumMetrics, rows: document.querySelectorAll("#apps .row").length,
                                           count: document.querySelector("#count").textContent }));
  await page.screenshot({ path: shots + "/applications-table.png" });

  // One app changes: its row, and only it, is written again.
  const before = await page.evaluate(() => window.podiumMetrics.rowWrites);
  t0 = Date.now();
  await page.evaluate(async (path) => {
    const r = await fetch(path + "/bulk-0003", { method: "PATCH", headers: { "Content-Type": "application/merge-patch+json" },
      body: JSON.stringify({ status: { sync: { status: "OutOfSync" }, health: { status: "Degraded" } } }) });
    if (!r.ok) throw new Error(await r.text());
  }, APPS);
  await page.waitForFunction(() => document.querySelector('[data-app="argocd/bulk-0003"] .sync')?.textContent === "OutOfSync");
  out.changedRowMs = Date.now() - t0;
  out.rowWrites = (await page.evaluate(() => window.podiumMetrics.rowWrites)) - before;
  out.changedRowText = await page.textContent('[data-app="argocd/bulk-0003"]');

  // Filters and search narrow the list.
  await page.selectOption("#filter-sync", "OutOfSync");
  out.filteredCount = await page.textContent("#count");
  await page.selectOption("#filter-sync", "");
  await page.fill("#search", "bulk-19");
  out.searchCount = await page.textContent("#count");
  await page.click("#view-toggle");
  await page.waitForSelector(".tile");
  out.tiles = await page.evaluate(() => document.querySelectorAll(".tile").length);
  await page.screenshot({ path: shots + "/applications-tiles.png" });

  // The cluster view: namespaces, nodes, workloads, pods and events from the API.
  await page.click("#nav-cluster");
  await page.waitForSelector("#cluster-namespaces");
  out.namespaces = await page.evaluate(() => [...document.querySelectorAll("#cluster-namespaces tr td:first-child")].map((td) => td.textContent));
  await page.screenshot({ path: shots + "/cluster.png" });

  await page.click("#logout");
  await page.waitForSelector("#password");
  out.apiAfterLogout = await status(APPS);
} catch (e) {
  out.error = String(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
