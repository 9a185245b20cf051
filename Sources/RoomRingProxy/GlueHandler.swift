import NIOCore

/// Splices two channels on the same event loop: bytes read on one side are written to the other, flushed once per
/// read burst, with backpressure (a side reads only while its partner is writable) and half-close passed through.
///
/// The proxy never parses frames after `101`; this is the whole data path.
final class GlueHandler {
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Set by every read on this side since the last sweep.
    private var active = false
    private var quietSweeps = 0
    /// Where the client side sits in its loop's ``TunnelSweeper`` (nil on the shard side).
    var sweepIndex: Int?
    private weak var sweeper: TunnelSweeper?
    /// The client side tells the proxy when its tunnel to `shard` is gone.
    private var proxy: ProxyContext?
    private var shard = ""

    private init() {}

    /// Two handlers glued to each other.
    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    /// The other side is gone: deliver what is still queued for this side, then close it. A plain `close()` would
    /// fail writes a slow reader has not taken yet; the idle sweep ends a reader that never takes them.
    private func partnerClosed() {
        guard let context else { return }
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    /// Makes this (client-side) handler report the tunnel's end to `proxy` once.
    func countClose(in proxy: ProxyContext, shard: String) {
        self.proxy = proxy
        self.shard = shard
    }

    /// Reports the tunnel's end, once.
    private func tunnelEnded() {
        guard let proxy else { return }
        self.proxy = nil
        proxy.tunnelClosed(shard)
    }

    /// Registers this (client-side) handler's tunnel for idle sweeps.
    func watch(with sweeper: TunnelSweeper) {
        self.sweeper = sweeper
        sweeper.add(self)
    }

    /// Called once per sweep: the number of sweeps in a row in which neither side read anything.
    func quietSweep() -> Int {
        if active || partner?.active == true {
            active = false
            partner?.active = false
            quietSweeps = 0
        } else {
            quietSweeps += 1
        }
        return quietSweeps
    }

    /// The tunnel carried nothing either way for the idle timeout.
    func closeIdleTunnel() {
        sweeper?.remove(self)
        context?.close(promise: nil)
        partner?.context?.close(promise: nil)
    }
}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweeper?.remove(self)
        tunnelEnded()
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        active = true
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweeper?.remove(self)
        tunnelEnded()
        partner?.partnerClosed()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}
