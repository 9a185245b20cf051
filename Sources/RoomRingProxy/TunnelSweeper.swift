import NIOCore

/// Ends tunnels that carried nothing either way for the idle timeout.
///
/// One sweeper and one repeated task per event loop, instead of an `IdleStateHandler` per tunnel (a handler, its
/// pipeline context and a timer): idle tunnels are most of what a proxy holds, so their size is the proxy's memory.
/// Reads only set a flag; the clock is read once per sweep, not once per read. Four sweeps per timeout, and a tunnel
/// is closed after five quiet sweeps in a row, so it was idle for at least the timeout and at most 1.25 × it.
final class TunnelSweeper {
    private var tunnels: [GlueHandler] = []
    private var task: RepeatedTask?
    static let quietSweepsToClose = 5

    init(loop: any EventLoop, timeout: TimeAmount) {
        let period = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, TimeAmount.milliseconds(10).nanoseconds))
        let bound = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in bound.value.sweep() }
    }

    var count: Int { tunnels.count }

    func add(_ tunnel: GlueHandler) {
        tunnel.sweepIndex = tunnels.count
        tunnels.append(tunnel)
    }

    func remove(_ tunnel: GlueHandler) {
        guard let index = tunnel.sweepIndex, index < tunnels.count, tunnels[index] === tunnel else { return }
        tunnel.sweepIndex = nil
        let last = tunnels.removeLast()
        if index < tunnels.count {
            tunnels[index] = last
            last.sweepIndex = index
        }
    }

    func stop() {
        task?.cancel()
        task = nil
    }

    private func sweep() {
        var idle: [GlueHandler] = []
        for tunnel in tunnels where tunnel.quietSweep() >= Self.quietSweepsToClose { idle.append(tunnel) }
        for tunnel in idle { tunnel.closeIdleTunnel() }  // closing removes it from `tunnels`
    }
}

@available(*, unavailable)
extension TunnelSweeper: Sendable {}
