// What the browser tests share: pages of users signed in to the web page,
// driven by playwright-core (PLAYWRIGHT_DIR) in Debian's Chromium (CHROMIUM).
"use strict";
const path = require("path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const T = 30000;
const E = process.env;

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function control(what) {
  const res = await fetch(`${E.CONTROL}/${what}`, { method: "POST" });
  if (res.status !== 200) throw new Error(`control ${what}: ${res.status} ${await res.text()}`);
}

async function newPage(browser, user, opts = {}) {
  const ctx = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 800 }, acceptDownloads: true, ...(opts.context ?? {}) });
  const page = await ctx.newPage();
  page.on("pageerror", (err) => console.error(`[${user}] page error: ${err.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`[${user}] console: ${m.text()}`);
  });
  await page.goto(opts.url ?? E.URL);
  return page;
}

async function login(page, user, token, remember = false) {
  await page.fill("#login-user", user);
  await page.fill("#login-token", token);
  if (remember) await page.check("#login-remember");
  await page.click("#login-btn");
}

async function open(browser, user, token, opts = {}) {
  const page = await newPage(browser, user, opts);
  await login(page, user, token, opts.remember);
  await online(page);
  return page;
}

async function online(page) {
  await page.waitForSelector("#app:not([hidden])", { timeout: T });
  await page.waitForSelector('#status[data-state="online"]', { timeout: T });
}

async function say(page, text) {
  await page.fill("#compose-text", text);
  await page.click("#send-btn");
}

const conv = (peer) => `#convs li[data-peer="${peer}"]`;
const msg = (text) => `#messages .msg:has-text(${JSON.stringify(text)})`;

function launch() {
  return chromium.launch({
    executablePath: E.CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** run runs a scenario with a browser and prints ok when it passes. */
function run(scenario) {
  (async () => {
    const browser = await launch();
    try {
      await scenario(browser);
      console.log("ok");
    } finally {
      await browser.close();
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { T, E, check, control, newPage, login, open, online, say, conv, msg, run };
