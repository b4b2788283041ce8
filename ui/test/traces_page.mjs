// Opens a service's routing rule from the mesh graph, follows a graph edge to its traces in
// Debian's Chromium, then opens one trace and prints its spans (as the page drew them) as JSON,
// with screenshots. Used by test_mesh.py.
//   node ui/test/traces_page.mjs BASE_URL PASSWORD SCREENSHOT_DIR TRACE_ID
import { signedIn } from "./session.mjs";

const [base, password, shots, traceId] = process.argv.slice(2);
const { browser, page } = await signedIn(base, password, "#/mesh", { width: 1280, height: 700 });
try {
  // The service's routing badges open its rules.
  const svc = '#mesh-graph .node.has-rules[data-id="service/my-apps/golang-app-service"]';
  await page.waitForSelector(svc, { timeout: 20000 });
  const rules = await page.getAttribute(svc, "data-rules");
  await page.click(svc + " rect");
  await page.waitForFunction(() => /"kind": "VirtualService"/.test(document.querySelector("#resource-panel #manifest")?.textContent || ""));
  const rule = JSON.parse(await page.textContent("#resource-panel #manifest")).spec;
  await page.screenshot({ path: shots + "/mesh-routing-rule.png" });
  await page.click("#panel-close");
  // The edge into the seed's service links to the traces of its requests.
  const edge = '#mesh-graph .edge[data-to="service/my-apps/golang-app-service"]';
  await page.waitForSelector(edge, { timeout: 20000 });
  await page.click(edge + " text");
  await page.waitForSelector(".trace-row", { timeout: 20000 });
  const list = await page.evaluate(() => ({
    hash: location.hash, rows: document.querySelectorAll(".trace-row").length,
    first: [...document.querySelector(".trace-row").children].map((td) => td.textContent) }));
  await page.screenshot({ path: shots + "/traces.png" });
  await page.goto(base + "/ui/#/traces/" + traceId);
  await page.waitForFunction(() => document.querySelectorAll(".span-row").length >= 2, null, { timeout: 20000 });
  const spans = await page.evaluate(() => [...document.querySelectorAll(".span-row")].map((r) => ({
    id: r.dataset.span, parent: r.dataset.parent, service: r.dataset.service, kind: r.dataset.kind,
    status: r.dataset.status, text: r.querySelector(".span-name").textContent })));
  await page.click(".span-row");  // its tags
  await page.screenshot({ path: shots + "/trace.png" });
  console.log(JSON.stringify({ rules, rule, list, spans }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
