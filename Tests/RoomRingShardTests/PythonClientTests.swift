import Foundation
import RoomRingSpawn
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// A foreign client: Python's `websockets` (Debian's `python3-websockets`) against a real shard.
@Suite struct PythonClientTests {
    static let python = "/usr/bin/python3"

    /// Runs `python` with `arguments`, killing it after `timeout`; stdout and stderr go through files so a chatty
    /// child can never block on a full pipe.
    static func run(_ arguments: [String], timeout: Duration) async throws
        -> (status: Int32, stdout: String, stderr: String, timedOut: Bool)
    {
        let directory = FileManager.default.temporaryDirectory
        let tag = UUID().uuidString
        let out = directory.appendingPathComponent("roomring-py-\(tag).out")
        let err = directory.appendingPathComponent("roomring-py-\(tag).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let stdout = try FileHandle(forWritingTo: out)
        let stderr = try FileHandle(forWritingTo: err)
        // ChildProcess, not Foundation's Process: see ChildProcess for the crash that avoids.
        let process = try ChildProcess(executable: python, arguments: arguments,
                                       stdout: .descriptor(stdout.fileDescriptor),
                                       stderr: .descriptor(stderr.fileDescriptor))
        var timedOut = false
        var status = await process.waitForExit(timeout: timeout)
        if status == nil {
            timedOut = true
            status = await process.terminate(grace: .milliseconds(500))
        }
        try? stdout.close()
        try? stderr.close()
        let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        return (status ?? -1, output, errors, timedOut)
    }

    /// Whether `import websockets` works; prints why not.
    static func websocketsAvailable() async -> Bool {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            print("skipping: \(python) not found (install python3 and python3-websockets)")
            return false
        }
        guard let probe = try? await run(["-c", "import websockets"], timeout: .seconds(20)), probe.status == 0 else {
            print("skipping: \(python) cannot import websockets (apt-get install python3-websockets)")
            return false
        }
        return true
    }

    @Test(arguments: TestModes.all) func pythonWebsocketsClient(mode: ScalingMode) async throws {
        guard await Self.websocketsAvailable() else { return }
        let maxMessageBytes = 4096
        try await TestShard.with(mode: mode, configure: { $0.maxMessageBytes = maxMessageBytes }) { shard in
            let script = FileManager.default.temporaryDirectory
                .appendingPathComponent("roomring-client-\(UUID().uuidString).py")
            try Self.script.write(to: script, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: script) }
            let result = try await Self.run(
                [script.path, "ws://127.0.0.1:\(shard.port)", "s1", "1", String(maxMessageBytes)],
                timeout: .seconds(30))
            #expect(!result.timedOut, "python client timed out; stderr: \(result.stderr)")
            #expect(result.status == 0, "exit \(result.status)\nstdout: \(result.stdout)\nstderr: \(result.stderr)")
            let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
            let summary = try #require(
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "no JSON summary; stdout: \(result.stdout) stderr: \(result.stderr)")
            #expect(summary["ok"] as? Bool == true)
            #expect((summary["failures"] as? [Any])?.isEmpty == true, "\(summary["failures"] ?? "-")")
            #expect(summary["members"] as? Int == 12)
            #expect(summary["chats_received"] as? Int == 12 * 12)
            #expect(summary["acks_received"] as? Int == 12 * 3)
            #expect(summary["replayed"] as? Int == 3)
            #expect(summary["error_code"] as? String == "bad_json")
            #expect(summary["close_single"] as? Int == 1009)
            #expect(summary["close_fragmented"] as? Int == 1009)

            // Cross-check from the Swift side: room 0 holds 12 chats, 3 sent during the resume, 1 after the error.
            let check = try await shard.join("py-room-0", name: "checker", since: 0)
            let hello = try await check.hello()
            #expect(hello.seq == 16 && hello.resumed)
            var seqs: [UInt64] = []
            for _ in 0..<16 { seqs.append(try await check.chat().seq) }
            #expect(seqs == Array(1...16))
            await check.close()
        }
    }

    static let script = #"""
    import asyncio, json, sys
    import websockets

    BASE, SHARD, EPOCH, MAX = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ROOMS, MEMBERS, PER_MEMBER = 3, 4, 3
    failures = []
    summary = {"members": 0, "chats_received": 0, "acks_received": 0, "replayed": 0}

    def check(cond, what):
        if not cond:
            failures.append(what)

    async def recv_json(ws, timeout=5.0):
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))

    async def open_member(room, name, client, since=None):
        uri = f"{BASE}/rooms/{room}?name={name}&client={client}"
        if since is not None:
            uri += f"&since={since}"
        ws = await websockets.connect(uri, ping_interval=None, open_timeout=10, close_timeout=5)
        hello = await recv_json(ws)
        check(hello.get("type") == "hello", f"{name}: first message {hello}")
        return ws, hello.get("payload", {})

    async def collect(ws, chats, acks, timeout=10.0):
        """Reads until `chats` chats and `acks` acks arrived, then 0.3 s more to catch extras."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        got_chats, got_acks, other = [], [], []
        while len(got_chats) < chats or len(got_acks) < acks:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                m = await recv_json(ws, left)
            except asyncio.TimeoutError:
                break
            kind = m.get("type")
            (got_chats if kind == "chat" else got_acks if kind == "ack" else other).append(m.get("payload", m))
        try:
            other.append(await recv_json(ws, 0.3))
        except asyncio.TimeoutError:
            pass
        return got_chats, got_acks, other

    def text(room, name, k):
        return f"{room}|{name}|{k}|κόσμε 🎉"

    async def rooms_case():
        rooms = [f"py-room-{r}" for r in range(ROOMS)]
        members = {}
        for room in rooms:
            for i in range(MEMBERS):
                name = f"{room}-m{i}"
                ws, hello = await open_member(room, name, f"c-{name}")
                want = {"shard": SHARD, "room": room, "seq": 0, "epoch": EPOCH, "resumed": False}
                check(hello == want, f"{name}: hello {hello} != {want}")
                members[(room, i)] = ws
                summary["members"] += 1

        async def send_all(room, i):
            name = f"{room}-m{i}"
            for k in range(PER_MEMBER):
                msg = {"type": "chat", "payload": {"message": text(room, name, k)}, "id": f"{name}-{k}"}
                await members[(room, i)].send(json.dumps(msg, ensure_ascii=False))
        await asyncio.gather(*(send_all(room, i) for (room, i) in members))

        results = await asyncio.gather(*(collect(ws, MEMBERS * PER_MEMBER, PER_MEMBER) for ws in members.values()))
        for ((room, i), (chats, acks, other)) in zip(members.keys(), results):
            name = f"{room}-m{i}"
            summary["chats_received"] += len(chats)
            summary["acks_received"] += len(acks)
            expected = {text(room, f"{room}-m{j}", k) for j in range(MEMBERS) for k in range(PER_MEMBER)}
            messages = [c.get("message") for c in chats]
            check(len(messages) == len(set(messages)), f"{name}: duplicate chats")
            check(set(messages) == expected, f"{name}: chats {sorted(set(messages) ^ expected)[:4]} differ")
            check([c.get("seq") for c in chats] == list(range(1, MEMBERS * PER_MEMBER + 1)),
                  f"{name}: seqs {[c.get('seq') for c in chats]}")
            for c in chats:
                check(c.get("message", "").startswith(room + "|"), f"{name}: foreign chat {c}")
                check(c.get("from") == c.get("message", "").split("|")[1], f"{name}: from {c}")
                check(isinstance(c.get("ts"), int), f"{name}: ts {c}")
            by_text = {c.get("message"): c.get("seq") for c in chats}
            check(sorted(a.get("id") for a in acks) == [f"{name}-{k}" for k in range(PER_MEMBER)],
                  f"{name}: acks {acks}")
            for a in acks:
                k = int(a.get("id", "x-0").rsplit("-", 1)[1])
                check(by_text.get(text(room, name, k)) == a.get("seq"), f"{name}: ack {a} does not match its chat")
            check(other == [], f"{name}: unexpected {other}")
        return rooms, members

    async def resume_case(room, members):
        gone = members[(room, 0)]
        await gone.close()
        sent = []
        for i, n in ((1, 2), (2, 1)):
            name = f"{room}-m{i}"
            for k in range(n):
                t = f"{room}|{name}|late{k}"
                sent.append(t)
                await members[(room, i)].send(json.dumps({"type": "chat", "payload": {"message": t},
                                                          "id": f"{name}-late{k}"}))
        for i in (1, 2, 3):
            await collect(members[(room, i)], 3, {1: 2, 2: 1, 3: 0}[i])
        ws, hello = await open_member(room, f"{room}-m0", f"c-{room}-m0", since=12)
        want = {"shard": SHARD, "room": room, "seq": 15, "epoch": EPOCH, "resumed": True}
        check(hello == want, f"resume: hello {hello} != {want}")
        chats, acks, other = await collect(ws, 3, 0)
        summary["replayed"] = len(chats)
        check([c.get("seq") for c in chats] == [13, 14, 15], f"resume: seqs {chats}")
        check(sorted(c.get("message") for c in chats) == sorted(sent), f"resume: messages {chats}")
        check(acks == [] and other == [], f"resume: unexpected {acks} {other}")
        members[(room, 0)] = ws
        return ws

    async def malformed_case(ws, room, members):
        await ws.send('{"type":"chat","payload":')
        reply = await recv_json(ws)
        check(reply.get("type") == "error", f"malformed: reply {reply}")
        summary["error_code"] = reply.get("payload", {}).get("code")
        await ws.send(json.dumps({"type": "chat", "payload": {"message": "after error"}, "id": "after"}))
        chats, acks, other = await collect(ws, 1, 1)
        check([a.get("id") for a in acks] == ["after"] and [c.get("message") for c in chats] == ["after error"],
              f"malformed: connection did not keep working: {chats} {acks} {other}")

    async def too_big(fragmented):
        ws, _ = await open_member("py-big", "big", "c-big-" + str(fragmented))
        body = "x" * (MAX + 100)
        try:
            if fragmented:
                third = len(body) // 3 + 1
                await ws.send([body[:third], body[third:2 * third], body[2 * third:]])
            else:
                await ws.send(body)
            await asyncio.wait_for(ws.recv(), 5)
            failures.append(f"too big ({fragmented}): no close")
            return None
        except websockets.exceptions.ConnectionClosed as e:
            rcvd = getattr(e, "rcvd", None)
            return rcvd.code if rcvd is not None else getattr(e, "code", None)
        except asyncio.TimeoutError:
            failures.append(f"too big ({fragmented}): timed out")
            return None

    async def main():
        rooms, members = await rooms_case()
        ws = await resume_case(rooms[0], members)
        await malformed_case(ws, rooms[0], members)
        summary["close_single"] = await too_big(False)
        summary["close_fragmented"] = await too_big(True)
        check(summary["close_single"] == 1009, f"single oversize frame: close {summary['close_single']}")
        check(summary["close_fragmented"] == 1009, f"fragmented oversize: close {summary['close_fragmented']}")
        # The shard still serves after those failures.
        ws, hello = await open_member("py-big", "late", "c-late")
        check(hello.get("room") == "py-big", f"after oversize: hello {hello}")
        await ws.close()
        for m in members.values():
            await m.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 25))
    except Exception as e:
        failures.append(f"exception: {type(e).__name__}: {e}")
    summary["failures"] = failures
    summary["ok"] = not failures
    print(json.dumps(summary, ensure_ascii=False))
    sys.exit(0 if not failures else 1)
    """#
}
