// Two pages chat over HTTPS and wss: the page served by the HTTPS listener
// connects to the wss listener [IM-1.1-5]. Run by browser_test.go
// (TestBrowserChatTLS) with URL (https) and the tokens; the node's
// certificate is of a CA the test made, so the pages ignore HTTPS errors.
"use strict";
const { T, E, check, open, say, conv, msg, run } = require("./pages.cjs");

run(async (browser) => {
  const tls = { context: { ignoreHTTPSErrors: true } };
  const alice = await open(browser, "alice", E.ALICE_TOKEN, tls);
  const bob = await open(browser, "bob", E.BOB_TOKEN, tls);
  check(await alice.evaluate(() => location.protocol) === "https:", "alice's page is not over HTTPS");
  await alice.fill("#to", "bob");
  await alice.click("#chat-btn");
  await alice.waitForSelector("#chat:not([hidden])", { timeout: T });
  await say(alice, "hello over wss");
  await bob.waitForSelector(conv("alice"), { timeout: T });
  await bob.click(conv("alice"));
  await bob.waitForSelector(msg("hello over wss"), { timeout: T });
});
