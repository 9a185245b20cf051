import NIOCore

/// How a ``RedisClient`` or ``RedisSubscriber`` connects and when it gives up on a reply.
public struct RedisConfiguration: Hashable, Sendable {
    /// The server, credentials and database.
    public var url: RedisURL
    /// Time allowed for the TCP connect plus `AUTH`/`SELECT` (default 2 s).
    public var connectTimeout: TimeAmount
    /// A reply slower than this drops the connection, failing what is in flight with ``RedisError/timeout``,
    /// and reconnects (default 5 s; nil waits forever).
    public var commandTimeout: TimeAmount?
    /// Delays between reconnect attempts.
    public var backoff: RedisBackoff
    /// Commands in flight on one connection beyond which new ones fail with ``RedisError/tooManyPending``
    /// (default 100,000).
    public var maxPendingCommands: Int
    /// Seconds between `PING`s on an idle subscriber connection, which also detect a dead server (default 5 s).
    public var pingInterval: TimeAmount
    /// Bounds on replies.
    public var decoderLimits: RESPDecoder.Limits

    /// - Parameters:
    ///   - url: the server.
    ///   - connectTimeout: default 2 s.
    ///   - commandTimeout: default 5 s.
    ///   - backoff: default 50 ms doubling to 2 s, jittered.
    ///   - maxPendingCommands: default 100,000.
    ///   - pingInterval: default 5 s.
    ///   - decoderLimits: default ``RESPDecoder/Limits/init(maxBulkLength:maxArrayLength:maxDepth:maxLineLength:)``.
    public init(url: RedisURL, connectTimeout: TimeAmount = .seconds(2), commandTimeout: TimeAmount? = .seconds(5),
                backoff: RedisBackoff = RedisBackoff(), maxPendingCommands: Int = 100_000,
                pingInterval: TimeAmount = .seconds(5), decoderLimits: RESPDecoder.Limits = RESPDecoder.Limits()) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.backoff = backoff
        self.maxPendingCommands = maxPendingCommands
        self.pingInterval = pingInterval
        self.decoderLimits = decoderLimits
    }
}
