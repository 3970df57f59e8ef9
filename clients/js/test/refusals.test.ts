// Refusals of a real mqimd run with small rate limits and a reject word
// list: sends and RPCs over the limit are retried after the server's
// retry_after_ms with the same bytes [IM-1.3-6]; content the moderation
// refuses is a final content_refused [IM-18.1-3]. A proxy records the
// packets, with the time each passed, to check how long the SDK waited.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ClientError, ClientErrorCode, ErrorCode, MqimError, decode } from "@mqim/sdk";
import { closeAll, dial, startServer, waitFor, type Server } from "./harness.js";
import { Proxies, isPublish, type Frame, type Proxy } from "./proxy.js";

/** Per connection: RATE sends (and RPC requests) a second, BURST at once. */
const RATE = 2;
const BURST = 2;
/** Timers may fire a little before their time (libuv's cached clock). */
const SLACK_MS = 5;

let srv: Server;
let words: string;
const proxies = new Proxies();
before(async () => {
  words = mkdtempSync(join(tmpdir(), "mqim-js-words-"));
  const reject = join(words, "reject.txt");
  writeFileSync(reject, "# refused words\nforbidden\n禁止词\n");
  srv = await startServer([
    "--limit-conn-send-rate", String(RATE), "--limit-conn-send-burst", String(BURST),
    "--limit-conn-rpc-rate", String(RATE), "--limit-conn-rpc-burst", String(BURST),
    "--moderation-reject-words", reject,
  ]);
});
after(async () => {
  await closeAll();
  await proxies.closeAll();
  await srv?.stop();
  rmSync(words, { recursive: true, force: true });
});

const proxy = (): Promise<Proxy> => proxies.start(srv.mqttPort);

let n = 0;
const uniq = (name: string) => `${name}${++n}r`;


/**
 * checkWaits checks that every refusal (at, retryAfterMs) is followed by
 * exactly one retry, identical to the refused request, no sooner than the
 * server said. requests are the device's publishes in order; refusedAt(i)
 * tells whether request i was refused and how long to wait.
 */
function checkWaits(requests: Frame[], refusal: (f: Frame) => { at: number; ms: number } | undefined): number {
  let refused = 0;
  for (let i = 0; i < requests.length; i++) {
    const r = refusal(requests[i]!);
    if (!r) continue;
    refused++;
    assert.ok(r.ms >= 1, `refusal ${refused} carries retry_after_ms (${r.ms})`);
    const retry = requests[i + 1];
    assert.ok(retry, `refusal ${refused} was retried`);
    assert.ok(retry.payload!.equals(requests[i]!.payload!), `refusal ${refused}: the retry resends the same bytes`);
    const waited = retry.at - r.at;
    assert.ok(waited >= r.ms - SLACK_MS, `refusal ${refused}: retried after ${waited.toFixed(1)} ms, the server said ${r.ms} ms`);
    assert.equal(refusal(retry), undefined, `refusal ${refused}: a retry after retry_after_ms is accepted`);
  }
  return refused;
}

test("sends over the rate limit wait out retry_after_ms and are stored once each", async () => {
  const [alice, bob] = [uniq("alice"), uniq("bob")];
  const b = await dial(srv, bob);
  const p = await proxy();
  const a = await dial(srv, alice, { via: p.url, noEvents: true });
  const sendTopic = `im/v1/u/${alice}/send`;
  const sends = 5;
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < sends; i++) ids.push((await a.c.sendText(bob, `hi ${i}`)).id);
  const took = performance.now() - t0;
  // BURST at once, then one per 1/RATE.
  const least = ((sends - BURST) * 1000) / RATE;
  assert.ok(took >= least - SLACK_MS, `${sends} sends in ${took.toFixed(0)} ms, faster than the limit allows (${least} ms)`);

  const acks = new Map(p.fromServer.filter((f) => f.type === 4).map((f) => [f.packetId, f]));
  const pubs = p.fromClient.filter((f) => isPublish(f, sendTopic));
  const refused = checkWaits(pubs, (f) => {
    const ack = acks.get(f.packetId);
    if (!ack || ack.reason !== 0x97) return undefined;
    // PUBACK 0x97 with code and retry_after_ms [IM-4.4-3]. (Packet ids are
    // reused, but each publish here is answered before the next goes out.)
    assert.equal(ack.userProps?.code, ErrorCode.RateLimited);
    return { at: ack.at, ms: Number(ack.userProps?.retry_after_ms) };
  });
  assert.ok(refused >= 1, "the limit refused some sends");
  assert.equal(pubs.length, sends + refused, "one retry per refusal");
  assert.equal(p.connections, 1, "a refusal does not cost the connection");
  // Stored once each, in order.
  await waitFor("bob's messages", () => b.messages().length === sends);
  assert.deepEqual(b.messages().map((e) => e.msg?.id), ids);
});

test("RPCs over the rate limit wait out retry_after_ms; a call that gives up says why", async () => {
  const alice = uniq("alice");
  const p = await proxy();
  const a = await dial(srv, alice, { via: p.url, noEvents: true });
  const calls = 5;
  for (let i = 0; i < calls; i++) await a.c.conversations();

  const rpcs = p.fromClient.filter((f) => isPublish(f, `im/v1/u/${alice}/rpc/conversations`));
  const responses = p.fromServer.filter((f) => f.type === 3 && f.topic?.startsWith(`im/v1/u/${alice}/reply/`));
  assert.equal(responses.length, rpcs.length, "every request was answered");
  const refused = checkWaits(rpcs, (f) => {
    // The response of the request (in order: each is answered before the next goes out).
    const resp = responses[rpcs.indexOf(f)]!;
    const r = decode(resp.payload!) as { ok: boolean; error?: { code: string; retry_after_ms?: number } };
    if (r.ok) return undefined;
    assert.equal(r.error?.code, ErrorCode.RateLimited); // a response, PUBACK 0x00 [IM-7.1-5]
    return { at: resp.at, ms: r.error?.retry_after_ms ?? 0 };
  });
  assert.ok(refused >= 1, "the limit refused some requests");
  assert.equal(rpcs.length, calls + refused);

  // The bucket is empty now: a call bounded below the wait gives up with
  // the rate_limited refusal it was waiting out.
  await assert.rejects(a.c.conversations(undefined, { timeout: (1000 / RATE) * 0.6 }), (e: unknown) => {
    assert.ok(e instanceof ClientError, String(e));
    assert.equal(e.code, ClientErrorCode.Timeout);
    assert.ok(e.last instanceof MqimError, `last: ${String(e.last)}`);
    assert.equal(e.last.code, ErrorCode.RateLimited);
    assert.equal(e.last.retryable, true);
    assert.ok(e.last.retryAfterMs > 0 && e.last.retryAfterMs <= 1000 / RATE, `retryAfterMs ${e.last.retryAfterMs}`);
    assert.match(e.message, /rate_limited/);
    return true;
  });
});

for (const format of ["msgpack", "json"] as const) {
  test(`content the moderation refuses is content_refused, not retried (${format})`, async () => {
    const [alice, bob] = [uniq("alice"), uniq("bob")];
    await dial(srv, bob, { noEvents: true });
    const p = await proxy();
    const a = await dial(srv, alice, { via: p.url, noEvents: true, format });
    const sendTopic = `im/v1/u/${alice}/send`;
    // A reject-list word, matched after NFKC and case folding [IM-18.1-2].
    await assert.rejects(a.c.sendText(bob, "this is ＦＯＲＢＩＤＤＥＮ here"), (e: unknown) => {
      assert.ok(e instanceof MqimError, String(e));
      assert.equal(e.code, ErrorCode.ContentRefused);
      assert.equal(e.reason, 0x83);
      assert.equal(e.retryable, false);
      assert.equal(e.retryAfterMs, 0);
      return true;
    });
    assert.equal(p.fromClient.filter((f) => isPublish(f, sendTopic)).length, 1, "a final refusal is not retried");
    // An edit to a refused text: the RPC's response [IM-18.3-1].
    const sent = await a.c.sendText(bob, "fine");
    await assert.rejects(a.c.edit(sent.id, { text: "现在是禁止词" }), (e: unknown) => {
      assert.ok(e instanceof MqimError, String(e));
      assert.equal(e.code, ErrorCode.ContentRefused);
      assert.equal(e.retryable, false);
      // The response's message names the field, never the word [IM-18.1-3].
      assert.match(e.detail, /text/);
      assert.doesNotMatch(e.detail, /禁止词/);
      return true;
    });
    const h = await a.c.history({ with: bob });
    assert.deepEqual(h.messages.map((m) => m.body), [{ text: "fine" }], "nothing refused was stored");
  });
}
