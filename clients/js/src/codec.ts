// Payload encodings [IM-1.2]: MessagePack (the default) and JSON, and the
// handling of message ids, which are 63-bit integers: above 2^53 a JS number
// loses them, so the SDK exposes every message id as a decimal string in
// both encodings [IM-1.2-5].
import { Decoder, Encoder } from "@msgpack/msgpack";

/** A wire format: what the server writes to this device, fixed at CONNECT. */
export type Format = "msgpack" | "json";

export const CONTENT_TYPE_MSGPACK = "application/msgpack";
export const CONTENT_TYPE_JSON = "application/json";

export function contentType(f: Format): string {
  return f === "json" ? CONTENT_TYPE_JSON : CONTENT_TYPE_MSGPACK;
}

const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
const decoder = new Decoder({ useBigInt64: true });
const utf8Enc = new TextEncoder();
const utf8Dec = new TextDecoder("utf-8", { fatal: true });

/** Keys whose integer values are message ids (outside message bodies). */
const ID_KEYS = new Set(["id", "msg_id"]);

/**
 * Keys whose values the SDK must pass through verbatim (message bodies
 * [IM-1.2-8]): inside them no field is turned into an id string.
 */
const OPAQUE_KEYS = new Set(["body"]);

/** A decimal string of a message id, or undefined when s is not one. */
function idString(v: unknown): string | undefined {
  if (typeof v === "bigint") return v.toString(10);
  if (typeof v === "number" && Number.isInteger(v)) return v.toString(10);
  return undefined;
}

/**
 * normalize turns a decoded payload into the SDK's data model: message ids
 * (keys `id` and `msg_id` holding an integer) become decimal strings;
 * other 64-bit integers become numbers when they are safe integers (seqs and
 * timestamps always are [IM-1.2-5]) and stay bigint otherwise (only a body
 * can hold such a value; it is kept exact). Bodies are not searched for ids.
 */
export function normalize(v: unknown, opaque = false): unknown {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = normalize(v[i], opaque);
    return v;
  }
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (!opaque && ID_KEYS.has(k)) {
        const s = idString(x);
        if (s !== undefined) {
          o[k] = s;
          continue;
        }
      }
      o[k] = normalize(x, opaque || OPAQUE_KEYS.has(k));
    }
    return o;
  }
  return v;
}

/**
 * quoteBigIds rewrites a JSON text so that an unquoted integer value of a
 * key `id` or `msg_id` beyond 2^53 becomes a string before JSON.parse rounds
 * it. The server writes ids as strings [IM-1.2-5]; this keeps the SDK exact
 * should any writer send them as numbers. Strings are skipped correctly
 * (escapes included); nothing else is changed.
 */
export function quoteBigIds(text: string): string {
  let out = "";
  let last = 0; // text[last:] not yet copied
  let key = ""; // the last string token, if followed by ':'
  let i = 0;
  const n = text.length;
  let pendingKey: string | null = null; // a string token just read
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      let j = i + 1;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 0x5c /* \ */) j += 2;
        else if (c === 0x22) break;
        else j++;
      }
      pendingKey = text.slice(i + 1, j);
      i = j + 1;
      continue;
    }
    if (ch === 0x3a /* : */) {
      key = pendingKey ?? "";
      pendingKey = null;
      i++;
      continue;
    }
    if (ch === 0x2d /* - */ || (ch >= 0x30 && ch <= 0x39)) {
      let j = i + 1;
      while (j < n && /[0-9.eE+-]/.test(text[j]!)) j++;
      const tok = text.slice(i, j);
      if ((key === "id" || key === "msg_id") && /^-?\d+$/.test(tok) && !Number.isSafeInteger(Number(tok))) {
        out += text.slice(last, i) + '"' + tok + '"';
        last = j;
      }
      key = "";
      pendingKey = null;
      i = j;
      continue;
    }
    if (ch === 0x2c /* , */ || ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      key = "";
      pendingKey = null;
    }
    i++;
  }
  return last === 0 ? text : out + text.slice(last);
}

/**
 * detect tells the encoding of a payload [IM-1.2-2]: by Content Type, else
 * JSON when the first byte that is not whitespace is `{`.
 */
export function detect(payload: Uint8Array, ct?: string): Format {
  if (ct === CONTENT_TYPE_JSON) return "json";
  if (ct === CONTENT_TYPE_MSGPACK || ct === "application/x-msgpack") return "msgpack";
  for (const b of payload) {
    if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a) continue;
    return b === 0x7b ? "json" : "msgpack";
  }
  return "msgpack";
}

/** decode reads a payload into the SDK's data model (see normalize). */
export function decode(payload: Uint8Array, ct?: string): unknown {
  if (detect(payload, ct) === "json") {
    return normalize(JSON.parse(quoteBigIds(utf8Dec.decode(payload))));
  }
  return normalize(decoder.decode(payload));
}

/**
 * toWire prepares a value for encoding in format f: the keys `msg_id`
 * hold a message id as a decimal string, which is an int 64 in MessagePack
 * and stays a string in JSON [IM-1.2-5], [IM-14].
 */
function toWire(v: unknown, f: Format): unknown {
  if (f === "json" || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => toWire(x, f));
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const x = o[k];
    if (k === "msg_id" && typeof x === "string" && isInt64(x)) out[k] = BigInt(x);
    else if (k === "body") out[k] = x; // verbatim [IM-1.2-8]
    else out[k] = toWire(x, f);
  }
  return out;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * isInt64 reports whether s is a decimal integer that fits an int 64 (the
 * MessagePack encoder would silently wrap a larger one). Anything else is
 * sent as the string it is, which the server refuses (bad_payload).
 */
function isInt64(s: string): boolean {
  if (!/^-?\d{1,20}$/.test(s)) return false;
  const n = BigInt(s);
  return n >= INT64_MIN && n <= INT64_MAX;
}

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") {
    // JSON has no 64-bit integers; a body value beyond 2^53 cannot be
    // carried exactly [IM-1.2-8].
    return Number(v);
  }
  if (v instanceof Uint8Array) {
    throw new TypeError("binary values cannot be sent as JSON");
  }
  return v;
}

/** encode writes v (an object) in format f. */
export function encode(v: object, f: Format): Uint8Array {
  const w = toWire(v, f);
  if (f === "json") return utf8Enc.encode(JSON.stringify(w, jsonReplacer));
  return encoder.encode(w);
}
