import Foundation
import Logging
import NIOCore
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// In-process shards on 127.0.0.1 port 0 for tests.
enum TestShard {
    /// A ring in which shard `id` owns every room (the only active shard), or the given ring.
    static func soloRing(_ id: String = "s1", epoch: UInt64 = 1) -> RingDocument {
        RingDocument(epoch: epoch, shards: [.init(id: id, address: "127.0.0.1:1", admin: "127.0.0.1:1")])
    }

    /// Starts a shard; `configure` adjusts limits. Stop it with `await shard.shutdown()`.
    static func start(id: String = "s1", ring: RingDocument? = nil, eventLoops: Int = 2,
                      configure: (inout ShardConfiguration) -> Void = { _ in }) async throws -> ShardServer {
        var configuration = ShardConfiguration(id: id, listen: HostPort(host: "127.0.0.1", port: 0),
                                               adminListen: HostPort(host: "127.0.0.1", port: 0),
                                               adminToken: "test-token", eventLoops: eventLoops)
        configuration.messagesPerSecond = 10_000
        configuration.messageBurst = 10_000
        configure(&configuration)
        var logger = Logger(label: "test.shard.\(id)")
        logger.logLevel = .warning
        return try await ShardServer.start(configuration: configuration, ring: ring ?? soloRing(id), logger: logger)
    }

    /// Runs `body` with a started shard and always shuts it down.
    static func with<T>(id: String = "s1", ring: RingDocument? = nil, eventLoops: Int = 2,
                        configure: (inout ShardConfiguration) -> Void = { _ in },
                        _ body: (ShardServer) async throws -> T) async throws -> T {
        let shard = try await start(id: id, ring: ring, eventLoops: eventLoops, configure: configure)
        do {
            let result = try await body(shard)
            await shard.shutdown()
            return result
        } catch {
            await shard.shutdown()
            throw error
        }
    }
}

extension ShardServer {
    /// Opens a member connection to `room` on this shard.
    func join(_ room: String, name: String = "tester", client: String? = nil, since: UInt64? = nil)
        async throws -> WebSocketConnection
    {
        var query = "name=\(name)"
        if let client { query += "&client=\(client)" }
        if let since { query += "&since=\(since)" }
        return try await WebSocketConnection.connect(host: "127.0.0.1", port: port, path: "/rooms/\(room)?\(query)")
    }

    /// `GET` on the admin port with the test token.
    func admin(_ method: String = "GET", _ path: String, body: [UInt8] = [], token: String? = "test-token")
        async throws -> HTTPClient.Response
    {
        try await HTTPClient.request(method, host: "127.0.0.1", port: adminPort, path: path,
                                     headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [], body: body)
    }
}

extension WebSocketConnection {
    /// The `hello` every connection starts with.
    func hello(timeout: Duration = .seconds(5)) async throws -> ServerMessage.Hello {
        guard case .hello(let hello) = try await nextMessage(timeout: timeout) else {
            throw TestFailure("expected hello")
        }
        return hello
    }

    /// The next chat (skipping acks and errors is NOT done: a test that expects a chat gets exactly that).
    func chat(timeout: Duration = .seconds(5)) async throws -> ServerMessage.Chat {
        let message = try await nextMessage(timeout: timeout)
        guard case .chat(let chat) = message else { throw TestFailure("expected chat, got \(message)") }
        return chat
    }

    /// Waits for the close frame (skipping other traffic) and returns its code.
    func closeCode(timeout: Duration = .seconds(5)) async throws -> UInt16? {
        while true {
            switch try await next(timeout: timeout) {
            case .close(let code, _): return code
            case .disconnected: return nil
            default: continue
            }
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
