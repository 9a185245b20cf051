import NIOCore
import NIOHTTP1
import Prometheus
import RoomRingCore
import RoomRingHTTP

/// Takes the room endpoints besides the WebSocket off the client port's HTTP pipeline (see ``PublishRoutes``) and
/// passes every other request on, untouched, to the plain router.
///
/// It decides from the head alone whatever it can (method, token, ownership, declared size), so a refused publish
/// never has its body read; a body it does read is bounded in size (the message limit) and in time
/// (`bodyTimeout`). A refusal sent before the body ended closes the connection once the rest of the body has been
/// drained (bounded too): closing with unread bytes would reset the connection and could lose the answer.
final class RoomHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Not ours: the rest of this request goes to the next handler.
        case passing
        /// A request for `/messages` whose body is arriving.
        case collecting(head: HTTPRequestHead, room: RoomID, body: ByteBuffer)
        /// The request is complete and its answer is on its way from the room's loop.
        case answering
        /// Answered before the request ended: drop the rest of the request, then close.
        case discarding(dropped: Int)
        /// An event stream owns the connection from here on.
        case streaming
        case closing
    }

    /// Most bytes of an unwanted body drained before closing anyway.
    static let maxDrainBytes = 1 << 20
    /// Longest wait for the end of an unwanted body.
    static let drainTimeout = TimeAmount.seconds(2)

    private let hub: RoomHub
    private let shard: ShardContext
    private var state = State.idle
    private var timer: Scheduled<Void>?
    /// Completes when the early answer is written; the connection closes after it.
    private var answered: EventLoopFuture<Void>?

    init(hub: RoomHub, shard: ShardContext) {
        self.hub = hub
        self.shard = shard
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            begin(head, context: context, data: data)
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(data)
        case (.passing, _):
            context.fireChannelRead(data)
        case (.collecting(let head, let room, var body), .body(var chunk)):
            guard body.readableBytes + chunk.readableBytes <= shard.configuration.maxMessageBytes else {
                return refuse(PublishRoutes.tooLarge(shard), context: context, requestEnded: false)
            }
            body.writeBuffer(&chunk)
            state = .collecting(head: head, room: room, body: body)
        case (.collecting(let head, let room, let body), .end):
            timer?.cancel()
            state = .answering
            answer(head, room: room, body: body, context: context)
        case (.discarding(let dropped), .body(let chunk)):
            let total = dropped + chunk.readableBytes
            state = .discarding(dropped: total)
            if total > Self.maxDrainBytes { closeAfterAnswer(context) }
        case (.discarding, .end):
            closeAfterAnswer(context)
        default:
            // Streaming or answering: the request is over as far as we are concerned.
            break
        }
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext, data: NIOAny) {
        guard let (room, endpoint) = PublishRoutes.endpoint(head) else {
            state = .passing
            context.fireChannelRead(data)
            return
        }
        if let refusal = PublishRoutes.checkHead(head, room: room, endpoint: endpoint, shard: shard) {
            return refuse(refusal, context: context, requestEnded: false)
        }
        switch endpoint {
        case .messages, .members:
            state = .collecting(head: head, room: room, body: context.channel.allocator.buffer(capacity: 0))
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // curl and others wait for this (a second by default) before sending a body over 1 KiB.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                      promise: nil)
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let timeout = TimeAmount.milliseconds(Int64(shard.configuration.bodyTimeout * 1000))
            timer = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = bound.value
                guard case .collecting = handler.state else { return }
                handler.refuse(.error(.requestTimeout, code: "body_timeout",
                                      "request body not received within \(handler.shard.configuration.bodyTimeout) s"),
                               context: context, requestEnded: true)
            }
        case .events:
            startStream(head, room: room, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, room: RoomID, body: ByteBuffer, context: ChannelHandlerContext) {
        let future = head.method == .POST
            ? PublishRoutes.publish(body, head: head, room: room, hub: hub, shard: shard, on: context.eventLoop)
            : PublishRoutes.endpoint(head)?.1 == .members
                ? PublishRoutes.members(room: room, head: head, hub: hub, shard: shard, on: context.eventLoop)
            : PublishRoutes.poll(head, room: room, hub: hub)
        let keepAlive = head.isKeepAlive
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            guard case .answering = handler.state else { return }
            let response = (try? result.get())
                ?? .error(.internalServerError, code: "internal", "the request could not be served")
            // The state changes first: writing the end may hand over a pipelined next request at once.
            handler.state = keepAlive ? .idle : .closing
            let written = response.write(to: context, keepAlive: keepAlive)
            if !keepAlive {
                let channel = context.channel
                written.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    private func startStream(_ head: HTTPRequestHead, room: RoomID, context: ChannelHandlerContext) {
        guard shard.admitJoin() else { return refuse(UpgradeDecision.busy, context: context, requestEnded: false) }
        guard shard.reserveConnection() else {
            return refuse(PublishRoutes.retryLater(code: "full", "shard is at its connection limit"),
                          context: context, requestEnded: false)
        }
        let since = (try? PublishRoutes.since(head)) ?? nil
        state = .streaming
        do {
            try context.pipeline.syncOperations.addHandler(
                EventStreamHandler(room: room, since: since, version: head.version, hub: hub, shard: shard), position: .after(self))
        } catch {
            shard.releaseConnection()
            context.close(promise: nil)
        }
    }

    /// Answers at once with `Connection: close`; the connection closes once the request is over (or was declared
    /// over: a timed-out body is not waited for).
    private func refuse(_ response: HTTPResponse, context: ChannelHandlerContext, requestEnded: Bool) {
        timer?.cancel()
        shard.metrics.rejectedUpgrades.increment()
        answered = response.write(to: context, keepAlive: false)
        if requestEnded {
            closeAfterAnswer(context)
            return
        }
        state = .discarding(dropped: 0)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: Self.drainTimeout) {
            let (handler, context) = bound.value
            handler.closeAfterAnswer(context)
        }
    }

    private func closeAfterAnswer(_ context: ChannelHandlerContext) {
        timer?.cancel()
        state = .closing
        let channel = context.channel
        if let answered {
            answered.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

}

@available(*, unavailable)
extension RoomHTTPHandler: Sendable {}
