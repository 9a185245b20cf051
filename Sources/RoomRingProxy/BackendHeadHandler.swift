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
        let bytes = Array(buffer.readableBytesView)
        guard let end = HTTPClient.findHeadEnd(bytes) else {
            if bytes.count > Self.maxHead { report(status: nil, epoch: nil) }
            return
        }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let parts = lines.first?.split(separator: " ") ?? []
        let status = parts.count >= 2 && parts[0].hasPrefix("HTTP/1.") ? Int(parts[1]) : nil
        var epoch: UInt64?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == "roomring-epoch" {
                epoch = UInt64(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }
        report(status: status, epoch: epoch)
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
