import Foundation
import Logging
import NIOCore
import Prometheus
import NIOWebSocket
import RoomRingCore

/// One member's WebSocket connection: validates frames (RFC 6455), decodes the JSON protocol, enforces the
/// per-connection limits, and is the ``RoomMember`` the room delivers to.
final class WebSocketRoomHandler: ChannelInboundHandler, RoomMember {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Where the connection stands: seed clients at `/ws` pick their room with a `join` message.
    struct Request: Sendable {
        var room: RoomID?
        var name: String
        var client: String?
        var since: UInt64?
        /// `X-Request-ID` from the proxy, for log lines.
        var requestID: String? = nil
    }

    private let hub: RoomHub
    private let shard: ShardContext
    private var request: Request
    private var context: ChannelHandlerContext?
    private var member: MemberInfo?
    private var machine: WebSocketMessageStateMachine
    private var fragments: ByteBuffer?
    private var bucket: TokenBucket
    private var pendingChats: [InboundChat] = []
    private var lastHeard = NIODeadline.now()
    private var keepalive: RepeatedTask?
    private var closing = false
    private var finished = false
    private var reserved = false
    private var hasUnflushed = false
    /// The frame encoder's place in the pipeline, where pre-framed broadcasts are written.
    private var encoderContext: ChannelHandlerContext?
    /// This handler sent (or gave up on) a close: later errors are consequences, not news.
    private var sentClose = false

    init(request: Request, hub: RoomHub, shard: ShardContext) {
        self.request = request
        self.hub = hub
        self.shard = shard
        let configuration = shard.configuration
        self.machine = WebSocketMessageStateMachine(maxMessageBytes: configuration.maxMessageBytes)
        self.bucket = TokenBucket(rate: configuration.messagesPerSecond, burst: configuration.messageBurst,
                                  now: NIODeadline.now().uptimeNanoseconds)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        encoderContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        guard shard.reserveConnection() else {
            close(code: WebSocketMessageStateMachine.CloseCode.tryAgainLater, reason: "shard is full")
            return
        }
        reserved = true
        if let room = request.room { join(room) }
        let interval = TimeAmount.milliseconds(Int64(shard.configuration.pingInterval * 1000))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.keepaliveTick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
        self.context = nil
        encoderContext = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    private func join(_ room: RoomID) {
        guard let context else { return }
        shard.logger.debug("member joined", metadata: logMetadata(room: room, [:]))
        member = hub.local(context.eventLoop).join(self, room: room, name: request.name, client: request.client,
                                                   since: request.since)
    }

    /// Leaves the room and frees the connection slot, exactly once.
    private func finish() {
        guard !finished else { return }
        finished = true
        closing = true
        keepalive?.cancel()
        keepalive = nil
        if let member, let context { hub.local(context.eventLoop).leave(member) }
        member = nil
        if reserved { shard.releaseConnection() }
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closing else { return }
        lastHeard = .now()
        let rsv: UInt8 = (frame.rsv1 ? 4 : 0) | (frame.rsv2 ? 2 : 0) | (frame.rsv3 ? 1 : 0)
        let action = machine.frame(fin: frame.fin, rsv: rsv, opcode: UInt8(webSocketOpcode: frame.opcode),
                                   masked: frame.maskKey != nil, length: frame.length)
        switch action {
        case .single(.text):
            handleText(frame.unmaskedData)
        case .single(.binary), .finish(.binary):
            fragments = nil
            sendError(code: "binary_not_supported", "binary frames are not part of the protocol; send JSON text")
        case .start:
            fragments = frame.unmaskedData
        case .append:
            var data = frame.unmaskedData
            fragments?.writeBuffer(&data)
        case .finish(.text):
            var data = frame.unmaskedData
            fragments?.writeBuffer(&data)
            if let message = fragments { handleText(message) }
            fragments = nil
        case .ping:
            send(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
            context.flush()
        case .pong:
            break
        case .close:
            switch WebSocketMessageStateMachine.parseClose(frame.unmaskedData.readableBytesView) {
            case .valid(let code, _):
                close(code: code ?? WebSocketMessageStateMachine.CloseCode.normal, reason: "")
            case .invalid(let code):
                shard.metrics.protocolErrors.increment()
                close(code: code, reason: "invalid close frame")
            }
        case .fail(let code, let reason):
            shard.metrics.protocolErrors.increment()
            close(code: code, reason: reason)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !pendingChats.isEmpty, let member {
            hub.local(context.eventLoop).chat(member, pendingChats)
            pendingChats.removeAll(keepingCapacity: true)
        }
        if hasUnflushed {
            hasUnflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    private func handleText(_ payload: ByteBuffer) {
        guard String(validating: payload.readableBytesView, as: UTF8.self) != nil else {
            shard.metrics.protocolErrors.increment()
            close(code: WebSocketMessageStateMachine.CloseCode.invalidPayload, reason: "invalid UTF-8")
            return
        }
        let message: ClientMessage
        do {
            message = try ClientMessage.decode(payload.readableBytesView)
        } catch {
            sendError(code: error.code, error.description)
            return
        }
        switch message {
        case .chat(let text, let id):
            guard member != nil else {
                sendError(code: "not_joined", "send {\"type\":\"join\",\"payload\":{\"roomId\":\"...\"}} first")
                return
            }
            guard bucket.take(now: NIODeadline.now().uptimeNanoseconds) else {
                shard.metrics.rateLimitCloses.increment()
                sendError(code: "rate_limited", "more than \(Int(shard.configuration.messagesPerSecond)) messages/s")
                close(code: WebSocketMessageStateMachine.CloseCode.policy, reason: "rate limited")
                return
            }
            pendingChats.append(InboundChat(message: text, id: id,
                                            ts: Int64(Date().timeIntervalSince1970 * 1000)))
        case .join(let roomText):
            if let current = member?.room ?? request.room {
                if current.rawValue != roomText {
                    sendError(code: "wrong_room", "this connection is in room \(current); open /rooms/\(roomText)")
                }
                return
            }
            guard let room = RoomID(roomText) else {
                sendError(code: "invalid_room", "room id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -")
                return
            }
            guard shard.owns(room) else {
                sendError(code: "not_owner", "room \(room) belongs to another shard; connect to /rooms/\(room)")
                return
            }
            request.room = room
            join(room)
        }
    }

    // MARK: - Outbound

    var presence: MemberPresence? {
        member.map { MemberPresence(name: $0.name, client: request.client) }
    }

    func deliver(_ payload: ByteBuffer, wire: ByteBuffer?) {
        guard !closing, let context else { return }
        if let wire, let encoder = encoderContext {
            // Already framed: enter the pipeline below the frame encoder, as the encoder's own output would.
            encoder.write(NIOAny(wire), promise: nil)
        } else {
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: payload)), promise: nil)
        }
    }

    func flushDeliveries() {
        guard !closing, let context else { return }
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The write buffer's high-water mark is the outbound queue limit: past it the member is a slow consumer.
        if !context.channel.isWritable, !closing {
            shard.metrics.slowConsumerCloses.increment()
            close(code: WebSocketMessageStateMachine.CloseCode.tryAgainLater, reason: "slow consumer", force: true)
        }
        context.fireChannelWritabilityChanged()
    }

    private func send(_ frame: WebSocketFrame) {
        guard let context else { return }
        context.write(wrapOutboundOut(frame), promise: nil)
        hasUnflushed = true
    }

    private func sendError(code: String, _ message: String) {
        send(WebSocketFrame(fin: true, opcode: .text,
                            data: ByteBuffer(string: ServerMessage.error(.init(code: code, message: message)).encoded())))
    }

    /// Sends a close frame, then closes the TCP connection once it is written (or at once for a slow consumer,
    /// whose queue would hold the close frame back indefinitely).
    func close(code: UInt16, reason: String, force: Bool = false) {
        if !closing, ![WebSocketMessageStateMachine.CloseCode.normal, WebSocketMessageStateMachine.CloseCode.goingAway,
                       WebSocketMessageStateMachine.CloseCode.restart].contains(code) {
            // Limits and protocol errors: what an operator looks for when a client reports being dropped.
            shard.logger.info("member closed", metadata: logMetadata(room: request.room, [
                "code": "\(code)", "reason": "\(reason)"]))
        }
        guard !closing, let context else { return }
        closing = true
        sentClose = true
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(code)
        payload.writeString(reason)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)
        if force {
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
        // A peer that stops reading would hold the close frame back forever.
        context.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    }

    /// The close code NIO's frame decoder sent for `error`.
    private static func closeCode(for error: any Error) -> UInt16 {
        switch error as? NIOWebSocketError {
        case .invalidFrameLength: WebSocketMessageStateMachine.CloseCode.tooBig
        case .some: WebSocketMessageStateMachine.CloseCode.protocolError
        case .none: WebSocketMessageStateMachine.CloseCode.internalError
        }
    }

    /// The fields every log line about this member carries.
    private func logMetadata(room: RoomID?, _ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata = extra
        if let room { metadata["room"] = "\(room)" }
        if let id = request.requestID { metadata["request_id"] = "\(id)" }
        if let client = request.client { metadata["client"] = "\(client)" }
        return metadata
    }

    private func keepaliveTick() {
        guard let context, !closing else { return }
        let silent = NIODeadline.now() - lastHeard
        if silent > .milliseconds(Int64(shard.configuration.deadPeerTimeout * 1000)) {
            context.close(promise: nil)
            return
        }
        send(WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0)))
        hasUnflushed = false
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Frame-level errors (an oversized or malformed frame) were already answered with a close frame by the
        // decoder (which may already have closed the channel, so `closing` does not tell); this is where they become
        // visible.
        if !sentClose {
            shard.logger.info("member closed", metadata: logMetadata(room: request.room, [
                "code": "\(Self.closeCode(for: error))", "reason": "\(error)"]))
        }
        closing = true
        sentClose = true
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension WebSocketRoomHandler: Sendable {}
