// Network faults between a device and a real mqimd, injected by a TCP proxy
// that parses MQTT framing: a connection cut between PUBLISH and PUBACK, a
// dropped inbox event, lost pushes before a reconnect, a lost last event.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { decode, type Event, type Presence } from "@mqim/sdk";
import { closeAll, contiguous, dial, noMoreEvents, startServer, waitFor, type Server } from "./harness.js";
import { Proxies, isPublish, type Frame, type Proxy } from "./proxy.js";

let srv: Server;
const proxies = new Proxies();
before(async () => {
  // Groups with more than 2 members fan out on read (the group topic) [IM-11.3].
  srv = await startServer(["--group-read-fanout", "2"]);
});
after(async () => {
  await closeAll();
  await proxies.closeAll();
  await srv?.stop();
});

const proxy = (): Promise<Proxy> => proxies.start(srv.mqttPort);

let n = 0;
const uniq = (name: string) => `${name}${++n}f`;

const seqOf = (f: Frame) => (decode(f.payload!) as Event).seq;

for (const format of ["msgpack", "json"] as const) {
  test(`a connection cut between PUBLISH and PUBACK still ends with one stored message (${format})`, async () => {
    const [alice, bob] = [uniq("alice"), uniq("bob")];
    const b = await dial(srv, bob);
    const p = await proxy();
    const a = await dial(srv, alice, { via: p.url, format });
    const sendTopic = `im/v1/u/${alice}/send`;
    let armed = true;
    // Forward alice's first send, then cut her connection before the PUBACK.
    p.onClient((f) => {
      if (armed && isPublish(f, sendTopic)) {
        armed = false;
        return "cut";
      }
      return "pass";
    });
    const sent = await a.c.sendText(bob, "exactly once");

    // The server stored and acknowledged the original; the device never saw that.
    assert.equal(p.swallowedAcks.length, 1);
    const ack = p.swallowedAcks[0]!.raw;
    assert.equal(ack.length > 4 ? ack[4] : 0, 0x00, "the swallowed PUBACK was a success");
    // The SDK reconnected and resent the same bytes (same cmid) [IM-4.5-4].
    assert.equal(p.connections, 2);
    const pubs = p.fromClient.filter((f) => isPublish(f, sendTopic));
    assert.equal(pubs.length, 2);
    assert.ok(pubs[0]!.payload!.equals(pubs[1]!.payload!), "the retry resends the identical payload");
    // The retry's PUBACK is the stored message [IM-4.5-2].
    assert.equal(sent.seq, 1);

    const h = await a.c.history({ with: bob });
    assert.equal(h.messages.length, 1, "history shows exactly one message");
    assert.equal(h.messages[0]!.id, sent.id);
    assert.equal(h.messages[0]!.cmid, sent.cmid);
    await waitFor("bob's message", () => b.messages().length === 1);
    await noMoreEvents(b, 1);
    await waitFor("alice's own event", () => a.messages().length === 1);
    await noMoreEvents(a, 1);
  });
}

test("a send refused as overloaded is retried with the same bytes and stored once", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob);
  const p = await proxy();
  const a = await dial(srv, alice, { via: p.url });
  const sendTopic = `im/v1/u/${alice}/send`;
  let refusals = 0;
  p.onClient((f) => (isPublish(f, sendTopic) && refusals++ < 2 ? "overloaded" : "pass"));
  const sent = await a.c.sendText(bob, "after a refusal");
  const pubs = p.fromClient.filter((f) => isPublish(f, sendTopic));
  assert.equal(pubs.length, 3, "two refused attempts, then the one that passed");
  assert.ok(pubs.every((f) => f.payload!.equals(pubs[0]!.payload!)));
  assert.equal(p.connections, 1, "a refusal does not cost the connection");
  assert.equal((await a.c.history({ with: bob })).messages.length, 1);
  await waitFor("bob's message", () => b.messages().length === 1);
  assert.equal(b.messages()[0]!.msg?.id, sent.id);
});

test("a send made while the server is unreachable is stored once when it is back", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob);
  const p = await proxy();
  const a = await dial(srv, alice, { via: p.url });
  p.refuse(true);
  p.kill();
  await waitFor("alice offline", () => !a.c.online);
  let settled = false;
  const pending = a.c.sendText(bob, "queued while down").finally(() => (settled = true));
  await waitFor("two refused reconnects", () => p.refused >= 2);
  assert.equal(settled, false, "the send waits for the server");
  p.refuse(false);
  const sent = await pending;
  assert.equal(sent.seq, 1);
  await waitFor("bob's message", () => b.messages().length === 1);
  assert.equal((await b.c.history({ with: alice })).messages.length, 1);
});

test("an inbox event dropped on the way is filled by sync, in order, once", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const p = await proxy();
  const b = await dial(srv, bob, { via: p.url });
  const a = await dial(srv, alice, { noEvents: true });
  const inbox = `im/v1/u/${bob}/inbox`;
  const syncTopic = `im/v1/u/${bob}/rpc/sync`;
  const dropped: Frame[] = [];
  p.onServer((f) => {
    if (dropped.length === 0 && isPublish(f, inbox) && seqOf(f) === 2) {
      dropped.push(f);
      return "drop";
    }
    return "pass";
  });
  const syncsBefore = () => p.fromClient.filter((f) => isPublish(f, syncTopic)).length;
  await waitFor("bob's first sync", () => syncsBefore() >= 1);
  const initialSyncs = syncsBefore();
  for (const text of ["m1", "m2", "m3"]) await a.c.sendText(bob, text);

  await waitFor("three events", () => b.stored().length === 3);
  assert.equal(dropped.length, 1, "the proxy dropped event 2");
  assert.ok(contiguous(b.stored()), `seqs ${b.stored().map((e) => e.seq)}`);
  assert.deepEqual(b.messages().map((e) => e.msg?.body.text), ["m1", "m2", "m3"]);
  assert.ok(syncsBefore() > initialSyncs, "the gap made the SDK sync");
  assert.equal(p.connections, 1, "no reconnect was needed");
  await noMoreEvents(b, 3);
  assert.equal(b.stored().length, 3);
});

test("pushes lost before a reconnect are synced after it", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const p = await proxy();
  const b = await dial(srv, bob, { via: p.url });
  const a = await dial(srv, alice, { noEvents: true });
  const inbox = `im/v1/u/${bob}/inbox`;
  let lose = true;
  const lost: Frame[] = [];
  p.onServer((f) => {
    if (lose && isPublish(f, inbox)) {
      lost.push(f);
      return "drop";
    }
    return "pass";
  });
  await a.c.sendText(bob, "lost 1");
  await a.c.sendText(bob, "lost 2");
  await waitFor("both pushes dropped", () => lost.length === 2);
  assert.equal(b.stored().length, 0);
  lose = false;
  p.kill(); // the network drops the connection
  await waitFor("the events after the reconnect", () => b.stored().length === 2);
  assert.ok(p.connections >= 2);
  assert.deepEqual(b.messages().map((e) => e.msg?.body.text), ["lost 1", "lost 2"]);
  await noMoreEvents(b, 2);
});

test("a lost last event is found by the quiet-period sync", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const p = await proxy();
  const b = await dial(srv, bob, { via: p.url, quietSync: 300 });
  const a = await dial(srv, alice, { noEvents: true });
  const inbox = `im/v1/u/${bob}/inbox`;
  let dropped = 0;
  p.onServer((f) => {
    if (dropped === 0 && isPublish(f, inbox)) {
      dropped++;
      return "drop";
    }
    return "pass";
  });
  await a.c.sendText(bob, "the last word");
  await waitFor("the event via sync", () => b.stored().length === 1);
  assert.equal(dropped, 1);
  assert.equal(p.connections, 1);
  assert.equal(b.messages()[0]!.msg?.body.text, "the last word");
  await noMoreEvents(b, 1);
});

test("a read-fan-out group is followed on its topic; a dropped group event is filled by history", async () => {
  const [alice, bob, carol] = [uniq("alice"), uniq("bob"), uniq("carol")];
  const p = await proxy();
  const b = await dial(srv, bob, { via: p.url });
  await dial(srv, carol, { noEvents: true });
  const a = await dial(srv, alice, { noEvents: true });
  const g = await a.c.createGroup({ members: [bob, carol], name: "big" });
  assert.equal(g.fanout, "read");
  const readFrom = g.read_from ?? 0;
  assert.equal(readFrom, 1);
  // The create (conv seq ≤ read_from) comes on the inbox [IM-11.3-3].
  await waitFor("bob's create event", () => b.messages().some((e) => e.conv === g.group && e.msg?.body.op === "create"));

  const topic = `im/v1/g/${g.group.slice(2)}`;
  const dropped: Frame[] = [];
  p.onServer((f) => {
    if (dropped.length === 0 && isPublish(f, topic) && (decode(f.payload!) as Event).conv_seq === 3) {
      dropped.push(f);
      return "drop";
    }
    return "pass";
  });
  const got: Event[] = [];
  const follow = b.c.followGroup(g.group, readFrom, (ev) => void got.push(ev));
  await waitFor("the group topic subscription", () => p.fromClient.some((f) => f.type === 8 && f.raw.includes(Buffer.from(topic))));
  for (const text of ["g1", "g2", "g3"]) await a.c.sendGroup(g.group, "text", { text });
  await waitFor("three group events", () => got.length === 3);
  assert.equal(dropped.length, 1);
  assert.deepEqual(got.map((e) => e.conv_seq), [2, 3, 4]);
  assert.deepEqual(got.map((e) => e.msg?.body.text), ["g1", "g2", "g3"]);
  assert.ok(got.every((e) => !e.seq), "group topic events have no inbox seq");
  // None of them went to bob's inbox.
  assert.equal(b.messages().filter((e) => e.conv === g.group).length, 1);
  follow.stop();
});

test("watchPresence gets the current state, then changes", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob, { noEvents: true });
  const a = await dial(srv, alice, { noEvents: true });
  await b.c.addContact(alice); // bob's presence is now visible to alice [IM-15.2-2]
  const seen: Presence[] = [];
  const w = a.c.watchPresence(bob, (p) => void seen.push(p));
  await waitFor("bob online", () => seen.some((p) => p.user === bob && p.online));
  await b.c.close();
  await waitFor("bob offline", () => seen.some((p) => p.user === bob && !p.online && (p.last_seen ?? 0) > 0));
  w.stop();
});
