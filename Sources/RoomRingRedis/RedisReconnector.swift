import NIOCore
import Synchronization

/// The part ``RedisClient`` and ``RedisSubscriber`` share: one connection at a time, opened in the background,
/// reopened after jittered exponential backoff whenever it drops or an attempt fails, until ``close()``.
///
/// Everything runs on ``eventLoop``; the owner learns of each connection and each loss through the callbacks given
/// to ``start(open:connected:disconnected:)``, also on the loop.
final class RedisReconnector: Sendable {
    let eventLoop: any EventLoop
    let configuration: RedisConfiguration
    private let box: NIOLoopBoundBox<State>
    private let connectedFlag = Atomic<Bool>(false)

    private final class State {
        var channel: (any Channel)?
        var connecting = false
        var closed = false
        var failures = 0
        var retry: Scheduled<Void>?
        var open: (() -> EventLoopFuture<any Channel>)?
        var connected: ((any Channel) -> Void)?
        var disconnected: ((String) -> Void)?
    }

    init(configuration: RedisConfiguration, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.box = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Whether a connection is up right now (any thread).
    var isConnected: Bool { connectedFlag.load(ordering: .relaxed) }

    /// The connection, when one is up (on the loop).
    var channel: (any Channel)? { box.value.channel }

    /// Whether ``close()`` was called (on the loop).
    var isClosed: Bool { box.value.closed }

    /// Starts connecting, on the loop. `open` makes one connection ready for use; `connected` and `disconnected`
    /// (with the reason) are called on every success and every loss or failed attempt.
    func start(open: @escaping () -> EventLoopFuture<any Channel>, connected: @escaping (any Channel) -> Void,
               disconnected: @escaping (String) -> Void) {
        let state = box.value
        state.open = open
        state.connected = connected
        state.disconnected = disconnected
        connect()
    }

    /// Stops reconnecting and closes the connection, on the loop.
    func close() -> EventLoopFuture<Void> {
        let state = box.value
        state.closed = true
        state.retry?.cancel()
        state.retry = nil
        guard let channel = state.channel else { return eventLoop.makeSucceededVoidFuture() }
        return channel.close().recover { _ in }
    }

    private func connect() {
        let state = box.value
        guard !state.closed, state.channel == nil, !state.connecting, let open = state.open else { return }
        state.connecting = true
        open().whenComplete { result in
            let state = self.box.value
            state.connecting = false
            switch result {
            case .success(let channel):
                guard !state.closed else {
                    channel.close(promise: nil)
                    return
                }
                state.channel = channel
                state.failures = 0
                self.connectedFlag.store(true, ordering: .relaxed)
                channel.closeFuture.whenComplete { _ in self.lost(channel) }
                state.connected?(channel)
            case .failure(let error):
                state.disconnected?("cannot connect to \(self.configuration.url): \(error)")
                self.scheduleRetry()
            }
        }
    }

    private func lost(_ channel: any Channel) {
        let state = box.value
        guard state.channel === channel else { return }
        state.channel = nil
        connectedFlag.store(false, ordering: .relaxed)
        guard !state.closed else { return }
        state.disconnected?("connection to \(configuration.url) lost")
        // The first retry after losing a working connection is quick; repeated failures back off.
        scheduleRetry()
    }

    private func scheduleRetry() {
        let state = box.value
        guard !state.closed else { return }
        let delay = configuration.backoff.delay(attempt: state.failures, random: Double.random(in: 0..<1))
        state.failures += 1
        state.retry = eventLoop.scheduleTask(in: delay) {
            self.box.value.retry = nil
            self.connect()
        }
    }
}
