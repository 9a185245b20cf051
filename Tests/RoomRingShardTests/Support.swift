import Foundation
import Logging
import NIOCore
import NIOPosix
import RoomRingClient
import RoomRingCore
import RoomRingRedis
import RoomRingShard

/// In-process shards on 127.0.0.1 port 0 for tests.
enum TestShard {
    /// A ring in which shard `id` owns every room (the only active shard), or the given ring.
    static func soloRing(_ id: String = "s1", epoch: UInt64 = 1) -> RingDocument {
        RingDocument(epoch: epoch, shards: [.init(id: id, address: "127.0.0.1:1", admin: "127.0.0.1:1")])
    }

    /// Starts a shard; `configure` adjusts limits. Stop it with `await shard.shutdown()`.
    /// In pub/sub mode it uses the Redis at `redis` and is ready (`/readyz`) when this returns.
    static func start(id: String = "s1", ring: RingDocument? = nil, eventLoops: Int = 2, mode: ScalingMode = .sticky,
                      redis: RedisURL? = nil,
                      configure: (inout ShardConfiguration) -> Void = { _ in }) async throws -> ShardServer {
        var configuration = ShardConfiguration(id: id, listen: HostPort(host: "127.0.0.1", port: 0),
                                               adminListen: HostPort(host: "127.0.0.1", port: 0),
                                               adminToken: "test-token", eventLoops: eventLoops)
        configuration.messagesPerSecond = 10_000
        configuration.messageBurst = 10_000
        configuration.mode = mode
        if let redis { configuration.redisURL = "redis://\(redis.host):\(redis.port)" }
        configure(&configuration)
        var logger = Logger(label: "test.shard.\(id)")
        logger.logLevel = .warning
        let shard = try await ShardServer.start(configuration: configuration, ring: ring ?? soloRing(id), logger: logger)
        if mode == .pubsub {
            let ready = try await eventually(within: .seconds(10)) {
                (try? await shard.http("GET", "/readyz").status) == 200
            }
            guard ready else {
                await shard.shutdown()
                throw TestFailure("pub/sub shard \(id) did not become ready")
            }
        }
        return shard
    }

    /// Runs `body` with a started shard and always shuts it down. In pub/sub mode without `redis`, a
    /// `redis-server` is started for the shard on a free port and killed afterwards.
    static func with<T>(id: String = "s1", ring: RingDocument? = nil, eventLoops: Int = 2, mode: ScalingMode = .sticky,
                        redis: RedisURL? = nil,
                        configure: (inout ShardConfiguration) -> Void = { _ in },
                        _ body: (ShardServer) async throws -> T) async throws -> T {
        var own: RedisServerProcess?
        if mode == .pubsub, redis == nil { own = try await RedisServerProcess.start() }
        defer { own?.kill() }
        let shard = try await start(id: id, ring: ring, eventLoops: eventLoops, mode: mode, redis: redis ?? own?.url,
                                    configure: configure)
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

/// The scaling modes the protocol suites run in: pub/sub only where `redis-server` is installed (`.ci/run`
/// installs it); elsewhere those cases are left out and the reason is printed once.
enum TestModes {
    static let all: [ScalingMode] = {
        if let only = ProcessInfo.processInfo.environment["ROOMRING_TEST_MODES"] {
            return only.split(separator: ",").compactMap { ScalingMode(rawValue: String($0)) }
        }
        guard RedisServerProcess.locate() != nil else {
            print("RoomRingShardTests: pub/sub mode cases skipped: redis-server is not installed (apt-get install redis-server)")
            return [.sticky]
        }
        return [.sticky, .pubsub]
    }()

    /// Pub/sub-mode members connect from their own event loop, so their traffic does not slow the timing-sensitive
    /// tests' clients on the shared singleton loops while the suites run in parallel.
    static let pubsubClients = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func clientGroup(for mode: ScalingMode) -> any EventLoopGroup {
        mode == .pubsub ? pubsubClients : MultiThreadedEventLoopGroup.singleton
    }

    /// Just pub/sub (empty, with the reason printed, without `redis-server`).
    static var pubsub: [ScalingMode] { all.filter { $0 == .pubsub } }
}

extension ShardServer {
    /// Opens a member connection to `room` on this shard.
    func join(_ room: String, name: String = "tester", client: String? = nil, since: UInt64? = nil)
        async throws -> WebSocketConnection
    {
        var query = "name=\(name)"
        if let client { query += "&client=\(client)" }
        if let since { query += "&since=\(since)" }
        return try await WebSocketConnection.connect(host: "127.0.0.1", port: port, path: "/rooms/\(room)?\(query)",
                                                     group: TestModes.clientGroup(for: context.configuration.mode))
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

// MARK: - Helpers for the broadcast, limits and HTTP suites

/// `GET /rooms` on the admin port.
struct RoomsListing: Decodable {
    var shard: String
    var epoch: UInt64
    var rooms: [RoomSnapshot]

    func room(_ id: String) -> RoomSnapshot? { rooms.first { $0.room == id } }
}

/// The `{"error":{"code":...,"message":...}}` body every endpoint answers errors with.
struct ErrorBody: Decodable {
    struct Detail: Decodable {
        var code: String
        var message: String
    }
    var error: Detail

    static func code(of response: HTTPClient.Response) -> String? {
        (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error.code
    }
}

extension ShardServer {
    /// The decoded `GET /rooms`.
    func rooms() async throws -> RoomsListing {
        let response = try await admin("GET", "/rooms")
        guard response.status == 200 else { throw TestFailure("GET /rooms: \(response.status) \(response.text)") }
        return try JSONDecoder().decode(RoomsListing.self, from: Data(response.body))
    }

    /// A plain HTTP request to the client port.
    func http(_ method: String = "GET", _ path: String, headers: [(String, String)] = [], body: [UInt8] = [])
        async throws -> HTTPClient.Response
    {
        try await HTTPClient.request(method, host: "127.0.0.1", port: port, path: path, headers: headers, body: body)
    }

    /// The value of an (unlabelled-by-us) metric on the client port's `/metrics`, 0 when absent.
    func metric(_ name: String) async throws -> Double {
        let response = try await http("GET", "/metrics")
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard line.hasPrefix(name + "{") || line.hasPrefix(name + " ") else { continue }
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
        }
        return 0
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration = .seconds(2), every interval: Duration = .milliseconds(25),
                _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try await Task.sleep(for: interval)
    }
}

/// A room id that `shard` owns under `ring` (searching `prefix-0`, `prefix-1`, ...).
func room(ownedBy shard: String, in ring: RingDocument, prefix: String = "room") -> String {
    let hashRing = HashRing(ring)
    for i in 0..<100_000 where hashRing.owner(ofKey: "\(prefix)-\(i)")?.id == shard { return "\(prefix)-\(i)" }
    preconditionFailure("no room owned by \(shard)")
}
