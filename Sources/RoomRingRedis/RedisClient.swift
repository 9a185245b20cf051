import NIOCore
import NIOPosix

/// A Redis command connection that stays up: it connects in the background, pipelines every command (many in
/// flight, replies in order, one flush per event-loop tick), and when the connection drops it fails what was in
/// flight and reconnects with jittered exponential backoff.
///
/// While disconnected, commands fail at once with ``RedisError/notConnected`` rather than queueing: a caller that
/// must answer a user (a shard acknowledging a chat) learns immediately. All I/O runs on ``eventLoop``; calls from
/// that loop cost no thread hop, calls from elsewhere hop once.
///
/// ```swift
/// let redis = RedisClient(configuration: .init(url: try RedisURL(parsing: "redis://127.0.0.1:6379")),
///                         eventLoop: group.next())
/// redis.start()
/// try await redis.waitUntilConnected()
/// let value = try await redis.send(RESPCommand("INCR", "counter")).get()
/// ```
public final class RedisClient: Sendable {
    /// A change of connection state, reported on ``eventLoop``.
    public enum Event: Sendable, Hashable {
        /// Connected (and logged in); commands can be sent.
        case connected
        /// The connection dropped, or an attempt failed; a retry is scheduled.
        case disconnected(reason: String)
    }

    /// The loop all I/O runs on.
    public var eventLoop: any EventLoop { connection.eventLoop }
    /// How it connects.
    public var configuration: RedisConfiguration { connection.configuration }
    private let connection: RedisReconnector
    private let box: NIOLoopBoundBox<State>
    private let onEvent: (@Sendable (Event) -> Void)?

    private final class State {
        var flushScheduled = false
        var connectedWaiters: [EventLoopPromise<Void>] = []
        var lastError = "not connected yet"
    }

    /// - Parameters:
    ///   - configuration: server and timeouts.
    ///   - eventLoop: where the connection lives.
    ///   - onEvent: told of every connect and disconnect, on `eventLoop`.
    public init(configuration: RedisConfiguration, eventLoop: any EventLoop,
                onEvent: (@Sendable (Event) -> Void)? = nil) {
        self.connection = RedisReconnector(configuration: configuration, eventLoop: eventLoop)
        self.onEvent = onEvent
        self.box = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Starts connecting (and reconnecting whenever the connection drops) until ``close()``.
    public func start() {
        onLoop { client in
            client.connection.start(
                open: { RedisConnection.open(client.configuration, on: client.eventLoop) },
                connected: { _ in
                    let state = client.box.value
                    for waiter in state.connectedWaiters { waiter.succeed() }
                    state.connectedWaiters = []
                    client.onEvent?(.connected)
                },
                disconnected: { reason in
                    client.box.value.lastError = reason
                    client.onEvent?(.disconnected(reason: reason))
                })
        }
    }

    /// Whether a connection is up right now.
    public var isConnected: Bool { connection.isConnected }

    /// Waits until connected.
    /// - Throws: ``RedisError/timeout`` after `timeout`, ``RedisError/shutDown`` if closed.
    public func waitUntilConnected(timeout: Duration = .seconds(10)) async throws {
        let promise = eventLoop.makePromise(of: Void.self)
        onLoop { client in
            if client.connection.isClosed { promise.fail(RedisError.shutDown) }
            else if client.connection.channel != nil { promise.succeed() }
            else { client.box.value.connectedWaiters.append(promise) }
        }
        let nanos = Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let timer = eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
            promise.fail(RedisError.timeout.with("not connected to \(self.configuration.url) within \(timeout)"))
        }
        defer { timer.cancel() }
        try await promise.futureResult.get()
    }

    /// Sends one command; the future fails with a server error reply as ``RedisError/server(_:)``.
    public func send(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        let bytes = RESPEncoder.bytes(command)
        let future: EventLoopFuture<[RESPValue]>
        if eventLoop.inEventLoop {
            future = enqueue(bytes, count: 1)
        } else {
            future = eventLoop.flatSubmit { self.enqueue(bytes, count: 1) }
        }
        return future.flatMapThrowing { replies in
            if case .error(let text) = replies[0] { throw RedisError.server(text) }
            return replies[0]
        }
    }

    /// Sends several commands back to back; the replies come in order, server errors as ``RESPValue/error(_:)``
    /// values in place (one failing command does not fail the others).
    public func pipeline(_ commands: [RESPCommand]) -> EventLoopFuture<[RESPValue]> {
        guard !commands.isEmpty else { return eventLoop.makeSucceededFuture([]) }
        let bytes = commands.reduce(into: ByteBuffer()) { RESPEncoder.encode($1, into: &$0) }
        if eventLoop.inEventLoop { return enqueue(bytes, count: commands.count) }
        return eventLoop.flatSubmit { self.enqueue(bytes, count: commands.count) }
    }

    /// Stops reconnecting and closes the connection; commands in flight fail.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let state = self.box.value
            for waiter in state.connectedWaiters { waiter.fail(RedisError.shutDown) }
            state.connectedWaiters = []
            return self.connection.close()
        }
    }

    // MARK: - On the loop

    private func onLoop(_ body: @escaping @Sendable (RedisClient) -> Void) {
        if eventLoop.inEventLoop { body(self) } else { eventLoop.execute { body(self) } }
    }

    private func enqueue(_ bytes: ByteBuffer, count: Int) -> EventLoopFuture<[RESPValue]> {
        let state = box.value
        if connection.isClosed { return eventLoop.makeFailedFuture(RedisError.shutDown) }
        guard let channel = connection.channel,
            let handler = try? channel.pipeline.syncOperations.handler(type: RedisCommandHandler.self)
        else {
            return eventLoop.makeFailedFuture(RedisError.notConnected.with("not connected to Redis: \(state.lastError)"))
        }
        guard handler.inFlight + count <= configuration.maxPendingCommands else {
            return eventLoop.makeFailedFuture(RedisError.tooManyPending)
        }
        let promises = (0..<count).map { _ in eventLoop.makePromise(of: RESPValue.self) }
        channel.write(RedisCommandHandler.Request(bytes: bytes, promises: promises), promise: nil)
        if !state.flushScheduled {
            // Every command written during this tick goes out in one flush (one syscall).
            state.flushScheduled = true
            eventLoop.execute {
                self.box.value.flushScheduled = false
                channel.flush()
            }
        }
        if count == 1 { return promises[0].futureResult.map { [$0] } }
        return EventLoopFuture.whenAllSucceed(promises.map(\.futureResult), on: eventLoop)
    }
}
