import NIOCore
import NIOPosix
import RoomRingClient

/// A connection that stops reading right after the response head (a tiny receive buffer, `autoRead` off), so
/// everything the shard sends it piles up in the shard's outbound queue: a slow consumer.
final class StalledReader: Sendable {
    let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    /// Sends `request` and waits for a head starting with `expected`.
    static func open(port: Int, request: String, expected: String) async throws -> StalledReader {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answered = loop.makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.so_rcvbuf), value: 2048)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StopAfterHeadHandler(answered: answered))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request))
        let head = try await answered.futureResult.get()
        guard head.hasPrefix(expected) else { throw TestFailure("stalled reader answered: \(head)") }
        return StalledReader(channel: channel)
    }

    /// Reads again and waits for the connection to end; false when it is still open after `within`.
    func resumeAndAwaitEnd(within timeout: Duration) async throws -> Bool {
        try await channel.setOption(.autoRead, value: true).get()
        return try await eventually(within: timeout, every: .milliseconds(25)) { !channel.isActive }
    }
}

/// A WebSocket member that stops reading right after the 101.
enum StalledMember {
    static func open(port: Int, path: String) async throws -> StalledReader {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        return try await StalledReader.open(port: port, request: request, expected: "HTTP/1.1 101")
    }
}

/// An event-stream reader that stops reading right after the response head.
enum StalledStream {
    static func open(port: Int, path: String) async throws -> StalledReader {
        try await StalledReader.open(port: port, request: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                                     expected: "HTTP/1.1 200")
    }
}

private final class StopAfterHeadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let answered: EventLoopPromise<String>
    private var head: [UInt8] = []
    private var done = false

    init(answered: EventLoopPromise<String>) { self.answered = answered }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        head += unwrapInboundIn(data).readableBytesView
        guard let end = HTTPClient.findHeadEnd(head) else { return }
        done = true
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        answered.succeed(String(decoding: head[..<end], as: UTF8.self))
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            answered.fail(TestFailure("connection closed before the response head"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension StopAfterHeadHandler: Sendable {}
