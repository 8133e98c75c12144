// Logs a user in through the gateway's session authenticator in headless
// chromium: opens the protected page, is redirected to the OpenID
// provider, fills its login form, sees the page, opens the API in the same
// browser (the same session), logs out (confirming at the provider when
// it asks), and opens the page again: redirected to the login form once
// more. Prints one JSON object with what it saw; the Go test judges it.
// Usage: node login.mjs APP_URL API_URL LOGOUT_URL USER PASSWORD EXPECT_TEXT SCREENSHOT
import { chromium } from "playwright-core";

const [appURL, apiURL, logoutURL, user, password, expect, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const out = { errors: [], steps: [] };
const wait = 120000;
const loginForm = 'input[name="password"]';
async function fillLogin(page) {
  await page.waitForSelector(loginForm, { timeout: wait });
  out.steps.push("login form at " + new URL(page.url()).origin + new URL(page.url()).pathname);
  // The embedded AS names the field "username", node-oidc-provider "login".
  const name = (await page.$('input[name="username"]')) ? "username" : "login";
  await page.fill(`input[name="${name}"]`, user);
  await page.fill(loginForm, password);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(appURL), { timeout: wait }),
    page.click('button[type="submit"], input[type="submit"]'),
  ]);
}
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => out.errors.push(String(e)));
  await page.goto(appURL, { waitUntil: "load", timeout: wait });
  out.redirectedTo = page.url();
  await fillLogin(page);
  await page.waitForFunction((t) => document.body && document.body.innerText.includes(t), expect, { timeout: wait });
  out.page = await page.evaluate(() => document.body.innerText);
  out.pageURL = page.url();
  out.cookies = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure, path: c.path }));
  await page.screenshot({ path: screenshot, fullPage: true });
  // The API, opened in the same browser: the same session.
  const api = await page.goto(apiURL, { waitUntil: "load", timeout: wait });
  out.api = { status: api.status(), body: await api.text() };
  await page.goto(logoutURL, { waitUntil: "load", timeout: wait });
  // The provider may ask to confirm the logout (node-oidc-provider's
  // "Yes, sign me out", the embedded AS's "Sign out").
  const confirm = (await page.$(loginForm)) ? null
    : (await page.$('button[name="logout"]')) || (await page.$('form button[type="submit"]'));
  if (confirm) {
    out.steps.push("logout confirmed at the provider");
    await Promise.all([page.waitForNavigation({ timeout: wait }), confirm.click()]);
  }
  out.afterLogoutURL = page.url();
  // The browser's cookies, sent by playwright's request client.
  const r = await context.request.get(apiURL, { headers: { Accept: "application/json" }, maxRedirects: 0 });
  out.apiAfterLogout = { status: r.status() };
  await page.goto(appURL, { waitUntil: "load", timeout: wait });
  await page.waitForSelector(loginForm, { timeout: wait });
  out.againAt = page.url();
} catch (e) {
  out.fatal = String(e && e.stack || e);
}
await browser.close();
console.log(JSON.stringify(out));
