import Foundation
import RoomRingSpawn
import Logging
import RoomRingClient
import RoomRingCore
import RoomRingShard
import Testing

/// HAProxy and nginx, configured from the committed files, in front of three real shards: every member of a room
/// lands on one shard, and the rooms spread over the shards.
@Suite(.serialized) struct HashingProxyLiveTests {
    static let rooms = 20
    static let membersPerRoom = 3

    @Test func haproxyKeepsEachRoomOnOneShard() async throws {
        guard let haproxy = Tool.require("haproxy", for: "HAProxy in front of shards") else { return }
        try await withShards { shards, directory in
            let port = try LoopbackPort.free(1)[0]
            var config = try render(try Deploy.text("haproxy/roomring.cfg"), shards: shards,
                                    listen: ("bind :8080", "bind 127.0.0.1:\(port)"))
            // Running unprivileged in a scratch directory: no user switch, chroot or syslog socket.
            config = config.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { line in
                    let setting = line.trimmingCharacters(in: .whitespaces)
                    return !["user ", "group ", "chroot ", "log /dev/log"].contains { setting.hasPrefix($0) }
                }
                .joined(separator: "\n")
            let file = try directory.write("haproxy.cfg", config)
            let process = try BackgroundProcess(haproxy, ["-db", "-f", file.path], log: directory.url.appendingPathComponent("haproxy.log"))
            try await checkRooms(through: port, process: process, label: "haproxy")
        }
    }

    @Test func nginxKeepsEachRoomOnOneShard() async throws {
        guard let nginx = Tool.require("nginx", for: "nginx in front of shards") else { return }
        try await withShards { shards, directory in
            let port = try LoopbackPort.free(1)[0]
            let config = try render(try Deploy.text("nginx/roomring.conf"), shards: shards,
                                    listen: ("listen 8080;", "listen 127.0.0.1:\(port);"))
            let included = try directory.write("roomring.conf", config)
            let main = try directory.write("nginx.conf", NginxHarness.main(including: included.path,
                                                                           prefix: directory.url.path, foreground: true))
            let process = try BackgroundProcess(nginx, ["-p", directory.url.path, "-e", directory.path("error.log"),
                                                        "-c", main.path],
                                                log: directory.url.appendingPathComponent("nginx.log"))
            try await checkRooms(through: port, process: process, label: "nginx")
        }
    }

    /// Three in-process shards, each with a solo ring (it is the only active shard, so it accepts every room:
    /// the front proxy's hashing alone decides, as deploy/README.md prescribes for HAProxy and nginx).
    private func withShards(_ body: ([ShardServer], TemporaryDirectory) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        var shards: [ShardServer] = []
        do {
            for id in ["s1", "s2", "s3"] {
                let configuration = ShardConfiguration(id: id, listen: HostPort(host: "127.0.0.1", port: 0),
                                                       adminListen: HostPort(host: "127.0.0.1", port: 0),
                                                       adminToken: "deploy-test", eventLoops: 1)
                var logger = Logger(label: "test.deploy.\(id)")
                logger.logLevel = .warning
                let solo = RingDocument(epoch: 1, shards: [.init(id: id, address: "127.0.0.1:1", admin: "127.0.0.1:1")])
                shards.append(try await ShardServer.start(configuration: configuration, ring: solo, logger: logger))
            }
            try await body(shards, directory)
        } catch {
            for shard in shards { await shard.shutdown() }
            throw error
        }
        for shard in shards { await shard.shutdown() }
        directory.remove()
    }

    /// The committed config with the shard addresses and the listener replaced; fails if one is missing.
    private func render(_ text: String, shards: [ShardServer], listen: (String, String)) throws -> String {
        var text = text
        for (index, shard) in shards.enumerated() {
            let committed = "127.0.0.1:\(9001 + index)"
            guard text.contains(committed) else { throw TestFailure("config has no server \(committed)") }
            text = text.replacingOccurrences(of: committed, with: "127.0.0.1:\(shard.port)")
        }
        guard text.contains(listen.0) else { throw TestFailure("config has no \"\(listen.0)\"") }
        return text.replacingOccurrences(of: listen.0, with: listen.1)
    }

    /// Opens `rooms` × `membersPerRoom` WebSockets through the front proxy on `port`, then checks placement and
    /// that a message reaches the room's other members. Always stops `process`.
    private func checkRooms(through port: Int, process: BackgroundProcess, label: String) async throws {
        var connections: [WebSocketConnection] = []
        do {
            try await waitUntilServing(port, process: process, label: label)
            var shardOfRoom: [String: Set<String>] = [:]
            for room in 0..<Self.rooms {
                let roomID = "deploy-\(label)-\(room)"
                var members: [WebSocketConnection] = []
                for member in 0..<Self.membersPerRoom {
                    let connection = try await WebSocketConnection.connect(
                        host: "127.0.0.1", port: port, path: "/rooms/\(roomID)?name=m\(member)&client=c\(member)")
                    connections.append(connection)
                    members.append(connection)
                    guard case .hello(let hello) = try await connection.nextMessage(timeout: .seconds(10)) else {
                        throw TestFailure("\(label): no hello in \(roomID)")
                    }
                    #expect(hello.room == roomID)
                    shardOfRoom[roomID, default: []].insert(hello.shard)
                }
                members[0].send(text: ClientMessage.chat(message: "hello \(roomID)", id: "x1").encoded())
                for member in members.dropFirst() {
                    let chat = try await nextChat(member)
                    #expect(chat.message == "hello \(roomID)" && chat.from == "m0", "\(label): \(roomID)")
                }
            }
            let split = shardOfRoom.filter { $0.value.count != 1 }
            #expect(split.isEmpty, "\(label) split rooms over shards: \(split)")
            let used = Set(shardOfRoom.values.flatMap { $0 })
            #expect(used.count >= 2, "\(label) put all \(Self.rooms) rooms on \(used)")
            print("\(label): \(Self.rooms) rooms × \(Self.membersPerRoom) members, each room on one shard; shards used: \(used.sorted())")
        } catch {
            for connection in connections { await connection.close() }
            await process.stop()
            throw TestFailure("\(error)\n--- \(label) log:\n\(process.log)")
        }
        for connection in connections { await connection.close() }
        await process.stop()
    }

    private func waitUntilServing(_ port: Int, process: BackgroundProcess, label: String) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            guard process.process.isRunning else { throw TestFailure("\(label) exited at start") }
            if let response = try? await HTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/healthz",
                                                            timeout: .seconds(1)), response.status == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("\(label) did not serve /healthz on port \(port) within 15 s")
    }

    /// The next chat, skipping anything else the shard sends (acks, presence).
    private func nextChat(_ connection: WebSocketConnection) async throws -> ServerMessage.Chat {
        for _ in 0..<10 {
            if case .chat(let chat) = try await connection.nextMessage(timeout: .seconds(10)) { return chat }
        }
        throw TestFailure("no chat within 10 messages")
    }
}
