import Foundation
import RoomRingClient
import RoomRingCore
import Testing

/// What the browser pages load and call, over plain HTTP against `roomring up` (no browser needed).
@Suite(.serialized) struct DashboardAPITests {
    struct Fleet: Decodable {
        struct Shard: Decodable {
            var id, state: String
            var healthy: Bool
            var share: Double
            var roomCount, members: Int?
            var messagesIn: Double?
        }

        var epoch: UInt64
        var shards: [Shard]
        var arcs: [RingArc]
    }

    struct Change: Decodable {
        var epoch: UInt64
        var dryRun: Bool
        var log: [String]
    }

    @Test func pagesModuleFleetAndRingChanges() async throws {
        let token = BrowserTests.token
        try await BrowserTests.withFleet(shards: 2) { ports, _ in
            func admin(_ method: String, _ path: String, body: String = "", auth: Bool = true) async throws
                -> HTTPClient.Response
            {
                try await HTTPClient.request(method, host: "127.0.0.1", port: ports.admin, path: path,
                                             headers: auth ? [("Authorization", "Bearer \(token)")] : [],
                                             body: Array(body.utf8), timeout: .seconds(30))
            }

            // The chat page and its module come through the proxy.
            let module = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.proxy, path: "/roomring.js")
            #expect(module.status == 200 && module.header("Content-Type")?.hasPrefix("text/javascript") == true)
            #expect(module.text.contains("export function connect("))
            let page = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.proxy, path: "/")
            #expect(page.text.contains(#"from "/roomring.js""#))

            // The dashboard page needs no token; its data does.
            let dashboard = try await admin("GET", "/admin", auth: false)
            #expect(dashboard.status == 200 && dashboard.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(dashboard.header("Content-Security-Policy")?.contains("connect-src 'self'") == true)
            #expect(dashboard.text.range(of: #"(src|href)\s*=\s*["']?(https?:)?//|url\(|@import"#,
                                         options: .regularExpression) == nil,
                    "the dashboard must not load anything from elsewhere")
            #expect(try await admin("GET", "/fleet", auth: false).status == 401)
            #expect(try await admin("POST", "/ring/drain", body: #"{"id":"s1"}"#, auth: false).status == 401)
            #expect(try await admin("GET", "/ring/drain").status == 405)

            // Traffic, so the counters move.
            let member = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports.proxy,
                                                               path: "/rooms/api-room?name=a")
            _ = try await member.nextMessage()
            member.send(text: ClientMessage.chat(message: "counted", id: "c1").encoded())
            _ = try await member.nextMessage()

            var fleet = try JSONDecoder().decode(Fleet.self, from: Data(try await admin("GET", "/fleet").body))
            #expect(fleet.epoch == 1 && fleet.shards.map(\.id) == ["s1", "s2"])
            #expect(fleet.shards.allSatisfy { $0.healthy && $0.state == "active" && $0.roomCount != nil })
            #expect(fleet.shards.compactMap(\.members).reduce(0, +) == 1)
            #expect(fleet.shards.compactMap(\.messagesIn).reduce(0, +) >= 1)
            #expect(abs(fleet.shards.map(\.share).reduce(0, +) - 1) < 1e-9)
            Self.expectCoversTheCircle(fleet.arcs)
            await member.close()

            // Ring changes: refused politely when wrong, a dry run changes nothing, the real ones reach every shard.
            #expect(try await admin("POST", "/ring/drain", body: "not json").status == 400)
            #expect(try await admin("POST", "/ring/drain", body: #"{"id":"s9"}"#).status == 409)
            #expect(try await admin("POST", "/ring/add", body: #"{"id":"s3"}"#).status == 400)
            let dry = try await admin("POST", "/ring/drain", body: #"{"id":"s2","dryRun":true}"#)
            let dryReply = try JSONDecoder().decode(Change.self, from: Data(dry.body))
            #expect(dry.status == 200 && dryReply.dryRun && dryReply.epoch == 1)
            #expect(dryReply.log.first?.contains("epoch 1 → 2") == true, "\(dryReply.log)")

            for (action, body, epoch) in [("drain", #"{"id":"s2"}"#, 2), ("remove", #"{"id":"s2"}"#, 3),
                                          ("add", #"{"id":"s2","address":"127.0.0.1:\#(ports.shardBase + 1)","admin":"127.0.0.1:\#(ports.adminBase + 1)"}"#, 4)] {
                let response = try await admin("POST", "/ring/\(action)", body: body)
                #expect(response.status == 200, "\(action): \(response.text)")
                let reply = try JSONDecoder().decode(Change.self, from: Data(response.body))
                #expect(reply.epoch == UInt64(epoch) && reply.log.contains { $0.contains("pushed epoch \(epoch) to shard s1") })
                // The shards took it too, not only this proxy.
                let shardRing = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.adminBase,
                                                             path: "/ring",
                                                             headers: [("Authorization", "Bearer \(token)")])
                #expect(try RingDocument.decode(shardRing.body).epoch == UInt64(epoch))
            }
            fleet = try JSONDecoder().decode(Fleet.self, from: Data(try await admin("GET", "/fleet").body))
            #expect(fleet.epoch == 4 && fleet.shards.map(\.id) == ["s1", "s2"])
            #expect(Set(fleet.arcs.map(\.shard)) == ["s1", "s2"])
        }
    }

    /// Arcs in order, each shard's neighbours merged, from 0 to 1 without gaps or overlaps.
    static func expectCoversTheCircle(_ arcs: [RingArc]) {
        #expect(arcs.first?.start == 0 && arcs.last?.end == 1)
        for (a, b) in zip(arcs, arcs.dropFirst()) {
            #expect(a.end == b.start && a.shard != b.shard && a.start < a.end)
        }
    }
}
