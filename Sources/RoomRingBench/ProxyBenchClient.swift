import NIOCore
import NIOPosix

/// Where a benchmark connection goes: a shard directly, or a proxy in front of it.
struct ProxyBenchEndpoint: Sendable {
    var host: String
    var port: Int
}

/// What a ``ProxyBenchSocket`` reports, on its event loop.
protocol ProxyBenchSocketDelegate: AnyObject {
    /// The `101` arrived and then the room's `hello`.
    func socketOpened(_ socket: ProxyBenchSocket)
    /// A text frame after the hello; `chat` is false for anything but a `chat` message (an `error`, say).
    func socketReceived(_ socket: ProxyBenchSocket, chat: Bool)
    /// The connection failed or ended without being asked to (refused, non-101, close frame, reset).
    func socketFailed(_ socket: ProxyBenchSocket, reason: String)
}

/// A lean WebSocket client for load generation: writes the upgrade request, checks for `101`, then reads server
/// frames without copying payloads, answers pings, and sends one prebuilt masked chat frame on demand.
///
/// It stays cheaper than ``RoomRingClient/WebSocketConnection`` (no per-frame decoding into events, no masking per
/// send), so the generator core is not the first thing to saturate. Confined to its channel's event loop.
final class ProxyBenchSocket: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Index of this socket in its driver.
    let index: Int
    /// Set by the driver; strong on purpose (the driver drops its sockets when it stops).
    var delegate: (any ProxyBenchSocketDelegate)?
    private(set) var channel: (any Channel)?
    private let request: ByteBuffer
    private let chatFrame: ByteBuffer
    private var buffer = ByteBuffer()
    private var upgraded = false
    private var opened = false
    private var finished = false

    private init(index: Int, request: ByteBuffer, chatFrame: ByteBuffer, delegate: any ProxyBenchSocketDelegate) {
        self.index = index
        self.request = request
        self.chatFrame = chatFrame
        self.delegate = delegate
    }

    /// Connects to `endpoint` and asks for `path`; every outcome reaches `delegate` on `loop`.
    static func open(index: Int, endpoint: ProxyBenchEndpoint, path: String, chatFrame: ByteBuffer,
                     loop: any EventLoop, delegate: any ProxyBenchSocketDelegate) {
        loop.assertInEventLoop()
        let request = ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\n"
            + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: cm9vbXJpbmctYmVuY2gtMDE=\r\n"
            + "Sec-WebSocket-Version: 13\r\n\r\n")
        let socket = ProxyBenchSocket(index: index, request: request, chatFrame: chatFrame, delegate: delegate)
        let bound = NIOLoopBound(socket, eventLoop: loop)
        ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenFailure { error in bound.value.fail("connect: \(error)") }
    }

    /// The chat frame a client sends: `{"type":"chat","payload":{"message":"xxx…"}}` with `messageBytes` x's,
    /// masked with a fixed key (the server unmasks whatever key it gets, so one prebuilt frame serves every send).
    static func chatFrame(messageBytes: Int) -> ByteBuffer {
        let text = #"{"type":"chat","payload":{"message":""# + String(repeating: "x", count: max(0, messageBytes)) + #""}}"#
        return frame(opcode: 0x1, payload: Array(text.utf8))
    }

    private static func frame(opcode: UInt8, payload: [UInt8]) -> ByteBuffer {
        let key: [UInt8] = [0x5A, 0x3C, 0x96, 0xE1]
        var frame = ByteBuffer()
        frame.reserveCapacity(payload.count + 14)
        frame.writeInteger(0x80 | opcode)
        if payload.count <= 125 {
            frame.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= 0xFFFF {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(payload.count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(payload.count))
        }
        frame.writeBytes(key)
        frame.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset & 3] })
        return frame
    }

    /// Sends one chat message.
    func sendChat() {
        channel?.writeAndFlush(chatFrame, promise: nil)
    }

    /// Closes without telling the delegate.
    func close() {
        finished = true
        delegate = nil
        channel?.close(promise: nil)
    }

    private func fail(_ reason: String) {
        guard !finished else { return }
        finished = true
        let delegate = self.delegate
        self.delegate = nil
        channel?.close(promise: nil)
        delegate?.socketFailed(self, reason: reason)
    }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(opened ? "connection closed" : "connection closed before hello")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("\(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            buffer = chunk
        } else {
            buffer.writeBuffer(&chunk)
        }
        if !upgraded {
            guard readResponseHead() else { return }
        }
        readFrames(context: context)
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 16 * 1024 {
            buffer.discardReadBytes()
        }
    }

    /// True once the `101` head is consumed; fails the socket on any other answer.
    private func readResponseHead() -> Bool {
        let view = buffer.readableBytesView
        guard let end = Self.headEnd(view) else {
            if view.count > 16 * 1024 { fail("response head too large") }
            return false
        }
        let statusLine = String(decoding: view.prefix(32), as: UTF8.self)
        guard statusLine.hasPrefix("HTTP/1.1 101") else {
            let firstLine = String(decoding: view.prefix(end), as: UTF8.self).split(separator: "\r\n").first ?? ""
            let body = String(decoding: view.dropFirst(end + 4).prefix(200), as: UTF8.self)
            fail("handshake refused: \(firstLine)" + (body.isEmpty ? "" : " \(body)"))
            return false
        }
        buffer.moveReaderIndex(forwardBy: end + 4)
        upgraded = true
        return true
    }

    private static func headEnd(_ view: ByteBufferView) -> Int? {
        var index = view.startIndex
        let last = view.endIndex - 3
        while index < last {
            if view[index] == 13, view[index + 1] == 10, view[index + 2] == 13, view[index + 3] == 10 {
                return index - view.startIndex
            }
            index += 1
        }
        return nil
    }

    private static let chatPrefix = Array(#"{"type":"chat""#.utf8)

    private func readFrames(context: ChannelHandlerContext) {
        while !finished, buffer.readableBytes >= 2 {
            let start = buffer.readerIndex
            let b0 = buffer.getInteger(at: start, as: UInt8.self)!
            let b1 = buffer.getInteger(at: start + 1, as: UInt8.self)!
            var header = 2
            var length = Int(b1 & 0x7F)
            if length == 126 {
                guard let value = buffer.getInteger(at: start + 2, as: UInt16.self) else { return }
                length = Int(value)
                header = 4
            } else if length == 127 {
                guard let value = buffer.getInteger(at: start + 2, as: UInt64.self) else { return }
                guard value < 1 << 30 else { return fail("frame too large") }
                length = Int(value)
                header = 10
            }
            if b1 & 0x80 != 0 { header += 4 }
            guard buffer.readableBytes >= header + length else { return }
            let payloadStart = start + header
            switch b0 & 0x0F {
            case 0x1, 0x0:
                if !opened {
                    opened = true
                    delegate?.socketOpened(self)
                } else {
                    var chat = length >= Self.chatPrefix.count
                    if chat, let bytes = buffer.viewBytes(at: payloadStart, length: Self.chatPrefix.count) {
                        chat = bytes.elementsEqual(Self.chatPrefix)
                    }
                    delegate?.socketReceived(self, chat: chat)
                }
            case 0x9:
                let payload = buffer.getBytes(at: payloadStart, length: length) ?? []
                context.writeAndFlush(wrapOutboundOut(Self.frame(opcode: 0xA, payload: payload)), promise: nil)
            case 0x8:
                let code = length >= 2 ? buffer.getInteger(at: payloadStart, as: UInt16.self) ?? 0 : 0
                return fail("close frame \(code)")
            default:
                break
            }
            buffer.moveReaderIndex(to: payloadStart + length)
        }
    }
}

@available(*, unavailable)
extension ProxyBenchSocket: Sendable {}
