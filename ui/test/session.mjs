// What the UI's browser scripts share: Debian's Chromium through playwright-core, signed in to
// the UI with the admin password, on `hash` (for example "#/mesh").
import { chromium } from "playwright-core";

export async function signedIn(base, password, hash, viewport = { width: 1280, height: 900 }) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  const page = await context.newPage();
  await page.goto(base + "/ui/" + hash);
  await page.fill("#password", password);
  await page.click("#login");
  return { browser, page };
}
