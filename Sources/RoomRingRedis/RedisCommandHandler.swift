import NIOCore

/// Matches replies to commands on one connection: replies come back in the order the commands were written, so
/// a FIFO of promises is all the bookkeeping pipelining needs. Enforces the reply timeout.
final class RedisCommandHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    /// Encoded commands and one promise per command, in order.
    struct Request: Sendable {
        var bytes: ByteBuffer
        var promises: [EventLoopPromise<RESPValue>]
    }

    private var pending = CircularBuffer<(promise: EventLoopPromise<RESPValue>, deadline: NIODeadline?)>()
    private let timeout: TimeAmount?
    private var timer: RepeatedTask?
    private var isActive = true

    /// Commands written and not yet answered.
    var inFlight: Int { pending.count }

    init(timeout: TimeAmount?) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let timeout else { return }
        let interval = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, 5_000_000))
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.0.checkDeadline(context: bound.value.1)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        failAll(.connectionClosed)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard isActive else {
            for waiting in request.promises { waiting.fail(RedisError.connectionClosed) }
            promise?.fail(RedisError.connectionClosed)
            return
        }
        let deadline = timeout.map { NIODeadline.now() + $0 }
        for waiting in request.promises { pending.append((waiting, deadline)) }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard let first = pending.popFirst() else {
            // A reply nobody asked for: the stream is out of step.
            failAll(RedisError.protocolViolation.with("unsolicited reply \(value)"))
            context.close(promise: nil)
            return
        }
        first.promise.succeed(value)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        failAll(.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decoding = error as? RESPDecodingError {
            failAll(RedisError.protocolViolation.with("invalid reply: \(decoding)"))
        } else {
            failAll(.connectionClosed)
        }
        context.close(promise: nil)
    }

    private func checkDeadline(context: ChannelHandlerContext) {
        guard let first = pending.first, let deadline = first.deadline, deadline < .now() else { return }
        failAll(.timeout)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        // Every caller is ending the connection (or removing this handler): later writes fail at once.
        isActive = false
        while let waiting = pending.popFirst() { waiting.promise.fail(error) }
    }
}

@available(*, unavailable)
extension RedisCommandHandler: Sendable {}
