import Foundation
import NIOCore
import RoomRingClient
import RoomRingCore
import RoomRingProxy
@testable import RoomRingShard
import Synchronization
import Testing

extension ProxyTests {
    /// The Swift ``RoomClient`` against real shards: outbox, resume, `resumed: false`, bounded backoff.
    @Suite struct RoomClientBehaviour {
        /// One shard on `port` (0 = any) with a ring that lists it at that port.
        static func shard(port: Int, id: String = "s1") async throws -> ShardServer {
            let address = "127.0.0.1:\(port)"
            let ring = RingDocument(epoch: 1, shards: [.init(id: id, address: address, admin: "127.0.0.1:1")])
            let configuration = ShardConfiguration(id: id, listen: HostPort(host: "127.0.0.1", port: port),
                                                   adminListen: HostPort(host: "127.0.0.1", port: 0),
                                                   adminToken: TestFleet.token, eventLoops: 1)
            return try await ShardServer.start(configuration: configuration, ring: ring,
                                               logger: TestFleet.quietLogger("test.client.shard"))
        }

        static func options(_ name: String, client: String? = nil) -> RoomClient.Options {
            var options = RoomClient.Options(name: name, backoffBase: .milliseconds(20), backoffMax: .milliseconds(200))
            if let client { options.clientID = client }
            return options
        }

        @Test(.timeLimit(.minutes(1)))
        func outboxIsResentUntilAcknowledged() async throws {
            let port = try await TestFleet.closedPort()
            let recorder = ClientRecorder(room: "outbox", index: 0)
            let client = recorder.client(port: port, options: Self.options("early"))
            await client.start()
            let send = Task { try await client.send("written while offline") }
            #expect(await eventually(within: .seconds(5)) { recorder.reconnects >= 2 })
            let waiting = await client.unacknowledged
            #expect(waiting == 1)

            let shard = try await Self.shard(port: port)
            let seq = try await send.value
            let left = await client.unacknowledged
            #expect(seq == 1 && left == 0)
            #expect(await eventually(within: .seconds(5)) { recorder.lastSeq == 1 })
            #expect(recorder.deliveries.map(\.text) == ["written while offline"])
            await client.close()
            await shard.shutdown()
        }

        @Test(.timeLimit(.minutes(1)))
        func lostHistoryIsReportedAsNotResumed() async throws {
            let first = try await Self.shard(port: 0)
            let port = first.port
            let recorder = ClientRecorder(room: "amnesia", index: 0)
            let client = recorder.client(port: port, options: Self.options("keeper"))
            await client.start()
            for i in 1...3 { #expect(try await client.send("before \(i)") == UInt64(i)) }
            #expect(recorder.states.contains(.connected(shard: "s1", seq: 0, resumed: true)))

            // The shard goes away and comes back empty (as after SIGKILL and restart): seq starts again, and the
            // client is told, never silently continued.
            await first.shutdown()
            let second = try await Self.shard(port: port)
            #expect(await eventually(within: .seconds(10)) {
                recorder.states.contains(.connected(shard: "s1", seq: 0, resumed: false))
            })
            #expect(try await client.send("after") == 1)
            #expect(await eventually(within: .seconds(5)) { recorder.deliveries.count == 4 })
            #expect(recorder.deliveries.map(\.seq) == [1, 2, 3, 1])
            #expect(recorder.deliveries.last?.text == "after")
            await client.close()
            await second.shutdown()
        }

        @Test(.timeLimit(.minutes(1)))
        func resumeReplaysWhatWasMissedOnce() async throws {
            let first = try await Self.shard(port: 0)
            let recorder = ClientRecorder(room: "resume", index: 0)
            let client = recorder.client(port: first.port, options: Self.options("reader"))
            await client.start()
            #expect(try await client.send("one") == 1)
            #expect(await eventually(within: .seconds(5)) { recorder.lastSeq == 1 })

            // The reader is cut off by a 1012 (as in a move); another member writes meanwhile. The reader resumes
            // with since=1: it sees two and three once, whether replayed or live.
            await first.hub(closeAllWith: 1012)
            let writer = try await WebSocketConnection.connect(host: "127.0.0.1", port: first.port,
                                                               path: "/rooms/resume?name=writer")
            _ = try await writer.hello()
            writer.sendChat("two")
            writer.sendChat("three")
            #expect(await eventually(within: .seconds(10)) { recorder.lastSeq == 3 })
            #expect(recorder.deliveries.map(\.seq) == [1, 2, 3])
            #expect(recorder.deliveries.map(\.text) == ["one", "two", "three"])
            let connected = recorder.states.compactMap { state -> Bool? in
                if case .connected(_, _, let resumed) = state { return resumed }
                return nil
            }
            #expect(connected.count >= 2 && connected.allSatisfy { $0 }, "\(recorder.states)")
            await writer.close()
            await client.close()
            await first.shutdown()
        }

        /// The shard that owns the room is replaced by an empty one whose room is already past the client's seq
        /// when the client comes back: the shard itself cannot tell and says `resumed: true`; the client must not
        /// splice the new history onto the old one silently.
        @Test(.timeLimit(.minutes(1)))
        func aRestartedRoomAlreadyPastTheClientsSeqIsNotTakenForTheSameHistory() async throws {
            let old = try await Self.shard(port: 0)
            let fresh = try await Self.shard(port: 0)
            func ring(_ epoch: UInt64, _ shard: ShardServer) -> RingDocument {
                RingDocument(epoch: epoch, shards: [.init(id: "s1", address: "127.0.0.1:\(shard.port)",
                                                          admin: "127.0.0.1:\(shard.adminPort)")])
            }
            let proxy = try await ProxyServer.start(
                configuration: ProxyConfiguration(listen: HostPort(host: "127.0.0.1", port: 0),
                                                  adminListen: HostPort(host: "127.0.0.1", port: 0),
                                                  adminToken: TestFleet.token, healthInterval: 0.2, drainTimeout: 0.5),
                ring: ring(1, old), logger: TestFleet.quietLogger("test.proxy"))
            let recorder = ClientRecorder(room: "twice", index: 0)
            let client = recorder.client(port: proxy.port, options: Self.options("returning"))
            await client.start()
            for i in 1...3 { #expect(try await client.send("old \(i)") == UInt64(i)) }
            #expect(await eventually(within: .seconds(5)) { recorder.lastSeq == 3 })

            // Meanwhile the room starts over on the fresh shard and gets past seq 3.
            let writer = try await WebSocketConnection.connect(host: "127.0.0.1", port: fresh.port,
                                                               path: "/rooms/twice?name=writer")
            _ = try await writer.hello()
            for i in 1...5 { writer.sendChat("new \(i)") }
            for _ in 1...5 { _ = try await writer.chat() }
            let direct = try await WebSocketConnection.connect(host: "127.0.0.1", port: fresh.port,
                                                               path: "/rooms/twice?name=probe&since=3")
            #expect(try await direct.hello().resumed, "the shard cannot tell the histories apart (else: test moot)")
            await direct.close()

            let response = try await HTTPClient.request("PUT", host: "127.0.0.1", port: proxy.adminPort, path: "/ring",
                                                        headers: [("Authorization", "Bearer \(TestFleet.token)")],
                                                        body: Array(ring(2, fresh).encoded()))
            #expect(response.status == 200)
            await old.shutdown()
            #expect(await eventually(within: .seconds(10)) { recorder.connections >= 2 })
            #expect(recorder.states.last == .connected(shard: "s1", seq: 5, resumed: false), "\(recorder.states)")
            writer.sendChat("new 6")
            #expect(await eventually(within: .seconds(5)) { recorder.lastSeq == 6 })
            #expect(recorder.deliveries.map(\.text) == ["old 1", "old 2", "old 3", "new 6"])
            await writer.close()
            await client.close()
            await proxy.shutdown()
            await fresh.shutdown()
        }

        @Test(.timeLimit(.minutes(1)))
        func aNewSessionWithTheSameClientIDIsNotSwallowedAsDuplicates() async throws {
            let shard = try await Self.shard(port: 0)
            let first = RoomClient(host: "127.0.0.1", port: shard.port, room: RoomID("same")!,
                                   options: Self.options("a", client: "fixed-id"))
            await first.start()
            #expect(try await first.send("first session") == 1)
            await first.close()
            // `roomring chat --client fixed-id` run again: its messages are new, not resends of the first session's.
            let second = RoomClient(host: "127.0.0.1", port: shard.port, room: RoomID("same")!,
                                    options: Self.options("a", client: "fixed-id"))
            await second.start()
            #expect(try await second.send("second session") == 2)
            await second.close()
            await shard.shutdown()
        }

        @Test(.timeLimit(.minutes(1)))
        func backoffIsJitteredAndBounded() async throws {
            let port = try await TestFleet.closedPort()
            let recorder = ClientRecorder(room: "nowhere", index: 0)
            var options = Self.options("patient")
            options.backoffBase = .milliseconds(10)
            options.backoffMax = .milliseconds(80)
            let client = recorder.client(port: port, options: options)
            await client.start()
            #expect(await eventually(within: .seconds(10)) { recorder.reconnects >= 12 })
            await client.close()
            let waits = recorder.states.compactMap { state -> (Int, Duration)? in
                if case .reconnecting(let attempt, let delay, _) = state { return (attempt, delay) }
                return nil
            }
            #expect(waits.map(\.0) == Array(1...waits.count), "attempts count up while no connection succeeds")
            for (attempt, delay) in waits {
                let ceiling = min(Duration.milliseconds(80), .milliseconds(10) * (1 << min(attempt, 16)))
                #expect(delay >= .zero && delay <= ceiling, "attempt \(attempt) waited \(delay) > \(ceiling)")
            }
            #expect(Set(waits.map { $0.1 }).count > waits.count / 2, "delays are not jittered: \(waits)")
        }
    }
}

extension ShardServer {
    /// Closes every member with `code` while the shard keeps serving (as a move does).
    func hub(closeAllWith code: UInt16) async {
        await hub.closeAll(code: code, reason: "moved")
    }
}

/// Records what one ``RoomClient`` saw: deliveries, states and the seqs its sends were acknowledged with.
final class ClientRecorder: Sendable {
    struct Delivery: Sendable, Equatable {
        var seq: UInt64
        var text: String
    }

    struct Log: Sendable {
        var deliveries: [Delivery] = []
        var states: [RoomClient.State] = []
        var acked: [String: UInt64] = [:]
    }

    let room: String
    let name: String
    private let log = Mutex(Log())

    init(room: String, index: Int) {
        self.room = room
        self.name = "u\(index)"
    }

    func client(port: Int, options: RoomClient.Options? = nil) -> RoomClient {
        var options = options ?? RoomClient.Options(name: name, clientID: "c-\(name)",
                                                   backoffBase: .milliseconds(20), backoffMax: .milliseconds(500))
        options.name = name
        return RoomClient(host: "127.0.0.1", port: port, room: RoomID(room)!, options: options,
                          onMessage: { [self] chat in
                              self.log.withLock { $0.deliveries.append(.init(seq: chat.seq, text: chat.message)) }
                          },
                          onState: { [self] state in self.log.withLock { $0.states.append(state) } })
    }

    func acked(_ text: String, seq: UInt64) { log.withLock { $0.acked[text] = seq } }

    var deliveries: [Delivery] { log.withLock { $0.deliveries } }
    var states: [RoomClient.State] { log.withLock { $0.states } }
    var acknowledged: [String: UInt64] { log.withLock { $0.acked } }
    var lastSeq: UInt64 { log.withLock { $0.deliveries.last?.seq ?? 0 } }
    var connections: Int {
        log.withLock { $0.states.count { if case .connected = $0 { true } else { false } } }
    }
    var reconnects: Int {
        log.withLock { $0.states.count { if case .reconnecting = $0 { true } else { false } } }
    }
    var shards: [String] {
        log.withLock { $0.states.compactMap { if case .connected(let shard, _, _) = $0 { shard } else { nil } } }
    }

    /// What is wrong with this member's view: seqs must be exactly 1...`expectedLast` once each, and every message
    /// a peer (in the same room) had acknowledged must sit at its acknowledged seq.
    func problems(expectedLast: UInt64, peers: [ClientRecorder]) -> [String] {
        let seen = deliveries
        var problems: [String] = []
        if seen.map(\.seq) != Array(1...max(1, expectedLast)).prefix(Int(expectedLast)).map({ $0 }) {
            let seqs = seen.map(\.seq)
            problems.append("seqs are not 1...\(expectedLast) once each: \(seqs.count) seen, last \(seqs.last ?? 0)")
        }
        let bySeq = Dictionary(seen.map { ($0.seq, $0.text) }, uniquingKeysWith: { first, _ in first })
        if Set(seen.map(\.text)).count != seen.count { problems.append("a message was delivered twice") }
        for peer in peers {
            for (text, seq) in peer.acknowledged where bySeq[seq] != text {
                problems.append("\(peer.name)'s \(text) was acked at \(seq) but \(name) has "
                    + "\(bySeq[seq] ?? "nothing") there")
            }
        }
        return problems
    }
}
