import Foundation
import NIOCore
import NIOPosix
import NIOWebSocket
import RoomRingCore

/// A small WebSocket client over NIO: it performs the handshake itself (so callers see non-101 answers such as
/// 421 with their headers), masks its own frames, and can write raw bytes (tests use that for hostile input).
public final class WebSocketConnection: Sendable {
    /// Something that arrived from the server.
    public enum Event: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
        case ping([UInt8])
        case pong([UInt8])
        /// A close frame; `code` nil when it had no payload.
        case close(code: UInt16?, reason: String)
        /// The TCP connection ended.
        case disconnected
    }

    /// A handshake the server refused.
    public struct Refused: Error, Sendable, CustomStringConvertible {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: String

        /// First header value by case-insensitive name.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        public var description: String { "WebSocket handshake refused with \(status): \(body)" }
    }

    /// The channel, for tests that need to poke at it.
    public let channel: any Channel
    /// Events in arrival order (text goes here unless the connection was made with an `onText` callback).
    public let events: EventInbox<Event>
    /// The `101` response headers.
    public let responseHeaders: [(name: String, value: String)]

    private init(channel: any Channel, events: EventInbox<Event>, headers: [(name: String, value: String)]) {
        self.channel = channel
        self.events = events
        self.responseHeaders = headers
    }

    /// Opens a WebSocket.
    /// - Parameters:
    ///   - host: server host.
    ///   - port: server port.
    ///   - path: request target, e.g. `/rooms/lobby?name=alice`.
    ///   - headers: extra request headers.
    ///   - group: event loops to use.
    ///   - answerPings: reply to pings automatically (default true).
    ///   - onText: when set, text payloads go here on the event loop instead of into ``events`` (load generators).
    /// - Throws: ``Refused`` for a non-101 answer, or a connection error.
    public static func connect(
        host: String, port: Int, path: String, headers: [(String, String)] = [],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, answerPings: Bool = true,
        onText: (@Sendable (ByteBuffer) -> Void)? = nil
    ) async throws -> WebSocketConnection {
        let inbox = EventInbox<Event>()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port).get()
        let handshake = channel.eventLoop.makePromise(of: [(name: String, value: String)].self)
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(NIOWebSocketClientUpgrader.randomRequestKey())\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try await channel.eventLoop.submit {
            let events = ClientEventHandler(inbox: inbox, answerPings: answerPings, onText: onText)
            try channel.pipeline.syncOperations.addHandler(HandshakeHandler(promise: handshake, next: events))
        }.get()
        try await channel.writeAndFlush(ByteBuffer(string: request))
        do {
            let responseHeaders = try await handshake.futureResult.get()
            return WebSocketConnection(channel: channel, events: inbox, headers: responseHeaders)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Sends a text frame (masked, as a client must).
    public func send(text: String) {
        write(opcode: 0x1, payload: Array(text.utf8))
    }

    /// Sends one frame with full control over its header bits.
    public func write(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, payload: [UInt8], masked: Bool = true) {
        channel.writeAndFlush(Self.encodeFrame(fin: fin, rsv: rsv, opcode: opcode, payload: payload, masked: masked),
                              promise: nil)
    }

    /// Writes raw bytes to the socket.
    public func writeRaw(_ bytes: [UInt8]) {
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    /// Sends a close frame with `code`.
    public func sendClose(code: UInt16 = 1000, reason: String = "") {
        write(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    /// The next event, waiting at most `timeout`.
    public func next(timeout: Duration = .seconds(5)) async throws -> Event {
        try await events.next(timeout: timeout)
    }

    /// The next text frame decoded as a server message, skipping pings and pongs.
    /// - Throws: ``EventInbox/Timeout``, ``Refused`` (status 0) when the connection closes first, or a
    ///   ``ProtocolError`` for a malformed message.
    public func nextMessage(timeout: Duration = .seconds(5)) async throws -> ServerMessage {
        while true {
            switch try await next(timeout: timeout) {
            case .text(let text): return try ServerMessage.decode(Array(text.utf8))
            case .ping, .pong: continue
            case let other: throw Refused(status: 0, headers: [], body: "expected a message, got \(other)")
            }
        }
    }

    /// Closes the TCP connection.
    public func close() async {
        try? await channel.close()
    }

    /// Encodes a client frame.
    public static func encodeFrame(fin: Bool, rsv: UInt8, opcode: UInt8, payload: [UInt8], masked: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.count + 14)
        buffer.writeInteger(UInt8((fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0xF)))
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count <= 125 {
            buffer.writeInteger(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        if masked {
            let key: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
            buffer.writeBytes(key)
            buffer.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset & 3] })
        } else {
            buffer.writeBytes(payload)
        }
        return buffer
    }
}

/// Reads the HTTP response to the upgrade request, then switches the pipeline to WebSocket frames.
private final class HandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<[(name: String, value: String)]>
    private var next: ClientEventHandler?
    private var buffer = ByteBuffer()

    init(promise: EventLoopPromise<[(name: String, value: String)]>, next: ClientEventHandler) {
        self.promise = promise
        self.next = next
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        let bytes = Array(buffer.readableBytesView)
        guard let end = HTTPClient.findHeadEnd(bytes) else {
            if bytes.count > 64 * 1024 { fail(context, message: "response head too large") }
            return
        }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers: [(name: String, value: String)] = lines.dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        buffer.moveReaderIndex(forwardBy: end + 4)
        guard status == 101, let next else {
            // Read the body we were given (error answers are small JSON documents).
            let body = String(decoding: buffer.readableBytesView, as: UTF8.self)
            promise.fail(WebSocketConnection.Refused(status: status, headers: headers, body: body))
            context.close(promise: nil)
            return
        }
        self.next = nil
        do {
            try context.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 24)), position: .after(self))
            let decoder = try context.pipeline.syncOperations.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
            try context.pipeline.syncOperations.addHandler(next, position: .after(decoder))
        } catch {
            fail(context, message: "pipeline: \(error)")
            return
        }
        promise.succeed(headers)
        let rest = buffer
        buffer = ByteBuffer()
        // Frames that arrived with the 101 go to the decoder first: a removed context forwards nothing.
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    typealias InboundOut = ByteBuffer

    private func fail(_ context: ChannelHandlerContext, message: String) {
        promise.fail(WebSocketConnection.Refused(status: 0, headers: [], body: message))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(WebSocketConnection.Refused(status: 0, headers: [], body: "connection closed during handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

/// Turns frames into ``WebSocketConnection/Event``s.
private final class ClientEventHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    private let inbox: EventInbox<WebSocketConnection.Event>
    private let answerPings: Bool
    private let onText: (@Sendable (ByteBuffer) -> Void)?
    private var fragments: ByteBuffer?

    init(inbox: EventInbox<WebSocketConnection.Event>, answerPings: Bool, onText: (@Sendable (ByteBuffer) -> Void)?) {
        self.inbox = inbox
        self.answerPings = answerPings
        self.onText = onText
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        var payload = frame.unmaskedData
        switch frame.opcode {
        case .text where frame.fin:
            if let onText { onText(payload) } else { inbox.push(.text(String(buffer: payload))) }
        case .text, .binary:
            fragments = payload
        case .continuation:
            fragments?.writeBuffer(&payload)
            if frame.fin, let message = fragments {
                fragments = nil
                if let onText { onText(message) } else { inbox.push(.text(String(buffer: message))) }
            }
        case .ping:
            inbox.push(.ping(Array(payload.readableBytesView)))
            if answerPings {
                let pong = WebSocketConnection.encodeFrame(fin: true, rsv: 0, opcode: 0xA,
                                                           payload: Array(payload.readableBytesView), masked: true)
                context.writeAndFlush(NIOAny(pong), promise: nil)
            }
        case .pong:
            inbox.push(.pong(Array(payload.readableBytesView)))
        case .connectionClose:
            switch WebSocketMessageStateMachine.parseClose(payload.readableBytesView) {
            case .valid(let code, let reason): inbox.push(.close(code: code, reason: reason))
            case .invalid: inbox.push(.close(code: nil, reason: "invalid close frame"))
            }
        default:
            inbox.push(.binary(Array(payload.readableBytesView)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.push(.disconnected)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HandshakeHandler: Sendable {}

@available(*, unavailable)
extension ClientEventHandler: Sendable {}
