import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// What the proxy answers itself, and that a bad client never disturbs the next one.
    @Suite struct ErrorMatrix {
        /// Sends `request` through the proxy and expects an answer with `status` (and the connection closed after).
        func expectAnswer(_ fleet: TestFleet, _ request: [UInt8], status: Int, code: String? = nil,
                          sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let (response, ended, bytes) = try await RawClient.exchange(port: fleet.proxy.port, request)
            #expect(response?.status == status, "got \(String(decoding: bytes.prefix(200), as: UTF8.self))",
                    sourceLocation: sourceLocation)
            #expect(ended, "the proxy kept the connection open after answering", sourceLocation: sourceLocation)
            if let code {
                #expect(response?.text.contains("\"\(code)\"") == true, "body: \(response?.text ?? "")",
                        sourceLocation: sourceLocation)
            }
            try await fleet.expectWorkingRoundTrip(sourceLocation: sourceLocation)
        }

        @Test(.timeLimit(.minutes(1)))
        func malformedHeadsGet400() async throws {
            try await TestFleet.with { fleet in
                try await expectAnswer(fleet, Array("hello world\r\n\r\n".utf8), status: 400)
                try await expectAnswer(fleet, Array("GET /rooms/x HTTP/1.1\nHost: a\n\n".utf8), status: 400,
                                       code: "bare_lf")
                try await expectAnswer(fleet, Array("GET /rooms/x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n".utf8),
                                       status: 400)
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func headOver8KiBGets431() async throws {
            try await TestFleet.with { fleet in
                let big = "GET /rooms/big HTTP/1.1\r\nHost: a\r\nX-Filler: \(String(repeating: "a", count: 9000))\r\n\r\n"
                try await expectAnswer(fleet, Array(big.utf8), status: 431)
                // Just under the limit is still routed (the shard answers 426: not an upgrade).
                let fits = "GET /rooms/big HTTP/1.1\r\nHost: a\r\nX-Filler: \(String(repeating: "a", count: 7000))\r\n\r\n"
                try await expectAnswer(fleet, Array(fits.utf8), status: 426)
            }
        }

        /// A client still sending a head far over the limit (a megabyte) when the proxy answers reads the whole
        /// `431`, and the proxy goes on serving. (The proxy closes with the rest unread, so the kernel resets the
        /// connection; a Linux client still reads what arrived before the reset.)
        @Test(.timeLimit(.minutes(1)))
        func aClientStillSendingReadsTheWholeAnswer() async throws {
            try await TestFleet.with { fleet in
                for _ in 0..<20 {
                    let endless = Array("GET /rooms/big HTTP/1.1\r\nHost: a\r\nX-Filler: ".utf8)
                        + [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
                    let (response, _, bytes) = try await RawClient.exchange(port: fleet.proxy.port, endless)
                    #expect(response?.status == 431, "got \(bytes.count) bytes: \(String(decoding: bytes.prefix(120), as: UTF8.self))")
                }
                try await fleet.expectWorkingRoundTrip()
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func slowHeadGets408AfterTheHeadTimeout() async throws {
            try await TestFleet.with(proxy: { $0.headTimeout = 0.3 }) { fleet in
                let client = try await RawClient.connect(port: fleet.proxy.port)
                let start = ContinuousClock.now
                try await client.send("GET /rooms/slow HTTP/1.1\r\nHost: a\r\nX-Partial: ")
                let (bytes, ended) = await client.readToEnd(timeout: .seconds(5))
                let elapsed = ContinuousClock.now - start
                await client.close()
                #expect(try HTTPClient.parse(bytes).status == 408)
                #expect(ended)
                // The upper bound only catches a missing timer; a loaded machine can add seconds.
                #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(3), "answered after \(elapsed)")
                try await fleet.expectWorkingRoundTrip()
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func invalidRoomIDGets400() async throws {
            try await TestFleet.with { fleet in
                try await expectAnswer(fleet, Array(RawClient.upgradeRequest("/rooms/a%2Fb").utf8), status: 400,
                                       code: "invalid_room")
                try await expectAnswer(fleet, Array(RawClient.upgradeRequest("/rooms/").utf8), status: 400)
                do {
                    _ = try await fleet.join("a%2Fb")
                    Issue.record("a WebSocket to /rooms/a%2Fb was accepted")
                } catch let refused as WebSocketConnection.Refused {
                    #expect(refused.status == 400)
                }
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func tlsClientHelloIsClosedWithoutAnHTTPAnswer() async throws {
            try await TestFleet.with { fleet in
                // The start of a TLS 1.0 record carrying a ClientHello.
                let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03]
                    + [UInt8](repeating: 0x42, count: 32)
                let start = ContinuousClock.now
                let (_, ended, bytes) = try await RawClient.exchange(port: fleet.proxy.port, hello)
                #expect(ended && ContinuousClock.now - start < .seconds(2), "the proxy did not close")
                #expect(bytes.isEmpty, "answered \(String(decoding: bytes.prefix(80), as: UTF8.self))")
                try await fleet.expectWorkingRoundTrip()
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func unreachableOwnerGets503WithRetryAfterAndNoFallback() async throws {
            try await TestFleet.with(deadShard: true) { fleet in
                let room = TestFleet.room(ownedBy: "dead", in: fleet.ring)
                func expect503() async throws {
                    do {
                        let member = try await fleet.join(room)
                        Issue.record("room \(room) of an unreachable shard was served: \(try await member.hello())")
                        await member.close()
                    } catch let refused as WebSocketConnection.Refused {
                        // Another shard would have answered 421 (its ring says `dead` owns the room) or 101.
                        #expect(refused.status == 503)
                        #expect(refused.header("Retry-After") != nil)
                        #expect(refused.body.contains("shard_unreachable"), "\(refused.body)")
                    }
                }
                try await expect503()
                // Still no fallback once health checks have marked the owner down.
                #expect(await eventually(within: .seconds(3)) {
                    (try? await fleet.shardsReport().shard("dead")?.healthy) == false
                })
                try await expect503()
                let live = TestFleet.room(ownedBy: "s2", in: fleet.ring)
                #expect(try await fleet.expectWorkingRoundTrip(live).shard == "s2")
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func pathsWithoutARoomGoToEveryShardInTurn() async throws {
            try await TestFleet.with { fleet in
                let health = try await fleet.get("/healthz")
                #expect(health.status == 200 && health.text == "ok\n")
                // Shard metrics carry a shard label: six requests in a row must visit all three shards, twice each.
                var counts: [String: Int] = [:]
                for _ in 0..<6 {
                    let response = try await fleet.get("/metrics")
                    #expect(response.status == 200)
                    let shard = ["s1", "s2", "s3"].first { response.text.contains("shard=\"\($0)\"") }
                    counts[shard ?? "none", default: 0] += 1
                }
                #expect(counts == ["s1": 2, "s2": 2, "s3": 2])
            }
        }
    }
}
