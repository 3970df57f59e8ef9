// Two browser pages chat through mqimd: run by browser_test.go with
// PLAYWRIGHT_DIR (where playwright-core is installed), CHROMIUM, URL (the
// page), and the users and tokens of alice and bob.
"use strict";
const { chromium } = require(require("path").join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const T = 30000;

async function open(browser, user, token) {
  // IGNORE_HTTPS_ERRORS: the node's certificate is of a CA made by the test.
  const page = await (await browser.newContext({ ignoreHTTPSErrors: !!process.env.IGNORE_HTTPS_ERRORS })).newPage();
  page.on("pageerror", (err) => console.error(`[${user}] page error: ${err.message}`));
  await page.goto(process.env.URL);
  await page.fill("#login-user", user);
  await page.fill("#login-token", token);
  await page.click("#login-btn");
  await page.waitForSelector("#app:not([hidden])", { timeout: T });
  await page.waitForFunction(() => document.querySelector("#status").textContent === "online", null, { timeout: T });
  return page;
}

async function say(page, text) {
  await page.fill("#compose-text", text);
  await page.click("#send-btn");
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const { ALICE, ALICE_TOKEN, BOB, BOB_TOKEN } = process.env;
    const a = await open(browser, ALICE, ALICE_TOKEN);
    const b = await open(browser, BOB, BOB_TOKEN);

    // Alice starts a chat with Bob and sends two messages.
    await a.fill("#to", BOB);
    await a.click("#chat-btn");
    await a.waitForSelector("#chat:not([hidden])", { timeout: T });
    await say(a, "hello bob");
    await a.waitForSelector("#messages .msg.mine >> text=hello bob", { timeout: T });
    await say(a, "are you there?");
    await a.waitForSelector("#messages .msg.mine >> text=are you there?", { timeout: T });

    // Bob sees the conversation with 2 unread, opens it, reads both.
    await b.waitForSelector(`#convs li[data-peer="${ALICE}"] .unread >> text=2`, { timeout: T });
    await b.click(`#convs li[data-peer="${ALICE}"]`);
    await b.waitForSelector("#messages .msg >> text=are you there?", { timeout: T });
    await b.waitForSelector(`#convs li[data-peer="${ALICE}"]:not(:has(.unread))`, { timeout: T });

    // Alice gets the read receipt; Bob replies live.
    await a.waitForSelector("#messages .msg.mine:has-text('are you there?') .receipt", { timeout: T });
    await say(b, "hi alice!");
    await a.waitForSelector("#messages .msg:not(.mine) >> text=hi alice!", { timeout: T });
    await b.waitForSelector("#messages .msg.mine:has-text('hi alice!') .receipt", { timeout: T });

    // History paging: 35 more messages, then a fresh page shows 30 and pages back.
    for (let i = 0; i < 35; i++) await say(a, `m${i}`);
    await a.waitForSelector("#messages .msg >> text=m34", { timeout: T });
    await b.waitForSelector("#messages .msg >> text=m34", { timeout: T });
    const c = await open(browser, BOB, BOB_TOKEN);
    await c.click(`#convs li[data-peer="${ALICE}"]`);
    await c.waitForSelector("#messages .msg >> text=m34", { timeout: T });
    const shown = await c.locator("#messages .msg").count();
    if (shown !== 30) throw new Error(`first page shows ${shown} messages, want 30`);
    await c.click("#older-btn");
    await c.waitForSelector("#messages .msg >> text=hello bob", { timeout: T });
    const all = await c.locator("#messages .msg").count();
    if (all !== 38) throw new Error(`after paging ${all} messages, want 38`);
    console.log("ok");
  } finally {
    await browser.close();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
