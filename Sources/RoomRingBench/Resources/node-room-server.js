'use strict';
// Baseline room server for `roomring bench fanout`: Node + `ws` (Debian's node-ws), the RoomRing protocol subset
// (DESIGN.md §4): ws://127.0.0.1:PORT/rooms/<id>?name=<n>, `hello` on connect, every chat broadcast to all members
// (sender included) with a per-room seq, serialized once per message. Usage: node node-room-server.js PORT [PARENT_PID]
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2] || 9601);
const parent = Number(process.argv[3] || 0);
const rooms = new Map(); // room id -> { seq, members: Set<WebSocket> }
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 64 * 1024 });

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://localhost');
  const match = /^\/rooms\/([A-Za-z0-9._~-]{1,128})$/.exec(url.pathname);
  if (!match) { ws.close(1008, 'path must be /rooms/<id>'); return; }
  const id = match[1];
  const name = url.searchParams.get('name') || 'anonymous';
  let room = rooms.get(id);
  if (!room) { room = { seq: 0, members: new Set() }; rooms.set(id, room); }
  room.members.add(ws);
  ws.send(JSON.stringify({ type: 'hello', payload: { shard: 'node', room: id, seq: room.seq, epoch: 0, resumed: false } }));
  ws.on('message', (data, isBinary) => {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (isBinary || !msg || msg.type !== 'chat' || typeof (msg.payload && msg.payload.message) !== 'string') return;
    room.seq += 1;
    const text = JSON.stringify({ type: 'chat', payload: { message: msg.payload.message, from: name, seq: room.seq, ts: Date.now() } });
    const frame = Buffer.from(text); // encode once; every member gets the same bytes
    if (typeof msg.id === 'string') ws.send(JSON.stringify({ type: 'ack', payload: { id: msg.id, seq: room.seq } }));
    for (const member of room.members) member.send(frame, { binary: false });
  });
  ws.on('close', () => room.members.delete(ws));
  ws.on('error', () => ws.terminate());
});

// Exit with the benchmark that started us, even if it was killed.
if (parent > 0) setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500).unref();
