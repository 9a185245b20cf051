import Foundation
import RoomRingClient
import RoomRingCore
import Testing

// Nested in the serialized `UpCommandTests`: two fleets of processes never run at once on a small machine, and
// one fleet's client sockets cannot take the ports another is about to listen on.
extension UpCommandTests {
    /// `roomring ring status | add | drain | remove` against a fleet of real processes (`roomring up` plus a shard
    /// started by hand, as an operator adds capacity).
    @Suite(.serialized) struct RingCommandTests {
        static let token = "ring-test-token"

        /// Runs `roomring ring ...` to completion; returns its exit status and output.
        static func ring(_ arguments: [String], adminPort: Int, token: String? = token) async throws
            -> (status: Int32?, text: String)
        {
            var flags = ["--proxy-admin", "http://127.0.0.1:\(adminPort)"]
            if let token { flags += ["--admin-token", token] }
            let process = try RoomRingProcess(["ring"] + arguments + flags, environment: ["ROOMRING_ADMIN_TOKEN": ""])
            let status = await process.stop(0, timeout: .seconds(60))
            // The pipe's reader may still hold the last output after the exit: wait until it stops growing.
            var text = ""
            for _ in 0..<40 {
                try await Task.sleep(for: .milliseconds(50))
                if !text.isEmpty, process.text == text { break }
                text = process.text
            }
            return (status, text)
        }

        static func proxyRing(adminPort: Int) async throws -> RingDocument {
            let response = try await HTTPClient.request("GET", host: "127.0.0.1", port: adminPort, path: "/ring",
                                                        headers: [("Authorization", "Bearer \(token)")])
            return try RingDocument.decode(response.body)
        }

        static func roomCount(adminAddress: String) async throws -> Int {
            let admin = HostPort(adminAddress)!
            let response = try await HTTPClient.request("GET", host: admin.host, port: admin.port, path: "/rooms",
                                                        headers: [("Authorization", "Bearer \(token)")])
            struct Reply: Decodable { var rooms: [FleetAdmin.Room] }
            return try JSONDecoder().decode(Reply.self, from: Data(response.body)).rooms.count
        }

        @Test(.timeLimit(.minutes(3)))
        func statusAddDrainRemoveAndTheirErrors() async throws {
            let ports = try UpCommandTests().fleetPorts(shards: 3)
            let up = try RoomRingProcess(["up", "--shards", "2", "--port", String(ports.proxy),
                                          "--admin-port", String(ports.admin),
                                          "--shard-base-port", String(ports.shardBase),
                                          "--shard-admin-base-port", String(ports.adminBase)],
                                         environment: ["ROOMRING_ADMIN_TOKEN": Self.token])
            var extra: RoomRingProcess?
            var members: [(room: String, connection: WebSocketConnection)] = []
            defer {
                for member in members { Task { await member.connection.close() } }
            }
            do {
                try await up.waitFor("Ctrl-C stops everything")
                guard let ringLine = up.text.split(separator: "\n").first(where: { $0.contains("ring file") }),
                    let ringPath = ringLine.split(separator: " ").last.map(String.init)
                else { throw ProcessFailure("no ring file in the banner:\n\(up.text)") }

                // Members in 16 rooms through the proxy, 6 of which s3 will own (ownership depends on ids only).
                let probe = HashRing(RingDocument(epoch: 2, shards: ["s1", "s2", "s3"].map {
                    .init(id: $0, address: "127.0.0.1:1", admin: "127.0.0.1:1")
                }))
                let toS3 = (0..<10_000).map { "ring-\($0)" }.filter { probe.owner(ofKey: $0)?.id == "s3" }.prefix(6)
                let stay = (0..<10_000).map { "ring-\($0)" }.filter { probe.owner(ofKey: $0)?.id != "s3" }.prefix(10)
                for room in toS3 + stay {
                    let connection = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports.proxy,
                                                                           path: "/rooms/\(room)?name=m")
                    guard case .hello = try await connection.nextMessage() else { throw ProcessFailure("no hello") }
                    members.append((room, connection))
                }

                let status = try await Self.ring(["status"], adminPort: ports.admin)
                #expect(status.status == 0, "\(status.text)")
                #expect(status.text.contains("ring epoch 1"), "\(status.text)")
                let rows = status.text.split(separator: "\n").filter { $0.contains("127.0.0.1:") }
                #expect(rows.count == 2 && rows.allSatisfy { $0.contains("active") && $0.contains("up") },
                        "\(status.text)")

                let badToken = try await Self.ring(["status"], adminPort: ports.admin, token: "wrong")
                #expect(badToken.status != 0 && badToken.text.contains("401"), "\(badToken.text)")

                // A third shard, started by hand with the same ring file (it is not listed, so it owns nothing).
                let s3 = "127.0.0.1:\(ports.shardBase + 2)"
                let s3Admin = "127.0.0.1:\(ports.adminBase + 2)"
                extra = try RoomRingProcess(["shard", "--id", "s3", "--ring", ringPath, "--port", s3,
                                             "--admin-port", s3Admin, "--event-loops", "1"],
                                            environment: ["ROOMRING_ADMIN_TOKEN": Self.token])
                try await extra?.waitFor("shard listening")

                let unknownAdmin = try await Self.ring(["add", "s3", s3, "--shard-admin", "127.0.0.1:1"],
                                                       adminPort: ports.admin)
                #expect(unknownAdmin.status != 0 && unknownAdmin.text.contains("does not answer"),
                        "\(unknownAdmin.text)")

                let dryRun = try await Self.ring(["add", "s3", s3, "--shard-admin", s3Admin, "--dry-run"],
                                                 adminPort: ports.admin)
                #expect(dryRun.status == 0, "\(dryRun.text)")
                let ring1 = try await Self.proxyRing(adminPort: ports.admin)
                var ring2 = ring1
                ring2.epoch = 2
                ring2.shards.append(.init(id: "s3", address: s3, admin: s3Admin))
                let moving = members.filter { HashRing(ring2).owner(ofKey: $0.room)?.id == "s3" }
                #expect(moving.map(\.room) == Array(toS3))
                let summary = "epoch 1 → 2: \(moving.count) of 16 rooms move (\(moving.count) members)"
                #expect(dryRun.text.contains(summary),
                        "\(dryRun.text)")
                #expect(dryRun.text.split(separator: "\n").filter { $0.contains(" → s3 ") }.count == moving.count)
                #expect(try await Self.proxyRing(adminPort: ports.admin).epoch == 1, "--dry-run changed the ring")

                let add = try await Self.ring(["add", "s3", s3, "--shard-admin", s3Admin], adminPort: ports.admin)
                #expect(add.status == 0, "\(add.text)")
                for id in ["s1", "s2", "s3"] {
                    #expect(add.text.contains("pushed epoch 2 to shard \(id)"), "\(add.text)")
                }
                #expect(add.text.contains("pushed epoch 2 to proxy"), "\(add.text)")
                #expect(try await Self.proxyRing(adminPort: ports.admin) == ring2)
                // Only the rooms that move onto s3 are closed, with 1012 "moved".
                for member in members {
                    let moves = moving.contains { $0.room == member.room }
                    let event = try? await member.connection.next(timeout: moves ? .seconds(5) : .milliseconds(100))
                    if moves {
                        #expect(event == .close(code: 1012, reason: "moved"),
                                "\(member.room): \(String(describing: event))")
                    } else {
                        #expect(event == nil || event == .ping([]),
                                "\(member.room) stayed: \(String(describing: event))")
                    }
                }

                let unknown = try await Self.ring(["drain", "s9"], adminPort: ports.admin)
                #expect(unknown.status != 0 && unknown.text.contains("s9"), "\(unknown.text)")

                let drain = try await Self.ring(["drain", "s1", "--wait", "--timeout", "30"], adminPort: ports.admin)
                #expect(drain.status == 0 && drain.text.contains("shard s1 holds no rooms"), "\(drain.text)")
                let s1Admin = ring1.shard(id: "s1")!.admin
                #expect(try await Self.roomCount(adminAddress: s1Admin) == 0)
                let after = try await Self.ring(["status"], adminPort: ports.admin)
                #expect(after.text.contains("ring epoch 3") && after.text.contains("draining"), "\(after.text)")

                let remove = try await Self.ring(["remove", "s1"], adminPort: ports.admin)
                #expect(remove.status == 0, "\(remove.text)")
                let ring4 = try await Self.proxyRing(adminPort: ports.admin)
                #expect(ring4.epoch == 4 && ring4.shard(id: "s1") == nil && ring4.shards.map(\.id) == ["s2", "s3"])

                // Someone pushed a newer ring straight to a shard: the next change is refused there, not forced.
                var ahead = ring4
                ahead.epoch = 50
                let s2Admin = HostPort(ring4.shard(id: "s2")!.admin)!
                let pushed = try await HTTPClient.request("PUT", host: s2Admin.host, port: s2Admin.port, path: "/ring",
                                                          headers: [("Authorization", "Bearer \(Self.token)")],
                                                          body: Array(ahead.encoded()))
                #expect(pushed.status == 200)
                let stale = try await Self.ring(["drain", "s3"], adminPort: ports.admin)
                #expect(stale.status != 0 && stale.text.contains("409") && stale.text.contains("stale_epoch"),
                        "\(stale.text)")
            } catch {
                _ = await extra?.stop()
                _ = await up.stop()
                throw error
            }
            #expect(await extra?.stop() != nil)
            #expect(await up.stop() != nil)
        }
    }
}
