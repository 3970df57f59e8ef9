// What a message says, for people: every type of protocol/spec.md §4.2,
// §11.2, §12.1 and §14 has words here, and a type this page does not know
// gets a placeholder [IM-4.2-3]. Nothing here ever shows a body as JSON.
import type { Body, Message } from "@mqim/sdk";

/** str is v when it is a non-empty string. */
export function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Types of a read-fan-out group's timeline that change another message [IM-14.4-3]; not shown themselves. */
export const CHANGE_TYPES = new Set(["recall", "edit"]);

/** Types that carry a file at body.url [IM-12.1-1]. */
export const ATTACHMENT_TYPES = new Set(["image", "voice", "video", "file"]);

export function humanSize(n: unknown): string {
  const b = num(n);
  if (b === undefined) return "";
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} KB`;
  return `${(b / 1024 / 1024).toFixed(1)} MB`;
}

function list(users: unknown): string {
  return Array.isArray(users) ? users.filter((u) => typeof u === "string").join(", ") : "";
}

/** groupChange describes a group event [IM-11.2-1] from me's point of view. */
export function groupChange(m: Message, me: string): string {
  const b = m.body;
  const who = m.from === me ? "You" : m.from;
  const users = list(b.users);
  const target = users === me ? "you" : users;
  switch (b.op) {
    case "create": {
      const name = str(b.name);
      return `${who} created the group${name ? ` “${name}”` : ""}${users ? ` with ${users}` : ""}`;
    }
    case "add":
      return `${who} added ${target}`;
    case "remove":
      return `${who} removed ${target}`;
    case "leave":
      return `${who} left the group`;
    case "role":
      return `${who} made ${target} ${b.role === "admin" ? "an admin" : "a member"}`;
    case "transfer":
      return `${who} made ${target} the owner`;
    case "mute":
      return `${who} ${b.muted === false ? "unmuted" : "muted"} ${target}`;
    case "update": {
      const parts: string[] = [];
      if (str(b.name)) parts.push(`the name to “${str(b.name)}”`);
      if (str(b.notice)) parts.push(`the notice to “${str(b.notice)}”`);
      if (str(b.avatar)) parts.push("the picture");
      return `${who} changed ${parts.join(" and ") || "the group"}`;
    }
    default:
      return `${who} changed the group`;
  }
}

export function locationText(b: Body): string {
  const lat = num(b.lat);
  const lon = num(b.lon);
  const where = [str(b.name), str(b.address)].filter(Boolean).join(", ");
  const coords = lat !== undefined && lon !== undefined ? `${lat.toFixed(5)}, ${lon.toFixed(5)}` : "";
  return where ? `${where} (${coords})` : coords || "a location";
}

/**
 * summary is one line for a message: the conversation list's preview, and
 * the text of types that have nothing else to show.
 */
export function summary(m: Message, me: string): string {
  const b = m.body ?? {};
  switch (m.type) {
    case "text":
      return str(b.text) ?? "";
    case "image":
      return `Photo: ${str(b.caption) ?? str(b.name) ?? "image"}`;
    case "video":
      return `Video: ${str(b.caption) ?? str(b.name) ?? "video"}`;
    case "voice":
      return `Voice message${num(b.duration) !== undefined ? ` (${Math.round(num(b.duration)!)} s)` : ""}`;
    case "file":
      return `File: ${str(b.name) ?? "file"}`;
    case "location":
      return `Location: ${locationText(b)}`;
    case "system":
      return str(b.text) ?? str(b.title) ?? "Notice";
    case "group":
      return groupChange(m, me);
    case "recalled":
      return m.from === me ? "You recalled a message" : `${m.from} recalled a message`;
    case "recall":
      return `${m.from} recalled a message`;
    case "edit":
      return `${m.from} edited a message`;
    case "custom":
      return str(b.text) ?? "Custom message";
    default:
      return `A message of type “${m.type}” this page cannot show`;
  }
}

/** safeHref is u when it is an http(s) URL (never javascript: and the like). */
export function safeHref(u: unknown): string | undefined {
  const s = str(u);
  if (!s) return undefined;
  try {
    const p = new URL(s, location.href);
    return p.protocol === "http:" || p.protocol === "https:" ? p.href : undefined;
  } catch {
    return undefined;
  }
}

export function osmLink(b: Body): string | undefined {
  const lat = num(b.lat);
  const lon = num(b.lon);
  if (lat === undefined || lon === undefined) return undefined;
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
}

/** directConv is the id of the direct conversation of a and b [IM-3.2-1] (ids are ASCII: byte order). */
export function directConv(a: string, b: string): string {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

export function time(ts: number): string {
  const d = new Date(ts);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

/** claims reads a JWT's payload without checking it: only to explain a refusal. */
export function claims(token: string): { sub?: unknown; exp?: unknown } | undefined {
  const part = token.split(".")[1];
  if (token.split(".").length !== 3 || !part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const c = JSON.parse(json) as unknown;
    return c !== null && typeof c === "object" ? (c as { sub?: unknown; exp?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** whyRefused explains a CONNACK 0x86 from what the token says of itself. */
export function whyRefused(user: string, token: string): string {
  const c = claims(token);
  if (!c) return "This is not a token: a token (JWT) has three parts separated by dots. Get one with mqim token --user " + user + ".";
  if (typeof c.sub === "string" && c.sub !== user) return `The token is for user “${c.sub}”, not “${user}”.`;
  if (typeof c.exp === "number" && c.exp * 1000 < Date.now()) return `The token expired on ${new Date(c.exp * 1000).toLocaleString()}.`;
  return "The server did not accept the token: it was not signed with this server's secret, or it is not valid for this user.";
}
