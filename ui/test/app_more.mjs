// The rest of an application's page in Debian's Chromium (test_gitops.py's test_k): the network
// view of the seed's app (Gateway → VirtualService → Service → Pods), a Pod's logs, events and
// manifest in the side panel, a selective sync with an option, and the tree of an application
// with 1,500 resources, timed. One JSON line a step on stdout; the test answers on stdin.
//   node ui/test/app_more.mjs BASE_URL PASSWORD SCREENSHOT_DIR
import { createInterface } from "node:readline";
import { signedIn } from "./session.mjs";

const [base, password, shots] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (o) => console.log(JSON.stringify(o));
const hear = async () => (await lines.next()).value;

const { browser, page } = await signedIn(base, password, "#/apps/argocd/golang-app", { width: 1280, height: 900 });
try {
  await page.waitForSelector("#tab-network");
  await page.click("#tab-network");
  await page.waitForFunction(() => [...document.querySelectorAll("#network .path")].some((p) =>
    p.dataset.path.startsWith("Gateway:my-gateway") && p.querySelector('.pods[data-pods="3"]')), null, { timeout: 20000 });
  const paths = await page.evaluate(() => [...document.querySelectorAll("#network .path")].map((p) =>
    p.dataset.path + (p.querySelector(".pods") ? " > " + p.querySelector(".pods").dataset.pods + " pods" : "")));
  await page.screenshot({ path: shots + "/application-network.png" });

  await page.click("#tab-tree");
  await page.click('#tree li[data-kind="Pod"] > .name');
  await page.waitForSelector('#resource-panel[data-kind="Pod"] #panel-tab-logs');
  await page.click("#panel-tab-logs");
  await page.waitForFunction(() => /Server starting/.test(document.querySelector("#logs")?.textContent || ""), null, { timeout: 20000 });
  const logs = await page.textContent("#logs");
  const following = await page.isChecked("#log-follow");
  await page.screenshot({ path: shots + "/resource-logs.png" });
  await page.click("#panel-tab-events");
  await page.waitForSelector("#events");
  const events = await page.evaluate(() => [...document.querySelectorAll("#events tr td:nth-child(3)")].map((td) => td.textContent));
  await page.click("#panel-tab-manifest");
  await page.waitForFunction(() => /"kind": "Pod"/.test(document.querySelector("#manifest")?.textContent || ""));
  await page.click("#panel-close");

  await page.check('.select-resource[data-key="/Service/my-apps/golang-app-service"]');
  await page.click(".sync-options summary");
  await page.check('[data-option="Validate=false"]');
  const syncLabel = await page.textContent("#sync");
  await page.click("#sync");
  say({ step: "page", paths, logs, following, events, syncLabel });

  await hear(); // the 1,500-resource application is synced
  const t0 = await page.evaluate(() => { location.hash = "#/apps/argocd/big"; return performance.now(); });
  await page.waitForFunction(() => document.querySelectorAll('#tree li[data-kind="ConfigMap"]').length === 1500, null, { timeout: 30000 });
  const t1 = await page.evaluate(() => performance.now());
  // Responsive once drawn: ticking a box updates the sync button at once.
  const tickMs = await page.evaluate(async () => {
    const box = document.querySelectorAll(".select-resource")[700];
    const s = performance.now();
    box.click();
    return document.getElementById("sync").textContent === "Sync 1 selected" ? performance.now() - s : -1;
  });
  const requests = await page.evaluate(() => performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/applications/big/resource-tree")).length);
  await page.screenshot({ path: shots + "/application-big.png" });
  say({ step: "big", treeMs: Math.round(t1 - t0), tickMs, rows: await page.evaluate(() => document.querySelectorAll("#tree li").length), requests });
} catch (e) {
  say({ step: "error", error: String(e) });
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
