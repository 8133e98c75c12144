// Opens the Gatehouse console in headless chromium while the demo is under
// load, checks that the charts update and the denial list fills, opens an
// explanation and saves a screenshot. Prints one JSON line with what it
// saw; the Go test judges it. Usage: node console.mjs CONSOLE_URL SCREENSHOT
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const out = { errors: [] };
// Generous: CI shares two cores with other work and may be heavily loaded;
// a wait ends as soon as its condition holds.
const wait = 120000;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  await page.goto(url, { waitUntil: "load", timeout: wait });
  const updates = () => page.$eval("#chart-rate", (e) => Number(e.dataset.updates || 0));
  await page.waitForFunction(() => Number(document.querySelector("#chart-rate").dataset.updates || 0) >= 1, null, { timeout: wait });
  out.firstUpdates = await updates();
  // The series' last complete seconds carry the load: the sum of requests
  // the chart holds must grow between two polls.
  const plotted = () => page.evaluate(() => {
    const t = document.querySelector("#totals").textContent;
    return { totals: t, canvas: !!document.querySelector("#chart-rate canvas"), legend: document.querySelector("#chart-rate .u-legend") !== null };
  });
  out.first = await plotted();
  await page.waitForFunction((n) => Number(document.querySelector("#chart-rate").dataset.updates) >= n + 2, out.firstUpdates, { timeout: wait });
  out.laterUpdates = await updates();
  out.later = await plotted();
  out.points = await page.$eval("#chart-rate", (e) => Number(e.dataset.points));
  out.denialChartUpdates = await page.$eval("#chart-denials", (e) => Number(e.dataset.updates));
  out.denialSeries = await page.$$eval("#chart-denials .u-legend .u-series", (s) => s.length);
  await page.waitForFunction(() => document.querySelectorAll("#denials tbody tr").length >= 3, null, { timeout: wait });
  out.denialRows = await page.$$eval("#denials tbody tr", (rows) => rows.length);
  out.denialCodes = await page.$$eval("#denials tbody tr td:nth-child(4)", (tds) => tds.map((t) => t.textContent));
  out.auditRows = await page.$$eval("#audit tbody tr", (rows) => rows.length);
  out.routes = await page.$$eval("#routes tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
  out.consumers = await page.$$eval("#consumers tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
  // Open the explanation of the newest denial.
  const button = await page.$("#denials tbody tr button");
  out.explainedId = await button.getAttribute("data-request-id");
  await button.click();
  await page.waitForSelector("#explain-policies tbody tr", { timeout: wait });
  out.explainText = await page.$eval("#explain", (e) => e.innerText);
  out.explainPolicies = await page.$$eval("#explain-policies tbody tr", (rows) => rows.map((r) => Array.from(r.children).map((c) => c.textContent)));
  await page.$eval("#explain", (e) => e.scrollIntoView());
  await page.screenshot({ path: screenshot, fullPage: true });
  out.screenshot = screenshot;
} catch (e) {
  out.fatal = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
