import Foundation
import NIOCore
import RoomRingClient

/// Watches the start of the shard's answer until its head is complete, so the proxy can act on `421` + a newer
/// `RoomRing-Epoch` before anything reaches the client. Removed as soon as the tunnel is spliced.
final class BackendHeadHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Called once with the status (nil if the shard closed first), the epoch header, and every byte received.
    var onHead: ((Int?, UInt64?, ByteBuffer) -> Void)?
    private var buffer = ByteBuffer()
    static let maxHead = 16 * 1024

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        let view = buffer.readableBytesView
        guard let end = HTTPClient.findHeadEnd(view).map({ $0 + 4 }) else {
            if view.count > Self.maxHead { report(status: nil, epoch: nil) }
            return
        }
        // Every tunnel passes here once: read the status straight from the bytes, and the headers only for a 421.
        let status = Self.status(view)
        report(status: status, epoch: status == 421 ? Self.epoch(view[view.startIndex..<end]) : nil)
    }

    /// The status of `HTTP/1.x NNN ...`, or nil when the line is not that.
    static func status(_ bytes: ByteBufferView) -> Int? {
        let prefix = Array("HTTP/1.".utf8)
        guard bytes.count >= 12, bytes.prefix(prefix.count).elementsEqual(prefix),
            bytes[bytes.startIndex + 8] == UInt8(ascii: " ") else { return nil }
        var status = 0
        for byte in bytes[(bytes.startIndex + 9)..<(bytes.startIndex + 12)] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            status = status * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return status
    }

    /// The `RoomRing-Epoch` header of a head.
    static func epoch(_ head: ByteBufferView) -> UInt64? {
        let text = String(decoding: head, as: UTF8.self)
        for line in text.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == "roomring-epoch" {
                return UInt64(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        report(status: nil, epoch: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func report(status: Int?, epoch: UInt64?) {
        guard let onHead else { return }
        self.onHead = nil
        onHead(status, epoch, buffer)
    }
}

@available(*, unavailable)
extension BackendHeadHandler: Sendable {}
