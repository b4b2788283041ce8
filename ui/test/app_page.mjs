// The seed's Application in the UI, driven in Debian's Chromium (see test_gitops.py's
// test_j): list → app page (tree) → a commit the test makes → OutOfSync without a reload →
// diff → Sync → History → Rollback. Talks to the test over stdin/stdout, one JSON line a step.
//   node ui/test/app_page.mjs BASE_URL PASSWORD SCREENSHOT_DIR
import { createInterface } from "node:readline";
import { signedIn } from "./session.mjs";

const [base, password, shots] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (o) => console.log(JSON.stringify(o));
const hear = async () => (await lines.next()).value;
const APP = '[data-app="argocd/golang-app"]';

const { browser, page } = await signedIn(base, password, "", { width: 1280, height: 900 });
try {
  await page.waitForSelector(APP);
  await page.waitForFunction((s) => /Synced/.test(document.querySelector(s + " .sync").textContent) &&
                                    /Healthy/.test(document.querySelector(s + " .health").textContent), APP);
  const listRow = await page.textContent(APP);
  await page.click(APP);
  await page.waitForFunction(() => document.querySelectorAll('#tree li[data-kind="Pod"]').length === 3);
  const tree = await page.evaluate(() => [...document.querySelectorAll("#tree li")].map((li) =>
    li.dataset.kind + ":" + (li.querySelector(":scope > .badge")?.textContent ?? "-")));
  await page.screenshot({ path: shots + "/application-tree.png" });
  say({ step: "tree", listRow, tree });

  await hear(); // the test committed a change on the deploy branch
  let t0 = Date.now();
  await page.waitForFunction(() => document.querySelector("#app-sync").textContent === "OutOfSync", null, { timeout: 30000 });
  const outOfSyncMs = Date.now() - t0;
  await page.click("#tab-diff");
  await page.waitForSelector("#diff .added");
  const added = await page.evaluate(() => [...document.querySelectorAll("#diff .added")].map((d) => d.textContent.trim()));
  const removed = await page.evaluate(() => [...document.querySelectorAll("#diff .removed")].map((d) => d.textContent.trim()));
  await page.screenshot({ path: shots + "/application-diff.png" });
  t0 = Date.now();
  await page.click("#sync");
  await page.waitForFunction(() => document.querySelector("#app-sync").textContent === "Synced", null, { timeout: 60000 });
  const syncMs = Date.now() - t0;
  await page.click("#tab-history");
  await page.waitForSelector("#history tr[data-revision]");
  const revisions = await page.evaluate(() => [...document.querySelectorAll("#history tr[data-revision]")].map((r) => r.dataset.revision));
  await page.screenshot({ path: shots + "/application-history.png" });
  say({ step: "synced", outOfSyncMs, added, removed, syncMs, revisions });

  const first = (await hear()).trim(); // the revision to roll back to
  await page.click(`#history tr[data-revision="${first}"] .rollback`);
  await page.waitForFunction((sha) => document.querySelector(".app-head .meta").textContent.trim() === sha.slice(0, 7),
                             first, { timeout: 60000 });
  const sync = await page.textContent("#app-sync");
  // The cluster view with the seed's pods running.
  await page.click("#nav-cluster");
  await page.waitForFunction(() => [...document.querySelectorAll("#cluster-pods td:nth-child(2)")]
    .filter((td) => td.textContent.startsWith("golang-app-")).length >= 3, null, { timeout: 30000 });
  const nodes = await page.evaluate(() => [...document.querySelectorAll("#cluster-nodes tr td:first-child")].map((td) => td.textContent));
  await page.screenshot({ path: shots + "/cluster-with-seed.png" });
  say({ step: "rolled-back", sync, nodes });
} catch (e) {
  say({ step: "error", error: String(e) });
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
