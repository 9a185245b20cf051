import NIOCore

/// The inbound side of a connection in subscribed mode: turns pushes into ``RedisSubscriber/Event``s, hands them
/// over once per read burst, and pings so that a dead server is noticed even when no message flows.
final class RedisPubSubHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = RESPValue
    typealias OutboundOut = ByteBuffer

    private let deliver: ([RedisSubscriber.Event]) -> Void
    private let pingInterval: TimeAmount
    private var batch: [RedisSubscriber.Event] = []
    private var lastHeard = NIODeadline.now()
    private var pinger: RepeatedTask?

    init(pingInterval: TimeAmount, deliver: @escaping ([RedisSubscriber.Event]) -> Void) {
        self.pingInterval = pingInterval
        self.deliver = deliver
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pinger = context.eventLoop.scheduleRepeatedTask(initialDelay: pingInterval, delay: pingInterval) { _ in
            bound.value.0.ping(context: bound.value.1)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pinger?.cancel()
        pinger = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastHeard = .now()
        guard case .array(let parts) = unwrapInboundIn(data), parts.count >= 2,
            let kind = parts[0].bytes.map({ String(buffer: $0) }), let channel = parts[1].string
        else { return }
        switch kind {
        case "message" where parts.count == 3:
            if let payload = parts[2].bytes { batch.append(.message(channel: channel, payload: payload)) }
        case "subscribe":
            batch.append(.subscribed(channel: channel))
        case "unsubscribe":
            batch.append(.unsubscribed(channel: channel))
        default:
            break  // "pong" and anything else
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !batch.isEmpty {
            let events = batch
            batch.removeAll(keepingCapacity: true)
            deliver(events)
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func ping(context: ChannelHandlerContext) {
        if NIODeadline.now() - lastHeard > pingInterval * 3 {
            // Two pings unanswered: the server is gone without closing the connection.
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(RESPEncoder.bytes(RESPCommand("PING"))), promise: nil)
    }
}

@available(*, unavailable)
extension RedisPubSubHandler: Sendable {}
