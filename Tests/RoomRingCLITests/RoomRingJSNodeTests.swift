import Foundation
import RoomRingClient
import RoomRingSpawn
import Testing

/// roomring.js outside the browser: Node (`/usr/bin/node`) imports the module exactly as the shard serves it and
/// uses Debian's `node-ws` as its WebSocket, against `roomring up`. This pins down what a browser test cannot
/// force: a message sent while the connection is down waits in the outbox and is acknowledged once, on the new
/// shard.
@Suite(.serialized) struct RoomRingJSNodeTests {
    static let node = "/usr/bin/node"
    static let ws = "/usr/share/nodejs/ws"

    static func available() -> Bool {
        guard FileManager.default.isExecutableFile(atPath: node) else {
            print("skipping: \(node) not found (apt-get install nodejs)")
            return false
        }
        guard FileManager.default.fileExists(atPath: ws + "/package.json") else {
            print("skipping: \(ws) not found (apt-get install node-ws)")
            return false
        }
        return true
    }

    @Test func outboxSurvivesADrainAndPureHelpersBehave() async throws {
        guard Self.available() else { return }
        try await BrowserTests.withFleet(shards: 2) { ports, _ in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-js-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            // The module as served through the proxy, not the source file.
            let module = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.proxy, path: "/roomring.js")
            #expect(module.status == 200)
            try Data(module.body).write(to: directory.appendingPathComponent("roomring.mjs"))
            let script = directory.appendingPathComponent("check.mjs")
            try Self.script.write(to: script, atomically: true, encoding: .utf8)

            let output = try CapturedOutput()
            let process = try ChildProcess(executable: Self.node,
                                           arguments: [script.path, String(ports.proxy), String(ports.admin), BrowserTests.token],
                                           stdout: .descriptor(output.writeEnd), stderr: .descriptor(output.writeEnd))
            output.childStarted()
            let status = await process.waitForExit(timeout: .seconds(45))
            process.signal(SIGKILL)
            let text = output.text
            #expect(status == 0, "node check failed:\n\(text)")
            #expect(text.contains("ok: outbox resent across the drain"), "\(text)")
        }
    }

    static let script = #"""
        import { createRequire } from "node:module";
        import assert from "node:assert/strict";
        const WebSocket = createRequire(import.meta.url)("/usr/share/nodejs/ws");
        const { connect, backoffDelay, roomURL, randomClientId } = await import(new URL("./roomring.mjs", import.meta.url));
        const [proxyPort, adminPort, token] = process.argv.slice(2);
        const within = (promise, what, ms = 20000) => Promise.race([promise, new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref())]);
        const until = async (what, test, ms = 20000) => {
          const end = Date.now() + ms;
          while (!test()) {
            if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        };

        // Pure helpers.
        assert.equal(backoffDelay(1, { random: () => 1 }), 200);
        assert.equal(backoffDelay(3, { random: () => 1 }), 800);
        assert.equal(backoffDelay(30, { random: () => 1 }), 5000);
        assert.equal(backoffDelay(30, { random: () => 0 }), 0);
        assert.equal(backoffDelay(9, { random: () => 1, quick: true }), 250);
        const url = new URL(roomURL("ws://h:1/rooms/x?name=old&since=3", { name: "b c", client: "c-1", since: null }));
        assert.equal(url.searchParams.get("name"), "b c");
        assert.equal(url.searchParams.get("client"), "c-1");
        assert.equal(url.searchParams.has("since"), false);
        assert.equal(new URL(roomURL("ws://h:1/rooms/x", { since: 41 })).searchParams.get("since"), "41");
        assert.match(randomClientId(), /^c-[0-9a-f]{16}$/);

        // Live: connect through the proxy, send, drain the room's shard, send while disconnected.
        const room = `js-${Date.now().toString(36)}`;
        const seen = [];
        const states = [];
        let queued = null;
        const client = connect(`ws://127.0.0.1:${proxyPort}/rooms/${room}`, {
          name: "node", WebSocket, backoffBase: 50,
          onMessage: (m) => seen.push(m),
          onState: (s) => {
            states.push(s);
            // Sent with no socket: these must wait in the outbox and go out after the resume.
            if (s.state === "reconnecting" && !queued) queued = [client.send("during 1"), client.send("during 2")];
          },
        });
        await until("connected", () => client.state.state === "connected");
        const owner = client.state.shard;
        assert.equal(await within(client.send("before"), "ack of before"), 1);
        const drain = await fetch(`http://127.0.0.1:${adminPort}/ring/drain`, { method: "POST",
          headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ id: owner }) });
        assert.equal(drain.status, 200, await drain.text());
        await until("a reconnect", () => queued !== null);
        assert.ok(client.pending >= 2, "the messages sent while down wait in the outbox");
        assert.deepEqual(await within(Promise.all(queued), "acks of the queued messages"), [2, 3]);
        assert.equal(await within(client.send("after"), "ack of after"), 4);
        await until("every message", () => seen.length === 4);
        assert.deepEqual(seen.map((m) => m.seq), [1, 2, 3, 4]);
        assert.deepEqual(seen.map((m) => m.message), ["before", "during 1", "during 2", "after"]);
        assert.equal(client.pending, 0);
        const last = states.filter((s) => s.state === "connected").at(-1);
        assert.notEqual(last.shard, owner, "moved off the drained shard");
        assert.equal(last.resumed, true);

        // close(): unacknowledged sends reject, the state says closed, sends after close reject.
        client.close();
        assert.equal(client.state.state, "closed");
        await assert.rejects(client.send("late"));
        console.log(`ok: outbox resent across the drain (${owner} -> ${last.shard}),`,
          states.map((s) => s.state).join(" → "));
        process.exit(0);
        """#
}
