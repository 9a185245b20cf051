import Foundation
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// Plain HTTP on the client port (health, metrics, demo page, handshake refusals) and the admin API.
@Suite(.serialized) struct ShardHTTPTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    /// An upgrade request written by hand, so version and key can be wrong or missing.
    static func rawUpgrade(_ shard: ShardServer, path: String, version: String? = "13", key: String? = key)
        async throws -> HTTPClient.Response
    {
        // `close` with `Upgrade` so a refusal ends the connection and the exchange returns at once.
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(shard.port)\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade, close\r\n"
        if let version { head += "Sec-WebSocket-Version: \(version)\r\n" }
        if let key { head += "Sec-WebSocket-Key: \(key)\r\n" }
        head += "\r\n"
        return try HTTPClient.parse(try await HTTPClient.exchange(host: "127.0.0.1", port: shard.port,
                                                                  send: Array(head.utf8), timeout: .seconds(3)))
    }

    /// The refusal of a WebSocket handshake to `path` (fails the test when it is accepted).
    static func refusal(_ shard: ShardServer, path: String) async throws -> WebSocketConnection.Refused {
        do {
            let connection = try await WebSocketConnection.connect(host: "127.0.0.1", port: shard.port, path: path)
            await connection.close()
        } catch let refused as WebSocketConnection.Refused {
            return refused
        }
        throw TestFailure("the upgrade to \(path) was accepted")
    }

    static func twoShardRing(epoch: UInt64 = 1) -> RingDocument {
        RingDocument(epoch: epoch, shards: [.init(id: "s1", address: "127.0.0.1:1", admin: "127.0.0.1:1"),
                                            .init(id: "s2", address: "127.0.0.1:2", admin: "127.0.0.1:2")])
    }

    @Test(.timeLimit(.minutes(1)))
    func healthReadinessMetricsAndDemoPage() async throws {
        try await TestShard.with { shard in
            let health = try await shard.http("GET", "/healthz")
            #expect(health.status == 200 && health.text.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
            #expect(try await shard.http("GET", "/readyz").status == 200)
            let metrics = try await shard.http("GET", "/metrics")
            #expect(metrics.status == 200 && metrics.text.contains("roomring_shard_connections"))
            let page = try await shard.http("GET", "/")
            #expect(page.status == 200 && page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(page.text.lowercased().contains("<html"))
            let missing = try await shard.http("GET", "/nope")
            #expect(missing.status == 404 && missing.header("Content-Type") == "application/json")
            #expect(ErrorBody.code(of: missing) == "not_found")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func badHandshakesAreRefusedWithTheDocumentedStatus() async throws {
        try await TestShard.with { shard in
            let plain = try await shard.http("GET", "/rooms/lobby")
            #expect(plain.status == 426 && plain.header("Sec-WebSocket-Version") == "13")
            #expect(ErrorBody.code(of: plain) == "upgrade_required")

            let oldVersion = try await Self.rawUpgrade(shard, path: "/rooms/lobby", version: "8")
            #expect(oldVersion.status == 426 && oldVersion.header("Sec-WebSocket-Version") == "13")
            #expect(ErrorBody.code(of: oldVersion) == "unsupported_version")

            let noKey = try await Self.rawUpgrade(shard, path: "/rooms/lobby", key: nil)
            #expect(noKey.status == 400 && noKey.header("Sec-WebSocket-Version") == "13")

            let slash = try await Self.rawUpgrade(shard, path: "/rooms/bad%2Fid")
            #expect(slash.status == 400)
            #expect(try await Self.refusal(shard, path: "/rooms/bad%2Fid").status == 400)
            let long = String(repeating: "r", count: 129)
            #expect(try await Self.refusal(shard, path: "/rooms/\(long)").status == 400)
            // The longest valid id is accepted, so the 400s above are about the id.
            let longest = try await shard.join(String(repeating: "r", count: 128))
            #expect(try await longest.hello().room.count == 128)

            // None of this disturbed the shard.
            let ok = try await shard.join("lobby")
            #expect(try await ok.hello().room == "lobby")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func roomOwnedByAnotherShardIsMisdirected() async throws {
        let ring = Self.twoShardRing(epoch: 7)
        try await TestShard.with(ring: ring) { shard in
            let theirs = room(ownedBy: "s2", in: ring)
            let refused = try await Self.refusal(shard, path: "/rooms/\(theirs)?name=x")
            #expect(refused.status == 421 && refused.header("RoomRing-Epoch") == "7")
            let ours = room(ownedBy: "s1", in: ring)
            #expect(try await shard.join(ours).hello().epoch == 7)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func adminRingNeedsTheToken() async throws {
        let ring = Self.twoShardRing(epoch: 3)
        try await TestShard.with(ring: ring) { shard in
            let anonymous = try await shard.admin("GET", "/ring", token: nil)
            #expect(anonymous.status == 401 && ErrorBody.code(of: anonymous) == "unauthorized")
            #expect(try await shard.admin("GET", "/ring", token: "wrong-token").status == 401)
            #expect(try await shard.admin("GET", "/ring", token: "test-token-and-more").status == 401)
            let put = try await shard.admin("PUT", "/ring", body: Array(Self.twoShardRing(epoch: 9).encoded()),
                                            token: nil)
            #expect(put.status == 401)
            let allowed = try await shard.admin("GET", "/ring")
            #expect(allowed.status == 200)
            #expect(try RingDocument.decode(allowed.body) == ring)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func putRingWithAHigherEpochTakesEffectForNewConnections() async throws {
        try await TestShard.with { shard in
            let next = Self.twoShardRing(epoch: 2)
            let lost = room(ownedBy: "s2", in: next)
            let kept = room(ownedBy: "s1", in: next)
            // (No member in `lost` yet: a live room would be handed off to s2, which does not exist here.)
            #expect(try await shard.join(kept).hello().epoch == 1)

            let put = try await shard.admin("PUT", "/ring", body: Array(next.encoded()))
            #expect(put.status == 200)
            let current = try await shard.admin("GET", "/ring")
            #expect(try RingDocument.decode(current.body) == next)
            #expect(try await shard.rooms().epoch == 2)

            let refused = try await Self.refusal(shard, path: "/rooms/\(lost)")
            #expect(refused.status == 421 && refused.header("RoomRing-Epoch") == "2")
            #expect(try await shard.join(kept).hello().epoch == 2)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func putRingRefusesStaleInvalidAndOversizedRings() async throws {
        try await TestShard.with(ring: TestShard.soloRing(epoch: 5)) { shard in
            for epoch: UInt64 in [5, 4] {
                let stale = try await shard.admin("PUT", "/ring", body: Array(Self.twoShardRing(epoch: epoch).encoded()))
                #expect(stale.status == 409 && ErrorBody.code(of: stale) == "stale_epoch", "epoch \(epoch)")
            }
            let garbage = try await shard.admin("PUT", "/ring", body: Array(#"{"epoch": 6, "shards": ["#.utf8))
            #expect(garbage.status == 400 && ErrorBody.code(of: garbage) == "malformed_json")
            var idle = Self.twoShardRing(epoch: 6)
            for i in idle.shards.indices { idle.shards[i].state = .draining }
            let noActive = try await shard.admin("PUT", "/ring", body: Array(idle.encoded()))
            #expect(noActive.status == 400 && ErrorBody.code(of: noActive) == "no_active_shard")

            let huge = [UInt8](repeating: UInt8(ascii: " "), count: (4 << 20) + 1)
            let tooBig = try await HTTPClient.request("PUT", host: "127.0.0.1", port: shard.adminPort, path: "/ring",
                                                      headers: [("Authorization", "Bearer test-token")], body: huge,
                                                      timeout: .seconds(20))
            #expect(tooBig.status == 413)

            // None of them replaced the ring.
            #expect(try RingDocument.decode(try await shard.admin("GET", "/ring").body) == TestShard.soloRing(epoch: 5))
            #expect(try await shard.join("anything").hello().epoch == 5)
        }
    }
}
