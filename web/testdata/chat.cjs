// Three browser pages chat through mqimd: run by browser_test.go (see
// TestBrowserChat) with PLAYWRIGHT_DIR (where playwright-core is), CHROMIUM,
// URL and BOB_URL (the page), WS_PROXY (alice's way to the WebSocket
// listener, which CONTROL can cut), SHOTS (where screenshots go), IMAGE and
// FILE (attachments) and the users' tokens. Every wait is for a condition.
"use strict";
const fs = require("fs");
const path = require("path");
const { T, E, check, control, newPage, login, open, online, say, createGroup, edit, recall, conv, msg, run } = require("./pages.cjs");

/** fits checks that nothing sticks out sideways and the Send button is on screen. */
async function fits(page, who) {
  const r = await page.evaluate(() => {
    const send = document.querySelector("#send-btn").getBoundingClientRect();
    const list = document.querySelector("#messages").getBoundingClientRect();
    const widest = Math.max(...[...document.querySelectorAll("#messages .msg")].map((m) => m.getBoundingClientRect().right));
    return { doc: document.documentElement.scrollWidth, vw: window.innerWidth, send: send.right, sendW: send.width, list: list.right, widest };
  });
  check(r.doc <= r.vw, `${who}: page is ${r.doc} px wide in a ${r.vw} px window`);
  check(r.send <= r.vw && r.sendW > 0, `${who}: Send button off screen (${r.send} of ${r.vw})`);
  check(r.widest <= r.list + 1, `${who}: a message sticks out of the list (${r.widest} > ${r.list})`);
}

run(async (browser) => {
  // Login errors say why: a token of another user, one of another server.
  const a0 = await newPage(browser, "alice");
  await login(a0, "alice", E.BOB_TOKEN);
  await a0.waitForSelector("#login-error:not([hidden])", { timeout: T });
  const why = await a0.textContent("#login-error");
  check(/wrong user or token/.test(why) && why.includes("for user “bob”, not “alice”"), `login error: ${why}`);
  await login(a0, "alice", E.WRONG_TOKEN);
  await a0.waitForSelector("#login-error:has-text('not signed with this server')", { timeout: T });
  check((await a0.textContent("#status")) === "signed out", "status after a refused login");
  await a0.context().close();

  // alice (through the proxy, remembered), bob (the server as localhost), carol on a phone.
  const alice = await open(browser, "alice", E.ALICE_TOKEN, {
    url: `${E.URL}?ws=${encodeURIComponent(E.WS_PROXY)}`,
    remember: true,
    context: { geolocation: { latitude: 48.8584, longitude: 2.2945 }, permissions: ["geolocation"] },
  });
  const bob = await open(browser, "bob", E.BOB_TOKEN, { url: E.BOB_URL, viewport: { width: 1280, height: 1000 } });
  const carol = await open(browser, "carol", E.CAROL_TOKEN, { viewport: { width: 390, height: 844 }, context: { isMobile: true, hasTouch: true } });

  // A direct chat: unread counts, read receipts.
  await alice.fill("#to", "bob");
  await alice.click("#chat-btn");
  await alice.waitForSelector("#chat:not([hidden])", { timeout: T });
  await say(alice, "hello bob");
  await alice.waitForSelector(`#messages .msg.mine[data-seq]:has-text("hello bob")`, { timeout: T });
  await say(alice, "are you there?");
  await bob.waitForSelector(`${conv("alice")} .unread >> text=2`, { timeout: T });
  await bob.waitForSelector("#total-unread >> text=2", { timeout: T });
  await bob.click(conv("alice"));
  await bob.waitForSelector(msg("are you there?"), { timeout: T });
  await bob.waitForSelector(`${conv("alice")}:not(:has(.unread))`, { timeout: T });
  await alice.waitForSelector(`#messages .msg.mine:has-text("are you there?") .receipt`, { timeout: T });

  // Typing, then a reply.
  await bob.fill("#compose-text", "hi");
  await bob.type("#compose-text", " alice!");
  await alice.waitForSelector("#typing >> text=bob is typing…", { timeout: T });
  await bob.click("#send-btn");
  await alice.waitForSelector(`#messages .msg:not(.mine):has-text("hi alice!")`, { timeout: T });
  await alice.waitForFunction(() => document.querySelector("#typing").textContent === "", null, { timeout: T });

  // Presence: hidden until alice shares hers by adding bob as a contact.
  await bob.waitForSelector("#presence >> text=presence not shared with you", { timeout: T });
  await alice.click("#contact-btn");
  await alice.waitForSelector("#contact-btn[hidden]", { state: "attached", timeout: T });
  await bob.click(conv("alice")); // opened again: presence is asked again
  await bob.waitForSelector("#presence.online >> text=online", { timeout: T });

  // A long unbroken string must not break the layout.
  await say(alice, "x".repeat(400));
  await bob.waitForSelector(msg("x".repeat(400)), { timeout: T });
  await fits(alice, "alice");
  await fits(bob, "bob");

  // Content the server's moderation refuses [IM-18.1-3]: the send is
  // marked not sent, with a reason a person can read; so is an edit.
  const refused = `#messages .msg.failed:has-text("a forbidden word")`;
  await say(alice, "a forbidden word");
  await alice.waitForSelector(`${refused} .send-error >> text=not sent: refused by the server's content rules`, { timeout: T });
  await alice.click(`${refused} .dismiss-btn`);
  await alice.waitForSelector(refused, { state: "detached", timeout: T });
  await edit(alice, "x".repeat(400), "now forbidden");
  await alice.waitForSelector(`#chat-error:not([hidden]):has-text("Cannot edit: refused by the server's content rules (the text contains a word that is not allowed)")`, { timeout: T });
  check(!(await bob.textContent("#messages")).includes("forbidden"), "bob saw refused content");

  // Attachments from the page: an image (shown from a blob: URL fetched
  // with the token) and a file (downloaded with the token).
  await alice.setInputFiles("#file-input", E.IMAGE);
  await bob.waitForFunction(() => {
    const img = document.querySelector('#messages .msg[data-type="image"] img.media');
    return img && img.src.startsWith("blob:") && img.complete && img.naturalWidth === 320;
  }, null, { timeout: T });
  await alice.setInputFiles("#file-input", E.FILE);
  await bob.waitForSelector(`#messages .msg[data-type="file"]:has-text("notes.txt")`, { timeout: T });
  const [dl] = await Promise.all([
    bob.waitForEvent("download", { timeout: T }),
    bob.click(`#messages .msg[data-type="file"] .download-btn`),
  ]);
  check(dl.suggestedFilename() === "notes.txt", `download named ${dl.suggestedFilename()}`);
  const got = fs.readFileSync(await dl.path(), "utf8");
  check(got === fs.readFileSync(E.FILE, "utf8"), `downloaded ${JSON.stringify(got)}`);

  // An image sent with `mqim send --file` names the server 127.0.0.1; bob's page is on localhost.
  await control("cli-image");
  await bob.waitForSelector(msg("sunset from the CLI"), { timeout: T });
  await bob.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('#messages .msg[data-type="image"] img.media')];
    return imgs.length === 2 && imgs.every((i) => i.src.startsWith("blob:") && i.complete && i.naturalWidth === 320);
  }, null, { timeout: T });

  // Edit and recall of alice's own messages.
  await edit(alice, "are you there?", "are you there, bob?");
  await bob.waitForSelector(`${msg("are you there, bob?")} .edited`, { timeout: T });
  await recall(alice, "hello bob");
  await bob.waitForSelector(`#messages .msg.recalled >> text=This message was recalled`, { timeout: T });
  await alice.waitForSelector(`#messages .msg.recalled >> text=You recalled this message`, { timeout: T });

  // A bridge's notice: its own conversation, shown as a notice.
  await control("notify");
  await bob.waitForSelector(`${conv("ci")} .unread >> text=1`, { timeout: T });
  await bob.click(conv("ci"));
  await bob.waitForSelector(`#messages .msg.notice:has-text("build 42 passed")`, { timeout: T });
  await bob.waitForSelector(`${conv("ci")}:not(:has(.unread))`, { timeout: T });
  await bob.click(conv("alice"));
  await bob.waitForSelector(msg("sunset from the CLI"), { timeout: T });
  await bob.waitForSelector(`${msg("are you there, bob?")} .edited`, { timeout: T });
  await bob.waitForFunction(() => document.querySelectorAll('#messages img.media[src^="blob:"]').length === 2, null, { timeout: T });
  await bob.evaluate(() => {
    const ol = document.querySelector("#messages");
    ol.scrollTop = ol.scrollHeight;
  });
  await bob.screenshot({ path: path.join(E.SHOTS, "web-1280.png") });

  // Nothing anywhere shows a body as data.
  for (const [who, p] of [["alice", alice], ["bob", bob]]) {
    const texts = await p.locator("#messages .msg, #convs .last").allTextContents();
    for (const t of texts) check(!/^\s*\{|"url"|\{\}/.test(t), `${who} shows raw data: ${t}`);
  }

  // carol, on a phone, makes a group with alice and bob.
  const group = await createGroup(carol, "team", "alice, bob");
  await say(carol, "hello team");
  await carol.waitForSelector(`#messages .msg.mine[data-seq]:has-text("hello team")`, { timeout: T });
  await alice.waitForSelector(`${group} .unread >> text=2`, { timeout: T });
  await bob.waitForSelector(`${group} .unread >> text=2`, { timeout: T });
  // The total counts the group too, and what is listed adds up to it.
  const total = Number(await bob.textContent("#total-unread"));
  const badges = (await bob.locator("#convs .unread").allTextContents()).reduce((n, x) => n + Number(x), 0);
  check(total === badges && total >= 2, `bob's total unread ${total}, badges ${badges}`);
  await bob.click(group);
  await bob.waitForSelector(`#messages .msg.event >> text=carol created the group “team” with alice, bob`, { timeout: T });
  await bob.waitForSelector(msg("hello team"), { timeout: T });
  await bob.click("#members-btn");
  await bob.waitForSelector("#member-list li >> nth=2", { timeout: T });
  check((await bob.locator("#member-list li").count()) === 3, "three members");
  await bob.waitForSelector(`#member-list li[data-user="carol"]:has-text("owner")`, { timeout: T });
  await bob.waitForSelector(`#member-list li[data-user="alice"]:has-text("online")`, { timeout: T });
  await alice.click(group);
  await alice.click("#location-btn");
  await carol.waitForSelector(`#messages .msg[data-type="location"]:has-text("48.85840, 2.29450")`, { timeout: T });
  await say(bob, "lunch at 1?");
  await carol.waitForSelector(`#messages .msg:not(.mine):has-text("lunch at 1?") .from >> text=bob`, { timeout: T });
  // An image in the group, shown on the phone.
  await bob.setInputFiles("#file-input", E.IMAGE);
  await carol.waitForFunction(() => {
    const img = document.querySelector('#messages .msg[data-type="image"] img.media');
    return img && img.src.startsWith("blob:") && img.complete && img.naturalWidth === 320;
  }, null, { timeout: T });
  await carol.click("#members-btn");
  await carol.waitForSelector(`#member-list li[data-user="bob"]:has-text("online")`, { timeout: T });
  await fits(carol, "carol");
  await carol.evaluate(() => {
    const ol = document.querySelector("#messages");
    ol.scrollTop = ol.scrollHeight;
  });
  await carol.screenshot({ path: path.join(E.SHOTS, "web-390.png") });
  // The phone's back button leads to the list; the list fits too.
  await carol.click("#back-btn");
  await carol.waitForSelector(`${group}`, { timeout: T });
  check(await carol.isHidden("#chat"), "the phone shows the list alone");

  // A cut connection: alice's status says so, and what happens meanwhile arrives after.
  await alice.click(conv("bob"));
  await alice.waitForSelector(msg("hi alice!"), { timeout: T });
  await control("cut");
  await alice.waitForSelector('#status[data-state="reconnecting"]:has-text("reconnecting")', { timeout: T });
  await say(alice, "sent while offline");
  await alice.waitForSelector(`#messages .msg.pending:has-text("sent while offline")`, { timeout: T });
  await bob.click(conv("alice"));
  await say(bob, "while you were away");
  await bob.waitForSelector(`#messages .msg.mine[data-seq]:has-text("while you were away")`, { timeout: T });
  check((await alice.locator(msg("while you were away")).count()) === 0, "alice got a message while cut off");
  await control("restore");
  await alice.waitForSelector('#status[data-state="online"]', { timeout: T });
  await alice.waitForSelector(msg("while you were away"), { timeout: T });
  await bob.waitForSelector(msg("sent while offline"), { timeout: T });
  await alice.waitForSelector(`#messages .msg.mine[data-seq]:has-text("sent while offline")`, { timeout: T });

  // History paging: 35 more messages, then a fresh page shows 30 and pages back.
  for (let i = 0; i < 35; i++) await say(alice, `m${i}`);
  await bob.waitForSelector(msg("m34"), { timeout: T });
  const all = await bob.locator("#messages .msg").count();
  const b2 = await open(browser, "bob", E.BOB_TOKEN);
  await b2.click(conv("alice"));
  await b2.waitForSelector(msg("m34"), { timeout: T });
  const shown = await b2.locator("#messages .msg").count();
  check(shown === 30, `first page shows ${shown} messages, want 30`);
  await b2.click("#older-btn");
  await b2.waitForSelector(msg("hi alice!"), { timeout: T });
  await b2.waitForSelector("#older-btn[hidden]", { state: "attached", timeout: T });
  const paged = await b2.locator("#messages .msg").count();
  check(paged === all, `after paging ${paged} messages, want ${all}`);

  // Remember me: a reload signs alice in again; after logout it does not.
  await alice.reload();
  await online(alice);
  await alice.click("#logout-btn");
  await alice.waitForSelector("#login:not([hidden])", { timeout: T });
  await alice.reload();
  await alice.waitForSelector("#login:not([hidden])", { timeout: T });
  check(await alice.isHidden("#app"), "signed out after logout and reload");
  check((await alice.textContent("#status")) === "signed out", "status after logout");
});
