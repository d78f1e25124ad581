// Screenshots for scripts/readme_pictures.py: each page's #shot element, in headless Chromium, at 2x.
//   node shoot.mjs <cache dir with node_modules> <chromium path> <page.html> <out.png> [<page.html> <out.png> ...]
// A page sets window.pictureReady = true when drawn, or window.pictureError = "..." (then nothing is written).
import { createRequire } from "node:module";
import path from "node:path";

const [cache, executablePath, ...pairs] = process.argv.slice(2);
const require = createRequire(path.join(cache, "package.json"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 720, height: 400 }, deviceScaleFactor: 2 });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  for (let i = 0; i < pairs.length; i += 2) {
    const [html, png] = [pairs[i], pairs[i + 1]];
    problems.length = 0;
    await page.goto("file://" + path.resolve(html));
    await page.waitForFunction(() => window.pictureReady === true || !!window.pictureError, null, { timeout: 20000 });
    const error = await page.evaluate(() => window.pictureError || null);
    await page.evaluate(() => document.fonts.ready);
    if (error || problems.length) {
      console.error(`${html}: ${error || problems.join("; ")}`);
      failed = true;
      continue;
    }
    await page.locator("#shot").screenshot({ path: png, animations: "disabled" });
    console.log(`wrote ${png}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
