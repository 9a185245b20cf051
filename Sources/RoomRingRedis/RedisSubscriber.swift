import NIOCore
import NIOPosix
import Synchronization

/// A Redis pub/sub connection that stays up: it keeps a set of channels subscribed, resubscribes all of them after
/// a reconnect (jittered exponential backoff), and reports what happens as ``Event``s, batched per read, on
/// ``eventLoop``.
///
/// Messages published while the connection was down are lost (Redis pub/sub keeps nothing): each `subscribed`
/// event after a reconnect is the caller's cue to catch up from durable state.
///
/// ```swift
/// let subscriber = RedisSubscriber(configuration: configuration, eventLoop: loop) { events in
///     for case .message(let channel, let payload) in events { handle(channel, payload) }
/// }
/// subscriber.start()
/// subscriber.subscribe(["room:lobby"])
/// ```
public final class RedisSubscriber: Sendable {
    /// What the subscriber reports.
    public enum Event: Sendable, Hashable {
        /// Connected (and logged in); the channels are being resubscribed.
        case connected
        /// The connection dropped or could not be made; a retry is scheduled.
        case disconnected(reason: String)
        /// Redis confirmed a subscription: messages on `channel` flow from here on.
        case subscribed(channel: String)
        /// Redis confirmed an unsubscription.
        case unsubscribed(channel: String)
        /// A message published on `channel`.
        case message(channel: String, payload: ByteBuffer)
    }

    /// The loop all I/O and every callback run on.
    public let eventLoop: any EventLoop
    /// How it connects.
    public let configuration: RedisConfiguration
    private let box: NIOLoopBoundBox<State>
    private let connectedFlag = Atomic<Bool>(false)
    private let onEvents: @Sendable ([Event]) -> Void

    private final class State {
        var channel: (any Channel)?
        var channels: Set<String> = []
        var connecting = false
        var closed = false
        var failures = 0
        var retry: Scheduled<Void>?
    }

    /// - Parameters:
    ///   - configuration: server and timeouts.
    ///   - eventLoop: where the connection lives and `onEvents` runs.
    ///   - onEvents: receives events in order, batched per read.
    public init(configuration: RedisConfiguration, eventLoop: any EventLoop,
                onEvents: @escaping @Sendable ([Event]) -> Void) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.onEvents = onEvents
        self.box = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Whether the connection is up right now.
    public var isConnected: Bool { connectedFlag.load(ordering: .relaxed) }

    /// Starts connecting (and reconnecting) until ``close()``.
    public func start() {
        onLoop { $0.connect() }
    }

    /// Adds channels to the subscribed set; each gets a ``Event/subscribed(channel:)`` once Redis confirms (now, or
    /// after the next reconnect).
    public func subscribe(_ channels: [String]) {
        onLoop { subscriber in
            let state = subscriber.box.value
            let new = channels.filter { state.channels.insert($0).inserted }
            guard !new.isEmpty, let channel = state.channel else { return }
            channel.writeAndFlush(RESPEncoder.bytes(RESPCommand("SUBSCRIBE", arguments: new)), promise: nil)
        }
    }

    /// Removes channels from the subscribed set.
    public func unsubscribe(_ channels: [String]) {
        onLoop { subscriber in
            let state = subscriber.box.value
            let gone = channels.filter { state.channels.remove($0) != nil }
            guard !gone.isEmpty, let channel = state.channel else { return }
            channel.writeAndFlush(RESPEncoder.bytes(RESPCommand("UNSUBSCRIBE", arguments: gone)), promise: nil)
        }
    }

    /// Stops reconnecting and closes the connection.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let state = self.box.value
            state.closed = true
            state.retry?.cancel()
            state.retry = nil
            guard let channel = state.channel else { return self.eventLoop.makeSucceededVoidFuture() }
            return channel.close().recover { _ in }
        }
    }

    // MARK: - On the loop

    private func onLoop(_ body: @escaping @Sendable (RedisSubscriber) -> Void) {
        if eventLoop.inEventLoop { body(self) } else { eventLoop.execute { body(self) } }
    }

    private func connect() {
        let state = box.value
        guard !state.closed, state.channel == nil, !state.connecting else { return }
        state.connecting = true
        let pingInterval = configuration.pingInterval
        RedisConnection.open(configuration, on: eventLoop).flatMapThrowing { channel -> any Channel in
            // Logged in: from here on the connection only carries pub/sub traffic.
            let pipeline = channel.pipeline.syncOperations
            let commands = try pipeline.handler(type: RedisCommandHandler.self)
            _ = pipeline.removeHandler(commands)
            let handler = RedisPubSubHandler(pingInterval: pingInterval) { [self] events in onEvents(events) }
            try pipeline.addHandler(handler)
            return channel
        }.whenComplete { result in
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
                self.onEvents([.connected])
                if !state.channels.isEmpty {
                    let command = RESPCommand("SUBSCRIBE", arguments: state.channels.sorted())
                    channel.writeAndFlush(RESPEncoder.bytes(command), promise: nil)
                }
            case .failure(let error):
                self.onEvents([.disconnected(reason: "cannot connect to \(self.configuration.url): \(error)")])
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
        onEvents([.disconnected(reason: "connection to \(configuration.url) lost")])
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
