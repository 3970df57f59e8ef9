// mqim web client: the mqim protocol (protocol/spec.md) over MQTT 5 on a
// WebSocket, with MQTT.js. Payloads are JSON: the CONNECT asks for JSON
// output with the user property format=json [IM-1.2-3]; RPCs use the
// payload envelope (id, reply_to) [IM-7.1-3].
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  client: null,
  user: "",
  replyTopic: "",
  pending: new Map(), // rpc id → {resolve, reject, timer}
  rpcSeq: 0,
  convs: [], // the conversations RPC's list
  current: null, // {conv, peer, messages, hasMore, peerRead}
  refreshTimer: null,
};

function status(text) { $("#status").textContent = text; }

// directConv is the id of the direct conversation of a and b [IM-3.2-1].
function directConv(a, b) { return a < b ? `d:${a}:${b}` : `d:${b}:${a}`; }

function newCmid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

async function wsURL() {
  const override = new URLSearchParams(location.search).get("ws");
  if (override) return override;
  const cfg = await (await fetch("config.json")).json();
  const proto = location.protocol === "https:" ? "wss" : "ws";
  return `${proto}://${location.hostname}:${cfg.ws_port}${cfg.ws_path}`;
}

async function login(ev) {
  ev.preventDefault();
  const user = $("#login-user").value.trim();
  const token = $("#login-token").value.trim();
  state.user = user;
  const clientId = `${user}.web${Math.random().toString(36).slice(2, 8)}`;
  state.replyTopic = `im/v1/u/${user}/reply/${clientId}`;
  status("connecting…");
  const client = mqtt.connect(await wsURL(), {
    protocolVersion: 5, clientId, username: user, password: token, clean: true,
    reconnectPeriod: 2000, connectTimeout: 10000,
    properties: { userProperties: { format: "json" } },
  });
  state.client = client;
  client.on("connect", onConnect);
  client.on("message", onMessage);
  client.on("close", () => status("offline"));
  client.on("error", (err) => status(`error: ${err.message}`));
}

function onConnect() {
  status("online");
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#me").textContent = state.user;
  // Subscribe first, then pull: nothing falls between [IM-5.2-4].
  state.client.subscribe([`im/v1/u/${state.user}/inbox`, state.replyTopic], { qos: 1 }, async (err) => {
    if (err) { status(`subscribe failed: ${err.message}`); return; }
    await refresh();
    if (state.current) await openConv(state.current.peer);
  });
}

function onMessage(topic, payload) {
  let msg;
  try { msg = JSON.parse(new TextDecoder().decode(payload)); } catch { return; }
  if (topic === state.replyTopic) {
    const p = state.pending.get(msg.id);
    if (!p) return; // late or duplicate [IM-7.1-6]
    state.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(`${msg.error.code}: ${msg.error.message}`));
    return;
  }
  onEvent(msg);
}

// rpc calls a method and resolves with its result [IM-7].
function rpc(method, params) {
  const id = `r${++state.rpcSeq}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { state.pending.delete(id); reject(new Error(`${method}: no response`)); }, 10000);
    state.pending.set(id, { resolve, reject, timer });
    state.client.publish(`im/v1/u/${state.user}/rpc/${method}`,
      JSON.stringify({ ...params, id, reply_to: state.replyTopic }), { qos: 1 });
  });
}

async function refresh() {
  try {
    const res = await rpc("conversations", { limit: 100 });
    state.convs = res.conversations;
    $("#total-unread").textContent = res.total_unread;
    const cur = state.current && state.convs.find((c) => c.conv === state.current.conv);
    if (cur) state.current.peerRead = cur.peer_read_seq;
    renderConvs();
    if (state.current) renderMessages();
  } catch (err) { status(err.message); }
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, 100);
}

function renderConvs() {
  const ul = $("#convs");
  ul.replaceChildren();
  for (const c of state.convs) {
    if (c.kind !== "direct") continue; // skip kinds this page does not know [IM-7.5-2]
    const li = document.createElement("li");
    li.dataset.peer = c.peer;
    if (state.current && state.current.conv === c.conv) li.classList.add("active");
    const left = document.createElement("div");
    const name = document.createElement("div");
    name.className = "peer";
    name.textContent = c.peer;
    const last = document.createElement("div");
    last.className = "last";
    last.textContent = c.last ? text(c.last) : "";
    left.append(name, last);
    li.append(left);
    if (c.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = c.unread;
      li.append(badge);
    }
    li.addEventListener("click", () => openConv(c.peer));
    ul.append(li);
  }
}

function text(m) {
  if (m.body && typeof m.body.text === "string") return m.body.text;
  return JSON.stringify(m.body);
}

async function openConv(peer) {
  const conv = directConv(state.user, peer);
  const known = state.convs.find((c) => c.conv === conv);
  state.current = { conv, peer, messages: [], hasMore: false, peerRead: known ? known.peer_read_seq : 0 };
  $("#chat").hidden = false;
  $("#peer").textContent = peer;
  renderConvs();
  try {
    const res = await rpc("history", { with: peer, limit: 30 });
    if (!state.current || state.current.conv !== conv) return;
    state.current.messages = res.messages;
    state.current.hasMore = res.has_more;
    renderMessages(true);
    await markRead();
  } catch (err) { status(err.message); }
}

async function older() {
  const cur = state.current;
  if (!cur || cur.messages.length === 0) return;
  const res = await rpc("history", { conv: cur.conv, before: cur.messages[0].seq, limit: 30 });
  cur.messages = res.messages.concat(cur.messages);
  cur.hasMore = res.has_more;
  renderMessages();
}

function renderMessages(scroll) {
  const cur = state.current;
  const ol = $("#messages");
  const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4;
  ol.replaceChildren();
  for (const m of cur.messages) {
    const li = document.createElement("li");
    li.className = "msg";
    li.dataset.seq = m.seq;
    if (m.from === state.user) li.classList.add("mine");
    if (m.type === "system") li.classList.add("system");
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text(m);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${m.from} · ${new Date(m.ts).toLocaleTimeString()}`;
    if (m.from === state.user && m.seq <= cur.peerRead) {
      const r = document.createElement("span");
      r.className = "receipt";
      r.textContent = " · read";
      meta.append(r);
    }
    li.append(body, meta);
    ol.append(li);
  }
  $("#older-btn").hidden = !cur.hasMore;
  if (scroll || atBottom) ol.scrollTop = ol.scrollHeight;
}

// markRead moves the read position to the newest message shown [IM-7.6].
async function markRead() {
  const cur = state.current;
  if (!cur || cur.messages.length === 0 || document.hidden) return;
  const last = cur.messages[cur.messages.length - 1].seq;
  const known = state.convs.find((c) => c.conv === cur.conv);
  if (known && known.read_seq >= last) return;
  try {
    await rpc("read", { conv: cur.conv, seq: last });
  } catch (err) { status(err.message); }
}

function onEvent(ev) {
  const cur = state.current;
  if (ev.kind === "message" && ev.msg) {
    if (cur && ev.conv === cur.conv && !cur.messages.some((m) => m.seq === ev.msg.seq)) {
      cur.messages.push(ev.msg);
      cur.messages.sort((a, b) => a.seq - b.seq);
      renderMessages();
      markRead();
    }
    scheduleRefresh();
  } else if (ev.kind === "read") {
    if (cur && ev.conv === cur.conv && ev.user === cur.peer) {
      cur.peerRead = Math.max(cur.peerRead, ev.conv_seq);
      renderMessages();
    }
    scheduleRefresh();
  } else if (ev.kind === "error" && ev.error) {
    status(`error: ${ev.error.code}`);
  }
}

function send(ev) {
  ev.preventDefault();
  const input = $("#compose-text");
  const cur = state.current;
  if (!cur || !input.value) return;
  const payload = { cmid: newCmid(), to: cur.peer, type: "text", body: { text: input.value } };
  input.value = "";
  // QoS 1: MQTT.js resends it until the PUBACK, which comes after commit
  // [IM-4.4]; the message itself arrives as an inbox event.
  state.client.publish(`im/v1/u/${state.user}/send`, JSON.stringify(payload), { qos: 1 }, (err, packet) => {
    if (err) status(`send failed: ${err.message}`);
    else if (packet && packet.reasonCode >= 0x80) status(`send refused: 0x${packet.reasonCode.toString(16)}`);
  });
}

$("#login").addEventListener("submit", login);
$("#compose").addEventListener("submit", send);
$("#older-btn").addEventListener("click", older);
$("#new-chat").addEventListener("submit", (ev) => { ev.preventDefault(); openConv($("#to").value.trim()); });
document.addEventListener("visibilitychange", () => { if (!document.hidden) markRead(); });
