// A TCP proxy that injects network faults between a device and mqimd. It
// parses MQTT 5 framing in both directions, so it can cut a connection
// right after forwarding the client's PUBLISH (and swallow the PUBACK), or
// drop one server→client PUBLISH. It is a real network path, not a mock.
import { createServer, connect, type Server as NetServer, type Socket } from "node:net";

/** A parsed MQTT packet; publish fields are set for PUBLISH. */
export interface Frame {
  type: number; // control packet type (3 = PUBLISH, 4 = PUBACK, …)
  flags: number;
  raw: Buffer; // the whole packet
  topic?: string;
  packetId?: number;
  payload?: Buffer;
  /** When the proxy read it (performance.now(), ms). */
  at: number;
  /** PUBACK: the reason code (0 when the packet has none). */
  reason?: number;
  /** PUBACK: the user properties (the first value of each name). */
  userProps?: Record<string, string>;
}

function readVarint(b: Buffer, off: number): { value: number; len: number } | undefined {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 4; i++) {
    if (off + i >= b.length) return undefined;
    const byte = b[off + i]!;
    value += (byte & 0x7f) * mult;
    if ((byte & 0x80) === 0) return { value, len: i + 1 };
    mult *= 128;
  }
  throw new Error("malformed remaining length");
}

/** parsePublish reads topic, packet id and payload of an MQTT 5 PUBLISH. */
function parsePublish(f: Frame, bodyOff: number): void {
  const b = f.raw;
  let off = bodyOff;
  const tlen = b.readUInt16BE(off);
  off += 2;
  f.topic = b.subarray(off, off + tlen).toString("utf8");
  off += tlen;
  const qos = (f.flags >> 1) & 3;
  if (qos > 0) {
    f.packetId = b.readUInt16BE(off);
    off += 2;
  }
  const props = readVarint(b, off)!;
  off += props.len + props.value;
  f.payload = b.subarray(off);
}

/** parsePuback reads reason code and user properties of an MQTT 5 PUBACK. */
function parsePuback(f: Frame, bodyOff: number): void {
  const b = f.raw;
  f.packetId = b.readUInt16BE(bodyOff);
  let off = bodyOff + 2;
  f.reason = off < b.length ? b[off++]! : 0;
  f.userProps = {};
  if (off >= b.length) return;
  const props = readVarint(b, off)!;
  off += props.len;
  const end = off + props.value;
  const str = (): string => {
    const n = b.readUInt16BE(off);
    const v = b.subarray(off + 2, off + 2 + n).toString("utf8");
    off += 2 + n;
    return v;
  };
  while (off < end) {
    const id = b[off++]!;
    if (id === 0x1f) str(); // Reason String
    else if (id === 0x26) {
      const k = str();
      const v = str();
      f.userProps[k] ??= v;
    } else return; // no other property belongs in a PUBACK
  }
}

/** Framer splits a byte stream into MQTT packets. */
class Framer {
  private buf: Buffer = Buffer.alloc(0);
  push(data: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const out: Frame[] = [];
    for (;;) {
      if (this.buf.length < 2) break;
      const rl = readVarint(this.buf, 1);
      if (!rl) break;
      const total = 1 + rl.len + rl.value;
      if (this.buf.length < total) break;
      const raw = this.buf.subarray(0, total);
      this.buf = this.buf.subarray(total);
      const f: Frame = { type: raw[0]! >> 4, flags: raw[0]! & 0x0f, raw, at: performance.now() };
      if (f.type === 3) parsePublish(f, 1 + rl.len);
      if (f.type === 4) parsePuback(f, 1 + rl.len);
      out.push(f);
    }
    return out;
  }
}

/**
 * Decides about one packet: "pass" forwards it, "drop" swallows it, "cut"
 * forwards it and then cuts the device's connection: nothing more reaches
 * the device, and the server side is ended once the server has answered the
 * packet (its PUBACK is swallowed) so that the server surely read it;
 * "overloaded" answers a PUBLISH in the server's stead with the refusal a
 * server under too much load sends, without forwarding it.
 */
export type Verdict = "pass" | "drop" | "cut" | "overloaded";

function mqttString(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * overloadedPuback is the MQTT 5 PUBACK the server writes for a publish it
 * refuses as overloaded: reason 0x97, Reason String and user property code
 * [IM-4.4-3], [IM-6.1-1].
 */
export function overloadedPuback(packetId: number): Buffer {
  const props = Buffer.concat([
    Buffer.from([0x1f]), mqttString("overloaded"),
    Buffer.from([0x26]), mqttString("code"), mqttString("overloaded"),
  ]);
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  const body = Buffer.concat([id, Buffer.from([0x97]), varint(props.length), props]);
  return Buffer.concat([Buffer.from([0x40]), varint(body.length), body]);
}

export interface Proxy {
  /** The address devices connect to, mqtt://127.0.0.1:port. */
  url: string;
  /** Every packet from devices to the server, per connection, in order. */
  fromClient: Frame[];
  /** Every packet the server sent (also those dropped). */
  fromServer: Frame[];
  /** Connections accepted so far. */
  connections: number;
  /** Sets the rule for packets from the device. */
  onClient(rule: (f: Frame) => Verdict): void;
  /** Sets the rule for packets from the server. */
  onServer(rule: (f: Frame) => Verdict): void;
  /** PUBACKs the server sent for packets whose device side was cut. */
  swallowedAcks: Frame[];
  /** Cuts every open connection (as a network failure would). */
  kill(): void;
  /** While true, new connections are closed at once (the server is unreachable). */
  refuse(on: boolean): void;
  /** Connections refused so far. */
  refused: number;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  let clientRule: (f: Frame) => Verdict = () => "pass";
  let serverRule: (f: Frame) => Verdict = () => "pass";
  const sockets = new Set<Socket>();
  // While a cut connection waits for the server's answer, new connections
  // wait too: the retry then surely comes after the original was handled.
  let gate: Promise<void> = Promise.resolve();
  let refusing = false;
  const proxy: Proxy = {
    url: "",
    fromClient: [],
    fromServer: [],
    swallowedAcks: [],
    connections: 0,
    onClient: (r) => (clientRule = r),
    onServer: (r) => (serverRule = r),
    refused: 0,
    refuse: (on) => (refusing = on),
    kill: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
  const srv: NetServer = createServer((down) => {
    if (refusing) {
      proxy.refused++;
      down.destroy();
      return;
    }
    down.pause();
    sockets.add(down);
    void gate.then(() => {
      if (down.destroyed) return;
      serve(down);
      down.resume();
    });
  });
  const serve = (down: Socket) => {
    proxy.connections++;
    const up = connect(targetPort, "127.0.0.1");
    sockets.add(up);
    down.on("close", () => sockets.delete(down));
    up.on("close", () => sockets.delete(up));
    let cut = false;
    let awaitAck: number | undefined; // packet id whose answer ends the server side
    let openGate = () => {};
    const fromDown = new Framer();
    const fromUp = new Framer();
    down.on("data", (d: Buffer) => {
      if (cut) return;
      for (const f of fromDown.push(d)) {
        proxy.fromClient.push(f);
        const v = clientRule(f);
        if (v === "drop") continue;
        if (v === "overloaded") {
          down.write(overloadedPuback(f.packetId!));
          continue;
        }
        up.write(f.raw);
        if (v === "cut") {
          cut = true;
          awaitAck = f.packetId;
          gate = new Promise<void>((r) => (openGate = r));
          down.destroy();
          if (awaitAck === undefined) up.end();
          return;
        }
      }
    });
    up.on("data", (d: Buffer) => {
      for (const f of fromUp.push(d)) {
        proxy.fromServer.push(f);
        if (cut) {
          if (f.type === 4 && f.packetId === awaitAck) {
            proxy.swallowedAcks.push(f);
            up.end();
            openGate();
          }
          continue;
        }
        if (serverRule(f) === "drop") continue;
        down.write(f.raw);
      }
    });
    down.on("error", () => up.destroy());
    up.on("error", () => down.destroy());
    down.on("close", () => {
      if (!cut) up.destroy();
    });
    up.on("close", () => {
      down.destroy();
      openGate();
    });
  };
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const addr = srv.address();
  if (addr === null || typeof addr === "string") throw new Error("proxy: no address");
  proxy.url = `mqtt://127.0.0.1:${addr.port}`;
  return proxy;
}

/** Proxies starts proxies for a test file and closes them all at its end. */
export class Proxies {
  private readonly all: Proxy[] = [];
  /** start starts a proxy to the MQTT port targetPort. */
  async start(targetPort: number): Promise<Proxy> {
    const p = await startProxy(targetPort);
    this.all.push(p);
    return p;
  }
  async closeAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((p) => p.close()));
  }
}

/** isPublish tells whether f is a PUBLISH to topic. */
export const isPublish = (f: Frame, topic: string): boolean => f.type === 3 && f.topic === topic;
