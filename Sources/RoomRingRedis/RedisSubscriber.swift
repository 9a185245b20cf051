import NIOCore
import NIOPosix

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
    public var eventLoop: any EventLoop { connection.eventLoop }
    /// How it connects.
    public var configuration: RedisConfiguration { connection.configuration }
    private let connection: RedisReconnector
    /// The channels to keep subscribed.
    private let channels: NIOLoopBoundBox<Set<String>>
    private let onEvents: @Sendable ([Event]) -> Void

    /// - Parameters:
    ///   - configuration: server and timeouts.
    ///   - eventLoop: where the connection lives and `onEvents` runs.
    ///   - onEvents: receives events in order, batched per read.
    public init(configuration: RedisConfiguration, eventLoop: any EventLoop,
                onEvents: @escaping @Sendable ([Event]) -> Void) {
        self.connection = RedisReconnector(configuration: configuration, eventLoop: eventLoop)
        self.onEvents = onEvents
        self.channels = NIOLoopBoundBox.makeBoxSendingValue([], eventLoop: eventLoop)
    }

    /// Whether the connection is up right now.
    public var isConnected: Bool { connection.isConnected }

    /// Starts connecting (and reconnecting) until ``close()``.
    public func start() {
        onLoop { subscriber in
            subscriber.connection.start(
                open: { subscriber.openPubSubConnection() },
                connected: { channel in
                    subscriber.onEvents([.connected])
                    let subscribed = subscriber.channels.value
                    if !subscribed.isEmpty {
                        let command = RESPCommand("SUBSCRIBE", arguments: subscribed.sorted())
                        channel.writeAndFlush(RESPEncoder.bytes(command), promise: nil)
                    }
                },
                disconnected: { reason in subscriber.onEvents([.disconnected(reason: reason)]) })
        }
    }

    /// Adds channels to the subscribed set; each gets a ``Event/subscribed(channel:)`` once Redis confirms (now, or
    /// after the next reconnect).
    public func subscribe(_ channels: [String]) {
        onLoop { subscriber in
            let new = channels.filter { subscriber.channels.value.insert($0).inserted }
            guard !new.isEmpty, let channel = subscriber.connection.channel else { return }
            channel.writeAndFlush(RESPEncoder.bytes(RESPCommand("SUBSCRIBE", arguments: new)), promise: nil)
        }
    }

    /// Removes channels from the subscribed set.
    public func unsubscribe(_ channels: [String]) {
        onLoop { subscriber in
            let gone = channels.filter { subscriber.channels.value.remove($0) != nil }
            guard !gone.isEmpty, let channel = subscriber.connection.channel else { return }
            channel.writeAndFlush(RESPEncoder.bytes(RESPCommand("UNSUBSCRIBE", arguments: gone)), promise: nil)
        }
    }

    /// Stops reconnecting and closes the connection.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { self.connection.close() }
    }

    // MARK: - On the loop

    private func onLoop(_ body: @escaping @Sendable (RedisSubscriber) -> Void) {
        if eventLoop.inEventLoop { body(self) } else { eventLoop.execute { body(self) } }
    }

    /// A logged-in connection that from here on only carries pub/sub traffic.
    private func openPubSubConnection() -> EventLoopFuture<any Channel> {
        let pingInterval = configuration.pingInterval
        return RedisConnection.open(configuration, on: eventLoop).flatMapThrowing { [onEvents] channel -> any Channel in
            let pipeline = channel.pipeline.syncOperations
            let commands = try pipeline.handler(type: RedisCommandHandler.self)
            _ = pipeline.removeHandler(commands)
            try pipeline.addHandler(RedisPubSubHandler(pingInterval: pingInterval) { events in onEvents(events) })
            return channel
        }
    }
}
