import NIOCore
import NIOHTTP1
import Prometheus
import RoomRingCore

/// `GET /rooms/<id>/events`: a Server-Sent Events stream that is a room member like a WebSocket connection.
///
/// It joins through the same ``LoopHub`` path (so it gets `hello`, the replay after `Last-Event-ID`, then every
/// chat, batched per loop and flushed once per batch), is dropped as a slow consumer past the same outbound
/// limit, and ends when the room moves or the shard stops: the browser's `EventSource` then reconnects with
/// `Last-Event-ID` and is replayed from there. It never sends chats, so it is never anybody's `from`.
final class EventStreamHandler: ChannelInboundHandler, RoomMember {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Name the room knows the stream by (it never chats, so the name appears nowhere).
    static let memberName = "event-stream"
    /// Milliseconds a disconnected `EventSource` waits before reconnecting.
    static let retryMillis = 1000

    private let room: RoomID
    private let since: UInt64?
    /// The request's HTTP version: a 1.0 reader gets the stream delimited by the close, not chunked.
    private let version: HTTPVersion
    private let hub: RoomHub
    private let shard: ShardContext
    private var context: ChannelHandlerContext?
    private var member: MemberInfo?
    private var pending: [UInt8] = []
    private var heartbeat: RepeatedTask?
    private var closing = false
    private var finished = false

    /// - Parameters:
    ///   - since: replay the messages after this seq (`Last-Event-ID`).
    ///   - version: the request's HTTP version.
    /// The caller has reserved a connection slot; the stream frees it when it ends.
    init(room: RoomID, since: UInt64?, version: HTTPVersion, hub: RoomHub, shard: ShardContext) {
        self.room = room
        self.since = since
        self.version = version
        self.hub = hub
        self.shard = shard
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let headers: HTTPHeaders = [
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            // nginx and similar buffer responses unless told not to.
            "X-Accel-Buffering": "no",
        ]
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))),
                      promise: nil)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "retry: \(Self.retryMillis)\n\n")))),
                              promise: nil)
        member = hub.local(context.eventLoop).join(self, room: room, name: Self.memberName, client: nil, since: since)
        let interval = TimeAmount.milliseconds(Int64(shard.configuration.eventStreamHeartbeat * 1000))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.beat()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Nothing after the request matters (the handler before this one swallows it).
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The write buffer's high-water mark is the outbound queue limit, as for WebSocket members.
        if !context.channel.isWritable, !closing {
            shard.metrics.slowConsumerCloses.increment()
            close(code: WebSocketMessageStateMachine.CloseCode.tryAgainLater, reason: "slow consumer", force: true)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Leaves the room and frees the connection slot, exactly once.
    private func finish() {
        guard !finished else { return }
        finished = true
        closing = true
        heartbeat?.cancel()
        heartbeat = nil
        if let member, let context { hub.local(context.eventLoop).leave(member) }
        member = nil
        shard.releaseConnection()
    }

    private func beat() {
        guard !closing, let context else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: ServerSentEvent.comment("keepalive"))))),
                              promise: nil)
    }

    // MARK: - RoomMember

    var presence: MemberPresence? { nil }

    func deliver(_ payload: ByteBuffer, wire: ByteBuffer?) {
        guard !closing, let event = ServerSentEvent.encode(frame: payload.readableBytesView) else { return }
        pending += event
    }

    func flushDeliveries() {
        guard !closing, let context, !pending.isEmpty else { return }
        let bytes = ByteBuffer(bytes: pending)
        pending.removeAll(keepingCapacity: true)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
    }

    /// Ends the stream (the room moved, the shard stops, or the reader is too slow); `code` and `reason` go out
    /// as a comment, since an event stream has no close frame.
    func close(code: UInt16, reason: String, force: Bool) {
        guard !closing, let context else { return }
        closing = true
        let channel = context.channel
        if force {
            context.close(promise: nil)
            return
        }
        flushPendingBeforeClose(context)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: ServerSentEvent.comment("closing \(code) \(reason)"))))),
                      promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        // A reader that stopped reading would hold the end back forever.
        context.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    }

    private func flushPendingBeforeClose(_ context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: pending)))), promise: nil)
        pending.removeAll()
    }
}

@available(*, unavailable)
extension EventStreamHandler: Sendable {}
