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

/** createGroup makes a group on page (members as typed: "alice, bob"), opens it and returns its list entry. */
async function createGroup(page, name, members) {
  await page.click("#new-group summary");
  await page.fill("#group-name", name);
  await page.fill("#group-members", members);
  await page.click("#group-create-btn");
  await page.waitForSelector(`#messages .msg.event >> text=You created the group “${name}” with alice, bob`, { timeout: T });
  return `#convs li[data-kind="group"]:has-text(${JSON.stringify(name)})`;
}

/** edit edits the user's own message holding text into now, on its page. */
async function edit(page, text, now) {
  await page.click(`#messages .msg.mine:has-text(${JSON.stringify(text)}) .edit-btn`);
  await page.fill("#compose-text", now);
  await page.click("#send-btn");
}

/** recall recalls the user's own message holding text, on its page. */
async function recall(page, text) {
  await page.click(`#messages .msg.mine:has-text(${JSON.stringify(text)}) .recall-btn`);
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

module.exports = { T, E, check, control, newPage, login, open, online, say, createGroup, edit, recall, conv, msg, run };
