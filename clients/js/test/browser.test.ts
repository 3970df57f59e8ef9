// The SDK in a real browser: Debian's Chromium (driven by playwright-core)
// loads examples/browser.html, which imports dist/ through an import map,
// connects over MQTT over WebSocket and sends to a device in Node. Skipped
// where /usr/bin/chromium is missing, except under CI=true.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, extname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium, type Browser } from "playwright-core";

import { closeAll, dial, startServer, waitFor, type Server } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../.."); // clients/js
const have = existsSync(CHROMIUM);
if (!have && process.env.CI === "true") throw new Error(`${CHROMIUM} is needed under CI (apt-get install chromium)`);

let srv: Server;
let browser: Browser | undefined;
const http = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript" };
  readFile(join(root, path)).then(
    (body) => {
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
      res.end(body);
    },
    () => {
      res.writeHead(404);
      res.end();
    },
  );
});

before(async () => {
  if (!have) return;
  srv = await startServer();
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
  await closeAll();
  http.close();
  await srv?.stop();
});

test("in a browser: connect over WebSocket, send, list conversations, cursor stores", { skip: !have && `${CHROMIUM} missing` }, async () => {
  const bob = await dial(srv, "bob");
  const addr = http.address();
  assert.ok(addr && typeof addr === "object");
  const page = await browser!.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const q = new URLSearchParams({ ws: srv.ws, user: "alice", token: srv.token("alice"), to: "bob" });
  await page.goto(`http://127.0.0.1:${addr.port}/examples/browser.html?${q}`);
  await page.waitForFunction(() => document.title === "done" || document.title.startsWith("error"), null, { timeout: 60_000 });
  const log = (await page.textContent("#log")) ?? "";
  assert.deepEqual(errors, []);
  assert.match(log, /connected as alice \(msgpack\)/);
  const m = /sent: id (\d+) seq 1/.exec(log);
  assert.ok(m, log);
  assert.ok(BigInt(m[1]!) > 2n ** 53n);
  await waitFor("bob's message from the browser", () => bob.messages().length === 1);
  assert.equal(bob.messages()[0]!.msg?.id, m[1]);
  assert.equal(bob.messages()[0]!.msg?.body.text, "hello from a browser");
  // The browser's own message event came in with the exact id too.
  assert.match(log, new RegExp(`#1 alice: hello from a browser \\[id ${m[1]}\\]`));
  // The page's LocalStorageCursor holds the cursor; IndexedDBCursor works there too.
  const stores = await page.evaluate(async (url: string) => {
    const sdk = (await import(url)) as {
      IndexedDBCursor: new (key: string) => { load(): Promise<number>; save(n: number): Promise<void> };
    };
    const first = await new sdk.IndexedDBCursor("mqim.cursor.test").load();
    await new sdk.IndexedDBCursor("mqim.cursor.test").save(42);
    const again = await new sdk.IndexedDBCursor("mqim.cursor.test").load();
    return { first, again, local: localStorage.getItem("mqim.cursor.alice.browser") };
  }, "../dist/index.js");
  assert.deepEqual(stores, { first: 0, again: 42, local: "1" });
});
