import Foundation
import RoomRingClient
import RoomRingSpawn
import RoomRingCore
import Testing

extension UpCommandTests {
    /// The JSON lines of `text` (other lines, such as the banner, are skipped); every one must parse.
    func jsonLines(_ text: String) throws -> [[String: String]] {
        try text.split(separator: "\n").filter { $0.hasPrefix("{") }.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try #require(object as? [String: String], "not a flat JSON object: \(line)")
        }
    }

    /// Polls the output until a JSON line matches.
    func waitForLine(_ process: RoomRingProcess, timeout: Duration = .seconds(10),
                     where matches: ([String: String]) -> Bool) async throws -> [String: String] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = try jsonLines(process.text).first(where: matches) { return line }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessFailure("no matching log line within \(timeout):\n\(process.text)")
    }

    @Test func jsonLogsCarryTheRequestIDFromProxyToShard() async throws {
        let ports = try fleetPorts(shards: 1)
        let up = try RoomRingProcess(["up", "--shards", "1", "--port", String(ports.proxy),
                                      "--admin-port", String(ports.admin), "--shard-base-port", String(ports.shardBase),
                                      "--shard-admin-base-port", String(ports.adminBase),
                                      "--log-format", "json", "--log-level", "info"])
        defer { kill(up.process.processIdentifier, SIGKILL) }
        try await up.waitFor("Ctrl-C stops everything")

        // A request the proxy refuses (its head is rejected before the headers are read): logged with the status,
        // the code and an id the proxy made, which the answer also carries so the caller can quote it.
        let refused = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.proxy, path: "/rooms/bad%zz")
        #expect(refused.status == 400)
        let id = try #require(refused.header("X-Request-ID"))
        let proxyLine = try await waitForLine(up) { $0["request_id"] == id }
        #expect(proxyLine["status"] == "400" && proxyLine["code"] == "invalid_room" && proxyLine["level"] == "info")
        #expect(proxyLine["msg"] == "request answered by the proxy" && proxyLine["peer"] == "127.0.0.1")

        // A member dropped for an oversized message: logged by the shard with the id the proxy forwarded.
        let member = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports.proxy,
                                                           path: "/rooms/log-room?name=big",
                                                           headers: [("X-Request-ID", "trace-42")])
        guard case .hello = try await member.nextMessage() else { throw ProcessFailure("expected hello") }
        member.send(text: String(repeating: "x", count: 70_000))
        let shardLine = try await waitForLine(up) { $0["request_id"] == "trace-42" && $0["msg"] == "member closed" }
        #expect(shardLine["code"] == "1009" && shardLine["room"] == "log-room" && shardLine["shard"] == "s1")
        await member.close()

        // An id that could forge a log field is replaced by one the proxy makes.
        let forged = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.proxy, path: "/nowhere",
                                                  headers: [("X-Request-ID", "a\"b")])
        let replaced = try #require(forged.header("X-Request-ID"), "answer: \(forged.status) \(forged.text)")
        #expect(replaced != "a\"b" && RequestIDGenerator.sanitized(replaced) == replaced)

        _ = try jsonLines(up.text)  // every JSON line parses
        #expect(await up.stop(SIGTERM) != nil)
    }
}
