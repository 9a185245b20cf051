// roomring.js: the RoomRing browser client (DESIGN.md §4). One dependency-free ES module.
//
//   import { connect } from "/roomring.js";
//   const room = connect("ws://127.0.0.1:8080/rooms/lobby", { name: "alice",
//     onMessage: (m) => {},  // {message, from, seq, ts}: every chat once, in seq order
//     onState: (s) => {} }); // {state, shard, seq, resumed, epoch, attempt, delay, reason}
//   const seq = await room.send("hi there"); // resolves with the ack's seq; resent after reconnects until acked
//   room.close();
//
// Same semantics as the Swift RoomClient: reconnect with full-jitter exponential backoff (at once, within 250 ms,
// after a 1012 "moved"/"restarting" or 1001), resume with `since=<last seq>`, resend unacknowledged messages with
// their original id (the shard drops duplicates by (client, id)), drop duplicate deliveries by seq, and say so when
// the room's history could not be resumed (`resumed: false`).

const OPEN = 1;

/** Default tuning; every field can be overridden in connect()'s options. */
export const defaults = Object.freeze({
  backoffBase: 100, // ms; attempt n waits a random time up to base × 2ⁿ
  backoffMax: 5000, // ms
  quickReconnect: 250, // ms; the ceiling after a move or restart
  helloTimeout: 10000, // ms to wait for `hello` after the socket opens
});

/** A random client id: stable for one connect() so resent messages are recognised as duplicates. */
export function randomClientId() {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Backoff before reconnect attempt `attempt` (1, 2, ...): full jitter, as the Swift client does. */
export function backoffDelay(attempt, { quick = false, backoffBase = defaults.backoffBase,
  backoffMax = defaults.backoffMax, quickReconnect = defaults.quickReconnect, random = Math.random } = {}) {
  const ceiling = quick ? quickReconnect : Math.min(backoffMax, backoffBase * 2 ** Math.min(attempt, 16));
  return Math.round(random() * ceiling);
}

/**
 * The WebSocket URL for a (re)connect: `url` with name, client and since set. A path such as "/rooms/lobby" is
 * resolved against the page's location (http → ws, https → wss).
 */
export function roomURL(url, { name, client, since } = {}) {
  let base = url;
  if (base.startsWith("/") && globalThis.location) {
    const scheme = globalThis.location.protocol === "https:" ? "wss:" : "ws:";
    base = `${scheme}//${globalThis.location.host}${base}`;
  }
  const out = new URL(base);
  if (name != null) out.searchParams.set("name", name);
  if (client != null) out.searchParams.set("client", client);
  if (since != null) out.searchParams.set("since", String(since));
  else out.searchParams.delete("since");
  return out.toString();
}

/**
 * Opens a room connection that survives moves and restarts. Returns a room object at once; it connects in the
 * background and reports progress through `onState`.
 * @param {string} url ws:// or wss:// URL of the room (or a path like "/rooms/lobby").
 * @param {object} options name, client, onMessage, onState, onError, backoffBase, backoffMax, WebSocket.
 */
export function connect(url, options = {}) {
  const opts = { ...defaults, ...options };
  const Socket = opts.WebSocket ?? globalThis.WebSocket;
  if (!Socket) throw new Error("roomring: no WebSocket implementation (pass options.WebSocket)");
  const clientId = opts.client ?? randomClientId();
  const onMessage = opts.onMessage ?? (() => {});
  const onState = opts.onState ?? (() => {});
  const onError = opts.onError ?? (() => {});

  const outbox = []; // {id, text, resolve, reject}, in send order
  let nextId = 0;
  let lastSeq = opts.since ?? null;
  // The chat delivered at lastSeq. A resume asks for it again (since = lastSeq - 1) to prove the room's history is
  // the same one: a room whose shard lost its state starts again at seq 1, and once past our seq the shard cannot
  // tell the histories apart (it answers resumed: true); we can, because our last message is missing.
  let lastChat = null;
  let socket = null;
  let ready = false; // hello received on the current socket
  let attempt = 0;
  let closed = false;
  let timer = null;
  let state = { state: "connecting" };
  let shard = null; // the last shard that said hello

  function report(next) {
    state = next;
    try { onState({ ...next }); } catch (error) { console.error("roomring onState:", error); }
  }

  function transmit(entry) {
    socket.send(JSON.stringify({ type: "chat", payload: { message: entry.text }, id: entry.id }));
  }

  function open() {
    if (closed) return;
    report({ state: "connecting", attempt });
    const asked = lastSeq;
    const probe = asked != null && asked > 0 && lastChat && lastChat.seq === asked ? lastChat : null;
    let hello = null; // held until the probe comes back, when there is one
    let ws;
    try {
      ws = new Socket(roomURL(url, { name: opts.name, client: clientId, since: probe ? asked - 1 : asked }));
    } catch (error) {
      retry(false, String(error));
      return;
    }
    socket = ws;
    ready = false;
    let helloTimer = null;
    ws.onopen = () => {
      helloTimer = setTimeout(() => ws.close(4000, "no hello"), opts.helloTimeout);
    };
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      const p = message.payload ?? {};
      if (hello) {
        // The first message after a resumed hello is the replay of our last one: the same, or another history.
        const same = message.type === "chat" && p.seq === probe.seq && p.message === probe.message
          && p.from === probe.from && p.ts === probe.ts;
        const held = hello;
        hello = null;
        connected(held, !same);
        if (same) return;
      }
      switch (message.type) {
        case "hello":
          clearTimeout(helloTimer);
          if (asked != null && p.seq < asked) connected(p, true); // the room lost its state: seq begins again
          else if (probe && p.resumed === true) hello = p;
          else connected(p, false);
          break;
        case "chat":
          if (lastSeq != null && p.seq <= lastSeq) return; // a replay we already delivered
          lastSeq = p.seq;
          lastChat = { seq: p.seq, message: p.message, from: p.from, ts: p.ts };
          try { onMessage({ message: p.message, from: p.from, seq: p.seq, ts: p.ts }); }
          catch (error) { console.error("roomring onMessage:", error); }
          break;
        case "ack": {
          const index = outbox.findIndex((entry) => entry.id === p.id);
          if (index >= 0) outbox.splice(index, 1)[0].resolve(p.seq);
          break;
        }
        case "error":
          // Pub/sub mode while Redis is unreachable: the message was refused, not lost; resend shortly (the
          // shard drops duplicates by (client, id), so resending everything unacknowledged is safe).
          if (p.code === "broker_unavailable") scheduleResend();
          try { onError({ code: p.code, message: p.message }); }
          catch (error) { console.error("roomring onError:", error); }
          break;
      }
    };
    function connected(p, restarted) {
      if (restarted) {
        lastSeq = p.seq; // what a replay holds belongs to the new history, from before this client
        lastChat = null;
      }
      if (lastSeq == null) lastSeq = p.seq;
      attempt = 0;
      ready = true;
      shard = p.shard;
      report({ state: "connected", shard: p.shard, room: p.room, seq: p.seq, epoch: p.epoch,
        resumed: asked == null || (p.resumed === true && !restarted) });
      for (const entry of outbox) transmit(entry);
    }
    ws.onclose = (event) => {
      clearTimeout(helloTimer);
      if (ws !== socket) return;
      socket = null;
      ready = false;
      if (closed) return;
      const code = event.code;
      retry(code === 1012 || code === 1001, `closed ${code}${event.reason ? " " + event.reason : ""}`);
    };
    // Errors are followed by a close event, which does the reconnecting.
    ws.onerror = () => {};
  }

  let resendTimer = null;
  function scheduleResend() {
    if (resendTimer !== null) return;
    resendTimer = setTimeout(() => {
      resendTimer = null;
      if (!closed && ready && socket?.readyState === OPEN) for (const entry of outbox) transmit(entry);
    }, 300 + Math.random() * 700);
  }

  function retry(quick, reason) {
    attempt += 1;
    const delay = backoffDelay(attempt, { ...opts, quick });
    report({ state: "reconnecting", attempt, delay, reason, shard, seq: lastSeq });
    timer = setTimeout(() => { timer = null; open(); }, delay);
  }

  // A browser that comes back online retries at once instead of sitting out the rest of its backoff.
  function online() {
    if (timer === null || closed) return;
    clearTimeout(timer);
    timer = null;
    open();
  }
  globalThis.addEventListener?.("online", online);

  const room = {
    /** This connection's client id (the dedup key for resent messages). */
    clientId,
    /** Sends a chat line; resolves with its seq once acknowledged, resending after reconnects until then. */
    send(text) {
      if (closed) return Promise.reject(new Error("roomring: closed"));
      nextId += 1;
      const id = `${clientId}-${nextId}`;
      return new Promise((resolve, reject) => {
        const entry = { id, text: String(text), resolve, reject };
        outbox.push(entry);
        if (ready && socket?.readyState === OPEN) transmit(entry);
      });
    },
    /** Closes for good; unacknowledged sends reject. */
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      clearTimeout(resendTimer);
      globalThis.removeEventListener?.("online", online);
      const ws = socket;
      socket = null;
      if (ws && ws.readyState <= OPEN) ws.close(1000);
      for (const entry of outbox.splice(0)) entry.reject(new Error("roomring: closed before acknowledged"));
      report({ state: "closed", shard, seq: lastSeq });
    },
    /** The last state reported. */
    get state() { return { ...state }; },
    /** Highest seq delivered (or the room's seq at join). */
    get lastSeq() { return lastSeq; },
    /** Messages sent and not yet acknowledged. */
    get pending() { return outbox.length; },
  };
  open();
  return room;
}
