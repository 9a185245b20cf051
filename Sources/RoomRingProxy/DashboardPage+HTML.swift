/// The ring dashboard page served at the proxy admin port's `/admin` (see ``ProxyDashboardRoutes``).
///
/// Kept in the binary rather than in a resource bundle: the proxy is often deployed as a lone executable, and a
/// missing bundle must not turn `GET /admin` into a crash. Self-contained: no external assets; it talks to this
/// admin API only (`GET /fleet`, `POST /ring/...`) with the token the user gives it.
extension DashboardPage {
    static let source = ##"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RoomRing ring</title>
<style>
  :root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em 1.5em; color: #1f2328; }
  h1 { font-size: 1.35em; margin: 0; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
  header { display: flex; gap: 1.5em; align-items: baseline; flex-wrap: wrap; }
  #status { color: var(--muted); }
  #status[data-ok="false"] { color: var(--bad); font-weight: 600; }
  .top { display: flex; gap: 1em; align-items: flex-start; flex-wrap: wrap; margin-top: 1em; }
  #ring { width: 210px; height: 210px; flex: none; }
  #legend { list-style: none; padding: 0; margin: .5em 0 0; }
  #legend li { display: inline-block; margin-right: 1em; }
  .swatch { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: -.1em;
            margin-right: .3em; }
  table { border-collapse: collapse; }
  th, td { border-bottom: 1px solid var(--line); padding: .3em .45em; text-align: left; white-space: nowrap; }
  th { background: var(--bg); font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .state-active { color: var(--ok); }
  .state-draining { color: var(--warn); font-weight: 600; }
  .health-up { color: var(--ok); }
  .health-down { color: var(--bad); font-weight: 600; }
  .dot { display: inline-block; width: .6em; height: .6em; border-radius: 50%; background: currentColor;
         margin-right: .3em; }
  button { font: inherit; padding: .15em .7em; }
  button.armed { background: var(--bad); color: #fff; border-color: var(--bad); }
  input { font: inherit; padding: .15em .3em; }
  #log { font: 12px/1.4 ui-monospace, monospace; background: var(--bg); border: 1px solid var(--line);
         padding: .4em .6em; max-height: 12em; overflow: auto; white-space: pre-wrap; }
  #token-form { margin: 1em 0; padding: .8em; border: 1px solid var(--warn); border-radius: 6px; background: #fff8c5; }
  .error { color: var(--bad); }
  .muted { color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>RoomRing ring</h1>
  <span>epoch <b id="epoch">–</b></span>
  <span>balance <b id="balance">–</b></span>
  <span>messages in <b id="rate-in">–</b>/s, delivered <b id="rate-out">–</b>/s</span>
  <span id="status" data-ok="true">starting…</span>
</header>

<form id="token-form" hidden>
  <label>Admin token <input id="token" type="password" autocomplete="off" size="40"></label>
  <button>Use token</button>
  <span id="token-error" class="error"></span>
  <div class="muted">The token <code>roomring up</code> printed (or <code>ROOMRING_ADMIN_TOKEN</code>). It stays in
    this tab only.</div>
</form>

<div class="top">
  <div>
    <svg id="ring" viewBox="-150 -150 300 300" role="img" aria-label="hash ring"></svg>
    <ul id="legend"></ul>
  </div>
  <div>
    <h2 style="margin-top:0">Shards</h2>
    <table>
      <thead><tr><th>shard</th><th>address</th><th>state</th><th>health</th><th>share</th><th>rooms</th>
        <th>members</th><th>conns</th><th>tunnels</th><th>msg in/s</th><th>out/s</th><th>actions</th></tr></thead>
      <tbody id="shards"></tbody>
    </table>
    <h2>Add a shard</h2>
    <form id="add-form">
      <input id="add-id" placeholder="id (s4)" size="6" required>
      <input id="add-address" placeholder="address 127.0.0.1:9004" size="18" required>
      <input id="add-admin" placeholder="admin 127.0.0.1:9104" size="18" required>
      <input id="add-weight" type="number" min="1" max="100" value="1" style="width:4em">
      <button>Add</button>
      <div class="muted">start the shard process first (<code>roomring shard …</code>), then add it here</div>
    </form>
  </div>
</div>

<h2>Busiest rooms</h2>
<table>
  <thead><tr><th>room</th><th>shard</th><th>members</th><th>seq</th></tr></thead>
  <tbody id="rooms"></tbody>
</table>

<h2>Actions</h2>
<div id="log">no actions yet</div>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const palette = ["#0969da", "#bf3989", "#1a7f37", "#bc4c00", "#8250df", "#0a7d8c", "#cf222e", "#6e7781",
  "#9a6700", "#1b1f24"];
let token = sessionStorage.getItem("roomring-admin-token") || "";
const previous = new Map(); // shard id -> {t, in, out}, for rates
let colors = new Map();
let busy = false;

// #token=... lets a link (or a test) open the dashboard logged in; the fragment never reaches the server.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  token = fragment.get("token");
  sessionStorage.setItem("roomring-admin-token", token);
  history.replaceState(null, "", location.pathname + location.search);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

async function api(method, path, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), method === "GET" ? 5000 : 60000);
  try {
    const response = await fetch(path, { method, signal: controller.signal, cache: "no-store",
      headers: { "Authorization": `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined });
    const json = await response.json().catch(() => ({}));
    if (response.status === 401) askToken("that token was refused");
    if (!response.ok) throw new Error(json.error?.message ?? `HTTP ${response.status}`);
    return json;
  } finally {
    clearTimeout(timer);
  }
}

function askToken(message) {
  $("token-form").hidden = false;
  $("token-error").textContent = message || "";
  setStatus(false, "needs the admin token");
}

$("token-form").onsubmit = (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("roomring-admin-token", token);
  $("token-form").hidden = true;
  poll();
};

function setStatus(ok, text) {
  $("status").dataset.ok = String(ok);
  $("status").textContent = text;
}

function colorOf(id) {
  if (!colors.has(id)) colors.set(id, palette[colors.size % palette.length]);
  return colors.get(id);
}

function point(fraction, radius) {
  const angle = fraction * 2 * Math.PI - Math.PI / 2; // 0 at the top, clockwise
  return [radius * Math.cos(angle), radius * Math.sin(angle)];
}

function drawRing(fleet) {
  const svg = $("ring");
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attributes) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) n.setAttribute(k, v);
    return n;
  };
  const r = 110;
  const parts = [node("circle", { r, fill: "none", stroke: "#eaeef2", "stroke-width": 26 })];
  for (const arc of fleet.arcs) {
    const attributes = { fill: "none", stroke: colorOf(arc.shard), "stroke-width": 26, "data-shard": arc.shard };
    if (arc.end - arc.start >= 0.9999) {
      parts.push(node("circle", { r, ...attributes }));
      continue;
    }
    const [x1, y1] = point(arc.start, r);
    const [x2, y2] = point(arc.end, r);
    const large = arc.end - arc.start > 0.5 ? 1 : 0;
    parts.push(node("path", { d: `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${r} ${r} 0 ${large} 1 ${x2.toFixed(2)} `
      + `${y2.toFixed(2)}`, ...attributes }));
  }
  const label = node("text", { "text-anchor": "middle", y: -4, "font-size": 20, "font-weight": 600 });
  label.textContent = `epoch ${fleet.epoch}`;
  const sub = node("text", { "text-anchor": "middle", y: 18, "font-size": 12, fill: "#57606a" });
  sub.textContent = `${fleet.arcs.length} arcs · ${fleet.vnodes} vnodes`;
  parts.push(label, sub);
  svg.replaceChildren(...parts);
  $("legend").replaceChildren(...fleet.shards.map((s) => el("li", { "data-shard": s.id },
    el("span", { class: "swatch", style: `background:${s.state === "active" ? colorOf(s.id) : "#d0d7de"}` }),
    `${s.id} ${(s.share * 100).toFixed(1)}%${s.state === "active" ? "" : " (" + s.state + ")"}`)));
}

function rate(now, shard) {
  const last = previous.get(shard.id);
  previous.set(shard.id, { t: now, in: shard.messagesIn, out: shard.messagesOut });
  if (!last || shard.messagesIn == null || last.in == null) return [null, null];
  const seconds = (now - last.t) / 1000;
  if (seconds <= 0) return [null, null];
  return [Math.max(0, (shard.messagesIn - last.in) / seconds), Math.max(0, (shard.messagesOut - last.out) / seconds)];
}

const fmt = (value, digits = 0) => value == null ? "?" : Number(value).toFixed(digits);

const armed = new Map(); // "drain:s2" -> until when a second click acts (rows are redrawn every poll)

function actionButton(label, id, path) {
  // Two clicks: the first arms the button, the second acts (no modal dialogs: they would block the page).
  const key = `${label}:${id}`;
  const isArmed = () => (armed.get(key) ?? 0) > Date.now();
  const button = el("button", { type: "button", textContent: isArmed() ? `confirm ${label}` : label,
    disabled: busy, "data-action": label });
  if (isArmed()) button.classList.add("armed");
  button.onclick = async () => {
    if (!isArmed()) {
      armed.set(key, Date.now() + 5000);
      button.classList.add("armed");
      button.textContent = `confirm ${label}`;
      return;
    }
    armed.delete(key);
    button.disabled = true;
    await act(path, { id });
  };
  return button;
}

async function act(path, body) {
  busy = true;
  log(`POST ${path} ${JSON.stringify(body)}`);
  try {
    const reply = await api("POST", path, body);
    log(reply.log.join("\n") + `\nnow at epoch ${reply.epoch}`);
  } catch (error) {
    log(`failed: ${error.message}`);
  } finally {
    busy = false;
    poll();
  }
}

function log(text) {
  const box = $("log");
  if (box.dataset.used !== "true") { box.textContent = ""; box.dataset.used = "true"; }
  box.textContent += `[${new Date().toLocaleTimeString()}] ${text}\n`;
  box.scrollTop = box.scrollHeight;
}

function render(fleet) {
  $("epoch").textContent = fleet.epoch;
  $("balance").textContent = fleet.balance;
  const now = Date.now();
  let totalIn = 0, totalOut = 0, known = false;
  const rows = fleet.shards.map((s) => {
    const [inRate, outRate] = rate(now, s);
    if (inRate != null) { totalIn += inRate; totalOut += outRate; known = true; }
    const actions = el("td", { "data-field": "actions" });
    if (s.state === "active") actions.append(actionButton("drain", s.id, "/ring/drain"), " ");
    actions.append(actionButton("remove", s.id, "/ring/remove"));
    return el("tr", { "data-shard": s.id, "data-state": s.state, "data-healthy": String(s.healthy) },
      el("td", {}, el("span", { class: "swatch", style: `background:${colorOf(s.id)}` }), el("b", {}, s.id)),
      el("td", { class: "muted", title: `admin ${s.admin}, weight ${s.weight}` }, s.address),
      el("td", { class: `state-${s.state}`, "data-field": "state" }, s.state),
      el("td", { class: s.healthy ? "health-up" : "health-down", "data-field": "health",
        title: s.error ?? "" }, el("span", { class: "dot" }), s.healthy ? "up" : "down"),
      el("td", { class: "num", "data-field": "share" }, `${(s.share * 100).toFixed(1)}%`),
      el("td", { class: "num", "data-field": "rooms" }, fmt(s.roomCount)),
      el("td", { class: "num", "data-field": "members" }, fmt(s.members)),
      el("td", { class: "num", "data-field": "connections" }, fmt(s.connections)),
      el("td", { class: "num", "data-field": "tunnels" }, String(s.tunnels)),
      el("td", { class: "num", "data-field": "rate-in" }, fmt(inRate, 1)),
      el("td", { class: "num", "data-field": "rate-out" }, fmt(outRate, 1)),
      actions);
  });
  $("shards").replaceChildren(...rows);
  $("rate-in").textContent = known ? totalIn.toFixed(1) : "–";
  $("rate-out").textContent = known ? totalOut.toFixed(1) : "–";
  const rooms = fleet.shards.flatMap((s) => (s.rooms ?? []).map((r) => ({ ...r, shard: s.id })))
    .sort((a, b) => b.members - a.members || a.room.localeCompare(b.room)).slice(0, 20);
  $("rooms").replaceChildren(...(rooms.length ? rooms.map((r) => el("tr", { "data-room": r.room },
    el("td", {}, r.room), el("td", {}, r.shard), el("td", { class: "num" }, String(r.members)),
    el("td", { class: "num" }, String(r.seq))))
    : [el("tr", {}, el("td", { colSpan: 4, class: "muted" }, "no rooms yet"))]));
  drawRing(fleet);
}

let pollTimer = null;
async function poll() {
  clearTimeout(pollTimer);
  if (!token) { askToken(); return; }
  try {
    const fleet = await api("GET", "/fleet");
    render(fleet);
    $("token-form").hidden = true;
    setStatus(true, `live · updated ${new Date().toLocaleTimeString()}${busy ? " · changing the ring…" : ""}`);
  } catch (error) {
    if ($("token-form").hidden) setStatus(false, `cannot reach the admin API: ${error.message}`);
  }
  pollTimer = setTimeout(poll, 1000);
}

$("add-form").onsubmit = (e) => {
  e.preventDefault();
  act("/ring/add", { id: $("add-id").value.trim(), address: $("add-address").value.trim(),
    admin: $("add-admin").value.trim(), weight: Number($("add-weight").value) || 1 });
};

poll();
</script>
</body>
</html>
"""##
}
