// End-to-end tests against a real mqimd: sending and receiving in both
// encodings and over WebSocket, message ids above 2^53, RPC helpers, typed
// errors, the cursor store across restarts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { ClientError, ClientErrorCode, Client, ErrorCode, LocalStorageCursor, MqimError, type Event, type StorageLike } from "@mqim/sdk";
import { closeAll, contiguous, dial, noMoreEvents, startServer, waitFor, withTimeout, type Server } from "./harness.js";

let srv: Server;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await closeAll();
  await srv?.stop();
});

let n = 0;
/** uniq makes user ids unique per test, so inboxes start at seq 1. */
const uniq = (name: string) => `${name}${++n}`;

for (const format of ["msgpack", "json"] as const) {
  test(`a message sent is received by another user's device (${format})`, async () => {
    const [alice, bob] = [uniq("alice"), uniq("bob")];
    const b = await dial(srv, bob, { format }); // connecting creates bob [IM-3.1-5]
    const a = await dial(srv, alice, { format });
    const sent = await a.c.sendText(bob, "hi bob");
    assert.equal(sent.conv, `d:${alice}:${bob}`);
    assert.equal(sent.seq, 1);
    assert.equal(sent.inboxSeq, 1);
    assert.match(sent.cmid, /^[0-9A-Z]{26}$/);
    await waitFor("bob's message", () => b.messages().length === 1);
    const ev = b.messages()[0]!;
    assert.equal(ev.seq, 1);
    assert.equal(ev.msg?.from, alice);
    assert.equal(ev.msg?.cmid, sent.cmid);
    assert.deepEqual(ev.msg?.body, { text: "hi bob" });
    // Message ids are decimal strings, exact above 2^53 [IM-1.2-5].
    assert.equal(typeof ev.msg?.id, "string");
    assert.equal(ev.msg?.id, sent.id);
    assert.ok(BigInt(sent.id) > 2n ** 53n, `id ${sent.id} is above 2^53`);
    // The sender's own devices get it too (multi-device) [IM-5.1-2].
    await waitFor("alice's own message", () => a.messages().length === 1);
    assert.equal(a.messages()[0]!.msg?.id, sent.id);
    await noMoreEvents(b, 1);
  });

  test(`a message id above 2^53 round-trips through the server (${format})`, async () => {
    const [alice, bob] = [uniq("alice"), uniq("bob")];
    const b = await dial(srv, bob, { format });
    const a = await dial(srv, alice, { format });
    const sent = await a.c.sendText(bob, "to be edited");
    assert.ok(BigInt(sent.id) > 2n ** 53n);
    // The id goes back to the server (msg_id: an int 64 in MessagePack, a
    // string in JSON) and comes back unchanged.
    const edited = await a.c.edit(sent.id, { text: "edited" });
    assert.equal(edited.id, sent.id);
    assert.deepEqual(edited.body, { text: "edited" });
    const h = await b.c.history({ with: alice });
    assert.equal(h.messages.length, 1);
    assert.equal(h.messages[0]!.id, sent.id);
    await waitFor("bob's edit event", () => b.stored().some((e) => e.kind === "edit"));
    const ed = b.stored().find((e) => e.kind === "edit")!;
    assert.equal(ed.msg?.id, sent.id);
    const recalled = await a.c.recall(sent.id);
    assert.equal(recalled.type, "recalled");
    assert.equal(recalled.id, sent.id);
  });
}

test("MQTT over WebSocket in Node", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob, { via: srv.ws });
  const a = await dial(srv, alice, { via: srv.ws.replace(/\/mqtt$/, "") }); // path /mqtt by default
  const sent = await a.c.sendText(bob, "over ws");
  await waitFor("bob's message", () => b.messages().length === 1);
  assert.equal(b.messages()[0]!.msg?.id, sent.id);
});

test("events are in inbox order, each once, across many sends", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob);
  const a = await dial(srv, alice);
  const sends = [];
  for (let i = 0; i < 50; i++) sends.push(a.c.sendText(bob, `m${i}`));
  const sent = await Promise.all(sends);
  assert.equal(new Set(sent.map((s) => s.id)).size, 50);
  await waitFor("50 events", () => b.stored().length === 50);
  assert.ok(contiguous(b.stored()));
  await noMoreEvents(b, 50);
});

test("typed errors: refused sends and RPCs carry the spec's code", async () => {
  const alice = uniq("alice");
  const a = await dial(srv, alice);
  // A send to a user that does not exist: PUBACK 0x83, code unknown_user [IM-4.1-3].
  await assert.rejects(a.c.sendText("nobody-" + alice, "?"), (e: unknown) => {
    assert.ok(e instanceof MqimError);
    assert.equal(e.code, ErrorCode.UnknownUser);
    assert.equal(e.reason, 0x83);
    assert.equal(e.retryable, false);
    return true;
  });
  // To oneself: bad_request (0x99).
  await assert.rejects(a.c.sendText(alice, "me"), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.BadRequest && e.reason === 0x99);
  // An unknown type: unknown_type.
  await assert.rejects(a.c.send({ to: "x", type: "hologram", body: {} }), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.UnknownType);
  // RPC errors are in the response.
  await assert.rejects(a.c.history({ conv: "d:bob:carol" }), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.NotMember);
  await assert.rejects(a.c.call("no.such.method"), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.UnknownMethod);
  await assert.rejects(a.c.recall("1"), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.NotFound);
  await assert.rejects(a.c.addContact("nobody-" + alice), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.UnknownUser);
  // A retry of a cmid with another body: cmid_conflict [IM-4.5-3]; the same body is the stored message [IM-4.5-2].
  const bob = uniq("bob");
  await dial(srv, bob, { noEvents: true });
  const first = await a.c.sendText(bob, "one", { cmid: "fixed-cmid-1" });
  const again = await a.c.sendText(bob, "one", { cmid: "fixed-cmid-1" });
  assert.equal(again.id, first.id);
  assert.equal(again.seq, first.seq);
  await assert.rejects(a.c.sendText(bob, "two", { cmid: "fixed-cmid-1" }), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.CmidConflict);
});

test("bad credentials stop connect with a ClientError", async () => {
  await assert.rejects(
    Client.connect({ server: srv.mqtt, user: "mallory", token: srv.token("someone-else"), connectTimeout: 20_000 }),
    (e: unknown) => e instanceof ClientError && e.code === ClientErrorCode.BadCredentials,
  );
});

test("RPC helpers: conversations, read, settings, contacts, presence, delete, typing, upload", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob);
  const a = await dial(srv, alice);
  const s1 = await a.c.sendText(bob, "one");
  await a.c.sendText(bob, "two");
  await waitFor("bob's messages", () => b.messages().length === 2);

  const convs = await b.c.conversations();
  assert.equal(convs.conversations.length, 1);
  const conv = convs.conversations[0]!;
  assert.equal(conv.conv, s1.conv);
  assert.equal(conv.kind, "direct");
  assert.equal(conv.peer, alice);
  assert.equal(conv.unread, 2);
  assert.equal(conv.last?.body.text, "two");
  assert.equal(convs.total_unread, 2);

  const r = await b.c.read(s1.conv, 2);
  assert.deepEqual(r, { conv: s1.conv, read_seq: 2, unread: 0 });
  await waitFor("alice's read receipt", () => a.stored().some((e) => e.kind === "read" && e.user === bob && e.conv_seq === 2));
  const many = await b.c.readMany([{ conv: s1.conv, seq: 1 }]);
  assert.equal(many[0]!.read_seq, 2); // never backwards

  const st = await b.c.updateSettings(s1.conv, { pinned: true, draft: "see you" });
  assert.equal(st.pinned, true);
  assert.equal(st.draft, "see you");
  await waitFor("bob's settings event", () => b.stored().some((e) => e.kind === "settings" && e.settings?.pinned === true));

  const k = await b.c.addContact(alice);
  assert.equal(k.contact, true);
  assert.deepEqual((await b.c.contacts()).map((c) => c.user), [alice]);
  // bob has alice as a contact, so his presence is visible to her [IM-15.2-2].
  const p = await a.c.presence([bob]);
  assert.equal(p[0]!.user, bob);
  assert.equal(p[0]!.online, true);

  const del = await b.c.deleteForMe(s1.id);
  assert.equal(del.id, s1.id);
  const h = await b.c.history({ conv: s1.conv });
  assert.deepEqual(h.messages.map((m) => m.body.text), ["two"]);

  // Typing reaches bob's device as an ephemeral event (no seq).
  await a.c.typing(bob);
  await waitFor("bob's typing event", () => b.events.some((e: Event) => e.kind === "typing" && e.user === alice && !e.seq));

  const up = await a.c.upload(new TextEncoder().encode("hello file"), { name: "hello.txt", mime: "text/plain" });
  assert.match(up.id, /^[0-9a-f]{32}$/);
  assert.equal(up.size, 10);
  assert.equal(up.mime, "text/plain");
  assert.equal(up.sha256, createHash("sha256").update("hello file").digest("hex"));
  const img = await a.c.send({ to: bob, type: "file", body: { url: up.url, name: "hello.txt", mime: up.mime, size: up.size, sha256: up.sha256 } });
  assert.equal(img.seq, 3);
  // download: bob fetches it with his token, by the absolute URL, by the
  // path, and by the URL under another host name of the same server; a URL
  // of another server is not fetched (the token stays here).
  const other = up.url.replace("127.0.0.1", "localhost");
  for (const u of [up.url, `/v1/media/${up.id}`, other]) {
    const blob = await b.c.download(u);
    assert.equal(await blob.text(), "hello file", u);
    assert.equal(blob.type, "text/plain");
  }
  assert.equal(b.c.mediaUrl("https://elsewhere.example/files/1"), undefined);
  await assert.rejects(b.c.download("https://elsewhere.example/files/1"), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.BadRequest);
  await assert.rejects(b.c.download(`/v1/media/${"0".repeat(32)}`), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.NotFound && e.status === 404);
  await assert.rejects(a.c.upload("x", { mime: "application/x-evil" }), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.UnsupportedMedia && e.status === 415);
});

test("groups: create, info, send, add, roles, errors", async () => {
  const [alice, bob, carol] = [uniq("alice"), uniq("bob"), uniq("carol")];
  const b = await dial(srv, bob);
  await dial(srv, carol, { noEvents: true });
  const a = await dial(srv, alice);
  const g = await a.c.createGroup({ members: [bob], name: "team" });
  assert.match(g.group, /^g:/);
  assert.equal(g.conv_seq, 1);
  assert.equal(g.fanout, "write");
  const sent = await a.c.sendGroup(g.group, "text", { text: "@bob hi" }, { mentions: [bob] });
  assert.equal(sent.conv, g.group);
  await waitFor("bob's group message", () => b.messages().some((e) => e.msg?.id === sent.id));
  assert.deepEqual(b.messages().find((e) => e.msg?.id === sent.id)!.msg?.mentions, [bob]);
  await a.c.addToGroup(g.group, [carol]);
  await a.c.setGroupRole(g.group, bob, "admin");
  await a.c.updateGroup(g.group, { notice: "be nice" });
  const info = await b.c.groupInfo(g.group);
  assert.equal(info.name, "team");
  assert.equal(info.notice, "be nice");
  assert.equal(info.member_count, 3);
  assert.deepEqual(
    info.members.map((m) => [m.user, m.role]),
    [[alice, "owner"], [bob, "admin"], [carol, "member"]].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
  );
  // A repeated change is refused, not retried blindly [IM-11.4-5].
  await assert.rejects(a.c.addToGroup(g.group, [carol]), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.BadRequest);
  await assert.rejects(b.c.transferGroup(g.group, carol), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.Forbidden);
  await assert.rejects(a.c.groupInfo("g:1"), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.UnknownGroup);
  await a.c.muteGroupMember(g.group, carol);
  await b.c.leaveGroup(g.group);
  await assert.rejects(b.c.sendGroup(g.group, "text", { text: "?" }), (e: unknown) => e instanceof MqimError && e.code === ErrorCode.NotMember);
});

test("the cursor store carries the cursor across restarts (localStorage)", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const data = new Map<string, string>();
  const storage: StorageLike = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
  const key = `mqim.cursor.${bob}`;
  let b = await dial(srv, bob, { cursor: new LocalStorageCursor(key, storage) });
  const a = await dial(srv, alice, { noEvents: true });
  await a.c.sendText(bob, "1");
  await a.c.sendText(bob, "2");
  await waitFor("two events", () => b.stored().length === 2);
  await waitFor("cursor saved", () => data.get(key) === "2");
  await b.c.close();
  await a.c.sendText(bob, "3"); // while bob is away
  b = await dial(srv, bob, { cursor: new LocalStorageCursor(key, storage) });
  await waitFor("the missed event", () => b.stored().length === 1);
  assert.equal(b.stored()[0]!.seq, 3);
  assert.equal(b.stored()[0]!.msg?.body.text, "3");
  await noMoreEvents(b, 3);
  assert.equal(data.get(key), "3");
});

test("skipBacklog starts a new device at the latest seq; events() iterates", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const first = await dial(srv, bob, { noEvents: true });
  const a = await dial(srv, alice, { noEvents: true });
  await a.c.sendText(bob, "old");
  await first.c.close();
  const c = await Client.connect({ server: srv.mqtt, user: bob, token: srv.token(bob), skipBacklog: true });
  try {
    const it = c.events();
    const next = it.next();
    await a.c.sendText(bob, "new");
    const r = await withTimeout(next, "the new event");
    assert.equal(r.done, false);
    assert.equal((r.value as Event).seq, 2);
    assert.equal((r.value as Event).msg?.body.text, "new");
  } finally {
    await c.close();
  }
});
