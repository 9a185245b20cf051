import Foundation
import Logging
import NIOCore
import NIOPosix
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

/// Every proxy suite nests in here so the fleets (3 shards + a proxy each) never run at the same time on a 2-core box.
@Suite(.serialized) struct ProxyTests {}

/// N in-process shards on 127.0.0.1 port 0 plus a front proxy routing to them with the real ring (epoch 2).
final class TestFleet: Sendable {
    static let token = "test-token"

    let shards: [ShardServer]
    let proxy: ProxyServer
    /// The ring the proxy started with and every shard was given (epoch 2).
    let ring: RingDocument

    private init(shards: [ShardServer], proxy: ProxyServer, ring: RingDocument) {
        self.shards = shards
        self.proxy = proxy
        self.ring = ring
    }

    /// Starts `count` shards (ids s1...sN), gives them the real ring, and starts the proxy with it.
    /// - Parameters:
    ///   - deadShard: also list a shard `dead` whose address and admin port are closed (unreachable owner).
    ///   - shard: adjusts each shard's configuration.
    ///   - proxy: adjusts the proxy configuration (listen/admin port 0, token, health every 0.2 s, drain 0.5 s).
    static func start(count: Int = 3, deadShard: Bool = false,
                      shard configureShard: (inout ShardConfiguration) -> Void = { _ in },
                      proxy configureProxy: (inout ProxyConfiguration) -> Void = { _ in }) async throws -> TestFleet {
        let ids = (1...count).map { "s\($0)" }
        let deadPort = deadShard ? try await closedPort() : 0
        func deadEntry() -> [RingDocument.Shard] {
            deadShard ? [.init(id: "dead", address: "127.0.0.1:\(deadPort)", admin: "127.0.0.1:\(deadPort)")] : []
        }
        // Ownership is by id, so a placeholder ring that lists every id lets the shards start before ports are known.
        let placeholder = RingDocument(epoch: 1, shards: ids.map {
            .init(id: $0, address: "127.0.0.1:1", admin: "127.0.0.1:1")
        } + deadEntry())
        var shards: [ShardServer] = []
        do {
            for id in ids {
                var configuration = ShardConfiguration(id: id, listen: HostPort(host: "127.0.0.1", port: 0),
                                                       adminListen: HostPort(host: "127.0.0.1", port: 0),
                                                       adminToken: token, eventLoops: 1)
                configuration.messagesPerSecond = 100_000
                configuration.messageBurst = 100_000
                configureShard(&configuration)
                shards.append(try await ShardServer.start(configuration: configuration, ring: placeholder,
                                                          logger: quietLogger("test.shard.\(id)")))
            }
            let ring = RingDocument(epoch: 2, shards: zip(ids, shards).map { id, shard in
                .init(id: id, address: "127.0.0.1:\(shard.port)", admin: "127.0.0.1:\(shard.adminPort)")
            } + deadEntry())
            for shard in shards { try await push(ring, to: shard) }
            var configuration = ProxyConfiguration(listen: HostPort(host: "127.0.0.1", port: 0),
                                                   adminListen: HostPort(host: "127.0.0.1", port: 0),
                                                   adminToken: token, healthInterval: 0.2, drainTimeout: 0.5)
            configureProxy(&configuration)
            let proxy = try await ProxyServer.start(configuration: configuration, ring: ring,
                                                    logger: quietLogger("test.proxy"))
            return TestFleet(shards: shards, proxy: proxy, ring: ring)
        } catch {
            for shard in shards { await shard.shutdown() }
            throw error
        }
    }

    /// Runs `body` with a started fleet and always shuts it down.
    static func with<T>(count: Int = 3, deadShard: Bool = false,
                        shard configureShard: (inout ShardConfiguration) -> Void = { _ in },
                        proxy configureProxy: (inout ProxyConfiguration) -> Void = { _ in },
                        _ body: (TestFleet) async throws -> T) async throws -> T {
        let fleet = try await start(count: count, deadShard: deadShard, shard: configureShard, proxy: configureProxy)
        do {
            let result = try await body(fleet)
            await fleet.shutdown()
            return result
        } catch {
            await fleet.shutdown()
            throw error
        }
    }

    /// Stops the proxy (bounded by its drain timeout), then every shard. Safe to call twice.
    func shutdown() async {
        await proxy.shutdown()
        for shard in shards { await shard.shutdown() }
    }

    static func quietLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .warning
        return logger
    }

    /// A port that was just bound and closed: connecting to it is refused.
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// `PUT /ring` on a shard's admin port.
    static func push(_ ring: RingDocument, to shard: ShardServer) async throws {
        let response = try await HTTPClient.request("PUT", host: "127.0.0.1", port: shard.adminPort, path: "/ring",
                                                    headers: [("Authorization", "Bearer \(token)")],
                                                    body: Array(ring.encoded()))
        guard response.status == 200 else { throw TestFailure("PUT /ring on a shard: \(response.status) \(response.text)") }
    }

    func shard(_ id: String) -> ShardServer { shards[Int(id.dropFirst())! - 1] }

    /// The first room `prefix-<n>` that `ring` gives to shard `id`.
    static func room(ownedBy id: String, in ring: RingDocument, prefix: String = "room") -> String {
        let hash = HashRing(ring)
        for n in 0..<100_000 where hash.owner(ofKey: "\(prefix)-\(n)")?.id == id { return "\(prefix)-\(n)" }
        fatalError("no room for \(id)")
    }

    // MARK: - Talking to the proxy

    /// A WebSocket member of `room` through the proxy.
    func join(_ room: String, name: String = "tester") async throws -> WebSocketConnection {
        try await WebSocketConnection.connect(host: "127.0.0.1", port: proxy.port, path: "/rooms/\(room)?name=\(name)")
    }

    /// A plain HTTP request through the proxy's client port.
    func get(_ path: String) async throws -> HTTPClient.Response {
        try await HTTPClient.request("GET", host: "127.0.0.1", port: proxy.port, path: path)
    }

    /// A request to the proxy's admin port (with the token unless `token` is nil).
    func admin(_ path: String, method: String = "GET", body: [UInt8] = [], token: String? = TestFleet.token)
        async throws -> HTTPClient.Response
    {
        try await HTTPClient.request(method, host: "127.0.0.1", port: proxy.adminPort, path: path,
                                     headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [], body: body)
    }

    /// `GET /shards` on the proxy admin port, decoded.
    func shardsReport() async throws -> ShardsReport {
        let response = try await admin("/shards")
        guard response.status == 200 else { throw TestFailure("GET /shards: \(response.status)") }
        return try JSONDecoder().decode(ShardsReport.self, from: Data(response.body))
    }

    /// Joins `room` through the proxy, expects a hello and its own chat back, and leaves.
    @discardableResult
    func expectWorkingRoundTrip(_ room: String = "probe", sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> ServerMessage.Hello
    {
        let member = try await join(room, name: "probe")
        defer { Task { await member.close() } }
        let hello = try await member.hello()
        #expect(hello.room == room, sourceLocation: sourceLocation)
        member.send(text: ClientMessage.chat(message: "probe", id: nil).encoded())
        let chat = try await member.chat()
        #expect(chat.message == "probe" && chat.from == "probe", sourceLocation: sourceLocation)
        return hello
    }
}

struct ShardsReport: Decodable {
    struct Shard: Decodable {
        var id: String
        var address: String
        var state: String
        var healthy: Bool
        var tunnels: Int
    }

    var epoch: UInt64
    var balance: String
    var shards: [Shard]

    func shard(_ id: String) -> Shard? { shards.first { $0.id == id } }
}

/// A raw TCP client (NIO) for hostile bytes, half-close and readers that stop reading.
final class RawClient: Sendable {
    enum Event: Sendable, Equatable {
        case bytes([UInt8])
        /// The peer sent FIN.
        case inputClosed
        /// The connection is gone.
        case closed
    }

    let channel: any Channel
    let events: EventInbox<Event>

    private init(channel: any Channel, events: EventInbox<Event>) {
        self.channel = channel
        self.events = events
    }

    /// - Parameters:
    ///   - autoRead: false for a client that reads only when ``pull()`` is called.
    ///   - receiveBuffer: SO_RCVBUF, set before connecting.
    static func connect(port: Int, autoRead: Bool = true, receiveBuffer: Int? = nil) async throws -> RawClient {
        let inbox = EventInbox<Event>()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: autoRead)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawHandler(inbox: inbox))
                }
            }
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: receiveBuffer) }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, events: inbox)
    }

    func send(_ bytes: [UInt8]) async throws { try await channel.writeAndFlush(ByteBuffer(bytes: bytes)) }
    func send(_ text: String) async throws { try await send(Array(text.utf8)) }
    /// shutdown(SHUT_WR).
    func shutdownOutput() async throws { try await channel.close(mode: .output) }
    /// Asks for one read (autoRead off).
    func pull() { channel.read() }
    func close() async { try? await channel.close() }

    /// Everything until the peer closes (`ended`) or the deadline passes (`ended` false).
    func readToEnd(timeout: Duration) async -> (bytes: [UInt8], ended: Bool) {
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        while true {
            let left = deadline - .now
            guard left > .zero, let event = try? await events.next(timeout: left) else { return (bytes, false) }
            switch event {
            case .bytes(let chunk): bytes += chunk
            case .inputClosed, .closed: return (bytes, true)
            }
        }
    }

    /// Reads (pulling when autoRead is off) until the bytes hold a complete HTTP head.
    func readHead(timeout: Duration, pulling: Bool = false) async throws -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        while HTTPClient.findHeadEnd(bytes) == nil {
            if pulling { pull() }
            let left = deadline - .now
            guard left > .zero else { throw TestFailure("no response head within \(timeout)") }
            switch try await events.next(timeout: left) {
            case .bytes(let chunk): bytes += chunk
            case .inputClosed, .closed: throw TestFailure("closed before a response head: \(bytes.count) bytes")
            }
        }
        return bytes
    }

    /// Sends `request` and returns the parsed answer, whether the proxy closed, and the raw bytes.
    static func exchange(port: Int, _ request: [UInt8], timeout: Duration = .seconds(3)) async throws
        -> (response: HTTPClient.Response?, ended: Bool, bytes: [UInt8])
    {
        let client = try await connect(port: port)
        defer { Task { await client.close() } }
        try await client.send(request)
        let (bytes, ended) = await client.readToEnd(timeout: timeout)
        return (try? HTTPClient.parse(bytes), ended, bytes)
    }

    /// A WebSocket upgrade request head.
    static func upgradeRequest(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }
}

private final class RawHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let inbox: EventInbox<RawClient.Event>

    init(inbox: EventInbox<RawClient.Event>) { self.inbox = inbox }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.push(.bytes(Array(unwrapInboundIn(data).readableBytesView)))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { inbox.push(.inputClosed) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.push(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RawHandler: Sendable {}

extension WebSocketConnection {
    /// The `hello` every connection starts with.
    func hello(timeout: Duration = .seconds(5)) async throws -> ServerMessage.Hello {
        let message = try await nextMessage(timeout: timeout)
        guard case .hello(let hello) = message else { throw TestFailure("expected hello, got \(message)") }
        return hello
    }

    /// The next message, which must be a chat.
    func chat(timeout: Duration = .seconds(5)) async throws -> ServerMessage.Chat {
        let message = try await nextMessage(timeout: timeout)
        guard case .chat(let chat) = message else { throw TestFailure("expected chat, got \(message)") }
        return chat
    }

    /// Waits until the connection ends (close frame or disconnect); false if it is still up at the deadline.
    func ended(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - .now
            guard left > .zero, let event = try? await next(timeout: left) else { return false }
            switch event {
            case .close, .disconnected: return true
            default: continue
            }
        }
    }
}

/// Polls `condition` every `interval` until it holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration, every interval: Duration = .milliseconds(50),
                _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// A Prometheus sample's value: the first line starting with `name` (labels included in `name` if given).
func metric(_ name: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
        let rest = line.dropFirst(name.count)
        guard rest.first == " " || rest.first == "{" else { continue }
        return line.split(separator: " ").last.flatMap { Double($0) }
    }
    return nil
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension RingDocument {
    /// This ring at `epoch`, each shard's client address replaced by `address(shard)` (admin addresses kept).
    func readdressed(epoch: UInt64, _ address: (Shard) -> String) -> RingDocument {
        var ring = self
        ring.epoch = epoch
        ring.shards = shards.map { shard in
            var shard = shard
            shard.address = address(shard)
            return shard
        }
        return ring
    }
}
