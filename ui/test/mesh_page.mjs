// Opens the UI's mesh graph in Debian's Chromium and prints its edges (what the page drew) as
// JSON, with a screenshot. Used by test_mesh.py while traffic runs through the gateway.
//   node ui/test/mesh_page.mjs BASE_URL PASSWORD SCREENSHOT_DIR
import { signedIn } from "./session.mjs";

const [base, password, shots] = process.argv.slice(2);
const { browser, page } = await signedIn(base, password, "#/mesh", { width: 1280, height: 700 });
try {
  await page.waitForFunction(() => document.querySelectorAll("#mesh-graph .edge").length >= 3, null, { timeout: 20000 });
  const edges = await page.evaluate(() => [...document.querySelectorAll("#mesh-graph .edge")].map((g) => ({
    from: g.dataset.from, to: g.dataset.to, rps: Number(g.dataset.rps), mtls: g.dataset.mtls === "true",
    share: g.dataset.share === undefined ? null : Number(g.dataset.share), label: g.querySelector("text").textContent })));
  const nodes = await page.evaluate(() => [...document.querySelectorAll("#mesh-graph .node")].map((g) => g.textContent));
  await page.screenshot({ path: shots + "/mesh-graph.png" });
  console.log(JSON.stringify({ edges, nodes }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
