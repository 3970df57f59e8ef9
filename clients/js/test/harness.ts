// Test harness: a real mqimd (embedded SQLite store and NATS) in a temp
// data dir on free loopback ports, tokens minted with its secret, and wait
// helpers. No fixed sleeps: every wait polls a condition up to a timeout.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, type ClientOptions, type Event } from "@mqim/sdk";

/** Bounds every wait for something that must happen; a passing test never waits for it. */
export const WAIT = 60_000;

const here = dirname(fileURLToPath(import.meta.url));
// build/test/harness.js → the repository root is four levels up (clients/js/build/test).
const repoRoot = resolve(here, "../../../..");

let builtBinary: string | undefined;

/** mqimdBinary is $MQIMD_BIN, or mqimd built with `go build` once per process. */
export function mqimdBinary(): string {
  const env = process.env.MQIMD_BIN;
  if (env) return env;
  if (builtBinary && existsSync(builtBinary)) return builtBinary;
  const dir = mkdtempSync(join(tmpdir(), "mqim-js-bin-"));
  const out = join(dir, "mqimd");
  execFileSync("go", ["build", "-o", out, "./cmd/mqimd"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  builtBinary = out;
  return out;
}

export interface Server {
  mqtt: string; // mqtt://127.0.0.1:port
  mqttPort: number;
  ws: string; // ws://127.0.0.1:port/mqtt
  http: string; // http://127.0.0.1:port
  secret: string;
  token(user: string, ttlSeconds?: number): string;
  log(): string;
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

/** mint makes an HS256 JWT as `mqim token` does: sub, iat, exp [IM-3.1-2]. */
export function mint(secret: string, user: string, ttlSeconds = 3600, extra: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(JSON.stringify({ sub: user, iat: now, exp: now + ttlSeconds, ...extra }));
  const sig = createHmac("sha256", secret).update(`${head}.${claims}`).digest("base64url");
  return `${head}.${claims}.${sig}`;
}

/** startServer starts mqimd and resolves once it serves. */
export async function startServer(extraArgs: string[] = []): Promise<Server> {
  const bin = mqimdBinary();
  const dataDir = mkdtempSync(join(tmpdir(), "mqim-js-data-"));
  const secret = randomBytes(16).toString("hex");
  const child: ChildProcess = spawn(
    bin,
    [
      "--data-dir", dataDir,
      "--mqtt-addr", "127.0.0.1:0",
      "--ws-addr", "127.0.0.1:0",
      "--http-addr", "127.0.0.1:0",
      "--jwt-secret", secret,
      "--log-level", "info",
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const addrs = await new Promise<{ mqtt: string; ws: string; http: string }>((resolveAddrs, reject) => {
    const timer = setTimeout(() => reject(new Error(`mqimd did not start:\n${output}`)), WAIT);
    const onData = (d: Buffer) => {
      output += d.toString();
      const line = output.split("\n").find((l) => l.includes("mqimd serving"));
      if (!line) return;
      const m = /mqtt=(\S+).*websocket=(\S+).*http=(\S+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolveAddrs({ mqtt: m[1]!, ws: m[2]!, http: m[3]! });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`mqimd exited with ${code}:\n${output}`));
    });
  });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  return {
    mqtt: `mqtt://${addrs.mqtt}`,
    mqttPort: Number(addrs.mqtt.split(":").pop()),
    ws: addrs.ws,
    http: `http://${addrs.http}`,
    secret,
    token: (user, ttl) => mint(secret, user, ttl),
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** waitFor polls cond until it holds, failing with what after timeout. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeout = WAIT): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** withTimeout resolves with p, or fails after timeout. */
export async function withTimeout<T>(p: Promise<T>, what: string, timeout = WAIT): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeout)))]);
  } finally {
    clearTimeout(t);
  }
}

/** Device is a client with the events it received. */
export interface Device {
  c: Client;
  events: Event[];
  /** Stored events (with a seq) in the order received. */
  stored(): Event[];
  /** messages returns the message events of kind message. */
  messages(): Event[];
}

let clientCounter = 0;

/** dial connects a device of user; close it with closeAll. */
export async function dial(server: Server, user: string, opts: Partial<ClientOptions> & { via?: string } = {}): Promise<Device> {
  const events: Event[] = [];
  const { via, ...rest } = opts;
  const c = await Client.connect({
    server: via ?? server.mqtt,
    user,
    token: server.token(user),
    clientId: `${user}.t${++clientCounter}${process.pid}`,
    requestTimeout: 5000,
    reconnectMax: 500,
    httpUrl: server.http,
    onEvent: (ev) => {
      events.push(ev);
    },
    log: process.env.MQIM_TEST_LOG ? (level, msg, f) => console.error(`[${user}] ${level} ${msg}`, f ?? "") : undefined,
    ...rest,
  });
  open.add(c);
  return {
    c,
    events,
    stored: () => events.filter((e) => (e.seq ?? 0) > 0),
    messages: () => events.filter((e) => e.kind === "message"),
  };
}

const open = new Set<Client>();

export async function closeAll(): Promise<void> {
  const cs = [...open];
  open.clear();
  await Promise.all(cs.map((c) => c.close()));
}

/** assertSeqs checks that stored events are 1..n of a fresh inbox, in order, each once. */
export function contiguous(evs: Event[], from = 1): boolean {
  return evs.every((e, i) => e.seq === from + i);
}

/** noMoreEvents checks that d has everything up to last and the server has nothing after it. */
export async function noMoreEvents(d: Device, last: number): Promise<void> {
  await waitFor(`${d.c.user}: cursor at ${last}`, () => d.c.cursor === last);
  const res = await d.c.sync(last, 10);
  if (res.events.length !== 0 || res.latest_seq !== last) {
    throw new Error(`${d.c.user}: server has events after ${last}: latest ${res.latest_seq}`);
  }
}
