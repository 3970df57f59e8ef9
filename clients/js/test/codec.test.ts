// Unit tests of the parts that need no server: encodings and message ids,
// cmids, cursor stores, errors.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ClientError,
  ErrorCode,
  LocalStorageCursor,
  MemoryCursor,
  MqimError,
  decode,
  detect,
  encode,
  newCmid,
  parseServer,
  type StorageLike,
} from "@mqim/sdk";

const BIG = "4611686018427387905"; // 2^62 + 1: far above 2^53

test("a message id above 2^53 round-trips exactly in MessagePack", () => {
  const ev = { kind: "message", seq: 7, msg: { id: BigInt(BIG), seq: 3, body: { text: "hi" }, ts: 1767312000123 } };
  const bytes = encode(ev, "msgpack");
  // int 64 / uint 64 on the wire, as the Go server writes ids [IM-1.2-6]
  assert.ok(Buffer.from(bytes).includes(Buffer.from("a26964cf4000000000000001", "hex")));
  const back = decode(bytes) as { seq: number; msg: { id: string; seq: number; ts: number } };
  assert.equal(back.msg.id, BIG);
  assert.equal(back.seq, 7);
  assert.equal(typeof back.msg.ts, "number");
});

test("the Go server's annotated MessagePack event of the spec decodes with id as a string", () => {
  // spec §1.2: the message event of seq 7, exactly as the Go server writes it
  const hex =
    "86a46b696e64a76d657373616765a3736571d30000000000000007a4636f6e76ab643a616c6963653a626f62" +
    "a8636f6e765f736571d30000000000000003a36d736788a26964d3000149971ec01000a4636f6e76ab643a616c6963653a626f62" +
    "a3736571d30000000000000003a466726f6da5616c696365a4636d6964a26331a474797065a474657874" +
    "a4626f647981a474657874a26869a27473d30000019b7c01047ba27473d30000019b7c01047b";
  const ev = decode(Buffer.from(hex, "hex")) as Record<string, unknown> & { msg: Record<string, unknown> };
  assert.deepEqual(ev, {
    kind: "message",
    seq: 7,
    conv: "d:alice:bob",
    conv_seq: 3,
    msg: { id: "362388381503488", conv: "d:alice:bob", seq: 3, from: "alice", cmid: "c1", type: "text", body: { text: "hi" }, ts: 1767312000123 },
    ts: 1767312000123,
  });
});

test("a message id above 2^53 round-trips exactly in JSON, quoted or not", () => {
  const quoted = Buffer.from(`{"kind":"message","seq":1,"msg":{"id":"${BIG}","body":{"n":1}}}`);
  assert.equal(detect(quoted), "json");
  assert.equal((decode(quoted) as { msg: { id: string } }).msg.id, BIG);
  // A writer that sent the id as a bare number still gives the exact id.
  const bare = Buffer.from(` {"msg": {"id": ${BIG}, "s": "\\"id\\":1", "body": {"x": 12345678901234567890}}}`);
  const v = decode(bare) as { msg: { id: string; s: string; body: { x: number } } };
  assert.equal(v.msg.id, BIG);
  assert.equal(v.msg.s, '"id":1');
  assert.equal(typeof v.msg.body.x, "number"); // bodies stay verbatim
  // Requests: msg_id is a string in JSON [IM-14] and an integer in MessagePack.
  assert.equal(new TextDecoder().decode(encode({ msg_id: BIG }, "json")), `{"msg_id":"${BIG}"}`);
  assert.deepEqual(Buffer.from(encode({ msg_id: BIG }, "msgpack")).toString("hex"), "81a66d73675f6964cf4000000000000001");
  // An id beyond int 64 is not wrapped around: it goes as the string it is (the server refuses it).
  assert.deepEqual(decode(encode({ msg_id: "99999999999999999999" }, "msgpack")), { msg_id: "99999999999999999999" });
});

test("bodies are not searched for ids", () => {
  const v = decode(encode({ msg: { id: 5n, body: { id: 5, nested: { id: 6 } } } }, "msgpack")) as {
    msg: { id: string; body: { id: number; nested: { id: number } } };
  };
  assert.equal(v.msg.id, "5");
  assert.equal(v.msg.body.id, 5);
  assert.equal(v.msg.body.nested.id, 6);
});

test("only ids are kept exact in JSON; other numbers stay numbers", () => {
  const s = '{"id":"r1","seq":12345,"a":[1,2.5e3,-7],"id2":99999999999999999999,"msg":{"id":-99999999999999999999}}';
  assert.deepEqual(decode(Buffer.from(s)), { id: "r1", seq: 12345, a: [1, 2500, -7], id2: 1e20, msg: { id: "-99999999999999999999" } });
});

test("cmids are ULIDs, fresh each time", () => {
  const a = newCmid();
  const b = newCmid();
  assert.match(a, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.notEqual(a, b);
  assert.ok(newCmid(1767312000123) < newCmid(1767312000124));
});

test("cursor stores: memory and localStorage", async () => {
  const m = new MemoryCursor();
  assert.equal(await m.load(), 0);
  await m.save(42);
  assert.equal(await m.load(), 42);

  const data = new Map<string, string>();
  const storage: StorageLike = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
  const ls = new LocalStorageCursor("mqim.cursor.bob.phone", storage);
  assert.equal(ls.load(), 0);
  ls.save(7);
  assert.equal(data.get("mqim.cursor.bob.phone"), "7");
  assert.equal(new LocalStorageCursor("mqim.cursor.bob.phone", storage).load(), 7);
  data.set("bad", "x");
  assert.throws(() => new LocalStorageCursor("bad", storage).load());
});

test("errors carry the spec's code and retryability", () => {
  const e = new MqimError(ErrorCode.UnknownUser, "no user carol", 0x83);
  assert.ok(e instanceof Error);
  assert.equal(e.code, "unknown_user");
  assert.equal(e.retryable, false);
  assert.equal(new MqimError(ErrorCode.Overloaded).retryable, true);
  assert.equal(new MqimError("", "", 0x97).retryable, true);
  assert.equal(new MqimError("some_new_code").retryable, false); // [IM-6.1-2]
  const limited = new MqimError(ErrorCode.RateLimited, "", 0x97, 0, 250);
  assert.equal(limited.retryable, true); // after retryAfterMs [IM-1.3-6]
  assert.equal(limited.retryAfterMs, 250);
  assert.equal(new MqimError(ErrorCode.RateLimited, "", 0x97, 0, Number("x")).retryAfterMs, 0);
  assert.equal(new MqimError(ErrorCode.ContentRefused, "", 0x83).retryable, false); // [IM-18]
  assert.ok(new ClientError("closed", "x") instanceof Error);
});

test("server URLs", () => {
  assert.equal(parseServer("ws://h:8083").href, "ws://h:8083/mqtt");
  assert.equal(parseServer("h:1883").protocol, "mqtt:");
  assert.throws(() => parseServer("http://h:1"));
  assert.throws(() => parseServer("mqtt://h"));
});
