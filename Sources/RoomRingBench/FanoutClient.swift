#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Histogram
import NIOCore

/// What every connection of one fanout run records. It lives on the generator's single event loop and is only
/// touched there (it is reached through a `NIOLoopBound`).
final class FanoutRecorder {
    /// Largest latency kept, in microseconds (2 minutes); later deliveries are clamped to it.
    static let highestMicros: UInt64 = 120_000_000

    /// Delivery latency in microseconds, for chats received while ``measuring``.
    var histogram = Histogram<UInt64>(highestTrackableValue: FanoutRecorder.highestMicros,
                                      numberOfSignificantValueDigits: .three)
    /// Whether the measured window is open.
    var measuring = false
    /// Chats received while measuring.
    var delivered = 0
    /// Chats received at any time.
    var received = 0
    /// `hello` frames received (one per connection that joined).
    var hellos = 0
    /// `error` frames, close frames and unexpected disconnects.
    var errors = 0
    var closes = 0
    var drops = 0
    /// The first error or close the server sent, for the report.
    var firstProblem: String?
    /// Set before the generator closes its own connections, so those do not count as drops.
    var tearingDown = false

    func chat(sentAt: UInt64, now: UInt64) {
        received += 1
        guard measuring else { return }
        delivered += 1
        let micros = now > sentAt ? (now - sentAt) / 1000 : 0
        histogram.record(min(micros, Self.highestMicros))
    }

    func problem(_ text: String) {
        if firstProblem == nil { firstProblem = text }
    }
}

/// The refusal of a WebSocket handshake by a server under test.
struct FanoutHandshakeRefused: Error, CustomStringConvertible {
    var status: Int
    var line: String
    var description: String { "WebSocket handshake refused: \(line)" }
}

/// A lean WebSocket client for the load generator: it sends the upgrade request itself, then parses server frames
/// in place and records each chat's delivery latency without decoding JSON or allocating per frame.
final class FanoutClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let messageKey = Array(#""message":""#.utf8)
    private static let typePrefix = Array(#"{"type":""#.utf8)

    private let recorder: FanoutRecorder
    private let request: String
    private let upgraded: EventLoopPromise<Void>
    private var isUpgraded = false
    private var settled = false
    private var pending: ByteBuffer?

    init(recorder: FanoutRecorder, host: String, port: Int, path: String, upgraded: EventLoopPromise<Void>) {
        self.recorder = recorder
        // A fixed key is fine: the generator does not check Sec-WebSocket-Accept, only the 101.
        self.request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        self.upgraded = upgraded
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var held = pending {
            pending = nil
            held.writeBuffer(&buffer)
            buffer = held
        }
        if !isUpgraded {
            guard readHead(context: context, &buffer) else { return }
        }
        let now = NIODeadline.now().uptimeNanoseconds
        var pongs: [ByteBuffer] = []
        let consumed = buffer.withUnsafeReadableBytes { parseFrames($0, now: now, pongs: &pongs) }
        buffer.moveReaderIndex(forwardBy: consumed)
        if buffer.readableBytes > 0 { pending = buffer }
        if !pongs.isEmpty {
            for pong in pongs { context.write(wrapOutboundOut(pong), promise: nil) }
            context.flush()
        }
    }

    /// Consumes the response head; false while it is incomplete or when the server refused.
    private func readHead(context: ChannelHandlerContext, _ buffer: inout ByteBuffer) -> Bool {
        let view = buffer.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
            if view.count > 16 * 1024 {
                settle(.failure(FanoutHandshakeRefused(status: 0, line: "response head too large")))
            }
            pending = buffer
            return false
        }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        let statusLine = head.prefix { $0 != "\r" }
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        guard status == 101 else {
            settle(.failure(FanoutHandshakeRefused(status: status, line: String(statusLine))))
            context.close(promise: nil)
            return false
        }
        buffer.moveReaderIndex(to: end.upperBound)
        isUpgraded = true
        settle(.success(()))
        return true
    }

    /// Parses whole frames from `bytes`; returns how many bytes they took.
    private func parseFrames(_ bytes: UnsafeRawBufferPointer, now: UInt64, pongs: inout [ByteBuffer]) -> Int {
        var offset = 0
        while bytes.count - offset >= 2 {
            let first = bytes[offset], second = bytes[offset + 1]
            var header = 2
            var length = Int(second & 0x7F)
            if length == 126 {
                guard bytes.count - offset >= 4 else { break }
                length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                header = 4
            } else if length == 127 {
                guard bytes.count - offset >= 10 else { break }
                length = (0..<8).reduce(0) { $0 << 8 | Int(bytes[offset + 2 + $1]) }
                header = 10
            }
            if second & 0x80 != 0 { header += 4 }  // servers must not mask; skip the key if one does
            guard bytes.count - offset >= header + length else { break }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + header)..<(offset + header + length)])
            switch first & 0x0F {
            case 0x1: text(payload, now: now)
            case 0x8:
                recorder.closes += 1
                let code = payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 0
                let reason = String(decoding: payload.dropFirst(2), as: UTF8.self)
                recorder.problem("server closed a connection with \(code) \(reason)")
            case 0x9: pongs.append(Self.frame(opcode: 0xA, payload: payload, key: 0x5EED_F00D))
            default: break
            }
            offset += header + length
        }
        return offset
    }

    private func text(_ payload: UnsafeRawBufferPointer, now: UInt64) {
        // Both servers write `{"type":"<type>",...`; only chats are parsed further.
        guard payload.count > Self.typePrefix.count, payload.starts(with: Self.typePrefix) else {
            recorder.errors += 1
            recorder.problem("unexpected frame: \(String(decoding: payload.prefix(200), as: UTF8.self))")
            return
        }
        switch payload[Self.typePrefix.count] {
        case UInt8(ascii: "c"):
            guard let found = Self.find(Self.messageKey, in: payload) else { return }
            var index = found + Self.messageKey.count
            var sentAt: UInt64 = 0
            while index < payload.count, payload[index] &- 48 < 10 {
                sentAt = sentAt &* 10 &+ UInt64(payload[index] &- 48)
                index += 1
            }
            recorder.chat(sentAt: sentAt, now: now)
        case UInt8(ascii: "h"):
            recorder.hellos += 1
        case UInt8(ascii: "a"):
            break
        default:
            recorder.errors += 1
            recorder.problem("server said: \(String(decoding: payload.prefix(200), as: UTF8.self))")
        }
    }

    /// Offset of `needle` in `haystack` (chats put `"message":"` 26 bytes in, so this is a short scan).
    private static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var start = 0
        while start <= haystack.count - needle.count {
            var matched = 0
            while matched < needle.count, haystack[start + matched] == needle[matched] { matched += 1 }
            if matched == needle.count { return start }
            start += 1
        }
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(.failure(FanoutHandshakeRefused(status: 0, line: "connection closed during the handshake")))
        if isUpgraded, !recorder.tearingDown {
            recorder.drops += 1
            recorder.problem("server dropped a connection")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        settle(.failure(error))
        context.close(promise: nil)
    }

    private func settle(_ result: Result<Void, any Error>) {
        guard !settled else { return }
        settled = true
        upgraded.completeWith(result)
    }

    /// A masked client frame carrying `payload`.
    static func frame(opcode: UInt8, payload: UnsafeRawBufferPointer, key: UInt32) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.count + 14)
        buffer.writeInteger(0x80 | opcode)
        if payload.count <= 125 {
            buffer.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(payload.count))
        }
        buffer.writeInteger(key)
        let mask = withUnsafeBytes(of: key.bigEndian) { Array($0) }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: payload.count) { out in
            for i in 0..<payload.count { out[i] = payload[i] ^ mask[i & 3] }
            return payload.count
        }
        return buffer
    }
}

@available(*, unavailable)
extension FanoutRecorder: Sendable {}

@available(*, unavailable)
extension FanoutClientHandler: Sendable {}
