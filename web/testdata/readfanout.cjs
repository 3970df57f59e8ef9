// A group that fans out on read (the node's threshold is 2 members): its
// messages reach the pages only on the group topic and in history
// [IM-11.3], which the page follows with the SDK's followGroup. Run by
// browser_test.go (TestBrowserReadFanoutGroup) with URL and the tokens.
"use strict";
const { T, E, check, open, say, createGroup, edit, recall, msg, run } = require("./pages.cjs");

run(async (browser) => {
  const carol = await open(browser, "carol", E.CAROL_TOKEN);
  const alice = await open(browser, "alice", E.ALICE_TOKEN);
  const bob = await open(browser, "bob", E.BOB_TOKEN);
  const group = await createGroup(carol, "readers", "alice bob");
  await say(carol, "hello readers");
  await alice.waitForSelector(`${group} .unread >> text=2`, { timeout: T });
  await alice.waitForSelector(`${group} .last >> text=hello readers`, { timeout: T });
  await alice.click(group);
  await alice.waitForSelector(msg("hello readers"), { timeout: T });
  await bob.click(group);
  await bob.waitForSelector(msg("hello readers"), { timeout: T });

  // Live, both ways, on the group topic only.
  await say(bob, "live on the topic");
  await alice.waitForSelector(msg("live on the topic"), { timeout: T });
  await carol.waitForSelector(msg("live on the topic"), { timeout: T });

  // Edit and recall are timeline events applied to the message they name, not shown themselves.
  await edit(carol, "hello readers", "hello, readers");
  await alice.waitForSelector(`${msg("hello, readers")} .edited`, { timeout: T });
  await recall(bob, "live on the topic");
  await alice.waitForSelector(`#messages .msg.recalled >> text=This message was recalled`, { timeout: T });
  const types = await alice.locator("#messages .msg").evaluateAll((ms) => ms.map((m) => m.dataset.type));
  check(JSON.stringify(types) === JSON.stringify(["group", "text", "recalled"]), `alice shows ${types}`);

  // A page opened later finds the group and follows it (group.info says read).
  const a2 = await open(browser, "alice", E.ALICE_TOKEN);
  await a2.click(group);
  await a2.waitForSelector(`${msg("hello, readers")}`, { timeout: T });
  await say(carol, "for the new page");
  await a2.waitForSelector(msg("for the new page"), { timeout: T });
});
