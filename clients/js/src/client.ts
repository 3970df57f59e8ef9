// Client: one MQTT 5 device of a user, on MQTT.js. See README.md.
//
// Rule numbers such as [IM-5.2-3] refer to protocol/spec.md.
import mqtt from "mqtt";
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient, Packet } from "mqtt";

import { contentType, decode, encode, type Format } from "./codec.js";
import { MemoryCursor, type CursorStore } from "./cursor.js";
import { ClientError, ClientErrorCode, ErrorCode, MqimError } from "./errors.js";
import type {
  Body,
  Contact,
  ConversationsResult,
  ConvSettings,
  ErrorObject,
  Event,
  GroupChangeResult,
  GroupCreateRequest,
  GroupInfo,
  GroupUpdateRequest,
  HistoryRequest,
  HistoryResult,
  Message,
  MessageId,
  Presence,
  PresenceUpdate,
  ReadItem,
  ReadResult,
  Sent,
  SettingsChange,
  SettingsResult,
  SyncResult,
  Upload,
} from "./types.js";
import { EventKind } from "./types.js";
import {
  Channel,
  Scope,
  Signal,
  abortReason,
  newCmid,
  race,
  randomString,
  retryDelay,
  sleep,
  unlimited,
  validId,
} from "./util.js";

/** Diagnostics sink. Messages never hold tokens or message bodies. */
export type Logger = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

/** The client's connection state, as onStatus reports it. */
export type Status =
  | { state: "online" }
  | { state: "offline"; error?: Error }
  | { state: "closed"; error?: Error };

export interface ClientOptions {
  /**
   * The server: mqtt://host:port (MQTT over TCP, Node only), ws://host:port
   * (MQTT over WebSocket; path /mqtt when none is given), mqtts:// or wss://
   * with TLS. Required.
   */
  server: string;
  /** The user id; required. */
  user: string;
  /** The user's JWT (mqim token); required. */
  token: string;
  /**
   * The device id, stable per installation and unique [IM-3.1-6]. Default:
   * user + "." + a random suffix.
   */
  clientId?: string;
  /** What the server writes to this device [IM-1.2-3]: "msgpack" (default) or "json". */
  format?: Format;
  /** Where the inbox cursor is kept. Default: a MemoryCursor at 0. */
  cursor?: CursorStore;
  /**
   * A new device (cursor 0) starts at the server's latest inbox seq instead
   * of receiving the whole inbox [IM-5.3]. connect() then resolves once that
   * start is fixed, so every event committed after it is delivered.
   */
  skipBacklog?: boolean;
  /** Do not subscribe to the inbox: for tools that only send and call RPCs. */
  noEvents?: boolean;
  /**
   * Receives the inbox events: in inbox seq order, each stored event once,
   * with no gap. The next event waits until the returned promise settles;
   * the cursor is saved after it. Without onEvent, read client.events().
   */
  onEvent?: (ev: Event) => void | Promise<void>;
  /** Connection state changes. */
  onStatus?: (s: Status) => void;
  /** Bounds one attempt of a send, an RPC, a subscribe or a connect (ms). Default 10000. */
  requestTimeout?: number;
  /** Bounds a whole RPC call, retries included, unless the call says otherwise (ms). Default 30000. */
  callTimeout?: number;
  /** Bounds connect() (ms). Default 30000. */
  connectTimeout?: number;
  /** MQTT keepalive in seconds. Default 30. */
  keepalive?: number;
  /** Caps the delay between connection attempts (ms), which grows from 100 ms. Default 10000. */
  reconnectMax?: number;
  /**
   * After this long without inbox traffic the client syncs, in case the
   * last event before a silence was lost [IM-5.2-5] (ms). Default 120000;
   * 0 or negative: never.
   */
  quietSync?: number;
  /** The server's HTTP API base URL for uploads, e.g. http://localhost:8080. */
  httpUrl?: string;
  /** Diagnostics. Default: none. */
  log?: Logger;
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Bounds the call (ms); for sends the default is none (retry until acknowledged). */
  timeout?: number;
}

export interface SendOptions extends CallOptions {
  /**
   * Send with this cmid instead of a fresh one: for an app that stores its
   * outgoing messages and sends them again after a restart [IM-4.5-4].
   */
  cmid?: string;
  /** Mentioned members of a group message, or "*" [IM-11.6]. */
  mentions?: string[];
}

/** What to send: to a user (`to`) or to a group (`group`). */
export interface Outgoing {
  to?: string;
  group?: string;
  type: string;
  body: Body;
}

/** A handle of something the client follows (a group topic, a presence topic). */
export interface Following {
  stop(): void;
}

const INBOX_QUEUE_MAX = 10000;
const SYNC_PAGE = 100;
const HISTORY_PAGE = 200;
const MAX_INTERNAL_RETRIES = 3;
/** Bytes of a PUBLISH besides topic and payload: fixed header, packet id, properties. */
const PACKET_OVERHEAD = 64;

/** Group change methods are not idempotent [IM-11.4-5]. */
const NOT_IDEMPOTENT = new Set([
  "group.create",
  "group.add",
  "group.remove",
  "group.leave",
  "group.role",
  "group.transfer",
  "group.mute",
  "group.update",
]);

/** Semaphore bounds the publishes in flight on one connection [IM-1.3-1]. */
class Semaphore {
  private waiters: { give: () => void; dead: boolean }[] = [];
  constructor(private free: number) {}
  acquire(signal: AbortSignal): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    const w = { give: () => {}, dead: false };
    const p = new Promise<void>((r) => (w.give = r));
    this.waiters.push(w);
    return race(p, signal).catch((e: unknown) => {
      w.dead = true;
      throw e;
    });
  }
  release(): void {
    for (let w = this.waiters.shift(); w; w = this.waiters.shift()) {
      if (!w.dead) {
        w.give();
        return;
      }
    }
    this.free++;
  }
}

/** Conn is one MQTT connection. */
class Conn {
  ready = false;
  readonly down = new AbortController(); // fires when the connection is gone
  maxPacket = 0;
  sem: Semaphore = new Semaphore(256);
  readonly pubacks = new Map<number, Packet>();
  constructor(
    readonly gen: number,
    readonly mq: MqttClient,
  ) {
    unlimited(this.down.signal);
  }
}

class ConnLost extends Error {
  constructor(cause?: unknown) {
    super("connection lost", { cause });
  }
}

/** Reasons of failure PUBACKs [IM-4.4-3]. */
function pubackError(pkt: Packet | undefined, fallbackReason: number): MqimError {
  const p = pkt as { reasonCode?: number; properties?: { reasonString?: string; userProperties?: Record<string, string | string[]> } } | undefined;
  const reason = p?.reasonCode ?? fallbackReason;
  const u = p?.properties?.userProperties;
  // rate_limited carries retry_after_ms (decimal) [IM-4.4-3].
  return new MqimError(userProp(u, "code"), p?.properties?.reasonString ?? "", reason, 0, Number(userProp(u, "retry_after_ms") || 0));
}

/** An MqimError from an error object [IM-6.2-1] (an RPC response, an HTTP error body). */
function objectError(e: ErrorObject | undefined, fallbackCode: string, fallbackDetail: string, status = 0): MqimError {
  return new MqimError(e?.code ?? fallbackCode, e?.message ?? fallbackDetail, 0, status, Number(e?.retry_after_ms ?? 0));
}

/**
 * nextDelay is how long to wait before the next attempt: the backoff, or,
 * after rate_limited, at least the server's retry_after_ms [IM-1.3-6].
 */
function nextDelay(attempt: number, last: unknown): number {
  return Math.max(retryDelay(attempt), last instanceof MqimError ? last.retryAfterMs : 0);
}

function userProp(u: Record<string, string | string[]> | undefined, k: string): string {
  const v = u?.[k];
  if (Array.isArray(v)) return v[0] ?? "";
  return v ?? "";
}

function toBytes(b: Uint8Array): Uint8Array {
  // MQTT.js writes Buffers; in Node hand it one without copying.
  const B = (globalThis as { Buffer?: { from(a: ArrayBufferLike, off: number, len: number): Uint8Array } }).Buffer;
  return B ? B.from(b.buffer, b.byteOffset, b.byteLength) : b;
}

/** parseServer reads ClientOptions.server. */
export function parseServer(s: string): URL {
  const u = new URL(s.includes("://") ? s : "mqtt://" + s);
  switch (u.protocol) {
    case "mqtt:":
    case "tcp:":
    case "mqtts:":
    case "ssl:":
    case "tls:":
      break;
    case "ws:":
    case "wss:":
      if (u.pathname === "" || u.pathname === "/") u.pathname = "/mqtt";
      break;
    default:
      throw new Error(`mqim: bad server URL ${JSON.stringify(s)}: scheme must be mqtt, mqtts, ws or wss`);
  }
  if (!u.hostname || !u.port) throw new Error(`mqim: bad server URL ${JSON.stringify(s)}: want host:port`);
  return u;
}

/** The topics of a user [IM-2.1]. */
const topics = {
  send: (u: string) => `im/v1/u/${u}/send`,
  inbox: (u: string) => `im/v1/u/${u}/inbox`,
  rpc: (u: string, m: string) => `im/v1/u/${u}/rpc/${m}`,
  reply: (u: string, c: string) => `im/v1/u/${u}/reply/${c}`,
  typing: (u: string) => `im/v1/u/${u}/typing`,
  presence: (u: string) => `im/v1/u/${u}/presence`,
  group: (g: string) => `im/v1/g/${g.startsWith("g:") ? g.slice(2) : g}`,
};

interface Follower {
  topic: string;
  onSubscribed(): void;
  onPublish(payload: Uint8Array, ct: string | undefined): void;
  onRefused(reason: number): void;
}

/**
 * Client is one connected device of a user. Create it with Client.connect;
 * close it when done. It reconnects by itself and, after every (re)connect,
 * subscribes to the user's inbox and reply topic and syncs from its cursor
 * [IM-5.2-4].
 */
export class Client {
  readonly user: string;
  readonly clientId: string;
  readonly format: Format;
  readonly server: URL;

  private readonly opts: ClientOptions;
  private readonly replyTopic: string;
  private readonly inboxTopic: string;
  private readonly log: Logger;
  private readonly requestTimeout: number;
  private readonly callTimeout: number;
  private readonly cursorStore: CursorStore;

  private readonly stopCtl = new AbortController(); // fires on close or a fatal error
  private conn: Conn | undefined;
  private gen = 0;
  private readyWaiters = new Set<() => void>();
  private fatal: Error | undefined;
  private closing = false;
  private lastConnectError: Error | undefined;

  private corr = 0;
  private readonly waiters = new Map<string, (p: { payload: Uint8Array; ct: string | undefined }) => void>();

  private readonly live: Event[] = [];
  private readonly wake = new Signal();
  private upSig = false;
  private quietSig = false;
  private quietTimer: ReturnType<typeof setTimeout> | undefined;
  private cursorSeq = 0;
  private held = new Map<number, Event>();
  private gap = false;
  private readonly channel = new Channel<Event>();
  private caughtUpResolve!: () => void;
  /** Resolves once the event stream has caught up with the server for the first time. */
  readonly caughtUp: Promise<void>;
  private doneResolve!: () => void;
  /** Resolves when the client has stopped for good (closed, or a fatal error: see error). */
  readonly done: Promise<void>;
  private processorDone: Promise<void> = Promise.resolve();
  private readonly followers = new Map<string, Follower>();

  private constructor(opts: ClientOptions, cursorSeq: number) {
    this.opts = opts;
    this.user = opts.user;
    this.clientId = opts.clientId!;
    this.format = opts.format ?? "msgpack";
    this.server = parseServer(opts.server);
    this.replyTopic = topics.reply(this.user, this.clientId);
    this.inboxTopic = topics.inbox(this.user);
    this.log = opts.log ?? (() => {});
    this.requestTimeout = opts.requestTimeout ?? 10000;
    this.callTimeout = opts.callTimeout ?? 30000;
    this.cursorStore = opts.cursor!;
    this.cursorSeq = cursorSeq;
    this.caughtUp = new Promise((r) => (this.caughtUpResolve = r));
    this.done = new Promise((r) => (this.doneResolve = r));
    unlimited(this.stopCtl.signal);
  }

  /**
   * connect creates a client and resolves once it is connected and
   * subscribed, or rejects with the reason (ClientError bad_credentials,
   * timeout with the last connection error, …). From then on the client
   * reconnects by itself until close().
   */
  static async connect(options: ClientOptions, callOpts: { signal?: AbortSignal } = {}): Promise<Client> {
    const opts: ClientOptions = { ...options };
    if (!opts.server) throw new Error("mqim: no server given");
    if (!validId(opts.user ?? "")) throw new Error(`mqim: invalid user id ${JSON.stringify(opts.user)}`);
    if (!opts.token) throw new Error("mqim: no token given");
    opts.clientId ??= `${opts.user}.${randomString(10)}`;
    if (!validId(opts.clientId)) {
      // The default reply topic level is the client id [IM-3.1-6].
      throw new Error(`mqim: client id ${JSON.stringify(opts.clientId)} is not a valid id (A-Z a-z 0-9 _ . - @, at most 64)`);
    }
    if (opts.format !== undefined && opts.format !== "msgpack" && opts.format !== "json") {
      throw new Error(`mqim: format must be "msgpack" or "json"`);
    }
    opts.cursor ??= new MemoryCursor();
    const seq = opts.noEvents ? 0 : await opts.cursor.load();
    const c = new Client(opts, seq);
    c.start();
    const scope = new Scope([callOpts.signal], opts.connectTimeout ?? 30000, `cannot connect to ${c.server.href}`);
    try {
      await c.awaitConn(scope.signal);
      // A new device that skips the backlog resolves once its start is
      // fixed: an event committed after connect() is delivered, not skipped.
      if (opts.skipBacklog && seq === 0 && !opts.noEvents) await race(c.caughtUp, scope.signal);
    } catch (e) {
      let err = e;
      if (e instanceof ClientError && e.code === ClientErrorCode.Timeout && c.lastConnectError) {
        err = new ClientError(ClientErrorCode.Timeout, `cannot connect to ${c.server.href}: ${c.lastConnectError.message}`, {
          cause: c.lastConnectError,
        });
      }
      await c.close();
      throw err;
    } finally {
      scope.dispose();
    }
    return c;
  }

  /** The inbox seq up to which every event has been handed to the application. */
  get cursor(): number {
    return this.cursorSeq;
  }

  /** Why the client stopped (a ClientError), or undefined while it runs. */
  get error(): Error | undefined {
    return this.fatal ?? (this.closing ? new ClientError(ClientErrorCode.Closed, "client closed") : undefined);
  }

  /** Whether a connection is up and subscribed. */
  get online(): boolean {
    return this.conn?.ready === true;
  }

  /**
   * events returns the stream of inbox events (when no onEvent was given):
   * in inbox seq order, each stored event once, with no gap. Ephemeral
   * events (error, typing; no seq) come when they arrive. Read it
   * promptly: while it is not read, the client holds the next event. Ends
   * when the client stops. One reader at a time.
   */
  events(): AsyncIterableIterator<Event> {
    return this.channel;
  }

  /**
   * close disconnects and stops the client; calls in progress reject with
   * ClientError closed. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.stop(undefined);
    }
    await this.processorDone;
    await this.done;
  }

  // ---- connection management ----

  private start(): void {
    if (!this.opts.noEvents) this.processorDone = this.process();
    void this.runConnections();
  }

  private stop(err: Error | undefined): void {
    if (err && !this.fatal && !this.closing) this.fatal = err;
    if (this.stopCtl.signal.aborted) return;
    this.stopCtl.abort(this.fatal ?? new ClientError(ClientErrorCode.Closed, "client closed"));
    this.wake.notify();
    if (this.quietTimer) clearTimeout(this.quietTimer);
    for (const w of this.readyWaiters) w();
  }

  private status(s: Status): void {
    try {
      this.opts.onStatus?.(s);
    } catch (e) {
      this.log("warn", "onStatus threw", { error: String(e) });
    }
  }

  /** runConnections keeps one connection up until the client stops. */
  private async runConnections(): Promise<void> {
    let failures = 0;
    const stop = this.stopCtl.signal;
    while (!stop.aborted) {
      // A connection that lasted resets the backoff; a short one does not,
      // so a server that drops the device at once is not hammered.
      const lasted = await this.oneConnection();
      if (stop.aborted) break;
      failures = lasted ? 0 : failures + 1;
      // None but a little jitter after a drop (a draining node sends its
      // devices elsewhere [IM-6.2-2]), then 100 ms doubling up to the cap.
      const hi = this.opts.reconnectMax ?? 10000;
      const d = failures === 0 ? Math.random() * 50 : Math.min(100 * 2 ** Math.min(failures - 1, 16), hi);
      try {
        await sleep(failures === 0 ? d : d / 2 + (Math.random() * d) / 2, stop);
      } catch {
        break;
      }
    }
    const err = this.fatal;
    this.status(err ? { state: "closed", error: err } : { state: "closed" });
    this.channel.close();
    this.doneResolve();
  }

  /**
   * oneConnection connects, sets the connection up and waits until it is
   * gone; it reports whether it was up for a while.
   */
  private oneConnection(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const u = this.server;
      const url = u.protocol === "ws:" || u.protocol === "wss:" ? u.href : `${u.protocol}//${u.host}`;
      const mopts: IClientOptions = {
        protocolVersion: 5,
        clientId: this.clientId,
        username: this.user,
        password: this.opts.token,
        // Clean Start on every connect [IM-1.1-3]: the broker's session is
        // not a source of truth; sends are retried and the inbox synced.
        clean: true,
        reconnectPeriod: 0,
        resubscribe: false,
        connectTimeout: this.requestTimeout,
        keepalive: this.opts.keepalive ?? 30,
        properties: { userProperties: { format: this.format } },
      };
      let mq: MqttClient;
      try {
        mq = mqtt.connect(url, mopts);
      } catch (e) {
        this.lastConnectError = e instanceof Error ? e : new Error(String(e));
        resolve(false);
        return;
      }
      const cn = new Conn(++this.gen, mq);
      let connected = false;
      let finished = false;
      const started = Date.now();
      const onStop = () => finish();
      const finish = () => {
        if (finished) return;
        finished = true;
        this.stopCtl.signal.removeEventListener("abort", onStop);
        if (this.conn === cn) this.conn = undefined;
        cn.down.abort(new ConnLost());
        const lasted = connected && Date.now() - started > 5000;
        if (this.closing && connected && mq.connected && Object.keys(mq.outgoing).length === 0) {
          // close(): a DISCONNECT, so the server records a clean leave.
          const t = setTimeout(() => mq.end(true), 1000);
          mq.end(false, { reasonCode: 0 }, () => {
            clearTimeout(t);
            resolve(lasted);
          });
          return;
        }
        // Fails the publishes still waiting for a PUBACK: they are retried
        // on the next connection with the same payload [IM-4.5-4].
        mq.end(true, () => {});
        if (connected && !this.stopCtl.signal.aborted) this.status({ state: "offline", error: this.lastConnectError });
        resolve(lasted);
      };
      this.stopCtl.signal.addEventListener("abort", onStop, { once: true });

      mq.on("connect", (connack) => {
        connected = true;
        this.lastConnectError = undefined;
        const props = connack.properties;
        cn.maxPacket = props?.maximumPacketSize ?? 0;
        cn.sem = new Semaphore(Math.max(1, Math.min(props?.receiveMaximum ?? 256, 65535)));
        this.conn = cn;
        this.log("debug", "connected", { server: u.href, gen: cn.gen });
        void this.setup(cn);
      });
      mq.on("packetreceive", (p) => {
        if (p.cmd === "puback" && p.messageId !== undefined) cn.pubacks.set(p.messageId, p);
      });
      mq.on("message", (topic, payload, packet) => this.onPublish(topic, payload, packet));
      mq.on("disconnect", (p) => {
        const reason = p.reasonCode ?? 0;
        this.log("debug", "server sent DISCONNECT", { reason: `0x${reason.toString(16)}` });
        if (reason === 0x8e) {
          this.stop(new ClientError(ClientErrorCode.TakenOver, "session taken over by another connection with the same client id (DISCONNECT 0x8E)"));
        }
        finish();
      });
      mq.on("error", (err: Error & { code?: number | string }) => {
        if (!connected) {
          if (err.code === 0x86 || err.code === 4 || err.code === 134) {
            this.stop(new ClientError(ClientErrorCode.BadCredentials, "bad user or token (CONNACK 0x86)"));
          } else if (err.code === 0x85 || err.code === 133) {
            this.stop(new ClientError(ClientErrorCode.ClientIdInUse, "client id in use by another user (CONNACK 0x85)"));
          }
        }
        this.lastConnectError = err;
        this.log("debug", "connection error", { error: err.message });
        finish();
      });
      mq.on("close", () => finish());
      mq.on("offline", () => finish());
    });
  }

  /**
   * setup subscribes a new connection to the reply topic [IM-7.1-4] and the
   * inbox, then marks it ready: sends and RPCs go through and the event
   * processor syncs [IM-5.2-4]. Followed topics are subscribed after.
   */
  private async setup(cn: Conn): Promise<void> {
    const subs: Record<string, { qos: 1 }> = { [this.replyTopic]: { qos: 1 } };
    if (!this.opts.noEvents) subs[this.inboxTopic] = { qos: 1 };
    try {
      const granted = await this.subscribe(cn, subs);
      const refused = granted.find((g) => (g.qos & 0x80) !== 0);
      if (refused) {
        this.stop(new ClientError(ClientErrorCode.SubscribeRefused, `subscribe ${refused.topic} refused with reason 0x${refused.qos.toString(16)}`));
        return;
      }
    } catch (e) {
      this.log("debug", "subscribe failed", { error: String(e) });
      cn.mq.end(true);
      return;
    }
    if (this.conn !== cn || cn.down.signal.aborted) return;
    cn.ready = true;
    for (const w of this.readyWaiters) w();
    this.status({ state: "online" });
    this.upSig = true;
    this.wake.notify();
    if (this.followers.size > 0) void this.subscribeFollowers(cn, [...this.followers.values()]);
  }

  /** subscribe sends one SUBSCRIBE on cn; it resolves with the grants. */
  private subscribe(cn: Conn, subs: Record<string, { qos: 1 }>): Promise<{ topic: string; qos: number }[]> {
    const scope = new Scope([cn.down.signal], this.requestTimeout, "no SUBACK");
    const p = new Promise<{ topic: string; qos: number }[]>((resolve, reject) => {
      cn.mq.subscribe(subs, (err, granted) => {
        // MQTT.js fails a SUBACK with refusals: the grants say which.
        if (granted && granted.length === Object.keys(subs).length) resolve(granted.map((g) => ({ topic: g.topic, qos: g.qos })));
        else reject(err ?? new Error("no SUBACK"));
      });
    });
    return race(p, scope.signal).finally(() => scope.dispose());
  }

  /** awaitConn resolves with a ready connection. */
  private async awaitConn(signal: AbortSignal): Promise<Conn> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.stopCtl.signal.aborted) throw new ClientError(ClientErrorCode.Closed, "client closed");
      if (signal.aborted) throw abortReason(signal);
      const cn = this.conn;
      if (cn?.ready && !cn.down.signal.aborted) return cn;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.readyWaiters.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.readyWaiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /**
   * publish1 publishes QoS 1 on cn and resolves with the success PUBACK; a
   * failure PUBACK rejects with MqimError, a lost connection with ConnLost.
   */
  private async publish1(cn: Conn, topic: string, payload: Uint8Array, props: IClientPublishOptions["properties"], signal: AbortSignal): Promise<Packet | undefined> {
    const scope = new Scope([signal, cn.down.signal]);
    try {
      await cn.sem.acquire(scope.signal);
    } catch (e) {
      scope.dispose();
      throw cn.down.signal.aborted ? new ConnLost(e) : e;
    }
    const p = new Promise<Packet | undefined>((resolve, reject) => {
      cn.mq.publish(topic, toBytes(payload) as never, { qos: 1, properties: props }, (err, pkt) => {
        cn.sem.release();
        const reason = (err as { code?: unknown } | undefined)?.code;
        if (err && typeof reason === "number" && reason >= 0x80) {
          const id = (pkt as { messageId?: number } | undefined)?.messageId;
          if (id !== undefined) cn.pubacks.delete(id);
          reject(pubackError(pkt, reason));
        } else if (err) {
          reject(new ConnLost(err));
        } else {
          const id = (pkt as { messageId?: number } | undefined)?.messageId;
          const ack = id === undefined ? undefined : cn.pubacks.get(id);
          if (id !== undefined) cn.pubacks.delete(id);
          resolve(ack);
        }
      });
    });
    try {
      return await race(p, scope.signal);
    } catch (e) {
      throw cn.down.signal.aborted && !(e instanceof MqimError) ? new ConnLost(e) : e;
    } finally {
      scope.dispose();
    }
  }

  /** stopErr is the error of a call that ends because signal fired. */
  private stopErr(what: string, signal: AbortSignal, last: unknown): Error {
    if (this.fatal) return this.fatal;
    if (this.stopCtl.signal.aborted) return new ClientError(ClientErrorCode.Closed, `${what}: client closed`);
    const r = abortReason(signal);
    const lastMsg = last instanceof Error ? last.message : last === undefined ? "" : String(last);
    const why = lastMsg || (this.conn?.ready ? "" : `not connected${this.lastConnectError ? ": " + this.lastConnectError.message : ""}`);
    const code = r instanceof ClientError ? r.code : ClientErrorCode.Aborted;
    return new ClientError(code, `${what}: ${r.message}${why ? ` (${why})` : ""}`, { cause: r, last: last instanceof Error ? last : undefined });
  }

  // ---- sending ----

  /**
   * send sends a message and resolves once the server has stored it. Until
   * then it retries with the same cmid and the same bytes, across
   * reconnects and after retryable refusals (unavailable, overloaded;
   * rate_limited after the server's retry_after_ms [IM-1.3-6]), so
   * the message is stored once however often it is sent [IM-4.5]. A refusal
   * rejects with MqimError carrying the spec's code; a timeout or abort with
   * ClientError, and then the message may or may not be stored (send it
   * again with the same cmid to find out).
   */
  async send(msg: Outgoing, opts: SendOptions = {}): Promise<Sent> {
    const cmid = opts.cmid ?? newCmid();
    const wire: Record<string, unknown> = { cmid, type: msg.type, body: msg.body ?? {} };
    if (msg.to !== undefined) wire.to = msg.to;
    if (msg.group !== undefined) wire.group = msg.group;
    if (opts.mentions) wire.mentions = opts.mentions;
    // Encoded once: a retry resends the identical payload [IM-4.5-3].
    const payload = encode(wire, this.format);
    const topic = topics.send(this.user);
    const props = { contentType: contentType(this.format) };
    const scope = new Scope([opts.signal, this.stopCtl.signal], opts.timeout, `send ${cmid} not acknowledged`);
    let last: unknown;
    let internal = 0;
    try {
      for (let attempt = 0; ; attempt++) {
        let cn: Conn;
        try {
          cn = await this.awaitConn(scope.signal);
        } catch {
          throw this.stopErr(`send ${cmid} not acknowledged`, scope.signal, last);
        }
        // A packet over the server's limit would cost the connection
        // (DISCONNECT 0x95) on every retry [IM-1.3-1]: refuse it here.
        if (cn.maxPacket > 0 && payload.length + topic.length + PACKET_OVERHEAD > cn.maxPacket) {
          throw new MqimError(ErrorCode.TooLarge, `${payload.length} bytes exceed the server's maximum packet size ${cn.maxPacket}`);
        }
        const attemptScope = new Scope([scope.signal], this.requestTimeout, "no PUBACK");
        try {
          const ack = await this.publish1(cn, topic, payload, props, attemptScope.signal);
          return sentFrom(cmid, ack);
        } catch (e) {
          if (e instanceof MqimError) {
            if (!e.retryable || (e.code === ErrorCode.Internal && internal >= MAX_INTERNAL_RETRIES)) throw e;
            if (e.code === ErrorCode.Internal) internal++;
          } else if (scope.signal.aborted) {
            throw this.stopErr(`send ${cmid} not acknowledged`, scope.signal, last);
          }
          last = e;
          this.log("debug", "send attempt failed; retrying with the same cmid", { cmid, error: String(e) });
        } finally {
          attemptScope.dispose();
        }
        try {
          await sleep(nextDelay(attempt, last), scope.signal);
        } catch {
          throw this.stopErr(`send ${cmid} not acknowledged`, scope.signal, last);
        }
      }
    } finally {
      scope.dispose();
    }
  }

  /** sendText sends a text message to user `to` [IM-4.2-1]. */
  sendText(to: string, text: string, opts?: SendOptions): Promise<Sent> {
    return this.send({ to, type: "text", body: { text } }, opts);
  }

  /** sendGroup sends a message to a group (id g:…) the user is a member of [IM-11.5]. */
  sendGroup(group: string, type: string, body: Body, opts?: SendOptions): Promise<Sent> {
    return this.send({ group, type, body }, opts);
  }

  /** typing tells peer that the user is typing or stopped ("paused") [IM-15.1]; QoS 0, best effort. */
  async typing(peer: string, state: "typing" | "paused" = "typing", opts: CallOptions = {}): Promise<void> {
    const scope = new Scope([opts.signal, this.stopCtl.signal], opts.timeout ?? this.callTimeout, "typing");
    try {
      const cn = await this.awaitConn(scope.signal);
      const payload = encode({ to: peer, state }, this.format);
      await new Promise<void>((resolve, reject) =>
        cn.mq.publish(topics.typing(this.user), toBytes(payload) as never, { qos: 0, properties: { contentType: contentType(this.format) } }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    } finally {
      scope.dispose();
    }
  }

  // ---- RPC ----

  /**
   * call performs any RPC [IM-7]: the request goes out QoS 1 with the
   * Response Topic and a fresh Correlation Data [IM-7.1-2]; the waiter is
   * registered before the publish, so a response that overtakes the PUBACK
   * is not lost. An attempt that gets no response within requestTimeout, or
   * whose connection drops, is repeated (the methods of §7 are safe to
   * repeat [IM-7.1-6]), and so is one refused as retryable (rate_limited:
   * after the server's retry_after_ms [IM-1.3-6]), until callTimeout (or
   * opts); a group change method, which is not idempotent
   * [IM-11.4-5], is repeated only if its request was not acknowledged.
   */
  async call<T>(method: string, params: object = {}, opts: CallOptions = {}): Promise<T> {
    const payload = encode(params, this.format);
    const idempotent = !NOT_IDEMPOTENT.has(method);
    const scope = new Scope([opts.signal, this.stopCtl.signal], opts.timeout ?? this.callTimeout, `${method}: no response`);
    let last: unknown;
    try {
      for (let attempt = 0; ; attempt++) {
        let cn: Conn;
        try {
          cn = await this.awaitConn(scope.signal);
        } catch {
          throw this.stopErr(method, scope.signal, last);
        }
        let acked = false;
        try {
          const resp = await this.roundTrip(cn, method, payload, scope.signal, () => (acked = true));
          const r = decode(resp.payload, resp.ct) as { ok?: boolean; result?: unknown; error?: ErrorObject };
          if (r && r.ok === true) return (r.result ?? {}) as T;
          const e = objectError(r?.error, ErrorCode.Internal, "response without error");
          if (!e.retryable || (e.code === ErrorCode.Internal && attempt >= MAX_INTERNAL_RETRIES)) throw e;
          last = e;
        } catch (e) {
          if (e instanceof MqimError && !e.retryable) throw e;
          if (scope.signal.aborted) throw this.stopErr(method, scope.signal, last ?? e);
          if (!idempotent && acked && !(e instanceof MqimError)) {
            throw new ClientError(
              ClientErrorCode.Timeout,
              `${method}: the request was received but its response was lost; the change may have been made (check group.info or history)`,
              { cause: e },
            );
          }
          last = e;
        }
        this.log("debug", "RPC attempt failed; retrying", { method, error: String(last) });
        try {
          await sleep(nextDelay(attempt, last), scope.signal);
        } catch {
          throw this.stopErr(method, scope.signal, last);
        }
      }
    } finally {
      scope.dispose();
    }
  }

  private async roundTrip(
    cn: Conn,
    method: string,
    payload: Uint8Array,
    signal: AbortSignal,
    onAck: () => void,
  ): Promise<{ payload: Uint8Array; ct: string | undefined }> {
    const corr = (++this.corr).toString(36);
    const attempt = new Scope([signal, cn.down.signal], this.requestTimeout, "no response");
    let resolveResp!: (p: { payload: Uint8Array; ct: string | undefined }) => void;
    const resp = new Promise<{ payload: Uint8Array; ct: string | undefined }>((r) => (resolveResp = r));
    this.waiters.set(corr, resolveResp);
    try {
      await this.publish1(
        cn,
        topics.rpc(this.user, method),
        payload,
        { contentType: contentType(this.format), responseTopic: this.replyTopic, correlationData: corr as never },
        attempt.signal,
      );
      onAck();
      return await race(resp, attempt.signal);
    } finally {
      this.waiters.delete(corr);
      attempt.dispose();
    }
  }

  /** sync returns up to limit (0–1000) inbox events after `after` [IM-7.3]. The raw RPC: it does not touch the cursor. */
  sync(after: number, limit = SYNC_PAGE, opts?: CallOptions): Promise<SyncResult> {
    return this.call<SyncResult>("sync", { after, limit }, opts);
  }

  /** history returns a page of a conversation's messages [IM-7.4]: give conv or with. */
  history(req: HistoryRequest, opts?: CallOptions): Promise<HistoryResult> {
    return this.call<HistoryResult>("history", req, opts);
  }

  /** conversations returns the user's conversations, most recent first [IM-7.5]. */
  conversations(limit?: number, opts?: CallOptions): Promise<ConversationsResult> {
    return this.call<ConversationsResult>("conversations", limit ? { limit } : {}, opts);
  }

  /** read moves the user's read position in conv forward to seq [IM-7.6]. */
  read(conv: string, seq: number, opts?: CallOptions): Promise<ReadResult> {
    return this.call<ReadResult>("read", { conv, seq }, opts);
  }

  /** readMany reports several read positions in one request [IM-7.6-4]. */
  async readMany(reads: ReadItem[], opts?: CallOptions): Promise<ReadResult[]> {
    return (await this.call<{ reads: ReadResult[] }>("read", { reads }, opts)).reads;
  }

  /** createGroup creates a group with the user as owner [IM-11.4-1]; the result's group is its id. */
  createGroup(req: GroupCreateRequest, opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.create", req, opts);
  }
  /** addToGroup adds users (admins and the owner). */
  addToGroup(group: string, users: string[], opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.add", { group, users }, opts);
  }
  /** removeFromGroup removes a member (admins and the owner). */
  removeFromGroup(group: string, user: string, opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.remove", { group, user }, opts);
  }
  /** leaveGroup leaves a group (not the owner, who must transfer first). */
  leaveGroup(group: string, opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.leave", { group }, opts);
  }
  /** setGroupRole makes a member an admin or a member (the owner only). */
  setGroupRole(group: string, user: string, role: "admin" | "member", opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.role", { group, user, role }, opts);
  }
  /** transferGroup makes user the owner; the old owner becomes an admin. */
  transferGroup(group: string, user: string, opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.transfer", { group, user }, opts);
  }
  /** muteGroupMember mutes (or unmutes) a member (admins and the owner). */
  muteGroupMember(group: string, user: string, muted = true, opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.mute", { group, user, muted }, opts);
  }
  /** updateGroup changes the group's name, avatar or notice. */
  updateGroup(group: string, change: GroupUpdateRequest, opts?: CallOptions): Promise<GroupChangeResult> {
    return this.call<GroupChangeResult>("group.update", { group, ...change }, opts);
  }
  /** groupInfo describes a group to one of its members. */
  groupInfo(group: string, opts?: CallOptions): Promise<GroupInfo> {
    return this.call<GroupInfo>("group.info", { group }, opts);
  }

  /** addContact adds user to the contact list [IM-13.1]. */
  addContact(user: string, opts?: CallOptions): Promise<Contact> {
    return this.call<Contact>("contact.add", { user }, opts);
  }
  /** removeContact removes user from the contact list. */
  removeContact(user: string, opts?: CallOptions): Promise<Contact> {
    return this.call<Contact>("contact.remove", { user }, opts);
  }
  /** block refuses user's messages from now on [IM-13.2]. */
  block(user: string, opts?: CallOptions): Promise<Contact> {
    return this.call<Contact>("contact.block", { user }, opts);
  }
  /** unblock accepts user's messages again. */
  unblock(user: string, opts?: CallOptions): Promise<Contact> {
    return this.call<Contact>("contact.unblock", { user }, opts);
  }
  /** contacts lists the contacts and blocked users [IM-13.1-3]. */
  async contacts(opts?: CallOptions): Promise<Contact[]> {
    return (await this.call<{ contacts: Contact[] }>("contact.list", {}, opts)).contacts;
  }

  /** recall takes back a message the user sent, within the recall window [IM-14.1]. */
  async recall(msgId: MessageId, opts?: CallOptions): Promise<Message> {
    return (await this.call<{ msg: Message }>("recall", { msg_id: msgId }, opts)).msg;
  }
  /** edit replaces the body of a message the user sent [IM-14.2]. */
  async edit(msgId: MessageId, body: Body, opts?: CallOptions): Promise<Message> {
    return (await this.call<{ msg: Message }>("edit", { msg_id: msgId, body }, opts)).msg;
  }
  /** deleteForMe hides a message from the user's own history [IM-14.3]. */
  async deleteForMe(msgId: MessageId, opts?: CallOptions): Promise<Message> {
    return (await this.call<{ msg: Message }>("delete", { msg_id: msgId }, opts)).msg;
  }

  /** presence returns the presence of 1–100 users, in order [IM-15.2]. */
  async presence(users: string[], opts?: CallOptions): Promise<Presence[]> {
    return (await this.call<{ presence: Presence[] }>("presence", { users }, opts)).presence;
  }

  /** updateSettings changes the user's settings of a conversation; absent fields stay [IM-16.2]. */
  async updateSettings(conv: string, change: SettingsChange, opts?: CallOptions): Promise<ConvSettings> {
    return (await this.call<SettingsResult>("settings", { conv, ...change }, opts)).settings;
  }

  /**
   * upload sends an attachment to the server's HTTP API (httpUrl, or
   * opts.baseUrl) with the client's token [IM-12.2]. Without mime the server
   * sniffs the type. A refusal rejects with MqimError (too_large,
   * unsupported_media, …) whose status is the HTTP status. Copy url, mime,
   * size and sha256 into the message body [IM-12.1-1].
   */
  async upload(
    data: Blob | ArrayBuffer | Uint8Array | string,
    opts: CallOptions & { name?: string; mime?: string; baseUrl?: string } = {},
  ): Promise<Upload> {
    const base = opts.baseUrl ?? this.opts.httpUrl;
    if (!base) throw new Error("mqim: upload needs httpUrl (ClientOptions) or baseUrl");
    let u = base.replace(/\/+$/, "") + "/v1/media";
    if (opts.name) u += "?name=" + encodeURIComponent(opts.name);
    const headers: Record<string, string> = { Authorization: `Bearer ${this.opts.token}` };
    if (opts.mime) headers["Content-Type"] = opts.mime;
    const scope = new Scope([opts.signal, this.stopCtl.signal], opts.timeout);
    try {
      const resp = await fetch(u, { method: "POST", headers, body: data as BodyInit, signal: scope.signal });
      const text = await resp.text();
      let out: unknown;
      try {
        out = JSON.parse(text);
      } catch {
        out = undefined;
      }
      if (resp.status !== 201) {
        throw objectError((out as { error?: ErrorObject } | undefined)?.error, "", `HTTP ${resp.status}`, resp.status);
      }
      return out as Upload;
    } finally {
      scope.dispose();
    }
  }

  /**
   * mediaUrl says where download fetches an attachment URL [IM-12.1-2]: a
   * path /v1/media/… is resolved against httpUrl (or baseUrl), and so is an
   * absolute URL of that path on another origin, since every node serves
   * the same media store [IM-12.2-4] (a page and `mqim send --file` may name
   * the server by different host names). undefined when url is no media
   * URL of this server: the token must not go there.
   */
  mediaUrl(url: string, baseUrl?: string): string | undefined {
    const base = baseUrl ?? this.opts.httpUrl;
    if (!base) return undefined;
    let u: URL;
    try {
      u = new URL(url, base);
    } catch {
      return undefined;
    }
    if (!/^\/v1\/media\/[0-9a-f]{32}$/.test(u.pathname) || (u.protocol !== "http:" && u.protocol !== "https:")) return undefined;
    return new URL(u.pathname, base).href;
  }

  /**
   * download fetches an attachment of this server with the client's token
   * [IM-12.2-3] (an <img> cannot send it: show the Blob through
   * URL.createObjectURL). The URL is resolved by mediaUrl; one of another
   * server rejects with MqimError bad_request and is not fetched. A refusal
   * rejects with MqimError (not_found, …) whose status is the HTTP status.
   */
  async download(url: string, opts: CallOptions & { baseUrl?: string } = {}): Promise<Blob> {
    const u = this.mediaUrl(url, opts.baseUrl);
    if (!u) throw new MqimError(ErrorCode.BadRequest, "not a media URL of this server (or no httpUrl given)");
    const scope = new Scope([opts.signal, this.stopCtl.signal], opts.timeout);
    try {
      const resp = await fetch(u, { headers: { Authorization: `Bearer ${this.opts.token}` }, signal: scope.signal });
      if (resp.status !== 200) {
        let err: ErrorObject | undefined;
        try {
          err = ((await resp.json()) as { error?: ErrorObject }).error;
        } catch {
          err = undefined;
        }
        throw objectError(err, "", `HTTP ${resp.status}`, resp.status);
      }
      return await resp.blob();
    } finally {
      scope.dispose();
    }
  }

  // ---- incoming publishes ----

  private onPublish(topic: string, payload: Uint8Array, packet: IPublishPacket): void {
    const ct = packet.properties?.contentType;
    if (topic === this.replyTopic) {
      const cd = packet.properties?.correlationData;
      if (!cd) return;
      const w = this.waiters.get(new TextDecoder().decode(cd));
      // Responses nobody waits for (late, duplicate) are dropped [IM-7.1-6].
      if (w) w({ payload, ct });
      return;
    }
    if (topic === this.inboxTopic) {
      if (this.opts.noEvents) return;
      let ev: Event;
      try {
        ev = decode(payload, ct) as Event;
        if (ev === null || typeof ev !== "object" || typeof ev.kind !== "string") throw new Error("not an event");
      } catch (e) {
        // If it had a seq, the next event shows the gap and sync gets it.
        // (The decoder's message may quote the payload: not logged.)
        this.log("warn", "undecodable inbox event ignored", { bytes: payload.length, error: errName(e) });
        return;
      }
      if (this.live.length >= INBOX_QUEUE_MAX) {
        this.log("warn", "event queue full; event dropped, sync will fetch it", { seq: ev.seq });
        return;
      }
      this.live.push(ev);
      this.wake.notify();
      return;
    }
    const f = this.followers.get(topic);
    if (f) f.onPublish(payload, ct);
  }

  // ---- the event processor [IM-5.2-3] ----

  private resetQuiet(): void {
    const q = this.opts.quietSync ?? 120000;
    if (q <= 0 || this.stopCtl.signal.aborted) return;
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => {
      this.quietSig = true;
      this.wake.notify();
    }, q);
  }

  /**
   * process turns live events and sync results into the event stream.
   * While it syncs, live events wait in the queue and are merged
   * afterwards: duplicates dropped by seq, the rest in order.
   */
  private async process(): Promise<void> {
    const stop = this.stopCtl.signal;
    let needSync = false;
    let failures = 0;
    this.resetQuiet();
    try {
      while (!stop.aborted) {
        if (needSync) {
          try {
            await this.catchUp();
            needSync = false;
            failures = 0;
            this.caughtUpResolve();
          } catch (e) {
            if (stop.aborted) return;
            // A refused sync (a lost connection is retried by the RPC).
            this.log("warn", "sync failed", { error: String(e) });
            failures++;
            await Promise.race([sleep(retryDelay(failures + 4), stop), this.wake.wait()]).catch(() => {});
            this.upSig = false;
            continue;
          }
        }
        if (this.live.length === 0 && !this.upSig && !this.quietSig) await this.wake.wait();
        if (stop.aborted) return;
        if (this.upSig) {
          this.upSig = false;
          needSync = true; // after every (re)connect [IM-5.2-4]
        }
        if (this.quietSig) {
          this.quietSig = false;
          needSync = true; // [IM-5.2-5]
        }
        for (const ev of this.live.splice(0)) {
          if (!(await this.apply(ev))) return;
        }
        if (this.gap) needSync = true;
        this.resetQuiet();
      }
    } finally {
      if (this.quietTimer) clearTimeout(this.quietTimer);
    }
  }

  /** apply takes one event, live or from sync; false when the client stopped. */
  private async apply(ev: Event): Promise<boolean> {
    const seq = typeof ev.seq === "number" ? ev.seq : 0;
    if (seq === 0) return this.emit(ev); // ephemeral [IM-5.1-4]
    if (seq <= this.cursorSeq) return true; // duplicate
    if (seq > this.cursorSeq + 1) {
      if (this.held.size < INBOX_QUEUE_MAX) this.held.set(seq, ev);
      this.gap = true;
      return true;
    }
    if (!(await this.emit(ev))) return false;
    for (;;) {
      const next = this.held.get(this.cursorSeq + 1);
      if (!next) break;
      this.held.delete(this.cursorSeq + 1);
      if (!(await this.emit(next))) return false;
    }
    return true;
  }

  /**
   * emit hands ev to the application and, for a stored event, moves the
   * cursor over it; unknown kinds too [IM-5.1-5].
   */
  private async emit(ev: Event): Promise<boolean> {
    if (this.stopCtl.signal.aborted) return false;
    if (this.opts.onEvent) {
      try {
        await this.opts.onEvent(ev);
      } catch (e) {
        this.log("error", "onEvent threw; the event counts as handed over", { seq: ev.seq, error: String(e) });
      }
    } else if (!(await this.channel.push(ev))) {
      return false;
    }
    const seq = typeof ev.seq === "number" ? ev.seq : 0;
    if (seq > 0) await this.setCursor(seq);
    return true;
  }

  private async setCursor(seq: number): Promise<void> {
    this.cursorSeq = seq;
    for (const s of this.held.keys()) if (s <= seq) this.held.delete(s);
    try {
      await this.cursorStore.save(seq);
    } catch (e) {
      this.log("warn", "cannot save cursor", { seq, error: String(e) });
    }
  }

  /** catchUp syncs from the cursor until the server has nothing more [IM-5.2-4]. */
  private async catchUp(): Promise<void> {
    const noDeadline = { timeout: Infinity };
    if (this.cursorSeq === 0 && this.opts.skipBacklog) {
      const res = await this.sync(0, 0, noDeadline);
      if (res.latest_seq > 0) await this.setCursor(res.latest_seq);
    }
    for (;;) {
      const res = await this.sync(this.cursorSeq, SYNC_PAGE, noDeadline);
      const latest = res.latest_seq ?? 0;
      if (res.reset || latest < this.cursorSeq) {
        // The server lost what the cursor points into [IM-5.2-7].
        this.held.clear();
        if (!(await this.emit({ kind: EventKind.Reset, latest_seq: latest }))) return;
        await this.setCursor(latest);
        this.gap = false;
        return;
      }
      const before = this.cursorSeq;
      for (const ev of res.events ?? []) {
        if (!(await this.apply(ev))) return;
      }
      if (!res.has_more) {
        // Everything up to latest is applied; held events beyond it stay.
        this.gap = this.held.size > 0 && this.cursorSeq < latest;
        if (this.gap) throw new Error("sync did not fill the gap");
        return;
      }
      if (this.cursorSeq === before) throw new Error("sync made no progress");
    }
  }

  // ---- followed topics: read-fan-out groups [IM-11.3-5], live presence [IM-15.3] ----

  private async subscribeFollowers(cn: Conn, fs: Follower[]): Promise<void> {
    const subs: Record<string, { qos: 1 }> = {};
    for (const f of fs) subs[f.topic] = { qos: 1 };
    try {
      const granted = await this.subscribe(cn, subs);
      for (const g of granted) {
        const f = this.followers.get(g.topic);
        if (!f) continue;
        if ((g.qos & 0x80) !== 0) f.onRefused(g.qos);
        else f.onSubscribed();
      }
    } catch (e) {
      this.log("debug", "subscribe of followed topics failed", { error: String(e) });
    }
  }

  private addFollower(f: Follower): void {
    if (this.followers.has(f.topic)) throw new Error(`mqim: already following ${f.topic}`);
    this.followers.set(f.topic, f);
    const cn = this.conn;
    if (cn?.ready) void this.subscribeFollowers(cn, [f]);
  }

  private removeFollower(f: Follower): void {
    if (this.followers.get(f.topic) !== f) return;
    this.followers.delete(f.topic);
    const cn = this.conn;
    if (cn?.ready && !this.stopCtl.signal.aborted) cn.mq.unsubscribe(f.topic, () => {});
  }

  /**
   * followGroup follows a group that fans out on read [IM-11.3]: onEvent
   * gets the group's events (kind message, no inbox seq) with conv seq above
   * `after`, in conv seq order, each once. The client subscribes to the
   * group topic on every connection and pages history after its group
   * cursor on each (re)subscribe and on a gap [IM-11.3-5]. `after` is the
   * device's group cursor: the read_from of the switch event for a device
   * that had every earlier event, 0 for everything. If the user is not (or no
   * longer) a member, onEvent gets an error event (not_member) and following
   * stops.
   */
  followGroup(group: string, after: number, onEvent: (ev: Event) => void | Promise<void>): Following {
    if (!group.startsWith("g:") || after < 0) throw new MqimError(ErrorCode.BadRequest, "followGroup needs a group id (g:…) and after >= 0");
    const stopCtl = new AbortController();
    const wake = new Signal();
    const queue: Event[] = [];
    const held = new Map<number, Event>();
    let cursor = after;
    let pull = false;
    let gone: number | undefined;
    const f: Follower = {
      topic: topics.group(group),
      onSubscribed: () => {
        pull = true; // after every (re)subscribe [IM-11.3-5]
        wake.notify();
      },
      onPublish: (payload, ct) => {
        try {
          queue.push(decode(payload, ct) as Event);
          wake.notify();
        } catch (e) {
          this.log("warn", "undecodable group event ignored", { group, bytes: payload.length, error: errName(e) });
        }
      },
      onRefused: (reason) => {
        gone = reason;
        wake.notify();
      },
    };
    const stopped = () => stopCtl.signal.aborted || this.stopCtl.signal.aborted;
    const deliver = async (ev: Event) => {
      try {
        await onEvent(ev);
      } catch (e) {
        this.log("error", "followGroup handler threw", { group, error: String(e) });
      }
    };
    const apply = async (ev: Event) => {
      const cs = ev.conv_seq ?? 0;
      if (ev.conv !== group || cs <= cursor) return;
      if (cs > cursor + 1) {
        if (held.size < INBOX_QUEUE_MAX) held.set(cs, ev);
        return;
      }
      await deliver(ev);
      cursor = cs;
      for (let n = held.get(cursor + 1); n && !stopped(); n = held.get(cursor + 1)) {
        held.delete(cursor + 1);
        await deliver(n);
        cursor = n.conv_seq ?? cursor + 1;
      }
      for (const s of held.keys()) if (s <= cursor) held.delete(s);
    };
    const catchUp = async () => {
      for (;;) {
        // history with after = 0 means "no bound": from 0, ask for the first as "before 2".
        const req: HistoryRequest = cursor === 0 ? { conv: group, before: 2, limit: 1 } : { conv: group, after: cursor, limit: HISTORY_PAGE };
        const res = await this.history(req, { signal: stopCtl.signal, timeout: Infinity });
        const before = cursor;
        for (const m of res.messages) await apply({ kind: EventKind.Message, conv: m.conv, conv_seq: m.seq, msg: m, ts: m.ts });
        if (cursor === before || (!res.has_more && before !== 0)) return;
      }
    };
    const run = async () => {
      let failures = 0;
      while (!stopped()) {
        if (gone !== undefined) {
          await deliver({ kind: EventKind.Error, conv: group, error: { code: ErrorCode.NotMember, message: "subscription to the group topic refused" } });
          break;
        }
        if (pull) {
          try {
            await catchUp();
            pull = false;
            failures = 0;
          } catch (e) {
            if (stopped()) break;
            if (e instanceof MqimError && !e.retryable) {
              await deliver({ kind: EventKind.Error, conv: group, error: { code: e.code, message: e.detail } });
              break;
            }
            failures++;
            await sleep(retryDelay(failures + 4), stopCtl.signal).catch(() => {});
            continue;
          }
        }
        await wake.wait();
        for (const ev of queue.splice(0)) await apply(ev);
        if (held.size > 0) pull = true; // a gap
      }
      this.removeFollower(f);
    };
    this.stopCtl.signal.addEventListener("abort", () => wake.notify(), { once: true });
    this.addFollower(f);
    void run();
    return {
      stop: () => {
        stopCtl.abort(new ClientError(ClientErrorCode.Aborted, "stopped"));
        wake.notify();
      },
    };
  }

  /**
   * watchPresence follows a user's live presence [IM-15.3]: onUpdate gets
   * the current state from the presence RPC after each subscribe, then every
   * change the server publishes. Allowed for the user itself, its contacts
   * and co-members of groups [IM-15.3-2]; a refused subscription reports an
   * update with error not_allowed and stops.
   */
  watchPresence(user: string, onUpdate: (p: Presence) => void): Following {
    let stopped = false;
    const f: Follower = {
      topic: topics.presence(user),
      onSubscribed: () => {
        this.presence([user])
          .then((ps) => {
            const p = ps[0];
            if (p && !stopped) onUpdate(p);
          })
          .catch((e: unknown) => this.log("debug", "presence failed", { error: String(e) }));
      },
      onPublish: (payload, ct) => {
        if (stopped) return;
        try {
          onUpdate(decode(payload, ct) as PresenceUpdate);
        } catch (e) {
          this.log("warn", "undecodable presence ignored", { bytes: payload.length, error: errName(e) });
        }
      },
      onRefused: () => {
        if (stopped) return;
        stopped = true;
        onUpdate({ user, online: false, error: { code: ErrorCode.NotAllowed, message: "subscription refused" } });
        this.removeFollower(f);
      },
    };
    this.addFollower(f);
    return {
      stop: () => {
        stopped = true;
        this.removeFollower(f);
      },
    };
  }
}

/** errName names an error without its message, which may quote a payload. */
function errName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}

function sentFrom(cmid: string, ack: Packet | undefined): Sent {
  const u = (ack as { properties?: { userProperties?: Record<string, string | string[]> } } | undefined)?.properties?.userProperties;
  return {
    cmid,
    id: userProp(u, "id"),
    conv: userProp(u, "conv"),
    seq: Number(userProp(u, "seq") || 0),
    inboxSeq: Number(userProp(u, "inbox_seq") || 0),
  };
}
