// mqim's web page, on the TypeScript SDK (@mqim/sdk, clients/js): the page
// reaches MQTT only through the SDK's Client, which keeps the protocol's
// duties (cmid retries, inbox order, dedup, gap sync, reconnect). What is
// shown comes from the conversations and history RPCs and is kept current
// by inbox events. Bundled by clients/js/scripts/bundle-web.mjs into
// web/static/app.js (committed; see web/README.md).
import {
  Client,
  ClientError,
  ClientErrorCode,
  ErrorCode,
  MemoryCursor,
  MqimError,
  type Body,
  type Conversation,
  type Event,
  type Following,
  type GroupInfo,
  type Message,
  type Presence,
  type Status,
} from "@mqim/sdk";

import {
  ATTACHMENT_TYPES,
  CHANGE_TYPES,
  directConv,
  groupChange,
  humanSize,
  locationText,
  osmLink,
  safeHref,
  str,
  summary,
  time,
  whyRefused,
} from "./render.js";

const PAGE = 30;
const TYPING_SHOWN = 6000; // [IM-15.1-2]
const TYPING_EVERY = 3000;
const PRESENCE_POLL = 30000; // [IM-15.2-4]: nodes without NATS publish no live presence
const LOGIN_KEY = "mqim.login";

const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`no ${sel}`);
  return e;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A message being sent (or that failed), shown until its own event arrives. */
interface Pending {
  cmid: string;
  type: string;
  body: Body;
  state: "uploading" | "sending" | "failed";
  error?: string;
}

interface Open {
  conv: string;
  kind: "direct" | "group";
  peer?: string;
  name?: string;
  messages: Map<number, Message>;
  maxSeq: number;
  hasMore: boolean;
  peerRead: number;
  edited: Set<number>; // conv seqs seen edited in this page's life (history does not say)
  pending: Pending[];
  group?: GroupInfo;
  presence?: Following;
  presenceTimer?: ReturnType<typeof setInterval>;
  loaded: boolean;
}

const state = {
  client: undefined as Client | undefined,
  user: "",
  token: "",
  convs: [] as Conversation[],
  contacts: new Set<string>(),
  current: undefined as Open | undefined,
  refreshTimer: undefined as ReturnType<typeof setTimeout> | undefined,
  typing: new Map<string, ReturnType<typeof setTimeout>>(), // conv → hide timer
  typingSent: 0,
  editing: undefined as Message | undefined,
  followed: new Map<string, Following>(), // read-fan-out groups [IM-11.3-5]
  media: new Map<string, Promise<string>>(), // media URL → blob URL
  edited: new Map<string, Set<number>>(), // conv → its Open.edited, kept across openings
  wasOffline: false,
};

// ---- status and errors ----

function setStatus(s: "connecting" | "online" | "reconnecting" | "closed" | "offline", text: string): void {
  const st = $("#status");
  st.dataset.state = s;
  st.textContent = text;
  st.title = text;
}

function describe(e: unknown): string {
  if (e instanceof MqimError) {
    const detail = e.detail && e.detail !== e.code ? e.detail : "";
    switch (e.code) {
      // The server's moderation [IM-18]: its text names the field (or is the webhook's reason).
      case ErrorCode.ContentRefused:
        return `refused by the server's content rules${detail ? ` (${detail})` : ""}`;
      // The SDK waits these out [IM-1.3-6]; one shows only if a call gave up first.
      case ErrorCode.RateLimited:
        return `too many messages or requests at once; try again ${e.retryAfterMs > 0 ? `in ${Math.ceil(e.retryAfterMs / 1000)} s` : "later"}`;
    }
    return detail ? `${e.code || "refused"}: ${detail}` : e.code || e.message;
  }
  if (e instanceof ClientError && e.last instanceof MqimError && e.last.code === ErrorCode.RateLimited) return describe(e.last);
  if (e instanceof Error) return e.message.replace(/^mqim: /, "");
  return String(e);
}

function showError(where: "#chat-error" | "#login-error" | "#side-error", text: string): void {
  const p = $(where);
  p.textContent = text;
  p.hidden = text === "";
}

function onStatus(s: Status): void {
  if (s.state === "online") {
    setStatus("online", "online");
    if (state.wasOffline) {
      // Events missed while offline come from the SDK's sync; the lists are
      // read again so that counts and previews are the server's.
      state.wasOffline = false;
      scheduleRefresh();
      const cur = state.current;
      if (cur) void loadGroup(cur);
    }
  } else if (s.state === "offline") {
    state.wasOffline = true;
    const why = s.error ? `: ${describe(s.error)}` : "";
    setStatus("reconnecting", `reconnecting… (connection lost at ${new Date().toLocaleTimeString()}${why})`);
  } else if (state.client) {
    // closed by the SDK itself: a fatal error (token refused, taken over).
    const err = s.error;
    let text = "disconnected";
    if (err instanceof ClientError && err.code === ClientErrorCode.TakenOver) text = "disconnected: this device signed in again elsewhere";
    else if (err instanceof ClientError && err.code === ClientErrorCode.BadCredentials) {
      void logout(`Signed out: the server refused the token. ${whyRefused(state.user, state.token)}`);
      return;
    } else if (err) text = `disconnected: ${describe(err)}`;
    setStatus("closed", text);
  }
}

// ---- login, logout, remember me ----

async function wsURL(): Promise<string> {
  const override = new URLSearchParams(location.search).get("ws");
  if (override) return override;
  const cfg = (await (await fetch("config.json")).json()) as { ws_port: number; ws_path: string };
  const proto = location.protocol === "https:" ? "wss" : "ws";
  return `${proto}://${location.hostname}:${cfg.ws_port}${cfg.ws_path}`;
}

function stored(): { user: string; token: string; remember: boolean } | undefined {
  for (const [s, remember] of [
    [localStorage, true],
    [sessionStorage, false],
  ] as const) {
    try {
      const v = JSON.parse(s.getItem(LOGIN_KEY) ?? "null") as { user?: unknown; token?: unknown } | null;
      if (v && typeof v.user === "string" && typeof v.token === "string") return { user: v.user, token: v.token, remember };
    } catch {
      s.removeItem(LOGIN_KEY);
    }
  }
  return undefined;
}

function forget(): void {
  localStorage.removeItem(LOGIN_KEY);
  sessionStorage.removeItem(LOGIN_KEY);
}

async function login(user: string, token: string, remember: boolean): Promise<void> {
  showError("#login-error", "");
  $<HTMLButtonElement>("#login-btn").disabled = true;
  setStatus("connecting", "connecting…");
  let server = "";
  try {
    server = await wsURL();
    const client = await Client.connect({
      server,
      user,
      token,
      // One device per page load: a tab never takes over another's session
      // [IM-3.1-6]. The page rebuilds its view from RPCs on load, so a new
      // device skips the inbox backlog [IM-5.3] and keeps its cursor in
      // memory for the reconnects of this page.
      clientId: `${user}.web-${Math.random().toString(36).slice(2, 10)}`,
      cursor: new MemoryCursor(),
      skipBacklog: true,
      httpUrl: location.origin,
      reconnectMax: 5000,
      connectTimeout: 15000,
      onEvent,
      onStatus,
    });
    state.client = client;
    state.user = user;
    state.token = token;
    forget();
    (remember ? localStorage : sessionStorage).setItem(LOGIN_KEY, JSON.stringify({ user, token }));
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout-btn").hidden = false;
    $("#me").textContent = user;
    setStatus("online", "online");
    await Promise.all([refresh(), loadContacts()]);
  } catch (e) {
    let why: string;
    if (e instanceof ClientError && e.code === ClientErrorCode.BadCredentials) {
      why = `Sign-in refused: wrong user or token. ${whyRefused(user, token)}`;
      forget();
    } else if (e instanceof ClientError && e.code === ClientErrorCode.Timeout) {
      why = `Cannot reach the server at ${server}: ${describe(e).replace(/^cannot connect to \S+: /, "")}`;
    } else {
      why = `Cannot sign in: ${describe(e)}`;
    }
    showError("#login-error", why);
    setStatus("offline", "signed out");
  } finally {
    $<HTMLButtonElement>("#login-btn").disabled = false;
  }
}

async function logout(why = ""): Promise<void> {
  const c = state.client;
  state.client = undefined;
  forget();
  closeConv();
  for (const f of state.followed.values()) f.stop();
  state.followed.clear();
  for (const u of state.media.values()) void u.then((b) => URL.revokeObjectURL(b), () => {});
  state.media.clear();
  state.edited.clear();
  state.convs = [];
  $("#convs").replaceChildren();
  $("#app").hidden = true;
  $("#logout-btn").hidden = true;
  $("#login").hidden = false;
  $("#me").textContent = "";
  $<HTMLTextAreaElement>("#login-token").value = "";
  setStatus("offline", "signed out");
  showError("#login-error", why);
  await c?.close();
}

// ---- conversations ----

async function refresh(): Promise<void> {
  const c = state.client;
  if (!c) return;
  try {
    const res = await c.conversations(200);
    if (c !== state.client) return;
    // Kinds this page does not know are skipped [IM-7.5-2].
    state.convs = res.conversations.filter((x) => x.kind === "direct" || x.kind === "group");
    $("#total-unread").textContent = String(state.convs.reduce((n, x) => n + x.unread, 0));
    const cur = state.current;
    const known = cur && state.convs.find((x) => x.conv === cur.conv);
    if (cur && known) {
      cur.peerRead = Math.max(cur.peerRead, known.peer_read_seq);
      if (known.name) cur.name = known.name;
      renderHead();
      renderMessages();
    }
    renderConvs();
    followReadGroups();
  } catch (e) {
    showError("#side-error", `Cannot list conversations: ${describe(e)}`);
  }
}

function scheduleRefresh(): void {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => void refresh(), 150);
}

async function loadContacts(): Promise<void> {
  try {
    const cs = await state.client!.contacts();
    state.contacts = new Set(cs.filter((x) => x.contact).map((x) => x.user));
  } catch {
    // The button just stays; adding again changes nothing [IM-13.1-1].
  }
}

function convName(c: { kind: string; peer?: string; name?: string; conv: string }): string {
  if (c.kind === "direct") return c.peer ?? c.conv;
  return c.name || "Group";
}

function renderConvs(): void {
  const ul = $("#convs");
  ul.replaceChildren();
  const pinned = (c: Conversation) => (c.settings?.pinned ? 0 : 1);
  const list = [...state.convs].filter((c) => !c.settings?.archived).sort((a, b) => pinned(a) - pinned(b));
  for (const c of list) {
    const li = el("li");
    li.dataset.conv = c.conv;
    li.dataset.kind = c.kind;
    if (c.peer) li.dataset.peer = c.peer;
    if (state.current?.conv === c.conv) li.classList.add("active");
    const left = el("div");
    const name = el("div", "name", convName(c));
    if (c.kind === "group") name.append(el("span", "kind", "group"));
    const last = el("div", "last", c.last ? summary(c.last, state.user) : "");
    left.append(name, last);
    li.append(left);
    if (c.unread > 0) li.append(el("span", "unread", String(c.unread)));
    li.addEventListener("click", () => void openConv(c.kind === "direct" ? { kind: "direct", peer: c.peer! } : { kind: "group", conv: c.conv, name: c.name }));
    ul.append(li);
  }
}

/** Groups that fan out on read are followed on their topic [IM-11.3-5]. */
function followReadGroups(): void {
  const c = state.client;
  if (!c) return;
  for (const conv of state.convs) {
    if (conv.kind !== "group" || state.followed.has(conv.conv)) continue;
    state.followed.set(conv.conv, { stop() {} }); // looked at once per page load
    c.groupInfo(conv.conv).then(
      (g) => {
        if (g.fanout === "read" && state.client === c) follow(conv.conv, Math.max(g.read_from ?? 0, conv.last_seq));
      },
      () => state.followed.delete(conv.conv),
    );
  }
}

function follow(group: string, after: number): void {
  state.followed.get(group)?.stop();
  state.followed.set(group, state.client!.followGroup(group, after, (ev) => onEvent(ev)));
}

function closeConv(): void {
  const cur = state.current;
  if (cur) {
    cur.presence?.stop();
    clearInterval(cur.presenceTimer);
  }
  state.current = undefined;
  cancelEdit();
  document.body.classList.remove("in-chat");
  $("#back-btn").hidden = true;
  $("#chat").hidden = true;
}

async function openConv(t: { kind: "direct"; peer: string } | { kind: "group"; conv: string; name?: string }): Promise<void> {
  const c = state.client;
  if (!c) return;
  closeConv();
  const conv = t.kind === "direct" ? directConv(state.user, t.peer) : t.conv;
  const known = state.convs.find((x) => x.conv === conv);
  const cur: Open = {
    conv,
    kind: t.kind,
    peer: t.kind === "direct" ? t.peer : undefined,
    name: t.kind === "group" ? (t.name ?? known?.name) : undefined,
    messages: new Map(),
    maxSeq: 0,
    hasMore: false,
    peerRead: known?.peer_read_seq ?? 0,
    edited: state.edited.get(conv) ?? new Set(),
    pending: [],
    loaded: false,
  };
  state.current = cur;
  state.edited.set(conv, cur.edited);
  document.body.classList.add("in-chat");
  $("#back-btn").hidden = false;
  $("#chat").hidden = false;
  $("#members").hidden = true;
  showError("#chat-error", "");
  $("#typing").textContent = "";
  renderHead();
  renderConvs();
  renderMessages(true);
  if (t.kind === "direct") watchPresence(cur);
  try {
    const res = await c.history(t.kind === "direct" ? { with: t.peer, limit: PAGE } : { conv, limit: PAGE, read_by: true });
    if (state.current !== cur) return;
    for (const m of res.messages) put(cur, m);
    cur.hasMore = res.has_more;
    cur.loaded = true;
    renderMessages(true);
    await loadGroup(cur);
    await markRead();
  } catch (e) {
    if (state.current === cur) showError("#chat-error", `Cannot load the conversation: ${describe(e)}`);
  }
  $<HTMLInputElement>("#compose-text").focus();
}

async function loadGroup(cur: Open): Promise<void> {
  if (cur.kind !== "group" || !state.client) return;
  try {
    cur.group = await state.client.groupInfo(cur.conv);
    if (cur.group.name) cur.name = cur.group.name;
    if (state.current === cur) {
      renderHead();
      void renderMembers();
      renderMessages();
    }
  } catch (e) {
    if (state.current === cur) showError("#chat-error", `Cannot read the group: ${describe(e)}`);
  }
}

async function older(): Promise<void> {
  const cur = state.current;
  const c = state.client;
  if (!cur || !c || !cur.hasMore) return;
  const first = Math.min(...cur.messages.keys());
  const ol = $("#messages");
  const fromBottom = ol.scrollHeight - ol.scrollTop;
  try {
    const res = await c.history({ conv: cur.conv, before: first, limit: PAGE, read_by: cur.kind === "group" });
    if (state.current !== cur) return;
    for (const m of res.messages) put(cur, m);
    cur.hasMore = res.has_more;
    renderMessages();
    ol.scrollTop = ol.scrollHeight - fromBottom;
  } catch (e) {
    showError("#chat-error", `Cannot load older messages: ${describe(e)}`);
  }
}

/** put stores m in cur by seq; a timeline change [IM-14.4-3] is applied to the message it names. */
function put(cur: Open, m: Message): void {
  cur.maxSeq = Math.max(cur.maxSeq, m.seq);
  if (CHANGE_TYPES.has(m.type)) {
    const seq = typeof m.body.conv_seq === "number" ? m.body.conv_seq : 0;
    const target = cur.messages.get(seq);
    if (target && m.type === "recall") cur.messages.set(seq, { ...target, type: "recalled", body: {} });
    if (target && m.type === "edit" && m.body.body && typeof m.body.body === "object") {
      cur.messages.set(seq, { ...target, body: m.body.body as Body });
      cur.edited.add(seq);
    }
    return;
  }
  cur.messages.set(m.seq, m);
  cur.pending = cur.pending.filter((p) => !(m.from === state.user && p.cmid === m.cmid));
}

// ---- the chat header, members, presence ----

function renderHead(): void {
  const cur = state.current;
  if (!cur) return;
  $("#peer").textContent = cur.kind === "direct" ? cur.peer! : (cur.name ?? "Group");
  const contactBtn = $<HTMLButtonElement>("#contact-btn");
  contactBtn.hidden = cur.kind !== "direct" || state.contacts.has(cur.peer!);
  $("#members-btn").hidden = cur.kind !== "group";
  if (cur.kind === "group") {
    const p = $("#presence");
    p.className = "";
    p.textContent = cur.group ? `${cur.group.member_count} members` : "group";
  }
}

function showPresence(p: Presence): void {
  const e = $("#presence");
  e.className = p.online ? "online" : "";
  if (p.error) e.textContent = "presence not shared with you";
  else if (p.online) e.textContent = "online";
  else e.textContent = p.last_seen ? `last seen ${time(p.last_seen)}` : "offline";
}

function watchPresence(cur: Open): void {
  const c = state.client!;
  const peer = cur.peer!;
  cur.presence = c.watchPresence(peer, (p) => {
    if (state.current === cur) showPresence(p);
  });
  cur.presenceTimer = setInterval(() => {
    c.presence([peer]).then(
      (ps) => {
        if (state.current === cur && ps[0]) showPresence(ps[0]);
      },
      () => {},
    );
  }, PRESENCE_POLL);
}

async function addContact(): Promise<void> {
  const cur = state.current;
  if (!cur?.peer || !state.client) return;
  try {
    await state.client.addContact(cur.peer);
    state.contacts.add(cur.peer);
    renderHead();
  } catch (e) {
    showError("#chat-error", `Cannot add ${cur.peer}: ${describe(e)}`);
  }
}

async function renderMembers(): Promise<void> {
  const cur = state.current;
  const g = cur?.group;
  if (!cur || !g) return;
  const me = g.members.find((m) => m.user === state.user);
  const rank = me?.role === "owner" || me?.role === "admin";
  $("#add-member").hidden = !rank;
  $("#leave-btn").hidden = !me || me.role === "owner";
  const ul = $("#member-list");
  const items = new Map<string, HTMLElement>();
  ul.replaceChildren(
    ...g.members.map((m) => {
      const li = el("li");
      li.dataset.user = m.user;
      li.append(el("span", "user", m.user === state.user ? `${m.user} (you)` : m.user), el("span", "role", m.role + (m.muted ? ", muted" : "")));
      const pr = el("span", "role");
      li.append(pr);
      items.set(m.user, pr);
      return li;
    }),
  );
  if ($("#members").hidden || !state.client) return;
  try {
    const ps = await state.client.presence(g.members.slice(0, 100).map((m) => m.user));
    for (const p of ps) {
      const e = items.get(p.user);
      if (e && !p.error) e.textContent = p.online ? "· online" : p.last_seen ? `· last seen ${time(p.last_seen)}` : "";
    }
  } catch {
    // presence is extra; the list stands without it
  }
}

async function groupAction(f: (c: Client, g: string) => Promise<unknown>, what: string): Promise<void> {
  const cur = state.current;
  if (!cur || cur.kind !== "group" || !state.client) return;
  try {
    await f(state.client, cur.conv);
    showError("#chat-error", "");
    await loadGroup(cur);
  } catch (e) {
    showError("#chat-error", `Cannot ${what}: ${describe(e)}`);
  }
}

// ---- messages ----

function renderMessages(scroll = false): void {
  const cur = state.current;
  const ol = $("#messages");
  const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 8;
  ol.replaceChildren();
  if (!cur) return;
  const seqs = [...cur.messages.keys()].sort((a, b) => a - b);
  for (const s of seqs) ol.append(messageItem(cur, cur.messages.get(s)!));
  for (const p of cur.pending) ol.append(pendingItem(cur, p));
  $("#older-btn").hidden = !cur.hasMore;
  if (scroll || atBottom) ol.scrollTop = ol.scrollHeight;
}

function messageItem(cur: Open, m: Message): HTMLElement {
  const li = el("li", "msg");
  li.dataset.seq = String(m.seq);
  li.dataset.type = m.type;
  li.dataset.id = m.id;
  const mine = m.from === state.user;
  if (m.type === "group") {
    li.classList.add("event");
    li.textContent = groupChange(m, state.user);
    return li;
  }
  if (mine) li.classList.add("mine");
  if (m.type === "system") li.classList.add("notice");
  if (m.type === "recalled") li.classList.add("recalled");
  if (!mine && (cur.kind === "group" || m.type === "system")) li.append(el("div", "from", m.from));
  li.append(...content(m));
  const meta = el("div", "meta");
  meta.append(el("span", "ts", time(m.ts)));
  if (cur.edited.has(m.seq)) meta.append(el("span", "edited", "edited"));
  if (mine && m.type !== "recalled") {
    if (cur.kind === "direct" && m.seq <= cur.peerRead) meta.append(el("span", "receipt", "✓ read"));
    if (cur.kind === "group" && typeof m.read_by === "number" && cur.group) {
      meta.append(el("span", "receipt", `read by ${m.read_by} of ${Math.max(0, cur.group.member_count - 1)}`));
    }
    if (m.type === "text") meta.append(button("Edit", "edit-btn", () => startEdit(m)));
    meta.append(button("Recall", "recall-btn", () => void recall(m)));
  }
  li.append(meta);
  return li;
}

/** link opens href (http or https only: see safeHref, osmLink) in a new tab, telling it nothing. */
function link(text: string, href: string): HTMLAnchorElement {
  const a = el("a", "", text);
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

function button(text: string, cls: string, f: () => void): HTMLButtonElement {
  const b = el("button", cls, text);
  b.type = "button";
  b.addEventListener("click", f);
  return b;
}

/** content is what a message shows, by type; no type shows its body as data. */
function content(m: { type: string; body: Body; from: string }): HTMLElement[] {
  const b = m.body ?? {};
  const caption = str(b.caption);
  const out: HTMLElement[] = [];
  switch (m.type) {
    case "text":
      out.push(el("div", "text", str(b.text) ?? ""));
      break;
    case "image": {
      const img = el("img", "media");
      img.alt = str(b.name) ?? "image";
      if (typeof b.width === "number" && typeof b.height === "number" && b.width > 0) img.style.aspectRatio = `${b.width} / ${b.height}`;
      const src = str(b.thumbnail) ?? str(b.url);
      if (src) showMedia(src, (u) => (img.src = u), img);
      out.push(img, attachment(b, "Photo"));
      break;
    }
    case "video":
    case "voice": {
      const media = m.type === "video" ? el("video", "media") : el("audio", "media");
      media.controls = true;
      const url = str(b.url);
      if (url) showMedia(url, (u) => (media.src = u), media);
      out.push(media, attachment(b, m.type === "video" ? "Video" : "Voice message"));
      break;
    }
    case "file":
      out.push(attachment(b, "File"));
      break;
    case "location": {
      const d = el("div", "text location", `Location: ${locationText(b)}`);
      const href = osmLink(b);
      if (href) d.append(" ", link("Open map", href));
      out.push(d);
      break;
    }
    case "system": {
      const d = el("div", "text", str(b.text) ?? str(b.title) ?? "Notice");
      const href = safeHref(b.url);
      if (href) d.append(" ", link("Open", href));
      out.push(d);
      break;
    }
    case "recalled":
      out.push(el("div", "text", m.from === state.user ? "You recalled this message" : "This message was recalled"));
      break;
    case "custom":
      out.push(el("div", "text", str(b.text) ?? "Custom message"));
      break;
    default:
      out.push(el("div", "text", summary({ type: m.type, body: b, from: m.from } as Message, state.user)));
  }
  if (caption && ATTACHMENT_TYPES.has(m.type)) out.push(el("div", "caption", caption));
  return out;
}

/** attachment is a file's line: name, size and a download with the token [IM-12.2-3]. */
function attachment(b: Body, what: string): HTMLElement {
  const d = el("div", "attachment");
  const name = str(b.name) ?? what;
  d.append(el("span", "name", name));
  if (typeof b.size === "number") d.append(el("span", "size", humanSize(b.size)));
  const url = str(b.url);
  if (url && state.client?.mediaUrl(url)) {
    d.append(button("Download", "download-btn", () => void download(url, name)));
  } else if (safeHref(url)) {
    // Another server's file: a plain link, without this server's token.
    d.append(link("Open", safeHref(url)!));
  }
  return d;
}

/** blobURL fetches a media URL of this server with the token, once per URL. */
function blobURL(url: string): Promise<string> {
  let p = state.media.get(url);
  if (!p) {
    const c = state.client;
    if (!c) return Promise.reject(new Error("signed out"));
    p = c.download(url).then((b) => URL.createObjectURL(b));
    p.catch(() => state.media.delete(url));
    state.media.set(url, p);
  }
  return p;
}

function showMedia(url: string, set: (u: string) => void, e: HTMLElement): void {
  if (!state.client?.mediaUrl(url)) {
    e.title = "on another server";
    return;
  }
  blobURL(url).then(set, (err: unknown) => {
    e.replaceWith(el("div", "text media-error", `(cannot load: ${describe(err)})`));
  });
}

async function download(url: string, name: string): Promise<void> {
  try {
    const a = el("a");
    a.href = await blobURL(url);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    showError("#chat-error", `Cannot download ${name}: ${describe(e)}`);
  }
}

function pendingItem(cur: Open, p: Pending): HTMLElement {
  const li = el("li", `msg mine ${p.state === "failed" ? "failed" : "pending"}`);
  li.dataset.cmid = p.cmid;
  if (p.state === "uploading") li.append(el("div", "text", `Uploading ${str(p.body.name) ?? "file"}…`));
  else li.append(...content({ type: p.type, body: p.body, from: state.user }));
  const meta = el("div", "meta");
  if (p.state === "failed") {
    meta.append(el("span", "send-error", `not sent: ${p.error ?? "refused"}`));
    meta.append(
      button("Dismiss", "dismiss-btn", () => {
        cur.pending = cur.pending.filter((x) => x !== p);
        renderMessages();
      }),
    );
  } else meta.append(el("span", "", p.state === "uploading" ? "uploading…" : "sending…"));
  li.append(meta);
  return li;
}

function target(cur: Open): { to?: string; group?: string } {
  return cur.kind === "direct" ? { to: cur.peer } : { group: cur.conv };
}

/** send sends one message; the SDK retries it with its cmid until acknowledged [IM-4.5]. */
async function send(cur: Open, type: string, body: Body, p?: Pending): Promise<void> {
  const c = state.client;
  if (!c) return;
  const cmid = p?.cmid ?? newId();
  const pend = p ?? { cmid, type, body, state: "sending" as const };
  pend.type = type;
  pend.body = body;
  pend.state = "sending";
  if (!cur.pending.includes(pend)) cur.pending.push(pend);
  if (state.current === cur) renderMessages(true);
  try {
    await c.send({ ...target(cur), type, body }, { cmid });
  } catch (e) {
    pend.state = "failed";
    pend.error = describe(e);
    if (state.current === cur) renderMessages();
  }
}

function newId(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return "web" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function sendAttachment(cur: Open, file: File): Promise<void> {
  const c = state.client;
  if (!c) return;
  const p: Pending = { cmid: newId(), type: "file", body: { name: file.name }, state: "uploading" };
  cur.pending.push(p);
  renderMessages(true);
  try {
    const mime = file.type || undefined;
    const up = await c.upload(file, { name: file.name, mime });
    const kind = up.mime.split("/")[0];
    const body: Body = { url: up.url, mime: up.mime, size: up.size, sha256: up.sha256, name: file.name };
    let type = "file";
    if (kind === "image") {
      type = "image";
      try {
        const bm = await createImageBitmap(file);
        body.width = bm.width;
        body.height = bm.height;
        bm.close();
      } catch {
        // dimensions are optional metadata [IM-12.1-1]
      }
    } else if (kind === "video") type = "video";
    await send(cur, type, body, p);
  } catch (e) {
    p.state = "failed";
    p.error = describe(e);
    if (state.current === cur) renderMessages();
  }
}

function shareLocation(): void {
  const cur = state.current;
  if (!cur) return;
  if (!navigator.geolocation) {
    showError("#chat-error", "This browser cannot tell its location.");
    return;
  }
  navigator.geolocation.getCurrentPosition(
    (pos) => void send(cur, "location", { lat: pos.coords.latitude, lon: pos.coords.longitude, name: "My location" }),
    (err) => showError("#chat-error", `No location: ${err.message}`),
    { timeout: 10000 },
  );
}

async function recall(m: Message): Promise<void> {
  const c = state.client;
  const cur = state.current;
  if (!c || !cur) return;
  try {
    const after = await c.recall(m.id);
    put(cur, after);
    renderMessages();
    scheduleRefresh();
  } catch (e) {
    showError("#chat-error", `Cannot recall: ${describe(e)}`);
  }
}

function startEdit(m: Message): void {
  state.editing = m;
  const input = $<HTMLInputElement>("#compose-text");
  input.value = str(m.body.text) ?? "";
  $("#editing").hidden = false;
  $("#send-btn").textContent = "Save";
  input.focus();
}

function cancelEdit(): void {
  state.editing = undefined;
  $("#editing").hidden = true;
  $("#send-btn").textContent = "Send";
}

async function submit(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const cur = state.current;
  const c = state.client;
  const input = $<HTMLInputElement>("#compose-text");
  const text = input.value;
  if (!cur || !c || text.trim() === "") return;
  input.value = "";
  showError("#chat-error", "");
  stopTyping(cur);
  const editing = state.editing;
  if (editing) {
    cancelEdit();
    try {
      const after = await c.edit(editing.id, { ...editing.body, text });
      put(cur, after);
      cur.edited.add(after.seq);
      renderMessages();
      scheduleRefresh();
    } catch (e) {
      showError("#chat-error", `Cannot edit: ${describe(e)}`);
    }
    return;
  }
  await send(cur, "text", { text });
}

// ---- typing [IM-15.1] ----

function onInput(): void {
  const cur = state.current;
  const c = state.client;
  if (!cur || !c || cur.kind !== "direct" || state.editing) return;
  const empty = $<HTMLInputElement>("#compose-text").value === "";
  if (empty) {
    stopTyping(cur);
    return;
  }
  if (Date.now() - state.typingSent < TYPING_EVERY) return;
  state.typingSent = Date.now();
  c.typing(cur.peer!, "typing").catch(() => {});
}

function stopTyping(cur: Open): void {
  if (state.typingSent === 0 || cur.kind !== "direct") return;
  state.typingSent = 0;
  state.client?.typing(cur.peer!, "paused").catch(() => {});
}

function showTyping(conv: string, user: string, on: boolean): void {
  clearTimeout(state.typing.get(conv));
  state.typing.delete(conv);
  const cur = state.current;
  const line = $("#typing");
  if (cur?.conv !== conv) return;
  if (!on) {
    line.textContent = "";
    return;
  }
  line.textContent = `${user} is typing…`;
  state.typing.set(
    conv,
    setTimeout(() => {
      if (state.current?.conv === conv) line.textContent = "";
    }, TYPING_SHOWN),
  );
}

// ---- read position [IM-7.6] ----

async function markRead(): Promise<void> {
  const cur = state.current;
  const c = state.client;
  if (!cur || !c || !cur.loaded || cur.maxSeq === 0 || document.hidden) return;
  const known = state.convs.find((x) => x.conv === cur.conv);
  if (known && known.read_seq >= cur.maxSeq) return;
  try {
    await c.read(cur.conv, cur.maxSeq);
  } catch (e) {
    showError("#chat-error", `Cannot mark as read: ${describe(e)}`);
  }
}

// ---- inbox events [IM-5.1], in order, each once (the SDK's duty) ----

function onEvent(ev: Event): void {
  const cur = state.current;
  const here = cur !== undefined && ev.conv === cur.conv;
  switch (ev.kind) {
    case "message": {
      const m = ev.msg;
      if (!m) break;
      if (here) {
        // Also while history loads: the two merge by seq, and an event that
        // overtakes the history response is not lost.
        put(cur, m);
        renderMessages();
        void markRead();
      }
      if (here && m.from !== state.user) showTyping(cur.conv, m.from, false);
      if (m.type === "group") onGroupEvent(m);
      scheduleRefresh();
      break;
    }
    case "recall":
    case "edit": {
      const m = ev.msg;
      if (ev.kind === "edit" && m && ev.conv) {
        const set = state.edited.get(ev.conv) ?? new Set<number>();
        set.add(m.seq);
        state.edited.set(ev.conv, set);
      }
      if (here && m && cur.messages.has(m.seq)) {
        cur.messages.set(m.seq, m);
        renderMessages();
      }
      scheduleRefresh();
      break;
    }
    case "delete":
      if (here && ev.msg) {
        cur.messages.delete(ev.msg.seq);
        renderMessages();
      }
      scheduleRefresh();
      break;
    case "read":
      if (here && ev.user !== state.user && typeof ev.conv_seq === "number") {
        cur.peerRead = Math.max(cur.peerRead, ev.conv_seq);
        renderMessages();
      }
      scheduleRefresh();
      break;
    case "typing":
      if (ev.conv && ev.user) showTyping(ev.conv, ev.user, ev.state !== "paused");
      break;
    case "error":
      if (ev.error) showError("#chat-error", `Error from the server: ${ev.error.code}${ev.error.message ? `: ${ev.error.message}` : ""}`);
      break;
    case "reset": {
      // The server no longer has what the cursor points into [IM-5.2-7]: rebuild.
      scheduleRefresh();
      if (cur) void openConv(cur.kind === "direct" ? { kind: "direct", peer: cur.peer! } : { kind: "group", conv: cur.conv, name: cur.name });
      break;
    }
    default:
      // mention, settings and kinds of newer servers: the lists say the rest.
      scheduleRefresh();
  }
}

function onGroupEvent(m: Message): void {
  const users = Array.isArray(m.body.users) ? (m.body.users as unknown[]) : [];
  const gone = (m.body.op === "remove" && users.includes(state.user)) || (m.body.op === "leave" && m.from === state.user);
  if (gone) {
    state.followed.get(m.conv)?.stop();
    state.followed.delete(m.conv);
  } else if (m.body.fanout === "read" && !state.followed.has(m.conv)) {
    follow(m.conv, Math.max(typeof m.body.read_from === "number" ? m.body.read_from : 0, m.seq) - 1);
  }
  const cur = state.current;
  if (cur?.conv === m.conv) void loadGroup(cur);
}

// ---- wiring ----

async function createGroup(ev: SubmitEvent): Promise<void> {
  ev.preventDefault();
  const c = state.client;
  if (!c) return;
  const name = $<HTMLInputElement>("#group-name").value.trim();
  const members = $<HTMLInputElement>("#group-members")
    .value.split(/[\s,]+/)
    .filter((u) => u !== "" && u !== state.user);
  showError("#side-error", "");
  try {
    const res = await c.createGroup({ members, ...(name ? { name } : {}) });
    $<HTMLInputElement>("#group-name").value = "";
    $<HTMLInputElement>("#group-members").value = "";
    $<HTMLDetailsElement>("#new-group").open = false;
    await openConv({ kind: "group", conv: res.group, name: name || undefined });
  } catch (e) {
    showError("#side-error", `Cannot create the group: ${describe(e)}`);
  }
}

function main(): void {
  $("#login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void login($<HTMLInputElement>("#login-user").value.trim(), $<HTMLTextAreaElement>("#login-token").value.trim(), $<HTMLInputElement>("#login-remember").checked);
  });
  $("#logout-btn").addEventListener("click", () => void logout());
  $("#back-btn").addEventListener("click", () => {
    closeConv();
    renderConvs();
  });
  $<HTMLFormElement>("#compose").addEventListener("submit", (ev) => void submit(ev));
  $("#compose-text").addEventListener("input", onInput);
  $("#older-btn").addEventListener("click", () => void older());
  $("#messages").addEventListener("scroll", () => {
    if ($("#messages").scrollTop === 0 && state.current?.hasMore && state.current.loaded) void older();
  });
  $("#new-chat").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const peer = $<HTMLInputElement>("#to").value.trim();
    if (peer === state.user) {
      showError("#side-error", "That is you: chat with another user.");
      return;
    }
    showError("#side-error", "");
    $<HTMLInputElement>("#to").value = "";
    void openConv({ kind: "direct", peer });
  });
  $<HTMLFormElement>("#group-form").addEventListener("submit", (ev) => void createGroup(ev));
  $("#contact-btn").addEventListener("click", () => void addContact());
  $("#members-btn").addEventListener("click", () => {
    $("#members").hidden = !$("#members").hidden;
    void renderMembers();
  });
  $("#add-member").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const u = $<HTMLInputElement>("#add-member-user");
    const user = u.value.trim();
    u.value = "";
    void groupAction((c, g) => c.addToGroup(g, [user]), `add ${user}`);
  });
  $("#leave-btn").addEventListener("click", () => void groupAction((c, g) => c.leaveGroup(g), "leave the group"));
  $("#edit-cancel").addEventListener("click", () => {
    cancelEdit();
    $<HTMLInputElement>("#compose-text").value = "";
  });
  $<HTMLInputElement>("#file-input").addEventListener("change", () => {
    const input = $<HTMLInputElement>("#file-input");
    const cur = state.current;
    for (const f of Array.from(input.files ?? [])) if (cur) void sendAttachment(cur, f);
    input.value = "";
  });
  $("#location-btn").addEventListener("click", shareLocation);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void markRead();
  });
  const s = stored();
  if (s) {
    $<HTMLInputElement>("#login-user").value = s.user;
    $<HTMLInputElement>("#login-remember").checked = s.remember;
    void login(s.user, s.token, s.remember);
  }
}

main();
