/// Why a Redis command did not get a reply.
///
/// Compare with the static constants (``notConnected``, ``connectionClosed``, ...); a server error reply is
/// ``isServerError`` with the server's text in ``message``.
public struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case notConnected, connectionClosed, timeout, server, protocolViolation, shutDown, tooManyPending
    }

    private let kind: Kind
    /// Details: the server's error text for a server error, else what happened.
    public let message: String

    private init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// No connection is up (Redis unreachable, or reconnecting): the command was not sent.
    public static let notConnected = RedisError(.notConnected, "not connected to Redis")
    /// The connection dropped after the command was sent: it may or may not have been executed.
    public static let connectionClosed = RedisError(.connectionClosed, "the Redis connection closed")
    /// No reply within the command timeout; the connection was dropped (and is being re-established).
    public static let timeout = RedisError(.timeout, "Redis did not answer in time")
    /// The server sent bytes that are not RESP2 or not a valid reply.
    public static let protocolViolation = RedisError(.protocolViolation, "Redis sent an invalid reply")
    /// The client was closed.
    public static let shutDown = RedisError(.shutDown, "the Redis client is closed")
    /// Too many commands are waiting for replies; the command was not sent.
    public static let tooManyPending = RedisError(.tooManyPending, "too many Redis commands in flight")

    /// An error reply from the server, e.g. `ERR unknown command` or `NOSCRIPT ...`.
    public static func server(_ text: String) -> RedisError { RedisError(.server, text) }

    /// The same kind of error with another message (to say which command or why).
    public func with(_ message: String) -> RedisError { RedisError(kind, message) }

    /// Whether the server answered with an error reply.
    public var isServerError: Bool { kind == .server }

    /// The error kind of a server error (`ERR`, `NOSCRIPT`, `WRONGPASS`, ...), nil for other errors.
    public var serverErrorKind: String? {
        guard kind == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// Equal when of the same kind; two server errors are equal when their texts are.
    public static func == (lhs: RedisError, rhs: RedisError) -> Bool {
        lhs.kind == rhs.kind && (lhs.kind != .server || lhs.message == rhs.message)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        if kind == .server { hasher.combine(message) }
    }

    public var description: String { message }
}
